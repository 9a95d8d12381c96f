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
           "random_vertices", "second_moments"]

#: the brightness normalisations of `normalize_brightness`
BRIGHTNESS = ("l2", "sum", "none")


def normalize_brightness(Y: np.ndarray, floor: float = 0.5, norm: str = "l2",
                         weights: np.ndarray | None = None) -> np.ndarray:
    """Divide each pixel of ``Y (N, B)`` by its brightness, floored at ``floor`` x the median.

    ``norm``: ``"l2"`` (Euclidean norm), ``"sum"`` (band sum) or ``"none"`` (return ``Y``
    itself). The result, float32 ``(N, B)``, is rescaled by the median brightness so values
    stay in the data's range (and units). Pixels darker than ``floor`` x the median are
    divided by the floor, so dark pixels (water, shadow) are not blown up into noise.
    ``weights (B,)``: of the pixels ``Y * weights`` (one copy, the result's).
    """
    if norm not in BRIGHTNESS:
        raise ParameterError("norm", norm, f"expected one of {', '.join(map(repr, BRIGHTNESS))}")
    # by blocks: float64 products of the whole scene were 2x its float32 size (1.8 GB for a
    # million pixels of 230 bands) on top of the result
    if weights is None:
        if norm == "none":
            return Y
        X = Y
    else:
        w = np.asarray(weights, np.float64)
        X = np.empty(Y.shape, np.float32)  # the one copy: the result
        for i in range(0, len(Y), _BLOCK):
            X[i:i + _BLOCK] = Y[i:i + _BLOCK] * w
        if norm == "none":
            return X
    s = np.empty(len(X))
    for i in range(0, len(X), _BLOCK):
        b = X[i:i + _BLOCK]
        s[i:i + _BLOCK] = (np.sqrt(np.einsum("ij,ij->i", b, b, dtype=np.float64)) if norm == "l2"
                           else b.sum(axis=1, dtype=np.float64))
    med = float(np.median(s)) if len(s) else 0.0
    if not med > 0:
        return X
    denom = np.maximum(s, floor * med) if floor > 0 else np.where(s > 0, s, med)
    scale = med / denom
    if X is not Y:  # scaled in place (in float32, as the weighted copy always was)
        X *= scale.astype(np.float32)[:, None]
        return X
    out = np.empty(Y.shape, np.float32)
    for i in range(0, len(Y), _BLOCK):
        out[i:i + _BLOCK] = Y[i:i + _BLOCK] * scale[i:i + _BLOCK, None]
    return out


_BLOCK = 65_536  # pixels a block of `normalize_brightness`


def brightness_ratio(Y: np.ndarray, p: int, weights: np.ndarray | None = None,
                     moments: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """How much pixel brightness varies beyond what linear mixing explains (>= 1, unitless).

    Under the linear mixing model with sum-to-one abundances the pixels ``Y (N, B)`` lie on
    a ``(p - 1)``-dimensional affine subspace; under the scaled model ``y = s * a @ E`` they
    fill a ``p``-dimensional linear subspace instead. The ratio is the residual energy of the
    best ``(p - 1)``-dimensional affine fit (centred PCA) over that of the best
    ``p``-dimensional linear fit (uncentred PCA): when brightness follows the mixing both
    residuals are noise and the ratio is about ``(B - p + 1) / (B - p)``; it grows with
    per-pixel scaling (illumination, topography). ``weights (B,)``: the ratio of the pixels
    ``Y * weights`` (from the moments of ``Y``: no weighted copy of the pixels). ``moments``:
    `second_moments` of ``Y`` when the caller has them.
    """
    G, C = weighted_moments(second_moments(Y) if moments is None else moments, weights)
    ev = np.linalg.eigvalsh(G)[::-1]
    aff = np.linalg.eigvalsh(C)[::-1][p - 1:].sum()
    eps = 1e-9 * max(float(ev.sum()), 1e-300)  # noise-free data: both residuals vanish
    return float((max(aff, 0.0) + eps) / (max(ev[p:].sum(), 0.0) + eps))


def weighted_moments(moments: tuple[np.ndarray, np.ndarray], weights: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """`second_moments` of ``Y`` turned into those of ``Y * weights`` (``weights (B,)``; None:
    as given): both are ``diag(w) M diag(w)``."""
    if weights is None:
        return moments
    w = np.asarray(weights, np.float64)
    outer = np.outer(w, w)
    return moments[0] * outer, moments[1] * outer


def second_moments(Y: np.ndarray, chunk_values: int = 2**22) -> tuple[np.ndarray, np.ndarray]:
    """Uncentred ``Y^T Y / N`` and centred covariance ``(B, B)`` of pixels ``Y (N, B)``, float64.

    Accumulated over row chunks of about ``chunk_values`` values, so a million-pixel scene is
    never copied to float64 whole (1.8 GB for 230 bands); the centred one subtracts the mean
    before the product, so its small (noise) eigenvalues do not drown in rounding.
    """
    n, bands = Y.shape
    mean = Y.mean(axis=0, dtype=np.float64)
    G = np.zeros((bands, bands))
    C = np.zeros((bands, bands))
    step = max(1, chunk_values // max(bands, 1))
    for i in range(0, n, step):
        c = Y[i:i + step].astype(np.float64)
        G += c.T @ c
        c -= mean
        C += c.T @ c
    return 0.5 * (G + G.T) / n, 0.5 * (C + C.T) / n


def principal_coordinates(Y: np.ndarray, d: int) -> np.ndarray:
    """Coordinates of the pixels ``Y (N, B)`` on their ``d`` leading (uncentred) principal axes.

    The axes are the top eigenvectors of ``Y^T Y / N`` (float64); returns float32 ``(N, d)``
    in the data's units.
    """
    G, _ = second_moments(Y)
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
