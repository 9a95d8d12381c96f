"""Pure-pixel clusters at the vertices of a data-fitting simplex.

A simplex fitted to noisy pixels (minimum-volume NMF, archetypes) encloses the noise cloud
too: where a material has pure pixels, their noise spreads them a few noise standard
deviations around the material's spectrum, and the simplex vertex lands beyond that cloud.
Every abundance is then biased towards the mixture (pure pixels read 0.8-0.9), and the
abundance error is several times what the true spectra would give.

Where pure pixels exist they form a cluster whose spread *within the data's plane* (the
``d = p - 1`` leading principal axes of the centred pixels) is the noise alone: ``d``
noise variances on average, the noise per band being what the same pixels hold beyond
the plane. `vertex_clusters` looks for such a cluster at each vertex (a flat-kernel mean
shift from the pixel nearest the vertex, radius the noise's 99 % chi-square ball: first
the scene's noise, then the cluster's own) and moves the vertices to their clusters' mean
spectra only when

- every vertex has a cluster of at least ``min_pixels`` pixels whose spread is that of
  its own noise (``spread <= max_spread`` noise units, the truncated chi-square mean taken
  into account; after a brightness division noise differs between materials), no two
  vertices sharing one, and
- the smaller simplex still holds the data: the pixels it leaves outside by more than 3
  noise standard deviations within the plane are no more than the clusters' own noise
  would put there (their expected count from the chi-square tail, with a margin).

All vertices or none: a partial move leaves the other vertices beyond the data, and moving
some vertices of scenes without pure pixels lost accuracy where it was measured. Without
pure pixels the pixels nearest a vertex are mixtures spread along the data's edges, not a
noise ball, and a vertex moved to them leaves the data's outer pixels outside: the tests
refuse. On the real benchmark scenes (Samson, Jasper Ridge) they refuse too.
The measurements are in benchmarks/RESULTS.md, "Pure-pixel clusters at the vertices".
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform
from scipy.stats import chi2

from .batched import matmul_rows
from .inversion import fcls
from .preprocessing import second_moments, weighted_moments

__all__ = ["vertex_clusters"]

_OUTSIDE = 9.0  # squared distance, in noise variances, that counts a pixel as outside the simplex


def _truncated_mean(d: int, q: float) -> float:
    """``E[X | X <= q] / d`` for ``X`` chi-square with ``d`` degrees of freedom."""
    return float(chi2.cdf(q, d + 2) / chi2.cdf(q, d))


def _outside(Z: np.ndarray, Ze: np.ndarray, noise: float) -> int:
    """Pixels ``Z (N, d)`` farther than 3 noise std from the simplex of ``Ze (p, d)``."""
    A = fcls(Z, Ze)
    R = Z - A @ Ze
    return int(np.count_nonzero(np.einsum("nd,nd->n", R, R) > _OUTSIDE * noise))


def _sq_dist(Z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared distances ``(N,)`` of the rows of ``Z (N, d)`` to ``c (d,)``."""
    D = Z - c
    return np.einsum("nd,nd->n", D, D)


