"""Realism of synthetic abundance maps: distances to held-out real maps.

Every metric compares two sets of maps of the same size, float arrays ``(N, h, w, p)`` on the
simplex (each pixel non-negative, summing to one): a *candidate* set (model samples, a
baseline, or a second set of real maps) and the *reference* set of held-out real maps.
All distances are >= 0, exactly 0 for identical sets, and **lower is better** (closer to the
real maps). Two sets of real maps are not identical, so the useful yardstick is the *floor*:
the same metric for a second, disjoint set of real blocks against the held-out blocks.

Metrics
-------
``w1``
    Per-endmember 1D Wasserstein-1 distance between the pooled abundance values
    (all pixels of all maps), ``W1 = int_0^1 |F^-1(u) - G^-1(u)| du`` with the empirical
    quantile functions (computed exactly, also for sets of different sizes), averaged over
    endmembers. Units: abundance.
``sliced_w1``
    Sliced Wasserstein-1 distance of the abundance *vectors*: the pixels are projected on
    ``n_projections`` random unit directions of the simplex's tangent space
    (``sum(d) = 0``; seeded) and the 1D W1 of the projections is averaged.
``power_spectrum``
    Radially averaged power spectrum distance, per endmember, on a log scale: each map is
    mean-removed (optionally Hann-windowed), ``P(k) = |FFT2(a)|^2 / (h w)`` is averaged over
    maps and over the frequencies with ``round(|f| * min(h, w)) == k`` for radial bins
    ``k = 1 .. min(h, w) // 2`` (``f`` in cycles per pixel), and the distance is
    ``mean_k |log10 P_cand(k) - log10 P_ref(k)|``, averaged over endmembers. Units:
    decades of power (0.3 = a factor of 2).
``variogram``
    Semivariogram distance: ``gamma(l) = 0.5 * E[(a(x) - a(x + l))^2]`` for lags
    ``l = 1 .. min(16, min(h, w) - 1)``, pooled over the row and column directions and all
    maps, per endmember; distance ``mean_l |log10(gamma_cand(l) / gamma_ref(l))|``, averaged
    over endmembers. Units: decades.
``diversity``
    Mean pairwise RMSE between the maps of one set (up to ``max_pairs`` seeded random
    pairs). Not a distance: `unmixgen.evaluate.synthesis.evaluate_synthesis` reports it for
    every set and its ratio to the held-out maps' own diversity (``diversity_ratio``, best
    near 1; far below 1 is mode collapse).
``memorization``
    For each candidate map, the nearest-neighbour RMSE to the training patches under all
    dihedral transforms (8 for square maps: rotations by 90 degrees and flips; 4 otherwise).
    The same is computed for each held-out real map, which gives the distribution of NN
    distances of *fresh* real maps. A candidate is flagged as a copy when its NN distance is
    below ``copy_fraction`` (default 0.5) times the 1st percentile of the held-out NN
    distances: a sample that much closer to a training patch than any real map ever gets
    is a (near-)copy. The summary is the fraction flagged (best 0).

The candidate sets scored against the held-out maps are the model's samples, the
baselines of `unmixgen.evaluate.baselines` and the floor;
`unmixgen.evaluate.synthesis.evaluate_synthesis` puts them into one table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError, ParameterError, check_range
from .maps import check_maps, check_pair, subsample_pixels

METRICS = ("w1", "sliced_w1", "power_spectrum", "variogram")
_EPS = 1e-12  # added to powers / variogram values before log10 (constant maps)


# --------------------------------------------------------------------------------------
# value metrics
# --------------------------------------------------------------------------------------
def _w1_columns(x: np.ndarray, y: np.ndarray, max_bytes: int = 1 << 26) -> np.ndarray:
    """Exact W1 between the columns of ``x (n, k)`` and ``y (m, k)`` (empirical distributions).

    ``int_0^1 |Qx(u) - Qy(u)| du`` with the piecewise-constant empirical quantile functions:
    they only change at ``u = i / n`` and ``u = j / m``, so the integral is a sum over the
    intervals between those breakpoints (just ``mean |sort(x) - sort(y)|`` when ``n == m``).
    Columns are processed in chunks of about ``max_bytes`` of float64 work arrays.
    """
    xs = np.sort(x, axis=0)
    ys = np.sort(y, axis=0)
    n, m = xs.shape[0], ys.shape[0]
    if n == m:
        return np.abs(xs - ys).mean(axis=0)
    # breakpoints i/n and j/m, compared exactly as integers over the common denominator n*m
    edges = np.union1d(np.arange(n + 1, dtype=np.int64) * m, np.arange(m + 1, dtype=np.int64) * n)
    width = np.diff(edges) / (n * m)
    lo = edges[:-1]  # Qx is xs[i] on [i/n, (i+1)/n): index = floor(u * n) at the interval's start
    ix, iy = lo // m, lo // n
    k = xs.shape[1]
    out = np.empty(k)
    step = max(1, int(max_bytes // (8 * max(1, width.size))))
    for c in range(0, k, step):
        d = np.abs(xs[ix, c:c + step] - ys[iy, c:c + step])
        out[c:c + step] = width @ d
    return out


def wasserstein_1d(cand, ref, *, max_pixels: int = 200_000, seed: int = 0) -> float:
    """Mean over endmembers of the 1D W1 distance of abundance values (see module doc).

    ``cand``, ``ref``: ``(N, h, w, p)``. At most ``max_pixels`` pixels per set are used
    (seeded subsample). Lower is better; 0 for identical sets.
    """
    cand, ref = check_pair(cand, ref)
    rng = np.random.default_rng(seed)
    x = subsample_pixels(cand, max_pixels, rng)
    y = subsample_pixels(ref, max_pixels, rng)
    return float(_w1_columns(x, y).mean())


def simplex_directions(p: int, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random unit vectors ``(n, p)`` in the simplex's tangent space (entries sum to 0)."""
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((n, p))
    d -= d.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    return d / np.where(norm > 0, norm, 1.0)


