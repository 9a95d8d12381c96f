"""The `unmixgen` Typer application and its error policy.

Exit status: 0 success; 2 bad input or usage (one line on stderr, no traceback unless
``--debug``); 1 internal error. Command modules register themselves on `app`.
"""

from __future__ import annotations

import sys
import traceback

import typer

from .. import __version__
from ..errors import InputError

app = typer.Typer(
    name="unmixgen",
    help="Hyperspectral unmixing and diffusion models of what it finds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        print(f"unmixgen {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    """Hyperspectral unmixing and diffusion models of what it finds.

    Example: unmixgen demo --out demo-output
    """
    _state["debug"] = debug


def fail(message: str) -> typer.Exit:
    """Print one line on stderr and return an Exit(2) to raise."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(2)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``warning: ...`` line on stderr (source location only with --debug)."""
    where = f" ({filename}:{lineno})" if _state["debug"] else ""
    print(f"warning: {message}{where}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app and map exceptions to exit codes."""
    import warnings

    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    warnings.showwarning = _show_warning
    try:
        app(args=argv, standalone_mode=False)
    except InputError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # click usage errors are handled below; the rest is ours
        import click

        if isinstance(exc, click.exceptions.Abort):
            return 130
        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
              file=sys.stderr)
        return 1
    return 0
