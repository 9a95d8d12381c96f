"""Blind iterative unmixing methods (archetypal analysis, min-volume NMF) and the registry."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from unmixgen.errors import ConvergenceWarning, InputError, ParameterError
from unmixgen.scene import Scene
from unmixgen.simplex import project_simplex_torch as _project_simplex
from unmixgen.unmix.archetypal import ArchetypalAnalysis, select_restart
from unmixgen.unmix.minvol import MinVolNMF
from unmixgen.unmix.preprocessing import brightness_ratio, normalize_brightness
from unmixgen.unmix.registry import DEFAULT_METHOD, METHODS, make_method

ROWS, COLS, BANDS, P = 30, 40, 50, 3


def _truth(seed: int = 0, max_abundance: float = 0.92):
    """Smooth positive spectra and abundances on the simplex, capped (few pure pixels)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, BANDS)
    E = np.stack([
        0.2 + 0.5 * x,
        0.6 - 0.4 * x + 0.1 * np.sin(6 * x),
        0.3 + 0.3 * np.exp(-((x - 0.5) ** 2) / 0.02),
    ]).astype(np.float32)
    A = rng.dirichlet(np.full(P, 0.4), size=ROWS * COLS)
    # make the scene reach near the vertices but leave no exactly pure pixel
    A[: 3 * P] = np.repeat(np.eye(P), 3, axis=0) * max_abundance + (1 - max_abundance) / P
    rng.shuffle(A)
    A = A.astype(np.float32)
    return E, A


def _scene(seed: int = 0, noise: float = 0.002, invalid: bool = False):
    E, A = _truth(seed)
    rng = np.random.default_rng(seed + 100)
    Y = A @ E + noise * rng.standard_normal((ROWS * COLS, BANDS)).astype(np.float32)
    cube = Y.reshape(ROWS, COLS, BANDS).astype(np.float32)
    if invalid:
        cube[2, 5] = np.nan
        cube[7, 11] = 0.0
    return Scene(cube), E, A.reshape(ROWS, COLS, P)


def _match(E_est, A_est, E, A):
    """Abundance RMSE and max SAD (deg) after the best permutation (p = 3: all 6)."""
    from itertools import permutations

    best = None
    a_est = A_est.reshape(-1, P)
    a = A.reshape(-1, P)
    for perm in permutations(range(P)):
        perm = list(perm)
        rmse = float(np.sqrt(np.nanmean((a_est[:, perm] - a) ** 2)))
        if best is None or rmse < best[0]:
            cos = (E_est[perm] * E).sum(1) / np.linalg.norm(E_est[perm], axis=1) / np.linalg.norm(E, axis=1)
            best = (rmse, float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max()))
    return best


FAST = {
    "edaa": {"n_restarts": 4, "n_outer": 60, "n_inner": 15, "brightness": "none"},
    "mvnmf": {"max_iter": 200},
}


