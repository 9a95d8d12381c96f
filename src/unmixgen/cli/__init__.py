"""The `unmixgen` command. Each submodule adds the subcommands of one area to `app`."""

from __future__ import annotations

import importlib
import sys

from .app import app

# Subcommand modules; each registers its commands on `app` when imported.
_COMMAND_MODULES = ["data", "datasets", "demo", "unmix", "diffusion", "simulate"]
for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"{__name__}.{_name}":
            raise


def main() -> None:
    from .app import main as _main

    sys.exit(_main())


__all__ = ["app", "main"]
