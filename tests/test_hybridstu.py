"""HybridSTU: the network's receptive field, tiled == untiled inference, training on simulated
scenes, the model folder, and the refusals of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unmixgen.errors import InputError, ParameterError
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import abundance_maps
from unmixgen.simulate.scene import simulate
from unmixgen.unmix.hybridstu import HybridSTU
from unmixgen.unmix.hybridstu import data as D
from unmixgen.unmix.hybridstu.features import n_features
from unmixgen.unmix.hybridstu.network import HybridSTUNet, receptive_radius

BANDS, P = 30, 3


def endmembers(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, BANDS)
    # three smooth, clearly different spectra
    E = np.stack([0.2 + 0.6 * x, 0.8 - 0.5 * x, 0.3 + 0.3 * np.sin(6 * x) ** 2])
    return (E + 0.01 * rng.standard_normal(E.shape)).astype(np.float32)


def sim_scene(rows=28, cols=32, snr=30.0, seed=0) -> tuple[Scene, np.ndarray, np.ndarray]:
    A = abundance_maps(rows, cols, P, seed, max_abundance=0.9)
    E = endmembers()
    s = simulate(A, E, snr_db=snr, seed=seed)[0].to_scene()
    return s, E, A


def small(**kw) -> HybridSTU:
    opts = dict(k=3, width=8, n_maps=6, map_size=16, max_steps=150, max_minutes=None, batch_size=4, crop=12,
                eval_every=50, tile=64)
    opts.update(kw)
    return HybridSTU(P, **opts)


@pytest.mark.parametrize("front", ["bands", "subspace"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_output_is_on_the_simplex_and_depends_only_on_the_k_by_k_neighbourhood(k, front, torch_one_thread):
    torch.manual_seed(0)
    net = HybridSTUNet(BANDS, P, k=k, width=8, front=front).eval()
    if front == "subspace":
        torch.nn.init.normal_(net.spatial[-1].weight)  # the zero start would hide the context
    x = torch.rand(1, BANDS if front == "bands" else n_features(P), 15, 15)
    with torch.no_grad():
        a = net(x)
        x2 = x.clone()
        x2[0, :, 7, 7] += 1.0  # change one pixel
        changed = (net(x2) - a).abs().amax(1)[0] > 0
    assert torch.all(a >= 0) and torch.allclose(a.sum(1), torch.ones(1, 15, 15), atol=1e-6)
    r = receptive_radius(k)
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert changed[7, 7]
    # the change reaches exactly r pixels in every direction, no further
    assert int(rows.min()) == 7 - r and int(rows.max()) == 7 + r
    assert int(cols.min()) == 7 - r and int(cols.max()) == 7 + r


def trained(torch_one_thread=None, **kw):
    scene, E, A = sim_scene()
    est = small(**kw).fit(scene, endmembers=E)
    return est, scene, E, A


@pytest.fixture(scope="module")
def fitted():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield trained()
    finally:
        torch.set_num_threads(n)


def test_white_noise_is_read_unweighted(fitted):
    est = fitted[0]  # a scene with white noise: the estimate's few percent of spread is not used
    assert est.band_weights_ is None and est.history_["noise_profile"] == "white"


def test_fit_gives_valid_abundances_and_beats_the_uniform_guess(fitted):
    est, scene, E, A = fitted
    a = est.abundances_
    assert a.shape == A.shape and a.dtype == np.float32
    assert np.all(a >= 0) and np.allclose(a.sum(-1), 1, atol=1e-5)
    rmse = np.sqrt(np.mean((a - A) ** 2))
    uniform = np.sqrt(np.mean((1.0 / P - A) ** 2))
    assert rmse < 0.7 * uniform
    assert np.array_equal(est.endmembers_, E)
    E_before = E.copy()
    E *= 2.0  # the estimator keeps its own copy of the endmembers it was given
    assert np.array_equal(est.endmembers_, E_before)
    E /= 2.0
    h = est.history_
    assert abs(h["snr_db"] - 30.0) < 1.5  # the scene's SNR, estimated
    assert h["steps"] >= h["best_step"] and len(h["validation_rmse"]) == len(h["validation_steps"])
    # the kept weights are never worse on validation than FCLS (the untrained start)
    assert h["best_validation_rmse"] <= h["fcls_validation_rmse"] + P * 1e-4
    # the training maps' smoothing was chosen per scene ("auto"), among the allowed widths
    from unmixgen.unmix.hybridstu.smoothing import SMOOTHING_WIDTHS

    assert h["map_smoothing"] in SMOOTHING_WIDTHS and set(h["map_smoothing_risk"]) == set(SMOOTHING_WIDTHS)
    assert h["map_smoothing_risk"][h["map_smoothing"]] == min(h["map_smoothing_risk"].values())


def test_subspace_features_and_the_untrained_network_give_fcls():
    from unmixgen.unmix.hybridstu.features import subspace_features
    from unmixgen.unmix.inversion import fcls

    A = abundance_maps(12, 10, P, 3, max_abundance=0.9)
    E = endmembers()
    clean = (A @ E).reshape(-1, BANDS)
    f = subspace_features(clean, E, scale=0.5)
    truth = A.reshape(-1, P)
    np.testing.assert_allclose(f[:, :P], truth, atol=1e-4)  # least squares recovers noiseless truth
    np.testing.assert_allclose(f[:, P:2 * P], truth, atol=1e-4)
    assert np.all(f[:, -1] < np.log(1e-3))  # no residual off the endmember subspace
    noisy = simulate(A, E, snr_db=20.0, seed=1)[0].cube.reshape(-1, BANDS)
    f = subspace_features(noisy, E, scale=0.5)
    assert np.all(f[:, -1] > np.log(1e-3))
    net = HybridSTUNet(BANDS, P, k=3, width=8, front="subspace").eval()
    x = torch.from_numpy(f.reshape(12, 10, -1).transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        a = net(x)[0].permute(1, 2, 0).numpy().reshape(-1, P)
    np.testing.assert_allclose(a, fcls(noisy, E), atol=P * 1e-4)


def test_the_scaled_channels_are_the_brightness_free_answer_and_the_scaled_network_starts_from_it():
    from scipy.optimize import nnls

    from unmixgen.unmix.hybridstu.features import subspace_features

    A = abundance_maps(12, 10, P, 3, max_abundance=0.9).reshape(-1, P)
    E = endmembers()
    s = np.random.default_rng(0).uniform(0.2, 0.6, (A.shape[0], 1))  # dark pixels, one scale each
    clean = (s * A @ E).astype(np.float32)
    f = subspace_features(clean, E, scale=0.5)
    np.testing.assert_allclose(f[:, 2 * P:3 * P], A, atol=1e-4)  # the scaled model recovers the truth
    assert np.abs(f[:, P:2 * P] - A).max() > 0.1  # FCLS does not
    noisy = clean + 0.01 * np.random.default_rng(1).standard_normal(clean.shape).astype(np.float32)
    ref = np.stack([nnls(E.T.astype(np.float64), y.astype(np.float64))[0] for y in noisy])
    ref /= ref.sum(1, keepdims=True)
    f = subspace_features(noisy, E, scale=0.5)
    np.testing.assert_allclose(f[:, 2 * P:3 * P], ref, atol=1e-4)
    net = HybridSTUNet(BANDS, P, k=3, width=8, front="subspace", base="scaled").eval()
    x = torch.from_numpy(f.reshape(12, 10, -1).transpose(2, 0, 1).copy())[None]
    with torch.no_grad():
        a = net(x)[0].permute(1, 2, 0).numpy().reshape(-1, P)
    np.testing.assert_allclose(a, ref, atol=P * 1e-4)


def test_smoothed_training_maps_stay_on_the_simplex_and_invalid_pixels_stay_nan():
    from unmixgen.unmix.hybridstu.smoothing import smooth_maps

    A = abundance_maps(20, 16, P, 4)
    noisy = np.random.default_rng(0).dirichlet(np.ones(P), size=(20, 16)).astype(np.float32)
    mask = np.ones((20, 16), bool)
    mask[5, 5] = False
    X = 0.5 * A + 0.5 * noisy
    out = smooth_maps(X, mask, 1.5)
    assert np.isnan(out[5, 5]).all()
    ok = out[mask]
    assert np.all(ok >= 0) and np.allclose(ok.sum(-1), 1, atol=1e-5)
    # smoothing removes most of the per-pixel noise added to the smooth maps (mean 1 / P)
    ref = 0.5 * A + 0.5 / P
    smooth_ref = smooth_maps(ref, mask, 1.5)[mask]
    assert np.sqrt(np.mean((ok - smooth_ref) ** 2)) < 0.6 * np.sqrt(np.mean((X[mask] - ref[mask]) ** 2))


def test_smoothing_width_chosen_by_the_unbiased_risk_estimate():
    """Stein's risk estimate of `choose_smoothing` tracks the true error of the smoothed maps
    against the noise-free ones, so the width it picks is the best of the grid or close; more
    noise picks a wider filter, and noise-free maps are left alone."""
    from unmixgen.unmix.hybridstu.smoothing import choose_smoothing, smooth_maps

    widths = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)

    clean = abundance_maps(64, 48, P, 7)
    mask = np.ones(clean.shape[:2], bool)
    mask[10:14, 20:30] = False  # a hole: the weights near it are renormalised
    chosen = []
    for std in (0.01, 0.03):
        X = clean + np.random.default_rng(1).normal(0, std, clean.shape).astype(np.float32)
        width, risk = choose_smoothing(X, mask, np.full(P, std**2), widths)
        true = {s: float(np.mean(((smooth_maps(X, mask, s) if s else X)[mask] - clean[mask]) ** 2))
                for s in widths}
        assert true[width] <= 1.1 * min(true.values())
        for s in widths:
            assert abs(risk[s] - true[s]) < 0.05 * true[s] + 0.02 * std**2
        chosen.append(width)
    assert chosen[0] < chosen[1]
    assert choose_smoothing(clean, mask, np.zeros(P), widths)[0] == 0.0


def test_training_maps_are_not_smoothed_where_the_scene_has_no_spatial_structure():
    """`map_structure` measures neighbouring pixels' agreement beyond their noise: about 1 for
    smooth maps, about 0 for maps drawn pixel by pixel, whatever the noise; `auto_smoothing`
    leaves the latter unsmoothed (smoothed training maps taught the network a correlation the
    scene lacks) and picks the risk estimate's width for the former."""
    from unmixgen.unmix.hybridstu.smoothing import (
        SMOOTHING_WIDTHS,
        UNSTRUCTURED,
        auto_smoothing,
        choose_smoothing,
        map_structure,
    )

    rng = np.random.default_rng(2)
    smooth = abundance_maps(64, 48, P, 7)
    pixelwise = rng.dirichlet(np.ones(P), size=(64, 48)).astype(np.float32)
    mask = np.ones((64, 48), bool)
    mask[10:14, 20:30] = False
    for std in (0.0, 0.03):
        noise = rng.normal(0, std, smooth.shape).astype(np.float32)
        nv = np.full(P, std**2)
        assert map_structure(smooth + noise, mask, nv) > 0.8
        assert abs(map_structure(pixelwise + noise, mask, nv)) < 0.1
        width, record = auto_smoothing(pixelwise + noise, mask, nv)
        assert width == 0.0 and "map_smoothing_risk" not in record and record["map_structure"] < UNSTRUCTURED
        width, record = auto_smoothing(smooth + noise, mask, nv)
        assert width in SMOOTHING_WIDTHS and width == choose_smoothing(smooth + noise, mask, nv)[0]
        assert set(record["map_smoothing_risk"]) == set(SMOOTHING_WIDTHS)
    assert map_structure(smooth, np.zeros((64, 48), bool), np.zeros(P)) == 1.0  # nothing to measure


