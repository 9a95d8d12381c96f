"""GeoTIFF via rasterio: lazy windowed reading, georeferenced float32 writing.

Wavelengths are looked for, in order, in: per-band tags ``wavelength`` (+ ``wavelength_units``),
GDAL's ``IMAGERY`` domain ``CENTRAL_WAVELENGTH_UM``, dataset tags ``wavelength = {...}``
(default or ``ENVI`` domain, as GDAL copies them from ENVI headers), and finally band
descriptions holding a number with a unit (``"450.5 nm"``, ``"Band 3 (0.55 um)"``). FWHM is
looked up the same way (``fwhm``, ``FWHM_UM``). The file's nodata value marks invalid
pixels; band scales/offsets give physical values.

Writing produces a float32, band-interleaved, deflate-compressed (tiled when large) GeoTIFF
with NaN as nodata at invalid pixels, per-band descriptions and ``wavelength``/``fwhm``
tags, dataset-level ``wavelength``/``wavelength_units``/``fwhm`` lists, CRS and transform.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..errors import InputError, in_file
from ..scene import Scene, pixel_validity
from ..wavelengths import to_nm

_NUM_UNIT = re.compile(
    r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(nm|nanomet\w*|um|µm|μm|micromet\w*|microns?)\b",
    re.IGNORECASE,
)


def _rasterio():
    import rasterio

    return rasterio


@contextmanager
def open_raster(path, mode: str = "r", **profile):
    """``rasterio.open`` without the warning about files lacking georeferencing (allowed)."""
    rio = _rasterio()
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rio.open(path, mode, **profile) as ds:
            yield ds


class GeoTiffSource:
    """A lazily read ``(rows, cols, bands)`` cube over a raster file (a `CubeSource`).

    Each `read` opens the file, reads one window of all bands and closes it again, so no
    handle outlives a call. Stored values become physical ones as
    ``stored * scale + offset`` per band (rasterio's scales/offsets, or the ones given).
    """

    def __init__(self, path: Path, *, scales=None, offsets=None):
        self.path = Path(path)
        with open_raster(self.path) as ds:
            self.shape = (ds.height, ds.width, ds.count)
            self.dtype = np.dtype(ds.dtypes[0])
            file_scales, file_offsets = ds.scales, ds.offsets
        scales = file_scales if scales is None else scales
        offsets = file_offsets if offsets is None else offsets
        self.scales = np.asarray(scales, np.float32).reshape(-1)
        self.offsets = np.asarray(offsets, np.float32).reshape(-1)
        bands = self.shape[2]
        if self.scales.size != bands or self.offsets.size != bands:
            raise in_file(self.path, f"{self.scales.size} scales / {self.offsets.size} offsets for "
                          f"{bands} bands; expected one per band")
        self._identity = bool(np.all(self.scales == 1) and np.all(self.offsets == 0))

    def read_stored(self, rows: slice, cols: slice) -> np.ndarray:
        """The stored values of a window, ``(r, c, bands)`` in the file's dtype."""
        from rasterio.windows import Window

        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        win = Window(c0, r0, max(c1 - c0, 0), max(r1 - r0, 0))
        with open_raster(self.path) as ds:
            data = ds.read(window=win)
        return np.moveaxis(data, 0, -1)

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        out = self.read_stored(rows, cols).astype(np.float32)
        if not self._identity:
            out *= self.scales
            out += self.offsets
        return out

    def validity(self, nodata: float | None, block_rows: int = 256) -> np.ndarray:
        """Valid pixels ``(rows, cols)`` judged on the stored values (see `pixel_validity`)."""
        rows, cols, _ = self.shape
        out = np.empty((rows, cols), bool)
        for r0 in range(0, rows, block_rows):
            blk = self.read_stored(slice(r0, r0 + block_rows), slice(0, cols)).astype(np.float32)
            out[r0 : r0 + block_rows] = pixel_validity(blk, nodata)
        return out


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


def spectral_axis(ds, kind: str, path: Path) -> np.ndarray | None:
    """Band centres (``kind="wavelength"``) or widths (``kind="fwhm"``) in nm, or None.

    ``ds`` is an open rasterio dataset; see the module docstring for where they are found.
    """
    bands = ds.count
    what = f"{path}: {kind}"
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
        try:
            return to_nm([float(v) for v in vals], units, what=what)
        except InputError:
            raise
        except ValueError:
            raise in_file(path, f"band tag {kind!r} is not a number") from None
    # 2. GDAL IMAGERY domain (micrometres)
    try:
        vals = [ds.tags(b, ns="IMAGERY").get(um_key) for b in range(1, bands + 1)]
    except Exception:  # noqa: BLE001 - old GDAL without the domain
        vals = [None]
    if all(v is not None for v in vals):
        return to_nm([float(v) for v in vals], "um", what=what)
    # 3. dataset-level lists (default domain, then ENVI domain)
    for ns in (None, "ENVI"):
        try:
            t = ds.tags() if ns is None else ds.tags(ns=ns)
        except Exception:  # noqa: BLE001
            continue
        v = _tag(t, kind)
        if v is not None:
            items = _braced(v)
            if len(items) != bands:
                raise in_file(path, f"metadata lists {len(items)} {kind} values for {bands} bands; "
                              "expected one per band")
            try:
                nums = [float(x) for x in items]
            except ValueError:
                raise in_file(path, f"metadata {kind!r} holds a non-numeric value") from None
            return to_nm(nums, _tag(t, "wavelength_units", "wavelength units"), what=what)
    # 4. band descriptions: "450 nm", "Band 3 (0.55 um)"
    if kind == "wavelength":
        desc = ds.descriptions
        found = [_NUM_UNIT.search(d) if d else None for d in desc]
        if bands and all(found):
            nm = [to_nm([float(m.group(1))], m.group(2), what=what)[0] for m in found]
            return np.asarray(nm, np.float64)
    return None


def read(path: Path, *, scales=None, offsets=None, wavelengths=None, fwhm=None,
         nodata: float | None = None, **options) -> Scene:
    """Read a GeoTIFF lazily into a `Scene` (``metadata["format"] = "geotiff"``).

    ``scales``/``offsets`` (per band) override the file's; ``wavelengths``/``fwhm`` (nm)
    and ``nodata`` override what the file says (the EnMAP reader uses these).
    """
    from rasterio.errors import RasterioIOError

    path = Path(path)
    try:
        source = GeoTiffSource(path, scales=scales, offsets=offsets)
        with open_raster(path) as ds:
            wl = wavelengths if wavelengths is not None else spectral_axis(ds, "wavelength", path)
            fw = fwhm if fwhm is not None else spectral_axis(ds, "fwhm", path)
            file_nodata = ds.nodata
            crs = ds.crs.to_wkt() if ds.crs else None
            transform = tuple(ds.transform)[:6]
            has_geo = ds.crs is not None or not ds.transform.is_identity
            descriptions = list(ds.descriptions)
            tags = ds.tags()
    except RasterioIOError as exc:
        raise in_file(path, f"cannot open as a raster ({exc})") from None
    nodata = file_nodata if nodata is None else nodata
    good = None
    bbl = _tag(tags, "bbl")
    if bbl is not None:
        try:
            g = np.array([float(x) for x in _braced(bbl)]) != 0
            good = g if g.size == source.shape[2] else None
        except ValueError:
            good = None
    metadata = {"format": "geotiff"}
    if all(descriptions):
        metadata["band_names"] = descriptions
    return Scene(
        source,
        wavelengths=wl,
        fwhm=fw,
        good_bands=good,
        mask=lambda: source.validity(nodata),
        nodata=None if nodata is None else float(nodata),
        crs=crs,
        transform=transform if has_geo else None,
        name=path.stem,
        path=str(path),
        metadata=metadata,
    )


def write(scene: Scene, path: Path, *, block_rows: int = 256, compress: str = "deflate",
          **options) -> None:
    """Write ``scene`` as float32 GeoTIFF (physical values, invalid pixels NaN), atomically.

    Band descriptions are ``metadata["band_names"]`` or ``"<wl> nm"``; CRS and transform
    are kept. Large rasters are tiled 256 x 256; the cube is streamed ``block_rows`` rows
    at a time.
    """
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
        with open_raster(tmp, "w", **profile) as ds:
            for r0 in range(0, rows, block_rows):
                r1 = min(r0 + block_rows, rows)
                blk = np.array(scene.read(slice(r0, r1), slice(0, cols)), np.float32, copy=True)
                blk[~mask[r0:r1]] = np.nan
                ds.write(np.ascontiguousarray(np.moveaxis(blk, -1, 0)), window=Window(0, r0, cols, r1 - r0))
            for b in range(bands):
                ds.set_band_description(b + 1, str(names[b]))
                t = {}
                if scene.wavelengths is not None:
                    t.update(wavelength=f"{scene.wavelengths[b]:.10g}", wavelength_units="nm")
                if scene.fwhm is not None:
                    t["fwhm"] = f"{scene.fwhm[b]:.10g}"
                if t:
                    ds.update_tags(b + 1, **t)
                imagery = {}
                if scene.wavelengths is not None:
                    imagery["CENTRAL_WAVELENGTH_UM"] = f"{scene.wavelengths[b] / 1e3:.10g}"
                if scene.fwhm is not None:
                    imagery["FWHM_UM"] = f"{scene.fwhm[b] / 1e3:.10g}"
                if imagery:
                    ds.update_tags(b + 1, ns="IMAGERY", **imagery)
            dtags = {}
            if scene.wavelengths is not None:
                dtags["wavelength"] = "{" + ", ".join(f"{w:.10g}" for w in scene.wavelengths) + "}"
                dtags["wavelength_units"] = "Nanometers"
            if scene.fwhm is not None:
                dtags["fwhm"] = "{" + ", ".join(f"{w:.10g}" for w in scene.fwhm) + "}"
            if not scene.good_bands.all():
                dtags["bbl"] = "{" + ", ".join("1" if g else "0" for g in scene.good_bands) + "}"
            if dtags:
                ds.update_tags(**dtags)
