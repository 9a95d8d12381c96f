"""Scene simulation (mixing, variability, sensor, noise) and the simulate / evaluate-synthesis commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io as sio
from scipy.ndimage import gaussian_filter

from unmixgen.errors import InputError, ParameterError
from unmixgen.runs.sources import load_abundance_maps, load_sensor
from unmixgen.simulate.mixing import snr_db
from unmixgen.simulate.scene import simulate, smooth_log_normal_scales

ROWS, COLS, P, BANDS = 12, 9, 3, 40


def maps(n=2, rows=ROWS, cols=COLS, p=P, seed=0):
    rng = np.random.default_rng(seed)
    z = gaussian_filter(rng.standard_normal((n, rows, cols, p)), sigma=(0, 2, 2, 0), mode="wrap") * 8
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def spectra(p=P, bands=BANDS, seed=1):
    wl = np.linspace(450.0, 900.0, bands)
    rng = np.random.default_rng(seed)
    e = 0.2 + 0.5 * rng.random((p, 1)) + 0.1 * np.sin(wl[None] / (40 + 20 * rng.random((p, 1))))
    return e.astype(np.float32), wl


def write_csv(path, e, wl, names=None):
    names = names or [f"m{i}" for i in range(len(e))]
    lines = ["wavelength_nm," + ",".join(names)]
    lines += [f"{wl[b]:.6f}," + ",".join(f"{v:.8g}" for v in e[:, b]) for b in range(e.shape[1])]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_noise_free_clean_is_exact_linear_mixing():
    a = maps()
    e, wl = spectra()
    out = simulate(a, e, wavelengths=wl)
    assert len(out) == 2
    for s, amap in zip(out, a, strict=True):
        np.testing.assert_array_equal(s.clean, amap @ e)
        np.testing.assert_array_equal(s.cube, s.clean)
        assert s.cube.shape == (ROWS, COLS, BANDS) and s.cube.dtype == np.float32
    single = simulate(a[0], e)
    assert len(single) == 1 and single[0].wavelengths is None


@pytest.mark.parametrize("kind", ["white", "signal"])
def test_measured_snr_matches(kind):
    a = maps(1, 40, 30)
    e, wl = spectra()
    s = simulate(a, e, wavelengths=wl, snr_db=25.0, noise=kind, seed=3)[0]
    assert snr_db(s.clean, s.cube) == pytest.approx(25.0, abs=0.15)
    again = simulate(a, e, wavelengths=wl, snr_db=25.0, noise=kind, seed=3)[0]
    np.testing.assert_array_equal(s.cube, again.cube)  # seeded


def test_variability_per_pixel_endmembers():
    a = maps(2)
    e, wl = spectra()
    out = simulate(a, e, wavelengths=wl, variability=0.1, seed=0)
    s = out[0]
    assert s.endmembers.shape == (ROWS, COLS, P, BANDS)
    assert s.scales.shape == (ROWS, COLS, P)
    np.testing.assert_allclose(np.log(s.scales).std(axis=(0, 1)), 0.1, rtol=1e-3)
    np.testing.assert_allclose(s.endmembers, s.scales[..., None] * e, rtol=1e-6)
    np.testing.assert_allclose(s.clean, np.einsum("rcp,rcpb->rcb", a[0], s.endmembers), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(s.reference_endmembers, e)
    assert not np.allclose(out[0].scales, out[1].scales)  # a field per scene


def test_scaling_fields_are_smooth():
    s = smooth_log_normal_scales((64, 48, 2), 0.2, np.random.default_rng(0), corr_px=6)
    log = np.log(s)
    lag1 = np.corrcoef(log[1:, :, 0].ravel(), log[:-1, :, 0].ravel())[0, 1]
    assert lag1 > 0.9


def test_sensor_resampling_before_mixing():
    a = maps(1)
    wl = np.linspace(400.0, 1000.0, 121)
    e = np.stack([np.full(121, 0.2), np.full(121, 0.5), np.linspace(0.1, 0.7, 121)]).astype(np.float32)
    centres = np.array([500.0, 600.0, 700.0, 800.0])
    s = simulate(a, e, wavelengths=wl, sensor=(centres, np.full(4, 20.0)))[0]
    assert s.cube.shape == (ROWS, COLS, 4)
    np.testing.assert_array_equal(s.wavelengths, centres)
    np.testing.assert_allclose(s.reference_endmembers[:2], [[0.2] * 4, [0.5] * 4], atol=1e-6)
    np.testing.assert_allclose(s.reference_endmembers[2], np.interp(centres, wl, e[2]), atol=1e-5)
    with pytest.raises(InputError, match="outside"):
        simulate(a, e, wavelengths=wl, sensor=(np.array([900.0, 1100.0]), np.array([10.0, 10.0])))
    with pytest.raises(InputError, match="no wavelengths"):
        simulate(a, e, sensor=(centres, np.full(4, 20.0)))


@pytest.mark.parametrize("name, value", [
    ("snr_db", float("nan")), ("snr_db", float("inf")), ("variability", float("nan")),
    ("variability", float("inf")), ("variability", -0.1), ("corr_px", 0.0), ("corr_px", float("nan")),
    ("seed", -1), ("seed", 1.5), ("noise", "pink"),
])
def test_bad_numeric_parameters_are_refused_by_name(name, value):
    # NaN / Inf must never reach the cube: each is refused, naming the parameter (not a flag)
    e, wl = spectra()
    with pytest.raises(ParameterError) as err:
        simulate(maps(1), e, wavelengths=wl, **{name: value})
    assert err.value.name == name and str(err.value).startswith(f"{name}=") and "--" not in str(err.value)


def test_p_mismatch_raises():
    e, _ = spectra(p=4)
    with pytest.raises(InputError, match="3 endmember maps but 4"):
        simulate(maps(), e)


def test_names_must_name_every_endmember():
    # one name for three endmembers was kept as the truth's names (evaluate refused them only
    # later); a string was split into one-letter names
    e, _ = spectra()
    with pytest.raises(InputError, match=r"^names: 1 names for 3 endmembers; expected one name per endmember"):
        simulate(maps(1), e, names=["soil"])
    with pytest.raises(InputError, match=r"^names: 'abc' is one string; expected a list of 3 names"):
        simulate(maps(1), e, names="abc")
    assert simulate(maps(1), e, names=("a", "b", "c"))[0].to_scene().truth.names == ["a", "b", "c"]


def test_to_scene_carries_truth():
    a = maps(1)
    e, wl = spectra()
    sc = simulate(a, e, wavelengths=wl, snr_db=30)[0].to_scene("x")
    assert sc.shape == (ROWS, COLS, BANDS)
    np.testing.assert_array_equal(sc.truth.abundances, a[0])
    np.testing.assert_array_equal(sc.truth.endmembers, e)


def test_load_sources(tmp_path):
    a = maps(3)
    np.savez(tmp_path / "stack.npz", abundances=a)
    np.savez(tmp_path / "one.npz", abundances=a[0])
    (tmp_path / "synth").mkdir()
    np.savez(tmp_path / "synth" / "abundances.npz", abundances=a)
    assert load_abundance_maps(tmp_path / "stack.npz")[0].shape == (3, ROWS, COLS, P)
    assert load_abundance_maps(tmp_path / "one.npz")[0].shape == (1, ROWS, COLS, P)
    assert load_abundance_maps(tmp_path / "synth")[0].shape == (3, ROWS, COLS, P)
    np.savez(tmp_path / "bad.npz", cube=a)
    with pytest.raises(InputError, match="no 'abundances'"):
        load_abundance_maps(tmp_path / "bad.npz")
    np.savez(tmp_path / "complex.npz", abundances=a.astype(complex))  # never silently made real
    with pytest.raises(InputError, match="complex.npz: 'abundances' has complex type"):
        load_abundance_maps(tmp_path / "complex.npz")
    (tmp_path / "s.csv").write_text("centre,fwhm\n500,10\n600,12\n")
    c, f = load_sensor(tmp_path / "s.csv")
    np.testing.assert_array_equal(c, [500, 600])
    np.testing.assert_array_equal(f, [10, 12])
    (tmp_path / "um.csv").write_text("0.5,0.01\n0.6,0.012\n")
    c, f = load_sensor(tmp_path / "um.csv")
    np.testing.assert_allclose(c, [500, 600])
    np.testing.assert_allclose(f, [10, 12])
    # band number, centre, fwhm without labels: which column is which cannot be told
    (tmp_path / "three.csv").write_text("1,500,10\n2,600,12\n3,700,12\n")
    with pytest.raises(InputError, match="three.csv: rows of 3 unlabelled columns; expected two"):
        load_sensor(tmp_path / "three.csv")


# ----------------------------------------------------------------------------- CLI
@pytest.fixture
def inputs(tmp_path):
    a = maps(2)
    e, wl = spectra()
    np.savez(tmp_path / "maps.npz", abundances=a)
    write_csv(tmp_path / "em.csv", e, wl, ["soil", "tree", "water"])
    return tmp_path, a, e, wl


def test_cli_simulate_round_trip(inputs, run_cli):
    from unmixgen.io import read_scene

    tmp, a, e, wl = inputs
    out = tmp / "sim"
    code, stdout, err = run_cli("simulate", "--abundances", tmp / "maps.npz", "--endmembers", tmp / "em.csv",
                                "--out", out)
    assert code == 0, err
    for i in range(2):
        with np.load(out / f"scene_{i:03d}.npz") as z:
            np.testing.assert_array_equal(z["abundances"], a[i])
            np.testing.assert_array_equal(z["clean"], z["abundances"] @ z["endmembers"])
            np.testing.assert_array_equal(z["cube"], z["clean"])
            np.testing.assert_allclose(z["endmembers"], e, rtol=1e-6)
            np.testing.assert_allclose(z["wavelengths"], wl, atol=1e-5)
        assert (out / f"scene_{i:03d}.hdr").is_file() and (out / f"scene_{i:03d}.mat").is_file()
    sc = read_scene(out / "scene_001.mat")
    assert sc.shape == (ROWS, COLS, BANDS)
    np.testing.assert_allclose(sc.truth.abundances, a[1], atol=1e-6)
    np.testing.assert_allclose(sc.truth.endmembers, e, rtol=1e-6)
    np.testing.assert_allclose(sc.load(), a[1] @ e, rtol=1e-5)
    envi = read_scene(out / "scene_000.hdr")
    np.testing.assert_allclose(envi.load(), a[0] @ e, rtol=1e-6)
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "simulate" and run["scenes"] == 2
    # existing output without --overwrite: one line, exit 2
    code, _, err = run_cli("simulate", "--abundances", tmp / "maps.npz", "--endmembers", tmp / "em.csv",
                           "--out", out)
    assert code == 2 and "exists" in err and err.strip().count("\n") == 0


def test_cli_simulate_pairs_named_maps_with_named_spectra(inputs, run_cli):
    # a synthesize folder names its maps (the model's names); spectra named the same in another
    # order were paired by position, so "water" maps got the soil spectrum without a word
    tmp, a, e, wl = inputs
    np.savez(tmp / "named.npz", abundances=a[..., [2, 0, 1]], names=np.array(["Water", "soil", "tree"]))
    code, _, err = run_cli("simulate", "-a", tmp / "named.npz", "-e", tmp / "em.csv", "--out", tmp / "o")
    assert code == 0 and "re-ordered by name" in err, err
    with np.load(tmp / "o" / "scene_000.npz") as z:
        np.testing.assert_array_equal(z["abundances"], a[0])  # the spectra's order: soil, tree, water
    assert "re-ordered" in json.loads((tmp / "o" / "run.json").read_text())["parameters"]["maps_paired"]
    # other materials: by position, said; unnamed maps (em1, ...): by position, nothing said
    np.savez(tmp / "other.npz", abundances=a, names=np.array(["rock", "sand", "snow"]))
    code, _, err = run_cli("simulate", "-a", tmp / "other.npz", "-e", tmp / "em.csv", "--out", tmp / "o2")
    assert code == 0 and "paired by position" in err, err
    with np.load(tmp / "o2" / "scene_000.npz") as z:
        np.testing.assert_array_equal(z["abundances"], a[0])
    np.savez(tmp / "scalar.npz", abundances=a, names=np.array("water"))  # iterating a 0-d array was a TypeError
    code, _, err = run_cli("simulate", "-a", tmp / "scalar.npz", "-e", tmp / "em.csv", "--out", tmp / "o4")
    assert code == 0 and "paired" not in err, err
    np.savez(tmp / "unnamed.npz", abundances=a, names=np.array(["em1", "em2", "em3"]))
    code, _, err = run_cli("simulate", "-a", tmp / "unnamed.npz", "-e", tmp / "em.csv", "--out", tmp / "o3")
    assert code == 0 and "paired" not in err and "re-ordered" not in err, err


def test_cli_simulate_refuses_maps_that_are_not_abundances(inputs, run_cli):
    tmp, a, e, wl = inputs
    for name, bad, message in (("neg.npz", 2 * a - 0.5, "negative abundance"), ("sum.npz", 0.5 * a, "sum-to-one")):
        np.savez(tmp / name, abundances=bad)
        out = tmp / f"sim_{name}"
        code, _, err = run_cli("simulate", "-a", tmp / name, "-e", tmp / "em.csv", "--out", out)
        assert code == 2 and name in err and message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_cli_simulate_noise_variability_sensor_tif(inputs, run_cli):
    tmp, a, e, wl = inputs
    (tmp / "sensor.csv").write_text("centre,fwhm\n" + "\n".join(f"{c},15" for c in range(500, 860, 20)) + "\n")
    out = tmp / "sim2"
    code, _, err = run_cli("simulate", "-a", tmp / "maps.npz", "-e", tmp / "em.csv", "--snr", "20",
                           "--noise", "signal", "--variability", "0.05", "--sensor", tmp / "sensor.csv",
                           "--format", "tif", "--seed", "4", "--out", out)
    assert code == 0, err
    with np.load(out / "scene_000.npz") as z:
        assert z["cube"].shape == (ROWS, COLS, 18)
        assert z["pixel_endmembers"].shape == (ROWS, COLS, P, 18)
        assert z["endmembers"].shape == (P, 18)  # the reference set: the file reads as a scene with truth
        assert z["scales"].shape == (ROWS, COLS, P)
        np.testing.assert_allclose(z["wavelengths"], np.arange(500, 860, 20))
        assert snr_db(z["clean"], z["cube"]) == pytest.approx(20.0, abs=0.6)
    assert (out / "scene_001.tif").is_file()
    for args in (("info", out / "scene_000.npz"), ("unmix", out / "scene_000.npz", "-p", "3", "--method", "vca",
                                                   "--out", tmp / "sim2run", "--no-figures")):
        code, _, err = run_cli(*args)
        assert code == 0, err


def test_cli_simulate_bad_inputs(inputs, run_cli):
    tmp, a, e, wl = inputs
    write_csv(tmp / "em4.csv", np.vstack([e, e[:1]]), wl)
    code, _, err = run_cli("simulate", "-a", tmp / "maps.npz", "-e", tmp / "em4.csv", "--out", tmp / "o1")
    assert code == 2 and "3 endmember maps" in err and "4" in err
    (tmp / "far.csv").write_text("centre,fwhm\n1500,10\n1600,10\n")
    code, _, err = run_cli("simulate", "-a", tmp / "maps.npz", "-e", tmp / "em.csv", "--sensor", tmp / "far.csv",
                           "--out", tmp / "o2")
    assert code == 2 and "outside" in err and err.strip().count("\n") == 0
    assert not (tmp / "o1").exists() and not (tmp / "o2").exists()



def test_cli_simulate_refuses_an_endmember_csv_without_a_header(inputs, run_cli):
    """The first row is the header: a CSV of numbers only lost its first band as column names
    (a 40-band library simulated 39-band scenes, silently)."""
    tmp, a, e, wl = inputs
    lines = (tmp / "em.csv").read_text().splitlines()
    (tmp / "bare.csv").write_text("\n".join(lines[1:]) + "\n")
    code, _, err = run_cli("simulate", "-a", tmp / "maps.npz", "-e", tmp / "bare.csv", "--out", tmp / "o")
    assert code == 2 and "bare.csv" in err and "header" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp / "o").exists()



def test_cli_simulate_refuses_an_snr_for_a_signal_that_is_zero(inputs, run_cli):
    """SNR is signal power over noise power: with zero spectra no noise level gives it, and the
    scenes were written noise-free under the requested --snr (a NaN 'measured' SNR, exit 0)."""
    tmp, a, e, wl = inputs
    write_csv(tmp / "zero.csv", np.zeros_like(e), wl)
    for kind in ("white", "signal"):
        code, _, err = run_cli("simulate", "-a", tmp / "maps.npz", "-e", tmp / "zero.csv", "--snr", "30",
                               "--noise", kind, "--out", tmp / "o")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert not (tmp / "o").exists()
    assert "--snr 30" in err


def fake_library(path, names):
    """A tiny USGS-1995-layout library: wavelengths in um, not monotonic (overlap), spectra from col 3."""
    wl = np.concatenate([np.linspace(0.40, 0.70, 20), np.linspace(0.68, 1.00, 20)])
    rng = np.random.default_rng(0)
    data = np.zeros((40, 3 + len(names)))
    data[:, 0] = wl
    data[:, 3:] = 0.2 + 0.6 * rng.random((1, len(names))) + 0.05 * np.sin(wl[:, None] * 20)
    allnames = ["Wavelengths in microns", "Resolution", "Channel"] + names
    width = 29
    arr = np.array([list(n.ljust(width).encode("latin1")) for n in allnames], dtype=np.uint8)
    sio.savemat(path, {"datalib": data, "names": arr})
    return path


def test_cli_simulate_library_names(tmp_path, run_cli):
    lib = fake_library(tmp_path / "lib.mat", ["Kaolinite CM9", "Alunite GDS84", "Muscovite GDS107"])
    np.savez(tmp_path / "maps.npz", abundances=maps(1))
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", f"{lib}:kaolin,ALUNITE,muscovite",
                           "--out", tmp_path / "o")
    assert code == 0, err
    with np.load(tmp_path / "o" / "scene_000.npz") as z:
        assert z["cube"].shape == (ROWS, COLS, 40)
        assert np.all(np.diff(z["wavelengths"]) > 0)
        assert [str(n) for n in z["endmember_names"]] == ["Kaolinite CM9", "Alunite GDS84", "Muscovite GDS107"]
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", f"{lib}:kaolin,alunit,unobtainium",
                           "--out", tmp_path / "o2")
    assert code == 2 and "unobtainium" in err


def test_cli_simulate_usgs_library(shared_data, tmp_path, run_cli):
    lib = shared_data / "usgs_library" / "USGS_1995_Library.mat"
    np.savez(tmp_path / "maps.npz", abundances=maps(1))
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", f"{lib}:kaolinite,alunite,muscovite",
                           "--snr", "30", "--out", tmp_path / "o")
    assert code == 0, err
    with np.load(tmp_path / "o" / "scene_000.npz") as z:
        assert z["cube"].shape == (ROWS, COLS, 224)
        assert z["wavelengths"][0] == pytest.approx(383, abs=2)


def test_cli_evaluate_synthesis(tmp_path, run_cli):
    rng_maps = lambda n, seed: maps(n, 16, 16, 3, seed)  # noqa: E731
    np.savez(tmp_path / "ref.npz", heldout=rng_maps(6, 1), floor=rng_maps(6, 2), train=rng_maps(10, 3))
    np.savez(tmp_path / "samples.npz", abundances=rng_maps(8, 4))
    code, out, err = run_cli("evaluate-synthesis", tmp_path / "samples.npz", "--reference", tmp_path / "ref.npz")
    assert code == 0, err
    for word in ("model", "dirichlet", "grf", "floor", "memorization"):
        assert word in out
    code, out, err = run_cli("evaluate-synthesis", tmp_path / "samples.npz", "--reference", tmp_path / "ref.npz",
                             "--json", "--count", "5")
    assert code == 0, err
    res = json.loads(out)
    assert res["n_samples"] == 5 and set(res["rows"]) == {"model", "dirichlet", "grf", "floor"}
    # reference given as plain abundances: model row only
    np.savez(tmp_path / "held.npz", abundances=rng_maps(4, 5))
    code, out, _ = run_cli("evaluate-synthesis", tmp_path / "samples.npz", "--reference", tmp_path / "held.npz",
                           "--json")
    assert code == 0 and set(json.loads(out)["rows"]) == {"model"}
    # size mismatch: one line, exit 2
    np.savez(tmp_path / "small.npz", abundances=maps(3, 8, 8, 3))
    code, _, err = run_cli("evaluate-synthesis", tmp_path / "small.npz", "--reference", tmp_path / "ref.npz")
    assert code == 2 and "8x8" in err and "16x16" in err and err.strip().count("\n") == 0
    code, _, err = run_cli("evaluate-synthesis", tmp_path / "samples.npz")
    assert code == 2 and "--reference" in err



@pytest.mark.parametrize("ref", [lambda: {"heldout": np.ones((2, 16, 16, 3))},
                                 lambda: {"heldout": maps(4, 8, 8, 3, 1)},
                                 lambda: {"heldout": maps(4, 16, 16, 3, 1), "floor": maps(4, 8, 8, 3, 2)},
                                 lambda: {"heldout": maps(4, 16, 16, 3, 1), "train": maps(4, 16, 16, 2, 3)}],
                         ids=["no simplex", "8x8", "floor 8x8", "train p=2"])
def test_cli_evaluate_synthesis_names_the_reference_it_refuses(tmp_path, run_cli, ref):
    # held-out, floor and training maps that do not fit were refused without naming the file
    np.savez(tmp_path / "ref.npz", **ref())
    np.savez(tmp_path / "samples.npz", abundances=maps(4, 16, 16, 3, 5))
    code, _, err = run_cli("evaluate-synthesis", tmp_path / "samples.npz", "--reference", tmp_path / "ref.npz")
    assert code == 2 and str(tmp_path / "ref.npz") in err and len(err.strip().splitlines()) == 1, err


def test_cli_evaluate_synthesis_refuses_a_negative_seed(tmp_path, run_cli, monkeypatch):
    """--seed -1 was an internal error (exit 1) from numpy's generator; it is bad input, refused
    before any model is loaded or sampled."""
    import unmixgen.priors.abundance.model as model_mod

    np.savez(tmp_path / "ref.npz", heldout=maps(4, 16, 16, 3, 1), train=maps(4, 16, 16, 3, 3))
    np.savez(tmp_path / "samples.npz", abundances=maps(4, 16, 16, 3, 4))
    code, _, err = run_cli("evaluate-synthesis", tmp_path / "samples.npz", "--reference", tmp_path / "ref.npz",
                           "--seed", "-1")
    assert code == 2 and "--seed -1" in err and len(err.strip().splitlines()) == 1, err
    fake = FakeModel()
    monkeypatch.setattr(model_mod, "load_model", lambda path, device="cpu": fake)
    (tmp_path / "model").mkdir()
    code, _, err = run_cli("evaluate-synthesis", tmp_path / "model", "--seed", "-1")
    assert code == 2 and "--seed -1" in err and len(err.strip().splitlines()) == 1, err
    assert fake.calls == []


class FakeModel:
    """Stands in for a trained AbundanceModel: the CLI's model path without training."""

    n_endmembers = 3
    patch_size = 16

    def __init__(self):
        self.calls = []

    def holdout(self):
        return {"heldout": maps(5, 16, 16, 3, 11), "floor": maps(5, 16, 16, 3, 12),
                "train": maps(9, 16, 16, 3, 13)}

    def sample(self, n, *, size=None, sampler="ddim", steps=None, seed=0, progress=True, **kw):
        self.calls.append((n, size, sampler, steps, seed))
        rows, cols = (size, size) if isinstance(size, int) else size  # N or (rows, cols), as the model takes
        return maps(n, rows, cols, 3, 100 + seed)


