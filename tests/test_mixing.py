"""Forward mixing models and noise at a given SNR."""

from __future__ import annotations

import numpy as np
import pytest

from unmixgen.errors import ParameterError
from unmixgen.simulate import mixing


def _simplex(rng, shape):
    a = rng.gamma(1.0, size=shape)
    return a / a.sum(-1, keepdims=True)


@pytest.fixture
def ae():
    rng = np.random.default_rng(1)
    A = _simplex(rng, (5, 7, 3)).astype(np.float32)  # non-square scene
    E = rng.uniform(0.05, 0.9, (3, 11)).astype(np.float32)
    return A, E


def test_linear_matches_per_pixel_sum(ae):
    A, E = ae
    Y = mixing.linear(A, E)
    assert Y.shape == (5, 7, 11) and Y.dtype == np.float32
    r, c = 3, 6
    ref = sum(A[r, c, k] * E[k] for k in range(3))
    np.testing.assert_allclose(Y[r, c], ref, rtol=1e-6)


def test_linear_rejects_mismatched_p(ae):
    A, E = ae
    with pytest.raises(ValueError, match="endmembers"):
        mixing.linear(A, E[:2])


def test_extended_linear_scales_each_endmember(ae):
    A, E = ae
    ones = np.ones_like(A)
    np.testing.assert_allclose(mixing.extended_linear(A, E, ones), mixing.linear(A, E), rtol=1e-6)
    s = np.random.default_rng(2).uniform(0.5, 1.5, A.shape)
    Y = mixing.extended_linear(A, E, s)
    r, c = 4, 1
    ref = sum(s[r, c, k] * A[r, c, k] * E[k] for k in range(3))
    np.testing.assert_allclose(Y[r, c], ref, rtol=1e-5)


def test_bilinear_fan_explicit_pairs(ae):
    A, E = ae
    Y = mixing.bilinear(A, E, gamma=0.7, kind="fan")
    r, c = 2, 5
    a = A[r, c]
    ref = a @ E + 0.7 * (a[0] * a[1] * E[0] * E[1] + a[0] * a[2] * E[0] * E[2] + a[1] * a[2] * E[1] * E[2])
    np.testing.assert_allclose(Y[r, c], ref, rtol=1e-5)
    # gamma = 0 is the linear model; pure pixels have no interaction
    np.testing.assert_allclose(mixing.bilinear(A, E, gamma=0.0), mixing.linear(A, E), rtol=1e-6)
    pure = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(mixing.bilinear(pure, E), E, rtol=1e-6)


