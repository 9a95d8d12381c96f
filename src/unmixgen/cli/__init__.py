"""The `unmixgen` command. Each submodule adds the subcommands of one area to `app`."""

from __future__ import annotations

import sys

# Subcommand modules; each registers its commands on `app` when imported.
from . import data, datasets, demo, diffusion, refine, semiblind, simulate, unmix  # noqa: E402,F401
from .app import app


def main() -> None:
    from .app import main as _main

    sys.exit(_main())


__all__ = ["app", "main"]
