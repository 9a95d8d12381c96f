"""The HybridSTU training loss.

``loss = MSE(a_hat, a) + lam * mean SAM(a_hat @ E, x) + recon * MSE(a_hat @ E, x)``

with ``a_hat, a (N, p, H, W)`` estimated and true abundances, ``x (N, bands, H, W)`` the
input pixels and ``E (p, bands)`` the endmembers (both divided by the same scale). SAM is
the angle in radians between a reconstructed and an input spectrum; it is blind to
brightness, so it does not fight the per-pixel scaling of the extended linear model.

With the ``"subspace"`` front end the network does not see ``x`` itself but its
least-squares coordinates ``a_ls`` (``x ~ a_ls @ E`` plus a residual orthogonal to the
endmembers). `subspace_loss` then measures the angle and the MSE between ``a_hat @ E`` and
``a_ls @ E`` through the Gram matrix ``G = E E^T`` (``<u E, v E> = u G v^T``): the same
terms without the part of ``x`` no abundance can reconstruct.
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


def subspace_loss(a_hat: torch.Tensor, a: torch.Tensor, a_ls: torch.Tensor, G: torch.Tensor, *, lam: float,
                  recon: float = 0.0, bands: int = 1) -> torch.Tensor:
    """`stu_loss` in endmember coordinates: ``a_ls (N, p, H, W)``, ``G (p, p)`` (module doc);
    the reconstruction MSE is per band (``bands`` of the scene)."""
    loss = torch.mean((a_hat - a) ** 2)
    if lam > 0 or recon > 0:
        def inner(u, v):
            return torch.einsum("nphw,pq,nqhw->nhw", u, G, v)

        if lam > 0:
            cos = inner(a_hat, a_ls) / (torch.sqrt(inner(a_hat, a_hat).clamp_min(1e-12)
                                                   * inner(a_ls, a_ls).clamp_min(1e-12)))
            loss = loss + lam * torch.arccos(cos.clamp(-1 + 1e-6, 1 - 1e-6)).mean()
        if recon > 0:
            d = a_hat - a_ls
            loss = loss + recon * inner(d, d).mean() / bands
    return loss
