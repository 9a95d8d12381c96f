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
- The normalisation is wrong when brightness already follows the mixing (plain linear
  mixing, e.g. synthetic scenes): it bends the flat simplex, and the abundances of the
  normalised model neither are fractions nor reconstruct the pixels. `brightness_ratio`
  detects that case from the data (affine vs linear subspace residual, close to 1 without
  per-pixel scaling); there the default re-fits the abundances to the raw pixels under the
  scaled model (NNLS, then divided by the sum: ``y = s * a @ E``).
- Where the normalisation stays, the abundances are fractions of the brightness-normalised
  endmembers ("normalised"): NNLS of the raw pixels on the endmembers over all bands, each
  coefficient times its endmember's brightness, summed to one. The factorisation's own
  abundances ("model") estimate the same fractions inside its ``subspace_dim`` projection
  with the sum-to-one imposed on normalised pixels, which a mixture's norm does not keep;
  `transform` could not reproduce them.

The measurements behind these choices are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import ConvergenceWarning
from .base import BlindUnmixer, fit_sample, thin_history
from .inversion import fcls, invert_weighted
from .minvol import FIT_PIXELS, minvol_refine
from .params import NONE, Constraint, InstanceOf, Interval, Options, SequenceOf, TorchDevice
from .preprocessing import (
    BRIGHTNESS,
    brightness_ratio,
    normalize_brightness,
    principal_coordinates,
    random_vertices,
)
from .vertex_clusters import vertex_clusters

_BRIGHTNESS_MODES = ("auto", *BRIGHTNESS)


