"""Archetypal analysis by entropic mirror descent (EDAA family) for blind unmixing.

Model (Zouaoui et al., "Entropic Descent Archetypal Analysis for Blind Hyperspectral
Unmixing", IEEE TIP 2023): the pixels ``Y (N, B)`` are approximated by ``A @ E`` where the
endmembers ``E = W @ Y (p, B)`` are convex combinations of pixels (``W (p, N)``
row-stochastic) and the abundances ``A (N, p)`` are row-stochastic. Both factors are
updated alternately by entropic mirror descent, i.e. multiplicative exponentiated-gradient
steps followed by normalisation (a softmax of ``log X - eta * grad``), which keeps them on
the simplex without projections. Step sizes come from the Lipschitz constant of the
abundance gradient, ``eta_A = f / ||E E^T||_2`` and ``eta_W = eta_A * sqrt(p / N)``.

Several restarts (different initial archetypes and step factors ``f``) run at once as one
batched tensor computation. The selected restart is the one whose endmembers are least
correlated among the restarts whose L1 reconstruction error is within 5 % of the best (the
model-selection rule of the EDAA paper); ground truth is never used.

Two choices make the method robust on real scenes (see ``benchmarks/unmixing_quality.py``):

- The iterations run on the data projected onto its leading ``subspace_dim`` principal
  directions (a denoising projection; the final endmembers are ``W @ Y`` on all bands).
- ``brightness="l2"`` divides each pixel by its Euclidean norm (floored at a fraction of
  the median norm so dark pixels, e.g. water, are not blown up into noise) before the
  archetypes are sought. Real scenes mix materials under varying illumination and
  topography (the scaled linear mixing model ``y = s * a @ E``); the normalisation removes
  most of ``s``, so archetypes describe spectral shape rather than the brightest pixels and
  abundances describe fractions rather than brightness. ``"sum"`` divides by the band sum
  instead (exactly a simplex again under the scaled model); ``"none"`` keeps the data.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from ..errors import ConvergenceWarning, InputError
from .base import BlindUnmixer

_BRIGHTNESS = ("l2", "sum", "none")


class ArchetypalAnalysis(BlindUnmixer):
    """Entropic-descent archetypal analysis with restarts and model selection ("edaa").

    Parameters
    ----------
    n_endmembers : int or "auto"
    seed : int
        Seeds the initial archetypes and step factors; equal seeds give equal results.
    n_restarts : int
        Number of restarts run in one batch (initial archetypes and step factors differ).
    n_outer : int
        Maximum outer iterations; each runs ``n_inner`` steps on ``A`` then on ``W``.
    n_inner : int
        Mirror-descent steps per factor per outer iteration.
    step_factors : tuple of float
        Multipliers of the Lipschitz step ``1 / ||E E^T||``, cycled over the restarts.
    subspace_dim : int or None
        Dimension of the principal subspace the iterations run in (None: ``max(p + 3, 8)``
        capped by the number of bands).
    brightness : {"l2", "sum", "none"}
        Normalise pixel brightness before the archetype search (see the module docstring).
    brightness_floor : float
        Pixels darker than this fraction of the median brightness are divided by the floor
        instead of their own brightness.
    tol : float
        Converged when the relative objective change over one outer iteration is below it.
    selection : {"correlation", "consensus"}
        How the restart is chosen among those that fit within 5 % of the best (see
        `select_restart`); "correlation" is the EDAA paper's rule.
    device : str
        torch device ("cpu" or "cuda").
    """

    name = "edaa"

    def __init__(
        self,
        n_endmembers: int | str = "auto",
        *,
        seed: int = 0,
        n_restarts: int = 24,
        n_outer: int = 60,
        n_inner: int = 15,
        step_factors: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0),
        subspace_dim: int | None = None,
        brightness: str = "l2",
        brightness_floor: float = 0.5,
        tol: float = 1e-3,
        selection: str = "correlation",
        device: str = "cpu",
    ):
        super().__init__(n_endmembers, seed=seed)
        self.n_restarts = n_restarts
        self.n_outer = n_outer
        self.n_inner = n_inner
        self.step_factors = step_factors
        self.subspace_dim = subspace_dim
        self.brightness = brightness
        self.brightness_floor = brightness_floor
        self.tol = tol
        self.selection = selection
        self.device = device

    def _validate(self) -> None:
        for key in ("n_restarts", "n_outer", "n_inner"):
            v = getattr(self, key)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise InputError(f"edaa: {key}={v!r} is invalid; expected an integer >= 1")
        if self.brightness not in _BRIGHTNESS:
            raise InputError(f"edaa: brightness={self.brightness!r} is unknown; expected one of {', '.join(_BRIGHTNESS)}")
        if not self.step_factors or min(self.step_factors) <= 0:
            raise InputError(f"edaa: step_factors={self.step_factors!r}; expected positive numbers")
        if self.selection not in ("consensus", "correlation"):
            raise InputError(f"edaa: selection={self.selection!r}; expected 'consensus' or 'correlation'")
        if not 0 <= self.brightness_floor <= 1:
            raise InputError(f"edaa: brightness_floor={self.brightness_floor!r}; expected a number in [0, 1]")

    def _fit_pixels(self, Y: np.ndarray, p: int, rng: np.random.Generator):
        self._validate()
        dev = torch.device(self.device)
        X = normalize_brightness(Y, self.brightness_floor, self.brightness)
        d = self.subspace_dim or max(p + 3, 8)
        d = int(min(d, Y.shape[1]))
        Z = principal_coordinates(X, d)
        idx = np.stack([random_vertices(Z, p, rng) for _ in range(self.n_restarts)])
        factors = np.resize(np.asarray(self.step_factors, np.float32), self.n_restarts)
        res = entropic_aa(
            torch.from_numpy(Z).to(dev), idx, factors, n_outer=self.n_outer, n_inner=self.n_inner, tol=self.tol
        )
        W, A = res["W"], res["A"]
        R = Z[None] - (A @ (W @ Z))
        l1 = np.abs(R).sum(axis=(1, 2))
        E_all = W @ Y  # (M, p, B) archetypes on all bands, in the data's own units
        corr = np.array([max_correlation(e) for e in E_all])
        best = select_restart(l1, corr, endmembers=E_all if self.selection == "consensus" else None)
        E, A = E_all[best], A[best]
        hist = res["history"][:, best]
        conv = bool(res["rel_change"][best] < self.tol)
        if not conv:
            warnings.warn(
                f"edaa: stopped after {res['iterations']} outer iterations with relative objective "
                f"change {res['rel_change'][best]:.2e} > tol={self.tol:g}; raise n_outer",
                ConvergenceWarning,
                stacklevel=2,
            )
        info: dict[str, Any] = {
            "convergence": {
                "iterations": int(res["iterations"]),
                "inner_steps": int(self.n_inner),
                "objective_history": subsample(hist),
                "converged": conv,
                "restarts": int(self.n_restarts),
                "selected_restart": int(best),
                "restart_l1_error": [float(v) for v in l1],
                "restart_max_correlation": [float(v) for v in corr],
                "restart_step_factor": [float(v) for v in factors],
            },
            "params": {
                "n_restarts": self.n_restarts, "n_outer": self.n_outer, "n_inner": self.n_inner,
                "step_factors": list(map(float, self.step_factors)), "subspace_dim": d,
                "brightness": self.brightness, "brightness_floor": self.brightness_floor, "tol": self.tol,
                "selection": self.selection,
            },
        }
        return E.astype(np.float32), A.astype(np.float32), info


# -- building blocks (also used by other methods in this package) -------------------------

def normalize_brightness(Y: np.ndarray, floor: float = 0.5, norm: str = "l2") -> np.ndarray:
    """Divide each pixel ``(N, B)`` by its brightness, floored at ``floor`` x the median.

    ``norm``: ``"l2"`` (Euclidean norm), ``"sum"`` (band sum) or ``"none"`` (return ``Y``).
    The result is rescaled by the median brightness so values stay in the data's range.
    """
    if norm == "none":
        return Y
    if norm == "l2":
        s = np.sqrt(np.einsum("ij,ij->i", Y.astype(np.float64), Y.astype(np.float64)))
    elif norm == "sum":
        s = Y.sum(axis=1, dtype=np.float64)
    else:
        raise InputError(f"brightness={norm!r} is unknown; expected one of {', '.join(_BRIGHTNESS)}")
    med = float(np.median(s))
    if not med > 0:
        return Y
    denom = np.maximum(s, floor * med) if floor > 0 else np.where(s > 0, s, med)
    return (Y * (med / denom)[:, None]).astype(np.float32)


def principal_coordinates(Y: np.ndarray, d: int) -> np.ndarray:
    """Coordinates ``(N, d)`` of the pixels on the ``d`` leading (uncentred) principal axes."""
    G = (Y.T.astype(np.float64) @ Y.astype(np.float64)) / Y.shape[0]
    w, V = np.linalg.eigh(G)
    V = V[:, ::-1][:, :d]
    return (Y @ V.astype(np.float32)).astype(np.float32)


def random_vertices(Z: np.ndarray, p: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``p`` extreme pixels found by random directions orthogonal to those found."""
    n, d = Z.shape
    idx: list[int] = []
    for _ in range(p):
        w = rng.standard_normal(d)
        if idx:
            Q, _ = np.linalg.qr(Z[idx].T.astype(np.float64))
            w = w - Q @ (Q.T @ w)
        v = np.abs(Z.astype(np.float64) @ w)
        if idx:
            v[idx] = -1.0
        idx.append(int(np.argmax(v)))
    return np.asarray(idx)


