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

Optional keys in any layout: ``wavelengths`` (nm, or um when < 100), ``mask`` (rows, cols).
Ground truth found in the scene file is attached; ``read(path, truth=other.mat)`` reads it
from another file with `read_truth` instead.

MATLAB v7.3 files are HDF5: they are read with h5py, and every array is transposed back
(MATLAB writes column-major, so h5py sees the axes reversed).

`write` produces the HySUPP layout (row-major pixels, see 1.) so HySUPP can load it, with
``wavelengths`` and ``mask`` added; invalid pixels are written as NaN in ``Y``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_file
from ..errors import InputError, in_file
from ..scene import GroundTruth, Scene
from ..wavelengths import to_nm

_HYSUPP_INTS = ("H", "W", "p", "L", "N")


# -- loading --------------------------------------------------------------------------------
def load_mat(path: str | Path) -> dict[str, Any]:
    """All variables of a ``.mat`` file (v4-v7 via scipy, v7.3 via h5py), MATLAB shapes."""
    path = Path(path)
    if not path.is_file():
        raise in_file(path, "no such file")
    import scipy.io as sio

    try:
        d = sio.loadmat(path)
        return {k: v for k, v in d.items() if not k.startswith("__")}
    except NotImplementedError:  # v7.3
        return _load_v73(path)
    except (ValueError, TypeError, OSError) as exc:
        try:
            return _load_v73(path)
        except InputError:
            raise in_file(path, f"not a readable MATLAB file ({exc}); expected a .mat file") from None


def _load_v73(path: Path) -> dict[str, Any]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise in_file(path, f"not a MATLAB v7.3 (HDF5) file ({exc})") from None
    out: dict[str, Any] = {}
    with f:
        for k, obj in f.items():
            if k.startswith("#") or not isinstance(obj, h5py.Dataset):
                continue
            cls = obj.attrs.get("MATLAB_class", b"")
            cls = cls.decode() if isinstance(cls, bytes) else str(cls)
            if obj.dtype.kind not in "biuf":
                continue  # cells/structs (object references) are not needed here
            arr = obj[()]
            arr = np.asarray(arr).T  # MATLAB column-major -> MATLAB shape
            if cls == "char":
                out[k] = "".join(chr(c) for c in arr.ravel(order="F"))
                continue
            out[k] = arr
    return out


