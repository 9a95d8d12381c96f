"""NumPy scenes: ``.npy`` (one cube) and ``.npz`` (cube + metadata + ground truth).

``.npy``
    A ``(rows, cols, bands)`` array, memory-mapped read-only (nothing is loaded up front).
``.npz`` keys
    ``cube`` (rows, cols, bands) — or the archive's only array —; optional ``wavelengths``
    (bands,) nm (micrometres are recognised by magnitude, or say so in ``wavelength_units``),
    ``fwhm`` (bands,) nm, ``mask`` (rows, cols) bool ``True`` = valid, ``good_bands``
    (bands,) bool, ``crs`` (string: WKT or ``EPSG:n``), ``transform`` (6 floats, rasterio
    order), ground truth ``endmembers`` (p, bands) and/or ``abundances`` (rows, cols, p),
    ``endmember_names`` (p,) strings, ``units`` (one string: ``reflectance``, ``radiance`` or a
    radiance unit such as ``uW/(cm^2 sr nm)``, kept as it is: `io.checks.scene_units`);
    placement without a geotransform (`unmixgen.scene.PLACEMENT_KEYS`): ``gcps`` (n, 5) floats
    (row, col, x, y, z in ``crs``), ``rpcs`` (one string: the JSON object of rasterio's
    ``RPC.to_dict()``), ``area_or_point`` (one string, ``Point``); ``source_band_index`` (bands,) and
    ``source_bands`` (one count): where each band came from, in a copy of a file whose bands its
    reader reordered (`unmixgen.io.bands.SOURCE_ORDER_KEYS`).

The writer (``.npz``) stores ``cube`` as float32 in physical units with **NaN at invalid
pixels** (so the file is self-describing even without its mask) plus ``mask`` (rows, cols)
bool, ``wavelengths`` (nm, increasing; omitted when unknown) and every optional key the
scene has. The cube is streamed into the archive a block of rows at a time.
"""

from __future__ import annotations

import json
import tokenize
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..errors import InputError, check_keywords, in_file
from ..scene import ArraySource, GroundTruth, Scene, pixel_validity, placement
from ..wavelengths import to_nm
from .bands import (
    SOURCE_ORDER_KEYS,
    arrange,
    note_source_order,
    per_band,
    read_source_band_order,
    source_band_order,
    usable_fwhm,
)
from .checks import (
    make_scene,
    quiet_gdal,
    reading,
    refuse_complex,
    require_regular_file,
    scene_units,
    units_in_file,
    usable_rpcs,
)

OPTIONAL_KEYS = ("wavelengths", "fwhm", "mask", "good_bands", "crs", "transform",
                 "endmembers", "abundances", "endmember_names", "wavelength_units", "units",
                 "gcps", "rpcs", "area_or_point", *SOURCE_ORDER_KEYS)


def _check_array_dtype(dtype: np.dtype, path: Path, what: str) -> None:
    refuse_complex(dtype, path, what)
    if not (np.issubdtype(dtype, np.number) or dtype.kind == "b"):
        raise in_file(path, f"{what} dtype {dtype} is not numeric; expected a numeric (rows, cols, bands) cube")


_HEADER_ERRORS = (ValueError, SyntaxError, EOFError, TypeError, KeyError, UnicodeDecodeError,
                  RecursionError, MemoryError, tokenize.TokenError)


