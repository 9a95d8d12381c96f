"""The run folder's scene fingerprint: a result names the scene it was computed on."""

from __future__ import annotations

import numpy as np
import pytest

from unmixgen.io import read_scene, write_scene
from unmixgen.runs.folder import same_scene, scene_fingerprint
from unmixgen.scene import Scene


def test_fingerprint_is_the_central_window_mean_and_tells_scenes_apart(tmp_path):
    rng = np.random.default_rng(0)
    Y = rng.uniform(0.1, 0.5, (70, 45, 6)).astype(np.float32)
    Y[40, 20] = np.nan  # an invalid pixel inside the window is left out
    scene = Scene(Y)
    f = scene_fingerprint(scene)
    window = Y[19:51, 6:38]  # central 32 x 32 of 70 x 45
    assert f.shape == (4, 6) and np.allclose(f[0], window[:16, :16].reshape(-1, 6).mean(0))
    q = window[16:, :16].reshape(-1, 6)
    assert np.allclose(f[2], q[np.all(np.isfinite(q), axis=1)].mean(0))
    write_scene(scene, tmp_path / "again.tif")  # the same scene in another format
    assert same_scene(f, read_scene(tmp_path / "again.tif"))
    assert not same_scene(f, Scene(Y[::-1].copy()))  # same size, other pixels
    assert not same_scene(f, Scene(Y * 1.01))  # 1 % brighter: another scene
    assert not same_scene(f[:, :5], Scene(Y))  # other band count


def test_fingerprint_of_a_window_without_valid_pixels_matches_anything():
    # as written before a window on the data replaced an empty central one
    f = np.full((4, 3), np.nan)
    assert same_scene(f, Scene(np.ones((40, 40, 3), np.float32)))
    assert same_scene(f, Scene(np.full((40, 40, 3), np.nan, np.float32)))


def test_fingerprint_reads_the_data_where_the_middle_is_no_data():
    # a map-grid product clipped off its swath: the central window held no valid pixel, its
    # fingerprint was all NaN, and refine --init took another such scene's result for its own
    rng = np.random.default_rng(0)
    scenes = []
    for _ in range(2):
        Y = np.full((40, 120, 3), np.nan, np.float32)
        Y[:, 5:30] = rng.random((40, 25, 3))  # the central 32 columns (44-75) hold none
        scenes.append(Scene(Y))
    f = scene_fingerprint(scenes[0])
    assert np.isfinite(f).all()
    assert same_scene(f, scenes[0]) and not same_scene(f, scenes[1])
    # where the centre holds data, the central window as before
    full = Scene(rng.random((40, 40, 3)).astype(np.float32))
    np.testing.assert_allclose(scene_fingerprint(full)[0], full.load()[4:20, 4:20].reshape(-1, 3).mean(0), rtol=1e-5)


def test_endmember_figure_draws_each_estimate_with_its_own_truth(tmp_path, monkeypatch):
    """A blind result lists its endmembers in extraction order: the figure drew truth row k
    dashed in estimate k's colour as 'emk (truth)', whatever mineral that was. The truth is
    matched to the estimates by spectral angle first, and named."""
    from unmixgen.report import figures as report
    from unmixgen.runs.folder import save_result
    from unmixgen.scene import GroundTruth
    from unmixgen.simulate.procedural import make_scene

    s = make_scene(rows=12, cols=12, bands=30, p=4, seed=0)
    T = s.truth.endmembers
    order = np.array([2, 0, 3, 1])
    seen = {}
    monkeypatch.setattr(report, "plot_endmembers", lambda *a, **k: seen.update(k))
    scene = Scene(s.load(), wavelengths=s.wavelengths,
                  truth=GroundTruth(T, s.truth.abundances, ["a", "b", "c", "d"]))
    save_result(tmp_path, scene, endmembers=T[order] * 1.02, abundances=s.truth.abundances[..., order])
    np.testing.assert_allclose(seen["truth"], T[order])
    assert seen["truth_names"] == ["c", "a", "d", "b"]
    # fewer estimates than truths: the unmatched truth follows; more: a NaN row stands for none
    save_result(tmp_path, scene, endmembers=T[order[:3]], abundances=s.truth.abundances[..., order[:3]])
    np.testing.assert_allclose(seen["truth"], T[[2, 0, 3, 1]])
    scene = Scene(s.load(), wavelengths=s.wavelengths, truth=GroundTruth(T[:2], None, None))
    save_result(tmp_path, scene, endmembers=T[order], abundances=s.truth.abundances[..., order])
    assert np.isnan(seen["truth"][[0, 2]]).all() and np.allclose(seen["truth"][[1, 3]], T[[0, 1]])
    assert seen["truth_names"] is None  # unnamed truth: labelled after the estimate it matches


