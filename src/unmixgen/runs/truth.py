"""Ground truth as users bring it: a benchmark ``.mat``, an ``.npz`` or a result folder
(`read_truth`), checked against the scene it is for, and the check that its flat maps are in the
estimate's pixel order (`truth_orientation`).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputError, ParameterError, in_file, reading
from ..io import matlab
from ..io.checks import real_array, require_npz
from ..scene import in_scene_band_order
from ..wavelengths import SAME_GRID_NM, check_wavelengths, grid_offset_nm, to_nm
from .endmembers import no_positive


def read_truth(path: str | os.PathLike, rows: int, cols: int, bands: int | None = None,
               wavelengths: np.ndarray | None = None, *, pixel_order: str | None = None,
               stored_order: tuple[np.ndarray, int] | None = None, mask: np.ndarray | None = None):
    """Ground truth from a benchmark ``.mat``, an ``.npz`` or a result folder.

    Returns a `GroundTruth` with endmembers ``(p, bands)`` and/or abundances
    ``(rows, cols, p)`` (an ``.npz`` may hold them as (p, rows, cols), (p, pixels) or
    (pixels, p)); ``rows``/``cols`` say how to unfold flat matrices (column-major, the MATLAB
    benchmark convention). Abundances must be fractions in
    [0, 1] (`InputError` otherwise, e.g. for percent); maps that do not sum to one are kept
    with a warning. NaN / Inf mark invalid pixels, which the metrics skip; so do the pixels
    outside ``mask (rows, cols)`` (the scene's or estimate's valid pixels), which the sum check
    leaves out too (a map-grid product's truth may hold 0 in its no-data corners). Endmembers that
    come with wavelengths (an ``.npz``'s ``wavelengths``, a result folder's) are put in
    increasing band order, and refused unless they are on the bands of ``wavelengths`` (nm,
    the scene's or estimate's; None: not checked). Endmembers without wavelengths are in the
    band order of the scene's file: where its reader reordered the bands (``stored_order``,
    `scene.stored_band_order` of the scene, or a result's ``stored_band_index`` and
    ``stored_bands``), they are put in the scene's order (`scene.in_scene_band_order`).

    ``pixel_order`` unfolds flat maps: "F" column-major, "C" row-major; None: "C" for HySUPP
    ``.mat`` files (``H``/``W``), "F" otherwise. Whether they fit an estimate better in the
    other order: `truth_orientation`.
    """
    if pixel_order not in (None, "F", "C"):
        raise ParameterError("pixel_order", pixel_order, "expected 'F' (column-major, MATLAB) or 'C' (row-major)")
    path = Path(path)
    gt = _read_truth(path, rows, cols, bands, wavelengths, pixel_order, stored_order)
    _check_truth_values(path, gt, rows, cols, mask)
    return gt


TRUTH_SLACK = 0.01
"""How far a reference abundance may stray outside [0, 1] (rounding of the stored values)."""


def _check_truth_values(path: Path, gt, rows: int, cols: int, mask: np.ndarray | None = None) -> None:
    """`InputError` unless the truth has one abundance map per endmember, spectra with a
    positive value and abundances that are fractions; a warning when its valid pixels (finite,
    and inside ``mask`` where given) do not sum to one (maps of another size are left to the
    caller to refuse)."""
    e, a = gt.endmembers, gt.abundances
    if e is not None and a is not None and e.shape[0] != a.shape[-1]:
        raise in_file(path, f"{e.shape[0]} endmembers but {a.shape[-1]} abundance maps; expected one map per "
                            "endmember")
    if e is not None:
        flat = no_positive(e)  # all zero or negative: no angle to a spectrum
        if flat.any():
            i = int(np.flatnonzero(flat)[0])
            name = gt.names[i] if gt.names is not None and len(gt.names) == len(e) else f"em{i + 1}"
            raise in_file(path, f"endmember {name!r} has no positive value; expected reflectance or radiance "
                                "spectra (>= 0)")
    if a is None or a.shape[:2] != (rows, cols):
        return
    ok = a[np.isfinite(a)]
    if ok.size and (ok.min() < -TRUTH_SLACK or ok.max() > 1 + TRUTH_SLACK):
        hint = " (percent? divide by 100)" if 1.5 < ok.max() <= 100 + TRUTH_SLACK and ok.min() >= -TRUTH_SLACK else ""
        raise in_file(path, f"abundances range from {ok.min():.4g} to {ok.max():.4g}; expected fractions in "
                            f"[0, 1]{hint}")
    flat = a.reshape(-1, a.shape[-1])
    counted = np.isfinite(flat).all(axis=1)
    if mask is not None and np.shape(mask) == (rows, cols):
        counted &= np.asarray(mask, bool).reshape(-1)
    sums = flat[counted].sum(axis=1, dtype=np.float64)
    off = np.abs(sums - 1) > TRUTH_SLACK
    if off.any():
        warnings.warn(f"{path}: abundances of {int(off.sum())} of {sums.size} pixels do not sum to one (sums "
                      f"{sums.min():.3g} to {sums.max():.3g}); they are compared as they are", UserWarning,
                      stacklevel=3)


def _read_truth(path: Path, rows: int, cols: int, bands: int | None, wavelengths: np.ndarray | None,
                pixel_order: str | None, stored_order: tuple[np.ndarray, int] | None):
    from ..scene import GroundTruth

    if not path.exists():
        raise in_file(path, "no such file or folder")
    if path.is_dir() or path.name == "result.npz":
        from ..runs.folder import load_result

        r = load_result(path)
        e = _truth_on_bands(path, r.get("endmembers"), r.get("wavelengths"), wavelengths, stored_order)
        return GroundTruth(e, r.get("abundances"), r.get("names"), str(path))
    ext = path.suffix.lower()
    if ext == ".mat":
        # with wavelengths (a scene .mat written here) the spectra are matched by them; without (a
        # benchmark's), they are on the bands of the scene's file, in its order
        gt, wl = matlab.read_truth_file(path, rows, cols, bands, pixel_order=pixel_order,
                                        stored_bands=None if stored_order is None else stored_order[1])
        return replace(gt, endmembers=_truth_on_bands(path, gt.endmembers, wl, wavelengths, stored_order))
    if ext == ".npz":
        require_npz(path, "ground truth: an .npz with 'endmembers' and/or 'abundances'")
        with reading(path, "read as .npz", also=(ValueError,)), np.load(path, allow_pickle=False) as z:
            e = real_array(z["endmembers"], "endmembers", path) if "endmembers" in z.files else None
            a = real_array(z["abundances"], "abundances", path) if "abundances" in z.files else None
            # a scene .npz (write_scene, simulate) keeps them as 'endmember_names'
            key = next((k for k in ("names", "endmember_names") if k in z.files), None)
            names = [str(n) for n in z[key]] if key else None
            wl = real_array(z["wavelengths"], "wavelengths", path) if "wavelengths" in z.files else None
        if e is None and a is None:
            raise in_file(path, "has neither 'endmembers' nor 'abundances'; expected ground truth")
        # the other layouts the .mat reader takes: (p, rows, cols) and (pixels, p)
        if a is not None and a.ndim == 3 and a.shape[:2] != (rows, cols) and a.shape[1:] == (rows, cols):
            a = np.ascontiguousarray(a.transpose(1, 2, 0))
        if a is not None and a.ndim == 2 and a.shape[0] == rows * cols != a.shape[1]:
            a = np.ascontiguousarray(a.T)
        _check_truth_shapes(path, e, a, names)
        e = _truth_on_bands(path, e, wl, wavelengths, stored_order)
        flat = a is not None and a.ndim == 2
        if flat:  # (p, pixels), column-major like the .mat files unless told
            if a.shape[1] != rows * cols:
                raise in_file(path, f"abundances hold {a.shape[1]} pixels; expected {rows}x{cols}")
            a = a.T.reshape((rows, cols, -1), order=pixel_order or "F")
        return GroundTruth(e, a, names, str(path), (pixel_order or "F") if flat else None)
    raise in_file(path, "unsupported ground-truth file; expected .mat, .npz or a result folder")


ORIENTATION_RATIO = 0.5
"""`truth_orientation` speaks when the truth in the other pixel order fits the estimate's
abundances with at most this fraction of the RMSE as read, and `ORIENTATION_MARGIN` lower."""


ORIENTATION_MARGIN = 2.0
"""Percentage points of abundance RMSE (see `ORIENTATION_RATIO`)."""


def truth_orientation(gt, abundances: np.ndarray | None, mask: np.ndarray | None = None) -> str | None:
    """What is wrong when the truth's abundances fit an estimate's ``(rows, cols, p)`` far better
    in the other pixel order (the other unfolding of flat ``(p, pixels)`` maps, or the transpose
    of a square scene's maps); None when they do not, or cannot be read otherwise.

    A wrong order scrambles a non-square scene's maps and transposes a square one's, with the
    shapes still matching; the scores would rate the unfolding, not the estimate. "Far better":
    the Hungarian-matched abundance RMSE at most `ORIENTATION_RATIO` of the one as read and
    `ORIENTATION_MARGIN` points lower (a spatially structured truth read wrongly is tens of
    percent off a good estimate; a poor estimate is about as far from both).
    """
    from ..evaluate.unmixing import matched_abundance_rmse

    t = gt.abundances
    if t is None or abundances is None or t.ndim != 3 or np.shape(abundances)[:2] != t.shape[:2]:
        return None
    rows, cols, p = t.shape
    if gt.pixel_order in ("F", "C"):
        other = "C" if gt.pixel_order == "F" else "F"
        alt = t.reshape(-1, p, order=gt.pixel_order).reshape((rows, cols, p), order=other)
        how = (f"unfolded {'row' if other == 'C' else 'column'}-major ({other}) instead of "
               f"{'row' if other == 'F' else 'column'}-major ({gt.pixel_order})")
        if rows == cols:
            how += ", i.e. transposed"
    elif rows == cols:
        alt = t.transpose(1, 0, 2)
        how = "transposed (rows and columns swapped)"
    else:
        return None

    est = np.asarray(abundances)
    try:  # block by block in float64: whole-map float64 copies took 0.8 GB for 2000 x 2000 x 4 maps
        as_read, other_way = matched_abundance_rmse(est, t, mask), matched_abundance_rmse(est, alt, mask)
    except InputError:  # no pixel valid in both: the scores will say so
        return None
    if other_way <= ORIENTATION_RATIO * as_read and as_read - other_way >= ORIENTATION_MARGIN:
        return (f"{gt.source}: the abundances fit the estimate far better {how} (RMSE {other_way:.3g} % against "
                f"{as_read:.3g} % as read): the truth's pixel order is not the estimate's")
    return None


def _truth_on_bands(path: Path, e: np.ndarray | None, wl, wavelengths: np.ndarray | None,
                    stored_order: tuple[np.ndarray, int] | None = None) -> np.ndarray | None:
    """Reference endmembers ``e (p, bands)`` stored with wavelengths ``wl`` (any length unit,
    any band order), in increasing band order; `InputError` unless they are on the bands of
    ``wavelengths`` (nm; None: not checked). Without ``wl``: in the scene's band order from
    its file's (`scene.in_scene_band_order`). Without ``e``: None."""
    if e is None:
        return e
    if wl is None:
        return in_scene_band_order(e, stored_order, str(path))
    wl = check_wavelengths(to_nm(np.asarray(wl, np.float64), what=f"{path}: wavelengths"), e.shape[1],
                           what=f"{path}: wavelengths", any_order=True)
    order = np.argsort(wl)
    e, wl = np.ascontiguousarray(e[:, order]), wl[order]
    if wavelengths is not None and grid_offset_nm(wl, wavelengths) > SAME_GRID_NM:
        w = np.asarray(wavelengths, np.float64)
        raise in_file(path, f"endmembers are on {wl.size} bands at {wl[0]:.6g}-{wl[-1]:.6g} nm, not the "
                            f"{w.size} bands at {w[0]:.6g}-{w[-1]:.6g} nm of the scene; expected the truth on "
                            "the same bands")
    return e


def _check_truth_shapes(path: Path, e: np.ndarray | None, a: np.ndarray | None, names: list[str] | None) -> None:
    """Ground truth of an .npz, checked before use: endmembers ``(p, bands)`` finite,
    abundances ``(rows, cols, p)`` or ``(p, pixels)``, p >= 1, one name per endmember."""
    if e is not None:
        if e.ndim != 2 or min(e.shape) < 1:
            raise in_file(path, f"endmembers have shape {e.shape}; expected (p, bands) with p >= 1")
        if not np.isfinite(e).all():
            raise in_file(path, "endmembers contain NaN/Inf; expected finite spectra")
    if a is not None and (a.ndim not in (2, 3) or min(a.shape) < 1):
        raise in_file(path, f"abundances have shape {a.shape}; expected (rows, cols, p) or (p, pixels) with p >= 1")
    matlab.check_names(path, names, e.shape[0] if e is not None else a.shape[-1] if a.ndim == 3 else a.shape[0])
