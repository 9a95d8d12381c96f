"""Checks every reader applies to what it takes from a file.

Readers validate each value before using it (`count`, `number`); `reading`
(`unmixgen.errors.reading`, re-exported here) is the safety net around a read for the
failures that only the decoding library can see (a bad CRC in a zip member, a truncated
TIFF strip, an HDF5 object that cannot be opened).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import InputError, in_file, reading
from ..units import UNITS_EXAMPLES, product_units, quantity, scene_units  # noqa: F401  (re-exported: the readers' home)


def require_regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` when it is a regular file (after following symlinks); `InputError` otherwise.

    Checked before any ``open()``: opening a FIFO blocks until a writer appears, and a
    device or socket is never a scene.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise in_file(path, f"no such {what}") from None
    except OSError as exc:
        raise in_file(path, f"cannot access the {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise in_file(path, f"is a folder; expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "a device" if
                (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) else "not a regular file")
        raise in_file(path, f"is {kind}; expected a regular {what}")
    return path


@contextmanager
def quiet_gdal() -> Iterator[None]:
    """Route GDAL/PROJ messages through rasterio instead of stderr.

    Outside a ``rasterio.Env`` GDAL prints its own ``ERROR 1: ...`` lines (for example when
    PROJ cannot parse a CRS string) before our one-line message; inside one, rasterio
    turns them into log records and exceptions. A damaged file can also make GDAL report
    bytes that are not UTF-8, which rasterio's logging callback cannot decode: Python would
    print that as an "Exception ignored" traceback, so those are dropped here too.
    """
    import sys

    import rasterio

    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, UnicodeDecodeError) and "rasterio" in repr(unraisable.object):
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        with rasterio.Env():
            yield
    finally:
        sys.unraisablehook = previous


def _one_value(value, what: str, path, expected: str):
    """A scalar read from a file: a 1-element array unwrapped, bytes decoded as UTF-8."""
    v = value
    if isinstance(v, np.ndarray):
        if v.size != 1:
            raise in_file(path, f"{what} has {v.size} values; expected {expected}")
        v = v.reshape(-1)[0]
    if isinstance(v, (bytes, np.bytes_)):
        v = bytes(v).decode("utf-8", "replace")
    return v


def count(value, what: str, path, *, low: int = 1, high: int | None = None) -> int:
    """An integer count read from a file, checked: a whole number in ``[low, high]``.

    Accepts ints, integral floats and numeric strings; refuses NaN, text, fractions,
    booleans and values out of range with `InputError` naming the file and the field.
    """
    v = _one_value(value, what, path, "one integer")
    if isinstance(v, (str, np.str_)):
        text = str(v).strip()
        try:
            v = int(text)
        except ValueError:
            try:
                v = float(text)
            except ValueError:
                raise in_file(path, f"{what} = {text[:40]!r} is not a number; expected an integer >= {low}") from None
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise in_file(path, f"{what} is {type(value).__name__}; expected an integer >= {low}")
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v) or v != math.floor(v):
            raise in_file(path, f"{what} = {float(v)!r} is not a whole number; expected an integer >= {low}")
    n = int(v)
    if n < low or (high is not None and n > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise in_file(path, f"{what} = {n}; expected an integer {bound}")
    return n


def number(value, what: str, path, *, nonzero: bool = False, positive: bool = False) -> float:
    """A finite real number read from a file (scalar, 1-element array, or numeric text)."""
    v = _one_value(value, what, path, "one number")
    if isinstance(v, (bool, np.bool_)):
        raise in_file(path, f"{what} is a boolean; expected a number")
    try:
        f = float(str(v).strip()) if isinstance(v, (str, np.str_)) else float(v)
    except (TypeError, ValueError):
        raise in_file(path, f"{what} = {str(v)[:40]!r} is not a number") from None
    if not math.isfinite(f):
        raise in_file(path, f"{what} = {f}; expected a finite number")
    if positive and f <= 0:
        raise in_file(path, f"{what} = {f:g}; expected a positive number")
    if nonzero and f == 0:
        raise in_file(path, f"{what} = 0; expected a non-zero number")
    return f


RPC_SCALES = ("line_scale", "samp_scale", "lat_scale", "long_scale", "height_scale")
RPC_ERRORS = ("err_bias", "err_rand")  # error estimates in metres; None (or -1) when unknown


def usable_rpcs(rpcs: dict) -> bool:
    """Whether rasterio's ``RPC.to_dict()`` ``rpcs`` is a model GDAL can use: every offset, scale
    and coefficient a finite number, the scales non-zero (each coordinate is divided by its
    scale), the error estimates finite or None (unknown, as GDAL reads an ENVI header's)."""
    try:
        for k, v in rpcs.items():
            if k in RPC_ERRORS and v is None:
                continue
            a = np.asarray(v, np.float64)
            if not np.all(np.isfinite(a)) or (k in RPC_SCALES and np.any(a == 0)):
                return False
    except (TypeError, ValueError):
        return False
    return True


def units_in_file(value, path, what: str = "'units'") -> str | None:
    """`scene_units` of the label a file stores under ``what`` (an ``.npz`` array, a ``.mat``
    variable); `InputError` naming the file when it is not one piece of text."""
    if not isinstance(value, str):
        v = np.asarray(value)
        if v.dtype.kind not in "US" or v.size != 1:
            raise in_file(path, f"{what} is not one string ({v.size} values of type {v.dtype}); expected one unit "
                                f"label: {UNITS_EXAMPLES}")
    return scene_units(value)


def header_text(path: Path) -> str:
    """The text of a header file: UTF-8 (a byte-order mark dropped), else Latin-1, the code
    page IDL and older ENVI write on Windows ("\u00b5m" as one byte 0xB5): every byte is a
    character there, so no unit's sign turns into a replacement character. OSError passes."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def refuse_complex(dtype, path, what: str = "data") -> None:
    """`InputError` for complex (or complex-like compound) sample types: unmixing needs real
    values, and dropping the imaginary part silently would change the data."""
    dt = np.dtype(dtype)
    names = {n.lower() for n in (dt.names or ())}
    if dt.kind == "c" or names in ({"real", "imag"}, {"r", "i"}, {"re", "im"}):
        raise in_file(path, f"{what} has complex type {dt}; expected real numbers "
                            "(convert to magnitude or take one part explicitly)")


def real_array(value, key: str, path) -> np.ndarray:
    """Array ``key`` read from the file ``path`` as float32, refused unless its values are real
    numbers (text would fail later, complex values would lose their imaginary part silently)."""
    v = np.asarray(value)
    refuse_complex(v.dtype, path, f"{key!r}")
    if v.dtype.kind not in "biuf":
        raise in_file(path, f"{key!r} has type {v.dtype}; expected numbers")
    return v.astype(np.float32)


def make_scene(path, source, **fields):
    """``Scene(source, path=str(path), **fields)``, with any `InputError` the Scene raises
    (an empty cube, a wavelength list that does not fit) prefixed by the file name."""
    from ..scene import Scene

    try:
        return Scene(source, path=str(path), **fields)
    except InputError as exc:
        if str(path) in str(exc):
            raise
        raise in_file(path, str(exc)) from None


def confirm_empty_bands(candidates: np.ndarray, rows: int, read_rows, missing, block_rows: int = 256) -> np.ndarray:
    """``candidates`` (bool per band, from a sample) kept only for bands with no value that is
    not ``missing`` (``missing(block) -> bool``: every value is fill) in any row:
    ``read_rows(band, r0, r1)`` reads rows ``r0:r1`` of one band, and a band stops at its
    first block with data (a band with data costs the sample only)."""
    out = np.array(candidates, bool)
    for b in np.flatnonzero(out):
        for r0 in range(0, rows, block_rows):
            if not missing(read_rows(int(b), r0, min(r0 + block_rows, rows))):
                out[b] = False
                break
    return out


def require_npz(path: str | os.PathLike, expected: str) -> Path:
    """``path`` when it is a regular file holding a zip archive, as every ``.npz`` does;
    `InputError` otherwise, saying what was ``expected``. Checked before ``np.load``, which
    returns a plain array for a ``.npy`` and offers unpickling for any other bytes."""
    import zipfile

    path = require_regular_file(path)
    try:
        ok = zipfile.is_zipfile(path)
    except OSError as exc:
        raise in_file(path, f"cannot read ({exc.strerror or exc})") from None
    if not ok:
        raise in_file(path, f"cannot read: not an .npz archive (damaged, or another file renamed); expected "
                            f"{expected}")
    return path


__all__ = ["confirm_empty_bands", "count", "header_text", "make_scene", "number", "quiet_gdal", "reading",
           "product_units", "refuse_complex", "require_npz", "require_regular_file", "scene_units", "units_in_file"]

