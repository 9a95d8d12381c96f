"""ENVI spectral library: spectra as the lines of a one-band ENVI image.

A library is a binary data file (``.sli``, sometimes ``.lib``, ``.esl`` or no extension)
beside a text header (``name.hdr`` or ``name.sli.hdr``) that says ``file type = ENVI
Spectral Library``. ``samples`` is the number of channels of every spectrum, ``lines`` the
number of spectra, ``bands`` is 1 (the interleave does not matter); ``data type``, ``byte
order`` and ``header offset`` mean what they mean for an image. The header is parsed and
its layout checked by `io.envi` (one parser for both).

Header fields used
------------------
``samples``, ``lines``, ``bands``, ``data type`` (required); ``byte order``, ``header
offset``, ``wavelength`` + ``wavelength units`` (the unit decided as for an image:
nm, um, "Micrometers", wavenumbers; "Unknown" or none by the values' magnitude),
``spectra names`` (a name in double quotes may hold commas), ``reflectance scale factor``
(physical = stored / factor) or ``data gain values`` / ``data offset values`` (one each),
``data units`` (reflectance, radiance or a radiance unit, kept as it is: `checks.scene_units`; a
scale factor alone says reflectance, as for an image), ``data ignore value`` and ``bbl`` (channels flagged 0): both read as missing (NaN), as the
USGS libraries' deleted channels (-1.23e34, at or below `DELETED`) are, marked or not. A
value ``None`` (SPy's for a list it lacks) is no value; ``fwhm`` is not used.

The header of ``name.sli`` is ``name.hdr`` or ``name.sli.hdr``, the first that is a
library's (``name.hdr`` may be the header of an image ``name.img`` beside it).

Unlike an image header, a library's per-channel lists must fit: a wavelength list or
``bbl`` whose length is not ``samples``, or a ``spectra names`` list whose length is not
``lines``, is refused (`InputError` naming the header), and so is a NaN or infinite value
that no ``data ignore value`` marks.

Writing produces float32, little endian, wavelengths in nm (``wavelength units =
Nanometers``) when known, ``spectra names``, ``data units`` when known; missing values (NaN)
are written as NaN with ``data ignore value = nan``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_files
from ..errors import in_file, reading
from ..wavelengths import check_wavelengths
from .bands import braced_list
from .checks import require_regular_file, scene_units
from .envi import (
    DATA_EXTENSIONS,
    LIBRARY_FILE_TYPE,
    _floats,
    _gains_offsets,
    _layout,
    _list,
    _nodata,
    _spectral,
    find_data_file,
    header_and_data,
    is_spectral_library,
    parse_header,
)

DELETED = -1e30
"""At or below: the USGS libraries' deleted-channel marker (-1.23e34), missing in any library."""

LIBRARY_EXTENSIONS = (".sli", ".lib", ".esl")
"""Data file extensions of ENVI spectral libraries (besides those of images)."""

EXPECTED = ("an ENVI spectral library (file type = ENVI Spectral Library: samples = channels, lines = spectra, "
            "bands = 1)")


@dataclass
class SpectralLibrary:
    """The spectra of an ENVI spectral library.

    ``spectra`` ``(n, channels)`` float32, physical values (scale factor applied), channels in
    increasing wavelength order, missing channels (``data ignore value``, ``bbl`` = 0) NaN;
    ``wavelengths`` ``(channels,)`` nm float64 or None; ``names`` one per spectrum, or None
    when the header lists none; ``header`` and ``data`` the two files; ``units`` the header's
    ``data units`` label (``"reflectance"``, ``"radiance"``, ``"uW/(cm^2 sr nm)"``, ...:
    `checks.scene_units`) or None (the header does not say)."""

    spectra: np.ndarray
    wavelengths: np.ndarray | None
    names: list[str] | None
    header: Path
    data: Path
    units: str | None = None


