"""Endmember sources users name on the command line, read into `Endmembers`, and fitted to a
scene's bands (`fit_to_bands`).

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

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError, in_file, reading
from ..io import matlab
from ..io.checks import (
    UNITS_EXAMPLES,
    real_array,
    require_npz,
    scene_units,
    units_in_file,
)
from ..io.sli import DELETED, LIBRARY_EXTENSIONS, header_beside, read_library
from ..scene import in_scene_band_order
from ..wavelengths import SAME_GRID_NM, check_wavelengths, grid_offset_nm, to_nm


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
    for name, row, none in zip(names, em.spectra, no_positive(em.spectra), strict=True):
        if none and (row < 0).any():  # all zero: `fit_to_bands` says so on the scene's bands
            raise in_file(em.source, f"endmember {name!r} has no positive value; expected reflectance or "
                                     "radiance spectra (>= 0)")
        ok = row[np.isfinite(row)]
        if ok.size and ok.min() < -NEGATIVE_WARN * ok.max():
            warnings.warn(f"{em.source}: endmember {name!r} goes down to {ok.min():.4g} (peak {ok.max():.4g}); "
                          "negative reflectance is not physical (an offset or a fill value?)", UserWarning,
                          stacklevel=2)
    return em


def no_positive(spectra: np.ndarray) -> np.ndarray:
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
            e = real_array(z["endmembers"], "endmembers", path)
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
