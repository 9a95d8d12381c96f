"""Sampling abundance maps: DDIM (default), DPM-Solver++ and DDPM ancestral (diffusers
schedulers), classifier-free guidance, and overlapping-tile sampling for maps larger than
the training patch.

Large maps: the canvas (N, C, S, S) is covered by overlapping tiles of the training patch
size (stride about half a tile). At *every* step the network runs on all tiles and the
outputs are blended into one canvas-sized model output with a separable squared-triangular window
(weights fall towards tile edges, so no seams), then the scheduler updates the whole
canvas. Every tile therefore sees a consistent noisy canvas and the tiles agree where they
overlap.

Seeds: sample ``i`` of a call with ``seed`` draws its noise from its own generator seeded
by ``(seed, i)``, so results do not depend on the batch size.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import InputError
from .representation import Representation

SAMPLERS = ("ddim", "dpm", "ddpm")
DEFAULT_STEPS = {"ddim": 50, "dpm": 20, "ddpm": 1000}


def make_scheduler(sampler: str, schedule: dict, rep: Representation):
    """A fresh diffusers scheduler for ``sampler`` with the model's training schedule."""
    common = {"num_train_timesteps": schedule["num_train_timesteps"],
              "beta_schedule": schedule["beta_schedule"],
              "prediction_type": schedule["prediction_type"]}
    clip = rep.clip_range is not None
    if sampler == "ddim":
        from diffusers import DDIMScheduler

        return DDIMScheduler(**common, clip_sample=clip, clip_sample_range=rep.clip_range or 1.0,
                             set_alpha_to_one=True, timestep_spacing="trailing")
    if sampler == "dpm":
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                           lower_order_final=True, timestep_spacing="trailing")
    if sampler == "ddpm":
        from diffusers import DDPMScheduler

        return DDPMScheduler(**common, clip_sample=clip, clip_sample_range=rep.clip_range or 1.0)
    raise InputError(f"--sampler: {sampler!r} is not one of {', '.join(SAMPLERS)}")


def tile_starts(size: int, tile: int, overlap: float = 0.5) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``size`` px with at least ``overlap``."""
    if size <= tile:
        return [0]
    stride = max(1, int(tile * (1 - overlap)))
    n = int(np.ceil((size - tile) / stride)) + 1
    return sorted({int(round(v)) for v in np.linspace(0, size - tile, n)})


def blend_window(tile: int) -> torch.Tensor:
    """Separable squared-triangular weights (tile, tile), strictly positive, highest in the
    centre: the network's output near a tile's edge (zero padding, little context) counts
    little. (Squared rather than plain triangular: measured edge/interior gradient ratio of
    tiled 64x64 samples 1.02-1.11 instead of 1.20-1.30.)"""
    i = torch.arange(tile, dtype=torch.float32)
    w = torch.minimum(i + 1, tile - i) ** 2
    return (w[:, None] * w[None, :]) / float(w.max() ** 2)


class Denoiser:
    """Model output on a canvas: classifier-free guidance and blended overlapping tiles."""

    def __init__(self, net: torch.nn.Module, tile: int, *, null_label: int | None,
                 label: int | None = None, guidance: float = 1.0, max_batch: int = 256):
        self.net = net
        self.tile = tile
        self.null = null_label
        self.label = label
        self.guidance = guidance
        self.max_batch = max_batch

    def _net(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        tt = t.expand(n) if t.ndim == 0 else t
        if self.null is None or self.label is None:
            labels = None if self.null is None else torch.full((n,), self.null, dtype=torch.long, device=x.device)
            return self._chunks(x, tt, labels)
        cond = torch.full((n,), self.label, dtype=torch.long, device=x.device)
        if self.guidance == 1.0:
            return self._chunks(x, tt, cond)
        unc = torch.full((n,), self.null, dtype=torch.long, device=x.device)
        out = self._chunks(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, unc]))
        oc, ou = out[:n], out[n:]
        return ou + self.guidance * (oc - ou)

    def _chunks(self, x, t, labels):
        outs = []
        for s in range(0, x.shape[0], self.max_batch):
            sl = slice(s, s + self.max_batch)
            outs.append(self.net(x[sl], t[sl], None if labels is None else labels[sl]))
        return torch.cat(outs)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        T = self.tile
        if h <= T and w <= T:
            return self._net(x, t)
        rs, cs = tile_starts(h, T), tile_starts(w, T)
        crops = torch.cat([x[:, :, r:r + T, q:q + T] for r in rs for q in cs])
        out = self._net(crops, t)
        win = blend_window(T).to(x.device, x.dtype)
        acc = torch.zeros_like(x)
        wsum = torch.zeros((1, 1, h, w), dtype=x.dtype, device=x.device)
        k = 0
        for r in rs:
            for q in cs:
                acc[:, :, r:r + T, q:q + T] += out[k * n:(k + 1) * n] * win
                wsum[:, :, r:r + T, q:q + T] += win
                k += 1
        return acc / wsum


def sample_canvas(denoiser: Denoiser, scheduler, shape: tuple[int, ...], generators: list[torch.Generator],
                  steps: int, device: str, progress=None) -> torch.Tensor:
    """Run ``scheduler`` for ``steps`` steps from seeded noise; returns the clean sample in the
    diffusion space, (N, C, H, W)."""
    x = torch.stack([torch.randn(shape[1:], generator=g) for g in generators]).to(device)
    scheduler.set_timesteps(steps, device=device)
    x = x * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(x, t)
        out = denoiser(model_in, t.to(device))
        kw = {"generator": generators} if "generator" in scheduler.step.__code__.co_varnames else {}
        x = scheduler.step(out, t, x, **kw).prev_sample
        if progress is not None:
            progress()
    return x


def seed_generators(seed: int, start: int, n: int) -> list[torch.Generator]:
    """One generator per sample, seeded by (seed, sample index)."""
    gens = []
    for i in range(start, start + n):
        s = int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, i]).generate_state(1, np.uint64)[0] >> 1)
        gens.append(torch.Generator().manual_seed(s))
    return gens
