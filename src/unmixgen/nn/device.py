"""Devices and seeds for every network: ``auto|cpu|cuda`` resolution."""

from __future__ import annotations

import torch

from ..errors import InputError


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without a GPU -> InputError."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device: {device!r} is not one of auto, cpu, cuda")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available; use --device cpu or auto")
    return device
