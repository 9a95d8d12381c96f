"""The synthesis and simulation chain as a user runs it: unmix -> simulate (bug hunt 21)."""

from __future__ import annotations

import numpy as np
import pytest

from test_simulate import maps, spectra
from unmixgen.simulate.mixing import snr_db

ROWS, COLS, P, BANDS = 12, 16, 3, 40
BAD = slice(20, 25)  # water-absorption-like bands the file flags bad


def abundance_maps(rows=ROWS, cols=COLS, p=P, seed=0):
    """One ``(rows, cols, p)`` map set, smooth, on the simplex."""
    return maps(1, rows, cols, p, seed)[0]


@pytest.fixture
def run_with_bad_bands(tmp_path, run_cli):
    """An `unmix` result folder of an ENVI scene whose bands BAD are flagged bad (bbl) and hold
    junk 100x the signal, as a saturated absorption band does."""
    from unmixgen.io import write_scene
    from unmixgen.scene import Scene

    a = abundance_maps()
    e, wl = spectra()
    cube = a @ e
    cube[..., BAD] = np.random.default_rng(5).random((ROWS, COLS, 5)).astype(np.float32) * 50
    good = np.ones(BANDS, bool)
    good[BAD] = False
    write_scene(Scene(cube, wavelengths=wl, good_bands=good), tmp_path / "scene.hdr")
    code, _, err = run_cli("unmix", tmp_path / "scene.hdr", "-p", "3", "--method", "vca", "--no-figures",
                           "--out", tmp_path / "run")
    assert code == 0, err
    return tmp_path, good


def test_simulate_leaves_out_the_bad_bands_of_a_result_folder(run_with_bad_bands, run_cli):
    # the junk a result's endmembers hold at the scene's bad bands was simulated as reflectance
    # (and set the noise level: --snr 30 gave -4 dB on the good bands of a Samson crop)
    tmp, good = run_with_bad_bands
    for source in ("run", "run/endmembers.csv", "run/endmembers.sli"):
        out = tmp / f"sim_{source.replace('/', '_')}"
        code, _, err = run_cli("simulate", "-a", tmp / "run", "-e", tmp / source, "--snr", "30", "--out", out)
        assert code == 0, err
        assert "5 channels" in err and "left out" in err, err
        with np.load(out / "scene_000.npz") as z:
            assert z["cube"].shape == (ROWS, COLS, int(good.sum()))
            np.testing.assert_allclose(z["wavelengths"], spectra()[1][good], atol=1e-3)
            assert z["endmembers"].max() < 2  # no junk band left
            assert snr_db(z["clean"], z["cube"]) == pytest.approx(30.0, abs=0.5)


def gaussian_srf_by_quadrature(spectrum, wl, centre, fwhm):
    """A band's value by brute-force quadrature of the spectrum (linear between its samples)
    against the Gaussian response: independent of `gaussian_srf_matrix`'s closed form."""
    grid = np.linspace(wl[0], wl[-1], 400001)
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    g = np.exp(-0.5 * ((grid - centre) / sigma) ** 2)
    return np.trapezoid(np.interp(grid, wl, spectrum) * g, grid) / np.trapezoid(g, grid)


