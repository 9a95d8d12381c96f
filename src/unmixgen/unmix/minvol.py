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

``lam`` is relative: the actual weight is ``lam * ||Y - A0 E0||^2 / |logdet(E0 E0^T + delta I)|``
at the VCA + FCLS initialisation, so it does not depend on the data's units. ``delta`` is
relative to the mean squared endmember norm at initialisation.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import ConvergenceWarning
from ..simplex import project_simplex_torch as _project_simplex
from .base import BlindUnmixer, thin_history
from .extraction import vca
from .inversion import fcls
from .params import Constraint, InstanceOf, Interval, Options
from .preprocessing import normalize_brightness


class MinVolNMF(BlindUnmixer):
    """Minimum-volume NMF initialised by VCA + FCLS ("mvnmf").

    Parameters
    ----------
    n_endmembers : int >= 2 or "auto"
    seed : int >= 0
        Seeds the VCA initialisation.
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
        Converged when the relative objective change over one outer iteration is below it.
    device : str
    """

    name = "mvnmf"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **BlindUnmixer._parameter_constraints,
        "lam": [Interval(low=0)],
        "delta": [Interval(low=0, low_open=True)],
        "max_iter": [Interval(integer=True, low=1)],
        "inner": [Interval(integer=True, low=1)],
        "brightness": [Options(("none", "l2", "sum"))],
        "tol": [Interval(low=0, low_open=True)],
        "device": [InstanceOf(str, "a torch device name ('cpu', 'cuda')")],
    }

    def __init__(self, n_endmembers: int | str = "auto", *, seed: int = 0, lam: float = 0.05,
                 delta: float = 0.1, max_iter: int = 500, inner: int = 10, brightness: str = "none",
                 tol: float = 1e-4, device: str = "cpu"):
        super().__init__(n_endmembers, seed=seed)
        self.lam = lam
        self.delta = delta
        self.max_iter = max_iter
        self.inner = inner
        self.brightness = brightness
        self.tol = tol
        self.device = device

    def _fit_pixels(self, Y: np.ndarray, p: int, rng: np.random.Generator):
        X = normalize_brightness(Y, 0.5, self.brightness)
        _, E0 = vca(X, p, seed=rng.integers(2**31))
        A0 = fcls(X, E0)
        E, A, history, it, rel, lam = minvol_refine(
            X, E0, A0, lam=self.lam, delta=self.delta, max_iter=self.max_iter, inner=self.inner, tol=self.tol,
            device=self.device,
        )
        conv = rel < self.tol
        if not conv:
            warnings.warn(f"mvnmf: stopped after {it} iterations with relative objective change "
                          f"{rel:.2e} > tol={self.tol:g}; raise max_iter", ConvergenceWarning, stacklevel=2)
        E_np = E.astype(np.float32)
        A_np = A.astype(np.float32)
        if self.brightness != "none":
            # endmembers back in the data's units: least squares of the raw pixels on A
            E_np = np.linalg.lstsq(A_np.astype(np.float64), Y.astype(np.float64), rcond=None)[0]
            E_np = np.clip(E_np, 0, None).astype(np.float32)
        info: dict[str, Any] = {
            "convergence": {"iterations": it, "objective_history": thin_history(history), "converged": bool(conv),
                            "restarts": 1, "selected_restart": 0},
            "params": {"lam": self.lam, "delta": self.delta, "lam_absolute": lam, "max_iter": self.max_iter,
                       "inner": self.inner, "brightness": self.brightness, "tol": self.tol},
        }
        return E_np, A_np, info


def minvol_refine(X: np.ndarray, E0: np.ndarray, A0: np.ndarray, *, lam: float, delta: float, max_iter: int,
                  inner: int, tol: float, device: str = "cpu"):
    """Minimum-volume NMF iterations on ``X (N, B)`` from ``E0 (p, B)``, ``A0 (N, p)``.

    ``lam`` and ``delta`` are relative (module docstring). Returns float64 numpy ``E``,
    ``A``, the objective history, the iteration count, the last relative change and the
    absolute volume weight.
    """
    p = E0.shape[0]
    dev = torch.device(device)
    Xt = torch.from_numpy(np.ascontiguousarray(X, np.float32)).to(dev, torch.float64)
    E = torch.from_numpy(np.asarray(E0, np.float64)).to(dev)
    A = torch.from_numpy(np.asarray(A0, np.float64)).to(dev)
    eye = torch.eye(p, dtype=E.dtype, device=dev)
    delta = delta * float((E * E).sum()) / p
    fit0 = 0.5 * float(((Xt - A @ E) ** 2).sum())
    ld0 = abs(float(torch.logdet(E @ E.T + delta * eye)))
    lam = lam * max(fit0, 1e-30) / max(ld0, 1e-12)

    def objective(A, E):
        return 0.5 * float(((Xt - A @ E) ** 2).sum()) + 0.5 * lam * float(torch.logdet(E @ E.T + delta * eye))

    history = [objective(A, E)]
    rel = float("inf")
    it = 0
    while it < max_iter:
        it += 1
        # E step: quadratic majoriser, projected fast gradient (E >= 0)
        P = torch.linalg.inv(E @ E.T + delta * eye)
        AtA = A.T @ A
        AtX = A.T @ Xt
        H = AtA + lam * P
        L = float(torch.linalg.eigvalsh(H)[-1])
        E = _fast_projected(E, lambda V, H=H, C=AtX: H @ V - C, L, inner, lambda V: V.clamp_min(0))
        # A step: projected fast gradient on the simplex
        EEt = E @ E.T
        XEt = Xt @ E.T
        L = float(torch.linalg.eigvalsh(EEt)[-1])
        A = _fast_projected(A, lambda V, Q=EEt, C=XEt: V @ Q - C, L, inner, _project_simplex)
        history.append(objective(A, E))
        rel = abs(history[-2] - history[-1]) / max(abs(history[-1]), 1e-30)
        if rel < tol:
            break
    return E.cpu().numpy(), A.cpu().numpy(), history, it, rel, lam


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