def _mean_shift(Z: np.ndarray, c: np.ndarray, r2: float, noise: float, max_iter: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Flat-kernel mean shift of ``c`` (d,) over ``Z (N, d)``, radius^2 ``r2``: the centre and
    the pixels within the radius of it."""
    inside = _sq_dist(Z, c) <= r2
    for _ in range(max_iter):
        if not inside.any():
            break
        c_next = Z[inside].mean(axis=0)
        done = float(np.sum((c_next - c) ** 2)) <= 1e-6 * noise
        c = c_next
        inside = _sq_dist(Z, c) <= r2
        if done:
            break
    return c, inside


def _energy_beyond(Y: np.ndarray, mu: np.ndarray, Z: np.ndarray, inside: np.ndarray, dims: int,
                   weights: np.ndarray | None = None) -> float:
    """Mean energy of the pixels ``inside`` (times ``weights``) beyond the plane, per dimension
    (their noise per band)."""
    R = Y[inside].astype(np.float64)
    if weights is not None:
        R *= weights
    R -= mu
    e = float(np.mean(np.einsum("nb,nb->n", R, R) - np.einsum("nd,nd->n", Z[inside], Z[inside]).astype(np.float64)))
    return max(e, 1e-30) / max(dims, 1)


def vertex_clusters(Y: np.ndarray, E: np.ndarray, *, values: np.ndarray | None = None, level: float = 0.99,
                    max_spread: float = 1.35, min_pixels: int = 5, max_iter: int = 50,
                    moments: tuple[np.ndarray, np.ndarray] | None = None,
                    weights: np.ndarray | None = None, partial: bool = False) -> tuple[np.ndarray, dict]:
    """Move the vertices of ``E`` to the means of their pure-pixel clusters where the data show them.

    Parameters
    ----------
    Y : (N, B) pixels; E : (p, B) endmembers in the pixels' units (p >= 2, B > p).
    values : (N, B') what the moved vertices average over their clusters' pixels (None: ``Y``),
        e.g. the raw pixels when ``Y`` are the pixels with their brightness divided out.
    level : probability of the noise's chi-square ball that delimits a cluster.
    max_spread : largest spread of a cluster within the data's plane, in units of the spread
        noise alone gives it (1 for a pure cluster of white noise).
    min_pixels : fewest pixels a cluster needs.
    max_iter : mean-shift iterations per vertex.
    moments : ``preprocessing.second_moments(Y)`` when the caller has them (a pass over every
        pixel); with ``weights``, those of the weighted pixels.
    weights : (B,) or None: work on the pixels ``Y * weights`` (e.g. 1 / each band's noise std;
        ``E`` and the result are then weighted too), without a weighted copy of ``Y``.
    partial : where not every vertex has a cluster, move those that have one (their own, shared
        with no other vertex) and lie inside it already (within its ball: the move averages the
        vertex's noise out, it does not carry it across the data) without being one of the
        pixels (a pick says nothing of its cluster's purity), as long as the moves leave
        no more pixels outside than the moved clusters' own noise would add;
        ``record["moved"]`` then lists them. For a caller that holds the moved vertices fixed
        and lets the others move (refinement), not for one whose answer is the moved simplex
        (see the module doc).

    Returns
    -------
    E_new : (p, B) float32: ``E`` as given, or every vertex replaced by its cluster's mean
        spectrum (noise averaged over the cluster's pixels; of ``values`` when given, then
        (p, B') and returned only when the vertices move, else ``E``).
    record : ``{"moved": [] or [0 .. p-1] (with ``partial``: any of them), "noise_per_band", "outside_before",
        "outside_after", "clusters": [{"pixels", "spread", "noise_per_band", "travel"} per vertex]}``
        (``travel`` from the vertex to the cluster's centre, in noise std; the outside
        counts are pixels beyond 3 noise std of the given and the moved simplex, None when
        the clusters fail before that test).
    """
    if partial and values is not None:
        raise ValueError("vertex_clusters: partial moves need the vertices in the pixels' space (values=None)")
    Y = np.asarray(Y, np.float32)
    E = np.asarray(E, np.float32)
    n, bands = Y.shape
    p = E.shape[0]
    d = p - 1
    record: dict = {"moved": [], "clusters": []}
    if p < 2 or n < min_pixels * p or bands <= p or not np.all(np.isfinite(E)):
        return E, record  # nothing to place (one endmember), too few pixels or bands
    wt = None if weights is None else np.asarray(weights, np.float64)
    mu = Y.mean(axis=0, dtype=np.float64) * (1.0 if wt is None else wt)
    if moments is None:
        moments = weighted_moments(second_moments(Y), wt)
    w, V = np.linalg.eigh(moments[1])
    w, V = w[::-1], V[:, ::-1]
    noise = max(float(w[d:].sum()), 1e-30) / max(bands - d, 1)  # per band, beyond the plane
    U = np.ascontiguousarray(V[:, :d], np.float32)
    # (N, d) in-plane coordinates, without a float64 copy of the pixels (a million-pixel scene)
    Z = matmul_rows(Y, U if wt is None else (wt[:, None] * U).astype(np.float32)) - (mu @ U).astype(np.float32)
    Ze = ((E - mu) @ U).astype(np.float32)
    q = float(chi2.ppf(level, d))
    r2 = q * noise
    found = []
    for j in range(p):
        c = Z[np.argmin(_sq_dist(Z, Ze[j]))]
        c, inside = _mean_shift(Z, c, r2, noise, max_iter)
        # the cluster's own noise, from its pixels' energy beyond the plane: noise differs
        # between materials (a dark one's pixels divided by their brightness are noisier)
        local = _energy_beyond(Y, mu, Z, inside, bands - d, wt) if inside.any() else noise
        r2_j = q * local
        c, inside = _mean_shift(Z, c, r2_j, local, max_iter)
        k = int(inside.sum())
        if k:
            local = _energy_beyond(Y, mu, Z, inside, bands - d, wt)
            unit = d * local * _truncated_mean(d, r2_j / local)  # a pure cluster's mean squared spread
            spread = float(_sq_dist(Z[inside], c).mean() / unit)
        else:
            spread = np.inf
        record["clusters"].append({"pixels": k, "spread": spread, "noise_per_band": float(local),
                                   "travel": float(np.sqrt(np.sum((c - Ze[j]) ** 2) / noise))})
        found.append((c, inside, k, spread, r2_j))
    record.update(noise_per_band=noise, outside_before=None, outside_after=None)
    centres = np.stack([c for c, *_ in found])
    radii = np.array([r for *_, r in found])
    close = squareform(pdist(centres, "sqeuclidean")) <= np.maximum.outer(radii, radii)
    np.fill_diagonal(close, False)
    shared = close.any(axis=1)  # vertices whose cluster another vertex found too
    good = np.array([k >= min_pixels and spread <= max_spread for _, _, k, spread, _ in found]) & ~shared
    # every vertex or none (unless ``partial``): where only some clusters pass, the others'
    # vertices stay beyond the data and the moved ones are judged against a simplex that is
    # still too large (moving some vertices of scenes without pure pixels lost accuracy)
    if not good.all():
        if not partial:
            return E, record
        # a partial move only for vertices inside their clusters' balls that are not pixels
        # themselves: a pure-pixel extraction picks the most extreme pixel whether its cluster
        # is pure or a mixture's plateau (refinement's rounds move picks at plateaus on)
        # (a pick's distance to itself is float32 rounding of the projection, relative to its size)
        good &= np.array([np.sum((c - Ze[j]) ** 2) <= r2
                          and _sq_dist(Z, Ze[j]).min() > 1e-6 * noise + 1e-8 * float(np.sum(Ze[j] ** 2))
                          for j, (c, _, _, _, r2) in enumerate(found)])
        if not good.any():
            return E, record
    move = np.flatnonzero(good)
    moved = Ze.copy()
    moved[move] = centres[move]
    expected = float(chi2.sf(_OUTSIDE, d)) * sum(found[j][2] for j in move)  # pure clusters' own tails
    before = _outside(Z, Ze, noise)
    after = _outside(Z, moved, noise)
    record.update(outside_before=before, outside_after=after)
    # all moved: the simplex of the clusters holds the data; some moved: the others' vertices
    # may leave pixels outside already (a vertex picked among the pixels), the moves add none
    if after > (0 if good.all() else before) + 1.5 * expected + 3.0 * np.sqrt(expected):
        return E, record
    record["moved"] = [int(j) for j in move]
    src = Y if values is None else np.asarray(values, np.float32)
    means = np.stack([src[found[j][1]].mean(axis=0) for j in move])
    if values is None and wt is not None:
        means = means * wt
    if len(move) == p:
        return means.astype(np.float32), record
    out = E.copy()
    out[move] = means
    return out.astype(np.float32), record
