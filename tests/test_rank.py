"""HySime: the number of endmembers and the noise level of synthetic scenes are recovered."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spectra_fixture import smooth_spectra
from unmixgen.errors import InputError
from unmixgen.unmix.rank import estimate_noise, hysime


def mixed_scene(p: int, snr_db: float, *, n: int = 3000, bands: int = 60, seed: int = 0):
    """Dirichlet mixtures of p spectra plus white noise at ``snr_db``; returns (Y float32, sigma^2)."""
    rng = np.random.default_rng(seed)
    E = smooth_spectra(p, bands, rng)
    X = rng.dirichlet(np.ones(p), n) @ E
    s2 = float(np.mean(X**2)) / 10 ** (snr_db / 10)
    Y = X + rng.normal(0.0, np.sqrt(s2), X.shape)
    return Y.astype(np.float32), s2


@pytest.mark.parametrize("p", [3, 4, 5, 6, 7, 8])
def test_hysime_recovers_number_of_endmembers(p):
    Y, s2 = mixed_scene(p, snr_db=35.0, seed=100 + p)
    est = hysime(Y)
    assert est.n_endmembers == p
    assert est.signal_subspace.shape == (60, p)
    # the basis is orthonormal
    np.testing.assert_allclose(est.signal_subspace.T @ est.signal_subspace, np.eye(p), atol=1e-8)
    assert np.all(np.diff(est.eigenvalues) <= 1e-12)


@pytest.mark.parametrize("snr_db", [30.0, 40.0])
def test_noise_variance_within_20_percent(snr_db):
    Y, s2 = mixed_scene(5, snr_db, seed=7)
    est = hysime(Y)
    ratio = est.noise_variance / s2
    assert est.noise_variance.shape == (60,)
    assert abs(np.median(ratio) - 1.0) < 0.2
    assert np.all((ratio > 0.7) & (ratio < 1.5))


def test_estimate_noise_is_the_per_band_regression_residual():
    Y, _ = mixed_scene(4, 30.0, n=500, bands=12, seed=3)
    noise, Rn = estimate_noise(Y)
    assert noise.dtype == np.float32 and noise.shape == Y.shape and Rn.shape == (12, 12)
    Yd = Y.astype(np.float64)
    for i in (0, 5, 11):  # reference: explicit least squares of band i on the other bands
        others = np.delete(Yd, i, axis=1)
        coef = np.linalg.lstsq(others, Yd[:, i], rcond=None)[0]
        np.testing.assert_allclose(noise[:, i], Yd[:, i] - others @ coef, atol=1e-4)
    np.testing.assert_allclose(Rn, noise.astype(np.float64).T @ noise / 500, rtol=1e-4, atol=1e-12)
    # hysime's one-pass algebra (Rn = M^T R M / N) agrees with the explicit residuals
    np.testing.assert_allclose(hysime(Y, sample=None).noise_variance, np.diag(Rn), rtol=1e-5)


def test_subsampling_and_json_summary():
    Y, _ = mixed_scene(4, 40.0, n=6000, seed=11)
    est = hysime(Y, sample=2500)
    assert est.n_samples == 2500 and est.n_endmembers == 4
    d = est.as_dict(max_values=10)
    json.dumps(d, allow_nan=False)
    assert d["n_endmembers"] == 4 and len(d["eigenvalues"]) == 10 and d["snr_db"] > 30


def test_too_few_pixels_is_an_input_error():
    with pytest.raises(InputError, match="pixels"):
        hysime(np.random.default_rng(0).random((5, 20), dtype=np.float32))


# --- spatial-neighbour noise estimate (the n_endmembers="auto" path) -------------------------
def smooth_scene(p: int, snr_db: float, *, seed: int, size: int = 48, bands: int = 80):
    from unmixgen.simulate.procedural import make_scene

    return make_scene(rows=size, cols=size + 6, bands=bands, p=p, snr_db=snr_db, seed=seed,
                      pure_pixels=False, max_abundance=0.8)


def band_correlated_noise(shape, sigma: float, corr_bands: float, rng) -> np.ndarray:
    """Gaussian noise independent between pixels, correlated across bands (Gaussian kernel)."""
    bands = shape[-1]
    d = np.arange(bands)[:, None] - np.arange(bands)[None, :]
    K = np.exp(-0.5 * (d / corr_bands) ** 2)
    K /= np.sqrt((K**2).sum(axis=0, keepdims=True))
    return (rng.normal(0.0, sigma, shape) @ K).astype(np.float32)


@pytest.mark.parametrize("p", [3, 5, 7])
def test_spatial_rank_recovers_p_on_smooth_scenes(p):
    from unmixgen.unmix.spatial_rank import spatial_rank

    scene = smooth_scene(p, 35.0, seed=40 + p)
    est = spatial_rank(scene.load())
    assert est.n_endmembers == p and est.regime == "floor"
    assert np.all(np.diff(est.eigenvalues) <= 1e-9)
    # white noise: the whitened noise floor is near 1
    assert 0.7 < est.floor < 1.6


@pytest.mark.parametrize("p", [14, 20])
def test_spatial_rank_counts_more_than_thirteen_materials_over_a_clean_floor(p):
    """With more than 13 well-separated materials the 13th eigenvalue is still signal; the
    spectrum then falls straight onto the flat floor, which is the floor regime too (the
    count of the dominant directions gave 9-13 for 14-20 materials)."""
    from unmixgen.simulate.procedural import abundance_maps
    from unmixgen.unmix.spatial_rank import spatial_rank

    rng = np.random.default_rng(p)
    E = rng.uniform(0.1, 1.0, (p, 120))
    clean = abundance_maps(48, 54, p, rng, max_abundance=0.8) @ E
    cube = (clean + rng.normal(0, np.sqrt(np.mean(clean ** 2) / 1e4), clean.shape)).astype(np.float32)
    est = spatial_rank(cube)
    assert est.regime == "floor" and est.n_endmembers == p


def test_band_correlated_noise_fools_hysime_but_not_the_spatial_estimate():
    from unmixgen.unmix.spatial_rank import spatial_rank

    scene = smooth_scene(4, None, seed=5)
    clean = scene.load()
    cube = clean + band_correlated_noise(clean.shape, 0.01, 3.0, np.random.default_rng(0))
    assert hysime(cube.reshape(-1, cube.shape[-1])).n_endmembers > 8
    assert spatial_rank(cube).n_endmembers == 4


def test_neighbour_noise_covariance_matches_the_noise_covariance():
    from unmixgen.unmix.spatial_rank import neighbour_noise_covariance

    rng = np.random.default_rng(1)
    noise = band_correlated_noise((90, 70, 12), 0.02, 2.0, rng)
    # a smooth (linear ramp) signal cancels in the neighbour residual
    ramp = np.linspace(0, 1, 90)[:, None, None] * np.linspace(0.5, 1.5, 12) + 0.3
    R = neighbour_noise_covariance(ramp + noise)
    flat = noise.reshape(-1, 12).astype(np.float64)
    ref = flat.T @ flat / flat.shape[0]
    assert np.abs(R - ref).max() < 0.08 * np.abs(ref).max()


def test_spatial_rank_skips_invalid_pixels():
    from unmixgen.unmix.spatial_rank import spatial_rank

    scene = smooth_scene(4, 35.0, seed=9)
    cube = scene.load().copy()
    mask = np.ones(cube.shape[:2], bool)
    cube[5:9, 10:30] = np.nan
    mask[5:9, 10:30] = False
    est = spatial_rank(cube, mask)
    assert est.n_endmembers == 4 and np.isfinite(est.eigenvalues).all()


def test_spatial_rank_refuses_tiny_scenes():
    from unmixgen.unmix.spatial_rank import spatial_rank

    with pytest.raises(InputError, match="at least 3 x 3"):
        spatial_rank(np.ones((2, 40, 5), np.float32))


def test_rank_estimates_refuse_a_mask_or_a_scene_they_cannot_take():
    # a mask of another shape was a numpy IndexError; a Scene was "cube has shape ()"
    from unmixgen.scene import Scene
    from unmixgen.unmix.spatial_rank import spatial_rank

    cube = np.random.default_rng(0).random((6, 9, 4)).astype(np.float32)
    with pytest.raises(InputError, match=r"^mask: shape \(9, 6\); expected \(6, 9\), one flag per pixel"):
        spatial_rank(cube, np.ones((9, 6), bool))
    with pytest.raises(InputError, match=r"^cube is a Scene; expected its array: spatial_rank\(scene.load\(\)"):
        spatial_rank(Scene(cube))
    with pytest.raises(InputError, match=r"^Y is a Scene; expected its pixels: hysime\(scene.valid_pixels\(\)"):
        hysime(Scene(cube))


def test_noise_summary_needs_four_pixels_a_band():
    from unmixgen.unmix.rank import noise_summary

    Y = np.random.default_rng(0).random((30, 10))
    assert noise_summary(Y) == {"snr_db": None, "noise_std_spread": None, "noise_std_max_min": None,
                                "bands_weighted": False, "derived_bands": []}


def test_band_weights_option_names_the_parameter_for_any_bad_value():
    # an array of weights (what invert_scene takes) failed with numpy's "truth value of an
    # array is ambiguous" in unmix_scene / refine_result instead of naming band_weights
    from unmixgen.errors import ParameterError
    from unmixgen.unmix.rank import band_weights_option

    assert band_weights_option("noise") == "noise" and band_weights_option("none") is None
    for bad in ("Noise", np.ones(3), 1.0):
        with pytest.raises(ParameterError, match="band_weights"):
            band_weights_option(bad)


def test_neighbour_noise_correlation_of_shared_noise():
    from unmixgen.unmix.rank import neighbour_noise_correlation

    rng = np.random.default_rng(4)
    z = rng.standard_normal((81, 61, 20))
    white = z[:80, :60]
    # each pixel the mean of its own and its right neighbour's draw: horizontal neighbours
    # share half their noise (correlation 0.5), vertical ones none
    along_rows = (z[:80, :60] + z[:80, 1:61]) / np.sqrt(2)
    # 2 x 2 blocks (bilinear interpolation halfway between pixels): 0.5 both ways
    blocks = (z[:-1, :-1] + z[1:, :-1] + z[:-1, 1:] + z[1:, 1:]) / 2
    valid = np.ones((80, 60), bool)
    assert np.allclose(neighbour_noise_correlation(white, valid), 0.0, atol=0.02)
    assert np.allclose(neighbour_noise_correlation(along_rows, valid), (0.0, 0.5), atol=0.02)
    assert np.allclose(neighbour_noise_correlation(blocks, valid), (0.5, 0.5), atol=0.02)
    # pixels not valid do not count, whatever they hold; too few pairs: None
    spoiled = blocks.copy()
    spoiled[:, 30:] = 100.0
    half = valid.copy()
    half[:, 30:] = False
    assert np.allclose(neighbour_noise_correlation(spoiled, half), (0.5, 0.5), atol=0.03)
    assert neighbour_noise_correlation(white[:5, :5], valid[:5, :5]) == (None, None)


def test_window_noise_correlation_sees_through_the_signal():
    # mixtures of smooth spectra: the signal correlates between neighbours, the HySime
    # residuals keep only the noise's correlation (0 white, 0.5 for noise shared in 2 x 2 blocks)
    from unmixgen.unmix.rank import window_noise_correlation

    rng = np.random.default_rng(6)
    E = smooth_spectra(4, 50, rng)

    def image(shared: bool) -> np.ndarray:
        from scipy.ndimage import gaussian_filter

        a = np.exp(2 * gaussian_filter(rng.standard_normal((60, 60, 4)), (4, 4, 0)) / 0.1)
        X = (a / a.sum(-1, keepdims=True)) @ E  # smooth maps: neighbours' signal nearly equal
        z = rng.standard_normal((61, 61, 50))
        n = (z[:-1, :-1] + z[1:, :-1] + z[:-1, 1:] + z[1:, 1:]) / 2 if shared else z[:60, :60]
        return X + 0.01 * n

    valid = np.ones((60, 60), bool)
    for shared, expected in ((False, 0.0), (True, 0.5)):
        window = image(shared)
        rho = window_noise_correlation(window, valid)
        assert np.allclose(rho, expected, atol=0.03), (shared, rho)


def column_striped(cube: np.ndarray, std: float, seed: int) -> np.ndarray:
    """``cube`` read by a pushbroom detector whose element of each (column, band) has its own gain."""
    gain = 1.0 + std * np.random.default_rng(seed).standard_normal(cube.shape[1:])
    return (cube * gain[None]).astype(np.float32)


@pytest.mark.parametrize("std", [0.01, 0.02])
def test_detector_stripes_are_not_counted_as_materials(std):
    """Column gains 1-2 % off at 40 dB: the plain estimate counts their slow patterns over the
    columns as materials; with the stripes `column_stripes` measures taken into the noise the
    count is the scene's 4."""
    from unmixgen.scene import Scene
    from unmixgen.unmix.spatial_rank import scene_rank, spatial_rank

    clean = smooth_scene(4, 40.0, seed=3, size=64)
    cube = column_striped(clean.load(), std, seed=3)
    assert spatial_rank(cube).n_endmembers > 4
    est = scene_rank(Scene(cube))
    assert est.n_endmembers == 4
    assert est.as_dict()["stripes_in_noise"]["lines"] >= 60


