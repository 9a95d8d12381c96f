"""Plumbing shared by the batched abundance solvers (`inversion` and `admm`).

Both solver families see a pixel batch ``Y (n, bands)`` only through the ``p x p`` Gram
matrix of the endmembers and one vector ``b (n, p)`` per pixel, solve whole batches with
matrix operations, and run batches in a pool of Python threads. This module holds those
common pieces, so neither solver module imports the other:

- `check_inputs`  shapes and finiteness of ``Y`` and ``E``;
- `Gram`          the Gram reduction ``E -> (G, Y -> b)``, with its precision choice;
- `matmul_rows`   skinny products in row chunks (see its docstring for why);
- `thread_count`  the number of worker threads;
- `run_batches`   the thread pool over pixel batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import InputError, ParameterError, check_range
from ..labelled import bands_last
from ..scene import check_bands_last

__all__ = ["Gram", "check_inputs", "matmul_rows", "run_batches", "thread_count"]

#: ``precision="auto"`` switches to float64 products above this estimated abundance error
SINGLE_PRECISION_ERROR = 2e-5
_EPS32 = float(np.finfo(np.float32).eps)
#: inputs with fewer pixels than this are solved on one thread (pool start-up would dominate)
MIN_PIXELS_FOR_THREADS = 16384


def check_inputs(Y, E) -> tuple[np.ndarray, np.ndarray]:
    """``Y (N, bands)`` and ``E (p, bands)`` as arrays, or `InputError` naming what is wrong.

    Both must hold real numbers; ``E`` must be finite and hold at least one spectrum; ``Y``
    may hold NaN/Inf rows (the solvers return NaN abundances there).
    """
    Y = np.asarray(bands_last(Y, 1, "pixels"))  # a DataArray with its spectral dim last
    E = np.asarray(E)
    if E.ndim != 2:
        raise InputError(f"endmembers have shape {E.shape}; expected (p, bands)")
    if Y.ndim != 2:
        raise InputError(f"pixels have shape {Y.shape}; expected (N, bands)")
    if Y.shape[1] != E.shape[1]:
        check_bands_last("Y", Y, E.shape[1], "the endmembers' bands")
        raise InputError(
            f"pixels have {Y.shape[1]} bands but endmembers have {E.shape[1]}; expected the same bands"
        )
    if E.shape[0] < 1:
        raise InputError("no endmembers given; expected at least one (p >= 1)")
    for what, x in (("pixels", Y), ("endmembers", E)):
        if np.iscomplexobj(x) or x.dtype.kind not in "biuf":
            raise InputError(f"{what} have dtype {x.dtype}; expected real numbers (take the magnitude or one "
                             "part of complex data explicitly)")
    if not np.isfinite(E).all():
        raise InputError("endmembers contain NaN or Inf; expected finite spectra")
    return Y, E


class Gram:
    """``G = D D^T`` (float64, normalised) and a batch map ``Y -> b`` for one set of endmembers.

    Parameters
    ----------
    E : array (p, bands)
        Endmembers, rows are spectra.
    shift : bool
        True for sum-to-one problems, where ``D = E - mean(E)`` may be used (a constant
        shift of ``b`` does not change a sum-to-one solution); False uses ``D = E``.
    precision : {"auto", "single", "double"}
        Arithmetic of the ``Y @ D^T`` product; "auto" picks float64 when float32 rounding
        could move abundances by more than `SINGLE_PRECISION_ERROR`.

    Attributes
    ----------
    G : float64 (p, p)
        ``D D^T / scale``, symmetric.
    scale : float
        ``trace(E E^T) / p`` (1 for all-zero endmembers); ``G`` and ``b`` are divided by it
        so the KKT systems and multiplier tolerances are scale free.
    G_raw : float64 (p, p)
        ``E E^T``, not normalised.
    precision : {"single", "double"}
        The arithmetic chosen.
    """

    def __init__(self, E: np.ndarray, *, shift: bool, precision: str):
        if precision not in ("auto", "single", "double"):
            raise ParameterError("precision", precision, "expected 'auto', 'single' or 'double'")
        E64 = np.asarray(E, np.float64)
        p, bands = E64.shape
        # the centre, rounded to float32 once: the float32 and the float64 products subtract
        # this very vector from the pixels, so D and the constant use it too (with the exact
        # mean in D but its float32 rounding in b, float64 pixels were fitted shifted by
        # that rounding: 1e-4 abundance errors on near-duplicate endmembers in "double")
        c = E64.mean(axis=0).astype(np.float32).astype(np.float64)
        D = E64 - c if shift else E64
        self.G_raw = E64 @ E64.T
        tr = float(np.trace(self.G_raw)) / p
        self.scale = tr if tr > 0 else 1.0
        G = (D @ D.T) / self.scale
        self.G = 0.5 * (G + G.T)
        self.p = p
        self.c32 = c.astype(np.float32)
        self.D32 = np.ascontiguousarray(D.T.astype(np.float32))  # (bands, p)
        self.D64 = np.ascontiguousarray(D.T)
        # b = D (y - c) for sum-to-one problems (||y - aE|| = ||(y - c) - aD|| when sum(a) = 1),
        # b = E (y - c) + E c otherwise
        self.const = np.zeros(p) if shift else (E64 @ c) / self.scale
        if precision == "auto":
            error = self._single_error(E64, c, D, shift)
            precision = "double" if error > SINGLE_PRECISION_ERROR else "single"
        self.precision = precision

    def _single_error(self, E64, c, D, shift) -> float:
        """Rough bound on the abundance error caused by float32 products."""
        G = D @ D.T
        if shift:
            p = G.shape[0]
            P = np.eye(p) - 1.0 / p
            ev = np.linalg.eigvalsh(P @ G @ P)[1:]  # drop the null direction of ones
        else:
            ev = np.linalg.eigvalsh(G)
        lmin = float(ev.min()) if ev.size else 1.0
        if lmin <= 0:
            return np.inf
        ry = float(np.linalg.norm(E64 - c, axis=1).max()) + 1e-30
        dn = float(np.linalg.norm(D, axis=1).max())
        # the typical (not worst-case) propagation of float32 rounding of b through G^-1;
        # benchmarks/RESULTS.md compares it with float64 on the benchmark scenes
        return _EPS32 * ry * dn / lmin

    def b(self, Yb: np.ndarray) -> np.ndarray:
        """``b (n, p)`` float64 for a batch ``Yb (n, bands)`` (float32 or float64 rows).

        Done in row chunks small enough to stay in cache and below OpenBLAS's threading
        threshold (see `matmul_rows`); parallelism comes from the batch thread pool. A row
        with NaN/Inf gives a non-finite ``b`` row quietly (the solvers make it a NaN row).
        """
        n, bands = Yb.shape
        double = self.precision == "double"
        D = self.D64 if double else self.D32
        c = self.c32.astype(np.float64) if double else self.c32
        dt = np.float64 if double else np.float32
        out = np.empty((n, self.p), dt)
        step = max(32, 200_000 // max(1, bands * self.p))
        tmp = np.empty((min(step, n), bands), dt)
        with np.errstate(invalid="ignore"):  # Inf - Inf in a row holding +-Inf
            for i in range(0, n, step):
                j = min(i + step, n)
                t = tmp[: j - i]
                np.subtract(Yb[i:j], c, out=t, casting="unsafe")
                np.matmul(t, D, out=out[i:j])
        out = out.astype(np.float64, copy=False)
        out /= self.scale
        out += self.const
        return out


def matmul_rows(X: np.ndarray, M: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``X (n, k) @ M (k, m)`` for skinny products, in row chunks.

    Each chunk stays below OpenBLAS's multithreading threshold (about 2.6e5 multiply-adds):
    threading such memory-bound products costs far more than it saves, because OpenBLAS's
    threads busy-wait, and on a loaded machine a threaded call is many times slower than
    the single-threaded one.
    """
    n = X.shape[0]
    if out is None:
        out = np.empty((n, M.shape[1]), np.result_type(X, M))
    step = max(256, 200_000 // max(1, M.shape[0] * M.shape[1]))
    for i in range(0, n, step):
        np.matmul(X[i : i + step], M, out=out[i : i + step])
    return out


def thread_count(n_threads: int | None) -> int:
    """Worker threads: ``n_threads``, or every core the process may use (at most 8) for None."""
    if n_threads is None:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else (os.cpu_count() or 1))
        return max(1, min(cores, 8))
    return int(check_range("n_threads", n_threads, low=1, integer=True))


def run_batches(n: int, batch_size: int, workers: int, solve: Callable[[int, int], int]) -> int:
    """Call ``solve(start, stop)`` on consecutive pixel batches of ``range(n)``; sum the results.

    Inputs of fewer than `MIN_PIXELS_FOR_THREADS` pixels run on one thread; larger ones on
    ``workers`` threads, with batches no larger than ``ceil(n / workers)`` so every worker
    gets at least one batch. numpy releases the GIL in its array operations, so the threads
    run in parallel. ``solve`` returns a count (e.g. of unconverged pixels or batches).
    """
    workers = workers if n >= MIN_PIXELS_FOR_THREADS else 1
    size = max(1, min(batch_size, -(-n // workers)))
    starts = range(0, n, size)

    def one(start: int) -> int:
        return solve(start, min(start + size, n))

    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(workers) as pool:
            return sum(pool.map(one, starts))
    return sum(map(one, starts))
