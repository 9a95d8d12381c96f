"""EMIT L1B radiance and L2A reflectance NetCDF4 products (read with h5py: NetCDF4 is HDF5).

Product layout (EMIT Data Product User Guide; the LP DAAC NetCDF files):

- root variable ``reflectance`` (L2A) or ``radiance`` (L1B), float32, dimensions
  ``(downtrack, crosstrack, bands)``, ``_FillValue`` -9999, ``units`` (``"unitless"`` for
  reflectance, ``"uW/cm^2/SR/nm"`` for radiance);
- group ``sensor_band_parameters``: ``wavelengths`` (nm) and ``fwhm`` (nm), one per band,
  and in L2A ``good_wavelengths`` (1 = good, 0 = the water-vapour absorption bands where
  no reflectance is retrieved);
- group ``location``: ``lat``, ``lon``, ``elev`` per raw pixel, and the geometry lookup
  table ``glt_x``/``glt_y`` ``(ortho_y, ortho_x)`` int32: the 1-based crosstrack/downtrack
  index of the raw pixel that fills each cell of a north-up grid, 0 where none does;
- global attributes ``geotransform`` (GDAL order) and ``spatial_ref`` (WKT) of that grid.

``ortho=False`` (default) gives the cube in its raw swath geometry (no geotransform; the
lat/lon arrays are named in ``metadata["geolocation"]``, and ground control points sampled
from them, `io.geolocation`, with their CRS, WGS 84, place the outputs). ``ortho=True`` resamples through the GLT
to the north-up grid (nearest raw pixel, as the product's own tools do), with the grid's
CRS and transform; cells without a raw pixel are invalid. Fill values read as NaN; pixels
are judged valid on the good bands only.

The scene's units are the variable's ``units`` attribute as it is (`checks.product_units`) when
it names the variable's quantity (L1B: ``uW/cm^2/SR/nm``, a tenth of W/(m^2 sr um)), else the
variable's name (L2A's ``unitless`` reads as ``reflectance``).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..errors import check_keywords, in_file
from ..geotransform import from_gdal
from ..scene import Scene
from . import geolocation, hdf5
from .bands import arrange, overlap_policy, per_band, require_good_band, usable_fwhm
from .checks import make_scene, product_units, quiet_gdal, reading

VARIABLES = {"reflectance": "reflectance", "radiance": "radiance"}


class EmitOrthoSource:
    """A `CubeSource` on the GLT grid: cell (y, x) holds raw pixel (glt_y - 1, glt_x - 1)."""

    def __init__(self, raw: hdf5.H5CubeSource, glt_x: np.ndarray, glt_y: np.ndarray):
        self.raw = raw
        self.gx = np.abs(glt_x.astype(np.int64)) - 1  # negative entries: filled by the producer
        self.gy = np.abs(glt_y.astype(np.int64)) - 1
        self.cell = (glt_x != 0) & (glt_y != 0)
        self.shape = (glt_x.shape[0], glt_x.shape[1], raw.shape[2])
        self.dtype = raw.dtype

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        cell = self.cell[rows, cols]
        out = np.full((*cell.shape, self.shape[2]), np.nan, np.float32)
        if not cell.any():
            return out
        iy, ix = self.gy[rows, cols][cell], self.gx[rows, cols][cell]
        r0, r1, c0, c1 = int(iy.min()), int(iy.max()) + 1, int(ix.min()), int(ix.max()) + 1
        box = self.raw.read(slice(r0, r1), slice(c0, c1))
        out[cell] = box[iy - r0, ix - c0]
        return out


def fill_value(ds: h5py.Dataset, path: Path) -> float | None:
    """A dataset's ``_FillValue`` as a float (NaN allowed), None when it has none."""
    v = hdf5.attr(ds, "_FillValue")
    if v is None:
        return None
    a = np.asarray(v).reshape(-1)
    if a.size != 1 or a.dtype.kind not in "iuf":
        raise in_file(path, f"{ds.name} attribute '_FillValue' is {v!r}; expected one number")
    return float(a[0])


def _band_parameters(f: h5py.File, path: Path, bands: int, allow_external: bool):
    sbp = hdf5.get(f, "sensor_band_parameters", path, allow_external=allow_external)
    wl_ds = hdf5.dataset(sbp, "wavelengths", path, allow_external=allow_external, ndim=1)
    wl = per_band(hdf5.read_small(wl_ds, path).astype(np.float64), bands, "wavelengths", path)
    fw_ds = hdf5.dataset(sbp, "fwhm", path, allow_external=allow_external, ndim=1, required=False)
    fwhm = None if fw_ds is None else per_band(hdf5.read_small(fw_ds, path).astype(np.float64),
                                               bands, "fwhm values", path)
    fwhm = usable_fwhm(fwhm, "fwhm values", path)
    gw_ds = hdf5.dataset(sbp, "good_wavelengths", path, allow_external=allow_external, ndim=1,
                         required=False)
    good = None
    if gw_ds is not None:
        flags = per_band(hdf5.read_small(gw_ds, path), bands, "good_wavelengths flags", path)
        good = None if flags is None else flags != 0
    return wl, fwhm, good