def test_a_scene_without_stripes_is_counted_as_before():
    from unmixgen.unmix.spatial_rank import scene_rank, spatial_rank

    scene = smooth_scene(5, 30.0, seed=8)
    est, plain = scene_rank(scene), spatial_rank(scene.load())
    assert est.n_endmembers == plain.n_endmembers == 5
    np.testing.assert_array_equal(est.eigenvalues, plain.eigenvalues)
    assert "stripes_in_noise" not in est.as_dict()


def test_faint_stripes_beside_the_noise_cost_the_count_nothing():
    """At 30 dB, 1 % stripes are a tenth of the noise: the count keeps the weakest material a
    threshold set for stripes alone (twice their Marchenko-Pastur edge) would drop."""
    from unmixgen.unmix.spatial_rank import spatial_rank

    cube = column_striped(smooth_scene(4, 30.0, seed=4, size=64).load(), 0.01, seed=4)
    faint = spatial_rank(cube, stripe_gain_std=np.full(cube.shape[-1], 0.01), stripe_lines=cube.shape[1])
    assert faint.n_endmembers == 4
    alone = 2.0 * (1.0 + np.sqrt(cube.shape[-1] / cube.shape[1])) ** 2
    assert faint.eigenvalues[2] < alone * max(faint.floor, 1.0)  # the weakest material


