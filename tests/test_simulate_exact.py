"""Simulated scenes against independent computations: the realised SNR, the spectral
response, the ground truth and every file simulate writes (bug hunt 43).

Every expected value here is computed in the test from the inputs (numerical integration on a
fine grid, the SNR from its definition, ``A @ E`` by hand), never taken from the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from unmixgen.simulate.scene import simulate

ROWS, COLS = 17, 23  # non-square: a transposed pixel order cannot pass


def realised_snr_db(clean, noisy) -> float:
    """``10 log10(sum clean^2 / sum (noisy - clean)^2)`` over the valid (finite) values."""
    c = np.asarray(clean, np.float64)
    n = np.asarray(noisy, np.float64) - c
    ok = np.isfinite(c)
    return float(10 * np.log10((c[ok] ** 2).sum() / (n[ok] ** 2).sum()))


def bright_dark_maps(rows=40, cols=50):
    """Two endmembers; the left half of the map no-data (NaN in every map), the valid half pure
    bright pixels in its top rows and pure dark ones below: the mean abundance (what a no-data
    pixel was mixed from) has a quarter of the valid pixels' mean power."""
    a = np.zeros((rows, cols, 2), np.float32)
    a[: rows // 2, :, 0] = 1
    a[rows // 2:, :, 1] = 1
    a[:, : cols // 2] = np.nan
    return a


def flat_spectra(bands=20):
    wl = np.linspace(450.0, 900.0, bands)
    return np.stack([np.full(bands, 1.0), np.full(bands, 1e-3)]).astype(np.float32), wl


@pytest.mark.parametrize("kind", ["white", "signal"])
def test_the_snr_of_a_scene_with_no_data_is_the_requested_one_over_its_valid_pixels(kind):
    # no-data pixels were mixed from the map's mean abundance and the noise level set over them
    # too: the valid pixels' SNR came out 1.2 dB above the one asked for (white noise)
    a = bright_dark_maps()
    e, wl = flat_spectra()
    s = simulate(a, e, wavelengths=wl, snr_db=20.0, noise=kind, seed=2)[0]
    nodata = np.isnan(a).all(-1)
    assert np.isnan(s.cube[nodata]).all() and np.isnan(s.clean[nodata]).all()
    assert np.isfinite(s.cube[~nodata]).all()
    np.testing.assert_array_equal(s.clean[~nodata], a[~nodata] @ e)
    # 20,000 valid values: the sampling error of the realised SNR is about 0.04 dB
    assert realised_snr_db(s.clean, s.cube) == pytest.approx(20.0, abs=0.2)


def test_simulate_writes_the_requested_snr_over_the_valid_pixels_of_maps_with_no_data(tmp_path, run_cli):
    a = bright_dark_maps()
    e, wl = flat_spectra()
    np.savez(tmp_path / "maps.npz", abundances=a)
    (tmp_path / "em.csv").write_text("wavelength_nm,bright,dark\n"
                                     + "".join(f"{w},{e[0, i]},{e[1, i]}\n" for i, w in enumerate(wl)))
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "em.csv", "--snr", "20",
                           "--seed", "3", "--out", tmp_path / "sim")
    assert code == 0, err
    with np.load(tmp_path / "sim" / "scene_000.npz") as z:
        assert realised_snr_db(z["clean"], z["cube"]) == pytest.approx(20.0, abs=0.2)
        nodata = np.isnan(a).all(-1)
        assert np.isnan(z["cube"][nodata]).all() and np.isnan(z["abundances"][nodata]).all()


def test_maps_with_a_pixel_inf_in_every_map_are_refused_naming_the_file(tmp_path, run_cli):
    # Inf is no no-data value: such a pixel was taken for no-data by the command and then
    # refused by simulate() as "NaN in some maps only"
    a = bright_dark_maps()
    a[1, 1] = np.inf
    e, wl = flat_spectra()
    np.savez(tmp_path / "maps.npz", abundances=a)
    (tmp_path / "em.csv").write_text("wavelength_nm,bright,dark\n"
                                     + "".join(f"{w},{e[0, i]},{e[1, i]}\n" for i, w in enumerate(wl)))
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "em.csv", "--snr", "20",
                           "--out", tmp_path / "sim")
    assert code == 2 and "maps.npz" in err and "Inf" in err and "some maps only" not in err, err
    assert not (tmp_path / "sim").exists()


# ------------------------------------------------------------------ spectral response
SIGMA_PER_FWHM = 1 / (2 * np.sqrt(2 * np.log(2)))


def integrated(spectra, wl, centre, fwhm, n=200_001):
    """A band's value by direct numerical integration on a fine grid: the spectrum (linear
    between its channels) weighted by the Gaussian response over the measured range."""
    x = np.linspace(wl[0], wl[-1], n)
    g = np.exp(-0.5 * ((x - centre) / (fwhm * SIGMA_PER_FWHM)) ** 2)
    f = np.array([np.interp(x, wl, s) for s in np.atleast_2d(spectra)])
    return np.trapezoid(f * g, x, axis=-1) / np.trapezoid(g, x)


def test_resampling_equals_direct_integration_on_an_irregular_grid_and_near_its_edges():
    from unmixgen.simulate.spectral_response import resample

    rng = np.random.default_rng(4)
    wl = np.concatenate([[400.0], np.sort(rng.uniform(400.5, 999.5, 120)), [1000.0]])
    spectra = rng.random((3, wl.size))
    bands = [(405.0, 3.0), (500.0, 10.0), (612.3, 0.7), (650.0, 90.0), (995.0, 4.0), (999.9, 0.01)]
    got = resample(spectra, wl, [c for c, _ in bands], [f for _, f in bands])
    for k, (c, f) in enumerate(bands):
        np.testing.assert_allclose(got[:, k], integrated(spectra, wl, c, f), rtol=2e-5, atol=1e-6)


def test_a_band_partly_outside_the_spectra_is_refused_saying_how_much_is_inside():
    # its centre inside the range, the band was said to "lie outside" it
    from unmixgen.errors import InputError
    from unmixgen.simulate.spectral_response import resample

    wl = np.linspace(450.0, 900.0, 46)
    with pytest.raises(InputError, match=r"455.0 nm, FWHM 10.0 nm\) has 88% of its response \(< 90%\) inside "
                                         r"the spectra's range 450.0-900.0 nm"):
        resample(np.ones(46), wl, [455.0, 600.0], [10.0, 10.0])
    with pytest.raises(InputError, match="950.0 nm, FWHM 10.0 nm\\) lies outside"):
        resample(np.ones(46), wl, [600.0, 950.0], [10.0, 10.0])


def gap_library(path):
    """A CSV library 400-1000 nm every 10 nm whose first spectrum has channels 690-730 nm
    missing (nan): measured on both sides, 680 and 740 nm, the gap between only interpolated."""
    wl = np.arange(400.0, 1001.0, 10.0)
    e = np.stack([0.3 + 0.2 * np.sin(wl / 70.0), 0.5 + 0.1 * np.cos(wl / 45.0)])
    gap = (wl >= 690) & (wl <= 730)
    rows = ["wavelength_nm,a,b"] + [f"{w},{'nan' if g else f'{x:.9g}'},{y:.9g}"
                                    for w, g, x, y in zip(wl, gap, e[0], e[1], strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return wl, e, gap


def test_sensor_bands_over_a_librarys_missing_channels_are_left_out_not_interpolated(tmp_path, run_cli):
    import json

    wl, e, gap = gap_library(tmp_path / "lib.csv")
    a = np.full((ROWS, COLS, 2), 0.5, np.float32)
    np.savez(tmp_path / "maps.npz", abundances=a)
    # 710 nm lies in the gap; 745 nm has 12 % of its response over it; 500 and 800 nm are measured
    (tmp_path / "sensor.csv").write_text("centre,fwhm\n500,10\n710,10\n745,10\n800,12\n")
    (tmp_path / "noise.csv").write_text("noise_std\n1\n100\n100\n3\n")
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "lib.csv", "--sensor",
                           tmp_path / "sensor.csv", "--band-noise", tmp_path / "noise.csv", "--snr", "30",
                           "--out", tmp_path / "sim")
    assert code == 0, err
    assert "sensor.csv" in err and "710" in err and "745" in err and "left out" in err, err
    keep = ~gap
    with np.load(tmp_path / "sim" / "scene_000.npz") as z:
        np.testing.assert_array_equal(z["wavelengths"], [500.0, 800.0])
        np.testing.assert_array_equal(z["fwhm"], [10.0, 12.0])
        expect = np.stack([integrated(e[:, keep], wl[keep], c, f) for c, f in ((500, 10), (800, 12))], axis=1)
        np.testing.assert_allclose(z["endmembers"], expect, rtol=1e-5)
        # the noise profile of the bands kept, 1 : 3
        std = (z["cube"] - z["clean"]).reshape(-1, 2).std(0)
        assert std[1] / std[0] == pytest.approx(3.0, rel=0.2)
    run = json.loads((tmp_path / "sim" / "run.json").read_text())
    assert run["sensor_bands_left_out"] == [710.0, 745.0]


def test_a_sensor_beyond_the_spectra_is_refused_naming_both_files(tmp_path, run_cli):
    wl = np.arange(400.0, 1001.0, 10.0)
    (tmp_path / "lib.csv").write_text("wavelength_nm,a,b\n" + "".join(f"{w},0.3,0.5\n" for w in wl))
    np.savez(tmp_path / "maps.npz", abundances=np.full((ROWS, COLS, 2), 0.5, np.float32))
    (tmp_path / "swir.csv").write_text("centre,fwhm\n900,10\n1200,10\n1500,10\n")
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "lib.csv", "--sensor",
                           tmp_path / "swir.csv", "--out", tmp_path / "sim")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "swir.csv" in err and "lib.csv" in err and "1200.0 nm" in err and "2 of 3 bands" in err, err
    assert not (tmp_path / "sim").exists()


def test_a_sensor_with_one_fwhm_for_every_band_gives_a_scene_with_a_width_per_band(tmp_path):
    # resampling takes one FWHM for every band, but the scene kept it as one value: to_scene
    # failed ("fwhm: 1 values for 3 bands") and the .npz held one width for three bands
    from unmixgen.io import read_scene, write_scene

    e, wl = flat_spectra()
    a = np.full((ROWS, COLS, 2), 0.5, np.float32)
    s = simulate(a, e, wavelengths=wl, sensor=([550.0, 600.0, 650.0], 15.0))[0]
    np.testing.assert_array_equal(s.fwhm, [15.0, 15.0, 15.0])
    assert s.arrays()["fwhm"].shape == (3,)
    write_scene(s.to_scene(), tmp_path / "s.hdr")
    np.testing.assert_array_equal(read_scene(tmp_path / "s.hdr").fwhm, [15.0, 15.0, 15.0])


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"wavelengths": np.linspace(900.0, 450.0, 20)}, "wavelengths"),
    ({"wavelengths": np.r_[450.0, np.linspace(450.0, 900.0, 19)]}, "wavelengths"),
    ({"wavelengths": np.linspace(450.0, 900.0, 20), "sensor": ([650.0, 550.0, 600.0], [15.0] * 3)}, "sensor"),
])
def test_wavelengths_that_do_not_increase_are_refused_by_name(kwargs, name):
    # they were taken, and the scenes failed later in to_scene / the writers, naming no parameter
    from unmixgen.errors import ParameterError

    e, _ = flat_spectra()
    with pytest.raises(ParameterError, match=f"^{name}=.*strictly increasing"):
        simulate(np.full((ROWS, COLS, 2), 0.5, np.float32), e, **kwargs)


