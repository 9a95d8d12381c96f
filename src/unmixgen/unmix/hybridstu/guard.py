"""The data-fit guard of HybridSTU: the network's answer is kept where the pixel's data cannot
tell it apart from the per-pixel answer it corrects, and moved back towards that answer
where the data can.

The network is trained on simulated scenes; where the scene differs from them (maps sharper
than the training maps, little noise), it can pull a pixel away from what the pixel's own
spectrum says. With ``a0`` the base answer of the pixel (FCLS, or the brightness-free
`unmixgen.unmix.inversion.scaled` answer with its brightness ``c``; 1 for FCLS) and ``a_ls``
its least-squares coordinates, the excess residual of an answer ``a`` is

    excess(a) = ||c a - a_ls||_G^2 - ||c a0 - a_ls||_G^2        (G = E E^T)

which equals ``||y - c a E||^2 - ||y - c a0 E||^2`` (the part of ``y`` outside the
endmembers' span cancels). The threshold ``tau`` is the ``level`` quantile of the excess of
the *true* abundances over the simulated validation pixels (`calibrate`): how far from
``a0`` the truth typically lies in data-fit terms, at the scene's noise and brightness
variability. Each pixel keeps ``a0 + t (a - a0)`` with the largest ``t`` in [0, 1] whose
excess is at most ``tau`` (the excess is a convex quadratic in ``t``, zero at ``t = 0``, so
``t`` has a closed form and the result stays on the simplex).

Everything is per pixel and uses the features of `unmixgen.unmix.hybridstu.features`, so the
tiled output still equals the untiled one.
"""

from __future__ import annotations

import numpy as np

from .features import BASES


def _parts(f: np.ndarray, G: np.ndarray, base: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a_ls, a0, c)`` of features ``f (N, 3p+1)`` (float64; ``c (N, 1)``)."""
    p = G.shape[0]
    f = f.astype(np.float64)
    a_ls = f[:, :p]
    k = BASES[base] * p
    a0 = f[:, k:k + p]
    if base == "fcls":
        return a_ls, a0, np.ones((f.shape[0], 1))
    # the brightness that fits a0 best: what the NNLS answer was divided by
    num = np.einsum("np,pq,nq->n", a0, G, a_ls)
    den = np.einsum("np,pq,nq->n", a0, G, a0)
    return a_ls, a0, np.maximum(num / np.maximum(den, 1e-30), 0.0)[:, None]


def excess_residual(f: np.ndarray, a: np.ndarray, G: np.ndarray, base: str) -> np.ndarray:
    """``excess(a)`` (N,) of answers ``a (N, p)`` for pixels with features ``f`` (module doc)."""
    a_ls, a0, c = _parts(f, G, base)
    r = c * np.asarray(a, np.float64) - a_ls
    r0 = c * a0 - a_ls
    return np.einsum("np,pq,nq->n", r, G, r) - np.einsum("np,pq,nq->n", r0, G, r0)


def calibrate(f: np.ndarray, a_true: np.ndarray, G: np.ndarray, base: str, level: float) -> float:
    """``tau``: the ``level`` quantile of the true abundances' excess over pixels ``f``."""
    return float(np.quantile(excess_residual(f, a_true, G, base), level))


def guarded(f: np.ndarray, a: np.ndarray, G: np.ndarray, base: str, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """``(answers (N, p) float32, t (N,))``: each pixel's ``a0 + t (a - a0)`` (module doc)."""
    a_ls, a0, c = _parts(f, G, base)
    d = np.asarray(a, np.float64) - a0
    g = np.einsum("np,pq,nq->n", c * a0 - a_ls, G, d) * c[:, 0]  # excess(t) = 2 g t + h t^2
    h = np.einsum("np,pq,nq->n", d, G, d) * c[:, 0] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        root = (-g + np.sqrt(np.maximum(g * g + h * tau, 0.0))) / h
    t = np.where(2 * g + h <= tau, 1.0, np.clip(np.where(h > 0, root, 1.0), 0.0, 1.0))
    return (a0 + t[:, None] * d).astype(np.float32), t
