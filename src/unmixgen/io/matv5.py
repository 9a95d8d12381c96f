"""A structural check of MATLAB v5 (level 5) ``.mat`` files before scipy parses them.

scipy's compiled v5 reader trusts the sizes inside the file: a damaged file whose array
dimensions disagree with the bytes of its data can crash the interpreter (a segmentation
fault, found by the reader fuzz test) instead of raising. `check_v5` walks the element
tree without building any array and raises `InputError` on anything inconsistent:

- every element's byte count fits inside its parent;
- each matrix has array flags, dimensions (>= 2, non-negative) and a name;
- numeric data holds exactly ``prod(dims) * itemsize`` bytes of a numeric type (real and,
  for complex arrays, imaginary parts); sparse index arrays fit the dimensions;
- cells and structs hold as many nested matrices as their dimensions say.

Compressed elements (miCOMPRESSED) are inflated, up to ``max_inflated`` bytes, and checked
the same way.

`write_header` and `write_matrix` write a v5 file's header and one real numeric matrix from
blocks of its column-major data, so a scene's ``Y`` is written without a copy of the whole
cube (scipy's ``savemat`` holds the matrix, then its bytes, in memory); further variables
can follow with ``savemat`` on the same open file, which adds no second header after byte 0.
The bytes are those ``savemat`` writes for the same array and name.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import in_file

MI_SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}  # numeric mi types
MI_TEXT = {16, 17, 18}  # miUTF8/16/32
MI_INT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 5, 6, 14, 15
NUMERIC_CLASSES = set(range(6, 16))  # double ... uint64
CHAR, CELL, STRUCT, OBJECT, SPARSE = 4, 1, 2, 3, 5


class _Bad(Exception):
    pass


def _tag(buf: bytes, pos: int, end: int, order: str, pad: bool = True) -> tuple[int, int, int, int]:
    """(type, nbytes, data start, next element) of the element at ``pos``; elements inside a
    matrix are padded to 8 bytes, top-level ones (``pad=False``) follow each other directly."""
    if pos + 8 > end:
        raise _Bad(f"element tag at byte {pos} runs past its parent")
    first, second = struct.unpack_from(order + "II", buf, pos)
    if first >> 16:  # small data element: type and size in the first word, data in 4 bytes
        if first >> 16 > 4:
            raise _Bad(f"small element at byte {pos} claims {first >> 16} bytes; at most 4 fit")
        return first & 0xFFFF, first >> 16, pos + 4, pos + 8
    start = pos + 8
    nxt = start + second + ((-second % 8) if pad else 0)
    if start + second > end:
        raise _Bad(f"element at byte {pos} says {second} bytes but its parent has {end - start} left")
    return first, second, start, min(nxt, end)


def _matrix(buf: bytes, start: int, end: int, order: str, depth: int) -> None:
    if depth > 32:
        raise _Bad("cells/structs nested more than 32 deep")
    if end == start:
        return  # an empty matrix element (allowed)
    t, n, d, pos = _tag(buf, start, end, order)
    if t != MI_UINT32 or n != 8:
        raise _Bad("matrix without array flags")
    flags = struct.unpack_from(order + "I", buf, d)[0]
    cls, complex_ = flags & 0xFF, bool(flags & 0x800)
    t, n, d, pos = _tag(buf, pos, end, order)
    if t != MI_INT32 or n < 8 or n % 4:
        raise _Bad("matrix without dimensions")
    dims = np.frombuffer(buf, dtype=order + "i4", count=n // 4, offset=d)
    if np.any(dims < 0):
        raise _Bad(f"negative dimension {dims.tolist()}")
    count = int(np.prod(dims.astype(object)))
    t, n, d, pos = _tag(buf, pos, end, order)
    if t != MI_INT8:
        raise _Bad("matrix without a name")
    if cls in NUMERIC_CLASSES or cls == CHAR:
        for _part in range(2 if complex_ else 1):
            t, n, d, pos = _tag(buf, pos, end, order)
            if cls == CHAR and t in MI_TEXT:
                continue
            if t not in MI_SIZES or n != count * MI_SIZES[t]:
                raise _Bad(f"array of {count} values holds {n} bytes of type {t}")
    elif cls == SPARSE:
        nrows, ncols = int(dims[0]), int(dims[1]) if dims.size > 1 else 1
        t, n_ir, d_ir, pos = _tag(buf, pos, end, order)
        t2, n_jc, d_jc, pos = _tag(buf, pos, end, order)
        if t != MI_INT32 or t2 != MI_INT32 or n_jc != 4 * (ncols + 1):
            raise _Bad("sparse index arrays do not fit the dimensions")
        ir = np.frombuffer(buf, dtype=order + "i4", count=n_ir // 4, offset=d_ir)
        jc = np.frombuffer(buf, dtype=order + "i4", count=ncols + 1, offset=d_jc)
        if (ir.size and (ir.min() < 0 or ir.max() >= nrows)) or np.any(np.diff(jc) < 0) or \
                jc[0] < 0 or jc[-1] > ir.size:
            raise _Bad("sparse indices out of range")
        for _part in range(2 if complex_ else 1):
            t, n, d, pos = _tag(buf, pos, end, order)
            if t not in MI_SIZES or n < int(jc[-1]) * MI_SIZES[t]:
                raise _Bad("sparse values shorter than the indices")
    elif cls == CELL:
        for _ in range(count):
            t, n, d, pos = _tag(buf, pos, end, order)
            if t != MI_MATRIX:
                raise _Bad("cell entry that is not a matrix")
            _matrix(buf, d, d + n, order, depth + 1)
    elif cls in (STRUCT, OBJECT):
        if cls == OBJECT:
            t, n, d, pos = _tag(buf, pos, end, order)  # class name
        t, n, d, pos = _tag(buf, pos, end, order)
        if t != MI_INT32 or n != 4:
            raise _Bad("struct without a field-name length")
        width = struct.unpack_from(order + "i", buf, d)[0]
        t, n, d, pos = _tag(buf, pos, end, order)
        if width <= 0 or n % width:
            raise _Bad("struct field names do not fit their length")
        for _ in range(count * (n // width)):
            t, n, d, pos = _tag(buf, pos, end, order)
            if t != MI_MATRIX:
                raise _Bad("struct field that is not a matrix")
            _matrix(buf, d, d + n, order, depth + 1)
    else:
        raise _Bad(f"MATLAB class {cls} (function handle or opaque object) is not a data array")


def check_v5(path: Path, max_inflated: int = 1 << 32) -> None:
    """Raise `InputError` unless the v5 ``.mat`` file ``path`` is structurally sound."""
    buf = Path(path).read_bytes()
    if len(buf) < 128:
        raise in_file(path, f"is {len(buf)} bytes; a MATLAB v5 file has a 128-byte header first")
    order = {b"IM": "<", b"MI": ">"}.get(buf[126:128])
    if order is None:
        raise in_file(path, "has no MATLAB v5 endian indicator (bytes 126-127 are not 'IM' or 'MI')")
    try:
        pos = 128
        while pos < len(buf):
            t, n, d, pos = _tag(buf, pos, len(buf), order, pad=False)
            if t == MI_COMPRESSED:
                z = zlib.decompressobj()
                inner = z.decompress(buf[d : d + n], max_inflated)
                if z.unconsumed_tail:
                    raise _Bad(f"a compressed variable inflates past {max_inflated} bytes")
                ipos = 0
                while ipos < len(inner):
                    it, inn, idd, ipos = _tag(inner, ipos, len(inner), order, pad=False)
                    if it != MI_MATRIX:
                        raise _Bad("compressed element that is not a matrix")
                    _matrix(inner, idd, idd + inn, order, 0)
            elif t == MI_MATRIX:
                _matrix(buf, d, d + n, order, 0)
            else:
                raise _Bad(f"top-level element of type {t}; expected variables (matrices)")
    except (_Bad, ValueError, struct.error) as exc:
        raise in_file(path, f"is a damaged MATLAB v5 file ({exc})") from None
    except zlib.error as exc:
        raise in_file(path, f"is a damaged MATLAB v5 file (compressed variable: {exc})") from None


# -- writing ---------------------------------------------------------------------------------
_NATIVE = "<" if sys.byteorder == "little" else ">"  # savemat writes in the machine's order
MI_SINGLE, MI_DOUBLE = 7, 9
_CLASSES = {np.dtype(np.float32): (7, MI_SINGLE), np.dtype(np.float64): (6, MI_DOUBLE)}  # mx class, mi type


class VariableTooLarge(ValueError):
    """A variable the v5 format cannot hold (4 GiB or more)."""


def write_header(fh: BinaryIO, text: bytes) -> None:
    """The 128-byte v5 file header: ``text`` (at most 116 bytes, padded with spaces), no
    subsystem data, version 0x0100 and the endian indicator of the machine's byte order."""
    if len(text) > 116:
        raise ValueError(f"header text of {len(text)} bytes; at most 116 fit")
    fh.write(text.ljust(116, b" ") + bytes(8) + struct.pack(_NATIVE + "H", 0x0100)
             + (b"IM" if _NATIVE == "<" else b"MI"))


