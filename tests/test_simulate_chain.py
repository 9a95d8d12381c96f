"""The synthesis and simulation chain as a user runs it: unmix -> simulate (bug hunt 21)."""

from __future__ import annotations

import numpy as np
import pytest

from unmixgen.simulate.mixing import snr_db

ROWS, COLS, P, BANDS = 12, 16, 3, 40
BAD = slice(20, 25)  # water-absorption-like bands the file flags bad


def abundance_maps(rows=ROWS, cols=COLS, p=P, seed=0):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    z = gaussian_filter(rng.standard_normal((rows, cols, p)), sigma=(2, 2, 0), mode="wrap") * 8
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def spectra(p=P, bands=BANDS, seed=1):
    wl = np.linspace(450.0, 900.0, bands)
    rng = np.random.default_rng(seed)
    e = 0.2 + 0.5 * rng.random((p, 1)) + 0.1 * np.sin(wl[None] / (40 + 20 * rng.random((p, 1))))
    return e.astype(np.float32), wl


@pytest.fixture
def run_with_bad_bands(tmp_path, run_cli):
    """An `unmix` result folder of an ENVI scene whose bands BAD are flagged bad (bbl) and hold
    junk 100x the signal, as a saturated absorption band does."""
    from unmixgen.io import write_scene
    from unmixgen.scene import Scene

    a = abundance_maps()
    e, wl = spectra()
    cube = a @ e
    cube[..., BAD] = np.random.default_rng(5).random((ROWS, COLS, 5)).astype(np.float32) * 50
    good = np.ones(BANDS, bool)
    good[BAD] = False
    write_scene(Scene(cube, wavelengths=wl, good_bands=good), tmp_path / "scene.hdr")
    code, _, err = run_cli("unmix", tmp_path / "scene.hdr", "-p", "3", "--method", "vca", "--no-figures",
                           "--out", tmp_path / "run")
    assert code == 0, err
    return tmp_path, good


def test_simulate_leaves_out_the_bad_bands_of_a_result_folder(run_with_bad_bands, run_cli):
    # the junk a result's endmembers hold at the scene's bad bands was simulated as reflectance
    # (and set the noise level: --snr 30 gave -4 dB on the good bands of a Samson crop)
    tmp, good = run_with_bad_bands
    for source in ("run", "run/endmembers.csv", "run/endmembers.sli"):
        out = tmp / f"sim_{source.replace('/', '_')}"
        code, _, err = run_cli("simulate", "-a", tmp / "run", "-e", tmp / source, "--snr", "30", "--out", out)
        assert code == 0, err
        assert "5 channels" in err and "left out" in err, err
        with np.load(out / "scene_000.npz") as z:
            assert z["cube"].shape == (ROWS, COLS, int(good.sum()))
            np.testing.assert_allclose(z["wavelengths"], spectra()[1][good], atol=1e-3)
            assert z["endmembers"].max() < 2  # no junk band left
            assert snr_db(z["clean"], z["cube"]) == pytest.approx(30.0, abs=0.5)