def test_cli_evaluate_synthesis_model_folder(tmp_path, run_cli, monkeypatch):
    import unmixgen.priors.abundance.model as model_mod

    fake = FakeModel()
    monkeypatch.setattr(model_mod, "load_model", lambda path, device="cpu": fake)
    (tmp_path / "model").mkdir()
    code, out, err = run_cli("evaluate-synthesis", tmp_path / "model", "--sampler", "dpm", "--steps", "20", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert fake.calls == [(5, (16, 16), "dpm", 20, 0)]  # count = number of held-out maps, their size
    assert set(res["rows"]) == {"model", "dirichlet", "grf", "floor"} and res["sampler"] == "dpm"
    # samples folder scored against the model's held-out blocks
    (tmp_path / "synth").mkdir()
    np.savez(tmp_path / "synth" / "abundances.npz", abundances=maps(7, 16, 16, 3, 20))
    code, out, err = run_cli("evaluate-synthesis", tmp_path / "synth", "--reference", tmp_path / "model",
                             "--json")
    assert code == 0, err
    assert json.loads(out)["n_samples"] == 7
    code, _, err = run_cli("evaluate-synthesis", tmp_path / "model", "--steps", "0")
    assert code == 2 and "--steps" in err


def test_sources_result_folder_and_scene_sensor(tmp_path):
    from unmixgen.io import write_scene
    from unmixgen.scene import Scene

    a = maps(1)[0]
    (tmp_path / "run").mkdir()
    np.savez(tmp_path / "run" / "result.npz", abundances=a, endmembers=spectra()[0],
             names=np.array(["x", "y", "z"]))
    got, names = load_abundance_maps(tmp_path / "run")
    np.testing.assert_array_equal(got[0], a)
    assert names == ["x", "y", "z"]
    bad = a.copy()
    bad[0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", abundances=bad)
    with pytest.raises(InputError, match="1 invalid"):
        load_abundance_maps(tmp_path / "nan.npz")
    wl = np.array([500.0, 550.0, 610.0])
    write_scene(Scene(np.ones((2, 3, 3), np.float32), wavelengths=wl, fwhm=[9.0, 10.0, 11.0]),
                tmp_path / "sensor.npz")
    c, f = load_sensor(tmp_path / "sensor.npz")
    np.testing.assert_allclose(c, wl)
    np.testing.assert_allclose(f, [9, 10, 11])
    write_scene(Scene(np.ones((2, 3, 3), np.float32), wavelengths=wl), tmp_path / "nofwhm.npz")
    np.testing.assert_allclose(load_sensor(tmp_path / "nofwhm.npz")[1], np.gradient(wl))


def deleted_channel_library(path):
    """`fake_library` whose Alunite has two channels deleted as USGS marks them (-1.23e34)."""
    fake_library(path, ["Kaolinite CM9", "Alunite GDS84", "Muscovite GDS107"])
    d = sio.loadmat(path)
    data = d["datalib"]
    order = np.argsort(data[:, 0], kind="stable")
    data[order[[10, 11]], 4] = -1.23e34  # two neighbouring channels of the sorted grid
    sio.savemat(path, {"datalib": data, "names": d["names"]})
    return path, np.sort(data[:, 0]) * 1000, order


def test_library_deleted_channels_are_missing_not_reflectances(tmp_path, run_cli):
    from unmixgen.runs.endmembers import fit_to_bands, load_endmembers

    lib, wl, order = deleted_channel_library(tmp_path / "lib.mat")
    em = load_endmembers(f"{lib}:kaolin,alunite,muscovite")
    assert np.isnan(em.spectra[1, [10, 11]]).all() and np.isfinite(np.delete(em.spectra, [10, 11], axis=1)).all()
    # on the library's own grid the deleted channels are not covered; on another grid the bands next to them
    E, covered = fit_to_bands(em, wl, wl.size)
    assert covered.sum() == wl.size - 2 and not covered[[10, 11]].any()
    mid = (wl[:-1] + wl[1:]) / 2
    E, covered = fit_to_bands(em, mid, mid.size)
    assert not covered[[9, 10, 11]].any() and covered[[8, 12]].all() and np.isfinite(E[:, covered]).all()
    # simulate mixes on the channels every spectrum has, and says so
    np.savez(tmp_path / "maps.npz", abundances=maps(1))
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", f"{lib}:kaolin,alunite,muscovite",
                           "--out", tmp_path / "o")
    assert code == 0 and "2 channels deleted" in err, err
    with np.load(tmp_path / "o" / "scene_000.npz") as z:
        assert z["cube"].shape == (ROWS, COLS, 38) and np.isfinite(z["cube"]).all()
    # unmix with them leaves those bands out; the answer is FCLS on the others
    from unmixgen.io import read_scene, write_scene
    from unmixgen.scene import Scene
    from unmixgen.unmix.inversion import fcls

    clean = em.spectra.copy()
    clean[1, [10, 11]] = 0.5  # the scene itself has those bands
    cube = (maps(1)[0] @ clean).astype(np.float32)
    write_scene(Scene(cube, wavelengths=wl), tmp_path / "scene.npz")
    code, _, err = run_cli("unmix", tmp_path / "scene.npz", "--endmembers-file", f"{lib}:kaolin,alunite,muscovite",
                           "--out", tmp_path / "u")
    assert code == 0 and "2 scene bands" in err, err
    keep = np.ones(wl.size, bool)
    keep[[10, 11]] = False
    ref = fcls(read_scene(tmp_path / "scene.npz").valid_pixels()[:, keep], em.spectra[:, keep])
    with np.load(tmp_path / "u" / "result.npz") as r:
        np.testing.assert_allclose(r["abundances"].reshape(-1, 3), ref, atol=1e-4)


@pytest.mark.parametrize("case", ["negative", "dip"])
def test_negative_endmembers(tmp_path, run_cli, case):
    """A spectrum with no positive value is no reflectance (exit 2); one dipping well below zero
    is used with a warning."""
    e, wl = spectra()
    if case == "negative":
        e[1] = -e[1]
    else:
        e[1, 5] = -0.2 * e[1].max()
    write_csv(tmp_path / "E.csv", e, wl)
    np.savez(tmp_path / "maps.npz", abundances=maps(1))
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "E.csv", "--out", tmp_path / "o")
    if case == "negative":
        assert code == 2 and "'m1' has no positive value" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "o").exists()
    else:
        assert code == 0 and "'m1' goes down to" in err, err


