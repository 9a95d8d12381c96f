"""Simulated scenes against independent computations: the realised SNR, the spectral
response, the ground truth and every file simulate writes (bug hunt 43).

Every expected value here is computed in the test from the inputs (numerical integration on a
fine grid, the SNR from its definition, ``A @ E`` by hand), never taken from the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from unmixgen.simulate.scene import simulate

ROWS, COLS = 17, 23  # non-square: a transposed pixel order cannot pass


def realised_snr_db(clean, noisy) -> float:
    """``10 log10(sum clean^2 / sum (noisy - clean)^2)`` over the valid (finite) values."""
    c = np.asarray(clean, np.float64)
    n = np.asarray(noisy, np.float64) - c
    ok = np.isfinite(c)
    return float(10 * np.log10((c[ok] ** 2).sum() / (n[ok] ** 2).sum()))


def bright_dark_maps(rows=40, cols=50):
    """Two endmembers; the left half of the map no-data (NaN in every map), the valid half pure
    bright pixels in its top rows and pure dark ones below: the mean abundance (what a no-data
    pixel was mixed from) has a quarter of the valid pixels' mean power."""
    a = np.zeros((rows, cols, 2), np.float32)
    a[: rows // 2, :, 0] = 1
    a[rows // 2:, :, 1] = 1
    a[:, : cols // 2] = np.nan
    return a


def flat_spectra(bands=20):
    wl = np.linspace(450.0, 900.0, bands)
    return np.stack([np.full(bands, 1.0), np.full(bands, 1e-3)]).astype(np.float32), wl


@pytest.mark.parametrize("kind", ["white", "signal"])
def test_the_snr_of_a_scene_with_no_data_is_the_requested_one_over_its_valid_pixels(kind):
    # no-data pixels were mixed from the map's mean abundance and the noise level set over them
    # too: the valid pixels' SNR came out 1.2 dB above the one asked for (white noise)
    a = bright_dark_maps()
    e, wl = flat_spectra()
    s = simulate(a, e, wavelengths=wl, snr_db=20.0, noise=kind, seed=2)[0]
    nodata = np.isnan(a).all(-1)
    assert np.isnan(s.cube[nodata]).all() and np.isnan(s.clean[nodata]).all()
    assert np.isfinite(s.cube[~nodata]).all()
    np.testing.assert_array_equal(s.clean[~nodata], a[~nodata] @ e)
    # 20,000 valid values: the sampling error of the realised SNR is about 0.04 dB
    assert realised_snr_db(s.clean, s.cube) == pytest.approx(20.0, abs=0.2)


def test_simulate_writes_the_requested_snr_over_the_valid_pixels_of_maps_with_no_data(tmp_path, run_cli):
    a = bright_dark_maps()
    e, wl = flat_spectra()
    np.savez(tmp_path / "maps.npz", abundances=a)
    (tmp_path / "em.csv").write_text("wavelength_nm,bright,dark\n"
                                     + "".join(f"{w},{e[0, i]},{e[1, i]}\n" for i, w in enumerate(wl)))
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "em.csv", "--snr", "20",
                           "--seed", "3", "--out", tmp_path / "sim")
    assert code == 0, err
    with np.load(tmp_path / "sim" / "scene_000.npz") as z:
        assert realised_snr_db(z["clean"], z["cube"]) == pytest.approx(20.0, abs=0.2)
        nodata = np.isnan(a).all(-1)
        assert np.isnan(z["cube"][nodata]).all() and np.isnan(z["abundances"][nodata]).all()
