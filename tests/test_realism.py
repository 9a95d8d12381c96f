"""Realism metrics, baselines and the evaluate-synthesis table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.stats import wasserstein_distance

from unmixgen.errors import InputError, ParameterError
from unmixgen.evaluate.baselines import DirichletBaseline, GaussianFieldBaseline, fit_dirichlet
from unmixgen.evaluate.realism import (
    METRICS,
    dihedral,
    diversity,
    memorization,
    power_spectrum_distance,
    realism_metrics,
    semivariogram,
    sliced_wasserstein,
    variogram_distance,
    wasserstein_1d,
)
from unmixgen.evaluate.synthesis import evaluate_synthesis, format_realism_table
from unmixgen.priors.abundance.patches import split_maps


def smooth_maps(n, size=(24, 20), p=3, sigma=2.5, scale=12.0, seed=0):
    """Softmax of Gaussian-filtered white noise: smooth, valid abundance maps (N, h, w, p)."""
    rng = np.random.default_rng(seed)
    z = gaussian_filter(rng.standard_normal((n, *size, p)), sigma=(0, sigma, sigma, 0), mode="wrap")
    z *= scale
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def blur(maps, sigma):
    return gaussian_filter(maps, sigma=(0, sigma, sigma, 0), mode="wrap")


def assert_valid(a):
    assert np.all(np.isfinite(a)) and a.min() >= 0
    np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-5)


def test_identical_sets_are_at_distance_zero():
    a = smooth_maps(6)
    m = realism_metrics(a, a.copy())
    assert set(m) == set(METRICS)
    for k, v in m.items():
        assert v == pytest.approx(0.0, abs=1e-12), k


def test_w1_matches_scipy_and_grows_with_value_shift():
    a = smooth_maps(4, seed=1)
    b = smooth_maps(4, seed=2)
    ref = np.mean([wasserstein_distance(a[..., k].ravel(), b[..., k].ravel()) for k in range(3)])
    assert wasserstein_1d(a, b) == pytest.approx(ref, rel=1e-3)
    vertex = np.zeros(3, np.float32)
    vertex[0] = 1
    dists = [wasserstein_1d((1 - t) * a + t * vertex, a) for t in (0.05, 0.2, 0.5)]
    swd = [sliced_wasserstein((1 - t) * a + t * vertex, a) for t in (0.05, 0.2, 0.5)]
    assert 0 < dists[0] < dists[1] < dists[2]
    assert 0 < swd[0] < swd[1] < swd[2]


def _w1_by_cdf(x, y):
    """W1 from its definition, int |F(t) - G(t)| dt over the pooled values (the reference)."""
    t = np.sort(np.concatenate([x, y]))
    f = np.searchsorted(np.sort(x), t[:-1], side="right") / x.size
    g = np.searchsorted(np.sort(y), t[:-1], side="right") / y.size
    return float(np.sum(np.abs(f - g) * np.diff(t)))


def test_w1_is_exact_for_sets_of_different_sizes():
    # 5 maps of 2x2 (20 pixels) against 3 (12 pixels): half of the candidate's first abundances
    # are 0, a third of the reference's, so F - G = 1/2 - 1/3 on [0, 1): W1 = 1/6 (and the same
    # for the second endmember, 1 - the first)
    cand = np.zeros((5, 2, 2, 2))
    cand[..., 0] = np.array([0.0] * 10 + [1.0] * 10).reshape(5, 2, 2)
    ref = np.zeros((3, 2, 2, 2))
    ref[..., 0] = np.array([0.0] * 4 + [1.0] * 8).reshape(3, 2, 2)
    cand[..., 1], ref[..., 1] = 1 - cand[..., 0], 1 - ref[..., 0]
    assert wasserstein_1d(cand, ref) == pytest.approx(1 / 6, abs=1e-12)
    rng = np.random.default_rng(0)
    for n, m in ((5, 3), (7, 5), (2, 1)):
        a, b = rng.dirichlet([1, 1, 1], (n, 2, 2)), rng.dirichlet([1, 1, 1], (m, 2, 2))
        want = np.mean([_w1_by_cdf(a[..., k].ravel(), b[..., k].ravel()) for k in range(3)])
        assert wasserstein_1d(a, b) == pytest.approx(want, abs=1e-12)
    # two endmembers, the first shifted by c = 0.1 (the second by -c): W1 = c, whatever the sizes
    x = rng.uniform(0.2, 0.8, (5, 2, 2))
    a = np.stack([x, 1 - x], -1)
    b = np.stack([x[:3] + 0.1, 0.9 - x[:3]], -1)
    want = np.mean([_w1_by_cdf(a[..., k].ravel(), b[..., k].ravel()) for k in range(2)])
    assert wasserstein_1d(a, b) == pytest.approx(want, abs=1e-12)
    assert wasserstein_1d(a, np.stack([x + 0.1, 0.9 - x], -1)) == pytest.approx(0.1, abs=1e-12)


def test_spatial_distances_grow_with_blur():
    a = smooth_maps(6, sigma=1.5, seed=3)
    psd = [power_spectrum_distance(blur(a, s), a) for s in (0.7, 1.5, 3.0)]
    vg = [variogram_distance(blur(a, s), a) for s in (0.7, 1.5, 3.0)]
    assert 0 < psd[0] < psd[1] < psd[2]
    assert 0 < vg[0] < vg[1] < vg[2]
    # a mean-preserving blur leaves the value distribution's centre but shrinks its spread
    assert wasserstein_1d(blur(a, 3.0), a) > 0


def test_semivariogram_of_known_pattern():
    # stripes 0/1 alternating along columns, constant along rows: gamma_col(odd lag) = 0.5
    h, w = 8, 10
    a = np.zeros((1, h, w, 2))
    a[0, :, ::2, 0] = 1
    a[..., 1] = 1 - a[..., 0]
    g = semivariogram(a, max_lag=4)
    assert g.shape == (4, 2)
    # lag 1: column pairs all differ (count (h)*(w-1)), row pairs never (count (h-1)*w)
    expect1 = 0.5 * (h * (w - 1)) / (h * (w - 1) + (h - 1) * w)
    assert g[0, 0] == pytest.approx(expect1)
    assert g[1, 0] == pytest.approx(0.0)


def test_dirichlet_fit_recovers_parameters_and_matches_marginals():
    rng = np.random.default_rng(0)
    alpha = np.array([2.0, 3.0, 1.5])
    data = rng.dirichlet(alpha, size=(8, 16, 16)).astype(np.float32)
    fitted = fit_dirichlet(data.reshape(-1, 3))
    np.testing.assert_allclose(fitted, alpha, rtol=0.1)
    base = DirichletBaseline().fit(data)
    s = base.sample(8, (16, 16), seed=1)
    assert s.shape == (8, 16, 16, 3) and s.dtype == np.float32
    assert_valid(s)
    fresh = rng.dirichlet(alpha, size=(8, 16, 16))
    assert wasserstein_1d(s, data) < 0.02
    assert wasserstein_1d(s, data) < 2 * wasserstein_1d(fresh, data) + 0.005


def test_dirichlet_has_worse_spectrum_than_real_smooth_maps():
    train, held, floor = smooth_maps(10, seed=4), smooth_maps(8, seed=5), smooth_maps(8, seed=6)
    d = DirichletBaseline().fit(train).sample(8, held.shape[1:3], seed=0)
    assert_valid(d)
    assert power_spectrum_distance(d, held) > 3 * power_spectrum_distance(floor, held)
    assert variogram_distance(d, held) > 3 * variogram_distance(floor, held)


def test_gaussian_field_reproduces_spectrum_of_gaussian_field_data():
    train, held = smooth_maps(16, seed=7, scale=3.0), smooth_maps(16, seed=8, scale=3.0)
    g = GaussianFieldBaseline().fit(train).sample(16, held.shape[1:3], seed=0)
    assert g.shape == held.shape
    assert_valid(g)
    d = DirichletBaseline().fit(train).sample(16, held.shape[1:3], seed=0)
    floor_psd = power_spectrum_distance(smooth_maps(16, seed=9, scale=3.0), held)
    assert power_spectrum_distance(g, held) < 0.15
    assert power_spectrum_distance(g, held) < 3 * floor_psd + 0.05
    assert power_spectrum_distance(g, held) < 0.3 * power_spectrum_distance(d, held)
    # other sizes: sampled from the radial profile, still valid and smooth
    big = GaussianFieldBaseline().fit(train).sample(2, (40, 32), seed=1)
    assert big.shape == (2, 40, 32, 3)
    assert_valid(big)


def test_memorization_flags_transformed_copies_not_fresh_samples():
    train = smooth_maps(12, size=(16, 16), seed=10)
    held = smooth_maps(8, size=(16, 16), seed=11)
    copies = dihedral(train[:3])[[1, 5, 10, 14, 19, 23]]  # rotations / flips of training maps
    fresh = smooth_maps(8, size=(16, 16), seed=12)
    m = memorization(np.concatenate([copies, fresh]), train, held)
    assert m["flagged"][:6].all()
    assert not m["flagged"][6:].any()
    assert m["flagged_fraction"] == pytest.approx(6 / 14)


def test_dihedral_non_square_keeps_shape():
    a = smooth_maps(2, size=(6, 4))
    d = dihedral(a)
    assert d.shape == (8, 6, 4, 3)
    assert len(dihedral(smooth_maps(2, size=(5, 5)))) == 16


def test_diversity_zero_for_identical_maps():
    a = np.repeat(smooth_maps(1), 5, axis=0)
    assert diversity(a) == pytest.approx(0.0, abs=1e-7)
    assert diversity(smooth_maps(5)) > 0.05


def test_evaluate_synthesis_table():
    train, held, floor = smooth_maps(10, seed=13), smooth_maps(6, seed=14), smooth_maps(6, seed=15)
    samples = smooth_maps(7, seed=16)
    r = evaluate_synthesis(samples, held, train=train, floor=floor, seed=0)
    assert set(r["rows"]) == {"model", "dirichlet", "grf", "floor"}
    for row in r["rows"].values():
        assert set(METRICS) <= set(row) and "diversity_ratio" in row and "copied_fraction" in row
    assert r["ratio_to_floor"]["floor"]["power_spectrum"] == pytest.approx(1.0)
    assert r["rows"]["model"]["copied_fraction"] == 0
    assert r["rows"]["model"]["power_spectrum"] < r["rows"]["dirichlet"]["power_spectrum"]
    text = format_realism_table(r)
    for word in ("model", "dirichlet", "grf", "floor", "PSD", "variogram", "memorization"):
        assert word in text
    # without train / floor: only the model row
    r2 = evaluate_synthesis(samples, held)
    assert set(r2["rows"]) == {"model"} and r2["memorization"] is None
    assert "model" in format_realism_table(r2)


def test_size_mismatch_and_invalid_maps_raise():
    with pytest.raises(InputError, match="size"):
        evaluate_synthesis(smooth_maps(2, size=(8, 8)), smooth_maps(2, size=(10, 8)))
    bad = smooth_maps(2) * 2
    with pytest.raises(InputError, match="sum"):
        wasserstein_1d(bad, smooth_maps(2))


@pytest.mark.parametrize("copy_fraction, message", [
    (float("nan"), "copy_fraction=nan: expected a finite number"),
    (-1.0, "copy_fraction=-1.0: expected > 0"),
    ("0.5", "copy_fraction='0.5': expected a number"),
])
def test_copy_fraction_must_be_a_positive_number(copy_fraction, message):
    # NaN flagged nothing ("no copies") and a negative fraction a negative threshold, silently
    maps = smooth_maps(3, size=(8, 8))
    with pytest.raises(ParameterError) as err:
        evaluate_synthesis(maps, maps, train=maps, copy_fraction=copy_fraction)
    assert str(err.value) == message
    with pytest.raises(ParameterError):
        memorization(maps, maps, maps, copy_fraction=copy_fraction)


@pytest.mark.parametrize("scene", ["samson", "jasper"])
def test_floor_beats_baselines_on_ground_truth_maps(shared_data, scene):
    from scipy.io import loadmat

    if scene == "samson":
        a = loadmat(shared_data / "samson" / "end3.mat")["A"].T.reshape((95, 95, 3), order="F")
    else:
        a = loadmat(shared_data / "jasper_ridge" / "end4.mat")["A"].T.reshape((100, 100, 4), order="F")
    split = split_maps([a.astype(np.float32)], patch=16)  # the product's interleaved domino hold-out
    r = evaluate_synthesis(split.floor, split.heldout, train=split.train_blocks, floor=split.floor)
    rows = r["rows"]
    for metric in ("power_spectrum", "variogram"):
        assert rows["floor"][metric] < rows["dirichlet"][metric]
        assert rows["floor"][metric] < rows["grf"][metric]
    assert rows["grf"]["power_spectrum"] < rows["dirichlet"]["power_spectrum"]


def test_memorization_with_larger_training_patches():
    train = smooth_maps(6, size=(32, 32), seed=20)
    held = smooth_maps(6, size=(16, 16), seed=21)
    copy = np.rot90(train[2, 4:20, 12:28], 1, axes=(0, 1))[None]  # a rotated window of a patch
    r = evaluate_synthesis(np.concatenate([copy, smooth_maps(3, size=(16, 16), seed=22)]), held, train=train)
    assert r["memorization"]["n_flagged"] == 1