class ArchetypalAnalysis(BlindUnmixer):
    """Entropic-descent archetypal analysis with restarts and model selection ("edaa").

    Parameters
    ----------
    n_endmembers : int >= 2 or "auto"
    seed : int >= 0
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
    brightness : {"auto", "l2", "sum", "none"}
        Normalise pixel brightness before the archetype search (see the module docstring).
        "auto" uses "l2" when `brightness_ratio` exceeds ``brightness_threshold`` (pixel
        brightness varies beyond what the mixing explains, as on real scenes) and "none"
        otherwise (the normalisation would only bend a flat simplex).
    brightness_threshold : float >= 1
        Threshold of "auto" on `brightness_ratio` (1.0 + noise when there is no per-pixel
        scaling; real scenes measure above it, see ``benchmarks/RESULTS.md``).
    brightness_floor : float
        Pixels darker than this fraction of the median brightness are divided by the floor
        instead of their own brightness.
    tol : float
        Converged when the relative objective change over one outer iteration is below it.
    refine : {"auto", "minvol", "none"}
        "minvol" refines the selected archetypes by minimum-volume NMF iterations
        (`minvol.minvol_refine`) on the (normalised) data: archetypes are convex combinations
        of pixels and lie inside the data hull when no pixel is pure; the refinement moves
        them outward to the smallest simplex that holds the data. "auto" refines only when
        no brightness normalisation is used (on l2-normalised data the simplex is bent and
        the refinement hurt on every scene measured).
    refine_lam, refine_iter, refine_tol : float, int, float
        Relative volume weight, iterations and tolerance of the refinement.
    abundances : {"auto", "normalised", "model", "scaled", "fcls"}
        "auto": "scaled" when the data were brightness-normalised although `brightness_ratio`
        is at most ``brightness_threshold`` (brightness follows the mixing, so the
        normalisation only bent the simplex and its abundances do not reconstruct the
        pixels), else "normalised" after a brightness normalisation and "model" without.
        "normalised": fractions of the brightness-normalised endmembers (`normalised_fractions`
        of NNLS on the raw pixels); "model": the factorisation's abundances; "scaled": NNLS of the raw pixels on the
        endmembers divided by its sum (the scaled model ``y = s * a @ E``; the scale
        percentiles go to ``info_["scale"]``); "fcls": FCLS of the raw pixels.
    pure_clusters : bool
        Move the archetypes to the mean raw spectra of the pure pixels clustered around them,
        where every archetype has such a cluster among the (brightness-divided) pixels
        (`vertex_clusters.vertex_clusters`); the abundances are then recomputed ("model" ones
        belong to the old archetypes: "scaled" after a brightness normalisation, else "fcls").
    selection : {"correlation", "consensus"}
        How the restart is chosen among those that fit within 5 % of the best (see
        `select_restart`); "correlation" is the EDAA paper's rule.
    fit_pixels : int >= 1 or None
        The archetypes are fitted to at most this many valid pixels, a random sample fixed
        by ``seed`` (None: all of them); the pure-pixel clusters and the abundances use every
        pixel ("model" abundances of the others: FCLS on the archetypes among the pixels they
        were found in). As `minvol.MinVolNMF.fit_pixels`.
    device : str
        torch device ("cpu" or "cuda").

    Notes
    -----
    `transform` inverts other pixels on ``endmembers_`` the way `fit` made the abundances
    from the raw pixels: NNLS divided by its sum when the abundances used were "scaled", NNLS
    as `normalised_fractions` when "normalised", FCLS otherwise (the factorisation's "model"
    abundances exist only for the fitted pixels).
    """

    name = "edaa"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **BlindUnmixer._parameter_constraints,
        "n_restarts": [Interval(integer=True, low=1)],
        "n_outer": [Interval(integer=True, low=1)],
        "n_inner": [Interval(integer=True, low=1)],
        "step_factors": [SequenceOf(Interval(low=0, low_open=True))],
        "subspace_dim": [NONE, Interval(integer=True, low=1)],
        "brightness": [Options(_BRIGHTNESS_MODES)],
        "brightness_threshold": [Interval(low=1)],
        "brightness_floor": [Interval(low=0, high=1)],
        "tol": [Interval(low=0, low_open=True)],
        "selection": [Options(("correlation", "consensus"))],
        "refine": [Options(("auto", "minvol", "none"))],
        "refine_lam": [Interval(low=0)],
        "refine_iter": [Interval(integer=True, low=1)],
        "refine_tol": [Interval(low=0, low_open=True)],
        "abundances": [Options(("auto", "normalised", "model", "scaled", "fcls"))],
        "pure_clusters": [InstanceOf(bool, "True or False")],
        "fit_pixels": [NONE, Interval(integer=True, low=1)],
        "device": [TorchDevice()],
    }

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
        brightness_threshold: float = 1.1,
        brightness_floor: float = 0.5,
        tol: float = 1e-3,
        selection: str = "correlation",
        refine: str = "none",
        refine_lam: float = 0.05,
        refine_iter: int = 1000,
        refine_tol: float = 1e-6,
        abundances: str = "auto",
        pure_clusters: bool = True,
        fit_pixels: int | None = FIT_PIXELS,
        device: str = "cpu",
    ):
        super().__init__(n_endmembers, seed=seed)
        self.n_restarts = n_restarts
        self.n_outer = n_outer
        self.n_inner = n_inner
        self.step_factors = step_factors
        self.subspace_dim = subspace_dim
        self.brightness = brightness
        self.brightness_threshold = brightness_threshold
        self.brightness_floor = brightness_floor
        self.tol = tol
        self.selection = selection
        self.refine = refine
        self.refine_lam = refine_lam
        self.refine_iter = refine_iter
        self.refine_tol = refine_tol
        self.abundances = abundances
        self.pure_clusters = pure_clusters
        self.fit_pixels = fit_pixels
        self.device = device

    def _transform_method(self) -> str:
        used = self._fitted("info_")["params"]["abundances_used"]
        return "nnls" if used in ("scaled", "normalised") else "fcls"

    def _transform_finish(self, A: np.ndarray) -> np.ndarray:
        used = self.info_["params"]["abundances_used"]
        if used == "normalised":
            return normalised_fractions(A, self.info_["endmember_brightness"])
        if used != "scaled":
            return A
        return scale_to_simplex(A)[0].astype(np.float32)

    def _fit_pixels(self, Y: np.ndarray, p: int, rng: np.random.Generator, weights: np.ndarray | None = None):
        """See `BlindUnmixer._fit_pixels`. ``weights (B,)``: seek the archetypes and their
        abundances among the pixels ``Y * weights`` (e.g. by each band's noise), without a
        second copy of the pixels; the endmembers come back in ``Y``'s units."""
        dev = torch.device(self.device)
        w = None if weights is None else np.asarray(weights, np.float32)
        Y_all = Y
        pick = fit_sample(len(Y), self.fit_pixels, rng)
        if pick is not None:
            Y = np.ascontiguousarray(Y[pick])
        ratio = brightness_ratio(Y, p)
        norm = self.brightness
        if norm == "auto":
            norm = "l2" if ratio > self.brightness_threshold else "none"
        # every pixel divided by one median brightness: the sample's archetypes and the other
        # pixels (clusters, abundances) are then on one scale
        X_all = normalize_brightness(Y_all, self.brightness_floor, norm, w)
        X = X_all if pick is None else Y if X_all is Y_all else np.ascontiguousarray(X_all[pick])
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
        extra: dict[str, Any] = {}
        refine = self.refine
        if refine == "auto":
            refine = "minvol" if norm == "none" else "none"
        # the archetypes among the pixels they were found in (brightness divided out)
        En = W[best] @ X if refine == "minvol" or self.pure_clusters else None
        if refine == "minvol":
            En, A, rhist, rit, rrel, rlam = minvol_refine(
                X, En, A, lam=self.refine_lam, delta=0.1, max_iter=self.refine_iter, inner=10, tol=self.refine_tol,
                device=self.device)
            E = En.astype(np.float32) if w is None else (En / w).astype(np.float32)
            if norm != "none":
                # back to the data's units: least squares of the raw pixels on the abundances
                E = np.clip(np.linalg.lstsq(A.astype(np.float64), Y.astype(np.float64), rcond=None)[0], 0, None)
            extra["refine"] = {"iterations": int(rit), "rel_change": float(rrel), "lam_absolute": float(rlam)}
        clusters = None
        if self.pure_clusters:
            # clusters of pure pixels are found where brightness is divided out; the vertices
            # become the mean raw spectra of their clusters' pixels
            E_c, clusters = vertex_clusters(X_all, np.asarray(En, np.float32), values=Y_all)
            if clusters["moved"]:
                E = E_c
        abund = self.abundances
        if abund == "auto":
            abund = ("scaled" if ratio <= self.brightness_threshold else "normalised") if norm != "none" else "model"
        if clusters and clusters["moved"] and abund == "model":
            # the factorisation's abundances belong to its own archetypes
            abund = "scaled" if norm != "none" else "fcls"
        if abund == "scaled":
            A, s = scale_to_simplex(invert_weighted(Y_all, _weigh(E, w), "nnls", w))
            extra["scale"] = {"median": float(np.median(s)), "p5": float(np.percentile(s, 5)),
                              "p95": float(np.percentile(s, 95))}
        elif abund == "fcls":
            A = invert_weighted(Y_all, _weigh(E, w), "fcls", w)
        elif abund == "normalised":
            A = normalised_fractions(invert_weighted(Y_all, _weigh(E, w), "nnls", w), endmember_brightness(E, norm))
        elif pick is not None:  # "model" abundances exist for the fitted sample only
            A = fcls(X_all, np.asarray(W[best] @ X if En is None else En, np.float32))
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
                "objective_history": thin_history(hist),
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
                "brightness": self.brightness, "brightness_used": norm, "brightness_ratio": float(ratio),
                "brightness_threshold": self.brightness_threshold, "brightness_floor": self.brightness_floor, "tol": self.tol,
                "selection": self.selection, "refine": self.refine, "refine_used": refine,
                "refine_lam": self.refine_lam, "refine_iter": self.refine_iter, "refine_tol": self.refine_tol,
                "abundances": self.abundances, "abundances_used": abund, "pure_clusters": self.pure_clusters,
                "fit_pixels": self.fit_pixels,
            },
            "pixels_fitted": len(Y),
            "endmember_brightness": endmember_brightness(E, norm).tolist() if abund == "normalised" else None,
            "pure_clusters": clusters,
            **extra,
        }
        return E.astype(np.float32), A.astype(np.float32), info