@torch.no_grad()
def entropic_aa(Z: torch.Tensor, idx: np.ndarray, factors: np.ndarray, *, n_outer: int, n_inner: int,
                tol: float, spread: float = 0.1) -> dict[str, Any]:
    """Batched entropic-descent archetypal analysis of ``Z (N, d)``.

    ``idx (M, p)``: initial archetype pixels per restart (weight ``1 - spread`` on the pixel,
    ``spread`` spread uniformly over all pixels, so mass can move anywhere).
    Returns numpy ``W (M, p, N)``, ``A (M, N, p)``, ``history (iters, M)`` of the objective
    ``0.5 ||Z - A W Z||^2 / N``, the last relative change per restart and the iteration count.
    """
    n, _ = Z.shape
    M, p = idx.shape
    W = torch.full((M, p, n), spread / n, dtype=Z.dtype, device=Z.device)
    W[torch.arange(M)[:, None], torch.arange(p)[None, :], torch.from_numpy(idx)] += 1.0 - spread
    A = torch.full((M, n, p), 1.0 / p, dtype=Z.dtype, device=Z.device)
    E = W @ Z
    lip = torch.linalg.matrix_norm(E, ord=2) ** 2
    eta_a = (torch.as_tensor(factors, dtype=Z.dtype, device=Z.device) / lip)[:, None, None]
    eta_w = eta_a * math.sqrt(p / n)
    Zt = Z.T
    history = []
    prev = None
    rel = torch.full((M,), float("inf"))
    it = 0
    while it < n_outer:
        it += 1
        EEt = E @ E.transpose(1, 2)
        ZEt = Z @ E.transpose(1, 2)
        logA = torch.log(A)
        for _ in range(n_inner):
            logA = torch.log_softmax(logA - eta_a * (A @ EEt - ZEt), dim=2)
            A = logA.exp()
        AtA = A.transpose(1, 2) @ A
        AtZ = A.transpose(1, 2) @ Z
        logW = torch.log(W)
        for _ in range(n_inner):
            grad = (AtA @ E - AtZ) @ Zt
            logW = torch.log_softmax(logW - eta_w * grad, dim=2)
            W = logW.exp()
            E = W @ Z
        obj = 0.5 * ((Z - A @ E) ** 2).sum(dim=(1, 2)) / n
        history.append(obj.cpu().numpy())
        if prev is not None:
            rel = (prev - obj).abs() / obj.clamp_min(1e-30)
            if bool((rel < tol).all()):
                break
        prev = obj
    return {
        "W": W.cpu().numpy(), "A": A.cpu().numpy(), "history": np.asarray(history),
        "rel_change": rel.cpu().numpy(), "iterations": it,
    }


