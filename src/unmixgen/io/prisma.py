"""PRISMA HE5 products (L1, L2B, L2C, L2D): a lazy reader.

Product layout (PRISMA Product Specification; the same facts are used by public readers
such as prismaread and the EnMAP-Box importers):

- The hyperspectral cubes are ``HDFEOS/SWATHS/PRS_<level>_HCO/Data Fields/VNIR_Cube`` and
  ``SWIR_Cube`` (``<level>`` is ``L1``, ``L2B``, ``L2C`` or ``L2D``), uint16, stored
  ``(rows, bands, cols)``.
- Band centres and widths are root attributes ``List_Cw_Vnir``/``List_Cw_Swir`` and
  ``List_Fwhm_Vnir``/``List_Fwhm_Swir`` (nm), one per stored band slot, in DESCENDING
  wavelength order. Unused slots have wavelength 0; ``List_Cw_*_Flags`` (when present) is 0
  for them too. Both kinds of unused slot are dropped.
- L2 (B/C/D) values are scaled DNs: ``value = ScaleMin + DN * (ScaleMax - ScaleMin) / 65535``
  with root attributes ``L2ScaleVnirMin/Max`` and ``L2ScaleSwirMin/Max`` (reflectance for
  L2C/L2D, radiance for L2B).
- L1 values are TOA radiance in W/(m^2 sr um) ``DN / ScaleFactor_<cube> - Offset_<cube>``
  (the product specification's formula and unit; the offsets are 0 in the products we know
  of, so the sign of the offset rarely matters). The file holds no unit attribute: the
  scene's units are that unit (`L1_UNITS`); L2B radiance keeps the word ``radiance``.
- Per-pixel, per-band error flags: ``<CUBE>_PIXEL_L2_ERR_MATRIX`` (L2) or
  ``<CUBE>_PIXEL_SAT_ERR_MATRIX`` (L1), same shape as the cube, 0 = no error.
- L2D is map-projected: ``Epsg_Code`` and the corner attributes
  ``Product_{UL,UR,LL,LR}corner_{easting,northing}``. L1/L2B/L2C are swath geometry with
  latitude/longitude arrays in ``Geolocation Fields``: no geotransform (the arrays are not a
  regular grid; ``metadata["geolocation"]`` says where they are), but ground control points
  sampled from them (`io.geolocation`; ``crs`` is then WGS 84, theirs), so the maps open in
  place.

VNIR/SWIR overlap (about 920-1010 nm: both spectrometers measure there): ``overlap=`` is
the policy every reader shares (`io.bands`): ``"sort"`` (default) keeps every band sorted
by wavelength; ``"long"`` (alias ``"swir"``) keeps the SWIR bands there and drops the VNIR
bands at or above the shortest SWIR wavelength (the silicon VNIR detector's response
falls off towards 1 um, so its last bands are the noisiest); ``"short"`` (alias
``"vnir"``) keeps the VNIR bands and drops the SWIR bands at or below the longest VNIR one.

The cube is never read by `read`: the scene's source (`PrismaSource`) reads the
hyperslab ``[rows, :, cols]`` of both cubes per request, in row blocks, and converts
to float32 ``(r, c, bands)`` with one scaling pass per block.

Invalid pixels (``scene.mask`` is a callable, evaluated on first use, see `_PrismaMask`):

- DN 0 in every band (the fill value of the L2D map grid outside the swath). A pixel
  with DN 0 in every band has DN 0 in *any* band, so candidates come from two band planes
  (one per cube, 2 x rows x cols values). Only the candidates are then checked across all
  bands, by reading the candidate column runs of each row block. Scenes with few fill
  pixels cost almost nothing; an L2D scene with a wide fill border reads about the
  border's share of the cube.
- error flags: a pixel is invalid when more than ``flagged_fraction`` (default 0.5) of
  its bands are flagged in the error matrices. Isolated per-band flags (one saturated
  band) do not discard a pixel; the matrices are read in row blocks (uint8, half the cube's
  bytes) so memory stays bounded. ``flagged_fraction=None`` ignores the error matrices.

Georeferencing of L2D: the corner attributes are the *centres* of the corner pixels and
the grid has 30 m pixels, as prismaread (``pr_setext_L2D``) and the EnMAP-Box PRISMA
importer read them: the grid's left edge is ``min easting - 15`` and its bottom edge
``min northing - 15``; the top edge is ``bottom + 30 * rows``. The transform follows
rasterio: it maps pixel corners, x = a*col + c, y = e*row + f with e < 0 (north up).

Security: the cubes and error matrices must be datasets stored in the file itself; soft
and external links, external raw storage and virtual datasets are refused unless
``allow_external=True`` (see `io.hdf5`). Every attribute used is checked (a number, finite;
scale factors non-zero) before use.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import check_keywords, check_range, in_file
from ..scene import Scene
from ..wavelengths import to_nm
from . import geolocation, hdf5
from .bands import arrange, overlap_policy, per_band, usable_fwhm
from .checks import count, make_scene, number, reading

LEVELS = ("L1", "L2B", "L2C", "L2D")
L1_UNITS = "W/(m^2 sr um)"  # the product specification's unit of L1 radiance (DN / ScaleFactor - Offset)
_BLOCK_BYTES = 8 << 20  # target size of one row block of a uint16 cube read
_THREADS = min(4, os.cpu_count() or 1)  # conversion threads for large reads


L2D_PIXEL_M = 30.0  # PRISMA's hyperspectral ground sampling distance


def _attr(f: h5py.File, name: str, default=None):
    v = hdf5.attr(f, name)
    return default if v is None else v


def _scalar(f: h5py.File, name: str, path: Path, **checks) -> float:
    v = _attr(f, name)
    if v is None:
        raise in_file(path, f"attribute {name!r} missing; a PRISMA product has it at the root")
    return number(v, f"attribute {name!r}", path, **checks)


def _find_swath(f: h5py.File, path: Path, source: str, allow_external: bool) -> tuple[str, str]:
    """The swath group holding the hyperspectral cubes and the processing level."""
    swaths = hdf5.get(f, "HDFEOS/SWATHS", path, allow_external=allow_external, required=False)
    names = list(swaths.keys()) if isinstance(swaths, h5py.Group) else []
    for level in LEVELS:
        name = f"PRS_{level}_{source}"
        if name in names:
            fields = hdf5.get(swaths, f"{name}/Data Fields", path, allow_external=allow_external,
                              required=False)
            if isinstance(fields, h5py.Group) and ("VNIR_Cube" in fields or "SWIR_Cube" in fields):
                return f"HDFEOS/SWATHS/{name}", level
    raise in_file(
        path,
        f"no VNIR_Cube/SWIR_Cube hyperspectral datasets under HDFEOS/SWATHS/PRS_<level>_{source}/Data Fields "
        f"(found swaths: {', '.join(names) or 'none'}); expected a PRISMA L1/L2B/L2C/L2D product",
    )


class _CubePart:
    """One of the two stored cubes and what to take from it."""

    def __init__(self, name: str, src_idx: np.ndarray, dst_idx: np.ndarray, scale: float, offset: float):
        self.name = name  # dataset path
        self.src_idx = np.asarray(src_idx, np.intp)  # stored band slots, in output order
        self.dst_idx = np.asarray(dst_idx, np.intp)  # their positions in the output cube
        self.scale = np.float32(scale)
        self.offset = np.float32(offset)
        # A slice instead of fancy indexing where possible (views, no gather copy).
        self.src_slice = _as_slice(self.src_idx)
        self.dst_slice = _as_slice(self.dst_idx)


def _as_slice(idx: np.ndarray) -> slice | None:
    if idx.size == 0:
        return None
    if idx.size == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    d = np.diff(idx)
    if np.all(d == d[0]) and d[0] != 0:
        step = int(d[0])
        stop = int(idx[-1]) + step
        return slice(int(idx[0]), None if stop < 0 else stop, step)
    return None


class PrismaSource:
    """A `CubeSource` over the VNIR and SWIR cubes of a PRISMA HE5 file.

    ``read(rows, cols)`` reads the hyperslab ``[rows, :, cols]`` of each cube in row
    blocks and returns float32 ``(r, c, bands)`` in physical units, bands in increasing
    wavelength order.
    """

    def __init__(self, path: Path, parts: list[_CubePart], shape: tuple[int, int, int]):
        self.path = Path(path)
        self.parts = parts
        self.shape = shape
        self.dtype = np.dtype(np.uint16)

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        nr, nc = max(r1 - r0, 0), max(c1 - c0, 0)
        out = np.empty((nr, nc, self.shape[2]), np.float32)
        if nr == 0 or nc == 0:
            return out
        with reading(self.path, "read the PRISMA cube", hdf5=True), h5py.File(self.path, "r") as f:
            blocks = []
            for part in self.parts:
                nb = f[part.name].shape[1]
                step = max(1, _BLOCK_BYTES // max(1, nb * nc * 2))
                blocks += [(part, b0, min(b0 + step, r1)) for b0 in range(r0, r1, step)]
            workers = min(_THREADS, len(blocks))
            if workers <= 1:
                for part, b0, b1 in blocks:
                    self._convert(f[part.name][b0:b1, :, c0:c1], out[b0 - r0 : b1 - r0], part)
                return out
            # h5py reads one block at a time (it holds a global lock); numpy releases the
            # GIL, so converting the previous block overlaps with reading the next one.
            from concurrent.futures import ThreadPoolExecutor

            pending = []
            with ThreadPoolExecutor(workers) as pool:
                for part, b0, b1 in blocks:
                    blk = f[part.name][b0:b1, :, c0:c1]
                    pending.append(pool.submit(self._convert, blk, out[b0 - r0 : b1 - r0], part))
                    if len(pending) > workers:
                        pending.pop(0).result()
                for fut in pending:
                    fut.result()
        return out

    @staticmethod
    def _convert(blk: np.ndarray, out_rows: np.ndarray, part: _CubePart) -> None:
        """Scale (r, nb, c) uint16 into the part's bands of ``out_rows`` (r, c, bands).

        Row by row: ``astype`` does the (n, c) -> (c, n) transpose and the float32 cast in
        one pass into a small contiguous buffer (the fastest numpy path measured for this
        shuffle), then scale/offset run in place (SIMD) and one strided copy places the
        row's bands.
        """
        src = blk[:, part.src_slice, :] if part.src_slice is not None else blk[:, part.src_idx, :]
        for r in range(src.shape[0]):
            t = src[r].T.astype(np.float32)  # (c, n) contiguous
            t *= part.scale
            if part.offset != 0:
                t += part.offset
            if part.dst_slice is not None:
                out_rows[r, :, part.dst_slice] = t
            else:
                out_rows[r][:, part.dst_idx] = t


class _PrismaMask:
    """Valid-pixel mask of a PRISMA file, computed without reading the whole cube."""

    def __init__(self, path: Path, cubes: list[str], errs: list[tuple[str, np.ndarray]],
                 shape: tuple[int, int], flagged_fraction: float | None):
        self.path = path
        self.cubes = cubes
        self.errs = errs  # (error matrix, the stored slots the scene presents)
        self.shape = shape
        self.flagged_fraction = flagged_fraction

    def __call__(self) -> np.ndarray:
        rows, cols = self.shape
        valid = np.ones((rows, cols), bool)
        with reading(self.path, "read the PRISMA cube", hdf5=True), h5py.File(self.path, "r") as f:
            self._zero_dn(f, valid)
            if self.flagged_fraction is not None:
                self._flags(f, valid)
        return valid

    def _zero_dn(self, f: h5py.File, valid: np.ndarray) -> None:
        rows, cols = self.shape
        cand = np.ones((rows, cols), bool)
        for name in self.cubes:  # one band plane per cube
            ds = f[name]
            plane = ds[:, ds.shape[1] // 2, :]
            cand &= plane == 0
        if not cand.any():
            return
        # Confirm the candidates across all bands, row block by row block, reading only
        # the column runs that hold candidates.
        nb_total = sum(f[n].shape[1] for n in self.cubes)
        step = max(1, _BLOCK_BYTES // max(1, nb_total * cols * 2))
        for b0 in range(0, rows, step):
            b1 = min(b0 + step, rows)
            cblk = cand[b0:b1]
            colany = cblk.any(axis=0)
            if not colany.any():
                continue
            for c0, c1 in _runs(colany, gap=32):
                allzero = cblk[:, c0:c1].copy()
                for name in self.cubes:
                    blk = f[name][b0:b1, :, c0:c1]
                    allzero &= ~blk.any(axis=1)
                valid[b0:b1, c0:c1] &= ~allzero

    def _flags(self, f: h5py.File, valid: np.ndarray) -> None:
        if not self.errs:
            return
        rows, cols = self.shape
        # the fraction is of the scene's bands: unused slots (wavelength 0) and bands the
        # overlap policy dropped count neither as flagged nor in the total
        slots = sum(f[n].shape[1] for n, _ in self.errs)
        step = max(1, (2 * _BLOCK_BYTES) // max(1, slots * cols))
        limit = self.flagged_fraction * sum(idx.size for _, idx in self.errs)
        for b0 in range(0, rows, step):
            b1 = min(b0 + step, rows)
            count = np.zeros((b1 - b0, cols), np.int32)
            for name, idx in self.errs:
                count += np.count_nonzero(f[name][b0:b1][:, idx, :], axis=1)
            valid[b0:b1] &= ~(count > limit)


def _runs(flags: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """(start, stop) of the runs of True in ``flags``; runs closer than ``gap`` are merged."""
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > gap)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    stops = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _band_table(f: h5py.File, cube: str, nb: int, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(usable slots, their wavelengths nm, their FWHM nm or None) of ``cube`` ("Vnir"/"Swir")."""
    cw = _attr(f, f"List_Cw_{cube}")
    if cw is None:
        raise in_file(path, f"attribute List_Cw_{cube} missing; expected the PRISMA band-centre list")
    cw = np.asarray(cw).reshape(-1)
    if cw.dtype.kind not in "iuf":
        raise in_file(path, f"attribute List_Cw_{cube} has type {cw.dtype}; expected numbers (nm)")
    cw = to_nm(cw.astype(np.float64), "nm", what=f"{path}: List_Cw_{cube}")
    if cw.size != nb:
        raise in_file(path, f"List_Cw_{cube} has {cw.size} values but the {cube.upper()} cube has {nb} bands")
    use = np.isfinite(cw) & (cw > 0)
    flags = _attr(f, f"List_Cw_{cube}_Flags")
    if flags is not None:
        flags = np.asarray(flags).reshape(-1)
        if flags.size == nb and flags.dtype.kind in "biuf":
            use &= flags != 0
    fw = _attr(f, f"List_Fwhm_{cube}")
    what = f"List_Fwhm_{cube} values"
    fw = None if fw is None else per_band(np.asarray(fw).reshape(-1), nb, what, path)
    slots = np.flatnonzero(use)
    if fw is not None:  # judged on the used slots only: unused ones hold 0
        fw = usable_fwhm(fw[slots], what, path)
    return slots, cw[slots], fw