def _element(mi: int, data: bytes) -> bytes:
    """A data element inside a matrix: the small form for at most 4 bytes, else tag, data and
    padding to 8 bytes (as savemat writes them)."""
    if len(data) <= 4:
        return struct.pack(_NATIVE + "I", (len(data) << 16) + mi) + data.ljust(4, b"\0")
    return struct.pack(_NATIVE + "II", mi, len(data)) + data + bytes(-len(data) % 8)


def write_matrix(fh: BinaryIO, name: str, shape: tuple[int, int], dtype, blocks: Iterable[np.ndarray], *,
                 compress: bool = False) -> None:
    """Append the real numeric matrix ``name`` of MATLAB ``shape`` (rows, cols) to the v5 file
    open in ``fh`` at its current position, its data taken from ``blocks``.

    The blocks' values, each block in C order, one block after the other, are the matrix in
    MATLAB's column-major order: for a (bands, pixels) ``Y``, blocks of whole pixels, each
    ``(pixels, bands)``. ``dtype`` is float32 (MATLAB single) or float64 (double); every block
    is cast to it a block at a time. ``compress`` deflates the variable (miCOMPRESSED) as
    savemat does, streaming; ``fh`` must then be seekable (the compressed size is written
    last). `ValueError` when the blocks do not hold ``rows * cols`` values or the variable
    exceeds the format's 4 GiB per variable
    (`VariableTooLarge`, before anything is written).
    """
    dtype = np.dtype(dtype)
    if dtype not in _CLASSES:
        raise ValueError(f"dtype {dtype}: expected float32 or float64")
    mx, mi = _CLASSES[dtype]
    nbytes = int(shape[0]) * int(shape[1]) * dtype.itemsize
    head = (_element(MI_UINT32, struct.pack(_NATIVE + "II", mx, 0))
            + _element(MI_INT32, struct.pack(_NATIVE + "ii", *shape)) + _element(MI_INT8, name.encode("latin1")))
    small = nbytes <= 4  # one value of single: the small element form, as savemat writes it
    size = len(head) + 8 + (0 if small else nbytes + (-nbytes % 8))
    if size >= 1 << 32:
        raise VariableTooLarge(f"variable {name!r} of {size} bytes; a MATLAB v5 variable holds less than 4 GiB "
                         "(MATLAB's -v7.3 files, HDF5, hold more)")
    zobj = zlib.compressobj() if compress else None
    start = fh.tell()
    if zobj is not None:
        fh.write(struct.pack(_NATIVE + "II", MI_COMPRESSED, 0))  # its size is known at the end

    def put(data) -> None:
        fh.write(data if zobj is None else zobj.compress(data))

    put(struct.pack(_NATIVE + "II", MI_MATRIX, size) + head)
    if not small:
        put(struct.pack(_NATIVE + "II", mi, nbytes))
    written, kept = 0, b""
    for block in blocks:
        b = np.ascontiguousarray(block, dtype=dtype.newbyteorder("="))
        written += b.nbytes
        if written > nbytes:
            break
        if small:
            kept += b.tobytes()
        elif b.size:
            put(memoryview(b.reshape(-1)).cast("B"))
    if written != nbytes:
        raise ValueError(f"variable {name!r}: the blocks hold {written} bytes of data; expected {nbytes}")
    put(_element(mi, kept) if small else bytes(-nbytes % 8))
    if zobj is not None:
        fh.write(zobj.flush())
        end = fh.tell()
        fh.seek(start)
        fh.write(struct.pack(_NATIVE + "II", MI_COMPRESSED, end - start - 8))
        fh.seek(end)


__all__ = ["VariableTooLarge", "check_v5", "write_header", "write_matrix"]
