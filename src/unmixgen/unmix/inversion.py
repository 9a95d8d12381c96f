"""Abundance inversion: given endmembers ``E (p, bands)``, find abundances for every pixel.

All solvers work on the whole pixel matrix ``Y (N, bands)`` at once, in pixel batches of
``batch_size`` so memory stays bounded. Every least-squares problem here only sees the data
through the ``p x p`` Gram matrix ``G = E E^T`` and the per-pixel vector ``b = E y`` (one
matrix product per batch), so the cost per pixel is independent of the number of bands
after that product.

Methods (the model is ``y = a @ E``):

- `fcls`  fully constrained least squares, ``a >= 0``, ``sum(a) = 1``;
- `nnls`  non-negative least squares, ``a >= 0``;
- `scls`  sum-to-one least squares, ``sum(a) = 1`` (closed form with a Lagrange multiplier);
- `unconstrained` ordinary least squares;
- `sunsal` sparse (L1) regularised inversion by ADMM, for large libraries (see ``admm.py``).

`fcls` and `nnls` are *exact*: a batched primal active-set method. Each pixel carries its
own working set (the abundances held at zero). Every iteration solves, for all pixels at
once, the equality-constrained QP on each pixel's free set: a working set shared by
several pixels has its ``(p+1) x (p+1)`` KKT system factorised once in float64
(pseudo-inverse, so singular or near-collinear endmembers are handled) and cached as an
affine map applied by a gathered product; rare working sets are solved per pixel as a
stack of small systems. A pixel then takes the usual active-set step (full step, or a
partial step to the first blocking bound, which joins the working set); a pixel at its
equality-constrained optimum checks the Lagrange multipliers of its working set and frees
the most negative one (all negative ones in the first two iterations). Pixels leave the
iteration when the KKT conditions hold, so the result is the QP solution up to the
accuracy of the small linear solves. Pixels whose unconstrained (sum-to-one) solution is
already feasible are optimal at once; the others start from the Euclidean projection of
that solution onto the feasible set, whose zero pattern is usually close to the optimal
working set, so on mixed scenes most pixels finish within a few iterations.

Precision: ``b`` is computed as ``(y - c) @ D^T`` plus a per-endmember constant, with
``c`` the mean endmember (rounded to float32: the same vector in both precisions) and, for
sum-to-one methods, ``D = E - c`` (a constant shift of ``b`` does not change a sum-to-one
solution). In float32 this keeps the rounding error
proportional to the distances between spectra rather than their magnitudes. With
``precision="auto"`` the product is done in float64 instead when the endmembers are so
ill-conditioned that float32 rounding could move abundances by more than about 2e-5.

Threads: batches are solved by a pool of ``n_threads`` Python threads (default: every core
the process may use); numpy releases the GIL in its array operations, so both cores of a
2-core machine work. Every BLAS call is kept small (row chunks below OpenBLAS's own
threading threshold), because OpenBLAS's threads busy-wait and make skinny products
much slower on a loaded machine. The Gram reduction, the row-chunked products and the
thread pool live in `unmixgen.unmix.batched`, shared with `admm`. Nothing here uses torch.

Invalid input rows (any NaN/Inf) give NaN abundances; use `invert_scene` to skip the
scene's invalid pixels altogether.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable

import numpy as np

from ..errors import ConvergenceWarning, InputError, ParameterError, check_keywords, check_range
from ..labelled import bands_last
from ..simplex import project_simplex
from .admm import sunsal
from .batched import Gram, matmul_rows, run_batches, thread_count
from .batched import check_inputs as _check  # the name `invert_scene` uses

__all__ = [
    "fcls", "nnls", "scls", "unconstrained", "sunsal", "invert", "invert_scene", "project_simplex",
    "check_method", "check_options", "DEFAULT_METHOD", "METHODS", "pixel_brightness",
]

# -- equality-constrained solves, grouped by working set ----------------------------------------


class _EqpCache:
    """Solves of the equality-constrained QP (EQP) for each pixel's working set.

    For the free set ``F`` (complement of the working set ``W``) the KKT system is
    ``G_FF a_F + mu 1 = b_F`` (``mu`` only with ``sum_to_one``), ``sum(a_F) = 1``, ``a_W = 0``.
    It is solved with a symmetric pseudo-inverse (`_pinv`), so singular systems (duplicate
    endmembers) give the minimum-norm solution.

    A working set shared by several pixels gets its affine map ``[a, mu] = K b + c``
    computed once and cached in a slot (``K (p+1, p)``, ``c (p+1,)``); a pixel's solve is
    then a gathered ``(p+1) x p`` product. Working sets met by fewer than `min_group` pixels
    in a call, any set once the cache holds `budget` bytes, and every set when ``p > 62``
    are solved directly instead (a stack of ``(p+1) x (p+1)`` eigendecompositions).
    Thread safe: batches running in a thread pool share one cache.
    """

    min_group = 4
    budget = 256 * 2**20

    def __init__(self, G: np.ndarray, sum_to_one: bool):
        self.G = G
        self.p = p = G.shape[0]
        self.sum_to_one = sum_to_one
        self._lock = threading.Lock()
        self._m = 0  # slots filled
        self._Ks = np.empty((16, p + 1, p))
        self._cs = np.empty((16, p + 1))
        self._max_slots = max(64, self.budget // ((p + 1) * p * 8))
        self._slot_of: dict[int, int] = {}
        self._sorted = (np.empty(0, np.int64), np.empty(0, np.intp))  # for p in 21..62
        self._pow = np.int64(1) << np.arange(p, dtype=np.int64) if p <= 62 else None
        # p <= 20: a direct code -> slot table (at most 4 MB) instead of a sorted search
        self._table = np.full(1 << p, -1, np.int32) if p <= 20 else None
        self._free: tuple[np.ndarray, np.ndarray] | None = None

    def _map(self, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        F = np.flatnonzero(free)
        k = F.size
        K = np.zeros((p + 1, p))
        c = np.zeros(p + 1)
        if k:
            GFF = self.G[np.ix_(F, F)]
            if self.sum_to_one:
                M = np.zeros((k + 1, k + 1))
                M[:k, :k] = GFF
                M[:k, k] = 1.0
                M[k, :k] = 1.0
                Mi = _pinv(M)
                K[np.ix_(F, F)] = Mi[:k, :k]
                K[p, F] = Mi[k, :k]
                c[F] = Mi[:k, k]
                c[p] = Mi[k, k]
            else:
                K[np.ix_(F, F)] = _pinv(GFF)
        return K, c

    def _add(self, codes: np.ndarray, rows: np.ndarray) -> None:
        """Compute and store the maps of new working sets ``rows`` with ``codes``."""
        with self._lock:
            for code, w in zip(codes.tolist(), rows, strict=True):
                if code in self._slot_of or self._m >= self._max_slots:
                    continue
                if self._m == self._Ks.shape[0]:  # grow by doubling; readers keep old arrays
                    cap = 2 * self._m
                    Ks = np.empty((cap, self.p + 1, self.p))
                    cs = np.empty((cap, self.p + 1))
                    Ks[: self._m] = self._Ks[: self._m]
                    cs[: self._m] = self._cs[: self._m]
                    self._Ks, self._cs = Ks, cs
                K, c = self._map(~w)
                self._Ks[self._m] = K
                self._cs[self._m] = c
                self._slot_of[code] = self._m
                if self._table is not None:
                    self._table[code] = self._m
                self._m += 1
            if self._table is None:
                keys = np.fromiter(self._slot_of.keys(), np.int64, len(self._slot_of))
                vals = np.fromiter(self._slot_of.values(), np.intp, len(self._slot_of))
                o = np.argsort(keys)
                self._sorted = (keys[o], vals[o])

    def _lookup(self, codes: np.ndarray) -> np.ndarray:
        if self._table is not None:
            return self._table[codes].astype(np.intp)
        keys, vals = self._sorted
        if not keys.size:
            return np.full(codes.size, -1, np.intp)
        pos = np.minimum(np.searchsorted(keys, codes), keys.size - 1)
        return np.where(keys[pos] == codes, vals[pos], -1)

    def slots(self, W: np.ndarray) -> np.ndarray:
        """Slot of each pixel's working set ``W (n, p)``; -1 where it is to be solved directly."""
        if self._pow is None:
            return np.full(W.shape[0], -1, np.intp)
        codes = W.astype(np.int64) @ self._pow
        slot = self._lookup(codes)
        miss = slot < 0
        if miss.any() and self._m < self._max_slots:
            new, first, count = np.unique(codes[miss], return_index=True, return_counts=True)
            common = count >= self.min_group
            if common.any():
                self._add(new[common], W[np.flatnonzero(miss)[first[common]]])
                slot = self._lookup(codes)
        return slot

    def solve_free(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The EQP with no bound active (plain or sum-to-one least squares) for all pixels."""
        if self._free is None:
            self._free = self._map(np.ones(self.p, bool))
        K, c = self._free
        out = matmul_rows(b, K.T)
        out += c
        return out[:, : self.p], out[:, self.p]

    def solve(self, b: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve the EQP for every pixel: ``b (n, p)``, working sets ``W (n, p)`` -> ``a, mu``."""
        n, p = b.shape
        out = np.empty((n, p + 1))
        if n == 0:
            return out[:, :p], out[:, p]
        slot = self.slots(W)
        Ks, cs = self._Ks, self._cs  # read after the slots: holds every slot handed out
        cached = slot >= 0
        rows = np.flatnonzero(cached) if not cached.all() else None
        sl_all = slot if rows is None else slot[rows]
        b_c = b if rows is None else b[rows]
        res = out if rows is None else np.empty((rows.size, p + 1))
        step = max(64, 2**21 // ((p + 1) * p))
        for i in range(0, sl_all.size, step):
            sl = sl_all[i : i + step]
            np.einsum("nqp,np->nq", Ks[sl], b_c[i : i + step], out=res[i : i + step])
            res[i : i + step] += cs[sl]
        if rows is not None:
            out[rows] = res
            direct = np.flatnonzero(~cached)
            out[direct] = self._direct(b[direct], W[direct])
        return out[:, :p], out[:, p]

    def _direct(self, b: np.ndarray, W: np.ndarray) -> np.ndarray:
        """``[a, mu] (n, p+1)``: each pixel's EQP solved on its own, as a stack of KKT systems."""
        n, p = b.shape
        out = np.empty((n, p + 1))
        step = max(16, 2**22 // (p + 1) ** 2)
        eye = np.eye(p, dtype=bool)
        for i in range(0, n, step):
            Fr = ~W[i : i + step]
            m = Fr.shape[0]
            M = np.zeros((m, p + 1, p + 1))
            M[:, :p, :p] = np.where(Fr[:, :, None] & Fr[:, None, :], self.G, 0.0)
            M[:, :p, :p] += (eye & ~Fr[:, :, None]).astype(np.float64)  # a_W = 0
            rhs = np.zeros((m, p + 1))
            rhs[:, :p] = np.where(Fr, b[i : i + step], 0.0)
            if self.sum_to_one:
                M[:, :p, p] = Fr
                M[:, p, :p] = Fr
                rhs[:, p] = 1.0
            else:
                M[:, p, p] = 1.0  # mu = 0
            out[i : i + step] = _stack_solve(M, rhs)
        return out


def _stack_solve(M: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve symmetric systems ``M (n, k, k) x = rhs (n, k)``: LU, then a pseudo-inverse
    (eigendecomposition, as `_pinv`) for the singular or inaccurate ones."""
    with np.errstate(all="ignore"):
        try:
            x = np.linalg.solve(M, rhs[..., None])[..., 0]
            r = np.einsum("nij,nj->ni", M, x) - rhs
            scale = np.abs(M).max(axis=(1, 2)) * np.abs(x).max(axis=1) + np.abs(rhs).max(axis=1)
            bad = ~(np.abs(r).max(axis=1) <= 1e-10 * scale)
        except np.linalg.LinAlgError:
            x = np.empty_like(rhs)
            bad = np.ones(rhs.shape[0], bool)
    if bad.any():
        w, V = np.linalg.eigh(M[bad])
        wmax = np.abs(w).max(axis=1, keepdims=True)
        big = np.abs(w) > 1e-13 * np.maximum(wmax, 1e-300)
        coef = np.einsum("nji,nj->ni", V, rhs[bad])
        coef = np.where(big, coef / np.where(big, w, 1.0), 0.0)
        x[bad] = np.einsum("nij,nj->ni", V, coef)
    return x


def _pinv(M: np.ndarray) -> np.ndarray:
    """Pseudo-inverse of a small symmetric (KKT or Gram) matrix, by one eigendecomposition.

    Eigenvalues below ``1e-13`` of the largest are dropped, so singular systems (duplicate
    endmembers) give the minimum-norm solution and regular ones the exact inverse.
    """
    w, V = np.linalg.eigh(M)
    big = np.abs(w) > 1e-13 * max(float(np.abs(w).max()), 1e-300)
    return (V[:, big] / w[big]) @ V[:, big].T


# -- the batched primal active-set method ----------------------------------------------------------


def _active_set(
    cache: _EqpCache, b: np.ndarray, a: np.ndarray, W: np.ndarray, tau: float, max_iter: int,
    multi_release: int = 2,
) -> tuple[np.ndarray, int, int]:
    """Primal active-set method for all pixels at once, from a feasible start ``a``, ``W``.

    ``b (n, p)``: data vectors; ``a (n, p)``: feasible abundances with ``a[W] = 0``;
    ``W (n, p)``: working sets (bounds held active). Per iteration, each pixel solves its
    equality-constrained QP on the free set (grouped by working set, see `_EqpCache`),
    then either steps to the first blocking bound (which joins ``W``) or, at the EQP
    optimum, checks the multipliers of ``W``: all ``>= -tau`` means the KKT conditions hold
    (done); otherwise the bound with the most negative multiplier leaves ``W`` (in the first
    ``multi_release`` iterations every bound with a negative multiplier leaves at once;
    the objective still decreases monotonically). Pixels that are done are removed from
    the working arrays. Returns ``(a, iterations, n_unconverged)``; ``a`` is updated in place.
    """
    G = cache.G
    sum_to_one = cache.sum_to_one
    idx = np.arange(b.shape[0])
    aa, Wa, ba = a, W.copy(), b
    it = 0
    while idx.size and it < max_iter:
        it += 1
        x, mu = cache.solve(ba, Wa)
        d = x - aa
        # step to the first blocking bound among free variables moving down
        down = ~Wa & (d < -1e-15)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(down, aa / np.where(down, -d, 1.0), np.inf)
        j = np.argmin(ratio, axis=1)
        rows = np.arange(idx.size)
        alpha = ratio[rows, j]
        full = alpha >= 1.0
        done = np.zeros(idx.size, bool)
        if not full.all():
            pr = rows[~full]
            ap = aa[pr] + alpha[pr, None] * d[pr]
            np.maximum(ap, 0.0, out=ap)
            ap[np.arange(pr.size), j[pr]] = 0.0
            ap[Wa[pr]] = 0.0
            aa[pr] = ap
            Wa[pr, j[pr]] = True
        if full.any():
            fr = rows[full]
            af = x[fr]
            np.maximum(af, 0.0, out=af)
            aa[fr] = af
            lam = matmul_rows(af, G)
            lam -= ba[fr]
            if sum_to_one:
                lam += mu[fr, None]
            Wf = Wa[fr]
            lam[~Wf] = np.inf
            k = np.argmin(lam, axis=1)
            lmin = lam[np.arange(fr.size), k]
            ok = lmin >= -tau
            done[fr[ok]] = True
            if it <= multi_release:
                Wf &= lam >= -tau
                Wa[fr] = Wf
            else:
                Wa[fr[~ok], k[~ok]] = False
        if done.any():
            a[idx[done]] = aa[done]
            keep = ~done
            idx, aa, Wa, ba = idx[keep], aa[keep], Wa[keep], ba[keep]
    if idx.size:
        a[idx] = aa
    return a, it, int(idx.size)


class _LinearInverter:
    """FCLS / NNLS / SCLS / LS for one set of endmembers, reusable over many pixel blocks.

    Holds the Gram reduction and the working-set cache, so tiles of one scene share them.
    ``__call__(Y)`` returns ``(A float32 (N, p), n_unconverged)``.
    """

    def __init__(self, E, *, sum_to_one: bool, nonneg: bool, tol: float = 1e-6,
                 max_iter: int | None = None, batch_size: int = 65536, precision: str = "auto",
                 n_threads: int | None = None):
        E = np.asarray(E)
        check_range("batch_size", batch_size, low=1, integer=True)
        check_range("tol", tol, low=0, low_open=True)
        if max_iter is not None:
            check_range("max_iter", max_iter, low=0, integer=True)
        self.p = p = E.shape[0]
        self.bands = E.shape[1]
        self.sum_to_one, self.nonneg = sum_to_one, nonneg
        self.gram = Gram(E, shift=sum_to_one, precision=precision)
        self.cache = _EqpCache(self.gram.G, sum_to_one)
        self.tau = 1e-4 * tol
        self.max_iter = max_iter if max_iter is not None else 10 * p + 20
        self.batch_size = batch_size
        self.workers = thread_count(n_threads)

    def _solve_batch(self, Yb: np.ndarray, ob: np.ndarray) -> int:
        b = self.gram.b(Yb)
        bad = ~np.isfinite(b).all(axis=1)
        if bad.any():
            b[bad] = 0.0
        x, _ = self.cache.solve_free(b)
        nu = 0
        if self.nonneg:
            # pixels whose unconstrained (sum-to-one) solution is feasible are optimal already
            todo = np.flatnonzero((x < 0).any(axis=1) & ~bad)
            if todo.size:
                xt = x[todo]
                a0 = project_simplex(xt) if self.sum_to_one else np.maximum(xt, 0.0)
                W = a0 <= 0.0
                if self.sum_to_one:  # cannot happen for finite input; keep one entry free anyway
                    W[W.all(axis=1), 0] = False
                a0[W] = 0.0
                at, _, nu = _active_set(self.cache, b[todo], a0, W, self.tau, self.max_iter)
                x[todo] = at
        ob[...] = x
        ob[bad] = np.nan
        return nu

    def __call__(self, Y: np.ndarray) -> tuple[np.ndarray, int]:
        n = Y.shape[0]
        out = np.empty((n, self.p), np.float32)

        def run(start: int, stop: int) -> int:
            return self._solve_batch(Y[start:stop], out[start:stop])

        return out, run_batches(n, self.batch_size, self.workers, run)


def _warn_unconverged(what: str, unconverged: int, n: int, max_iter: int, stacklevel: int) -> None:
    if unconverged:
        warnings.warn(
            f"{what}: {unconverged} of {n} pixels did not meet the KKT conditions in "
            f"{max_iter} active-set iterations; their abundances are feasible but may not be optimal",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )


def _simplex_solve(Y, E, *, what: str, **kw) -> np.ndarray:
    Y, E = _check(Y, E)
    inv = _LinearInverter(E, **kw)
    out, unconverged = inv(Y)
    _warn_unconverged(what, unconverged, Y.shape[0], inv.max_iter, stacklevel=4)
    return out


# -- public solvers ---------------------------------------------------------------------------------


def fcls(
    Y, E, *, tol: float = 1e-6, max_iter: int | None = None, batch_size: int = 65536,
    precision: str = "auto", n_threads: int | None = None,
) -> np.ndarray:
    """Fully constrained least squares: ``min ||y - a E||^2`` s.t. ``a >= 0``, ``sum(a) = 1``.

    Parameters
    ----------
    Y : array (N, bands)
        Pixels (any float dtype; read as float32 per batch).
    E : array (p, bands)
        Endmembers, rows are spectra, same units as ``Y``.
    tol : float
        KKT tolerance: a bound is kept when its Lagrange multiplier exceeds ``-1e-4 * tol``
        in units normalised by ``trace(E E^T) / p``.
    max_iter : int or None
        Active-set iterations per batch (default ``10 p + 20``; each iteration changes one
        bound per pixel). Pixels that need more raise a `ConvergenceWarning`.
    batch_size : int
        Pixels per batch (bounds memory: about ``batch_size * bands * 4`` bytes extra).
    precision : "auto", "single" or "double"
        Arithmetic of the ``Y @ E^T`` product (see the module docstring).
    n_threads : int or None
        Worker threads, each solving whole batches (default: all cores available to the
        process, at most 8). Inputs under 16384 pixels use one thread.

    Returns
    -------
    A : float32 (N, p)
        Abundances, non-negative, summing to one; NaN rows where ``Y`` had NaN/Inf.
    """
    return _simplex_solve(Y, E, sum_to_one=True, nonneg=True, tol=tol, max_iter=max_iter,
                          batch_size=batch_size, precision=precision, what="fcls",
                          n_threads=n_threads)


def nnls(
    Y, E, *, tol: float = 1e-6, max_iter: int | None = None, batch_size: int = 65536,
    precision: str = "auto", n_threads: int | None = None,
) -> np.ndarray:
    """Non-negative least squares ``min ||y - a E||^2`` s.t. ``a >= 0``; arguments as `fcls`.

    Returns float32 ``(N, p)``, exact to the active-set tolerance.
    """
    return _simplex_solve(Y, E, sum_to_one=False, nonneg=True, tol=tol, max_iter=max_iter,
                          batch_size=batch_size, precision=precision, what="nnls",
                          n_threads=n_threads)


def scls(Y, E, *, batch_size: int = 65536, precision: str = "auto",
         n_threads: int | None = None) -> np.ndarray:
    """Sum-to-one least squares ``min ||y - a E||^2`` s.t. ``sum(a) = 1`` (abundances may be negative).

    Closed form: ``a = G^-1 (b - mu 1)`` with the multiplier ``mu`` fixing the sum.
    Returns float32 ``(N, p)``.
    """
    return _simplex_solve(Y, E, sum_to_one=True, nonneg=False, tol=1e-6, max_iter=0,
                          batch_size=batch_size, precision=precision, what="scls",
                          n_threads=n_threads)


def scaled(Y, E, *, tol: float = 1e-6, max_iter: int | None = None, batch_size: int = 65536,
           precision: str = "auto", n_threads: int | None = None) -> np.ndarray:
    """Brightness-free abundances: the exact per-pixel answer of the scaled linear model
    ``y = s a E + n`` (``a`` on the simplex, a free brightness ``s > 0`` per pixel, e.g.
    illumination and topography, or a library at another scale than the pixels).

    Minimising ``||y - s a E||`` over ``s`` and ``a`` is NNLS on ``b = s a``; ``a = b / sum(b)``
    (uniform where NNLS gives all zeros, NaN where ``Y`` had NaN/Inf). Arguments as `nnls`;
    returns float32 ``(N, p)``.
    """
    b = nnls(Y, E, tol=tol, max_iter=max_iter, batch_size=batch_size, precision=precision,
             n_threads=n_threads).astype(np.float64)
    total = b.sum(1, keepdims=True)
    uniform = np.where(np.isnan(total), np.nan, 1.0 / max(b.shape[1], 1))  # NaN rows stay NaN
    return np.where(total > 1e-12, b / np.maximum(total, 1e-12), uniform).astype(np.float32)


def pixel_brightness(Y, A, E) -> np.ndarray:
    """The per-pixel brightness of the scaled linear model ``y = s a E`` for given abundances:
    the least-squares ``s = max(<y, a E>, 0) / ||a E||^2``.

    For the abundances of `scaled` it is the sum of the NNLS coefficients; for other
    abundances on the simplex it is the brightness that best fits each pixel, so that
    ``s a E`` (not ``a E``) is the model's reconstruction. ``Y (N, bands)``, ``A (N, p)``,
    ``E (p, bands)``; returns float32 ``(N,)``, NaN where ``a E`` is zero or not finite.
    """
    Y, A, E = np.asarray(bands_last(Y, 1, "Y")), np.asarray(A), np.asarray(E, np.float64)
    if Y.ndim != 2 or A.ndim != 2 or E.shape != (A.shape[1], Y.shape[1]) or A.shape[0] != Y.shape[0]:
        raise InputError(f"brightness: pixels {Y.shape}, abundances {A.shape}, endmembers {E.shape} are "
                         "inconsistent; expected (N, bands), (N, p), (p, bands)")
    out = np.full(Y.shape[0], np.nan, np.float32)
    for start in range(0, Y.shape[0], 16384):  # float64 by row chunks, not a copy of every pixel
        sl = slice(start, start + 16384)
        R = A[sl].astype(np.float64) @ E
        den = np.einsum("nb,nb->n", R, R)
        num = np.einsum("nb,nb->n", Y[sl].astype(np.float64), R)
        ok = np.isfinite(den) & np.isfinite(num) & (den > 0)
        out[sl][ok] = np.maximum(num[ok], 0.0) / den[ok]
    return out


def unconstrained(Y, E, *, batch_size: int = 65536, precision: str = "auto",
                  n_threads: int | None = None) -> np.ndarray:
    """Ordinary least squares ``a = y E^T (E E^T)^+``; returns float32 ``(N, p)``."""
    return _simplex_solve(Y, E, sum_to_one=False, nonneg=False, tol=1e-6, max_iter=0,
                          batch_size=batch_size, precision=precision, what="ls",
                          n_threads=n_threads)


_LINEAR = {
    "fcls": {"sum_to_one": True, "nonneg": True},
    "nnls": {"sum_to_one": False, "nonneg": True},
    "scls": {"sum_to_one": True, "nonneg": False},
    "ls": {"sum_to_one": False, "nonneg": False},
}

#: the inverters by name (the CLI's ``--method`` choices with ``--endmembers-file``)
METHODS: dict[str, Callable[..., np.ndarray]] = {
    "fcls": fcls,
    "nnls": nnls,
    "scls": scls,
    "scaled": scaled,
    "ls": unconstrained,
    "sunsal": sunsal,
}
DEFAULT_METHOD: str = "fcls"


def invert(Y, E, method: str = DEFAULT_METHOD, **kw) -> np.ndarray:
    """Abundances ``(N, p)`` float32 of pixels ``Y (N, bands)`` by ``method`` (a key of `METHODS`)."""
    check_options(check_method(method), kw)
    return METHODS[method](Y, E, **kw)


WEIGHTED_BLOCK = 65536
"""Pixels per block of `invert_weighted`: only one block of weighted pixels exists at a time."""


def invert_weighted(Y, E, method: str = DEFAULT_METHOD, weights: np.ndarray | None = None, **kw) -> np.ndarray:
    """`invert` of the pixels ``Y (N, bands) * weights (bands,)`` on endmembers ``E`` already in
    those weighted bands (weighted least squares), by blocks of `WEIGHTED_BLOCK` pixels: no
    weighted copy of every pixel. ``weights`` None: `invert` itself."""
    if weights is None:
        return invert(Y, E, method, **kw)
    w = np.asarray(weights, np.float32)
    if len(Y) == 0:
        return invert(np.asarray(bands_last(Y, 1, "pixels"), np.float32) * w, E, method, **kw)
    return np.concatenate([invert(Y[i:i + WEIGHTED_BLOCK] * w, E, method, **kw)
                           for i in range(0, len(Y), WEIGHTED_BLOCK)])


def check_options(method: str, kw: dict) -> None:
    """`ParameterError` naming the first key of ``kw`` that inverter ``method`` does not take."""
    check_keywords(METHODS[method], kw, f"a parameter of inverter {method!r}")


def check_method(method: str) -> str:
    """``method`` when it names an inverter of `METHODS`, else `ParameterError` naming ``method``."""
    if not isinstance(method, str) or method not in METHODS:
        raise ParameterError("method", method, f"not an inversion method; expected one of {', '.join(METHODS)}")
    return method


def invert_scene(scene, E, method: str = "fcls", *, tile_size: int = 256, progress: bool = True,
                 bands: np.ndarray | None = None, with_brightness: bool = False,
                 band_weights: np.ndarray | None = None, **kw):
    """Invert every valid pixel of a `Scene` (or a ``(rows, cols, bands)`` array, or a DataArray
    laid out by its dim names: `unmixgen.scene.as_scene`), tile by tile; returns float32 ``(rows, cols, p)``,
    or with ``with_brightness`` the pair ``(abundances, brightness (rows, cols))``, the
    brightness (`pixel_brightness`) computed from the same tiles, so the scene is read once.

    ``E`` is ``(p, bands)`` over all the scene's bands (only the good bands are used) or
    ``(p, n_good_bands)``; ``bands`` (bool, one per scene band) replaces the good-band mask,
    e.g. to use only the bands a given endmember file covers (at least one). Invalid pixels are not solved
    and are NaN in the result. The tiles go through `unmixgen.tiling.map_tiles` (serial
    backend: the solver's working-set cache is shared by all tiles and is not thread-safe;
    the solver itself uses ``n_threads``). Only one ``tile_size`` x ``tile_size`` tile is
    read at a time, and the whole cube is never loaded unless the scene already is, so the
    extra memory is about two tiles plus the result. A transient progress bar appears on a
    terminal when the inversion runs longer than a second (``progress=False`` hides it).
    ``band_weights`` (one per scene band, or one per band used; positive): pixels and
    endmembers are multiplied by them first, i.e. weighted least squares (``1 / noise std``
    per band is the maximum-likelihood answer under Gaussian noise that differs between bands;
    `unmixgen.unmix.rank.band_noise_weights`).
    ``kw`` go to the method (e.g. ``tol``, ``batch_size``, ``n_threads``, ``lam``).
    """
    from ..errors import check_range
    from ..scene import as_scene, check_bands_last
    from ..tiling import map_tiles

    E = np.asarray(E)
    if E.ndim == 2:
        check_bands_last("scene", scene, E.shape[1], "the endmembers' bands")
    scene = as_scene(scene)
    good = scene.good_bands if bands is None else _band_selection(bands, scene.bands)
    check_range("tile_size", tile_size, low=1, integer=True)
    if E.ndim != 2:
        raise InputError(f"endmembers have shape {E.shape}; expected (p, bands)")
    if E.shape[1] == scene.bands:
        E_use = E[:, good] if not good.all() else E
    elif E.shape[1] == int(good.sum()):
        E_use = E
    elif good.all():
        raise InputError(f"endmembers have {E.shape[1]} bands but the scene has {scene.bands}; expected the same "
                         "bands")
    else:
        raise InputError(
            f"endmembers have {E.shape[1]} bands; expected {scene.bands} (all bands of the scene) "
            f"or {int(good.sum())} (its good bands)"
        )
    check_options(check_method(method), kw)
    _check(np.zeros((0, E_use.shape[1]), np.float32), E_use)
    w = None
    if band_weights is not None:
        w = np.asarray(band_weights, np.float32).reshape(-1)
        if w.size == scene.bands and w.size != E_use.shape[1]:
            w = w[good]
        if w.size != E_use.shape[1] or not np.all(np.isfinite(w)) or (w <= 0).any():
            raise ParameterError("band_weights", f"{np.size(band_weights)} values",
                                 f"expected {E_use.shape[1]} positive finite weights, one per band used")
        E_use = (E_use * w).astype(np.float32)
    linear = _LINEAR.get(method)
    if linear is not None:  # one Gram reduction and working-set cache for all tiles
        solver = _LinearInverter(E_use, **linear, **kw)
        unconverged = 0

        def solve(Yt):
            nonlocal unconverged
            A, nu = solver(Yt if w is None else Yt * w)
            unconverged += nu
            return A
    else:
        def solve(Yt):
            return invert(Yt if w is None else Yt * w, E_use, method, **kw)
    p = E.shape[0]
    all_good = bool(good.all())
    # bands the selection takes although the scene flags them bad: they may hold NaN fill, which
    # would make every valid pixel's abundances NaN
    flagged = np.flatnonzero(good & ~scene.good_bands)

    def require_finite(data, mask):
        bad = ~np.isfinite(data[..., flagged][mask]).all(axis=0)
        if bad.any():
            which = flagged[bad] + 1
            raise InputError(f"bands: selects band{'s' if which.size > 1 else ''} "
                             f"{', '.join(map(str, which[:5]))}{' ...' if which.size > 5 else ''} that the scene "
                             f"flags bad and that hold{'' if which.size > 1 else 's'} NaN/Inf in valid pixels; "
                             "expected a selection within its good bands (e.g. bands & scene.good_bands)")

    def tile_abundances(data, mask):
        if flagged.size:
            require_finite(data, mask)
        if mask.all() and all_good and not with_brightness:  # no copy: the tile's own pixels, as (N, bands)
            return solve(data.reshape(-1, data.shape[-1])).reshape(mask.shape + (p,))
        Yt = data[mask]
        if not all_good:
            Yt = Yt[:, good]
        out = np.full(mask.shape + (p + with_brightness,), np.nan, np.float32)
        a = solve(Yt)
        out[mask, :p] = a
        if with_brightness:
            out[mask, p] = pixel_brightness(Yt if w is None else Yt * w, a, E_use)
        return out

    t0 = time.perf_counter()
    bar = None
    task = None

    def on_tile(done, total):
        nonlocal bar, task
        if progress and bar is None and time.perf_counter() - t0 > 1.0:
            bar, task = _start_bar(total, method)
        if bar is not None:
            bar.update(task, completed=done)

    try:
        out = map_tiles(scene, tile_abundances, tile=tile_size, out_channels=p + with_brightness, fill=np.nan,
                        on_tile=on_tile)
    finally:
        if bar is not None:
            bar.stop()
    if linear is not None:
        _warn_unconverged(method, unconverged, int(scene.mask.sum()), solver.max_iter, stacklevel=2)
    if with_brightness:
        return np.ascontiguousarray(out[..., :p]), np.ascontiguousarray(out[..., p])
    return out


def _band_selection(bands, n_bands: int) -> np.ndarray:
    """``bands`` as a bool ``(n_bands,)`` selection of at least one band, else `InputError`."""
    good = np.asarray(bands, bool).reshape(-1)
    if good.shape != (n_bands,):
        raise InputError(f"bands: {good.size} flags for a scene of {n_bands} bands; expected one per band")
    if not good.any():
        raise InputError(f"bands: selects none of the scene's {n_bands} bands; expected at least one")
    return good


def _start_bar(total: int, method: str):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    bar = Progress(
        f"inverting ({method})", BarColumn(), "{task.completed}/{task.total} tiles",
        TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal,
    )
    bar.start()
    return bar, bar.add_task("invert", total=total)
