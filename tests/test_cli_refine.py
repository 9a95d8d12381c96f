"""`unmixgen refine --help`: the defaults it shows are the library's."""

import inspect
import re

from typer.testing import CliRunner

from unmixgen.cli.app import app
from unmixgen.workflows.refinement import refine_result


def test_refine_help_shows_the_library_defaults():
    """--help's defaults come from refine_result's signature, so they cannot drift from it."""
    out = CliRunner().invoke(app, ["refine", "--help"], env={"COLUMNS": "240", "NO_COLOR": "1"}).output
    sig = inspect.signature(refine_result).parameters
    for name in ("samples", "steps", "rounds", "t0"):
        line = next(line for line in out.splitlines() if re.search(rf"│\s+--{name}\b", line))
        assert re.search(rf"\[default: \(?{re.escape(str(sig[name].default))}\)?\]", line), line
