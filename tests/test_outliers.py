"""Gross outlier pixels (saturated, spikes) are found and kept out of the blind default's fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from spectra_fixture import smooth_spectra
from unmixgen.errors import ConvergenceWarning, ParameterError
from unmixgen.scene import Scene
from unmixgen.unmix.outliers import gross_outliers, outlier_scores
from unmixgen.unmix.registry import make_method

ROWS, COLS, BANDS, P = 40, 50, 80, 3


def _mixtures(seed: int = 0, snr_db: float = 30.0, scale: float = 0.0):
    """Dirichlet mixtures ``(N, BANDS)`` of ``P`` smooth spectra with white noise at ``snr_db``;
    ``scale``: std of a log-normal brightness per pixel. Returns (Y float32, E, A)."""
    rng = np.random.default_rng(seed)
    E = smooth_spectra(P, BANDS, rng).astype(np.float32)
    A = rng.dirichlet(np.full(P, 0.6), ROWS * COLS).astype(np.float32)
    X = A @ E
    if scale:
        X = X * np.exp(scale * rng.standard_normal((len(X), 1)))
    sigma = np.sqrt(np.mean(X**2) / 10 ** (snr_db / 10))
    return (X + sigma * rng.standard_normal(X.shape)).astype(np.float32), E, A


def _corrupt(Y: np.ndarray, kind: str, n: int = 8, seed: int = 1):
    """``Y`` with ``n`` pixels saturated (flat at the scene's maximum) or spiked (three bands x5)."""
    rng = np.random.default_rng(seed)
    Y = Y.copy()
    idx = rng.choice(len(Y), n, replace=False)
    for i in idx:
        if kind == "saturated":
            Y[i] = Y.max()
        else:
            Y[i, rng.choice(BANDS, 3, replace=False)] *= 5
    bad = np.zeros(len(Y), bool)
    bad[idx] = True
    return Y, bad


@pytest.mark.parametrize("scale", [0.0, 0.3])
def test_clean_mixtures_have_no_outliers_also_with_brightness_variation(scale):
    Y, _, _ = _mixtures(scale=scale)
    assert gross_outliers(Y, P) is None
    s = outlier_scores(Y, P)
    assert abs(np.median(s.residual) - 1) < 1e-9 and s.residual.max() < s.residual_threshold
    assert s.leverage.max() < 0.05 and abs(s.leverage.sum() - P) < 1e-6  # the shares sum to one per direction
    assert s.hyperplane.max() < s.hyperplane_threshold
    if not scale:  # about normal across the sum-to-one hyperplane: noise units
        assert 2.0 < np.quantile(s.hyperplane, 0.99) < 3.2


@pytest.mark.parametrize("kind", ["saturated", "spikes"])
def test_saturated_and_spiked_pixels_are_found_and_nothing_else(kind):
    Y, bad = _corrupt(_mixtures()[0], kind)
    np.testing.assert_array_equal(gross_outliers(Y, P), bad)


def _rare_material(pure: int) -> np.ndarray:
    """Pixels whose bulk mixes two of the three materials, the third pure in ``pure`` pixels only."""
    Y, E, A = _mixtures()
    A = A.copy()
    A[:, 2] = 0
    A /= A.sum(1, keepdims=True)
    A[:pure] = [0, 0, 1]
    return (A @ E + 0.003 * np.random.default_rng(5).standard_normal(Y.shape)).astype(np.float32)


def test_a_material_in_a_few_pure_pixels_is_not_an_outlier():
    assert gross_outliers(_rare_material(3), P) is None


def test_the_weighted_scores_are_those_of_the_weighted_pixels():
    Y, bad = _corrupt(_mixtures()[0], "spikes")
    w = np.linspace(0.5, 2.0, BANDS).astype(np.float32)
    a, b = outlier_scores(Y, P, weights=w), outlier_scores(Y * w, P)
    for key in ("residual", "leverage", "hyperplane"):  # Y * w rounded to float32
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=1e-4, atol=1e-3)
    assert a.residual_threshold == pytest.approx(b.residual_threshold, rel=1e-4)
    X = Y.astype(np.float64) * w.astype(np.float64)
    gram = X.T @ X / len(Y)
    np.testing.assert_allclose(outlier_scores(Y, P, weights=w, gram=gram).hyperplane, a.hyperplane, rtol=1e-6)