def test_abundance_maps_are_titled_with_the_truth_their_spectrum_matches(tmp_path, monkeypatch):
    """With a named truth, each map's title names the reference its spectrum matches, as the
    spectra figure's legend pairs them: 'em1 (c)'. Without names, or without a match, its own."""
    from unmixgen.report import figures as report
    from unmixgen.runs.folder import save_result
    from unmixgen.scene import GroundTruth
    from unmixgen.simulate.procedural import make_scene

    s = make_scene(rows=12, cols=12, bands=30, p=4, seed=0)
    T, A = s.truth.endmembers, s.truth.abundances
    order = np.array([2, 0, 3, 1])
    seen = {}
    monkeypatch.setattr(report, "plot_abundances", lambda *a, **k: seen.update(k))
    monkeypatch.setattr(report, "plot_endmembers", lambda *a, **k: None)
    scene = Scene(s.load(), wavelengths=s.wavelengths, truth=GroundTruth(T, A, ["a", "b", "c", "d"]))
    save_result(tmp_path, scene, endmembers=T[order] * 1.02, abundances=A[..., order])
    assert seen["names"] == ["em1 (c)", "em2 (a)", "em3 (d)", "em4 (b)"]
    # own names kept in front; a truth of two: the two estimates it matches are named, not the rest
    scene = Scene(s.load(), wavelengths=s.wavelengths, truth=GroundTruth(T[:2], None, ["a", "b"]))
    save_result(tmp_path, scene, endmembers=T[order], abundances=A[..., order], names=["w", "x", "y", "z"])
    assert seen["names"] == ["w", "x (a)", "y", "z (b)"]
    scene = Scene(s.load(), wavelengths=s.wavelengths, truth=GroundTruth(T, A, None))
    save_result(tmp_path, scene, endmembers=T[order], abundances=A[..., order])
    assert seen["names"] == ["em1", "em2", "em3", "em4"]


def _saved_result(tmp_path, **change):
    """A run folder holding a 3-endmember, 20-band result.npz with ``change`` applied."""
    import json

    folder = tmp_path / "run"
    folder.mkdir(parents=True)
    arrays = {"endmembers": np.random.default_rng(0).uniform(0.1, 1, (3, 20)).astype(np.float32),
              "abundances": np.full((4, 5, 3), 1 / 3, np.float32), "mask": np.ones((4, 5), bool),
              "wavelengths": np.linspace(400.0, 1000.0, 20), "names": np.array(["a", "b", "c"])}
    arrays.update(change)
    np.savez(folder / "result.npz", **arrays)
    (folder / "run.json").write_text(json.dumps({"command": "unmix"}))
    return folder


@pytest.mark.parametrize("change", [{"wavelengths": np.linspace(400.0, 1000.0, 17)},
                                    {"wavelengths": np.r_[np.nan, np.linspace(410.0, 1000.0, 19)]},
                                    {"good_bands": np.ones(10, bool)}],
                         ids=["17 wavelengths", "NaN wavelength", "10 band flags"])
