"""Abundance inversion: exactness against per-pixel references, KKT conditions, scene tiling."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

from unmixgen.errors import InputError, ParameterError
from unmixgen.scene import Scene
from unmixgen.unmix.inversion import (
    fcls,
    invert,
    invert_scene,
    nnls,
    project_simplex,
    scaled,
    scls,
    sunsal,
    unconstrained,
)


def enumerate_reference(Y, E, sum_to_one=True):
    """EXACT constrained LS by enumerating every support (2^p - 1), float64.

    On each support the equality-constrained LS is solved; the best feasible one wins.
    Vectorised over pixels per support.
    """
    Y = np.asarray(Y, np.float64)
    E = np.asarray(E, np.float64)
    n, p = Y.shape[0], E.shape[0]
    best = np.full(n, np.inf)
    A = np.zeros((n, p))
    if not sum_to_one:
        best = (Y**2).sum(1)  # a = 0
    for k in range(1, p + 1):
        for S in itertools.combinations(range(p), k):
            S = list(S)
            ES = E[S]
            if sum_to_one:
                M = np.zeros((k + 1, k + 1))
                M[:k, :k] = ES @ ES.T
                M[:k, k] = M[k, :k] = 1.0
                rhs = np.concatenate([Y @ ES.T, np.ones((n, 1))], axis=1)
                sol = np.linalg.lstsq(M, rhs.T, rcond=None)[0].T[:, :k]
            else:
                sol = np.linalg.lstsq(ES.T, Y.T, rcond=None)[0].T
            a = np.zeros((n, p))
            a[:, S] = np.maximum(sol, 0.0)
            obj = ((Y - a @ E) ** 2).sum(1)
            better = (sol >= -1e-12).all(1) & (obj < best)
            best[better] = obj[better]
            A[better] = a[better]
    return A


def objective(Y, E, A):
    r = np.asarray(Y, np.float64) - np.asarray(A, np.float64) @ np.asarray(E, np.float64)
    return (r**2).sum(1)


def smooth_endmembers(rng, p, bands, collinear=0.0):
    x = np.linspace(0, 1, bands)
    E = np.stack([0.35 + 0.25 * np.sin(2 * np.pi * (k + 1) * x / 3 + k) + 0.05 * rng.random(bands)
                  for k in range(p)])
    if collinear:
        E[1] = E[0] + collinear * rng.standard_normal(bands)  # near-duplicate endmember
    return E.astype(np.float32)


def mixed_pixels(rng, E, n, noise=0.02):
    p = E.shape[0]
    A = rng.dirichlet(np.full(p, 0.5), n)
    A[: n // 4] *= 1.6  # outside the simplex (too bright)
    A[n // 4 : n // 2] -= 0.15  # outside the simplex (negative parts)
    Y = A @ E + noise * rng.standard_normal((n, E.shape[1]))
    return Y.astype(np.float32)


def assert_fcls_kkt(Y, E, A, tol=1e-5):
    """KKT of min ||y - aE||^2 s.t. a >= 0, sum a = 1, in float64 from the float32 output."""
    A = A.astype(np.float64)
    assert (A >= 0).all()
    np.testing.assert_allclose(A.sum(1), 1.0, atol=1e-5)
    E64 = E.astype(np.float64)
    scale = np.trace(E64 @ E64.T) / E.shape[0]
    grad = (A @ E64 - Y.astype(np.float64)) @ E64.T / scale  # gradient of 0.5 * objective
    support = A > 1e-6
    # on the support the gradient is constant (= -mu); off it, not smaller than that
    g_sup = np.where(support, grad, np.nan)
    mu = np.nanmean(g_sup, axis=1)
    assert np.nanmax(np.abs(g_sup - mu[:, None])) < tol
    assert (grad - mu[:, None] > -tol).all()


@pytest.mark.parametrize("case", ["random", "smooth", "ill_conditioned", "p2"])
def test_fcls_equals_exact_enumeration(case):
    rng = np.random.default_rng(7)
    if case == "random":
        E = rng.random((5, 40)).astype(np.float32)
    elif case == "smooth":
        E = smooth_endmembers(rng, 5, 60)
    elif case == "ill_conditioned":
        E = smooth_endmembers(rng, 5, 60, collinear=2e-3)
    else:
        E = smooth_endmembers(rng, 2, 30)
    Y = mixed_pixels(rng, E, 400)
    A = fcls(Y, E)
    R = enumerate_reference(Y, E)
    assert A.dtype == np.float32 and A.shape == (400, E.shape[0])
    assert np.abs(A - R).max() < 1e-4
    # never worse than the exact solution beyond float32 rounding of the abundances
    fa, fr = objective(Y, E, A), objective(Y, E, R)
    assert (fa - fr <= 1e-6 * (1 + fr)).all()
    assert_fcls_kkt(Y, E, A)


def test_fcls_p2_closed_form():
    rng = np.random.default_rng(3)
    E = rng.random((2, 25)).astype(np.float32)
    Y = mixed_pixels(rng, E, 200)
    d = (E[0] - E[1]).astype(np.float64)
    t = np.clip((Y - E[1].astype(np.float64)) @ d / (d @ d), 0, 1)
    A = fcls(Y, E)
    np.testing.assert_allclose(A[:, 0], t, atol=1e-5)
    np.testing.assert_allclose(A[:, 1], 1 - t, atol=1e-5)


def test_fcls_kkt_many_endmembers_and_tiny_batches():
    rng = np.random.default_rng(11)
    E = smooth_endmembers(rng, 15, 80)
    Y = mixed_pixels(rng, E, 300, noise=0.05)
    A = fcls(Y, E)
    assert_fcls_kkt(Y, E, A)
    np.testing.assert_allclose(fcls(Y, E, batch_size=7), A, atol=1e-6)


def test_fcls_singular_endmembers_and_degenerate_pixels():
    rng = np.random.default_rng(5)
    E = rng.random((4, 30)).astype(np.float32)
    E[3] = E[2]  # exact duplicate: the solution is not unique, the objective is
    Y = mixed_pixels(rng, E, 100)
    Y[0] = 0.0  # all-zero pixel
    Y[1] = E[0]  # a pure pixel
    Y[2, 5] = np.nan  # broken pixel
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A = fcls(Y, E)
    assert np.isnan(A[2]).all()
    ok = np.ones(100, bool)
    ok[2] = False
    R = enumerate_reference(Y[ok], E)
    fa, fr = objective(Y[ok], E, A[ok]), objective(Y[ok], E, R)
    assert (fa - fr <= 1e-6 * (1 + fr)).all()
    assert (A[ok] >= 0).all()
    np.testing.assert_allclose(A[ok].sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(A[1], [1, 0, 0, 0], atol=1e-5)


def test_double_precision_recovers_exact_mixtures_of_near_duplicate_endmembers():
    # float64 pixels that are exact mixtures: the optimum is the mixing abundances. Two endmembers
    # 1e-5 apart make the Gram matrix nearly singular (condition ~1e10), the case "double" is for;
    # the centre subtracted from the pixels was the float32 rounding of the one in the endmembers'
    # differences, which shifted every pixel and moved abundances by 1e-4
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 50)
    E = np.stack([0.4 + 0.2 * np.sin(6 * x + k) for k in range(4)])
    E[3] = E[2] + 1e-5 * rng.standard_normal(50)
    A = rng.dirichlet(np.full(4, 2.0), 200)
    Y = A @ E
    for solver in (fcls, scls, nnls):
        for precision in ("auto", "double"):
            np.testing.assert_allclose(solver(Y, E, precision=precision), A, rtol=0, atol=2e-6)


def test_auto_precision_keeps_abundance_errors_of_exact_mixtures_below_2e5():
    # the documented promise of "auto": float64 products whenever float32 could move abundances by
    # more than about 2e-5. Float64 exact mixtures of increasingly collinear endmembers: the
    # optimum is the mixing abundances
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 50)
    A = rng.dirichlet(np.full(4, 2.0), 500)
    for spread in (3e-2, 1e-2, 3e-3, 1e-3):
        E = np.stack([0.4 + 0.2 * np.sin(6 * x + k) for k in range(4)])
        E[3] = E[2] + spread * rng.standard_normal(50)
        assert np.abs(fcls(A @ E, E, precision="auto") - A).max() <= 2e-5, spread


def kkt_pixels(rng, E, delta):
    """Pixels ``(n, bands)`` whose FCLS optimum is known by construction: abundances ``a`` with
    ``a_0 = delta`` (tiny), the last one zero, and a residual ``v E`` with ``v G = -lam``, where
    ``lam >= 0`` is non-zero at the last endmember only: the KKT conditions of ``a`` hold."""
    p = E.shape[0]
    G = E @ E.T
    A = np.zeros((delta.size, p))
    A[:, 0] = delta
    A[:, 1:p - 1] = rng.dirichlet(np.ones(p - 2), delta.size) * (1 - delta[:, None])
    lam = np.zeros((delta.size, p))
    lam[:, p - 1] = rng.uniform(0.05, 0.3, delta.size) * np.trace(G) / p
    V = -np.linalg.solve(G, lam.T).T
    return (A + V) @ E, A


def test_fcls_frees_a_bound_whose_multiplier_is_tiny_but_negative():
    # the optimum has a_0 of 2e-8..1e-7: held at zero, its multiplier is about -delta (normalised
    # units), above the documented -1e-4 * tol = -1e-10, so the bound must be released
    rng = np.random.default_rng(0)
    E = rng.uniform(0.1, 0.9, (4, 20))
    delta = rng.uniform(2e-8, 1e-7, 300)
    Y, A = kkt_pixels(rng, E, delta)
    got = fcls(Y, E, precision="double")
    np.testing.assert_allclose(got, A, rtol=0, atol=6e-8)  # float32 rounding of abundances up to 1
    np.testing.assert_allclose(got[:, 0], delta, rtol=1e-4)
    # a looser tol keeps such bounds: a_0 = 0 where delta is below about 1e-4 * tol
    loose = fcls(Y, E, precision="double", tol=1e-2)
    assert (loose[:, 0] == 0).mean() > 0.5
    # the tolerance is in normalised units: the same answer for data in other units (e.g. x 10000)
    for s in (1e-3, 1e4):
        np.testing.assert_allclose(fcls(Y * s, E * s, precision="double", tol=1e-2), loose, rtol=0, atol=6e-8)


def test_nnls_matches_scipy():
    rng = np.random.default_rng(2)
    E = rng.random((6, 35)).astype(np.float32)
    Y = mixed_pixels(rng, E, 200)
    Y[:20] -= 0.3  # some pixels want all-zero or mostly-zero abundances
    A = nnls(Y, E)
    E64 = E.astype(np.float64).T
    ref = np.stack([scipy_nnls(E64, y.astype(np.float64))[0] for y in Y])
    assert A.dtype == np.float32
    assert np.abs(A - ref).max() < 1e-5
    assert (A >= 0).all()


def test_scaled_is_brightness_free_and_matches_scipy_nnls_normalised():
    rng = np.random.default_rng(4)
    E = rng.random((4, 30)).astype(np.float32) + 0.1
    A = rng.dirichlet(np.ones(4), 300)
    s = rng.uniform(0.1, 3.0, (300, 1))  # brightness per pixel
    clean = (s * A @ E).astype(np.float32)
    np.testing.assert_allclose(scaled(clean, E), A, atol=1e-4)  # the truth, whatever the brightness
    assert np.abs(fcls(clean, E) - A).max() > 0.1  # the linear model's answer is not
    Y = clean + 0.05 * rng.standard_normal(clean.shape).astype(np.float32)
    Y[:5] = -1.0  # NNLS gives all zeros: uniform abundances
    ref = np.stack([scipy_nnls(E.T.astype(np.float64), y.astype(np.float64))[0] for y in Y])
    total = ref.sum(1, keepdims=True)
    ref = np.where(total > 0, ref / np.where(total > 0, total, 1), 0.25)
    got = invert(Y, E, "scaled")
    assert got.dtype == np.float32 and np.abs(got - ref).max() < 1e-4
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("method", ["fcls", "nnls", "scls", "scaled", "ls", "sunsal"])
def test_every_inverter_gives_nan_rows_for_nan_or_inf_pixels_quietly(method):
    # the module's promise; `scaled` divided the NaN coefficients and gave 1/p to a NaN pixel
    rng = np.random.default_rng(6)
    E = rng.random((3, 20)).astype(np.float32) + 0.1
    Y = mixed_pixels(rng, E, 10)
    Y[2, 4] = np.nan
    Y[7, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an Inf pixel also gave numpy's "invalid value in matmul"
        A = invert(Y, E, method)
    assert np.isnan(A[[2, 7]]).all()
    assert np.isfinite(np.delete(A, [2, 7], axis=0)).all()


def test_pixel_brightness_is_the_nnls_sum_for_scaled_and_the_least_squares_scale_otherwise():
    from unmixgen.unmix.inversion import pixel_brightness

    rng = np.random.default_rng(5)
    E = rng.random((3, 25)).astype(np.float32) + 0.1
    A = rng.dirichlet(np.ones(3), 200)
    s = rng.uniform(0.2, 3.0, 200)
    Y = (s[:, None] * A @ E + 0.01 * rng.standard_normal((200, 25))).astype(np.float32)
    nn = np.stack([scipy_nnls(E.T.astype(np.float64), y.astype(np.float64))[0] for y in Y])
    np.testing.assert_allclose(pixel_brightness(Y, scaled(Y, E), E), nn.sum(1), rtol=1e-3)
    # any abundances: the scale minimising ||y - s aE||, checked on a fine grid of s
    B = rng.dirichlet(np.ones(3), 200)
    got = pixel_brightness(Y, B, E)
    grid = np.linspace(0, 6, 6001)
    R = B @ E
    cost = ((Y[:, None, :] - grid[None, :, None] * R[:, None, :]) ** 2).sum(-1)
    np.testing.assert_allclose(got, grid[cost.argmin(1)], atol=2e-3)
    # more pixels than one chunk: the same closed form for every row
    Yb = np.tile(Y, (200, 1))
    Bb = np.tile(B, (200, 1))
    Rb = Bb @ E.astype(np.float64)
    np.testing.assert_allclose(pixel_brightness(Yb, Bb, E),
                               np.maximum((Yb * Rb).sum(1), 0) / (Rb * Rb).sum(1), rtol=1e-5)
    # a pixel anti-correlated with aE gets 0; a zero reconstruction or NaN abundances give NaN
    Z = np.zeros((3, 3), np.float32)
    Z[1, 0] = np.nan
    out = pixel_brightness(np.stack([-E[0], E[0], E[1]]), np.vstack([[1, 0, 0], [np.nan, 0, 0], [0, 0, 0]]), E)
    assert out[0] == 0.0 and np.isnan(out[1]) and np.isnan(out[2])


def test_scene_brightness_by_tiles_equals_the_pixels_on_a_non_square_scene():
    from unmixgen.scene import Scene
    from unmixgen.unmix.inversion import invert_scene, pixel_brightness

    rng = np.random.default_rng(6)
    E = rng.random((3, 12)).astype(np.float32) + 0.1
    A = rng.dirichlet(np.ones(3), (7, 11)).astype(np.float32)
    cube = (rng.uniform(0.5, 2.0, (7, 11, 1)) * (A @ E)).astype(np.float32)
    cube[2, 3] = np.nan  # an invalid pixel
    scene = Scene(cube)
    good = np.ones(12, bool)
    good[[0, 5]] = False  # two bands not fitted
    A, got = invert_scene(scene, E, "scaled", bands=good, tile_size=4, progress=False, with_brightness=True)
    assert got.shape == (7, 11) and np.isnan(got[2, 3])
    m = scene.mask
    np.testing.assert_allclose(got[m], pixel_brightness(cube[m][:, good], A[m], E[:, good]), rtol=1e-6)


def test_scls_closed_form_sum_to_one():
    rng = np.random.default_rng(4)
    E = rng.random((4, 30)).astype(np.float32)
    Y = mixed_pixels(rng, E, 150)
    A = scls(Y, E)
    np.testing.assert_allclose(A.sum(1), 1.0, atol=1e-5)
    assert (A < 0).any()  # unconstrained in sign
    # Lagrange closed form in float64
    E64 = E.astype(np.float64)
    Gi = np.linalg.inv(E64 @ E64.T)
    u = Y.astype(np.float64) @ E64.T @ Gi
    ones = np.ones(4)
    ref = u - np.outer(u @ ones - 1, Gi @ ones / (ones @ Gi @ ones))
    np.testing.assert_allclose(A, ref, atol=1e-4)


def test_unconstrained_matches_lstsq():
    rng = np.random.default_rng(6)
    E = rng.random((5, 30)).astype(np.float32)
    Y = mixed_pixels(rng, E, 100)
    ref = np.linalg.lstsq(E.astype(np.float64).T, Y.astype(np.float64).T, rcond=None)[0].T
    A = invert(Y, E, "ls")
    np.testing.assert_array_equal(A, unconstrained(Y, E))
    assert A.dtype == np.float32
    np.testing.assert_allclose(A, ref, atol=1e-4)


def test_precision_modes_agree():
    rng = np.random.default_rng(8)
    E = smooth_endmembers(rng, 5, 50)
    Y = mixed_pixels(rng, E, 300)
    a32 = fcls(Y, E, precision="single")
    a64 = fcls(Y, E, precision="double")
    assert np.abs(a32 - a64).max() < 1e-4


def test_project_simplex():
    rng = np.random.default_rng(9)
    V = rng.standard_normal((50, 6))
    P = project_simplex(V)
    np.testing.assert_allclose(P.sum(1), 1)
    assert (P >= 0).all()
    # projection of a point is the FCLS solution with E = identity
    np.testing.assert_allclose(fcls(V.astype(np.float32), np.eye(6, dtype=np.float32)), P, atol=1e-5)


def test_invert_scene_nonsquare_with_invalid_pixels():
    rng = np.random.default_rng(10)
    rows, cols, bands = 13, 21, 24
    E = rng.random((3, bands)).astype(np.float32)
    A = rng.dirichlet(np.ones(3), rows * cols).reshape(rows, cols, 3)
    cube = (A @ E + 0.01 * rng.standard_normal((rows, cols, bands))).astype(np.float32)
    good = np.ones(bands, bool)
    good[[2, 9]] = False
    cube[:, :, 2] = 1e6  # a bad band that would spoil the fit if it were used
    cube[0, 0] = np.nan
    cube[5, 17] = 0.0
    cube[12, 3, 4] = np.inf
    scene = Scene(cube, good_bands=good)
    out = invert_scene(scene, E, "fcls", tile_size=5)
    assert out.shape == (rows, cols, 3) and out.dtype == np.float32
    mask = scene.mask
    assert mask.sum() == rows * cols - 3
    assert np.isnan(out[~mask]).all()
    direct = invert(cube[mask][:, good], E[:, good], "fcls")
    np.testing.assert_allclose(out[mask], direct, atol=1e-6)
    # endmembers given on the good bands only give the same
    np.testing.assert_allclose(invert_scene(scene, E[:, good], "nnls", tile_size=8)[mask],
                               invert(cube[mask][:, good], E[:, good], "nnls"), atol=1e-6)


def test_sunsal_matches_exact_solvers_without_penalty():
    rng = np.random.default_rng(12)
    E = rng.random((5, 40)).astype(np.float32)
    Y = mixed_pixels(rng, E, 300)
    assert np.abs(sunsal(Y, E, lam=0.0, tol=1e-7) - nnls(Y, E)).max() < 2e-3
    S = sunsal(Y, E, lam=0.0, sum_to_one=True, tol=1e-7)
    assert np.abs(S - fcls(Y, E)).max() < 2e-3
    np.testing.assert_allclose(S.sum(1), 1, atol=1e-3)


def test_sunsal_recovers_sparse_support_from_library():
    rng = np.random.default_rng(13)
    L = rng.random((40, 50)).astype(np.float32)
    n = 200
    A = np.zeros((n, 40))
    for i in range(n):  # test fixture only
        A[i, rng.choice(40, 3, replace=False)] = rng.dirichlet(np.ones(3))
    Y = (A @ L + 1e-3 * rng.standard_normal((n, 50))).astype(np.float32)
    S = invert(Y, L, "sunsal", lam=1e-3)
    assert (S >= 0).all() and S.dtype == np.float32
    assert np.abs(S - A).max() < 0.05
    assert ((S > 0.02) == (A > 0.02)).mean() > 0.99


def test_bad_arguments_raise_input_error():
    E = np.ones((3, 10), np.float32)
    with pytest.raises(ParameterError, match=r"^method='magic': not an inversion method; expected one of fcls, "):
        invert(np.ones((4, 10), np.float32), E, "magic")
    with pytest.raises(InputError, match="bands"):
        fcls(np.ones((4, 9), np.float32), E)
    with pytest.raises(InputError, match="endmembers"):
        invert_scene(Scene(np.ones((2, 3, 10), np.float32)), np.ones((3, 7), np.float32))


def test_invert_scene_takes_a_cube_array_and_refuses_a_band_selection_that_does_not_fit():
    rng = np.random.default_rng(8)
    E = rng.random((3, 12)).astype(np.float32) + 0.1
    cube = mixed_pixels(rng, E, 5 * 7).reshape(5, 7, 12)
    # a (rows, cols, bands) array, as `transform` and `fit` take it (was an AttributeError)
    np.testing.assert_array_equal(invert_scene(cube, E, progress=False),
                                  invert_scene(Scene(cube), E, progress=False))
    scene = Scene(cube)
    # no band selected: every pixel got the abundances of an empty problem, without a word
    with pytest.raises(InputError, match=r"^bands: selects none of the scene's 12 bands; expected at least one"):
        invert_scene(scene, E, bands=np.zeros(12, bool))
    # a selection of another length: ignored when all True, an IndexError otherwise
    for bands in ([True] * 3, [True, False, True]):
        with pytest.raises(InputError, match=r"^bands: 3 flags for a scene of 12 bands; expected one per band"):
            invert_scene(scene, E, bands=bands)


@pytest.mark.parametrize("method", ["fcls", "scaled", "sunsal"])
def test_inverters_refuse_values_that_are_not_real_numbers(method):
    # complex pixels were solved with numpy's ComplexWarning and the imaginary part dropped
    # (a Scene refuses them); text was a numpy UFuncTypeError
    E = np.random.default_rng(9).random((3, 6)) + 0.1
    Y = np.ones((4, 6))
    for bad, which in ((Y.astype(np.complex64), "pixels"), (Y.astype(str), "pixels"),
                       (E.astype(np.complex128), "endmembers")):
        args = (bad, E) if which == "pixels" else (Y, bad)
        with pytest.raises(InputError, match=rf"^{which} have dtype {bad.dtype}; expected real numbers"):
            invert(*args, method)


def test_an_option_the_inverter_does_not_take_is_named():
    # invert: "fcls() got an unexpected keyword argument 'lam'" (a TypeError); invert_scene
    # named an internal class, "_LinearInverter.__init__() got an unexpected keyword ..."
    E = np.ones((3, 10), np.float32) + np.eye(3, 10, dtype=np.float32)
    for call in (lambda: invert(np.ones((4, 10), np.float32), E, "fcls", lam=0.1),
                 lambda: invert_scene(Scene(np.ones((2, 3, 10), np.float32)), E, "fcls", lam=0.1)):
        with pytest.raises(ParameterError, match=r"^lam=0.1: not a parameter of inverter 'fcls'; expected one of "
                                                 r"tol, max_iter, batch_size, precision, n_threads$"):
            call()
    assert invert_scene(Scene(np.ones((2, 3, 10), np.float32)), E, "sunsal", lam=0.1, progress=False).shape == (2, 3, 3)


@pytest.mark.parametrize("method, kw, message", [
    ("fcls", {"tol": 0.0}, "tol=0.0: expected > 0"),
    ("nnls", {"batch_size": 0}, "batch_size=0: expected >= 1"),
    ("fcls", {"n_threads": 0}, "n_threads=0: expected >= 1"),
    ("fcls", {"precision": "half"}, "precision='half': expected 'auto', 'single' or 'double'"),
    ("sunsal", {"lam": -1.0}, "lam=-1.0: expected >= 0"),
    ("sunsal", {"mu": 0.0}, "mu=0.0: expected > 0"),
    ("sunsal", {"max_iter": 0}, "max_iter=0: expected >= 1"),
    ("sunsal", {"n_threads": 0}, "n_threads=0: expected >= 1"),
])
def test_bad_solver_parameters_are_named(method, kw, message):
    """Errors name the solver's parameter (the CLI maps names to flags), whatever the input size."""
    E = np.eye(3, 10, dtype=np.float32) + 0.1
    with pytest.raises(ParameterError) as err:
        invert(np.ones((4, 10), np.float32), E, method, **kw)
    assert str(err.value) == message
    assert err.value.name == next(iter(kw))


