"""ENVI raster: a text header (``name.hdr``) beside a raw binary data file.

Reading is lazy: the data file is memory-mapped with the header's data type, byte order,
header offset and interleave, and viewed as ``(rows, cols, bands)`` through strides (no
copy, `io.raw`). `Scene.read` then touches only the window asked for.

Header fields used
------------------
``samples``, ``lines``, ``bands``, ``data type``, ``interleave`` (required);
``byte order``, ``header offset`` (``major frame offsets`` other than ``{0, 0}`` are refused),
``wavelength`` + ``wavelength units``, ``fwhm``, ``bbl``,
``band names`` (also the wavelengths, when ``wavelength`` is absent and every name holds
one, e.g. ``376.44 Nanometers``), ``data ignore value``, ``data gain values`` and ``data
offset values`` (physical = stored * gain + offset, per band), ``reflectance scale factor``
(physical = stored / factor, used when no gains are given; it also says the data are
reflectance), ``data units`` (what the physical values are: ``reflectance`` or ``radiance``,
or a radiance unit such as ``uW/(cm2 sr nm)``, `checks.quantity`, kept as the scene's units as
it is: `checks.scene_units`; not one of ENVI's own keys,
ENVI and GDAL keep it as any other), ``map info``, ``coordinate
system string``, ``geo points`` (tie points, without ``map info``: `parse_geo_points`), ``rpc info``
(rational polynomial coefficients: `parse_rpc_info`), ``source band index`` and ``source bands`` (written
here: where each band of a copy came from, `io.bands.SOURCE_ORDER_KEYS`). Every value is checked before use; a per-band list whose length is not
the band count (a camera header listing 35 wavelengths for 978 bands) is ignored with a
warning, as GDAL and SPy do, and so is a ``fwhm`` list with a width that is not finite and
positive (`io.bands.usable_fwhm`). Bands of overlapping detectors are ordered by the
``overlap=`` policy of `io.bands` (default: sorted by wavelength).

A header whose ``file type`` is ``ENVI Spectral Library`` is refused as a scene: its lines
are spectra, not pixels (`io.sli` reads it, as a source of endmembers).

Writing produces float32 BSQ (little endian) by default; invalid pixels are written as NaN
and the header says ``data ignore value = nan`` (GDAL/QGIS read that as the nodata value).
The scene's units are ``data units``, the label as it is (and ``reflectance scale factor = 1`` for
reflectance).
Integer types store ``round(value * scale)``: reflectance by default x `REFLECTANCE_SCALE`
(10000, as EnMAP, PRISMA and AVIRIS store it) with ``reflectance scale factor`` saying so, other
values x 1 unless ``scale=`` is given (then ``data gain values`` = 1 / scale). Values the type
cannot hold, and fractions an unscaled integer type would round away, are refused, never clipped.
A scene placed by ground control points instead of a geotransform gets them as ``geo points``
(in latitude/longitude, whatever the points' CRS); one with rational polynomial coefficients gets
them as ``rpc info``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_files
from ..errors import InputError, ParameterError, check_keywords, in_file
from ..scene import Scene
from ..wavelengths import to_nm
from .bands import (
    SOURCE_ORDER_KEYS,
    arrange,
    braced_list,
    fwhm_in_nm,
    note_source_order,
    overlap_policy,
    per_band,
    read_source_band_order,
    require_good_band,
    source_band_order_text,
    usable_fwhm,
    wavelengths_from_labels,
)
from .checks import (
    header_text,
    make_scene,
    number,
    quantity,
    quiet_gdal,
    require_regular_file,
    scene_units,
)
from .raw import INTERLEAVES, RawSource, stored_empty_bands, stored_validity, strided_cube

# ENVI data type code -> numpy dtype (without byte order)
DATA_TYPES: dict[int, str] = {
    1: "u1",
    2: "i2",
    3: "i4",
    4: "f4",
    5: "f8",
    12: "u2",
    13: "u4",
    14: "i8",
    15: "u8",
}
_CODE_OF = {np.dtype(v).str[1:]: k for k, v in DATA_TYPES.items()}
MAX_HEADER_BYTES = 16 << 20  # a text header; anything larger is not one
REQUIRED = ("samples", "lines", "bands", "data type", "interleave")
DATA_EXTENSIONS = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".bin")
LIBRARY_FILE_TYPE = "ENVI Spectral Library"  # spectra as lines of a one-band image: `io.sli`
#: stored = reflectance * this in integer files by default (EnMAP, PRISMA and AVIRIS products do
#: the same): 0.0001 steps, and reflectance up to 3.2767 fits int16
REFLECTANCE_SCALE = 10000.0


# -- header --------------------------------------------------------------------------
def parse_header(path: Path) -> dict[str, str]:
    """Read an ENVI header into ``{lower-case key: raw value string}``.

    Brace values ``{...}`` may span lines; braces are kept in the value. Raises
    `InputError` when the file is not an ENVI header.
    """
    require_regular_file(path, "header")
    if path.stat().st_size > MAX_HEADER_BYTES:
        raise in_file(path, f"header is {path.stat().st_size} bytes; expected a text header "
                            f"under {MAX_HEADER_BYTES >> 20} MiB")
    try:
        text = header_text(path)
    except OSError as exc:
        raise in_file(path, f"cannot read header ({exc.strerror})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip().upper().startswith("ENVI"):
        raise in_file(path, "is not an ENVI header (first line must be 'ENVI')")
    header: dict[str, str] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if "=" not in line or line.lstrip().startswith(";"):
            continue
        key, value = line.split("=", 1)
        key, value = key.strip().lower(), value.strip()
        if value.startswith("{"):
            while "}" not in value and i < len(lines):
                value += "\n" + lines[i]
                i += 1
            if "}" not in value:
                raise in_file(path, f"header field {key!r} has an unclosed '{{'")
        header[key] = value
    return header


def _list(value: str) -> list[str]:
    """Items of a ``{a, b, c}`` header value (or a bare single value)."""
    v = value.strip()
    if v.startswith("{"):
        v = v[1 : v.rindex("}")] if "}" in v else v[1:]
    return [s.strip() for s in v.split(",") if s.strip() != ""] if v.strip() else []


def _int_field(header: dict, key: str, hdr: Path, default: int | None = None) -> int:
    if key not in header:
        if default is None:
            raise in_file(hdr, f"header is missing the required field {key!r}; expected "
                          f"all of: {', '.join(REQUIRED)}")
        return default
    text = header[key].strip("{} \n")
    try:
        return int(text)
    except ValueError:
        raise in_file(hdr, f"header field {key!r} = {text[:40]!r} is not an integer") from None


def _floats(header: dict, key: str, hdr: Path) -> np.ndarray | None:
    if key not in header:
        return None
    try:
        return np.array([float(s) for s in _list(header[key])], dtype=np.float64)
    except ValueError:
        raise in_file(hdr, f"header field {key!r} holds a non-numeric value; expected numbers") from None


def is_spectral_library(header: dict[str, str]) -> bool:
    """Whether a parsed header is an ENVI spectral library's (`io.sli`): its ``file type``
    says so, or it has no ``file type`` but lists ``spectra names``."""
    kind = header.get("file type")
    if kind is None:
        return "spectra names" in header
    return kind.strip("{} \n").lower() == LIBRARY_FILE_TYPE.lower()


# -- finding the files ------------------------------------------------------------------
def header_and_data(path: Path) -> tuple[Path, Path | None]:
    """``(header, data file)`` for a data file path, ``(header, None)`` for a header path
    (use `find_data_file` once the header is known to be good)."""
    path = Path(path)
    if path.suffix.lower() == ".hdr":
        return require_regular_file(path, "header"), None
    from . import _envi_header_for

    hdr = _envi_header_for(path)
    if hdr is None:
        raise in_file(path, "no ENVI header (.hdr) beside this data file")
    return hdr, path


def find_data_file(hdr: Path, extensions: tuple[str, ...] = DATA_EXTENSIONS) -> Path:
    """The data file ENVI would open for ``hdr``: same name with one of ``extensions`` (by
    default no extension, ``.img``, ``.dat``, ``.raw``, ``.bsq``/``.bil``/``.bip``, ``.bin``;
    any case), or ``name.ext`` for ``name.ext.hdr``."""
    base = hdr.with_suffix("")
    cands = []
    for ext in extensions:
        for e in (ext, ext.upper()):
            c = base.with_name(base.name + e)
            if c != hdr and c not in cands:
                cands.append(c)
    for c in cands:  # any entry that is not a folder: a FIFO is found here and refused later
        if c.exists() and not c.is_dir():
            return c
    # case-insensitive match in the folder (e.g. SCENE.IMG for scene.hdr)
    want = {c.name.lower() for c in cands}
    try:
        for p in hdr.parent.iterdir():
            if p.name.lower() in want and p != hdr and not p.is_dir():
                return p
    except OSError:
        pass
    looked = ", ".join("no extension" if not e else e for e in extensions)
    raise in_file(hdr, f"no data file found beside the header (looked for {base.name} with {looked})")


# -- georeferencing -------------------------------------------------------------------
def _crs_wkt(user_input) -> str | None:
    """WKT of a CRS given as WKT/EPSG/PROJ; an EPSG-identified WKT when one matches.

    Runs inside `quiet_gdal`, so PROJ's own ``ERROR 1:`` lines never reach stderr.
    """
    from rasterio.crs import CRS

    with quiet_gdal():
        crs = CRS.from_user_input(user_input)
        epsg = crs.to_epsg()
        return CRS.from_epsg(epsg).to_wkt() if epsg else crs.to_wkt()


def parse_map_info(items: list[str], hdr: Path) -> tuple[tuple[float, ...], str | None]:
    """``(transform (a, b, c, d, e, f), crs WKT or None)`` from a ``map info`` list.

    A ``rotation=`` turns the grid rigidly about the tie point, which keeps its map coordinates.
    GDAL (3.10) agrees for square pixels tied at (1, 1). With other tie points, GDAL offsets the
    origin as if unrotated, so the tie pixel lands elsewhere. With non-square pixels, GDAL's
    steps are not a rotation. Both are checked in the tests. ``rotation=180`` (or -180) is the
    exception, read as GDAL reads it: a south-up grid (rows going north, columns still east,
    ``a = x size > 0``, ``e = y size > 0``, no rotation terms), which is how GDAL writes one; a
    rigid half turn would flip the columns too, so every south-up file GDAL writes would open
    mirrored east-west.

    The CRS, without a ``coordinate system string``: UTM or Geographic Lat/Lon on WGS-84 (or no
    datum named), North America 1983 or 1927, in the ``units=`` named (metres when none; feet,
    US feet, km), as GDAL reads them; another datum or unit gives None, not a guess."""
    if len(items) < 7:
        raise in_file(hdr, f"'map info' has {len(items)} items; expected at least 7 "
                      "(projection, ref x, ref y, easting, northing, x size, y size)")
    name = items[0].strip().lower()
    refx, refy, east, north, xs, ys = (
        number(v, f"'map info' item {i + 2}", hdr) for i, v in enumerate(items[1:7]))
    if xs == 0 or ys == 0:
        raise in_file(hdr, f"'map info' pixel size is {xs:g} x {ys:g}; expected non-zero sizes")
    rotation = 0.0
    extra = []
    for it in items[7:]:
        if it.lower().startswith("rotation="):
            rotation = number(it.split("=", 1)[1], "'map info' rotation", hdr)
        else:
            extra.append(it)
    if abs(rotation) == 180:  # GDAL's south-up grid (see above), exactly: no 1e-16 rotation terms
        a, b, d, e = xs, 0.0, 0.0, ys
    else:
        th = math.radians(rotation)
        ct, st = math.cos(th), math.sin(th)
        a, b, d, e = xs * ct, ys * st, xs * st, -ys * ct
    # (refx, refy) is 1-based and names the pixel corner at that position
    c = east - a * (refx - 1) - b * (refy - 1)
    f = north - d * (refx - 1) - e * (refy - 1)
    crs = None
    datum = next((x for x in extra if not x.lower().startswith("units")
                  and not x.replace(".", "").isdigit()
                  and x.lower() not in ("north", "south")), "")
    datum = _DATUMS.get(datum.replace("-", "").replace(" ", "").lower())  # None: one we do not know
    units = next((x.split("=", 1)[1].strip().lower() for x in extra if x.lower().startswith("units")), None)
    if name == "utm" and len(extra) >= 2 and datum:
        linear = _LINEAR_UNITS.get("meters" if units is None else units)  # None: units we do not know
        try:
            zone = int(float(extra[0]))
            south = extra[1].strip().lower().startswith("s")
            crs = _crs_wkt(f"+proj=utm +zone={zone}{' +south' if south else ''} +datum={datum} +units={linear} "
                           "+no_defs") if 1 <= zone <= 60 and linear else None
        except (ValueError, OverflowError):
            crs = None
        except Exception:  # noqa: BLE001 - rasterio's CRSError: an unknown CRS is no CRS
            crs = None
    elif name.startswith("geographic") and datum and (units is None or units.startswith("degree")):
        crs = _crs_wkt(f"+proj=longlat +datum={datum} +no_defs")
    return (a, b, c, d, e, f), crs


WGS84_EPSG = 4326  # the datum of 'geo points' latitudes and longitudes, as read and written here


def parse_geo_points(value: str, hdr: Path) -> list[list[float]]:
    """Ground control points ``[row, col, x, y, z]`` (`unmixgen.scene.PLACEMENT_KEYS`) from a
    ``geo points`` value: groups of four, pixel x, pixel y, latitude, longitude.

    Pixel coordinates are 1-based, (1, 1) the top-left corner of the top-left pixel (ENVI's
    file coordinates, as in ``map info``): row = y - 1, col = x - 1, as GDAL reads them; x is the
    longitude and y the latitude (WGS 84), z is 0. `InputError` for a count that is not a
    multiple of four, a value that is not a finite number, a latitude beyond +-90 degrees or a
    longitude outside -180 to 360."""
    items = _list(value)
    if not items or len(items) % 4:
        raise in_file(hdr, f"'geo points' has {len(items)} values; expected groups of four (pixel x, pixel y, "
                           "latitude, longitude)")
    v = np.array([number(x, f"'geo points' value {i + 1}", hdr) for i, x in enumerate(items)]).reshape(-1, 4)
    for col, name, low, high in ((2, "latitude", -90, 90), (3, "longitude", -180, 360)):  # 0-360 east is used too
        bad = (v[:, col] < low) | (v[:, col] > high)
        if bad.any():
            i = int(np.argmax(bad))
            raise in_file(hdr, f"'geo points' point {i + 1} has {name} {v[i, col]:g}; expected {low} to {high} (each "
                               "point is pixel x, pixel y, latitude, longitude)")
    return [[y - 1.0, x - 1.0, lon, lat, 0.0] for x, y, lat, lon in v.tolist()]


def format_geo_points(gcps, crs: str | None) -> str | None:
    """A ``geo points`` value for ground control points ``[row, col, x, y, z]`` in ``crs`` (taken
    to latitude/longitude on WGS 84), or None without a CRS (nothing says what x and y are)."""
    if not crs or not gcps:
        return None
    from rasterio.crs import CRS
    from rasterio.warp import transform as reproject

    try:
        with quiet_gdal():
            lon, lat = reproject(CRS.from_user_input(crs), CRS.from_epsg(WGS84_EPSG), [float(g[2]) for g in gcps],
                                 [float(g[3]) for g in gcps])
    except Exception as exc:  # noqa: BLE001 - PROJ's errors vary
        raise InputError(f"crs {str(crs)[:80]!r}: its ground control points cannot be given in latitude/longitude "
                         f"({exc}); expected a CRS PROJ knows") from None
    values = [f"{g[1] + 1!r}, {g[0] + 1!r}, {la!r}, {lo!r}" for g, la, lo in zip(gcps, lat, lon, strict=True)]
    return "{" + ", ".join(values) + "}"


# 'rpc info': ENVI's order of the rational polynomial coefficients, as rasterio's RPC names them
# (the mapping GDAL reads): five offsets, their five scales, then 20 coefficients of each polynomial
RPC_INFO_OFFSETS = ("line_off", "samp_off", "lat_off", "long_off", "height_off",
                    "line_scale", "samp_scale", "lat_scale", "long_scale", "height_scale")
RPC_INFO_COEFFS = ("line_num_coeff", "line_den_coeff", "samp_num_coeff", "samp_den_coeff")
RPC_INFO_MODEL = len(RPC_INFO_OFFSETS) + 20 * len(RPC_INFO_COEFFS)  # 90 values make the model
# ENVI writes three more: the image's row and column offsets in the image the coefficients were
# made for (0, 0 for that image itself) and a flag (GDAL: TILE_ROW_OFFSET, TILE_COL_OFFSET,
# ENVI_RPC_EMULATION)
RPC_INFO_TAIL = ("tile row offset", "tile column offset", "flag")


def _rpc_info_name(i: int) -> str:
    """What the ``i``-th (0-based) value of an 'rpc info' is, for messages."""
    if i < len(RPC_INFO_OFFSETS):
        return RPC_INFO_OFFSETS[i].upper()
    if i < RPC_INFO_MODEL:
        j = i - len(RPC_INFO_OFFSETS)
        return f"{RPC_INFO_COEFFS[j // 20].upper()} {j % 20 + 1}"
    return RPC_INFO_TAIL[i - RPC_INFO_MODEL]


def parse_rpc_info(value: str, hdr: Path) -> dict:
    """Rational polynomial coefficients as rasterio's ``RPC.to_dict()`` (`unmixgen.scene.PLACEMENT_KEYS`)
    from an ``rpc info`` value: the 90 values of the model in ENVI's order (`RPC_INFO_OFFSETS`, then
    `RPC_INFO_COEFFS`, 20 each), then usually ENVI's three more (`RPC_INFO_TAIL`); values after those
    are not read. The error estimates are None (unknown): an ENVI header has none.

    As GDAL reads them: the coefficients are kept as written even when the last values place the
    file in a larger image (a chip), which only gets a warning. `InputError` naming the value for
    fewer than 90 values, a value that is not a finite number, or a zero scale."""
    from rasterio.rpc import RPC

    items = _list(value)
    if len(items) < RPC_INFO_MODEL:
        raise in_file(hdr, f"'rpc info' has {len(items)} values; expected at least {RPC_INFO_MODEL}: line, sample, "
                           "latitude, longitude and height offsets, their five scales, then 20 coefficients of each "
                           "of the line numerator, line denominator, sample numerator and sample denominator")
    n = min(len(items), RPC_INFO_MODEL + len(RPC_INFO_TAIL))
    v = [number(items[i], f"'rpc info' value {i + 1} ({_rpc_info_name(i)})", hdr,
                nonzero=i < len(RPC_INFO_OFFSETS) and RPC_INFO_OFFSETS[i].endswith("_scale")) for i in range(n)]
    rows, cols = (v[RPC_INFO_MODEL], v[RPC_INFO_MODEL + 1]) if n >= RPC_INFO_MODEL + 2 else (0.0, 0.0)
    if rows or cols:
        warnings.warn(f"{hdr}: 'rpc info' says this image starts at row {rows:g}, column {cols:g} of a larger image "
                      "its coefficients were made for; they are kept as written (as GDAL reads them), so the outputs "
                      "are placed where GDAL places this file", UserWarning, stacklevel=3)
    k = len(RPC_INFO_OFFSETS)
    coeffs = {name: v[k + 20 * j: k + 20 * (j + 1)] for j, name in enumerate(RPC_INFO_COEFFS)}
    return RPC(**dict(zip(RPC_INFO_OFFSETS, v[:k], strict=True)), **coeffs).to_dict()


def format_rpc_info(rpcs: dict) -> str:
    """An ``rpc info`` value for rasterio's ``RPC.to_dict()`` ``rpcs``: the 90 values in ENVI's order,
    then ``0, 0, 1`` (the image is the one the coefficients were made for), four values a line as
    ENVI and GDAL write them."""
    values = [float(rpcs[k]) for k in RPC_INFO_OFFSETS]
    for k in RPC_INFO_COEFFS:
        values += [float(c) for c in rpcs[k]]
    text = [repr(x) for x in values] + ["0", "0", "1"]
    return "{\n  " + ",\n  ".join(", ".join(text[i:i + 4]) for i in range(0, len(text), 4)) + "}"


# datum names of 'map info' (spaces and dashes removed, lower case) -> PROJ datum: the ones GDAL
# reads as such (no datum named is WGS 84); another datum gives no CRS, never a guessed one
_DATUMS = {"": "WGS84", "wgs84": "WGS84", "northamerica1983": "NAD83", "nad83": "NAD83",
           "northamerica1927": "NAD27", "nad27": "NAD27"}
# 'map info' units= of a projected grid -> PROJ units (ENVI's "Feet" is GDAL's international foot)
_LINEAR_UNITS = {"meters": "m", "metres": "m", "meter": "m", "metre": "m", "m": "m", "feet": "ft", "foot": "ft",
                 "us feet": "us-ft", "us survey feet": "us-ft", "km": "km", "kilometers": "km", "kilometres": "km"}


_WKT_ROOTS = {"PROJCS", "GEOGCS", "GEOCCS", "COMPD_CS", "LOCAL_CS", "PROJCRS", "GEOGCRS", "GEODCRS", "BOUNDCRS",
              "COMPOUNDCRS", "ENGCRS", "ENGINEERINGCRS"}


def format_map_info(transform, crs: str | None) -> tuple[str, str | None]:
    """``(map info value, coordinate system string or None)`` for a header."""
    a, b, c, d, e, f = transform
    scale = max(abs(a), abs(b), abs(d), abs(e))
    # north-up, south-up or mirrored: signed pixel sizes, no rotation. Terms of 1e-12 of a pixel
    # off the axes (a half turn computed in floating point) count as none: written as a rotation
    # they come out 'rotation=180.0', which GDAL and `parse_map_info` read as a south-up grid,
    # columns unmirrored
    if abs(b) <= 1e-12 * scale and abs(d) <= 1e-12 * scale:
        xs, ys, rotation = a, -e, 0.0
    else:
        th = math.atan2(d, a)
        xs = math.hypot(a, d)
        ct, st = math.cos(th), math.sin(th)
        ys = -e / ct if abs(ct) > abs(st) else b / st
        rotation = math.degrees(th)
    # map info is x = c + xs cos(r) i + ys sin(r) j, y = f + xs sin(r) i - ys cos(r) j: a
    # sheared transform has no such form, and writing an approximation would move the scene
    ct, st = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    back = (xs * ct, ys * st, xs * st, -ys * ct)
    if max(abs(u - v) for u, v in zip(back, (a, b, d, e), strict=True)) > 1e-9 * scale:
        raise InputError(f"transform {tuple(transform)}: sheared, which ENVI 'map info' cannot express; expected a "
                         "rotated or axis-aligned grid (write .tif for this one)")
    name, tail, css = "Arbitrary", [], None
    if crs:
        from rasterio.crs import CRS

        try:
            with quiet_gdal():
                obj = CRS.from_user_input(crs)
        except Exception:  # noqa: BLE001 - PROJ's errors vary; decided below
            obj = None
        text = str(crs).strip()
        if obj is None and text.split("[", 1)[0].strip().upper() in _WKT_ROOTS and not set("{}") & set(text):
            css = text  # WKT this PROJ does not know: kept verbatim rather than dropped
        elif obj is None:
            raise InputError(f"crs {text[:80]!r}: not a coordinate reference system PROJ knows; expected an EPSG code "
                             "or WKT (the georeferencing would be lost)")
        if obj is not None:
            epsg = obj.to_epsg()
            if epsg and (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
                name = "UTM"
                tail = [str(epsg % 100), "North" if epsg < 32700 else "South", "WGS-84", "units=Meters"]
            elif epsg == 4326:
                # no "units=Degrees" (GDAL writes none): beside the coordinate system string
                # it makes GDAL (so QGIS) read WGS 84 without its EPSG:4326 identity
                name, tail = "Geographic Lat/Lon", ["WGS-84"]
            else:
                name = "Arbitrary"
            try:
                css = obj.to_wkt(version="WKT1_ESRI")
            except Exception:  # noqa: BLE001
                css = obj.to_wkt()
    fields = [name, "1", "1", repr(float(c)), repr(float(f)), repr(float(xs)), repr(float(ys)), *tail]
    if abs(rotation) > 1e-12:
        fields.append(f"rotation={rotation!r}")
    return "{" + ", ".join(fields) + "}", css


# -- reading --------------------------------------------------------------------------
def _scalar_field(h: dict, key: str, hdr: Path, **checks) -> float | None:
    if key not in h:
        return None
    return number(h[key].strip("{} \n"), f"header field {key!r}", hdr, **checks)


def _nodata(h: dict, hdr: Path) -> float | None:
    """``data ignore value`` as a float (NaN allowed: GDAL writes ``nan``), or None."""
    if "data ignore value" not in h:
        return None
    text = h["data ignore value"].strip("{} \n")
    if text.lower().lstrip("+-") == "nan":
        return float("nan")
    return _scalar_field(h, "data ignore value", hdr)


def _gains_offsets(h: dict, hdr: Path, bands: int) -> tuple[np.ndarray, np.ndarray, float, str | None]:
    """Per-band ``(gain, offset)`` so that physical = stored * gain + offset; the reflectance
    scale factor (1 if none); and the units: ``data units`` where it names them, else
    reflectance when there is a scale factor, else None.

    ``data gain values``/``data offset values`` (written by ENVI and GDAL) take precedence.
    ``reflectance scale factor`` F means physical = stored / F; it is applied only when neither
    gains nor offsets are given (files that carry both usually state one scaling twice, gain = 1/F).
    """
    gains = _floats(h, "data gain values", hdr)
    offsets = _floats(h, "data offset values", hdr)
    for name, v in (("data gain values", gains), ("data offset values", offsets)):
        if v is None:
            continue
        if v.size != bands:
            raise in_file(hdr, f"header {name!r} has {v.size} values for {bands} bands; expected one per band")
        if not np.all(np.isfinite(v)):
            raise in_file(hdr, f"header {name!r} holds a non-finite value; expected finite numbers")
    if gains is not None and np.any(gains == 0):
        raise in_file(hdr, f"header 'data gain values' has a zero gain (band {int(np.argmin(gains != 0)) + 1}); "
                           "expected non-zero gains")
    factor = _scalar_field(h, "reflectance scale factor", hdr, nonzero=True)
    units = scene_units(h.get("data units", "").strip("{} ")) or ("reflectance" if factor is not None else None)
    if gains is None and offsets is None:
        f = 1.0 if factor is None else factor
        return np.full(bands, 1.0 / f), np.zeros(bands), f, units
    stated = [(n, w) for n, w, v in (("'data gain values'", "gains", gains), ("'data offset values'", "offsets",
                                                                                offsets)) if v is not None]
    gains = np.ones(bands) if gains is None else gains
    offsets = np.zeros(bands) if offsets is None else offsets
    if factor is not None and not np.allclose(gains * factor, 1.0, rtol=1e-6):
        warnings.warn(f"{hdr}: header has both {' and '.join(n for n, _ in stated)} and 'reflectance scale factor' = "
                      f"{factor:g}; the {' and '.join(w for _, w in stated)} are applied, the scale factor is not",
                      UserWarning, stacklevel=3)
    return gains, offsets, (1.0 if factor is None else factor), units


def _spectral(h: dict, hdr: Path, bands: int, names: list[str] | None):
    """(wavelengths nm or None, fwhm nm or None, good bands or None), stored order."""
    wl_raw = per_band(_floats(h, "wavelength", hdr), bands, "wavelengths", hdr)
    units = h.get("wavelength units")
    units = units.strip("{} ") if units else None
    band_numbers = wl_raw is not None and units is not None and units.lower() == "index"
    if band_numbers:
        # ENVI's unit for band numbers: the cube is readable, it just has no wavelengths
        warnings.warn(f"{hdr}: wavelength units = {units}: the 'wavelength' values are band numbers, not "
                      "wavelengths; the scene is read without wavelengths", UserWarning, stacklevel=3)
        wl_raw = None
    wavelengths = None
    if wl_raw is not None:
        wavelengths = to_nm(wl_raw, units, what=f"{hdr}: wavelengths")
    elif names is not None and len(names) == bands:
        wavelengths = wavelengths_from_labels(names, what=f"{hdr}: band names")
    fwhm = per_band(_floats(h, "fwhm", hdr), bands, "fwhm values", hdr)
    if band_numbers:
        fwhm = None  # widths in band numbers: no wavelengths to convert them with
    if fwhm is not None:
        fwhm = fwhm_in_nm(fwhm, wl_raw, wavelengths)  # fwhm shares the wavelength unit
    fwhm = usable_fwhm(fwhm, "fwhm values", hdr)
    bbl = per_band(_floats(h, "bbl", hdr), bands, "bad-band flags (bbl)", hdr)
    good = None if bbl is None else bbl != 0
    return wavelengths, fwhm, good


def _layout(h: dict, hdr: Path) -> tuple[int, int, int, np.dtype, str, int, int]:
    """(rows, cols, bands, dtype, interleave, header offset, byte order), all checked."""
    cols = _int_field(h, "samples", hdr)
    rows = _int_field(h, "lines", hdr)
    bands = _int_field(h, "bands", hdr)
    code = _int_field(h, "data type", hdr)
    if "interleave" not in h:
        _int_field(h, "interleave", hdr)  # raises the missing-field error
    interleave = h["interleave"].strip("{} \n").lower()
    if interleave not in INTERLEAVES:
        raise in_file(hdr, f"interleave {interleave!r} is not supported; expected bsq, bil or bip")
    if code not in DATA_TYPES:
        raise in_file(hdr, f"data type {code} is not supported; expected one of "
                      f"{sorted(DATA_TYPES)} (complex types 6 and 9 are not: unmixing needs real values)")
    if min(rows, cols, bands) < 1:
        raise in_file(hdr, f"header says {rows} lines x {cols} samples x {bands} bands; expected >= 1 each")
    byte_order = _int_field(h, "byte order", hdr, default=0)
    if byte_order not in (0, 1):
        raise in_file(hdr, f"byte order {byte_order} is not 0 (little endian) or 1 (big endian)")
    offset = _int_field(h, "header offset", hdr, default=0)
    if offset < 0:
        raise in_file(hdr, f"header offset = {offset}; expected >= 0 bytes")
    frame = _floats(h, "major frame offsets", hdr)
    if frame is not None and np.any(frame != 0):
        # bytes before/after each line inside the data file: the samples are not where the
        # layout below puts them, so reading on would shift every value
        raise in_file(hdr, f"'major frame offsets' = {h['major frame offsets'].strip()[:40]} is not supported; "
                           "expected {0, 0} (bytes around each line of the data file)")
    dtype = np.dtype(("<" if byte_order == 0 else ">") + DATA_TYPES[code])
    return rows, cols, bands, dtype, interleave, offset, byte_order


def read(path: Path, *, overlap: str = "sort", **options) -> Scene:
    """Read an ENVI scene (header path or data file path) lazily.

    Returns a `Scene` whose source reads windows of a memory map (`io.raw.RawSource`):
    physical = stored * gain + offset per band (``data gain values``/``data offset values``,
    or 1 / ``reflectance scale factor``). Wavelengths come from ``wavelength`` or, when it is
    absent, from ``band names`` such as ``376.44 Nanometers``; per-band lists with the wrong
    count are ignored with a warning. ``overlap`` orders bands of overlapping detectors (see
    `io.bands`). ``scene.nodata`` is the stored ``data ignore value``; ``scene.metadata``
    holds ``format="envi"``, ``interleave``, ``band_names`` and ``description`` when present.
    """
    check_keywords(read, options, "an option of the envi reader")
    overlap_policy(overlap)
    hdr, data = header_and_data(Path(path))
    h = parse_header(hdr)
    if is_spectral_library(h):  # read as an image: one band of lines x samples, nothing to unmix
        raise in_file(hdr, f"is an ENVI spectral library ({h.get('lines', '?').strip()} spectra of "
                           f"{h.get('samples', '?').strip()} channels), not a scene; expected an image (a library "
                           "is a source of endmembers or training spectra)")
    rows, cols, bands, dtype, interleave, offset, byte_order = _layout(h, hdr)
    if data is None:
        data = find_data_file(hdr)
    require_regular_file(data, "data file")
    size = data.stat().st_size
    expected = offset + rows * cols * bands * dtype.itemsize
    if size != expected:
        held = (size - offset) / (rows * cols * dtype.itemsize)
        raise in_file(hdr, f"header says {bands} bands but the data file {data.name} holds {size} bytes "
                      f"({held:.6g} bands); expected lines*samples*bands*{dtype.itemsize} + "
                      f"header offset = {rows}*{cols}*{bands}*{dtype.itemsize} + {offset} = {expected} bytes")

    names = _list(h["band names"]) if "band names" in h else None
    wavelengths, fwhm, good = _spectral(h, hdr, bands, names)
    gains, offsets, factor, units = _gains_offsets(h, hdr, bands)
    nodata = _nodata(h, hdr)
    crs = transform = None
    if "map info" in h:
        transform, crs = parse_map_info(_list(h["map info"]), hdr)
    if "coordinate system string" in h:
        css = h["coordinate system string"].strip()
        css = css[1 : css.rindex("}")] if css.startswith("{") and "}" in css else css
        try:
            crs = _crs_wkt(css.strip())
        except Exception:  # noqa: BLE001 - keep the map info CRS, if any
            pass
    gcps = None
    if transform is None and "geo points" in h:  # tie points place the file only without map info (GDAL too)
        gcps = parse_geo_points(h["geo points"], hdr)
        crs = _crs_wkt(f"EPSG:{WGS84_EPSG}")  # the points' latitudes/longitudes, whatever a projection string says

    array = strided_cube(data, dtype, (rows, cols, bands), interleave, offset=offset, path=hdr)
    metadata = {"format": "envi", "interleave": interleave, "byte_order": byte_order,
                "reflectance_scale_factor": factor}
    if names is not None and len(names) == bands:
        metadata["band_names"] = names
    if "description" in h:
        metadata["description"] = h["description"].strip("{} \n")
    if gcps is not None:
        metadata["gcps"] = gcps
    if "rpc info" in h:  # also beside map info (GDAL then reads the map info only), as from a GeoTIFF
        metadata["rpcs"] = parse_rpc_info(h["rpc info"], hdr)
    arr = arrange(wavelengths, overlap, path=hdr)
    arr.note(metadata, overlap)
    index_key, count_key = (k.replace("_", " ") for k in SOURCE_ORDER_KEYS)  # where a copy's bands came from
    recorded = read_source_band_order(h.get(index_key), h[count_key].strip("{} \n") if count_key in h else None,
                                      bands, hdr, names=(index_key, count_key))
    note_source_order(metadata, recorded, arr.order)
    if arr.order is not None:
        metadata["band_order"] = "sorted by wavelength" if arr.order.size == bands else \
            f"overlap={overlap_policy(overlap)!r}: {arr.order.size} of {bands} bands kept"
        if "band_names" in metadata:
            metadata["band_names"] = arr.take(metadata["band_names"])
    # a band that holds nothing but the data ignore value is a bad band (read as NaN), not
    # data: its fill would otherwise be unmixed as a reflectance
    empty = stored_empty_bands(array, nodata)
    if empty is not None and empty.any():
        good = (np.ones(bands, bool) if good is None else np.asarray(good, bool)) & ~empty
        metadata["empty_bands"] = [int(i) + 1 for i in np.flatnonzero(empty)]  # 1-based, stored
    good_stored = good
    source = RawSource(array, gain=gains, offset=offsets, order=arr.order, empty=empty, dtype=dtype.str[1:],
                       path=data)
    good = arr.take(good)
    require_good_band(good, hdr)
    return make_scene(
        path,
        source,
        wavelengths=arr.wavelengths,
        fwhm=arr.take(fwhm),
        good_bands=good,
        mask=lambda: stored_validity(array, nodata, good_stored, offset=offsets),
        nodata=nodata,
        crs=crs,
        transform=transform,
        name=hdr.stem,
        units=units,
        metadata=metadata,
    )


# -- writing --------------------------------------------------------------------------
def write(scene: Scene, path: Path, *, dtype: str | np.dtype = "float32", interleave: str = "bsq",
          nodata: float | None = None, scale: float | None = None, block_rows: int = 256, **options) -> None:
    """Write ``scene`` as ENVI: ``path`` (``.hdr``) + data file, or data file + ``.hdr``.

    ``path`` ending in ``.hdr`` writes ``name.img`` beside it; any other extension is the
    data file and ``name.hdr`` is the header. The file stores ``value * scale`` (rounded for
    integer types); ``scale`` defaults to `REFLECTANCE_SCALE` (10000) for reflectance written
    as integers and to 1 otherwise. The header gives the readers the physical values back:
    ``reflectance scale factor = scale`` for reflectance, ``data gain values`` (1 / scale per
    band) for other values when ``scale`` is not 1. Invalid pixels (and a bad band's NaN) are
    NaN for float types (``data ignore value = nan``) or ``nodata`` (default: the dtype's
    minimum for signed, maximum for unsigned) for integer types.

    `InputError` for an integer type and a valid value whose scaled value the type cannot hold
    besides ``nodata`` (it was clipped before), and, without ``scale``, for values that are
    not whole numbers (rounding 0-1 data to 0 or 1 keeps nothing): nothing is left written.
    The cube is streamed ``block_rows`` rows at a time; both files are written atomically
    (data first, header last).
    """
    check_keywords(write, options, "an option of the envi writer")
    path = Path(path)
    if path.suffix.lower() == ".hdr":
        hdr, data = path, path.with_suffix(".img")
    else:
        hdr, data = path.with_suffix(".hdr"), path
    dt = np.dtype(dtype).newbyteorder("<")
    if dt.str[1:] not in _CODE_OF:
        raise in_file(path, f"cannot write dtype {np.dtype(dtype)}; expected one of "
                      f"{', '.join(np.dtype(v).name for v in DATA_TYPES.values())}")
    interleave = interleave.lower()
    if interleave not in ("bsq", "bil", "bip"):
        raise InputError(f"interleave {interleave!r}: expected bsq, bil or bip")
    is_float = dt.kind == "f"
    if scale is not None and not (isinstance(scale, int | float | np.number) and np.isfinite(scale) and scale > 0):
        raise ParameterError("scale", scale, "expected a finite number > 0 (the file stores value * scale)")
    reflectance = quantity(scene.units) == "reflectance"
    exact = scale is None and not is_float and not reflectance  # unscaled integers: whole numbers only
    if scale is None:
        scale = REFLECTANCE_SCALE if reflectance and not is_float else 1.0
    scale = float(scale)
    if nodata is None:
        nodata = float("nan") if is_float else float(
            np.iinfo(dt).min if dt.kind == "i" else np.iinfo(dt).max)
    elif not is_float:
        info = np.iinfo(dt)
        if not (np.isfinite(nodata) and float(nodata).is_integer() and info.min <= nodata <= info.max):
            raise InputError(f"nodata {nodata!r}: expected an integer from {info.min} to {info.max} for "
                             f"{dt.name} data (invalid pixels are written as it)")
    rows, cols, bands = scene.shape
    mask = scene.mask
    for p in (hdr, data):
        if p.parent and not p.parent.exists():
            raise in_file(p, "output folder does not exist")

    with atomic_files([hdr, data]) as (tmp_hdr, tmp_data):
        storage = {"bsq": (bands, rows, cols), "bil": (rows, bands, cols), "bip": (rows, cols, bands)}[interleave]
        mm = np.memmap(tmp_data, dtype=dt, mode="w+", shape=storage)
        view = {"bsq": lambda m: m.transpose(1, 2, 0), "bil": lambda m: m.transpose(0, 2, 1),
                "bip": lambda m: m}[interleave](mm)
        for r0 in range(0, rows, block_rows):
            r1 = min(r0 + block_rows, rows)
            blk = scene.read(slice(r0, r1), slice(0, cols))
            if is_float:
                blk = np.array(blk, dtype=np.float32, copy=True)
                if scale != 1:
                    blk *= np.float32(scale)
                blk[~mask[r0:r1]] = np.float32(nodata)
            else:
                blk = _integers(blk, mask[r0:r1], dt, scale, nodata, exact, path, r0)
            view[r0:r1] = blk
        mm.flush()
        del view, mm
        tmp_hdr.write_text(_header_text(scene, dt, interleave, nodata, data.name, scale), encoding="utf-8")


def _integers(blk: np.ndarray, valid: np.ndarray, dt: np.dtype, scale: float, nodata: float, exact: bool,
              path: Path, r0: int) -> np.ndarray:
    """``round(blk * scale)`` as ``dt`` for a block ``(r, c, bands)`` of rows from ``r0``, ``nodata``
    where a pixel is not ``valid (r, c)`` or a value is not finite (a bad band's NaN); `InputError`
    naming the first value the type cannot hold besides ``nodata`` or, when ``exact``, the first
    value that is not a whole number."""
    info = np.iinfo(dt)
    ft = np.float64 if dt.itemsize >= 4 else np.float32  # float32 holds every 8- and 16-bit integer exactly
    x = np.array(blk, dtype=ft, copy=True)
    if scale != 1:
        x *= ft(scale)
    keep = np.isfinite(x)
    keep &= valid[..., None]
    x[~keep] = 0
    stored = np.rint(x)

    def first(bad):
        r, c, b = np.argwhere(bad)[0]
        return f"value {blk[r, c, b]:.6g} at row {r0 + r}, column {c}, band {b + 1}", (r, c, b)

    if exact:
        bad = keep & (np.abs(x - stored) > 1e-6 * np.maximum(1.0, np.abs(x)))
        if bad.any():
            where, _ = first(bad)
            raise in_file(path, f"{where} is not a whole number, which {dt.name} would round away; "
                                "expected scale= (the file stores value * scale, and its header's data gain values "
                                "read it back) or a float dtype")
    low, high = float(info.min), float(info.max)
    if nodata == low:
        low += 1
    elif nodata == high:
        high -= 1
    bad = keep & ((stored < low) | (stored > high) | ((stored == nodata) & (nodata != 0)))
    if bad.any():
        where, at = first(bad)
        top = float(np.abs(x[keep]).max()) / scale
        fits = min(abs(low), abs(high)) if float(x.min()) < 0 else high
        hint = (f"expected a smaller scale (at most {fits / top:.6g} for this block) or a wider dtype" if top > 0
                else "expected a wider dtype")
        if float(stored[at]) < 0 and low >= 0:
            hint = "expected a wider dtype with a sign (int16, int32) for negative values"
        raise in_file(path, f"{where} is {stored[at]:.0f} once scaled by {scale:g}, but {dt.name} holds "
                            f"{low:.0f} to {high:.0f} besides the nodata value {nodata:.0f}; {hint}")
    stored[~keep] = nodata
    return stored.astype(dt)


def _header_text(scene: Scene, dt: np.dtype, interleave: str, nodata: float, data_name: str,
                 scale: float = 1.0) -> str:
    rows, cols, bands = scene.shape
    lines = [
        "ENVI",
        f"description = {{{scene.name or 'unmixgen scene'} written by unmixgen; data file {data_name}}}",
        f"samples = {cols}",
        f"lines = {rows}",
        f"bands = {bands}",
        "header offset = 0",
        "file type = ENVI Standard",
        f"data type = {_CODE_OF[dt.str[1:]]}",
        f"interleave = {interleave}",
        "byte order = 0",
    ]
    nd = "nan" if np.isnan(nodata) else f"{nodata:.10g}"
    lines.append(f"data ignore value = {nd}")
    if scene.transform is not None:
        mi, css = format_map_info(scene.transform, scene.crs)
        lines.append(f"map info = {mi}")
        if css:
            lines.append(f"coordinate system string = {{{css}}}")
    elif scene.metadata.get("gcps"):
        points = format_geo_points(scene.metadata["gcps"], scene.crs)
        if points:
            lines.append(f"geo points = {points}")
    if scene.metadata.get("rpcs"):  # beside a map info too: GDAL places the file by that, and reads these without
        lines.append(f"rpc info = {format_rpc_info(scene.metadata['rpcs'])}")
    if quantity(scene.units) == "reflectance":
        # ENVI's way to say "reflectance": stored values / factor are the scene's values
        # (0-1, or whatever scale it has); radiance has no standard header key
        lines.append(f"reflectance scale factor = {scale:.17g}")
    elif scale != 1:  # physical = stored * gain (`_gains_offsets`), as ENVI and GDAL write it
        lines.append(f"data gain values = {braced_list(np.full(bands, 1.0 / scale))}")
    if label := scene_units(scene.units):  # radiance has no key of ENVI's own: this one reads back (`_gains_offsets`)
        lines.append(f"data units = {label}")
    if scene.wavelengths is not None:
        lines.append("wavelength units = Nanometers")
        lines.append(f"wavelength = {braced_list(scene.wavelengths)}")
    if scene.fwhm is not None:
        lines.append(f"fwhm = {braced_list(scene.fwhm)}")
    if not scene.good_bands.all():
        lines.append("bbl = {" + ", ".join("1" if g else "0" for g in scene.good_bands) + "}")
    # the bands' order in the file they were first read from (`io.bands`), keys with spaces
    lines += [f"{k.replace('_', ' ')} = {v}" for k, v in source_band_order_text(scene).items()]
    names = scene.metadata.get("band_names")
    if names is None or len(names) != bands:
        if scene.wavelengths is not None:
            names = [f"{w:.6g} nm" for w in scene.wavelengths]
        else:
            names = [f"band {i + 1}" for i in range(bands)]
    clean = [str(n).replace(",", ";").replace("{", "(").replace("}", ")") for n in names]
    lines.append("band names = {" + ", ".join(clean) + "}")
    return "\n".join(lines) + "\n"