def test_simulate_onto_a_sensor_listed_vnir_then_swir(tmp_path, run_cli):
    # a sensor's band list in file order (VNIR, then SWIR starting below the VNIR's end, as
    # PRISMA's and EnMAP's detectors overlap) was refused as not increasing, though the same
    # bands read from a scene file were sorted; its noise profile comes in the same row order
    wl = np.linspace(400.0, 2500.0, 211)
    rng = np.random.default_rng(3)
    e = (0.3 + 0.2 * np.sin(wl[None] / rng.uniform(80, 200, (P, 1)))).astype(np.float32)
    lines = ["wavelength_nm," + ",".join(f"m{i}" for i in range(P))]
    lines += [f"{w}," + ",".join(f"{v:.8g}" for v in e[:, b]) for b, w in enumerate(wl)]
    (tmp_path / "em.csv").write_text("\n".join(lines) + "\n")
    vnir, swir = np.arange(450.0, 1001.0, 25.0), np.arange(903.0, 2400.0, 60.0)
    centres = np.r_[vnir, swir]
    fwhm = np.r_[np.full(vnir.size, 12.0), np.full(swir.size, 18.0)]
    (tmp_path / "sensor.csv").write_text("centre,fwhm\n" + "".join(f"{c},{f}\n" for c, f in zip(centres, fwhm,
                                                                                              strict=True)))
    std = np.ones(centres.size)
    noisy = vnir.size  # the first SWIR band (903 nm) sorts in among the VNIR ones
    std[noisy] = 20.0
    (tmp_path / "noise.csv").write_text("noise_std\n" + "".join(f"{v}\n" for v in std))
    np.savez(tmp_path / "maps.npz", abundances=abundance_maps(40, 50))
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "em.csv", "--sensor",
                           tmp_path / "sensor.csv", "--band-noise", tmp_path / "noise.csv", "--snr", "30",
                           "--out", tmp_path / "sim")
    assert code == 0, err
    assert "sensor.csv" in err and "sorted" in err, err
    order = np.argsort(centres)
    with np.load(tmp_path / "sim" / "scene_000.npz") as z:
        np.testing.assert_allclose(z["wavelengths"], centres[order])
        np.testing.assert_allclose(z["fwhm"], fwhm[order])
        want = np.array([[gaussian_srf_by_quadrature(s, wl, c, f) for c, f in zip(centres[order], fwhm[order],
                                                                                  strict=True)] for s in e])
        np.testing.assert_allclose(z["endmembers"], want, atol=2e-6)
        noise_std = (z["cube"] - z["clean"]).reshape(-1, centres.size).std(axis=0)
        loudest = int(np.argmax(noise_std))
        assert z["wavelengths"][loudest] == 903.0, z["wavelengths"][loudest]
    assert noise_std[loudest] > 10 * np.median(noise_std)
    # the same centre twice is no sensor to simulate: one line naming the file
    (tmp_path / "twice.csv").write_text("centre,fwhm\n500,10\n600,10\n550,10\n600,12\n")
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "em.csv", "--sensor",
                           tmp_path / "twice.csv", "--out", tmp_path / "sim2")
    assert code == 2 and "twice.csv" in err and "600" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sim2").exists()


@pytest.mark.parametrize("ext", ["tif", "hdr"])
def test_simulated_scenes_keep_the_place_of_a_result_folders_maps(tmp_path, run_cli, ext):
    # maps of an unmix result lie on its scene's pixel grid, and the result's maps carry that
    # scene's georeferencing; the scenes simulated from them were written unplaced
    from rasterio.crs import CRS

    from unmixgen.io import read_scene, write_scene
    from unmixgen.scene import Scene

    e, wl = spectra()
    transform = (30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
    write_scene(Scene(abundance_maps() @ e, wavelengths=wl, crs="EPSG:32633", transform=transform),
                tmp_path / f"scene.{ext}")
    code, _, err = run_cli("unmix", tmp_path / f"scene.{ext}", "-p", "3", "--method", "vca", "--no-figures",
                           "--out", tmp_path / "run")
    assert code == 0, err
    code, _, err = run_cli("simulate", "-a", tmp_path / "run", "-e", tmp_path / "run", "--snr", "40",
                           "--format", "tif" if ext == "hdr" else "envi", "--out", tmp_path / "sim")
    assert code == 0, err
    for name in ("scene_000.npz", "scene_000.tif" if ext == "hdr" else "scene_000.hdr"):
        sc = read_scene(tmp_path / "sim" / name)
        assert sc.crs is not None and CRS.from_user_input(sc.crs).to_epsg() == 32633, name
        np.testing.assert_allclose(sc.transform, transform, err_msg=name)
    # synthesized maps are no place on Earth: unplaced as before
    np.savez(tmp_path / "maps.npz", abundances=abundance_maps())
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "run", "--out", tmp_path / "s2")
    assert code == 0, err
    assert read_scene(tmp_path / "s2" / "scene_000.npz").crs is None


