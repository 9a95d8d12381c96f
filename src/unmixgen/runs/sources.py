"""Inputs that are "a file *or* a run folder": endmembers, ground truth, abundance maps,
sensor band sets, training maps; and fitting endmembers to a scene's bands.

Endmember sources users name on the command line:

A source is one of

- a result folder of ``unmixgen unmix`` (its ``result.npz``),
- a CSV with a wavelength column and one column per endmember (``endmembers.csv``),
- an ``.npz`` with ``endmembers`` (p, bands) and optional ``wavelengths`` / ``names`` /
  ``units`` (one string, as a scene ``.npz`` holds it; anything else is refused),
- a benchmark's reference endmembers ``.mat`` (``M`` (bands, p), e.g. Samson's ``end3.mat``;
  no wavelengths: they must have the scene's bands; Zhu's Cuprite truth: ``M`` on all 224
  sensor bands with ``waveLength`` (um) and ``slctBnds``, cut to the scene's bands as
  ``M(slctBnds, :)``: `fit_to_bands`),
- an ENVI spectral library (``LIB.sli`` or its ``.hdr``; `unmixgen.io.sli`): all its spectra,
  with its wavelengths and ``spectra names``, channels marked missing (``data ignore value``,
  ``bbl``) as NaN; a run folder's ``endmembers.sli`` is one,
- named spectra of a spectral library, ``LIB.mat:name1,name2`` (the USGS 1995 library
  layout: ``datalib`` (bands, 3 + n) with wavelengths in um in column 0, spectra from
  column 3, and a ``names`` char array) or ``LIB.sli:name1,name2`` (an ENVI spectral
  library's ``spectra names``); both picked the same way (`pick_spectra`).
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError, ParameterError, check_range, in_file, reading
from ..evaluate.unmixing import match_endmembers
from ..evaluate.unmixing import sad as spectral_angles
from ..io import matlab
from ..io.checks import UNITS_EXAMPLES, refuse_complex, require_npz, scene_units, units_in_file
from ..io.sli import DELETED, LIBRARY_EXTENSIONS, header_beside, read_library
from ..scene import in_scene_band_order
from ..wavelengths import SAME_GRID_NM, check_wavelengths, grid_offset_nm, to_nm

if TYPE_CHECKING:  # the patch module imports torch: only load_training_maps needs it
    from ..priors.abundance.patches import TrainingMaps


@dataclass
class Endmembers:
    """Spectra ``(p, bands)`` float32 with their wavelengths (nm, increasing) when known, and
    their ``units``: the label the source gives (``"reflectance"``, ``"radiance"`` or a radiance
    unit such as ``"uW/(cm^2 sr nm)"``: a result folder's scene's; an ``.npz``'s ``units``; a
    library header's; the USGS library: reflectance), None where it gives none (a CSV, a
    benchmark ``.mat``)."""

    spectra: np.ndarray
    wavelengths: np.ndarray | None
    names: list[str]
    source: str
    units: str | None = None
    on_sensor_bands: bool = False
    """A benchmark ``.mat``'s ``M``: on the bands of its sensor, which a scene with fewer bands keeps
    a selection of (its ``slctBnds``, the scene's ``selected_bands``: `fit_to_bands`)."""
    selected_bands: np.ndarray | None = None
    """The 1-based sensor band numbers the ``.mat``'s ``slctBnds`` names (None: it names none)."""


SOURCES = ("a result folder, .csv, .npz, a benchmark .mat (M), an ENVI spectral library (.sli with its .hdr), "
           "LIB.mat:names or LIB.sli:names")
"""What `load_endmembers` reads, for error messages."""

NEGATIVE_WARN = 0.05  # a value below -5 % of its spectrum's peak is worth a warning


def load_endmembers(source: str | Path) -> Endmembers:
    """Read endmembers from any supported source (see module docstring).

    A spectrum without a positive value is refused (`InputError`): reflectance and radiance
    are >= 0. One dipping below -5 % of its peak is kept with a warning (noise in an
    absorption band can do that; an offset or an unmarked fill value can too)."""
    em = _read_endmembers(source)
    names = em.names if len(em.names) == len(em.spectra) else _default_names(len(em.spectra))
    for name, row, none in zip(names, em.spectra, _no_positive(em.spectra), strict=True):
        if none and (row < 0).any():  # all zero: `fit_to_bands` says so on the scene's bands
            raise in_file(em.source, f"endmember {name!r} has no positive value; expected reflectance or "
                                     "radiance spectra (>= 0)")
        ok = row[np.isfinite(row)]
        if ok.size and ok.min() < -NEGATIVE_WARN * ok.max():
            warnings.warn(f"{em.source}: endmember {name!r} goes down to {ok.min():.4g} (peak {ok.max():.4g}); "
                          "negative reflectance is not physical (an offset or a fill value?)", UserWarning,
                          stacklevel=2)
    return em


def _no_positive(spectra: np.ndarray) -> np.ndarray:
    """Bool per spectrum of ``spectra (p, bands)``: no value above zero (NaN is none), so no
    reflectance or radiance spectrum."""
    return ~(np.asarray(spectra) > 0).any(axis=1)


def _read_endmembers(source: str | Path) -> Endmembers:
    text = str(source)
    if ":" in text and not Path(text).exists():
        lib, _, names = text.rpartition(":")
        return load_library_spectra(lib, [n for n in names.split(",") if n.strip()])
    path = Path(text)
    if not path.exists():
        raise in_file(path, f"no such file or folder; expected {SOURCES}")
    if path.is_dir() or path.name == "result.npz":
        from .folder import load_result

        r = load_result(path)
        if "endmembers" not in r:
            raise in_file(path, "result has no endmembers")
        e = np.asarray(r["endmembers"], np.float32)
        good = r.get("good_bands")
        if good is not None:  # what the extraction left at the scene's bad bands is no spectrum: missing
            e = np.where(np.asarray(good, bool), e, np.float32(np.nan))
        return Endmembers(e, r.get("wavelengths"), r.get("names") or _default_names(len(e)), text,
                          scene_units(r.get("units")))
    ext = path.suffix.lower()
    if ext == ".csv":
        from .folder import read_endmembers_csv

        e, wl, names = read_endmembers_csv(path)
        return Endmembers(e, wl, names, text)
    if ext == ".npz":
        require_npz(path, "an .npz with 'endmembers' (p, bands)")
        with reading(path, "read as .npz", also=(ValueError,)), np.load(path, allow_pickle=False) as z:
            if "endmembers" not in z.files:
                raise in_file(path, f"has no 'endmembers' array (keys: {', '.join(z.files)})")
            e = _real(z["endmembers"], "endmembers", path)
            wl = to_nm(z["wavelengths"], what=f"{path}: wavelengths") if "wavelengths" in z.files else None
            names = [str(n) for n in z["names"]] if "names" in z.files else _default_names(len(e))
            units = _npz_units(z, path) if "units" in z.files else None
        if e.ndim != 2:
            raise in_file(path, f"endmembers have shape {e.shape}; expected (p, bands)")
        if not np.isfinite(e).all():
            raise in_file(path, "endmembers contain NaN/Inf; expected finite spectra")
        if wl is not None:
            wl = check_wavelengths(wl, e.shape[1], what=f"{path}: wavelengths")
        return Endmembers(e, wl, names, text, units)
    if ext == ".mat":
        e, names, wl, selected = matlab.read_reference_endmembers(path)
        return Endmembers(e, wl, names or _default_names(len(e)), text, on_sensor_bands=True,
                          selected_bands=selected)
    if ext in LIBRARY_EXTENSIONS or header_beside(path) is not None:  # an image header says what it is
        lib = read_library(path)
        names = lib.names or _default_names(len(lib.spectra))
        _require_measured(path, lib.spectra, names)
        return Endmembers(lib.spectra, lib.wavelengths, names, text, scene_units(lib.units))
    raise in_file(path, f"unsupported endmember source; expected {SOURCES}")


def _npz_units(z, path: Path) -> str | None:
    """The ``units`` label of an open ``.npz`` endmember source, as the scene reader takes it
    (`io.checks.units_in_file`: one string, bytes decoded; a label naming no quantity is None);
    `InputError` naming the file for anything else, an object array (pickle) included."""
    try:
        value = z["units"]
    except ValueError as exc:  # an object array: np.load refuses it without pickle
        raise in_file(path, f"'units' cannot be loaded ({exc}); expected one unit label: {UNITS_EXAMPLES}") from None
    return units_in_file(value, path)


def _require_measured(path: Path, spectra: np.ndarray, names: list[str]) -> None:
    """`InputError` naming the first of ``spectra (n, bands)`` whose every channel is missing
    (NaN: deleted, ignored or a bad channel of its library)."""
    empty = np.isnan(spectra).all(axis=1)
    if empty.any():
        raise in_file(path, f"spectrum {names[int(np.argmax(empty))]!r} has every channel missing (deleted or "
                            "marked bad); expected a measured spectrum")


def read_usgs_library(library: str | Path, *, need_names: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """A USGS-1995-layout library .mat: ``datalib`` (bands, 3 + n) with wavelengths (um) in
    its first column and one spectrum per column from the fourth; ``names`` one row of
    characters per column. Returns ``(data (bands, 3 + n) float64 sorted by wavelength,
    wavelengths nm (bands,), names or None)``, deleted channels of the spectra (marked
    -1.23e34 by USGS) as NaN; `InputError` naming the file otherwise."""
    from scipy.io import loadmat

    path = Path(library)
    if not path.is_file():
        raise in_file(path, "no such spectral library file")
    try:
        m = loadmat(path)
    except Exception as exc:
        raise in_file(path, f"cannot read as a MATLAB file ({exc})") from None
    if "datalib" not in m or (need_names and "names" not in m):
        raise in_file(path, "not a spectral library in the USGS 1995 layout (needs 'datalib'"
                            + (" and 'names')" if need_names else ")"))
    data = np.asarray(m["datalib"])
    if data.dtype.kind not in "fiu" or data.ndim != 2 or data.shape[1] < 4 or data.shape[0] < 2:
        raise in_file(path, f"'datalib' is {data.dtype} of shape {data.shape}; expected numbers (bands, 3 + spectra) "
                            "with wavelengths (um) in the first column")
    data = data.astype(np.float64)
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    if not np.isfinite(data[:, 0]).all() or data[0, 0] <= 0 or not (np.diff(data[:, 0]) > 0).all():
        raise in_file(path, "'datalib' wavelengths (first column) are not finite, positive and distinct; "
                            "expected um")
    # USGS libraries mark deleted channels with -1.23e34: missing, never a reflectance
    spectra = data[:, 3:]
    if not np.isfinite(spectra).all():
        raise in_file(path, "'datalib' spectra hold NaN/Inf; expected reflectances (deleted channels as -1.23e34)")
    spectra[spectra <= DELETED] = np.nan  # the USGS libraries' deleted channels (-1.23e34)
    names = None
    if "names" in m:
        raw = np.asarray(m["names"])
        if raw.dtype.kind == "U":  # a MATLAB char matrix: one string per row
            names = [str(r).strip() for r in raw.reshape(-1)]
        elif raw.dtype.kind in "iu":  # character codes, one row per name (the USGS file)
            names = [bytes(np.asarray(r, np.uint8).reshape(-1)).decode("latin1").strip() for r in np.atleast_2d(raw)]
        else:
            raise in_file(path, f"'names' is {raw.dtype}; expected text or character codes, one row per 'datalib' "
                                "column")
        if len(names) != data.shape[1]:
            raise in_file(path, f"{len(names)} names for {data.shape[1]} 'datalib' columns; expected one per column")
    return data, to_nm(data[:, 0], "um"), names


def load_library_spectra(library: str | Path, names: list[str]) -> Endmembers:
    """Pick spectra by name (`pick_spectra`) from a spectral library: a USGS-1995-layout
    ``.mat`` or an ENVI spectral library (the data file or its ``.hdr``)."""
    path = Path(library)
    if not names:
        raise in_file(path, f"no spectrum names given; expected {path.name}:name1,name2")
    if path.suffix.lower() == ".mat":
        data, wl, all_names = read_usgs_library(path)
        spectra, picked = pick_spectra(path, data[:, 3:].T, all_names[3:], names)
        units = "reflectance"  # the USGS spectral library's layout: reflectance spectra
    elif path.suffix.lower() in LIBRARY_EXTENSIONS or (path.exists() and header_beside(path) is not None):
        lib = read_library(path)
        if lib.names is None:
            raise in_file(lib.header, "header lists no 'spectra names' to pick from; expected them, or the library "
                                      "without ':names' for all its spectra")
        spectra, picked = pick_spectra(path, lib.spectra, lib.names, names)
        wl, units = lib.wavelengths, scene_units(lib.units)
    else:
        raise in_file(path, "is not a spectral library to pick spectra from; expected LIB.mat:names (USGS 1995 "
                            "layout) or LIB.sli:names (an ENVI spectral library with its .hdr)")
    return Endmembers(spectra, wl, picked, f"{path}:{','.join(names)}", units)


def pick_spectra(library: str | Path, spectra: np.ndarray, all_names: list[str], wanted: list[str]
                 ) -> tuple[np.ndarray, list[str]]:
    """The rows of ``spectra (n, bands)`` named by ``wanted``, in that order, as float32, with
    their full names. A wanted name matches case-insensitively, as a substring; an exact match
    wins over the first substring match. `InputError` naming ``library`` for a name that
    matches none (with similar names as a hint) or a spectrum missing every channel."""
    rows, picked = [], []
    for want in wanted:
        key = want.strip().lower()
        hits = [i for i, name in enumerate(all_names) if key in name.lower()]
        exact = [i for i in hits if all_names[i].lower() == key]
        if not hits:
            close = [n for n in all_names if key[:4] in n.lower()][:5]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise in_file(library, f"no spectrum named {want!r}{hint}")
        i = (exact or hits)[0]
        if np.isnan(spectra[i]).all():
            raise in_file(library, f"spectrum {all_names[i]!r} has every channel missing (deleted or marked "
                                   "bad); expected a measured spectrum")
        rows.append(spectra[i])
        picked.append(all_names[i])
    return np.asarray(rows, np.float32), picked


def fit_to_bands(em: Endmembers, scene_wl: np.ndarray | None, scene_bands: int, *,
                 stored_order: tuple[np.ndarray, int] | None = None,
                 selected: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Endmembers on the scene's bands, and the bands they cover.

    Returns ``(E (p, bands) float32, covered (bands,) bool)``. Same wavelengths (or no
    wavelengths and the same band count): used as they are. Endmembers without wavelengths
    are on the bands of the scene's file, in its order: where the scene's reader reordered
    them (``stored_order``: `scene.stored_band_order`), they are put in the scene's order. Different wavelengths that
    overlap the scene's: linearly interpolated onto the scene bands inside the endmembers'
    range; bands outside it are marked not covered and hold NaN (the caller unmixes on
    covered bands).
    A library's missing channels (NaN: deleted, ignored or bad) leave the scene bands next to
    them not covered.
    No overlap: `InputError`.

    A benchmark ``.mat``'s ``M`` on more bands than the scene (Zhu's Cuprite truth: all 224
    sensor bands) is cut to the sensor bands its ``slctBnds`` or the scene's ``selected``
    (``metadata["selected_bands"]``, "1:3,5") name, as published code applies it
    (``M(slctBnds, :)``), unless both sides have wavelengths and the scene names no selection
    (resampled by them instead); `InputError` when the two selections differ or name another
    number of bands than the scene's.
    """
    em = _on_selected_bands(em, scene_wl, scene_bands, selected)
    e = em.spectra
    if em.wavelengths is None:
        e = in_scene_band_order(e, stored_order, em.source)
    p, b = e.shape
    if em.wavelengths is None or scene_wl is None:
        if b != scene_bands:
            raise InputError(
                f"{em.source}: {b} endmember bands but the scene has {scene_bands}, and wavelengths are "
                "missing on one side; expected the same bands or wavelengths on both"
            )
        return _distinct(em, e, np.isfinite(e).all(axis=0))
    ewl = np.asarray(em.wavelengths, np.float64)
    if grid_offset_nm(ewl, scene_wl) <= SAME_GRID_NM:
        return _distinct(em, e, np.isfinite(e).all(axis=0))
    tol = SAME_GRID_NM
    covered = (scene_wl >= ewl[0] - tol) & (scene_wl <= ewl[-1] + tol)
    if covered.sum() < 2:
        raise InputError(
            f"{em.source}: endmember wavelengths {ewl[0]:.0f}-{ewl[-1]:.0f} nm do not overlap the scene's "
            f"{scene_wl[0]:.0f}-{scene_wl[-1]:.0f} nm; expected spectra covering the scene's bands"
        )
    out = np.full((p, scene_bands), np.nan, np.float32)  # not known outside their range
    x = np.clip(scene_wl[covered], ewl[0], ewl[-1])
    for i in range(p):
        out[i, covered] = np.interp(x, ewl, e[i])  # NaN next to a library's deleted channel
    return _distinct(em, out, covered & np.isfinite(out).all(axis=0))


def _on_selected_bands(em: Endmembers, scene_wl: np.ndarray | None, scene_bands: int,
                       selected: str | None) -> Endmembers:
    """``em`` cut to the scene's sensor bands where `fit_to_bands` says so, else as it is."""
    b = em.spectra.shape[1]
    if not em.on_sensor_bands or b <= scene_bands:
        return em
    if selected is None and (em.selected_bands is None or (em.wavelengths is not None and scene_wl is not None)):
        return em  # nothing names the scene's bands, or both wavelengths do
    theirs = em.selected_bands
    kept = matlab.band_numbers(selected) if selected is not None else None
    if theirs is not None and kept is not None and not np.array_equal(theirs, kept):
        raise InputError(f"{em.source}: slctBnds keeps sensor bands {matlab.band_ranges(theirs)} but the scene keeps "
                         f"{selected}; expected the endmembers of the scene's bands")
    idx = kept if kept is not None else theirs
    what = f"the scene's selected bands {selected}" if kept is not None else \
        f"slctBnds ({matlab.band_ranges(theirs)})"
    if idx.size != scene_bands or idx.max() > b:
        raise InputError(f"{em.source}: {what} name {idx.size} of the {b} endmember bands but the scene has "
                         f"{scene_bands} bands; expected a selection of the scene's bands")
    wl = None if em.wavelengths is None else em.wavelengths[idx - 1]
    return replace(em, spectra=np.ascontiguousarray(em.spectra[:, idx - 1]), wavelengths=wl,
                   on_sensor_bands=False, selected_bands=None)


def _distinct(em: Endmembers, E: np.ndarray, covered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(E, covered)`` once every endmember is nonzero and no two are identical on the
    ``covered`` bands (either leaves the abundances undetermined: a zero spectrum takes any
    share, two equal ones split theirs arbitrarily); `InputError` naming them otherwise."""
    names = em.names if len(em.names) == len(E) else _default_names(len(E))
    on = np.asarray(E, np.float64)[:, covered]
    for i in range(len(on)):
        if not np.any(on[i]):
            raise InputError(f"{em.source}: endmember {names[i]!r} is zero on every band of the scene; expected a "
                             "spectrum")
        for j in range(i):
            if np.array_equal(on[i], on[j]):
                raise InputError(f"{em.source}: endmembers {names[j]!r} and {names[i]!r} are identical on the "
                                 "scene's bands; expected distinct spectra")
    return E, covered


def _default_names(p: int) -> list[str]:
    return [f"em{i + 1}" for i in range(p)]


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
        flat = _no_positive(e)  # all zero or negative: no angle to a spectrum
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
            e = _real(z["endmembers"], "endmembers", path) if "endmembers" in z.files else None
            a = _real(z["abundances"], "abundances", path) if "abundances" in z.files else None
            # a scene .npz (write_scene, simulate) keeps them as 'endmember_names'
            key = next((k for k in ("names", "endmember_names") if k in z.files), None)
            names = [str(n) for n in z[key]] if key else None
            wl = _real(z["wavelengths"], "wavelengths", path) if "wavelengths" in z.files else None
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


def _real(value, key: str, path: Path) -> np.ndarray:
    """Array ``key`` of an .npz as float32, refused unless its values are real numbers (text
    would fail later, complex values would lose their imaginary part silently)."""
    v = np.asarray(value)
    refuse_complex(v.dtype, path, f"{key!r}")
    if v.dtype.kind not in "biuf":
        raise in_file(path, f"{key!r} has type {v.dtype}; expected numbers")
    return v.astype(np.float32)


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


def _from_npz(path: Path) -> tuple[np.ndarray, list[str] | None]:
    require_npz(path, "an .npz with 'abundances'")
    with reading(path, "read as .npz", also=(ValueError,)), np.load(path, allow_pickle=False) as z:
        if "abundances" not in z.files:
            raise in_file(path, f"has no 'abundances' array (keys: {', '.join(z.files)}); "
                                "expected abundances (N, rows, cols, p) or (rows, cols, p)")
        a = _real(z["abundances"], "abundances", path)
        names = None
        for key in ("names", "endmember_names"):
            if key in z.files:
                names = [str(n) for n in np.asarray(z[key]).reshape(-1)]  # one name given as a scalar too
    return a, names


def load_abundance_maps(source: str | Path, *, nodata: bool = False) -> tuple[np.ndarray, list[str] | None]:
    """Abundance maps ``(N, rows, cols, p)`` float32 and endmember names (or None).

    ``source``: an ``.npz`` with ``abundances`` ((N, rows, cols, p) or (rows, cols, p)), an
    ``unmix`` result folder (its ``result.npz``) or a ``synthesize`` output folder
    (``abundances.npz``). ``nodata``: pixels NaN in every map of an endmember set (a result's
    invalid pixels, a map-grid product's corners) are kept as NaN; otherwise, and for a pixel
    NaN in some maps only, `InputError`.
    """
    path = Path(source)
    if not path.exists():
        raise in_file(path, "no such file or folder; expected an .npz with 'abundances', "
                            "a result folder or a synthesize output folder")
    if path.is_dir():
        if (path / "abundances.npz").is_file():
            a, names = _from_npz(path / "abundances.npz")
        elif (path / "result.npz").is_file():
            a, names = _from_npz(path / "result.npz")
        elif (path / "config.json").is_file():
            raise in_file(path, "is a model folder (config.json), which holds no maps; expected maps: an "
                                "output folder of synthesize_maps (`unmixgen synthesize`) made from it, an .npz or a result folder")
        else:
            raise in_file(path, "folder has neither abundances.npz (synthesize output) nor "
                                "result.npz (unmix result)")
    elif path.suffix.lower() == ".npz":
        a, names = _from_npz(path)
    else:
        raise in_file(path, "unsupported abundance source; expected an .npz with 'abundances' or a folder")
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise in_file(path, f"abundances have shape {a.shape}; expected (N, rows, cols, p) or (rows, cols, p)")
    if not np.all(np.isfinite(a)):
        invalid = ~np.isfinite(a).all(-1)
        whole = ~np.isfinite(a).any(-1)
        if not nodata:
            raise in_file(path, f"abundances have {int(invalid.sum())} invalid (NaN) pixels; expected complete maps")
        if (invalid & ~whole).any():
            raise in_file(path, f"abundances have {int((invalid & ~whole).sum())} pixels NaN in some maps but not all; "
                                "expected numbers in every map, or NaN in every map (no-data)")
        if whole.all(axis=(1, 2)).any():
            raise in_file(path, "a set of abundance maps has no valid pixel; expected maps with numbers")
    return a, names


def _csv_rows(path: Path) -> list[list[str]]:
    """The rows of a CSV file, without empty and ``#`` comment rows; utf-8-sig: a byte-order
    mark (Excel's "CSV UTF-8") would make the header, or the first number, unreadable."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            return [r for r in csv.reader(f) if r and not r[0].lstrip().startswith("#")]
    except OSError as exc:
        raise in_file(path, f"cannot read ({exc.strerror})") from None


def _sensor_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = _csv_rows(path)
    if not rows:
        raise in_file(path, "empty; expected columns centre,fwhm in nm")
    header = [h.strip().lower() for h in rows[0]]
    body = rows[1:]
    try:
        float(header[0])
        body, header = rows, []
    except ValueError:
        pass
    ci, fi = 0, 1
    if header:
        cands_c = [i for i, h in enumerate(header) if h.startswith(("centre", "center", "wavelength", "wl"))]
        cands_f = [i for i, h in enumerate(header) if h.startswith(("fwhm", "width", "bandwidth"))]
        if not cands_c or not cands_f:
            raise in_file(path, f"header {rows[0]} has no centre and fwhm columns; expected 'centre,fwhm' (nm)")
        ci, fi = cands_c[0], cands_f[0]
    else:
        widths = sorted({len(r) for r in body})
        if widths != [2]:
            raise in_file(path, f"rows of {', '.join(map(str, widths))} unlabelled columns; expected two (centre,fwhm "
                                "in nm), or a header naming the 'centre' and 'fwhm' columns")
    try:
        data = np.array([[float(r[ci]), float(r[fi])] for r in body], np.float64)
    except (ValueError, IndexError) as exc:
        raise in_file(path, f"bad row ({exc}); expected numbers in the centre and fwhm columns") from None
    if len(data) < 1:
        raise in_file(path, "no bands; expected one row per band: centre,fwhm in nm")
    return data[:, 0], data[:, 1]


def load_sensor(source: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Band centres and FWHM ``(K,), (K,)`` in nm, by increasing wavelength, from a CSV or a
    scene file (`load_sensor_bands` without the row order)."""
    centres, fwhm, _ = load_sensor_bands(source)
    return centres, fwhm


def load_sensor_bands(source: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Band centres and FWHM ``(K,), (K,)`` in nm, by increasing wavelength, and the order that
    sorted a CSV's rows (None when they were sorted already, and for a scene file).

    CSV: a header naming a centre column (``centre``/``center``/``wavelength``) and a
    ``fwhm`` column, or two unlabelled columns centre, fwhm; rows in any order (a sensor's
    detectors one after the other, VNIR then SWIR, overlapping), centres distinct. Scene file
    (anything `unmixgen.io.read_scene` reads, which sorts its bands): its wavelengths and FWHM;
    without FWHM the band spacing is used as FWHM.
    """
    path = Path(source)
    if not path.exists():
        raise in_file(path, "no such sensor file; expected a CSV (centre,fwhm in nm) or a scene file")
    order = None
    if path.suffix.lower() == ".csv":
        centres, fwhm = _sensor_csv(path)
        if not (np.all(np.isfinite(centres)) and np.all(np.isfinite(fwhm))):
            raise in_file(path, "band centres and FWHM must be finite numbers (nm)")
        if np.any(np.diff(centres) <= 0):  # detectors listed one after the other: sorted, as the readers do
            order = np.argsort(centres, kind="stable")
            centres, fwhm = centres[order], fwhm[order]
            same = np.flatnonzero(np.diff(centres) == 0)
            if same.size:
                raise in_file(path, f"two bands at {centres[same[0]]:g}; expected distinct band centres (keep one "
                                    "detector's copy of a band)")
    else:
        from ..io import read_scene

        scene = read_scene(path)
        if scene.wavelengths is None:
            raise in_file(path, "scene has no wavelengths; expected band centres in nm for sensor (`--sensor`)")
        centres = scene.wavelengths
        fwhm = scene.fwhm if scene.fwhm is not None else (
            np.gradient(centres) if centres.size > 1 else np.ones(1))
    if np.any(np.diff(centres) <= 0) or not np.all(np.isfinite(centres)):
        raise in_file(path, "band centres must be finite and strictly increasing (nm)")
    if np.any(fwhm <= 0) or not np.all(np.isfinite(fwhm)):
        raise in_file(path, "FWHM values must be finite and positive (nm)")
    if np.nanmax(centres) < 100:  # micrometres
        centres, fwhm = centres * 1e3, fwhm * 1e3
    return centres.astype(np.float64), np.asarray(fwhm, np.float64), order


def _label_for(folder: Path, result: dict, label_from: str) -> str | None:
    if label_from == "none":
        return None
    if label_from == "folder":
        return folder.name
    run = result.get("run")
    run = run if isinstance(run, dict) else {}  # a run.json holding a list or a string names nothing
    params = run.get("parameters")
    method = (params.get("method") if isinstance(params, dict) else None) or run.get("method")
    if not method:
        raise in_file(folder, "run.json names no unmixing method; expected label_from='folder' or 'none' for this folder")
    return str(method)


def load_training_maps(folders: list[str | Path], *, label_from: str = "none",
                       max_sad: float = 0.3) -> TrainingMaps:
    """Read the abundance maps of ``unmix`` result folders, matching endmembers to the first.

    Raises `InputError` for missing maps, differing band / endmember counts, or a poor match.
    """
    from ..priors.abundance.patches import TrainingMaps
    from .folder import load_result

    check_range("max_sad", max_sad, low=0, low_open=True, high=3.1416)
    if label_from not in ("none", "folder", "method"):
        raise ParameterError("label_from", label_from, "expected one of folder, method, none")
    if not folders:
        raise ParameterError("folders", [], "expected one or more output folders of unmix_scene (`unmixgen unmix`)")
    maps, labels, sources, match = [], [], [], []
    ref_e = None
    ref_p = None
    names: list[str] = []
    for i, folder in enumerate(folders):
        folder = Path(folder)
        res = load_result(folder)
        if "abundances" not in res:
            raise in_file(folder, "result.npz holds no abundances; expected the output of unmix_scene (`unmixgen unmix`)")
        a = np.asarray(res["abundances"], np.float32)
        if a.ndim != 3 or a.shape[-1] < 2:
            raise in_file(folder, f"abundances have shape {a.shape}; expected (rows, cols, p) with p >= 2")
        e = res.get("endmembers")
        if "mask" in res:
            m = np.asarray(res["mask"], bool)
            if m.shape == a.shape[:2]:
                a = np.where(m[..., None], a, np.nan).astype(np.float32)
        if i == 0:
            ref_p, ref_e = a.shape[-1], e
            names = list(res.get("names") or [f"em{k + 1}" for k in range(ref_p)])
            perm, sad = np.arange(ref_p), np.zeros(ref_p)
        else:
            if a.shape[-1] != ref_p:
                raise in_file(folder, f"has {a.shape[-1]} endmembers but {folders[0]} has {ref_p}; "
                              "train one model per endmember set")
            if e is None or ref_e is None:
                raise in_file(folder, "has no endmember spectra to match against the first folder; "
                              "expected endmembers in result.npz")
            if e.shape[1] != ref_e.shape[1]:
                raise in_file(folder, f"endmembers have {e.shape[1]} bands but {folders[0]} has "
                              f"{ref_e.shape[1]}; maps of different sensors cannot be matched")
            perm = match_endmembers(e, ref_e, by="sad")
            sad = np.radians(spectral_angles(e[perm], ref_e))
            if sad.max() > max_sad:
                raise in_file(folder, f"endmembers do not match those of {folders[0]} (worst spectral "
                              f"angle {sad.max():.2f} rad > {max_sad} rad); train separate models")
            a = a[..., perm]
        maps.append(a)
        labels.append(_label_for(folder, res, label_from))
        sources.append(str(folder))
        match.append({"folder": str(folder), "permutation": perm.tolist(), "sad_rad": np.round(sad, 4).tolist()})
    return TrainingMaps(maps, names, None if label_from == "none" else labels, sources, match)


SCALE_FACTOR = 3.0
"""How far the scene's typical pixel brightness may lie outside the endmembers' range before
`scale_mismatch` speaks (brightness variability of real scenes stays well within it)."""


def scale_mismatch(scene, E: np.ndarray, bands: np.ndarray) -> str:
    """A sentence when the scene's pixels (a sample) are far brighter or darker than any
    mixture of the endmembers ``E`` (p, bands) can be, on ``bands`` (bool per scene band);
    "" otherwise. Under sum-to-one a pixel's mean is within the endmembers' means, so a
    median pixel SCALE_FACTOR times outside them means another scale (reflectance 0-1
    against 0-10000 or percent), which FCLS cannot absorb."""
    from ..scene import sample_valid_pixels

    Y = sample_valid_pixels(scene)
    if not len(Y):
        return ""
    pixel = float(np.median(Y[:, bands].mean(axis=1)))
    means = np.asarray(E, np.float64)[:, bands].mean(axis=1)
    lo, hi = float(means.min()), float(means.max())
    if hi <= 0:
        return ""
    if pixel > SCALE_FACTOR * hi or pixel < lo / SCALE_FACTOR:
        return (f"the scene's median pixel mean ({pixel:.4g}) lies outside the endmembers' means ({lo:.4g} to "
                f"{hi:.4g}) by a factor {max(pixel / hi, lo / max(pixel, 1e-30)):.1f}: are they on the same "
                "scale (e.g. reflectance 0-1 against 0-10000 or percent)? Sum-to-one abundances cannot absorb "
                "it; rescale one of them or use method 'scaled' (a brightness per pixel; `--method scaled`)")
    return ""


def load_band_noise(source: str | Path) -> np.ndarray:
    """A noise standard deviation per band ``(B,)`` float64 (relative: only the shape is used),
    for simulating a sensor's noise profile (`unmixgen.simulate.mixing.add_noise`'s
    ``band_std``).

    CSV: one positive number per band (one per row, or a ``noise_std`` column under a header).
    Scene file (anything `unmixgen.io.read_scene` reads): the scene's own noise, the std of
    each good band's HySime regression residual (`unmixgen.unmix.rank.estimate_noise`) on
    about 20,000 valid pixels of evenly spaced rows (`unmixgen.unmix.rank.band_noise_variance`: a
    band made from the others is not taken for a noise-free one), a bad band (the water
    absorptions a producer flags) the largest.
    `InputError` naming the file otherwise.
    """
    path = Path(source)
    if not path.exists():
        raise in_file(path, "no such file; expected a CSV with one noise std per band, or a scene file")
    if path.suffix.lower() == ".csv":
        std = _band_noise_csv(path)
    else:
        from ..io import read_scene
        from ..unmix.rank import (
            NOISE_PIXELS_PER_BAND,
            band_noise_std,
            band_noise_variance,
            enough_for_band_noise,
            estimate_noise,
        )

        scene = read_scene(path)
        good = np.asarray(scene.good_bands, bool)
        Y = scene.row_sample()[:, good]
        n_good = int(good.sum())
        if not enough_for_band_noise(Y.shape[0], n_good):
            need = NOISE_PIXELS_PER_BAND * n_good
            raise in_file(path, f"{Y.shape[0]} valid pixels in the rows sampled for {n_good} good bands; expected at "
                                f"least {need} pixels and 2 good bands to estimate its noise per band")
        var = band_noise_variance(Y, estimate_noise(Y)[1])
        good_std = band_noise_std(var) if np.isfinite(var).all() else None
        if good_std is None:
            raise in_file(path, "no noise found in any band (a noise-free or constant scene); expected a scene "
                                "with sensor noise")
        std = np.full(good.size, good_std.max())
        std[good] = good_std
    return std


def _band_noise_csv(path: Path) -> np.ndarray:
    rows = _csv_rows(path)
    col = 0
    if rows:
        header = [h.strip().lower() for h in rows[0]]
        try:
            float(header[0])
        except ValueError:
            if "noise_std" not in header:
                raise in_file(path, f"header {rows[0]} has no noise_std column; expected one noise std per band") \
                    from None
            col, rows = header.index("noise_std"), rows[1:]
        else:
            wide = next((i for i, r in enumerate(rows, start=1) if len([v for v in r if v.strip()]) > 1), None)
            if wide is not None:  # wavelength,std without a header: the first column is not the noise
                raise in_file(path, f"row {wide} holds {len([v for v in rows[wide - 1] if v.strip()])} values; "
                                    "expected one noise std per row, or a header naming the noise_std column "
                                    "(e.g. wavelength_nm,noise_std)")
    try:
        std = np.array([float(r[col]) for r in rows], np.float64)
    except (ValueError, IndexError) as exc:
        raise in_file(path, f"bad row ({exc}); expected one number (a noise std) per band") from None
    if std.size == 0 or not np.all(np.isfinite(std)) or (std <= 0).any():
        raise in_file(path, "expected one positive finite noise std per band (at least one band)")
    return std
