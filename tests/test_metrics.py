"""Unmixing metrics: exact values on hand-computable cases, matching, NaN handling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unmixgen.errors import InputError
from unmixgen.evaluate.unmixing import (
    abundance_rmse,
    evaluate,
    format_table,
    match_endmembers,
    mse,
    psnr,
    reconstruction_rmse,
    rmse,
    sad,
    sad_matrix,
    sam_map,
    sre,
    ssim_maps,
)


def _maps(rows=12, cols=17, p=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.dirichlet(np.ones(p), size=rows * cols).reshape(rows, cols, p)
    return a.astype(np.float32)


def test_mse_rmse_exact_and_skip_nan():
    a = np.array([1.0, 2.0, 3.0, np.nan])
    b = np.array([1.0, 4.0, 3.0, 0.0])
    assert mse(a, b) == pytest.approx(4.0 / 3.0)
    assert rmse(a, b) == pytest.approx(np.sqrt(4.0 / 3.0))


def test_sad_orthogonal_identical_and_scaled():
    e_ref = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]], np.float32)
    e_est = np.array([[0.0, 2.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(sad(e_est, e_ref), [90.0, 0.0, 45.0], atol=1e-6)
    # scale invariance and the pairwise matrix
    np.testing.assert_allclose(sad(5 * e_ref, e_ref), 0.0, atol=1e-5)
    m = sad_matrix(e_est, e_ref)
    assert m.shape == (3, 3)
    assert m[2, 0] == pytest.approx(0.0, abs=1e-6) and m[0, 0] == pytest.approx(90.0)


@pytest.mark.parametrize("theta", [0.0, 1e-9, 1e-7, 1e-4, 0.3, np.pi / 2, np.pi - 1e-7])
def test_spectral_angles_are_exact_at_small_and_large_angles(theta, monkeypatch):
    # two spectra at a known angle: cos(theta) u + sin(theta) v with u, v orthonormal (the
    # reference angle is theta itself). arccos of the cosine was 1e-6 degrees off at 0 (1 %
    # at 1e-7 rad); identical spectra give exactly 0 in sad, sad_matrix and sam_map
    rng = np.random.default_rng(3)
    u = rng.uniform(0.1, 1.0, 200)
    u /= np.linalg.norm(u)
    v = rng.standard_normal(200)
    v -= (v @ u) * u
    v /= np.linalg.norm(v)
    e_ref = np.stack([u, 0.37 * u])
    e_est = np.stack([np.cos(theta) * u + np.sin(theta) * v, 2.5 * (np.cos(theta) * u + np.sin(theta) * v)])
    want = np.degrees(theta)
    np.testing.assert_allclose(sad(e_est, e_ref), want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sad_matrix(e_est, e_ref), want, rtol=1e-9, atol=1e-12)
    cube = np.broadcast_to(e_ref[0], (2, 3, 200))
    np.testing.assert_allclose(sam_map(cube, np.broadcast_to(e_est[1], (2, 3, 200))), want, rtol=1e-9, atol=1e-12)
    assert (sad(e_ref, e_ref) == 0).all() and (sam_map(cube, cube) == 0).all()
    import unmixgen.evaluate.unmixing as um

    monkeypatch.setattr(um, "ANGLE_BLOCK", 4)  # rows in blocks: a short last one
    np.testing.assert_allclose(sam_map(cube, np.broadcast_to(e_est[1], (2, 3, 200))), want, rtol=1e-9, atol=1e-12)


def test_abundance_rmse_known_value():
    ref = np.zeros((2, 3, 2))
    est = ref.copy()
    est[..., 0] = 0.1  # every entry of endmember 0 off by 0.1
    overall, per = abundance_rmse(est, ref)
    np.testing.assert_allclose(per, [10.0, 0.0])
    assert overall == pytest.approx(100 * np.sqrt(0.01 / 2))
    # maps and flattened (N, p) arrays compare alike
    assert abundance_rmse(est, ref.reshape(-1, 2))[0] == pytest.approx(overall)


def test_abundance_rmse_nan_and_mask_skip_pixels():
    ref = _maps()
    est = ref.copy()
    est[0, 0] = [1.0, 0.0, 0.0]  # a wrong pixel, then hidden
    mask = np.ones(ref.shape[:2], bool)
    mask[0, 0] = False
    assert abundance_rmse(est, ref, mask)[0] == pytest.approx(0.0, abs=1e-12)
    est_nan = est.copy()
    est_nan[0, 0] = np.nan
    assert abundance_rmse(est_nan, ref)[0] == pytest.approx(0.0, abs=1e-12)
    assert abundance_rmse(est, ref)[0] > 1.0


def test_sre_known_value():
    ref = np.full((4, 2), 0.5)
    est = ref * 0.9  # ||A - Ahat||^2 = 0.01 ||A||^2 -> 20 dB
    assert sre(est, ref) == pytest.approx(20.0)
    assert sre(ref, ref) == float("inf")
    assert sre(est, np.zeros_like(ref)) == float("-inf")  # no reference energy: the worst, not the best


def test_ssim_identical_is_one_and_constant_maps_closed_form():
    a = _maps(20, 23)
    per, mean = ssim_maps(a, a)
    np.testing.assert_allclose(per, 1.0, atol=1e-12)
    assert mean == pytest.approx(1.0)
    # constant maps: sigma terms vanish, SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    x = np.full((15, 16, 1), 0.5)
    y = np.full((15, 16, 1), 0.25)
    c1 = 0.01**2
    expected = (2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1)
    assert ssim_maps(x, y)[1] == pytest.approx(expected, rel=1e-9)



def test_ssim_filters_one_map_at_a_time_with_the_whole_filtering_numbers():
    # the local statistics of all p maps were float64 arrays side by side (a dozen of them, with
    # the float64 copies of both sides): 2.1 GB for five 2000 x 2000 maps, the peak of
    # `unmixgen evaluate`. Map by map, they hold one map's; the numbers are those of filtering
    # all at once (here computed that way)
    import tracemalloc

    from scipy import ndimage

    rng = np.random.default_rng(3)
    est = rng.random((300, 280, 8)).astype(np.float32)
    ref = (est + 0.1 * rng.standard_normal(est.shape)).astype(np.float32)
    mask = np.ones((300, 280), bool)
    mask[:4] = False
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        per, mean = ssim_maps(est, ref, mask)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    one_map64 = 300 * 280 * 8
    assert peak < 20 * one_map64, peak / one_map64  # ~110 map-sized float64 arrays before
    x = np.where(mask[..., None], est.astype(np.float64), 0.0)
    y = np.where(mask[..., None], ref.astype(np.float64), 0.0)

    def filt(img):
        return ndimage.gaussian_filter(img, sigma=(1.5, 1.5, 0), truncate=5 / 1.5, mode="reflect")

    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx * mx, filt(y * y) - my * my, filt(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    keep = mask.copy()
    keep[:5], keep[-5:], keep[:, :5], keep[:, -5:] = False, False, False, False
    np.testing.assert_allclose(per, smap[keep].mean(axis=0), rtol=1e-12)
    assert mean == pytest.approx(per.mean(), rel=1e-15)


def _smooth_maps(rows, cols, p, seed, sigma=2.0, gain=6.0):
    """Spatially structured maps on the simplex (softmax of blurred noise)."""
    from scipy.ndimage import gaussian_filter

    z = gaussian_filter(np.random.default_rng(seed).standard_normal((rows, cols, p)), (sigma, sigma, 0))
    e = np.exp(gain * (z - z.max(-1, keepdims=True)))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("rows, cols, p, seed", [(20, 23, 3, 0), (31, 17, 4, 1), (12, 40, 2, 2)])
def test_ssim_matches_scikit_image_on_random_maps(rows, cols, p, seed):
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    rng = np.random.default_rng(seed)
    pairs = [
        (_maps(rows, cols, p, seed), _maps(rows, cols, p, seed + 10)),  # independent noise maps
        (_smooth_maps(rows, cols, p, seed), _smooth_maps(rows, cols, p, seed + 10)),  # unrelated structure
    ]
    ref = _smooth_maps(rows, cols, p, seed + 20)
    noisy = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1)
    pairs.append((noisy / noisy.sum(-1, keepdims=True), ref))  # a degraded estimate
    for est, ref in pairs:
        per, mean = ssim_maps(est, ref)
        want = [structural_similarity(est[..., k].astype(np.float64), ref[..., k].astype(np.float64),
                                      data_range=1.0, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False) for k in range(p)]
        np.testing.assert_allclose(per, want, rtol=1e-7, atol=1e-9)
        assert mean == pytest.approx(np.mean(want), rel=1e-7, abs=1e-9)
    assert ssim_maps(*pairs[2])[1] > ssim_maps(*pairs[1])[1]  # degraded copy beats unrelated maps


def test_ssim_drops_with_noise():
    a = _maps(20, 23)
    noisy = a + np.random.default_rng(1).normal(0, 0.1, a.shape)
    assert ssim_maps(noisy, a)[1] < 0.9


def _masked_case(seed=0):
    rng = np.random.default_rng(seed)
    rows, cols, p, bands = 14, 19, 3, 12
    e = rng.uniform(0.1, 1.0, (p, bands))
    ref = _smooth_maps(rows, cols, p, seed)
    est = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, None)
    est /= est.sum(-1, keepdims=True)
    cube = ref @ e + rng.normal(0, 0.01, (rows, cols, bands))
    mask = rng.random((rows, cols)) > 0.2
    return est, ref, e, cube, mask


# Each metric as a function of (estimated maps, reference maps, endmembers, cube, mask).
MASKED_METRICS = {
    "abundance_rmse": lambda est, ref, e, cube, m: abundance_rmse(est, ref, m),
    "sre": lambda est, ref, e, cube, m: sre(est, ref, m),
    "ssim": lambda est, ref, e, cube, m: ssim_maps(est, ref, m),
    "sam": lambda est, ref, e, cube, m: sam_map(cube, est @ e, m),
    "reconstruction_rmse": lambda est, ref, e, cube, m: reconstruction_rmse(cube, e, est, m),
    "psnr": lambda est, ref, e, cube, m: psnr(cube, est @ e, mask=m),
    "match": lambda est, ref, e, cube, m: match_endmembers(est[..., ::-1], ref, by="abundance", mask=m),
    "evaluate": lambda est, ref, e, cube, m: json.dumps(evaluate(
        endmembers=e, abundances=est, ref_endmembers=e, ref_abundances=ref, cube=cube, mask=m)),
}


def _same(x, y) -> bool:
    if isinstance(x, str):
        return x == y
    if isinstance(x, tuple):
        return all(_same(a, b) for a, b in zip(x, y, strict=True))
    return np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)


@pytest.mark.parametrize("name", list(MASKED_METRICS))
def test_changing_masked_pixels_does_not_change_the_metric(name):
    metric = MASKED_METRICS[name]
    est, ref, e, cube, mask = _masked_case()
    before = metric(est, ref, e, cube, mask)
    rng = np.random.default_rng(7)
    hidden = ~mask
    est2, ref2, cube2 = est.copy(), ref.copy(), cube.copy()
    est2[hidden] = np.eye(3)[rng.integers(0, 3, hidden.sum())]  # pure pixels, unlike the reference
    ref2[hidden] = rng.dirichlet(np.full(3, 0.3), hidden.sum())
    cube2[hidden] = rng.uniform(5.0, 50.0, (hidden.sum(), cube.shape[-1]))  # far brighter than the scene
    assert _same(metric(est2, ref2, e, cube2, mask), before)
    # NaN in a pixel hides it like the mask does
    est3, cube3 = est2.copy(), cube2.copy()
    est3[hidden] = np.nan
    cube3[hidden] = np.nan
    assert _same(metric(est3, ref2, e, cube3, None), before)
    # and the metric does look at the valid pixels (else the checks above prove nothing)
    est4 = est.copy()
    est4[mask] = est[mask][:, [2, 0, 1]]
    assert not _same(metric(est4, ref, e, cube, mask), before)


def test_reconstruction_rmse_psnr_and_sam():
    rng = np.random.default_rng(0)
    e = rng.uniform(0.1, 1.0, (3, 8))
    a = _maps(5, 7).astype(np.float64)
    y = a @ e
    assert reconstruction_rmse(y, e, a) == pytest.approx(0.0, abs=1e-12)
    y_off = y + 0.01
    assert reconstruction_rmse(y_off, e, a) == pytest.approx(0.01)
    peak = np.abs(y_off).max()
    assert psnr(y_off, y) == pytest.approx(20 * np.log10(peak / 0.01))
    assert psnr(y, y_off, data_range=1.0) == pytest.approx(40.0)
    y_neg = y - 2.0  # negative values (e.g. over-corrected reflectance): the peak is max |Y|, here 2 - min(y)
    assert psnr(y_neg + 0.01, y_neg) == pytest.approx(20 * np.log10((2.0 - y.min() - 0.01) / 0.01))
    res = evaluate(endmembers=e - 2.0, abundances=a, cube=y_neg + 0.01)
    assert res["psnr_db"] == pytest.approx(20 * np.log10((2.0 - y.min() - 0.01) / 0.01), rel=1e-6)  # float32 sums
    angles = sam_map(y, 3 * y)
    assert angles.shape == (5, 7)
    np.testing.assert_allclose(angles, 0.0, atol=1e-5)
    mask = np.ones((5, 7), bool)
    mask[1, 2] = False
    assert np.isnan(sam_map(y, y, mask)[1, 2])


def test_evaluate_reconstructs_with_the_per_pixel_brightness_when_given():
    rng = np.random.default_rng(1)
    e = rng.uniform(0.1, 1.0, (3, 8))
    a = _maps(5, 7).astype(np.float64)
    s = rng.uniform(0.3, 2.0, (5, 7))
    y = s[..., None] * (a @ e)  # the scaled model, exactly
    plain = evaluate(endmembers=e, abundances=a, cube=y)
    scaled = evaluate(endmembers=e, abundances=a, cube=y, brightness=s)
    assert plain["reconstruction_rmse"] > 0.05
    assert scaled["reconstruction_rmse"] == pytest.approx(0.0, abs=1e-12) and scaled["psnr_db"] > 200
    with pytest.raises(InputError, match=r"brightness has shape \(6,\); expected \(5, 7\)"):
        evaluate(endmembers=e, abundances=a, cube=y, brightness=np.ones(6))


def test_match_recovers_shuffled_estimate():
    rng = np.random.default_rng(3)
    e_ref = rng.uniform(0, 1, (5, 30))
    a_ref = _maps(9, 11, p=5)
    shuffle = np.array([3, 0, 4, 1, 2])
    e_est = e_ref[shuffle]
    a_est = a_ref[..., shuffle]
    for by, est, ref in [("sad", e_est, e_ref), ("abundance", a_est, a_ref),
                         ("both", (e_est, a_est), (e_ref, a_ref))]:
        perm = match_endmembers(est, ref, by=by)
        np.testing.assert_array_equal(e_est[perm], e_ref)
        np.testing.assert_array_equal(shuffle[perm], np.arange(5))
    # estimate first, reference second; by name the order does not matter
    np.testing.assert_array_equal(match_endmembers(reference=e_ref, estimate=e_est, by="sad"), np.argsort(shuffle))
    with pytest.raises(TypeError):
        match_endmembers(e_est, e_ref, "sad")  # by is keyword-only


def _brute_force_match(cost):
    """``perm`` minimising ``sum_j cost[perm[j], j]`` over every permutation (square ``cost``)."""
    import itertools

    best = min(itertools.permutations(range(cost.shape[0])),
               key=lambda q: sum(cost[q[j], j] for j in range(cost.shape[1])))
    return np.array(best)


def test_match_minimises_the_summed_documented_cost_by_brute_force():
    # "abundance": RMSE between maps (fraction); "both": that RMSE + SAD / 90 degrees. The sum of
    # RMSEs, not of MSEs, is minimised: on noisy estimates the two pick other assignments
    rng = np.random.default_rng(0)
    differs = set()
    for _ in range(40):
        a_est, a_ref = rng.uniform(0, 1, (60, 4)), rng.uniform(0, 1, (60, 4))
        e_est, e_ref = rng.uniform(0, 1, (4, 8)), rng.uniform(0, 1, (4, 8))
        rmse_ij = np.sqrt(((a_est[:, :, None] - a_ref[:, None, :]) ** 2).mean(0))
        cos = (e_est @ e_ref.T) / np.outer(np.linalg.norm(e_est, axis=1), np.linalg.norm(e_ref, axis=1))
        sad_ij = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        for by, cost, est, ref in [("abundance", rmse_ij, a_est, a_ref),
                                   ("both", rmse_ij + sad_ij / 90.0, (e_est, a_est), (e_ref, a_ref))]:
            want = _brute_force_match(cost)
            np.testing.assert_array_equal(match_endmembers(est, ref, by=by), want)
            # costs easily mistaken for the documented one: MSE, or another weight of the angle
            others = ({"mse": rmse_ij**2} if by == "abundance"
                      else {"mse + sad/90": rmse_ij**2 + sad_ij / 90.0, "rmse + sad/9": rmse_ij + sad_ij / 9.0})
            differs |= {name for name, o in others.items() if not np.array_equal(_brute_force_match(o), want)}
    assert differs == {"mse", "mse + sad/90", "rmse + sad/9"}  # the cases tell the costs apart


def test_a_failed_endmember_is_matched_last():
    # an estimated map NaN at every pixel, or an all-zero spectrum (no angle), costs more than any
    # real pair: the other estimates take the references
    rng = np.random.default_rng(4)
    a_ref = _maps(8, 9, p=3)
    e_ref = rng.uniform(0.1, 1, (3, 12))
    shuffle = np.array([2, 0, 1])
    a_est = np.concatenate([np.full(a_ref.shape[:2] + (1,), np.nan), a_ref[..., shuffle]], axis=-1)
    e_est = np.vstack([np.zeros(12), e_ref[shuffle]])
    want = np.argsort(shuffle) + 1  # estimate 0 is the failed one
    np.testing.assert_array_equal(match_endmembers(a_est, a_ref, by="abundance"), want)
    np.testing.assert_array_equal(match_endmembers(e_est, e_ref, by="sad"), want)
    # also when the real pairs are poor: a failed one is still worse than the worst real pair
    noisy = a_est.copy()
    noisy[..., 1:] = rng.uniform(2, 3, noisy[..., 1:].shape)  # RMSE above 1 to every reference
    assert 0 not in match_endmembers(noisy, a_ref, by="abundance")
    e_noisy = np.vstack([np.zeros(12), rng.uniform(0.1, 1, (3, 12))])
    assert 0 not in match_endmembers(e_noisy, -e_ref, by="sad")  # every real angle above 90 degrees


def test_alignment_by_abundance_vs_by_sad_differ_when_they_disagree():
    # spectra say est0 <-> ref1, abundances say est0 <-> ref0
    e_ref = np.eye(2, 4)
    e_est = e_ref[::-1].copy()
    a_ref = _maps(6, 7, p=2)
    a_est = a_ref.copy()
    np.testing.assert_array_equal(match_endmembers(e_est, e_ref, by="sad"), [1, 0])
    np.testing.assert_array_equal(match_endmembers(a_est, a_ref, by="abundance"), [0, 1])
    r_a = evaluate(endmembers=e_est, abundances=a_est, ref_endmembers=e_ref, ref_abundances=a_ref)
    assert r_a["alignment"] == "abundance" and r_a["permutation"] == [0, 1]
    assert r_a["abundance_rmse_percent"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(r_a["sad_deg"], [90.0, 90.0])
    r_s = evaluate(endmembers=e_est, abundances=a_est, ref_endmembers=e_ref, ref_abundances=a_ref,
                   align="sad")
    assert r_s["permutation"] == [1, 0] and r_s["sad_deg_mean"] == pytest.approx(0.0)


def test_evaluate_full_json_ready_with_nan_pixels_and_names():
    rng = np.random.default_rng(5)
    rows, cols, p, bands = 10, 13, 3, 20
    e_ref = rng.uniform(0.1, 1.0, (p, bands)).astype(np.float32)
    a_ref = _maps(rows, cols, p)
    cube = (a_ref @ e_ref).astype(np.float32)
    cube[2, 3] = np.nan
    shuffle = [2, 0, 1]
    a_est = a_ref[..., shuffle].copy()
    a_est[2, 3] = np.nan
    e_est = e_ref[shuffle]
    res = evaluate(endmembers=e_est, abundances=a_est, ref_endmembers=e_ref, ref_abundances=a_ref,
                   cube=cube, names=["soil", "tree", "water"])
    json.dumps(res, allow_nan=False)
    assert res["permutation"] == [1, 2, 0]
    assert res["abundance_rmse_percent"] == pytest.approx(0.0, abs=1e-5)
    assert res["ssim_mean"] == pytest.approx(1.0)
    assert res["sad_deg_mean"] == pytest.approx(0.0, abs=1e-3)
    assert res["reconstruction_rmse"] == pytest.approx(0.0, abs=1e-6)
    assert res["sre_db"] == "inf" or res["sre_db"] > 100
    assert [r["name"] for r in res["per_endmember"]] == ["soil", "tree", "water"]
    table = format_table(res)
    assert "soil" in table and "SAD (deg, mean)" in table


def test_evaluate_partial_inputs():
    rng = np.random.default_rng(2)
    e = rng.uniform(0, 1, (3, 10))
    only_e = evaluate(endmembers=e[[1, 2, 0]], ref_endmembers=e)
    assert only_e["alignment"] == "sad" and "abundance_rmse_percent" not in only_e
    assert only_e["sad_deg_mean"] == pytest.approx(0.0, abs=1e-5)
    a = _maps(5, 6)
    only_a = evaluate(abundances=a, ref_abundances=a, align="sad")
    assert only_a["alignment"] == "abundance" and "sad_deg" not in only_a
    format_table(only_a)


def test_fewer_estimates_than_references_leave_unmatched():
    rng = np.random.default_rng(4)
    e_ref = rng.uniform(0, 1, (4, 12))
    perm = match_endmembers(e_ref[[2, 0]], e_ref, by="sad")
    np.testing.assert_array_equal(perm, [1, -1, 0, -1])


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="by="):
        match_endmembers(np.eye(2), np.eye(2), by="nope")
    with pytest.raises(InputError, match="shapes"):
        sad(np.eye(2), np.eye(3))
    with pytest.raises(InputError, match="no valid pixel"):
        abundance_rmse(np.full((3, 2), np.nan), np.zeros((3, 2)))


def test_evaluate_refuses_endmembers_whose_count_disagrees_with_their_abundance_maps():
    # MATLAB-style (bands, p) spectra on both sides passed the SAD shape check and were
    # indexed by the abundance matching as if their rows were spectra: a SAD of 20+ degrees
    # for a near-perfect estimate, 'n_endmembers_est' = bands. A p that differs from the
    # maps' was an IndexError.
    rng = np.random.default_rng(5)
    e = rng.uniform(0.1, 1.0, (3, 12))
    a = _maps(6, 7)
    est_e, est_a = e[[2, 0, 1]] + 0.01, a[..., [2, 0, 1]]
    assert evaluate(endmembers=est_e, abundances=est_a, ref_endmembers=e, ref_abundances=a)["sad_deg_mean"] < 2
    with pytest.raises(InputError, match=r"^endmembers: shape \(12, 3\) holds 12 spectra but abundances .* 3 maps"):
        evaluate(endmembers=est_e.T, abundances=est_a, ref_endmembers=e.T, ref_abundances=a)
    with pytest.raises(InputError, match=r"^ref_endmembers: shape \(2, 12\) holds 2 spectra"):
        evaluate(endmembers=est_e, abundances=est_a, ref_endmembers=e[:2], ref_abundances=a)
    with pytest.raises(InputError, match=r"^endmembers: shape \(2, 12\)"):
        evaluate(endmembers=est_e[:2], abundances=est_a, ref_endmembers=e, ref_abundances=a, cube=a @ e)


def test_maps_of_other_image_shapes_are_refused_not_compared_pixel_by_pixel():
    # (cols, rows, p) against (rows, cols, p): the same pixel count, so the flattened pixels
    # were paired up across the image (abundance_rmse answered, match_endmembers matched)
    # and evaluate failed later in SSIM with a numpy broadcasting error
    ref = _maps(6, 7)
    est = np.ascontiguousarray(ref.transpose(1, 0, 2))
    for call in (lambda: abundance_rmse(est, ref), lambda: sre(est, ref),
                 lambda: match_endmembers(est, ref), lambda: evaluate(abundances=est, ref_abundances=ref)):
        with pytest.raises(InputError, match=r"maps of \(7, 6\) and \(6, 7\) pixels"):
            call()
    assert abundance_rmse(est.reshape(-1, 3), est)[0] == 0.0  # (N, p) beside (rows, cols, p) still pairs
    e = np.random.default_rng(0).uniform(0.1, 1.0, (3, 5))
    with pytest.raises(InputError, match=r"^reconstruction: maps of \(7, 6\) and \(6, 7\) pixels"):
        evaluate(endmembers=e, abundances=ref, cube=est @ e)  # the cube the other way round


def test_evaluate_leaves_ssim_out_when_only_border_pixels_are_valid():
    # a scene whose few valid pixels all lie within win_size // 2 of the border: SSIM has
    # nothing to average, but RMSE and SAD do; evaluate reports those and omits SSIM
    rng = np.random.default_rng(0)
    ref = _maps(12, 20, 3)
    est = np.clip(ref + rng.normal(0, 0.02, ref.shape), 0, None)
    mask = np.zeros((12, 20), bool)
    mask[0, :4] = True
    out = evaluate(abundances=est, ref_abundances=ref, mask=mask)
    assert "ssim_mean" not in out and "ssim" not in out["per_endmember"][0]
    assert np.isfinite(out["abundance_rmse_percent"])
    with pytest.raises(InputError, match="away from the border"):
        ssim_maps(est, ref, mask)  # asked for directly, it still says why it cannot


def test_bands_undefined_in_the_reference_are_left_out_of_sad():
    """A reference with NaN on some bands (a result folder whose library missed them) is
    compared on the bands both sides define, as an estimate with NaN bands already is."""
    rng = np.random.default_rng(3)
    e = rng.uniform(0.1, 1.0, (3, 10))
    est = e + rng.normal(0, 0.01, e.shape)
    ref = e.copy()
    ref[:, [2, 5]] = np.nan
    out = evaluate(endmembers=est, ref_endmembers=ref)
    keep = np.isfinite(ref).all(axis=0)
    assert out["bands_compared"] == 8
    np.testing.assert_allclose(out["sad_deg"], sad(est[:, keep], e[:, keep]), rtol=1e-9)


def test_reconstruction_scores_run_in_pixel_blocks_with_the_whole_cube_answer(monkeypatch):
    # `unmix --truth` on a 1000x1000x200 scene made float64 copies of the whole cube and its
    # reconstruction (8.7 GB anonymous memory); the scores are now summed block by block
    import unmixgen.evaluate.unmixing as um

    rng = np.random.default_rng(4)
    e = rng.random((3, 9))
    a = rng.dirichlet(np.ones(3), size=(7, 8))
    cube = (a @ e + 0.01 * rng.standard_normal((7, 8, 9))).astype(np.float32)
    cube[2, 3] = np.nan
    a[5, 1] = np.nan
    mask = np.ones((7, 8), bool)
    mask[0, :3] = False
    bright = rng.uniform(0.8, 1.2, size=(7, 8))
    kw = {"endmembers": e, "abundances": a, "cube": cube, "mask": mask}
    whole = um.evaluate(**kw)
    scaled = um.evaluate(**kw, brightness=bright)

    largest = []
    real_f64 = um._f64
    monkeypatch.setattr(um, "_f64", lambda x, what: largest.append(np.size(x)) or real_f64(x, what))
    monkeypatch.setattr(um, "RECONSTRUCTION_BLOCK", 5)
    blocked = um.evaluate(**kw)
    assert max(largest) <= 5 * 9  # never the whole cube in float64
    for k in ("reconstruction_rmse", "psnr_db", "sam_deg_mean"):
        assert blocked[k] == pytest.approx(whole[k], rel=1e-12)
    assert um.evaluate(**kw, brightness=bright)["psnr_db"] == pytest.approx(scaled["psnr_db"], rel=1e-12)
    # the unblocked answer, from the per-metric functions
    assert whole["reconstruction_rmse"] == um.reconstruction_rmse(cube, e, a, mask)
    assert whole["psnr_db"] == um.psnr(cube, a @ e, mask=mask)
    sam = um.sam_map(cube, a @ e, mask)
    assert whole["sam_deg_mean"] == float(sam[np.isfinite(sam)].mean())  # (nanmean sums in another order)
    assert scaled["reconstruction_rmse"] == pytest.approx(
        um.reconstruction_rmse(cube, e, a * bright[..., None], mask), rel=1e-12)


def test_evaluate_keeps_the_other_scores_when_an_estimated_spectrum_is_all_nan():
    """A failed endmember (NaN in every band) made the reconstruction NaN at every pixel and
    `evaluate` raised 'no valid pixel', losing SAD and the abundance scores with it."""
    rng = np.random.default_rng(7)
    e = rng.uniform(0.1, 1, (3, 10))
    a = rng.dirichlet([1, 1, 1], (4, 5))
    cube = a @ e
    e_bad = e.copy()
    e_bad[1] = np.nan
    res = evaluate(endmembers=e_bad, abundances=a, ref_endmembers=e, ref_abundances=a, cube=cube)
    assert res["sad_undefined"] == ["em2"] and res["sad_deg_mean"] is None
    assert res["sad_deg"][0] == pytest.approx(0.0, abs=1e-6)
    assert res["abundance_rmse_percent"] == pytest.approx(0.0, abs=1e-12)
    assert "reconstruction_note" in res
    assert not {"reconstruction_rmse", "psnr_db", "sam_deg_mean"} & set(res)
    assert "reconstruction: not computed" in format_table(res)


def test_evaluate_scores_by_the_published_formulas():
    """HySUPP's aRMSE (100 sqrt(mean over all entries)), SRE 10 log10(|A|^2 / |A - A^|^2),
    SAD in degrees averaged over matched endmembers, PSNR with the cube's peak, SAM per
    pixel: computed here from the formulas on a small case (two estimates swapped)."""
    rng = np.random.default_rng(11)
    e = rng.uniform(0.1, 1, (3, 8))
    a = rng.dirichlet([2, 2, 2], (3, 4))
    a_hat = np.clip(a + rng.normal(0, 0.03, a.shape), 0, None)
    e_hat = e * rng.uniform(0.95, 1.05, e.shape)
    cube = a @ e + rng.normal(0, 0.01, (3, 4, 8))
    order = [2, 0, 1]
    res = evaluate(endmembers=e_hat[order], abundances=a_hat[..., order], ref_endmembers=e,
                   ref_abundances=a, cube=cube)
    assert res["permutation"] == [1, 2, 0]
    d = a_hat - a
    assert res["abundance_rmse_percent"] == pytest.approx(100 * np.sqrt(np.sum(d**2) / d.size), rel=1e-12)
    per = [100 * np.sqrt(np.mean(d[..., j] ** 2)) for j in range(3)]
    np.testing.assert_allclose(res["abundance_rmse_percent_per_endmember"], per, rtol=1e-12)
    assert res["sre_db"] == pytest.approx(10 * np.log10(np.sum(a**2) / np.sum(d**2)), rel=1e-12)
    ang = [np.degrees(np.arccos(e_hat[j] @ e[j] / np.linalg.norm(e_hat[j]) / np.linalg.norm(e[j])))
           for j in range(3)]
    assert res["sad_deg_mean"] == pytest.approx(np.mean(ang), rel=1e-9)
    rec = a_hat @ e_hat
    r = np.sqrt(np.mean((cube - rec) ** 2))
    assert res["reconstruction_rmse"] == pytest.approx(r, rel=1e-12)
    assert res["psnr_db"] == pytest.approx(20 * np.log10(np.abs(cube).max() / r), rel=1e-12)
    cos = np.sum(cube * rec, -1) / np.linalg.norm(cube, axis=-1) / np.linalg.norm(rec, axis=-1)
    assert res["sam_deg_mean"] == pytest.approx(np.degrees(np.arccos(cos)).mean(), rel=1e-9)
