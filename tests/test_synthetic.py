"""Procedural spectra, spatially structured abundance maps and synthetic scenes."""

from __future__ import annotations

import numpy as np
import pytest

from unmixgen.errors import InputError, ParameterError
from unmixgen.scene import Scene
from unmixgen.simulate import mixing
from unmixgen.simulate import procedural as synthetic


@pytest.fixture(scope="module")
def scene() -> Scene:
    return synthetic.make_scene(rows=40, cols=56, bands=120, p=4, snr_db=30.0, seed=3)


def _at(wl, spec, nm):
    return float(spec[np.argmin(np.abs(wl - nm))])


# -- spectra ---------------------------------------------------------------------------
def test_spectra_in_unit_interval_on_irregular_grid():
    rng = np.random.default_rng(0)
    wl = np.sort(rng.uniform(380, 2510, 100))
    for kind in synthetic.KINDS:
        for r in (None, 1, 2):
            s = synthetic.spectrum(kind, wl, rng=r)
            assert s.shape == (100,) and s.dtype == np.float32
            assert np.all(np.isfinite(s)) and s.min() >= 0 and s.max() <= 1, kind


def test_vegetation_red_edge_and_water_bands():
    wl = np.arange(400.0, 2501.0, 5.0)
    v = synthetic.spectrum("vegetation", wl)
    assert _at(wl, v, 800) / _at(wl, v, 670) > 3  # red edge
    assert _at(wl, v, 550) > _at(wl, v, 670) and _at(wl, v, 550) > _at(wl, v, 480)  # green peak
    for band, shoulder in ((1450, 1650), (1940, 2200), (1200, 1100)):
        assert _at(wl, v, band) < _at(wl, v, shoulder), band
    assert _at(wl, v, 2450) < _at(wl, v, 2200)  # SWIR decline


def test_water_dark_beyond_900_and_blue_highest():
    wl = np.linspace(400, 2500, 300)
    w = synthetic.spectrum("water", wl)
    assert np.all(w[wl > 900] < 0.01)
    assert _at(wl, w, 450) > _at(wl, w, 650) > _at(wl, w, 850)


def test_soil_rises_and_kaolinite_has_doublet():
    wl = np.arange(400.0, 2501.0, 2.0)
    s = synthetic.spectrum("soil", wl)
    assert _at(wl, s, 450) < _at(wl, s, 700) < _at(wl, s, 1200) < _at(wl, s, 1700)
    assert _at(wl, s, 2205) < _at(wl, s, 2120)  # clay feature
    k = synthetic.spectrum("rock", wl)
    for centre in (2162, 2207):  # two local minima of the Al-OH doublet
        i = np.argmin(np.abs(wl - centre))
        win = k[i - 8:i + 9]
        assert k[i - 2:i + 3].min() == win.min()
    assert _at(wl, k, 2207) < _at(wl, k, 2162)


def test_spectrum_variability_and_errors():
    wl = np.linspace(400, 2500, 50)
    a = synthetic.spectrum("soil", wl, rng=1)
    np.testing.assert_array_equal(a, synthetic.spectrum("soil", wl, rng=1))
    assert not np.allclose(a, synthetic.spectrum("soil", wl, rng=2))
    assert not np.allclose(synthetic.spectrum("soil", wl, variant=0.8), synthetic.spectrum("soil", wl))
    with pytest.raises(ParameterError, match="kind='lava': unknown endmember kind"):
        synthetic.spectrum("lava", wl)


def test_library_names_and_distinct_repeats():
    wl = np.linspace(400, 2500, 60)
    E, names = synthetic.library(wl, ["vegetation", "soil", "soil", "npv"])
    assert E.shape == (4, 60) and names == ["vegetation", "soil", "soil_2", "dry_vegetation"]
    assert not np.allclose(E[1], E[2])


# -- abundance maps --------------------------------------------------------------------
def _neighbour_corr(a: np.ndarray) -> float:
    x, y = a[:, :-1].ravel(), a[:, 1:].ravel()
    return float(np.corrcoef(x, y)[0, 1])


def test_abundance_maps_simplex_and_spatial_structure():
    a = synthetic.abundance_maps(48, 72, 4, rng=0)
    assert a.shape == (48, 72, 4) and a.dtype == np.float32
    assert a.min() >= 0 and np.abs(a.sum(-1) - 1).max() < 1e-6
    shuffled = np.random.default_rng(1).permutation(a.reshape(-1, 4)).reshape(a.shape)
    for k in range(4):
        assert _neighbour_corr(a[..., k]) > 0.8
        assert abs(_neighbour_corr(shuffled[..., k])) < 0.1
    np.testing.assert_array_equal(a, synthetic.abundance_maps(48, 72, 4, rng=0))


def test_purity_controls_mixing():
    soft = synthetic.abundance_maps(32, 40, 3, rng=5, purity=0.5).max(-1).mean()
    sharp = synthetic.abundance_maps(32, 40, 3, rng=5, purity=8.0).max(-1).mean()
    assert sharp > soft + 0.2


