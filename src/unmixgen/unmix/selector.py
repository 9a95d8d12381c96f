"""The default blind method: choose between archetypal analysis and minimum-volume NMF
from the data ("auto").

The choice is made by one truth-free test, how much pixel brightness varies beyond what
linear mixing explains:

- Under plain linear mixing with sum-to-one abundances the pixels ``Y (N, B)`` lie on a
  ``(p - 1)``-dimensional affine subspace, so the residual of the best affine fit equals
  that of the best ``p``-dimensional linear fit up to one more noise dimension.
- Under the scaled model ``y = s * a @ E`` (illumination, topography, ELMM scaling) the
  scaling adds a ``p``-th direction. Its energy in units of one noise dimension is
  ``excess = (ratio - 1) * (B - p)`` with ``ratio`` = `preprocessing.brightness_ratio`
  (the linear residual divided by ``B - p`` is the noise energy per dimension); about 1
  when brightness follows the mixing.

Both assume noise of the same level in every band; real sensors' differs 10-50x between
bands. So with ``band_weights="noise"`` (the default) the test and `MinVolNMF` see the
pixels multiplied by ``1 / noise std`` per band (`rank.band_noise_weights`), where the noise
is white again, and the endmembers are divided back. Noise that is about white
(`rank.MIN_NOISE_SPREAD`) is not weighted: estimated weights within a few percent of flat
moved mvnmf by up to 3 points on the blind suite (``benchmarks/RESULTS.md``).

`ArchetypalAnalysis` is chosen where brightness varies, and there the mixture model's own
misfit (variability, pixels short of the vertices) often outweighs the noise; weighing by
noise alone moved its answers both ways. It fits the pixels as they are first; where the
noise is not white its residual from those archetypes measures the misfit, and the fit is
made again in bands weighted by ``1 / sqrt(noise^2 + (2 misfit)^2)``
(`rank.misfit_floored_weights`) unless those are about flat (Samson, Jasper Ridge): noise
weights where noise dominates, the unweighted answer where the misfit does.

When ``excess > brightness_excess`` the scene is unmixed by `ArchetypalAnalysis`
(brightness-normalised archetypes, ``n_restarts`` restarts), otherwise by `MinVolNMF`
(minimum volume from several pure-pixel starts: its simplex may reach beyond the data, so it
also fits scenes without pure pixels). Both run with their own defaults except
``n_restarts`` of `ArchetypalAnalysis`. The measurements behind the rule and its threshold are in
``benchmarks/RESULTS.md`` (``benchmarks/blind_suite.py``).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, ClassVar

import numpy as np

from .archetypal import ArchetypalAnalysis
from .base import BlindUnmixer, fit_sample
from .inversion import invert_weighted
from .minvol import FIT_PIXELS, MinVolNMF
from .outliers import gross_outliers
from .params import NONE, Constraint, InstanceOf, Interval, Options, TorchDevice
from .preprocessing import brightness_ratio, second_moments, weighted_moments
from .rank import band_noise_variances, misfit_floored_weights, weights_from_noise

__all__ = ["AutoUnmixer", "brightness_excess"]


def brightness_excess(Y: np.ndarray, p: int, weights: np.ndarray | None = None,
                      moments: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Energy of the brightness direction beyond linear mixing, in noise dimensions (>= 0).

    ``(brightness_ratio(Y, p) - 1) * (B - p)`` for pixels ``Y (N, B)``; about 1 under plain
    linear mixing with white noise, larger with per-pixel scaling. ``weights (B,)``: of the
    pixels ``Y * weights``; ``moments``: `preprocessing.second_moments` of ``Y``, when known.
    """
    return float((brightness_ratio(Y, p, weights, moments) - 1.0) * max(Y.shape[1] - p, 1))


RESIDUAL_PIXELS = 20_000
"""Pixels (a seeded sample) whose residual from the archetypes measures their misfit."""


