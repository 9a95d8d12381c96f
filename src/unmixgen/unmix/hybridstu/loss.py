"""The HybridSTU training loss.

``loss = MSE(a_hat, a) + lam * mean SAM(a_hat @ E, x) + recon * MSE(a_hat @ E, x)``

with ``a_hat, a (N, p, H, W)`` estimated and true abundances, ``x (N, bands, H, W)`` the
input pixels and ``E (p, bands)`` the endmembers (both divided by the same scale). SAM is
the angle in radians between a reconstructed and an input spectrum; it is blind to
brightness, so it does not fight the per-pixel scaling of the extended linear model.
"""

from __future__ import annotations

import torch


def reconstruct(a: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """``a @ E`` per pixel: ``(N, p, H, W)``, ``(p, bands)`` -> ``(N, bands, H, W)``."""
    return torch.einsum("nphw,pb->nbhw", a, E)


def spectral_angle(y: torch.Tensor, x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Angle (radians) between the spectra of ``y`` and ``x`` ``(N, bands, H, W)`` per pixel."""
    cos = (y * x).sum(1) / (y.norm(dim=1) * x.norm(dim=1) + eps)
    return torch.arccos(cos.clamp(-1 + 1e-6, 1 - 1e-6))


def stu_loss(a_hat: torch.Tensor, a: torch.Tensor, x: torch.Tensor, E: torch.Tensor, *, lam: float,
             recon: float = 0.0) -> torch.Tensor:
    """The scalar loss of the module docstring."""
    loss = torch.mean((a_hat - a) ** 2)
    if lam > 0 or recon > 0:
        y = reconstruct(a_hat, E)
        if lam > 0:
            loss = loss + lam * spectral_angle(y, x).mean()
        if recon > 0:
            loss = loss + recon * torch.mean((y - x) ** 2)
    return loss