def test_cli_simulate_spreads_the_noise_over_the_bands_as_a_csv_or_a_scene_says(inputs, run_cli):
    """--band-noise: each band's noise follows the profile (a CSV, or a scene's own noise
    estimated per band) at the same global SNR; bad profiles are one line, exit 2, nothing
    written."""
    tmp, a, e, wl = inputs
    profile = np.geomspace(1.0, 20.0, BANDS)
    (tmp / "noise.csv").write_text("noise_std\n" + "\n".join(f"{v:.6f}" for v in profile) + "\n")
    np.savez(tmp / "big.npz", abundances=maps(1, rows=40, cols=45))
    runs = {"csv": ("-a", tmp / "big.npz", "--band-noise", tmp / "noise.csv")}
    out = {}
    for name, extra in runs.items():
        out[name] = tmp / f"sim_{name}"
        code, _, err = run_cli("simulate", "-e", tmp / "em.csv", "--snr", "20", "--out", out[name], *extra)
        assert code == 0, err
    # the first scene's own noise, estimated, as the profile of a second simulation
    out["scene"] = tmp / "sim_scene"
    code, _, err = run_cli("simulate", "-a", tmp / "big.npz", "-e", tmp / "em.csv", "--snr", "20", "--seed", "1",
                           "--band-noise", out["csv"] / "scene_000.npz", "--out", out["scene"])
    assert code == 0, err
    for name, folder in out.items():
        with np.load(folder / "scene_000.npz") as z:
            assert snr_db(z["clean"], z["cube"]) == pytest.approx(20.0, abs=0.3)
            var = (z["cube"] - z["clean"]).reshape(-1, BANDS).var(0)
        ratio = var[-5:].mean() / var[:5].mean()
        want = (profile[-5:] ** 2).mean() / (profile[:5] ** 2).mean()
        assert 0.6 * want < ratio < 1.6 * want, (name, ratio, want)
        rec = json.loads((folder / "run.json").read_text())
        assert 12 < rec["parameters"]["band_noise_std_range"] < 35
    (tmp / "short.csv").write_text("\n".join(["1.0"] * (BANDS - 1)) + "\n")
    (tmp / "zero.csv").write_text("\n".join(["1.0"] * (BANDS - 1) + ["0"]) + "\n")
    bad = tmp / "bad"
    for extra, words in ((("--band-noise", tmp / "noise.csv"), "--snr"),
                         (("--snr", "20", "--band-noise", tmp / "short.csv"), "short.csv"),
                         (("--snr", "20", "--band-noise", tmp / "zero.csv"), "zero.csv"),
                         (("--snr", "20", "--band-noise", out["csv"] / "endmembers.csv"), "noise_std"),
                         (("--snr", "20", "--band-noise", tmp / "maps.npz"), "maps.npz")):
        code, _, err = run_cli("simulate", "-a", tmp / "maps.npz", "-e", tmp / "em.csv", "--out", bad, *extra)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, (extra, err)
        assert not bad.exists()


