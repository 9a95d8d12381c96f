"""Safe access to HDF5 files (PRISMA, EMIT, NEON, MATLAB v7.3) and detection by content.

HDF5 can make a file read *other* files: an external link points at an object in another
file, a dataset with external raw storage keeps its bytes in other files, and a virtual
dataset maps other files' datasets. A crafted scene could so copy any file the user can
read into an output. Readers therefore reach every object through `get`/`dataset`, which
refuse soft and external links, external storage and virtual datasets unless the caller
passes ``allow_external=True`` (a reader option of the same name). Whatever else h5py
cannot open (a dangling or cyclic link, a missing external file) becomes `InputError`.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import in_file
from .checks import reading, refuse_complex, require_regular_file

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_OPT_IN = "pass allow_external=True to follow it if you trust the file"


def open_file(path: str | os.PathLike, expected: str) -> h5py.File:
    """Open ``path`` read-only; `InputError` (naming ``expected``) when it is not HDF5."""
    path = require_regular_file(path)
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise in_file(path, f"cannot be opened as HDF5 ({exc}); expected {expected}") from None


def link_kind(group: h5py.Group, name: str) -> str | None:
    """``"hard"``, ``"soft"``, ``"external"`` or None (no such link) for one member name."""
    try:
        link = group.get(name, getlink=True)
    except (KeyError, RuntimeError, OSError, ValueError):
        return None
    if link is None:
        return None
    if isinstance(link, h5py.SoftLink):
        return "soft"
    if isinstance(link, h5py.ExternalLink):
        return "external"
    return "hard"


def get(group: h5py.Group, relpath: str, path, *, allow_external: bool = False,
        required: bool = True):
    """The object at ``relpath`` below ``group``, following only hard links unless allowed.

    Returns None for a missing object when ``required`` is False.
    """
    obj = group
    walked = group.name.rstrip("/")
    for part in [p for p in relpath.split("/") if p]:
        if not isinstance(obj, h5py.Group):
            raise in_file(path, f"{walked} is not a group; expected {relpath} below it")
        kind = link_kind(obj, part)
        walked = f"{walked}/{part}"
        if kind is None:
            if required:
                raise in_file(path, f"{walked} is missing")
            return None
        if kind != "hard" and not allow_external:
            article = "an" if kind == "external" else "a"
            raise in_file(path, f"{walked} is {article} {kind} link; refused because it may read other "
                                f"files ({_OPT_IN})")
        with reading(path, f"open {walked}", hdf5=True):
            obj = obj[part]
    return obj


def check_dataset(ds, where: str, path, *, allow_external: bool = False) -> h5py.Dataset:
    """``ds`` when it is a numeric dataset stored in this file; `InputError` otherwise."""
    if not isinstance(ds, h5py.Dataset):
        raise in_file(path, f"{where} is a {type(ds).__name__.lower()}, not a dataset; expected an array")
    if not allow_external:
        if ds.is_virtual:
            raise in_file(path, f"{where} is a virtual dataset that maps other files; refused ({_OPT_IN})")
        if ds.external:
            raise in_file(path, f"{where} keeps its data in external files; refused ({_OPT_IN})")
    refuse_complex(ds.dtype, path, where)
    if ds.dtype.kind not in "biuf":
        raise in_file(path, f"{where} has type {ds.dtype}; expected numbers")
    return ds


def dataset(group: h5py.Group, relpath: str, path, *, allow_external: bool = False,
            ndim: int | None = None, required: bool = True) -> h5py.Dataset | None:
    """A checked numeric dataset (see `get` and `check_dataset`); ``ndim`` when given."""
    obj = get(group, relpath, path, allow_external=allow_external, required=required)
    if obj is None:
        return None
    where = obj.name
    ds = check_dataset(obj, where, path, allow_external=allow_external)
    if ndim is not None and ds.ndim != ndim:
        raise in_file(path, f"{where} has shape {ds.shape}; expected {ndim} dimensions")
    if ds.size == 0:
        raise in_file(path, f"{where} is empty (shape {ds.shape})")
    return ds


def read_small(ds: h5py.Dataset, path, *, limit: int = 1 << 24) -> np.ndarray:
    """The whole of a small dataset (metadata: wavelengths, flags); refuses large ones."""
    if ds.size > limit:
        raise in_file(path, f"{ds.name} has {ds.size} values; expected a short list")
    with reading(path, f"read {ds.name}", hdf5=True):
        return np.asarray(ds[()])


def attr(obj, name: str):
    """Attribute ``name`` of ``obj`` with bytes decoded to str (None when absent)."""
    try:
        if name not in obj.attrs:
            return None
        v = obj.attrs[name]
    except (OSError, KeyError, RuntimeError, TypeError, ValueError):
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO" and v.size == 1:
        item = v.reshape(-1)[0]
        return item.decode("utf-8", "replace") if isinstance(item, bytes) else item
    return v


def text(value) -> str | None:
    """A scalar string from an attribute or scalar string dataset value."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def string_dataset(group: h5py.Group, relpath: str, path, *, allow_external: bool = False,
                   required: bool = True) -> str | None:
    """A scalar (or one-element) string dataset's text, e.g. NEON's ``Map_Info``."""
    obj = get(group, relpath, path, allow_external=allow_external, required=required)
    if obj is None:
        return None
    if not isinstance(obj, h5py.Dataset) or obj.size != 1:
        raise in_file(path, f"{obj.name} is not a single text value")
    if not allow_external and (obj.is_virtual or obj.external):
        raise in_file(path, f"{obj.name} keeps its data in other files; refused ({_OPT_IN})")
    with reading(path, f"read {obj.name}", hdf5=True):
        value = obj[()]
    return text(value)