def _int(d: dict, key: str) -> int | None:
    if key not in d:
        return None
    v = np.asarray(d[key]).reshape(-1)
    return int(v[0]) if v.size else None


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
def read_truth(path: str | Path, rows: int, cols: int, bands: int, *, pixel_order: str | None = None,
               variables: dict | None = None) -> GroundTruth:
    """Read reference endmembers/abundances from a ``.mat`` file for a rows x cols x bands scene.

    Endmembers: the first of ``M``, ``E``, ``GT``, ``endmembers`` that is 2-D with one axis
    of length ``bands``; (bands, p) is transposed to (p, bands).
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
    e = None
    for key in ("M", "E", "GT", "endmembers"):
        v = d.get(key)
        if v is None or np.ndim(v) != 2 or np.asarray(v).dtype.kind not in "biuf":
            continue
        v = np.asarray(v, np.float32)
        if v.shape[1] == bands and (v.shape[0] != bands or key == "GT"):
            e = v
        elif v.shape[0] == bands:
            e = np.ascontiguousarray(v.T)
        else:
            raise in_file(path, f"endmembers {key!r} have shape {v.shape}; expected (bands, p) or (p, bands) "
                                f"with {bands} bands")
        break
    a = None
    for key in ("S_GT", "A_true", "A", "abundances"):
        v = d.get(key)
        if v is None or np.asarray(v).dtype.kind not in "biuf":
            continue
        v = np.asarray(v, np.float32)
        if v.ndim == 3:
            if v.shape[:2] == (rows, cols):
                a = v
            elif v.shape[1:] == (rows, cols):
                a = np.ascontiguousarray(v.transpose(1, 2, 0))
        elif v.ndim == 2:
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
        raise in_file(path, "no ground truth found; expected endmembers M/E/GT and/or abundances A/S_GT")
    if e is not None and a is not None and e.shape[0] != a.shape[2]:
        raise in_file(path, f"{e.shape[0]} endmembers but {a.shape[2]} abundance maps")
    return GroundTruth(e, a, _names(d), str(path))


# -- scene -----------------------------------------------------------------------------------
def _cube_from(d: dict, path: Path, order: str | None = None) -> tuple[np.ndarray, str, str | None, dict]:
    """(cube (rows, cols, bands) as stored dtype, layout name, pixel order, extra metadata).

    ``order`` overrides the layout's pixel order of (bands, pixels) matrices.
    """
    meta: dict[str, Any] = {}
    if "Y" in d and _int(d, "H") is not None and _int(d, "W") is not None:
        y = np.asarray(d["Y"])
        h, w = _int(d, "H"), _int(d, "W")
        if y.ndim != 2 or h * w not in y.shape:
            raise in_file(path, f"Y has shape {y.shape} but H*W = {h}*{w}; expected (L, {h * w})")
        if y.shape[1] != h * w:
            y = y.T
        order = order or "C"
        return y.T.reshape((h, w, y.shape[0]), order=order), "hysupp", order, meta
    for rk, ck, layout in (("nRow", "nCol", "zhu"), ("lines", "cols", "palsson")):
        r, c = _int(d, rk), _int(d, ck)
        if r is None or c is None:
            continue
        key = "Y" if "Y" in d else ("V" if "V" in d else None)
        if key is None:
            raise in_file(path, f"has {rk}/{ck} but no Y or V matrix; expected Y (bands, pixels)")
        y = np.asarray(d[key])
        if y.ndim != 2 or r * c not in y.shape:
            raise in_file(path, f"{key} has shape {y.shape} but {rk}*{ck} = {r}*{c}; expected (bands, {r * c})")
        if y.shape[1] != r * c:
            y = y.T
        order = order or "F"
        cube = y.T.reshape((r, c, y.shape[0]), order=order)
        mv = _int(d, "maxValue") if "maxValue" in d else None
        if mv:
            meta["max_value"] = mv
        return cube, layout, order, meta
    arrays = {k: v for k, v in d.items()
              if isinstance(v, np.ndarray) and v.ndim == 3 and v.dtype.kind in "biuf"}
    if "Y" in arrays:
        arrays = {"Y": arrays["Y"]}
    if len(arrays) == 1:
        (k, v), = arrays.items()
        meta["variable"] = k
        return v, "cube", None, meta
    found = ", ".join(f"{k} {np.shape(v)}" for k, v in d.items() if isinstance(v, np.ndarray)) or "none"
    raise in_file(path, f"cannot find a scene (found: {found}); expected Y (bands, pixels) with "
                        "nRow/nCol, lines/cols or H/W, or one 3-D (rows, cols, bands) array")


def read(path: Path, *, truth: str | Path | None = None, pixel_order: str | None = None,
         scale_max_value: bool = True) -> Scene:
    """Read a MATLAB benchmark scene (see the module docstring for the layouts).

    Parameters
    ----------
    truth : another ``.mat`` file with ground truth (see `read_truth`); it replaces any
        ground truth inside the scene file.
    pixel_order : force "F" or "C" for (bands, pixels) matrices (default: by layout).
    scale_max_value : divide by ``maxValue`` when the file has it (Zhu's files).

    Returns a `Scene` with the cube in memory, float32 ``(rows, cols, bands)``.
    """
    path = Path(path)
    d = load_mat(path)
    if pixel_order is not None and pixel_order not in ("C", "F"):
        raise InputError(f"pixel_order={pixel_order!r}; expected 'C' or 'F'")
    cube, layout, order, meta = _cube_from(d, path, pixel_order)
    cube = np.asarray(cube, np.float32)
    if scale_max_value and meta.get("max_value"):
        cube = cube / np.float32(meta["max_value"])
    cube = np.ascontiguousarray(cube)
    rows, cols, bands = cube.shape
    wl = None
    for key in ("wavelengths", "wavelength", "wl"):
        if key in d:
            wl = to_nm(np.asarray(d[key], np.float64).reshape(-1), what=f"{path}: {key}")
            break
    mask = None
    if "mask" in d and np.shape(d["mask"]) == (rows, cols):
        mask = np.asarray(d["mask"]).astype(bool) & np.isfinite(cube).all(axis=-1)
    scene = Scene(cube, wavelengths=wl, mask=mask, name=path.stem, path=str(path),
                  metadata={"format": "matlab", "layout": layout, "pixel_order": order, **meta})
    if truth is not None:
        scene.attach_truth(read_truth(truth, rows, cols, bands, pixel_order=pixel_order))
    else:
        gt_keys = {"E", "GT", "S_GT", "M", "A", "A_true"} & set(d)
        if gt_keys and layout in ("hysupp", "palsson", "zhu"):
            scene.attach_truth(read_truth(path, rows, cols, bands, pixel_order=order, variables=d))
    return scene


# -- writer ----------------------------------------------------------------------------------
def write(scene: Scene, path: Path, **options) -> None:
    """Write ``scene`` as a HySUPP-style ``.mat`` (atomically).

    Keys: ``Y`` (L, N) float64 with row-major pixels (n = r * W + c; invalid pixels NaN),
    ``H``, ``W``, ``L``, ``N``; from ``scene.truth``: ``E`` (L, p), ``A`` (p, N), ``p``,
    ``labels``; plus ``wavelengths`` (nm) when known and ``mask`` (H, W) uint8.
    """
    import scipy.io as sio

    path = Path(path)
    cube = scene.load()
    h, w, bands = cube.shape
    mask = scene.mask
    y = np.where(mask[..., None], cube, np.nan).reshape(h * w, bands).T.astype(np.float64)
    out: dict[str, Any] = {"Y": y, "H": h, "W": w, "L": bands, "N": h * w,
                           "mask": mask.astype(np.uint8)}
    if scene.wavelengths is not None:
        out["wavelengths"] = scene.wavelengths.reshape(1, -1)
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
        sio.savemat(fh, out, do_compression=bool(options.get("compress", False)))
