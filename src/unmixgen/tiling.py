"""The one tiling layer: map a per-tile function over a scene, with a halo.

A large scene is processed in spatial tiles so that only a few tiles of the cube are in
memory at a time. `map_tiles` cuts the scene into ``tile`` x ``tile`` windows (row-major),
reads each window plus ``halo`` pixels on every side (clipped at the scene border), calls
a function on it and assembles the results into one ``(rows, cols, k)`` array::

    def box_mean(data, mask):          # data (r, c, bands) float32, mask (r, c) bool
        ...                            # -> (r, c, k): one value per pixel of the window
    out = map_tiles(scene, box_mean, tile=256, halo=1, out_channels=k)

The contract of ``fn(data, mask)``: ``data`` is the *outer* window (tile + halo) as
float32 ``(r, c, bands)``, ``mask`` its valid pixels ``(r, c)``; it returns ``(r, c, k)``,
a value for every pixel of the outer window. `map_tiles` keeps the tile's own (inner)
part and discards the halo part, whose values lack neighbours beyond the window. A
function that uses neighbours up to ``h`` pixels away gives the same result as on the
untiled scene when ``halo >= h``.

Backends: ``"serial"`` (one tile after another), ``"threads"`` (a bounded pool: tiles are
read and computed on worker threads, so reading one tile overlaps computing others;
reads take turns, since a source need not be thread-safe; numpy releases the GIL in
most array work) and ``"dask"`` (one delayed task per tile,
run by dask's current scheduler; dask is an optional dependency, imported only here).

This module sees a scene only through `TileableScene` (``shape``, ``read`` and ``mask``),
so `unmixgen.scene` can build on it without an import circle.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .errors import InputError, ParameterError, check_range

BACKENDS = ("serial", "threads", "dask")


class TileableScene(Protocol):
    """What tiling needs of a scene (`unmixgen.scene.Scene` is one)."""

    @property
    def shape(self) -> tuple[int, int, int]: ...

    @property
    def mask(self) -> np.ndarray: ...

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """Float32 ``(len(rows), len(cols), bands)``; only that window is read."""
        ...


@dataclass(frozen=True)
class Window:
    """Where one tile lies: its own region and its region with the halo, in scene pixels."""

    rows: slice
    cols: slice
    outer_rows: slice
    outer_cols: slice

    @property
    def inner(self) -> tuple[slice, slice]:
        """The tile's own region, indexed inside the outer window."""
        r0 = self.rows.start - self.outer_rows.start
        c0 = self.cols.start - self.outer_cols.start
        return (
            slice(r0, r0 + self.rows.stop - self.rows.start),
            slice(c0, c0 + self.cols.stop - self.cols.start),
        )


@dataclass(frozen=True)
class Tile(Window):
    """A `Window` with its data: ``data`` float32 ``(r, c, bands)`` and ``mask`` ``(r, c)``
    cover the outer window; ``inner`` selects the tile's own region inside them."""

    data: np.ndarray
    mask: np.ndarray


def windows(rows: int, cols: int, tile: int, halo: int = 0) -> list[Window]:
    """The row-major `Window` grid of a ``rows`` x ``cols`` scene.

    Tiles are ``tile`` x ``tile`` pixels (smaller at the right and bottom edges) and
    cover every pixel exactly once; each outer window adds ``halo`` pixels on every side,
    clipped at the scene border.
    """
    check_range("tile", tile, low=1, integer=True)
    check_range("halo", halo, low=0, integer=True)
    out = []
    for r0 in range(0, rows, tile):
        r1 = min(r0 + tile, rows)
        for c0 in range(0, cols, tile):
            c1 = min(c0 + tile, cols)
            out.append(Window(
                slice(r0, r1), slice(c0, c1),
                slice(max(r0 - halo, 0), min(r1 + halo, rows)),
                slice(max(c0 - halo, 0), min(c1 + halo, cols)),
            ))
    return out


