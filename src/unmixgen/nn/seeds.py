"""Seeds: every random number a network draws comes from a seed the caller chose.

Two kinds of streams:

- `seed_torch` seeds torch's global generators (weight initialisation, dropout), on the CPU
  and every GPU;
- `sample_generators` gives one torch generator per sample, derived from ``(seed, index)``
  with numpy's `SeedSequence`, so sample ``i`` is the same whatever batch it is drawn in.
"""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(seed: int, *key: int) -> int:
    """A seed in ``[0, 2**63)`` derived from ``seed`` and the integers ``key``.

    Different keys give statistically independent streams (numpy `SeedSequence`), and so do
    different seeds >= 0 however large (a negative one is taken modulo 2**32).
    """
    seed = int(seed)
    entropy = [seed if seed >= 0 else seed & 0xFFFFFFFF, *(int(k) for k in key)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


def seed_torch(seed: int) -> None:
    """Seed torch's global CPU and CUDA generators (weight initialisation, dropout)."""
    torch.manual_seed(int(seed))


def sample_generators(seed: int, start: int, n: int) -> list[torch.Generator]:
    """CPU generators for samples ``start .. start + n - 1``, seeded by ``(seed, index)``."""
    return [torch.Generator().manual_seed(derive_seed(seed, i)) for i in range(start, start + n)]