def archetype_residual(Y: np.ndarray, E: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mean square residual per band ``(B,)`` float64 of pixels ``Y (N, B)`` (a seeded sample of
    `RESIDUAL_PIXELS`) from their non-negative least-squares fit on ``E (p, B)``: the scaled
    model's misfit (any brightness, no sum-to-one), noise included."""
    sample = fit_sample(len(Y), RESIDUAL_PIXELS, np.random.default_rng(seed))
    Ys = Y if sample is None else Y[sample]
    R = Ys - invert_weighted(Ys, E, "nnls") @ E
    return np.mean(np.square(R, dtype=np.float64), axis=0)


class AutoUnmixer(BlindUnmixer):
    """Archetypal analysis for scenes with brightness variation, minimum-volume NMF otherwise ("auto").

    Parameters
    ----------
    n_endmembers : int >= 2 or "auto"
    seed : int >= 0
        Passed to the chosen method (equal seeds give that method's result exactly).
    brightness_excess : float > 0
        Threshold on `brightness_excess` above which `ArchetypalAnalysis` is chosen.
    n_restarts : int >= 1
        Restarts of `ArchetypalAnalysis` when it is chosen (fewer than its own default,
        for speed).
    device : str
        Torch device of the chosen method.
    fit_pixels : int >= 1 or None
        Most pixels the chosen method fits its simplex or archetypes to, a random sample
        beyond it (`MinVolNMF.fit_pixels`, `ArchetypalAnalysis.fit_pixels`).
    band_weights : "noise" or None
        ``"noise"``: the brightness test and `MinVolNMF` weigh each band by ``1 / its
        estimated noise std`` when it differs between bands, `ArchetypalAnalysis` by its
        noise and misfit (module docstring); None: every band alike.
    screen_outliers : bool
        Leave the pixels no mixture of ``p`` materials comes near (saturated, glints, spikes;
        `outliers.gross_outliers`) out of the test and the fit; their abundances are then
        inverted on the fitted endmembers, as `transform` would. ``info_["outliers"]`` counts them.

    Attributes
    ----------
    chosen_ : the fitted `ArchetypalAnalysis` or `MinVolNMF`.
    band_weights_ : (bands,) float32 or None
        The weights the fit (and `transform`) used, one per band of the scene (1 on its bad
        bands); None: unweighted.
    outliers_ : (rows, cols) bool or None
        The pixels the fit left out (``screen_outliers``); None when it left none out.
    """

    name = "auto"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **BlindUnmixer._parameter_constraints,
        "brightness_excess": [Interval(low=0, low_open=True)],
        "n_restarts": [Interval(integer=True, low=1)],
        "device": [TorchDevice()],
        "fit_pixels": [NONE, Interval(integer=True, low=1)],
        "band_weights": [NONE, Options(("noise",))],
        "screen_outliers": [InstanceOf(bool, "True or False")],
    }

    def __init__(self, n_endmembers: int | str = "auto", *, seed: int = 0, brightness_excess: float = 2.0,
                 n_restarts: int = 8, device: str = "cpu", fit_pixels: int | None = FIT_PIXELS,
                 band_weights: str | None = "noise", screen_outliers: bool = True):
        super().__init__(n_endmembers, seed=seed)
        self.brightness_excess = brightness_excess
        self.n_restarts = n_restarts
        self.device = device
        self.fit_pixels = fit_pixels
        self.band_weights = band_weights
        self.screen_outliers = screen_outliers

    def _transform_method(self) -> str:
        return self._fitted("chosen_")._transform_method()

    def _transform_finish(self, A: np.ndarray) -> np.ndarray:
        return self._fitted("chosen_")._transform_finish(A)

    def _fitted_on(self, scene) -> None:
        flagged = self.__dict__.pop("_flagged", None)
        self.outliers_ = None if flagged is None else scene.to_image(flagged[:, None], fill=0)[..., 0] > 0

    def _fit_pixels(self, Y: np.ndarray, p: int, rng: np.random.Generator):
        var = band_noise_variances(Y, seed=self.seed) if self.band_weights == "noise" else None
        w = None if var is None else weights_from_noise(var)
        # one pass over every pixel for the test and mvnmf's pure-pixel clusters; no weighted
        # copy of the pixels, here or in mvnmf
        moments = second_moments(Y)
        flagged = gross_outliers(Y, p, w, weighted_moments(moments, w)[0]) if self.screen_outliers else None
        if flagged is not None and self.band_weights == "noise":
            # a spike raises its bands' noise estimate: the weights again without the outliers
            var_all, w_all = var, w
            var = band_noise_variances(Y[~flagged], seed=self.seed)
            w = None if var is None else weights_from_noise(var)
            flagged = gross_outliers(Y, p, w, weighted_moments(moments, w)[0])
            if flagged is None:  # none left out after all: the weights of every pixel, as without the screen
                var, w = var_all, w_all
        Y_fit = Y
        if flagged is not None:
            Y_fit = np.ascontiguousarray(Y[~flagged])
            moments = second_moments(Y_fit)
        excess = brightness_excess(Y_fit, p, w, moments)
        cls = ArchetypalAnalysis if excess > self.brightness_excess else MinVolNMF
        extra = {"n_restarts": self.n_restarts} if cls is ArchetypalAnalysis else {}
        chosen = cls(p, seed=self.seed, device=self.device, fit_pixels=self.fit_pixels, **extra)
        floor = None
        if cls is ArchetypalAnalysis:
            replay = copy.deepcopy(rng)
            E, A, info = chosen._fit_pixels(Y_fit, p, rng)
            if w is not None:  # noise plus the archetypes' misfit (module docstring)
                w, floor = misfit_floored_weights(var, archetype_residual(Y_fit, E, self.seed))
                if w is not None:  # the same start again, in the weighted bands
                    E, A, info = chosen._fit_pixels(Y_fit, p, replay, weights=w)
        else:
            E, A, info = chosen._fit_pixels(Y_fit, p, rng, weights=w, moments=weighted_moments(moments, w))
        self.band_weights_ = w
        self._flagged = flagged  # mapped to `outliers_` by `_fitted_on`
        chosen.info_ = info  # what the chosen method's transform hooks read
        self.chosen_ = chosen
        if flagged is not None:  # the outliers' abundances as `transform` gives them
            A_all = np.empty((len(Y), p), np.float32)
            A_all[~flagged] = A
            E_w = E if w is None else E * w
            A_all[flagged] = chosen._transform_finish(invert_weighted(Y[flagged], E_w, chosen._transform_method(), w))
            A = A_all
        out: dict[str, Any] = dict(info)
        out["chosen"] = cls.name
        out["band_weights"] = None if w is None else {"noise_std_range": float(w.max() / w.min())}
        if floor is not None:  # the archetypes' misfit over the median band's noise std
            out["band_weights_misfit_floor"] = floor
        out["selection"] = {"brightness_excess": excess, "threshold": float(self.brightness_excess),
                            "chosen": cls.name}
        out["outliers"] = {"screened": bool(self.screen_outliers),
                           "pixels": 0 if flagged is None else int(flagged.sum())}
        if flagged is not None:
            warnings.warn(f"auto: {int(flagged.sum())} of {len(Y)} pixels are no mixture of {p} materials (saturated, "
                          "glints, spikes?) and were left out of the fit; their abundances are inverted on the "
                          "fitted endmembers", UserWarning, stacklevel=3)
        return E, A, out