def test_band_noise_of_a_scene_skips_its_bad_bands(tmp_path):
    # a real product flags its water-absorption bands (NaN there): the profile comes from the
    # good bands, and a bad band gets the largest noise
    from unmixgen.io import write_scene
    from unmixgen.runs.sources import load_band_noise
    from unmixgen.scene import Scene

    a = maps(1, rows=40, cols=45)[0]
    e, wl = spectra()
    profile = np.geomspace(1.0, 10.0, BANDS)
    sim = simulate(a, e, wavelengths=wl, snr_db=25, band_std=profile, seed=3)[0]
    cube = sim.cube.copy()
    cube[..., 7] = np.nan
    good = np.ones(BANDS, bool)
    good[7] = False
    write_scene(Scene(cube, wavelengths=wl, good_bands=good), tmp_path / "s.npz")
    std = load_band_noise(tmp_path / "s.npz")
    assert std.shape == (BANDS,) and np.all(np.isfinite(std))
    assert std[7] == std.max()
    keep = np.flatnonzero(good)
    ratio = (std[keep] / std[keep][0]) / (profile[keep] / profile[keep][0])
    assert np.all((ratio > 0.7) & (ratio < 1.4))


def test_band_noise_csv_refuses_unlabelled_columns_and_reads_a_byte_order_mark(tmp_path):
    # a headerless wavelength,std CSV took the wavelengths as the noise profile (silently: they
    # are positive); a CSV saved by Excel ("CSV UTF-8") starts with a byte-order mark, which made
    # the noise_std header, or the first number, unreadable
    from unmixgen.runs.sources import load_band_noise

    wl = np.linspace(450.0, 900.0, BANDS)
    std = np.geomspace(1.0, 20.0, BANDS)
    two = tmp_path / "two.csv"
    two.write_text("\n".join(f"{a},{b}" for a, b in zip(wl, std, strict=True)) + "\n")
    with pytest.raises(InputError, match=r"two\.csv: .*2 values.*noise_std"):
        load_band_noise(two)
    for name, text in (("header.csv", "noise_std\n"), ("numbers.csv", "")):
        path = tmp_path / name
        path.write_text(text + "\n".join(f"{v:.6f}" for v in std) + "\n", encoding="utf-8-sig")
        np.testing.assert_allclose(load_band_noise(path), std, rtol=1e-5)
    sensor = tmp_path / "sensor.csv"
    sensor.write_text("centre,fwhm\n" + "\n".join(f"{c},10" for c in wl) + "\n", encoding="utf-8-sig")
    np.testing.assert_allclose(load_sensor(sensor)[0], wl)


