"""Spectral axes: unit normalisation to nanometres.

Every `Scene` carries wavelengths in nm, float64, strictly increasing. Readers call
`to_nm` with whatever the file says about units; when the file says nothing the unit is
inferred from the magnitude (values below 100 are micrometres: no imaging spectrometer
measures below 100 nm, and none measures beyond 100 um).
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np

from .errors import InputError

_UNITS_TO_NM = {
    "nm": 1.0,
    "nanometer": 1.0,
    "nanometers": 1.0,
    "nanometre": 1.0,
    "nanometres": 1.0,
    "um": 1e3,
    "µm": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "micrometer": 1e3,
    "micrometers": 1e3,
    "micrometre": 1e3,
    "micrometres": 1e3,
    "mm": 1e6,
    "millimeter": 1e6,
    "millimeters": 1e6,
    "cm": 1e7,
    "centimeter": 1e7,
    "centimeters": 1e7,
    "m": 1e9,
    "meters": 1e9,
    "angstrom": 0.1,
    "angstroms": 0.1,
}

# Units of the reciprocal of a length (wavenumbers, as FTIR and some airborne headers store
# them) or of frequency: nm = constant / value.
_RECIPROCAL_TO_NM = {
    "wavenumber": 1e7,  # cm^-1, ENVI's "Wavenumber"
    "wavenumbers": 1e7,
    "cm-1": 1e7,
    "cm^-1": 1e7,
    "1/cm": 1e7,
    "ghz": 299_792_458.0,  # c / f: 299792458 m/s over f in GHz gives nm
    "mhz": 299_792_458.0e3,
}


#: band centres an imaging spectrometer or a spectral library can have (nm): extreme UV to the far
#: infrared of FTIR libraries (USGS spectra reach 216 um). A declared unit that puts them outside
#: is the wrong one (nm values labelled micrometers: 400-2500 um)
PLAUSIBLE_NM = (100.0, 300_000.0)


def _plausible(nm: np.ndarray, stored: np.ndarray, units, what: str) -> np.ndarray:
    """``nm`` when its finite positive values lie in `PLAUSIBLE_NM`, else `InputError` saying which unit
    the ``stored`` values look like."""
    used = np.isfinite(nm) & (nm > 0)  # zero and negative slots are unused ones (PRISMA) or refused later
    finite = nm[used]
    if not finite.size or (PLAUSIBLE_NM[0] <= finite.min() and finite.max() <= PLAUSIBLE_NM[1]):
        return nm
    raw = stored[used]
    looks = "nanometres" if raw.min() >= PLAUSIBLE_NM[0] else "micrometres" if raw.max() < 100 else "another unit"
    raise InputError(f"{what} declared in {str(units).strip()!r} come to {finite.min():g}-{finite.max():g} nm, outside "
                     f"any spectrometer's range ({PLAUSIBLE_NM[0]:g} nm - {PLAUSIBLE_NM[1] / 1e3:g} um); the values "
                     f"({raw.min():g}-{raw.max():g}) look like {looks}: expected the unit the values are in")


def to_nm(values, units: str | None = None, *, what: str = "wavelengths", centres: bool = True) -> np.ndarray:
    """Convert a wavelength vector to nanometres (float64).

    Parameters
    ----------
    values : array-like of shape (bands,)
        Wavelengths as stored in a file.
    units : str or None
        The unit the file declares (``"Micrometers"``, ``"nm"``, ...; case-insensitive).
        ``None`` or ``"unknown"`` infers it from the magnitude. Wavenumbers (``"Wavenumber"``,
        cm^-1) and frequencies (``"GHz"``, ``"MHz"``) are converted too; their band order comes
        out reversed, which the readers' band arrangement sorts.
    what : str
        Name used in error messages.
    centres : bool
        The values are band centres (not widths): a declared length unit that puts them outside
        `PLAUSIBLE_NM` is refused.

    Raises
    ------
    InputError
        When the values are not numbers, the unit is neither a length nor a wavenumber or
        frequency (e.g. band indices), reciprocal values are not positive, or declared centres
        come out implausible (nm values labelled micrometers).
    """
    try:
        wl = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} are not numbers ({exc}); expected lengths in nm or um") from None
    if units is not None:
        key = str(units).strip().lower()
        if key in ("", "unknown", "none"):
            units = None
        elif key in _UNITS_TO_NM:
            nm = wl * _UNITS_TO_NM[key]
            return _plausible(nm, wl, units, what) if centres else nm
        elif key in _RECIPROCAL_TO_NM:
            if not np.all(np.isfinite(wl)) or np.any(wl <= 0):
                raise InputError(f"{what} in {units!r} must be finite and positive to give wavelengths; "
                                 f"found {wl[~(np.isfinite(wl) & (wl > 0))][0]:g}")
            return _RECIPROCAL_TO_NM[key] / wl
        else:
            raise InputError(
                f"{what} have unit {units!r}, which is not a length; expected nm, micrometers or wavenumbers (cm^-1)"
            )
    finite = wl[np.isfinite(wl)]
    if finite.size and np.nanmax(np.abs(finite)) < 100.0:
        return wl * 1e3
    return wl


def unit_kind(units) -> str | None:
    """What `to_nm` takes ``units`` (any case) for: ``"length"`` (nm, micrometers, ...),
    ``"reciprocal"`` (wavenumbers, frequencies: nm = constant / value) or None (no unit,
    ``"unknown"``, or a unit that is neither, such as band numbers)."""
    if units is None:
        return None
    key = str(units).strip().lower()
    return "length" if key in _UNITS_TO_NM else "reciprocal" if key in _RECIPROCAL_TO_NM else None


def check_wavelengths(wl: np.ndarray, bands: int, *, what: str = "wavelengths",
                      any_order: bool = False) -> np.ndarray:
    """Validate a nm wavelength vector for a scene with ``bands`` bands; return it as float64.

    Raises `InputError` unless it has one finite, positive, strictly increasing value per band
    (with ``any_order``: distinct values in any order, e.g. detectors that overlap), the
    largest at least 100 nm (smaller ones are micrometres given as nm).
    """
    try:
        wl = np.asarray(wl, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: not numbers ({exc}); expected band centres in nm") from None
    if wl.shape != (bands,):
        raise InputError(f"{what}: {wl.size} values for {bands} bands; expected one per band")
    if not np.all(np.isfinite(wl)) or np.any(wl <= 0):
        raise InputError(f"{what}: values must be finite and positive (nm)")
    if wl.size and wl.max() < 100.0:  # no imaging spectrometer has a band centre below 100 nm
        raise InputError(f"{what}: the largest is {wl.max():g}; expected nm (values below 100 look like "
                         "micrometres: multiply by 1000, or convert with unmixgen.wavelengths.to_nm)")
    if any_order:
        ranked = np.sort(wl)
        same = np.flatnonzero(np.diff(ranked) <= 0)
        if same.size:
            raise InputError(f"{what}: two bands at {ranked[same[0]]:g} nm; expected one distinct centre per band")
        return wl
    if bands > 1 and not np.all(np.diff(wl) > 0):
        i = int(np.argmin(np.diff(wl)))
        raise InputError(
            f"{what}: not strictly increasing ({wl[i]:g} nm then {wl[i + 1]:g} nm at band {i + 1})"
        )
    return wl


SAME_GRID_NM = 0.5  # band centres closer than this are the same band (rounding in files)


BAND_NUMBER_HEADERS = ("band", "bands", "band_number", "band_no", "band_index", "channel", "index")
"""Header names of a column of band numbers, not band centres."""


def wavelengths_from_spec(spec: str, bands: int, *, what: str = "--wavelengths",
                          any_order: bool = False) -> np.ndarray:
    """Wavelengths (nm, float64) for a scene of ``bands`` bands from ``spec``: ``START:STOP``
    (band centres evenly spaced from the first to the last, e.g. ``401:889`` for Samson) or a
    text / CSV file whose first column holds one wavelength per band (a header line is
    allowed). Values below 100 are read as micrometres. `InputError` naming ``what`` unless
    the result has one increasing, positive value per band (``any_order``: a file's values may
    come in any band order, e.g. stepping back where detectors overlap, but must be distinct)."""
    import os

    text = spec.strip()
    if not os.path.exists(text) and text.count(":") == 1:
        try:
            start, stop = (float(v) for v in text.split(":"))
        except ValueError:
            start = stop = float("nan")
        if not (np.isfinite(start) and np.isfinite(stop)):
            raise InputError(f"{what} {spec!r}: expected START:STOP in nm with finite numbers (e.g. 401:889) or a "
                             "file with one wavelength per band")
        wl = to_nm(np.linspace(start, stop, bands), what=f"{what} {spec!r}")
        any_order = False  # STOP below START is a slip, not a band order
    else:
        if os.path.isdir(text):
            raise InputError(f"{what} {spec!r}: is a folder; expected START:STOP in nm or a file with one "
                             "wavelength per band")
        if not os.path.isfile(text):
            raise InputError(f"{what} {spec!r}: no such file, and not START:STOP; expected START:STOP in nm or a "
                             "file with one wavelength per band")
        values: list[float] = []
        header_seen = False
        # utf-8-sig: a byte-order mark would otherwise make the first value a "header"
        with open(text, encoding="utf-8-sig", errors="replace") as f:
            for n, line in enumerate(f):
                line = line.split("#", 1)[0]  # comments, whole-line or trailing
                cells = line.replace(";", ",").replace("\t", ",").split(",")[0].split()
                if not cells:
                    continue
                cell = cells[0]  # first column, whatever separates the others
                try:
                    values.append(float(cell))
                except ValueError:
                    if not values and not header_seen:
                        header_seen = True  # one header line before the values
                        if cell.lower() in BAND_NUMBER_HEADERS:  # read as micrometres: 1000 nm, 2000 nm...
                            raise InputError(f"{text}: the first column ({cell!r}) holds band numbers; expected "
                                             "the band centres (nm or um) in the first column") from None
                        continue
                    raise InputError(f"{text}: line {n + 1} {cell!r} is not a number; expected one wavelength "
                                     "per line (first column)") from None
        wl = to_nm(values, what=text)
        if wl.size and np.nanmin(wl) < 100.0 <= np.nanmax(wl):
            raise InputError(f"{text}: values from {np.nanmin(wl):g} to {np.nanmax(wl):g} mix micrometres and "
                             "nanometres; expected every band centre in one unit")
    return check_wavelengths(wl, bands, what=f"{what} {spec!r}", any_order=any_order)


def grid_offset_nm(a, b) -> float:
    """Largest ``|a - b|`` (nm) between two band-centre grids; inf when their lengths differ
    or a value is not finite (so such grids are never the same)."""
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape:
        return float("inf")
    if not a.size:
        return 0.0
    d = float(np.abs(a - b).max())
    return d if np.isfinite(d) else float("inf")


# "450.5 nm", "Band 3 (0.55 um)", "376.44 Nanometers", "2.1 micrometers"
_NUM_UNIT = re.compile(
    r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(nm|nanomet\w*|um|µm|μm|micromet\w*|microns?)\b",
    re.IGNORECASE,
)


def wavelengths_from_labels(labels, *, what: str = "band names") -> np.ndarray | None:
    """Wavelengths (nm) read from band labels such as ``"376.44 Nanometers"`` or
    ``"Band 3 (0.55 um)"``; None unless every label holds a number with a length unit."""
    if not labels:
        return None
    found = [_NUM_UNIT.search(str(s)) if s else None for s in labels]
    if not all(found):
        return None
    return np.array([to_nm([float(m.group(1))], m.group(2), what=what)[0] for m in found])


def fwhm_in_nm(fwhm, raw_wavelengths, wavelengths_nm):
    """FWHM in the unit of the raw wavelengths, converted to nm band by band with the
    conversion's local slope ``|nm / raw|``: a constant factor for lengths, and the same ratio
    (``|d nm / d raw|`` of ``nm = c / raw``) for wavenumbers and frequencies."""
    if fwhm is None or raw_wavelengths is None or wavelengths_nm is None:
        return fwhm
    raw = np.asarray(raw_wavelengths, np.float64)
    nm = np.asarray(wavelengths_nm, np.float64)
    i = int(np.argmax(np.abs(raw)))
    slope = np.full(raw.shape, abs(nm[i] / raw[i]) if raw[i] != 0 else 1.0)
    nonzero = raw != 0
    slope[nonzero] = np.abs(nm[nonzero] / raw[nonzero])
    return np.asarray(fwhm, np.float64) * slope


def usable_fwhm(fwhm, what: str, source: str | os.PathLike, *, stacklevel: int = 3):
    """``fwhm`` when every width is finite and positive; otherwise None with a warning naming
    ``source`` (the file, or the array's parameter) and ``what`` (``"fwhm values"``).

    A band's width is auxiliary: the cube reads the same without it, so a bad list (a
    zero, negative or non-finite width, or values that are not numbers) is dropped, like
    one of the wrong length (`unmixgen.io.bands.per_band`), instead of refusing the scene.
    Kept, a zero, negative or NaN width would be written into converted files and refused
    later, far from its source, by the sensor response of `simulate`. Every reader that finds
    widths in a file passes them through here, and so does a DataArray's scene
    (`unmixgen.labelled`): one rule, one message. The sign and finiteness of widths do not
    change in their conversion to nm, so they may be checked as stored or as converted.
    ``stacklevel`` as for `warnings.warn`, from the caller of this function's caller.
    """
    if fwhm is None:
        return None
    fw = np.asarray(fwhm)
    if fw.dtype.kind not in "iuf":
        warnings.warn(f"{os.fspath(source)}: {what} have type {fw.dtype}; expected numbers (nm), so the "
                      f"{what} are ignored", UserWarning, stacklevel=stacklevel)
        return None
    fw = fw.astype(np.float64).reshape(-1)
    bad = ~np.isfinite(fw) | (fw <= 0)
    if not bad.any():
        return fwhm
    i = int(np.argmax(bad))
    warnings.warn(
        f"{os.fspath(source)}: {what} hold {fw[i]:g} (entry {i + 1}); expected finite positive "
        f"widths (nm), so the {what} are ignored", UserWarning, stacklevel=stacklevel,
    )
    return None
