"""Ground control points from a swath product's per-pixel latitude/longitude arrays.

Products in instrument geometry (PRISMA L1/L2B/L2C, EMIT read without its GLT) have no map
grid, but give each pixel's latitude and longitude. A grid of at most ``GRID`` x ``GRID`` of
those pixels, the first and last rows and columns included, becomes ground control points
``[row + 0.5, col + 0.5, longitude, latitude, 0]`` (the values belong to the pixel's centre; a
point's row and column count from the top-left corner of the top-left pixel, as GDAL's do) on
WGS 84 (`unmixgen.scene.PLACEMENT_KEYS`). Written with the maps, they let GDAL, so QGIS, warp the
maps into place (a polynomial through the points: close for a smooth swath, not an
orthorectification). The scene gets no geotransform: it has no map grid to claim.
"""

from __future__ import annotations

import warnings

import numpy as np

from .checks import reading

GRID = 10  # pixels sampled along each axis at most (100 points)
CRS = "EPSG:4326"  # the points' latitudes/longitudes: WGS 84, as the products give them


def _positions(size: int) -> list[int]:
    """Up to `GRID` indices spread evenly over ``range(size)``, both ends included."""
    return sorted({int(round(v)) for v in np.linspace(0, size - 1, min(GRID, size))})


def latlon_gcps(lat, lon, shape: tuple[int, int], path, what: str) -> list[list[float]] | None:
    """Ground control points from the 2-D datasets ``lat`` and ``lon`` (degrees, one per pixel of a
    ``shape`` = (rows, cols) scene; h5py datasets or arrays: only the sampled rows are read), or
    None where they cannot place the scene: another shape than the cube's (with a warning
    naming ``what``), or fewer than three usable points that span an area (fill values such as
    EMIT's -9999, NaN and out-of-range values are left out; placeholder arrays of zeros span
    none)."""
    rows, cols = shape
    if tuple(lat.shape) != (rows, cols) or tuple(lon.shape) != (rows, cols):
        warnings.warn(f"{path}: {what} are {tuple(lat.shape)} / {tuple(lon.shape)} for a {rows} x {cols} image; "
                      "not used to place the scene's outputs", UserWarning, stacklevel=3)
        return None
    r, c = _positions(rows), _positions(cols)
    with reading(path, f"read {what}", hdf5=True):
        la = np.asarray(lat[r], np.float64)[:, c]  # h5py reads a sorted list of rows
        lo = np.asarray(lon[r], np.float64)[:, c]
    rr, cc = np.meshgrid(np.asarray(r, np.float64), np.asarray(c, np.float64), indexing="ij")
    ok = np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90) & (np.abs(lo) <= 180)
    if ok.sum() < 3:
        return None
    ground = np.c_[lo[ok], la[ok]]
    if np.linalg.matrix_rank(ground - ground.mean(axis=0), tol=1e-9) < 2:  # all on one point or line
        return None
    return [[float(y + 0.5), float(x + 0.5), float(g), float(t), 0.0]
            for y, x, g, t in zip(rr[ok], cc[ok], lo[ok], la[ok], strict=True)]


def hdf5_gcps(f, lat: str, lon: str, shape: tuple[int, int], path, allow_external: bool) -> list[list[float]] | None:
    """`latlon_gcps` from the datasets ``lat`` and ``lon`` of the open HDF5 file ``f`` (PRISMA,
    EMIT), or None when either is missing."""
    from . import hdf5

    arrays = [hdf5.dataset(f, name, path, allow_external=allow_external, required=False) for name in (lat, lon)]
    if any(a is None for a in arrays):
        return None
    return latlon_gcps(*arrays, shape, path, f"{lat}, {lon}")


__all__ = ["CRS", "GRID", "hdf5_gcps", "latlon_gcps"]
