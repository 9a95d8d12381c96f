"""`unmixgen refine` and `unmixgen train-spectra` end to end, and their bad-input exits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from test_refine import tiny_prior
from test_spectra_prior import smooth_spectra
from unmixgen.io import write_scene
from unmixgen.refine.posterior import WEIGHTED_ROUNDS
from unmixgen.runs.folder import load_result, save_result
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import abundance_maps
from unmixgen.unmix.inversion import fcls

pytestmark = pytest.mark.usefixtures("torch_one_thread")
WL = np.arange(400.0, 2451.0, 50.0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("refine_cli")
    rng = np.random.default_rng(0)
    E = smooth_spectra(3, WL, seed=1)
    A = abundance_maps(14, 12, 3, rng)
    Y = (A @ E + rng.normal(0, 0.005, (14, 12, WL.size))).astype(np.float32)
    scene = Scene(Y, wavelengths=WL)
    write_scene(scene, root / "scene.npz")
    A0 = fcls(Y.reshape(-1, WL.size), E).reshape(14, 12, 3)
    (root / "init").mkdir()
    save_result(str(root / "init"), scene, endmembers=E, abundances=A0, figures=False)  # a str path works too
    other = Scene(Y[:10], wavelengths=WL)
    (root / "other").mkdir()
    save_result(root / "other", other, endmembers=E, abundances=A0[:10], figures=False)
    twin = Scene(Y[::-1].copy(), wavelengths=WL)  # another scene of the same size and sensor
    (root / "twin").mkdir()
    save_result(root / "twin", twin, endmembers=E, abundances=A0[::-1].copy(), figures=False)
    (root / "p2").mkdir()
    (root / "p4").mkdir()
    np.savez(root / "lib.npz", endmembers=smooth_spectra(30, WL), wavelengths=WL)
    return {"root": root, "scene": root / "scene.npz", "init": root / "init", "other": root / "other",
            "twin": root / "twin",
            "p2": tiny_prior(root / "p2", 2), "p4": tiny_prior(root / "p4", 4), "lib": root / "lib.npz"}


def test_train_spectra_then_refine(setup, run_cli):
    root = setup["root"]
    code, out, err = run_cli("train-spectra", setup["lib"], "--out", root / "sp", "--max-steps", "2", "--width", "8",
                             "--batch-size", "8", "--no-progress")
    assert code == 0, err
    code, out, err = run_cli("refine", setup["scene"], "--init", setup["init"], "--abundance-prior", setup["p2"],
                             "--spectra-prior", root / "sp", "--samples", "3", "--steps", "2", "--out", root / "ref",
                             "--no-progress")
    assert code == 0, err
    with np.load(root / "ref" / "result.npz") as z:
        for key in ("abundances", "abundances_std", "abundances_q05", "abundances_q95"):
            assert z[key].shape == (14, 12, 3)
        assert z["endmembers_std"].shape == z["endmembers"].shape == (3, WL.size)
        assert np.allclose(z["abundances"].sum(-1), 1, atol=1e-5) and (z["abundances"] >= 0).all()
    assert (root / "ref" / "abundances_std.png").is_file() and (root / "ref" / "run.json").is_file()
    rec = json.loads((root / "ref" / "run.json").read_text())["refine"]
    assert rec["lam"] == rec["prior_weight"]["chosen"] in rec["prior_weight"]["candidates"]
    assert "--samples 3: the std and 5 / 95 % quantiles" in err  # too few for intervals: said so


@pytest.mark.parametrize("extra, message", [
    (["--samples", "0"], "--samples 0"),
    (["--t0", "1.5"], "--t0 1.5"),
    (["--spectra-t0", "0"], "--spectra-t0 0"),
    (["--prior-weight", "-0.5"], "--prior-weight -0.5"),
    (["--prior-weight", "nan"], "--prior-weight nan"),
    (["--steps", "0"], "--steps 0"),
    (["--threads", "-1"], "--threads -1"),
    (["--seed", "-1"], "--seed -1"),  # as unmix refuses it (seed -1 and 2**32 - 1 were one stream)
    (["--samples", "100000000"], "GB available"),
])
def test_refine_bad_numbers(setup, run_cli, extra, message):
    out = setup["root"] / "bad"
    code, _, err = run_cli("refine", setup["scene"], "--init", setup["init"], "--abundance-prior", setup["p2"],
                           "--out", out, *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_refine_no_figures_writes_no_png_and_the_same_result(setup, run_cli):
    root = setup["root"]
    args = ["refine", setup["scene"], "--init", setup["init"], "--abundance-prior", setup["p2"], "--samples", "2",
            "--steps", "2", "--no-progress"]
    code, _, err = run_cli(*args, "--no-figures", "--out", root / "nofig")
    assert code == 0, err
    assert not list((root / "nofig").rglob("*.png")) and (root / "nofig" / "abundances_std.tif").is_file()
    code, _, err = run_cli(*args, "--out", root / "fig")
    assert code == 0, err
    assert (root / "fig" / "abundances_std.png").is_file()
    with np.load(root / "nofig" / "result.npz") as a, np.load(root / "fig" / "result.npz") as b:
        np.testing.assert_array_equal(a["abundances"], b["abundances"])


def test_refine_bad_inputs(setup, run_cli):
    out = setup["root"] / "bad2"
    cases = [
        (["--init", setup["other"], "--abundance-prior", setup["p2"]], "another scene"),
        (["--init", setup["twin"], "--abundance-prior", setup["p2"]], "another scene of the same size"),
        (["--init", setup["init"], "--abundance-prior", setup["p4"]], "p=4"),
        (["--init", setup["init"], "--abundance-prior", setup["p2"], "--spectra-prior", setup["p2"]],
         "expected kind 'spectra_prior'"),
    ]
    # a simulated scene file holds its truth as abundances / endmembers: not an init to refine
    with np.load(setup["scene"]) as z:
        cube = z[[k for k in z.files if z[k].ndim == 3][0]]
    init = load_result(setup["init"])
    np.savez(setup["root"] / "with_truth.npz", cube=cube, abundances=init["abundances"], endmembers=init["endmembers"],
             wavelengths=WL)
    cases.append((["--init", setup["root"] / "with_truth.npz", "--abundance-prior", setup["p2"]], "is a scene file"))
    for extra, message in cases:
        code, _, err = run_cli("refine", setup["scene"], *extra, "--out", out, "--no-progress")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()



def test_refine_never_replaces_its_priors(setup, run_cli, tmp_path):
    # the priors were no inputs of the output check: --out PRIOR --overwrite replaced the model
    # folder (it holds config.json, so it passed as an unmixgen output) with the refined result
    import hashlib
    import shutil

    from unmixgen.workflows.refinement import _shipped

    ab, sp = tmp_path / "ab", tmp_path / "sp"
    shutil.copytree(setup["p2"], ab)
    shutil.copytree(_shipped("spectra_prior"), sp)

    def digest():
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tmp_path.rglob("*")) if p.is_file()}

    before = digest()
    for out in (ab, sp):
        code, _, err = run_cli("refine", setup["scene"], "--init", setup["init"], "--abundance-prior", ab,
                               "--spectra-prior", sp, "--samples", "2", "--steps", "2", "--rounds", "1",
                               "--out", out, "--overwrite", "--no-progress")
        assert code == 2 and "input" in err and len(err.strip().splitlines()) == 1, (out, err)
    assert digest() == before

def test_refine_divides_out_the_brightness_of_a_scaled_init_and_keeps_it(setup, run_cli, monkeypatch):
    import unmixgen.refine.posterior as posterior

    root = setup["root"]
    rng = np.random.default_rng(2)
    with np.load(setup["scene"]) as z:
        Y = z[[k for k in z.files if z[k].ndim == 3][0]]
    b = rng.uniform(0.5, 2.0, Y.shape[:2]).astype(np.float32)
    b[0, 0] = np.nan  # a pixel without a brightness is refined as it is
    # a scene whose pixels carry that brightness: divided by it the linear model holds, so
    # refine's own test of the mixing model finds no brightness left to divide out
    Y = (Y * np.where(np.isfinite(b), b, 1.0)[..., None]).astype(np.float32)
    init = root / "scaled_init"
    init.mkdir()
    scene = Scene(Y, wavelengths=WL)
    scene_path = root / "bright_scene.npz"
    write_scene(scene, scene_path)
    with np.load(setup["init"] / "result.npz") as z:
        save_result(init, scene, endmembers=z["endmembers"], abundances=z["abundances"], figures=False,
                    extra={"brightness": b})
    seen = {}
    real = posterior.refine

    def spy(cube, *args, **kw):
        seen["cube"] = cube.copy()
        return real(cube, *args, **kw)

    monkeypatch.setattr(posterior, "refine", spy)
    out = root / "ref_scaled"
    code, _, err = run_cli("refine", scene_path, "--init", init, "--abundance-prior", setup["p2"],
                           "--samples", "2", "--steps", "2", "--out", out, "--no-progress")
    assert code == 0, err
    expected = Y / np.where(np.isfinite(b), b, 1.0)[..., None]
    np.testing.assert_allclose(seen["cube"], expected, rtol=1e-6)
    with np.load(out / "result.npz") as z:
        np.testing.assert_array_equal(z["brightness"], b)
    assert (out / "brightness.tif").is_file()
    assert json.loads((out / "run.json").read_text())["refine"]["mixing"]["model"] == "linear"
    # a brightness that does not fit the scene is refused in one line, nothing written
    bad = root / "bad_brightness"
    bad.mkdir()
    with np.load(setup["init"] / "result.npz") as z:
        save_result(bad, scene, endmembers=z["endmembers"], abundances=z["abundances"], figures=False,
                    extra={"brightness": -b})
    out2 = root / "ref_bad"
    code, _, err = run_cli("refine", scene_path, "--init", bad, "--abundance-prior", setup["p2"],
                           "--out", out2, "--no-progress")
    assert code == 2 and "brightness has negative" in err and len(err.strip().splitlines()) == 1
    assert not out2.exists()


def test_refine_refuses_inits_off_the_simplex_or_from_another_grid(setup, run_cli):
    root = setup["root"]
    with np.load(setup["init"] / "result.npz") as z:
        E, A0 = z["endmembers"], z["abundances"]
    with np.load(setup["scene"]) as z:
        Y = z[[k for k in z.files if z[k].ndim == 3][0]]
    cases = {
        # an unconstrained least-squares result: sums off one
        "ls_init": (Scene(Y, wavelengths=WL), 1.2 * A0, "not on the simplex"),
        # the same band count on another wavelength grid (another sensor)
        "shifted_init": (Scene(Y, wavelengths=WL + 30.0), A0, "differ from the scene's"),
    }
    for name, (scene, A, message) in cases.items():
        (root / name).mkdir()
        save_result(root / name, scene, endmembers=E, abundances=A, figures=False)
        out = root / f"ref_{name}"
        code, _, err = run_cli("refine", setup["scene"], "--init", root / name, "--abundance-prior", setup["p2"],
                               "--out", out, "--no-progress")
        assert code == 2 and message in err and str(root / name) in err, err
        assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_refine_leaves_bad_bands_out(setup, run_cli):
    """A band flagged bad (ENVI bbl) holding garbage changes nothing refined; the refined
    endmembers keep the init's values there, with an unknown (NaN) spread."""
    root = setup["root"]
    with np.load(setup["scene"]) as z:
        Y = z[[k for k in z.files if z[k].ndim == 3][0]]
    with np.load(setup["init"] / "result.npz") as z:
        E = z["endmembers"]
    good = np.ones(WL.size, bool)
    good[5] = False
    results = []
    for name, fill in (("clean", None), ("garbage", 50.0), ("nan", np.nan)):
        Yb = Y.copy()
        if fill is not None:
            Yb[..., 5] = fill
        scene = Scene(Yb, wavelengths=WL, good_bands=good)
        write_scene(scene, root / f"bbl_{name}.hdr")
        code, _, err = run_cli("refine", root / f"bbl_{name}.hdr", "--init", setup["init"], "--abundance-prior",
                               setup["p2"], "--samples", "2", "--steps", "2", "--out", root / f"ref_bbl_{name}",
                               "--no-progress")
        assert code == 0, err
        with np.load(root / f"ref_bbl_{name}" / "result.npz") as z:
            results.append({k: z[k] for k in ("abundances", "endmembers", "endmembers_std")})
    for r in results[1:]:
        for key in r:
            np.testing.assert_array_equal(r[key], results[0][key])
    np.testing.assert_array_equal(results[0]["endmembers"][:, 5], E[:, 5])
    assert np.isnan(results[0]["endmembers_std"][:, 5]).all() and np.isfinite(results[0]["endmembers_std"][:, good]).all()


