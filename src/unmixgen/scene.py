"""The `Scene`: one hyperspectral image, whatever file it came from.

A scene is a cube of shape ``(rows, cols, bands)`` in physical units (reflectance or
radiance after the file's scale factors) plus what is known about it: wavelengths (nm),
FWHM (nm), a good-band mask, a valid-pixel mask, georeferencing and, for benchmark
scenes, ground truth.

The cube need not be in memory. Readers hand the scene a *source*: anything with a
``shape`` and a ``read(rows, cols)`` method returning float32 ``(r, c, bands)``. Plain
arrays and memory maps are wrapped in `ArraySource`. `Scene.read`, `Scene.tiles` and
`unmixgen.tiling.map_tiles` read only the window asked for. The whole cube is read only
by an explicit `Scene.load()` (which keeps it), never as a side effect of a property;
`Scene.valid_pixels()` calls `load()`.

Invalid pixels (NaN, Inf, all bands zero, all bands equal to the nodata value, flagged by
the file, on a stuck detector line) are ``False`` in `Scene.mask`. Every method skips them
and every writer writes them back as nodata.

Stuck detector lines (a dead or saturated detector element, a lost line) are found by
`unmixgen.stuck_lines.product_artefacts`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from .errors import InputError, ParameterError, brief
from .labelled import is_labelled, labelled_cube, source_of, variable_of
from .stuck_lines import line_list, product_artefacts
from .tiling import Tile, iter_tiles, map_tiles
from .wavelengths import SAME_GRID_NM, check_wavelengths, grid_offset_nm, usable_fwhm


class CubeSource(Protocol):
    """What a reader gives a `Scene`: a lazily readable ``(rows, cols, bands)`` cube."""

    shape: tuple[int, int, int]
    dtype: np.dtype  # storage dtype, reported by `info`

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """Return float32 ``(len(rows), len(cols), bands)`` in physical units; `Scene.read`
        passes slices with non-negative, increasing bounds and step 1."""
        ...

    # optional: ``read_stored(rows, cols)``, the stored values of a window in the bands `read`
    # presents (before any scale, offset or NaN filling), where the reader's mask judges those


class ArraySource:
    """A `CubeSource` over an in-memory array or a ``np.memmap`` of shape (rows, cols, bands).

    ``scale`` and ``offset`` map stored values to physical ones: ``value = stored * scale +
    offset``, applied per window in float32 so a memory map is never loaded whole.
    ``band_order`` (indices into the stored bands) reorders bands on read, e.g. to sort
    files whose detectors overlap into increasing wavelength.
    """

    def __init__(self, array: np.ndarray, scale: float | np.ndarray = 1.0, offset: float = 0.0,
                 band_order: np.ndarray | None = None):
        if array.ndim != 3:
            raise InputError(f"cube has {array.ndim} dimensions; expected (rows, cols, bands)")
        if np.iscomplexobj(array) or array.dtype.kind not in "biuf":
            raise InputError(f"cube has dtype {array.dtype}; expected real numbers (take the magnitude or one part "
                             "of complex data explicitly)")
        self.array = array
        self.band_order = None if band_order is None else np.asarray(band_order, np.intp)
        nb = array.shape[2] if self.band_order is None else self.band_order.size
        self.shape = (int(array.shape[0]), int(array.shape[1]), int(nb))
        self.dtype = array.dtype
        self.scale = np.float32(scale) if np.ndim(scale) == 0 else np.asarray(scale, np.float32)
        self.offset = np.float32(offset)

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        # A copy, so callers may write into it without touching the source.
        block = self.array[rows, cols, :]
        if self.band_order is not None:
            block = block[..., self.band_order]
        out = np.array(block, dtype=np.float32, order="C")  # a loaded cube must be C-ordered (valid_pixels)
        if np.ndim(self.scale) or self.scale != 1.0:
            out *= self.scale
        if self.offset != 0.0:
            out += self.offset
        return out


@dataclass
class GroundTruth:
    """Reference endmembers ``(p, bands)`` and/or abundances ``(rows, cols, p)``, float32.

    ``pixel_order``: "F" (column-major) or "C" (row-major) when the abundances were unfolded
    from a flat ``(p, pixels)`` matrix in that order, None when they were stored as maps.
    ``wavelengths``: the endmembers' band centres ``(bands,)`` in nm, any order, when they
    come with their own; `Scene.attach_truth` matches them to the scene's bands by these (and
    keeps None: attached, the endmembers are on the scene's bands).
    """

    endmembers: np.ndarray | None = None
    abundances: np.ndarray | None = None
    names: list[str] | None = None
    source: str | None = None
    pixel_order: str | None = None
    wavelengths: np.ndarray | None = None

    @property
    def n_endmembers(self) -> int:
        if self.endmembers is not None:
            return int(self.endmembers.shape[0])
        if self.abundances is not None:
            return int(self.abundances.shape[-1])
        return 0


def as_scene(X: Scene | np.ndarray, name: str = "scene") -> Scene:
    """``X`` itself when it is a `Scene`; a ``(rows, cols, bands)`` array wrapped in one (no
    wavelengths); `ParameterError` naming ``name`` for any other shape.

    An xarray DataArray (anything with ``dims``, ``coords`` and ``attrs``; xarray itself is
    not needed) is laid out by its dim names, not their order: rioxarray's ``(band, y, x)``,
    EMIT's ``(downtrack, crosstrack, bands)``, in any order, read lazily (a dask-backed or
    file-backed array a window at a time). Its coordinates and attributes give the
    wavelengths (nm), FWHM, fill value, units, CRS and geotransform
    (`unmixgen.labelled.labelled_cube`). A Dataset gives its one variable with a spectral
    dim, with its grid mapping (`unmixgen.labelled.variable_of`), and is refused naming its
    variables (`ParameterError`) when it has none or several. Dims it cannot name (``dim_0``,
    no spectral dim) are refused with `InputError`. Arrays without dim names (numpy, torch) are
    taken as ``(rows, cols, bands)`` as they are, never guessed at: a bands-first array must be
    moved first (``np.moveaxis(cube, 0, -1)``); `check_bands_last` says so where the band count
    is known."""
    if isinstance(X, Scene):
        return X
    if is_labelled(X):
        return _labelled_scene(variable_of(X, name))
    shape = tuple(int(n) for n in getattr(X, "shape", np.shape(X)))
    if len(shape) != 3:
        hint = ""
        if len(shape) == 4 and shape[0] == 1:  # torch's (N, bands, H, W) batch of one
            hint = (f"; a batch (N, bands, H, W) as torch lays it out? take {name}[0] with its bands moved last: "
                    f"np.moveaxis({name}[0], 0, -1) or {name}[0].permute(1, 2, 0)")
        raise ParameterError(name, f"array of shape {shape}", f"expected (rows, cols, bands) or a Scene{hint}")
    return Scene(np.asarray(X))  # `ArraySource` refuses values that are not real numbers


def check_bands_last(name: str, X: Any, bands: int, whose: str) -> None:
    """`ParameterError` when the plain array ``X`` (numpy, torch: no dim names; a `Scene`,
    `CubeSource` or DataArray is left alone) is evidently bands-first: ``(bands, rows, cols)``
    where ``(rows, cols, bands)`` is expected (or ``(bands, N)`` where ``(N, bands)`` is), told
    by its first axis matching ``bands``, ``whose`` count (the wavelengths', the endmembers'
    bands), and its last axis not. Nothing is guessed: the message says how to move the axes."""
    if isinstance(X, Scene) or is_labelled(X) or callable(getattr(X, "read", None)):
        return
    shape = tuple(int(n) for n in getattr(X, "shape", np.shape(X)))
    if len(shape) not in (2, 3) or shape[0] != bands or shape[-1] == bands:
        return
    if len(shape) == 3:
        fix = f"np.moveaxis({name}, 0, -1) (torch: {name}.permute(1, 2, 0))"
        layout = "(rows, cols, bands)"
    else:
        fix = f"{name}.T"
        layout = "(N, bands)"
    raise ParameterError(name, f"array of shape {shape}", f"expected {layout}, bands last; its first axis matches "
                         f"{whose} ({bands}) and its last ({shape[-1]}) does not: unless those belong to another "
                         f"array, its bands are first; move them last with {fix}")


def _labelled_scene(X) -> Scene:
    """`as_scene` of a DataArray (`unmixgen.labelled.labelled_cube`)."""
    found = labelled_cube(X)
    fields = dict(found.fields)
    order = fields.pop("band_order", None)
    source = found.source
    if order is not None:  # bands sorted by wavelength: where each came from (`stored_band_order`)
        index_key, count_key = STORED_ORDER_KEYS
        fields["metadata"] = {**fields["metadata"], index_key: order.tolist(), count_key: int(order.size)}
    nodata = fields["nodata"]
    if source.scaled and nodata is not None:  # the fill is a stored value: judged before the scale
        fields["mask"] = lambda: _stored_validity(source, nodata, zero_is_value=not np.any(source.offset != 0))
    return Scene(source, **fields)


def _stored_validity(source, nodata: float, zero_is_value: bool = True, block_rows: int = 256) -> np.ndarray:
    """`pixel_validity` of the stored values of ``source`` (its ``read_stored``), by strips of rows."""
    rows, cols, _ = source.shape
    out = np.empty((rows, cols), bool)
    for r0 in range(0, rows, block_rows):
        block = np.asarray(source.read_stored(slice(r0, min(r0 + block_rows, rows)), slice(0, cols)), np.float32)
        out[r0:r0 + block_rows] = pixel_validity(block, nodata, zero_is_value)
    return out


def _window(index: slice, size: int, what: str) -> tuple[slice, slice]:
    """A numpy slice over an axis of ``size`` as ``(window, step)``: the contiguous, increasing
    ``window`` a source reads, and the slice of that block that gives what ``index`` selects."""
    if not isinstance(index, slice):
        raise InputError(f"{what}: {index!r}; expected a slice, e.g. slice({index!r}, {index!r} + 1) for one")
    start, stop, step = index.indices(size)
    picked = range(start, stop, step)
    if step == 1 or not picked:
        return slice(start, max(start, stop)), slice(None)
    low, high = min(picked), max(picked) + 1
    return slice(low, high), slice(picked[0] - low, None, step)


def as_source(cube: np.ndarray | CubeSource) -> CubeSource:
    """``cube`` itself when it is a `CubeSource` (it has ``shape`` and ``read``), else the
    array it holds (an ndarray or memory map as is; a list, a CPU tensor or any other
    array-like through ``np.asarray``) in an `ArraySource`. An xarray DataArray is laid out
    ``(rows, cols, bands)`` by its dim names and read lazily (`unmixgen.labelled.source_of`:
    its values only; `as_scene` takes its coordinates too)."""
    if isinstance(cube, np.ndarray):
        return ArraySource(cube)
    if hasattr(cube, "shape") and callable(getattr(cube, "read", None)):
        return cube
    if is_labelled(cube):
        return source_of(cube)
    return ArraySource(np.asarray(cube))


def window_on_data(mask: np.ndarray, side: int) -> tuple[slice, slice]:
    """The ``side x side`` window (clipped to the image) on the valid pixels ``mask (rows, cols)``
    of an image: centred on the middle of their extent, so that it lies on the data where the
    image's own middle is no-data (a map-grid product clipped off its swath, a swath crossing a
    wide grid). The image's middle where every pixel is valid, or none."""
    mask = np.asarray(mask, bool)
    out = []
    for size, present in ((mask.shape[0], mask.any(axis=1)), (mask.shape[1], mask.any(axis=0))):
        hit = np.flatnonzero(present)
        centre = (int(hit[0]) + int(hit[-1]) + 1) // 2 if hit.size else size // 2
        start = min(max(0, centre - side // 2), max(0, size - side))
        out.append(slice(start, min(start + side, size)))
    return out[0], out[1]


def pixel_validity(block: np.ndarray, nodata: float | None = None, zero_is_value=True) -> np.ndarray:
    """Valid-pixel mask ``(r, c)`` of a float block ``(r, c, bands)``.

    A pixel is invalid when any band is NaN/Inf, when all bands are zero, or when any band
    equals ``nodata`` (the producer's "no value here", like a fill value an HDF5 reader
    returns as NaN: a pixel missing one band is not unmixed with the fill as a reflectance).
    A zero ``nodata`` marks only all-zero pixels: zero is a plausible value in one band. Not
    in a band where ``zero_is_value`` (bool, or one per band of ``block``) is False: the block
    holds stored values, and there a stored zero reads as another value (an offset, -0.1), so
    it is only the fill.
    """
    finite = np.isfinite(block).all(axis=-1)
    nonzero = (block != 0).any(axis=-1)
    valid = finite & nonzero
    if nodata is not None and np.isfinite(nodata) and nodata != 0:
        valid &= (block != np.float32(nodata)).all(axis=-1)
    elif nodata == 0 and not np.all(zero_is_value):
        fill_only = np.broadcast_to(~np.asarray(zero_is_value, bool), block.shape[-1:])
        valid &= ~(block[..., fill_only] == 0).any(axis=-1)
    return valid


# metadata that places the pixels on the ground besides ``crs``/``transform``, kept by every
# raster written from the scene (`unmixgen.runs.folder.save_maps`):
#   "gcps"           ground control points [row, col, x, y, z] (pixel row and column from the
#                    top-left corner of the top-left pixel, map x/y in ``crs``), when there is no
#                    geotransform: an L1 product, ENVI ``geo points``, a swath's latitude/longitude
#   "rpcs"           rational polynomial coefficients (rasterio's ``RPC.to_dict()``)
#   "area_or_point"  "Point" for a GeoTIFF whose tie point names a pixel centre (the transform
#                    is always the corner-based one GDAL reports)
PLACEMENT_KEYS = ("gcps", "rpcs", "area_or_point")


def placement(scene: Scene) -> dict[str, Any]:
    """The scene's `PLACEMENT_KEYS` metadata that is set, for a raster written on its pixel grid."""
    return {k: scene.metadata[k] for k in PLACEMENT_KEYS if scene.metadata.get(k)}


def placed_by(scene: Scene) -> dict[str, Any]:
    """What places ``scene`` on the ground, as `describe` reports it: ``placed_by`` lists
    ``"geotransform"`` or, without one, ``"gcps"`` (the writers keep ground control points only
    then), and ``"rpcs"``; empty, the maps open unplaced. ``gcp_count`` and ``gcp_crs`` (the
    points' CRS, ``EPSG:n`` when PROJ knows its code) describe the points, ``rpc_centre_lat_lon``
    the RPCs (their latitude and longitude offsets: the middle of the ground they were fitted
    on); None where the scene has none."""
    placed = placement(scene)
    gcps = placed.get("gcps") if scene.transform is None else None
    rpcs = placed.get("rpcs")
    by = ["geotransform"] if scene.transform is not None else ["gcps"] if gcps else []
    return {
        "placed_by": by + (["rpcs"] if rpcs else []),
        "gcp_count": len(gcps) if gcps else None,
        "gcp_crs": _crs_name(scene.crs) if gcps and scene.crs else None,
        "rpc_centre_lat_lon": [float(rpcs["lat_off"]), float(rpcs["long_off"])] if rpcs else None,
    }


def _crs_name(crs: str) -> str:
    """``EPSG:n`` for a CRS PROJ identifies, else the CRS as given."""
    try:
        import rasterio
        from rasterio.crs import CRS

        with rasterio.Env():  # PROJ's messages become exceptions, not stderr lines
            epsg = CRS.from_user_input(crs).to_epsg()
    except Exception:  # noqa: BLE001 - rasterio's CRSError, PROJ's messages vary
        epsg = None
    return f"EPSG:{epsg}" if epsg else str(crs)


# metadata of a scene whose reader presents the file's bands in another order than stored (sorted
# by wavelength, one detector's kept where two overlap; `unmixgen.io.bands`): the stored (file)
# band, 0-based, of each band of the scene, and how many bands the file holds
STORED_ORDER_KEYS = ("stored_band_index", "stored_bands")


def stored_band_order(scene: Scene) -> tuple[np.ndarray, int] | None:
    """``(index (bands,) int, stored)``: the file's band of each band of ``scene`` and the
    file's band count, when its reader reordered or dropped bands (`STORED_ORDER_KEYS`);
    None when the bands are as the file stores them."""
    index, stored = (scene.metadata.get(k) for k in STORED_ORDER_KEYS)
    if index is None or stored is None:
        return None
    return np.asarray(index, np.intp), int(stored)


def in_scene_band_order(spectra: np.ndarray, stored_order: tuple[np.ndarray, int] | None,
                        source: str) -> np.ndarray:
    """Spectra ``(p, n)`` without wavelengths of their own (so in the band order of the file
    they belong to) in the band order of a scene whose reader reordered its file's bands
    (``stored_order``: `stored_band_order`; None: returned as they are).

    On the file's ``stored`` bands they are put in the scene's order (and any band the reader
    dropped is dropped). On any other number of bands their order is unknown (on as many bands
    as the scene they could be in the file's order or the scene's): `InputError` naming
    ``source`` and asking for the file's bands or wavelengths."""
    if stored_order is None:
        return spectra
    index, stored = stored_order
    if spectra.shape[1] == stored:
        return np.ascontiguousarray(spectra[:, index])
    how = "sorted by wavelength" if index.size == stored else f"{index.size} of them kept where detectors overlap"
    raise InputError(
        f"{source}: spectra on {spectra.shape[1]} bands without wavelengths, but the scene's file stores {stored} "
        f"bands and its reader reordered them ({how}), so their band order is unknown; expected spectra on the "
        f"file's {stored} bands in its order, or with wavelengths"
    )


class Scene:
    """A hyperspectral scene; see the module docstring.

    Parameters
    ----------
    cube : array (rows, cols, bands) or CubeSource
        The data, in physical units. Arrays of any real dtype (and array-likes: lists, CPU
        tensors) are read as float32 per window.
    wavelengths : array (bands,) or None
        Band centres in nm, strictly increasing. ``None`` when the file has none.
    fwhm : array (bands,) or None
        Band widths in nm, one number per band (`ParameterError` otherwise). Zero, negative
        or non-finite widths are dropped with a warning, as the file readers drop them.
    good_bands : bool array (bands,) or None
        ``False`` for bands a file marks bad (ENVI ``bbl``); default all good.
    mask : bool array (rows, cols), callable returning one, or None
        ``True`` = valid pixel. ``None`` computes it from the data (`pixel_validity`),
        tile by tile; a callable is called once, on first use (readers use this to avoid
        reading the cube for `info`). Both then leave out the pixels of stuck detector
        lines (`product_artefacts`, with a warning); a given array is taken as it is.
    nodata : float or None
        The stored nodata value, if the file declares one.
    crs : str or None
        Coordinate reference system as WKT (or ``"EPSG:n"``).
    transform : 6-tuple or None
        Affine geotransform in rasterio order ``(a, b, c, d, e, f)``: x = a*col + b*row + c,
        y = d*col + e*row + f.
    truth : GroundTruth or None
    name, path : str or None
        For messages and output metadata.
    units : str or None
        What the values measure, as its file labels it: ``"reflectance"``, ``"radiance"`` or a
        radiance unit such as ``"uW/(cm^2 sr nm)"``; None when unknown. Writers keep the label
        as it is (ENVI ``data units``, the GeoTIFF bands' unit type, an ``.npz``'s or ``.mat``'s
        ``units``: `unmixgen.io.checks.scene_units`); `unmixgen.io.checks.quantity` tells which
        of the two a label names.
    metadata : dict
        Anything else worth keeping (reader-specific). Placement without a geotransform is
        kept under the keys of `PLACEMENT_KEYS`, which every map of the scene carries.
    """

    def __init__(
        self,
        cube: np.ndarray | CubeSource,
        *,
        wavelengths=None,
        fwhm=None,
        good_bands=None,
        mask: np.ndarray | Callable[[], np.ndarray] | None = None,
        nodata: float | None = None,
        crs: str | None = None,
        transform: tuple[float, ...] | None = None,
        truth: GroundTruth | None = None,
        name: str | None = None,
        path: str | None = None,
        units: str | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self.source: CubeSource = as_source(cube)
        rows, cols, bands = self.source.shape
        for values, whose in ((wavelengths, "the wavelengths' count"), (fwhm, "the fwhm values' count"),
                              (good_bands, "the good-band flags' count")):
            if values is not None and np.size(values) != bands:
                check_bands_last("cube", cube, int(np.size(values)), whose)
        if min(rows, cols, bands) < 1:
            raise InputError(f"cube shape {self.source.shape} is empty; expected (rows, cols, bands) >= 1")
        self.name = name
        self.path = path
        self.units = units
        self.nodata = nodata
        self.crs = crs
        self.transform = tuple(float(v) for v in transform[:6]) if transform is not None else None
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.wavelengths = None
        if wavelengths is not None:
            try:
                self.wavelengths = check_wavelengths(wavelengths, bands, what="wavelengths")
            except InputError as exc:
                raise self._refused("wavelengths", "wavelengths", wavelengths,
                                    str(exc).removeprefix("wavelengths: ")) from None
        self.fwhm = self._checked_fwhm(fwhm, bands)
        if good_bands is not None:
            flags = np.asarray(good_bands)
            if flags.dtype != bool and (flags.dtype.kind not in "iuf" or not np.isin(flags, (0, 1)).all()):
                raise self._refused("good_bands", "good-band list", good_bands, "values other than 0 and 1 (band "
                                    "numbers?); expected one True/False flag per band")
        self.good_bands = (
            np.ones(bands, bool) if good_bands is None else np.asarray(good_bands, bool).reshape(-1)
        )
        if self.good_bands.shape != (bands,):
            raise self._refused("good_bands", "good-band list", good_bands,
                                f"{self.good_bands.size} values for {bands} bands; expected one flag per band")
        self._mask: np.ndarray | None = None
        self._valid_are_finite = False  # known: a mask from `pixel_validity`, or checked once
        self._mask_fn: Callable[[], np.ndarray] | None = None
        if callable(mask):
            self._mask_fn = mask
        elif mask is not None:
            self._mask = self._checked_mask(mask)
        self._cube: np.ndarray | None = None
        self.truth: GroundTruth | None = None
        if truth is not None:
            self.attach_truth(truth, band_order="scene")  # built with the cube: in its order

    # -- shape -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.source.shape)

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def cols(self) -> int:
        return self.shape[1]

    @property
    def bands(self) -> int:
        return self.shape[2]

    @property
    def dtype(self) -> np.dtype:
        """Storage dtype of the file (the cube itself is always read as float32)."""
        return np.dtype(self.source.dtype)

    # -- data ------------------------------------------------------------------------
    def read(self, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """Read a window as float32 ``(r, c, bands)``; only that window is read from disk.

        ``rows`` and ``cols`` are slices as numpy takes them (negative or stepped too: the
        window they span is read, then stepped through).
        """
        if self._cube is not None:
            return self._cube[rows, cols]
        rows, row_step = _window(rows, self.rows, "rows")
        cols, col_step = _window(cols, self.cols, "cols")
        block = self.source.read(rows, cols)
        return block if row_step == col_step == slice(None) else block[row_step, col_step]

    @property
    def is_loaded(self) -> bool:
        """Whether `load()` has put the whole cube in memory."""
        return self._cube is not None

    def load(self) -> np.ndarray:
        """Read the whole cube once and keep it; returns float32 ``(rows, cols, bands)``.

        The only call that puts the whole cube in memory (`valid_pixels` calls it). A
        float32 in-memory array without scaling or band reordering is kept as is, not
        copied. After `load()`, `read`, `tiles` and `map_tiles` slice the loaded cube.
        """
        if self._cube is None:
            src = self.source
            if (
                isinstance(src, ArraySource)
                and isinstance(src.array, np.ndarray)
                and not isinstance(src.array, np.memmap)
                and src.band_order is None
                and src.array.dtype == np.float32
                and np.ndim(src.scale) == 0
                and src.scale == 1.0
                and src.offset == 0.0
            ):
                self._cube = src.array
            else:
                self._cube = self.source.read(slice(0, self.rows), slice(0, self.cols))
        return self._cube

    @property
    def mask(self) -> np.ndarray:
        """Valid pixels, bool ``(rows, cols)``: `pixel_validity` on the good bands (a band
        flagged bad may hold anything)."""
        if self._mask is None:
            if self._mask_fn is not None:
                mask = self._checked_mask(self._mask_fn())
            else:
                mask = self._values_validity()
                self._valid_are_finite = True
            self._mask = self._without_artefacts(mask)
        return self._mask

    def _without_artefacts(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` less the pixels of stuck detector lines (`product_artefacts`), with a warning
        that names them, and one that counts zero-filled pixels unless a zero ``nodata`` declares
        them; ``metadata["stuck_lines"]`` and ``metadata["zero_pixels"]`` record them."""
        found = product_artefacts(self, mask)
        n = found["zero_filled"]
        if n and (self.nodata is None or self.nodata != 0):
            self.metadata["zero_pixels"] = n
            warnings.warn(f"{self.path or 'scene'}: {n} of {mask.size} pixels are 0 in every band and no nodata value "
                          "says so (a zero-filled image border, lost lines?); they are left out as no-data",
                          UserWarning, stacklevel=3)
        stuck = found["stuck"]
        if stuck is None:
            return mask
        n = int(stuck["pixels"].sum())
        where = " and ".join(line_list(k, stuck[f"{k}s"]) for k in ("column", "row") if stuck[f"{k}s"])
        self.metadata["stuck_lines"] = {"columns": stuck["columns"], "rows": stuck["rows"], "pixels": n,
                                        "bands": stuck["bands"]}
        warnings.warn(f"{self.path or 'scene'}: {n} pixels on {where} (from 0) hold one value along the whole "
                      f"line in {line_list('band', stuck['bands'])} (from 1): a dead or saturated detector element, "
                      "a lost line; no mixture gives them, so they are left out as no-data (mark those bands bad, "
                      "e.g. ENVI bbl, to keep the pixels)", UserWarning, stacklevel=3)
        return mask & ~stuck["pixels"]

    def _values_validity(self) -> np.ndarray:
        """`pixel_validity` of the presented values on the good bands, tile by tile."""
        nodata = self.nodata
        good = None if self.good_bands.all() else self.good_bands

        def valid(data: np.ndarray, _) -> np.ndarray:
            return pixel_validity(data if good is None else data[..., good], nodata)[..., None]

        return map_tiles(self, valid, tile=512, out_channels=1, dtype=bool, fill=False, masked=False)[..., 0]

    def _empty_good_bands(self) -> np.ndarray:
        """Bool per band: good bands that hold no valid value in any pixel (NaN or nodata
        everywhere, e.g. a band the producer dropped and filled). Reads the whole scene."""
        nd = self.nodata
        has = np.zeros(self.bands, bool)
        for r0 in range(0, self.rows, 256):
            blk = self.read(slice(r0, min(r0 + 256, self.rows)), slice(0, self.cols))
            ok = np.isfinite(blk)
            if nd is not None and np.isfinite(nd) and nd != 0:
                ok &= blk != np.float32(nd)
            has |= ok.any(axis=(0, 1))
        return self.good_bands & ~has

    @property
    def valid_fraction(self) -> float:
        return float(self.mask.mean())

    def require_valid(self) -> None:
        """Raise `InputError` when no pixel of the scene is valid."""
        if not self.mask.any():
            empty = self._empty_good_bands()
            if empty.any() and not empty[self.good_bands].all():
                # the pixels are fine but for bands that hold nothing: name those
                idx = np.flatnonzero(empty)
                where = ", ".join(f"{i + 1}" + (f" ({self.wavelengths[i]:.0f} nm)" if self.wavelengths is not None
                                                else "") for i in idx[:5])
                more = f" and {idx.size - 5} more" if idx.size > 5 else ""
                raise InputError(
                    f"{self._what('scene')}: no valid pixel: band{'s' if idx.size > 1 else ''} {where}{more} "
                    f"{'are' if idx.size > 1 else 'is'} NaN/nodata in every pixel; expected them marked bad "
                    "(e.g. ENVI bbl, .npz good_bands) or removed"
                )
            raise InputError(
                f"{self._what('scene')}: no valid pixel (every pixel is NaN/Inf, all-zero, "
                "nodata or flagged); expected at least one"
            )

    def tiles(self, tile: int = 512, halo: int = 0, *, with_mask: bool = True) -> Iterator[Tile]:
        """Iterate over ``tile`` x ``tile`` tiles (row-major), each read on its own.

        ``halo`` extra pixels on every side are read too (clipped at the border) for methods
        that need neighbours; ``Tile.inner`` selects the tile's own region. To map a
        function over tiles and assemble the result, use `unmixgen.tiling.map_tiles`.
        """
        return iter_tiles(self, tile, halo, with_mask=with_mask)

    def row_sample(self, n: int = 20_000) -> np.ndarray:
        """About ``n`` valid pixels ``(N, bands)`` float32 of evenly spaced whole rows, read row by
        row (the cube is not loaded): a sample for statistics such as a noise estimate. The rows
        are spaced over those with valid pixels, as many as hold about ``n`` of them (a scene
        framed by nodata gets its ``n`` too)."""
        mask = self.mask
        counts = mask.sum(axis=1)
        candidates = np.flatnonzero(counts)
        if not candidates.size:
            return np.zeros((0, self.bands), np.float32)
        per_row = float(counts[candidates].mean())  # the number of columns when every pixel is valid
        n_rows = max(1, min(candidates.size, int(np.ceil(int(n) / per_row))))
        rows = candidates[np.unique(np.linspace(0, candidates.size - 1, n_rows).round().astype(int))]
        parts = [np.asarray(self.read(slice(r, r + 1), slice(None))[0][mask[r]], np.float32) for r in rows]
        return np.concatenate(parts) if parts else np.zeros((0, self.bands), np.float32)

    def valid_pixels(self) -> np.ndarray:
        """The valid pixels as float32 ``(N, bands)``, in row-major (C) pixel order.

        Loads the whole cube (`load`). A view of the cube when every pixel is valid (no
        copy of a large scene). `InputError` when a pixel a given ``mask`` marks valid holds
        NaN/Inf on a good band: the methods that take these pixels need numbers.
        """
        cube = self.load()
        if self.mask.all() and cube.flags.c_contiguous:
            Y = cube.reshape(-1, self.bands)
        else:
            Y = cube[self.mask]
        if not self._valid_are_finite:  # a mask from the values left non-finite pixels out already
            self._require_finite(Y)
            self._valid_are_finite = True  # the mask and the loaded cube no longer change
        return Y

    def _require_finite(self, Y: np.ndarray, chunk: int = 65536) -> None:
        """`InputError` naming the first of the valid pixels ``Y (N, bands)`` (in mask order)
        that is not finite on the good bands; checked by row chunks (no full-size copy)."""
        good = None if self.good_bands.all() else self.good_bands
        first, total = 0, 0
        for start in range(0, Y.shape[0], chunk):
            block = Y[start:start + chunk]
            bad = ~np.isfinite(block if good is None else block[:, good]).all(axis=1)
            if bad.any() and not total:
                first = start + int(np.argmax(bad))
            total += int(bad.sum())
        if total:
            r, c = np.unravel_index(np.flatnonzero(self.mask)[first], self.mask.shape)
            raise InputError(
                f"{self._what('scene')}: {total} pixel{'s' if total > 1 else ''} the mask marks valid "
                f"hold{'' if total > 1 else 's'} NaN/Inf on good bands (the first at row {r}, col {c}); "
                "expected the mask False there (mask=None computes it from the values)"
            )

    def to_image(self, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """Scatter per-valid-pixel values ``(N, k)`` back to ``(rows, cols, k)``; invalid = ``fill``."""
        values = np.asarray(values)
        out = np.full((self.rows, self.cols, values.shape[-1]), fill, dtype=np.float32)
        out[self.mask] = values
        return out

    # -- ground truth --------------------------------------------------------------------
    def attach_truth(self, truth: GroundTruth, *, band_order: str | None = None) -> None:
        """Attach ground truth after checking its shapes against the scene.

        Its endmembers are put on the scene's bands. With ``truth.wavelengths`` (nm, any order)
        they are sorted by them, and refused unless those are the scene's band centres. Without,
        where the scene's reader reordered its file's bands (sorted by wavelength, one detector
        kept where two overlap: `stored_band_order`), ``band_order`` says which order they are
        in: ``"file"`` (as stored in the scene's file, like a benchmark's spectra; put in the
        scene's order as `unmixgen.runs.truth.read_truth` puts them, `in_scene_band_order`)
        or ``"scene"`` (as the scene presents its bands). None: ``"file"`` for spectra on the
        file's band count when that is not the scene's; for spectra on the scene's band count
        the order is unknown, and `InputError` asks for ``band_order`` or wavelengths rather
        than guess. Where the scene's bands are as its file stores them, the order is one.
        """
        if band_order not in (None, "file", "scene"):
            raise ParameterError("band_order", band_order, "expected 'file' (the spectra are in the band order of "
                                                           "the scene's file) or 'scene' (in the scene's)")
        what = truth.source or "ground truth"
        e, a = truth.endmembers, truth.abundances
        if e is not None:
            e = np.asarray(e, np.float32)
            if e.ndim == 2:
                e = self._truth_on_bands(e, truth.wavelengths, band_order, what)
            if e.ndim != 2 or e.shape[1] != self.bands:
                raise InputError(
                    f"{what}: endmembers have shape {e.shape}; "
                    f"expected (p, {self.bands}) for a scene with {self.bands} bands"
                )
        if a is not None:
            a = np.asarray(a, np.float32)
            if a.ndim != 3 or a.shape[:2] != (self.rows, self.cols):
                raise InputError(
                    f"{what}: abundances have shape {a.shape}; "
                    f"expected ({self.rows}, {self.cols}, p) for a {self.rows}x{self.cols} scene"
                )
        if e is not None and a is not None and e.shape[0] != a.shape[2]:
            raise InputError(
                f"{what}: {e.shape[0]} endmembers but {a.shape[2]} abundance maps"
            )
        self.truth = GroundTruth(e, a, truth.names, truth.source, truth.pixel_order)

    def _truth_on_bands(self, e: np.ndarray, wavelengths, band_order: str | None, what: str) -> np.ndarray:
        """Endmembers ``e (p, n)`` in the scene's band order (`attach_truth`); a shape that fits
        no band count is left to the caller to refuse."""
        if wavelengths is not None:
            wl = check_wavelengths(wavelengths, e.shape[1], what=f"{what}: wavelengths", any_order=True)
            if self.wavelengths is None:
                raise InputError(f"{what}: endmembers with wavelengths, but the scene has none to match them to; "
                                 "expected truth without wavelengths, in the scene's band order")
            order = np.argsort(wl)
            if grid_offset_nm(wl[order], self.wavelengths) > SAME_GRID_NM:
                w = self.wavelengths
                raise InputError(f"{what}: endmembers are on {wl.size} bands at {wl.min():.6g}-{wl.max():.6g} nm, "
                                 f"not the {w.size} bands at {w[0]:.6g}-{w[-1]:.6g} nm of the scene; expected the "
                                 "truth on the same bands")
            return np.ascontiguousarray(e[:, order])
        stored_order = stored_band_order(self)
        if stored_order is None or band_order == "scene":
            return e
        index, stored = stored_order
        if stored == self.bands and np.array_equal(index, np.arange(stored)):
            return e  # the file's order is the scene's
        if band_order == "file" or e.shape[1] == stored != self.bands:
            return in_scene_band_order(e, stored_order, what)
        if e.shape[1] != self.bands:
            return e
        how = "sorted by wavelength" if index.size == stored else f"{index.size} of them kept where detectors overlap"
        raise InputError(
            f"{what}: endmembers on {e.shape[1]} bands without wavelengths, but the scene's file stores {stored} "
            f"bands and its reader reordered them ({how}), so their band order is unknown; expected "
            "band_order='file' (as the file stores its bands) or band_order='scene', or the truth's wavelengths"
        )

    # -- helpers ---------------------------------------------------------------------
    def _checked_mask(self, mask) -> np.ndarray:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (self.rows, self.cols):
            raise InputError(f"{self._what('mask')}: shape {m.shape}; expected ({self.rows}, {self.cols})")
        return m

    def _checked_fwhm(self, fwhm, bands: int) -> np.ndarray | None:
        """``fwhm`` as float64 ``(bands,)``, or None. Values that are not numbers, or not one
        per band, are refused (`ParameterError` naming ``fwhm``; the file's name in an
        `InputError` when the scene has a path); zero, negative or non-finite widths are
        dropped with the file readers' warning (`unmixgen.wavelengths.usable_fwhm`): a sensor's
        band without a known width is no reason to refuse its cube, and kept they would be
        refused far from here, by the sensor response of `simulate`."""
        if fwhm is None:
            return None
        fw = np.asarray(fwhm)
        if fw.dtype.kind not in "iuf":
            expected = f"expected widths in nm, one number per band ({bands}); got values of type {fw.dtype}"
        else:
            fw = fw.astype(np.float64).reshape(-1)
            if fw.shape == (bands,):
                return usable_fwhm(fw, "fwhm values", self.path or "Scene", stacklevel=4)
            expected = f"{fw.size} values for {bands} bands; expected one width (nm) per band"
        raise self._refused("fwhm", "fwhm", fwhm, expected)

    def _refused(self, parameter: str, thing: str, value, text: str) -> InputError:
        """The error for a per-band list that does not fit: naming the file (``path: thing: text``)
        for a reader's scene, else a `ParameterError` naming the ``parameter`` a caller gave."""
        if self.path:
            return InputError(f"{self._what(thing)}: {text}")
        return ParameterError(parameter, brief(value), text)

    def _what(self, thing: str) -> str:
        return f"{self.path}: {thing}" if self.path else thing

    def __repr__(self) -> str:
        wl = (
            f"{self.wavelengths[0]:.0f}-{self.wavelengths[-1]:.0f} nm"
            if self.wavelengths is not None
            else "no wavelengths"
        )
        return f"Scene({self.name or self.path or 'unnamed'}: {self.rows}x{self.cols}x{self.bands}, {wl})"


class _BandsInOrder:
    """A `CubeSource` that presents another source's bands in ``order`` (indices into them)."""

    def __init__(self, source: CubeSource, order: np.ndarray):
        self.source = source
        self.order = np.asarray(order, np.intp)
        rows, cols, _ = source.shape
        self.shape = (int(rows), int(cols), int(self.order.size))
        self.dtype = source.dtype

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        return self.source.read(rows, cols)[..., self.order]


def take_bands(scene: Scene, order, *, wavelengths=None) -> Scene:
    """``scene`` with its bands in ``order`` (a permutation of its band indices), read
    lazily: every per-band list (wavelengths, FWHM, good bands, band names, reference
    endmembers) follows. ``wavelengths`` (nm, one per ordered band, increasing) replaces the
    permuted ones, e.g. band centres given for a file that has none. The pixel mask does not
    depend on band order and is shared. `stored_band_order` says where each band came from
    (in ``scene``'s file when its reader reordered the bands, else in ``scene``)."""
    given = np.asarray(order)
    if given.dtype.kind not in "iu":
        raise InputError(f"{scene._what('band order')}: {given.dtype} values; expected integer band indices")
    order = given.astype(np.intp).reshape(-1)
    if not np.array_equal(np.sort(order), np.arange(scene.bands)):
        raise InputError(f"{scene._what('band order')}: expected a permutation of 0..{scene.bands - 1}")
    source = ArraySource(scene._cube[..., order]) if scene._cube is not None else _BandsInOrder(scene.source, order)
    metadata = dict(scene.metadata)
    names = metadata.get("band_names")
    if isinstance(names, list) and len(names) == scene.bands:
        metadata["band_names"] = [names[i] for i in order]
    # the file's band of each band, through the reader's order when it had one
    previous = stored_band_order(scene)
    if previous is not None or not np.array_equal(order, np.arange(scene.bands)):
        index_key, count_key = STORED_ORDER_KEYS
        metadata[index_key] = (order if previous is None else previous[0][order]).tolist()
        metadata[count_key] = scene.bands if previous is None else previous[1]
    truth = scene.truth
    if truth is not None and truth.endmembers is not None:
        truth = replace(truth, endmembers=truth.endmembers[:, order])
    mask = scene._mask if scene._mask is not None else scene._mask_fn
    if wavelengths is None and scene.wavelengths is not None:
        wavelengths = scene.wavelengths[order]
    out = Scene(
        source,
        wavelengths=wavelengths,
        fwhm=None if scene.fwhm is None else scene.fwhm[order],
        good_bands=scene.good_bands[order],
        mask=mask,
        nodata=scene.nodata,
        crs=scene.crs,
        transform=scene.transform,
        name=scene.name,
        path=scene.path,
        units=scene.units,
        metadata=metadata,
    )
    if truth is not None:
        out.attach_truth(truth, band_order="scene")  # the scene's truth, taken in the same order
    return out


def describe(scene: Scene, *, count_valid: bool = False, sample_pixels: int = 65536) -> dict[str, Any]:
    """The JSON-ready summary of a scene used by `unmixgen info --json`.

    Metadata only, unless asked: valid pixels are counted exactly (every pixel read, tile by
    tile) when ``count_valid`` or when the mask is already known; otherwise they are
    estimated from an evenly spread sample of at most ``sample_pixels`` pixels (64 windows),
    and ``valid_pixels_from`` says which. A scene with no valid pixel is described, not
    refused.
    """
    wl = scene.wavelengths
    if count_valid or scene._mask is not None or scene.rows * scene.cols <= sample_pixels:
        mask = scene.mask
        valid, total, how = int(mask.sum()), int(mask.size), "all pixels"
    else:
        valid, total = _sampled_validity(scene, sample_pixels)
        how = f"sample of {total} pixels"
    fraction = valid / total if total else 0.0
    info: dict[str, Any] = {
        "path": scene.path,
        "rows": scene.rows,
        "cols": scene.cols,
        "bands": scene.bands,
        "dtype": str(scene.metadata.get("stored_dtype", scene.dtype)),
        "units": scene.units,
        "wavelength_min_nm": None if wl is None else float(wl[0]),
        "wavelength_max_nm": None if wl is None else float(wl[-1]),
        "has_fwhm": scene.fwhm is not None,
        "good_bands": int(scene.good_bands.sum()),
        "valid_pixels": valid if how == "all pixels" else round(fraction * scene.rows * scene.cols),
        "invalid_pixels": (total - valid) if how == "all pixels"
        else scene.rows * scene.cols - round(fraction * scene.rows * scene.cols),
        "valid_fraction": fraction,
        "valid_pixels_from": how,
        "nodata": scene.nodata,
        "crs": scene.crs,
        "transform": list(scene.transform) if scene.transform is not None else None,
        **placed_by(scene),
        "ground_truth": None,
    }
    if scene.truth is not None:
        info["ground_truth"] = {
            "endmembers": scene.truth.n_endmembers,
            "names": scene.truth.names,
            "has_abundances": scene.truth.abundances is not None,
        }
    if "stuck_lines" in scene.metadata:  # found with the mask (`product_artefacts`)
        info["stuck_lines"] = scene.metadata["stuck_lines"]
    for k, v in scene.metadata.items():
        if (isinstance(v, (str, int, float, bool)) or v is None) and k != "stored_dtype":
            info.setdefault(k, v)
    return info


def _sample_windows(scene: Scene, sample_pixels: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks ``(r, c, bands)`` of up to 64 small windows spread evenly over the scene, about
    ``sample_pixels`` pixels in all, each with its valid pixels ``(r, c)`` (`_window_validity`);
    windows never overlap (each pixel read once)."""
    n = 8  # windows per axis at most
    side = max(1, int(np.sqrt(max(1, sample_pixels) / (n * n))))

    def starts(size: int) -> tuple[list[int], int]:
        s = min(side, size)
        k = min(n, max(1, size // s))
        return sorted({int(v) for v in np.linspace(0, size - s, k)}), s

    rows, side_r = starts(scene.rows)
    cols, side_c = starts(scene.cols)
    for r in rows:
        for c in cols:
            window = (slice(r, r + side_r), slice(c, c + side_c))
            block = scene.read(*window)
            yield block, _window_validity(scene, block, *window)


def _window_validity(scene: Scene, block: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """Valid pixels of the window ``block`` (read at ``rows, cols``), judged on the good bands as
    `Scene.mask` judges them: the known mask where there is one, else `pixel_validity` of the
    stored values where the source keeps any (``read_stored``: a scaled file's nodata is a stored
    value, -9999 that reads as -0.9999), else of the values read."""
    if scene._mask is not None:
        return scene._mask[rows, cols]
    good = scene.good_bands
    read_stored = getattr(scene.source, "read_stored", None)
    values = block if read_stored is None else read_stored(rows, cols)
    return pixel_validity(np.asarray(values[..., good], np.float32), scene.nodata)


def _sampled_validity(scene: Scene, sample_pixels: int) -> tuple[int, int]:
    """(valid, read) pixels in up to 64 small windows spread evenly over the scene, judged on
    the good bands like `Scene.mask` (a bad band may hold NaN at every pixel)."""
    valid = total = 0
    for _, ok in _sample_windows(scene, sample_pixels):
        valid += int(ok.sum())
        total += ok.size
    return valid, total


def sample_valid_pixels(scene: Scene, sample_pixels: int = 4096) -> np.ndarray:
    """About ``sample_pixels`` pixels spread over the scene (small windows, read on their
    own: the cube is not loaded), the valid ones (judged on the good bands) as float32
    ``(N, bands)``."""
    out = [block[ok] for block, ok in _sample_windows(scene, sample_pixels)]
    return np.concatenate(out, axis=0).astype(np.float32, copy=False)