@pytest.mark.parametrize("name", ["edaa", "mvnmf"])
def test_recovers_known_endmembers_and_abundances(name):
    scene, E, A = _scene()
    m = make_method(name, P, seed=0, **FAST[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(scene)
    rmse, sad_max = _match(m.endmembers_, m.abundances_, E, A)
    assert sad_max < 3.0, sad_max
    assert rmse < 0.05, rmse
    a = m.abundances_.reshape(-1, P)
    assert (a >= 0).all()
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-4)
    conv = m.info_["convergence"]
    assert conv["iterations"] >= 1 and len(conv["objective_history"]) >= 1
    assert isinstance(conv["converged"], bool) and "selected_restart" in conv


def test_brightness_normalisation_handles_scaled_pixels():
    """Per-pixel illumination scaling (y = s * a @ E) leaves EDAA's abundances intact."""
    E, A = _truth(1)
    s = np.random.default_rng(5).uniform(0.6, 1.4, size=(ROWS * COLS, 1)).astype(np.float32)
    cube = (s * (A @ E)).reshape(ROWS, COLS, BANDS)
    m = ArchetypalAnalysis(P, seed=0, n_restarts=4, n_outer=60, brightness="sum", brightness_floor=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(Scene(cube))
    # abundances of the sum-normalised model are weighted by each endmember's band sum
    w = A * E.sum(1)
    w /= w.sum(1, keepdims=True)
    rmse, sad_max = _match(m.endmembers_, m.abundances_, E, w.reshape(ROWS, COLS, P))
    assert sad_max < 3.0 and rmse < 0.05, (rmse, sad_max)


def test_normalize_brightness_floor():
    Y = np.array([[1.0, 1.0], [2.0, 2.0], [0.1, 0.1]], np.float32)
    out = normalize_brightness(Y, floor=0.5, norm="sum")
    med = 2.0
    np.testing.assert_allclose(out[0], Y[0] * med / 2.0)
    np.testing.assert_allclose(out[1], Y[1] * med / 4.0)
    np.testing.assert_allclose(out[2], Y[2] * med / 1.0)  # floored at 0.5 * median
    out = normalize_brightness(Y, floor=0.0, norm="l2")
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.median(np.linalg.norm(Y, axis=1)), rtol=1e-6)
    assert normalize_brightness(Y, norm="none") is Y


@pytest.mark.parametrize("name", ["edaa", "mvnmf"])
def test_deterministic_for_a_seed(name):
    scene, _, _ = _scene(2)
    kw = {"edaa": {"n_restarts": 3, "n_outer": 5}, "mvnmf": {"max_iter": 10}}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = make_method(name, P, seed=3, **kw).fit(scene)
        b = make_method(name, P, seed=3, **kw).fit(scene)
    np.testing.assert_array_equal(a.endmembers_, b.endmembers_)
    np.testing.assert_array_equal(a.abundances_, b.abundances_)


@pytest.mark.parametrize("name,kw", [("edaa", {"n_outer": 1, "n_restarts": 2}), ("mvnmf", {"max_iter": 1})])
def test_convergence_warning_when_iterations_run_out(name, kw):
    scene, _, _ = _scene(3)
    m = make_method(name, P, seed=0, **kw)
    with pytest.warns(ConvergenceWarning):
        m.fit(scene)
    assert m.info_["convergence"]["converged"] is False
    assert m.info_["warnings"]


@pytest.mark.parametrize("name", ["edaa", "mvnmf"])
def test_invalid_pixels_stay_nan(name):
    scene, _, _ = _scene(4, invalid=True)
    kw = {"edaa": {"n_restarts": 2, "n_outer": 5}, "mvnmf": {"max_iter": 5}}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = make_method(name, P, seed=0, **kw).fit(scene)
    A = m.abundances_
    assert np.isnan(A[2, 5]).all() and np.isnan(A[7, 11]).all()
    valid = scene.mask
    assert np.isfinite(A[valid]).all()
    assert np.isfinite(m.endmembers_).all()


def test_registry():
    assert {"vca", "nfindr", "atgp", "edaa", "mvnmf"} <= set(METHODS)
    assert DEFAULT_METHOD in METHODS
    assert isinstance(make_method("edaa", 3, seed=1), ArchetypalAnalysis)
    assert isinstance(make_method("mvnmf", 3), MinVolNMF)
    for name in ("vca", "nfindr", "atgp"):
        m = make_method(name, 3, seed=2)
        assert m.name == name and m.inverter == "fcls" and m.seed == 2
    assert make_method("vca", 3, snr=25.0).extractor.snr == 25.0
    assert make_method("atgp", 3).extractor.subspace is True  # the blind method's default
    with pytest.raises(ParameterError, match=r"^method='nope': expected one of atgp, auto, edaa, mvnmf, nfindr, vca$"):
        make_method("nope", 3)
    with pytest.raises(ParameterError, match=r"^no_such_param=1: not a parameter of method 'edaa'; expected one of n_restarts, "):
        make_method("edaa", 3, no_such_param=1)
    with pytest.raises(ParameterError, match=r"^snr=30: not a parameter of method 'nfindr'; expected one of inverter, max_iter$"):
        make_method("nfindr", 3, snr=30)


def test_invalid_parameters_are_input_errors():
    scene, _, _ = _scene(5)
    with pytest.raises(InputError, match="brightness"):
        ArchetypalAnalysis(P, brightness="bogus").fit(scene)
    with pytest.raises(InputError, match="n_restarts"):
        ArchetypalAnalysis(P, n_restarts=0).fit(scene)


def test_select_restart_prefers_low_correlation_among_good_fits():
    l1 = np.array([100.0, 102.0, 130.0, 101.0])
    corr = np.array([0.9, 0.5, 0.1, 0.7])
    assert select_restart(l1, corr) == 1  # index 2 fits too badly to be chosen


def test_project_simplex_matches_definition():
    import torch

    rng = np.random.default_rng(0)
    V = torch.from_numpy(rng.normal(size=(200, 5)))
    X = _project_simplex(V).numpy()
    assert (X >= 0).all()
    np.testing.assert_allclose(X.sum(1), 1.0, atol=1e-12)
    # optimality: x = max(v - theta, 0) for one theta per row, and no feasible point is closer
    Q = rng.dirichlet(np.ones(5), size=200)
    assert (((X - V.numpy()) ** 2).sum(1) <= ((Q - V.numpy()) ** 2).sum(1) + 1e-12).all()


def test_consensus_selection_picks_the_solution_most_restarts_agree_on():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 1.0, size=(3, 20))
    other = rng.uniform(0.1, 1.0, size=(3, 20))
    E = np.stack([base + 1e-3 * rng.normal(size=base.shape) for _ in range(3)] + [other, other[::-1]])
    l1 = np.array([100.0, 101.0, 100.5, 100.2, 100.1])
    corr = np.array([0.9, 0.9, 0.9, 0.1, 0.1])
    assert select_restart(l1, corr) in (3, 4)  # correlation rule
    assert select_restart(l1, corr, endmembers=E) in (0, 1, 2)  # consensus of three restarts


def test_brightness_ratio_detects_per_pixel_scaling():
    E, A = _truth(2)
    rng = np.random.default_rng(7)
    Y = A @ E + 0.002 * rng.standard_normal((A.shape[0], BANDS)).astype(np.float32)
    s = rng.uniform(0.6, 1.4, size=(A.shape[0], 1)).astype(np.float32)
    flat = brightness_ratio(Y, P)
    assert abs(flat - (BANDS - P + 1) / (BANDS - P)) < 0.02, flat  # noise only
    assert brightness_ratio(s * Y, P) > 1.5
    # "auto" follows the ratio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        kw = {"n_restarts": 2, "n_outer": 5, "refine_iter": 5, "brightness": "auto", "refine": "auto"}
        m = ArchetypalAnalysis(P, seed=0, **kw).fit(Scene((s * Y).reshape(ROWS, COLS, BANDS)))
        assert m.info_["params"]["brightness_used"] == "l2" and m.info_["params"]["refine_used"] == "none"
        m = ArchetypalAnalysis(P, seed=0, **kw).fit(Scene(Y.reshape(ROWS, COLS, BANDS)))
        assert m.info_["params"]["brightness_used"] == "none" and m.info_["params"]["refine_used"] == "minvol"
        # default: l2 normalisation, abundances re-fitted to the raw pixels when brightness is flat
        m = ArchetypalAnalysis(P, seed=0, n_restarts=2, n_outer=5).fit(Scene(Y.reshape(ROWS, COLS, BANDS)))
        assert m.info_["params"]["abundances_used"] == "scaled"
        m = ArchetypalAnalysis(P, seed=0, n_restarts=2, n_outer=5).fit(Scene((s * Y).reshape(ROWS, COLS, BANDS)))
        assert m.info_["params"]["abundances_used"] == "normalised"