@pytest.mark.parametrize("kind", ["saturated", "spikes"])
def test_the_blind_default_fits_around_the_outliers(kind):
    from unmixgen.evaluate.unmixing import evaluate

    Y0, E, A = _mixtures(seed=3)
    Y, bad = _corrupt(Y0, kind)
    scene = Scene(Y.reshape(ROWS, COLS, BANDS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clean = make_method("auto", P, seed=0).fit(Scene(Y0.reshape(ROWS, COLS, BANDS)))
        with pytest.warns(UserWarning, match=f"{int(bad.sum())} of {ROWS * COLS} pixels .* left out of the fit"):
            screened = make_method("auto", P, seed=0).fit(scene)
        plain = make_method("auto", P, seed=0, screen_outliers=False).fit(scene)
    assert screened.info_["outliers"] == {"screened": True, "pixels": int(bad.sum())}
    assert plain.info_["outliers"] == {"screened": False, "pixels": 0}
    assert clean.info_["outliers"]["pixels"] == 0
    np.testing.assert_array_equal(screened.outliers_.reshape(-1), bad)
    assert clean.outliers_ is None and plain.outliers_ is None

    def sad(m):
        return evaluate(endmembers=m.endmembers_, abundances=m.abundances_, ref_endmembers=E,
                        ref_abundances=A.reshape(ROWS, COLS, P))["sad_deg_mean"]

    assert sad(screened) < sad(clean) + 0.1
    if kind == "saturated":  # the simplex reaches for them otherwise
        assert sad(plain) > sad(clean) + 1.0
    # the outliers' abundances are those transform gives them; the others the fit's own
    A_s = screened.abundances_.reshape(-1, P)
    np.testing.assert_allclose(A_s[bad], screened.transform(Y[bad]), atol=1e-5)
    assert np.all(np.isfinite(A_s)) and np.allclose(A_s.sum(1), 1, atol=1e-4)


def test_screen_outliers_must_be_a_bool():
    with pytest.raises(ParameterError, match="screen_outliers"):
        make_method("auto", P, screen_outliers="yes").fit(Scene(_mixtures()[0].reshape(ROWS, COLS, BANDS)))


def test_noise_free_mixtures_have_no_outliers_but_saturated_pixels_still_are():
    # without noise the residuals are float rounding: scored against that, any pixel could stand out
    _, E, A = _mixtures()
    Y = (A @ E).astype(np.float32)
    assert gross_outliers(Y, P) is None
    Y[:4] = Y.max()
    np.testing.assert_array_equal(np.flatnonzero(gross_outliers(Y, P)), [0, 1, 2, 3])


def test_a_glint_in_the_materials_span_is_found_off_the_sum_to_one_hyperplane():
    # three times the brightness of a mixture: in the subspace (no residual to speak of), far
    # beyond the simplex; the simplex fit would stretch to reach it
    Y, E, A = _mixtures()
    Y = Y.copy()
    Y[[5, 50, 500]] = 3.0 * (np.array([0.2, 0.5, 0.3], np.float32) @ E)
    s = outlier_scores(Y, P)
    assert s.residual[[5, 50, 500]].max() < s.residual_threshold  # the off-subspace test misses it
    assert s.hyperplane[[5, 50, 500]].min() > s.hyperplane_threshold
    np.testing.assert_array_equal(np.flatnonzero(gross_outliers(Y, P)), [5, 50, 500])
    # brightness varying per pixel everywhere (the scaled model): the same pixels are not outliers
    Yb, _, _ = _mixtures(scale=0.3)
    Yb = Yb.copy()
    Yb[[5, 50, 500]] = 1.5 * (np.array([0.2, 0.5, 0.3], np.float32) @ E)
    assert gross_outliers(Yb, P) is None


@pytest.mark.parametrize("factor", [2.0, 4.0, 10.0])
def test_identical_saturated_pixels_far_brighter_than_the_scene_are_found(factor):
    # sixteen identical pixels take a direction of the subspace for themselves (each holds 1/16 of
    # it) and bend the sum-to-one hyperplane to them: the first pass saw nothing
    Y, E, _ = _mixtures()
    Y = Y.copy()
    idx = np.random.default_rng(2).choice(len(Y), 16, replace=False)
    Y[idx] = factor * Y.max()
    flagged = gross_outliers(Y, P)
    assert flagged is not None
    np.testing.assert_array_equal(np.flatnonzero(flagged), np.sort(idx))


def test_mean_subtracted_pixels_are_not_scored_against_a_hyperplane_they_lack():
    # centred data lie on no sum-to-one hyperplane: its fit is rounding, and a rare material's
    # two pure pixels were put hundreds of noise units off it
    Y = _rare_material(2)
    s = outlier_scores(Y - Y.mean(axis=0), P)
    assert np.all(np.isfinite(s.hyperplane)) and not np.any(s.hyperplane > s.hyperplane_threshold)


def test_bad_bands_of_the_endmembers_come_from_the_pixels_the_fit_used():
    # the endmembers' values on bands the scene flags bad are fitted to the pixels; saturated
    # pixels the fit left out pulled them too
    from unmixgen.unmix.base import fill_bad_bands

    Y0, _, _ = _mixtures(seed=3)
    Y, bad = _corrupt(Y0, "saturated")
    good = np.ones(BANDS, bool)
    good[30:34] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = make_method("auto", P, seed=0).fit(Scene(Y.reshape(ROWS, COLS, BANDS), good_bands=good))
    A = m.abundances_.reshape(-1, P)
    expected = fill_bad_bands(m.endmembers_[:, good], A[~bad], Y[~bad], good)
    np.testing.assert_allclose(m.endmembers_[:, ~good], expected[:, ~good], rtol=1e-5, atol=1e-6)
    everything = fill_bad_bands(m.endmembers_[:, good], A, Y, good)
    assert np.abs(everything[:, ~good] - expected[:, ~good]).max() > 1e-3  # the outliers would have moved them
