"""The subspace front end of HybridSTU: each pixel reduced to ``3 p + 1`` numbers.

With known endmembers ``E (p, bands)`` and white noise, the linear mixing model
``y = a E + n`` (and its ELMM form ``y = s a E + n``) sees the data only through the
projection ``b = E y`` onto the endmember subspace, i.e. through the ordinary
least-squares coordinates ``a_ls = b (E E^T)^-1``; the rest of ``y`` is noise and model
error. So instead of convolving over all bands, the network reads per pixel

- ``a_ls`` (p): the unconstrained least-squares abundances (sum not fixed: it carries the
  brightness scaling of the ELMM);
- ``a_fcls`` (p): the fully constrained least-squares abundances (the exact per-pixel
  answer of the linear model ``y = a E + n``);
- ``a_scaled`` (p): the non-negative least-squares abundances divided by their sum, the
  exact per-pixel answer of the scaled model ``y = s a E + n`` with a free brightness
  ``s > 0`` per pixel (`unmixgen.unmix.inversion.scaled`).
  The network corrects one of the two (`unmixgen.unmix.hybridstu.network`, its ``base``);
- ``log(rms(y - a_ls E) / scale + 1e-4)`` (1): how far the pixel lies from the subspace
  (noise level, endmember variability, unmodelled materials).

This makes a training step independent of the number of bands, and it is per pixel, so
tiled inference stays exact.
"""

from __future__ import annotations

import numpy as np

from ..inversion import fcls, scaled, unconstrained

#: the per-pixel answers a network can correct, by name: their first channel in the features
BASES = {"fcls": 1, "scaled": 2}


def n_features(p: int) -> int:
    """Channels of the front end for ``p`` endmembers: ``3 p + 1``."""
    return 3 * int(p) + 1


def subspace_features(Y: np.ndarray, E: np.ndarray, scale: float) -> np.ndarray:
    """Front-end features ``(N, 3 p + 1)`` float32 of pixels ``Y (N, bands)``.

    ``E (p, bands)`` and ``Y`` in the same units; ``scale`` (same units) makes the
    residual channel dimensionless. Rows of NaN/Inf pixels come out as NaN.
    """
    Y = np.asarray(Y, np.float32)
    E = np.asarray(E, np.float32)
    a_ls = unconstrained(Y, E)
    a_fc = fcls(Y, E)
    a_el = scaled(Y, E)
    # residual energy from the Gram matrix, without forming the (N, bands) residual
    G = (E.astype(np.float64) @ E.T.astype(np.float64))
    a64 = a_ls.astype(np.float64)
    yy = np.einsum("nb,nb->n", Y, Y, dtype=np.float64)
    res = np.clip(yy - np.einsum("np,pq,nq->n", a64, G, a64), 0.0, None)
    r = np.log(np.sqrt(res / E.shape[1]) / scale + 1e-4)
    return np.concatenate([a_ls, a_fc, a_el, r[:, None].astype(np.float32)], axis=1).astype(np.float32)
