"""Raw binary rasters (ENVI, ESRI BIL/EHdr): a lazy strided view and its `CubeSource`.

`strided_cube` memory-maps a data file and returns a ``(rows, cols, bands)`` view whose
strides follow the layout (BSQ, BIL, BIP, with optional row and band padding), so nothing
is read until a window is asked for. `RawSource` turns windows of that view into physical
values: bands reordered (`io.bands.arrange`), ``stored * gain + offset`` per band, and
bands that hold no data at all returned as NaN.
"""

from __future__ import annotations

import numpy as np

from ..errors import in_file
from ..scene import pixel_validity
from .checks import confirm_empty_bands

INTERLEAVES = ("bsq", "bil", "bip")


def strided_cube(data, dtype: np.dtype, shape: tuple[int, int, int], interleave: str, *,
                 offset: int = 0, row_bytes: int | None = None, band_row_bytes: int | None = None,
                 band_gap: int = 0, path=None) -> np.ndarray:
    """A read-only ``(rows, cols, bands)`` view of the raw file ``data`` (no copy).

    Parameters
    ----------
    dtype : sample type with byte order.
    interleave : "bsq", "bil" or "bip".
    offset : bytes skipped at the start of the file.
    row_bytes : bytes from one row to the next (BIL: all bands of a row; BIP: the row;
        BSQ: one band's row). Default: no padding.
    band_row_bytes : BIL only: bytes from one band's row to the next band's.
    band_gap : BSQ only: bytes between bands.

    Raises `InputError` (naming ``path`` or ``data``) when the file is too small for the
    layout.
    """
    rows, cols, bands = shape
    item = dtype.itemsize
    where = path if path is not None else data
    _check_padding(interleave, cols, bands, item, row_bytes, band_row_bytes, where)
    if interleave == "bil":
        brb = band_row_bytes if band_row_bytes is not None else cols * item
        rb = row_bytes if row_bytes is not None else bands * brb
        strides = (rb, item, brb)
        last = (rows - 1) * rb + (bands - 1) * brb + cols * item
    elif interleave == "bip":
        rb = row_bytes if row_bytes is not None else cols * bands * item
        strides = (rb, bands * item, item)
        last = (rows - 1) * rb + cols * bands * item
    else:
        rb = row_bytes if row_bytes is not None else cols * item
        band_stride = rows * rb + band_gap
        strides = (rb, item, band_stride)
        last = (bands - 1) * band_stride + (rows - 1) * rb + cols * item
    need = offset + last
    size = data.stat().st_size
    if size < need:
        raise in_file(where, f"the data file {data.name} holds {size} bytes; the header's layout "
                             f"needs {need} ({rows} rows x {cols} cols x {bands} bands of {item} bytes, "
                             f"{interleave}, offset {offset})")
    try:
        mm = np.memmap(data, dtype=np.uint8, mode="r", offset=0, shape=(need,))
    except (OSError, ValueError) as exc:
        raise in_file(data, f"cannot memory-map the data file ({exc})") from None
    view = np.ndarray(shape, dtype=dtype, buffer=mm, offset=offset, strides=strides)
    view.flags.writeable = False
    return view


def _check_padding(interleave, cols, bands, item, row_bytes, band_row_bytes, where) -> None:
    """Row/band strides from a header must leave room for the samples they step over."""
    band_row = cols * item
    if interleave == "bil" and band_row_bytes is not None and band_row_bytes < band_row:
        raise in_file(where, f"BANDROWBYTES = {band_row_bytes} is less than one row of a band "
                             f"({cols} x {item} bytes); expected >= {band_row}")
    need_row = {"bil": bands * (band_row_bytes or band_row), "bip": bands * band_row, "bsq": band_row}[interleave]
    if row_bytes is not None and row_bytes < need_row:
        raise in_file(where, f"row size {row_bytes} bytes is less than one row of data ({need_row} bytes)")