def _scaling(f: h5py.File, cube: str, level: str, path: Path) -> tuple[float, float]:
    """(scale, offset) so that value = DN * scale + offset."""
    if level == "L1":
        factor = _scalar(f, f"ScaleFactor_{cube}", path, nonzero=True)
        off = _attr(f, f"Offset_{cube}")
        offset = 0.0 if off is None else number(
            off, f"attribute 'Offset_{cube}'", path)
        return 1.0 / factor, -offset
    lo = _scalar(f, f"L2Scale{cube}Min", path)
    hi = _scalar(f, f"L2Scale{cube}Max", path)
    if hi == lo:
        raise in_file(path, f"L2Scale{cube}Min = L2Scale{cube}Max = {lo:g}; expected a range")
    return (hi - lo) / 65535.0, lo


def _parts(tables: dict, order: np.ndarray) -> list[_CubePart]:
    """The cube parts that fill the output bands: ``order`` indexes the concatenation of the
    cubes' usable slots (VNIR first), output band k takes entry ``order[k]``."""
    parts, start = [], 0
    for name, slots, _wl, _fw, scale, offset in tables.values():
        stop = start + slots.size
        dst = np.flatnonzero((order >= start) & (order < stop))
        if dst.size:
            parts.append(_CubePart(name, slots[order[dst] - start], dst, scale, offset))
        start = stop
    return parts


