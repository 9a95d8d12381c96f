"""MATLAB ``.mat`` benchmark files: reader, ground-truth reader and HySUPP-style writer.

Layouts recognised by `read` (first match wins):

1. **HySUPP** (B. Rasti et al., github.com/BehnoodRasti/HySUPP): ``Y`` (L, N), ``H``, ``W``
   and optionally ``E`` (L, p), ``A`` (p, N), ``p``, ``L``, ``N``, ``labels``. HySUPP reshapes
   ``A`` as ``A.reshape(p, H, W)`` in numpy (C) order (``src/data/base.py``), i.e. pixel
   ``n = r * W + c``: **row-major**. So ``cube = Y.T.reshape((H, W, L))``.
2. **Zhu's** files (samson_1.mat, jasperRidge2_R198.mat, Urban_R162.mat, Cuprite...):
   ``Y`` or ``V`` (bands, pixels), ``nRow``, ``nCol``, MATLAB **column-major** pixels:
   ``cube = Y.T.reshape((nRow, nCol, B), order="F")``; divided by ``maxValue`` when present
   (Jasper: uint16 / 5000).
3. **Palsson / UPCGIT** (Samson.mat, Jasper.mat): ``Y`` (B, N), ``lines``, ``cols``
   (column-major pixels, like Zhu's), ground truth ``GT`` (p, B), ``S_GT`` (rows, cols, p),
   ``A`` (p, N). ``Y`` is kept as stored (Jasper.mat is unscaled uint16).
4. A cube stored ``(rows, cols, bands)`` under any key (e.g. MiSiCNet's ``Y_clean``): the
   single 3-D numeric array of the file.

Zhu's ``SlectBands`` (the 1-based numbers of the sensor's bands kept) is checked (one per band)
and recorded as ``metadata["selected_bands"]``, MATLAB-like text (``"4:103,114:147"``). A truth
file's ``slctBnds`` (Zhu's Cuprite: ``M`` on all 224 sensor bands, used as ``M(slctBnds, :)``)
puts its spectra on the scene's bands (`read_truth`). A classification label map
(``indian_pines_gt``: (rows, cols) whole class numbers) is refused as a scene and as a truth.

Optional keys in any layout: ``wavelengths`` and ``fwhm`` (nm, or um when < 100; widths that are
not one finite positive number per band are ignored with a warning, as by every reader:
`io.bands.usable_fwhm`), ``good_bands`` (0/1 per band), ``mask`` (rows, cols), ``units`` (one string, or a cell of one, naming reflectance or
radiance, kept as it is: `io.checks.scene_units`), ``source_band_index`` and ``source_bands``
(where each band of a written copy came from, `io.bands.SOURCE_ORDER_KEYS`).
Ground truth found in the scene file is attached; ``read(path, truth=other.mat)`` reads it
from another file with `read_truth` instead, its spectra put on the scene's bands as every
reader's truth is (`Scene.attach_truth`): by their wavelengths where the truth file has them,
else as in the band order of the scene's source file, which a converted copy records.

MATLAB v7.3 files are HDF5: they are read with h5py, and every array is transposed back
(MATLAB writes column-major, so h5py sees the axes reversed). Variables behind soft or
external links, with external raw storage or virtual layouts are refused unless
``allow_external=True`` (they can make the reader copy other files; see `io.hdf5`).

Every value used is checked first: sizes (``nRow``, ``H``, ...) must be whole numbers >= 1,
``maxValue`` a positive number, the cube numeric and real (complex data is refused, never
silently made real).

`write` produces the HySUPP layout (row-major pixels, see 1.) so HySUPP can load it, with
``wavelengths`` and ``mask`` added; invalid pixels are written as NaN in ``Y``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..atomic import atomic_file
from ..errors import InputError, ParameterError, check_keywords, check_range, in_file
from ..scene import GroundTruth, Scene, stored_band_order
from ..wavelengths import check_wavelengths, to_nm
from .bands import (
    SOURCE_ORDER_KEYS,
    fwhm_in_nm,
    note_source_order,
    per_band,
    read_source_band_order,
    require_good_band,
    source_band_order,
    usable_fwhm,
)
from .checks import (
    count,
    make_scene,
    number,
    reading,
    refuse_complex,
    require_regular_file,
    scene_units,
    units_in_file,
)
from .hdf5 import HDF5_MAGIC
from .matv5 import VariableTooLarge, check_v5, write_header, write_matrix

_HYSUPP_INTS = ("H", "W", "p", "L", "N")


# -- loading --------------------------------------------------------------------------------
def load_mat(path: str | Path, *, allow_external: bool = False) -> dict[str, Any]:
    """All variables of a ``.mat`` file (v4-v7 via scipy, v7.3 via h5py), MATLAB shapes."""
    path = require_regular_file(path)
    import scipy.io as sio
    from scipy.io.matlab import MatReadError

    with open(path, "rb") as fh:
        head = fh.read(128)
    if b"MATLAB 7.3" in head[:128] or head.startswith(HDF5_MAGIC):
        return _load_v73(path, allow_external)
    try:
        with reading(path, "read the MATLAB file"):
            major = sio.matlab.matfile_version(path)[0]
    except InputError:  # `reading` already named the file: say it once
        raise in_file(path, "not a readable MATLAB file (truncated or damaged); expected a .mat file") from None
    except (ValueError, TypeError, MatReadError, IndexError) as exc:
        raise in_file(path, f"not a readable MATLAB file ({str(exc)[:160]}); expected a .mat file") from None
    if major == 1:
        check_v5(path)  # scipy's compiled parser trusts the sizes in the file: check them first
    try:
        with reading(path, "read the MATLAB file"):
            d = sio.loadmat(path)
        return {k: v for k, v in d.items() if not k.startswith("__")}
    except NotImplementedError:  # v7.3 without the usual header text
        return _load_v73(path, allow_external)
    except InputError:
        raise
    except (ValueError, TypeError, MatReadError, UnicodeDecodeError, IndexError) as exc:
        # scipy's parser meets a damaged file with whatever exception the broken byte causes
        raise in_file(path, f"not a readable MATLAB file ({str(exc)[:160]}); expected a .mat file") from None


def _load_v73(path: Path, allow_external: bool) -> dict[str, Any]:
    from . import hdf5

    f = hdf5.open_file(path, "a MATLAB .mat file (v4-v7.3)")
    out: dict[str, Any] = {}
    with f, reading(path, "read the MATLAB v7.3 file", hdf5=True):
        for k in f.keys():
            if k.startswith("#"):
                continue  # #refs#/#subsystem#: the targets of cells/structs, not variables
            obj = hdf5.get(f, k, path, allow_external=allow_external)
            if not isinstance(obj, h5py.Dataset):
                continue
            if not allow_external and (obj.is_virtual or obj.external):
                hdf5.check_dataset(obj, obj.name, path)  # raises the refusal
            cls = hdf5.text(hdf5.attr(obj, "MATLAB_class")) or ""
            names = set(obj.dtype.names or ())
            if names == {"real", "imag"}:
                raw = hdf5.read_small(obj, path, limit=1 << 31)
                out[k] = (raw["real"] + 1j * raw["imag"]).T  # refused when used as data
                continue
            if cls == "cell":
                texts = _v73_cell_of_text(f, obj, path, allow_external)
                if texts is not None:  # the names of the endmembers (Zhu's cood)
                    out[k] = texts
                continue
            if obj.dtype.kind not in "biuf":
                continue  # structs (object references) are not needed here
            arr = np.asarray(hdf5.read_small(obj, path, limit=1 << 31)).T  # column-major -> MATLAB shape
            if cls == "char":
                out[k] = "".join(chr(int(c)) for c in arr.ravel(order="F") if 0 <= int(c) < 0x110000)
                continue
            out[k] = arr
    return out


def _v73_cell_of_text(f: h5py.File, obj: h5py.Dataset, path: Path, allow_external: bool) -> np.ndarray | None:
    """A v7.3 cell of char arrays (references to ``#refs#``) as scipy reads it: an object array
    of the MATLAB shape, each element a one-element array of the text; None for any other cell
    (numbers, nested cells) or one of over 10000 elements, which nothing here reads."""
    from . import hdf5

    if h5py.check_dtype(ref=obj.dtype) is not h5py.Reference or obj.size > 10_000:
        return None
    refs = np.asarray(hdf5.read_small(obj, path)).T  # column-major -> MATLAB shape
    out = np.empty(refs.shape, object)
    for i, ref in np.ndenumerate(refs):
        if not ref:
            return None
        target = f[ref]
        if not isinstance(target, h5py.Dataset) or hdf5.text(hdf5.attr(target, "MATLAB_class")) != "char":
            return None
        hdf5.check_dataset(target, target.name, path, allow_external=allow_external)
        codes = np.asarray(hdf5.read_small(target, path)).T
        if codes.dtype.kind not in "iu" or hdf5.attr(target, "MATLAB_empty") is not None:
            codes = np.zeros(0, np.uint16)  # '' is stored as its dimensions, flagged MATLAB_empty
        out[i] = np.array(["".join(chr(int(c)) for c in codes.ravel(order="F") if 0 <= int(c) < 0x110000)])
    return out


def _cell_content(value):
    """What a cell of one element holds (scipy reads a cell as an object array), else ``value``."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        return value.reshape(-1)[0]
    return value


def _int(d: dict, key: str, path: Path | None = None, *, low: int = 1) -> int | None:
    """A size read from the file (``nRow``, ``H``, ...): None when absent, else checked."""
    if key not in d:
        return None
    return count(d[key], f"variable {key!r}", path or "MATLAB file", low=low)


def _names(d: dict) -> list[str] | None:
    for key in ("cood", "labels", "names", "material_names"):
        if key in d:
            v = d[key]
            if isinstance(v, str):
                return [v]
            v = np.asarray(v)
            if v.dtype.kind in "US":
                return [str(s).strip() for s in v.ravel()]
            if v.dtype == object:
                out = []
                for item in v.ravel():
                    item = np.asarray(item).ravel()
                    out.append(str(item[0]).strip() if item.size else "")
                return out
    return None


# -- ground truth ----------------------------------------------------------------------------


def _endmember_matrices(d: dict, path: Path):
    """``(key, matrix float32)`` for each of ``M``, ``E``, ``GT``, ``endmembers`` that is a 2-D
    matrix of numbers, in that order; `InputError` when one is empty or not finite."""
    for key in ("M", "E", "GT", "endmembers"):
        v = d.get(key)
        if v is not None and np.ndim(v) == 2:  # passed over, the truth would be scored without them
            refuse_complex(np.asarray(v).dtype, path, f"endmembers {key!r}")
        if v is None or np.ndim(v) != 2 or np.asarray(v).dtype.kind not in "biuf":
            continue
        v = np.asarray(v, np.float32)
        if 0 in v.shape:
            raise in_file(path, f"endmembers {key!r} have shape {v.shape}; expected (bands, p) or (p, bands) "
                                "with p >= 1")
        if not np.isfinite(v).all():
            raise in_file(path, f"endmembers {key!r} contain NaN/Inf; expected finite spectra")
        yield key, v


def check_names(path, names: list[str] | None, p: int) -> None:
    """`InputError` unless ``names`` (None: none given) has one name per endmember."""
    if names is not None and len(names) != p:
        raise in_file(path, f"{len(names)} names for {p} endmembers; expected one per endmember")


def read_endmembers(path: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """Reference endmembers from a benchmark ``.mat`` (the ``end3.mat`` / ``end4.mat`` of
    Samson, Jasper Ridge, Urban) without its scene: the first of ``M``, ``E``, ``GT``,
    ``endmembers`` that is a 2-D matrix of numbers, as ``(p, bands)`` float32 (the longer
    axis is the bands: the files store (bands, p)), and the names (``cood``, ...) or None.
    `InputError` naming the file when there is none, or it is empty, not finite or its
    names do not match."""
    e, names, _, _ = read_reference_endmembers(path)
    return e, names


ENDMEMBER_WAVELENGTH_KEYS = ("wavelengths", "wavelength", "wl", "waveLength")
"""The variables a reference-endmember ``.mat`` keeps the band centres of its spectra in, the
first present used: `WAVELENGTH_KEYS`, and Zhu's Cuprite truth's ``waveLength`` (224, 1) in um,
one per row of its ``M`` (all 224 AVIRIS bands, 0.37-2.5 um; users take ``M(slctBnds, :)``, so
row i of ``M`` is sensor band i, whose centre is ``waveLength(i)``)."""


def read_reference_endmembers(path: str | Path
                              ) -> tuple[np.ndarray, list[str] | None, np.ndarray | None, np.ndarray | None]:
    """`read_endmembers`, plus the band centres of the spectra in nm (`ENDMEMBER_WAVELENGTH_KEYS`;
    None when the file has none) and the 1-based sensor band numbers its ``slctBnds`` /
    ``SlectBands`` name (None when it has none, or when ``M`` is already on those bands: one row per
    number, the sensor's ``waveLength`` then taken at them): ``(E (p, bands), names, wavelengths, selected)``.
    `InputError` naming the file when the wavelengths are not one increasing centre per band."""
    path = Path(path)
    d = load_mat(path)
    for _, v in _endmember_matrices(d, path):
        e = v.T if v.shape[0] > v.shape[1] else v
        names = _names(d)
        check_names(path, names, e.shape[0])
        # M already cut to the selection (M(slctBnds, :) saved beside its slctBnds): its rows are
        # those sensor bands, as read_truth takes them, so there is nothing left to select
        sel = _selected_bands(d, path)
        cut = sel is not None and sel.size == e.shape[1]
        wl = None
        key = next((k for k in ENDMEMBER_WAVELENGTH_KEYS if k in d), None)
        if key is not None:
            raw = np.asarray(d[key])
            if cut and raw.dtype.kind in "iuf" and raw.size != e.shape[1] and raw.size >= sel.max():
                raw = raw.reshape(-1)[sel - 1]  # the sensor's centres (Zhu's waveLength): the selected ones
            if raw.dtype.kind not in "iuf" or raw.size != e.shape[1]:
                raise in_file(path, f"{key!r} holds {raw.size} values of type {raw.dtype} for spectra on "
                                    f"{e.shape[1]} bands; expected one band centre per band")
            wl = check_wavelengths(to_nm(raw.reshape(-1).astype(np.float64), what=f"{path}: {key}"), e.shape[1],
                                   what=f"{path}: {key}")
        return e, names, wl, None if cut else _selected_bands(d, path, within=e.shape[1])
    hint = " (a spectral library: name its spectra as LIB.mat:name1,name2)" if "datalib" in d else ""
    raise in_file(path, "no endmember matrix M, E, GT or endmembers found; expected reference endmembers "
                        f"(bands, p){hint}")


def read_truth(path: str | Path, rows: int, cols: int, bands: int | None, *, pixel_order: str | None = None,
               variables: dict | None = None) -> GroundTruth:
    """Read reference endmembers/abundances from a ``.mat`` file for a rows x cols x bands scene.

    Endmembers: the first of ``M``, ``E``, ``GT``, ``endmembers`` that is 2-D with one axis
    of length ``bands``; (bands, p) is transposed to (p, bands). ``bands`` None (nothing to
    match them with): the longer axis is the bands, as the benchmark files store (bands, p).
    On more bands than ``bands``, with ``slctBnds``/``SlectBands`` naming ``bands`` of them
    (1-based; Zhu's Cuprite truth), those rows are taken.
    Abundances: the first of ``S_GT``, ``A_true``, ``A``, ``abundances``: 3-D as
    (rows, cols, p) or (p, rows, cols); 2-D as (p, rows*cols) or (rows*cols, p) in
    ``pixel_order`` ("F" = MATLAB column-major, Zhu/Palsson; "C" = row-major, HySUPP).
    The default is "C" for HySUPP files (``H``/``W`` keys) and "F" otherwise.
    Names come from ``cood``/``labels``/``names``.

    Returns a `GroundTruth` with float32 ``endmembers`` (p, bands) and ``abundances``
    (rows, cols, p), either possibly None. Raises `InputError` naming the file when
    shapes do not fit the scene or the file has neither.
    """
    path = Path(path)
    d = load_mat(path) if variables is None else variables
    if pixel_order is None:
        pixel_order = "C" if ("H" in d and "W" in d) else "F"
    if pixel_order not in ("C", "F"):
        raise InputError(f"pixel_order={pixel_order!r}; expected 'C' (row-major) or 'F' (column-major)")
    npix = rows * cols
    _check_declared_size(d, path, rows, cols)
    e = None
    for key, v in _endmember_matrices(d, path):
        picked = _on_selected_bands(d, key, v, bands, path)
        if picked is not None:  # Zhu's Cuprite: M on all sensor bands, slctBnds naming the scene's
            e = picked
        elif bands is None:  # no spectra to compare with (an estimate of maps only): bands are the longer axis
            e = np.ascontiguousarray(v.T) if v.shape[0] > v.shape[1] else v
        elif v.shape[1] == bands and (v.shape[0] != bands or key == "GT"):
            e = v
        elif v.shape[0] == bands:
            e = np.ascontiguousarray(v.T)
        else:
            raise in_file(path, f"endmembers {key!r} have shape {v.shape}; expected (bands, p) or (p, bands) "
                                f"with {bands} bands")
        break
    a, flat = None, False
    for key in ("S_GT", "A_true", "A", "abundances"):
        v = d.get(key)
        if v is not None:
            refuse_complex(np.asarray(v).dtype, path, f"abundances {key!r}")
        if v is None or np.asarray(v).dtype.kind not in "biuf":
            continue
        v = np.asarray(v, np.float32)
        if 0 in v.shape:
            raise in_file(path, f"abundances {key!r} have shape {v.shape}; expected (p, {npix}) or "
                                f"({rows}, {cols}, p) with p >= 1")
        if v.ndim == 3:
            if v.shape[:2] == (rows, cols):
                a = v
            elif v.shape[1:] == (rows, cols):
                a = np.ascontiguousarray(v.transpose(1, 2, 0))
        elif v.ndim == 2:
            flat = True
            if v.shape[1] == npix and v.shape[0] != npix:
                a = v.T.reshape((rows, cols, v.shape[0]), order=pixel_order)
            elif v.shape[0] == npix:
                a = v.reshape((rows, cols, v.shape[1]), order=pixel_order)
        if a is None:
            raise in_file(path, f"abundances {key!r} have shape {v.shape}; expected (p, {npix}) or "
                                f"({rows}, {cols}, p) for a {rows}x{cols} scene")
        a = np.ascontiguousarray(a, np.float32)
        break
    if e is None and a is None:
        labels = _label_map(d)
        if labels is not None:
            raise in_file(path, f"{labels}, not abundances; expected endmembers M/E/GT and/or abundances A/S_GT "
                                "(p, pixels)")
        raise in_file(path, "no ground truth found; expected endmembers M/E/GT and/or abundances A/S_GT")
    if e is not None and a is not None and e.shape[0] != a.shape[2]:
        raise in_file(path, f"{e.shape[0]} endmembers but {a.shape[2]} abundance maps")
    p = e.shape[0] if e is not None else a.shape[2]
    n_end = _int(d, "nEnd", path)
    if n_end is not None and n_end != p:
        raise in_file(path, f"nEnd = {n_end} but the file holds {p} endmembers; expected nEnd to count them")
    names = _names(d)
    check_names(path, names, p)
    return GroundTruth(e, a, names, str(path), pixel_order if flat else None)


SELECTED_BAND_KEYS = ("SlectBands", "slctBnds")
"""Zhu's 1-based numbers of the sensor's bands a file keeps (scene: ``SlectBands``, Cuprite's
truth: ``slctBnds``, which users apply as ``M(slctBnds, :)``)."""


def _selected_bands(d: dict, path: Path, n: int | None = None, within: int | None = None) -> np.ndarray | None:
    """The 1-based band numbers of `SELECTED_BAND_KEYS` as int64, checked (whole, distinct,
    >= 1, ``n`` of them and <= ``within`` when given); None when the file has none."""
    key = next((k for k in SELECTED_BAND_KEYS if k in d), None)
    if key is None:
        return None
    v = np.asarray(d[key])
    ok = v.dtype.kind in "iuf" and v.size > 0 and np.isfinite(v).all() and (v == np.round(v)).all()
    idx = v.reshape(-1).astype(np.int64) if ok else np.zeros(0, np.int64)
    if (not ok or idx.min() < 1 or np.unique(idx).size != idx.size or (n is not None and idx.size != n)
            or (within is not None and idx.max() > within)):
        of = f" of the {within} bands of its spectra" if within is not None else ""
        raise in_file(path, f"{key}: {v.size} values of type {v.dtype}; expected {n if n is not None else 'the'} "
                            f"distinct 1-based band numbers{of}, one per band kept")
    return idx


def band_numbers(text: str) -> np.ndarray:
    """MATLAB-like band ranges (``"1:3,5"``, as `band_ranges` writes a scene's
    ``metadata["selected_bands"]``) as int64 numbers: ``[1, 2, 3, 5]``."""
    out = []
    for part in str(text).split(","):
        a, _, b = part.strip().partition(":")
        try:
            first, last = int(a), int(b or a)
        except ValueError:
            first, last = 0, -1
        if first < 1 or last < first:
            raise InputError(f"selected bands {text!r}: {part.strip()!r} is not a run of band numbers; expected "
                             "1-based numbers and increasing ranges, e.g. '1:3,5'")
        out.extend(range(first, last + 1))
    return np.asarray(out, np.int64)


def band_ranges(numbers: np.ndarray) -> str:
    """Band numbers as MATLAB-like text, runs shortened: ``[1, 2, 3, 5]`` -> ``"1:3,5"``."""
    numbers = np.asarray(numbers)
    parts, start = [], 0
    for i in range(1, numbers.size + 1):
        if i == numbers.size or numbers[i] != numbers[i - 1] + 1:
            a, b = int(numbers[start]), int(numbers[i - 1])
            parts.append(str(a) if a == b else f"{a}:{b}")
            start = i
    return ",".join(parts)


def _on_selected_bands(d: dict, key: str, v: np.ndarray, bands: int | None, path: Path) -> np.ndarray | None:
    """Endmembers ``v`` (bands, p) on all sensor bands as ``(p, bands)`` on the ``bands`` the
    file's `SELECTED_BAND_KEYS` name, when it names that many and ``v`` is not already on
    ``bands``; else None."""
    if bands is None or bands in v.shape or not any(k in d for k in SELECTED_BAND_KEYS):
        return None
    k = next(k for k in SELECTED_BAND_KEYS if k in d)
    if np.asarray(d[k]).size != bands:
        return None  # names another band count: the shape refusal below says what is expected
    idx = _selected_bands(d, path, bands, within=v.shape[0])
    return np.ascontiguousarray(v[idx - 1].T)


def _label_map(d: dict) -> str | None:
    """What a classification ground truth holds (``indian_pines_gt``: a (rows, cols) uint8 map
    of class numbers, a few hundred values at most, where data stored as integers have many), as
    words for a refusal; None when the file has no such map."""
    for k, v in d.items():
        if not (isinstance(v, np.ndarray) and v.ndim == 2 and min(v.shape) >= 2 and v.dtype.kind in "iu"):
            continue
        values = np.unique(v)
        # a uint16 (bands, pixels) matrix without its sizes holds thousands of values; names kept
        # as character codes (USGS_1995_Library.mat's uint8 'names') start at 32, classes at 0 or 1
        if values.size <= 256 and values[0] in (0, 1):
            return f"{k!r} {v.shape} {v.dtype} holds class labels (a classification map, {values.size} values)"
    return None


WAVELENGTH_KEYS = ("wavelengths", "wavelength", "wl")
"""The variables a ``.mat`` file keeps its band centres in, the first present used."""


def _truth_wavelengths(d: dict) -> np.ndarray | None:
    """The band centres ``(bands,)`` of a truth file's spectra as stored (`WAVELENGTH_KEYS`, unit
    not yet decided: `to_nm`), when it has numbers there (a scene ``.mat`` written here); None
    for a benchmark's truth, whose spectra are in the band order of its scene's file."""
    wl = next((np.asarray(d[k]).reshape(-1) for k in WAVELENGTH_KEYS if k in d), None)
    return wl if wl is not None and wl.dtype.kind in "iuf" else None


def read_truth_file(path: str | Path, rows: int, cols: int, bands: int | None, *, stored_bands: int | None = None,
                    pixel_order: str | None = None,
                    variables: dict[str, Any] | None = None) -> tuple[GroundTruth, np.ndarray | None]:
    """`read_truth` of the ``.mat`` at ``path`` on the band count its spectra are stored on, and
    their band centres as stored (`_truth_wavelengths`; None: a benchmark's truth). That count
    is the wavelengths' where it has them, else ``stored_bands`` (the scene's source file's,
    which a converted copy records: `stored_band_order`), else ``bands``; it tells ``(bands,
    p)`` from ``(p, bands)``. ``variables``: the file's, when the caller has loaded them."""
    d = load_mat(Path(path)) if variables is None else variables
    raw = _truth_wavelengths(d)
    count = raw.size if raw is not None else stored_bands if stored_bands is not None else bands
    return read_truth(path, rows, cols, count, pixel_order=pixel_order, variables=d), raw


def _truth_for(path: str | Path, scene: Scene, pixel_order: str | None) -> tuple[GroundTruth, str | None]:
    """Ground truth from another ``.mat`` for ``scene``, and the ``band_order`` its spectra are in
    for `Scene.attach_truth`: with wavelengths they are matched by them (None); without, they
    are in the band order of the scene's source file ("file"), read on its band count
    (`read_truth_file`)."""
    stored = stored_band_order(scene)
    kept = scene.metadata.get("selected_bands")
    d = load_mat(Path(path))
    if kept is not None:  # both files say which sensor bands they keep (Zhu's Cuprite): they must agree
        theirs = _selected_bands(d, Path(path))
        if theirs is not None and theirs.size == scene.bands and band_ranges(theirs) != kept:
            raise in_file(path, f"slctBnds keeps sensor bands {band_ranges(theirs)} but the scene {scene.path} keeps "
                                f"{kept}; expected the ground truth of the scene's bands")
    gt, raw = read_truth_file(path, scene.rows, scene.cols, scene.bands, pixel_order=pixel_order,
                              stored_bands=None if stored is None else stored[1], variables=d)
    if raw is None:
        return gt, "file"
    return replace(gt, wavelengths=to_nm(raw, what=f"{path}: wavelengths")), None


SIZE_KEYS = (("nRow", "nCol"), ("lines", "cols"), ("H", "W"))
"""The variables a benchmark file states its scene's rows and columns in (Zhu, Palsson, HySUPP)."""


def _check_declared_size(d: dict, path: Path, rows: int, cols: int) -> None:
    """`InputError` when a truth file states the size of its scene (`SIZE_KEYS`) and it is not
    ``rows`` x ``cols``: its (p, pixels) maps would unfold onto the wrong pixels (a scene with
    rows and columns swapped has as many pixels, and a square one even the same shape)."""
    for rk, ck in SIZE_KEYS:
        if rk not in d or ck not in d:
            continue
        r, c = _int(d, rk, path), _int(d, ck, path)
        if (r, c) != (rows, cols):
            swapped = " (rows and columns swapped?)" if (r, c) == (cols, rows) else ""
            raise in_file(path, f"{rk}/{ck} say the truth is of a {r}x{c} scene but the scene is {rows}x{cols}"
                                f"{swapped}; expected the ground truth of the same scene")
        return


# -- scene -----------------------------------------------------------------------------------
def _cube_from(d: dict, path: Path, order: str | None = None) -> tuple[np.ndarray, str, str | None, dict]:
    """(cube (rows, cols, bands) as stored dtype, layout name, pixel order, extra metadata).

    ``order`` overrides the layout's pixel order of (bands, pixels) matrices.
    """
    meta: dict[str, Any] = {}
    if "Y" in d and "H" in d and "W" in d:
        y = _matrix(d, "Y", path)
        h, w = _int(d, "H", path), _int(d, "W", path)
        if y.ndim != 2 or h * w not in y.shape:
            raise in_file(path, f"Y has shape {y.shape} but H*W = {h}*{w}; expected (L, {h * w})")
        if y.shape[1] != h * w:
            y = y.T
        order = order or "C"
        return y.T.reshape((h, w, y.shape[0]), order=order), "hysupp", order, meta
    for rk, ck, layout in (("nRow", "nCol", "zhu"), ("lines", "cols", "palsson")):
        if rk not in d or ck not in d:
            continue
        r, c = _int(d, rk, path), _int(d, ck, path)
        key = "Y" if "Y" in d else ("V" if "V" in d else None)
        if key is None:
            raise in_file(path, f"has {rk}/{ck} but no Y or V matrix; expected Y (bands, pixels)")
        y = _matrix(d, key, path)
        if y.ndim != 2 or r * c not in y.shape:
            raise in_file(path, f"{key} has shape {y.shape} but {rk}*{ck} = {r}*{c}; expected (bands, {r * c})")
        if y.shape[1] != r * c:
            y = y.T
        order = order or "F"
        cube = y.T.reshape((r, c, y.shape[0]), order=order)
        if "maxValue" in d:
            meta["max_value"] = number(d["maxValue"], "variable 'maxValue'", path, positive=True)
        selected = _selected_bands(d, path, y.shape[0])
        if selected is not None:  # which of the sensor's bands these are: shown by `info`
            meta["selected_bands"] = band_ranges(selected)
        return cube, layout, order, meta
    arrays = {k: v for k, v in d.items()
              if isinstance(v, np.ndarray) and v.ndim == 3 and v.dtype.kind in "biufc"}
    if "Y" in arrays:
        arrays = {"Y": arrays["Y"]}
    if len(arrays) == 1:
        (k, v), = arrays.items()
        refuse_complex(v.dtype, path, f"variable {k!r}")
        meta["variable"] = k
        return v, "cube", None, meta
    labels = _label_map(d)
    if labels is not None and not arrays:
        raise in_file(path, f"{labels}, not a hyperspectral cube; expected a scene: Y (bands, pixels) with "
                            "nRow/nCol, lines/cols or H/W, or one 3-D (rows, cols, bands) array")
    found = ", ".join(f"{k} {np.shape(v)}" for k, v in d.items() if isinstance(v, np.ndarray)) or "none"
    raise in_file(path, f"cannot find a scene (found: {found}); expected Y (bands, pixels) with "
                        "nRow/nCol, lines/cols or H/W, or one 3-D (rows, cols, bands) array")


def _matrix(d: dict, key: str, path: Path) -> np.ndarray:
    """Variable ``key`` as a real numeric array; `InputError` for text, cells, complex."""
    v = d[key]
    if not isinstance(v, np.ndarray):
        raise in_file(path, f"variable {key!r} is {type(v).__name__}; expected a numeric matrix")
    refuse_complex(v.dtype, path, f"variable {key!r}")
    if v.dtype.kind not in "biuf":
        raise in_file(path, f"variable {key!r} has type {v.dtype}; expected a numeric matrix")
    return v


def read(path: Path, *, truth: str | Path | None = None, pixel_order: str | None = None,
         scale_max_value: bool = True, allow_external: bool = False, **options) -> Scene:
    """Read a MATLAB benchmark scene (see the module docstring for the layouts).

    Parameters
    ----------
    truth : another ``.mat`` file with ground truth (see `read_truth`); it replaces any
        ground truth inside the scene file. Its spectra are matched to the scene's bands by
        their wavelengths where it has them, else taken in the band order of the scene's
        source file (a converted copy records it; `_truth_for`).
    pixel_order : force "F" or "C" for (bands, pixels) matrices (default: by layout).
    scale_max_value : divide by ``maxValue`` when the file has it (Zhu's files).
    allow_external : v7.3 only: follow links and external/virtual storage (refused by default).

    Returns a `Scene` with the cube in memory, float32 ``(rows, cols, bands)``.
    """
    check_keywords(read, options, "an option of the matlab reader")
    path = Path(path)
    if pixel_order is not None and pixel_order not in ("C", "F"):
        raise ParameterError("pixel_order", pixel_order, "expected 'C' or 'F'")
    d = load_mat(path, allow_external=allow_external)
    cube, layout, order, meta = _cube_from(d, path, pixel_order)
    meta["stored_dtype"] = str(np.asarray(cube).dtype)  # `info` reports what the file holds
    cube = np.asarray(cube, np.float32)
    if scale_max_value and meta.get("max_value"):
        cube = cube / np.float32(meta["max_value"])
    cube = np.ascontiguousarray(cube)
    rows, cols, bands = cube.shape
    wl = raw_wl = None
    for key in WAVELENGTH_KEYS:
        if key in d:
            raw_wl = np.asarray(d[key]).reshape(-1)
            wl = check_wavelengths(to_nm(raw_wl, what=f"{path}: {key}"), bands, what=f"{path}: wavelengths")
            break
    good = _band_flags(d, "good_bands", bands, path)
    fwhm = None
    # widths are auxiliary: a list of the wrong length, or with a zero, negative, non-finite or
    # non-number width, is dropped with the warning every reader gives (not a refused scene)
    given = usable_fwhm(per_band(np.asarray(d["fwhm"]).reshape(-1), bands, "fwhm values", path),
                        "fwhm values", path) if "fwhm" in d else None
    if given is not None:
        given = to_nm(given, "nm", what=f"{path}: fwhm", centres=False)
        fwhm = fwhm_in_nm(given, raw_wl, wl)  # in the wavelengths' unit: their magnitude cannot tell
        if wl is not None and np.max(fwhm) > np.ptp(wl):
            fwhm = given  # widths wider than the whole range: they were in nm already
    mask = None
    if "mask" in d and np.shape(d["mask"]) == (rows, cols) and np.asarray(d["mask"]).dtype.kind in "biuf":
        # validity on the good bands: bad bands are NaN in files this package writes
        on = cube if good is None else cube[..., good]
        mask = np.asarray(d["mask"]).astype(bool) & np.isfinite(on).all(axis=-1)
    metadata = {"format": "matlab", "layout": layout, "pixel_order": order, **meta}
    # where a written copy's bands came from (`io.bands.SOURCE_ORDER_KEYS`)
    note_source_order(metadata, read_source_band_order(*(d.get(k) for k in SOURCE_ORDER_KEYS), bands, path), None)
    # MATLAB keeps text in a cell as often as in a char array (as the endmember names, `_names`)
    units = units_in_file(_cell_content(d["units"]), path, "variable 'units'") if "units" in d else None
    scene = make_scene(path, cube, wavelengths=wl, fwhm=fwhm, good_bands=good, mask=mask, name=path.stem,
                       units=units, metadata=metadata)
    if truth is not None:
        gt, band_order = _truth_for(truth, scene, pixel_order)
        scene.attach_truth(gt, band_order=band_order)
    else:
        gt_keys = {"E", "GT", "S_GT", "M", "A", "A_true"} & set(d)
        if gt_keys and layout in ("hysupp", "palsson", "zhu"):
            # the file's own truth, on its bands as stored, which this reader keeps
            scene.attach_truth(read_truth(path, rows, cols, bands, pixel_order=order, variables=d), band_order="scene")
    return scene


# -- writer ----------------------------------------------------------------------------------
def _band_flags(d: dict, key: str, bands: int, path: Path) -> np.ndarray | None:
    """The optional 0/1 flag per band ``d[key]`` as bool, checked; None when absent."""
    if key not in d:
        return None
    v = np.asarray(d[key])
    if v.dtype.kind not in "biuf" or v.size != bands or not np.isin(v, (0, 1)).all():
        raise in_file(path, f"{key}: {v.size} values of type {v.dtype}; expected {bands} flags of 0 or 1, one "
                      "per band")
    good = v.reshape(-1).astype(bool)
    require_good_band(good, path)
    return good


# the 116-byte descriptive text that opens a MAT v5 file, without a time of writing
_MAT_HEADER_TEXT = b"MATLAB 5.0 MAT-file, written by unmixgen".ljust(116, b" ")


def write(scene: Scene, path: Path, *, block_rows: int | None = None, compress: bool = False, **options) -> None:
    """Write ``scene`` as a HySUPP-style ``.mat`` (atomically).

    Keys: ``Y`` (L, N) float64 with row-major pixels (n = r * W + c; invalid pixels NaN),
    ``H``, ``W``, ``L``, ``N``; from ``scene.truth``: ``E`` (L, p) and ``A`` (p, N) float64,
    ``p``, ``labels``; plus ``wavelengths`` and ``fwhm`` (nm) when known,
    ``good_bands`` (1, L) uint8 when a band is bad, ``mask`` (H, W) uint8, ``units`` (the
    scene's label, as it is: `io.checks.scene_units`) when known, and ``source_band_index``
    (1, L) and ``source_bands`` when the scene's bands are not in its source file's order
    (`io.bands.SOURCE_ORDER_KEYS`). Georeferencing has no place here (use .tif or ENVI for it).

    Double, as the field's benchmark files (Samson, Jasper Ridge, Urban) hold their arrays: MATLAB
    code written for them (``lsqnonneg``, ``quadprog``) takes no single. ``Y`` is streamed
    ``block_rows`` rows of the scene at a time (default: about 32 MB of float32 a block), each
    block converted on its own, so neither the whole cube (a lazy scene is not loaded) nor a
    float64 copy of it is held; a v5 variable holds less than 4 GiB (`InputError` naming the
    file beyond: 5.3e8 values, e.g. 1500 x 1500 x 230).
    """
    check_keywords(write, options, "an option of the matlab writer")
    import scipy.io as sio

    path = Path(path)
    h, w, bands = scene.shape
    mask = scene.mask
    if block_rows is None:
        block_rows = max(1, (1 << 25) // max(1, w * bands * 4))
    check_range("block_rows", block_rows, low=1, integer=True)

    def blocks():  # (pixels, bands) row blocks, C order: (L, N) column-major, as MATLAB stores Y
        for r0 in range(0, h, block_rows):
            r1 = min(r0 + block_rows, h)
            blk = np.array(scene.read(slice(r0, r1), slice(0, w)), dtype=np.float64, copy=True)
            blk[~mask[r0:r1]] = np.nan
            yield blk.reshape(-1, bands)

    out: dict[str, Any] = {"H": h, "W": w, "L": bands, "N": h * w, "mask": mask.astype(np.uint8)}
    if scene.wavelengths is not None:
        out["wavelengths"] = scene.wavelengths.reshape(1, -1)
    if scene.fwhm is not None:
        out["fwhm"] = scene.fwhm.reshape(1, -1)
    if label := scene_units(scene.units):
        out["units"] = label
    if not scene.good_bands.all():
        out["good_bands"] = scene.good_bands.astype(np.uint8).reshape(1, -1)
    source = source_band_order(scene)
    if source is not None:  # the bands' order in the file they were first read from
        out[SOURCE_ORDER_KEYS[0]] = np.asarray(source[0], np.int64).reshape(1, -1)
        out[SOURCE_ORDER_KEYS[1]] = source[1]
    t = scene.truth
    if t is not None:
        if t.endmembers is not None:
            out["E"] = np.asarray(t.endmembers, np.float64).T
        if t.abundances is not None:
            a = np.asarray(t.abundances, np.float64)
            out["A"] = a.reshape(h * w, a.shape[2]).T
        if t.n_endmembers:
            out["p"] = t.n_endmembers
        if t.names:
            out["labels"] = np.array(t.names, dtype=object)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        # our own header (scipy's holds the time of writing: the same scene and seed gave files
        # that differed byte for byte; MATLAB reads only its version and byte-order fields), then
        # Y streamed, then the rest by savemat, which writes no header after byte 0
        write_header(fh, _MAT_HEADER_TEXT)
        try:
            write_matrix(fh, "Y", (bands, h * w), np.float64, blocks(), compress=bool(compress))
        except VariableTooLarge as exc:
            raise in_file(path, f"cannot hold this scene: {exc}") from None
        sio.savemat(fh, out, do_compression=bool(compress))
