"""Reading and writing scenes: one module per format, dispatched by extension and content.

Each format module defines

- ``read(path: Path, **options) -> Scene`` (raises `InputError` naming the file), and
- optionally ``write(scene: Scene, path: Path, **options) -> None``, which writes to a
  temporary name next to ``path`` and renames when complete.

A ``**options`` catch-all refuses every option its function does not take as a keyword
(`unmixgen.errors.check_keywords`, a `ParameterError`), also when called directly: an
ignored option (``geotiff.write(..., dtype="int16")``) would change nothing without a word.

`read_scene` and `write_scene` are the public entry points.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np

from ..errors import InputError, ParameterError, check_keywords, in_file
from ..scene import Scene, as_scene
from . import hdf5
from .checks import quiet_gdal, reading, require_regular_file

# extension -> format module (lower case; ENVI/EHdr data files are recognised by their header,
# HDF5 files by their content)
_READ_EXT = {
    ".tif": "geotiff",
    ".tiff": "geotiff",
    ".mat": "matlab",
    ".npy": "numpy_io",
    ".npz": "numpy_io",
    ".xml": "enmap",
}
_HDF5_EXT = (".he5", ".h5", ".hdf5", ".hdf", ".nc", ".nc4")
_WRITE_EXT = {
    ".hdr": "envi",
    ".img": "envi",
    ".dat": "envi",
    ".tif": "geotiff",
    ".tiff": "geotiff",
    ".npz": "numpy_io",
    ".mat": "matlab",
}
_MAGIC = [
    (b"II*\x00", "geotiff"),
    (b"MM\x00*", "geotiff"),
    (b"II+\x00", "geotiff"),
    (b"MM\x00+", "geotiff"),
    (b"MATLAB", "matlab"),
    (b"\x93NUMPY", "numpy_io"),
    (b"PK\x03\x04", "numpy_io"),
    (b"ENVI", "envi"),
]

READ_FORMATS = ("ENVI (.hdr + data), ESRI BIL/EHdr (.hdr + .bil/.bip/.bsq), GeoTIFF (.tif), "
                "EnMAP L2A (folder or METADATA.XML), PRISMA (.he5), EMIT L1B/L2A (.nc), "
                "NEON AOP reflectance (.h5), MATLAB (.mat), NumPy (.npy/.npz)")
WRITE_FORMATS = "ENVI (.hdr/.img), GeoTIFF (.tif), NumPy (.npz), HySUPP-style MATLAB (.mat)"


def _module(name: str):
    return importlib.import_module(f"{__name__}.{name}")


_UNMIXGEN_FOLDERS = (("result.npz", "a result folder"), ("config.json", "a model folder"),
                     ("abundances.npz", "a synthesize output folder"))
"""A file that marks a folder unmixgen wrote, and what that folder is (named when one is given as a scene)."""


def detect_format(path: str | os.PathLike) -> str:
    """The name of the format module that reads ``path``.

    Raises `InputError` when the file is missing, is not a regular file (a FIFO is refused
    before anything opens it), or no format recognises it.
    """
    path = Path(path)
    if not path.exists():
        raise in_file(path, "no such file or folder")
    if path.is_dir():
        if any(p.name.upper().endswith("METADATA.XML") for p in path.iterdir()):
            return "enmap"
        for marker, kind in _UNMIXGEN_FOLDERS:
            if (path / marker).is_file():
                raise in_file(path, f"is {kind} of unmixgen, not a scene; expected a scene file ({READ_FORMATS})")
        raise in_file(path, f"is a folder without an EnMAP METADATA.XML; expected one of: {READ_FORMATS}")
    require_regular_file(path)
    ext = path.suffix.lower()
    if ext in (".tif", ".tiff") and _enmap_metadata_beside(path):
        return "enmap"
    if ext == ".hdr":
        return _header_kind(path)
    if ext in _READ_EXT:
        return _READ_EXT[ext]
    with open(path, "rb") as f:
        head = f.read(16)
    if ext in _HDF5_EXT or head.startswith(hdf5.HDF5_MAGIC):
        if head.startswith(b"MATLAB"):  # v7.3 .mat under another name (HDF5 after a user block)
            return "matlab"
        kind = hdf5.sniff(path)
        if kind is None and head.startswith(hdf5.HDF5_MAGIC):
            with reading(path, "open as HDF5/NetCDF"):  # a truncated file is damaged, not unknown
                hdf5.h5py.File(path, "r").close()
        if kind is None:
            raise in_file(path, f"HDF5/NetCDF file whose content no reader knows (top level: "
                                f"{hdf5.top_level(path)}); format not supported. Supported: {READ_FORMATS}")
        return kind
    hdr = _envi_header_for(path)
    if hdr is not None:
        return _header_kind(hdr)
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    raise in_file(path, f"unknown format (extension {ext or 'none'!r}); format not supported. "
                        f"Supported: {READ_FORMATS}")


def _header_kind(hdr: Path) -> str:
    """"envi" or "ehdr" for a ``.hdr`` file, by its first line / keywords."""
    from .ehdr import looks_like_ehdr

    require_regular_file(hdr, "header")
    with open(hdr, "rb") as f:
        text = f.read(1 << 16).decode("utf-8", "replace")
    if text.lstrip().upper().startswith("ENVI"):
        return "envi"
    return "ehdr" if looks_like_ehdr(text) else "envi"


def require_path(value, name: str = "path") -> None:
    """`ParameterError` naming ``name`` when ``value`` is not a file's path (a str or
    `os.PathLike`): a scene in memory (DataArray, Dataset, `Scene`, array) given where a file is
    read (`read_scene`, the workflow functions) fails with that line, not a `TypeError` from
    deep inside, and says where it goes instead."""
    if not isinstance(value, (str, os.PathLike)):
        raise ParameterError(name, type(value).__name__, "expected a file's path (str or Path); a scene in memory "
                             "(DataArray, Dataset, Scene, array) goes to an estimator as it is "
                             "(make_method(...).fit(scene)), or to a file first (write_scene(scene, 'scene.npz'))")


def read_scene(path: str | os.PathLike, **options) -> Scene:
    """Read any supported scene file into a `Scene` (lazily where the format allows).

    Every failure is an `InputError` whose message starts with the file's name; a ``path``
    that is no path (a DataArray, an array) is a `ParameterError` saying where it goes.
    """
    require_path(path)
    fmt = detect_format(path)
    check_keywords(_module(fmt).read, options, f"an option of the {fmt.removesuffix('_io')} reader")
    try:
        with quiet_gdal(), reading(path, "read the file", hdf5=fmt in ("prisma", "emit", "neon", "matlab")):
            return _module(fmt).read(Path(path), **options)
    except InputError as exc:
        text = str(exc)
        if type(exc) is InputError and str(path) not in text and Path(path).stem not in text:
            raise in_file(path, str(exc)) from None
        raise


def write_scene(scene: Scene | np.ndarray, path: str | os.PathLike, **options) -> None:
    """Write ``scene`` (a `Scene` or a ``(rows, cols, bands)`` array) in the format its
    extension names (atomically)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _WRITE_EXT:
        raise in_file(path, f"cannot write extension {ext or 'none'!r}; expected one of: {WRITE_FORMATS}")
    writer = _module(_WRITE_EXT[ext]).write
    check_keywords(writer, options, f"an option of the {_WRITE_EXT[ext].removesuffix('_io')} writer")
    writer(as_scene(scene), path, **options)


