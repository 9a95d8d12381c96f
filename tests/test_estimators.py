"""The blind methods as scikit-learn style estimators: transform, parameter checks, get/set/repr."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from spectra_fixture import smooth_spectra
from unmixgen.errors import ConvergenceWarning, InputError, ParameterError
from unmixgen.scene import Scene
from unmixgen.unmix.archetypal import ArchetypalAnalysis
from unmixgen.unmix.base import NotFittedError
from unmixgen.unmix.extract_then_invert import ATGP, NFINDR, VCA, ExtractThenInvert
from unmixgen.unmix.inversion import fcls, nnls
from unmixgen.unmix.minvol import MinVolNMF
from unmixgen.unmix.registry import METHODS, make_method

P, BANDS = 3, 40
#: small budgets so every method fits in a fraction of a second
FAST = {"edaa": {"n_restarts": 2, "n_outer": 5}, "mvnmf": {"max_iter": 10}}


def _cube(rows: int, cols: int, seed: int, E: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.full(P, 0.6), rows * cols)
    Y = A @ E + 0.003 * rng.standard_normal((rows * cols, E.shape[1]))
    return Y.reshape(rows, cols, -1).astype(np.float32)


@pytest.fixture(scope="module")
def scenes():
    """Two non-square scenes of the same materials: one to fit, one (with invalid pixels) to transform."""
    E = smooth_spectra(P, BANDS, np.random.default_rng(0))
    first = Scene(_cube(18, 25, 1, E))
    second = _cube(11, 7, 2, E)
    second[3, 4] = np.nan
    second[10, 0] = 0.0
    return first, Scene(second)


def _fit(name: str, scene: Scene, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_method(name, P, seed=0, **{**FAST.get(name, {}), **params}).fit(scene)


# -- transform ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, params", [
    ("vca", {}), ("nfindr", {}), ("atgp", {}), ("mvnmf", {}), ("edaa", {"abundances": "model"}),
])
def test_transform_of_a_second_scene_is_fcls_with_the_fitted_endmembers(scenes, name, params):
    first, second = scenes
    m = _fit(name, first, **params)
    A = m.transform(second)
    assert A.shape == (second.rows, second.cols, P) and A.dtype == np.float32
    valid = second.mask
    assert not valid[3, 4] and not valid[10, 0]
    assert np.isnan(A[~valid]).all()
    expected = fcls(second.valid_pixels(), m.endmembers_)
    np.testing.assert_allclose(A[valid], expected, atol=1e-6)
    # the same through a plain array: a tile (rows, cols, bands) or a pixel matrix (N, bands)
    np.testing.assert_array_equal(m.transform(second.load()), A, strict=True)
    np.testing.assert_allclose(m.transform(second.valid_pixels()), expected, atol=1e-6)


def test_transform_of_the_fitted_scene_gives_back_the_fit(scenes):
    """For extraction + FCLS the fit's abundances are that inversion, so transform repeats them."""
    first, _ = scenes
    m = _fit("vca", first)
    np.testing.assert_allclose(m.transform(first), m.abundances_, atol=1e-6)


def test_transform_uses_the_methods_own_inverter(scenes):
    first, second = scenes
    m = ExtractThenInvert(P, extractor="atgp", inverter="nnls").fit(first)
    assert m.name == "atgp+nnls" and m.info_["inversion"] == "nnls"
    np.testing.assert_allclose(m.transform(second)[second.mask],
                               nnls(second.valid_pixels(), m.endmembers_), atol=1e-6)
    # edaa with "scaled" abundances: NNLS divided by its sum, as in its fit
    e = _fit("edaa", first, abundances="scaled")
    S = nnls(second.valid_pixels(), e.endmembers_).astype(np.float64)
    At = e.transform(second)
    np.testing.assert_allclose(At[second.mask], S / S.sum(1, keepdims=True), atol=1e-6)
    assert np.isnan(At[~second.mask]).all()


def test_transform_of_a_scene_with_other_bands_says_what_differs(scenes):
    # was "endmembers have 40 bands; expected 30 (all bands of the scene) or 30 (its good bands)"
    m = _fit("vca", scenes[0])
    with pytest.raises(InputError, match=r"^endmembers have 40 bands but the scene has 30; expected the same bands$"):
        m.transform(scenes[0].load()[..., :30])


