"""The guard: a refined estimate is kept only inside the region of abundances that the data
cannot tell apart from the initial estimate, given the noise.

For fixed endmembers ``E`` and a least-squares initial estimate ``a0`` (FCLS), the excess
residual of any ``a`` is ``||y - a E||^2 - ||y - a0 E||^2 = ||(a - a0) E||^2`` (the cross
term vanishes at the least-squares optimum), and for the *true* abundances this excess is
``sigma^2`` times a chi-square variable with ``p - 1`` degrees of freedom (sum-to-one removes
one). The pixel's ``level`` region of estimates the data cannot tell apart from the init is
therefore

    | ||y - a E||^2 - ||y - a0 E0||^2 | <= sigma^2 chi2_{p-1}(level)

The lower bound matters only for an init that is not a least-squares fit (e.g. archetypal
analysis): a refined pixel fitting the data far better than the init has left the init's
solution for the plain least-squares one, which the init method chose not to return.
Note that the per-pixel noise norm cancels in this difference: only ``p - 1`` noise
dimensions matter, not ``B``. A refined pixel inside the region is kept; one outside is moved
back along the segment towards ``a0`` to the region's boundary (the largest ``s`` in [0, 1]
with ``a0 + s (a - a0)`` inside; convex, so it stays on the simplex).

The refined endmembers are kept when the init is a least-squares fit and their best fit
(FCLS abundances) is no worse on average than the init's (`accept_endmembers`). They change the least-squares centre of the region: with refined endmembers
kept, ``a0`` is the FCLS fit to them (abundances refined under the old endmembers are not
matched to the new ones, and the data cannot vouch for them), and the region is measured
from that fit's residual. ``sigma^2``, the noise variance per band, is estimated from the
data (`noise_variance`).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2

from ..unmix.inversion import fcls, nnls


def residuals(Y: np.ndarray, A: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Per-pixel squared residual ``||y - a E||^2``: Y (N, B), A (N, p), E (p, B) -> (N,).
    In float64, by blocks of pixels (a scene of millions of pixels is not copied whole)."""
    E64 = E.astype(np.float64)
    out = np.empty(len(Y))
    for i in range(0, len(Y), 65536):
        R = Y[i:i + 65536].astype(np.float64) - A[i:i + 65536].astype(np.float64) @ E64
        out[i:i + 65536] = np.einsum("nb,nb->n", R, R)
    return out


def noise_variance(Y: np.ndarray, r_init: np.ndarray, p: int) -> float:
    """Noise variance per band: the smaller of two overestimates, the init's residual per
    residual degree of freedom (median over pixels) and the variance of second differences
    along the bands (``y_b - (y_{b-1} + y_{b+1}) / 2`` has variance ``1.5 sigma^2`` for white
    noise; spectral curvature only adds)."""
    B = Y.shape[1]
    est = [float(np.median(r_init)) / max(B - p, 1)]
    if B >= 3:
        per_pixel = np.empty(len(Y))
        for i in range(0, len(Y), 65536):  # by blocks: no whole-scene float64 copy
            y = Y[i:i + 65536].astype(np.float64)
            per_pixel[i:i + 65536] = np.mean((y[:, 1:-1] - 0.5 * (y[:, :-2] + y[:, 2:])) ** 2, axis=1)
        est.append(float(np.median(per_pixel)) / 1.5)
    return max(min(est), 1e-20)


