"""`refine_scene`: refinement of an unmixing held in memory, the same as `refine_result` on files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import unmixgen as ug
from unmixgen.errors import InputError, ParameterError
from unmixgen.io import write_scene
from unmixgen.simulate.procedural import make_scene


@pytest.fixture(scope="module")
def unmixed(tmp_path_factory):
    """A 20 x 16 scene of 3 endmembers written to a file, and its VCA result folder."""
    root = tmp_path_factory.mktemp("refine_scene")
    scene = make_scene(rows=20, cols=16, bands=40, p=3, seed=3, snr_db=25)
    path = root / "scene.npz"
    write_scene(scene, path)
    ug.unmix_scene(path, root / "vca", n_endmembers=3, method="vca", figures=False)
    return root, path


def test_arrays_in_memory_refine_as_the_result_folder_does(unmixed, tmp_path):
    root, path = unmixed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few samples
        ug.refine_result(path, root / "vca", tmp_path / "ref", samples=4, steps=4, figures=False, progress=False)
        res = ug.load_result(root / "vca")
        scene = ug.read_scene(path)
        done = ug.refine_scene(scene, res["endmembers"], res["abundances"], endmembers_from="scene", samples=4,
                               steps=4)
    saved = ug.load_result(tmp_path / "ref")
    for key in ("abundances", "abundances_std", "abundances_q05", "abundances_q95", "endmembers", "endmembers_std"):
        np.testing.assert_array_equal(getattr(done.result, key), saved[key], err_msg=key)
    assert done.record["init_endmembers_origin"] == saved["run"]["refine"]["init_endmembers_origin"] == "scene"
    assert done.record["rounds"] == saved["run"]["refine"]["rounds"]
    assert done.abundance_prior.is_dir() and done.spectra_prior is not None
    a = done.result.abundances[scene.mask]
    assert np.all(a >= 0) and np.allclose(a.sum(axis=-1), 1, atol=1e-5)
    assert any("samples=4" in w for w in done.warnings)


def test_a_plain_array_is_refined_and_bad_estimates_are_refused(unmixed):
    root, path = unmixed
    cube = ug.read_scene(path).load()
    res = ug.load_result(root / "vca")
    E, A = res["endmembers"], res["abundances"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no wavelengths: endmembers kept; few samples
        done = ug.refine_scene(cube, E, A, samples=2, steps=2)
    np.testing.assert_array_equal(done.result.endmembers, E)  # no band centres: no spectra prior
    assert done.spectra_prior is None and done.result.abundances.shape == A.shape
    with pytest.raises(InputError, match=r"abundances of shape \(16, 20, 3\)"):
        ug.refine_scene(cube, E, A.transpose(1, 0, 2), samples=2, steps=2)
    with pytest.raises(InputError, match="not on the simplex"):
        ug.refine_scene(cube, E, A * 2, samples=2, steps=2)
    with pytest.raises(ParameterError, match="endmembers_from"):
        ug.refine_scene(cube, E, A, endmembers_from="library", samples=2, steps=2)
    with pytest.raises(ParameterError, match="samples=0"):
        ug.refine_scene(cube, E, A, samples=0)


# -- hunt 55: a second reader of refine_scene -------------------------------------------------
def test_run_json_started_is_stamped_before_the_refinement(unmixed, tmp_path, monkeypatch):
    # refine_result made its run record after refine_scene returned: "started" said when the
    # refinement had ended, not when it began (the record was made before refine until the split)
    import json
    import types

    import unmixgen.refine.posterior as posterior
    import unmixgen.runs.folder as folder

    root, path = unmixed
    real, refined = posterior.refine, []

    def spy(*args, **kwargs):
        refined.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(posterior, "refine", spy)
    monkeypatch.setattr(folder, "time", types.SimpleNamespace(strftime=lambda fmt: "after" if refined else "before"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few samples
        record = ug.refine_result(path, root / "vca", tmp_path / "ref", samples=2, steps=2, figures=False,
                                  progress=False)
    assert refined
    assert record["started"] == "before"
    assert json.loads((tmp_path / "ref" / "run.json").read_text())["started"] == "before"
    assert record["parameters"]["rounds"] == "auto" and record["parameters"]["samples"] == 2


def test_brightness_is_checked_and_divided_out(unmixed):
    # refine_scene took any brightness: a (cols,) vector was broadcast over every row without a
    # word, negative values were taken as "none", a list failed with a TypeError
    root, path = unmixed
    cube = ug.read_scene(path).load()
    res = ug.load_result(root / "vca")
    E, A = res["endmembers"], res["abundances"]
    with pytest.raises(InputError, match=r"brightness has shape \(16,\)"):
        ug.refine_scene(cube, E, A, brightness=np.full(16, 2.0), samples=2, steps=2)
    with pytest.raises(InputError, match="brightness has negative or infinite values"):
        ug.refine_scene(cube, E, A, brightness=np.full((20, 16), -2.0), samples=2, steps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no wavelengths; few samples
        plain = ug.refine_scene(cube, E, A, samples=2, steps=2, mixing="linear")
        # twice as bright, with that brightness given (a list): the same pixels once divided
        bright = ug.refine_scene(cube * 2, E, A, brightness=np.full((20, 16), 2.0).tolist(), samples=2, steps=2,
                                 mixing="linear")
    np.testing.assert_array_equal(bright.result.abundances, plain.result.abundances)
    assert bright.brightness.dtype == np.float32 and np.all(bright.brightness == 2)
    assert bright.record["brightness_divided"] and not plain.record["brightness_divided"]


def test_estimates_that_are_not_real_arrays_of_the_scene_are_refused(unmixed):
    # complex endmembers lost their imaginary part silently, text failed with a ValueError, 0-d
    # endmembers with an IndexError; a cube without a valid pixel was named by refine's own 'mask'
    root, path = unmixed
    cube = ug.read_scene(path).load()
    res = ug.load_result(root / "vca")
    E, A = res["endmembers"], res["abundances"]
    with pytest.raises(InputError, match="endmembers' has complex type"):
        ug.refine_scene(cube, E + 1j, A, samples=2, steps=2)
    with pytest.raises(InputError, match="abundances' has type <U"):
        ug.refine_scene(cube, E, A.astype(str), samples=2, steps=2)
    with pytest.raises(InputError, match=r"endmembers of shape \(\)"):
        ug.refine_scene(cube, E[0, 0], A, samples=2, steps=2)
    with pytest.raises(InputError, match="no valid pixel"):
        ug.refine_scene(np.zeros_like(cube), E, A, samples=2, steps=2)