def test_minvol_refinement_recovers_vertices_without_pure_pixels():
    """Archetypes lie inside the hull when no pixel is pure; the refinement moves them out."""
    E, _ = _truth(3)
    rng = np.random.default_rng(11)
    A = rng.dirichlet(np.ones(P), size=20 * ROWS * COLS)
    A = A[A.max(1) <= 0.75][: ROWS * COLS].astype(np.float32)
    Y = A @ E + 0.001 * rng.standard_normal((ROWS * COLS, BANDS)).astype(np.float32)
    scene = Scene(Y.reshape(ROWS, COLS, BANDS))
    res = {}
    for refine in ("none", "minvol"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = ArchetypalAnalysis(P, seed=0, n_restarts=4, brightness="none", refine=refine).fit(scene)
        res[refine] = _match(m.endmembers_, m.abundances_, E, A.reshape(ROWS, COLS, P))
    assert res["minvol"][0] < 0.5 * res["none"][0] and res["minvol"][1] < 0.6 * res["none"][1], res
    assert res["minvol"][0] < 0.045 and res["minvol"][1] < 4.5, res


# --- the default: selection between edaa and mvnmf ---------------------------------------------
def _selector_scenes():
    """A plain linear-mixing scene and the same maps with ELMM brightness scaling (tiny)."""
    from unmixgen.simulate.procedural import abundance_maps, library
    from unmixgen.simulate.scene import simulate

    wl = np.linspace(400, 2500, 50)
    E, _ = library(wl, ["vegetation", "soil", "asphalt"])
    A = abundance_maps(20, 26, 3, 0, pure_pixels=True)
    plain = simulate(A, E, wavelengths=wl, snr_db=35, seed=1)[0].to_scene()
    scaled = simulate(A, E, wavelengths=wl, snr_db=35, variability=0.25, seed=1)[0].to_scene()
    return plain, scaled


def test_brightness_excess_is_about_one_without_scaling_and_large_with_it():
    from unmixgen.unmix.selector import brightness_excess

    plain, scaled = _selector_scenes()
    assert 0.5 < brightness_excess(plain.valid_pixels(), 3) < 1.6
    assert brightness_excess(scaled.valid_pixels(), 3) > 5.0


def test_auto_picks_mvnmf_on_plain_mixing_and_edaa_under_scaling_and_reproduces_them():
    from unmixgen.unmix.archetypal import ArchetypalAnalysis
    from unmixgen.unmix.minvol import MinVolNMF

    plain, scaled = _selector_scenes()
    for scene, cls, kw in ((plain, MinVolNMF, {}), (scaled, ArchetypalAnalysis, {"n_restarts": 3})):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            auto = make_method("auto", 3, seed=2, n_restarts=3, band_weights=None).fit(scene)
            direct = cls(3, seed=2, **kw).fit(scene)
        assert auto.info_["chosen"] == cls.name and isinstance(auto.chosen_, cls)
        np.testing.assert_array_equal(auto.endmembers_, direct.endmembers_)
        np.testing.assert_array_equal(auto.abundances_, direct.abundances_)
        A = auto.transform(scene)
        assert (A >= -1e-6).all() and np.allclose(A.sum(-1), 1.0, atol=1e-4)


def test_simplex_fit_and_selection_prefer_the_smallest_simplex_that_holds_the_data():
    """The true simplex holds the noisy pixels; a shrunk one does not, an inflated one is larger."""
    from unmixgen.unmix.inversion import fcls
    from unmixgen.unmix.minvol import select_simplex, simplex_fit

    E, A = _truth(6)
    Y = A @ E + 0.002 * np.random.default_rng(6).standard_normal(A.shape[:1] + (BANDS,)).astype(np.float32)
    centre = E.mean(0)
    cands = np.stack([centre + 0.8 * (E - centre), E, centre + 1.3 * (E - centre)]).astype(np.float32)
    abund = np.stack([fcls(Y, e) for e in cands])
    volume, residual = simplex_fit(Y, cands, abund)
    assert volume[0] < volume[1] < volume[2]
    # in noise units: the truth and the inflated simplex explain the data (up to their
    # FCLS fit of the noise), the shrunk one leaves a residual of many noise bands
    assert residual[1] < 1.0 and residual[2] < 1.0 and residual[0] > 20.0, residual
    assert select_simplex(volume, residual) == 1
    # with the residual test off (everything passes) the smallest wins; with only one, it wins
    assert select_simplex(volume, residual, margin=1e9) == 0
    assert select_simplex(volume[2:], residual[2:]) == 0


def test_batched_minvol_runs_each_initialisation_independently():
    """Initialisation 0 of a batch gives what it gives alone (the weights come from it)."""
    from unmixgen.unmix.extraction import nfindr, vca
    from unmixgen.unmix.inversion import fcls
    from unmixgen.unmix.minvol import minvol_refine

    scene, _, _ = _scene(7)
    Y = scene.valid_pixels()
    E0 = np.stack([nfindr(Y, P, seed=0)[1], vca(Y, P, seed=0)[1]])
    A0 = np.stack([fcls(Y, e) for e in E0])
    kw = {"lam": 0.05, "delta": 0.1, "max_iter": 40, "inner": 5, "tol": 1e-12}
    Eb, Ab, hist, it, rel, _ = minvol_refine(Y, E0, A0, **kw)
    Es, As, hs, its, rels, _ = minvol_refine(Y, E0[0], A0[0], **kw)
    assert Eb.shape == (2, P, BANDS) and Ab.shape == (2, Y.shape[0], P) and hist.shape == (it + 1, 2)
    np.testing.assert_allclose(Eb[0], Es, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Ab[0], As, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hist[:, 0], hs, rtol=1e-9)
    assert hist[-1, 0] < hist[0, 0]  # the objective went down


def test_mvnmf_records_its_choice_among_initialisations():
    scene, E, A = _scene(8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = MinVolNMF(P, seed=0, init=("nfindr", "vca", "atgp"), max_iter=200).fit(scene)
    sel = m.info_["starts"]
    assert sel["candidates"][0] == "nfindr#0" and sel["chosen"] in sel["candidates"]
    assert len(sel["log_volume"]) == len(sel["candidates"]) == len(sel["excess_residual"]) >= 2
    rmse, sad_max = _match(m.endmembers_, m.abundances_, E, A)
    assert rmse < 0.05 and sad_max < 3.0, (rmse, sad_max)
    with pytest.raises(ParameterError, match=r"init\[0\]='pca'"):
        MinVolNMF(P, init=("pca",)).fit(scene)


def test_mvnmf_does_not_pass_on_its_starts_sweep_limit(monkeypatch):
    """N-FINDR stopping at its sweep limit is worth a warning when a user runs nfindr; inside
    mvnmf (and auto) it is only a start the iterations go on from, so nothing is said of it
    (with 12 endmembers every unmix run printed three such lines)."""
    from unmixgen.unmix import minvol
    from unmixgen.unmix.extract_then_invert import NFINDR

    scene, _, _ = _scene(8)
    monkeypatch.setitem(minvol._STARTS, "nfindr", NFINDR(max_iter=1))
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        NFINDR(max_iter=1).extract(scene.load().reshape(-1, BANDS), P, np.random.default_rng(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = MinVolNMF(P, seed=0, init=("nfindr",), n_restarts=3).fit(scene)
    assert not [str(w.message) for w in caught if "nfindr" in str(w.message)]
    assert not [w for w in m.info_.get("warnings", []) if "nfindr" in w]


def test_auto_keeps_the_record_of_the_method_it_chose():
    """auto's own selection record and mvnmf's record of its starts are both in info_."""
    scene, _, _ = _scene(9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = make_method("auto", P, seed=0).fit(scene)
    assert m.info_["selection"]["chosen"] == m.info_["chosen"] == "mvnmf"  # plain linear mixing
    assert m.info_["starts"]["chosen"] in m.info_["starts"]["candidates"]


def test_second_moments_match_the_direct_products_in_any_chunking():
    from unmixgen.unmix.preprocessing import second_moments

    rng = np.random.default_rng(3)
    Y = (rng.random((1003, 17)) * 0.3 + 0.5).astype(np.float32)
    Y64 = Y.astype(np.float64)
    G_ref = Y64.T @ Y64 / len(Y)
    C_ref = (Y64 - Y64.mean(0)).T @ (Y64 - Y64.mean(0)) / len(Y)
    for chunk in (17, 17 * 100, 2**22):  # one row, 100-row chunks, one chunk
        G, C = second_moments(Y, chunk_values=chunk)
        np.testing.assert_allclose(G, G_ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(C, C_ref, rtol=1e-9, atol=1e-14)


# --- mvnmf's volume weight by the discrepancy principle -----------------------------------------
def _noisy_mixed_scene(snr_db: float, seed: int = 2):
    """32x32x100, four procedural materials, no pixel above 0.8 of one material."""
    from unmixgen.simulate.procedural import abundance_maps, library
    from unmixgen.simulate.scene import simulate

    wl = np.linspace(400, 2500, 100)
    E, _ = library(wl, ["vegetation", "soil", "asphalt", "kaolinite"])
    A = abundance_maps(32, 32, 4, np.random.default_rng(100 + seed), purity=2.0, max_abundance=0.8)
    return simulate(A, E, wavelengths=wl, snr_db=snr_db, seed=seed)[0].to_scene()


def _scores(m, scene):
    from unmixgen.evaluate.unmixing import evaluate

    r = evaluate(endmembers=m.endmembers_, abundances=m.abundances_, ref_endmembers=scene.truth.endmembers,
                 ref_abundances=scene.truth.abundances)
    return r["abundance_rmse_percent"], r["sad_deg_mean"]


def test_mvnmf_tightens_a_noise_inflated_simplex_only_within_the_noise():
    noisy = _noisy_mixed_scene(15)
    plain = MinVolNMF(4, seed=0, lam_path=()).fit(noisy)
    tight = MinVolNMF(4, seed=0).fit(noisy)
    (r0, s0), (r1, s1) = _scores(plain, noisy), _scores(tight, noisy)
    # at 15 dB the data-fitting simplex is inflated by the noise: the stronger weight is
    # kept and moves both the endmembers and the abundances towards the truth
    assert r1 < 0.9 * r0 and s1 < 0.8 * s0, (r0, s0, r1, s1)
    vw = tight.info_["volume_weight"]
    assert vw["used"] > tight.lam and vw["excess_residual_first"] <= tight.discrepancy
    kept = [t for t in vw["tried"] if t["lam"] <= vw["used"]]
    assert kept and all(t["excess_residual"] <= tight.discrepancy for t in kept)
    # the tail alone stops the path: with no growth allowed, no step that widened it is kept
    strict = MinVolNMF(4, seed=0, discrepancy=100.0, tail_growth=1.0).fit(noisy).info_["volume_weight"]
    first = strict["pixel_misfit_q99_first"]
    assert all(t["pixel_misfit_q99"] <= first for t in strict["tried"] if t["lam"] <= strict["used"])
    assert strict["tried"][-1]["pixel_misfit_q99"] > first or strict["used"] == max(tight.lam_path)
    # at 40 dB the first simplex already misfits by more than the noise: nothing else runs
    clean = _noisy_mixed_scene(40)
    a, b = MinVolNMF(4, seed=0, lam_path=()).fit(clean), MinVolNMF(4, seed=0).fit(clean)
    assert b.info_["volume_weight"]["tried"] == [] and b.info_["volume_weight"]["used"] == b.lam
    np.testing.assert_array_equal(a.endmembers_, b.endmembers_)


@pytest.mark.parametrize("kw, match", [({"discrepancy": 0}, "discrepancy"), ({"lam_path": (0.5, -1)}, "lam_path"),
                                       ({"tail_growth": 0.9}, "tail_growth")])
def test_mvnmf_refuses_bad_volume_path(kw, match):
    with pytest.raises(ParameterError, match=match):
        MinVolNMF(3, **kw).fit(Scene(np.random.default_rng(0).random((8, 9, 12)).astype(np.float32)))


def test_pixel_misfit_tail_is_one_noise_dimension_inside_the_right_simplex():
    from unmixgen.unmix.inversion import fcls
    from unmixgen.unmix.minvol import _leading_planes, pixel_misfit_tail

    rng = np.random.default_rng(3)
    E = rng.uniform(0.1, 1.0, (4, 80))
    A = 0.1 + 0.6 * rng.dirichlet(np.ones(4), 6000)  # every abundance >= 0.1: noise keeps pixels inside
    X = (A @ E + 0.002 * rng.standard_normal((6000, 80))).astype(np.float32)
    planes = _leading_planes(X, 4)
    assert planes[1] == pytest.approx(0.002 ** 2, rel=0.1)  # the noise energy per band
    right = pixel_misfit_tail(E, fcls(X, E), planes)
    # the abundances absorb p - 1 of the p in-plane noise dimensions: chi-square(1), 99 % at 6.63
    assert 5.0 < right < 8.5, right
    Es = E.mean(0) + 0.5 * (E - E.mean(0))  # a simplex cut inside the data
    assert pixel_misfit_tail(Es, fcls(X, Es), planes) > 10 * right


def test_mvnmf_warns_when_a_stronger_weight_run_does_not_converge():
    noisy = _noisy_mixed_scene(15)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MinVolNMF(4, seed=0, max_iter=2, discrepancy=100.0, tail_growth=100.0).fit(noisy)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert any("at volume weight 0.25 stopped after 2 iterations" in m for m in msgs), msgs


def test_auto_never_estimates_more_endmembers_than_the_data_span():
    """A noise-free 3-endmember scene spans 3 affinely independent spectra: n_endmembers='auto'
    must not fail with 'n_endmembers=4' (a number the user never gave); it keeps 3 and says so."""
    scene, _, _ = _scene(noise=0.0)
    with pytest.warns(UserWarning, match="affinely independent"):
        m = make_method("vca", "auto", seed=0).fit(scene)
    assert m.n_endmembers_ == P and m.endmembers_.shape == (P, BANDS)
    assert any("affinely independent" in w for w in m.info_["warnings"])
    with pytest.raises(ParameterError, match=r"^n_endmembers=4: expected <= 3"):
        make_method("vca", 4, seed=0).fit(scene)  # a number given by the user is still refused


def test_auto_that_cannot_estimate_names_the_parameter_and_the_way_out():
    """A one-row strip is too small for the rank estimate: the error names n_endmembers='auto' and
    asks for a number, rather than only describing the estimate's needs."""
    scene, _, _ = _scene()
    strip = Scene(scene.load()[:1])
    with pytest.raises(ParameterError, match=r"^n_endmembers='auto': cannot estimate .*; expected a number"):
        make_method("vca", "auto", seed=0).fit(strip)
    assert make_method("vca", 3, seed=0).fit(strip).n_endmembers_ == 3


def test_mvnmf_fits_its_simplex_to_a_sample_of_a_large_scene_and_unmixes_every_pixel():
    # a million-pixel scene took ~6 min of iterations over every pixel; the simplex is now
    # fitted to a fixed random sample, and only the clusters and the final FCLS see them all
    scene, E, A = _scene(invalid=True)
    n_valid = int(scene.mask.sum())
    full = MinVolNMF(P, seed=0, max_iter=200, fit_pixels=None).fit(scene)
    same = MinVolNMF(P, seed=0, max_iter=200, fit_pixels=n_valid).fit(scene)  # the sample is every pixel
    np.testing.assert_array_equal(same.endmembers_, full.endmembers_)
    assert full.info_["pixels_fitted"] == n_valid
    sampled = MinVolNMF(P, seed=0, max_iter=200, fit_pixels=n_valid // 3).fit(scene)
    assert sampled.info_["pixels_fitted"] == n_valid // 3
    a = sampled.abundances_
    assert np.isnan(a[2, 5]).all() and np.isfinite(a[scene.mask]).all()  # every valid pixel unmixed
    np.testing.assert_allclose(a[scene.mask].sum(-1), 1.0, atol=1e-4)
    rmse, sad_max = _match(sampled.endmembers_, a, E, A)
    assert sad_max < 3.0 and rmse < 0.05, (rmse, sad_max)
    # the sample is fixed by the seed: the same answer again
    again = MinVolNMF(P, seed=0, max_iter=200, fit_pixels=n_valid // 3).fit(scene)
    np.testing.assert_array_equal(again.endmembers_, sampled.endmembers_)


def test_auto_passes_fit_pixels_to_mvnmf():
    from unmixgen.unmix.selector import AutoUnmixer

    scene, _, _ = _scene()
    m = AutoUnmixer(P, seed=0, fit_pixels=100).fit(scene)
    assert m.info_["chosen"] == "mvnmf" and m.info_["pixels_fitted"] == 100
    with pytest.raises(ParameterError, match="fit_pixels=0"):
        AutoUnmixer(P, fit_pixels=0).fit(scene)


@pytest.mark.parametrize("kw", [{"brightness": "none"}, {"brightness": "l2", "abundances": "model"},
                                {"brightness": "l2", "abundances": "scaled"}], ids=["model", "l2 model", "scaled"])
def test_edaa_fits_its_archetypes_to_a_sample_and_unmixes_every_pixel(kw):
    scene, E, A = _scene(invalid=True)
    n_valid = int(scene.mask.sum())
    fast = {"n_restarts": 4, "n_outer": 60, "n_inner": 15, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = make_method("edaa", P, seed=0, fit_pixels=None, **fast).fit(scene)
        same = make_method("edaa", P, seed=0, fit_pixels=n_valid, **fast).fit(scene)
        sampled = make_method("edaa", P, seed=0, fit_pixels=n_valid // 3, **fast).fit(scene)
    np.testing.assert_array_equal(same.endmembers_, full.endmembers_)
    np.testing.assert_array_equal(same.abundances_, full.abundances_)
    assert sampled.info_["pixels_fitted"] == n_valid // 3 and full.info_["pixels_fitted"] == n_valid
    a = sampled.abundances_
    assert np.isnan(a[2, 5]).all() and np.isfinite(a[scene.mask]).all()
    np.testing.assert_allclose(a[scene.mask].sum(-1), 1.0, atol=1e-4)
    rmse, sad_max = _match(sampled.endmembers_, a, E, A)
    assert sad_max < 3.0 and rmse < 0.05, (rmse, sad_max)


def test_edaa_divides_its_sample_by_the_brightness_of_every_pixel(monkeypatch):
    # the sample was brightness-divided by its own median and the other pixels by theirs: the
    # archetypes and the pixels the clusters and abundances compare them to were on two scales
    import unmixgen.unmix.archetypal as aa
    from unmixgen.unmix.preprocessing import normalize_brightness

    scene, _, _ = _scene()
    Y = scene.valid_pixels()
    seen = []
    original = aa.principal_coordinates
    monkeypatch.setattr(aa, "principal_coordinates", lambda X, d: seen.append(X.copy()) or original(X, d))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        make_method("edaa", P, seed=0, fit_pixels=len(Y) // 3, n_restarts=2, brightness="l2").fit(scene)
    X_all = normalize_brightness(Y, 0.5, "l2")
    rows = {r.tobytes() for r in X_all}
    assert len(seen[0]) == len(Y) // 3 and all(r.tobytes() in rows for r in seen[0])


def _coloured_scene(seed: int = 4):
    """The `_truth` mixture with noise whose std grows 20x from the first band to the last."""
    E, A = _truth(seed)
    rng = np.random.default_rng(seed + 100)
    std = np.geomspace(1.0, 20.0, BANDS).astype(np.float32)
    Y = A @ E + 0.002 * std * rng.standard_normal((ROWS * COLS, BANDS)).astype(np.float32)
    return Scene(Y.reshape(ROWS, COLS, BANDS).astype(np.float32)), E, A.reshape(ROWS, COLS, P), std


def test_auto_fits_mvnmf_to_pixels_weighted_by_their_band_noise():
    from unmixgen.unmix.minvol import MinVolNMF
    from unmixgen.unmix.rank import band_noise_weights

    scene, E, A, std = _coloured_scene()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = make_method("auto", 3, seed=1).fit(scene)
        w = band_noise_weights(scene.valid_pixels(), seed=1)
        direct = MinVolNMF(3, seed=1).fit(Scene(scene.load() * w))
        plain = make_method("auto", 3, seed=1, band_weights=None).fit(scene)
    assert auto.info_["chosen"] == "mvnmf" and plain.band_weights_ is None
    np.testing.assert_array_equal(auto.band_weights_, w)
    assert np.corrcoef(np.log(w), -np.log(std))[0, 1] > 0.98
    # the weighted fit's endmembers in the scene's units, its abundances as the weighted fit's
    # (without a weighted copy of the pixels: the same up to float32 rounding)
    np.testing.assert_allclose(auto.endmembers_, direct.endmembers_ / w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(auto.abundances_, direct.abundances_, atol=1e-4)
    np.testing.assert_allclose(auto.transform(scene), auto.abundances_, atol=2e-5)
    Y = scene.valid_pixels()
    np.testing.assert_allclose(auto.transform(Y), auto.abundances_.reshape(-1, 3), atol=2e-5)
    assert auto.info_["band_weights"]["noise_std_range"] > 10
    weighted_rmse, weighted_sad = _match(auto.endmembers_, auto.abundances_, E, A)
    plain_rmse, plain_sad = _match(plain.endmembers_, plain.abundances_, E, A)
    assert weighted_rmse < 0.8 * plain_rmse and weighted_sad < plain_sad


def test_band_noise_weights_follow_one_over_the_noise_std():
    from unmixgen.unmix.rank import band_noise_weights, weights_from_noise

    scene, _, _, std = _coloured_scene(5)
    w = band_noise_weights(scene.valid_pixels())
    assert w.dtype == np.float32 and abs(float(np.mean(np.log(w)))) < 1e-5  # geometric mean 1
    np.testing.assert_allclose(w / w[0], std[0] / std, rtol=0.25)  # a regression estimate on 1200 pixels
    assert band_noise_weights(scene.valid_pixels()[:BANDS]) is None  # too few pixels to regress
    assert weights_from_noise(np.full(5, 0.3)) is None and weights_from_noise(np.zeros(5)) is None
    # white noise: an estimate a few percent from flat is not used (it only moves the answer)
    white, _, _ = _scene(5)
    assert band_noise_weights(white.valid_pixels()) is None
    assert weights_from_noise(np.linspace(1.0, 1.4, 50) ** 2) is None
    assert weights_from_noise(np.linspace(1.0, 2.0, 50) ** 2) is not None
    # a band at no noise is one the others explain exactly: it gets the median band's std
    np.testing.assert_allclose(weights_from_noise([4.0, 1.0, 0.0]), np.array([0.5, 1.0, 2 / 3]) * np.cbrt(3.0),
                               rtol=1e-6)


@pytest.mark.parametrize("derived", ["duplicate", "interpolated", "constant"])
def test_a_band_made_from_the_others_is_not_weighed_by_its_zero_noise(derived):
    # producers duplicate bands, interpolate over bad detector elements and fill dead bands with a
    # constant; the regression noise estimate of such a band is about zero
    from unmixgen.unmix.inversion import fcls, invert_weighted
    from unmixgen.unmix.rank import band_noise_weights

    scene, E, A, std = _coloured_scene(5)
    Y = scene.valid_pixels().copy()
    b = BANDS // 2
    if derived == "duplicate":
        Y[:, b] = Y[:, b - 1]
    elif derived == "interpolated":
        Y[:, b] = 0.5 * (Y[:, b - 1] + Y[:, b + 1])
    else:
        Y[:, b] = 0.25
    w = band_noise_weights(Y)
    # the weight its true noise gives, next to an untouched band's (the noise std grows 1.6 % a band)
    if derived == "duplicate":  # the original's noise, in both copies
        np.testing.assert_allclose(w[[b - 1, b]], w[b - 2], rtol=0.2)
    elif derived == "interpolated":  # the noise of the mean of two bands: std / sqrt(2)
        np.testing.assert_allclose(w[b], np.sqrt(2) * w[b - 2], rtol=0.2)
    else:  # no noise in a constant band: weighed as a median band
        assert w[b] == pytest.approx(np.median(w), rel=0.05)
        return  # no endmember is constant there: a misfit whatever its weight
    truth = A.reshape(-1, P)
    weighted = np.sqrt(np.mean((invert_weighted(Y, E * w, "fcls", w) - truth) ** 2))
    plain = np.sqrt(np.mean((fcls(Y, E) - truth) ** 2))
    assert weighted < plain


def test_most_bands_copied_from_a_neighbour_keep_their_noise():
    # a product that duplicated two thirds of its bands: the median band's regression noise is
    # then a copy's, about zero, and was the yardstick the others were judged by (weights 1e6 apart)
    from unmixgen.unmix.rank import band_noise_weights, noise_summary

    scene, _, _, std = _coloured_scene(5)
    Y = scene.valid_pixels().copy()
    pairs = np.arange(0, 2 * BANDS // 3, 2)
    Y[:, pairs + 1] = Y[:, pairs]
    true_std = std.astype(np.float64).copy()
    true_std[pairs + 1] = std[pairs]
    w = band_noise_weights(Y)
    # no band decides a weighted fit: the weights spread no more than the true noise does (20x);
    # regressed on the loud third of the bands only, a quiet band's estimate is not its own noise
    assert w.max() / w.min() < true_std.max() / true_std.min()
    assert noise_summary(Y)["derived_bands"] == sorted([*pairs, *(pairs + 1)])


def _scaled_coloured_scene(seed: int = 6, noise: float = 0.01):
    """`_coloured_scene`'s mixture under the scaled model ``y = s a E`` (s in 0.6-1.4): the
    blind default takes archetypal analysis there."""
    E, A = _truth(seed)
    rng = np.random.default_rng(seed + 100)
    s = rng.uniform(0.6, 1.4, (len(A), 1)).astype(np.float32)
    std = np.geomspace(1.0, 20.0, BANDS).astype(np.float32)
    Y = s * (A @ E) + noise * std * rng.standard_normal((len(A), BANDS)).astype(np.float32)
    return Scene(Y.reshape(ROWS, COLS, BANDS).astype(np.float32)), E, A.reshape(ROWS, COLS, P), std


@pytest.mark.parametrize("norm", ["l2", "sum", "none"])
def test_weighted_brightness_normalisation_is_that_of_the_weighted_pixels(norm):
    rng = np.random.default_rng(0)
    Y = rng.uniform(0.05, 1.0, (300, 12)).astype(np.float32)
    w = rng.uniform(0.2, 5.0, 12).astype(np.float32)
    np.testing.assert_allclose(normalize_brightness(Y, 0.5, norm, w), normalize_brightness(Y * w, 0.5, norm),
                               rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(normalize_brightness(Y[:0], 0.5, norm, w), np.empty((0, 12)))


@pytest.mark.parametrize("kw", [{}, {"abundances": "scaled"}, {"abundances": "fcls", "brightness": "none"}])
def test_edaa_with_band_weights_is_edaa_of_the_weighted_pixels_in_the_scene_units(kw):
    scene, _, _, std = _scaled_coloured_scene()
    Y = scene.valid_pixels()
    w = (np.exp(np.mean(np.log(std))) / std).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        E, A, info = ArchetypalAnalysis(P, seed=3, n_restarts=3, **kw)._fit_pixels(Y, P, np.random.default_rng(1),
                                                                                     weights=w)
        E_w, A_w, info_w = ArchetypalAnalysis(P, seed=3, n_restarts=3, **kw)._fit_pixels(
            Y * w, P, np.random.default_rng(1))
    assert info["params"]["abundances_used"] == info_w["params"]["abundances_used"]
    assert info["convergence"]["selected_restart"] == info_w["convergence"]["selected_restart"]
    np.testing.assert_allclose(E, E_w / w, rtol=2e-3, atol=1e-5)
    if info["params"]["abundances_used"] == "normalised":
        # fractions of the endmembers normalised in the scene's bands, fitted in the weighted ones
        from unmixgen.unmix.archetypal import normalised_fractions
        from unmixgen.unmix.inversion import invert_weighted

        A_w = normalised_fractions(invert_weighted(Y, E * w, "nnls", w), np.linalg.norm(E, axis=1))
    np.testing.assert_allclose(A, A_w, atol=2e-3)


def test_normalised_fractions_are_the_shares_of_brightness_normalised_endmembers():
    from unmixgen.unmix.archetypal import normalised_fractions
    from unmixgen.unmix.inversion import nnls

    E, A = _truth(2)
    s = np.random.default_rng(1).uniform(0.5, 1.5, (len(A), 1)).astype(np.float32)
    Y = s * (A @ E)  # the scaled model, no noise
    for norm in (np.linalg.norm(E, axis=1), E.sum(axis=1)):
        expect = A * norm / (A * norm).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(normalised_fractions(nnls(Y, E), norm), expect, atol=2e-4)
    # with the endmembers at equal brightness the shares are the scaled model's fractions
    En = E / np.linalg.norm(E, axis=1, keepdims=True)
    np.testing.assert_allclose(normalised_fractions(nnls(s * (A @ En), En), np.ones(P)), A, atol=2e-4)
    out = normalised_fractions(np.array([[np.nan] * P, [0.0] * P]), np.ones(P))
    assert np.isnan(out[0]).all() and np.allclose(out[1], 1 / P)


def test_edaa_normalised_abundances_are_what_transform_gives():
    # the factorisation's own abundances ("model") were 9-17 points of RMSE from what transform
    # gave the same pixels (FCLS), so outliers and new tiles were unmixed another way
    scene, _, _, _ = _scaled_coloured_scene(noise=0.002)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = ArchetypalAnalysis(P, seed=0, n_restarts=3).fit(scene)
    assert m.info_["params"]["abundances_used"] == "normalised"
    np.testing.assert_allclose(m.transform(scene), m.abundances_, atol=1e-5)


def test_misfit_floored_weights_follow_the_noise_unless_the_model_misfit_dominates():
    from unmixgen.unmix.rank import (
        MISFIT_MARGIN,
        misfit_floored_weights,
        noise_spread,
        weights_from_noise,
    )

    var = np.geomspace(0.01, 0.2, 40) ** 2
    # a fit that leaves the noise only: the noise's weights
    w, ratio = misfit_floored_weights(var, 0.97 * var)
    assert ratio == 0.0
    np.testing.assert_array_equal(w, weights_from_noise(var))
    # a misfit tau^2 on every band: 1 / sqrt(noise^2 + (margin tau)^2), geometric mean 1
    tau = 0.05
    w, ratio = misfit_floored_weights(var, var + tau**2)
    expect = 1 / np.sqrt(var + (MISFIT_MARGIN * tau) ** 2)
    np.testing.assert_allclose(w, expect / np.exp(np.mean(np.log(expect))), rtol=1e-5)
    assert ratio == pytest.approx(MISFIT_MARGIN * tau / np.median(np.sqrt(var)))
    assert noise_spread(1 / w) < noise_spread(np.sqrt(var))
    # a misfit far above the loudest band's noise: about flat, so no weights
    assert misfit_floored_weights(var, var + 1.0)[0] is None
    assert misfit_floored_weights(np.zeros(40), var) == (None, 0.0)


def test_auto_weighs_its_archetypes_by_noise_plus_misfit_and_transforms_the_same_way():
    scene, E, A, std = _scaled_coloured_scene()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = make_method("auto", P, seed=0).fit(scene)
        plain = make_method("auto", P, seed=0, band_weights=None).fit(scene)
    assert auto.info_["chosen"] == plain.info_["chosen"] == "edaa"
    assert auto.band_weights_ is not None and plain.band_weights_ is None
    assert np.corrcoef(np.log(auto.band_weights_), -np.log(std))[0, 1] > 0.95
    assert 0 <= auto.info_["band_weights_misfit_floor"] < 0.5
    # new pixels are inverted in the fit's weighted bands
    from unmixgen.unmix.inversion import invert_weighted

    Y, w = scene.valid_pixels(), auto.band_weights_
    expect = auto._transform_finish(invert_weighted(Y, auto.endmembers_ * w, auto._transform_method(), w))
    np.testing.assert_allclose(auto.transform(Y), expect, atol=1e-5)
    # the noise-weighted archetypes' abundances are the better ones where the loud bands' noise dominates
    assert _match(auto.endmembers_, auto.abundances_, E, A)[0] < 0.8 * _match(plain.endmembers_, plain.abundances_,
                                                                                E, A)[0]


def test_weighted_edaa_moves_its_vertices_to_raw_cluster_means_as_on_the_weighted_pixels():
    from unmixgen.unmix.archetypal import normalised_fractions
    from unmixgen.unmix.inversion import invert_weighted

    # pure_clusters finds the clusters among the weighted, brightness-divided pixels and averages
    # the raw ones (values=): the same vertices as a fit of the weighted pixels, divided back, on a
    # sample (fit_pixels) as on every pixel
    E, A = _truth(6)
    A = A.copy()
    for j in range(P):
        A[j * 60:(j + 1) * 60] = np.eye(P)[j]
    rng = np.random.default_rng(106)
    s = rng.uniform(0.97, 1.03, (len(A), 1)).astype(np.float32)
    std = np.geomspace(1.0, 20.0, BANDS).astype(np.float32)
    Y = (s * (A @ E) + 0.001 * std * rng.standard_normal((len(A), BANDS))).astype(np.float32)
    w = (np.exp(np.mean(np.log(std))) / std).astype(np.float32)
    for fit_pixels in (None, 700):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            aa = ArchetypalAnalysis(P, seed=3, n_restarts=3, fit_pixels=fit_pixels)
            E_w, A_w, info = aa._fit_pixels(Y, P, np.random.default_rng(1), weights=w)
            E_x, A_x, _ = aa._fit_pixels(Y * w, P, np.random.default_rng(1))
        assert info["pure_clusters"]["moved"] == [0, 1, 2] and info["params"]["abundances_used"] == "normalised"
        np.testing.assert_allclose(E_w, E_x / w, rtol=1e-5, atol=1e-6)
        # fractions of the endmembers normalised in the scene's bands (not the weighted ones)
        S = invert_weighted(Y, E_w * w, "nnls", w)
        np.testing.assert_allclose(A_w, normalised_fractions(S, np.linalg.norm(E_w, axis=1)), atol=1e-5)
        assert _match(E_w, A_w, E, A)[1] < 1.0  # the raw spectra: within a degree of the truth


def test_auto_replays_its_sample_and_starts_for_the_weighted_edaa_fit():
    # the second (weighted) fit starts from the rng as the first found it: the same pixel sample
    # and the same random vertices as edaa given those weights from the start
    scene, _, _, _ = _scaled_coloured_scene()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = make_method("auto", P, seed=0, fit_pixels=700).fit(scene)
        again = make_method("auto", P, seed=0, fit_pixels=700).fit(scene)
        E, A, info = ArchetypalAnalysis(P, seed=0, n_restarts=8, fit_pixels=700)._fit_pixels(
            scene.valid_pixels(), P, np.random.default_rng(0), weights=auto.band_weights_)
    assert auto.info_["chosen"] == "edaa" and auto.band_weights_ is not None and info["pixels_fitted"] == 700
    np.testing.assert_array_equal(auto.endmembers_, E)
    np.testing.assert_array_equal(auto.abundances_.reshape(-1, P), A)
    np.testing.assert_array_equal(again.endmembers_, auto.endmembers_)  # a seed fixes the result
    np.testing.assert_array_equal(again.abundances_, auto.abundances_)


def test_auto_weighted_edaa_on_a_scene_with_bad_bands_and_outliers():
    # bad bands weigh 1 and leave the fit as without them; an outlier's abundances are those
    # transform gives it, in the same weighted bands
    scene, _, _, _ = _scaled_coloured_scene()
    cube = scene.load().copy()
    bad = np.zeros(BANDS, bool)
    bad[[3, 20, 41]] = True
    good_only = Scene(cube[..., ~bad].copy())
    cube[..., bad] = np.random.default_rng(5).uniform(-100, 100, (ROWS, COLS, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with_bad = make_method("auto", P, seed=0).fit(Scene(cube, good_bands=~bad))
        plain = make_method("auto", P, seed=0).fit(good_only)
        cube[5, 7, 10:14] = 5.0  # a spike
        cube[20, 30] = np.linspace(0.2, 2.0, BANDS)  # no mixture of the three
        with pytest.warns(UserWarning, match="2 of 1200 pixels are no mixture"):
            screened = make_method("auto", P, seed=0).fit(Scene(cube, good_bands=~bad))
    assert with_bad.band_weights_.shape == (BANDS,) and np.all(with_bad.band_weights_[bad] == 1)
    np.testing.assert_array_equal(with_bad.band_weights_[~bad], plain.band_weights_)
    np.testing.assert_array_equal(with_bad.endmembers_[:, ~bad], plain.endmembers_)
    np.testing.assert_array_equal(with_bad.abundances_, plain.abundances_)
    flagged = screened.outliers_
    assert screened.band_weights_ is not None and flagged[5, 7] and flagged[20, 30] and flagged.sum() == 2
    pixels = Scene(cube[flagged][None], good_bands=~bad, mask=np.ones((1, 2), bool))
    np.testing.assert_allclose(screened.abundances_[flagged], screened.transform(pixels)[0], atol=1e-6)
