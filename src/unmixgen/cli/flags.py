"""Library parameter names -> command-line flags, in one place.

The library raises `ParameterError` naming the Python parameter (``n_endmembers=1: ...``).
The CLI shows the flag a command-line user typed instead (``--endmembers 1: ...``): first
the invoked command's own option whose Python name matches, then `ALIASES` for library
parameters whose name differs from the command's option, when the command has that flag;
otherwise the library's wording (``name=value``) stays.
"""

from __future__ import annotations

from ..errors import ParameterError, ParameterWarning

# library parameter -> flag, where the command's option has another name
ALIASES = {
    "n_endmembers": "--endmembers",
    "count": "--count",
    "n_samples": "--samples",
    "max_minutes": "--max-minutes",
    "max_steps": "--max-steps",
    "prediction_type": "--prediction",
    "snr_db": "--snr",
    "tile_size": "--tile",
    "batch_size": "--batch-size",
    "method": "--method",
    "device": "--device",
    "seed": "--seed",
    "checkpoint_every_s": "--checkpoint-seconds",
    "checkpoint_every_steps": "--checkpoint-steps",
    "noise": "--noise",
    "variability": "--variability",
    "sampler": "--sampler",
    "steps": "--steps",
    "size": "--size",
    "guidance": "--guidance",
    "patch": "--patch",
    "block": "--patch",  # the hold-out block is the patch size on the command line
    "representation": "--representation",
    "width": "--width",
    "lr": "--lr",
    "label_from": "--label-from",
    "max_sad": "--max-sad",
    "samples": "--samples",
    "t0": "--t0",
    "spectra_t0": "--spectra-t0",
    "rounds": "--rounds",
    "abundance_prior": "--abundance-prior",
    "spectra_prior": "--spectra-prior",
}


def default_text(func) -> dict[str, str]:
    """Parameter name -> its default as shown in ``--help``, from ``func``'s signature, so a
    command's help cannot disagree with the library default its ``None`` option falls back to."""
    import inspect

    return {name: str(p.default) for name, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}


def command_flags(command) -> dict[str, str]:
    """Python parameter name -> its longest flag, for one click/typer command."""
    out: dict[str, str] = {}
    for param in getattr(command, "params", []):
        opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
        if param.name and opts:
            out[param.name] = max(opts, key=len)
    return out


def flag_for(name: str, command=None) -> str | None:
    """The flag of ``command`` (a click/typer command) that sets library parameter ``name``:
    its option of that Python name, else the `ALIASES` flag when the command has it; None when
    none of its flags does, or no command is known. An alias alone is no answer: a flag the
    command lacks (``--samples`` for ``demo``) would send the user to an option that is refused."""
    if command is None:
        return None
    flags = command_flags(command)
    if name in flags:
        return flags[name]
    alias = ALIASES.get(name)
    have = {o for param in getattr(command, "params", []) for o in getattr(param, "opts", []) if o.startswith("--")}
    return alias if alias in have else None


def as_cli_message(exc: ParameterError, command=None) -> str:
    """``--flag value: expected`` when a flag sets the parameter, else the library message."""
    import re

    flag = flag_for(exc.name, command)
    if flag is None:
        return str(exc)
    expected = exc.expected
    for name in getattr(exc, "mentions", ()):
        other = flag_for(name, command)
        if other is not None:
            # the word, not a part of a path or file name that holds it ("runs/align/truth.mat")
            expected = re.sub(rf"(?<![\w/\\.-]){re.escape(name)}(?![\w/\\-]|\.\w)", other, expected)
    shown = "" if exc.value is None else f" {exc.value}"
    return f"{flag}{shown}: {expected}"


def as_cli_warning(warning: ParameterWarning, command=None) -> str:
    """A `ParameterWarning` as a command-line user reads it: ``--flag value, ...: text``
    (``name=value`` for a parameter no flag sets)."""
    parts = []
    for name, value in warning.given:
        flag = flag_for(name, command)
        parts.append(f"{name}={value!r}" if flag is None else f"{flag} {value}")
    return f"{', '.join(parts)}: {warning.text}"


def given(**options):
    """The options the user gave (not None): the library's signature holds the defaults, once."""
    return {k: v for k, v in options.items() if v is not None}
