"""Where the abundance diffusion model diffuses: maps to and from a space in which the
sampler's output is a valid abundance map (non-negative, sums to one per pixel) by
construction.

Two representations, compared with ``benchmarks/synthesis.py --representations clr,simplex``;
``"simplex"`` is the default because its samples' spatial statistics (power spectrum,
variogram) came closer to the held-out maps there, while clr came closer on the value
distribution of one scene (numbers in ``benchmarks/RESULTS.md``).

``"clr"``
    Centred log-ratio: ``x = (log(a + eps) - mean_k log(a + eps)) / scale`` with ``scale`` the
    standard deviation of the training values (so the data have about unit variance, like
    the noise). While sampling, the clean-sample estimate is clipped to the range of the
    training values (DDIM, DDPM), which only bounds how extreme a log-ratio can get. The back-map is a softmax, ``a = softmax(scale * x)``, which is non-negative
    and sums to one for *any* real ``x``; the component of ``x`` along the all-ones direction
    (which the noise adds) is ignored by the softmax. ``eps`` bounds how close to 0 a value
    can be represented (``eps / (1 + p eps)``).

``"simplex"`` (default)
    Linear: ``x = 2 a - 1`` (values in [-1, 1], the usual image scaling); the sampler's
    clean-sample estimate is clipped to [-1, 1] at every step, and the final map is the
    Euclidean projection onto the probability simplex (the nearest valid map). The
    projection is part of the back-map, not a silent clip: `decode` returns the mean
    per-pixel projection distance in ``last_projection_distance`` so callers can log it.

Arrays here are torch ``(N, p, H, W)`` float32.
"""

from __future__ import annotations

import math

import torch

from ...errors import ParameterError
from ...simplex import project_simplex_torch as project_simplex
from .settings import REPRESENTATIONS


class Representation:
    """Base class: `encode` maps abundances to the diffusion space, `decode` maps back."""

    name = "base"
    clip_range: float | None = None  # clip the clean-sample estimate to [-r, r] while sampling

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": self.name}


class CenteredLogRatio(Representation):
    """``x = clr(a + eps) / scale``; back-map ``softmax(scale * x)`` (valid for any ``x``)."""

    name = "clr"

    def __init__(self, eps: float = 1e-3, scale: float = 1.0, bound: float | None = None):
        self.eps = float(eps)
        self.scale = float(scale)
        self.bound = None if bound is None else float(bound)

    @property
    def clip_range(self) -> float | None:  # type: ignore[override]
        """Largest |x| of the training data (+10%): the clean-sample estimate is clipped to it."""
        return self.bound

    def clr(self, a: torch.Tensor) -> torch.Tensor:
        la = torch.log(a.clamp(min=0.0) + self.eps)
        return la - la.mean(dim=1, keepdim=True)

    def fit(self, a: torch.Tensor) -> CenteredLogRatio:
        """Set ``scale`` to the standard deviation of the clr values of training maps ``a``."""
        z = self.clr(a)
        s = float(z.std())
        self.scale = s if math.isfinite(s) and s > 1e-6 else 1.0
        self.bound = 1.1 * float(z.abs().max()) / self.scale
        return self

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        return self.clr(a) / self.scale

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x * self.scale, dim=1)

    def config(self) -> dict:
        return {"name": self.name, "eps": self.eps, "scale": self.scale, "bound": self.bound}


class SimplexLinear(Representation):
    """``x = 2a - 1``; back-map: Euclidean projection of ``(x + 1) / 2`` onto the simplex."""

    name = "simplex"
    clip_range = 1.0

    def __init__(self) -> None:
        self.last_projection_distance = 0.0

    def fit(self, a: torch.Tensor) -> SimplexLinear:
        return self

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        return 2.0 * a - 1.0

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        raw = (x + 1.0) / 2.0
        out = project_simplex(raw, dim=1)
        self.last_projection_distance = float((out - raw).norm(dim=1).mean()) if raw.numel() else 0.0
        return out


def make_representation(cfg: dict | str) -> Representation:
    """A representation from its name or its saved ``config()`` dict."""
    if isinstance(cfg, str):
        cfg = {"name": cfg}
    name = cfg.get("name")
    if name == "clr":
        return CenteredLogRatio(eps=cfg.get("eps", 1e-3), scale=cfg.get("scale", 1.0), bound=cfg.get("bound"))
    if name == "simplex":
        return SimplexLinear()
    raise ParameterError("representation", name, f"expected one of {', '.join(REPRESENTATIONS)}")
