"""`unmixgen train-stu` and `unmixgen unmix --method hybridstu` end to end, and their refusals of
bad input (one line, exit 2, nothing written)."""

import json

import numpy as np
import pytest

from unmixgen.io import write_scene
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import make_scene


@pytest.fixture
def files(tmp_path):
    """A non-square 24x37x40 scene (one invalid pixel) and its true endmembers as .npz."""
    s = make_scene(rows=24, cols=37, p=3, bands=40, snr_db=30, seed=3)
    cube = s.load().copy()
    cube[2, 5] = np.nan
    path = tmp_path / "scene.npz"
    write_scene(Scene(cube, wavelengths=s.wavelengths), path)
    em = tmp_path / "em.npz"
    np.savez(em, endmembers=s.truth.endmembers, wavelengths=s.wavelengths)
    return path, em, s


@pytest.mark.parametrize("base", ["fcls", "scaled"])
def test_train_then_unmix_with_the_model(run_cli, files, tmp_path, torch_one_thread, base):
    path, em, s = files
    model = tmp_path / "stu"
    code, out, err = run_cli("train-stu", path, "--endmembers-file", em, "--maps", "dirichlet", "--out", model,
                             "--k", "3", "--max-steps", "20", "--base", base)
    assert code == 0, err
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["kind"] == "hybridstu" and cfg["k"] == 3 and cfg["history"]["map_source"] == "dirichlet"
    run = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--method", "hybridstu", "--model", model, "--out", run, "--no-figures")
    assert code == 0, err
    with np.load(run / "result.npz") as r:
        A, mask, E = r["abundances"], r["mask"], r["endmembers"]
    assert A.shape == (24, 37, 3) and np.isnan(A[2, 5]).all() and not mask[2, 5]
    assert np.allclose(A[mask].sum(-1), 1, atol=1e-5) and (A[mask] >= 0).all()
    np.testing.assert_allclose(E, s.truth.endmembers, rtol=1e-6)
    rec = json.loads((run / "run.json").read_text())
    assert rec["method"] == "hybridstu" and rec["training"]["steps"] == 20
    # training options with a trained model would be silently ignored: refused
    for extra in (["--maps", "grf"], ["--max-minutes", "1"]):
        code, _, err = run_cli("unmix", path, "--method", "hybridstu", "--model", model, *extra,
                               "--out", tmp_path / "run2", "--no-figures")
        assert code == 2 and extra[0] in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "run2").exists()
    # a model correcting the brightness-free answer returns fractions: the run folder adds
    # each pixel's least-squares brightness, so that brightness * (a E) reconstructs it
    assert (run / "brightness.tif").exists() == (base == "scaled") == ("brightness" in rec)
    if base == "scaled":
        from unmixgen.unmix.inversion import pixel_brightness

        with np.load(run / "result.npz") as r:
            b = r["brightness"]
        cube = s.load()
        np.testing.assert_allclose(b[mask], pixel_brightness(cube[mask], A[mask], E), rtol=1e-5)
        assert np.isnan(b[2, 5])


def test_unmix_trains_in_one_command(run_cli, files, tmp_path, torch_one_thread, monkeypatch):
    from unmixgen.unmix.hybridstu import HybridSTU

    monkeypatch.setattr(HybridSTU.__init__, "__kwdefaults__",
                        {**HybridSTU.__init__.__kwdefaults__, "max_steps": 10, "n_maps": 4, "map_size": 24})
    path, em, s = files
    run = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--method", "hybridstu", "--endmembers-file", em, "--out", run,
                           "--no-figures")
    assert code == 0, err
    rec = json.loads((run / "run.json").read_text())
    assert rec["training"]["map_source"] == "grf" and rec["training"]["steps"] == 10


