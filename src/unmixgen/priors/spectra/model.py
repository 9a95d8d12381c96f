"""A trained spectra prior, loaded from its folder: clean-spectrum estimates and sampling.

>>> prior = load_spectra_prior()                  # the shipped USGS prior   # doctest: +SKIP
>>> x0 = prior.x0_estimate(x_t, t)                # (N, 1, G) torch
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ...errors import InputError
from ...nn import checkpoint as ck
from ...nn.device import resolve_device
from ..diffusion import train_scheduler, x0_from_output
from .network import build_network
from .representation import SpectralGrid
from .train import KIND


def shipped_spectra_prior_dir() -> Path:
    """Folder of the spectra prior that ships with the package (trained on USGS 1995)."""
    return Path(__file__).resolve().parents[2] / "assets" / "spectra_prior"


class SpectraModel:
    """Sampling side of a spectra prior (EMA weights).

    Attributes: ``rep`` (`SpectralGrid`), ``scheduler`` (the training DDPM schedule),
    ``alphas_cumprod`` (T,) float64 numpy, ``config``.
    """

    def __init__(self, model_dir: str | os.PathLike, device: str = "cpu"):
        self.model_dir = Path(model_dir)
        self.config = ck.read_config(self.model_dir, kind=KIND)
        rep = self.config.get("representation", {})
        rep = rep if isinstance(rep, dict) else {"name": rep}
        if rep.get("name") != "grid" or rep.get("points") != SpectralGrid().grid.size:
            raise InputError(f"{self.model_dir}: spectra prior has representation {rep.get('name')!r} with "
                             f"{rep.get('points')} points; expected the 'grid' representation with "
                             f"{SpectralGrid().grid.size}")
        scale = rep.get("scale")
        if not ck.is_positive_number(scale):
            raise InputError(f"{self.model_dir / 'config.json'}: representation scale {scale!r}; expected a finite "
                             "number > 0: retrain the model")
        ck.check_schedule(self.model_dir, self.config)
        self.device = resolve_device(device)
        with ck.config_fields(self.model_dir):
            self.net = build_network(self.config["network"])
        try:
            self.net.load_state_dict(ck.load_weights(ck.latest_checkpoint(self.model_dir)))
        except (RuntimeError, OSError) as exc:
            raise InputError(f"{self.model_dir}: weights do not fit the config ({exc}); retrain") from None
        self.net.to(self.device).eval().requires_grad_(False)
        self.rep = SpectralGrid(rep["scale"])
        self.scheduler = train_scheduler(self.config["schedule"])
        self.alphas_cumprod = self.scheduler.alphas_cumprod.double().numpy()

    @torch.no_grad()
    def x0_estimate(self, xt: torch.Tensor, t: int) -> torch.Tensor:
        """The network's clean estimate (posterior mean) of grid spectra ``xt`` (N, 1, G) at
        timestep ``t``."""
        ab = float(self.alphas_cumprod[t])
        tt = torch.full((xt.shape[0],), int(t), dtype=torch.long, device=self.device)
        xt = xt.to(self.device)
        return x0_from_output(self.net(xt, tt), xt, ab, self.config["schedule"]["prediction_type"])

    def timestep_for_sigma(self, sigma: float) -> int:
        """The timestep whose noise-to-signal ratio ``sqrt((1 - abar) / abar)`` is closest to
        ``sigma`` (noise std of a clean-scaled sample)."""
        ratio = np.sqrt((1 - self.alphas_cumprod) / self.alphas_cumprod)
        return int(np.argmin(np.abs(ratio - sigma)))

    def denoise(self, x: np.ndarray, sigma: float) -> np.ndarray:
        """MMSE estimate of clean grid spectra from ``x`` (n, G) = clean + N(0, sigma^2) noise
        (grid units): one network evaluation at the matching timestep."""
        t = self.timestep_for_sigma(sigma)
        ab = float(self.alphas_cumprod[t])
        xt = torch.from_numpy(np.asarray(x, np.float32))[:, None, :] * ab ** 0.5
        return self.x0_estimate(xt, t)[:, 0].cpu().numpy()


def load_spectra_prior(model_dir: str | os.PathLike | None = None, device: str = "cpu") -> SpectraModel:
    """Load a spectra prior (None: the shipped one)."""
    return SpectraModel(shipped_spectra_prior_dir() if model_dir is None else model_dir, device)