def test_train_spectra_bad_sources_are_one_line_errors(setup, run_cli, tmp_path):
    from scipy.io import savemat

    (tmp_path / "corrupt.mat").write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    savemat(tmp_path / "text.mat", {"datalib": "hello"})
    savemat(tmp_path / "float_names.mat", {"datalib": np.column_stack([np.linspace(0.4, 2.5, 60), np.zeros((60, 2)),
                                                                       np.full((60, 30), 0.3)]),
                                           "names": np.full((33, 4), 0.5)})
    wl_um = np.linspace(0.4, 2.5, 60)
    spectra = 0.3 + 0.1 * np.sin(np.outer(np.arange(1, 31), wl_um)).T
    nan = spectra.copy()
    nan[3, 4] = np.nan
    savemat(tmp_path / "nan.mat", {"datalib": np.column_stack([wl_um, np.zeros((60, 2)), nan])})
    # a second source narrower than the first would be extended flat over the rest
    np.savez(tmp_path / "narrow.npz", endmembers=smooth_spectra(3, WL[WL <= 1000], seed=2),
             wavelengths=WL[WL <= 1000])
    cases = [([tmp_path / "corrupt.mat"], "cannot read as a MATLAB file"),
             ([tmp_path / "text.mat"], "expected numbers"),
             ([tmp_path / "float_names.mat"], "'names' is float64"),
             ([tmp_path / "nan.mat"], "NaN/Inf"),
             ([setup["lib"], tmp_path / "narrow.npz"], "less than the first source's")]
    for sources, message in cases:
        out = tmp_path / "sp"
        code, _, err = run_cli("train-spectra", *sources, "--out", out, "--max-steps", "2", "--no-progress")
        assert code == 2 and message in err and str(sources[-1]) in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_train_spectra_refuses_a_batch_that_cannot_fit(setup, run_cli, tmp_path):
    out = tmp_path / "sp"
    code, _, err = run_cli("train-spectra", setup["lib"], "--out", out, "--batch-size", "100000", "--max-steps", "1")
    assert code == 2 and "--batch-size 100000" in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_damaged_init_result_or_prior_is_refused_in_one_line(setup, run_cli):
    import shutil

    from unmixgen.nn import checkpoint as ck

    root = setup["root"]
    init = root / "trunc_init"
    shutil.copytree(setup["init"], init)
    data = (init / "result.npz").read_bytes()
    (init / "result.npz").write_bytes(data[: len(data) // 2])
    prior = root / "trunc_prior"
    shutil.copytree(setup["p2"], prior)
    weights = ck.latest_checkpoint(prior) / ck.EMA_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    out = root / "bad3"
    for extra, name in ((["--init", init, "--abundance-prior", setup["p2"]], "result.npz"),
                        (["--init", setup["init"], "--abundance-prior", prior], ck.EMA_FILE)):
        code, _, err = run_cli("refine", setup["scene"], *extra, "--out", out, "--no-progress")
        assert code == 2 and f"{name}: cannot read" in err and "damaged" in err, err
        assert len(err.strip().splitlines()) == 1 and not out.exists()
    code, _, err = run_cli("evaluate", "--truth", init / "result.npz", "--estimate", setup["init"])
    assert code == 2 and "result.npz: cannot read" in err, err


def test_valid_pixels_the_init_left_nan_are_refined_from_fcls(setup, run_cli):
    # an init run with another mask: every pixel valid in the scene gets refined abundances
    root = setup["root"]
    init = root / "holes_init"
    init.mkdir()
    with np.load(setup["init"] / "result.npz") as z:
        E, A0 = z["endmembers"], z["abundances"].copy()
    A0[0, 0] = A0[5, 7] = np.nan
    with np.load(setup["scene"]) as z:
        Y = z[[k for k in z.files if z[k].ndim == 3][0]]
    save_result(init, Scene(Y, wavelengths=WL), endmembers=E, abundances=A0, figures=False)
    out = root / "ref_holes"
    code, _, err = run_cli("refine", setup["scene"], "--init", init, "--abundance-prior", setup["p2"],
                           "--samples", "2", "--steps", "2", "--out", out, "--no-progress")
    assert code == 0, err
    assert "2 valid pixels of the scene have no init abundances" in err
    with np.load(out / "result.npz") as z:
        for key in ("abundances", "abundances_std", "abundances_q05", "abundances_q95"):
            assert np.isfinite(z[key]).all(), key
        assert np.allclose(z["abundances"].sum(-1), 1, atol=1e-5)
        assert np.isnan(z["init_abundances"][0, 0]).all()  # the init as it was given


def _without_wavelengths(setup, name: str):
    """The setup's scene and init written again without wavelengths: ``(scene path, init folder)``."""
    root = setup["root"]
    with np.load(setup["scene"]) as z:
        Y = z[[k for k in z.files if z[k].ndim == 3][0]]
    write_scene(Scene(Y), root / f"{name}.npz")
    init = root / f"{name}_init"
    init.mkdir()
    with np.load(setup["init"] / "result.npz") as z:
        save_result(init, Scene(Y), endmembers=z["endmembers"], abundances=z["abundances"], figures=False)
    return root / f"{name}.npz", init


def test_a_scene_without_wavelengths_keeps_its_endmembers_and_says_how_to_refine_them(setup, run_cli):
    root = setup["root"]
    scene, init = _without_wavelengths(setup, "nowl")
    out = root / "ref_nowl"
    code, _, err = run_cli("refine", scene, "--init", init, "--abundance-prior", setup["p2"],
                           "--samples", "8", "--steps", "2", "--out", out, "--no-progress")
    assert code == 0, err
    assert "no wavelengths" in err and "--wavelengths START:STOP" in err
    rec = json.loads((out / "run.json").read_text())["refine"]
    assert rec["spectra_t0"] is None and rec["spectra_timesteps"] == []  # no endmember sampling ran
    with np.load(out / "result.npz") as z, np.load(init / "result.npz") as z0:
        np.testing.assert_array_equal(z["endmembers"], z0["endmembers"])


def test_refine_refuses_a_fingerprint_that_is_not_numbers(setup, run_cli, tmp_path):
    """The scene fingerprint is read from the init's file: text there is one line, exit 2."""
    init = tmp_path / "text_fp"
    init.mkdir()
    with np.load(setup["init"] / "result.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["scene_fingerprint"] = np.array(["not", "numbers"])
    np.savez(init / "result.npz", **arrays)
    out = tmp_path / "out"
    code, _, err = run_cli("refine", setup["scene"], "--init", init, "--abundance-prior", setup["p2"], "--out", out,
                           "--no-progress")
    assert code == 2 and "scene_fingerprint" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_train_spectra_on_a_library_with_deleted_channels(run_cli, tmp_path):
    """USGS marks deleted channels -1.23e34: a gap inside a spectrum is filled along wavelength,
    a spectrum not measured at the range's end is left out; never trained on as reflectance."""
    from scipy.io import savemat

    from unmixgen.workflows.refinement import _training_spectra

    wl_um = np.linspace(0.4, 2.5, 60)
    spectra = 0.3 + 0.1 * np.sin(np.outer(np.arange(1, 31), wl_um)).T
    spectra[20:23, 4] = -1.23e34  # inside spectrum 4's range
    spectra[0:5, 7] = -1.23e34  # spectrum 7 starts late
    savemat(tmp_path / "lib.mat", {"datalib": np.column_stack([wl_um, np.zeros((60, 2)), spectra])})
    with pytest.warns(UserWarning, match="1 spectra not measured over the whole range left out; 1 with deleted"):
        s, wl, _ = _training_spectra([tmp_path / "lib.mat"])
    assert s.shape == (29, 60) and np.isfinite(s).all() and s.min() > 0.1
    expect = np.interp(wl_um[20:23], wl_um[[19, 23]], spectra[[19, 23], 4])
    np.testing.assert_allclose(s[4, 20:23], expect)
    code, _, err = run_cli("train-spectra", tmp_path / "lib.mat", "--out", tmp_path / "sp", "--max-steps", "2",
                           "--no-progress")
    assert code == 0 and "left out" in err, err


def test_rounds_follow_where_the_init_endmembers_came_from(setup, run_cli, tmp_path):
    """Endmembers extracted from the scene get the prior-weight rule (two rounds at weight >= 1),
    given ones one round: a refit only adds noise to correct endmembers."""
    from unmixgen.workflows.refinement import endmember_origin

    root = setup["root"]
    code, _, err = run_cli("unmix", setup["scene"], "-p", "3", "--out", tmp_path / "blind", "--no-figures")
    assert code == 0, err
    np.savez(tmp_path / "E.npz", endmembers=smooth_spectra(3, WL, seed=1), wavelengths=WL)
    code, _, err = run_cli("unmix", setup["scene"], "--endmembers-file", tmp_path / "E.npz", "--out",
                           tmp_path / "given", "--no-figures")
    assert code == 0, err
    code, _, err = run_cli("unmix", setup["scene"], "--endmembers-file", tmp_path / "blind", "--out",
                           tmp_path / "chained", "--no-figures")
    assert code == 0, err
    runs = {name: json.loads((tmp_path / name / "run.json").read_text()) for name in ("blind", "given", "chained")}
    assert [endmember_origin(runs[n]) for n in ("blind", "given", "chained")] == ["scene", "given", "scene"]
    assert endmember_origin({"command": "unmix", "parameters": {"method": "hybridstu"},
                             "endmember_source": "extracted by auto"}) == "scene"
    assert endmember_origin({"command": "unmix", "parameters": {"method": "hybridstu", "endmembers_file":
                                                                "lib.mat:kaolinite,alunite"}}) == "given"
    assert endmember_origin({"command": "unmix", "parameters": {"method": "hybridstu", "model": "m"}}) == "unknown"
    assert endmember_origin(None) == endmember_origin({"command": "refine"}) == "unknown"
    for name, weight, rounds in (("blind", "2", WEIGHTED_ROUNDS), ("blind", "0.5", 1), ("given", "2", 1)):
        out = tmp_path / f"ref-{name}-{weight}"
        code, _, err = run_cli("refine", setup["scene"], "--init", tmp_path / name, "--abundance-prior", setup["p2"],
                               "--samples", "2", "--steps", "2", "--prior-weight", weight, "--out", out,
                               "--no-progress")
        assert code == 0, err
        rec = json.loads((out / "run.json").read_text())["refine"]
        assert rec["rounds"] == rounds and rec["init_endmembers_origin"] == ("scene" if name == "blind" else "given")
        assert rec["endmembers_fitted"] is (name == "blind")  # an extracted init fitted these pixels
        assert rec["rounds_from"].startswith("auto")
    code, _, err = run_cli("refine", setup["scene"], "--init", tmp_path / "blind", "--abundance-prior", setup["p2"],
                           "--samples", "2", "--steps", "2", "--prior-weight", "2", "--rounds", "1", "--out",
                           root / "ref-one", "--no-progress")
    assert code == 0 and json.loads((root / "ref-one" / "run.json").read_text())["refine"]["rounds"] == 1, err


def _scene_and_fcls_init(setup, cube: np.ndarray, name: str) -> Path:
    """Write ``cube`` as ``ROOT/NAME.npz`` and its FCLS result with the setup's endmembers as
    ``ROOT/NAME_fcls``; returns the result folder."""
    root = setup["root"]
    scene = Scene(cube, wavelengths=WL)
    write_scene(scene, root / f"{name}.npz")
    with np.load(setup["init"] / "result.npz") as r:
        E = r["endmembers"]
    init = root / f"{name}_fcls"
    init.mkdir()
    A = fcls(cube.reshape(-1, WL.size), E).reshape(*cube.shape[:2], E.shape[0])
    save_result(init, scene, endmembers=E, abundances=A, figures=False)
    return init


def test_refine_finds_a_varying_brightness_itself_and_writes_it(setup, run_cli):
    """An FCLS init of a scene whose pixels carry a brightness ``s a E``: refine picks the
    scaled model (auto), writes the brightness it divided out, and --mixing linear keeps the
    linear model; a bad --mixing is one line, exit 2, nothing written."""
    from scipy.ndimage import gaussian_filter

    root = setup["root"]
    with np.load(setup["scene"]) as z:
        Y = z[[k for k in z.files if z[k].ndim == 3][0]]
    z = gaussian_filter(np.random.default_rng(5).standard_normal(Y.shape[:2]), 2.0)
    s = np.exp(0.3 * z / z.std()).astype(np.float32)
    Yb = (Y * s[..., None]).astype(np.float32)
    init = _scene_and_fcls_init(setup, Yb, "varying")
    out = root / "ref_varying"
    code, _, err = run_cli("refine", root / "varying.npz", "--init", init, "--abundance-prior", setup["p2"],
                           "--samples", "2", "--steps", "2", "--out", out, "--no-progress")
    assert code == 0, err
    rec = json.loads((out / "run.json").read_text())
    assert rec["refine"]["mixing"]["model"] == "scaled" and "estimated by refine" in rec["brightness"]["model"]
    with np.load(out / "result.npz") as r:
        err = np.abs(r["brightness"] / s - 1)  # NNLS under noise with similar smooth endmembers
        assert np.median(err) < 0.02 and err.max() < 0.15
    assert (out / "brightness.tif").is_file()
    out_lin = root / "ref_varying_linear"
    code, _, err = run_cli("refine", root / "varying.npz", "--init", init, "--abundance-prior", setup["p2"],
                           "--samples", "2", "--steps", "2", "--mixing", "linear", "--out", out_lin, "--no-progress")
    assert code == 0, err
    with np.load(out_lin / "result.npz") as r:
        assert "brightness" not in r.files
    bad = root / "ref_varying_bad"
    code, _, err = run_cli("refine", root / "varying.npz", "--init", init, "--abundance-prior", setup["p2"],
                           "--mixing", "elmm", "--out", bad, "--no-progress")
    assert code == 2 and "mixing" in err and len(err.strip().splitlines()) == 1
    assert not bad.exists()


def test_refine_brightness_times_an_init_brightness_missing_at_some_pixels(setup, run_cli, monkeypatch):
    """A scaled init whose brightness is NaN or 0 at valid pixels (those are refined as they
    are, divided by 1) under refine's scaled model: the brightness written there is refine's
    own, not NaN or 0."""
    import unmixgen.refine.posterior as posterior

    root = setup["root"]
    with np.load(setup["scene"]) as z:
        Y = z[[k for k in z.files if z[k].ndim == 3][0]]
    b = np.random.default_rng(3).uniform(0.5, 2.0, Y.shape[:2]).astype(np.float32)
    b[0, 0], b[1, 1] = np.nan, 0.0
    scene = Scene((Y * np.where(b > 0, b, 1.0)[..., None]).astype(np.float32), wavelengths=WL)
    write_scene(scene, root / "dark_holes.npz")
    init = root / "dark_holes_init"
    init.mkdir()
    with np.load(setup["init"] / "result.npz") as z:
        save_result(init, scene, endmembers=z["endmembers"], abundances=z["abundances"], figures=False,
                    extra={"brightness": b})
    seen = {}
    real = posterior.refine

    def spy(*args, **kw):
        seen["r"] = real(*args, **kw)
        return seen["r"]

    monkeypatch.setattr(posterior, "refine", spy)
    out = root / "ref_dark_holes"
    code, _, err = run_cli("refine", root / "dark_holes.npz", "--init", init, "--abundance-prior", setup["p2"],
                           "--samples", "2", "--steps", "2", "--mixing", "scaled", "--out", out, "--no-progress")
    assert code == 0, err
    own = seen["r"].brightness
    with np.load(out / "result.npz") as z:
        assert np.isfinite(z["brightness"]).all() and (z["brightness"] > 0).all()
        np.testing.assert_allclose(z["brightness"], np.where(b > 0, b, 1.0) * own, rtol=1e-6)


def test_refine_result_takes_mixing_none_as_the_default(setup):
    from unmixgen.workflows.refinement import refine_result

    out = setup["root"] / "ref_mixing_none"
    rec = refine_result(setup["scene"], setup["init"], out, abundance_prior=setup["p2"], samples=2, steps=2,
                        figures=False, progress=False, mixing=None)
    assert rec["refine"]["mixing"]["requested"] == "auto"


def test_endmembers_csv_of_a_result_folder_counts_as_from_the_scene(setup, run_cli, tmp_path):
    """README's chain gives the inverter `run1/endmembers.csv` (run3), then refines run3: those
    endmembers were extracted from the scene like `--endmembers-file run1`'s, so they get the
    same rounds and fitted-noise allowance; a CSV outside a result folder stays given."""
    from unmixgen.workflows.refinement import endmember_origin

    code, _, err = run_cli("unmix", setup["scene"], "-p", "3", "--out", tmp_path / "run1", "--no-figures")
    assert code == 0, err
    loose = tmp_path / "lib.csv"
    loose.write_text((tmp_path / "run1" / "endmembers.csv").read_text())
    for name, source in (("run3", tmp_path / "run1" / "endmembers.csv"), ("loose", loose)):
        code, _, err = run_cli("unmix", setup["scene"], "--endmembers-file", source, "--method", "fcls",
                               "--out", tmp_path / name, "--no-figures")
        assert code == 0, err
    runs = {n: json.loads((tmp_path / n / "run.json").read_text()) for n in ("run3", "loose")}
    assert endmember_origin(runs["run3"]) == "scene"
    assert endmember_origin(runs["loose"]) == "given"


def test_rounds_auto_is_accepted_as_its_help_says(setup, run_cli, tmp_path):
    """`refine --help` shows `--rounds` as "auto: 8 for endmembers extracted from the scene ...,
    else 1" with default auto; `--rounds auto` was refused by the int parser (exit 2). It now
    means the default; a word other than auto or a whole number is one line, exit 2."""
    args = ("refine", setup["scene"], "--init", setup["init"], "--abundance-prior", setup["p2"],
            "--samples", "2", "--steps", "2", "--no-progress")
    code, _, err = run_cli(*args, "--rounds", "auto", "--out", tmp_path / "auto")
    assert code == 0, err
    run = json.loads((tmp_path / "auto" / "run.json").read_text())
    rec = run["refine"]
    assert rec["rounds_from"].startswith("auto") and rec["rounds"] == 1
    # the parameters say what was asked, not the number auto chose as if it had been given
    assert run["parameters"]["rounds"] == "auto"
    code, _, err = run_cli(*args, "--rounds", "many", "--out", tmp_path / "bad")
    assert code == 2 and "--rounds" in err and "auto" in err and err.strip().count("\n") == 0, err
    assert not (tmp_path / "bad").exists()


def test_refine_result_checks_the_seed_before_reading_anything(tmp_path):
    from unmixgen.errors import ParameterError
    from unmixgen.workflows import refine_result

    # neither file exists: the seed's error comes first, before any file is opened
    with pytest.raises(ParameterError, match="seed"):
        refine_result(tmp_path / "no-scene.npz", tmp_path / "no-init", tmp_path / "out", seed=-1)
    assert not (tmp_path / "out").exists()


def test_refine_weighs_the_bands_of_a_scene_whose_noise_differs_between_them(setup, run_cli):
    """Noise 30x apart between bands: refine weighs the bands by default (run.json says so),
    --band-weights none does not, and a bad value is one line, exit 2, nothing written."""
    root = setup["root"]
    with np.load(setup["scene"]) as z:
        Y = z[[k for k in z.files if z[k].ndim == 3][0]]
    std = np.geomspace(1.0, 30.0, WL.size)
    level = np.sqrt(np.mean(Y.astype(np.float64) ** 2) / 10**2.5 / np.mean(std**2))
    Yc = (Y + level * std * np.random.default_rng(9).standard_normal(Y.shape)).astype(np.float32)
    init = _scene_and_fcls_init(setup, Yc, "coloured")
    runs = {}
    for name, extra in (("weighted", ()), ("plain", ("--band-weights", "none"))):
        out = root / f"ref_coloured_{name}"
        code, _, err = run_cli("refine", root / "coloured.npz", "--init", init, "--abundance-prior", setup["p2"],
                               "--samples", "2", "--steps", "2", "--out", out, "--no-progress", *extra)
        assert code == 0, err
        record = json.loads((out / "run.json").read_text())
        runs[name] = record["refine"]["band_weights"]
        # the choice as asked, as unmix records it: "none" was null, like noise too white to weigh
        assert record["parameters"].get("band_weights") == ("none" if extra else None)
    assert runs["weighted"]["noise_std_range"] > 4 and runs["plain"] is None  # the scene had white noise too
    bad = root / "ref_coloured_bad"
    code, _, err = run_cli("refine", root / "coloured.npz", "--init", init, "--abundance-prior", setup["p2"],
                           "--band-weights", "pink", "--out", bad, "--no-progress")
    assert code == 2 and "--band-weights pink" in err and len(err.strip().splitlines()) == 1
    assert not bad.exists()


def test_refine_writes_its_uncertainty_maps_georeferenced_like_the_abundances(setup, run_cli, tmp_path):
    """The std and 5 / 95 % quantile maps were only in result.npz: nothing of the posterior
    spread opened in QGIS in the scene's place, though the abundances and brightness did."""
    import rasterio

    with np.load(setup["scene"]) as z:
        Y = z["cube"].copy()
    Y[3, 4] = np.nan
    t = (30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
    tif = tmp_path / "scene.tif"
    write_scene(Scene(Y, wavelengths=WL, crs="EPSG:32633", transform=t), tif)
    with np.load(setup["init"] / "result.npz") as z:
        init = tmp_path / "init"
        init.mkdir()
        A0 = z["abundances"].copy()
        A0[3, 4] = np.nan
        save_result(init, Scene(Y, wavelengths=WL), endmembers=z["endmembers"], abundances=A0, figures=False)
    out = tmp_path / "ref"
    code, _, err = run_cli("refine", tif, "--init", init, "--abundance-prior", setup["p2"], "--samples", "3",
                           "--steps", "2", "--out", out, "--no-progress")
    assert code == 0, err
    with np.load(out / "result.npz") as z:
        arrays = {k: z[k] for k in ("abundances_std", "abundances_q05", "abundances_q95")}
    for key, values in arrays.items():
        with rasterio.open(out / f"{key}.tif") as ds:
            assert ds.crs.to_epsg() == 32633 and np.allclose(tuple(ds.transform)[:6], t)
            assert np.isnan(ds.nodata) and ds.descriptions == ("em1", "em2", "em3")
            maps = np.moveaxis(ds.read(), 0, -1)
        assert np.isnan(maps[3, 4]).all()  # the invalid pixel is nodata, not a spread of 0
        valid = np.isfinite(Y).all(-1)
        np.testing.assert_allclose(maps[valid], values[valid], rtol=1e-6)


def test_blind_default_fractions_of_normalised_endmembers_go_through_refine_as_such(setup, run_cli, tmp_path):
    # unmix records that edaa's fractions are of E / |E| (result.npz 'abundance_basis'); refine
    # reads them so and writes its own the same way; a bad basis is one line
    rng = np.random.default_rng(3)
    E = smooth_spectra(3, WL, seed=4)
    A = abundance_maps(24, 20, 3, rng)
    s = rng.uniform(0.5, 1.5, (24, 20, 1))
    Y = (s * (A @ E) + rng.normal(0, 0.002, (24, 20, WL.size))).astype(np.float32)
    write_scene(Scene(Y, wavelengths=WL), tmp_path / "bright.npz")
    code, _, err = run_cli("unmix", tmp_path / "bright.npz", "-p", "3", "--out", tmp_path / "blind", "--no-figures")
    assert code == 0, err
    res = load_result(tmp_path / "blind")
    assert str(res["abundance_basis"]) == "l2"
    assert json.loads((tmp_path / "blind" / "run.json").read_text())["chosen"] == "edaa"
    code, _, err = run_cli("refine", tmp_path / "bright.npz", "--init", tmp_path / "blind", "--abundance-prior",
                           setup["p2"], "--samples", "2", "--steps", "2", "--out", tmp_path / "ref", "--no-progress")
    assert code == 0, err
    out = load_result(tmp_path / "ref")
    assert str(out["abundance_basis"]) == "l2"
    with np.load(tmp_path / "blind" / "result.npz") as z:
        arrays = dict(z)
    arrays["abundance_basis"] = np.array("max")
    np.savez(tmp_path / "bad.npz", **arrays)
    code, _, err = run_cli("refine", tmp_path / "bright.npz", "--init", tmp_path / "bad.npz", "--abundance-prior",
                           setup["p2"], "--samples", "2", "--steps", "2", "--out", tmp_path / "r2", "--no-progress")
    assert code == 2 and "abundance_basis" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r2").exists()


def test_spectra_options_on_a_scene_without_wavelengths_are_refused(setup, run_cli):
    """``--spectra-t0`` on a scene without wavelengths was dropped without a word: the spectra
    prior cannot run there, the endmembers are kept as the init has them. It is refused, as
    ``--spectra-prior`` is, before anything is written."""
    scene, init = _without_wavelengths(setup, "nowl2")
    out = setup["root"] / "ref_nowl2"
    code, _, err = run_cli("refine", scene, "--init", init, "--abundance-prior", setup["p2"],
                           "--samples", "8", "--steps", "2", "--spectra-t0", "0.5", "--out", out, "--no-progress")
    assert code == 2 and err.startswith("error: --spectra-t0 0.5:") and "no wavelengths" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def _pure_init(tmp_path: Path) -> None:
    """``tmp_path/pure.npz`` and its init ``tmp_path/init``, whose endmembers are noisy pure
    pixels of the scene: they sit at clusters of pure pixels, which fix them."""
    from unmixgen.simulate.procedural import library

    wl = np.linspace(420, 2400, 120)
    E, _ = library(wl, ["soil", "vegetation", "concrete", "water"], rng=0)
    A = abundance_maps(36, 40, 4, np.random.default_rng(0), smoothness=3.5, purity=8.0).reshape(-1, 4)
    clean = (A @ E).astype(np.float32)
    Y = clean + np.random.default_rng(1).normal(0, np.sqrt(np.mean(clean ** 2) / 100), clean.shape).astype(np.float32)
    E0 = np.stack([Y[np.flatnonzero(A[:, j] > 0.999)[0]] for j in range(4)])  # one noisy pure pixel each
    scene = Scene(Y.reshape(36, 40, -1), wavelengths=wl)
    write_scene(scene, tmp_path / "pure.npz")
    (tmp_path / "init").mkdir()
    save_result(tmp_path / "init", scene, endmembers=E0, abundances=fcls(Y, E0).reshape(36, 40, 4), figures=False)


@pytest.fixture(scope="module")
def pure(tmp_path_factory) -> dict:
    """The pure-pixel scene and init (`_pure_init`), made once for the module, and a memo of
    `_pure_refine`'s runs."""
    root = tmp_path_factory.mktemp("pure")
    _pure_init(root)
    return {"root": root}


def _pure_refine(pure, setup, run_cli, *extra) -> tuple[Path, str]:
    """``refine`` of the pure-pixel scene with ``extra`` options: the output folder and stderr;
    a run with the same options is made once for the module (the tests below share the default one)."""
    if extra not in pure:
        root = pure["root"]
        out = root / f"ref{len(pure)}"
        code, _, err = run_cli("refine", root / "pure.npz", "--init", root / "init", "--abundance-prior",
                               setup["p2"], "--samples", "2", "--steps", "2", *extra, "--out", out, "--no-progress")
        assert code == 0, err
        pure[extra] = out, err
    return pure[extra]


def test_options_the_pure_pixel_clusters_override_are_named_in_a_warning(setup, run_cli, pure):
    """Endmembers at clusters of pure pixels fix themselves: refine runs one round without
    sampling them, whatever --rounds and --spectra-t0 said. The user got no word of it."""
    for name, extra in (("asked", ("--rounds", "3", "--spectra-t0", "0.5")), ("default", ())):
        out, err = _pure_refine(pure, setup, run_cli, *extra)
        rec = json.loads((out / "run.json").read_text())
        assert rec["refine"]["rounds"] == 1 and not rec["refine"]["endmembers_refined"]
        lines = [w for w in rec["warnings"] if "clusters of pure pixels" in w]
        shown = [line for line in err.splitlines() if "clusters of pure pixels" in line]
        if name == "asked":
            assert rec["refine"]["rounds_from"] == "pure-pixel clusters" and rec["refine"]["pure_clusters"]
            # run.json names the parameters, as its "parameters" do; the command line shows its flags
            assert len(lines) == 1 and lines[0].startswith("rounds=3, spectra_t0=0.5: not applied: "), lines
            assert "one round ran without sampling the endmembers" in lines[0]
            text = lines[0].split(": ", 1)[1]
            assert shown == [f"warning: --rounds 3, --spectra-t0 0.5: {text}"], err
        else:
            assert not lines and not shown, err


def test_rounds_from_says_the_pure_pixel_clusters_set_the_rounds_under_auto(setup, run_cli, pure):
    """With --rounds auto (the default) the clusters of pure pixels set one round, and the
    refine record said so, but the workflow then wrote its auto rule over it ("auto: endmembers
    unknown"): run.json named a rule that had not decided anything."""
    for extra in ((), ("--rounds", "auto")):
        out, _ = _pure_refine(pure, setup, run_cli, *extra)
        rec = json.loads((out / "run.json").read_text())["refine"]
        assert rec["pure_clusters"] and not rec["endmembers_refined"]
        assert rec["rounds"] == 1 and rec["rounds_from"] == "pure-pixel clusters", rec["rounds_from"]


def test_the_python_api_warnings_name_its_parameters_not_cli_flags(setup, pure, tmp_path):
    """`refine_result` warned "--rounds 3, --spectra-t0 0.5: not applied" and "--samples 2:
    ... rough": flags a Python caller has no way to pass. It names the parameters it was given."""
    import warnings

    from unmixgen.workflows import refine_result

    root = pure["root"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = refine_result(root / "pure.npz", root / "init", tmp_path / "out", abundance_prior=setup["p2"],
                            samples=2, steps=2, rounds=3, spectra_t0=0.5, progress=False, figures=False)
    shown = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    override = [m for m in shown if "clusters of pure pixels" in m]
    assert len(override) == 1 and override[0].startswith("rounds=3, spectra_t0=0.5: not applied: "), shown
    assert any(m.startswith("samples=2: the std and 5 / 95 % quantiles") for m in shown), shown
    assert not [m for m in shown + rec["warnings"] if "--rounds" in m or "--spectra" in m or "--samples" in m]


def test_refined_figures_say_they_show_the_posterior(setup, run_cli, monkeypatch):
    """refine's abundances.png and endmembers.png were titled 'abundance maps' and 'endmember
    spectra' like the init's; a reader could not tell the posterior mean from the init, nor the
    uncertainty maps' subject."""
    from unmixgen.report import figures as report

    titles: dict[str, str] = {}
    save = report._save

    def record(fig, path):
        titles[Path(path).name] = fig.get_suptitle() or fig.axes[0].get_title()
        return save(fig, path)

    monkeypatch.setattr(report, "_save", record)
    out = setup["root"] / "ref_titles"
    code, _, err = run_cli("refine", setup["scene"], "--init", setup["init"], "--abundance-prior", setup["p2"],
                           "--samples", "2", "--steps", "2", "--out", out, "--no-progress")
    assert code == 0, err
    assert "posterior mean" in titles["abundances.png"] and "refined" in titles["abundances.png"]
    assert "refined" in titles["endmembers.png"]
    assert "posterior standard deviation" in titles["abundances_std.png"]
    assert "90 % posterior interval" in titles["abundances_interval90.png"]


def test_refine_report_shows_the_run_its_warnings_and_every_figure(setup, run_cli):
    """`refine --report`: report.html with the run's parameters, its run.json warnings (here:
    too few samples for intervals) and every figure of the folder; none without --report."""
    import html
    import re

    out = setup["root"] / "reported"
    code, _, err = run_cli("refine", setup["scene"], "--init", setup["init"], "--abundance-prior", setup["p2"],
                           "--samples", "3", "--steps", "2", "--out", out, "--no-progress", "--report")
    assert code == 0, err
    record = json.loads((out / "run.json").read_text())
    page = (out / "report.html").read_text()
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert "abundances_std.png" in pngs and "abundances_interval90.png" in pngs
    assert sorted(re.findall(r'<img src="([^"]+)"', page)) == pngs
    assert any("samples=3" in w for w in record["warnings"]), record["warnings"]
    assert all(f"<li>{html.escape(w)}</li>" in page for w in record["warnings"])
    assert "<td>command</td><td>refine</td>" in page and "<title>refine: reported</title>" in page
