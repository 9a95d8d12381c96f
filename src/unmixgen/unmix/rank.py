"""Number of endmembers: HySime signal-subspace estimation.

HySime (Bioucas-Dias & Nascimento, "Hyperspectral subspace identification", IEEE TGRS
2008) works in two steps:

1. **Noise estimation by multiple regression.** Each band is regressed on all the other
   bands; the residual is the noise estimate of that band. With the correlation matrix
   :math:`R = Y^T Y` and its inverse :math:`Q = R^{-1}`, the residual of band ``i`` is
   :math:`w_i = (Y Q)_{:, i} / Q_{ii}` (the least-squares coefficients of band ``i`` on the
   others are :math:`-Q_{ji}/Q_{ii}`), so all bands are done with one matrix product.
2. **Subspace selection by minimum mean squared error.** With the signal correlation
   :math:`R_x = X^T X / N` (``X = Y - W``) and the noise correlation
   :math:`R_n = W^T W / N`, project onto each eigenvector :math:`e_i` of :math:`R_x`: keeping
   it costs the noise power :math:`e_i^T R_n e_i`, dropping it costs the signal power
   :math:`e_i^T R_y e_i - e_i^T R_n e_i`. The subspace keeps the eigenvectors where
   :math:`e_i^T R_y e_i > 2\\, e_i^T R_n e_i`.

What ``n_endmembers`` means
---------------------------
HySime estimates the dimension ``k`` of the *linear* signal subspace of the data, which
are not mean-removed. Under the linear mixing model with sum-to-one abundances, ``p``
linearly independent endmembers span a ``p``-dimensional linear subspace (the data
simplex is a (p-1)-dimensional affine set that does not pass through the origin), so
``k`` is the estimate of the number of endmembers ``p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError, brief
from ..labelled import bands_last
from ..scene import Scene

__all__ = ["RankEstimate", "estimate_noise", "hysime"]


@dataclass
class RankEstimate:
    """Result of `hysime`.

    Attributes
    ----------
    n_endmembers : estimated number of endmembers p (= the signal-subspace dimension k).
    eigenvalues : ``(B,)`` float64 eigenvalues of the signal correlation matrix
        :math:`R_x`, descending (data units squared).
    noise_variance : ``(B,)`` float64 estimated noise variance per band (diagonal of
        :math:`R_n`, data units squared).
    signal_subspace : ``(B, k)`` float64 orthonormal basis of the signal subspace (columns
        are eigenvectors of :math:`R_x`, by decreasing eigenvalue).
    n_samples : number of pixels the estimate used (after subsampling).
    """

    n_endmembers: int
    eigenvalues: np.ndarray
    noise_variance: np.ndarray
    signal_subspace: np.ndarray
    n_samples: int = 0
    projected_signal_power: np.ndarray = field(default_factory=lambda: np.zeros(0))
    projected_noise_power: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def as_dict(self, max_values: int = 50) -> dict[str, Any]:
        """JSON-ready summary; spectra truncated to the first ``max_values`` values."""

        def head(x: np.ndarray) -> list[float]:
            return [float(v) for v in np.asarray(x)[:max_values]]

        return {
            "method": "hysime",
            "n_endmembers": int(self.n_endmembers),
            "n_samples": int(self.n_samples),
            "eigenvalues": head(self.eigenvalues),
            "noise_variance_mean": float(np.mean(self.noise_variance)),
            "noise_variance": head(self.noise_variance),
            "snr_db": float(self.snr_db),
            "truncated_to": int(max_values),
        }

    @property
    def snr_db(self) -> float:
        """Signal-to-noise ratio: total signal power / total noise power, in dB."""
        noise = float(np.sum(self.noise_variance))
        sig = float(np.sum(np.clip(self.eigenvalues, 0, None)))
        return 10.0 * np.log10(sig / noise) if noise > 0 and sig > 0 else float("inf")


def _subsample(Y: np.ndarray, sample: int | None, seed: int = 0) -> np.ndarray:
    if sample is None or Y.shape[0] <= sample:
        return Y
    idx = np.sort(np.random.default_rng(seed).choice(Y.shape[0], sample, replace=False))
    return Y[idx]


def _check(Y: np.ndarray) -> np.ndarray:
    if isinstance(Y, Scene):
        raise InputError("Y is a Scene; expected its pixels: hysime(scene.valid_pixels())")
    Y = np.asarray(bands_last(Y, 1, "Y"))  # a DataArray with its spectral dim last
    if Y.ndim != 2:
        raise InputError(f"Y has shape {Y.shape}; expected (pixels, bands)")
    if Y.shape[1] < 2:
        raise InputError(f"Y has {Y.shape[1]} band; HySime needs at least 2")
    if Y.shape[0] < Y.shape[1]:
        raise InputError(f"Y has {Y.shape[0]} pixels for {Y.shape[1]} bands; expected at least as many pixels as bands")
    return Y


def _regression_operator(R: np.ndarray) -> np.ndarray:
    """``M (B, B)`` with ``noise = Y @ M``: column i is the residual operator of band i.

    ``R = Y^T Y`` (float64). The least-squares coefficients of band i on the others are
    ``-Q[j, i] / Q[i, i]`` with ``Q = R^{-1}``, so ``M = Q / diag(Q)``.
    """
    bands = R.shape[0]
    R = R.copy()
    # a tiny ridge keeps R invertible when bands are exactly collinear
    R[np.diag_indices(bands)] += 1e-10 * np.trace(R) / bands + 1e-300
    Q = np.linalg.inv(R)
    return Q / np.diag(Q)[None, :]


def _gram(Y: np.ndarray) -> np.ndarray:
    """``Y^T Y`` in float64 ``(B, B)``, converting ``Y`` in chunks (no full float64 copy)."""
    bands = Y.shape[1]
    R = np.zeros((bands, bands))
    step = max(1, 2**22 // bands)
    for i in range(0, Y.shape[0], step):
        c = Y[i:i + step].astype(np.float64)
        R += c.T @ c
    return 0.5 * (R + R.T)


def noise_operator(Y: np.ndarray) -> np.ndarray:
    """The HySime residual operator ``M (B, B)`` float64 fitted to pixels ``Y (N, B)``: the
    noise estimate of any pixel ``y`` on the same bands is ``y @ M`` (`estimate_noise`)."""
    return _regression_operator(_gram(_check(Y)))


def neighbour_noise_correlation(residuals: np.ndarray, valid: np.ndarray, min_pairs: int = 500
                                ) -> tuple[float | None, float | None]:
    """How much the noise of neighbouring pixels correlates, ``(vertical, horizontal)``
    neighbours: the noise estimates ``residuals (h, w, B)`` of an image's pixels (e.g. the
    HySime residuals ``y @ noise_operator(...)``) where ``valid (h, w)``, correlated with the
    next pixel's down the column (vertical) or along the row (horizontal), pooled over the
    bands (noisier bands count more). Independent noise gives about 0, a product resampled to
    a map grid about 0.25 (bilinear) or 0.13 (cubic). None for an axis with fewer than
    ``min_pairs`` pairs."""
    valid = np.asarray(valid, bool)
    out: list[float | None] = []
    r = residuals
    for a, b, ok in ((r[1:], r[:-1], valid[1:] & valid[:-1]), (r[:, 1:], r[:, :-1], valid[:, 1:] & valid[:, :-1])):
        if ok.sum() < min_pairs:
            out.append(None)
            continue
        a, b = a[ok], b[ok]
        ab, aa, bb = (float(np.einsum("ij,ij->", x, y, dtype=np.float64)) for x, y in ((a, b), (a, a), (b, b)))
        out.append(ab / max(math.sqrt(aa * bb), 1e-300))
    return out[0], out[1]


def subsample(Y: np.ndarray, sample: int, seed: int) -> np.ndarray:
    """A seeded subsample of ``sample`` rows of ``Y (N, ...)``, in their order; ``Y`` itself
    when it has no more rows."""
    if Y.shape[0] <= sample:
        return Y
    return Y[np.sort(np.random.default_rng(seed).choice(Y.shape[0], sample, replace=False))]


def window_noise_correlation(window: np.ndarray, valid: np.ndarray, sample: int = 20_000, seed: int = 0
                             ) -> tuple[float | None, float | None]:
    """`neighbour_noise_correlation` of an image ``window (h, w, B)`` (its pixels where
    ``valid (h, w)``) from its HySime residuals. The residuals of each half of the window (by
    rows) come from the operator (`noise_operator`) fitted to the other half's valid pixels (a
    seeded ``sample`` of them): fitted to the same pixels it takes part of their noise with the
    signal, the smooth part more, and measured bilinear resampling's correlation 9 % low.
    Halves with too few pixels for the fit (`enough_for_band_noise`) share one operator fitted
    to every valid pixel; (None, None) with too few for that. Pixels must be finite where
    valid."""
    valid = np.asarray(valid, bool)
    h, _, bands = window.shape
    if not enough_for_band_noise(int(valid.sum()), bands):
        return None, None
    residuals = np.zeros(window.shape[:2] + (bands,), np.float32)  # summed in float64 by the correlation
    mid = h // 2
    halves = [(slice(0, mid), slice(mid, h)), (slice(mid, h), slice(0, mid))]
    if not all(enough_for_band_noise(int(valid[other].sum()), bands) for _, other in halves):
        halves = [(slice(0, h), slice(0, h))]
    for part, other in halves:
        fit = subsample(window[other][valid[other]], sample, seed)
        residuals[part][valid[part]] = np.asarray(window[part][valid[part]], np.float64) @ noise_operator(fit)
    return neighbour_noise_correlation(residuals, valid)


def estimate_noise(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Additive noise of each pixel by multiple regression of every band on the others.

    Parameters
    ----------
    Y : ``(N, B)`` pixels (any float dtype; statistics are computed in float64).

    Returns
    -------
    noise : ``(N, B)`` noise estimate (the regression residuals), in Y's float dtype
        (float32 stays float32).
    Rn : ``(B, B)`` float64 noise correlation matrix ``noise.T @ noise / N``.
    """
    Y = _check(Y)
    n = Y.shape[0]
    dtype = Y.dtype if np.issubdtype(Y.dtype, np.floating) else np.float64
    bands = Y.shape[1]
    M = noise_operator(Y)
    noise = np.empty(Y.shape, dtype)
    Rn = np.zeros((bands, bands))
    step = max(1, 2**22 // bands)  # float64 work in chunks of ~32 MB
    for i in range(0, n, step):
        w = Y[i:i + step].astype(np.float64) @ M
        Rn += w.T @ w
        noise[i:i + step] = w
    return noise, Rn / n


#: `weights_from_noise` weighs bands only when the 90th-percentile band's noise std is at
#: least this many times the 10th's: white noise measures 1.03-1.11 on the blind suite, the
#: real scenes 1.8 (Samson) and 5.0 (Jasper Ridge), sensor-like profiles 7-8. Below it mvnmf
#: moved by up to 3 points on near-flat weights (cv 1.6 %) that only estimation error made.
MIN_NOISE_SPREAD = 1.5

#: pixels per band a per-band noise estimate needs: a band's noise variance from N pixels is
#: off by about sqrt(2 / (N - B)), and with fewer than 4 B pixels that alone can spread the
#: estimates past `MIN_NOISE_SPREAD`
NOISE_PIXELS_PER_BAND = 4

#: a band's noise std estimate below this fraction of the median band's is taken for a band
#: the others explain exactly (`band_noise_std`); the quietest band measures 0.88 (Samson),
#: 0.55 (Jasper Ridge), 0.31-0.44 (the benchmarks' sensor profiles) and 0.22 (a 20x ramp) of
#: the median; a duplicated or interpolated band 1e-5 or less
MIN_NOISE_FRACTION = 0.1

BAND_WEIGHTS = ("noise", "none")


def enough_for_band_noise(n_pixels: int, bands: int) -> bool:
    """Whether ``n_pixels`` pixels of ``bands`` bands give a usable per-band noise estimate."""
    return bands >= 2 and n_pixels >= NOISE_PIXELS_PER_BAND * bands


def band_weights_option(value: str | None) -> str | None:
    """The ``--band-weights`` option as the library takes it: ``"noise"`` -> ``"noise"``,
    ``"none"`` -> None; `ParameterError` for anything else (``band_weights``)."""
    if not isinstance(value, str) or value not in BAND_WEIGHTS:  # an array: `in` would compare it elementwise
        raise ParameterError("band_weights", brief(value), f"expected {' or '.join(BAND_WEIGHTS)}")
    return None if value == "none" else value


def derived_bands(band_var: np.ndarray) -> np.ndarray:
    """Bool ``(B,)``: bands whose noise variance ``band_var (B,)`` puts their std below
    `MIN_NOISE_FRACTION` of the median band's (or at zero), i.e. bands the other bands explain
    exactly: a duplicated band, one a producer interpolated over a bad detector element, a
    constant fill. All False when no band has noise."""
    std = _std(band_var)
    typical = _typical_std(std)
    if typical is None:
        return np.zeros(std.shape, bool)
    return std < MIN_NOISE_FRACTION * typical


def _std(band_var: np.ndarray) -> np.ndarray:
    """Std ``(B,)`` float64 of variances ``band_var (B,)``; NaN and negative variances count as 0."""
    return np.sqrt(np.clip(np.nan_to_num(np.asarray(band_var, np.float64).reshape(-1), nan=0.0), 0.0, None))


def _typical_std(std: np.ndarray) -> float | None:
    """The median band's noise std of ``std (B,)`` (positive ones), or None when none is positive.

    When more than half the bands are derived (`derived_bands`; a product that copied or
    interpolated most of its bands) that median is itself a derived band's, near zero, and
    the bands with noise would all look a thousand times too loud: then the median of the
    bands within ``MIN_NOISE_FRACTION ** 2`` of the loudest, which derived bands (``1e-5`` of
    the others or less) are not and real sensors' quietest bands (``1 / 50``) are."""
    positive = std[std > 0]
    if not positive.size:
        return None
    median = float(np.median(positive))
    loud = float(np.median(positive[positive >= MIN_NOISE_FRACTION**2 * positive.max()]))
    return loud if median < MIN_NOISE_FRACTION * loud else median


def band_noise_std(band_var: np.ndarray) -> np.ndarray | None:
    """Noise std per band ``(B,)`` float64 from noise variances ``band_var (B,)``. None when no
    band has noise.

    A `derived_bands` band gets the median band's std: its regression estimate is near zero
    because the other bands explain it, which says nothing about its noise. Weighed by
    ``1 / std`` such a band alone would decide a least-squares fit (one duplicated band took
    FCLS on the true endmembers from 0.5 % to 34 % RMSE)."""
    std = _std(band_var)
    typical = _typical_std(std)
    if typical is None:
        return None
    return np.where(std < MIN_NOISE_FRACTION * typical, typical, std)  # `derived_bands`, without a second median


def noise_spread(std: np.ndarray) -> float:
    """How far apart the bands' noise is: the 90th over the 10th percentile band's ``std``."""
    low, high = np.quantile(std, [0.1, 0.9])
    return float(high / low)


def weights_from_noise(band_var: np.ndarray, min_spread: float = MIN_NOISE_SPREAD) -> np.ndarray | None:
    """``1 / noise std`` per band ``(B,)`` float32 from noise variances ``band_var (B,)``
    (`band_noise_std`), scaled to geometric mean 1 (so weighted pixels keep about their
    units). None when no band has noise, or when the noise is about white: its `noise_spread`
    below ``min_spread`` (`MIN_NOISE_SPREAD`)."""
    std = band_noise_std(band_var)
    if std is None or noise_spread(std) < min_spread or np.ptp(std) <= 1e-6 * std.max():
        return None
    weights = np.exp(np.mean(np.log(std))) / std
    return weights.astype(np.float32)


def _sampled_noise(Y: np.ndarray, sample: int | None, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(pixels, noise, noise variance per band (`band_noise_variance`), the regression's own
    variance per band)`` of a seeded sample of ``Y (N, B)`` (`estimate_noise`), or None when
    `enough_for_band_noise` says no."""
    Y = np.asarray(Y)
    if Y.ndim != 2 or not enough_for_band_noise(Y.shape[0], Y.shape[1]):
        return None
    Ys = _subsample(Y, sample, seed)
    w, Rn = estimate_noise(Ys)
    return Ys, w, band_noise_variance(Ys, Rn), np.diag(Rn)


def band_noise_variance(Y: np.ndarray, Rn: np.ndarray) -> np.ndarray:
    """Noise variance per band ``(B,)`` float64 of pixels ``Y (N, B)`` from their `estimate_noise`
    correlation ``Rn (B, B)``.

    The regression estimate is near zero for bands the others explain exactly (`derived_bands`):
    a duplicated band and its original, an interpolated band and its two neighbours. Those are
    regressed again on the other bands only, which gives a duplicate its original's noise and an
    interpolated band the noise of its neighbours' mean. Every band's estimate is at most its
    variance over the pixels: a constant band (a dead band the producer filled) has no noise,
    while its regression residual need not vanish (the regression has no intercept)."""
    Y = np.asarray(Y)
    n, bands = max(Y.shape[0], 1), Y.shape[1]
    var = np.diag(Rn).astype(np.float64)
    flagged = derived_bands(var)
    if flagged.any() and not flagged.all():
        R = _gram(Y)
        keep = ~flagged
        Rkk = R[np.ix_(keep, keep)]
        Rkk[np.diag_indices_from(Rkk)] += 1e-10 * np.trace(Rkk) / keep.sum() + 1e-300
        Rkf = R[np.ix_(keep, flagged)]
        explained = np.sum(Rkf * np.linalg.solve(Rkk, Rkf), axis=0)
        var[flagged] = np.maximum(np.diag(R)[flagged] - explained, 0.0) / n
    mean = np.zeros(bands)
    step = max(1, 2**22 // max(bands, 1))
    for i in range(0, Y.shape[0], step):
        mean += Y[i:i + step].sum(axis=0, dtype=np.float64)
    mean /= n
    spread = np.zeros(bands)
    for i in range(0, Y.shape[0], step):
        spread += np.sum((Y[i:i + step].astype(np.float64) - mean) ** 2, axis=0)
    return np.minimum(var, spread / n)


def band_noise_weights(Y: np.ndarray, *, sample: int | None = 20_000, seed: int = 0) -> np.ndarray | None:
    """Weights ``(B,)`` float32 that make the noise of pixels ``Y (N, B)`` the same in every
    band: ``1 / std`` of the HySime regression noise estimate of each band (`estimate_noise`, on
    a seeded sample of ``sample`` pixels), geometric mean 1 (`weights_from_noise`).

    Real sensors' noise differs 10-50x between bands; least squares and simplex geometry on
    ``Y * weights`` treat every band by what it tells. None also when ``Y`` has too few pixels
    or bands for a trustworthy estimate (`enough_for_band_noise`)."""
    var = band_noise_variances(Y, sample=sample, seed=seed)
    return None if var is None else weights_from_noise(var)


def band_noise_variances(Y: np.ndarray, *, sample: int | None = 20_000, seed: int = 0) -> np.ndarray | None:
    """Noise variance per band ``(B,)`` float64 of pixels ``Y (N, B)`` in their units (HySime
    regression on a seeded sample of ``sample`` pixels, `band_noise_variance`), or None when
    ``Y`` has too few pixels or bands (`enough_for_band_noise`)."""
    est = _sampled_noise(Y, sample, seed)
    return None if est is None else est[2]


MISFIT_MARGIN = 2.0
"""Noise counts in `misfit_floored_weights` only where it dominates the misfit by this factor
(in std): the weighted fit leaves more misfit than the unweighted one it is measured on.
Chosen on sensor-noise scenes with variability (``benchmarks/RESULTS.md``)."""


def misfit_floored_weights(band_var: np.ndarray, residual_var: np.ndarray,
                           min_spread: float = MIN_NOISE_SPREAD) -> tuple[np.ndarray | None, float]:
    """`weights_from_noise` with each band's noise variance raised by the model's own misfit.

    ``band_var (B,)``: noise variances (`band_noise_variances`); ``residual_var (B,)``: the
    mean square per band of the pixels' residual from a fit of the model (noise plus misfit).
    The misfit ``tau^2`` is the mean over bands of the residual less the noise (>= 0):
    spectral variability, pixels the endmembers do not reach, nonlinear mixing. Weights
    ``1 / sqrt(noise^2 + (MISFIT_MARGIN tau)^2)`` weigh bands by their noise where noise is
    what the fit leaves (low SNR) and alike where the misfit dominates. Returns the weights
    (None, as `weights_from_noise`, when about flat) and ``MISFIT_MARGIN tau`` over the median
    band's noise std."""
    std = band_noise_std(band_var)
    if std is None:
        return None, 0.0
    tau2 = max(float(np.mean(np.asarray(residual_var, np.float64) - std**2)), 0.0)
    tau2 *= MISFIT_MARGIN**2
    return weights_from_noise(std**2 + tau2, min_spread), float(np.sqrt(tau2) / np.median(std))


def noise_summary(Y: np.ndarray, *, sample: int | None = 20_000, seed: int = 0) -> dict[str, Any]:
    """What the HySime noise estimate says of pixels ``Y (N, B)`` (a seeded sample of
    ``sample``): ``snr_db`` (signal over noise energy), ``noise_std_spread`` (`noise_spread`),
    ``noise_std_max_min``, ``bands_weighted`` (whether `band_noise_weights` weighs these
    bands) and ``derived_bands`` (column indices of the regression's `derived_bands`). Values are None (and the
    list empty) with too few pixels (`enough_for_band_noise`)."""
    out: dict[str, Any] = {"snr_db": None, "noise_std_spread": None, "noise_std_max_min": None,
                           "bands_weighted": False, "derived_bands": []}
    est = _sampled_noise(Y, sample, seed)
    std = None if est is None else band_noise_std(est[2])
    if std is None:
        return out
    Ys, w, var, regression_var = est
    x = Ys.astype(np.float64) - w
    noise = float(np.sum(w.astype(np.float64) ** 2))
    out.update(snr_db=float(10 * np.log10(np.sum(x**2) / noise)) if noise > 0 else None,
               noise_std_spread=noise_spread(std), noise_std_max_min=float(std.max() / std.min()),
               bands_weighted=weights_from_noise(var) is not None,
               derived_bands=np.flatnonzero(derived_bands(regression_var)).tolist())
    return out


def hysime(Y: np.ndarray, *, sample: int | None = 100_000, seed: int = 0) -> RankEstimate:
    """HySime estimate of the number of endmembers of pixels ``Y (N, B)``.

    Parameters
    ----------
    Y : ``(N, B)`` valid pixels, float32 or float64, not mean-removed.
    sample : at most this many pixels (drawn at random with ``seed``) are used; ``None``
        uses all.
    seed : seed of the subsample.

    Returns
    -------
    `RankEstimate`; ``n_endmembers`` is the signal-subspace dimension k, which under the
    linear mixing model with sum-to-one abundances equals the number of endmembers p
    (see the module docstring).

    Notes
    -----
    Only one pass over the pixels is needed: with ``R = Y^T Y`` and the regression
    operator ``M`` (``W = Y M``), ``R_n = M^T R M / N``, ``R_x = (I - M)^T R (I - M) / N`` and
    ``R_y = R / N``, all ``(B, B)`` products.
    """
    Y = _check(Y)
    Ys = _subsample(Y, sample, seed)
    n, bands = Ys.shape
    R = _gram(Ys)
    M = _regression_operator(R)
    Ry = R / n
    Rn = M.T @ R @ M / n
    ImM = np.eye(bands) - M
    Rx = ImM.T @ R @ ImM / n
    Rn, Rx = 0.5 * (Rn + Rn.T), 0.5 * (Rx + Rx.T)
    evals, evecs = np.linalg.eigh(Rx)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    Rn_reg = Rn + np.trace(Rx) / bands * 1e-10 * np.eye(bands)
    py = np.einsum("bi,bc,ci->i", evecs, Ry, evecs)
    pn = np.einsum("bi,bc,ci->i", evecs, Rn_reg, evecs)
    # keep e_i when its cost if kept (noise power pn) is below its cost if dropped (py - pn)
    idx = np.flatnonzero(py > 2.0 * pn)
    return RankEstimate(
        n_endmembers=int(idx.size),
        eigenvalues=evals,
        noise_variance=np.diag(Rn).copy(),
        signal_subspace=evecs[:, idx],
        n_samples=n,
        projected_signal_power=py,
        projected_noise_power=pn,
    )
