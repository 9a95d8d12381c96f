"""Baselines for synthetic abundance maps: simple generators fitted to the training maps.

Both are fitted on the *training* patches and sampled at the held-out size; the realism
table (`unmixgen.evaluate.synthesis.evaluate_synthesis`) scores them next to the model, so a
model has to beat them to show that it learnt more than they encode.

`DirichletBaseline`
    Every pixel an independent draw of one Dirichlet distribution fitted by maximum
    likelihood (Minka's fixed-point iteration) to the training pixels: right marginals by
    construction, no spatial structure.
`GaussianFieldBaseline`
    A Gaussian random field through softmax. The training maps are mapped to centred
    log-ratios ``z = log(a + eps) - mean_k log(a + eps)``; the pixel covariance of ``z`` is
    diagonalised (PCA, so the components are uncorrelated at lag 0); each component gets the
    2D power spectrum averaged over the training patches (including the DC term, so the
    variation of patch means is kept); new fields are white noise filtered by
    ``sqrt(S)`` (`unmixgen.simulate.random_fields.gaussian_random_fields`), rotated back,
    shifted by the mean and mapped to abundances with softmax. Spatial correlations and
    marginal spread match in log-ratio space, but the fields are Gaussian (no sharp
    boundaries, no exact zeros).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, polygamma

from ..simulate.random_fields import gaussian_random_fields, rfft_frequencies
from .maps import check_maps, subsample_pixels

__all__ = ["DirichletBaseline", "GaussianFieldBaseline", "fit_dirichlet"]


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
        px = subsample_pixels(a, self.max_pixels, np.random.default_rng(seed))
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

    def _amplitude(self, h: int, w: int) -> np.ndarray:
        """Square root of the power spectrum, ``(h, w // 2 + 1, p)`` on the rfft2 grid."""
        if (h, w) == self.size_:
            return np.sqrt(self.spectra_[:, : w // 2 + 1])
        # Power per frequency scales with the patch area for a fixed spatial covariance
        # (P = |FFT|^2 / (h w) is the Fourier transform of the covariance at that frequency),
        # so the radial profile is reused as is; the DC term carries the patch-mean variance.
        fy, fx = rfft_frequencies(h, w)
        f = np.sqrt(fy**2 + fx**2)
        spec = np.stack([np.interp(f, self.radial_f_, self.radial_[:, j]) for j in range(self.radial_.shape[1])], -1)
        return np.sqrt(spec)

    def sample(self, n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
        """``n`` maps ``(n, h, w, p)`` float32 on the simplex."""
        h, w = size
        amp = self._amplitude(h, w)
        shape = (n, h, w, amp.shape[-1])
        y = gaussian_random_fields(shape, amp, np.random.default_rng(seed), axes=(1, 2))
        z = y @ self.components_ + self.mean_
        return _softmax(z).astype(np.float32)
