"""The contract every blind unmixing method follows (scikit-learn style).

A method is one class. Parameters are stored in ``__init__`` (not validated there) and
declared in ``_parameter_constraints`` (see `unmixgen.unmix.params`); ``fit(scene)``
validates them, learns from the scene's valid pixels and sets

- ``endmembers_``  float32 ``(p, bands)``, rows are spectra, in the scene's units;
- ``abundances_``  float32 ``(rows, cols, p)``, on the simplex where the method says so,
  NaN at invalid pixels;
- ``n_endmembers_`` the p used (estimated when ``n_endmembers="auto"``);
- ``info_``        a JSON-ready dict for run.json (convergence record, timings, rank
  estimate, warnings).

``transform(scene_or_pixels)`` applies the fitted endmembers to another scene, tile or
pixel array with the method's inverter (FCLS unless the method says otherwise).

Subclasses implement ``_fit_pixels(Y, p, rng) -> (E, A, info)`` on the valid pixels
``Y (N, bands)`` float32 of the good bands, and may override ``_transform_method`` /
``_transform_finish`` to change how `transform` inverts.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError, ParameterError, note, noting_convergence
from ..labelled import bands_last, variable_of
from ..scene import Scene, as_scene, check_bands_last
from .inversion import DEFAULT_METHOD as DEFAULT_INVERTER
from .inversion import invert_scene, invert_weighted
from .params import Constraint, EstimatorParams, Interval, Options

#: ``n_endmembers="auto"`` estimates above this get a warning (rarely that many materials)
AUTO_P_WARN = 20


class NotFittedError(InputError, AttributeError):
    """`transform` (or a fitted attribute) was asked for before `fit`: an `InputError` (one line),
    and an AttributeError as scikit-learn's is."""