def read(
    path: Path,
    *,
    overlap: str = "sort",
    flagged_fraction: float | None = 0.5,
    source: str = "HCO",
    allow_external: bool = False,
    **options,
) -> Scene:
    """Read a PRISMA HE5 product lazily.

    Parameters
    ----------
    path : the ``.he5`` file.
    overlap : "sort" (default), "short"/"vnir" or "long"/"swir": which bands to keep where
        VNIR and SWIR overlap (see the module docstring and `io.bands`).
    flagged_fraction : a pixel flagged in more than this fraction of its bands by the
        error matrices is invalid; None ignores the error matrices.
    source : swath cube type, "HCO" (coregistered cube, default) or "HRC" (L1 only).
    allow_external : follow soft/external links and read external or virtual datasets
        (refused by default: they can read other files).

    Returns
    -------
    Scene whose cube is ``(rows, cols, bands)`` float32: reflectance (L2C/L2D), radiance
    (L1 in W/(m^2 sr um), its ``units``; L2B), bands in increasing wavelength order.
    """
    check_keywords(read, options, "an option of the prisma reader")
    path = Path(path)
    overlap_policy(overlap)
    if flagged_fraction is not None:
        check_range("flagged_fraction", flagged_fraction, low=0, high=1)
    f = hdf5.open_file(path, "a PRISMA .he5 product")
    with f, reading(path, "read the PRISMA product", hdf5=True):
        swath, level = _find_swath(f, path, str(source).upper(), allow_external)
        fields = hdf5.get(f, f"{swath}/Data Fields", path, allow_external=allow_external)
        tables = {}
        shape2 = None
        for cube in ("Vnir", "Swir"):
            name = f"{cube.upper()}_Cube"
            if hdf5.link_kind(fields, name) is None:
                continue
            ds = hdf5.dataset(fields, name, path, allow_external=allow_external, ndim=3)
            if shape2 is None:
                shape2 = (ds.shape[0], ds.shape[2])
            elif (ds.shape[0], ds.shape[2]) != shape2:
                raise in_file(path, f"VNIR and SWIR cubes differ in size: {shape2} vs {(ds.shape[0], ds.shape[2])}")
            slots, wl, fw = _band_table(f, cube, ds.shape[1], path)
            scale, offset = _scaling(f, cube, level, path)
            tables[cube] = (f"{swath}/Data Fields/{name}", slots, wl, fw, scale, offset)

        wl_all = np.concatenate([t[2] for t in tables.values()])
        if wl_all.size == 0:
            raise in_file(path, "no band has a wavelength (all List_Cw_* slots are 0); expected a PRISMA product")
        detector = np.concatenate([np.full(t[1].size, i) for i, t in enumerate(tables.values())])
        arr = arrange(wl_all, overlap, detectors=detector, path=path)
        order = np.arange(wl_all.size) if arr.order is None else arr.order
        parts = _parts(tables, order)
        fw_ok = all(t[3] is not None for t in tables.values())
        fwhm = np.concatenate([t[3] for t in tables.values()])[order] if fw_ok else None

        err_kind = "PIXEL_SAT_ERR_MATRIX" if level == "L1" else "PIXEL_L2_ERR_MATRIX"
        presented = {p.name: np.sort(p.src_idx) for p in parts}
        errs = []
        for c, t in tables.items():
            e = hdf5.dataset(fields, f"{c.upper()}_{err_kind}", path, allow_external=allow_external,
                             required=False)
            if e is not None and e.shape == f[t[0]].shape and t[0] in presented:
                errs.append((e.name, presented[t[0]]))

        crs = transform = None
        metadata = {"format": "prisma", "level": level, "overlap": overlap_policy(overlap),
                    "product_id": hdf5.text(_attr(f, "Product_ID"))}
        arr.note(metadata, overlap)
        if level == "L2D":
            crs, transform = _l2d_geo(f, path, shape2)
        else:
            metadata["geolocation"] = f"{swath}/Geolocation Fields (latitude/longitude arrays)"
            gcps = _swath_gcps(f, swath, level, shape2, path, allow_external)
            if gcps is not None:
                metadata["gcps"], crs = gcps, geolocation.CRS

    rows, cols = shape2
    src = PrismaSource(path, parts, (rows, cols, int(order.size)))
    mask = _PrismaMask(path, [t[0] for t in tables.values()], errs, (rows, cols), flagged_fraction)
    return make_scene(
        path,
        src,
        wavelengths=wl_all[order],
        fwhm=fwhm,
        mask=mask,
        crs=crs,
        transform=transform,
        name=path.stem,
        units=L1_UNITS if level == "L1" else "radiance" if level == "L2B" else "reflectance",
        metadata=metadata,
    )