def test_simulate_names_a_model_folder_given_as_maps(tmp_path, run_cli):
    # `simulate -a MODEL` read "folder has neither abundances.npz nor result.npz", as if the
    # model were a damaged synthesize folder
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"format": "unmixgen-model", "kind": "abundance_prior"}')
    e, wl = spectra()
    (tmp_path / "em.csv").write_text("wavelength_nm,a,b,c\n" + "".join(
        f"{w}," + ",".join(f"{v:.6g}" for v in e[:, b]) + "\n" for b, w in enumerate(wl)))
    code, _, err = run_cli("simulate", "-a", model, "-e", tmp_path / "em.csv", "--out", tmp_path / "sim")
    assert code == 2 and "model folder" in err and "synthesize" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sim").exists()


def test_a_result_with_no_data_simulates_scenes_with_the_same_no_data(tmp_path, run_cli):
    # a map-grid product (PRISMA L2D, EnMAP L2A) has no-data corners around its swath, so its
    # result's maps do too; simulate refused them ("expected complete maps")
    from unmixgen.io import read_scene, write_scene
    from unmixgen.scene import Scene

    e, wl = spectra()
    cube = abundance_maps() @ e
    cube[:4, :5] = np.nan  # a corner outside the swath
    cube[-1, -3:] = np.nan
    write_scene(Scene(cube, wavelengths=wl), tmp_path / "scene.hdr")
    code, _, err = run_cli("unmix", tmp_path / "scene.hdr", "-p", "3", "--method", "vca", "--no-figures",
                           "--out", tmp_path / "run")
    assert code == 0, err
    code, _, err = run_cli("simulate", "-a", tmp_path / "run", "-e", tmp_path / "run", "--snr", "30",
                           "--out", tmp_path / "sim")
    assert code == 0, err
    nodata = ~np.isfinite(cube).all(-1)
    z = np.load(tmp_path / "sim" / "scene_000.npz")
    for key in ("cube", "clean", "abundances"):
        assert np.isnan(z[key][nodata]).all() and np.isfinite(z[key][~nodata]).all(), key
    a = z["abundances"][~nodata]
    np.testing.assert_allclose(z["clean"][~nodata], a @ z["endmembers"], rtol=1e-5, atol=1e-6)  # exact truth
    assert abs(snr_db(z["clean"], z["cube"]) - 30.0) < 0.3  # over the valid pixels
    written = read_scene(tmp_path / "sim" / "scene_000.hdr")
    np.testing.assert_array_equal(written.mask, ~nodata)
    code, _, err = run_cli("unmix", tmp_path / "sim" / "scene_000.hdr", "-p", "3", "--method", "vca",
                           "--no-figures", "--truth", tmp_path / "sim" / "scene_000.npz", "--out", tmp_path / "again")
    assert code == 0, err
    # a pixel missing in one map but not the others is no no-data: refused as before
    bad = np.load(tmp_path / "run" / "result.npz")
    maps = np.array(bad["abundances"])
    maps[6, 6, 0] = np.nan
    np.savez(tmp_path / "partial.npz", abundances=maps)
    code, _, err = run_cli("simulate", "-a", tmp_path / "partial.npz", "-e", tmp_path / "run", "--out", tmp_path / "s3")
    assert code == 2 and "partial.npz" in err and not (tmp_path / "s3").exists()


