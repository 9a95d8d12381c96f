"""The contract every blind unmixing method follows (scikit-learn style).

A method is one class. Parameters are stored in ``__init__`` (not validated there);
``fit(scene)`` validates, learns from the scene's valid pixels and sets

- ``endmembers_``  float32 ``(p, bands)``, rows are spectra, in the scene's units;
- ``abundances_``  float32 ``(rows, cols, p)``, on the simplex where the method says so,
  NaN at invalid pixels;
- ``n_endmembers_`` the p used (estimated when ``n_endmembers="auto"``);
- ``info_``        a JSON-ready dict for run.json (convergence record, timings, rank
  estimate, warnings).

Subclasses implement ``_fit_pixels(Y, p, rng) -> (E, A, info)`` on the valid pixels
``Y`` (N, bands) float32 of the good bands.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, ClassVar

import numpy as np

from ..errors import ConvergenceWarning, InputError
from ..scene import Scene

#: ``n_endmembers="auto"`` estimates above this get a warning (rarely that many materials)
AUTO_P_WARN = 20


class BlindUnmixer:
    """Base class: see the module docstring."""

    name: ClassVar[str] = "base"
    #: True when abundances are non-negative and sum to one per pixel
    simplex: ClassVar[bool] = True

    def __init__(self, n_endmembers: int | str = "auto", *, seed: int = 0):
        self.n_endmembers = n_endmembers
        self.seed = seed

    # -- subclass hook ---------------------------------------------------------------
    def _fit_pixels(self, Y: np.ndarray, p: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Learn ``E (p, B)`` and ``A (N, p)`` from ``Y (N, B)``; return them and an info dict."""
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------
    def fit(self, scene: Scene) -> BlindUnmixer:
        t0 = time.perf_counter()
        scene.require_valid()
        good = scene.good_bands
        Y_all = scene.valid_pixels()
        Y = Y_all[:, good] if not good.all() else Y_all
        info: dict[str, Any] = {"method": self.name, "seed": self.seed, "warnings": [], "timings_s": {}}
        p = self._resolve_p(Y, info)
        check_rank(Y, p)
        rng = np.random.default_rng(self.seed)
        t1 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            E, A, fit_info = self._fit_pixels(np.ascontiguousarray(Y, dtype=np.float32), p, rng)
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                info["warnings"].append(str(w.message))
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        info["timings_s"]["fit"] = time.perf_counter() - t1
        info.update(fit_info)
        E = np.asarray(E, np.float32)
        if not good.all():
            E = fill_bad_bands(E, np.asarray(A, np.float32), Y_all, good)
        self.endmembers_ = E
        self.abundances_ = scene.to_image(np.asarray(A, np.float32))
        self.n_endmembers_ = p
        info["timings_s"]["total"] = time.perf_counter() - t0
        self.info_ = info
        return self

    def fit_transform(self, scene: Scene) -> np.ndarray:
        return self.fit(scene).abundances_

    # -- helpers ---------------------------------------------------------------------
    def _resolve_p(self, Y: np.ndarray, info: dict[str, Any]) -> int:
        n, bands = Y.shape
        p = self.n_endmembers
        if isinstance(p, str):
            if p != "auto":
                raise InputError(f"--endmembers: {p!r} is not a number; expected an integer >= 2 or 'auto'")
            from .rank import hysime

            est = hysime(Y)
            info["rank_estimate"] = est.as_dict()
            p = max(2, int(est.n_endmembers))
            if p > AUTO_P_WARN:
                # HySime counts band-correlated noise (striping, calibration residue) as
                # signal, so real scenes can come out far above their material count.
                warnings.warn(
                    f"--endmembers auto: HySime estimated {p} endmembers; band-correlated noise "
                    "inflates this estimate on real scenes; pass --endmembers N if it is too many",
                    UserWarning, stacklevel=3,
                )
                info["warnings"].append(f"HySime estimated {p} endmembers (large; check --endmembers)")
        p = int(p)
        if p < 2:
            raise InputError(f"--endmembers: {p} is too few; expected at least 2")
        if p > bands:
            raise InputError(f"--endmembers: {p} exceeds the scene's {bands} (good) bands")
        if p > n:
            raise InputError(f"--endmembers: {p} exceeds the scene's {n} valid pixels")
        return p


def check_rank(Y: np.ndarray, p: int, sample: int = 20000) -> None:
    """Refuse constant or rank-deficient data: p endmembers need affine rank >= p - 1."""
    rng = np.random.default_rng(0)
    Ys = Y if Y.shape[0] <= sample else Y[rng.choice(Y.shape[0], sample, replace=False)]
    Yc = Ys.astype(np.float64) - Ys.mean(axis=0, dtype=np.float64)
    # Singular values from the (bands x bands) Gram matrix: ~10x cheaper than an SVD of Yc.
    s = np.sqrt(np.clip(np.linalg.eigvalsh(Yc.T @ Yc), 0.0, None))
    scale = max(float(np.abs(Ys).max()), 1e-30) * np.sqrt(Yc.shape[0])
    rank = int((s > 1e-6 * scale).sum())
    if rank == 0:
        raise InputError("scene is constant (all valid pixels have the same spectrum); nothing to unmix")
    if rank < p - 1:
        raise InputError(
            f"scene data span only {rank + 1} affinely independent spectra; "
            f"cannot unmix into {p} endmembers (expected --endmembers <= {rank + 1})"
        )


def fill_bad_bands(E_good: np.ndarray, A: np.ndarray, Y_all: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Endmembers over all bands: good bands from the method, bad bands by least squares on A."""
    E = np.zeros((E_good.shape[0], good.size), np.float32)
    E[:, good] = E_good
    E[:, ~good] = np.linalg.lstsq(A.astype(np.float64), Y_all[:, ~good].astype(np.float64), rcond=None)[0]
    return E


def thin_history(history: np.ndarray, n: int = 50) -> list[float]:
    """At most ``n`` evenly spaced values of a 1-D objective history, last value included.

    For the convergence record in ``info_`` (JSON-ready floats).
    """
    h = np.asarray(history, np.float64).ravel()
    if h.size <= n:
        return [float(v) for v in h]
    sel = np.unique(np.linspace(0, h.size - 1, n).round().astype(int))
    return [float(v) for v in h[sel]]
