"""Pure-pixel clusters at the vertices of a data-fitting simplex (`unmix.vertex_clusters`)."""

from __future__ import annotations

import numpy as np

from unmixgen.scene import Scene
from unmixgen.simulate.procedural import abundance_maps, library
from unmixgen.unmix.inversion import fcls
from unmixgen.unmix.minvol import MinVolNMF
from unmixgen.unmix.vertex_clusters import vertex_clusters

WL = np.linspace(420, 2400, 120)


def _scene(pure: bool, snr_db: float = 20.0, seed: int = 0, kinds=("soil", "vegetation", "concrete", "water")):
    """A 36 x 40 scene of four procedural spectra: wide pure regions, or none (max 0.8)."""
    E, _ = library(WL, list(kinds), rng=seed)
    E = E.astype(np.float32)
    kw = {"smoothness": 3.5, "purity": 8.0} if pure else {"purity": 2.0, "max_abundance": 0.8}
    A = abundance_maps(36, 40, 4, np.random.default_rng(seed), **kw).reshape(-1, 4).astype(np.float32)
    clean = A @ E
    sigma = np.sqrt(np.mean(clean ** 2) / 10 ** (snr_db / 10))
    Y = clean + sigma * np.random.default_rng(seed + 1).standard_normal(clean.shape).astype(np.float32)
    return Y.astype(np.float32), E, A