def test_map_noise_variance_is_the_least_squares_abundance_spread():
    from unmixgen.unmix.hybridstu.smoothing import map_noise_variance

    rng = np.random.default_rng(0)
    E = endmembers()
    band_noise = rng.uniform(0.5, 2.0, E.shape[1]) * 1e-4
    noise = rng.normal(0, np.sqrt(band_noise), (20000, E.shape[1]))
    spread = np.linalg.lstsq(E.T.astype(np.float64), noise.T, rcond=None)[0].var(axis=1)
    assert np.allclose(map_noise_variance(E, band_noise), spread, rtol=0.05)


def test_the_bands_front_end_still_trains_and_tiles_exactly():
    scene, E, A = sim_scene()
    est = small(front="bands", max_steps=20, eval_every=10).fit(scene, endmembers=E)
    est.tile = 9
    tiled = est.transform(scene)
    est.tile = 512
    np.testing.assert_allclose(tiled, est.transform(scene), atol=2e-6)
    assert np.allclose(tiled.sum(-1), 1, atol=1e-5)


def test_tiled_inference_equals_untiled_and_keeps_invalid_pixels_nan(fitted):
    est, scene, E, A = fitted
    cube = scene.load().copy()
    cube[3, 5] = np.nan
    cube[20, 20] = 0.0
    s = Scene(cube)
    est.tile = 7  # many tiles, edge tiles of other sizes
    tiled = est.transform(s)
    est.tile = 512
    whole = est.transform(s)
    assert np.isnan(tiled[3, 5]).all() and np.isnan(tiled[20, 20]).all()
    np.testing.assert_allclose(tiled, whole, atol=2e-6, equal_nan=True)
    ok = s.mask
    assert np.allclose(tiled[ok].sum(-1), 1, atol=1e-5)


