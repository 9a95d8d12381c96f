"""Resampling spectra to a sensor's bands with Gaussian spectral response functions (SRF).

A target band ``k`` with centre ``c_k`` and full width at half maximum ``fwhm_k`` (nm)
measures ``r_k = int f(l) g_k(l) dl / int g_k(l) dl`` with the Gaussian
``g_k(l) = exp(-(l - c_k)^2 / (2 sigma_k^2))``, ``sigma_k = fwhm_k / (2 sqrt(2 ln 2))``.

The source spectrum ``f`` is known at wavelengths ``l_b`` (any spacing) and taken as
piecewise linear between them. The integral of the Gaussian against each linear piece is
exact (error functions), so the weights are right on irregular grids (they reduce to
trapezoid weights for wide bands) and a band much narrower than the source spacing gives
linear interpolation at its centre. The weights of a band are normalised to sum to one over
the source range, so a flat spectrum stays flat.

All wavelengths are in nm and strictly increasing.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from ..errors import InputError

_SIGMA_PER_FWHM = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
MIN_COVERAGE = 0.9
"""The least fraction of a target band's response area the source must measure (`band_coverage`)."""


def _axis(wl, what: str) -> np.ndarray:
    a = np.asarray(wl, np.float64).reshape(-1)
    if a.size < 2:
        raise InputError(f"{what}: {a.size} wavelengths; expected at least 2")
    if not np.all(np.isfinite(a)) or np.any(np.diff(a) <= 0):
        raise InputError(f"{what}: wavelengths must be finite and strictly increasing (nm)")
    return a


def _targets(centres, fwhm) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(centres, np.float64).reshape(-1)
    f = np.asarray(fwhm, np.float64).reshape(-1)
    if f.size == 1:
        f = np.full(c.shape, f[0])
    if c.size < 1:
        raise InputError("sensor: no band centres given; expected at least one")
    if f.shape != c.shape:
        raise InputError(f"sensor: {c.size} band centres but {f.size} FWHM values; expected one per band")
    if not np.all(np.isfinite(c)) or not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise InputError("sensor: band centres and FWHM must be finite, FWHM > 0 (nm)")
    return c, f


def _area(lo, hi, c, sigma) -> np.ndarray:
    """Area of the unit Gaussians (centres ``c``, widths ``sigma``) between ``lo`` and ``hi``."""
    return ndtr((hi - c) / sigma) - ndtr((lo - c) / sigma)


def band_coverage(src_wl, dst_centres, dst_fwhm, *, missing=None) -> np.ndarray:
    """The fraction ``(K,)`` of each target band's Gaussian response area that the source
    spectra measure.

    That is the area inside ``[src_wl[0], src_wl[-1]]``, less the area over the gaps a
    source's ``missing`` channels ``(B,) bool`` leave (a library's deleted channels, a
    result's bad bands): from the measured channel before a run of missing ones to the
    measured one after it, where the spectra are only interpolated. Missing channels at
    either end shorten the measured range.
    """
    wl = _axis(src_wl, "source spectra")
    c, f = _targets(dst_centres, dst_fwhm)
    sigma = f * _SIGMA_PER_FWHM
    if missing is not None and np.size(missing) != wl.size:
        raise InputError(f"missing: {np.size(missing)} flags for {wl.size} wavelengths; expected one per channel")
    measured = np.flatnonzero(np.ones(wl.size, bool) if missing is None
                              else ~np.asarray(missing, bool).reshape(-1))
    if measured.size < 2:
        return np.zeros(c.size)
    cover = _area(wl[measured[0]], wl[measured[-1]], c, sigma)
    jumps = np.flatnonzero(np.diff(measured) > 1)  # measured[j] and measured[j + 1] bracket a gap
    for j in jumps:
        cover = cover - _area(wl[measured[j]], wl[measured[j + 1]], c, sigma)
    return np.maximum(cover, 0.0)


