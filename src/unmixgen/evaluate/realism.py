"""Realism of synthetic abundance maps: distances to held-out real maps, with baselines.

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
    quantile functions, averaged over endmembers. Units: abundance.
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
    pairs). Not a distance: `evaluate_synthesis` reports it for every set and its ratio to
    the held-out maps' own diversity (``diversity_ratio``, best near 1; far below 1 is mode
    collapse).
``memorization``
    For each candidate map, the nearest-neighbour RMSE to the training patches under all
    dihedral transforms (8 for square maps: rotations by 90 degrees and flips; 4 otherwise).
    The same is computed for each held-out real map, which gives the distribution of NN
    distances of *fresh* real maps. A candidate is flagged as a copy when its NN distance is
    below ``copy_fraction`` (default 0.5) times the 1st percentile of the held-out NN
    distances: a sample that much closer to a training patch than any real map ever gets
    is a (near-)copy. The summary is the fraction flagged (best 0).

Baselines (fitted on the *training* patches, sampled at the held-out size)
----------------------------------------------------------------------------
`DirichletBaseline`
    Every pixel an independent draw of one Dirichlet distribution fitted by maximum
    likelihood (Minka's fixed-point iteration) to the training pixels: right marginals by
    construction, no spatial structure.
`GaussianFieldBaseline`
    A Gaussian random field through softmax. The training maps are mapped to centred
    log-ratios ``z = log(a + eps) - mean_k log(a + eps)``; the pixel covariance of ``z`` is
    diagonalised (PCA, so the components are uncorrelated at lag 0); each component gets the
    2D power spectrum averaged over the training patches (including the DC term, so the
    variation of patch means is kept); new fields are ``IFFT2(FFT2(white noise) *
    sqrt(S))``, rotated back, shifted by the mean and mapped to abundances with softmax.
    Spatial correlations and marginal spread match in log-ratio space, but the fields are
    Gaussian (no sharp boundaries, no exact zeros).

`evaluate_synthesis` puts everything into one table; `format_realism_table` prints it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import digamma, polygamma

from ..errors import InputError

METRICS = ("w1", "sliced_w1", "power_spectrum", "variogram")
_EPS = 1e-12  # added to powers / variogram values before log10 (constant maps)


# --------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------
def check_maps(maps, what: str = "maps", *, atol: float = 1e-3) -> np.ndarray:
    """Return ``maps`` as float64 ``(N, h, w, p)``; a single ``(h, w, p)`` map becomes N=1.

    Raises `InputError` unless the values are finite, non-negative and sum to one per pixel
    (within ``atol``).
    """
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or min(a.shape) < 1:
        raise InputError(f"{what}: shape {a.shape}; expected (N, rows, cols, p) abundance maps")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{what}: contains NaN or Inf; expected abundances on the simplex")
    if a.min() < -atol:
        raise InputError(f"{what}: negative abundance {a.min():.3g}; expected values >= 0")
    dev = np.abs(a.sum(-1) - 1.0).max()
    if dev > atol:
        raise InputError(f"{what}: pixel sums deviate from 1 by up to {dev:.3g}; expected sum-to-one")
    return a


def _check_pair(cand: np.ndarray, ref: np.ndarray, names=("candidate maps", "reference maps")):
    cand = check_maps(cand, names[0])
    ref = check_maps(ref, names[1])
    if cand.shape[1:] != ref.shape[1:]:
        raise InputError(
            f"{names[0]} have size {cand.shape[1:]} (rows, cols, p) but {names[1]} "
            f"have {ref.shape[1:]}; expected the same map size and endmember count"
        )
    return cand, ref


# --------------------------------------------------------------------------------------
# value metrics
# --------------------------------------------------------------------------------------
def _w1_columns(x: np.ndarray, y: np.ndarray, max_grid: int = 20000) -> np.ndarray:
    """W1 between the columns of ``x (n, k)`` and ``y (m, k)`` via quantile functions.

    ``int_0^1 |Qx(u) - Qy(u)| du`` on a midpoint grid of ``min(max(n, m), max_grid)``
    points, with the exact (piecewise-constant) empirical quantile functions.
    """
    xs = np.sort(x, axis=0)
    ys = np.sort(y, axis=0)
    n, m = xs.shape[0], ys.shape[0]
    g = min(max(n, m), max_grid)
    u = (np.arange(g) + 0.5) / g
    qx = xs[np.minimum((u * n).astype(np.int64), n - 1)]
    qy = ys[np.minimum((u * m).astype(np.int64), m - 1)]
    return np.abs(qx - qy).mean(axis=0)


def _pixels(a: np.ndarray, max_pixels: int, rng: np.random.Generator) -> np.ndarray:
    px = a.reshape(-1, a.shape[-1])
    if px.shape[0] > max_pixels:
        px = px[rng.choice(px.shape[0], max_pixels, replace=False)]
    return px


def wasserstein_1d(cand, ref, *, max_pixels: int = 200_000, seed: int = 0) -> float:
    """Mean over endmembers of the 1D W1 distance of abundance values (see module doc).

    ``cand``, ``ref``: ``(N, h, w, p)``. At most ``max_pixels`` pixels per set are used
    (seeded subsample). Lower is better; 0 for identical sets.
    """
    cand, ref = _check_pair(cand, ref)
    rng = np.random.default_rng(seed)
    return float(_w1_columns(_pixels(cand, max_pixels, rng), _pixels(ref, max_pixels, rng)).mean())


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
    cand, ref = _check_pair(cand, ref)
    p = cand.shape[-1]
    if p < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    d = simplex_directions(p, n_projections, seed)
    x = _pixels(cand, max_pixels, rng) @ d.T
    y = _pixels(ref, max_pixels, rng) @ d.T
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
        raise InputError(f"window {window!r} is not known; expected None or 'hann'")
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
    cand, ref = _check_pair(cand, ref)
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
    cand, ref = _check_pair(cand, ref)
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


# --------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------
def _inv_digamma(y: np.ndarray, iters: int = 6) -> np.ndarray:
    """Inverse of the digamma function (Minka's initialisation + Newton steps)."""
    y = np.asarray(y, np.float64)
    x = np.where(y >= -2.22, np.exp(y) + 0.5, -1.0 / (y - digamma(1.0)))
    for _ in range(iters):
        x = x - (digamma(x) - y) / polygamma(1, x)
        x = np.maximum(x, 1e-8)
    return x


def fit_dirichlet(pixels: np.ndarray, *, eps: float = 1e-6, max_iter: int = 1000,
                  tol: float = 1e-9) -> np.ndarray:
    """Maximum-likelihood Dirichlet parameters ``(p,)`` for pixels ``(n, p)`` on the simplex.

    Minka's fixed point ``psi(alpha_k) = psi(sum alpha) + mean(log x_k)``, started from the
    moment estimate. Values are clipped to ``eps`` (exact zeros have no Dirichlet density)
    and renormalised first.
    """
    x = np.clip(np.asarray(pixels, np.float64), eps, None)
    x /= x.sum(axis=1, keepdims=True)
    logx = np.log(x).mean(axis=0)
    m = x.mean(axis=0)
    m2 = (x[:, 0] ** 2).mean()
    s = (m[0] - m2) / max(m2 - m[0] ** 2, 1e-12)
    alpha = np.maximum(m * max(s, 1e-3), 1e-3)
    for _ in range(max_iter):
        new = _inv_digamma(digamma(alpha.sum()) + logx)
        if np.max(np.abs(new - alpha)) < tol * max(1.0, alpha.max()):
            alpha = new
            break
        alpha = new
    return alpha


def _sample_dirichlet(alpha: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    out = rng.dirichlet(alpha, size=n)
    bad = ~np.isfinite(out).all(axis=1) | (np.abs(out.sum(axis=1) - 1) > 1e-6)
    if bad.any():  # degenerate draws (all gammas underflow): fall back to the largest alpha
        out[bad] = 0.0
        out[bad, int(np.argmax(alpha))] = 1.0
    return out


class DirichletBaseline:
    """Per-pixel i.i.d. Dirichlet fitted by maximum likelihood (no spatial structure).

    Parameters
    ----------
    eps : float
        Clip level for zeros before fitting (see `fit_dirichlet`).
    max_pixels : int
        At most this many training pixels are used (seeded subsample).
    """

    def __init__(self, eps: float = 1e-6, max_pixels: int = 500_000):
        self.eps = eps
        self.max_pixels = max_pixels

    def fit(self, maps, seed: int = 0) -> DirichletBaseline:
        """Fit ``alpha_`` ``(p,)`` to training maps ``(N, h, w, p)``."""
        a = check_maps(maps, "training maps")
        px = _pixels(a, self.max_pixels, np.random.default_rng(seed))
        self.alpha_ = fit_dirichlet(px, eps=self.eps)
        return self

    def sample(self, n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
        """``n`` maps ``(n, h, w, p)`` float32, every pixel an independent Dirichlet draw."""
        h, w = size
        rng = np.random.default_rng(seed)
        x = _sample_dirichlet(self.alpha_, n * h * w, rng)
        return x.reshape(n, h, w, -1).astype(np.float32)


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


class GaussianFieldBaseline:
    """Gaussian random field with a fitted power spectrum, mapped through softmax.

    See the module doc. Fitted attributes: ``mean_`` (p,) centred-log-ratio mean,
    ``components_`` (p, p) PCA basis (rows), ``spectra_`` (h, w, p) power spectrum per
    component on the training patch grid, ``radial_`` (K, p) its radial average (used for
    other sizes), ``size_`` (h, w).

    Parameters
    ----------
    eps : float
        Added to abundances before the log (bounded log-ratios for exact zeros).
    max_maps : int
        At most this many training maps are used (seeded subsample).
    """

    def __init__(self, eps: float = 1e-3, max_maps: int = 512):
        self.eps = eps
        self.max_maps = max_maps

    def _clr(self, a: np.ndarray) -> np.ndarray:
        z = np.log(a + self.eps)
        return z - z.mean(axis=-1, keepdims=True)

    def fit(self, maps, seed: int = 0) -> GaussianFieldBaseline:
        """Fit to training maps ``(N, h, w, p)``."""
        a = check_maps(maps, "training maps")
        if len(a) > self.max_maps:
            a = a[np.sort(np.random.default_rng(seed).choice(len(a), self.max_maps, replace=False))]
        n, h, w, p = a.shape
        z = self._clr(a)
        self.mean_ = z.reshape(-1, p).mean(axis=0)
        zc = z - self.mean_
        cov = np.cov(zc.reshape(-1, p), rowvar=False).reshape(p, p)
        _, vecs = np.linalg.eigh(cov)
        self.components_ = vecs.T  # rows: directions
        y = zc @ vecs  # (n, h, w, p) uncorrelated components
        self.spectra_ = (np.abs(np.fft.fft2(y, axes=(1, 2))) ** 2).mean(axis=0) / (h * w)
        self.size_ = (h, w)
        # radial profile (cycles/pixel) for sampling at other sizes
        f = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2).ravel()
        edges = np.linspace(0, f.max() + 1e-9, max(h, w) // 2 + 2)
        idx = np.clip(np.digitize(f, edges) - 1, 0, len(edges) - 2)
        cnt = np.bincount(idx, minlength=len(edges) - 1)
        flat = self.spectra_.reshape(-1, p)
        rad = np.stack([np.bincount(idx, weights=flat[:, j], minlength=len(edges) - 1)
                        for j in range(p)], 1)
        keep = cnt > 0
        self.radial_f_ = (0.5 * (edges[:-1] + edges[1:]))[keep]
        self.radial_f_[0] = 0.0
        self.radial_ = rad[keep] / cnt[keep][:, None]
        self.patch_area_ = h * w
        return self

    def _spectrum(self, h: int, w: int) -> np.ndarray:
        if (h, w) == self.size_:
            return self.spectra_
        # Power per frequency scales with the patch area for a fixed spatial covariance
        # (P = |FFT|^2 / (h w) is the Fourier transform of the covariance at that frequency),
        # so the radial profile is reused as is; the DC term carries the patch-mean variance.
        f = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2)
        out = np.stack([np.interp(f, self.radial_f_, self.radial_[:, j]) for j in range(self.radial_.shape[1])], -1)
        return out

    def sample(self, n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
        """``n`` maps ``(n, h, w, p)`` float32 on the simplex."""
        h, w = size
        rng = np.random.default_rng(seed)
        spec = self._spectrum(h, w)  # (h, w, p)
        p = spec.shape[-1]
        white = rng.standard_normal((n, h, w, p))
        y = np.fft.ifft2(np.fft.fft2(white, axes=(1, 2)) * np.sqrt(spec)[None], axes=(1, 2)).real
        z = y @ self.components_ + self.mean_
        return _softmax(z).astype(np.float32)


# --------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------
def split_blocks(maps, block: int) -> dict[str, np.ndarray]:
    """Cut ``(h, w, p)`` maps into ``block`` x ``block`` tiles split train / held-out / floor.

    Tiles ``(i, j)`` with ``i + j`` even go to ``train``; the others alternate (in
    row-major order) between ``heldout`` and ``floor``, so all three sets are interleaved
    over the scene. Incomplete border tiles are dropped. Returns ``(K, block, block, p)``
    arrays.
    """
    a = np.asarray(maps)
    h, w, p = a.shape
    nr, nc = h // block, w // block
    if nr * nc < 4:
        raise InputError(f"a {h}x{w} map holds {nr * nc} blocks of {block} px; expected at least 4")
    sets: dict[str, list[np.ndarray]] = {"train": [], "heldout": [], "floor": []}
    other = 0
    for i in range(nr):
        for j in range(nc):
            tile = a[i * block:(i + 1) * block, j * block:(j + 1) * block]
            if (i + j) % 2 == 0:
                sets["train"].append(tile)
            else:
                sets["heldout" if other % 2 == 0 else "floor"].append(tile)
                other += 1
    return {k: np.stack(v).astype(np.float32) for k, v in sets.items()}


def realism_metrics(cand, ref, *, seed: int = 0, window: str | None = None,
                    max_lag: int = 16) -> dict[str, float]:
    """All distance metrics of ``cand`` vs ``ref`` (both ``(N, h, w, p)``) in one dict."""
    cand, ref = _check_pair(cand, ref)
    return {
        "w1": wasserstein_1d(cand, ref, seed=seed),
        "sliced_w1": sliced_wasserstein(cand, ref, seed=seed),
        "power_spectrum": power_spectrum_distance(cand, ref, window=window),
        "variogram": variogram_distance(cand, ref, max_lag=max_lag),
    }


def evaluate_synthesis(samples, heldout, *, train=None, floor=None, seed: int = 0,
                       window: str | None = None, copy_fraction: float = 0.5) -> dict[str, Any]:
    """Realism table of model ``samples`` vs ``heldout`` real maps, with baselines and floor.

    Parameters
    ----------
    samples, heldout : (N, h, w, p), (M, h, w, p)
        Model samples and held-out real maps, same size and endmember count.
    train : (K, h', w', p) or None
        Training patches: baselines are fitted on them and the memorization check uses
        them (patches larger than the held-out maps are cut into windows of that size,
        see `crops_of_size`; smaller ones skip the check). ``None`` skips both baselines
        and the memorization check.
    floor : (L, h, w, p) or None
        A second disjoint set of real maps; its row is the floor.
    seed : int
        Seeds the baselines, projections and subsamples.

    Returns
    -------
    dict with ``rows`` (set name -> metric -> value; sets ``model``, ``dirichlet``,
    ``grf``, ``floor`` when available; metrics `METRICS` plus ``diversity``,
    ``diversity_ratio`` and, with ``train``, ``copied_fraction``), ``ratio_to_floor``
    (set -> metric -> value / floor value), ``diversity`` (``heldout`` and per set),
    ``memorization`` (summary for the model samples), and ``n_samples``, ``n_heldout``,
    ``size``, ``p``.
    """
    samples, heldout = _check_pair(samples, heldout, ("samples", "held-out maps"))
    _, h, w, p = heldout.shape
    sets: dict[str, np.ndarray] = {"model": samples}
    if train is not None:
        train = check_maps(train, "training maps")
        if train.shape[-1] != p:
            raise InputError(f"training maps have {train.shape[-1]} endmembers; held-out maps have {p}")
        n_base = max(len(samples), len(heldout))
        sets["dirichlet"] = DirichletBaseline().fit(train, seed).sample(n_base, (h, w), seed + 1)
        sets["grf"] = GaussianFieldBaseline().fit(train, seed).sample(n_base, (h, w), seed + 2)
    if floor is not None:
        floor, _ = _check_pair(floor, heldout, ("floor maps", "held-out maps"))
        sets["floor"] = floor
    div_ref = diversity(heldout, seed=seed)
    bank = None if train is None else crops_of_size(train, h, w)
    mem_ok = bank is not None
    rows: dict[str, dict[str, float]] = {}
    memos = memorization_many(sets, bank, heldout, copy_fraction=copy_fraction) if mem_ok else {}
    memo = memos.get("model")
    for name, maps in sets.items():
        row = realism_metrics(maps, heldout, seed=seed, window=window)
        row["diversity"] = diversity(maps, seed=seed)
        row["diversity_ratio"] = row["diversity"] / div_ref if div_ref > 0 else float("nan")
        if name in memos:
            row["copied_fraction"] = memos[name]["flagged_fraction"]
        rows[name] = row
    ratios: dict[str, dict[str, float]] = {}
    if "floor" in rows:
        for name, row in rows.items():
            ratios[name] = {
                k: (row[k] / rows["floor"][k] if rows["floor"][k] > 0 else float("nan")) for k in METRICS
            }
    memo_summary = None
    if memo is not None:
        memo_summary = {
            "flagged_fraction": memo["flagged_fraction"],
            "n_flagged": int(memo["flagged"].sum()),
            "threshold_rmse": memo["threshold"],
            "sample_nn_rmse_median": float(np.median(memo["nn_rmse"])),
            "heldout_nn_rmse_median": float(np.median(memo["heldout_nn_rmse"])),
            "median_ratio": memo["median_ratio"],
            "rule": f"copy when NN RMSE to training patches (8 dihedral transforms) < "
                    f"{copy_fraction} x 1st percentile of held-out maps' NN RMSE",
        }
    return {
        "rows": rows,
        "ratio_to_floor": ratios,
        "diversity": {"heldout": div_ref, **{k: r["diversity"] for k, r in rows.items()}},
        "memorization": memo_summary,
        "n_samples": int(len(samples)),
        "n_heldout": int(len(heldout)),
        "n_train": None if train is None else int(len(train)),
        "n_floor": None if floor is None else int(len(floor)),
        "size": [int(h), int(w)],
        "p": int(p),
        "metrics_lower_is_better": list(METRICS),
    }


_LABELS = {
    "w1": "W1",
    "sliced_w1": "sliced W1",
    "power_spectrum": "PSD |log10|",
    "variogram": "variogram |log10|",
    "diversity": "diversity",
    "diversity_ratio": "div. ratio",
    "copied_fraction": "copied",
}


def format_realism_table(result: dict[str, Any]) -> str:
    """Plain-text aligned table of an `evaluate_synthesis` result (plus ratios to the floor)."""
    rows = result["rows"]
    cols = [c for c in _LABELS if any(c in r for r in rows.values())]

    def fmt(v) -> str:
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return "-"
        return f"{v:.4g}"

    def table(title: str, data: dict[str, dict[str, float]], columns: list[str]) -> list[str]:
        head = ["set"] + [_LABELS[c] for c in columns]
        body = [[name] + [fmt(r.get(c)) for c in columns] for name, r in data.items()]
        widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
        line = lambda cells: "  ".join(  # noqa: E731
            c.ljust(wd) if i == 0 else c.rjust(wd) for i, (c, wd) in enumerate(zip(cells, widths, strict=True))
        )
        return [title, line(head), line(["-" * wd for wd in widths])] + [line(b) for b in body]

    h, w = result["size"]
    lines = table(
        f"realism vs {result['n_heldout']} held-out maps of {h}x{w} px, p={result['p']} "
        f"(distances: lower is better)",
        rows,
        cols,
    )
    if result.get("ratio_to_floor"):
        lines += [""] + table("ratio to the floor (real vs real)", result["ratio_to_floor"], list(METRICS))
    m = result.get("memorization")
    if m:
        lines += ["", f"memorization: {m['n_flagged']} of {result['n_samples']} samples flagged as copies "
                      f"(median NN RMSE {m['sample_nn_rmse_median']:.4g} vs held-out "
                      f"{m['heldout_nn_rmse_median']:.4g}; threshold {m['threshold_rmse']:.4g})"]
    return "\n".join(lines)


__all__ = [
    "METRICS",
    "DirichletBaseline",
    "GaussianFieldBaseline",
    "check_maps",
    "crops_of_size",
    "dihedral",
    "dihedral_views",
    "diversity",
    "evaluate_synthesis",
    "fit_dirichlet",
    "format_realism_table",
    "memorization",
    "memorization_many",
    "nearest_neighbour_rmse",
    "power_spectrum_distance",
    "radial_power_spectrum",
    "realism_metrics",
    "semivariogram",
    "simplex_directions",
    "sliced_wasserstein",
    "split_blocks",
    "variogram_distance",
    "wasserstein_1d",
]
