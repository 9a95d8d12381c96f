"""Diffusion pieces shared by every prior (2D abundance maps, 1D spectra): the noise
schedule, the training objective, classifier-free guidance and the sampling loop.

Tensors are ``(N, C, *spatial)``: ``(N, p, H, W)`` for maps, ``(N, 1, bands)`` for spectra.
A *network* is called as ``net(x, t, labels)`` with ``t`` (N,) integer timesteps and
``labels`` (N,) long or None, and returns its prediction with the shape of ``x``.

A ``schedule`` dict (saved in a model's config) names the training noise schedule:
``num_train_timesteps``, ``beta_schedule`` (diffusers' names, e.g. ``squaredcos_cap_v2``)
and ``prediction_type`` (``epsilon``: the network predicts the noise; ``v_prediction``: it
predicts ``v = sqrt(abar_t) noise - sqrt(1 - abar_t) x0``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable

import torch

from ..errors import ParameterError
from .samplers import SAMPLERS

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def train_scheduler(schedule: dict):
    """The DDPM scheduler of the training noise schedule (`add_noise`, `get_velocity`)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=schedule["num_train_timesteps"],
                         beta_schedule=schedule["beta_schedule"],
                         prediction_type=schedule["prediction_type"], clip_sample=False)


def sampling_scheduler(sampler: str, schedule: dict, clip_range: float | None = None):
    """A fresh diffusers scheduler running ``sampler`` on the training ``schedule``.

    ``clip_range``: DDIM and DDPM clip their clean-sample estimate to ``[-r, r]`` at every
    step (None: no clipping); DPM-Solver++ does not clip.
    """
    common = {"num_train_timesteps": schedule["num_train_timesteps"],
              "beta_schedule": schedule["beta_schedule"],
              "prediction_type": schedule["prediction_type"]}
    clip = {"clip_sample": clip_range is not None, "clip_sample_range": clip_range or 1.0}
    if sampler == "ddim":
        from diffusers import DDIMScheduler

        return DDIMScheduler(**common, **clip, set_alpha_to_one=True, timestep_spacing="trailing")
    if sampler == "dpm":
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                           lower_order_final=True, timestep_spacing="trailing")
    if sampler == "ddpm":
        from diffusers import DDPMScheduler

        return DDPMScheduler(**common, **clip)
    raise ParameterError("sampler", sampler, f"expected one of {', '.join(SAMPLERS)}")