def test_with_variability_every_file_gives_the_spectra_before_scaling_as_the_truth(tmp_path, run_cli):
    """The truth the files carry (the .npz's and .mat's endmembers, as read by read_scene and used by
    evaluate --truth) are the spectra before each pixel's scaling, as --help says: the clean cube
    is the sum over endmembers of abundance x scale x that spectrum, and log(scale) has mean 0
    and standard deviation --variability over each map."""
    from unmixgen.io import read_scene

    e, wl = flat_spectra()
    e[1] = np.linspace(0.1, 0.6, wl.size)
    rng = np.random.default_rng(0)
    a = rng.dirichlet([1.0, 1.0], (ROWS, COLS)).astype(np.float32)
    np.savez(tmp_path / "maps.npz", abundances=a)
    (tmp_path / "em.csv").write_text("wavelength_nm,x,y\n"
                                     + "".join(f"{w},{e[0, i]:.9g},{e[1, i]:.9g}\n" for i, w in enumerate(wl)))
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "em.csv", "--variability",
                           "0.3", "--out", tmp_path / "sim")
    assert code == 0, err
    with np.load(tmp_path / "sim" / "scene_000.npz") as z:
        scales, clean, pixel = z["scales"], z["clean"], z["pixel_endmembers"]
    logs = np.log(scales.astype(np.float64)).reshape(-1, 2)
    np.testing.assert_allclose(logs.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(logs.std(0), 0.3, rtol=1e-4)
    np.testing.assert_allclose(pixel, scales[..., None] * e, rtol=1e-6)
    for name in ("scene_000.npz", "scene_000.mat"):
        truth = read_scene(tmp_path / "sim" / name).truth
        np.testing.assert_allclose(truth.endmembers, e, rtol=1e-6)
        np.testing.assert_array_equal(truth.abundances, a)
        expect = np.einsum("rcp,rcp,pb->rcb", a.astype(np.float64), scales, truth.endmembers.astype(np.float64))
        np.testing.assert_allclose(clean, expect, rtol=1e-5)
    np.testing.assert_allclose(read_scene(tmp_path / "sim" / "scene_000.hdr").load(), clean, rtol=0, atol=0)


def test_noise_follows_the_band_profile_at_the_global_snr_reproducible_by_seed_and_independent_between_seeds():
    rng = np.random.default_rng(1)
    a = rng.dirichlet([1.0, 1.0], (60, 70)).astype(np.float32)
    e, wl = flat_spectra()
    e[1] = np.linspace(0.1, 0.6, wl.size)
    profile = np.geomspace(1.0, 20.0, wl.size)[::-1].copy()  # a sensor's noise, 20x between its ends
    s = simulate(a, e, wavelengths=wl, snr_db=25.0, band_std=profile, seed=7)[0]
    noise = (s.cube.astype(np.float64) - s.clean).reshape(-1, wl.size)
    clean = s.clean.astype(np.float64)
    # the documented definition: one global SNR; the expected noise variance of band b is
    # sum(clean^2) / 10^(SNR/10) shared out over the values in proportion to profile_b^2
    sigma = np.sqrt((clean**2).sum() / 10**2.5 / (a.shape[0] * a.shape[1] * (profile**2).sum())) * profile
    np.testing.assert_allclose(noise.std(0), sigma, rtol=0.06)  # 4200 values a band: 1.1 % sampling error
    assert realised_snr_db(s.clean, s.cube) == pytest.approx(25.0, abs=0.1)
    again = simulate(a, e, wavelengths=wl, snr_db=25.0, band_std=profile, seed=7)[0]
    np.testing.assert_array_equal(again.cube, s.cube)
    other = simulate(a, e, wavelengths=wl, snr_db=25.0, band_std=profile, seed=8)[0]
    r = np.corrcoef(noise.ravel(), (other.cube.astype(np.float64) - other.clean).ravel())[0, 1]
    assert abs(r) < 4 / np.sqrt(noise.size)


def test_the_truth_of_a_simulated_scene_is_its_own_not_the_callers_arrays():
    # float32 inputs were kept as they are: changing the result's truth changed the caller's maps
    rng = np.random.default_rng(0)
    A = rng.dirichlet(np.ones(3), size=(5, 7)).astype(np.float32)
    E = rng.uniform(0.1, 0.9, (3, 12)).astype(np.float32)
    A_in, E_in = A.copy(), E.copy()
    sim = simulate(A, E, snr_db=30, seed=0)[0]
    sim.abundances[:] = 0.0
    sim.endmembers[:] = 0.0
    sim.reference_endmembers[:] = 0.0
    np.testing.assert_array_equal(A, A_in)
    np.testing.assert_array_equal(E, E_in)