def sliced_wasserstein(cand, ref, *, n_projections: int = 128, max_pixels: int = 50_000,
                       seed: int = 0) -> float:
    """Sliced W1 of abundance vectors over ``n_projections`` seeded tangent directions.

    Lower is better; 0 for identical sets.
    """
    cand, ref = check_pair(cand, ref)
    p = cand.shape[-1]
    if p < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    d = simplex_directions(p, n_projections, seed)
    x = subsample_pixels(cand, max_pixels, rng) @ d.T
    y = subsample_pixels(ref, max_pixels, rng) @ d.T
    return float(_w1_columns(x, y).mean())


# --------------------------------------------------------------------------------------
# spatial metrics
# --------------------------------------------------------------------------------------
def radial_power_spectrum(maps, *, window: str | None = None) -> np.ndarray:
    """Radially averaged power spectrum ``(K, p)`` of maps ``(N, h, w, p)``, averaged over maps.

    Row ``k-1`` is radial bin ``k = 1 .. min(h, w) // 2``: frequencies with
    ``round(|f| * min(h, w)) == k``, ``f`` in cycles/pixel. Maps are mean-removed;
    ``window="hann"`` applies a 2D Hann window first. ``P = |FFT2|^2 / (h w)``.
    """
    a = np.asarray(maps, dtype=np.float64)
    n, h, w, p = a.shape
    a = a - a.mean(axis=(1, 2), keepdims=True)
    if window == "hann":
        win = np.outer(np.hanning(h), np.hanning(w))
        a = a * (win / np.sqrt((win**2).mean()))[None, :, :, None]
    elif window is not None:
        raise ParameterError("window", window, "expected None or 'hann'")
    power = (np.abs(np.fft.fft2(a, axes=(1, 2))) ** 2).mean(axis=0) / (h * w)  # (h, w, p)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    kbin = np.rint(np.sqrt(fy**2 + fx**2) * min(h, w)).astype(np.int64).ravel()
    nk = min(h, w) // 2
    if nk < 1:
        raise InputError(f"maps of {h}x{w} pixels are too small for a power spectrum; expected >= 2x2")
    flat = power.reshape(-1, p)
    sel = (kbin >= 1) & (kbin <= nk)
    counts = np.bincount(kbin[sel] - 1, minlength=nk)
    out = np.stack([np.bincount(kbin[sel] - 1, weights=flat[sel, j], minlength=nk) for j in range(p)], 1)
    return out / np.maximum(counts, 1)[:, None]


def power_spectrum_distance(cand, ref, *, window: str | None = None) -> float:
    """``mean |log10 P_cand(k) - log10 P_ref(k)|`` over radial bins and endmembers.

    See `radial_power_spectrum`. Lower is better; 0 for identical sets.
    """
    cand, ref = check_pair(cand, ref)
    pc = radial_power_spectrum(cand, window=window)
    pr = radial_power_spectrum(ref, window=window)
    return float(np.abs(np.log10(pc + _EPS) - np.log10(pr + _EPS)).mean())