def test_pure_pixels_present_when_asked_and_absent_under_cap():
    a = synthetic.abundance_maps(30, 44, 5, rng=2, pure_pixels=2)
    for k in range(5):
        assert np.sum(a[..., k] == 1.0) >= 2
    capped = synthetic.abundance_maps(30, 44, 5, rng=2, purity=10.0, max_abundance=0.7)
    assert capped.max() <= 0.7 + 1e-6
    assert capped.min() >= 0 and np.abs(capped.sum(-1) - 1).max() < 1e-6
    with pytest.raises(InputError, match="max_abundance"):
        synthetic.abundance_maps(8, 9, 4, max_abundance=0.2)
    with pytest.raises(InputError, match="contradict"):
        synthetic.abundance_maps(8, 9, 4, pure_pixels=True, max_abundance=0.8)


def test_regions_add_patches():
    a = synthetic.abundance_maps(40, 50, 3, rng=4, regions=5)
    assert a.min() >= 0 and np.abs(a.sum(-1) - 1).max() < 1e-6


# -- scenes ----------------------------------------------------------------------------
def test_make_scene_shapes_truth_and_metadata(scene):
    assert scene.shape == (40, 56, 120)
    assert scene.load().dtype == np.float32
    assert scene.metadata["format"] == "synthetic"
    assert scene.wavelengths[0] == 400 and scene.wavelengths[-1] == 2500
    assert scene.fwhm.shape == (120,) and np.all(scene.fwhm > 0)
    t = scene.truth
    assert t.endmembers.shape == (4, 120) and t.abundances.shape == (40, 56, 4)
    assert t.names == ["vegetation", "soil", "water", "asphalt"]
    assert np.abs(t.abundances.sum(-1) - 1).max() < 1e-6 and t.abundances.min() >= 0
    assert scene.mask.all()
    for k in range(4):  # pure pixels (default) for every endmember
        assert (t.abundances[..., k] == 1).any()


def test_make_scene_snr_and_mixing(scene):
    clean = mixing.linear(scene.truth.abundances, scene.truth.endmembers)
    assert abs(mixing.snr_db(clean, scene.load()) - 30.0) < 0.1
    quiet = synthetic.make_scene(rows=10, cols=12, bands=30, snr_db=None, seed=1)
    np.testing.assert_allclose(quiet.load(), mixing.linear(quiet.truth.abundances, quiet.truth.endmembers),
                               atol=1e-6)


def test_make_scene_deterministic_per_seed():
    a = synthetic.make_scene(rows=12, cols=17, bands=25, seed=9)
    b = synthetic.make_scene(rows=12, cols=17, bands=25, seed=9)
    c = synthetic.make_scene(rows=12, cols=17, bands=25, seed=10)
    np.testing.assert_array_equal(a.load(), b.load())
    np.testing.assert_array_equal(a.truth.abundances, b.truth.abundances)
    assert not np.array_equal(a.load(), c.load())


def test_make_scene_options():
    wl = np.sort(np.random.default_rng(0).uniform(380, 2510, 70))
    s = synthetic.make_scene(rows=9, cols=14, wavelengths=wl, kinds=["water", "kaolinite", "roof"],
                             pure_pixels=False, max_abundance=0.6, noise="signal", variability=True)
    assert s.bands == 70 and s.truth.names == ["water", "kaolinite", "roof"]
    assert s.truth.abundances.max() <= 0.6 + 1e-6
    d = synthetic.make_scene(rows=5, cols=6, drop_water_vapour=True)
    assert not np.any((d.wavelengths > 1340) & (d.wavelengths < 1460))
    with pytest.raises(InputError, match="unknown endmember kind"):
        synthetic.make_scene(rows=5, cols=6, kinds=["vegetation", "plasma"])


def test_default_scene_is_demo_sized():
    s = synthetic.default_scene()
    assert s.rows != s.cols and s.rows * s.cols <= 20000
    assert 150 <= s.bands <= 256 and s.truth.n_endmembers >= 4


@pytest.mark.parametrize("call, name", [
    (lambda: synthetic.abundance_maps(0, 9, 3), "rows"),
    (lambda: synthetic.abundance_maps(8, 9, 3, smoothness=float("nan")), "smoothness"),
    (lambda: synthetic.abundance_maps(8, 9, 3, purity=float("inf")), "purity"),
    (lambda: synthetic.abundance_maps(8, 9, 3, regions=-1), "regions"),
    (lambda: synthetic.abundance_maps(8, 9, 3, pure_pixels=-2), "pure_pixels"),
    (lambda: synthetic.abundance_maps(8, 9, 4, max_abundance=0.2), "max_abundance"),
    (lambda: synthetic.make_scene(rows=5, cols=6, bands=0), "bands"),
    (lambda: synthetic.make_scene(rows=5, cols=6, p=0), "p"),
    (lambda: synthetic.make_scene(rows=5, cols=6, snr_db=float("nan")), "snr_db"),
    (lambda: synthetic.make_scene(rows=5, cols=6, noise="pink"), "noise"),
    (lambda: synthetic.make_scene(rows=5, cols=6, seed=-1), "seed"),
    (lambda: synthetic.library(np.linspace(400, 900, 20), []), "kinds"),
])
def test_bad_parameters_are_named(call, name):
    with pytest.raises(ParameterError) as err:
        call()
    assert err.value.name == name and str(err.value).startswith(f"{name}=")
    assert "--" not in str(err.value)  # the library names parameters, not command-line flags