def _sad(E, Et):
    cos = np.sum(E * Et, 1) / np.linalg.norm(E, axis=1) / np.linalg.norm(Et, axis=1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _rmse(Y, E, A):
    return float(np.sqrt(np.mean((fcls(Y, E) - A) ** 2)))


def _three_pure_one_capped():
    """`_scene(pure=True)` with the fourth material capped at 0.5 (no cluster at its vertex);
    the excess is spread over the other three at random, so the capped pixels form no cluster
    either. Returns pixels, spectra and abundances."""
    Y, Et, A = _scene(pure=True)
    A2 = A.copy()
    excess = np.maximum(A2[:, 3] - 0.5, 0)
    A2[:, 3] -= excess
    A2[:, :3] += excess[:, None] * np.random.default_rng(5).dirichlet(np.ones(3), len(A2))
    return A2 @ Et + (Y - A @ Et), Et, A2


def test_vertices_beyond_pure_clusters_move_to_their_means():
    Y, Et, A = _scene(pure=True)
    # a simplex that encloses the noise cloud: every vertex pushed out from the centre
    E_big = Et + 0.08 * (Et - Et.mean(axis=0))
    E_new, rec = vertex_clusters(Y, E_big)
    assert rec["moved"] == [0, 1, 2, 3]
    # each vertex lands on the mean of its pure pixels (up to the noise of two pixel sets)
    for j in range(4):
        pure_mean = Y[A[:, j] > 0.999].mean(axis=0)
        assert np.linalg.norm(E_new[j] - pure_mean) < 0.4 * np.linalg.norm(E_big[j] - pure_mean)
    assert _sad(E_new, Et).mean() < 0.5 * _sad(E_big, Et).mean()
    assert _rmse(Y, E_new, A) < 0.5 * _rmse(Y, E_big, A)


def test_no_vertex_moves_where_no_pixel_is_pure():
    Y, Et, A = _scene(pure=False)
    # the true spectra lie beyond every pixel here: the nearest pixels are mixtures
    E_new, rec = vertex_clusters(Y, Et)
    assert rec["moved"] == []
    np.testing.assert_array_equal(E_new, Et)


def test_no_vertex_moves_when_one_vertex_has_no_cluster():
    # three pure materials and a fourth that never exceeds 0.5: a partial move would shrink
    # the simplex around the other three only
    Y2, Et, _ = _three_pure_one_capped()
    E_big = Et + 0.08 * (Et - Et.mean(axis=0))
    E_new, rec = vertex_clusters(Y2, E_big)
    assert rec["moved"] == []
    np.testing.assert_array_equal(E_new, E_big)


def test_mvnmf_reaches_the_true_spectra_accuracy_on_noisy_pure_pixels():
    Y, Et, A = _scene(pure=True, snr_db=15.0)
    scene = Scene(Y.reshape(36, 40, -1), wavelengths=WL)
    plain = MinVolNMF(4, seed=0, pure_clusters=False).fit(scene)
    tight = MinVolNMF(4, seed=0).fit(scene)
    assert tight.info_["pure_clusters"]["moved"] == [0, 1, 2, 3]
    assert plain.info_["pure_clusters"] is None

    def err(m):
        A_est = m.abundances_.reshape(-1, 4)
        # match by spectral angle
        order = [int(np.argmin(_sad(np.repeat(e[None], 4, 0), m.endmembers_))) for e in Et]
        return float(np.sqrt(np.mean((A_est[:, order] - A) ** 2)))

    truth = _rmse(Y, Et, A)
    assert err(tight) < 0.7 * err(plain)
    assert err(tight) < 1.2 * truth


def test_archetypes_move_to_pure_clusters_found_with_brightness_divided_out():
    from unmixgen.unmix.archetypal import ArchetypalAnalysis

    # bright materials: pixels darker than half the median keep their brightness (the floor),
    # so a dark material's cluster stays spread and nothing would move
    Y, Et, A = _scene(pure=True, snr_db=20.0, seed=2, kinds=("soil", "vegetation", "concrete", "kaolinite"))
    # every pixel at its own brightness (illumination): clusters are tight only once divided
    s = np.exp(0.15 * np.random.default_rng(7).standard_normal(len(Y))).astype(np.float32)
    scene = Scene((Y * s[:, None]).reshape(36, 40, -1), wavelengths=WL)
    plain = ArchetypalAnalysis(4, seed=0, n_restarts=8, pure_clusters=False).fit(scene)
    tight = ArchetypalAnalysis(4, seed=0, n_restarts=8).fit(scene)
    assert plain.info_["params"]["brightness_used"] != "none"
    assert tight.info_["pure_clusters"]["moved"] == [0, 1, 2, 3]
    assert tight.info_["params"]["abundances_used"] == "scaled"

    def err(m):
        order = [int(np.argmin(_sad(np.repeat(e[None], 4, 0), m.endmembers_))) for e in Et]
        return float(np.sqrt(np.mean((m.abundances_.reshape(-1, 4)[:, order] - A) ** 2)))

    assert err(tight) < 0.7 * err(plain)


def test_degenerate_inputs_are_returned_as_given():
    Y, Et, A = _scene(pure=True)
    for E in (Et[:1], np.where(np.arange(Et.shape[1]) == 3, np.nan, Et).astype(np.float32)):
        E_new, rec = vertex_clusters(Y, E)
        assert rec["moved"] == [] and E_new is not None and np.array_equal(E_new, E, equal_nan=True)
    # fewer pixels than a cluster needs per vertex
    E_new, rec = vertex_clusters(Y[:12], Et)
    assert rec["moved"] == []


def test_weights_give_what_a_weighted_copy_of_the_pixels_gives():
    # a million-pixel scene must not be copied to be weighted: the weights enter the moments
    # and the projections instead
    from unmixgen.unmix.preprocessing import brightness_ratio

    Y, Et, A = _scene(pure=True)
    w = np.geomspace(0.8, 1.25, Y.shape[1]).astype(np.float32)  # mild: the noise stays about white
    E_big = (Et + 0.08 * (Et - Et.mean(axis=0))) * w
    got, rec = vertex_clusters(Y, E_big, weights=w)
    want, rec_copy = vertex_clusters(Y * w, E_big)
    assert rec["moved"] == rec_copy["moved"] == [0, 1, 2, 3]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert [c["pixels"] for c in rec["clusters"]] == [c["pixels"] for c in rec_copy["clusters"]]
    assert abs(brightness_ratio(Y, 4, w) / brightness_ratio(Y * w, 4) - 1) < 1e-6


def test_a_partial_move_takes_the_vertices_that_sit_in_their_clusters_only():
    Y, Et, A = _three_pure_one_capped()
    noise = Y - A @ Et
    # for the three pure materials a fitted vertex inside their clusters (a pixel's noise on
    # the spectrum, negated: not a pixel), for the fourth one beyond the data (no cluster there)
    E0 = np.stack([Et[j] - noise[j] for j in range(3)]
                  + [Et[3] + 0.08 * (Et[3] - Et.mean(axis=0))]).astype(np.float32)
    E_all, rec_all = vertex_clusters(Y, E0)
    assert rec_all["moved"] == []
    np.testing.assert_array_equal(E_all, E0)
    E_new, rec = vertex_clusters(Y, E0, partial=True)
    assert rec["moved"] == [0, 1, 2]
    np.testing.assert_array_equal(E_new[3], E0[3])
    for j in range(3):  # the noise of one pixel averaged over its cluster's
        pure_mean = Y[A[:, j] > 0.999].mean(axis=0)
        assert np.linalg.norm(E_new[j] - pure_mean) < 0.3 * np.linalg.norm(E0[j] - pure_mean)
    assert _sad(E_new[:3], Et[:3]).mean() < 0.5 * _sad(E0[:3], Et[:3]).mean()
    # the same places as picked pixels: a pick is where a pure-pixel method lands whether its
    # cluster is pure or a mixture's plateau, so it does not move
    E_pick = np.stack([Y[np.flatnonzero(A[:, j] > 0.999)[0]] for j in range(3)] + [E0[3]]).astype(np.float32)
    E_same, rec_pick = vertex_clusters(Y, E_pick, partial=True)
    assert rec_pick["moved"] == []
    np.testing.assert_array_equal(E_same, E_pick)


def test_a_partial_move_leaves_vertices_beyond_their_clusters():
    # the simplex that encloses the noise cloud: its vertices are outside their clusters' balls,
    # and a move of some of them would carry them across the data
    from scipy.stats import chi2

    Y, Et, A = _three_pure_one_capped()
    E_big = Et + 0.15 * (Et - Et.mean(axis=0))
    E_new, rec = vertex_clusters(Y, E_big, partial=True)
    assert rec["moved"] == []
    # clusters found (the all-or-none rule alone would not refuse these three)
    assert all(c["pixels"] >= 5 and c["spread"] <= 1.35 for c in rec["clusters"][:3])
    assert min(c["travel"] for c in rec["clusters"][:3]) > 1.5 * np.sqrt(chi2.ppf(0.99, 3))
    np.testing.assert_array_equal(E_new, E_big)


def test_a_partial_move_needs_the_pixels_space():
    Y, Et, A = _scene(pure=True)
    import pytest

    with pytest.raises(ValueError, match="partial"):
        vertex_clusters(Y, Et, values=Y, partial=True)
