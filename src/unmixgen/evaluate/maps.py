"""Sets of abundance maps as the realism distances and the baselines take them.

A set is a float array ``(N, h, w, p)``: ``N`` maps of ``h x w`` pixels, every pixel on the
simplex (non-negative, summing to one over the ``p`` endmembers). `check_maps` validates
one set, `check_pair` two sets that are compared, and `subsample_pixels` pools the pixels
of a set (seeded subsample for large sets).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["check_maps", "check_pair", "subsample_pixels"]


def check_maps(maps, what: str = "maps", *, atol: float = 1e-3) -> np.ndarray:
    """Return ``maps`` as float64 ``(N, h, w, p)``; a single ``(h, w, p)`` map becomes N=1.

    Raises `InputError` (naming ``what``) unless the values are finite, non-negative and
    sum to one per pixel (within ``atol``).
    """
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or min(a.shape) < 1:
        raise InputError(f"{what}: shape {a.shape}; expected (N, rows, cols, p) abundance maps")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{what}: contains NaN or Inf; expected abundances on the simplex")
    if a.min() < -atol:
        raise InputError(f"{what}: negative abundance {a.min():.3g}; expected values >= 0")
    dev = np.abs(a.sum(-1) - 1.0).max()
    if dev > atol:
        raise InputError(f"{what}: pixel sums deviate from 1 by up to {dev:.3g}; expected sum-to-one")
    return a


def check_pair(cand, ref, names: tuple[str, str] = ("candidate maps", "reference maps")
               ) -> tuple[np.ndarray, np.ndarray]:
    """`check_maps` on both sets, and the same map size and endmember count in both.

    Returns both as float64 ``(N, h, w, p)`` / ``(M, h, w, p)``.
    """
    cand = check_maps(cand, names[0])
    ref = check_maps(ref, names[1])
    if cand.shape[1:] != ref.shape[1:]:
        raise InputError(
            f"{names[0]} have size {cand.shape[1:]} (rows, cols, p) but {names[1]} "
            f"have {ref.shape[1:]}; expected the same map size and endmember count"
        )
    return cand, ref


def subsample_pixels(a: np.ndarray, max_pixels: int, rng: np.random.Generator) -> np.ndarray:
    """The pixels of maps ``(..., p)`` as rows ``(n, p)``; at most ``max_pixels`` of them,
    drawn without replacement from ``rng`` when there are more."""
    px = a.reshape(-1, a.shape[-1])
    if px.shape[0] > max_pixels:
        px = px[rng.choice(px.shape[0], max_pixels, replace=False)]
    return px