@pytest.mark.parametrize("fmt", ["envi", "tif"])
def test_simulated_scenes_say_the_units_of_their_spectra(tmp_path, run_cli, fmt):
    """Every simulated scene was written as reflectance, whatever its spectra were: a radiance
    scene's unmix result, a CSV that says nothing. A scene mixes its spectra, so it is in their
    units: radiance from a radiance scene's result (in every file written, run.json too),
    reflectance from a reflectance library, and unknown where the source says nothing."""
    import json

    from test_simulate import fake_library
    from unmixgen.io import read_scene, write_scene
    from unmixgen.io.sli import read_library
    from unmixgen.scene import Scene

    e, wl = spectra()
    write_scene(Scene(100 * abundance_maps() @ e, wavelengths=wl, units="radiance"), tmp_path / "scene.npz")
    code, _, err = run_cli("unmix", tmp_path / "scene.npz", "-p", "3", "--method", "vca", "--no-figures",
                           "--out", tmp_path / "run")
    assert code == 0, err
    assert read_library(tmp_path / "run" / "endmembers.sli").units == "radiance"
    ext = "hdr" if fmt == "envi" else "tif"
    lib = fake_library(tmp_path / "lib.mat", ["Kaolinite CM9", "Alunite GDS84", "Muscovite GDS107"])
    np.savez(tmp_path / "maps.npz", abundances=abundance_maps())
    (tmp_path / "em.csv").write_text("wavelength_nm,a,b,c\n" + "".join(
        f"{w},{x},{y},{z}\n" for w, (x, y, z) in zip(wl, e.T, strict=True)))
    for source, units in ((tmp_path / "run", "radiance"), (tmp_path / "run" / "endmembers.sli", "radiance"),
                          (f"{lib}:kaolin,alunite,muscovite", "reflectance"), (tmp_path / "em.csv", None)):
        out = tmp_path / f"sim-{units}-{len(str(source))}"
        code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", source, "--snr", "40",
                               "--format", fmt, "--out", out)
        assert code == 0, err
        for name in ("scene_000.npz", f"scene_000.{ext}"):
            assert read_scene(out / name).units == units, (source, name)
        assert json.loads((out / "run.json").read_text())["units"] == (units or "unknown"), source
        if units is not None:
            assert read_library(out / "endmembers.sli").units == units


def test_simulate_takes_the_units_it_is_told():
    from unmixgen.errors import ParameterError
    from unmixgen.simulate.scene import simulate

    e, wl = spectra()
    a = abundance_maps()[None]
    assert simulate(a, e, wavelengths=wl)[0].to_scene().units is None  # arrays say nothing
    assert simulate(a, e, wavelengths=wl, units="radiance")[0].to_scene().units == "radiance"
    # a radiance unit as a file states it is kept as it is (a factor of 10 lies between
    # uW/(cm^2 sr nm) and W/(m^2 sr um)); it used to be refused
    assert simulate(a, e, units="uW/(cm^2  sr nm)")[0].to_scene().units == "uW/(cm^2 sr nm)"
    for bad in ("DN", "W/m2", ""):
        with pytest.raises(ParameterError, match="units="):
            simulate(a, e, units=bad)


@pytest.mark.parametrize("fmt", ["envi", "tif"])
def test_simulated_scenes_keep_the_radiance_unit_of_their_spectra(tmp_path, run_cli, fmt):
    """A scene in uW/(cm^2 sr nm) -> unmix -> simulate: the scenes said 'radiance' (the unit
    word, not the unit), so a reader took them for W/(m^2 sr um), 10x off."""
    import json

    from unmixgen.io import read_scene, write_scene
    from unmixgen.io.sli import read_library
    from unmixgen.scene import Scene

    label = "uW/(cm^2 sr nm)"
    e, wl = spectra()
    write_scene(Scene(100 * abundance_maps() @ e, wavelengths=wl, units=label), tmp_path / "scene.npz")
    code, _, err = run_cli("unmix", tmp_path / "scene.npz", "-p", "3", "--method", "vca", "--no-figures",
                           "--out", tmp_path / "run")
    assert code == 0, err
    np.savez(tmp_path / "maps.npz", abundances=abundance_maps())
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "run", "--snr", "40",
                           "--format", fmt, "--out", tmp_path / "sim")
    assert code == 0, err
    for name in ("scene_000.npz", f"scene_000.{'hdr' if fmt == 'envi' else 'tif'}"):
        assert read_scene(tmp_path / "sim" / name).units == label, name
    assert read_library(tmp_path / "sim" / "endmembers.sli").units == label
    assert json.loads((tmp_path / "sim" / "run.json").read_text())["units"] == label