def test_same_seed_same_result(fitted):
    est, scene, E, A = fitted
    again = small().fit(scene, endmembers=E)
    np.testing.assert_array_equal(again.abundances_, est.abundances_)


def test_save_and_load_give_the_same_abundances(fitted, tmp_path):
    est, scene, E, A = fitted
    est.save_pretrained(tmp_path / "m")
    loaded = HybridSTU.from_pretrained(tmp_path / "m")
    np.testing.assert_allclose(loaded.transform(scene), est.transform(scene), atol=1e-6)
    np.testing.assert_array_equal(loaded.endmembers_, E)
    with pytest.raises(InputError, match="exists"):
        est.save_pretrained(tmp_path / "m")


def test_save_refuses_names_or_wavelengths_that_do_not_fit_before_writing(fitted, tmp_path):
    # 29 wavelengths for 30 bands were written, and the folder was then refused by
    # from_pretrained; one name for three endmembers was kept
    est, scene, E, A = fitted
    for kw, message in (({"wavelengths": np.linspace(400.0, 1000.0, scene.bands - 1)},
                         "^wavelengths: 29 values for 30 bands; expected one per band"),
                        ({"wavelengths": np.full(scene.bands, np.nan)}, "^wavelengths: values must be finite"),
                        ({"names": ["soil"]}, r"^names: \['soil'\]; expected a list of 3 names, one per endmember")):
        with pytest.raises(InputError, match=message):
            est.save_pretrained(tmp_path / "m", **kw)
        assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("key, value", [("guard_tau", "wide"), ("guard_tau", -1.0), ("guard_tau", float("nan")),
                                        ("base", "sunsal")])
def test_a_model_folder_with_a_bad_guard_or_base_is_refused(fitted, tmp_path, key, value):
    import json

    est = fitted[0]
    est.save_pretrained(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg[key] = value
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=f"config.json {key}"):
        HybridSTU.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize("key, value", [("scale", float("nan")), ("scale", -1.0), ("scale", None), ("scale", "x"),
                                        ("n_endmembers", 4), ("n_endmembers", -3), ("k", "five"), ("width", 0),
                                        ("good_bands", "all"), ("good_bands", [1, 1]), ("parameters", [1, 2]),
                                        ("names", 5), ("names", ["a"]), ("history", [1]), ("scale", ...),
                                        ("n_endmembers", ...), ("good_bands", ...), ("k", ...)])