class BlindUnmixer(EstimatorParams):
    """Base class: see the module docstring.

    Parameters
    ----------
    n_endmembers : int >= 2 or "auto"
        Number of endmembers p; "auto" estimates it from noise-whitened eigenvalues
        (`unmixgen.unmix.spatial_rank`).
    seed : int >= 0
        Seeds every random choice of the method; equal seeds give equal results.

    After `fit`, ``rank_estimate_`` is the `SpatialRankEstimate` that set p with "auto" (its
    ``stripes``: the scene's stripe measure), None for a given p.
    """

    #: the registry name (`unmixgen.unmix.registry.METHODS`), recorded in ``info_["method"]``
    name: ClassVar[str] = "base"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "n_endmembers": [Interval(integer=True, low=2), Options(("auto",))],
        "seed": [Interval(integer=True, low=0)],
    }

    def __init__(self, n_endmembers: int | str = "auto", *, seed: int = 0):
        self.n_endmembers = n_endmembers
        self.seed = seed

    # -- subclass hooks ----------------------------------------------------------------
    def _fit_pixels(self, Y: np.ndarray, p: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Learn ``E (p, B)`` and ``A (N, p)`` from ``Y (N, B)``; return them and an info dict."""
        raise NotImplementedError

    def _fitted_on(self, scene: Scene) -> None:
        """Last step of `fit`, with the fitted `Scene` (e.g. to map per-pixel results); nothing here."""

    def _transform_method(self) -> str:
        """The inverter (a key of `unmixgen.unmix.inversion.METHODS`) `transform` uses."""
        return DEFAULT_INVERTER

    def _transform_finish(self, A: np.ndarray) -> np.ndarray:
        """Last step of `transform` on the inverter's abundances ``(..., p)``; identity here."""
        return A

    # -- public API --------------------------------------------------------------------
    def fit(self, scene: Scene | np.ndarray) -> BlindUnmixer:
        """Learn endmembers and abundances from a `Scene` (a ``(rows, cols, bands)`` array, or an xarray
        DataArray laid out by its dim names: `unmixgen.scene.as_scene`).

        Raises `ParameterError` for a parameter outside its constraints and `InputError`
        for a scene that cannot be unmixed into ``n_endmembers`` (constant, too few valid
        pixels or bands, rank too low). Returns self.
        """
        self.validate_params()
        scene = as_scene(scene)
        t0 = time.perf_counter()
        scene.require_valid()
        good = scene.good_bands
        Y_all = scene.valid_pixels()
        Y = Y_all[:, good] if not good.all() else Y_all
        info: dict[str, Any] = {"method": self.name, "seed": self.seed, "warnings": [], "timings_s": {}}
        p = self._resolve_p(Y, info, scene, good)
        rank = affine_rank(Y)
        if self.n_endmembers == "auto":
            p = _cap_auto_p(rank, p, info)
        check_rank(Y, p, rank=rank)
        rng = np.random.default_rng(self.seed)
        t1 = time.perf_counter()
        with noting_convergence(info["warnings"]):
            E, A, fit_info = self._fit_pixels(np.ascontiguousarray(Y, dtype=np.float32), p, rng)
        info["timings_s"]["fit"] = time.perf_counter() - t1
        info.update(fit_info)
        E = np.asarray(E, np.float32)
        if not good.all():
            # from the pixels the fit used: an outlier it left out (`AutoUnmixer`) would pull the bands
            used = getattr(self, "_flagged", None)
            A_used, Y_used = ((A, Y_all) if used is None else (np.asarray(A)[~used], Y_all[~used]))
            E = fill_bad_bands(E, np.asarray(A_used, np.float32), Y_used, good)
        w = getattr(self, "band_weights_", None)
        if w is not None and w.size != good.size:  # weights of the good bands: a bad band weighs 1
            full = np.ones(good.size, np.float32)
            full[good] = w
            self.band_weights_ = full
        self.endmembers_ = E
        self.abundances_ = scene.to_image(np.asarray(A, np.float32))
        self.n_endmembers_ = p
        self._fitted_on(scene)
        info["timings_s"]["total"] = time.perf_counter() - t0
        self.info_ = info
        return self

    def fit_transform(self, scene: Scene | np.ndarray) -> np.ndarray:
        """`fit`, then return ``abundances_`` (the fit's own abundances, not a re-inversion)."""
        return self.fit(scene).abundances_

    def transform(self, X: Scene | np.ndarray) -> np.ndarray:
        """Abundances of other pixels under the fitted endmembers ``endmembers_``.

        Parameters
        ----------
        X : Scene, array (rows, cols, bands) or array (N, bands)
            A scene or tile (invalid pixels are skipped; only the scene's good bands are
            used; an xarray DataArray is laid out by its dim names, `unmixgen.scene.as_scene`)
            or a pixel matrix (every band is used; NaN/Inf rows give NaN). Bands are
            those of the fitted scene, in its units.

        Returns
        -------
        float32 ``(rows, cols, p)`` with NaN at invalid pixels, or ``(N, p)`` for a pixel
        matrix. Inverted with ``_transform_method()`` (FCLS unless the method says
        otherwise), so for pixels of the fitted scene the result agrees with
        ``abundances_`` exactly when the method's own abundances are that inversion.
        """
        E = self._fitted("endmembers_")
        method = self._transform_method()
        w = getattr(self, "band_weights_", None)  # set by methods that fit weighted pixels
        check_bands_last("X", X, E.shape[1], "endmembers_'s bands")
        X = variable_of(X, "X")  # a Dataset's one variable with a spectral dim
        if isinstance(X, Scene) or np.ndim(X) == 3:
            X = as_scene(X, "X")
            _require_defined(E, X.good_bands)
            A = invert_scene(X, E, method, band_weights=w)
        elif np.ndim(X) == 2:
            X = bands_last(X, 1, "X")  # a DataArray with its spectral dim last
            _require_defined(E, np.ones(E.shape[1], bool))
            if w is not None and np.shape(X)[1] != w.size:
                w = None  # the inverter names the band mismatch
            A = invert_weighted(X, E if w is None else E * w, method, w)
        else:
            raise InputError(f"X has shape {np.shape(X)}; expected a Scene, (rows, cols, bands) or (N, bands)")
        return self._transform_finish(A)

    # -- helpers ---------------------------------------------------------------------
    def _fitted(self, attribute: str) -> Any:
        try:
            return getattr(self, attribute)
        except AttributeError:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(scene) first") from None

    def _resolve_p(self, Y: np.ndarray, info: dict[str, Any], scene: Scene | None = None,
                   good: np.ndarray | None = None) -> int:
        n, bands = Y.shape
        p = self.n_endmembers
        self.rank_estimate_ = None
        if p == "auto":
            from .spatial_rank import scene_rank

            try:
                est = scene_rank(scene, good)  # a pushbroom's stripes taken into the noise
            except InputError as exc:  # too small or too sparse for the noise estimate
                raise ParameterError("n_endmembers", p, f"cannot estimate the number of endmembers ({exc}); "
                                     "expected a number of endmembers for this scene") from None
            info["rank_estimate"] = est.as_dict()
            self.rank_estimate_ = est
            p = est.n_endmembers
            if p > AUTO_P_WARN:
                warnings.warn(
                    f"n_endmembers='auto': estimated {p} endmembers; give n_endmembers as a number "
                    "if that is too many",
                    UserWarning, stacklevel=3,
                )
                info["warnings"].append(f"estimated {p} endmembers (large; check n_endmembers)")
        p = int(p)
        if p > bands:
            raise ParameterError("n_endmembers", p, f"exceeds the scene's {bands} (good) bands; expected <= {bands}")
        if p > n:
            raise ParameterError("n_endmembers", p, f"exceeds the scene's {n} valid pixels; expected <= {n}")
        return p


def _require_defined(E: np.ndarray, used: np.ndarray) -> None:
    """`InputError` when the fitted endmembers ``E (p, bands)`` are NaN on a band ``used``
    (bool per band) would take: a bad band of the fitted scene with no finite value."""
    if E.shape[1] != used.size:
        return  # the inverter names the band mismatch
    undefined = np.flatnonzero(used & ~np.isfinite(E).all(axis=0))
    if undefined.size:
        which = ", ".join(str(i + 1) for i in undefined[:5]) + (" ..." if undefined.size > 5 else "")
        raise InputError(f"endmembers_ are undefined (NaN) on band{'s' if undefined.size > 1 else ''} {which}, bad "
                         "bands of the fitted scene with no value; expected a Scene that marks them bad "
                         "(good_bands), or pixels without them")


def affine_rank(Y: np.ndarray, sample: int = 20000) -> int:
    """Affine rank of the pixels ``Y (N, B)``: the data span ``rank + 1`` affinely independent
    spectra (0 for a constant scene). Singular values below 1e-6 of the data scale count as 0;
    at most ``sample`` pixels (a fixed random subset) are used."""
    rng = np.random.default_rng(0)
    Ys = Y if Y.shape[0] <= sample else Y[rng.choice(Y.shape[0], sample, replace=False)]
    Yc = Ys.astype(np.float64) - Ys.mean(axis=0, dtype=np.float64)
    # Singular values from the (bands x bands) Gram matrix: far cheaper than an SVD of Yc.
    s = np.sqrt(np.clip(np.linalg.eigvalsh(Yc.T @ Yc), 0.0, None))
    scale = max(float(np.abs(Ys).max()), 1e-30) * np.sqrt(Yc.shape[0])
    return int((s > 1e-6 * scale).sum())


def _cap_auto_p(rank: int, p: int, info: dict[str, Any]) -> int:
    """An ``n_endmembers="auto"`` estimate ``p``, at most the ``rank + 1`` affinely independent
    spectra the pixels span (`affine_rank`; a noise-free scene can fool the noise estimate);
    the cap is noted in ``info["warnings"]``."""
    span = rank + 1
    if span == 1 or p <= span:
        return p  # a constant scene is refused by check_rank
    note(info["warnings"], f"n_endmembers='auto': estimated {p} endmembers, but the scene's data span only "
                           f"{span} affinely independent spectra; using {span}", stacklevel=3)
    return span


def check_rank(Y: np.ndarray, p: int, sample: int = 20000, rank: int | None = None) -> None:
    """Refuse constant or rank-deficient data: p endmembers need affine rank >= p - 1
    (``rank``: `affine_rank` of ``Y`` when the caller has it)."""
    rank = affine_rank(Y, sample) if rank is None else rank
    if rank == 0:
        raise InputError("scene is constant (all valid pixels have the same spectrum); nothing to unmix")
    if rank < p - 1:
        raise ParameterError(
            "n_endmembers", p,
            f"expected <= {rank + 1}: the scene's data span only {rank + 1} affinely independent spectra",
        )


def fit_sample(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted indices of a random sample of ``limit`` of ``n`` pixels to fit to, or None (all of
    them) when ``limit`` is None or not below ``n`` (then ``rng`` is not drawn from)."""
    if limit is None or n <= limit:
        return None
    return np.sort(rng.choice(n, limit, replace=False))


def fill_bad_bands(E_good: np.ndarray, A: np.ndarray, Y_all: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Endmembers over all bands: good bands from the method, bad bands by least squares on A
    over the pixels where the band is finite (a bad band may hold NaN/Inf anywhere; NaN for a
    band finite nowhere)."""
    E = np.zeros((E_good.shape[0], good.size), np.float32)
    E[:, good] = E_good
    A64 = A.astype(np.float64)
    bad = np.flatnonzero(~good)
    finite = np.isfinite(Y_all[:, bad]).all(axis=0)
    if finite.any():  # bands finite at every pixel: one solve
        cols = bad[finite]
        E[:, cols] = np.linalg.lstsq(A64, Y_all[:, cols].astype(np.float64), rcond=None)[0]
    for b in bad[~finite]:
        y = Y_all[:, b].astype(np.float64)
        ok = np.isfinite(y)
        E[:, b] = np.linalg.lstsq(A64[ok], y[ok], rcond=None)[0] if ok.any() else np.nan
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