class H5CubeSource:
    """A `CubeSource` over a ``(rows, cols, bands)`` HDF5 dataset (EMIT, NEON).

    Each `read` opens the file, reads the window's hyperslab and closes it again. Stored
    ``fill`` values become NaN (never scaled into data); the rest is ``stored * scale +
    offset``; ``order`` picks and orders the stored bands.
    """

    def __init__(self, path: Path, name: str, shape, dtype, *, scale: float = 1.0, offset: float = 0.0,
                 fill: float | None = None, order=None):
        self.path = Path(path)
        self.name = name
        self.order = None if order is None else np.asarray(order, np.intp)
        bands = shape[2] if self.order is None else self.order.size
        self.shape = (int(shape[0]), int(shape[1]), int(bands))
        self.dtype = np.dtype(dtype)
        self.scale, self.offset, self.fill = np.float32(scale), np.float32(offset), fill

    def read_raw(self, rows: slice, cols: slice) -> np.ndarray:
        """Physical values of the window ``[rows, cols]`` in stored geometry, all bands kept."""
        with reading(self.path, f"read {self.name}", hdf5=True), h5py.File(self.path, "r") as f:
            block = f[self.name][rows, cols, :]
        out = np.asarray(block, dtype=np.float32)
        bad = None
        if self.fill is not None:
            bad = (block == self.fill) if not np.isnan(self.fill) else np.isnan(out)
        if self.scale != 1:
            out *= self.scale
        if self.offset != 0:
            out += self.offset
        if bad is not None and bad.any():
            out[bad] = np.nan
        return out

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        out = self.read_raw(rows, cols)
        return out if self.order is None else out[..., self.order]


def validity_by_reading(source, good=None, block_rows: int = 128) -> np.ndarray:
    """Valid pixels ``(rows, cols)`` of a source whose fill values read as NaN, judged on the
    good bands (bool per presented band), a block of rows at a time."""
    from ..scene import pixel_validity

    rows, cols, _ = source.shape
    sel = None if good is None or np.all(good) else np.flatnonzero(good)
    out = np.empty((rows, cols), bool)
    for r0 in range(0, rows, block_rows):
        blk = source.read(slice(r0, min(r0 + block_rows, rows)), slice(0, cols))
        out[r0 : r0 + block_rows] = pixel_validity(blk if sel is None else blk[..., sel])
    return out


def sniff(path: Path) -> str | None:
    """Which reader an HDF5 file is for, by its content: ``"prisma"``, ``"emit"``,
    ``"neon"``, or None. Only names and link types are looked at (no link is followed)."""
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError):
        return None
    with f:
        root = set(f.keys())
        if "HDFEOS" in root and link_kind(f, "HDFEOS") == "hard":
            return "prisma"
        if ({"reflectance", "radiance"} & root) and "sensor_band_parameters" in root:
            return "emit"
        for name in root:
            if link_kind(f, name) != "hard":
                continue
            g = f[name]
            if isinstance(g, h5py.Group) and link_kind(g, "Reflectance") == "hard":
                return "neon"
    return None


def top_level(path: Path) -> str:
    """The top-level member names of an HDF5 file, for messages."""
    try:
        with h5py.File(path, "r") as f:
            names = sorted(f.keys())
    except (OSError, ValueError):
        return "unreadable"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return shown or "nothing"


__all__ = ["HDF5_MAGIC", "H5CubeSource", "attr", "string_dataset", "validity_by_reading", "check_dataset", "dataset", "get", "link_kind", "open_file",
           "read_small", "sniff", "text", "top_level"]