def test_a_model_folder_with_a_hand_edited_config_is_refused(fitted, tmp_path, key, value):
    # a NaN or negative scale gave all-NaN maps with exit 0; a missing key, a wrong type or another
    # endmember count raised KeyError, TypeError or ValueError, or went on with the wrong numbers
    import json

    fitted[0].save_pretrained(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    if value is ...:
        del cfg[key]
    else:
        cfg[key] = value
    cfg_path.write_text(json.dumps(cfg))
    # another count or band count than endmembers.npz holds: refused as the two disagreeing
    with pytest.raises(InputError, match=f"config.json {key}|endmembers.npz: .* as its config.json says"):
        HybridSTU.from_pretrained(tmp_path / "m")


def test_a_loaded_model_checks_scenes_with_its_network_neighbourhood(fitted, tmp_path):
    # the scene checks used the k of the training record ('parameters'), not the network's: one
    # edited to 'x' refused every scene with "k='x': expected an integer", naming no file
    import json

    est, scene = fitted[0], fitted[1]
    est.save_pretrained(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["parameters"]["k"] = "x"
    cfg_path.write_text(json.dumps(cfg))
    loaded = HybridSTU.from_pretrained(tmp_path / "m")
    assert loaded.k == cfg["k"] == est.k
    np.testing.assert_allclose(loaded.transform(scene), est.transform(scene), atol=1e-6)


@pytest.mark.parametrize("change", ["missing", "bands", "count", "text"])
def test_a_model_folder_whose_endmembers_do_not_fit_its_config_is_refused(fitted, tmp_path, change):
    # an endmembers.npz without 'endmembers' raised KeyError, one with fewer bands IndexError,
    # one with another count a several-line torch message on the weights
    est = fitted[0]
    est.save_pretrained(tmp_path / "m")
    E = est.endmembers_
    arrays = {"missing": {"E": E}, "bands": {"endmembers": E[:, :-3]}, "count": {"endmembers": E[:2]},
              "text": {"endmembers": np.array(["a", "b"])}}[change]
    np.savez(tmp_path / "m" / "endmembers.npz", **arrays)
    with pytest.raises(InputError, match=r"endmembers.npz: .*expected .*\(3, 30\)") as err:
        HybridSTU.from_pretrained(tmp_path / "m")
    assert "\n" not in str(err.value)


def test_weights_of_another_network_give_one_line(fitted, tmp_path):
    import json

    fitted[0].save_pretrained(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "width": 7}))
    with pytest.raises(InputError, match="weights do not fit the network of its config.json") as err:
        HybridSTU.from_pretrained(tmp_path / "m")
    assert "\n" not in str(err.value)


def test_a_model_folder_of_another_kind_is_refused(tmp_path):
    from unmixgen.nn import checkpoint as ck

    (tmp_path / "prior").mkdir()
    ck.write_config(tmp_path / "prior", ck.new_config("abundance_prior"))
    with pytest.raises(InputError, match="expected kind .hybridstu."):
        HybridSTU.from_pretrained(tmp_path / "prior")


def test_a_scene_with_other_bands_is_refused_by_a_trained_model(fitted):
    est, scene, E, A = fitted
    other = Scene(scene.load()[..., :-2])
    with pytest.raises(InputError, match="trained on 30 bands"):
        est.transform(other)


def test_a_scene_on_another_wavelength_grid_is_refused_by_a_trained_model(fitted, tmp_path):
    est, scene, E, A = fitted
    wl = np.linspace(400.0, 1000.0, scene.bands)
    est.save_pretrained(tmp_path / "m", wavelengths=wl)
    loaded = HybridSTU.from_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(loaded.wavelengths_, wl)
    cube = scene.load()
    same = loaded.transform(Scene(cube, wavelengths=wl))
    np.testing.assert_array_equal(same, loaded.transform(Scene(cube)))  # no wavelengths: not checked
    with pytest.raises(InputError, match="differ from the model's"):
        loaded.transform(Scene(cube, wavelengths=wl + 30.0))  # the same band count, another sensor


def test_more_endmembers_than_bands_are_refused():
    cube = np.random.default_rng(0).uniform(0.1, 1.0, (12, 12, 2)).astype(np.float32)
    with pytest.raises(InputError, match="3 endmembers but only 2 usable bands"):
        small().fit(Scene(cube), endmembers=endmembers()[:, :2])


def test_given_maps_train_the_network():
    scene, E, A = sim_scene()
    maps = np.stack([abundance_maps(16, 16, P, s) for s in range(5)])
    est = small(max_steps=20).fit(scene, endmembers=E, maps=maps)
    assert est.history_["map_source"] == "given" and est.history_["n_training_maps"] == 5
    with pytest.raises(InputError, match="expected \\(rows, cols, 3\\)"):
        small().fit(scene, endmembers=E, maps=maps[..., :2])