def semivariogram(maps, max_lag: int = 16) -> np.ndarray:
    """Semivariogram ``(L, p)`` for lags ``1 .. L``, ``L = min(max_lag, min(h, w) - 1)``.

    ``gamma(l) = 0.5 * mean((a(x) - a(x + l))^2)`` pooled over all pixel pairs at lag ``l``
    along rows and along columns, over all maps, per endmember.
    """
    a = np.asarray(maps, dtype=np.float64)
    _, h, w, p = a.shape
    lags = min(max_lag, min(h, w) - 1)
    if lags < 1:
        raise InputError(f"maps of {h}x{w} pixels are too small for a variogram; expected >= 2x2")
    out = np.empty((lags, p))
    for i, lag in enumerate(range(1, lags + 1)):
        dr = (a[:, lag:] - a[:, :-lag]) ** 2
        dc = (a[:, :, lag:] - a[:, :, :-lag]) ** 2
        tot = dr.sum(axis=(0, 1, 2)) + dc.sum(axis=(0, 1, 2))
        cnt = dr[..., 0].size + dc[..., 0].size
        out[i] = 0.5 * tot / cnt
    return out


def variogram_distance(cand, ref, *, max_lag: int = 16) -> float:
    """``mean |log10(gamma_cand(l) / gamma_ref(l))|`` over lags and endmembers (lower is better)."""
    cand, ref = check_pair(cand, ref)
    gc = semivariogram(cand, max_lag)
    gr = semivariogram(ref, max_lag)
    return float(np.abs(np.log10(gc + _EPS) - np.log10(gr + _EPS)).mean())


# --------------------------------------------------------------------------------------
# diversity and memorization
# --------------------------------------------------------------------------------------
def diversity(maps, *, max_pairs: int = 2000, seed: int = 0) -> float:
    """Mean pairwise RMSE between distinct maps of ``(N, h, w, p)`` (NaN when N < 2).

    All pairs when there are at most ``max_pairs``, else a seeded random subset.
    """
    a = check_maps(maps, "maps")
    n = a.shape[0]
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, k=1)
    if i.size > max_pairs:
        sel = np.random.default_rng(seed).choice(i.size, max_pairs, replace=False)
        i, j = i[sel], j[sel]
    flat = a.reshape(n, -1)
    out = np.empty(i.size)
    for s in range(0, i.size, 256):
        out[s:s + 256] = np.sqrt(((flat[i[s:s + 256]] - flat[j[s:s + 256]]) ** 2).mean(axis=1))
    return float(out.mean())


def dihedral_views(maps: np.ndarray) -> list[np.ndarray]:
    """The dihedral transforms of ``(N, h, w, p)`` maps that keep their shape, as views.

    8 transforms (4 rotations x optional flip) for square maps, 4 (identity, flips,
    180-degree rotation) otherwise.
    """
    a = np.asarray(maps)
    if a.shape[1] == a.shape[2]:
        return [np.rot90(b, k, axes=(1, 2)) for b in (a, a[:, ::-1]) for k in range(4)]
    return [a, a[:, ::-1], a[:, :, ::-1], a[:, ::-1, ::-1]]


def dihedral(maps: np.ndarray) -> np.ndarray:
    """`dihedral_views` stacked: ``(T * N, h, w, p)``, transform-major."""
    return np.concatenate(dihedral_views(maps), axis=0)


def nearest_neighbour_rmse(maps, bank, *, chunk: int = 1024) -> np.ndarray:
    """RMSE from each map ``(N, h, w, p)`` to its nearest map in ``bank``: ``(N,)``.

    ``bank`` is ``(M, h, w, p)`` or a list of such arrays (e.g. transformed views); each is
    made contiguous float32 one at a time. Squared distances are expanded as
    ``|x|^2 + |y|^2 - 2 x.y`` in float32 (abundances are centred on ``1/p`` first to limit
    cancellation): the RMSE of an exact copy comes out below about ``1e-3``.
    """
    q = np.asarray(maps)
    p = q.shape[-1]
    x = (q.reshape(len(q), -1) - 1.0 / p).astype(np.float32)
    xx = (x.astype(np.float64) ** 2).sum(1)
    d = x.shape[1]
    best = np.full(x.shape[0], np.inf)
    for part in (bank if isinstance(bank, list) else [bank]):
        y = (np.ascontiguousarray(part, dtype=np.float32).reshape(len(part), d) - np.float32(1.0 / p))
        yy = (y.astype(np.float64) ** 2).sum(1)
        for s in range(0, len(y), chunk):
            dot = (x @ y[s:s + chunk].T).astype(np.float64)
            d2 = xx[:, None] + yy[None, s:s + chunk] - 2.0 * dot
            best = np.minimum(best, d2.min(axis=1))
    return np.sqrt(np.maximum(best, 0.0) / d)


