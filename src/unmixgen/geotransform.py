"""GDAL's geotransform (``c a b f d e``) as the rasterio-order affine a `Scene` keeps.

Files in the netCDF conventions store the map grid as GDAL writes it: EMIT's global
attribute ``geotransform`` (numbers), GDAL's and rioxarray's ``GeoTransform`` on the grid
mapping variable (text). Every reader converts it here, with one check and one message.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["from_gdal"]


def _shown(value: Any, g: np.ndarray | None) -> str:
    """The value as an error message shows it: text as written, numbers as a short list."""
    if isinstance(value, str) or g is None:
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(g.tolist()) if g.size <= 12 else f"of {g.size} values"


def from_gdal(value: Any, name: str) -> tuple[float, ...]:
    """A GDAL geotransform ``(c, a, b, f, d, e)`` (numbers, or text of 6 numbers) as the
    rasterio-order affine ``(a, b, c, d, e, f)``: x = a*col + b*row + c, y = d*col + e*row + f.

    `InputError` ``"<name> <value> ...; expected ..."`` (``name`` says where the value was
    read, e.g. ``"e.nc: global attribute 'geotransform'"``) unless it is 6 finite numbers
    whose pixels have non-zero area (a zero pixel size, or both axes along one line, would
    place every pixel on a point or a line)."""
    g = None
    try:
        a = np.asarray(value.split() if isinstance(value, str) else value)
        if a.dtype.kind in "iuf" or isinstance(value, str):  # not bools, bytes or objects
            g = a.astype(np.float64).reshape(-1)
    except (TypeError, ValueError):
        pass
    if g is None or g.size != 6 or not np.all(np.isfinite(g)):
        raise InputError(f"{name} {_shown(value, g)} is not 6 finite numbers; expected GDAL order (c a b f d e)")
    if g[1] * g[5] - g[2] * g[4] == 0:
        raise InputError(f"{name} {_shown(value, g)} gives pixels of zero area; expected non-zero pixel sizes in "
                         "GDAL order (c a b f d e)")
    return (g[1], g[2], g[0], g[4], g[5], g[3])