def test_sunsal_threads_give_identical_results():
    rng = np.random.default_rng(18)
    E = rng.random((4, 12)).astype(np.float32)
    Y = mixed_pixels(rng, E, 20000)
    # ADMM stops per batch, so only equal batches give equal results; threads must not matter
    one = sunsal(Y, E, lam=1e-4, n_threads=1, batch_size=5000)
    np.testing.assert_array_equal(sunsal(Y, E, lam=1e-4, n_threads=2, batch_size=5000), one)
    assert (one >= 0).all()


def test_threads_and_batches_give_identical_results():
    rng = np.random.default_rng(14)
    E = rng.random((3, 12)).astype(np.float32)
    Y = mixed_pixels(rng, E, 20000)
    one = fcls(Y, E, n_threads=1)
    np.testing.assert_array_equal(fcls(Y, E, n_threads=2), one)
    np.testing.assert_array_equal(fcls(Y, E, n_threads=3, batch_size=4099), one)
    assert (one >= 0).all()


def test_direct_and_cached_eqp_solves_agree(monkeypatch):
    """Rare working sets are solved per pixel (stacked KKT systems), common ones via cached maps."""
    from unmixgen.unmix import inversion

    rng = np.random.default_rng(15)
    E = smooth_endmembers(rng, 8, 40)
    Y = mixed_pixels(rng, E, 400)
    cached = fcls(Y, E)
    monkeypatch.setattr(inversion._EqpCache, "min_group", 10**9)  # nothing cached
    direct = fcls(Y, E)
    np.testing.assert_allclose(direct, cached, atol=1e-6)
    np.testing.assert_allclose(nnls(Y, E), nnls(Y, E, batch_size=50), atol=1e-6)
    assert_fcls_kkt(Y, E, direct)


