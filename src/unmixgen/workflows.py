"""The chain as library functions: what the CLI and the demo call, usable from a notebook.

Each function takes paths and parameters, does one user-level job (train a prior from result
folders, ...) and returns what it made. Parameters are validated by the functions they call;
errors name the parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .atomic import atomic_dir
from .errors import InputError
from .nn.device import resolve_device
from .priors.abundance.train import create_model_folder, train
from .runs.sources import load_training_maps


def train_abundance_model(results: list[str | Path], out: str | Path, *, max_minutes: float | None = None,
                          max_steps: int | None = None, label_from: str = "none", max_sad: float = 0.3,
                          overwrite: bool = False, device: str = "cpu", progress: bool = True,
                          **options: Any) -> dict:
    """Create a model folder ``out`` from ``unmix`` result folders and train it (the Python
    form of ``unmixgen train-abundance``). ``options`` are keys of `DEFAULTS` (``patch``,
    ``width``, ``representation``, ``seed``, ...). Returns `train`'s summary."""
    if max_steps is None and max_minutes is None:
        raise InputError("give --max-steps or --max-minutes (a training budget)")
    resolve_device(device)
    data = load_training_maps(list(results), label_from=label_from, max_sad=max_sad)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        create_model_folder(tmp, data, **options)
    return train(out, max_steps=max_steps, max_minutes=max_minutes, device=device, progress=progress)
