"""ENVI raster: a text header (``name.hdr``) beside a raw binary data file.

Reading is lazy: the data file is memory-mapped with the header's data type, byte order,
header offset and interleave, and viewed as ``(rows, cols, bands)`` through transposes (no
copy). `Scene.read` then touches only the window asked for.

Header fields used
------------------
``samples``, ``lines``, ``bands``, ``data type``, ``interleave`` (required);
``byte order``, ``header offset``, ``wavelength`` + ``wavelength units``, ``fwhm``, ``bbl``,
``band names``, ``data ignore value``, ``reflectance scale factor`` (physical value =
stored / factor), ``map info``, ``coordinate system string``.

Writing produces float32 BSQ (little endian) by default; invalid pixels are written as NaN
and the header says ``data ignore value = nan`` (GDAL/QGIS read that as the nodata value).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..atomic import atomic_files
from ..errors import InputError, in_file
from ..scene import ArraySource, Scene, pixel_validity
from ..wavelengths import to_nm

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
REQUIRED = ("samples", "lines", "bands", "data type", "interleave")
DATA_EXTENSIONS = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".bin")


# -- header --------------------------------------------------------------------------
def parse_header(path: Path) -> dict[str, str]:
    """Read an ENVI header into ``{lower-case key: raw value string}``.

    Brace values ``{...}`` may span lines; braces are kept in the value. Raises
    `InputError` when the file is not an ENVI header.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
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
    try:
        return int(header[key].strip("{} \n"))
    except ValueError:
        raise in_file(hdr, f"header field {key!r} = {header[key]!r} is not an integer") from None


def _floats(header: dict, key: str, hdr: Path) -> np.ndarray | None:
    if key not in header:
        return None
    try:
        return np.array([float(s) for s in _list(header[key])], dtype=np.float64)
    except ValueError:
        raise in_file(hdr, f"header field {key!r} holds a non-numeric value; expected numbers") from None


# -- finding the files ------------------------------------------------------------------
def header_and_data(path: Path) -> tuple[Path, Path | None]:
    """``(header, data file)`` for a data file path, ``(header, None)`` for a header path
    (use `find_data_file` once the header is known to be good)."""
    path = Path(path)
    if path.suffix.lower() == ".hdr":
        if not path.is_file():
            raise in_file(path, "no such file")
        return path, None
    from . import _envi_header_for

    hdr = _envi_header_for(path)
    if hdr is None:
        raise in_file(path, "no ENVI header (.hdr) beside this data file")
    return hdr, path


def find_data_file(hdr: Path) -> Path:
    """The data file ENVI would open for ``hdr``: same name with no extension, ``.img``,
    ``.dat``, ``.raw``, ``.bsq``/``.bil``/``.bip`` (any case), or ``name.ext`` for
    ``name.ext.hdr``."""
    base = hdr.with_suffix("")
    cands = []
    for ext in DATA_EXTENSIONS:
        for e in (ext, ext.upper()):
            c = base.with_name(base.name + e)
            if c != hdr and c not in cands:
                cands.append(c)
    for c in cands:
        if c.is_file():
            return c
    # case-insensitive match in the folder (e.g. SCENE.IMG for scene.hdr)
    want = {c.name.lower() for c in cands}
    try:
        for p in hdr.parent.iterdir():
            if p.name.lower() in want and p != hdr and p.is_file():
                return p
    except OSError:
        pass
    raise in_file(hdr, f"no data file found beside the header (looked for {base.name} with "
                  "no extension, .img, .dat, .raw, .bsq, .bil, .bip)")


# -- georeferencing -------------------------------------------------------------------
def _crs_wkt(user_input) -> str | None:
    """WKT of a CRS given as WKT/EPSG/PROJ; an EPSG-identified WKT when one matches."""
    from rasterio.crs import CRS

    crs = CRS.from_user_input(user_input)
    epsg = crs.to_epsg()
    return CRS.from_epsg(epsg).to_wkt() if epsg else crs.to_wkt()