def test_a_bad_band_with_a_few_nan_pixels_still_gets_endmember_values(scenes):
    # one NaN pixel in a bad band made that band NaN in every endmember (the least squares
    # took the NaN row), so transform of a pixel matrix then refused the endmembers
    cube = scenes[0].load().copy()
    good = np.ones(BANDS, bool)
    good[[4, 9]] = False
    clean = _fit("vca", Scene(cube, good_bands=good))
    cube[2, 3, 4] = np.nan
    cube[5, 6, 9] = np.inf
    m = _fit("vca", Scene(cube, good_bands=good))
    assert np.isfinite(m.endmembers_).all()
    np.testing.assert_allclose(m.endmembers_[:, [4, 9]], clean.endmembers_[:, [4, 9]], atol=0.01)
    cube[..., 9] = np.nan  # a band with no value at all: nothing to fit
    assert np.isnan(_fit("vca", Scene(cube, good_bands=good)).endmembers_[:, 9]).all()


def test_transform_names_the_bad_bands_where_the_fitted_endmembers_are_undefined(scenes):
    cube = scenes[0].load().copy()
    good = np.ones(BANDS, bool)
    good[9] = False
    cube[..., 9] = np.nan
    m = _fit("vca", Scene(cube, good_bands=good))
    assert np.isfinite(m.transform(Scene(cube, good_bands=good))).all()
    # the same cube without its good-band flags: "endmembers contain NaN or Inf; expected
    # finite spectra", about the estimator's own endmembers
    for X in (cube, cube.reshape(-1, BANDS)):
        with pytest.raises(InputError, match=r"^endmembers_ are undefined \(NaN\) on band 10, bad bands of the "
                                              r"fitted scene with no value; expected a Scene that marks them bad"):
            m.transform(X)


def test_transform_before_fit_is_an_error(scenes):
    with pytest.raises(NotFittedError, match="not fitted"):
        ExtractThenInvert(P).transform(scenes[1])


# -- parameter constraints, checked in fit --------------------------------------------------------

@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("params, message", [
    ({"n_endmembers": 1}, "n_endmembers=1: expected >= 2"),
    ({"n_endmembers": "three"}, "n_endmembers='three': expected an integer >= 2 or 'auto'"),
    ({"n_endmembers": 2.5}, "n_endmembers=2.5: expected an integer >= 2 or 'auto'"),
    ({"seed": -1}, "seed=-1: expected >= 0"),
    ({"seed": "x"}, "seed='x': expected an integer >= 0"),
    ({"seed": 1.5}, "seed=1.5: expected an integer >= 0"),
])
def test_bad_common_parameters_are_named_in_fit(scenes, name, params, message):
    m = make_method(name, params.get("n_endmembers", P), seed=params.get("seed", 0))  # stored, not checked
    with pytest.raises(ParameterError) as err:
        m.fit(scenes[0])
    assert str(err.value) == message and err.value.name == next(iter(params))


@pytest.mark.parametrize("estimator, message", [
    (ExtractThenInvert(P, inverter="magic"),
     "inverter='magic': expected one of 'fcls', 'nnls', 'scls', 'scaled', 'ls', 'sunsal'"),
    (ExtractThenInvert(P, extractor="ppi"),
     "extractor='ppi': expected one of 'vca', 'nfindr', 'atgp' or an Extractor (VCA, NFINDR, ATGP)"),
    (ExtractThenInvert(P, extractor=3),
     "extractor=3: expected one of 'vca', 'nfindr', 'atgp' or an Extractor (VCA, NFINDR, ATGP)"),
    (ExtractThenInvert(P, extractor=NFINDR(max_iter=0)), "max_iter=0: expected >= 1"),
    (ExtractThenInvert(P, extractor=VCA(snr=float("nan"))), "snr=nan: expected a finite number"),
    (ExtractThenInvert(P, extractor=ATGP(subspace="yes")), "subspace='yes': expected True or False"),
    (ArchetypalAnalysis(P, step_factors=(1.0, -2.0)), "step_factors[1]=-2.0: expected > 0"),
    (ArchetypalAnalysis(P, step_factors=()), "step_factors=(): expected a non-empty sequence, each item a number > 0"),
    (ArchetypalAnalysis(P, brightness="L2"), "brightness='L2': expected one of 'auto', 'l2', 'sum', 'none'"),
    (ArchetypalAnalysis(P, brightness_floor=2), "brightness_floor=2: expected >= 0 and <= 1"),
    (ArchetypalAnalysis(P, subspace_dim=0), "subspace_dim=0: expected >= 1"),
    (MinVolNMF(P, delta=0.0), "delta=0.0: expected > 0"),
    (MinVolNMF(P, max_iter=10.0), "max_iter=10.0: expected an integer >= 1"),
    # a torch device name torch does not know was torch's RuntimeError listing its device types
    (MinVolNMF(P, device="gpu"), "device='gpu': expected a torch device name ('cpu', 'cuda', 'cuda:1')"),
    (ArchetypalAnalysis(P, device="gpu"), "device='gpu': expected a torch device name ('cpu', 'cuda', 'cuda:1')"),
    (make_method("auto", P, device="GPU"), "device='GPU': expected a torch device name ('cpu', 'cuda', 'cuda:1')"),
])
def test_method_specific_constraints(scenes, estimator, message):
    with pytest.raises(ParameterError) as err:
        estimator.fit(scenes[0])
    assert str(err.value) == message


