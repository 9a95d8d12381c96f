"""GeoTIFF via rasterio: lazy windowed reading, georeferenced float32 writing.

Wavelengths are looked for, in order, in: per-band tags ``wavelength`` (+ ``wavelength_units``),
GDAL's ``IMAGERY`` domain ``CENTRAL_WAVELENGTH_UM``, dataset tags ``wavelength = {...}``
(default or ``ENVI`` domain, as GDAL copies them from ENVI headers), and finally band
descriptions holding a number with a unit (``"450.5 nm"``, ``"Band 3 (0.55 um)"``; the same
parser as ENVI band names, `io.bands.wavelengths_from_labels`). FWHM is looked up the same
way (``fwhm``, ``FWHM_UM``; with no unit declared, in the unit of the centres); a list with a
width that is not finite and positive is ignored with a warning (`io.bands.usable_fwhm`).
The file's nodata value, and a mask stored with it (GDAL's per-dataset mask), mark invalid pixels; band
scales/offsets give physical values. Bad bands are the per-band ``bbl`` /
``bad_band_multiplier`` tags (as EnMAP-Box writes them), else a dataset-level ``bbl`` list,
plus every band that holds nothing but nodata (read as NaN, never as scaled nodata).
Bands of overlapping detectors (VNIR then SWIR) are ordered by the ``overlap=`` policy of
`io.bands`. The scene's units are the bands' unit type (GDAL's), the label as it is
(`checks.scene_units`).

Writing produces a float32, band-interleaved, deflate-compressed (tiled when large) GeoTIFF
with NaN as nodata at invalid pixels, per-band descriptions and ``wavelength``/``fwhm``
tags, dataset-level ``wavelength``/``wavelength_units``/``fwhm`` lists, CRS and transform, and
the scene's units label as every band's unit type.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..errors import InputError, check_keywords, in_file
from ..scene import Scene, pixel_validity
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
    confirm_empty_bands,
    make_scene,
    quantity,
    quiet_gdal,
    reading,
    refuse_complex,
    require_regular_file,
    scene_units,
    usable_rpcs,
)


def _rasterio():
    import rasterio

    return rasterio


@contextmanager
def open_raster(path, mode: str = "r", **profile):
    """``rasterio.open`` without the warning about files lacking georeferencing (allowed),
    inside `quiet_gdal` (GDAL's messages never reach stderr on their own)."""
    rio = _rasterio()
    from rasterio.errors import NotGeoreferencedWarning

    seen = _GdalIoErrors()
    log = logging.getLogger("rasterio._env")
    log.addHandler(seen)
    try:
        with warnings.catch_warnings(), quiet_gdal():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rio.open(path, mode, **profile) as ds:
                if seen.messages and mode == "r":
                    # GDAL skips a tag it cannot read (a truncated file) with only a warning:
                    # the wavelengths or nodata in it would silently be gone
                    raise in_file(path, f"cannot read the raster's tags ({seen.messages[0]}); the file looks "
                                        "damaged or truncated")
                yield ds
    finally:
        log.removeHandler(seen)


class _GdalIoErrors(logging.Handler):
    """Collects GDAL's "IO error" warnings that rasterio logs while a file is opened."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "IO error" in text:
            self.messages.append(" ".join(text.split())[:200])


class GeoTiffSource:
    """A lazily read ``(rows, cols, bands)`` cube over a raster file (a `CubeSource`).

    Each `read` opens the file, reads one window of the bands asked for and closes it
    again, so no handle outlives a call. Stored values become physical ones as
    ``stored * scale + offset`` per band (rasterio's scales/offsets, or the ones given, one
    per stored band). ``order`` (stored band indices) picks and orders the bands presented;
    ``empty`` (bool per stored band) marks bands that hold only nodata: they read as NaN.
    """

    def __init__(self, path: Path, *, scales=None, offsets=None, order=None, empty=None):
        self.path = Path(path)
        with reading(self.path, "open as a raster"), open_raster(self.path) as ds:
            stored = (ds.height, ds.width, ds.count)
            dtypes = set(ds.dtypes)
            file_scales, file_offsets = ds.scales, ds.offsets
            # a mask stored with the raster (GDAL's internal or .msk mask, e.g. written by QGIS or
            # gdal_translate -mask): the pixels it excludes may hold any value
            from rasterio.enums import MaskFlags

            self.dataset_mask = any(MaskFlags.per_dataset in flags for flags in ds.mask_flag_enums)
        if len(dtypes) != 1:
            raise in_file(self.path, f"bands have different data types ({', '.join(sorted(dtypes))}); "
                                     "expected one type for the cube")
        self.dtype = _numpy_dtype(dtypes.pop(), self.path)
        if min(stored) < 1:
            raise in_file(self.path, f"raster is {stored[0]} x {stored[1]} x {stored[2]} bands; expected >= 1 each")
        bands = stored[2]
        scales = np.asarray(file_scales if scales is None else scales, np.float64).reshape(-1)
        offsets = np.asarray(file_offsets if offsets is None else offsets, np.float64).reshape(-1)
        if scales.size != bands or offsets.size != bands:
            raise in_file(self.path, f"{scales.size} scales / {offsets.size} offsets for "
                          f"{bands} bands; expected one per band")
        if not (np.all(np.isfinite(scales)) and np.all(np.isfinite(offsets))):
            raise in_file(self.path, "band scales/offsets hold a non-finite value; expected finite numbers")
        if np.any(scales == 0):
            raise in_file(self.path, f"band {int(np.argmin(scales != 0)) + 1} has scale 0; expected non-zero scales")
        self.order = np.arange(bands) if order is None else np.asarray(order, np.intp)
        self.scales = scales[self.order].astype(np.float32)
        self.offsets = offsets[self.order].astype(np.float32)
        empty = np.zeros(bands, bool) if empty is None else np.asarray(empty, bool)
        self.empty = empty[self.order] if empty.any() else None
        self.shape = (stored[0], stored[1], int(self.order.size))
        self._identity = bool(np.all(self.scales == 1) and np.all(self.offsets == 0))

    def read_stored(self, rows: slice, cols: slice, bands=None) -> np.ndarray:
        """The stored values of a window, ``(r, c, bands)`` in the file's dtype.

        ``bands``: stored band indices (default: the presented bands, in order).
        """
        from rasterio.windows import Window

        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        win = Window(c0, r0, max(c1 - c0, 0), max(r1 - r0, 0))
        idx = self.order if bands is None else np.asarray(bands, np.intp)
        with reading(self.path, "read the raster"), open_raster(self.path) as ds:
            data = ds.read(indexes=[int(i) + 1 for i in idx], window=win)
        return np.moveaxis(data, 0, -1)

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        out = self.read_stored(rows, cols).astype(np.float32, order="C")  # band-first read: C order for load()
        if not self._identity:
            out *= self.scales
            out += self.offsets
        if self.empty is not None:
            out[..., self.empty] = np.nan
        return out

    def validity(self, nodata: float | None, good=None, block_rows: int = 256) -> np.ndarray:
        """Valid pixels ``(rows, cols)`` judged on the stored values (see `pixel_validity`) of
        the good bands (``good``: bool per presented band; default all)."""
        rows, cols, _ = self.shape
        pick = slice(None) if good is None else np.asarray(good, bool)
        use = self.order[pick]
        zero_is_value = self.offsets[pick] == 0  # elsewhere a stored zero reads as the offset
        out = np.empty((rows, cols), bool)
        for r0 in range(0, rows, block_rows):
            blk = self.read_stored(slice(r0, r0 + block_rows), slice(0, cols), use).astype(np.float32)
            out[r0 : r0 + block_rows] = pixel_validity(blk, nodata, zero_is_value)
        if self.dataset_mask:  # one byte a pixel, as the result: read whole, with one open
            with reading(self.path, "read the raster's mask"), open_raster(self.path) as ds:
                out &= ds.dataset_mask() > 0
        return out


def _numpy_dtype(name: str, path: Path) -> np.dtype:
    if "complex" in name:
        raise in_file(path, f"raster has complex type {name}; expected real numbers "
                            "(convert to magnitude or take one part explicitly)")
    try:
        dt = np.dtype(name)
    except TypeError:
        raise in_file(path, f"raster data type {name} is not supported") from None
    refuse_complex(dt, path, "raster")
    return dt


def empty_bands(path: Path, nodata: float | None, sample: int = 64, block_rows: int = 256,
                full_limit: int = 1 << 24) -> np.ndarray | None:
    """Bool per stored band: True where every pixel of the band is ``nodata`` (or NaN when
    the nodata value is NaN), None when the file declares no nodata value.

    A nearest-neighbour sample of at most ``sample`` x ``sample`` pixels per band picks the
    candidates. Rasters up to ``full_limit`` pixels then read each candidate band whole (row
    blocks, stopping at the first valid value); larger ones are judged on a denser 1024 x
    1024 sample instead, so a huge sparse file never costs a full read here.
    """
    if nodata is None:
        return None
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    def all_nodata(a):
        return bool(np.all(np.isnan(a))) if np.isnan(nodata) else bool(np.all(a == nodata))

    with reading(path, "read the raster"), open_raster(path) as ds:
        h, w = ds.height, ds.width
        small = ds.read(out_shape=(ds.count, min(h, sample), min(w, sample)), resampling=Resampling.nearest)
        cand = np.array([all_nodata(small[b]) for b in range(ds.count)])
        if h * w <= full_limit:
            return confirm_empty_bands(cand, h, lambda b, r0, r1: ds.read(b + 1, window=Window(0, r0, w, r1 - r0)),
                                       all_nodata, block_rows)
        for b in np.flatnonzero(cand):
            dense = ds.read(int(b) + 1, out_shape=(min(h, 1024), min(w, 1024)), resampling=Resampling.nearest)
            cand[b] = all_nodata(dense)
    return cand


def _braced(value: str) -> list[str]:
    v = value.strip()
    if v.startswith("{"):
        v = v.strip("{}")
    return [s.strip() for s in v.replace(";", ",").split(",") if s.strip()]


def _tag(tags: dict, *names: str) -> str | None:
    low = {k.lower(): v for k, v in tags.items()}
    for n in names:
        if n.lower() in low:
            return low[n.lower()]
    return None


def _numbers(items, what: str, path: Path) -> np.ndarray:
    try:
        return np.array([float(x) for x in items], np.float64)
    except (TypeError, ValueError):
        raise in_file(path, f"{what} holds a non-numeric value; expected numbers") from None


def spectral_axis(ds, kind: str, path: Path, *, raw: bool = False):
    """Band centres (``kind="wavelength"``) or widths (``kind="fwhm"``) in nm, stored
    band order, or None; ``raw=True`` gives ``(values as stored, declared unit or None)``.

    ``ds`` is an open rasterio dataset; see the module docstring for where they are found.
    A dataset-level list with the wrong number of values is ignored with a warning. Widths
    with no declared unit are in the centres' unit (`io.bands.fwhm_in_nm`): a width alone
    cannot tell nm from um by its size (10 nm would read as 10 um).
    """
    bands = ds.count
    what = f"{path}: {kind}"

    def convert(values, units):
        if raw:
            return values, units
        if kind == "fwhm" and (units is None or str(units).strip().lower() in ("", "unknown", "none")):
            centres = spectral_axis(ds, "wavelength", path, raw=True)
            if centres is not None and len(centres[0]) == len(values):
                return fwhm_in_nm(values, centres[0], to_nm(*centres, what=f"{path}: wavelength"))
        return to_nm(values, units, what=what, centres=kind == "wavelength")

    um_key = "CENTRAL_WAVELENGTH_UM" if kind == "wavelength" else "FWHM_UM"
    # 1. per-band tags
    vals, units = [], None
    for b in range(1, bands + 1):
        t = ds.tags(b)
        v = _tag(t, kind)
        if v is None:
            vals = None
            break
        vals.append(v)
        units = units or _tag(t, "wavelength_units", "wavelength units", "units_wavelength")
    if vals:
        return convert(_numbers(vals, f"band tag {kind!r}", path), units)
    # 2. GDAL IMAGERY domain (micrometres)
    try:
        vals = [ds.tags(b, ns="IMAGERY").get(um_key) for b in range(1, bands + 1)]
    except Exception:  # noqa: BLE001 - old GDAL without the domain
        vals = [None]
    if all(v is not None for v in vals):
        return convert(_numbers(vals, f"IMAGERY {um_key}", path), "um")
    # 3. dataset-level lists (default domain, then ENVI domain)
    for ns in (None, "ENVI"):
        try:
            t = ds.tags() if ns is None else ds.tags(ns=ns)
        except Exception:  # noqa: BLE001
            continue
        v = _tag(t, kind)
        if v is not None:
            nums = per_band(_numbers(_braced(v), f"metadata {kind!r}", path), bands,
                            f"{kind} values in the metadata", path)
            if nums is None:
                return None
            return convert(nums, _tag(t, "wavelength_units", "wavelength units"))
    # 4. band descriptions: "450 nm", "Band 3 (0.55 um)", "376.44 Nanometers"
    if kind == "wavelength":
        nm = wavelengths_from_labels(list(ds.descriptions), what=f"{path}: band descriptions")
        return (nm, "nm") if raw and nm is not None else nm
    return None


def bad_band_flags(ds, path: Path) -> np.ndarray | None:
    """Good bands (bool per stored band) from bad-band flags, or None when there are none.

    Per-band tags ``bbl`` or ``bad_band_multiplier`` (0 = bad; EnMAP-Box writes them per
    band, default or ENVI domain) take precedence over a dataset-level ``bbl = {...}`` list.
    """
    per = []
    for b in range(1, ds.count + 1):
        v = None
        for ns in (None, "ENVI"):
            try:
                t = ds.tags(b) if ns is None else ds.tags(b, ns=ns)
            except Exception:  # noqa: BLE001
                continue
            v = _tag(t, "bbl", "bad_band_multiplier")
            if v is not None:
                break
        per.append(v)
    if any(v is not None for v in per):
        flags = _numbers(["1" if v is None else v for v in per], "band tag 'bbl'", path)
        return flags != 0
    for ns in (None, "ENVI"):
        try:
            t = ds.tags() if ns is None else ds.tags(ns=ns)
        except Exception:  # noqa: BLE001
            continue
        v = _tag(t, "bbl")
        if v is not None:
            flags = per_band(_numbers(_braced(v), "metadata 'bbl'", path), ds.count,
                             "bad-band flags (bbl)", path)
            return None if flags is None else flags != 0
    return None


def read(path: Path, *, scales=None, offsets=None, wavelengths=None, fwhm=None,
         nodata: float | None = None, overlap: str = "sort", detectors=None, **options) -> Scene:
    """Read a GeoTIFF lazily into a `Scene` (``metadata["format"] = "geotiff"``).

    ``scales``/``offsets`` (per stored band) override the file's; ``wavelengths``/``fwhm``
    (nm, stored band order) and ``nodata`` override what the file says (the EnMAP reader
    uses these). Bands of overlapping detectors are ordered by ``overlap`` (`io.bands`);
    ``detectors`` (a label per stored band) says which detector measured each band, when
    the caller knows it (default: each run of increasing wavelengths is one detector).
    Bad bands: the file's bad-band flags, plus every band that holds only nodata; such an
    empty band reads as NaN (its nodata value is never scaled into data) and does not make
    pixels invalid.
    """
    check_keywords(read, options, "an option of the geotiff reader")
    overlap_policy(overlap)
    path = require_regular_file(path)
    with reading(path, "open as a raster"), open_raster(path) as ds:
        wl = wavelengths if wavelengths is not None else spectral_axis(ds, "wavelength", path)
        fw = fwhm if fwhm is not None else usable_fwhm(spectral_axis(ds, "fwhm", path), "fwhm values", path)
        file_nodata = ds.nodata
        crs = ds.crs.to_wkt() if ds.crs else None
        transform = tuple(ds.transform)[:6]
        # GDAL reports the identity when a file has no geotransform: a CRS alone places nothing
        has_geo = not ds.transform.is_identity
        gcps, gcp_crs = (None, None) if has_geo else _ground_control_points(ds, path)
        if gcps is not None and crs is None and gcp_crs is not None:
            crs = gcp_crs.to_wkt()
        rpcs = _rational_polynomials(ds, path)
        # GDAL reports a PixelIsPoint file's transform corner-based (the tie point moved by half
        # a pixel); the flag is kept so that outputs store their tie point as the input did
        tags = ds.tags()
        point = has_geo and str(tags.get("AREA_OR_POINT", "")).strip().lower() == "point"
        descriptions = list(ds.descriptions)
        # where a written copy's bands came from (`io.bands.SOURCE_ORDER_KEYS`)
        recorded = read_source_band_order(*(tags.get(k) for k in SOURCE_ORDER_KEYS), len(descriptions), path)
        good = bad_band_flags(ds, path)
        labels = {scene_units(u) for u in ds.units if u}  # GDAL's band unit type
    kinds = {quantity(u) for u in labels}  # bands labelled alike in different words: the quantity they name
    units = labels.pop() if len(labels) == 1 else kinds.pop() if len(kinds) == 1 else None
    nodata = file_nodata if nodata is None else nodata
    nodata = None if nodata is None else float(nodata)
    arr = arrange(wl, overlap, detectors=detectors, path=path)
    empty = empty_bands(path, nodata)
    source = GeoTiffSource(path, scales=scales, offsets=offsets, order=arr.order, empty=empty)
    stored_good = np.ones(len(descriptions), bool) if good is None else good
    if empty is not None:
        stored_good = stored_good & ~empty
    good = arr.take(stored_good)
    require_good_band(good, path)
    metadata = {"format": "geotiff"}
    if gcps is not None:  # placed by ground control points only (an L1 product): kept for the outputs
        metadata["gcps"] = gcps
    if rpcs is not None:  # rational polynomial coefficients (an L1 product): kept for the outputs
        metadata["rpcs"] = rpcs
    if point:
        metadata["area_or_point"] = "Point"
    if all(descriptions):
        metadata["band_names"] = arr.take(descriptions)
    if empty is not None and empty.any():
        metadata["empty_bands"] = [int(i) + 1 for i in np.flatnonzero(empty)]  # 1-based, stored
    arr.note(metadata, overlap)
    note_source_order(metadata, recorded, arr.order)
    return make_scene(
        path,
        source,
        wavelengths=arr.wavelengths,
        fwhm=arr.take(fw),
        good_bands=good,
        mask=lambda: source.validity(nodata, good),
        nodata=nodata,
        crs=crs,
        transform=transform if has_geo else None,
        name=path.stem,
        units=units,
        metadata=metadata,
    )


def _ground_control_points(ds, path: Path):
    """``(points, crs)``: the raster's ground control points as ``[row, col, x, y, z]`` lists
    (pixel row and column, map coordinates) and their CRS (rasterio's, or None), or ``(None,
    None)`` when it has none; `InputError` for one not finite. GDAL is asked once."""
    points, crs = ds.gcps
    if not points:
        return None, None
    out = [[float(g.row), float(g.col), float(g.x), float(g.y), float(g.z or 0.0)] for g in points]
    if not np.all(np.isfinite(out)):
        raise in_file(path, "a ground control point holds a non-finite value; expected finite pixel and map "
                            "coordinates")
    return out, crs


def _rational_polynomials(ds, path: Path) -> dict | None:
    """The raster's rational polynomial coefficients as rasterio's ``RPC.to_dict()``, or None when
    it has none; `InputError` for an RPC block GDAL cannot parse or one holding a non-finite value."""
    try:
        rpcs = ds.rpcs
    except Exception as exc:  # noqa: BLE001 - rasterio's parser raises plain errors on a bad block
        raise in_file(path, f"its rational polynomial coefficients (RPC metadata) cannot be read ({exc}); expected "
                            "the 20 + 20 + 20 + 20 coefficients and offsets/scales GDAL reads") from None
    if rpcs is None:
        return None
    out = rpcs.to_dict()
    if not usable_rpcs(out):
        raise in_file(path, "its rational polynomial coefficients hold a non-finite value or a zero scale; expected "
                            "finite numbers and non-zero scales")
    return out


def write(scene: Scene, path: Path, *, block_rows: int = 256, compress: str = "deflate",
          **options) -> None:
    """Write ``scene`` as float32 GeoTIFF (physical values, invalid pixels NaN), atomically.

    Band descriptions are ``metadata["band_names"]`` or ``"<wl> nm"``; CRS and transform
    are kept, and so is the placement metadata of `unmixgen.scene.PLACEMENT_KEYS`: ground
    control points (a scene without a geotransform), rational polynomial coefficients (in the
    file's RPC tag) and ``AREA_OR_POINT=Point``. Large rasters are tiled 256 x 256; the cube
    is streamed ``block_rows`` rows at a time.
    """
    check_keywords(write, options, "an option of the geotiff writer")
    from rasterio.crs import CRS
    from rasterio.transform import Affine
    from rasterio.windows import Window

    path = Path(path)
    if not path.parent.exists():
        raise in_file(path, "output folder does not exist")
    rows, cols, bands = scene.shape
    profile = {
        "driver": "GTiff", "width": cols, "height": rows, "count": bands, "dtype": "float32",
        "nodata": float("nan"), "compress": compress, "predictor": 3, "zlevel": 1, "interleave": "band",
        "BIGTIFF": "IF_SAFER",
    }
    if compress is None or str(compress).lower() == "none":
        for k in ("compress", "predictor", "zlevel"):
            profile.pop(k)
    elif str(compress).lower() != "deflate":
        profile.pop("zlevel")
    if rows >= 256 and cols >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if scene.crs:
        try:
            with quiet_gdal():
                profile["crs"] = CRS.from_user_input(scene.crs)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{scene.path or 'scene'}: CRS is not usable ({exc})") from None
    if scene.transform is not None:
        profile["transform"] = Affine(*scene.transform)
    names = scene.metadata.get("band_names")
    if names is None or len(names) != bands:
        names = ([f"{w:.6g} nm" for w in scene.wavelengths] if scene.wavelengths is not None
                 else [f"band {i + 1}" for i in range(bands)])
    mask = scene.mask
    with atomic_file(path) as tmp:
        # created here first: an unwritable folder is then an OSError naming the file, which
        # atomic_file reports as bad output; GDAL's own error (RasterioIOError) names none
        open(tmp, "wb").close()
        with open_raster(tmp, "w", **profile) as ds:
            for r0 in range(0, rows, block_rows):
                r1 = min(r0 + block_rows, rows)
                blk = np.array(scene.read(slice(r0, r1), slice(0, cols)), np.float32, copy=True)
                blk[~mask[r0:r1]] = np.nan
                ds.write(np.ascontiguousarray(np.moveaxis(blk, -1, 0)), window=Window(0, r0, cols, r1 - r0))
            gcps = scene.metadata.get("gcps")
            if scene.transform is None and gcps:  # placed by its ground control points, as the input was
                from rasterio.control import GroundControlPoint

                ds.gcps = ([GroundControlPoint(row=r, col=c, x=x, y=y, z=z) for r, c, x, y, z in gcps],
                           profile.get("crs"))
            rpcs = scene.metadata.get("rpcs")
            if rpcs:
                from rasterio.rpc import RPC

                ds.rpcs = RPC(**rpcs)
            if scene.transform is not None and scene.metadata.get("area_or_point") == "Point":
                ds.update_tags(AREA_OR_POINT="Point")  # GDAL stores the tie point at the pixel centre
            if label := scene_units(scene.units):
                ds.units = (label,) * bands
            for b in range(bands):
                ds.set_band_description(b + 1, str(names[b]))
                t = {}
                if scene.wavelengths is not None:
                    t.update(wavelength=repr(float(scene.wavelengths[b])), wavelength_units="nm")
                if scene.fwhm is not None:
                    t["fwhm"] = repr(float(scene.fwhm[b]))
                if t:
                    ds.update_tags(b + 1, **t)
                imagery = {}
                if scene.wavelengths is not None:
                    imagery["CENTRAL_WAVELENGTH_UM"] = repr(float(scene.wavelengths[b]) / 1e3)
                if scene.fwhm is not None:
                    imagery["FWHM_UM"] = repr(float(scene.fwhm[b]) / 1e3)
                if imagery:
                    ds.update_tags(b + 1, ns="IMAGERY", **imagery)
            dtags = {}
            if scene.wavelengths is not None:
                dtags["wavelength"] = braced_list(scene.wavelengths)
                dtags["wavelength_units"] = "Nanometers"
            if scene.fwhm is not None:
                dtags["fwhm"] = braced_list(scene.fwhm)
            if not scene.good_bands.all():
                dtags["bbl"] = "{" + ", ".join("1" if g else "0" for g in scene.good_bands) + "}"
            dtags.update(source_band_order_text(scene))  # the bands' order in the file they were first read from
            if dtags:
                ds.update_tags(**dtags)