def test_bilinear_nascimento_renormalises(ae):
    A, E = ae
    Y = mixing.bilinear(A, E, gamma=1.0, kind="nascimento")
    a = A[0, 0]
    b = np.array([a[0] * a[1], a[0] * a[2], a[1] * a[2]])
    ref = (a @ E + b[0] * E[0] * E[1] + b[1] * E[0] * E[2] + b[2] * E[1] * E[2]) / (1 + b.sum())
    np.testing.assert_allclose(Y[0, 0], ref, rtol=1e-5)
    np.testing.assert_allclose(mixing.bilinear(np.eye(3), E, kind="nascimento"), E, rtol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        mixing.bilinear(A, E, kind="hapke")


def test_linear_variable_per_pixel(ae):
    A, E = ae
    rng = np.random.default_rng(3)
    Ev = E + rng.normal(0, 0.01, (5, 7, 3, 11)).astype(np.float32)
    Y = mixing.linear_variable(A, Ev)
    assert Y.shape == (5, 7, 11)
    np.testing.assert_allclose(Y[1, 2], A[1, 2] @ Ev[1, 2], rtol=1e-5)
    # the same E everywhere equals the linear model
    np.testing.assert_allclose(mixing.linear_variable(A, np.broadcast_to(E, (5, 7, 3, 11))),
                               mixing.linear(A, E), rtol=1e-5)


@pytest.mark.parametrize("kind", ["white", "signal"])
@pytest.mark.parametrize("snr", [10.0, 30.0, 45.0])
def test_noise_reaches_requested_snr(kind, snr):
    rng = np.random.default_rng(0)
    A = _simplex(rng, (40, 60, 4))
    E = rng.uniform(0.02, 0.8, (4, 150))
    clean = mixing.linear(A, E)
    noisy = mixing.add_noise(clean, snr, rng=7, kind=kind)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(mixing.snr_db(clean, noisy) - snr) < 0.1


def test_signal_dependent_noise_reaches_the_snr_when_the_signal_has_negative_values():
    # var = c * max(clean, 0): values <= 0 get no noise and count nothing towards the noise level
    # (a signed sum made the negatives lower it, and the SNR came out low)
    rng = np.random.default_rng(1)
    clean = (rng.uniform(-0.4, 0.6, (50, 60, 40))).astype(np.float32)
    noisy = mixing.add_noise(clean, 20.0, rng=3, kind="signal")
    c, d = clean.astype(np.float64), noisy.astype(np.float64) - clean
    assert abs(10 * np.log10((c * c).sum() / (d * d).sum()) - 20.0) < 0.2  # a signed sum: 2.6 dB low
    assert (d[clean <= 0] == 0).all()


def test_measured_snr_pairs_the_values_of_both_arrays_when_one_holds_nan():
    # the textbook ratio over the values both arrays hold: a pixel NaN in the noisy cube only
    # (masked after the noise) has no error, so its signal is not counted either (it counted,
    # and the SNR of this case read 1.8 dB high)
    rng = np.random.default_rng(2)
    clean = rng.uniform(0.1, 1.0, (6, 9, 5))
    noisy = clean + 0.05 * rng.standard_normal(clean.shape)
    noisy[:2] = np.nan
    clean[3, 4, 1] = np.nan
    both = np.isfinite(clean) & np.isfinite(noisy)
    c, d = clean[both], noisy[both] - clean[both]
    want = 10 * np.log10(np.sum(c**2) / np.sum(d**2))
    assert mixing.snr_db(clean, noisy) == pytest.approx(want, rel=1e-12)
    assert mixing.snr_db(noisy, clean) == pytest.approx(10 * np.log10(np.sum(noisy[both] ** 2) / np.sum(d**2)),
                                                        rel=1e-12)


def test_signal_noise_variance_follows_signal():
    clean = np.concatenate([np.full((1, 20000, 1), 0.05), np.full((1, 20000, 1), 0.8)], axis=1)
    noise = mixing.add_noise(clean, 20.0, rng=0, kind="signal") - clean.astype(np.float32)
    ratio = noise[0, 20000:].var() / noise[0, :20000].var()
    assert 14 < ratio < 18  # variance proportional to signal: 0.8 / 0.05 = 16
    white = mixing.add_noise(clean, 20.0, rng=0, kind="white") - clean.astype(np.float32)
    assert 0.9 < white[0, 20000:].var() / white[0, :20000].var() < 1.1


def test_noise_seed_is_deterministic():
    clean = np.random.default_rng(0).uniform(0, 1, (8, 9, 10))
    a = mixing.add_noise(clean, 25.0, rng=42)
    b = mixing.add_noise(clean, 25.0, rng=42)
    c = mixing.add_noise(clean, 25.0, rng=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(mixing.add_noise(clean, None), clean.astype(np.float32))
    with pytest.raises(ParameterError, match="kind='pink'"):
        mixing.add_noise(clean, 25.0, kind="pink")
    with pytest.raises(ParameterError, match="snr_db=nan"):  # NaN would fill the cube with NaN
        mixing.add_noise(clean, float("nan"))
    np.testing.assert_array_equal(mixing.add_noise(clean, float("inf")), clean.astype(np.float32))


def _old_add_noise(clean, snr, seed, kind):
    """add_noise as it was, on whole-cube float64 copies: the reference for the chunked one."""
    rng = np.random.default_rng(seed)
    c64 = clean.astype(np.float64)
    finite = np.isfinite(c64)
    power = float(np.sum(np.where(finite, c64, 0.0) ** 2))
    energy = power / 10.0 ** (snr / 10.0)
    z = rng.standard_normal(clean.shape, dtype=np.float32)
    if kind == "white":
        noise = z * np.float32(np.sqrt(energy / max(int(finite.sum()), 1)))
    else:
        level = np.where(finite, np.maximum(c64, 0.0), 0.0)
        noise = z * (np.sqrt(level) * np.sqrt(energy / float(level.sum()))).astype(np.float32)
    return clean + noise


@pytest.mark.parametrize("kind", ["white", "signal"])
def test_noise_is_added_in_chunks_with_the_same_values(monkeypatch, kind):
    # `simulate --snr` of a 1000x1000x200 scene peaked at 8 GB: add_noise and snr_db made
    # several float64 copies of the whole cube
    import tracemalloc

    rng = np.random.default_rng(1)
    clean = mixing.linear(_simplex(rng, (100, 100, 4)), rng.uniform(0.02, 0.8, (4, 50)))
    clean[3, 4, 5] = np.nan
    want = _old_add_noise(clean, 25.0, 3, kind)
    monkeypatch.setattr(mixing, "CHUNK", 777)
    tracemalloc.start()
    try:
        got = mixing.add_noise(clean, 25.0, rng=3, kind=kind)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, want)
    assert peak < 1.5 * clean.nbytes  # the float32 result, not float64 copies of the cube
    with_nan = np.isnan(clean)
    want_snr = 10 * np.log10(np.nansum(clean.astype(np.float64) ** 2)
                             / np.nansum((got.astype(np.float64) - clean) ** 2))
    tracemalloc.start()
    try:
        measured = mixing.snr_db(clean, got)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert measured == pytest.approx(want_snr, rel=1e-12) and with_nan.any()
    assert peak < 0.5 * clean.nbytes


@pytest.mark.parametrize("kind", ["white", "signal"])
def test_band_noise_profile_sets_each_bands_share_at_the_same_snr(kind):
    # real sensors' noise differs 10-50x between bands; the profile must shape it per band
    # while the global SNR stays the one asked for
    rng = np.random.default_rng(2)
    clean = mixing.linear(_simplex(rng, (120, 150, 3)), rng.uniform(0.3, 0.6, (3, 6)))
    band_std = np.array([1.0, 2.0, 4.0, 1.0, 8.0, 0.5])
    noisy = mixing.add_noise(clean, 20.0, rng=5, kind=kind, band_std=band_std)
    assert abs(mixing.snr_db(clean, noisy) - 20.0) < 0.1
    var = (noisy - clean.astype(np.float32)).reshape(-1, 6).var(0)
    want = band_std**2 * (clean.reshape(-1, 6).mean(0) if kind == "signal" else 1.0)
    np.testing.assert_allclose(var / var[0], want / want[0], rtol=0.05)


def test_flat_band_profile_is_white_noise_and_bad_profiles_are_refused():
    clean = np.random.default_rng(0).uniform(0, 1, (8, 9, 10))
    np.testing.assert_array_equal(mixing.add_noise(clean, 25.0, rng=4, band_std=np.full(10, 3.0)),
                                  mixing.add_noise(clean, 25.0, rng=4))
    for bad in (np.ones(9), np.r_[np.ones(9), 0.0], np.r_[np.ones(9), np.nan]):
        with pytest.raises(ParameterError, match="band_std"):
            mixing.add_noise(clean, 25.0, band_std=bad)


def test_a_band_profile_of_huge_or_tiny_numbers_is_only_a_shape():
    clean = np.random.default_rng(0).uniform(0.1, 1, (20, 30, 6))
    shape = np.array([1.0, 2.0, 4.0, 1.0, 8.0, 0.5])
    want = mixing.add_noise(clean, 20.0, rng=1, band_std=shape)
    for scale in (1e200, 1e-200):  # squared, these overflow to inf or underflow to 0
        got = mixing.add_noise(clean, 20.0, rng=1, band_std=shape * scale)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