def test_a_result_whose_bands_disagree_is_refused(tmp_path, change):
    # 17 wavelengths for 20-band endmembers raised numpy's "fp and xp are not of the same length"
    # (unmix --endmembers-file RESULT, exit 1); a NaN wavelength dropped its band with a warning
    # that blamed the endmembers' library
    from unmixgen.errors import InputError
    from unmixgen.runs.endmembers import load_endmembers
    from unmixgen.runs.folder import load_result

    folder = _saved_result(tmp_path, **change)
    for load in (load_result, load_endmembers):
        with pytest.raises(InputError, match=f"^{folder}: result's '(wavelengths|good_bands)'.*20 bands"):
            load(folder)
    assert load_result(_saved_result(tmp_path / "ok"))["endmembers"].shape == (3, 20)


def test_a_run_json_that_is_no_text_is_refused(tmp_path):
    # bytes that are no UTF-8 raised UnicodeDecodeError (evaluate, unmix --endmembers-file: exit 1),
    # where a run.json that is no JSON was already refused
    from unmixgen.errors import InputError
    from unmixgen.runs.folder import load_result

    folder = _saved_result(tmp_path)
    (folder / "run.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(InputError, match=r"run.json: is not valid JSON"):
        load_result(folder)


@pytest.mark.parametrize("run", [[1], {"parameters": [1]}, {"parameters": {"method": "vca"}}])
def test_a_label_from_a_run_json_of_another_shape(tmp_path, run):
    # a run.json holding a list, or parameters that are no object, raised AttributeError
    # ('list' object has no attribute 'get') in train-abundance --label-from method
    import json

    from unmixgen.errors import InputError
    from unmixgen.runs.sources import load_training_maps

    folder = _saved_result(tmp_path, abundances=np.random.default_rng(1).dirichlet(np.ones(3), (40, 40)),
                           mask=np.ones((40, 40), bool))
    (folder / "run.json").write_text(json.dumps(run))
    if isinstance(run, dict) and isinstance(run["parameters"], dict):
        assert load_training_maps([folder], label_from="method").labels == ["vca"]
        return
    message = "run.json names no unmixing method" if isinstance(run, dict) else "run.json: is JSON but not an object"
    with pytest.raises(InputError, match=message):
        load_training_maps([folder], label_from="method")


@pytest.mark.parametrize("run", [[1], "unmix", None])
def test_a_run_json_that_is_no_object_is_refused(tmp_path, run):
    # a list was accepted (exit 0) and met whoever read the record as a dict later
    import json

    from unmixgen.errors import InputError
    from unmixgen.runs.folder import load_result

    folder = _saved_result(tmp_path)
    (folder / "run.json").write_text(json.dumps(run))
    with pytest.raises(InputError, match=r"run.json: is JSON but not an object"):
        load_result(folder)


def test_a_result_whose_mask_marks_no_pixel_is_refused(tmp_path):
    # an all-False mask was accepted: every map and score of it is empty
    from unmixgen.errors import InputError
    from unmixgen.runs.folder import load_result

    folder = _saved_result(tmp_path, mask=np.zeros((4, 5), bool))
    with pytest.raises(InputError, match=f"^{folder}: result's 'mask' marks no pixel valid"):
        load_result(folder)
    assert load_result(_saved_result(tmp_path / "ok", mask=np.eye(4, 5, dtype=bool)))["mask"].sum() == 4


@pytest.mark.parametrize("change", [{"abundances_std": np.ones((4, 5), np.float32)},
                                    {"abundances_q95": np.ones((4, 5, 2), np.float32)},
                                    {"endmembers_std": np.ones((3, 19), np.float32)}],
                         ids=["std without p", "q95 of 2 maps", "endmembers_std of 19 bands"])
def test_a_result_whose_uncertainty_has_another_shape_is_refused(tmp_path, change):
    # evaluate met these in its coverage scores with a message that named no file
    from unmixgen.errors import InputError
    from unmixgen.runs.folder import load_result

    folder = _saved_result(tmp_path, **change)
    with pytest.raises(InputError, match=f"^{folder}: result's '{next(iter(change))}' .* shaped like"):
        load_result(folder)