@pytest.mark.parametrize("case", ["bands", "p", "k", "pixels", "nan_band", "maps"])
def test_bad_input_is_refused_before_training(case):
    scene, E, A = sim_scene()
    est = small()
    if case == "bands":
        with pytest.raises(InputError, match="on the scene's bands"):
            est.fit(scene, endmembers=E[:, :-1])
    elif case == "p":
        with pytest.raises(ParameterError, match="n_endmembers"):
            HybridSTU(4, k=3).fit(scene, endmembers=E)
    elif case == "k":
        tiny = Scene(scene.load()[:4, :6])
        with pytest.raises(ParameterError, match=r"k=5: .* is 4 x 6 pixels, narrower than 5 x 5"):
            small(k=5).fit(tiny, endmembers=E)
    elif case == "pixels":
        cube = scene.load().copy()
        cube[1:] = np.nan  # one valid row of 32 pixels
        with pytest.raises(InputError, match="valid pixels; expected at least"):
            est.fit(Scene(cube), endmembers=E)
    elif case == "nan_band":
        cube = scene.load().copy()
        cube[..., 4] = np.nan
        with pytest.raises(InputError, match="no valid pixel"):
            est.fit(Scene(cube), endmembers=E)
    else:
        with pytest.raises(ParameterError, match="maps"):
            est.fit(scene, endmembers=E, maps="procedural")
        for maps in (None, 5):  # were a TypeError "'NoneType' object is not iterable", after the noise estimate
            with pytest.raises(ParameterError, match="maps"):
                est.fit(scene, endmembers=E, maps=maps)


def test_split_is_spatially_disjoint():
    pairs = [(np.zeros((20, 10, 2)), np.zeros((20, 10, 3)))]
    train, val = D.split_maps(pairs, gap=5)
    assert train[0][0].shape[0] + 5 + val[0][0].shape[0] <= 20
    many = [(np.full((4, 4, 2), i), np.zeros((4, 4, 3))) for i in range(10)]
    train, val = D.split_maps(many, gap=5)
    assert {int(t[0][0, 0, 0]) for t in train}.isdisjoint({int(v[0][0, 0, 0]) for v in val})


def test_snr_estimate_follows_the_added_noise():
    A = abundance_maps(40, 40, P, 1)
    for snr in (15.0, 30.0):
        cube = simulate(A, endmembers(), snr_db=snr, seed=2)[0].cube
        assert abs(D.estimate_snr_db(cube.reshape(-1, BANDS)) - snr) < 1.5


def test_brightness_estimate_finds_endmembers_brighter_than_the_pixels():
    A = abundance_maps(40, 40, P, 2, max_abundance=0.9)
    E = endmembers()
    cube = simulate(A, 0.4 * E, snr_db=30.0, variability=0.2, seed=3)[0].cube
    median, sigma = D.estimate_brightness(cube.reshape(-1, BANDS), E)
    assert abs(median - 0.4) < 0.04 and abs(sigma - 0.2) < 0.05


def test_auto_base_takes_the_scaled_answer_for_brightness_scaled_pixels(torch_one_thread):
    A = abundance_maps(28, 32, P, 0, max_abundance=0.9)
    E = endmembers()
    scene = simulate(A, 0.5 * E, snr_db=30.0, variability=0.4, seed=0)[0].to_scene()
    est = small(max_steps=50).fit(scene, endmembers=E)
    h = est.history_
    assert h["base"] == "scaled" and h["base_validation_rmse"]["scaled"] < h["base_validation_rmse"]["fcls"]
    assert abs(h["brightness"] - 0.5) < 0.1
    from unmixgen.unmix.inversion import fcls

    rmse = np.sqrt(np.mean((est.abundances_ - A) ** 2))
    assert rmse < 0.8 * np.sqrt(np.mean((scene.to_image(fcls(scene.valid_pixels(), E)) - A) ** 2))
    plain = small(max_steps=50).fit(sim_scene()[0], endmembers=E)
    assert plain.history_["base"] == "fcls"


def test_variability_estimate_follows_the_simulated_brightness_scaling():
    A = abundance_maps(40, 40, P, 2, max_abundance=0.9)
    E = endmembers()
    est = {}
    for var in (0.0, 0.2):
        cube = simulate(A, E, snr_db=30.0, variability=var or None, seed=3)[0].cube
        est[var] = D.estimate_brightness(cube.reshape(-1, BANDS), E)[1]
    assert est[0.0] < 0.03
    assert abs(est[0.2] - 0.2) < 0.05


def test_subspace_loss_equals_the_band_loss_for_pixels_in_the_endmember_span():
    from unmixgen.unmix.hybridstu.loss import reconstruct, stu_loss, subspace_loss

    g = torch.Generator().manual_seed(0)
    E = torch.from_numpy(endmembers())
    a_ls = torch.rand(2, P, 4, 5, generator=g) + 0.1  # ELMM-like: sums not one
    a_hat = torch.softmax(torch.randn(2, P, 4, 5, generator=g), 1)
    a = torch.softmax(torch.randn(2, P, 4, 5, generator=g), 1)
    x = reconstruct(a_ls, E)
    for lam, recon in ((0.0, 0.0), (0.5, 0.0), (0.3, 2.0)):
        want = stu_loss(a_hat, a, x, E, lam=lam, recon=recon)
        got = subspace_loss(a_hat, a, a_ls, E @ E.T, lam=lam, recon=recon, bands=BANDS)
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)