def test_unmix_training_by_steps_is_reproducible(run_cli, files, tmp_path, torch_one_thread, monkeypatch):
    """`unmix --method hybridstu` had only --max-minutes: training stopped by the clock, so two runs
    with the same --seed trained 606 and 433 steps and gave maps 0.8 % apart. --max-steps stops it
    by steps, as train-stu's does: the same seed gives the same maps."""
    from unmixgen.unmix.hybridstu import HybridSTU

    monkeypatch.setattr(HybridSTU.__init__, "__kwdefaults__",
                        {**HybridSTU.__init__.__kwdefaults__, "n_maps": 4, "map_size": 24})
    path, em, _ = files
    maps = []
    for name in ("a", "b"):
        run = tmp_path / name
        code, _, err = run_cli("unmix", path, "--method", "hybridstu", "--endmembers-file", em, "--max-steps", "7",
                               "--seed", "5", "--out", run, "--no-figures", "--no-progress")
        assert code == 0, err
        rec = json.loads((run / "run.json").read_text())
        assert rec["training"]["steps"] == 7 and rec["seed"] == 5
        with np.load(run / "result.npz") as r:
            maps.append(r["abundances"])
    np.testing.assert_array_equal(maps[0], maps[1])
    model = tmp_path / "m"
    code, _, err = run_cli("train-stu", path, "--endmembers-file", em, "--out", model, "--max-steps", "2")
    assert code == 0, err
    code, _, err = run_cli("unmix", path, "--method", "hybridstu", "--model", model, "--max-steps", "3",
                           "--out", tmp_path / "c", "--no-figures")
    assert code == 2 and "--max-steps" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c").exists()


def _refused(run_cli, args, out, match):
    code, _, err = run_cli(*args)
    assert code == 2, err
    assert match in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_bad_input_exits_2_and_writes_nothing(run_cli, files, tmp_path, torch_one_thread):
    path, em, s = files
    out = tmp_path / "out"
    # endmembers that do not cover the scene's bands
    short = tmp_path / "short.npz"
    np.savez(short, endmembers=s.truth.endmembers[:, :20], wavelengths=s.wavelengths[:20])
    _refused(run_cli, ["train-stu", path, "--endmembers-file", short, "--out", out], out, "good bands")
    # k larger than the scene
    _refused(run_cli, ["train-stu", path, "--endmembers-file", em, "--out", out, "--k", "31"], out, "--k 31")
    # a variability that is neither a number nor auto, or out of range
    _refused(run_cli, ["train-stu", path, "--endmembers-file", em, "--out", out, "--variability", "lots"], out,
             "--variability")
    _refused(run_cli, ["train-stu", path, "--endmembers-file", em, "--out", out, "--variability", "5"], out,
             "--variability 5")
    _refused(run_cli, ["train-stu", path, "--endmembers-file", em, "--out", out, "--scaling", "sideways"], out,
             "--scaling sideways")
    _refused(run_cli, ["train-stu", path, "--endmembers-file", em, "--out", out, "--base", "sunsal"], out,
             "--base sunsal")
    # how the brightness varies, when --variability 0 keeps it constant, was dropped without a word
    _refused(run_cli, ["train-stu", path, "--endmembers-file", em, "--out", out, "--scaling", "endmember",
                       "--variability", "0"], out, "--scaling endmember: ")
    # fewer valid pixels than needed
    cube = s.load().copy()
    cube[1:] = np.nan  # 37 valid pixels
    few = tmp_path / "few.npz"
    write_scene(Scene(cube, wavelengths=s.wavelengths), few)
    _refused(run_cli, ["train-stu", few, "--endmembers-file", em, "--out", out], out, "valid pixels")
    # a scene with a NaN band
    cube = s.load().copy()
    cube[..., 7] = np.nan
    nanband = tmp_path / "nanband.npz"
    write_scene(Scene(cube, wavelengths=s.wavelengths), nanband)
    _refused(run_cli, ["train-stu", nanband, "--endmembers-file", em, "--out", out], out, "no valid pixel")
    # training maps for another p
    maps = tmp_path / "maps.npz"
    np.savez(maps, abundances=np.full((2, 8, 8, 4), 0.25, np.float32))
    _refused(run_cli, ["train-stu", path, "--endmembers-file", em, "--maps", str(maps), "--out", out], out,
             "expected 3")
    # a model trained for other bands
    model = tmp_path / "stu"
    assert run_cli("train-stu", path, "--endmembers-file", em, "--out", model, "--k", "1", "--max-steps", "5")[0] == 0
    other = tmp_path / "other.npz"
    write_scene(Scene(s.load()[..., :30], wavelengths=s.wavelengths[:30]), other)
    _refused(run_cli, ["unmix", other, "--method", "hybridstu", "--model", model, "--out", out], out,
             "trained on 40 bands")
    # a model and endmembers at once
    _refused(run_cli, ["unmix", path, "--method", "hybridstu", "--model", model, "--endmembers-file", em,
                       "--out", out], out, "exactly one")