def _swath_gcps(f: h5py.File, swath: str, level: str, shape2, path: Path, allow_external: bool):
    """Ground control points from a swath product's latitude/longitude arrays (`io.geolocation`):
    ``Latitude``/``Longitude`` (L2B/L2C) or the VNIR pair ``Latitude_VNIR``/``Longitude_VNIR`` of
    L1 (coregistered with the SWIR cube in the HCO product); None without them."""
    names = ("Latitude_VNIR", "Longitude_VNIR") if level == "L1" else ("Latitude", "Longitude")
    group = f"{swath}/Geolocation Fields"
    return geolocation.hdf5_gcps(f, f"{group}/{names[0]}", f"{group}/{names[1]}", shape2, path, allow_external)


def _l2d_geo(f: h5py.File, path: Path, shape2):
    """(``"EPSG:n"``, transform) of an L2D grid; corners are pixel centres, pixels 30 m."""
    epsg = _attr(f, "Epsg_Code")
    keys = [f"Product_{c}corner_{a}" for c in ("UL", "UR", "LL", "LR") for a in ("easting", "northing")]
    vals = {k: _attr(f, k) for k in keys}
    if epsg is None or vals["Product_ULcorner_easting"] is None or vals["Product_LRcorner_easting"] is None:
        return None, None
    code = count(epsg, "attribute 'Epsg_Code'",
                 path, low=1024, high=999999)
    east = [number(v, f"attribute {k!r}", path)
            for k, v in vals.items() if v is not None and k.endswith("easting")]
    north = [number(v, f"attribute {k!r}", path)
             for k, v in vals.items() if v is not None and k.endswith("northing")]
    rows, _cols = shape2
    half = L2D_PIXEL_M / 2
    left, bottom = min(east) - half, min(north) - half
    top = bottom + L2D_PIXEL_M * rows
    return f"EPSG:{code}", (L2D_PIXEL_M, 0.0, left, 0.0, -L2D_PIXEL_M, top)