def test_a_cuda_device_without_a_gpu_is_refused_in_fit(scenes):
    # was torch's AssertionError "Torch not compiled with CUDA enabled" (or a CUDA error) mid-fit
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for estimator in (MinVolNMF(P, device="cuda"), ArchetypalAnalysis(P, device="cuda:0")):
        with pytest.raises(ParameterError, match=r"^device='cuda(:0)?': no CUDA device is available; expected 'cpu'$"):
            estimator.fit(scenes[0])


def test_data_dependent_limits_name_n_endmembers(scenes):
    with pytest.raises(ParameterError, match=r"^n_endmembers=41: exceeds the scene's 40 \(good\) bands; expected <= 40$"):
        ExtractThenInvert(41).fit(scenes[0])
    two = smooth_spectra(2, BANDS, np.random.default_rng(4))  # noise-free mixtures of two spectra
    line = np.random.default_rng(5).dirichlet([1.0, 1.0], 54) @ two
    with pytest.raises(ParameterError, match=r"^n_endmembers=3: expected <= 2: "):
        ExtractThenInvert(3).fit(line.reshape(6, 9, BANDS))


@pytest.mark.parametrize("cls", [ExtractThenInvert, VCA, NFINDR, ATGP, ArchetypalAnalysis, MinVolNMF])
def test_every_constructor_parameter_has_a_constraint(cls):
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    assert sorted(cls._parameter_constraints) == sorted(names)


# -- get_params / set_params / repr ---------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(METHODS))
def test_get_params_rebuilds_an_equal_estimator(name):
    m = make_method(name, 4, seed=7)
    params = m.get_params(deep=False)
    assert params["n_endmembers"] == 4 and params["seed"] == 7
    clone = type(m)(**params)
    assert clone.get_params(deep=False) == params
    assert repr(clone) == repr(m)


def test_nested_params_round_trip_and_fit_the_same(scenes):
    m = ExtractThenInvert(P, extractor=VCA(snr=30.0), inverter="nnls", seed=3)
    deep = m.get_params()
    assert deep["extractor__snr"] == 30.0 and deep["inverter"] == "nnls"
    assert m.set_params(extractor__snr=None, inverter="fcls") is m
    assert m.extractor.snr is None and m.inverter == "fcls"
    again = make_method("vca", P, seed=3)
    np.testing.assert_array_equal(m.fit(scenes[0]).endmembers_, again.fit(scenes[0]).endmembers_)
    np.testing.assert_array_equal(m.abundances_, again.abundances_)


def test_set_params_stores_without_checking_and_refuses_unknown_names(scenes):
    m = ArchetypalAnalysis(P)
    m.set_params(n_restarts=0)  # checked by fit, as in scikit-learn
    with pytest.raises(ParameterError, match=r"^n_restarts=0: expected >= 1$"):
        m.fit(scenes[0])
    with pytest.raises(ParameterError, match=r"^n_restart=3: not a parameter of ArchetypalAnalysis; expected one of "):
        m.set_params(n_restart=3)
    with pytest.raises(ParameterError, match="has no parameters of its own"):
        ExtractThenInvert(P, extractor="vca").set_params(extractor__snr=3)


def test_repr_shows_the_parameters_that_differ_from_the_defaults():
    assert repr(ArchetypalAnalysis()) == "ArchetypalAnalysis()"
    assert repr(ArchetypalAnalysis(3, n_restarts=2, step_factors=(1.0,))) == (
        "ArchetypalAnalysis(n_endmembers=3, n_restarts=2, step_factors=(1.0,))")
    assert repr(ExtractThenInvert(4, extractor=VCA(snr=30), inverter="nnls")) == (
        "ExtractThenInvert(n_endmembers=4, extractor=VCA(snr=30), inverter='nnls')")
    assert repr(make_method("atgp", 5)) == "ExtractThenInvert(n_endmembers=5, extractor=ATGP())"


def test_set_params_names_a_misspelt_nested_parameter_as_given_and_sets_nothing():
    m = ExtractThenInvert(P, extractor=VCA())
    with pytest.raises(ParameterError, match=r"^extractor__snrr=3: not a parameter of VCA; expected one of snr$"):
        m.set_params(inverter="nnls", extractor__snrr=3)
    assert m.inverter == "fcls"  # nothing half-set
    with pytest.raises(ParameterError, match=r"^inverter__x=3: inverter has no parameters of its own$"):
        m.set_params(seed=5, inverter__x=3)
    assert m.seed == 0