def input_files(path: str | os.PathLike) -> list[Path]:
    """Every file reading ``path`` opens: the file itself, an ENVI header *and* its data
    file, every file of an EnMAP folder. Outputs must never be one of these."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file())
    files = [path]
    try:
        if detect_format(path) == "envi":
            from .envi import find_data_file, header_and_data

            hdr, data = header_and_data(path)
            files = [hdr, data if data is not None else find_data_file(hdr)]
    except InputError:
        pass  # the reader reports what is wrong with the input itself
    return files


def written_files(path: str | os.PathLike) -> list[Path]:
    """The files `write_scene` creates for ``path`` (ENVI: the header and the data file)."""
    path = Path(path)
    if _WRITE_EXT.get(path.suffix.lower()) == "envi":
        if path.suffix.lower() == ".hdr":
            return [path, path.with_suffix(".img")]
        return [path.with_suffix(".hdr"), path]
    return [path]


def check_output_file(path: str | os.PathLike, *, overwrite: bool, inputs=()) -> list[Path]:
    """Refuse to write a scene to ``path`` when that would destroy an input, replace an
    existing file without ``overwrite``, or leave a stale file that readers would open
    instead (an ENVI data file named like the header, beside the one we write).

    Returns the files the write will create.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _WRITE_EXT:
        raise in_file(path, f"cannot write extension {ext or 'none'!r}; expected one of: {WRITE_FORMATS}")
    out = written_files(path)
    protected = {_same_file_key(p) for f in inputs for p in input_files(f)}
    folders = [_same_file_key(f) for f in inputs if Path(f).is_dir()]  # an EnMAP product folder
    for f in out:
        if _same_file_key(f) in protected:
            raise in_file(f, "is also an input of this command; expected a different output name")
        if any(_same_file_key(f).startswith(d.rstrip(os.sep) + os.sep) for d in folders):
            raise in_file(f, "lies inside an input folder of this command; writing there would change the "
                             "input, so choose an output outside it")
        if f.is_dir():
            raise in_file(f, "is a folder; expected a file name for the output")
        if f.is_symlink() and not f.exists():
            raise in_file(f, f"is a link to {os.readlink(f)}, which does not exist; expected a file name for "
                             "the output")
        if f.exists() and not overwrite:
            raise in_file(f, "exists; pass --overwrite (overwrite=True in Python) to replace it")
        if not f.parent.is_dir():
            what = "is not a folder" if f.parent.exists() else "does not exist"
            raise in_file(f.parent, f"{what}; expected an existing folder for the output")
    if _WRITE_EXT[ext] == "envi":
        from .envi import find_data_file

        hdr, data = out
        try:
            picked = find_data_file(hdr)
        except InputError:
            picked = None
        if picked is not None and picked != data:
            raise in_file(picked, f"readers of {hdr.name} would open this file instead of {data.name}; "
                                  "remove it or choose another output name")
    return out


def _same_file_key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _enmap_metadata_beside(path: Path) -> Path | None:
    if "SPECTRAL_IMAGE" not in path.name.upper():
        return None
    for p in path.parent.iterdir():
        if p.name.upper().endswith("METADATA.XML"):
            return p
    return None


def _envi_header_for(path: Path) -> Path | None:
    """The ENVI header of a data file: ``name.hdr`` or ``name.ext.hdr`` beside it."""
    for cand in (path.with_suffix(".hdr"), path.with_suffix(path.suffix + ".hdr"),
                 path.with_suffix(".HDR"), path.with_suffix(path.suffix + ".HDR")):
        if cand != path and cand.is_file():
            return cand
    return None


__all__ = ["check_output_file", "detect_format", "input_files", "read_scene", "write_scene", "written_files"]