def shrink_factors(Y: np.ndarray, A0: np.ndarray, A_ref: np.ndarray, E: np.ndarray, r0: np.ndarray,
                   tol: np.ndarray | float) -> np.ndarray:
    """Per pixel the largest ``s`` in [0, 1] with ``|f(s)| <= tol``, ``f(s) = ||y - (a0 + s d)
    E||^2 - r0``, ``d = a_ref - a0``, reached from ``s = 0`` without leaving the band (0 where
    ``f(0)`` is already outside it). Shapes: Y (N, B), A0 / A_ref (N, p), E (p, B), r0 (N,)
    -> (N,)."""
    E64 = E.astype(np.float64)
    c, g, h = (np.empty(len(Y)) for _ in range(3))  # f(s) = c - 2 g s + h s^2
    for i in range(0, len(Y), 65536):  # by blocks of pixels: no whole-scene float64 copies
        sl = slice(i, i + 65536)
        a0 = A0[sl].astype(np.float64)
        R = Y[sl].astype(np.float64) - a0 @ E64
        D = (A_ref[sl].astype(np.float64) - a0) @ E64
        c[sl] = np.einsum("nb,nb->n", R, R)
        g[sl] = np.einsum("nb,nb->n", R, D)
        h[sl] = np.einsum("nb,nb->n", D, D)
    c -= r0
    f = lambda v: c - 2 * g * v + h * v * v  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.sqrt(np.maximum(g * g - h * (c - tol), 0))
        s_up = np.where(f(1.0) <= tol, 1.0, np.clip(np.where(h > 0, (g + up) / h, 0.0), 0.0, 1.0))
        # f dips below -tol before s_up (a fit much better than the init's): stop at the crossing
        lo = np.sqrt(np.maximum(g * g - h * (c + tol), 0))
        s_lo = np.clip(np.where(h > 0, (g - lo) / h, 0.0), 0.0, 1.0)
        m = np.clip(np.where(h > 0, g / h, 0.0), 0.0, s_up)  # f's minimum on [0, s_up]
    s = np.where(f(m) < -tol, s_lo, s_up)
    return np.where(np.abs(c) <= tol, s, 0.0)


def init_fit(Y: np.ndarray, A0: np.ndarray, E0: np.ndarray) -> dict:
    """What every decision on refined endmembers measures against, computed once per
    refinement: the init's per-pixel residuals ``r0`` (N,) and the noise variance ``sigma2``
    (`noise_variance`). `init_is_least_squares` adds its answer to the same dict."""
    r0 = residuals(Y, A0, E0)
    return {"r0": r0, "sigma2": noise_variance(Y, r0, E0.shape[0])}


def init_is_least_squares(Y: np.ndarray, E0: np.ndarray, base: dict) -> bool:
    """Whether the init of ``base`` (`init_fit`) on endmembers ``E0`` is a least-squares fit:
    its mean residual within ``(p - 1) sigma^2`` of the FCLS fit's. The FCLS fit runs once;
    the answer is kept in ``base``."""
    if "init_is_ls" not in base:
        r_ls = float(residuals(Y, fcls(Y, E0), E0).mean())
        base["r_ls"] = r_ls
        base["init_is_ls"] = bool(base["r0"].mean() <= r_ls + (E0.shape[0] - 1) * base["sigma2"])
    return base["init_is_ls"]


def brightness_fit_residual(Y: np.ndarray, E: np.ndarray) -> float:
    """Mean residual of endmembers ``E`` when each pixel may also scale them: the NNLS fit,
    ``y = s a E`` with ``s`` free. Refined endmembers are judged under it too
    (`accept_endmembers`): a per-pixel brightness is then already accounted for, so
    endmembers that only absorb it gain nothing there, while endmembers nearer the truth
    still fit better."""
    return float(residuals(Y, nnls(Y, E), E).mean())