@pytest.mark.parametrize("p, bands", [(25, 60), (40, 30)])
def test_fcls_kkt_large_libraries(p, bands):
    """p > 20 uses a sorted code search; p > bands makes every Gram system singular."""
    rng = np.random.default_rng(16)
    E = rng.random((p, bands)).astype(np.float32)
    A = rng.dirichlet(np.full(p, 0.1), 150)
    Y = (A @ E + 0.01 * rng.standard_normal((150, bands))).astype(np.float32)
    X = fcls(Y, E)
    assert_fcls_kkt(Y, E, X)


def test_iteration_limit_warns_and_stays_feasible():
    from unmixgen.errors import ConvergenceWarning

    rng = np.random.default_rng(17)
    E = rng.random((6, 30)).astype(np.float32)
    Y = mixed_pixels(rng, E, 200)
    with pytest.warns(ConvergenceWarning, match="did not meet the KKT conditions"):
        X = fcls(Y, E, max_iter=1)
    assert (X >= 0).all()
    np.testing.assert_allclose(X.sum(1), 1, atol=1e-5)


def test_weighted_scene_inversion_is_least_squares_on_weighted_pixels_and_bad_weights_are_refused():
    from unmixgen.unmix.inversion import fcls, invert_scene

    rng = np.random.default_rng(3)
    E = rng.uniform(0.1, 0.9, (3, 12)).astype(np.float32)
    A = rng.dirichlet(np.ones(3), 7 * 9).astype(np.float32)
    Y = (A @ E + 0.02 * rng.standard_normal((63, 12))).astype(np.float32)
    w = rng.uniform(0.2, 5.0, 12).astype(np.float32)
    scene = Scene(Y.reshape(7, 9, 12))
    got = invert_scene(scene, E, "fcls", band_weights=w, progress=False, tile_size=4)
    np.testing.assert_allclose(got.reshape(-1, 3), fcls(Y * w, E * w), atol=1e-6)
    assert np.abs(got.reshape(-1, 3) - fcls(Y, E)).max() > 1e-3  # the weights matter
    for bad in (w[:-1], np.r_[w[:-1], 0.0], np.r_[w[:-1], np.nan]):
        with pytest.raises(ParameterError, match="band_weights"):
            invert_scene(scene, E, "fcls", band_weights=bad, progress=False)
    # with bad bands: weights given per scene band apply to the good bands they belong to, and the
    # brightness is the least-squares scale of the weighted pixel onto the weighted model
    good = np.ones(12, bool)
    good[[2, 7]] = False
    got, bright = invert_scene(Scene(Y.reshape(7, 9, 12), good_bands=good), E, "fcls", band_weights=w,
                               progress=False, tile_size=4, with_brightness=True)
    Yw, Ew = Y[:, good] * w[good], E[:, good] * w[good]
    np.testing.assert_allclose(got.reshape(-1, 3), fcls(Yw, Ew), atol=1e-6)
    R = got.reshape(-1, 3).astype(np.float64) @ Ew
    np.testing.assert_allclose(bright.reshape(-1), np.maximum((Yw * R).sum(1), 0) / (R * R).sum(1), rtol=1e-5)