class RawSource:
    """A `CubeSource` over a ``(rows, cols, bands)`` array view (usually `strided_cube`).

    ``value = stored * gain + offset`` per band (``gain``/``offset`` scalars or one per
    stored band); ``order`` picks and orders stored bands; ``empty`` (bool per stored band)
    marks bands that hold nothing but nodata: they read as NaN, never as scaled nodata.
    """

    def __init__(self, array: np.ndarray, *, gain=1.0, offset=0.0, order=None, empty=None,
                 dtype=None, path=None):
        self.array = array
        nb = array.shape[2]
        self.order = None if order is None else np.asarray(order, np.intp)
        gain = np.broadcast_to(np.asarray(gain, np.float32), (nb,))
        offset = np.broadcast_to(np.asarray(offset, np.float32), (nb,))
        empty = np.zeros(nb, bool) if empty is None else np.asarray(empty, bool)
        if self.order is not None:
            gain, offset, empty = gain[self.order], offset[self.order], empty[self.order]
        self.gain = np.ascontiguousarray(gain)
        self.offset = np.ascontiguousarray(offset)
        self.empty = empty if empty.any() else None
        self._identity = bool(np.all(self.gain == 1) and np.all(self.offset == 0))
        out_bands = nb if self.order is None else self.order.size
        self.shape = (int(array.shape[0]), int(array.shape[1]), int(out_bands))
        self.dtype = np.dtype(dtype if dtype is not None else array.dtype.newbyteorder("="))
        self.path = path

    def read_stored(self, rows: slice, cols: slice) -> np.ndarray:
        """The stored values of a window, ``(r, c, bands)`` in the file's dtype and the presented
        band order (what `stored_validity` judges)."""
        block = self.array[rows, cols, :]
        return block if self.order is None else block[..., self.order]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        block = self.read_stored(rows, cols)
        try:
            # C order whatever the file's interleave: a BSQ/BIL window kept in its stored order
            # is not C-contiguous, and a loaded cube like that makes `Scene.valid_pixels` copy it
            out = np.array(block, dtype=np.float32, order="C")
        except OSError as exc:  # a memory map whose file shrank underneath
            raise in_file(self.path or "data file", f"cannot read the data ({exc})") from None
        if not self._identity:
            out *= self.gain
            out += self.offset
        if self.empty is not None:
            out[..., self.empty] = np.nan
        return out


def stored_empty_bands(array: np.ndarray, nodata: float | None, sample: int = 64,
                       block_rows: int = 256) -> np.ndarray | None:
    """Bool per stored band of ``array`` (rows, cols, bands): True where every stored value
    of the band is ``nodata`` or NaN (a float band of NaN is empty with no nodata declared);
    None for an integer array without a nodata value.

    A strided sample of at most ``sample`` x ``sample`` pixels picks the candidates; each
    candidate band is then read whole, a block of rows at a time, stopping at its first
    value that is not nodata (a band with data costs the sample only).
    """
    if nodata is None and array.dtype.kind != "f":
        return None  # integers without a nodata value: nothing marks a sample missing
    rows, cols = array.shape[:2]
    nd = np.float32(np.nan if nodata is None else nodata)

    def all_nodata(a: np.ndarray) -> bool:
        a = np.asarray(a, np.float32)
        return bool(np.all(np.isnan(a) | (a == nd)))

    small = array[:: max(1, rows // sample), :: max(1, cols // sample), :]
    cand = np.array([all_nodata(small[..., b]) for b in range(array.shape[2])])
    return confirm_empty_bands(cand, rows, lambda b, r0, r1: array[r0:r1, :, b], all_nodata, block_rows)


def stored_validity(array: np.ndarray, nodata: float | None, good=None, block_rows: int = 256,
                    offset=0.0) -> np.ndarray:
    """Valid pixels ``(rows, cols)`` judged on the stored values of ``array`` (see
    `pixel_validity`), a block of rows at a time, on the good bands only (``good``: bool per
    stored band; a bad band's NaN or nodata does not invalidate a pixel). ``offset`` (scalar or
    per stored band) is what a stored zero reads as: where it is not 0, a zero nodata there is
    only the fill."""
    rows, cols = array.shape[:2]
    sel = None if good is None or np.all(good) else np.flatnonzero(good)
    zero_is_value = np.broadcast_to(np.asarray(offset, np.float64) == 0, array.shape[2:])
    if sel is not None:
        zero_is_value = zero_is_value[sel]
    out = np.empty((rows, cols), bool)
    for r0 in range(0, rows, block_rows):
        blk = array[r0 : r0 + block_rows]
        if sel is not None:
            blk = blk[..., sel]
        out[r0 : r0 + block_rows] = pixel_validity(np.asarray(blk, dtype=np.float32), nodata, zero_is_value)
    return out


__all__ = ["INTERLEAVES", "RawSource", "stored_empty_bands", "stored_validity", "strided_cube"]
