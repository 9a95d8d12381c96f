"""Error types that cross module boundaries.

`InputError` is the one exception the CLI turns into a single line on stderr and exit
status 2. Raise it at a boundary (reader, writer, CLI argument, `fit`) when the user's
input is wrong; the message names the file or argument, what is wrong and what is
expected, e.g. ``scene.hdr: header says 198 bands but the data file holds 196``.
"""

from __future__ import annotations

import os


class InputError(ValueError):
    """Bad user input: the CLI prints ``str(err)`` on one line and exits with status 2."""


def in_file(path: str | os.PathLike, message: str) -> InputError:
    """An `InputError` whose message starts with the file's name: ``path: message``."""
    return InputError(f"{os.fspath(path)}: {message}")


class ConvergenceWarning(UserWarning):
    """An iterative method stopped at its iteration limit before meeting its tolerance."""
