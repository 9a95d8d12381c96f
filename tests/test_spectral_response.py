"""Gaussian spectral response resampling."""

from __future__ import annotations

import numpy as np
import pytest

from unmixgen.errors import InputError
from unmixgen.simulate.spectral_response import (
    band_coverage,
    gaussian_srf_matrix,
    linear_resample,
    resample,
)


def irregular_grid(seed=0):
    rng = np.random.default_rng(seed)
    steps = rng.uniform(2.0, 12.0, 250)
    return 400.0 + np.concatenate([[0], np.cumsum(steps)])


def smooth_spectrum(wl):
    return 0.3 + 0.2 * np.sin(wl / 90.0) + 0.1 * np.exp(-((wl - 1200) / 150) ** 2)


def test_weights_are_normalised_and_flat_stays_flat():
    wl = irregular_grid()
    centres = np.linspace(450, wl[-1] - 60, 40)
    w = gaussian_srf_matrix(wl, centres, 20.0)
    assert w.shape == (wl.size, 40) and w.min() >= 0
    np.testing.assert_allclose(w.sum(0), 1.0, atol=1e-12)
    flat = np.full((3, wl.size), 0.42)
    np.testing.assert_allclose(resample(flat, wl, centres, np.full(40, 20.0)), 0.42, atol=1e-6)


def test_narrow_band_equals_linear_interpolation():
    wl = irregular_grid(1)
    spec = smooth_spectrum(wl)
    centres = np.array([503.3, 777.7, 1500.1, 2100.9])
    narrow = resample(spec, wl, centres, 1e-4)
    expect = np.interp(centres, wl, spec)
    np.testing.assert_allclose(narrow, expect, atol=1e-6)
    np.testing.assert_allclose(linear_resample(spec, wl, centres), expect, atol=1e-6)


def test_band_value_approximates_srf_weighted_integral():
    wl = irregular_grid(2)
    centres = np.array([600.0, 1000.0, 1800.0])
    fwhm = np.array([10.0, 30.0, 60.0])
    out = resample(smooth_spectrum(wl), wl, centres, fwhm)
    fine = np.linspace(wl[0], wl[-1], 400001)
    f = smooth_spectrum(fine)
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    for k in range(3):
        g = np.exp(-0.5 * ((fine - centres[k]) / sigma[k]) ** 2)
        ref = np.trapezoid(f * g, fine) / np.trapezoid(g, fine)
        assert out[k] == pytest.approx(ref, abs=2e-4)


def test_leading_shape_kept():
    wl = np.linspace(400, 1000, 61)
    x = np.random.default_rng(0).random((2, 3, 4, 61))
    assert resample(x, wl, [500, 600], [10, 10]).shape == (2, 3, 4, 2)
    assert linear_resample(x, wl, [500, 650.5]).shape == (2, 3, 4, 2)


def test_out_of_range_targets_raise():
    wl = np.linspace(400, 1000, 61)
    with pytest.raises(InputError, match="outside the spectra's range 400.0-1000.0"):
        resample(np.ones(61), wl, [500, 1100], [10, 10])
    with pytest.raises(InputError, match=r"has 52% of its response \(< 90%\) inside the spectra's range"):
        resample(np.ones(61), wl, [401], [40])  # most of the response below 400 nm
    with pytest.raises(InputError, match="outside"):
        linear_resample(np.ones(61), wl, [350])
    with pytest.raises(InputError, match="increasing"):
        gaussian_srf_matrix(wl[::-1], [500], [10])


def test_band_coverage_is_the_response_area_over_measured_segments_by_brute_force():
    # the measured part of the axis: segments [wl[k], wl[k + 1]] whose two channels are both measured
    wl = irregular_grid(3)[:60]
    missing = np.zeros(wl.size, bool)
    missing[[0, 1, 20, 33, 34, 35, 59]] = True  # both ends, a single channel and a run of three
    centres = np.array([wl[1], wl[20], wl[34] + 1.0, wl[45], wl[58]])
    fwhm = np.array([15.0, 25.0, 30.0, 5.0, 40.0])
    x = np.linspace(wl[0] - 400, wl[-1] + 400, 400001)
    k = np.clip(np.searchsorted(wl, x, side="right") - 1, 0, wl.size - 2)
    inside = (x >= wl[0]) & (x <= wl[-1]) & ~missing[k] & ~missing[k + 1]
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    g = np.exp(-0.5 * ((x[:, None] - centres) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    want = np.trapezoid(g * inside[:, None], x, axis=0)
    np.testing.assert_allclose(band_coverage(wl, centres, fwhm, missing=missing), want, atol=2e-3)
    want_all = np.trapezoid(g * ((x >= wl[0]) & (x <= wl[-1]))[:, None], x, axis=0)
    np.testing.assert_allclose(band_coverage(wl, centres, fwhm), want_all, atol=2e-3)


def test_a_band_near_the_end_keeps_flat_spectra_flat_and_a_centre_outside_is_refused():
    wl = np.linspace(400, 1000, 61)
    # 97.5 % of this band's response lies inside: its weights are renormalised to sum to one
    w = gaussian_srf_matrix(wl, [990.0], [12.0])
    np.testing.assert_allclose(w.sum(0), 1.0, atol=1e-12)
    np.testing.assert_allclose(resample(np.full(61, 0.42), wl, [990.0], [12.0]), 0.42, atol=1e-6)
    # a lowered coverage threshold does not let a centre outside the source range through
    with pytest.raises(InputError, match="lies outside"):
        gaussian_srf_matrix(wl, [1001.0], [40.0], min_coverage=0.1)


def test_linear_resample_takes_the_end_value_for_targets_within_the_rounding_tolerance():
    wl = np.linspace(400, 1000, 61)
    spec = np.linspace(0.0, 6.0, 61)  # 0.1 per 10 nm step
    got = linear_resample(spec, wl, [399.7, 1000.4])
    np.testing.assert_allclose(got, [0.0, 6.0], atol=1e-6)  # not extrapolated (-0.003, 6.004)
