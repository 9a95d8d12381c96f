"""How smooth HybridSTU's training maps are: the scene's own per-pixel maps, smoothed by the
width that best recovers noise-free maps (Stein's unbiased risk estimate), or left as they are
where they have no spatial structure at the pixel scale.

Arrays are ``(rows, cols, p)`` abundance maps with a ``(rows, cols)`` valid-pixel mask; widths
are Gaussian standard deviations in pixels; noise variances are in squared abundance units.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def smooth_maps(A: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """``A (rows, cols, p)`` filtered by a Gaussian of ``sigma`` pixels over valid pixels only
    (normalised convolution; a convex combination per pixel, so the result stays on the
    simplex); invalid pixels stay NaN."""
    from scipy.ndimage import gaussian_filter

    w = mask.astype(np.float64)
    num = gaussian_filter(np.where(mask[..., None], A, 0.0).astype(np.float64), (sigma, sigma, 0), mode="nearest")
    den = gaussian_filter(w, sigma, mode="nearest")[..., None]
    out = (num / np.maximum(den, 1e-12)).astype(np.float32)
    out[~mask] = np.nan
    return out


# Gaussian widths (pixels) "auto" picks from: the network's measured optimum lies within them
# (benchmarks/RESULTS.md, "The training maps' smoothing"). Wider ones taught it to blur: on the
# p = 4 / 6 suite (15-30 dB) 1.0 lost to 0.75 in 19 of 22 cases, even where the risk estimate
# preferred 1.0-1.5 (it counts the unconstrained least-squares noise, more than the simplex
# leaves in the maps). Narrower ones taught it too little: 0.25 lost to 0.5 on both 30 dB scenes
# where the estimate preferred 0.25.
SMOOTHING_WIDTHS = (0.5, 0.75)

# Below this correlation of neighbouring pixels' abundances (`map_structure`) the scene's maps
# have no spatial structure at the pixel scale (per-pixel Dirichlet draws measure 0.00-0.01; the
# suites' smooth, rough, Voronoi and sharp maps 0.71-1.0 at 15-40 dB), and smoothed training
# maps taught the network a spatial correlation the scene lacks: up to 1.13x FCLS's RMSE
# (benchmarks/RESULTS.md, "HybridSTU on maps without spatial structure").
UNSTRUCTURED = 0.25


def map_noise_variance(E: np.ndarray, band_noise: np.ndarray) -> np.ndarray:
    """Noise variance ``(p,)`` of each least-squares abundance of pixels with independent
    band noise of variance ``band_noise (bands,)`` and endmembers ``E (p, bands)``: the
    diagonal of ``G^-1 E diag(band_noise) E^T G^-1``, ``G = E E^T`` (float64). A singular ``G``
    (a spectrum and a scaled copy of it: still distinct endmembers under sum-to-one) takes the
    minimum-norm least-squares map, the pseudo-inverse."""
    E = np.asarray(E, np.float64)
    try:
        M = np.linalg.solve(E @ E.T, E)  # (p, bands): the least-squares map from pixel to abundances
    except np.linalg.LinAlgError:
        M = np.linalg.pinv(E.T)
    return np.einsum("pb,b,pb->p", M, np.asarray(band_noise, np.float64), M)


def map_structure(A: np.ndarray, mask: np.ndarray, noise_var: np.ndarray) -> float:
    """How much neighbouring pixels' abundances agree beyond their noise: per endmember, the
    covariance of horizontally and vertically adjacent valid entries of ``A (rows, cols, p)``
    (their independent noise of variance ``noise_var (p,)`` does not enter it) over the maps'
    variance less that noise; the median over the endmembers. About 1 for smooth maps, 0 for
    maps drawn pixel by pixel; 1.0 when it cannot be measured (no adjacent valid pairs, or no
    endmember varies beyond its noise)."""
    # float32 maps (one copy, centred in place) and float64 sums: a million-pixel scene's maps
    # are not copied in float64
    a = np.where(mask[..., None], A, np.nan).astype(np.float32)
    a -= np.nanmean(a, axis=(0, 1), dtype=np.float64).astype(np.float32)
    n, cov = 0, np.zeros(a.shape[-1])
    for q in (a[1:] * a[:-1], a[:, 1:] * a[:, :-1]):  # vertical, then horizontal neighbours
        n += int(np.isfinite(q[..., 0]).sum())
        cov += np.nansum(q, axis=(0, 1), dtype=np.float64)
    if n == 0:
        return 1.0
    cov /= n
    signal = np.nanvar(a, axis=(0, 1), dtype=np.float64) - np.asarray(noise_var, np.float64)
    varies = signal > 1e-12
    if not varies.any():
        return 1.0
    return float(np.median(cov[varies] / signal[varies]))


def auto_smoothing(A: np.ndarray, mask: np.ndarray, noise_var: np.ndarray) -> tuple[float, dict[str, Any]]:
    """The ``map_smoothing="auto"`` width for the maps ``A (rows, cols, p)`` with noise variances
    ``noise_var (p,)``: 0 where they have no spatial structure (`map_structure` below
    `UNSTRUCTURED`), else `choose_smoothing`'s. Returns ``(width, record)``: ``map_structure``
    and, where the risk was estimated, ``map_smoothing_risk``."""
    structure = map_structure(A, mask, noise_var)
    record: dict[str, Any] = {"map_structure": round(structure, 3)}
    if structure < UNSTRUCTURED:
        return 0.0, record
    width, risks = choose_smoothing(A, mask, noise_var)
    record["map_smoothing_risk"] = risks
    return width, record


def choose_smoothing(A: np.ndarray, mask: np.ndarray, noise_var: np.ndarray,
                     widths=SMOOTHING_WIDTHS) -> tuple[float, dict[float, float]]:
    """The Gaussian width (pixels) of `smooth_maps` that best recovers noise-free maps from
    ``A (rows, cols, p)``, whose valid entries carry independent noise of variance
    ``noise_var (p,)``, by Stein's unbiased risk estimate: ``||S A - A||^2 + 2 tr(S) sum(noise_var)
    - n sum(noise_var)``, ``tr(S)`` the normalised convolution's own-pixel weights (the kernel's
    centre over each pixel's weight sum). Returns ``(width, {width: risk per valid entry})``.

    The training maps' smoothness follows: unsmoothed maps teach the noise of the per-pixel
    answer, too smooth ones teach the network to blur maps that are sharper than it learned.
    """
    from scipy.ndimage import gaussian_filter

    x = A[mask]
    n, total = x.shape[0], float(np.sum(noise_var))
    delta = np.zeros((9, 9))
    delta[4, 4] = 1.0
    risks = {}
    for s in widths:
        if s == 0:
            risks[float(s)] = n * total  # S = I: tr(S) = n
            continue
        centre = gaussian_filter(delta, s, mode="constant")[4, 4]  # the kernel's own-pixel weight
        den = gaussian_filter(mask.astype(np.float32), s, mode="nearest")[mask]
        trace = float(np.sum(centre / np.maximum(den, 1e-12), dtype=np.float64))
        d = smooth_maps(A, mask, s)[mask] - x  # float32 differences, summed in float64
        risks[float(s)] = float(np.einsum("ij,ij->", d, d, dtype=np.float64)) + 2.0 * trace * total - n * total
    entries = n * A.shape[-1]
    best = min(risks, key=risks.get)
    return best, {k: v / entries for k, v in risks.items()}
