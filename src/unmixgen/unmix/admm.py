"""Sparse regularised abundance inversion by ADMM (SUnSAL), batched over all pixels.

Solves, for every pixel ``y`` (model ``y = a @ E``),

    min_a  0.5 ||y - a E||^2 + lam ||a||_1   s.t.  a >= 0 (``positivity``),
                                                   sum(a) = 1 (``sum_to_one``)

with the alternating direction method of multipliers of Bioucas-Dias & Figueiredo (2010):
split ``a = z``; the ``a``-step is a ``p x p`` linear solve (with the sum-to-one constraint
eliminated in closed form), the ``z``-step a soft threshold (and clip at zero). Both steps
are matrix operations over the whole pixel batch ``(n, p)``, so the cost per iteration is
one ``(n, p) @ (p, p)`` product. The penalty ``mu`` adapts to balance the primal and dual
residuals. Meant for libraries with many endmembers (``p`` up to a few hundred) where an
active-set method would meet too many distinct supports.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConvergenceWarning, check_range
from .batched import Gram, check_inputs, matmul_rows, run_batches, thread_count

__all__ = ["sunsal"]


def sunsal(
    Y,
    E,
    *,
    lam: float = 0.0,
    positivity: bool = True,
    sum_to_one: bool = False,
    mu: float | None = None,
    tol: float = 1e-5,
    max_iter: int = 1000,
    batch_size: int = 65536,
    n_threads: int | None = None,
) -> np.ndarray:
    """Sparse unmixing by ADMM.

    Parameters
    ----------
    Y : array (N, bands)
        Pixels.
    E : array (p, bands)
        Endmembers or a spectral library, rows are spectra.
    lam : float
        L1 weight, in the units of ``0.5 ||y - a E||^2`` (squared data units).
    positivity, sum_to_one : bool
        Constraints ``a >= 0`` and ``sum(a) = 1``.
    mu : float or None
        Initial ADMM penalty; default ``0.01 * trace(E E^T) / p`` (SUnSAL's 0.01 after
        normalising ``E E^T`` to unit mean diagonal). Adapted during the run.
    tol : float
        Stop when the primal and dual residuals, per entry (RMS over the batch) and
        relative to the RMS abundance, fall below ``tol``.
    max_iter : int
        ADMM iterations per batch; a `ConvergenceWarning` is raised when reached.
    batch_size : int
        Pixels solved together (each batch has its own convergence test).
    n_threads : int or None
        Worker threads over batches (default: all cores, at most 8; see
        `unmixgen.unmix.batched.run_batches`).

    Returns
    -------
    A : float32 (N, p)
        Abundances; exactly ``>= 0`` with ``positivity``; sum to one up to ``tol`` with
        ``sum_to_one``. NaN rows where ``Y`` had NaN/Inf.
    """
    Y, E = check_inputs(Y, E)
    check_range("lam", lam, low=0)
    check_range("max_iter", max_iter, low=1, integer=True)
    check_range("batch_size", batch_size, low=1, integer=True)
    if mu is not None:
        check_range("mu", mu, low=0, low_open=True)
    workers = thread_count(n_threads)
    n = Y.shape[0]
    p = E.shape[0]
    # G and b normalised so that mean(diag(G)) = 1: penalties and tolerances are scale free
    gram = Gram(E, shift=False, precision="double")
    g = gram.scale
    mu0 = float(mu) / g if mu is not None else 0.01
    out = np.empty((n, p), np.float32)

    def solve_batch(start: int, stop: int) -> int:
        b = gram.b(Y[start:stop])
        bad = ~np.isfinite(b).all(axis=1)
        if bad.any():
            b[bad] = 0.0
        Z, converged = _admm(gram.G, b, lam / g, positivity, sum_to_one, mu0, tol, max_iter,
                             matmul_rows)
        ob = out[start:stop]
        ob[...] = Z
        ob[bad] = np.nan
        return 0 if converged else 1

    slow = run_batches(n, batch_size, workers, solve_batch)
    if slow:
        warnings.warn(
            f"sunsal: {slow} pixel batch(es) stopped at max_iter={max_iter} before reaching tol={tol}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return out


def _admm(G, b, lam, positivity, sum_to_one, mu, tol, max_iter, matmul):
    n, p = b.shape
    ones = np.ones(p)

    def factor(mu):
        Q = np.linalg.inv(G + mu * np.eye(p))
        Q = 0.5 * (Q + Q.T)
        q1 = Q @ ones
        return Q, q1, float(ones @ q1)

    Q, q1, s1 = factor(mu)

    def a_step(V):
        A = matmul(V, Q)
        if sum_to_one:
            A -= np.outer(A.sum(axis=1) - 1.0, q1 / s1)
        return A

    # start: the (sum-to-one) least-squares solution, lightly regularised
    Z = a_step(b.copy())
    D = np.zeros_like(Z)
    sqrt_np = np.sqrt(n * p)
    for it in range(1, max_iter + 1):
        A = a_step(b + mu * (Z + D))
        Z_old = Z
        Z = A - D
        if lam > 0:
            if positivity:
                Z = Z - lam / mu
            else:
                Z = np.sign(Z) * np.maximum(np.abs(Z) - lam / mu, 0.0)
        if positivity:
            np.maximum(Z, 0.0, out=Z)
        D -= A - Z
        if it % 10 == 0 or it == max_iter:
            r = np.linalg.norm(A - Z) / sqrt_np
            dres = mu * np.linalg.norm(Z - Z_old) / sqrt_np
            scale = max(np.linalg.norm(Z) / sqrt_np, 1e-12)
            if r < tol * scale and dres < tol * scale * max(mu, 1.0):
                return Z, True
            # keep the residuals balanced (Boyd et al. 2011, section 3.4.1)
            if r > 10 * dres:
                D /= 2.0
                mu *= 2.0
                Q, q1, s1 = factor(mu)
            elif dres > 10 * r:
                D *= 2.0
                mu /= 2.0
                Q, q1, s1 = factor(mu)
    return Z, False