def max_correlation(E: np.ndarray) -> float:
    """Largest Pearson correlation between two different rows of ``E (p, B)``."""
    C = np.corrcoef(E.astype(np.float64))
    C = np.nan_to_num(C, nan=1.0)
    np.fill_diagonal(C, -np.inf)
    return float(C.max())


def select_restart(l1: np.ndarray, corr: np.ndarray, tol: float = 0.05,
                   endmembers: np.ndarray | None = None) -> int:
    """Pick a restart without ground truth.

    Candidates are the restarts within ``tol`` (relative) of the best L1 error. Without
    ``endmembers`` the least correlated candidate wins (the EDAA rule). With
    ``endmembers (M, p, B)`` the consensus candidate wins: the one whose endmembers have the
    smallest median spectral angle (after matching) to the other candidates' endmembers,
    ties broken by correlation; it is the solution most restarts agree on, which is steadier
    than the correlation rule when several local optima fit equally well.
    """
    ok = np.flatnonzero(np.abs(l1 - l1.min()) <= tol * np.abs(l1))
    if endmembers is None or ok.size < 3:
        return int(ok[np.argmin(corr[ok])])
    from scipy.optimize import linear_sum_assignment

    U = endmembers[ok].astype(np.float64)
    U /= np.maximum(np.linalg.norm(U, axis=2, keepdims=True), 1e-30)
    k = ok.size
    D = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            ang = np.degrees(np.arccos(np.clip(U[i] @ U[j].T, -1.0, 1.0)))
            r, c = linear_sum_assignment(ang)
            D[i, j] = D[j, i] = ang[r, c].mean()
    score = np.array([np.median(np.delete(D[i], i)) for i in range(k)])
    order = np.lexsort((corr[ok], np.round(score, 6)))
    return int(ok[order[0]])


def subsample(history: np.ndarray, n: int = 50) -> list[float]:
    """At most ``n`` evenly spaced values of a 1-D history, last value included."""
    h = np.asarray(history, np.float64).ravel()
    if h.size <= n:
        return [float(v) for v in h]
    sel = np.unique(np.linspace(0, h.size - 1, n).round().astype(int))
    return [float(v) for v in h[sel]]