def test_training_scenes_scale_whole_pixels_or_each_endmember_as_asked():
    A = abundance_maps(16, 16, P, 5, max_abundance=0.9)
    E = endmembers()
    clean = A @ E
    (pix, a), = D.training_pairs([A], E, snr_db=None, variability=0.3, jitter=0.0, seed=0, brightness=0.5,
                                 scaling="pixel")
    ratio = pix / clean  # one scale per pixel: the same for every band
    assert np.allclose(ratio, ratio[..., :1], rtol=1e-4) and np.array_equal(a, A)
    assert abs(np.median(ratio[..., 0]) - 0.5) < 0.1 and np.std(np.log(ratio[..., 0])) > 0.1
    (per, _), = D.training_pairs([A], E, snr_db=None, variability=0.3, jitter=0.0, seed=0, scaling="endmember")
    ratio = per / clean
    assert np.abs(ratio - ratio[..., :1]).max() > 0.05  # endmembers scaled apart change the direction
    pairs = D.training_pairs([A, A], E, snr_db=None, variability=0.3, jitter=0.0, seed=0, scaling="mixed")
    r0, r1 = pairs[0][0] / clean, pairs[1][0] / clean
    assert np.allclose(r0, r0[..., :1], rtol=1e-4) and np.abs(r1 - r1[..., :1]).max() > 0.05


def test_guard_excess_is_the_band_space_residual_difference_and_the_shrink_stops_at_tau():
    from unmixgen.unmix.hybridstu.features import subspace_features
    from unmixgen.unmix.hybridstu.guard import calibrate, excess_residual, guarded
    from unmixgen.unmix.inversion import fcls, scaled

    rng = np.random.default_rng(0)
    A = abundance_maps(10, 12, P, 1, max_abundance=0.9).reshape(-1, P)
    E = endmembers()
    Y = (rng.uniform(0.5, 1.5, (A.shape[0], 1)) * A @ E).astype(np.float32)
    Y += 0.02 * rng.standard_normal(Y.shape).astype(np.float32)
    f = subspace_features(Y, E, scale=0.5)
    G = E.astype(np.float64) @ E.T.astype(np.float64)
    other = rng.dirichlet(np.ones(P), A.shape[0])
    other[::2] = A[::2]  # the truth: half of it within the median excess
    for base, a0 in (("fcls", fcls(Y, E)), ("scaled", scaled(Y, E))):
        if base == "fcls":
            c = np.ones((len(Y), 1))
        else:  # the brightness that fits a0 best
            fit = a0.astype(np.float64) @ E
            c = (np.sum(fit * Y, 1) / np.sum(fit * fit, 1))[:, None]
        res = lambda a, c=c: np.sum((Y - c * a.astype(np.float64) @ E) ** 2, 1)  # noqa: E731
        np.testing.assert_allclose(excess_residual(f, other, G, base), res(other) - res(a0), rtol=1e-3, atol=1e-6)
        tau = calibrate(f, A, G, base, 0.5)
        assert tau == pytest.approx(np.quantile(res(A) - res(a0), 0.5), rel=1e-3, abs=1e-7)
        out, t = guarded(f, other, G, base, tau)
        ex = excess_residual(f, out, G, base)
        assert np.all(ex <= tau * (1 + 1e-4) + 1e-7)
        far = t < 1
        assert far.any() and (~far).any()
        np.testing.assert_allclose(ex[far], tau, rtol=1e-3)  # moved back exactly to the boundary
        np.testing.assert_allclose(out[~far], other[~far], atol=1e-6)  # inside: kept
        assert np.allclose(out.sum(1), 1, atol=1e-5) and out.min() >= -1e-6


def test_brightness_estimate_from_neighbours_ignores_the_noise():
    A = abundance_maps(48, 48, P, 2, max_abundance=0.9)
    E = endmembers()
    mask = np.ones((48, 48), bool)
    for snr in (12.0, 30.0):
        cube = simulate(A, E, snr_db=snr, seed=3)[0].cube
        _, sigma = D.estimate_brightness(cube.reshape(-1, BANDS), E, mask=mask)
        assert sigma < 0.02
    s = D.smooth_log_normal_scales((48, 48, 1), 0.2, np.random.default_rng(0))
    cube = simulate(A * s, 0.5 * E, snr_db=15.0, seed=3)[0].cube
    median, sigma = D.estimate_brightness(cube.reshape(-1, BANDS), E, mask=mask)
    assert abs(sigma - 0.2) < 0.04 and abs(median - 0.5) < 0.05


def test_brightness_estimate_leaves_out_noise_shared_by_neighbours():
    # a product resampled to a map grid shares each sensor pixel's noise among neighbours
    # (here 2 x 2 blocks: correlation 0.5); counted as brightness it read 0.026 at 15 dB
    A = abundance_maps(48, 48, P, 2, max_abundance=0.9)
    E = endmembers()
    mask = np.ones((48, 48), bool)
    rng = np.random.default_rng(5)
    z = rng.standard_normal((49, 49, BANDS))
    shared = (z[:-1, :-1] + z[1:, :-1] + z[:-1, 1:] + z[1:, 1:]) / 2
    for s, truth in ((1.0, 0.0), (D.smooth_log_normal_scales((48, 48, 1), 0.2, rng), 0.2)):
        clean = (A * s) @ E
        for snr in (15.0, 25.0):
            cube = clean + shared * np.sqrt(np.mean(clean**2) / 10 ** (snr / 10))
            median, sigma = D.estimate_brightness(cube.reshape(-1, BANDS).astype(np.float32), E, mask=mask)
            assert abs(sigma - truth) < (0.01 if truth == 0 else 0.04), (snr, truth, sigma)