def _glt(f: h5py.File, path: Path, raw_shape, allow_external: bool) -> tuple[np.ndarray, np.ndarray]:
    gx_ds = hdf5.dataset(f, "location/glt_x", path, allow_external=allow_external, ndim=2)
    gy_ds = hdf5.dataset(f, "location/glt_y", path, allow_external=allow_external, ndim=2)
    if gx_ds.shape != gy_ds.shape or gx_ds.dtype.kind not in "iu" or gy_ds.dtype.kind not in "iu":
        raise in_file(path, f"location/glt_x {gx_ds.shape} {gx_ds.dtype} and glt_y {gy_ds.shape} "
                            f"{gy_ds.dtype}; expected two integer arrays of the same shape")
    gx = hdf5.read_small(gx_ds, path, limit=1 << 28)
    gy = hdf5.read_small(gy_ds, path, limit=1 << 28)
    for g, fill in ((gx, hdf5.attr(gx_ds, "_FillValue")), (gy, hdf5.attr(gy_ds, "_FillValue"))):
        if fill is not None:
            g[g == np.asarray(fill).reshape(-1)[0]] = 0
    limit_y, limit_x = raw_shape[0], raw_shape[1]
    if np.abs(gx).max(initial=0) > limit_x or np.abs(gy).max(initial=0) > limit_y:
        raise in_file(path, f"the GLT points outside the {limit_y} x {limit_x} raw image; expected "
                            "1-based indices within it")
    return gx, gy


def _ortho_geo(f: h5py.File, path: Path):
    gt = hdf5.attr(f, "geotransform")
    ref = hdf5.text(hdf5.attr(f, "spatial_ref"))
    transform = crs = None
    if gt is not None:
        transform = from_gdal(gt, f"{path}: global attribute 'geotransform'")
    if ref:
        from rasterio.crs import CRS

        try:
            with quiet_gdal():
                crs = CRS.from_user_input(ref).to_wkt()
        except Exception:  # noqa: BLE001 - an unusable CRS string means no CRS
            crs = None
    return crs, transform


def read(path: Path, *, ortho: bool = False, overlap: str = "sort", allow_external: bool = False,
         **options) -> Scene:
    """Read an EMIT L1B RAD or L2A RFL NetCDF product lazily (``metadata["format"] = "emit"``).

    Parameters
    ----------
    ortho : resample to the product's north-up grid through its GLT (see module docstring).
    overlap : overlap policy of `io.bands` (EMIT has one detector: no effect on real files).
    allow_external : follow links and external/virtual storage (refused by default).
    """
    check_keywords(read, options, "an option of the emit reader")
    path = Path(path)
    overlap_policy(overlap)
    f = hdf5.open_file(path, "an EMIT L1B/L2A NetCDF product")
    with f, reading(path, "read the EMIT product", hdf5=True):
        var = next((v for v in VARIABLES if hdf5.link_kind(f, v) is not None), None)
        if var is None:
            raise in_file(path, "no root variable 'reflectance' or 'radiance'; expected an EMIT L2A/L1B product")
        ds = hdf5.dataset(f, var, path, allow_external=allow_external, ndim=3)
        rows, cols, bands = ds.shape
        wl, fwhm, good = _band_parameters(f, path, bands, allow_external)
        fill = fill_value(ds, path)
        name = ds.name
        units_attr = hdf5.text(hdf5.attr(ds, "units"))
        dtype = ds.dtype
        glt = _glt(f, path, (rows, cols), allow_external) if ortho else None
        crs, transform = _ortho_geo(f, path) if ortho else (None, None)
        gcps = None if ortho else geolocation.hdf5_gcps(f, "location/lat", "location/lon", (rows, cols), path,
                                                                allow_external)
    arr = arrange(wl, overlap, path=path)
    good = arr.take(good)
    require_good_band(good, path)
    raw = hdf5.H5CubeSource(path, name, (rows, cols, bands), dtype, fill=fill, order=arr.order)
    source = raw if glt is None else EmitOrthoSource(raw, *glt)
    metadata = {"format": "emit", "variable": var, "ortho": bool(ortho), "units_in_file": units_attr}
    arr.note(metadata, overlap)
    if not ortho:
        metadata["geolocation"] = "location/lat, location/lon (per raw pixel); ortho=True uses the GLT"
    if gcps is not None:
        metadata["gcps"], crs = gcps, geolocation.CRS
    return make_scene(
        path, source, wavelengths=arr.wavelengths, fwhm=arr.take(fwhm), good_bands=good,
        mask=lambda: hdf5.validity_by_reading(source, good), nodata=fill, crs=crs,
        transform=transform, name=path.stem, units=product_units(var, units_attr), metadata=metadata,
    )


__all__ = ["read"]