def accept_endmembers(Y: np.ndarray, A0: np.ndarray, E0: np.ndarray, E_ref: np.ndarray,
                      tolerance: float = 0.0, base: dict | None = None) -> dict:
    """Refined endmembers ``E_ref`` (p, B) are accepted when the init ``(A0, E0)`` is a
    least-squares fit (its mean residual within ``(p - 1) sigma^2`` of the FCLS fit to ``E0``:
    replacing the init's abundances by a fit to new endmembers is only a like-for-like change
    then) and the FCLS fit to ``E_ref`` has a mean residual at most ``tolerance sigma^2``
    larger than the init's (the data cannot tell such endmembers from the init's; the spectra
    prior preferred them), and when they also do so if each pixel may scale the endmembers
    (`brightness_fit_residual` of ``E_ref`` at most that of ``E0`` plus the same allowance: the
    init's excess over its FCLS fit, and the tolerance). Where the pixels' brightness varies,
    FCLS with the true endmembers misfits and endmembers bent towards the bright pixels fit it
    better, but not once the brightness is free. ``base``: `init_fit` ``(Y, A0, E0)`` when
    the caller has it (it keeps the fits of ``E0``).

    Returns a dict with ``kept`` (bool), ``E``, ``A`` (the region's centre: the FCLS fit to
    accepted endmembers, else ``A0``), ``r`` (its per-pixel residuals), ``r0``, ``sigma2`` and
    ``init_is_ls`` (bool).
    """
    base = init_fit(Y, A0, E0) if base is None else base
    r0, sigma2 = base["r0"], base["sigma2"]
    out = {"kept": False, "E": E0, "A": A0, "r": r0, "r0": r0, "sigma2": sigma2, "init_is_ls": True}
    if np.array_equal(E_ref, E0):
        return {**out, "kept": True}
    out["init_is_ls"] = init_is_least_squares(Y, E0, base)
    if not out["init_is_ls"]:
        return out
    A_fit = fcls(Y, E_ref)
    r_fit = residuals(Y, A_fit, E_ref)
    if r_fit.mean() <= r0.mean() + tolerance * sigma2:
        if "r_brightness" not in base:
            base["r_brightness"] = brightness_fit_residual(Y, E0)
        slack = max(float(r0.mean()) - base["r_ls"], 0.0)  # the init's excess over its FCLS fit
        if brightness_fit_residual(Y, E_ref) <= base["r_brightness"] + slack + tolerance * sigma2:
            return {**out, "kept": True, "E": E_ref, "A": A_fit, "r": r_fit}
    return out


def guard(Y: np.ndarray, A0: np.ndarray, E0: np.ndarray, A_ref: np.ndarray, E_ref: np.ndarray, *,
          level: float = 0.9, accepted: dict | None = None, base: dict | None = None,
          noise_scale: np.ndarray | None = None) -> dict:
    """Decide what of the refined result to keep.

    Parameters
    ----------
    Y : (N, B) valid pixels; A0, A_ref : (N, p); E0, E_ref : (p, B).
    level : confidence level of the per-pixel region, in (0, 1).
    accepted : the caller's `accept_endmembers` decision on ``E_ref`` (its two FCLS fits are
        then not repeated; it may have used a tolerance); None: computed here, with none.
    base : `init_fit` ``(Y, A0, E0)`` when the caller has it.
    noise_scale : (N,) each pixel's noise variance relative to ``sigma2`` (pixels divided by
        their band sums: the square of the median band sum over the pixel's); None: 1.

    Returns
    -------
    dict with ``endmembers_kept`` (bool), ``E`` (p, B) the endmembers kept, ``A_base`` (N, p)
    the region's centre (``A0``, or the FCLS fit to kept refined endmembers), ``shrink`` (N,)
    the factor ``s`` applied to each pixel's refinement (1: kept whole), ``pixels_kept`` (N,)
    bool (``s == 1``), ``A`` (N, p) the abundances kept, ``sigma2`` and the mean residuals.
    """
    p, B = E0.shape
    e = accept_endmembers(Y, A0, E0, E_ref, base=base) if accepted is None else accepted
    sigma2 = e["sigma2"]
    E, A_base = e["E"], e["A"]
    tol = sigma2 * float(chi2.ppf(level, max(p - 1, 1)))
    s = shrink_factors(Y, A_base, A_ref, E, e["r"], tol if noise_scale is None else tol * noise_scale)
    A = A_base + s[:, None] * (A_ref - A_base)
    return {"endmembers_kept": e["kept"], "E": E, "A_base": A_base.astype(np.float32), "shrink": s,
            "pixels_kept": s >= 1.0, "A": A.astype(np.float32), "sigma2": sigma2,
            "residual_init": float(e["r0"].mean()), "residual_refined": float(residuals(Y, A_ref, E).mean()),
            "residual_final": float(residuals(Y, A, E).mean())}