def test_a_numpy_cube_works_like_a_scene(fitted):
    # like the blind methods, the estimator takes a (rows, cols, bands) array
    est, scene, E, A = fitted
    np.testing.assert_array_equal(est.transform(scene.load()), est.transform(scene))
    again = small().fit(scene.load(), endmembers=E)
    np.testing.assert_array_equal(again.abundances_, est.abundances_)
    with pytest.raises(InputError, match="expected \\(rows, cols, bands\\)"):
        est.transform(scene.load()[0])


def test_applying_a_model_refuses_training_parameters_and_takes_the_tile(fitted, tmp_path):
    """``unmix_hybridstu(scene, model=...)`` applies the model as it is: a training parameter
    (``k``, ``n_endmembers``, ``maps``, ...) or a misspelt one was silently dropped; the
    apply-time ``tile`` was dropped too."""
    from unmixgen.workflows import unmix_hybridstu

    est, scene, E, A = fitted
    est.save_pretrained(tmp_path / "m")
    for given in ({"k": 5}, {"max_steps": 10}, {"n_endmembers": 4}, {"maps": "dirichlet"}, {"tlie": 64}):
        name = next(iter(given))
        with pytest.raises(ParameterError, match=name):
            unmix_hybridstu(scene, model=tmp_path / "m", **given)
    seen = {}
    real = HybridSTU.from_pretrained.__func__

    def spy(cls, folder, **kw):
        seen.update(kw)
        return real(cls, folder, **kw)

    import unittest.mock

    with unittest.mock.patch.object(HybridSTU, "from_pretrained", classmethod(spy)):
        _, A2, _, _ = unmix_hybridstu(scene, model=tmp_path / "m", tile=16, device="cpu", progress=False)
    assert seen == {"device": "cpu", "tile": 16}
    np.testing.assert_allclose(A2, est.transform(scene), atol=1e-6)


def test_training_maps_with_pixels_that_sum_to_zero_are_refused():
    """Maps are renormalised onto the simplex; a pixel of zeros cannot be, and went into the
    training scenes as a black pixel with all-zero abundances (off the simplex)."""
    maps = abundance_maps(16, 16, P, 0)[None].repeat(5, 0)
    np.testing.assert_allclose(D.as_map_list(100 * maps, P)[0], maps[0], atol=1e-6)  # percent: renormalised
    maps[2, 3, 4] = 0.0
    with pytest.raises(InputError, match=r"maps\[2\]: 1 pixel"):
        D.as_map_list(maps, P)


def test_from_pretrained_refuses_a_bad_device_or_tile_when_loading(fitted, tmp_path):
    """They were taken and refused only by the first transform."""
    est = fitted[0]
    est.save_pretrained(tmp_path / "m")
    with pytest.raises(ParameterError, match="device"):
        HybridSTU.from_pretrained(tmp_path / "m", device="gpu")
    with pytest.raises(ParameterError, match="tile"):
        HybridSTU.from_pretrained(tmp_path / "m", tile=0)


def test_fit_reads_the_scenes_pixels_without_copying_them(monkeypatch):
    # `valid_pixels()[:, good]` copied every pixel (a boolean index) also when every band was
    # good: 0.8 GB more for a million-pixel, 200-band scene
    scene, E, _ = sim_scene()
    cube = scene.load()
    seen = {}

    class Seen(Exception):
        pass

    def capture(Y, seed=0):
        seen["Y"] = Y
        raise Seen

    monkeypatch.setattr(D, "noise_estimate", capture)
    with pytest.raises(Seen):
        small().fit(scene, endmembers=E)
    assert np.shares_memory(seen["Y"], cube) and seen["Y"].shape == (cube.shape[0] * cube.shape[1], BANDS)


def coloured_scene(snr=20.0, seed=3):
    """A scene whose noise std grows 30x from the first band to the last, as real sensors' does
    between their best and worst bands."""
    A = abundance_maps(28, 32, P, seed, max_abundance=0.9)
    E = endmembers()
    band_std = np.geomspace(1.0, 30.0, BANDS)
    return simulate(A, E, snr_db=snr, band_std=band_std, seed=seed)[0].to_scene(), E, A, band_std


def test_coloured_noise_weights_each_band_by_its_noise_and_the_weights_travel_with_the_model(
        tmp_path, torch_one_thread):
    from unmixgen.unmix.inversion import fcls

    scene, E, A, band_std = coloured_scene()
    est = small(max_steps=20).fit(scene, endmembers=E)
    w = est.band_weights_
    assert est.history_["noise_profile"] == "scene" and w.shape == (BANDS,)
    assert np.corrcoef(np.log(w), -np.log(band_std))[0, 1] > 0.98
    assert 20 < est.history_["noise_std_range"] < 45  # the 30x spread, estimated
    rmse = np.sqrt(np.mean((est.abundances_ - A) ** 2))
    plain = np.sqrt(np.mean((scene.to_image(fcls(scene.valid_pixels(), E)) - A) ** 2))
    assert rmse < 0.75 * plain  # least squares that trusts every band alike throws the good ones away
    white = small(max_steps=20, noise_profile="white").fit(scene, endmembers=E)
    assert white.band_weights_ is None and white.history_["noise_profile"] == "white"
    est.save_pretrained(tmp_path / "m")
    loaded = HybridSTU.from_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(loaded.band_weights_, w)
    np.testing.assert_allclose(loaded.transform(scene), est.abundances_, atol=1e-6)


