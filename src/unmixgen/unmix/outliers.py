"""Gross outlier pixels: spectra no mixture of ``p`` materials comes near.

Real scenes hold a few pixels that are not mixtures at all: saturated detector elements,
specular glints, spikes in a few bands. Simplex and archetype fits take the most extreme
pixels for vertices, so a quarter of a percent of such pixels took the blind default on a
simulated scene from 0.4 % to 10-21 % abundance RMSE (``benchmarks/RESULTS.md``).

Under the linear mixing model every pixel lies, up to noise, in the ``p``-dimensional linear
subspace of the materials' spectra, on the hyperplane where the abundances sum to one. Three
tests, each against the scene's own spread:

- **off the subspace**: a pixel's residual energy off the best ``p``-dimensional subspace of
  the pixels (their uncentred second moments), over the median residual. About 1; its spread
  follows the noise (chi-square with ``B - p`` degrees of freedom) where the model holds, and a
  heavier tail where it holds less well (spectral variability of real scenes: on Samson and
  Jasper Ridge the largest score is 2-4 times the 99th percentile). An outlier lies
  `TAIL_FACTOR` times farther from 1 than the 99th percentile.
- **a direction by itself**: a pixel holding more than `MAX_LEVERAGE` of one of the subspace's
  directions (a spike stronger than the scene's weakest material takes its place in the
  subspace, and its residual is then small).
- **off the sum-to-one hyperplane**: a pixel in the subspace but far beyond the simplex (a flat
  saturated spectrum of a scene whose materials span one, a glint): its coordinate across the
  hyperplane fitted to the pixels, in units of the noise's spread there. About normal where the
  model holds; an outlier lies at least `MIN_BREAK` noise units off, and `TAIL_FACTOR` times
  farther than a normal 99th percentile would put it. Brightness varying per pixel (the scaled
  model, illumination) spreads this coordinate widely, and then nothing is flagged by it.

Where the scene's own tail is heavy nothing is flagged, and at most about 1 % of the pixels can
be by the tail rules. The subspace and hyperplane are fitted again without the first pass's
outliers, as they pull both towards themselves, and without pixels far brighter than the scene
(`BRIGHT_SEED`: identical saturated pixels take a direction for themselves and hide from the first
pass); only the three tests flag. One material present in only a few pixels is not flagged when ``p``
counts it: the bulk of the pixels spans ``p - 1`` directions and the ``p``-th is its own.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BRIGHT_SEED", "MAX_LEVERAGE", "MIN_BREAK", "TAIL_FACTOR", "OutlierScores", "gross_outliers", "outlier_scores"]

#: how many times farther than the 99th percentile (from the typical value) a pixel must lie to
#: be an outlier; clean simulated scenes reach 1.5 at most against a threshold of about 3 on the
#: residual score, the real scenes 35 (Samson) and 54 (Jasper Ridge) against 107-119
TAIL_FACTOR = 8.0

#: a pixel holding more than this share of the subspace's directions is a direction by itself
#: (a material seen in one pixel only cannot be told from a spike; one seen in three holds a third)
MAX_LEVERAGE = 0.5

#: the fewest noise units off the sum-to-one hyperplane an outlier lies; clean simulated scenes
#: with linear mixing reach 3.4-5.2 (4096 pixels; a million normal draws reach about 5.3)
MIN_BREAK = 10.0

#: pixels brighter (norm) than this many times the 99th percentile pixel are left out of the
#: second pass's fit; clean scenes reach 1.0-1.6 (Jasper Ridge 1.62), pixels saturated at twice
#: the scene's largest value 2.7-3.4
BRIGHT_SEED = 2.0

#: the hyperplane test needs the pixels' mean to hold at least this share of their energy (the
#: suite and real scenes: 0.48-0.86); below it (mean-subtracted data) the test is skipped
MIN_MEAN_ENERGY = 1e-3

#: the smallest typical residual energy the scores are taken against, relative to the pixels'
#: mean energy (60 dB): a noise-free scene has no outliers
RESIDUAL_FLOOR = 1e-6

_CHUNK = 65536
_Z99 = 2.5758  # the 99th percentile of |z| for a standard normal z


class OutlierScores:
    """Per-pixel scores of `outlier_scores`: ``residual`` (off the subspace, over the median),
    ``leverage`` (share of the subspace's directions), ``hyperplane`` (noise units off the
    sum-to-one hyperplane), ``brightness`` (norm over the 99th percentile norm), all ``(N,)``,
    and the thresholds ``residual_threshold``, ``hyperplane_threshold``."""

    def __init__(self, residual, residual_threshold, leverage, hyperplane, hyperplane_threshold, brightness):
        self.residual, self.residual_threshold = residual, residual_threshold
        self.leverage = leverage
        self.hyperplane, self.hyperplane_threshold = hyperplane, hyperplane_threshold
        self.brightness = brightness

    @property
    def flagged(self) -> np.ndarray:
        """Bool ``(N,)``: the pixels past any of the three tests."""
        return ((self.residual > self.residual_threshold) | (self.leverage > MAX_LEVERAGE)
                | (self.hyperplane > self.hyperplane_threshold))


def _weighted_chunks(Y: np.ndarray, w: np.ndarray | None):
    for i in range(0, len(Y), _CHUNK):
        X = Y[i:i + _CHUNK].astype(np.float64)
        if w is not None:
            X *= w
        yield i, X


def _scores(Y: np.ndarray, w: np.ndarray | None, gram: np.ndarray, mean: np.ndarray, n_fit: int, p: int,
            floor: float, fitted: np.ndarray | None) -> OutlierScores:
    """Scores of every pixel against the subspace and hyperplane of ``gram`` / ``mean`` (the
    weighted pixels' uncentred second moments and mean over the ``n_fit`` pixels ``fitted``,
    bool or None for all)."""
    evals, evecs = np.linalg.eigh(0.5 * (gram + gram.T))
    order = np.argsort(evals)[::-1][:p]
    U, lam = evecs[:, order], np.maximum(evals[order], 1e-300)
    # the hyperplane c . z = 1 closest to the fitted pixels' coordinates z = U^T x, by least
    # squares: their Gram is n lam (U holds the Gram's eigenvectors), their sum n U^T mean
    c = (U.T @ mean) / lam
    if float(mean @ mean) < MIN_MEAN_ENERGY * float(np.trace(gram)):
        # pixels about centred on zero (mean-subtracted data) lie on no hyperplane away from the
        # origin: the test would read rounding
        c = np.zeros_like(c)
    n = len(Y)
    energy, r, lev, b = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for i, X in _weighted_chunks(Y, w):
        C = X @ U
        energy[i:i + len(X)] = np.einsum("ij,ij->i", X, X)
        r[i:i + len(X)] = energy[i:i + len(X)] - np.sum(C**2, axis=1)
        lev[i:i + len(X)] = np.sum(C**2 / (n_fit * lam), axis=1)
        b[i:i + len(X)] = C @ c
    r = np.maximum(r, 0.0)
    typical = r if fitted is None else r[fitted]
    noise = max(float(np.median(typical)), floor)
    residual = r / noise
    # the noise per dimension is the residual's over B - p dimensions; across the hyperplane the
    # coordinate's noise std is that times |c|
    spread = np.sqrt(noise / max(Y.shape[1] - p, 1) * float(c @ c)) if np.any(c) else np.inf
    centre = float(np.median(b if fitted is None else b[fitted]))
    hyperplane = np.abs(b - centre) / max(spread, 1e-300)
    res_fit = residual if fitted is None else residual[fitted]
    hyp_fit = hyperplane if fitted is None else hyperplane[fitted]
    res_threshold = 1.0 + TAIL_FACTOR * max(float(np.quantile(res_fit, 0.99)) - 1.0,
                                            float(np.sqrt(2.0 / max(Y.shape[1] - p, 1))))
    hyp_threshold = max(MIN_BREAK, TAIL_FACTOR * float(np.quantile(hyp_fit, 0.99)) / _Z99)
    norm = np.sqrt(energy)
    brightness = norm / max(float(np.quantile(norm if fitted is None else norm[fitted], 0.99)), 1e-300)
    return OutlierScores(residual, res_threshold, lev, hyperplane, hyp_threshold, brightness)


def outlier_scores(Y: np.ndarray, p: int, weights: np.ndarray | None = None,
                   gram: np.ndarray | None = None) -> OutlierScores:
    """`OutlierScores` of pixels ``Y (N, B)``, two passes (module docstring): the second against
    the subspace and hyperplane of the pixels the first did not flag.

    ``weights (B,)``: score the pixels ``Y * weights`` (1 / each band's noise std, so the noise
    is white); ``gram``: their uncentred second moments ``X^T X / N`` ``(B, B)`` when the caller
    has them (`preprocessing.weighted_moments`), which saves the costliest pass."""
    Y = np.asarray(Y)
    n, bands = Y.shape
    w = None if weights is None else np.asarray(weights, np.float64)
    total = np.zeros(bands)
    if gram is None:
        gram = np.zeros((bands, bands))
        for _, X in _weighted_chunks(Y, w):
            gram += X.T @ X
            total += X.sum(axis=0)
        gram /= max(n, 1)
    else:
        for i in range(0, n, _CHUNK):
            total += Y[i:i + _CHUNK].sum(axis=0, dtype=np.float64)
        if w is not None:
            total *= w
    floor = max(RESIDUAL_FLOOR * float(np.trace(gram)), 1e-300)
    first = _scores(Y, w, gram, total / max(n, 1), n, p, floor, None)
    # the second fit also leaves out pixels far brighter than the scene: identical saturated
    # pixels take a direction of the subspace for themselves and bend the hyperplane to them, so
    # that the first pass sees nothing (brightness alone flags no pixel: a bright pure pixel of a
    # material the others mix is in the second subspace, on its hyperplane)
    out = first.flagged | (first.brightness > BRIGHT_SEED)
    if not out.any():
        return first
    X = Y[out].astype(np.float64) * (1.0 if w is None else w)
    kept = n - int(out.sum())
    return _scores(Y, w, (gram * n - X.T @ X) / max(kept, 1), (total - X.sum(axis=0)) / max(kept, 1), kept, p,
                   floor, ~out)


def gross_outliers(Y: np.ndarray, p: int, weights: np.ndarray | None = None,
                   gram: np.ndarray | None = None) -> np.ndarray | None:
    """Bool ``(N,)``: the pixels of ``Y (N, B)`` no mixture of ``p`` materials comes near
    (`outlier_scores` past a threshold), or None when there are none (or too few pixels or bands
    to tell: fewer than 100 pixels, or ``B <= p + 2``)."""
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape[0] < 100 or Y.shape[1] <= p + 2:
        return None
    flagged = outlier_scores(Y, p, weights, gram).flagged
    return flagged if flagged.any() else None