def noisy_and_target(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The noised sample ``x_t`` and what the network must predict from it.

    ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` (`DDPMScheduler.add_noise`); the
    target is ``noise`` for epsilon-prediction, else the velocity
    (`DDPMScheduler.get_velocity`). ``x0``, ``noise``: (N, C, ...); ``t``: (N,) long.
    """
    xt = scheduler.add_noise(x0, noise, t)
    if scheduler.config.prediction_type == "epsilon":
        return xt, noise
    return xt, scheduler.get_velocity(x0, noise, t)


def x0_from_output(out: torch.Tensor, x: torch.Tensor, abar: float, prediction_type: str) -> torch.Tensor:
    """The clean estimate implied by a network output ``out`` for the noisy sample ``x`` (same
    shape) at cumulative alpha ``abar``: from predicted noise (``epsilon``) or velocity
    (``v_prediction``)."""
    if prediction_type == "epsilon":
        return (x - (1 - abar) ** 0.5 * out) / abar ** 0.5
    return abar ** 0.5 * x - (1 - abar) ** 0.5 * out


def diffusion_loss(net: torch.nn.Module, scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
                   labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between ``net(x_t, t, labels)`` and the target (`noisy_and_target`)."""
    xt, target = noisy_and_target(scheduler, x0, noise, t)
    pred = net(xt, t, labels)
    return torch.mean((pred - target) ** 2)


class GuidedNet:
    """A network's output for a batch: classifier-free guidance, in chunks.

    Parameters
    ----------
    net : ``net(x, t, labels)``.
    null_label : the "no label" index of a label-conditioned network, None for an
        unconditional one.
    label : the label to condition on (None: unconditional, i.e. the null label).
    guidance : ``out = out_null + guidance * (out_label - out_null)``: 1 is the conditional
        model, 0 the unconditional one, > 1 strengthens the label.
    max_batch : largest batch given to ``net`` at once.
    max_pixels : when given, also at most this many pixels (items x spatial size) per batch,
        at least one item. On a CPU the activations of a small batch stay in the caches: for
        the 16-channel refine prior on 64 x 64 tiles, batches of 16 run faster per item than
        batches of 64 or 256 (``benchmarks/RESULTS.md``, "Refinement speed (issue 9)").
    channels_last : give ``net`` its input in the channels-last memory format (4D inputs;
        pair with a network converted by `channels_last_copy`); faster convolutions on a
        CPU. The output is returned in the default (contiguous) format.
    """

    def __init__(self, net: torch.nn.Module, *, null_label: int | None = None, label: int | None = None,
                 guidance: float = 1.0, max_batch: int = 256, max_pixels: int | None = None,
                 channels_last: bool = False):
        self.net, self.null, self.label = net, null_label, label
        self.guidance, self.max_batch = guidance, max_batch
        self.max_pixels, self.channels_last = max_pixels, channels_last

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        tt = t.expand(n) if t.ndim == 0 else t
        if self.null is None or self.label is None:
            labels = None if self.null is None else self._full(self.null, n, x.device)
            return self._chunks(x, tt, labels)
        cond = self._full(self.label, n, x.device)
        if self.guidance == 1.0:
            return self._chunks(x, tt, cond)
        unc = self._full(self.null, n, x.device)
        out = self._chunks(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([cond, unc]))
        oc, ou = out[:n], out[n:]
        return ou + self.guidance * (oc - ou)

    @staticmethod
    def _full(value: int, n: int, device) -> torch.Tensor:
        return torch.full((n,), value, dtype=torch.long, device=device)

    def batch_size(self, x: torch.Tensor) -> int:
        """Items per network call for inputs shaped like ``x`` (N, C, *spatial)."""
        if self.max_pixels is None:
            return self.max_batch
        return max(1, min(self.max_batch, self.max_pixels // max(1, x[0, 0].numel())))

    def _chunks(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        outs = []
        b = self.batch_size(x)
        cl = self.channels_last and x.ndim == 4
        for s in range(0, x.shape[0], b):
            sl = slice(s, s + b)
            xs = x[sl].contiguous(memory_format=torch.channels_last) if cl else x[sl]
            outs.append(self.net(xs, t[sl], None if labels is None else labels[sl]))
        return torch.cat(outs).contiguous()


def channels_last_copy(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of a 2D network with its weights in the channels-last memory format (the
    caller's network is left as it is); same outputs up to float rounding."""
    return copy.deepcopy(net).to(memory_format=torch.channels_last)


def sample(denoise: Denoise, scheduler, shape: tuple[int, ...], generators: list[torch.Generator],
           steps: int, device: str, progress: Callable[[], None] | None = None) -> torch.Tensor:
    """Run ``scheduler`` for ``steps`` steps from seeded noise.

    Parameters
    ----------
    denoise : ``denoise(x, t) -> model output`` for the whole batch (e.g. a `GuidedNet`,
        or a `unmixgen.priors.canvas.TiledDenoiser` for canvases larger than the network's
        patch).
    shape : (N, C, *spatial) of the samples.
    generators : N CPU generators; sample ``i``'s initial noise (and the DDPM noise) comes
        from ``generators[i]``, so a sample does not depend on its batch.
    progress : called after every step.

    Returns
    -------
    The clean samples in the diffusion space, ``shape``, on ``device``.
    """
    x = torch.stack([torch.randn(shape[1:], generator=g) for g in generators]).to(device)
    scheduler.set_timesteps(steps, device=device)
    x = x * scheduler.init_noise_sigma
    kw = {"generator": generators} if "generator" in inspect.signature(scheduler.step).parameters else {}
    for t in scheduler.timesteps:
        out = denoise(scheduler.scale_model_input(x, t), t.to(device))
        x = scheduler.step(out, t, x, **kw).prev_sample
        if progress is not None:
            progress()
    return x
