"""Pixel preprocessing shared by the blind methods: brightness, principal subspace, vertices.

Real scenes mix materials under varying illumination and topography (the scaled linear
mixing model ``y = s * a @ E``). `brightness_ratio` measures from the data how far pixel
brightness varies beyond what plain linear mixing explains, `normalize_brightness` divides
it out, `principal_coordinates` projects pixels onto their leading principal axes, and
`random_vertices` finds extreme pixels along random directions (initial archetypes).

Used by `archetypal` (EDAA) and `minvol` (MVNMF); imports neither.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

__all__ = ["BRIGHTNESS", "brightness_ratio", "normalize_brightness", "principal_coordinates",
           "random_vertices"]

#: the brightness normalisations of `normalize_brightness`
BRIGHTNESS = ("l2", "sum", "none")


def normalize_brightness(Y: np.ndarray, floor: float = 0.5, norm: str = "l2") -> np.ndarray:
    """Divide each pixel of ``Y (N, B)`` by its brightness, floored at ``floor`` x the median.

    ``norm``: ``"l2"`` (Euclidean norm), ``"sum"`` (band sum) or ``"none"`` (return ``Y``
    itself). The result, float32 ``(N, B)``, is rescaled by the median brightness so values
    stay in the data's range (and units). Pixels darker than ``floor`` x the median are
    divided by the floor, so dark pixels (water, shadow) are not blown up into noise.
    """
    if norm == "none":
        return Y
    if norm == "l2":
        s = np.sqrt(np.einsum("ij,ij->i", Y.astype(np.float64), Y.astype(np.float64)))
    elif norm == "sum":
        s = Y.sum(axis=1, dtype=np.float64)
    else:
        raise ParameterError("norm", norm, f"expected one of {', '.join(map(repr, BRIGHTNESS))}")
    med = float(np.median(s))
    if not med > 0:
        return Y
    denom = np.maximum(s, floor * med) if floor > 0 else np.where(s > 0, s, med)
    return (Y * (med / denom)[:, None]).astype(np.float32)


def brightness_ratio(Y: np.ndarray, p: int) -> float:
    """How much pixel brightness varies beyond what linear mixing explains (>= 1, unitless).

    Under the linear mixing model with sum-to-one abundances the pixels ``Y (N, B)`` lie on
    a ``(p - 1)``-dimensional affine subspace; under the scaled model ``y = s * a @ E`` they
    fill a ``p``-dimensional linear subspace instead. The ratio is the residual energy of the
    best ``(p - 1)``-dimensional affine fit (centred PCA) over that of the best
    ``p``-dimensional linear fit (uncentred PCA): when brightness follows the mixing both
    residuals are noise and the ratio is about ``(B - p + 1) / (B - p)``; it grows with
    per-pixel scaling (illumination, topography).
    """
    Y = Y.astype(np.float64)
    n = Y.shape[0]
    ev = np.linalg.eigvalsh(Y.T @ Y / n)[::-1]
    Yc = Y - Y.mean(0)
    aff = np.linalg.eigvalsh(Yc.T @ Yc / n)[::-1][p - 1:].sum()
    eps = 1e-9 * max(float(ev.sum()), 1e-300)  # noise-free data: both residuals vanish
    return float((max(aff, 0.0) + eps) / (max(ev[p:].sum(), 0.0) + eps))


def principal_coordinates(Y: np.ndarray, d: int) -> np.ndarray:
    """Coordinates of the pixels ``Y (N, B)`` on their ``d`` leading (uncentred) principal axes.

    The axes are the top eigenvectors of ``Y^T Y / N`` (float64); returns float32 ``(N, d)``
    in the data's units.
    """
    G = (Y.T.astype(np.float64) @ Y.astype(np.float64)) / Y.shape[0]
    w, V = np.linalg.eigh(G)
    V = V[:, ::-1][:, :d]
    return (Y @ V.astype(np.float32)).astype(np.float32)


def random_vertices(Z: np.ndarray, p: int, rng: np.random.Generator) -> np.ndarray:
    """Indices ``(p,)`` of extreme pixels of ``Z (N, d)``, one per random direction.

    Each direction is drawn from ``rng`` and made orthogonal to the pixels already found;
    the pixel with the largest absolute projection on it (not found before) is the next
    vertex.
    """
    n, d = Z.shape
    idx: list[int] = []
    Z64 = Z.astype(np.float64)  # once, not once per vertex
    for _ in range(p):
        w = rng.standard_normal(d)
        if idx:
            Q, _ = np.linalg.qr(Z64[idx].T)
            w = w - Q @ (Q.T @ w)
        v = np.abs(Z64 @ w)
        if idx:
            v[idx] = -1.0
        idx.append(int(np.argmax(v)))
    return np.asarray(idx)
