"""NumPy scenes: ``.npy`` (one cube) and ``.npz`` (cube + metadata + ground truth).

``.npy``
    A ``(rows, cols, bands)`` array, memory-mapped read-only (nothing is loaded up front).
``.npz`` keys
    ``cube`` (rows, cols, bands) — or the archive's only array —; optional ``wavelengths``
    (bands,) nm (micrometres are recognised by magnitude, or say so in ``wavelength_units``),
    ``fwhm`` (bands,) nm, ``mask`` (rows, cols) bool ``True`` = valid, ``good_bands``
    (bands,) bool, ``crs`` (string: WKT or ``EPSG:n``), ``transform`` (6 floats, rasterio
    order), ground truth ``endmembers`` (p, bands) and/or ``abundances`` (rows, cols, p),
    ``endmember_names`` (p,) strings.

The writer (``.npz``) stores ``cube`` as float32 in physical units with **NaN at invalid
pixels** (so the file is self-describing even without its mask) plus ``mask`` (rows, cols)
bool, ``wavelengths`` (nm, increasing; omitted when unknown) and every optional key the
scene has. The cube is streamed into the archive a block of rows at a time.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..errors import InputError, in_file
from ..scene import ArraySource, GroundTruth, Scene, pixel_validity
from ..wavelengths import to_nm

OPTIONAL_KEYS = ("wavelengths", "fwhm", "mask", "good_bands", "crs", "transform",
                 "endmembers", "abundances", "endmember_names", "wavelength_units")


def _read_npy(path: Path) -> Scene:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise in_file(path, f"cannot read as a .npy array ({exc})") from None
    if arr.ndim != 3:
        raise in_file(path, f"array has shape {arr.shape}; expected a (rows, cols, bands) cube")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise in_file(path, f"array dtype {arr.dtype} is not numeric")
    return Scene(ArraySource(arr), name=path.stem, path=str(path), metadata={"format": "numpy"})


def _read_npz(path: Path) -> Scene:
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise in_file(path, f"cannot read as a .npz archive ({exc})") from None
    with z:
        keys = list(z.files)
        if "cube" in keys:
            key = "cube"
        elif len(keys) == 1:
            key = keys[0]
        else:
            raise in_file(path, f"no 'cube' array among {keys}; expected key 'cube' (rows, cols, bands)")
        try:
            cube = z[key]
            extra = {k: z[k] for k in OPTIONAL_KEYS if k in keys}
        except ValueError as exc:  # object arrays need pickle: refuse
            raise in_file(path, f"cannot load arrays ({exc}); expected plain numeric/string arrays") from None
    if cube.ndim != 3:
        raise in_file(path, f"'{key}' has shape {cube.shape}; expected (rows, cols, bands)")
    if not np.issubdtype(cube.dtype, np.number):
        raise in_file(path, f"'{key}' dtype {cube.dtype} is not numeric")
    rows, cols, bands = cube.shape
    what = f"{path}: "
    wl = None
    if "wavelengths" in extra:
        units = str(extra["wavelength_units"]) if "wavelength_units" in extra else None
        wl = to_nm(extra["wavelengths"], units, what=what + "wavelengths")
    computed = pixel_validity(np.asarray(cube, np.float32))
    mask = computed
    if "mask" in extra:
        m = np.asarray(extra["mask"])
        if m.shape != (rows, cols):
            raise in_file(path, f"'mask' has shape {m.shape}; expected ({rows}, {cols}) bool, True = valid")
        mask = m.astype(bool) & computed
    crs = None
    if "crs" in extra:
        crs = str(extra["crs"]) or None
    transform = None
    if "transform" in extra:
        t = np.asarray(extra["transform"], np.float64).reshape(-1)
        if t.size not in (6, 9):
            raise in_file(path, f"'transform' has {t.size} values; expected 6 (a, b, c, d, e, f)")
        transform = tuple(t[:6])
    truth = None
    if "endmembers" in extra or "abundances" in extra:
        names = [str(n) for n in extra["endmember_names"]] if "endmember_names" in extra else None
        truth = GroundTruth(extra.get("endmembers"), extra.get("abundances"), names, str(path))
    scene = Scene(
        cube,
        wavelengths=None if wl is None else wl,
        fwhm=extra.get("fwhm"),
        good_bands=extra.get("good_bands"),
        mask=mask,
        crs=crs,
        transform=transform,
        name=path.stem,
        path=str(path),
        metadata={"format": "numpy"},
    )
    if truth is not None:
        scene.attach_truth(truth)
    return scene


def read(path: Path, **options) -> Scene:
    """Read ``.npy`` (memory-mapped) or ``.npz`` into a `Scene` (``metadata["format"] = "numpy"``)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"\x93NUMPY"):
        return _read_npy(path)
    if head.startswith(b"PK"):
        return _read_npz(path)
    raise in_file(path, "is neither a .npy array nor a .npz archive")


def _add(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def write(scene: Scene, path: Path, *, block_rows: int = 256, **options) -> None:
    """Write ``scene`` to ``path`` (``.npz``) atomically; see the module docstring for keys."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise in_file(path, "NumPy output must end in .npz")
    if not path.parent.exists():
        raise in_file(path, "output folder does not exist")
    rows, cols, bands = scene.shape
    mask = scene.mask
    with atomic_file(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("cube.npy", "w", force_zip64=True) as f:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
                      "fortran_order": False, "shape": (rows, cols, bands)}
            np.lib.format.write_array_header_1_0(f, header)
            for r0 in range(0, rows, block_rows):
                r1 = min(r0 + block_rows, rows)
                blk = np.array(scene.read(slice(r0, r1), slice(0, cols)), dtype="<f4", copy=True)
                blk[~mask[r0:r1]] = np.nan
                f.write(blk.tobytes())
        _add(zf, "mask", mask.astype(bool))
        if scene.wavelengths is not None:
            _add(zf, "wavelengths", scene.wavelengths.astype(np.float64))
        if scene.fwhm is not None:
            _add(zf, "fwhm", scene.fwhm.astype(np.float64))
        _add(zf, "good_bands", scene.good_bands.astype(bool))
        if scene.crs:
            _add(zf, "crs", np.array(str(scene.crs)))
        if scene.transform is not None:
            _add(zf, "transform", np.asarray(scene.transform, np.float64))
        t = scene.truth
        if t is not None:
            if t.endmembers is not None:
                _add(zf, "endmembers", np.asarray(t.endmembers, np.float32))
            if t.abundances is not None:
                _add(zf, "abundances", np.asarray(t.abundances, np.float32))
            if t.names:
                _add(zf, "endmember_names", np.array([str(n) for n in t.names]))


__all__ = ["read", "write", "InputError"]
