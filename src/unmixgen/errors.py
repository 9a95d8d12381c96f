"""Error types that cross module boundaries.

`InputError` is the one exception the CLI turns into a single line on stderr and exit
status 2. Raise it at a boundary (reader, writer, CLI argument, `fit`) when the user's
input is wrong; the message names the file or argument, what is wrong and what is
expected, e.g. ``scene.hdr: header says 198 bands but the data file holds 196``.
"""

from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager


class InputError(ValueError):
    """Bad user input: the CLI prints ``str(err)`` on one line and exits with status 2."""


def in_file(path: str | os.PathLike, message: str) -> InputError:
    """An `InputError` whose message starts with the file's name: ``path: message``."""
    return InputError(f"{os.fspath(path)}: {message}")


class TrainingDiverged(RuntimeError):
    """Training stopped because the loss became NaN or infinite.

    Not bad input (the CLI exits with status 1, not 2): the numbers ran away, e.g. with a
    learning rate too large for the data. The last good checkpoint is kept.
    """


class ConvergenceWarning(UserWarning):
    """An iterative method stopped at its iteration limit before meeting its tolerance."""


@contextmanager
def noting_convergence(notes: list[str], category: type[Warning] = ConvergenceWarning) -> Iterator[None]:
    """Run the block showing every warning as usual, and append the message of each
    `ConvergenceWarning` (or other ``category``; repeats included) to ``notes`` (a run record's
    ``warnings``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        yield
    for w in caught:
        if issubclass(w.category, category):
            notes.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def note(notes: list[str], message: str | Warning, stacklevel: int = 2) -> None:
    """Keep ``message`` in ``notes`` (a run record's ``warnings``) and show it as a warning
    (``stacklevel`` as for `warnings.warn`, from the caller); a `Warning` instance (e.g. a
    `ParameterWarning`) is shown as its own category."""
    notes.append(str(message))
    warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)


class ParameterWarning(UserWarning):
    """A warning about values the caller gave to named parameters: ``name=value, ...: text``.

    As `ParameterError`, library code names the *parameters* (``rounds=3``); the CLI shows
    each as its flag (``--rounds 3``) where it prints the warning (`unmixgen.cli.flags`).
    ``given``: ``(name, value)`` pairs; ``text``: what happened to them.
    """

    def __init__(self, given, text: str):
        self.given, self.text = tuple((str(n), v) for n, v in given), text
        super().__init__(", ".join(f"{n}={v!r}" for n, v in self.given) + f": {text}")


class ParameterError(InputError):
    """A bad value for a named parameter of the library: ``name=value: what is expected``.

    Library code names the *parameter* (``n_endmembers=1: expected >= 2``); the CLI maps
    ``name`` to its flag in one place (`unmixgen.cli.flags`) so a command-line user reads
    ``--endmembers 1: expected >= 2``.
    """

    def __init__(self, name: str, value: object, expected: str, mentions: tuple[str, ...] = ()):
        # ``mentions``: other parameter names written in ``expected``, which the CLI also
        # replaces by their flags
        self.name, self.value, self.expected, self.mentions = name, value, expected, tuple(mentions)
        super().__init__(f"{name}={value!r}: {expected}")


def brief(value: object) -> object:
    """``value`` as a `ParameterError` shows it: an array or list by its size (``"20 values"``,
    not every number, and never numpy's ambiguous truth value), anything else as it is."""
    import numpy as np

    return f"{np.size(value)} values" if np.ndim(value) else value


def check_range(name: str, value, *, low=None, high=None, low_open: bool = False,
                high_open: bool = False, integer: bool = False):
    """Return ``value`` when it is a finite number inside the bounds, else `ParameterError`.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``integer`` also
    refuses non-integers (and bools).
    """
    import math
    import numbers

    ok_type = isinstance(value, numbers.Integral) if integer else isinstance(value, numbers.Real)
    if isinstance(value, bool) or not ok_type:
        raise ParameterError(name, value, "expected an integer" if integer else "expected a number")
    if not math.isfinite(value):
        raise ParameterError(name, value, "expected a finite number")
    lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
    hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
    bounds = " and ".join(b for b in (lo, hi) if b)
    if low is not None and (value <= low if low_open else value < low):
        raise ParameterError(name, value, f"expected {bounds}")
    if high is not None and (value >= high if high_open else value > high):
        raise ParameterError(name, value, f"expected {bounds}")
    return value


def check_keywords(function, options: dict, what: str) -> None:
    """`ParameterError` naming the first key of ``options`` that ``function`` does not take as
    a keyword-only parameter (a ``**options`` catch-all would drop it without a word); ``what``
    completes "not ...", e.g. ``"an option of the envi reader"``."""
    import inspect

    accepted = [name for name, par in inspect.signature(function).parameters.items() if par.kind is par.KEYWORD_ONLY]
    for key, value in options.items():
        if key not in accepted:
            raise ParameterError(key, value, f"not {what}; expected "
                                             + (f"one of {', '.join(accepted)}" if accepted else "no options"))


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(name: str, value, nbytes: float, *, fraction: float = 0.5, available: bool = False,
                 what: str = "its arrays"):
    """Refuse ``value`` of parameter ``name`` when the arrays it asks for (``nbytes``, for
    ``what``) would not fit in ``fraction`` of this machine's physical memory or, with
    ``available``, in the memory available now (`available_memory`; the refusal then names
    the largest integer ``value`` that fits, the arrays growing linearly with it): a clear
    error instead of a MemoryError (or swapping, or the system killing the run) halfway."""
    import os

    avail = available_memory() if available else None
    if avail is not None:
        if nbytes > avail:
            most = max(1, int(value * avail // nbytes))
            raise ParameterError(name, value, f"needs about {nbytes / 2**30:.1f} GB for {what}, "
                                              f"{avail / 2**30:.1f} GB available; expected at most {most}")
        return value
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not available on this platform
        return value
    if nbytes > fraction * total:
        raise ParameterError(name, value, f"needs about {nbytes / 2**30:.1f} GiB for {what} but this "
                                          f"machine has {total / 2**30:.1f} GiB; expected a smaller value")
    return value


def _broken_file_errors() -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [OSError, EOFError, zipfile.BadZipFile, zlib.error,
                                       MemoryError, OverflowError]
    # the decoding libraries' own "broken file" errors, imported only when one is raised
    for module, name in (("rasterio.errors", "RasterioError"), ("scipy.io.matlab", "MatReadError"),
                         ("safetensors", "SafetensorError")):
        try:
            errs.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):  # pragma: no cover - all are dependencies
            pass
    return tuple(errs)


@contextmanager
def reading(path: str | os.PathLike, what: str = "read the file", *, hdf5: bool = False,
            also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn decoding failures of ``path`` into ``InputError("path: cannot <what> (...)")``.

    The one place that maps a library's "this file is broken" exceptions (a bad CRC in a
    zip member, a truncated TIFF strip or safetensors header) to bad input. `InputError`
    passes through unchanged. ``hdf5=True`` also converts KeyError and RuntimeError, which
    is how h5py reports an object it cannot open (a dangling or cyclic link, a missing
    external file). ``also``: more exception types that mean a bad file here (ValueError
    around ``np.load``: an object array or a bad header). Programming errors (TypeError,
    AttributeError, IndexError, ...) are deliberately not caught, so a test that feeds
    readers mutated files finds them.
    """
    more = ((KeyError, RuntimeError) if hdf5 else ()) + tuple(also)
    try:
        yield
    except InputError:
        raise
    except _broken_file_errors() as exc:
        if isinstance(exc, MemoryError):
            raise in_file(path, f"cannot {what}: the file asks for more memory than there is") from None
        raise in_file(path, f"cannot {what} ({_short(exc)}); the file looks damaged or is not in "
                            "the format its name says") from None
    except more as exc:
        raise in_file(path, f"cannot {what} ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
