"""The one Gaussian-random-field generator: spectra, filters, noise layout, standardisation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from unmixgen.simulate.random_fields import (
    gaussian_amplitude,
    gaussian_random_fields,
    power_law_amplitude,
    rfft_frequencies,
    spectral_filter,
    standardize,
)


def test_rfft_frequencies_match_numpy_grid():
    fy, fx = rfft_frequencies(6, 9)
    assert fy.shape == (6, 1) and fx.shape == (1, 5)
    assert np.fft.rfft2(np.zeros((6, 9))).shape == np.broadcast_shapes(fy.shape, fx.shape)
    np.testing.assert_array_equal(fy[:, 0], np.fft.fftfreq(6))
    np.testing.assert_array_equal(fx[0], np.fft.rfftfreq(9))


def test_sampled_fields_have_the_requested_power_spectrum():
    # Two channels with different spectra in one batched draw: the periodogram averaged over
    # many fields must match amplitude**2 at every frequency (white noise has E|FFT|^2 = rows*cols).
    rows, cols, n = 16, 20, 3000
    amp = np.stack([power_law_amplitude(rows, cols, 2.0), gaussian_amplitude(rows, cols, 1.5)], axis=-1)
    z = gaussian_random_fields((n, rows, cols, 2), amp, np.random.default_rng(0), axes=(1, 2))
    assert z.shape == (n, rows, cols, 2) and z.dtype == np.float64
    power = (np.abs(np.fft.rfft2(z, axes=(1, 2))) ** 2).mean(axis=0) / (rows * cols)
    expected = amp**2
    ok = expected > 1e-6 * expected.max()
    np.testing.assert_allclose(power[ok], expected[ok], rtol=0.2)
    assert power[0, 0, 0] < 1e-20  # the power law has no DC term: every field has mean zero
    # the smoother channel really is smoother: correlation at lag 1 pixel
    lag1 = [np.corrcoef(z[:, 1:, :, k].ravel(), z[:, :-1, :, k].ravel())[0, 1] for k in range(2)]
    assert lag1[1] > lag1[0] > 0


def test_power_law_exponent_and_cutoff():
    amp = power_law_amplitude(32, 32, 4.0, f0=0.01)
    fy, fx = rfft_frequencies(32, 32)
    f2 = fy**2 + fx**2
    np.testing.assert_allclose(amp[f2 > 0], (f2[f2 > 0] + 1e-4) ** -1.0)
    assert amp[0, 0] == 0
    # default cut-off: one cycle per scene (the larger side)
    np.testing.assert_array_equal(power_law_amplitude(20, 40, 3.0), power_law_amplitude(20, 40, 3.0, f0=1 / 40))


def test_gaussian_filter_equals_a_periodic_gaussian_blur():
    rng = np.random.default_rng(1)
    img = rng.standard_normal((24, 30, 2))
    got = spectral_filter(img, gaussian_amplitude(24, 30, 2.0)[..., None], axes=(0, 1))
    want = gaussian_filter(img, sigma=(2.0, 2.0, 0), mode="wrap", truncate=6.0)
    np.testing.assert_allclose(got, want, atol=1e-7)
    const = np.full((8, 11), 3.5)
    np.testing.assert_allclose(spectral_filter(const, gaussian_amplitude(8, 11, 4.0)), const, atol=1e-12)


def test_noise_layout_is_one_draw_of_the_requested_shape():
    # reproducibility contract: the white noise is rng.standard_normal(shape), filtered per field
    amp = gaussian_amplitude(10, 7, 1.0)[..., None]
    z = gaussian_random_fields((10, 7, 3), amp, np.random.default_rng(5))
    w = np.random.default_rng(5).standard_normal((10, 7, 3))
    for k in range(3):
        np.testing.assert_allclose(z[..., k], spectral_filter(w[..., k], amp[..., 0]), atol=1e-12)
    np.testing.assert_array_equal(z, gaussian_random_fields((10, 7, 3), amp, np.random.default_rng(5)))
    assert not np.allclose(z, gaussian_random_fields((10, 7, 3), amp, np.random.default_rng(6)))


def test_normalize_gives_zero_mean_unit_std_per_field():
    z = gaussian_random_fields((4, 15, 12), power_law_amplitude(15, 12, 4.0), np.random.default_rng(2),
                               axes=(1, 2), normalize=True)
    np.testing.assert_allclose(z.mean(axis=(1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=(1, 2)), 1.0, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 1, 2), (5, 4, 1)])
def test_constant_fields_standardise_to_zero_not_nan(shape):
    z = standardize(np.full(shape, 2.0))
    np.testing.assert_array_equal(z, np.zeros(shape))
    zero_amp = np.zeros((shape[0], shape[1] // 2 + 1, 1))
    z = gaussian_random_fields(shape, zero_amp, np.random.default_rng(0), normalize=True)
    np.testing.assert_array_equal(z, np.zeros(shape))