def gaussian_srf_matrix(src_wl, dst_centres, dst_fwhm, *, min_coverage: float = MIN_COVERAGE) -> np.ndarray:
    """Weights ``W (B, K)`` so that ``spectra @ W`` are the target band values.

    Parameters
    ----------
    src_wl : (B,) nm, strictly increasing (any spacing)
    dst_centres, dst_fwhm : (K,) nm (``dst_fwhm`` may be a scalar)
    min_coverage : float
        A target band whose Gaussian response has less than this fraction of its area
        inside ``[src_wl[0], src_wl[-1]]`` raises `InputError` (the source does not measure
        that band).

    Returns
    -------
    ndarray (B, K) float64, columns non-negative and summing to one.
    """
    wl = _axis(src_wl, "source spectra")
    c, f = _targets(dst_centres, dst_fwhm)
    sigma = f * _SIGMA_PER_FWHM
    lo, hi = wl[0], wl[-1]
    coverage = band_coverage(wl, c, f)
    bad = np.flatnonzero((coverage < min_coverage) | (c < lo) | (c > hi))
    if bad.size:
        k = int(bad[0])
        where = ("lies outside" if c[k] < lo or c[k] > hi else
                 f"has {100 * coverage[k]:.0f}% of its response (< {100 * min_coverage:.0f}%) inside")
        raise InputError(
            f"sensor band {k + 1} ({c[k]:.1f} nm, FWHM {f[k]:.1f} nm) {where} the spectra's "
            f"range {lo:.1f}-{hi:.1f} nm ({bad.size} of {c.size} bands); expected target bands "
            "inside the source wavelengths"
        )
    # Segment j = [wl[j], wl[j+1]]; for every target band the Gaussian's zeroth and first
    # moments over the segment give the weights of the segment's two end nodes.
    a = wl[:-1, None]
    b = wl[1:, None]
    za = (a - c) / sigma
    zb = (b - c) / sigma
    i0 = ndtr(zb) - ndtr(za)  # int pdf
    pdf = lambda z: np.exp(-0.5 * z**2) / (sigma * np.sqrt(2 * np.pi))  # noqa: E731
    i1 = c * i0 - sigma**2 * (pdf(zb) - pdf(za))  # int x pdf
    d = b - a
    left = (b * i0 - i1) / d
    right = (i1 - a * i0) / d
    w = np.zeros((wl.size, c.size))
    w[:-1] += left
    w[1:] += right
    w = np.maximum(w, 0.0)  # rounding
    return w / w.sum(axis=0, keepdims=True)


def resample(spectra, src_wl, dst_centres, dst_fwhm, *, min_coverage: float = MIN_COVERAGE) -> np.ndarray:
    """Spectra ``(..., B)`` on ``src_wl`` -> ``(..., K)`` float32 through Gaussian SRFs.

    See `gaussian_srf_matrix`.
    """
    s = np.asarray(spectra)
    wl = _axis(src_wl, "source spectra")
    if s.shape[-1] != wl.size:
        raise InputError(f"spectra have {s.shape[-1]} bands but {wl.size} wavelengths; expected one per band")
    w = gaussian_srf_matrix(wl, dst_centres, dst_fwhm, min_coverage=min_coverage)
    return (s.astype(np.float64) @ w).astype(np.float32)


def linear_resample(spectra, src_wl, dst_wl, *, tol: float = 0.5) -> np.ndarray:
    """Linear interpolation of spectra ``(..., B)`` from ``src_wl`` to ``dst_wl`` (K,).

    For targets without known band widths. Every target must lie inside the source range
    (``tol`` nm of rounding allowed), else `InputError`. Returns ``(..., K)`` float32.
    """
    s = np.asarray(spectra)
    wl = _axis(src_wl, "source spectra")
    dst = np.asarray(dst_wl, np.float64).reshape(-1)
    if s.shape[-1] != wl.size:
        raise InputError(f"spectra have {s.shape[-1]} bands but {wl.size} wavelengths; expected one per band")
    out_of = (dst < wl[0] - tol) | (dst > wl[-1] + tol)
    if out_of.any():
        k = int(np.flatnonzero(out_of)[0])
        raise InputError(
            f"target band {k + 1} ({dst[k]:.1f} nm) lies outside the spectra's range "
            f"{wl[0]:.1f}-{wl[-1]:.1f} nm; expected target wavelengths inside the source range"
        )
    x = np.clip(dst, wl[0], wl[-1])
    j = np.clip(np.searchsorted(wl, x, side="right") - 1, 0, wl.size - 2)
    t = (x - wl[j]) / (wl[j + 1] - wl[j])
    flat = s.reshape(-1, wl.size).astype(np.float64)
    out = flat[:, j] * (1 - t) + flat[:, j + 1] * t
    return out.reshape(*s.shape[:-1], dst.size).astype(np.float32)


__all__ = ["MIN_COVERAGE", "band_coverage", "gaussian_srf_matrix", "linear_resample", "resample"]
