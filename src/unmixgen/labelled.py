"""Arrays with named dimensions (xarray's DataArray) as scene cubes, laid out by their names.

A remote-sensing notebook opens scenes with xarray: ``rioxarray.open_rasterio`` gives dims
``("band", "y", "x")`` with a ``spatial_ref`` coordinate (CRS and GDAL's geotransform), EMIT's
NetCDF gives ``("downtrack", "crosstrack", "bands")``. ``np.asarray`` of such an array keeps
its dim order, so taken as ``(rows, cols, bands)`` a 224-band 100 x 120 scene would be 224 rows
of 100 columns and 120 bands. Here the dims are found by name (`SPECTRAL_DIMS`, `ROW_DIMS`,
`COL_DIMS`, any case) and the cube is presented as ``(rows, cols, bands)``; the coordinates and
attributes give the wavelengths, FWHM, fill value, units, CRS and geotransform (`labelled_cube`).

Duck-typed: an object with ``dims``, ``coords``, ``attrs`` and ``values`` (or ``data``) is
taken for a DataArray; xarray is never imported, nor needed. Arrays without dim names (numpy,
torch) are not guessed at: they are ``(rows, cols, bands)`` as they are.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError, ParameterError
from .geotransform import from_gdal
from .units import product_units, quantity, scene_units
from .wavelengths import fwhm_in_nm, to_nm, unit_kind, usable_fwhm, wavelengths_from_labels

#: names of the spectral dim (any case)
SPECTRAL_DIMS = ("band", "bands", "wavelength", "wavelengths", "wl", "spectral", "spectrum", "spectra",
                 "channel", "channels", "wavenumber", "wavenumbers", "frequency")
#: names of the dim along the image's rows (any case)
ROW_DIMS = ("y", "lat", "latitude", "row", "rows", "line", "lines", "downtrack", "along_track", "northing",
            "height", "ortho_y")
#: names of the dim along the image's columns (any case)
COL_DIMS = ("x", "lon", "long", "longitude", "col", "cols", "column", "columns", "sample", "samples", "crosstrack",
            "across_track", "easting", "width", "ortho_x")
#: coordinates (or attributes) that hold band centres, and their widths
WAVELENGTH_NAMES = ("wavelength", "wavelengths", "wl", "wavenumber", "wavenumbers")
FWHM_NAMES = ("fwhm", "bandwidth", "bandwidths")
#: coordinates (or attributes) of good-band flags, 1 good and 0 bad (EMIT's, ENVI's bbl)
GOOD_BAND_NAMES = ("good_wavelengths", "good_bands", "bbl")
#: attributes that hold the fill value of the values as they are
NODATA_ATTRS = ("_FillValue", "nodata", "missing_value")
#: coordinates holding the CRS and geotransform (CF grid mapping; rioxarray's ``spatial_ref``)
GRID_MAPPING_NAMES = ("spatial_ref", "crs")

_EXPECTED = (f"expected a spectral dim named {'/'.join(SPECTRAL_DIMS[:6])}/... and spatial dims named "
             "y/x, lat/lon, row/col, line/sample or downtrack/crosstrack (rename with .rename(...))")


def is_labelled(X: Any) -> bool:
    """Whether ``X`` looks like an xarray DataArray or Dataset (dims, coords and attrs).

    Asked of the type: ``hasattr(X, "values")`` would evaluate the property, which loads a
    lazy array whole."""
    kind = type(X)
    return all(hasattr(X, a) for a in ("dims", "coords", "attrs")) and any(
        hasattr(kind, a) for a in ("data_vars", "values", "data"))


def variable_of(X: Any, what: str = "scene") -> Any:
    """``X`` itself unless it is an xarray Dataset; of a Dataset, its one data variable with a
    spectral dim (`SPECTRAL_DIMS`) and at least one other (EMIT's ``reflectance``, the variable of a
    NetCDF that rioxarray or xarray wrote), with what the Dataset keeps beside it as variables: the
    grid mapping its ``grid_mapping`` names (``spatial_ref``, a variable when opened without
    ``decode_coords="all"``) and 1-D variables along its spectral dim named like
    `WAVELENGTH_NAMES`, `FWHM_NAMES` or `GOOD_BAND_NAMES`, made its coordinates. A Dataset with none
    or several such variables is a `unmixgen.errors.ParameterError` naming ``what`` and the
    variables to choose from (``ds["name"]``), in one line: which of several is meant is not
    guessed."""
    if not hasattr(X, "data_vars"):
        return X
    names = [str(k) for k in X.data_vars]
    spectral = {str(k): _find(_dims(X[k]), SPECTRAL_DIMS) for k in X.data_vars}
    candidates = [k for k in names if len(X[k].dims) >= 2 and len(spectral[k]) == 1]
    if len(candidates) != 1:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        if candidates:
            why = f"{len(candidates)} variables have a spectral dim ({', '.join(candidates[:8])})"
            example = candidates[0]
        else:
            why = (f"none has a spectral dim ({'/'.join(SPECTRAL_DIMS[:6])}/...) and spatial ones (bands as "
                   "variables: open without band_as_variable, or ds.to_dataarray('band'))")
            example = names[0] if names else "name"
        raise ParameterError(what, f"xarray Dataset of variables {shown or 'none'}",
                             f"{why}; expected one variable of it, e.g. {what}=ds[{example!r}]")
    key = candidates[0]
    da = X[key]
    band_dim = _dims(da)[spectral[key][0]]
    extra = {}
    encoding = getattr(da, "encoding", None)
    grid = da.attrs.get("grid_mapping") or (encoding.get("grid_mapping") if isinstance(encoding, dict) else None)
    if grid is not None and str(grid) in X.variables and str(grid) not in da.coords:
        extra[str(grid)] = X[str(grid)]
    wanted = {n.lower() for n in WAVELENGTH_NAMES + FWHM_NAMES + GOOD_BAND_NAMES}
    for name in names:
        if name.lower() in wanted and _dims(X[name]) == (band_dim,) and name not in da.coords:
            extra[name] = X[name]
    if extra and callable(getattr(da, "assign_coords", None)):
        da = da.assign_coords(extra)
    return da


def _dims(X: Any) -> tuple[str, ...]:
    return tuple(str(d) for d in X.dims)


def _find(dims: tuple[str, ...], names: tuple[str, ...]) -> list[int]:
    wanted = {n.lower() for n in names}
    return [i for i, d in enumerate(dims) if d.lower() in wanted]


def layout(X: Any, spatial: int = 2, what: str = "scene") -> tuple[int, ...]:
    """The axes of ``X`` that put it in ``(rows, cols, bands)`` order (``spatial=2``) or
    ``(pixels, bands)`` order (``spatial=1``: the one other dim, whatever its name); `InputError`
    in one line naming the dims found when they are not those. A Dataset's axes are those of its
    one scene variable (`variable_of`: a `unmixgen.errors.ParameterError` naming ``what`` when it
    has none or several), as every entry point takes it."""
    X = variable_of(X, what)
    dims = _dims(X)
    shown = ", ".join(dims)
    if len(dims) != spatial + 1:
        want = "three: (rows, cols, bands) by name" if spatial == 2 else "two: (pixels, bands) by name"
        raise InputError(f"{what}: DataArray with dims {shown}; expected {want} (select or squeeze the others, "
                         "e.g. da.isel(time=0))")
    spectral = _find(dims, SPECTRAL_DIMS)
    if spatial == 1:
        if len(spectral) != 1:
            raise InputError(f"{what}: DataArray with dims {shown} has {len(spectral) or 'no'} spectral dim"
                             f"{'s' if len(spectral) > 1 else ''}; {_EXPECTED}")
        return (1 - spectral[0], spectral[0])
    rows, cols = _find(dims, ROW_DIMS), _find(dims, COL_DIMS)
    if len(spectral) != 1 or len(rows) != 1 or len(cols) != 1:
        raise InputError(f"{what}: DataArray with dims {shown} has {len(spectral)} spectral, {len(rows)} row and "
                         f"{len(cols)} column dim names; {_EXPECTED}")
    return (rows[0], cols[0], spectral[0])


def _values(X: Any) -> np.ndarray:
    if isinstance(X, np.ndarray):
        return X
    values = getattr(X, "values", None)
    return np.asarray(X.data if values is None else values)


def bands_last(X: Any, spatial: int = 2, what: str = "cube") -> Any:
    """``X`` itself when it has no dim names; a labelled array as a numpy array with its
    spectral dim last (``(rows, cols, bands)`` or, ``spatial=1``, ``(pixels, bands)``), for the
    functions that take a cube or pixel matrix as an array. Loads it, in its own dim order (see
    `LabelledSource`), and transposes the numbers."""
    if not is_labelled(X):
        return X
    X = variable_of(X, what)
    return np.transpose(_values(X), layout(X, spatial, what))


#: stored bytes read at a time into a window's output when the array is not dask-backed
STRIP_BYTES = 64 * 2**20


class LabelledSource:
    """A `unmixgen.scene.CubeSource` over a DataArray whose dims ``axes`` are its rows, columns
    and bands (`layout`): each window is indexed on the DataArray in its own dim order, with
    slices (a file opened lazily or a dask array reads that window only), its numbers transposed
    to ``(rows, cols, bands)``, put in ``band_order``, scaled (``stored * scale + offset``; each a
    number or one per band, in ``band_order``) and returned as float32. ``read_stored`` gives the
    window before the scale.

    The DataArray is not transposed: xarray indexes a transposed lazily opened file (rioxarray's
    ``open_rasterio`` without ``chunks``) by vectorized indexing, with an int64 index array per
    dim as large as the window (26 times a float32 window in memory, and slow)."""

    def __init__(self, X: Any, band_order: np.ndarray | None = None, scale: float | np.ndarray = 1.0,
                 offset: float | np.ndarray = 0.0, axes: tuple[int, ...] = (0, 1, 2)):
        self.array = X
        self.axes = tuple(int(a) for a in axes)
        self.band_order = None if band_order is None else np.asarray(band_order, np.intp)
        rows, cols, bands = (int(X.shape[a]) for a in self.axes)
        self.shape = (rows, cols, bands if self.band_order is None else int(self.band_order.size))
        self.dtype = np.dtype(X.dtype)
        if self.dtype.kind not in "biuf":
            raise InputError(f"cube has dtype {self.dtype}; expected real numbers (take the magnitude or one part "
                             "of complex data explicitly)")
        self.scale, self.offset = np.asarray(scale, np.float32), np.asarray(offset, np.float32)

    def _window(self, rows: slice, cols: slice) -> Any:
        """The DataArray's window, in its own dim order (basic indexing: still lazy)."""
        key = [slice(None)] * 3
        key[self.axes[0]], key[self.axes[1]] = rows, cols
        return self.array[tuple(key)]

    def _arranged(self, block: np.ndarray) -> np.ndarray:
        """Numbers of a window ``(rows, cols, bands)``, in ``band_order`` (views where they can be)."""
        block = np.transpose(block, self.axes)
        return block if self.band_order is None else block[..., self.band_order]

    def read_stored(self, rows: slice, cols: slice) -> np.ndarray:
        return self._arranged(_values(self._window(rows, cols)))

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The window as float32, written into its output piece by piece: a dask array chunk by
        chunk (``dask.array.store``: each chunk where it goes, no whole window assembled; dask is
        there, since the array is one), any other strip by strip of rows of about `STRIP_BYTES`
        stored. The stored values are never held whole beside the output, so loading a scene
        takes the cube's float32 size and a few chunks more, not two or three times it."""
        window = self._window(rows, cols)
        nr, nc = (int(window.shape[a]) for a in self.axes[:2])
        out = np.empty((nr, nc, self.shape[2]), np.float32)
        # xarray's ``chunks`` is None unless dask holds the values; ``data`` of a lazily opened file loads it
        data = window.data if getattr(window, "chunks", None) is not None else None
        if callable(getattr(data, "__dask_graph__", None)) and getattr(data, "ndim", 0) == 3:
            import dask.array as dask_array

            dask_array.store(self._arranged(data), out)
        else:
            first = rows.indices(self.shape[0])[0]
            step = max(1, STRIP_BYTES // max(1, nc * self.shape[2] * self.dtype.itemsize))
            for r0 in range(0, nr, step):
                out[r0:r0 + step] = self.read_stored(slice(first + r0, first + min(r0 + step, nr)), cols)
        if np.any(self.scale != 1.0):
            out *= self.scale
        if np.any(self.offset != 0.0):
            out += self.offset
        return out

    @property
    def scaled(self) -> bool:
        return bool(np.any(self.scale != 1.0) or np.any(self.offset != 0.0))


def source_of(X: Any, what: str = "cube") -> LabelledSource:
    """The values of a labelled array as a ``(rows, cols, bands)`` source, laid out by its dim
    names only (no band sorting or scale: `Scene(da)` with its own wavelengths, say); a Dataset's
    one scene variable (`variable_of`)."""
    X = variable_of(X, what)
    return LabelledSource(X, axes=layout(X, 2, what))


@dataclass
class LabelledCube:
    """What `labelled_cube` finds: the source and the `unmixgen.scene.Scene` fields."""

    source: LabelledSource
    fields: dict[str, Any] = field(default_factory=dict)


def _listed(value: Any) -> Any:
    """``value``, or the numbers of an ENVI list kept as text (``"1, 0, 1"``, ``"{0.45, 0.55}"``:
    rioxarray keeps an ENVI header's ``bbl`` so) as an array; text that is not such a list as it is."""
    if not isinstance(value, str) or "," not in value:
        return value
    try:
        return np.array([float(v) for v in value.strip().strip("{}").split(",")])
    except ValueError:
        return value


def _attr_units(X: Any, key: str) -> Any:
    """The unit attribute of ``X`` for its coordinate or attribute ``key``: ``{key}_units`` or
    ``{key} units``, any case (GDAL's ENVI driver, and rioxarray after it: ``wavelength_units``)."""
    wanted = (f"{str(key).lower()}_units", f"{str(key).lower()} units")
    return next((v for k, v in X.attrs.items() if str(k).lower() in wanted), None)


def _first_band(X: Any, spectral: str) -> bool:
    """Whether the one band of ``X`` is band 1 of its file, so that band 1's tags (what rioxarray
    keeps as attributes of a file with per-band tags) are its own: no coordinate along the spectral
    dim, or rioxarray's band number 1. Any other band, or a coordinate that does not tell, is not."""
    if spectral not in X.coords:
        return True
    v = np.asarray(X.coords[spectral].values).reshape(-1)
    return v.size == 1 and v.dtype.kind in "iuf" and float(v[0]) == 1.0


def _lookup(X: Any, names: tuple[str, ...], spectral: str, bands: int = 0) -> tuple[Any, dict, str] | None:
    """``(values, attrs, where)`` of a coordinate along the spectral dim, or failing that an
    attribute, named one of ``names`` (any case); None when there is none. A coordinate without
    ``units`` of its own takes the array's ``{name}_units`` attribute (rioxarray makes an ENVI
    file's ``wavelength`` and ``fwhm`` coordinates and leaves ``wavelength units`` an attribute).
    An attribute is a list, except that one number is the value of a one-band array (``bands=1``)
    that is band 1 of its file (`_first_band`): a one-band GeoTIFF's own tag, as `read_scene` reads it."""
    wanted = {n.lower() for n in names}
    for key in X.coords:
        coord = X.coords[key]
        if str(key).lower() in wanted and tuple(str(d) for d in coord.dims) == (spectral,):
            attrs = dict(coord.attrs)
            units = _attr_units(X, key)
            if attrs.get("units") is None and units is not None:
                attrs["units"] = units
            return coord.values, attrs, f"coordinate {key!r}"
    own = bands == 1 and _first_band(X, spectral)
    for key, value in X.attrs.items():
        if str(key).lower() not in wanted:
            continue
        value = _listed(value)
        one = own and np.size(value) == 1 and np.asarray(value).dtype.kind in "iuf"
        if np.size(value) > 1 or one:
            units = _attr_units(X, key)
            return value, {"units": units} if units is not None else {}, f"attribute {key!r}"
    return None


def _one_for_many(X: Any, names: tuple[str, ...], spectral: str, bands: int, lost: str, what: str) -> None:
    """Warn when an attribute named one of ``names`` holds one number for ``bands`` > 1 bands: rioxarray
    lays band 1's tags over the file's (``{**tags(), **tags(1)}``), so a GeoTIFF with per-band
    ``wavelength``/``fwhm`` tags (GDAL's, this package's) leaves band 1's number and the other bands'
    are not in the DataArray at all. Neither that one number for every band nor silently none: the
    warning says the scene has no ``lost`` and how to read them (`unmixgen.read_scene` on the file,
    named from rioxarray's ``encoding["source"]``, reads every band's tags). One band selected from such a
    file (``da.isel(band=[1])``) has band 1's tag too: said the same way, unless it is band 1 (`_lookup`
    takes that band's own tag)."""
    if bands == 1 and _first_band(X, spectral):
        return
    wanted = {n.lower() for n in names}
    for key, value in X.attrs.items():
        if str(key).lower() not in wanted:
            continue
        value = _listed(value)
        if np.size(value) != 1 or np.asarray(value).dtype.kind not in "iuf":
            continue
        encoding = getattr(X, "encoding", None)
        source = encoding.get("source") if isinstance(encoding, dict) else None
        coord = "wavelength" if lost == "wavelengths" else "fwhm"
        number = f"{float(np.asarray(value).reshape(-1)[0]):g}"
        if bands == 1:
            band = np.asarray(X.coords[spectral].values).reshape(-1)[0]
            said = (f"is band 1's tag ({number}), and the one band is {spectral} {band} of the file (rioxarray "
                    "keeps band 1's tag of a file with per-band tags)")
        else:
            said = (f"is one number ({number}) for {bands} bands (rioxarray keeps band 1's tag of a file with "
                    "per-band tags)")
        warnings.warn(f"{what}: attribute {str(key)!r} {said}, so the scene has no {lost}; expected "
                      f"unmixgen.read_scene({str(source) if source else 'path'!r}), which reads every band's, or "
                      f"da.assign_coords({coord}=({spectral!r}, values))", UserWarning, stacklevel=6)
        return


def _kept_whole(where: str, spectral: str, text: bool = False) -> str:
    """The end of the message for a per-band list ``where`` of the wrong length: an attribute is
    the file's list of every band, which a band selection (``da.isel``) keeps whole, while a
    coordinate follows the selection; so the list is made a coordinate before selecting.
    ``text``: the attribute is an ENVI list kept as text (rioxarray's ``bbl``), split into numbers."""
    if not where.startswith("attribute "):
        return "; expected one per band"
    key = where.removeprefix("attribute ").strip("'")
    coord = ("wavelength" if key.lower() in WAVELENGTH_NAMES else "fwhm" if key.lower() in FWHM_NAMES
             else key if key.isidentifier() else "good_bands")
    values = f"da.attrs[{key!r}]"
    if text:
        values = f"[float(v) for v in {values}.strip('{{}}').split(',')]"
    return (f" (selecting bands keeps the file's list of every band); expected one per band: make it a coordinate "
            f"before selecting, da.assign_coords({coord}=({spectral!r}, {values})).isel({spectral}=...), "
            "which the selection then follows")


def _spectral_axis(X: Any, spectral: str, bands: int, what: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Band centres and widths in nm (None where not given), from coordinates or attributes.

    Widths without a unit of their own are in the centres' unit (ENVI's rule, which GDAL and
    rioxarray pass on: ``wavelength units`` covers ``fwhm``), converted band by band as the
    centres were (`unmixgen.wavelengths.fwhm_in_nm`): widths of 10 nm next to centres in nm
    are not micrometres because they are small. ENVI's ``Index`` unit (band numbers) gives no
    wavelengths, with a warning, as `unmixgen.io.envi` reads it."""
    found = _lookup(X, WAVELENGTH_NAMES, spectral, bands)
    if found is None and spectral in X.coords:
        coord = X.coords[spectral]
        units = coord.attrs.get("units", _attr_units(X, spectral))
        # the spectral dim's own coordinate is band centres when named so or labelled with a
        # unit of length (rioxarray's "band" coordinate is band numbers 1..n: not taken)
        if spectral.lower() in WAVELENGTH_NAMES or unit_kind(units) is not None:
            found = coord.values, {**coord.attrs, "units": units}, f"coordinate {spectral!r}"
    if found is None:
        # rioxarray lays band 1's tags over the file's, so a per-band 'wavelength' tag (GDAL's,
        # this package's GeoTIFFs) leaves one number; the band descriptions ("450 nm") remain
        names = X.attrs.get("long_name")
        wl = None
        if isinstance(names, (tuple, list)) and len(names) == bands > 1:
            wl = wavelengths_from_labels(list(names), what=f"{what}: attribute 'long_name'")
        if wl is None:
            _one_for_many(X, WAVELENGTH_NAMES, spectral, bands, "wavelengths", what)
        _one_for_many(X, FWHM_NAMES, spectral, bands, "FWHM", what)
        return wl, None
    values, attrs, where = found
    fw = _lookup(X, FWHM_NAMES, spectral, bands)
    if fw is None:
        _one_for_many(X, FWHM_NAMES, spectral, bands, "FWHM", what)
    units = attrs.get("units")
    if units is not None and str(units).strip().lower() == "index":
        warnings.warn(f"{what}: {where} in unit {units!r} holds band numbers, not wavelengths; the scene has no "
                      "wavelengths", UserWarning, stacklevel=4)
        return None, None
    wl = to_nm(values, units, what=f"{what}: {where}")
    if wl.size != bands:
        raise InputError(f"{what}: {where} holds {wl.size} values for {bands} bands{_kept_whole(where, spectral)}")
    fwhm = None
    if fw is not None:
        own = fw[1].get("units")
        fwhm = np.asarray(fw[0])
        if fwhm.dtype.kind in "iuf":  # not numbers: dropped with the readers' warning below
            widths = fwhm.astype(np.float64).reshape(-1)  # the numbers as they are
            if widths.size != bands:
                raise InputError(f"{what}: {fw[2]} holds {widths.size} values for {bands} bands"
                                 f"{_kept_whole(fw[2], spectral)}")
            if own is None or str(own).strip().lower() == str(units).strip().lower():
                # in the centres' unit, declared or inferred: converted as they were
                fwhm = fwhm_in_nm(widths, np.asarray(values, np.float64).reshape(-1), wl)
            elif unit_kind(own) != "reciprocal":  # widths in a reciprocal unit of their own: no one width in nm
                fwhm = to_nm(widths, own, what=f"{what}: {fw[2]}", centres=False)
            else:
                fwhm = None
        # zero, negative or NaN widths: dropped with a warning, by the rule and in the words of the file
        # readers (`unmixgen.io.envi` reads the same header so), not kept for `simulate` to refuse later
        fwhm = usable_fwhm(fwhm, f"fwhm values ({fw[2]})", what, stacklevel=6)
    return wl, fwhm


def _number(value: Any, what: str) -> float | None:
    a = np.asarray(value)
    if a.size != 1 or a.dtype.kind not in "biuf":
        raise InputError(f"{what}: {value!r}; expected one number")
    v = float(a.reshape(-1)[0])
    return None if np.isnan(v) else v


def _grid_mapping(X: Any, what: str) -> tuple[dict, str] | None:
    """``(attrs, name)`` of the grid-mapping coordinate: the one the ``grid_mapping`` attribute
    (or encoding) names, else ``spatial_ref`` or ``crs``. One named but not among the
    coordinates (a variable of a Dataset opened by ``xr.open_dataset`` without
    ``decode_coords="all"``: the grid mapping stays a variable of the Dataset) places nothing:
    a warning says so and how to keep it, instead of a scene quietly without CRS."""
    named = X.attrs.get("grid_mapping")
    encoding = getattr(X, "encoding", None)
    if named is None and isinstance(encoding, dict):
        named = encoding.get("grid_mapping")
    for key in ([str(named)] if named is not None else []) + list(GRID_MAPPING_NAMES):
        if key in X.coords:
            return dict(X.coords[key].attrs), key
    if named is not None:
        warnings.warn(f"{what}: grid_mapping {str(named)!r} is not one of its coordinates, so the scene has no CRS "
                      "or geotransform (a Dataset opened without decode_coords='all'); expected "
                      f"xr.open_dataset(..., decode_coords='all'), or ds[name].assign_coords({{{str(named)!r}: "
                      f"ds[{str(named)!r}]}})", UserWarning, stacklevel=4)
    return None


def _per_band(value: Any, bands: int, where: str, what: str) -> np.ndarray:
    """One finite number per band from ``value`` (rioxarray's tuple, a list, an ENVI list as text)."""
    v = _listed(value)
    try:
        a = np.asarray(v, np.float64).reshape(-1)
    except (TypeError, ValueError):
        a = np.full(1, np.nan)
    if a.size != bands:
        raise InputError(f"{what}: {where} holds {a.size} values for {bands} bands (selecting bands keeps the "
                         "file's list); expected one per band: open with mask_and_scale=True, or set it to the "
                         "selected bands' values")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{what}: {where} holds {value!r}; expected finite numbers, one per band")
    return a


def _scaling(attrs: dict, bands: int, what: str, encoding: Any = None,
             factor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, offset)`` of values not decoded (``mask_and_scale=False``), physical = stored * scale +
    offset: each a number (``scale_factor``/``add_offset``, CF's and rioxarray's when every band has the
    same) or one per band (``scales``/``offsets``: rioxarray's when the bands' differ, GDAL's per-band
    scale and offset). Both forms given and disagreeing is ambiguous: `InputError`. Without either, an
    ENVI header's ``reflectance scale factor`` F (kept as an attribute by rioxarray) gives scale 1 / F,
    as `unmixgen.io.envi` reads it: F is not applied where gains or offsets are (an ENVI header's
    ``data gain values``/``data offset values``, GDAL's band scale and offset), whether still in the
    attributes or applied on opening (``mask_and_scale=True``: moved to ``encoding``). ``factor``:
    that F as `_reflectance_factor` read it (None: there is none)."""
    out = []
    for one, each, default in (("scale_factor", "scales", 1.0), ("add_offset", "offsets", 0.0)):
        single = _number(attrs[one], f"{what}: attribute {one}") if one in attrs else None
        if each in attrs:
            v = _per_band(attrs[each], bands, f"attribute {each!r}", what)
            if single is not None and not np.allclose(v, single, rtol=1e-6, atol=0):
                raise InputError(f"{what}: attributes {one} ({single:g}) and {each} ({', '.join(f'{x:g}' for x in v)}) "
                                 f"disagree; expected one of them (del da.attrs[{one!r}] or da.attrs[{each!r}])")
            value = v if np.ptp(v) else np.asarray(v[0])
        else:
            value = np.asarray(default if single is None else single)
        out.append(value.astype(np.float64))
    scale, offset = out
    if factor is not None:
        # gains or offsets given (here, or applied on opening and moved to the encoding) come first
        # and F is not applied, as `unmixgen.io.envi` reads a header with both
        dec_scale, dec_offset = _decoded(encoding, ("scales", "scale_factor")), _decoded(encoding, ("offsets",
                                                                                                   "add_offset"))
        gains = scale * (1.0 if dec_scale is None else dec_scale)
        shifted = np.any(offset != 0.0) or (dec_offset is not None and np.any(dec_offset != 0.0))
        if not np.any(gains != 1.0) and not shifted:
            scale = np.asarray(1.0 / factor)
        elif not np.allclose(gains * factor, 1.0, rtol=1e-6):
            given = ("scales" + (" and offsets" if shifted else "")) if np.any(gains != 1.0) else "offsets"
            warnings.warn(f"{what}: the values have {given} and reflectance_scale_factor = {factor:g}; the {given} "
                          "are applied, the reflectance scale factor is not (as read_scene reads the header)",
                          UserWarning, stacklevel=4)
    bad = (scale == 0) | ~np.isfinite(scale)
    if np.any(bad):  # every pixel 0 (or inf): no scene
        where = "scale_factor" if scale.ndim == 0 else f"scales (band {int(np.argmax(bad)) + 1})"
        raise InputError(f"{what}: attribute {where} {float(scale.reshape(-1)[np.argmax(bad.reshape(-1))])!r}; "
                         "expected a finite non-zero number")
    return scale, offset


def _decoded(encoding: Any, keys: tuple[str, ...]) -> np.ndarray | None:
    """The scale (``keys`` ``scales``/``scale_factor``) or offset the values were decoded with on
    opening (what rioxarray or xarray moved to ``encoding``), as an array; None when not decoded so."""
    if not isinstance(encoding, dict):
        return None
    for key in keys:
        if encoding.get(key) is not None:
            try:
                return np.asarray(encoding[key], np.float64).reshape(-1)
            except (TypeError, ValueError):
                return None
    return None


def _reflectance_factor(attrs: dict, what: str) -> float | None:
    """An ENVI header's ``reflectance scale factor`` F (reflectance = stored / F) as rioxarray keeps it:
    text in the attribute ``reflectance_scale_factor``; None when there is none."""
    value = next((v for k, v in attrs.items() if str(k).lower() in ("reflectance_scale_factor",
                                                                     "reflectance scale factor")), None)
    if value is None:
        return None
    try:
        f = float(str(value).strip().strip("{}")) if isinstance(value, str) else _number(value, what)
    except ValueError:
        f = float("nan")
    if f is None or f == 0 or not np.isfinite(f):
        raise InputError(f"{what}: attribute reflectance_scale_factor {value!r}; expected a finite non-zero number")
    return f


def _crs(attrs: dict, where: str, what: str) -> str | None:
    text = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    if text is None:
        return None
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        with rasterio.Env():  # PROJ's messages become the exception, not stderr lines
            return CRS.from_user_input(str(text)).to_wkt()
    except CRSError as exc:
        raise InputError(f"{what}: {where}'s crs_wkt is not a CRS PROJ reads ({str(exc).splitlines()[0]}); "
                         "expected WKT or 'EPSG:n'") from None


def _geotransform(attrs: dict, where: str, what: str) -> tuple[float, ...] | None:
    """``GeoTransform`` (GDAL order ``c a b f d e``, text or numbers) in rasterio order."""
    gt = attrs.get("GeoTransform")
    if gt is None:
        return None
    affine = from_gdal(gt, f"{what}: {where}'s GeoTransform")
    if affine == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0):
        return None  # GDAL's (and rioxarray's) stand-in for a file without one: places nothing
    return affine


def _coordinate(X: Any, dim: str) -> np.ndarray | None:
    """The finite numbers of the 1-D coordinate along ``dim`` (rioxarray's pixel centres), or None."""
    if dim not in X.coords or tuple(str(d) for d in X.coords[dim].dims) != (dim,):
        return None
    v = np.asarray(X.coords[dim].values)
    if v.dtype.kind not in "iuf" or not v.size or not np.all(np.isfinite(v)):
        return None
    return v.astype(np.float64)


def _step(v: np.ndarray) -> float | None:
    """The spacing of evenly spaced ``v``, else None."""
    step = np.diff(v)
    if not step.size or step[0] == 0 or not np.allclose(step, step[0], rtol=1e-6, atol=0):
        return None
    return float(step[0])


def _placed_on_coordinates(X: Any, transform, row_dim: str, col_dim: str):
    """The transform as rioxarray's ``rio.transform()`` gives it: the top-left corner from the
    x/y coordinates (pixel centres; ``da.isel`` slices them but keeps ``spatial_ref``'s
    GeoTransform of the whole raster), the pixel size from the GeoTransform, signed as the
    coordinates run (rows stored south first under a north-up GeoTransform are south-up), or
    from the coordinates' even spacing when there is none. ``transform`` as it is when rotated, or
    without numeric x/y coordinates."""
    y, x = _coordinate(X, row_dim), _coordinate(X, col_dim)
    if y is None or x is None or (transform is not None and (transform[1] != 0 or transform[3] != 0)):
        return transform
    if transform is not None:
        # the pixel sizes' signs as the coordinates run: rows stored south first under a
        # north-up GeoTransform (GDAL's netCDF, a flipped da.isel(y=slice(None, None, -1)))
        a, e = _signed(transform[0], x), _signed(transform[4], y)
    else:
        a, e = _step(x), _step(y)
        if a is None or e is None:
            return None
    return (a, 0.0, x[0] - a / 2, 0.0, e, y[0] - e / 2)


def _signed(size: float, v: np.ndarray) -> float:
    """``size`` with the sign of the direction ``v`` runs in (as it is for one value)."""
    if v.size < 2 or v[1] == v[0]:
        return size
    return float(np.copysign(size, v[1] - v[0]))


#: attributes that label the values, in order: CF's ``units`` (rioxarray's band unit types), then an
#: ENVI header's ``data units`` (rioxarray's ``data_units``, from GDAL's ENVI metadata domain)
UNITS_ATTRS = ("units", "data_units", "data units")


def _units(name: Any, attrs: dict) -> str | None:
    """The scene's unit label: the first of `UNITS_ATTRS` (any case) that names reflectance or
    radiance, as `unmixgen.io.envi` reads ``data units``; for a variable named so (EMIT's
    ``reflectance`` is ``unitless``), that word unless the attribute names a unit of it
    (`unmixgen.units.product_units`). rioxarray gives the bands' labels as a tuple, one per
    band: taken when they are one label."""
    stated = None
    for key in UNITS_ATTRS:
        value = next((v for k, v in attrs.items() if str(k).lower() == key), None)
        if isinstance(value, (tuple, list)) and value and all(str(u) == str(value[0]) for u in value):
            value = value[0]
        if scene_units(value) is not None:
            stated = value
            break
    word = quantity(name) if isinstance(name, str) and name.strip().lower() in ("reflectance", "radiance") else None
    return product_units(word, stated) if word is not None else scene_units(stated)


def labelled_cube(X: Any, what: str = "scene") -> LabelledCube:
    """``X`` (a DataArray, or a Dataset's one scene variable, `variable_of`; `InputError` for dims it
    cannot name) as a source
    ``(rows, cols, bands)`` and the `unmixgen.scene.Scene` fields its coordinates and attributes give:

    - ``wavelengths`` (nm): a coordinate along the spectral dim named like `WAVELENGTH_NAMES`,
      or the spectral dim's own when named so or labelled with a length unit (rioxarray's
      ``band`` numbers are not), or such an attribute with one value per band; converted with
      `unmixgen.wavelengths.to_nm` from its ``units``, else the array's ``wavelength_units``
      attribute (GDAL's ENVI driver through rioxarray), else inferred from the magnitude; a unit
      that does not fit the values is refused, ENVI's ``Index`` gives none (a warning); failing
      those, band descriptions (rioxarray's ``long_name``) that each give one (``"450 nm"``). Bands
      not in increasing wavelength (wavenumbers) are presented sorted. ``fwhm`` likewise, in the
      centres' unit unless it states its own; a zero, negative or NaN width drops them with the
      file readers' warning (`unmixgen.wavelengths.usable_fwhm`); ``good_bands`` from flags named like
      `GOOD_BAND_NAMES` (EMIT's ``good_wavelengths``, ENVI's ``bbl``, which rioxarray keeps as text).
    - ``nodata``: the ``_FillValue``, ``nodata`` or ``missing_value`` attribute (NaN: none).
    - ``scale``/``offset``: the ``scale_factor``/``add_offset`` attributes of values not decoded
      (``mask_and_scale=False``), or rioxarray's per-band ``scales``/``offsets`` tuples (bands
      with different ones), are applied on read; a list of another length than the bands (a
      band selection keeps the file's) or disagreeing forms are refused; an ENVI ``reflectance
      scale factor`` F without scales (nor gains rioxarray applied on opening) gives 1 / F (and
      units reflectance), as the ENVI reader reads it. A fill value is judged on stored values.
    - ``crs`` (WKT) and ``transform`` (rasterio order): from the grid-mapping coordinate
      (``grid_mapping`` attribute, else ``spatial_ref`` or ``crs``): ``crs_wkt``/``spatial_ref``
      and GDAL's ``GeoTransform``, its corner moved to the x/y coordinates (pixel centres) as
      rioxarray's ``rio.transform()`` does (a sliced array keeps the whole raster's
      GeoTransform); without one, evenly spaced x/y coordinates give it (only with a CRS).
      GDAL's identity GeoTransform (a file without one) places nothing. A grid mapping named
      but not among the coordinates (``xr.open_dataset`` without ``decode_coords="all"``), or
      one of CF parameters without WKT, gives a warning that the scene has no CRS.
    - ``units``: the ``units`` attribute (or rioxarray's tuple of one label per band, all the
      same), else an ENVI header's ``data units`` (rioxarray's ``data_units``), when it names
      reflectance or radiance; ``name``.
    """
    X = variable_of(X, what)
    axes = layout(X, 2, what)
    dims = _dims(X)
    row_dim, col_dim, spectral = (dims[i] for i in axes)
    bands = int(X.shape[axes[2]])
    wl, fwhm = _spectral_axis(X, spectral, bands, what)
    order = None
    if wl is not None and bands > 1 and not np.all(np.diff(wl) > 0):
        order = np.argsort(wl, kind="stable")
        wl = wl[order]
        fwhm = None if fwhm is None else fwhm[order]
    good = _lookup(X, GOOD_BAND_NAMES, spectral)
    if good is not None:
        flags, _, where = good
        good = np.asarray(flags).reshape(-1)
        if good.size != bands:
            text = isinstance(X.attrs.get(where.removeprefix("attribute ").strip("'")), str)
            raise InputError(f"{what}: {where} holds {good.size} good-band flags for {bands} bands"
                             f"{_kept_whole(where, spectral, text=text)}")
        good = good if order is None else good[order]
    band_names = X.attrs.get("long_name")  # rioxarray: the bands' descriptions
    if isinstance(band_names, (tuple, list)) and len(band_names) == bands and bands > 1:
        band_names = [str(band_names[i]) for i in (range(bands) if order is None else order)]
    else:
        band_names = None
    attrs = dict(X.attrs)
    nodata = None
    for key in NODATA_ATTRS:
        if key in attrs:
            nodata = _number(attrs[key], f"{what}: attribute {key}")
            break
    factor = _reflectance_factor(attrs, what)
    scale, offset = _scaling(attrs, bands, what, getattr(X, "encoding", None), factor)
    if order is not None:
        scale, offset = (v if v.ndim == 0 else v[order] for v in (scale, offset))
    source = LabelledSource(X, order, scale, offset, axes=axes)
    crs = transform = None
    grid = _grid_mapping(X, what)
    if grid is not None:
        grid_attrs, key = grid
        where = f"coordinate {key!r}"
        crs = _crs(grid_attrs, where, what)
        transform = _geotransform(grid_attrs, where, what)
        if crs is None and grid_attrs.get("grid_mapping_name") is not None:
            # CF's projection parameters alone: rasterio reads WKT, not those
            warnings.warn(f"{what}: {where} gives grid_mapping_name {grid_attrs['grid_mapping_name']!r} but no "
                          "crs_wkt or spatial_ref (WKT), so the scene has no CRS; expected a grid mapping with "
                          "crs_wkt (da.rio.write_crs(...) writes one)", UserWarning, stacklevel=3)
        if crs is not None or transform is not None:
            transform = _placed_on_coordinates(X, transform, row_dim, col_dim)
    metadata: dict[str, Any] = {"format": "xarray", "dims": list(dims)}
    if band_names is not None:
        metadata["band_names"] = band_names
    if source.scaled:
        metadata["scale_factor"], metadata["add_offset"] = (v.tolist() for v in (source.scale, source.offset))
    name = getattr(X, "name", None)
    units = _units(name, attrs)
    if units is None and factor is not None:  # ENVI's rule (`unmixgen.io.envi`)
        units = "reflectance"
    fields = {"wavelengths": wl, "fwhm": fwhm, "good_bands": good, "nodata": nodata, "crs": crs, "transform": transform,
              "units": units, "name": None if name is None else str(name),
              "metadata": metadata}
    if order is not None:
        fields["band_order"] = order
    return LabelledCube(source, fields)


__all__ = ["COL_DIMS", "ROW_DIMS", "SPECTRAL_DIMS", "LabelledCube", "LabelledSource", "bands_last", "is_labelled",
           "labelled_cube", "layout", "source_of", "variable_of"]
