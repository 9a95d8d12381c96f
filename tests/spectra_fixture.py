"""Random smooth spectra for unmixing tests (made in code, no data files)."""

from __future__ import annotations

import numpy as np


def smooth_spectra(p: int, bands: int, rng: np.random.Generator) -> np.ndarray:
    """``(p, bands)`` positive smooth spectra: sums of six Gaussian bumps plus an offset."""
    x = np.linspace(0.0, 1.0, bands)
    c = rng.uniform(-0.1, 1.1, (p, 6, 1))
    w = rng.uniform(0.04, 0.2, (p, 6, 1))
    h = rng.uniform(0.1, 1.0, (p, 6, 1))
    return (h * np.exp(-0.5 * ((x - c) / w) ** 2)).sum(axis=1) + rng.uniform(0.05, 0.3, (p, 1))