# -- building blocks -----------------------------------------------------------------------

def abundance_basis(estimator) -> str | None:
    """"l2" or "sum" when a fitted blind estimator (edaa, or the blind default that chose it)
    gave fractions of its endmembers divided by their brightness ("normalised" abundances), None
    when its fractions are of the endmembers as they are; what `refine`'s ``abundance_basis``
    and a result's ``abundance_basis`` say."""
    used = getattr(getattr(estimator, "chosen_", estimator), "info_", {}).get("params", {})
    return used["brightness_used"] if used.get("abundances_used") == "normalised" else None


def endmember_brightness(E: np.ndarray, norm: str) -> np.ndarray:
    """Brightness ``(p,)`` float64 of each endmember of ``E (p, B)`` by ``norm`` ("l2" or "sum"):
    what "normalised" fractions (`normalised_fractions`) divide the endmembers by."""
    E = np.asarray(E, np.float64)
    return np.linalg.norm(E, axis=1) if norm == "l2" else E.sum(axis=1)


def normalised_fractions(S: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Fractions of brightness-normalised endmembers from non-negative coefficients ``S (..., p)``
    of pixels on the endmembers themselves (``y = S @ E``): ``S_j * norms_j`` summed to one,
    ``norms (p,)`` the endmembers' brightness. A pixel's share of ``e_j / |e_j|`` is ``S_j |e_j|``
    of its own brightness; float32, NaN where ``S`` is, ``1 / p`` where it is all zero."""
    return scale_to_simplex(np.asarray(S, np.float64) * np.asarray(norms, np.float64))[0].astype(np.float32)


def _weigh(E: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Endmembers ``E (p, B)`` float32 in the bands weighted by ``weights (B,)`` (None: as they are)."""
    E = np.asarray(E, np.float32)
    return E if weights is None else E * weights


def scale_to_simplex(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Abundances under the scaled model ``y = s * a @ E`` from non-negative ones ``S (..., p)``.

    Returns float64 ``A = S / s`` with ``s = sum(S)`` over the last axis (``1 / p`` where
    ``s = 0``; NaN where ``S`` has NaN) and the scales ``s (..., 1)``.
    """
    S = np.asarray(S).astype(np.float64)
    s = S.sum(-1, keepdims=True)
    A = np.where(s > 0, S / np.maximum(s, 1e-30), 1.0 / S.shape[-1])
    A[np.isnan(s[..., 0])] = np.nan
    return A, s


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
