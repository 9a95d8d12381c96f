"""Gross outlier pixels: spectra no mixture of ``p`` materials comes near.

Real scenes hold a few pixels that are not mixtures at all: saturated detector elements,
specular glints, spikes in a few bands. Simplex and archetype fits take the most extreme
pixels for vertices, so a quarter of a percent of such pixels took the blind default on a
simulated scene from 0.4 % to 10-21 % abundance RMSE (``benchmarks/RESULTS.md``).

The test: under the linear mixing model (also with a brightness scale per pixel) every pixel
lies in a ``p``-dimensional linear subspace up to noise, so its residual energy off the best
``p``-dimensional subspace of the pixels (their uncentred second moments) is noise. Divided by
the median residual, a pixel's score is about 1; its spread follows the noise (chi-square with
``B - p`` degrees of freedom) where the model holds, and a heavier tail where it holds less
well (spectral variability of real scenes: on Samson and Jasper Ridge the largest score is 2-4
times the 99th percentile). A pixel is an outlier when its score exceeds the 99th percentile's
distance from 1 by `TAIL_FACTOR` times, so on such tails nothing is flagged, and at most about 1 %
of the pixels can be. The subspace is fitted again without the first pass's outliers, as they
pull it towards themselves.

One material present in only a few pixels is not flagged when ``p`` counts it: the bulk of the
pixels spans ``p - 1`` directions and the ``p``-th is its own.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_LEVERAGE", "TAIL_FACTOR", "gross_outliers", "outlier_scores"]

#: how many times farther than the 99th percentile score (from 1) a pixel must lie to be an
#: outlier; clean simulated scenes reach 1.5 at most against a threshold of about 3, the real
#: scenes 51 (Samson) and 89 (Jasper Ridge) against about 200
TAIL_FACTOR = 8.0

#: a pixel holding more than this share of the subspace's directions is a direction by itself: a
#: spike stronger than a scene's weakest material takes that material's place in the subspace, and
#: its residual is then small (a material seen in one pixel only cannot be told from it; one
#: seen in three holds a third)
MAX_LEVERAGE = 0.5

#: the smallest typical residual energy the scores are taken against, relative to the pixels'
#: mean energy (60 dB)
RESIDUAL_FLOOR = 1e-6

_CHUNK = 65536


def _residuals(Y: np.ndarray, U: np.ndarray, evals: np.ndarray, weights: np.ndarray | None, n_fit: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Energy of each pixel of ``Y (N, B)`` (times ``weights``) off the columns of ``U (B, p)``,
    and its leverage on them: ``sum_k (x . u_k)^2 / (N evals_k)``, the share of each direction's
    energy the pixel holds, summed, for directions fitted to ``n_fit`` pixels (about
    ``p / n_fit`` for a pixel among many alike, 1 for a pixel that is a direction by itself)."""
    n = len(Y)
    r, lev = np.empty(n), np.empty(n)
    for i in range(0, n, _CHUNK):
        X = Y[i:i + _CHUNK].astype(np.float64)
        if weights is not None:
            X *= weights
        C = X @ U
        r[i:i + _CHUNK] = np.einsum("ij,ij->i", X, X) - np.sum(C**2, axis=1)
        lev[i:i + _CHUNK] = np.sum(C**2 / (n_fit * np.maximum(evals, 1e-300)), axis=1)
    return np.maximum(r, 0.0), lev


def _top(G: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    evals, evecs = np.linalg.eigh(0.5 * (G + G.T))
    order = np.argsort(evals)[::-1][:p]
    return evecs[:, order], evals[order]


def _threshold(scores: np.ndarray, dof: int) -> float:
    """`TAIL_FACTOR` times the 99th percentile's distance from 1, at least that of chi-square noise."""
    spread = max(float(np.quantile(scores, 0.99)) - 1.0, float(np.sqrt(2.0 / max(dof, 1))))
    return 1.0 + TAIL_FACTOR * spread


def outlier_scores(Y: np.ndarray, p: int, weights: np.ndarray | None = None,
                   gram: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """``(scores (N,), threshold, leverage (N,))`` of pixels ``Y (N, B)``, two passes (module
    docstring).

    ``weights (B,)``: score the pixels ``Y * weights`` (1 / each band's noise std, so the
    noise is white); ``gram``: their uncentred second moments ``X^T X / N`` ``(B, B)`` when the
    caller has them (`preprocessing.weighted_moments`). Scores are residual energies over the
    median of the pixels kept by the first pass; leverage is each pixel's share of the
    subspace's directions (`MAX_LEVERAGE`)."""
    Y = np.asarray(Y)
    n, bands = Y.shape
    w = None if weights is None else np.asarray(weights, np.float64)
    if gram is None:
        gram = np.zeros((bands, bands))
        for i in range(0, n, _CHUNK):
            X = Y[i:i + _CHUNK].astype(np.float64)
            if w is not None:
                X *= w
            gram += X.T @ X
        gram /= max(n, 1)
    dof = bands - p
    # residuals 60 dB below the pixels' energy are rounding, not noise: a noise-free scene has
    # no outliers
    floor = max(RESIDUAL_FLOOR * float(np.trace(gram)), 1e-300)
    r, lev = _residuals(Y, *_top(gram, p), w, n)
    scores = r / max(float(np.median(r)), floor)
    threshold = _threshold(scores, dof)
    first = (scores > threshold) | (lev > MAX_LEVERAGE)
    if not first.any():
        return scores, threshold, lev
    # the subspace again without the first pass's outliers (their second moments taken out)
    X = Y[first].astype(np.float64) * (1.0 if w is None else w)
    kept = n - int(first.sum())
    r, lev = _residuals(Y, *_top((gram * n - X.T @ X) / max(kept, 1), p), w, kept)
    scores = r / max(float(np.median(r[~first])), floor)
    return scores, _threshold(scores[~first], dof), lev


def gross_outliers(Y: np.ndarray, p: int, weights: np.ndarray | None = None,
                   gram: np.ndarray | None = None) -> np.ndarray | None:
    """Bool ``(N,)``: the pixels of ``Y (N, B)`` no mixture of ``p`` materials comes near
    (`outlier_scores` above their threshold, or leverage above `MAX_LEVERAGE`), or None when
    there are none (or too few pixels or bands to tell: fewer than 100 pixels, or
    ``B <= p + 2``)."""
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape[0] < 100 or Y.shape[1] <= p + 2:
        return None
    scores, threshold, lev = outlier_scores(Y, p, weights, gram)
    flagged = (scores > threshold) | (lev > MAX_LEVERAGE)
    return flagged if flagged.any() else None