def test_weighted_inversion_by_blocks_is_least_squares_on_weighted_pixels(monkeypatch):
    from unmixgen.unmix import inversion
    from unmixgen.unmix.inversion import fcls, invert_weighted

    rng = np.random.default_rng(4)
    E = rng.uniform(0.1, 0.9, (3, 12)).astype(np.float32)
    Y = (rng.dirichlet(np.ones(3), 50) @ E + 0.02 * rng.standard_normal((50, 12))).astype(np.float32)
    w = rng.uniform(0.2, 5.0, 12).astype(np.float32)
    monkeypatch.setattr(inversion, "WEIGHTED_BLOCK", 7)  # several blocks and a short last one
    # equal up to float32 rounding: BLAS may sum a block's products in another order
    np.testing.assert_allclose(invert_weighted(Y, E * w, "fcls", w), fcls(Y * w, E * w), rtol=0, atol=1e-6)
    np.testing.assert_allclose(invert_weighted(Y, E, "fcls", None), fcls(Y, E), rtol=0, atol=1e-6)
    assert invert_weighted(Y[:0], E * w, "fcls", w).shape == (0, 3)


def test_invert_scene_refuses_a_band_selection_that_takes_bad_bands_holding_nan():
    # a selection over the scene's bad bands (bands=covered, not covered & good_bands) took
    # their NaN fill into every valid pixel: all abundances NaN, without a word
    rng = np.random.default_rng(8)
    E = rng.random((3, 12)).astype(np.float32) + 0.1
    cube = mixed_pixels(rng, E, 5 * 7).reshape(5, 7, 12)
    good = np.ones(12, bool)
    good[[3, 4]] = False
    filled = cube.copy()
    filled[..., 3] = np.nan
    for all_bands in (np.ones(12, bool), np.r_[np.ones(11, bool), False]):
        with pytest.raises(InputError, match=r"^bands: selects band 4 that the scene flags bad .*NaN"):
            invert_scene(Scene(filled, good_bands=good), E, bands=all_bands, progress=False, tile_size=4)
    # a flagged band that holds numbers may be selected on purpose, and is used
    got = invert_scene(Scene(cube, good_bands=good), E, bands=np.ones(12, bool), progress=False, tile_size=4)
    np.testing.assert_allclose(got, invert_scene(Scene(cube), E, progress=False), atol=1e-6)