@pytest.mark.parametrize("command", ["train-stu", "unmix"])
def test_out_never_replaces_the_training_maps_it_reads(run_cli, files, tmp_path, command):
    """--maps FOLDER and --maps prior:MODEL are inputs: an --out that is (or holds) them is
    refused before any work, --overwrite or not (it used to replace them with the new output)."""
    path, em, s = files
    maps = tmp_path / "maps"
    maps.mkdir()
    np.savez(maps / "abundances.npz", abundances=np.full((2, 8, 8, 3), 1 / 3, np.float32))
    (maps / "run.json").write_text('{"command": "synthesize"}')
    prior = tmp_path / "prior"
    prior.mkdir()
    (prior / "config.json").write_text('{"kind": "abundance_prior"}')
    args = ["unmix", path, "--method", "hybridstu"] if command == "unmix" else ["train-stu", path]
    for spec, folder in ((str(maps), maps), (f"prior:{prior}", prior)):
        before = sorted(p.name for p in folder.iterdir())
        code, _, err = run_cli(*args, "--endmembers-file", em, "--maps", spec, "--out", folder, "--overwrite")
        assert code == 2 and "input" in err and len(err.strip().splitlines()) == 1, err
        assert sorted(p.name for p in folder.iterdir()) == before


def test_endmembers_with_a_scaled_copy_train(run_cli, files, tmp_path, torch_one_thread):
    """A spectrum and a brighter copy of it are distinct endmembers (sum-to-one tells their
    shares apart) but make E E^T singular: training choosing its maps' smoothing used to stop
    with an internal LinAlgError (exit 1)."""
    path, em, s = files
    E = s.truth.endmembers
    scaled = tmp_path / "scaled.npz"
    np.savez(scaled, endmembers=np.stack([E[0], 2 * E[0], E[1]]), wavelengths=s.wavelengths)
    out = tmp_path / "stu"
    code, _, err = run_cli("train-stu", path, "--endmembers-file", scaled, "--out", out, "--k", "1",
                           "--max-steps", "2")
    assert code == 0, err
    assert (out / "config.json").is_file()


def test_no_progress_silences_the_training_bar(run_cli, files, tmp_path, monkeypatch):
    """`train-stu` and `unmix --method hybridstu` train for minutes: scripts and logs need
    --no-progress (the other training commands have it)."""
    import unmixgen.workflows.semiblind as semiblind
    import unmixgen.workflows.unmixing as unmixing

    seen = []

    def fake_train(*args, progress=None, **kwargs):
        seen.append(("train-stu", progress))
        raise semiblind.InputError("stop here")

    def fake_unmix(*args, progress=None, **kwargs):
        seen.append(("unmix", progress))
        raise semiblind.InputError("stop here")

    monkeypatch.setattr("unmixgen.workflows.train_stu", fake_train)
    monkeypatch.setattr(unmixing, "unmix_hybridstu", fake_unmix)
    path, em, _ = files
    for flag in ("--progress", "--no-progress"):
        run_cli("train-stu", path, "--endmembers-file", em, "--out", tmp_path / "m", flag)
        run_cli("unmix", path, "--method", "hybridstu", "--endmembers-file", em, "--out", tmp_path / "r", flag)
    assert seen == [("train-stu", True), ("unmix", True), ("train-stu", False), ("unmix", False)]