def header_beside(path: str | Path) -> Path | None:
    """The ENVI header of ``path``: ``path`` itself for a ``.hdr``, else ``name.hdr`` or
    ``name.ext.hdr`` beside it; None when there is none."""
    from . import _envi_header_for

    path = Path(path)
    return path if path.suffix.lower() == ".hdr" else _envi_header_for(path)


def _own_header(data: Path, hdr: Path, h: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """``(header, parsed)`` of the library ``data``: ``name.sli.hdr`` when ``name.hdr``, found
    first, is not a library's (an image ``name.img`` beside it owns that one); else the one found."""
    for cand in (data.with_name(data.name + ".hdr"), data.with_name(data.name + ".HDR")):
        if cand != hdr and cand.is_file():
            other = parse_header(cand)
            if is_spectral_library(other):
                return cand, other
    return hdr, h


def _names(value: str, lines: int) -> list[str]:
    """Items of a ``spectra names`` list; when split at every comma they are not one per
    spectrum, a name in double quotes keeps its commas (``"a, b"``)."""
    names = _list(value)
    if len(names) == lines or '"' not in value:
        return names
    v = value.strip()
    v = v[1 : v.rindex("}")] if v.startswith("{") and "}" in v else v.lstrip("{")
    row = next(csv.reader([" ".join(v.splitlines())], skipinitialspace=True), [])
    items = [item.strip() for item in row if item.strip()]
    return items if len(items) == lines else names


def read_library(path: str | Path) -> SpectralLibrary:
    """Read an ENVI spectral library, given its data file or its header.

    Every value of the header is checked before use; `InputError` naming the file for a
    header that is not a library's (an image header: one line saying what is expected), a
    layout the data file does not hold, ``bands`` other than 1, a complex or unknown data
    type, per-channel lists of the wrong length, names that are not one per spectrum, a
    NaN or infinite value that is not marked missing, or two channels at one wavelength.
    """
    hdr, data = header_and_data(Path(path))
    h = parse_header(hdr)
    if data is not None and not is_spectral_library(h):
        hdr, h = _own_header(data, hdr, h)
    # SPy writes a list it does not have as None (``fwhm = None``); a library has no use for widths
    h = {k: v for k, v in h.items() if k != "fwhm" and v.strip() != "None"}
    if not is_spectral_library(h):
        kind = h.get("file type", "").strip("{} \n")
        what = f"an ENVI image (file type = {kind})" if kind else "an ENVI header without 'file type'"
        raise in_file(hdr, f"is {what}, not a spectral library; expected {EXPECTED}")
    if "interleave" not in h:  # one band: the interleave does not matter, and some writers leave it out
        h = {**h, "interleave": "bsq"}
    lines, samples, bands, dtype, _, offset, _ = _layout(h, hdr)
    if bands != 1:
        raise in_file(hdr, f"header says bands = {bands}; expected {EXPECTED}")
    if data is None:
        data = find_data_file(hdr, (*LIBRARY_EXTENSIONS, *DATA_EXTENSIONS))
    require_regular_file(data, "data file")
    size = data.stat().st_size
    expected = offset + lines * samples * dtype.itemsize
    if size != expected:
        raise in_file(hdr, f"header says {lines} spectra (lines) of {samples} channels (samples) but the data file "
                           f"{data.name} holds {size} bytes; expected lines*samples*{dtype.itemsize} + header offset "
                           f"= {lines}*{samples}*{dtype.itemsize} + {offset} = {expected} bytes")
    names = _names(h["spectra names"], lines) if "spectra names" in h else None
    if names is not None and len(names) != lines:
        raise in_file(hdr, f"header lists {len(names)} spectra names for {lines} spectra (lines); expected one "
                           "name per spectrum")
    for key, what in (("wavelength", "wavelengths"), ("bbl", "bad-channel flags (bbl)")):
        values = _floats(h, key, hdr)
        if values is not None and values.size != samples:
            raise in_file(hdr, f"header lists {values.size} {what} for {samples} channels (samples); expected one "
                               "per channel")
    wavelengths, _, good = _spectral(h, hdr, samples, None)
    gain, shift, _, units = _gains_offsets(h, hdr, 1)
    nodata = _nodata(h, hdr)

    with reading(data, "read the library's data file"), open(data, "rb") as f:
        f.seek(offset)
        stored = np.fromfile(f, dtype=dtype, count=lines * samples).reshape(lines, samples)
    missing = stored <= DELETED if dtype.kind == "f" else np.zeros(stored.shape, bool)
    if nodata is not None:
        missing |= np.isnan(stored) if np.isnan(nodata) else stored == nodata
    if good is not None:
        missing[:, ~np.asarray(good, bool)] = True
    bad = ~np.isfinite(stored) & ~missing
    if bad.any():
        i, k = (int(v[0]) for v in np.nonzero(bad))
        who = repr(names[i]) if names else f"{i + 1}"
        raise in_file(hdr, f"spectrum {who} holds {stored[i, k]} at channel {k + 1}; expected finite values "
                           "(missing channels marked by 'data ignore value' or 'bbl')")
    spectra = stored.astype(np.float64) * gain[0] + shift[0]
    spectra[missing] = np.nan
    if missing.all():
        raise in_file(hdr, "every value is missing ('data ignore value' or 'bbl'); expected measured spectra")
    if wavelengths is not None:
        wavelengths = check_wavelengths(wavelengths, samples, what=f"{hdr}: wavelengths", any_order=True)
        order = np.argsort(wavelengths, kind="stable")
        wavelengths, spectra = wavelengths[order], spectra[:, order]
    return SpectralLibrary(spectra.astype(np.float32), wavelengths, names, hdr, data, units)


def write_library(path: str | Path, spectra: np.ndarray, wavelengths: np.ndarray | None,
                  names: list[str], units: str | None = None) -> tuple[Path, Path]:
    """Write ``spectra (n, channels)`` as an ENVI spectral library: ``path`` (the data file,
    e.g. ``endmembers.sli``) and its header ``name.hdr`` beside it, atomically (data first,
    header last). float32 little endian; ``wavelengths`` in nm (``wavelength units =
    Nanometers``), or none; ``names`` one per spectrum (commas and braces, which end an ENVI
    list item, become ``;`` and parentheses). NaN values are written with ``data ignore value
    = nan``; ``units`` (a label naming reflectance or radiance, `checks.scene_units`) as it is as
    ``data units``. Returns ``(header, data file)``."""
    data = Path(path)
    hdr = data.with_suffix(".hdr")
    e = np.asarray(spectra, np.float32)
    n, channels = e.shape
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} spectra")
    if wavelengths is not None and np.size(wavelengths) != channels:
        raise ValueError(f"{np.size(wavelengths)} wavelengths for {channels} channels")
    clean = [str(s).replace(",", ";").replace("{", "(").replace("}", ")").strip() or f"spectrum {i + 1}"
             for i, s in enumerate(names)]
    fields = [
        "ENVI",
        f"description = {{spectra written by unmixgen; data file {data.name}}}",
        f"samples = {channels}",
        f"lines = {n}",
        "bands = 1",
        "header offset = 0",
        f"file type = {LIBRARY_FILE_TYPE}",
        "data type = 4",
        "interleave = bsq",
        "byte order = 0",
    ]
    if wavelengths is not None:
        fields += ["wavelength units = Nanometers", f"wavelength = {braced_list(wavelengths)}"]
    if np.isnan(e).any():
        fields.append("data ignore value = nan")
    if label := scene_units(units):
        fields.append(f"data units = {label}")
    fields.append("spectra names = {" + ", ".join(clean) + "}")
    with atomic_files([hdr, data]) as (tmp_hdr, tmp_data):
        tmp_data.write_bytes(e.astype("<f4").tobytes())
        tmp_hdr.write_text("\n".join(fields) + "\n", encoding="utf-8")
    return hdr, data


__all__ = ["DELETED", "LIBRARY_EXTENSIONS", "SpectralLibrary", "header_beside", "read_library", "write_library"]
