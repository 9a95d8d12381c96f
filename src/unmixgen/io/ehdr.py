"""ESRI BIL / EHdr rasters (GDAL's "EHdr" driver): ``name.hdr`` + ``name.bil``/``.bip``/``.bsq``.

The header is ``KEYWORD value`` lines (case-insensitive), unlike ENVI's ``key = value``.
Fields used (defaults as GDAL's EHdr driver applies them):

``NROWS``, ``NCOLS`` (required); ``NBANDS`` (1); ``NBITS`` (8; 8, 16, 32 or 64);
``PIXELTYPE`` (``SIGNEDINT``, ``UNSIGNEDINT`` or ``FLOAT``; default unsigned, float for
``.flt``); ``BYTEORDER`` (``I`` little / ``M`` big endian; default the machine's);
``LAYOUT`` (``BIL``, ``BIP``, ``BSQ``; default from the data file's extension, else BIL);
``SKIPBYTES``, ``BANDROWBYTES``, ``TOTALROWBYTES``, ``BANDGAPBYTES`` (padding);
``ULXMAP``/``ULYMAP`` (centre of the upper-left pixel) with ``XDIM``/``YDIM`` (pixel size);
``NODATA`` / ``NODATA_VALUE``. A ``name.prj`` beside the header gives the CRS.

Headwall cameras' "ArcGIS" export adds a block of wavelengths, one per line::

    WAVELENGTHS
    400.53
    ...
    WAVELENGTHS_END

A block with a number of wavelengths other than ``NBANDS`` (real exports list fewer) is
ignored with a warning, as for ENVI. Reading is lazy (`io.raw.strided_cube`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from ..errors import check_keywords, in_file
from ..scene import Scene
from .bands import arrange, overlap_policy, per_band
from .checks import count, header_text, make_scene, number, quiet_gdal, require_regular_file
from .raw import RawSource, stored_validity, strided_cube

DATA_EXTENSIONS = (".bil", ".bip", ".bsq", ".flt", ".img", ".raw", ".dat")
MAX_HEADER_BYTES = 16 << 20
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def looks_like_ehdr(text: str) -> bool:
    """True when a header text has the EHdr keywords NROWS and NCOLS as its own lines."""
    keys = {line.split(None, 1)[0].upper() for line in text.splitlines() if line.strip()}
    return {"NROWS", "NCOLS"} <= keys


def parse_header(hdr: Path) -> tuple[dict[str, str], list[str] | None]:
    """``({UPPER-CASE KEY: value}, wavelength strings or None)`` of an EHdr header."""
    require_regular_file(hdr, "header")
    if hdr.stat().st_size > MAX_HEADER_BYTES:
        raise in_file(hdr, "header is larger than 16 MiB; expected a text header")
    try:
        text = header_text(hdr)
    except OSError as exc:
        raise in_file(hdr, f"cannot read header ({exc.strerror})") from None
    fields: dict[str, str] = {}
    wavelengths: list[str] | None = None
    in_block = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        word = line.split(None, 1)
        key = word[0].upper()
        if in_block:
            if key == "WAVELENGTHS_END":
                in_block = False
            else:
                wavelengths.append(word[0])
            continue
        if key == "WAVELENGTHS":
            in_block, wavelengths = True, []
            continue
        if not _KEY.match(word[0]):
            raise in_file(hdr, f"header line {line[:40]!r} is not 'KEYWORD value'; expected an ESRI "
                               "BIL/EHdr header")
        fields[key] = word[1].strip() if len(word) > 1 else ""
    if in_block:
        raise in_file(hdr, "WAVELENGTHS block has no WAVELENGTHS_END line")
    for key in ("NROWS", "NCOLS"):
        if key not in fields:
            raise in_file(hdr, f"header has no {key}; expected NROWS and NCOLS (ESRI BIL/EHdr)")
    return fields, wavelengths


def find_data_file(hdr: Path) -> Path:
    """``name.bil``/``.bip``/``.bsq``/... beside ``name.hdr`` (any case)."""
    base = hdr.with_suffix("")
    want = {(base.name + e).lower() for e in DATA_EXTENSIONS}
    try:
        for p in sorted(hdr.parent.iterdir()):
            if p.name.lower() in want and not p.is_dir():
                return p
    except OSError:
        pass
    raise in_file(hdr, f"no data file found beside the header (looked for {base.name} with "
                       f"{', '.join(DATA_EXTENSIONS)})")


def _dtype(fields: dict, data: Path, hdr: Path) -> np.dtype:
    nbits = count(fields.get("NBITS", "8"), "NBITS", hdr)
    pixeltype = fields.get("PIXELTYPE", "FLOAT" if data.suffix.lower() == ".flt" else "UNSIGNEDINT").upper()
    if nbits == 32 and data.suffix.lower() == ".flt" and "NBITS" not in fields:
        pixeltype = "FLOAT"
    kinds = {"SIGNEDINT": "i", "UNSIGNEDINT": "u", "FLOAT": "f"}
    if pixeltype not in kinds:
        raise in_file(hdr, f"PIXELTYPE {pixeltype!r} is not supported; expected SIGNEDINT, UNSIGNEDINT or FLOAT")
    kind = kinds[pixeltype]
    allowed = (32, 64) if kind == "f" else (8, 16, 32, 64)
    if nbits not in allowed:
        raise in_file(hdr, f"NBITS {nbits} with PIXELTYPE {pixeltype} is not supported; expected one of {allowed}")
    order = fields.get("BYTEORDER", "I" if sys.byteorder == "little" else "M").upper()[:1]
    if order not in ("I", "M", "L"):
        raise in_file(hdr, f"BYTEORDER {fields['BYTEORDER']!r}; expected I (Intel, little endian) or M (Motorola)")
    return np.dtype(("<" if order in ("I", "L") else ">") + f"{kind}{nbits // 8}")


def read(path: Path, *, overlap: str = "sort", **options) -> Scene:
    """Read an ESRI BIL/EHdr raster lazily (header or data file path).

    ``metadata["format"] = "ehdr"``; wavelengths from a Headwall ``WAVELENGTHS`` block.
    """
    check_keywords(read, options, "an option of the ehdr reader")
    overlap_policy(overlap)
    path = Path(path)
    if path.suffix.lower() == ".hdr":
        hdr, data = path, None
    else:
        hdr, data = path.with_suffix(".hdr"), path
        if not hdr.exists():
            hdr = path.with_suffix(".HDR")
    fields, wl_text = parse_header(hdr)
    data = find_data_file(hdr) if data is None else data
    require_regular_file(data, "data file")
    rows = count(fields["NROWS"], "NROWS", hdr)
    cols = count(fields["NCOLS"], "NCOLS", hdr)
    bands = count(fields.get("NBANDS", "1"), "NBANDS", hdr)
    dtype = _dtype(fields, data, hdr)
    layout = fields.get("LAYOUT", data.suffix.lstrip(".") if data.suffix.lower() in (".bil", ".bip", ".bsq")
                        else "BIL").lower()
    if layout not in ("bil", "bip", "bsq"):
        raise in_file(hdr, f"LAYOUT {layout.upper()!r} is not supported; expected BIL, BIP or BSQ")
    skip = count(fields.get("SKIPBYTES", "0"), "SKIPBYTES", hdr, low=0)
    opt = {k: count(fields[k], k, hdr, low=1) for k in ("BANDROWBYTES", "TOTALROWBYTES") if k in fields}
    gap = count(fields.get("BANDGAPBYTES", "0"), "BANDGAPBYTES", hdr, low=0)
    row_bytes = opt.get("TOTALROWBYTES") if layout != "bsq" else opt.get("BANDROWBYTES")
    array = strided_cube(data, dtype, (rows, cols, bands), layout, offset=skip, row_bytes=row_bytes,
                         band_row_bytes=opt.get("BANDROWBYTES") if layout == "bil" else None,
                         band_gap=gap, path=hdr)

    wavelengths = None
    if wl_text is not None:
        nums = np.array([number(v, "a WAVELENGTHS value", hdr) for v in wl_text], np.float64)
        wavelengths = per_band(nums, bands, "wavelengths", hdr)
    nodata = None
    for key in ("NODATA", "NODATA_VALUE"):
        if key in fields:
            text = fields[key].strip()
            nodata = float("nan") if text.lower().lstrip("+-") == "nan" else number(text, key, hdr)
    crs = transform = None
    if "ULXMAP" in fields and "ULYMAP" in fields:
        ulx, uly = number(fields["ULXMAP"], "ULXMAP", hdr), number(fields["ULYMAP"], "ULYMAP", hdr)
        xd = number(fields.get("XDIM", "1"), "XDIM", hdr, positive=True)
        yd = number(fields.get("YDIM", "1"), "YDIM", hdr, positive=True)
        transform = (xd, 0.0, ulx - xd / 2, 0.0, -yd, uly + yd / 2)  # ULXMAP/ULYMAP: pixel centre
    prj = next((p for p in (hdr.with_suffix(".prj"), hdr.with_suffix(".PRJ")) if p.is_file()), None)
    if prj is not None and prj.stat().st_size < MAX_HEADER_BYTES:
        crs = _crs_from_prj(prj)

    arr = arrange(wavelengths, overlap, path=hdr)
    source = RawSource(array, order=arr.order, dtype=dtype.str[1:], path=data)
    metadata = {"format": "ehdr", "interleave": layout}
    arr.note(metadata, overlap)
    return make_scene(path, source, wavelengths=arr.wavelengths,
                      mask=lambda: stored_validity(array, nodata), nodata=nodata, crs=crs,
                      transform=transform, name=hdr.stem, metadata=metadata)


def _crs_from_prj(prj: Path) -> str | None:
    from rasterio.crs import CRS

    try:
        text = prj.read_text(encoding="utf-8", errors="replace").strip()
        with quiet_gdal():
            crs = CRS.from_user_input(text)
            epsg = crs.to_epsg()
            return CRS.from_epsg(epsg).to_wkt() if epsg else crs.to_wkt()
    except Exception:  # noqa: BLE001 - an unreadable .prj means no CRS, not a failed read
        return None


__all__ = ["looks_like_ehdr", "parse_header", "read"]