@pytest.mark.parametrize("kwargs", [{"snr_db": None}, {"snr_db": 25, "length": BANDS - 3}])
def test_a_noise_profile_without_noise_or_of_another_length_is_refused(kwargs):
    # band_std without snr_db was ignored without a word; one of the wrong length failed in numpy
    a = maps(1, rows=10, cols=12)[0]
    e, wl = spectra()
    std = np.ones(kwargs.pop("length", BANDS))
    with pytest.raises(ParameterError, match="band_std"):
        simulate(a, e, wavelengths=wl, band_std=std, **kwargs)


def test_cli_simulate_refuses_a_noise_kind_without_an_snr(inputs, run_cli):
    """``--noise signal`` without ``--snr`` wrote noise-free scenes without a word: the kind of
    noise needs a level. It is refused in one line, naming both flags, before anything is written."""
    tmp, a, e, wl = inputs
    for kind in ("signal", "white"):
        code, _, err = run_cli("simulate", "-a", tmp / "maps.npz", "-e", tmp / "em.csv", "--noise", kind,
                               "--out", tmp / "o")
        assert code == 2 and err.startswith(f"error: --noise {kind}:") and "--snr" in err, err
        assert len(err.strip().splitlines()) == 1 and not (tmp / "o").exists()


def test_cli_evaluate_synthesis_refuses_sampling_options_for_given_samples(tmp_path, run_cli):
    """``--sampler`` / ``--steps`` set how samples are drawn from a model; for given samples
    (a synthesize folder or .npz) they were dropped without a word. Refused in one line."""
    np.savez(tmp_path / "ref.npz", heldout=maps(4, 16, 16, 3, 1))
    np.savez(tmp_path / "samples.npz", abundances=maps(4, 16, 16, 3, 2))
    for args, flag in ((("--sampler", "dpm"), "--sampler dpm"), (("--steps", "5"), "--steps 5")):
        code, out, err = run_cli("evaluate-synthesis", tmp_path / "samples.npz", "--reference", tmp_path / "ref.npz",
                                 *args)
        assert code == 2 and err.startswith(f"error: {flag}:") and len(err.strip().splitlines()) == 1, err
        assert out == ""


# -- hunt 51: the finite check of a simulated cube reads it a block of rows at a time ---------------
def test_finite_where_valid_is_the_whole_cube_check():
    from unmixgen.simulate.scene import finite_where_valid

    rng = np.random.default_rng(0)
    cube = rng.random((9, 5, 4)).astype(np.float32)
    valid = rng.random((9, 5)) > 0.3
    for r, c, b, v in ((None, None, None, None), (7, 2, 1, np.nan), (0, 4, 3, np.inf), (8, 0, 0, -np.inf)):
        x = cube.copy()
        x[~valid] = np.nan  # no-data pixels: NaN in every band, never counted
        if r is not None:
            x[r, c, b] = v
        for rows in (1, 2, 64):
            assert finite_where_valid(x, valid, block_rows=rows) == bool(np.isfinite(x[valid]).all())
    assert not finite_where_valid(np.where(valid[..., None], np.nan, cube), valid)