@pytest.mark.parametrize("base, warned", [("fcls", True), ("scaled", False)])
def test_model_applied_to_a_scene_on_another_scale_is_named(run_cli, files, tmp_path, torch_one_thread, base,
                                                             warned):
    """A model trained on reflectance 0-1 applied to the same scene stored as 0-10000: a model
    correcting FCLS (sum-to-one cannot absorb the factor) gave wrong maps without a word, where
    `--method fcls` with the same endmembers warns; the brightness-free base absorbs it."""
    path, em, s = files
    model = tmp_path / "stu"
    assert run_cli("train-stu", path, "--endmembers-file", em, "--out", model, "--k", "1", "--max-steps", "2",
                   "--base", base)[0] == 0
    cube = s.load().copy()
    cube[2, 5] = np.nan
    counts = tmp_path / "counts.npz"
    write_scene(Scene(cube * 10000, wavelengths=s.wavelengths), counts)
    for scene, name in ((path, "same"), (counts, "counts")):
        code, _, err = run_cli("unmix", scene, "--method", "hybridstu", "--model", model, "--out", tmp_path / name,
                               "--no-figures")
        assert code == 0, err
        notes = json.loads((tmp_path / name / "run.json").read_text())["warnings"]
        expect = warned and name == "counts"
        assert ("same scale" in err) is expect and any("same scale" in w and "stu" in w for w in notes) is expect


@pytest.mark.parametrize("base, warned", [("fcls", True), ("scaled", False)])
def test_training_on_a_scene_at_another_scale_than_its_endmembers_is_named(run_cli, files, tmp_path,
                                                                          torch_one_thread, base, warned,
                                                                          monkeypatch):
    """train-stu and unmix --method hybridstu (train + apply) on a scene stored as 0-10000 with
    0-1 endmembers: a model correcting FCLS learns from answers sum-to-one cannot scale, and
    trained it without a word; the brightness-free base absorbs the factor."""
    path, em, s = files
    counts = tmp_path / "counts.npz"
    write_scene(Scene(s.load() * 10000, wavelengths=s.wavelengths), counts)
    code, _, err = run_cli("train-stu", counts, "--endmembers-file", em, "--out", tmp_path / "m", "--k", "1",
                           "--max-steps", "2", "--base", base)
    assert code == 0, err
    assert ("same scale" in err) is warned
    # in one command the base is chosen ("auto") by validation; made to choose this one, the
    # warning follows it
    from unmixgen.unmix.hybridstu import estimator
    from unmixgen.unmix.hybridstu.features import BASES

    monkeypatch.setattr(estimator, "_feature_validation_rmse",
                        lambda val, p, block: 0.0 if block == BASES[base] else 1.0)
    code, _, err = run_cli("unmix", counts, "--method", "hybridstu", "--endmembers-file", em,
                           "--max-minutes", "0.02", "--out", tmp_path / "r", "--no-figures")
    assert code == 0, err
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["training"]["base"] == base
    assert any("same scale" in w for w in record["warnings"]) is warned


def test_unmix_hybridstu_takes_a_cube_array_as_the_estimators_do(torch_one_thread):
    # the notebook call unmix_hybridstu(cube, n_endmembers=3): the blind extraction took the
    # array, then HybridSTU's scene check failed with "'numpy.ndarray' object has no attribute 'rows'"
    from unmixgen.simulate.procedural import make_scene
    from unmixgen.workflows import unmix_hybridstu

    cube = make_scene(rows=20, cols=24, bands=30, p=3, seed=0).load()
    E, A, names, info = unmix_hybridstu(cube, n_endmembers=3, max_steps=5, max_minutes=None, n_maps=2,
                                        map_size=16, width=8, eval_every=5)
    assert E.shape == (3, 30) and A.shape == (20, 24, 3) and info["training"]["steps"] == 5