def _read_header(fh, path: Path, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, header length)`` of the .npy stream ``fh``, checked.

    numpy parses the header text as a Python literal; a damaged one raises whatever the
    tokenizer meets, so every such failure becomes `InputError`. Object dtypes (pickle) are
    refused.
    """
    try:
        version = np.lib.format.read_magic(fh)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)  # 3.0: 2.0's layout
        shape, _fortran, dtype = read_header(fh)
    except _HEADER_ERRORS as exc:
        raise in_file(path, f"{what} has a bad .npy header ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise in_file(path, f"{what} header has shape {shape!r}; expected non-negative integers")
    if dtype.hasobject:
        raise in_file(path, f"{what} holds Python objects (needs pickle); expected plain numeric arrays")
    return shape, dtype, fh.tell()


def _looks_bands_first(shape: tuple[int, ...], path: Path, what: str, n_wavelengths: int | None = None) -> None:
    """Flag a cube that looks stored ``(bands, rows, cols)``, as some tools write them.

    With ``n_wavelengths`` matching the first axis and not the last, that is certain: refuse
    with the fix. Without wavelengths, a first axis unlike two equal last ones (224 x 95 x 95:
    a square scene whose columns equal its bands would be a coincidence) gets a warning.
    """
    rows, cols, bands = shape
    move = "save it as (rows, cols, bands), e.g. np.moveaxis(cube, 0, -1)"
    if n_wavelengths is not None and n_wavelengths == rows != bands:
        raise in_file(path, f"{what} has shape {shape} and {n_wavelengths} wavelengths, which match its first "
                            f"axis: the bands come first; {move}")
    if n_wavelengths is None and cols == bands != rows:
        warnings.warn(f"{path}: {what} of shape {shape} is read as {rows} rows x {cols} columns x {bands} bands; "
                      f"if its bands come first, {move}", UserWarning, stacklevel=4)


def _read_npy(path: Path) -> Scene:
    with open(path, "rb") as fh:
        shape, dtype, header_len = _read_header(fh, path, "array")
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = path.stat().st_size - header_len
    if claimed > held:
        raise in_file(path, f"header claims shape {shape} ({claimed} bytes) but the file holds {held} "
                            "bytes of data; the file is truncated or damaged")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise in_file(path, f"cannot read as a .npy array ({str(exc)[:160]})") from None
    if arr.ndim != 3:
        raise in_file(path, f"array has shape {arr.shape}; expected a (rows, cols, bands) cube")
    _check_array_dtype(arr.dtype, path, "array")
    _looks_bands_first(arr.shape, path, "array")
    return make_scene(path, ArraySource(arr), name=path.stem, metadata={"format": "numpy"})


def _member_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every ``.npy`` member, read from the headers alone.

    Refuses a member whose header claims more bytes than the member holds (a 4 TB claim in
    a small file would otherwise be allocated before anything notices).
    """
    out = {}
    with reading(path, "read the .npz archive"), zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[:-4]
            with zf.open(info) as fh:
                shape, dtype, header_len = _read_header(fh, path, f"member {info.filename!r}")
            claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            held = info.file_size - header_len
            if claimed > held:
                raise in_file(path, f"member {info.filename!r} claims shape {shape} ({claimed} bytes) "
                                    f"but holds {held} bytes; the archive is damaged")
            out[key] = (tuple(shape), dtype)
    return out


def _numbers(extra: dict, key: str, path: Path, ndim: int | None = None):
    """An optional numeric member, checked (None when absent)."""
    if key not in extra:
        return None
    v = np.asarray(extra[key])
    if v.dtype.kind not in "biuf":
        raise in_file(path, f"'{key}' has type {v.dtype}; expected numbers")
    if ndim is not None and v.ndim != ndim:
        raise in_file(path, f"'{key}' has shape {v.shape}; expected {ndim} dimension(s)")
    return v