def parse_map_info(items: list[str], hdr: Path) -> tuple[tuple[float, ...], str | None]:
    """``(transform (a, b, c, d, e, f), crs WKT or None)`` from a ``map info`` list."""
    if len(items) < 7:
        raise in_file(hdr, f"'map info' has {len(items)} items; expected at least 7 "
                      "(projection, ref x, ref y, easting, northing, x size, y size)")
    name = items[0].strip().lower()
    try:
        refx, refy, east, north, xs, ys = (float(v) for v in items[1:7])
    except ValueError:
        raise in_file(hdr, "'map info' items 2-7 are not numbers") from None
    rotation = 0.0
    extra = []
    for it in items[7:]:
        if it.lower().startswith("rotation="):
            rotation = float(it.split("=", 1)[1])
        else:
            extra.append(it)
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
    wgs84 = datum.replace("-", "").replace(" ", "").lower() in ("wgs84", "")
    if name == "utm" and len(extra) >= 2 and wgs84:
        try:
            zone = int(float(extra[0]))
            south = extra[1].strip().lower().startswith("s")
            crs = _crs_wkt(f"EPSG:{(32700 if south else 32600) + zone}")
        except ValueError:
            crs = None
    elif name.startswith("geographic") and wgs84:
        crs = _crs_wkt("EPSG:4326")
    return (a, b, c, d, e, f), crs


