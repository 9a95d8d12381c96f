"""Which torch device a network runs on: ``auto``, ``cpu`` or ``cuda``."""

from __future__ import annotations

import os

import torch

from ..errors import ParameterError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """The device to use: ``"cpu"`` or ``"cuda"``.

    ``"auto"`` picks ``"cuda"`` when a GPU is available and ``"cpu"`` otherwise.

    Raises
    ------
    ParameterError
        ``device`` is not one of `DEVICES`, or is ``"cuda"`` on a machine without a GPU.
    """
    if device not in DEVICES:
        raise ParameterError("device", device, f"expected one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", device, "no CUDA device is available; expected cpu or auto")
    return device


def set_threads(n: int) -> None:
    """Use ``n`` CPU threads in torch (0: torch's default); `ParameterError` when negative or
    more than the CPUs this process may use (oversubscribed threads slow torch down by orders
    of magnitude)."""
    if not isinstance(n, int) or n < 0:
        raise ParameterError("threads", n, "expected 0 (torch's default) or a positive number of threads")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n > cpus:
        raise ParameterError("threads", n, f"expected <= {cpus}, the CPUs this process may use (0: torch's "
                                           "default)")
    if n > 0:
        torch.set_num_threads(n)
