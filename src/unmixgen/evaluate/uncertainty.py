"""How well per-pixel uncertainty (a refinement's ``abundances_std`` and 90 % interval
``abundances_q05`` .. ``abundances_q95``) describes the actual error against ground truth.

- coverage: the fraction of true abundances inside the 90 % interval (0.90 when the
  intervals are calibrated), overall, per endmember and by true abundance level;
- Spearman rank correlation between the standard deviation and the absolute error (do
  larger spreads mark larger errors?);
- CRPS of the Gaussian with the estimate's mean and standard deviation (abundance units,
  lower is better; the mean absolute error when the std is 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr
from scipy.stats import spearmanr

from ..errors import InputError

LEVEL_BINS = (0.0, 0.05, 0.25, 0.5, 1.0 + 1e-9)
"""Edges of the true-abundance bins of ``coverage90_by_abundance`` (last one closed)."""

_SLACK = 1e-6  # float32 rounding of quantiles that sit on 0 or 1


def gaussian_crps(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """CRPS of ``N(mean, std^2)`` at ``truth``, elementwise (``|mean - truth|`` where std is 0)."""
    mean, std, truth = (np.asarray(v, np.float64) for v in (mean, std, truth))
    s = np.maximum(std, 1e-12)
    z = (truth - mean) / s
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    crps = s * (z * (2 * ndtr(z) - 1) + 2 * pdf - 1 / np.sqrt(np.pi))
    return np.where(std > 0, crps, np.abs(truth - mean))


def _flat(a: np.ndarray | None, shape: tuple[int, ...], what: str) -> np.ndarray | None:
    if a is None:
        return None
    try:
        a = np.asarray(a, np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: not a numeric array ({exc}); expected shape {shape}") from None
    if a.shape != shape:
        raise InputError(f"{what}: shape {a.shape}; expected {shape} like the abundances")
    return a.reshape(-1, shape[-1])


def interval_scores(A_est: np.ndarray, A_ref: np.ndarray, *, std: np.ndarray | None = None,
                    q05: np.ndarray | None = None, q95: np.ndarray | None = None,
                    mask: np.ndarray | None = None) -> dict[str, Any]:
    """Scores of the uncertainty of ``A_est`` against the truth ``A_ref``.

    Parameters
    ----------
    A_est, A_ref : ``(rows, cols, p)`` or ``(N, p)`` in matching endmember order.
    std, q05, q95 : the estimate's standard deviation and 5 / 95 % quantiles, same shape
        as ``A_est`` (each optional; the scores that need a missing one are absent).
    mask : optional ``(rows, cols)`` / ``(N,)`` valid pixels.

    Returns a dict: ``coverage90`` (+ ``_per_endmember``, ``_by_abundance`` with the bins'
    ``pixels``), ``interval90_width_mean`` (abundance units), ``spearman_std_abs_error``,
    ``crps_gaussian_mean``; computed over pixels where every given array is finite (only
    ``uncertainty_note`` when there is none).
    """
    shape = np.shape(A_est)
    if len(shape) < 2:
        raise InputError(f"abundances: shape {shape}; expected (rows, cols, p) or (N, p)")
    a, t = _flat(A_est, shape, "abundances"), _flat(A_ref, shape, "truth")
    s, lo, hi = (_flat(std, shape, "abundances_std"), _flat(q05, shape, "abundances_q05"),
                 _flat(q95, shape, "abundances_q95"))
    given = [v for v in (a, t, s, lo, hi) if v is not None]
    valid = np.all([np.isfinite(v).all(axis=1) for v in given], axis=0)
    if mask is not None:
        valid &= np.asarray(mask, bool).reshape(-1)
    if not valid.any():  # the other scores stand; say why these are missing
        return {"uncertainty_note": "no pixel has a finite estimate, truth and uncertainty (all masked or NaN)"}
    a, t = a[valid], t[valid]
    out: dict[str, Any] = {}
    if lo is not None and hi is not None:
        lo, hi = lo[valid], hi[valid]
        inside = (t >= lo - _SLACK) & (t <= hi + _SLACK)
        out["coverage90"] = float(inside.mean())
        out["coverage90_per_endmember"] = inside.mean(axis=0)
        out["interval90_width_mean"] = float((hi - lo).mean())
        by = []
        level = np.clip(t, 0.0, 1.0)  # a truth a rounding off [0, 1] (-3e-17) belongs in the end bins
        for low, high in zip(LEVEL_BINS[:-1], LEVEL_BINS[1:], strict=True):
            sel = (level >= low) & (level < high)
            by.append({"abundance_from": low, "abundance_to": min(high, 1.0), "pixels": int(sel.sum()),
                       "coverage90": float(inside[sel].mean()) if sel.any() else None})
        out["coverage90_by_abundance"] = by
    if s is not None:
        s = s[valid]
        if (s < 0).any():
            raise InputError(f"abundances_std: {int((s < 0).sum())} negative values; expected standard deviations "
                             ">= 0")
        err = np.abs(a - t).reshape(-1)
        sd = s.reshape(-1)
        # a constant std or error ranks nothing
        out["spearman_std_abs_error"] = (float(spearmanr(sd, err).statistic)
                                         if np.ptp(sd) > 0 and np.ptp(err) > 0 else None)
        out["crps_gaussian_mean"] = float(gaussian_crps(a, s, t).mean())
    return out