def _read_npz(path: Path, overlap: str = "sort") -> Scene:
    headers = _member_headers(path)
    keys = list(headers)
    if "cube" in keys:
        key = "cube"
    elif len(keys) == 1:
        key = keys[0]
    else:
        raise in_file(path, f"no 'cube' array among {keys}; expected key 'cube' (rows, cols, bands)")
    shape, dtype = headers[key]
    if len(shape) != 3:
        raise in_file(path, f"'{key}' has shape {shape}; expected (rows, cols, bands)")
    _check_array_dtype(dtype, path, f"'{key}'")
    try:
        with reading(path, "read the .npz archive"), np.load(path, allow_pickle=False) as z:
            cube = z[key]
            extra = {k: z[k] for k in OPTIONAL_KEYS if k in keys}
    except ValueError as exc:  # object arrays need pickle: refuse
        raise in_file(path, f"cannot load arrays ({str(exc)[:160]}); expected plain numeric/string arrays") from None
    rows, cols, bands = cube.shape
    source = read_source_band_order(*(extra.get(k) for k in SOURCE_ORDER_KEYS), bands, path)
    what = f"{path}: "
    wl = None
    if "wavelengths" in extra:
        units = str(extra["wavelength_units"]) if "wavelength_units" in extra else None
        wl = to_nm(extra["wavelengths"], units, what=what + "wavelengths")
    _looks_bands_first(cube.shape, path, f"'{key}'", None if wl is None else wl.size)
    good = _numbers(extra, "good_bands", path)
    # widths are auxiliary: not one finite positive number per band, they are dropped with the
    # warning every reader gives (`usable_fwhm`), not kept for the Scene or `simulate` to refuse
    fwhm = usable_fwhm(per_band(np.asarray(extra["fwhm"]).reshape(-1), bands, "fwhm values", path),
                       "fwhm values", path) if "fwhm" in extra else None
    # bands stored from long to short wavelengths (or detector overlaps) are presented sorted,
    # as every reader does; per-band arrays follow when they have one value per band
    arr = arrange(wl, overlap, path=path) if wl is not None and wl.size == bands else None
    if arr is not None and arr.order is not None:
        cube = cube[..., arr.order]
        wl = arr.wavelengths
        good = good if good is None or good.size != bands else arr.take(good.reshape(-1))
        fwhm = fwhm if fwhm is None or fwhm.size != bands else arr.take(fwhm.reshape(-1))
        if "endmembers" in extra:
            em = np.asarray(extra["endmembers"])
            if em.ndim == 2 and em.shape[1] == bands:
                extra["endmembers"] = em[:, arr.order]
        bands = cube.shape[-1]
    # validity on the good bands only (a bad band may hold anything); a good-band list of the
    # wrong length is refused by the scene below
    judged = cube if good is None or good.size != bands else cube[..., good.reshape(-1).astype(bool)]
    computed = pixel_validity(np.asarray(judged, np.float32)) if cube.size else None
    mask = computed
    m = _numbers(extra, "mask", path)
    if m is not None:
        if m.shape != (rows, cols):
            raise in_file(path, f"'mask' has shape {m.shape}; expected ({rows}, {cols}) bool, True = valid")
        mask = m.astype(bool) & computed
    crs = None
    if "crs" in extra:
        c = np.asarray(extra["crs"])
        if c.dtype.kind not in "US" or c.size != 1:
            raise in_file(path, "'crs' is not one string; expected WKT or 'EPSG:n'")
        crs = str(c.reshape(-1)[0]) or None
    if crs is not None:
        _check_crs(crs, path)
    transform = None
    t = _numbers(extra, "transform", path)
    if t is not None:
        t = t.astype(np.float64).reshape(-1)
        if t.size not in (6, 9) or not np.all(np.isfinite(t[:6])):
            raise in_file(path, f"'transform' has {t.size} values; expected 6 finite numbers (a, b, c, d, e, f)")
        if t[0] * t[4] - t[1] * t[3] == 0:  # a zero pixel size, or both axes along one line
            raise in_file(path, f"'transform' {t[:6].tolist()} gives pixels of zero area; expected non-zero pixel "
                                "sizes (a, b, c, d, e, f in rasterio order)")
        transform = tuple(t[:6])
    units = units_in_file(extra["units"], path) if "units" in extra else None
    truth = None
    if "endmembers" in extra or "abundances" in extra:
        names = [str(n) for n in np.asarray(extra["endmember_names"]).reshape(-1)] \
            if "endmember_names" in extra else None
        truth = GroundTruth(_numbers(extra, "endmembers", path), _numbers(extra, "abundances", path),
                            names, str(path))
    metadata = {"format": "numpy", **_placement(extra, path)}
    if arr is not None:
        arr.note(metadata, overlap)
    note_source_order(metadata, source, None if arr is None else arr.order)
    scene = make_scene(
        path,
        cube,
        wavelengths=None if wl is None else wl,
        fwhm=fwhm,
        good_bands=good,
        # without a mask of the file's own, a callable as the other readers give it: the scene
        # then screens it for zero-filled pixels (with their warning) and stuck detector lines,
        # which a finished mask skips; a file's mask says where its data are (its zeros too)
        mask=mask if mask is None or m is not None else (lambda: mask),
        crs=crs,
        transform=transform,
        name=path.stem,
        units=units,
        metadata=metadata,
    )
    if truth is not None:  # its endmembers were put in the scene's band order above
        scene.attach_truth(truth, band_order="scene")
    return scene


def _one_string(extra: dict, key: str, path: Path, expected: str) -> str:
    v = np.asarray(extra[key])
    if v.dtype.kind not in "US" or v.size != 1:
        raise in_file(path, f"'{key}' is not one string; expected {expected}")
    return str(v.reshape(-1)[0])