def crops_of_size(maps: np.ndarray, h: int, w: int) -> list[np.ndarray] | None:
    """``(K, H, W, p)`` maps as a list of ``(K, h, w, p)`` window views, or None if smaller.

    Same size: ``[maps]``. Larger: windows at a stride of a quarter of the window (plus
    the last window flush with the border). A copied region that lies off this grid is
    within ``h/8`` x ``w/8`` pixels of a window, so it is not an exact match: the check
    is exact for copies of whole training patches and of grid windows only.
    """
    a = np.asarray(maps)
    H, W = a.shape[1:3]
    if (H, W) == (h, w):
        return [a]
    if H < h or W < w:
        return None

    def starts(n: int, k: int) -> list[int]:
        s = list(range(0, n - k + 1, max(1, k // 4)))
        return s if s[-1] == n - k else s + [n - k]

    return [a[:, r:r + h, c:c + w] for r in starts(H, h) for c in starts(W, w)]


def _check_bank(train, shape: tuple[int, ...]) -> list[np.ndarray]:
    parts = train if isinstance(train, list) else [check_maps(train, "training maps")]
    for t in parts:
        if t.shape[1:] != shape:
            raise InputError(
                f"memorization check needs maps of one size: training {t.shape[1:]}, others {shape}"
            )
    return [v for t in parts for v in dihedral_views(t)]


def _memorization_summary(nn: np.ndarray, ref: np.ndarray, copy_fraction: float) -> dict[str, Any]:
    threshold = copy_fraction * float(np.percentile(ref, 1))
    flagged = nn < threshold
    med_ref = float(np.median(ref))
    return {
        "nn_rmse": nn,
        "heldout_nn_rmse": ref,
        "threshold": threshold,
        "flagged": flagged,
        "flagged_fraction": float(flagged.mean()),
        "median_ratio": float(np.median(nn) / med_ref) if med_ref > 0 else float("nan"),
    }


def memorization_many(sets: dict[str, np.ndarray], train, heldout, *,
                      copy_fraction: float = 0.5) -> dict[str, dict[str, Any]]:
    """`memorization` for several candidate sets with one pass over the training bank."""
    check_range("copy_fraction", copy_fraction, low=0, low_open=True)
    heldout = check_maps(heldout, "held-out maps")
    for name, m in sets.items():
        if m.shape[1:] != heldout.shape[1:]:
            raise InputError(f"memorization check: {name} maps have size {m.shape[1:]}, held-out {heldout.shape[1:]}")
    bank = _check_bank(train, heldout.shape[1:])
    names = list(sets)
    sizes = [len(sets[k]) for k in names]
    allq = np.concatenate([np.asarray(sets[k], np.float32) for k in names] + [heldout.astype(np.float32)])
    nn = nearest_neighbour_rmse(allq, bank)
    ref = nn[sum(sizes):]
    out, s = {}, 0
    for k, n in zip(names, sizes, strict=True):
        out[k] = _memorization_summary(nn[s:s + n], ref, copy_fraction)
        s += n
    return out


def memorization(samples, train, heldout, *, copy_fraction: float = 0.5) -> dict[str, Any]:
    """Nearest-neighbour check for copies of training patches (see module doc).

    ``train`` is ``(K, h, w, p)`` or a list of such arrays (`crops_of_size`); every
    dihedral transform of it is searched. Returns ``{"nn_rmse": (N,), "heldout_nn_rmse":
    (M,), "threshold", "flagged": bool (N,), "flagged_fraction", "median_ratio"}`` where
    ``median_ratio`` is the samples' median NN distance over the held-out maps' (near 1 for
    fresh samples, 0 for copies).
    """
    samples = check_maps(samples, "samples")
    return memorization_many({"samples": samples}, train, heldout, copy_fraction=copy_fraction)["samples"]


def realism_metrics(cand, ref, *, seed: int = 0, window: str | None = None,
                    max_lag: int = 16) -> dict[str, float]:
    """All distance metrics of ``cand`` vs ``ref`` (both ``(N, h, w, p)``) in one dict."""
    cand, ref = check_pair(cand, ref)
    return {
        "w1": wasserstein_1d(cand, ref, seed=seed),
        "sliced_w1": sliced_wasserstein(cand, ref, seed=seed),
        "power_spectrum": power_spectrum_distance(cand, ref, window=window),
        "variogram": variogram_distance(cand, ref, max_lag=max_lag),
    }


__all__ = [
    "METRICS",
    "check_maps",
    "crops_of_size",
    "dihedral",
    "dihedral_views",
    "diversity",
    "memorization",
    "memorization_many",
    "nearest_neighbour_rmse",
    "power_spectrum_distance",
    "radial_power_spectrum",
    "realism_metrics",
    "semivariogram",
    "simplex_directions",
    "sliced_wasserstein",
    "variogram_distance",
    "wasserstein_1d",
]