def test_stripe_arguments_are_checked():
    from unmixgen.unmix.spatial_rank import spatial_rank

    cube = smooth_scene(3, 30.0, seed=1).load()
    with pytest.raises(InputError, match="stripe_gain_std"):
        spatial_rank(cube, stripe_gain_std=np.full(cube.shape[-1] - 1, 0.01), stripe_lines=40)
    with pytest.raises(InputError, match="stripe_lines"):
        spatial_rank(cube, stripe_gain_std=np.full(cube.shape[-1], 0.01))


def test_blind_auto_counts_a_striped_scene_and_records_the_stripes():
    from unmixgen.scene import Scene
    from unmixgen.unmix.registry import make_method

    cube = column_striped(smooth_scene(4, 40.0, seed=5, size=64).load(), 0.02, seed=5)
    est = make_method("vca", "auto").fit(Scene(cube))
    assert est.n_endmembers_ == 4
    assert "stripes_in_noise" in est.info_["rank_estimate"]


def test_unmix_auto_measures_the_stripes_once_and_records_them(tmp_path, monkeypatch):
    # -p auto measures the scene's stripes for its count; the run's stripe record and warning
    # take that measure instead of searching the scene a second time
    from unmixgen.io import write_scene
    from unmixgen.scene import Scene
    from unmixgen.unmix import stripes
    from unmixgen.workflows.unmixing import unmix_scene

    cube = column_striped(smooth_scene(4, 40.0, seed=5, size=64).load(), 0.02, seed=5)
    write_scene(Scene(cube, wavelengths=np.linspace(400, 2400, cube.shape[2])), tmp_path / "s.npz")
    calls = []
    measure = stripes.column_stripes
    monkeypatch.setattr(stripes, "column_stripes", lambda scene, **kw: calls.append(1) or measure(scene, **kw))
    with pytest.warns(UserWarning, match="striped"):
        unmix_scene(tmp_path / "s.npz", tmp_path / "run", n_endmembers="auto", method="vca", figures=False,
                    progress=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert len(calls) == 1
    assert run["n_endmembers"] == 4 and run["stripes"]["detected"] is True
    assert "stripes_in_noise" in run["rank_estimate"]


def test_auto_on_a_striped_scene_with_bad_bands_takes_the_stripes_of_its_good_bands():
    from unmixgen.scene import Scene
    from unmixgen.unmix.registry import make_method

    cube = column_striped(smooth_scene(4, 40.0, seed=5, size=64).load(), 0.02, seed=5)
    good = np.ones(cube.shape[-1], bool)
    good[[0, 7, 8, cube.shape[-1] - 1]] = False
    est = make_method("vca", "auto").fit(Scene(cube, good_bands=good))
    assert est.n_endmembers_ == 4
    assert "stripes_in_noise" in est.info_["rank_estimate"]
