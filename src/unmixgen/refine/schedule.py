"""The timesteps of a refinement run and the re-noising update shared by the abundance and
endmember samplers.

Refinement starts from an estimate noised to timestep ``t0 = round(t0_frac * (T - 1))``
and runs ``steps`` denoising steps down to timestep 0 (DDIM-style, with stochasticity
``eta``). After the prior's clean estimate is corrected by a data-consistency step, the
sample is re-noised to the next timestep as
``x = sqrt(abar') x0 + sqrt(1 - abar') (sqrt(1 - eta) eps_hat + sqrt(eta) eps)``, with
``eps_hat`` the noise implied by the corrected estimate and ``eps`` fresh noise (the
DiffPIR update; ``eta = 0`` is deterministic given the starting noise).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import check_range


def timesteps(t0_frac: float, steps: int, num_train_timesteps: int) -> list[int]:
    """Descending timesteps ``[t0, ..., 0]`` (``steps + 1`` values, possibly repeated when
    ``steps`` exceeds ``t0``)."""
    check_range("t0", t0_frac, low=0, high=1, low_open=True)
    check_range("steps", steps, low=1, integer=True)
    t0 = max(1, int(round(t0_frac * (num_train_timesteps - 1))))
    return [int(v) for v in np.round(np.linspace(t0, 0, steps + 1))]


def lower_half(ts: list[int]) -> list[int]:
    """The lower half of a descending schedule ``ts`` (``steps + 1`` values): its last
    ``ceil(steps / 2)`` steps, from the middle timestep (the whole of a one-step schedule).
    Where a later alternation round starts: its maps and spectra are already refined."""
    return ts[(len(ts) - 1) // 2:]


def round_schedule(ts: list[int], r: int) -> list[int]:
    """The timesteps of alternation round ``r`` (0-based) from the first round's ``ts``: the
    whole schedule, then its lower quarter (`lower_half` twice), then from the third round on
    its lower eighth (three times). A later round starts from maps and spectra already
    refined, so it needs little noise; what moves endmembers extracted from the scene is the
    number of rounds more than their length, so many short rounds gain more than a few long
    ones for the same time (benchmarks/RESULTS.md, "Eight short alternation rounds")."""
    if r == 0 or not ts:
        return ts
    for _ in range(2 if r == 1 else 3):
        ts = lower_half(ts)
    return ts


def renoise(x: torch.Tensor, x0: torch.Tensor, abar: float, abar_next: float, eta: float,
            noise: torch.Tensor) -> torch.Tensor:
    """The sample at the next timestep from the corrected clean estimate ``x0``."""
    eps_hat = (x - abar ** 0.5 * x0) / max(1 - abar, 1e-12) ** 0.5
    eps = (1 - eta) ** 0.5 * eps_hat + eta ** 0.5 * noise
    return abar_next ** 0.5 * x0 + (1 - abar_next) ** 0.5 * eps


def start(x0: torch.Tensor, abar: float, noise: torch.Tensor) -> torch.Tensor:
    """``x0`` noised to cumulative alpha ``abar``."""
    return abar ** 0.5 * x0 + (1 - abar) ** 0.5 * noise
