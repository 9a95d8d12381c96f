"""The samplers a diffusion prior offers, their default step counts, and the check of a
sampling request. Imports no torch, so the command line can read the defaults cheaply.

``ddim``
    DDIM, deterministic given the initial noise.
``dpm``
    DPM-Solver++ (2nd order, multistep): good samples in few steps.
``ddpm``
    DDPM ancestral sampling: the training chain itself, one step per noise level.
"""

from __future__ import annotations

from ..errors import ParameterError, check_range

SAMPLERS = ("ddim", "dpm", "ddpm")
DEFAULT_SAMPLER = "ddim"
DEFAULT_STEPS = {"ddim": 50, "dpm": 20, "ddpm": 1000}
DEFAULT_BATCH_SIZE = 16
"""Samples drawn at once by default."""


def check_sampling(sampler: str, steps: int | None, num_train_timesteps: int) -> int:
    """The number of steps to run ``sampler`` for (its default when ``steps`` is None).

    Raises `ParameterError` for an unknown sampler or steps outside
    ``1 .. num_train_timesteps``.
    """
    if sampler not in SAMPLERS:
        raise ParameterError("sampler", sampler, f"expected one of {', '.join(SAMPLERS)}")
    if steps is None:
        return min(DEFAULT_STEPS[sampler], num_train_timesteps)
    return check_range("steps", steps, low=1, high=num_train_timesteps, integer=True)