def format_map_info(transform, crs: str | None) -> tuple[str, str | None]:
    """``(map info value, coordinate system string or None)`` for a header."""
    a, b, c, d, e, f = transform
    xs = math.hypot(a, d)
    ys = math.hypot(b, e)
    rotation = math.degrees(math.atan2(d, a))
    name, tail, css = "Arbitrary", [], None
    if crs:
        from rasterio.crs import CRS

        try:
            obj = CRS.from_user_input(crs)
        except Exception:  # noqa: BLE001 - an unusable CRS is written as no CRS
            obj = None
        if obj is not None:
            epsg = obj.to_epsg()
            if epsg and (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
                name = "UTM"
                tail = [str(epsg % 100), "North" if epsg < 32700 else "South", "WGS-84", "units=Meters"]
            elif epsg == 4326:
                name, tail = "Geographic Lat/Lon", ["WGS-84", "units=Degrees"]
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
def memmap_cube(data: Path, dtype: np.dtype, shape: tuple[int, int, int], interleave: str,
                offset: int) -> np.ndarray:
    """Memory-map ``data`` and return a ``(rows, cols, bands)`` view (no copy)."""
    rows, cols, bands = shape
    storage = {"bsq": (bands, rows, cols), "bil": (rows, bands, cols), "bip": (rows, cols, bands)}[interleave]
    mm = np.memmap(data, dtype=dtype, mode="r", offset=offset, shape=storage)
    if interleave == "bsq":
        return mm.transpose(1, 2, 0)
    if interleave == "bil":
        return mm.transpose(0, 2, 1)
    return mm


def stored_validity(array: np.ndarray, nodata: float | None, block_rows: int = 256) -> np.ndarray:
    """Valid-pixel mask ``(rows, cols)`` computed on the *stored* values of ``array``
    ``(rows, cols, bands)`` (see `pixel_validity`), a block of rows at a time."""
    rows, cols = array.shape[:2]
    out = np.empty((rows, cols), bool)
    for r0 in range(0, rows, block_rows):
        blk = np.asarray(array[r0 : r0 + block_rows], dtype=np.float32)
        out[r0 : r0 + block_rows] = pixel_validity(blk, nodata)
    return out


def read(path: Path, **options) -> Scene:
    """Read an ENVI scene (header path or data file path) lazily.

    Returns a `Scene` whose source is a memory map wrapped in `ArraySource` with
    ``scale = 1 / reflectance scale factor``. ``scene.nodata`` is the stored
    ``data ignore value``; ``scene.metadata`` holds ``format="envi"``, ``interleave``,
    ``band_names`` and ``description`` when present.
    """
    hdr, data = header_and_data(Path(path))
    h = parse_header(hdr)
    cols = _int_field(h, "samples", hdr)
    rows = _int_field(h, "lines", hdr)
    bands = _int_field(h, "bands", hdr)
    code = _int_field(h, "data type", hdr)
    if "interleave" not in h:
        _int_field(h, "interleave", hdr)  # raises the missing-field error
    interleave = h["interleave"].strip().lower()
    if interleave not in ("bsq", "bil", "bip"):
        raise in_file(hdr, f"interleave {interleave!r} is not supported; expected bsq, bil or bip")
    if code not in DATA_TYPES:
        raise in_file(hdr, f"data type {code} is not supported; expected one of "
                      f"{sorted(DATA_TYPES)} (complex types 6 and 9 are not)")
    if min(rows, cols, bands) < 1:
        raise in_file(hdr, f"header says {rows} lines x {cols} samples x {bands} bands; expected >= 1 each")
    byte_order = _int_field(h, "byte order", hdr, default=0)
    if byte_order not in (0, 1):
        raise in_file(hdr, f"byte order {byte_order} is not 0 (little endian) or 1 (big endian)")
    offset = _int_field(h, "header offset", hdr, default=0)
    dtype = np.dtype(("<" if byte_order == 0 else ">") + DATA_TYPES[code])

    if data is None:
        data = find_data_file(hdr)
    if not data.is_file():
        raise in_file(data, "data file is missing")
    size = data.stat().st_size
    expected = offset + rows * cols * bands * dtype.itemsize
    if size != expected:
        held = (size - offset) / (rows * cols * dtype.itemsize)
        raise in_file(hdr, f"header says {bands} bands but the data file {data.name} holds {size} bytes "
                      f"({held:.6g} bands); expected lines*samples*bands*{dtype.itemsize} + "
                      f"header offset = {rows}*{cols}*{bands}*{dtype.itemsize} + {offset} = {expected} bytes")

    wavelengths = None
    wl = _floats(h, "wavelength", hdr)
    if wl is not None:
        if wl.size != bands:
            raise in_file(hdr, f"header lists {wl.size} wavelengths for {bands} bands; expected one per band")
        units = h.get("wavelength units")
        units = units.strip("{} ") if units else None
        wavelengths = to_nm(wl, units, what=f"{hdr}: wavelengths")
    fwhm = _floats(h, "fwhm", hdr)
    if fwhm is not None:
        if fwhm.size != bands:
            raise in_file(hdr, f"header lists {fwhm.size} fwhm values for {bands} bands; expected one per band")
        if wl is not None:
            fwhm = wl_scale(wl, wavelengths) * fwhm  # fwhm shares the wavelength unit
    bbl = _floats(h, "bbl", hdr)
    if bbl is not None and bbl.size != bands:
        raise in_file(hdr, f"header 'bbl' has {bbl.size} values for {bands} bands; expected one per band")
    good = None if bbl is None else bbl != 0

    factor = 1.0
    if "reflectance scale factor" in h:
        try:
            factor = float(h["reflectance scale factor"].strip("{} "))
        except ValueError:
            raise in_file(hdr, "'reflectance scale factor' is not a number") from None
        if not np.isfinite(factor) or factor == 0:
            raise in_file(hdr, f"'reflectance scale factor' = {factor:g}; expected a finite non-zero number")
    nodata = None
    if "data ignore value" in h:
        try:
            nodata = float(h["data ignore value"].strip("{} "))
        except ValueError:
            raise in_file(hdr, "'data ignore value' is not a number") from None

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

    try:
        array = memmap_cube(data, dtype, (rows, cols, bands), interleave, offset)
    except (OSError, ValueError) as exc:
        raise in_file(data, f"cannot memory-map the data file ({exc})") from None
    names = _list(h["band names"]) if "band names" in h else None
    metadata = {"format": "envi", "interleave": interleave, "byte_order": byte_order,
                "reflectance_scale_factor": factor}
    if names is not None and len(names) == bands:
        metadata["band_names"] = names
    if "description" in h:
        metadata["description"] = h["description"].strip("{} \n")
    units = None
    if "reflectance scale factor" in h:
        units = "reflectance"
    order = None
    if wavelengths is not None and bands > 1 and np.any(np.diff(wavelengths) <= 0):
        # Overlapping detectors (e.g. AVIRIS): present bands sorted by wavelength; duplicates
        # are still refused by Scene.
        order = np.argsort(wavelengths, kind="stable")
        wavelengths = wavelengths[order]
        fwhm = None if fwhm is None else fwhm[order]
        good = None if good is None else good[order]
        if "band_names" in metadata:
            metadata["band_names"] = [metadata["band_names"][i] for i in order]
        metadata["band_order"] = "sorted by wavelength"
    source = ArraySource(array, scale=1.0 / factor, band_order=order)
    source.dtype = np.dtype(DATA_TYPES[code])  # report int16, not >i2
    return Scene(
        source,
        wavelengths=wavelengths,
        fwhm=fwhm,
        good_bands=good,
        mask=lambda: stored_validity(array, nodata),
        nodata=nodata,
        crs=crs,
        transform=transform,
        name=hdr.stem,
        path=str(path),
        units=units,
        metadata=metadata,
    )


def wl_scale(raw: np.ndarray, nm: np.ndarray) -> float:
    """The factor that took ``raw`` wavelengths to ``nm`` (1, 1000, ...)."""
    i = int(np.argmax(np.abs(raw)))
    return float(nm[i] / raw[i]) if raw[i] != 0 else 1.0


# -- writing --------------------------------------------------------------------------
def _fmt_list(values) -> str:
    return "{" + ", ".join(f"{float(v):.10g}" for v in values) + "}"


def write(scene: Scene, path: Path, *, dtype: str | np.dtype = "float32", interleave: str = "bsq",
          nodata: float | None = None, block_rows: int = 256, **options) -> None:
    """Write ``scene`` as ENVI: ``path`` (``.hdr``) + data file, or data file + ``.hdr``.

    ``path`` ending in ``.hdr`` writes ``name.img`` beside it; any other extension is the
    data file and ``name.hdr`` is the header. Values are physical (after scale factors);
    invalid pixels are NaN for float types (``data ignore value = nan``) or ``nodata``
    (default: the dtype's minimum for signed, maximum for unsigned) for integer types.
    The cube is streamed ``block_rows`` rows at a time; both files are written atomically
    (data first, header last).
    """
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
    if nodata is None:
        nodata = float("nan") if is_float else float(
            np.iinfo(dt).min if dt.kind == "i" else np.iinfo(dt).max)
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
            blk = np.array(blk, dtype=np.float32, copy=True)
            blk[~mask[r0:r1]] = np.float32(nodata) if is_float else 0
            if not is_float:
                blk = np.rint(blk)
                info = np.iinfo(dt)
                blk = np.clip(blk, info.min, info.max).astype(dt)
                blk[~mask[r0:r1]] = dt.type(nodata)
            view[r0:r1] = blk
        mm.flush()
        del view, mm
        tmp_hdr.write_text(_header_text(scene, dt, interleave, nodata, data.name), encoding="utf-8")


def _header_text(scene: Scene, dt: np.dtype, interleave: str, nodata: float, data_name: str) -> str:
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
    if scene.wavelengths is not None:
        lines.append("wavelength units = Nanometers")
        lines.append(f"wavelength = {_fmt_list(scene.wavelengths)}")
    if scene.fwhm is not None:
        lines.append(f"fwhm = {_fmt_list(scene.fwhm)}")
    if not scene.good_bands.all():
        lines.append("bbl = {" + ", ".join("1" if g else "0" for g in scene.good_bands) + "}")
    names = scene.metadata.get("band_names")
    if names is None or len(names) != bands:
        if scene.wavelengths is not None:
            names = [f"{w:.6g} nm" for w in scene.wavelengths]
        else:
            names = [f"band {i + 1}" for i in range(bands)]
    clean = [str(n).replace(",", ";").replace("{", "(").replace("}", ")") for n in names]
    lines.append("band names = {" + ", ".join(clean) + "}")
    return "\n".join(lines) + "\n"