def _placement(extra: dict, path: Path) -> dict:
    """The archive's ``gcps``, ``rpcs`` and ``area_or_point`` as scene metadata, checked."""
    out = {}
    g = _numbers(extra, "gcps", path, ndim=2)
    if g is not None:
        if g.shape[0] < 1 or g.shape[1] != 5 or not np.all(np.isfinite(g)):
            raise in_file(path, f"'gcps' is {g.shape} with {'no ' if np.all(np.isfinite(g)) else 'non-'}finite "
                                "values; expected (n, 5) finite numbers: row, col, x, y, z per ground control point")
        out["gcps"] = g.astype(np.float64).tolist()
    if "rpcs" in extra:
        from rasterio.rpc import RPC

        text = _one_string(extra, "rpcs", path, "the JSON object of rasterio's RPC.to_dict()")
        try:
            rpcs = RPC(**json.loads(text)).to_dict()
            usable = usable_rpcs(rpcs)
        except (ValueError, TypeError):
            usable = False
        if not usable:
            raise in_file(path, f"'rpcs' = {text[:60]!r} is not a usable RPC model; expected the JSON object of "
                                "rasterio's RPC.to_dict() with finite numbers and non-zero scales")
        out["rpcs"] = rpcs
    if "area_or_point" in extra:
        v = _one_string(extra, "area_or_point", path, "'Point' or 'Area'")
        if v not in ("Point", "Area"):
            raise in_file(path, f"'area_or_point' = {v[:40]!r}; expected 'Point' or 'Area'")
        if v == "Point":
            out["area_or_point"] = v
    return out


def _check_crs(crs: str, path: Path) -> None:
    """`InputError` unless PROJ knows ``crs`` (WKT, ``EPSG:n``, ...): every writer needs it, and a
    CRS found unusable there fails a command after all its work."""
    from rasterio.crs import CRS

    try:
        with quiet_gdal():
            CRS.from_user_input(crs)
    except Exception:  # noqa: BLE001 - rasterio's CRSError, PROJ's messages vary
        raise in_file(path, f"'crs' = {crs[:80]!r} is not a coordinate reference system PROJ knows; expected WKT "
                            "or 'EPSG:n'") from None


def read(path: Path, *, overlap: str = "sort", **options) -> Scene:
    """Read ``.npy`` (memory-mapped) or ``.npz`` into a `Scene` (``metadata["format"] = "numpy"``).

    Every member is checked before it is loaded: its header's size against the bytes it
    holds, its type (numeric and real: complex data is refused, not made real).
    """
    check_keywords(read, options, "an option of the numpy reader")
    path = require_regular_file(path)
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"\x93NUMPY"):
        return _read_npy(path)
    if head.startswith(b"PK"):
        return _read_npz(path, overlap)
    raise in_file(path, "is neither a .npy array nor a .npz archive")


def _add(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def placement_arrays(scene: Scene) -> dict[str, np.ndarray]:
    """What places ``scene`` on Earth, as the arrays of an ``.npz`` scene: ``crs`` (text),
    ``transform`` (6,), else ``gcps`` (n, 5); ``rpcs`` (JSON text), ``area_or_point``."""
    out: dict[str, np.ndarray] = {}
    if scene.crs:
        out["crs"] = np.array(str(scene.crs))
    if scene.transform is not None:
        out["transform"] = np.asarray(scene.transform, np.float64)
    placed = placement(scene)
    if "gcps" in placed and scene.transform is None:
        out["gcps"] = np.asarray(placed["gcps"], np.float64).reshape(-1, 5)
    if "rpcs" in placed:
        out["rpcs"] = np.array(json.dumps(placed["rpcs"]))
    if "area_or_point" in placed:
        out["area_or_point"] = np.array(str(placed["area_or_point"]))
    return out


def write(scene: Scene, path: Path, *, block_rows: int = 256, **options) -> None:
    """Write ``scene`` to ``path`` (``.npz``) atomically; see the module docstring for keys."""
    check_keywords(write, options, "an option of the numpy writer")
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
        if label := scene_units(scene.units):
            _add(zf, "units", np.array(label))
        for key, value in placement_arrays(scene).items():
            _add(zf, key, value)
        source = source_band_order(scene)
        if source is not None:  # the bands' order in the file they were first read from
            _add(zf, SOURCE_ORDER_KEYS[0], np.asarray(source[0], np.int64))
            _add(zf, SOURCE_ORDER_KEYS[1], np.asarray(source[1], np.int64))
        t = scene.truth
        if t is not None:
            if t.endmembers is not None:
                _add(zf, "endmembers", np.asarray(t.endmembers, np.float32))
            if t.abundances is not None:
                _add(zf, "abundances", np.asarray(t.abundances, np.float32))
            if t.names:
                _add(zf, "endmember_names", np.array([str(n) for n in t.names]))


__all__ = ["InputError", "placement_arrays", "read", "write"]
