"""Minimum-volume NMF ("mvnmf") for blind unmixing without pure pixels.

Model (Leplat, Gillis, Ang, "Blind audio source separation with minimum-volume beta-NMF
under the sum-to-one constraint", and "Minimum-volume rank-deficient NMF", ICASSP 2019):

    min_{E >= 0, A rows on the simplex}  0.5 ||Y - A E||_F^2 + 0.5 lam * logdet(E E^T + delta I)

with ``Y (N, B)``, ``A (N, p)``, ``E (p, B)``. The volume term pulls the endmembers towards
the data, so the simplex they span is the smallest one that explains the pixels; unlike
pure-pixel extraction it does not need a pixel of each material. ``logdet`` is majorised at
the current ``E`` by ``trace(P E E^T)`` with ``P = (E E^T + delta I)^-1``, which makes each
``E`` subproblem a convex quadratic solved by a few projected fast-gradient steps; ``A`` is
updated by projected fast-gradient steps onto the simplex.

The data term is evaluated on the pixels projected onto their ``p`` leading (uncentred)
principal axes, a denoising projection that also makes every iteration cost ``O(N p^2)``
instead of ``O(N p B)``; the objective keeps the energy outside those axes as a constant,
so its relative change (the stopping test) is that of the full objective.

``lam`` is relative: the actual weight is ``lam * ||Y - A0 E0||^2 / |logdet(E0 E0^T + delta I)|``
at the first initialisation. ``delta`` is relative to the mean squared endmember norm of that
initialisation. The weight is *not* free of the data's units: data times ``c`` shift the
log-determinant by ``2 p log c`` (and the objective whose relative change stops the
iterations with it), so the same scene in other units can end elsewhere (the same radiance
scene x1000: abundances up to 0.025 apart; benchmarks/RESULTS.md, "Bug hunt 52"). The
tuned ``lam`` and its path hold for data in reflectance (0-1) units; a unit-free log-determinant
moved the tuned weight by 1.3-2.9x on the blind suite and was not adopted without a retune.

Several initialisations (pure-pixel extractions: N-FINDR, VCA, ATGP) run at once as one
batched computation with the same weights. The result kept is chosen without ground truth by
`select_simplex`: the smallest simplex among those that explain the data about as well as the
best one. On noisy scenes that simplex is then tightened by stronger volume weights
(``lam_path``), warm-started one from the other, for as long as the data misfit stays within
the noise (``discrepancy``, ``tail_growth``: the discrepancy principle of regularisation).
Where every vertex then has a cluster of pure pixels around it, the vertices move to the
clusters' means (`vertex_clusters`: a simplex fitted to noisy pure pixels encloses their
noise too). The abundances are then recomputed exactly by FCLS for the kept endmembers (the iterations
stop on the joint objective, before the abundances have converged). The
measurements behind the initialisations and the rule are in ``benchmarks/RESULTS.md``
(``benchmarks/blind_suite.py``).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import ConvergenceWarning
from ..simplex import project_simplex_torch
from .base import BlindUnmixer, fit_sample, thin_history
from .batched import matmul_rows
from .extract_then_invert import ATGP, NFINDR, VCA
from .inversion import fcls, invert_weighted
from .params import NONE, Constraint, InstanceOf, Interval, Options, SequenceOf, TorchDevice
from .preprocessing import normalize_brightness, second_moments
from .vertex_clusters import vertex_clusters

__all__ = ["INITS", "MinVolNMF", "minvol_refine", "pixel_misfit_tail", "select_simplex", "simplex_fit"]

#: the pure-pixel extractions `MinVolNMF` can start from
INITS = ("nfindr", "vca", "atgp")


FIT_PIXELS = 2 ** 16
"""Most pixels `MinVolNMF` fits its simplex to and `archetypal.ArchetypalAnalysis` its
archetypes (a random sample of the valid pixels beyond it)."""


class MinVolNMF(BlindUnmixer):
    """Minimum-volume NMF started from pure-pixel extractions ("mvnmf").

    Parameters
    ----------
    n_endmembers : int >= 2 or "auto"
    seed : int >= 0
        Seeds the initial extractions.
    init : sequence of {"nfindr", "vca", "atgp"}
        Extractions (each followed by FCLS) the iterations start from.
    n_restarts : int >= 1
        Runs of each extraction with fresh random draws (ATGP, deterministic, runs once;
        repeated pixel sets are dropped). All starts run in one batch and `select_simplex`
        keeps one result.
    lam : float
        Relative weight of the volume term (see the module docstring).
    delta : float
        Relative regulariser inside the log-determinant.
    max_iter : int
        Outer iterations (one E update and one A update each).
    inner : int
        Fast-gradient steps per factor per outer iteration.
    brightness : {"none", "l2", "sum"}
        Normalise pixel brightness first (see `preprocessing.normalize_brightness`).
    tol : float
        An initialisation stops when the relative objective change over one outer iteration
        is below it.
    residual_factor, residual_margin : float
        `select_simplex` thresholds.
    device : str
    lam_path : sequence of float
        Larger relative volume weights tried in turn, each warm-started from the result
        before it, while the data still allow it (``discrepancy``); ``()``: ``lam`` only.
    discrepancy : float
        The largest excess residual (`simplex_fit`, in units of the noise energy of one band)
        a stronger volume weight may leave: the discrepancy principle. Noise spreads the
        pixels beyond the simplex of the materials and a data-fitting simplex grows with
        it; on noisy scenes a stronger pull towards small volume still fits the data to
        within the noise, and is kept. On clean scenes the first weight already misfits by
        more than this, and nothing else is run.
    tail_growth : float
        How much a stronger weight may raise the 99th percentile of the pixels' misfit within
        the data's plane (`pixel_misfit_tail`), as a factor of the first simplex's. The mean
        misfit alone does not see a simplex cut inside the data where no pixel is pure (the
        few outer pixels then misfit a lot while the mean barely moves); the tail does. A
        factor rather than a level: with noise that is not white the level under the right
        simplex is not known.
    pure_clusters : bool
        Move a vertex to the mean of the pure pixels clustered around it, where the data show
        such a cluster (`vertex_clusters.vertex_clusters`): a simplex fitted to noisy pure
        pixels encloses their noise too.
    fit_pixels : int >= 1 or None
        The simplex is fitted to at most this many valid pixels, a random sample fixed by
        ``seed`` (None: all of them); the pure-pixel clusters and the final abundances use
        every pixel. The iterations' cost grows with the pixels, and a sample of this size
        fixes the simplex about as well as a million pixels (benchmarks/RESULTS.md, "The
        blind default on a million pixels").
    """

    name = "mvnmf"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **BlindUnmixer._parameter_constraints,
        "init": [SequenceOf(Options(INITS))],
        "n_restarts": [Interval(integer=True, low=1)],
        "lam": [Interval(low=0)],
        "delta": [Interval(low=0, low_open=True)],
        "max_iter": [Interval(integer=True, low=1)],
        "inner": [Interval(integer=True, low=1)],
        "brightness": [Options(("none", "l2", "sum"))],
        "tol": [Interval(low=0, low_open=True)],
        "residual_factor": [Interval(low=1)],
        "residual_margin": [Interval(low=0)],
        "device": [TorchDevice()],
        "lam_path": [SequenceOf(Interval(low=0), empty=True)],
        "discrepancy": [Interval(low=0, low_open=True)],
        "tail_growth": [Interval(low=1)],
        "pure_clusters": [InstanceOf(bool, "True or False")],
        "fit_pixels": [NONE, Interval(integer=True, low=1)],
    }

    def __init__(self, n_endmembers: int | str = "auto", *, seed: int = 0,
                 init: tuple[str, ...] = ("nfindr", "vca"), n_restarts: int = 3, lam: float = 0.05,
                 delta: float = 0.1, max_iter: int = 500, inner: int = 10, brightness: str = "none", tol: float = 1e-4,
                 residual_factor: float = 1.5, residual_margin: float = 0.25, device: str = "cpu",
                 lam_path: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0), discrepancy: float = 1.0,
                 tail_growth: float = 1.3, pure_clusters: bool = True, fit_pixels: int | None = FIT_PIXELS):
        super().__init__(n_endmembers, seed=seed)
        self.init = init
        self.n_restarts = n_restarts
        self.lam = lam
        self.delta = delta
        self.max_iter = max_iter
        self.inner = inner
        self.brightness = brightness
        self.tol = tol
        self.residual_factor = residual_factor
        self.residual_margin = residual_margin
        self.device = device
        self.lam_path = lam_path
        self.discrepancy = discrepancy
        self.tail_growth = tail_growth
        self.pure_clusters = pure_clusters
        self.fit_pixels = fit_pixels

    def _fit_pixels(self, Y: np.ndarray, p: int, rng: np.random.Generator, weights: np.ndarray | None = None,
                    moments: tuple[np.ndarray, np.ndarray] | None = None):
        """See `BlindUnmixer._fit_pixels`. ``weights (B,)``: fit the pixels ``Y * weights``
        (e.g. 1 / each band's noise std) without a weighted copy of every pixel; the
        endmembers are returned divided back, in ``Y``'s units. ``moments``:
        `preprocessing.second_moments` of all the (weighted) pixels, when the caller has them."""
        Y_all, all_moments = Y, moments
        pick = fit_sample(len(Y), self.fit_pixels, rng)
        if pick is not None:
            Y = np.ascontiguousarray(Y[pick])
        if weights is not None:
            weights = np.asarray(weights, np.float32)
            Y = Y * weights  # the sample (or a scene of at most fit_pixels pixels)
        X = normalize_brightness(Y, 0.5, self.brightness)
        names, E0 = _initial_endmembers(X, p, list(dict.fromkeys(self.init)), self.n_restarts, rng)
        A0 = np.stack([fcls(X, e) for e in E0])
        E, A, history, it, rel, lam = minvol_refine(
            X, E0, A0, lam=self.lam, delta=self.delta, max_iter=self.max_iter, inner=self.inner, tol=self.tol,
            device=self.device,
        )
        moments = second_moments(X)  # shared by every fit measure below: one pass over the pixels
        volume, residual = simplex_fit(X, E, A, moments)
        best = select_simplex(volume, residual, factor=self.residual_factor, margin=self.residual_margin)
        conv = bool(rel[best] < self.tol)
        if not conv:
            warnings.warn(f"mvnmf: stopped after {it} iterations with relative objective change "
                          f"{rel[best]:.2e} > tol={self.tol:g}; raise max_iter", ConvergenceWarning, stacklevel=2)
        E_b, A_b, lam_used, tail0, path = E[best], A[best], self.lam, None, []
        if self.lam > 0 and residual[best] <= self.discrepancy and self.lam_path:
            E_b, A_b, lam_used, tail0, path = self._tighten(X, E_b, A_b, moments, lam / self.lam)
        E_np = E_b.astype(np.float32)
        A_np = A_b.astype(np.float32)
        if self.brightness != "none":
            # endmembers back in the data's units: least squares of the raw pixels on A
            E_np = np.linalg.lstsq(A_np.astype(np.float64), Y.astype(np.float64), rcond=None)[0]
            E_np = np.clip(E_np, 0, None).astype(np.float32)
        clusters = None
        if self.pure_clusters:
            # the pixels' moments are those of the fit unless it normalised their brightness
            # or saw a sample of them
            known = all_moments if all_moments is not None else moments if X is Y_all else None
            E_np, clusters = vertex_clusters(Y_all, E_np, moments=known, weights=weights)
        # the exact abundances for the kept endmembers: the iterations stop on the joint
        # objective, before A has converged for the final E (on the demo scene 5.3 % RMSE
        # from the iterations, 3.5 % from FCLS)
        A_np = invert_weighted(Y_all, E_np, "fcls", weights).astype(np.float32)
        if weights is not None:
            E_np = (E_np / weights).astype(np.float32)
        info: dict[str, Any] = {
            "convergence": {"iterations": it, "objective_history": thin_history(history[:, best]),
                            "converged": conv, "restarts": len(names), "selected_restart": best},
            "starts": {"candidates": names, "chosen": names[best], "log_volume": volume.tolist(),
                          "excess_residual": residual.tolist()},
            "params": {"init": list(self.init), "n_restarts": self.n_restarts, "lam": self.lam,
                       "delta": self.delta, "lam_absolute": lam, "max_iter": self.max_iter, "inner": self.inner, "brightness": self.brightness,
                       "tol": self.tol, "residual_factor": self.residual_factor,
                       "residual_margin": self.residual_margin, "lam_path": list(self.lam_path),
                       "discrepancy": self.discrepancy, "tail_growth": self.tail_growth,
                       "pure_clusters": self.pure_clusters, "fit_pixels": self.fit_pixels},
            "pixels_fitted": len(Y),
            "volume_weight": {"used": lam_used, "excess_residual_first": float(residual[best]),
                              "pixel_misfit_q99_first": tail0,
                              "tried": [{"lam": v, "excess_residual": r, "pixel_misfit_q99": t} for v, r, t in path]},
            "pure_clusters": clusters,
        }
        return E_np, A_np, info


    def _tighten(self, X: np.ndarray, E: np.ndarray, A: np.ndarray, moments, lam_scale: float):
        """The discrepancy principle (class docstring): from the selected ``(E, A)``, run the
        stronger weights of ``lam_path`` in turn, each warm-started from the last one kept, and
        keep a run while its excess residual stays <= ``discrepancy`` and its misfit tail
        within ``tail_growth`` of the first. Returns ``(E, A, lam kept, first tail, [(lam,
        excess residual, tail) of every run])``."""
        p = E.shape[0]
        planes = _leading_planes(X, p, moments)
        tail0 = pixel_misfit_tail(E, A, planes)
        lam_used, path = self.lam, []
        for lam_next in sorted({float(v) for v in self.lam_path if v > self.lam}):
            E_n, A_n, _, it_n, rel_n, _ = minvol_refine(X, E, A, lam=lam_next, delta=self.delta,
                                                        max_iter=self.max_iter, inner=self.inner, tol=self.tol,
                                                        device=self.device, lam_scale=lam_scale)
            if rel_n >= self.tol:
                warnings.warn(f"mvnmf: the run at volume weight {lam_next:g} stopped after {it_n} iterations "
                              f"with relative objective change {rel_n:.2e} > tol={self.tol:g}; raise max_iter",
                              ConvergenceWarning, stacklevel=3)
            r_n = float(simplex_fit(X, E_n[None], A_n[None], moments)[1][0])
            t_n = pixel_misfit_tail(E_n, A_n, planes)
            path.append((lam_next, r_n, t_n))
            if r_n > self.discrepancy or t_n > self.tail_growth * tail0:
                break
            E, A, lam_used = E_n, A_n, lam_next
        return E, A, lam_used, tail0, path


#: the extractor each start uses: the registry's classes; ATGP searches the raw spectra here
#: (``subspace=False``), as mvnmf's ATGP start always did
_STARTS = {"vca": VCA(), "nfindr": NFINDR(), "atgp": ATGP(subspace=False)}


def _initial_endmembers(X: np.ndarray, p: int, inits: list[str], restarts: int,
                        rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Distinct pure-pixel extractions from ``X (N, B)``: names ``"nfindr#0"``... and ``E0 (M, p, B)``.

    Each of ``inits`` runs ``restarts`` times with fresh random draws (ATGP, deterministic,
    once); an extraction that picks the same pixels as an earlier one is dropped.
    """
    names: list[str] = []
    found: list[np.ndarray] = []
    seen: set[tuple[int, ...]] = set()
    for r in range(restarts):
        for name in inits:
            if name == "atgp" and r > 0:
                continue
            seed = 0 if name == "atgp" else rng.integers(2**31)
            with warnings.catch_warnings():
                # a start only has to be a simplex inside the data: one that stopped at its
                # sweep limit is iterated on like any other, and a user who asked for mvnmf
                # (or auto) would otherwise read a warning about a method they never chose
                warnings.simplefilter("ignore", ConvergenceWarning)
                idx, E = _STARTS[name].extract(X, p, np.random.default_rng(seed))
            key = tuple(sorted(int(i) for i in np.ravel(idx)))
            if key in seen:
                continue
            seen.add(key)
            names.append(f"{name}#{r}")
            found.append(E)
    return names, np.stack(found)


def simplex_fit(X: np.ndarray, E: np.ndarray, A: np.ndarray,
                moments: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Volume and data misfit of candidate factorisations ``X (N, B) ~ A[m] @ E[m]``.

    ``E (M, p, B)``, ``A (M, N, p)``; ``moments``: ``second_moments(X)`` when the caller has
    them (a pass over every pixel). Returns float64 arrays ``(M,)``:

    - ``log_volume``: log of the simplex volume (up to a constant) of the endmembers projected
      on the ``p - 1`` leading principal axes of the centred pixels (the plane the data span;
      off-plane noise does not inflate it);
    - ``excess_residual``: mean squared residual per pixel beyond the best ``(p - 1)``-dim
      affine fit, in units of the noise energy per band (the residual of that fit divided by
      the ``B - p + 1`` dimensions it leaves); about 0 when the simplex holds the data.
    """
    n, bands = X.shape
    p = E.shape[1]
    mu = X.mean(axis=0, dtype=np.float64)
    G, C = second_moments(X) if moments is None else moments
    w, V = np.linalg.eigh(C)
    w, V = w[::-1], V[:, ::-1]
    floor, noise = _noise_floor(w, p, bands)
    Vp = V[:, :p - 1]
    E = E.astype(np.float64)
    A = A.astype(np.float64)
    # ||X - A E||^2 = tr(X^T X) - 2 <A^T X, E> + <A^T A, E E^T>, with A^T X summed over row chunks
    AtX = np.zeros((len(E), p, bands))
    step = max(1, 2**22 // max(bands, 1))
    for i in range(0, n, step):
        AtX += A[:, i:i + step].transpose(0, 2, 1) @ X[i:i + step].astype(np.float64)
    volume = np.empty(len(E))
    residual = np.empty(len(E))
    for m in range(len(E)):
        Ez = (E[m] - mu) @ Vp
        D = Ez[1:] - Ez[0]
        volume[m] = 0.5 * np.linalg.slogdet(D @ D.T)[1]
        sq = n * np.trace(G) - 2 * np.sum(AtX[m] * E[m]) + np.sum((A[m].T @ A[m]) * (E[m] @ E[m].T))
        residual[m] = (sq / n - floor) / noise
    return volume, residual


def _noise_floor(w: np.ndarray, p: int, bands: int) -> tuple[float, float]:
    """``(floor, noise per band)`` from the centred covariance's eigenvalues ``w`` (descending):
    the energy beyond the ``p - 1`` leading axes, and that per remaining dimension."""
    floor = max(float(w[p - 1:].sum()), 1e-30)
    return floor, floor / max(bands - p + 1, 1)


def _leading_planes(X: np.ndarray, p: int, moments: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[np.ndarray, float, np.ndarray]:
    """The ``p`` leading uncentred axes ``U (B, p)`` of ``X (N, B)``, the noise energy per band
    (`_noise_floor`) and the pixels' coordinates on those axes ``X U (N, p)`` (one pass over the
    pixels, shared by every `pixel_misfit_tail`); ``moments`` as in `simplex_fit`."""
    G, C = second_moments(X) if moments is None else moments
    _, V = np.linalg.eigh(G)
    U = np.ascontiguousarray(V[:, ::-1][:, :p])
    return U, _noise_floor(np.linalg.eigvalsh(C)[::-1], p, X.shape[1])[1], matmul_rows(X, U)


def pixel_misfit_tail(E: np.ndarray, A: np.ndarray, planes: tuple[np.ndarray, float, np.ndarray],
                      q: float = 0.99) -> float:
    """The ``q`` quantile over pixels of ``||(x - a E) U||^2 / noise``: each pixel's misfit
    within the ``p`` leading axes ``U`` of the data (``planes`` from `_leading_planes`), in
    units of the noise energy per band.

    Inside the right simplex the abundances absorb all but one of those ``p`` dimensions of
    the noise, so the misfit is about one unit per pixel (chi-square, one degree of freedom);
    pixels the noise carries outside add their distance. ``E (p, B)``, ``A (N, p)``.
    """
    U, noise, XU = planes
    R = XU - np.asarray(A, np.float64) @ (np.asarray(E, np.float64) @ U)
    return float(np.quantile(np.einsum("np,np->n", R, R), q) / noise)


def select_simplex(volume: np.ndarray, residual: np.ndarray, *, factor: float = 1.5, margin: float = 0.25) -> int:
    """Index of the smallest simplex among those that fit the data nearly as well as the best.

    Candidates have ``residual <= factor * min(residual) + margin`` (residuals in noise units,
    see `simplex_fit`); the minimum-volume principle then picks the smallest of them. A
    simplex too small to hold the data is excluded by its residual, one larger than needed
    loses on volume.
    """
    ok = np.flatnonzero(residual <= factor * max(float(residual.min()), 0.0) + margin)
    return int(ok[np.argmin(volume[ok])])


@torch.no_grad()
def minvol_refine(X: np.ndarray, E0: np.ndarray, A0: np.ndarray, *, lam: float, delta: float, max_iter: int,
                  inner: int, tol: float, device: str = "cpu", lam_scale: float | None = None):
    """Minimum-volume NMF iterations on ``X (N, B)`` from ``E0 (M, p, B)``, ``A0 (M, N, p)``.

    The ``M`` initialisations run as one batch with the same absolute weights (computed from
    the first); ``(p, B)`` / ``(N, p)`` inputs are one initialisation and give unbatched
    outputs. ``lam`` and ``delta`` are relative (module docstring); each initialisation stops
    once its relative objective change is below ``tol``. Returns float64 numpy ``E``, ``A``,
    the objective history ``(iterations + 1, M)`` (``(iterations + 1,)`` unbatched), the
    iteration count, the last relative change per initialisation (a float unbatched) and the
    absolute volume weight. ``lam_scale`` replaces the relative scaling of ``lam`` (the
    absolute weight is then ``lam * lam_scale``), so that a run warm-started from an earlier
    result keeps that run's units.
    """
    single = np.ndim(E0) == 2
    if single:
        E0, A0 = np.asarray(E0)[None], np.asarray(A0)[None]
    M, p, _ = E0.shape
    dev = torch.device(device)
    G, _ = second_moments(X)  # X^T X / N, without a float64 copy of the pixels
    _, V = np.linalg.eigh(G)
    U_np = np.ascontiguousarray(V[:, ::-1][:, :p])
    U = torch.from_numpy(U_np).to(dev)
    Z = torch.from_numpy(matmul_rows(X, U_np)).to(dev)  # (N, p) float64 coordinates on the p leading axes
    outside = X.shape[0] * float(np.trace(G)) - float((Z * Z).sum())  # energy off those axes: a constant
    zz = float((Z * Z).sum())
    E = torch.from_numpy(np.asarray(E0, np.float64)).to(dev)
    A = torch.from_numpy(np.asarray(A0, np.float64)).to(dev)
    eye = torch.eye(p, dtype=E.dtype, device=dev)
    delta = delta * float((E[0] * E[0]).sum()) / p

    def fit(A, E):
        """0.5 ||X - A E||^2 with X replaced by its projection, plus the constant."""
        cross = (A * (Z @ (E @ U).transpose(1, 2))).sum((1, 2))
        quad = ((A.transpose(1, 2) @ A) * (E @ E.transpose(1, 2))).sum((1, 2))
        return 0.5 * (outside + zz - 2 * cross + quad)

    def logdet(E):
        return torch.logdet(E @ E.transpose(1, 2) + delta * eye)

    if lam_scale is None:
        fit0, ld0 = float(fit(A, E)[0]), abs(float(logdet(E)[0]))
        lam_scale = max(fit0, 1e-30) / max(ld0, 1e-12)
    lam = lam * lam_scale

    def objective(A, E):
        return fit(A, E) + 0.5 * lam * logdet(E)

    prev = objective(A, E)
    history = [prev.cpu().numpy()]
    rel = torch.full((M,), float("inf"), dtype=E.dtype, device=dev)
    active = torch.ones(M, dtype=torch.bool, device=dev)
    it = 0
    while it < max_iter and bool(active.any()):
        it += 1
        # E step: quadratic majoriser, projected fast gradient (E >= 0)
        P = torch.linalg.inv(E @ E.transpose(1, 2) + delta * eye)
        H = A.transpose(1, 2) @ A + lam * P
        C = (A.transpose(1, 2) @ Z) @ U.T
        L = torch.linalg.eigvalsh(H)[:, -1, None, None]
        E_new = _fast_projected(E, lambda V, H=H, C=C: H @ V - C, L, inner, lambda V: V.clamp_min(0))
        # A step: projected fast gradient on the simplex
        Q = E_new @ E_new.transpose(1, 2)
        C = Z @ (E_new @ U).transpose(1, 2)
        L = torch.linalg.eigvalsh(Q)[:, -1, None, None]
        A_new = _fast_projected(A, lambda V, Q=Q, C=C: V @ Q - C, L, inner,
                                lambda V: project_simplex_torch(V, dim=-1))
        keep = active[:, None, None]  # finished initialisations stay where they stopped
        E = torch.where(keep, E_new, E)
        A = torch.where(keep, A_new, A)
        cur = objective(A, E)
        step = (prev - cur).abs() / cur.abs().clamp_min(1e-30)
        rel = torch.where(active, step, rel)
        active = active & (step >= tol)
        prev = cur
        history.append(cur.cpu().numpy())
    E_out, A_out = E.cpu().numpy(), A.cpu().numpy()
    hist, rel_out = np.asarray(history), rel.cpu().numpy()
    if single:
        return E_out[0], A_out[0], hist[:, 0], it, float(rel_out[0]), lam
    return E_out, A_out, hist, it, rel_out, lam


def _fast_projected(V, grad, L, steps, proj):
    """``steps`` accelerated projected-gradient steps with step ``1/L`` from ``V``."""
    Wk = V
    prev = V
    t = 1.0
    for _ in range(steps):
        cur = proj(Wk - grad(Wk) / L)
        tn = (1 + (1 + 4 * t * t) ** 0.5) / 2
        Wk = cur + ((t - 1) / tn) * (cur - prev)
        prev, t = cur, tn
    return prev