def iter_tiles(scene: TileableScene, tile: int = 512, halo: int = 0, *,
               with_mask: bool = True) -> Iterator[Tile]:
    """Yield the scene's tiles (row-major), each read from its source on its own.

    ``with_mask=False`` gives an all-True mask instead of consulting ``scene.mask`` (used
    to compute the mask itself).
    """
    rows, cols, _ = scene.shape
    for w in windows(rows, cols, tile, halo):
        data = scene.read(w.outer_rows, w.outer_cols)
        mask = scene.mask[w.outer_rows, w.outer_cols] if with_mask else np.ones(data.shape[:2], bool)
        yield Tile(w.rows, w.cols, w.outer_rows, w.outer_cols, data, mask)


def map_tiles(
    scene: TileableScene,
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    tile: int = 512,
    halo: int = 0,
    out_channels: int = 1,
    backend: str = "serial",
    n_workers: int | None = None,
    fill: float | bool = np.nan,
    dtype: np.dtype | type = np.float32,
    masked: bool = True,
    on_tile: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Apply ``fn`` to every tile of ``scene`` and assemble a ``(rows, cols, k)`` array.

    Parameters
    ----------
    scene : TileableScene
        Usually a `unmixgen.scene.Scene`. Each tile reads only its outer window from the
        scene (from the loaded cube when the scene is loaded, else from its source).
    fn : callable ``(data, mask) -> values``
        ``data`` float32 ``(r, c, bands)`` and ``mask`` bool ``(r, c)`` cover the tile plus
        its halo; ``values`` is ``(r, c, out_channels)``, one vector per pixel of that
        outer window (see the module docstring). ``fn`` must not keep or modify ``data``
        in place when the scene is loaded (tiles are then views of the cube), and must be
        thread-safe for the ``"threads"`` and ``"dask"`` backends.
    tile : int
        Tile side in pixels (>= 1).
    halo : int
        Extra pixels read on every side of a tile (>= 0), for functions of neighbours.
    out_channels : int
        ``k``, the length of the value vector per pixel.
    backend : {"serial", "threads", "dask"}
        How tiles are scheduled; the result is the same for every backend.
    n_workers : int or None
        Worker threads for ``"threads"`` (default: the CPU count, at most 8). At most
        ``2 * n_workers`` tiles are in memory (read, computing or waiting to be written)
        at once. Ignored by the other backends.
    fill : float or bool
        The value written at invalid pixels and at tiles without a valid pixel.
    dtype : numpy dtype
        The result's dtype (float32 by default; the mask uses bool).
    masked : bool
        ``True``: ``fn`` gets the scene's mask, invalid pixels of the result are ``fill``
        and tiles without any valid pixel are neither read nor passed to ``fn``.
        ``False``: the scene's mask is not consulted and ``fn`` gets an all-True mask
        (used to compute the mask itself).
    on_tile : callable ``(done, total)`` or None
        Called in the calling thread after each tile is written (progress bars). Not
        called by the ``"dask"`` backend (use dask's own diagnostics).

    Returns
    -------
    ndarray ``(rows, cols, out_channels)`` of ``dtype``.

    Raises
    ------
    InputError
        When ``scene`` is not a scene (e.g. a bare array).
    ParameterError
        For a bad ``tile``, ``halo``, ``out_channels``, ``n_workers`` or ``backend``,
        including ``backend='dask'`` when dask is not installed.
    ValueError
        When ``fn`` returns an array of the wrong shape.
    """
    if not callable(getattr(scene, "read", None)):  # e.g. a bare cube array (mask is a property: not asked)
        raise InputError(f"scene is a {type(scene).__name__}, not a scene; expected a Scene "
                         "(unmixgen.Scene(cube) for a (rows, cols, bands) array, an xarray DataArray or Dataset)")
    check_range("out_channels", out_channels, low=1, integer=True)
    if backend not in BACKENDS:
        raise ParameterError("backend", backend, f"expected one of {', '.join(map(repr, BACKENDS))}")
    rows, cols, _ = scene.shape
    grid = windows(rows, cols, tile, halo)
    out = np.full((rows, cols, out_channels), fill, dtype=dtype)
    mask = scene.mask if masked else None
    # Sources need not be thread-safe (a GDAL dataset handle is not): reads take turns,
    # computing overlaps them.
    read_lock = threading.Lock()

    def compute(w: Window) -> np.ndarray | None:
        """The tile's inner values ``(r, c, k)``, fill at invalid pixels; None when all invalid."""
        inner_mask = None if mask is None else mask[w.rows, w.cols]
        if inner_mask is not None and not inner_mask.any():
            return None
        with read_lock:
            data = scene.read(w.outer_rows, w.outer_cols)
        outer_mask = (np.ones(data.shape[:2], bool) if mask is None
                      else mask[w.outer_rows, w.outer_cols])
        values = np.asarray(fn(data, outer_mask))
        expected = data.shape[:2] + (out_channels,)
        if values.shape != expected:
            raise ValueError(
                f"map_tiles: fn returned shape {values.shape} for a {data.shape[0]}x{data.shape[1]} "
                f"window; expected {expected} (one value vector per pixel of the outer window)"
            )
        inner = values[w.inner]
        if inner_mask is not None and not inner_mask.all():
            inner = np.array(inner, dtype=dtype)
            inner[~inner_mask] = fill
        return inner

    def write(w: Window, inner: np.ndarray | None) -> None:
        if inner is not None:
            out[w.rows, w.cols] = inner

    if backend == "dask":
        _run_dask(grid, compute, out)
        return out
    total = len(grid)
    if backend == "serial":
        for i, w in enumerate(grid):
            write(w, compute(w))
            if on_tile is not None:
                on_tile(i + 1, total)
        return out
    workers = _n_workers(n_workers)
    done = 0
    pending: deque = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="map_tiles")
    try:
        for w in grid:
            pending.append((w, pool.submit(compute, w)))
            # the bound: never more than 2 * workers tiles read and not yet written
            while len(pending) >= 2 * workers:
                pw, fut = pending.popleft()
                write(pw, fut.result())
                done += 1
                if on_tile is not None:
                    on_tile(done, total)
        while pending:
            pw, fut = pending.popleft()
            write(pw, fut.result())
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def _n_workers(n_workers: int | None) -> int:
    if n_workers is None:
        return max(1, min(8, os.cpu_count() or 1))
    return int(check_range("n_workers", n_workers, low=1, integer=True))


def _run_dask(grid: list[Window], compute: Callable[[Window], np.ndarray | None],
              out: np.ndarray) -> None:
    """Compute every tile as a dask task and store the results into ``out``."""
    try:
        import dask
        import dask.array as da
    except ImportError as err:
        raise ParameterError(
            "backend", "dask",
            "dask is not installed; install it (pip install 'dask[array]') or use "
            "backend='threads'",
        ) from err

    def block(w: Window) -> np.ndarray:
        inner = compute(w)
        if inner is None:  # a tile without valid pixels: its part of `out` keeps the fill
            return out[w.rows, w.cols].copy()
        return np.asarray(inner, dtype=out.dtype)

    k = out.shape[2]
    rows: dict[int, list] = {}
    for w in grid:
        shape = (w.rows.stop - w.rows.start, w.cols.stop - w.cols.start, k)
        arr = da.from_delayed(dask.delayed(block)(w), shape=shape, dtype=out.dtype)
        rows.setdefault(w.rows.start, []).append(arr)
    stacked = da.concatenate([da.concatenate(r, axis=1) for r in rows.values()], axis=0)
    # chunks write disjoint regions of `out`, so no lock is needed
    da.store(stacked, out, lock=False)
