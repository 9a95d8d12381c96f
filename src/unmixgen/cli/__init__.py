"""The `unmixgen` command. Each submodule adds the subcommands of one area to `app`."""

from __future__ import annotations

import os
import sys

# torch's OpenMP threads spin while they wait for work; when another process holds a core they
# spin against it, and the demo's refinement ran 10x slower (395 s against 40 s) next to one
# busy process. Passive threads sleep instead (benchmarks/RESULTS.md). Set before torch loads
# OpenMP, which reads it once; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Subcommand modules; each registers its commands on `app` when imported.
from . import data, datasets, demo, diffusion, refine, semiblind, simulate, unmix  # noqa: E402,F401
from .app import app


def main() -> None:
    from .app import main as _main

    sys.exit(_main())


__all__ = ["app", "main"]
