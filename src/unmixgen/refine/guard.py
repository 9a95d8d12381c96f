"""The guard: a refined estimate is kept only where it does not worsen the data fit of the
initial estimate by more than the noise explains.

The initial abundances usually come from a least-squares fit (FCLS), which absorbs about
``p`` noise dimensions per pixel: its residual ``||y - a0 E0||^2`` is *below* that of the
true abundances by about ``p sigma^2``. A strict "no worse residual" rule would therefore
reject every estimate closer to the truth. The rule here: keep the refined pixel when

    ||y - a E||^2 <= ||y - a0 E0||^2 + (p + z sqrt(2 B)) sigma^2

(``sqrt(2 B) sigma^2`` is the standard deviation of a pixel's squared noise norm), and keep
the refined endmembers when the mean residual over pixels obeys the same rule with
``z = 0``. ``sigma^2``, the noise variance per band, is estimated from the data
(`noise_variance`).
"""

from __future__ import annotations

import numpy as np


def residuals(Y: np.ndarray, A: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Per-pixel squared residual ``||y - a E||^2``: Y (N, B), A (N, p), E (p, B) -> (N,)."""
    R = Y.astype(np.float64) - A.astype(np.float64) @ E.astype(np.float64)
    return np.einsum("nb,nb->n", R, R)


def noise_variance(Y: np.ndarray, r_init: np.ndarray, p: int) -> float:
    """Noise variance per band: the smaller of two overestimates, the init's residual per
    residual degree of freedom (median over pixels) and the variance of second differences
    along the bands (``y_b - (y_{b-1} + y_{b+1}) / 2`` has variance ``1.5 sigma^2`` for white
    noise; spectral curvature only adds)."""
    B = Y.shape[1]
    est = [float(np.median(r_init)) / max(B - p, 1)]
    if B >= 3:
        d = Y[:, 1:-1] - 0.5 * (Y[:, :-2] + Y[:, 2:])
        est.append(float(np.median(np.mean(d.astype(np.float64) ** 2, axis=1))) / 1.5)
    return max(min(est), 1e-20)


def guard(Y: np.ndarray, A0: np.ndarray, E0: np.ndarray, A_ref: np.ndarray, E_ref: np.ndarray, *,
          z: float = 2.0) -> dict:
    """Decide what of the refined result to keep.

    Parameters
    ----------
    Y : (N, B) valid pixels; A0, A_ref : (N, p); E0, E_ref : (p, B).

    Returns
    -------
    dict with ``endmembers_kept`` (bool), ``E`` (p, B) the endmembers kept, ``pixels_kept``
    (N,) bool, ``A`` (N, p) the abundances kept, ``sigma2`` and the mean residuals.
    """
    p, B = E0.shape
    r0 = residuals(Y, A0, E0)
    sigma2 = noise_variance(Y, r0, p)
    r_with_ref = residuals(Y, A_ref, E_ref)
    e_kept = bool(r_with_ref.mean() <= r0.mean() + p * sigma2)
    E = E_ref if e_kept else E0
    r = r_with_ref if e_kept else residuals(Y, A_ref, E0)
    keep = r <= r0 + (p + z * np.sqrt(2.0 * B)) * sigma2
    A = np.where(keep[:, None], A_ref, A0)
    return {"endmembers_kept": e_kept, "E": E, "pixels_kept": keep, "A": A, "sigma2": sigma2,
            "residual_init": float(r0.mean()), "residual_refined": float(r.mean()),
            "residual_final": float(residuals(Y, A, E).mean())}