@pytest.mark.parametrize("bad", ["short", "zero", "nan"])
def test_a_model_folder_with_bad_band_weights_is_refused(fitted, tmp_path, bad):
    est = fitted[0]
    est.save_pretrained(tmp_path / "m")
    w = np.ones(BANDS, np.float32)
    w = {"short": w[:-1], "zero": np.r_[w[:-1], 0.0], "nan": np.r_[w[:-1], np.nan]}[bad]
    np.savez(tmp_path / "m" / "endmembers.npz", endmembers=est.endmembers_, band_weights=w)
    with pytest.raises(InputError, match=r"endmembers.npz holds band_weights .*expected 30 positive") as err:
        HybridSTU.from_pretrained(tmp_path / "m")
    assert "\n" not in str(err.value)


def test_noise_profile_is_checked():
    # an array (a noise profile itself) failed with numpy's "truth value ... is ambiguous"
    for bad in ("pink", np.ones(BANDS)):
        with pytest.raises(ParameterError, match="noise_profile"):
            small(noise_profile=bad).check_params()


def test_brightness_estimate_leaves_out_shared_noise_where_the_data_are_off_centre():
    # a map-grid product clipped off its swath: the valid pixels lie away from the image's middle,
    # where the noise-correlation window sat and found none (the shared noise then read 0.03 as
    # brightness at 15 dB, as with no correction at all)
    A = abundance_maps(48, 48, P, 2, max_abundance=0.9)
    E = endmembers()
    rng = np.random.default_rng(5)
    z = rng.standard_normal((49, 49, BANDS))
    shared = (z[:-1, :-1] + z[1:, :-1] + z[:-1, 1:] + z[1:, 1:]) / 2
    clean = A @ E
    cube = clean + shared * np.sqrt(np.mean(clean**2) / 10 ** 1.5)
    mask = np.zeros((48, 300), bool)
    mask[:, :48] = True  # the middle 128 columns (86-213) are no-data
    median, sigma = D.estimate_brightness(cube.reshape(-1, BANDS).astype(np.float32), E, mask=mask)
    assert sigma < 0.01, sigma


def test_parameters_as_in_scikit_learn_get_set_clone_and_repr():
    """A notebook's clone ``type(est)(**est.get_params())`` keeps every parameter (``progress``
    was left out), ``set_params`` exists and refuses an unknown name, and the repr is short."""
    est = small(progress=True, seed=3)
    params = est.get_params(deep=False)
    assert params["progress"] is True and params == est.get_params()
    clone = type(est)(**params)
    assert clone.get_params() == params and repr(clone) == repr(est)
    assert repr(HybridSTU(4)) == "HybridSTU(n_endmembers=4)"
    assert repr(HybridSTU(4, k=3, device="cpu")) == "HybridSTU(n_endmembers=4, k=3)"
    assert est.set_params(k=1, lr=1e-3) is est and (est.k, est.lr) == (1, 1e-3)
    with pytest.raises(ParameterError, match=r"^kk=5: not a parameter of HybridSTU; expected one of n_endmembers, "):
        est.set_params(kk=5)
    est.set_params(k=4)  # stored, then refused by fit
    scene, E, _ = sim_scene(12, 12)
    with pytest.raises(ParameterError, match=r"^k=4: "):
        est.fit(scene, endmembers=E)


def test_a_fitted_model_pickles_and_copies_and_transforms_the_same(fitted):
    import copy
    import pickle

    est, scene = fitted[0], fitted[1]
    A = est.transform(scene)
    for other in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        np.testing.assert_array_equal(other.transform(scene), A)
        assert other.get_params() == est.get_params()


def test_an_unfitted_model_raises_the_blind_methods_not_fitted_error():
    """One except clause for every estimator: `NotFittedError` (an `InputError`, one line), also
    from `corrects_scaled`, which met the missing network as a bare AttributeError."""
    from unmixgen.unmix.base import NotFittedError

    scene, _, _ = sim_scene(12, 12)
    est = small()
    for call in (lambda: est.transform(scene), est.corrects_scaled, lambda: est.save_pretrained("unused")):
        with pytest.raises(NotFittedError, match=r"^HybridSTU is not trained: call fit\(\) or load a model"):
            call()
    assert issubclass(NotFittedError, InputError)


def test_transform_leaves_the_fitted_attributes_alone(fitted):
    """transform of another scene changed ``guard_kept_fraction_``, a fitted attribute, to that
    scene's: what the model was fitted on must not depend on what it was applied to since."""
    import copy

    est = copy.deepcopy(fitted[0])
    est.guard_tau_ = 0.0  # a guard that holds back most pixels of any scene it is applied to
    before = {k: v for k, v in vars(est).items() if k.endswith("_") and not isinstance(v, (np.ndarray, torch.nn.Module))}
    other, _, _ = sim_scene(20, 24, snr=15.0, seed=9)
    est.transform(other)
    after = {k: v for k, v in vars(est).items() if k.endswith("_") and not isinstance(v, (np.ndarray, torch.nn.Module))}
    assert after == before
