"""The `unmixgen` Typer application and its error policy.

Exit status: 0 success; 2 bad input or usage (one line on stderr, no traceback unless
``--debug``); 1 internal error. Command modules register themselves on `app`.
"""

from __future__ import annotations

import sys
import traceback

import typer

from .._version import __version__
from ..errors import InputError, ParameterError, ParameterWarning

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
    if isinstance(message, ParameterWarning):  # the library names parameters; the user typed flags
        from .flags import as_cli_warning

        message = as_cli_warning(message, _invoked_command(_state.get("argv") or []))
    print(f"warning: {message}{where}", file=sys.stderr)


def _invoked_command(argv: list[str]):
    """The click command that ``argv`` names (for mapping parameter names to its flags)."""
    try:
        group = typer.main.get_command(app)
        for word in argv:
            if word.startswith("-"):
                continue
            cmd = group.commands.get(word) if hasattr(group, "commands") else None
            if cmd is None:
                return None
            if hasattr(cmd, "commands"):  # a sub-group (`datasets list`)
                group = cmd
                continue
            return cmd
    except Exception:  # mapping flags is a courtesy; never let it hide the real error
        return None
    return None


def _is_usage_error(exc: BaseException) -> bool:
    """Click's and typer's (vendored) usage exceptions: they know how to show themselves."""
    import click

    return isinstance(exc, (click.ClickException, typer.exceptions.TyperException)) and hasattr(exc, "show")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app and map exceptions to exit codes.

    0 success; 2 bad input or usage (`InputError`, click/typer usage errors); 1 anything
    else, including a numerical divergence (not the user's input).
    """
    import warnings

    from .flags import as_cli_message

    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in args
    _state["argv"] = args
    warnings.showwarning = _show_warning
    try:
        # without standalone mode click returns (not raises) the status of an Exit or an
        # interrupt (Ctrl-C: 130); that status is the run's
        rc = app(args=args, prog_name="unmixgen", standalone_mode=False)
    except ParameterError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {as_cli_message(exc, _invoked_command(args))}", file=sys.stderr)
        return 2
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
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.Abort) or type(exc).__name__ == "Abort":
            return 130
        if _is_usage_error(exc):
            ctx = getattr(exc, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            print(f"error: {exc.format_message()}{where}", file=sys.stderr)
            return 2
        if debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
              file=sys.stderr)
        return 1
    if isinstance(rc, int) and rc:
        if rc == 130:
            print("interrupted", file=sys.stderr)
        return rc
    return 0
