"""Euclidean projection onto the probability simplex, for numpy arrays and torch tensors.

The projection of a vector ``v (p,)`` onto ``{a : a >= 0, sum(a) = 1}`` is
``max(v - theta, 0)`` with the one threshold ``theta`` that makes the result sum to one.
With ``u`` the entries of ``v`` sorted in decreasing order and ``c_k = u_1 + ... + u_k``,
``theta = (c_rho - 1) / rho`` where ``rho`` is the largest ``k`` with
``u_k > (c_k - 1) / k`` (Held, Wolfe and Crowder 1974; Duchi et al. 2008). Both functions
apply this to every vector of an array at once, ``O(p log p)`` per vector, no loop.

`project_simplex` is the numpy version (vectors along ``axis``, default the last one: the
package's ``(..., p)`` abundances); `project_simplex_torch` the torch version (vectors along
``dim``, default 1: the ``(N, p, H, W)`` layout of torch internals). torch is imported only
inside the torch function, so this module imports without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["project_simplex", "project_simplex_torch"]


def project_simplex(v: np.ndarray, axis: int = -1) -> np.ndarray:
    """Euclidean projection of every vector along ``axis`` of ``v`` onto the simplex.

    Parameters
    ----------
    v : ndarray (..., p, ...)
        Any real values; the vectors run along ``axis``.
    axis : int
        The axis holding the ``p`` components (default: the last one).

    Returns
    -------
    ndarray, same shape as ``v``: non-negative, summing to one along ``axis``. Float64 for
    float64 input.
    """
    x = np.moveaxis(np.asarray(v), axis, -1)
    p = x.shape[-1]
    u = -np.sort(-x, axis=-1)
    css = np.cumsum(u, axis=-1) - 1.0
    cond = u - css / np.arange(1, p + 1) > 0
    # the condition holds on a prefix of the sorted entries; rho is its last index (0 when
    # it never holds, which only overflowing or NaN input can cause)
    last = p - 1 - np.argmax(cond[..., ::-1], axis=-1)
    rho = np.where(cond.any(axis=-1), last, 0)[..., None]
    theta = np.take_along_axis(css, rho, axis=-1) / (rho + 1)
    return np.moveaxis(np.maximum(x - theta, 0.0), -1, axis)


def project_simplex_torch(v: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Euclidean projection of every vector along ``dim`` of ``v`` onto the simplex.

    The torch counterpart of `project_simplex` (same algorithm), differentiable almost
    everywhere and on ``v``'s device and dtype.

    Parameters
    ----------
    v : Tensor (N, p, ...) or any shape
        The vectors run along ``dim``.
    dim : int
        The dimension holding the ``p`` components (default 1, the channel dimension of
        ``(N, p, H, W)`` maps and of ``(N, p)`` pixel rows).

    Returns
    -------
    Tensor, same shape, dtype and device as ``v``: non-negative, summing to one along ``dim``.
    """
    import torch

    x = v.movedim(dim, -1)
    p = x.shape[-1]
    u, _ = torch.sort(x, dim=-1, descending=True)
    css = torch.cumsum(u, dim=-1) - 1.0
    k = torch.arange(1, p + 1, device=x.device, dtype=x.dtype)
    cond = (u - css / k) > 0
    rho = (cond * k).argmax(dim=-1, keepdim=True)  # last index where cond holds (0 if none)
    theta = css.gather(-1, rho) / (rho + 1).to(x.dtype)
    return torch.clamp(x - theta, min=0.0).movedim(-1, dim)
