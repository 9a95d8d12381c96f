"""`unmixgen convert` and `unmixgen info --json` across ENVI, GeoTIFF and NumPy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures_io import UTM33N_TRANSFORM, scene_cube, write_envi
from unmixgen.errors import InputError
from unmixgen.io import read_scene, write_scene
from unmixgen.scene import GroundTruth, Scene, take_bands

MAP_INFO = "{UTM, 1, 1, 500000, 5800000, 30, 30, 33, North, WGS-84, units=Meters}"
WL_UM = [0.45, 0.55, 0.65, 0.75, 0.85]


@pytest.fixture
def envi_scene(tmp_path):
    """A 7x11x5 int16 ENVI scene, BIL, big endian, scale 10000, two nodata pixels."""
    stored = np.rint(scene_cube() * 10000).astype(np.int16)
    stored[0, 10] = -9999
    stored[5, 2] = -9999
    hdr = write_envi(tmp_path, stored, interleave="bil", byte_order=1, wavelengths=WL_UM,
                     wavelength_units="Micrometers",
                     extra={"reflectance scale factor": "10000", "data ignore value": "-9999",
                            "map info": MAP_INFO})
    valid = np.ones((7, 11), bool)
    valid[0, 10] = valid[5, 2] = False
    return hdr, stored, valid


def test_convert_envi_to_npz_physical_units(envi_scene, tmp_path, run_cli):
    hdr, stored, valid = envi_scene
    out = tmp_path / "out.npz"
    code, stdout, err = run_cli("convert", hdr, out)
    assert code == 0, err
    z = np.load(out)
    assert z["cube"].shape == (7, 11, 5) and z["cube"].dtype == np.float32
    np.testing.assert_allclose(z["cube"][valid], stored[valid] / 10000.0, rtol=1e-6)
    np.testing.assert_array_equal(z["mask"], valid)
    np.testing.assert_allclose(z["wavelengths"], [450, 550, 650, 750, 850])
    np.testing.assert_allclose(z["transform"], UTM33N_TRANSFORM)
    # existing output is refused without --overwrite, accepted with it
    code, _, err = run_cli("convert", hdr, out)
    assert code == 2 and "out.npz" in err and "--overwrite" in err and err.strip().count("\n") == 0
    assert run_cli("convert", hdr, out, "--overwrite")[0] == 0


def test_convert_chain_envi_npz_tif_envi(envi_scene, tmp_path, run_cli):
    from rasterio.crs import CRS

    hdr, stored, valid = envi_scene
    chain = [hdr, tmp_path / "a.npz", tmp_path / "b.tif", tmp_path / "c.hdr", tmp_path / "d.npz"]
    for src, dst in zip(chain[:-1], chain[1:], strict=True):
        code, _, err = run_cli("convert", src, dst)
        assert code == 0, err
    first, last = read_scene(hdr), read_scene(chain[-1])
    np.testing.assert_array_equal(last.mask, valid)
    np.testing.assert_array_equal(last.load()[valid], first.load()[valid])
    np.testing.assert_array_equal(last.wavelengths, first.wavelengths)
    np.testing.assert_allclose(last.transform, UTM33N_TRANSFORM)
    assert CRS.from_user_input(last.crs).to_epsg() == 32633
    assert read_scene(tmp_path / "c.hdr").metadata["format"] == "envi"


def test_info_json(envi_scene, run_cli):
    hdr, _, _ = envi_scene
    code, out, err = run_cli("info", hdr, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["rows"], d["cols"], d["bands"]) == (7, 11, 5)
    assert d["dtype"] == "int16"
    assert d["wavelength_min_nm"] == pytest.approx(450) and d["wavelength_max_nm"] == pytest.approx(850)
    assert d["valid_fraction"] == pytest.approx(75 / 77)
    assert "UTM zone 33N" in d["crs"]


def test_info_json_nan_inf_pixels_are_invalid_not_errors(tmp_path, run_cli):
    cube = scene_cube()
    cube[1, 1, 3] = np.nan
    cube[2, 5, 0] = np.inf
    np.save(tmp_path / "c.npy", cube)
    code, out, err = run_cli("info", tmp_path / "c.npy", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["valid_fraction"] == pytest.approx(75 / 77) and d["crs"] is None
    assert d["wavelength_min_nm"] is None


def test_convert_bad_input_is_one_line(tmp_path, run_cli):
    stored = scene_cube()
    hdr = write_envi(tmp_path, stored, extra={"lines": "8"})
    code, _, err = run_cli("convert", hdr, tmp_path / "o.npz")
    assert code == 2 and "scene.hdr: header says 5 bands" in err and "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


def _digest(paths):
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_convert_never_destroys_its_input(run_cli, envi_scene, tmp_path):
    hdr, _, _ = envi_scene
    npz = tmp_path / "s.npz"
    assert run_cli("convert", hdr, npz)[0] == 0
    before = _digest(sorted(tmp_path.iterdir()))
    # the same file, the same ENVI pair (header or data file named), with --overwrite
    data = next(p for p in tmp_path.iterdir() if p.suffix.lower() in (".img", ".bil", "") and p != hdr)
    for src, dst in ((npz, npz), (hdr, hdr), (hdr, data.with_suffix(".hdr")), (hdr, data)):
        code, _, err = run_cli("convert", src, dst, "--overwrite")
        assert code == 2 and "input" in err and err.strip().count("\n") == 0, (src, dst, err)
    assert _digest(sorted(tmp_path.iterdir())) == before


def test_convert_refuses_to_shadow_or_replace_unrelated_files(run_cli, envi_scene, tmp_path):
    hdr, _, _ = envi_scene
    out = tmp_path / "out"
    out.mkdir()
    img = out / "o.img"
    img.write_bytes(b"someone else's data")
    code, _, err = run_cli("convert", hdr, out / "o.hdr")
    assert code == 2 and "o.img" in err and "--overwrite" in err
    assert img.read_bytes() == b"someone else's data"
    # a stale data file without extension is what readers of o.hdr would open: refused even with --overwrite
    img.unlink()
    (out / "o").write_bytes(b"stale")
    code, _, err = run_cli("convert", hdr, out / "o.hdr", "--overwrite")
    assert code == 2 and "instead of o.img" in err
    assert not (out / "o.hdr").exists()


def test_outputs_that_cannot_be_written_are_bad_input(run_cli, envi_scene, tmp_path):
    hdr, _, _ = envi_scene
    afile = tmp_path / "plain.txt"
    afile.write_text("x")
    for dst in (afile / "o.npz", tmp_path / "missing" / "o.npz"):
        code, _, err = run_cli("convert", hdr, dst)
        assert code == 2 and "internal error" not in err, err
    code, _, err = run_cli("unmix", hdr, "-p", "2", "--method", "vca", "--out", afile / "run")
    assert code == 2 and "plain.txt" in err
    # an output folder that contains the input would be destroyed by --overwrite
    code, _, err = run_cli("unmix", hdr, "-p", "2", "--method", "vca", "--out", tmp_path, "--overwrite")
    assert code == 2 and "input" in err
    assert hdr.exists()


def test_convert_gives_a_scene_without_wavelengths_its_bands(tmp_path, run_cli):
    # a MATLAB benchmark (Samson) stores none; the spectra prior and library resampling need them
    rng = np.random.default_rng(0)
    src = tmp_path / "nowl.npz"
    write_scene(Scene(rng.uniform(0.1, 0.9, (5, 6, 8)).astype(np.float32)), src)
    out = tmp_path / "wl.hdr"
    code, _, err = run_cli("convert", src, out, "--wavelengths", "401:889")
    assert code == 0, err
    np.testing.assert_allclose(read_scene(out).wavelengths, np.linspace(401, 889, 8), rtol=1e-6)
    listed = tmp_path / "wl.csv"
    listed.write_text("wavelength_um\n" + "\n".join(f"{v:.3f}" for v in np.linspace(0.4, 2.5, 8)))
    code, _, err = run_cli("convert", src, tmp_path / "wl2.npz", "--wavelengths", listed)
    assert code == 0, err
    np.testing.assert_allclose(read_scene(tmp_path / "wl2.npz").wavelengths, np.linspace(400, 2500, 8), atol=1e-6)
    for spec, message in (("889:401", "increasing"), ("4o1:889", "START:STOP"), (str(tmp_path / "none.csv"), "no such"),
                          ("1:2:3", "no such file")):
        bad = tmp_path / "bad.npz"
        code, _, err = run_cli("convert", src, bad, "--wavelengths", spec)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (spec, err)
        assert not bad.exists()
    short = tmp_path / "short.csv"
    short.write_text("500\n600\n")
    code, _, err = run_cli("convert", src, tmp_path / "bad.npz", "--wavelengths", short)
    assert code == 2 and "2 values for 8 bands" in err


def test_a_crs_without_a_transform_stays_without_one_and_info_json_is_strict(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    cube = rng.uniform(0.05, 0.95, (10, 13, 4)).astype(np.float32)
    cube[0, 0] = np.nan
    write_scene(Scene(cube, crs="EPSG:4326"), tmp_path / "crs.npz")
    assert run_cli("convert", tmp_path / "crs.npz", tmp_path / "out.tif")[0] == 0
    back = read_scene(tmp_path / "out.tif")
    assert back.transform is None  # GDAL's identity default is not a georeference
    code, out, _ = run_cli("info", tmp_path / "out.tif", "--json")
    d = json.loads(out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))  # NaN is not JSON
    assert code == 0 and d["nodata"] == "nan" and d["transform"] is None


@pytest.mark.parametrize("content", [
    "\ufeff" + "\n".join(str(400 + 25 * i) for i in range(8)),  # a byte-order mark (Excel's UTF-8 CSV)
    "# from the sensor's sheet\nwavelength_nm\n" + "\n".join(str(400 + 25 * i) for i in range(8)),
    "\n".join(f"{400 + 25 * i}  10  # band {i + 1}" for i in range(8)),  # whitespace columns, trailing comments
    "\r\n".join(f"{400 + 25 * i},10" for i in range(8)),
])
def test_wavelength_files_as_people_write_them(tmp_path, run_cli, content):
    src = tmp_path / "nowl.npz"
    write_scene(Scene(np.random.default_rng(0).uniform(0.1, 0.9, (5, 6, 8)).astype(np.float32)), src)
    (tmp_path / "wl.txt").write_text(content, encoding="utf-8")
    code, _, err = run_cli("convert", src, tmp_path / "o.npz", "--wavelengths", tmp_path / "wl.txt")
    assert code == 0, err
    np.testing.assert_allclose(read_scene(tmp_path / "o.npz").wavelengths, 400 + 25 * np.arange(8))


def test_a_wavelength_file_led_by_band_numbers_is_refused(tmp_path, run_cli):
    """The first column is read: a 'band,wavelength_nm' table gave band numbers 1..8 as
    micrometres, 1000-8000 nm written as the scene's wavelengths (exit 0)."""
    src = tmp_path / "nowl.npz"
    write_scene(Scene(np.random.default_rng(0).uniform(0.1, 0.9, (5, 6, 8)).astype(np.float32)), src)
    (tmp_path / "wl.csv").write_text("band,wavelength_nm\n" + "".join(f"{i + 1},{400 + 25 * i}\n" for i in range(8)))
    code, _, err = run_cli("convert", src, tmp_path / "o.npz", "--wavelengths", tmp_path / "wl.csv")
    assert code == 2 and "wl.csv" in err and "band" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.npz").exists()


def test_replaced_wavelengths_drop_the_old_band_widths(tmp_path, run_cli):
    src = tmp_path / "wl.npz"
    cube = np.random.default_rng(0).uniform(0.1, 0.9, (5, 6, 8)).astype(np.float32)
    write_scene(Scene(cube, wavelengths=np.linspace(400, 900, 8), fwhm=np.full(8, 10.0)), src)
    code, _, err = run_cli("convert", src, tmp_path / "o.npz", "--wavelengths", "400:2500")
    assert code == 0 and "FWHM" in err
    back = read_scene(tmp_path / "o.npz")
    assert back.fwhm is None and back.wavelengths[-1] == pytest.approx(2500)


def test_band_centres_that_step_back_are_written_sorted_with_everything_per_band(tmp_path, run_cli):
    # Jasper Ridge-like: a subset of AVIRIS bands, whose centres step back at detector overlaps
    rng = np.random.default_rng(1)
    cube = rng.uniform(0.1, 0.9, (4, 5, 7)).astype(np.float32)
    E = rng.uniform(0.1, 0.9, (2, 7)).astype(np.float32)
    A = rng.dirichlet(np.ones(2), (4, 5)).astype(np.float32)
    good = np.array([1, 1, 0, 1, 1, 1, 1], bool)
    src = tmp_path / "subset.npz"
    scene = Scene(cube, good_bands=good)
    scene.attach_truth(GroundTruth(E, A))
    write_scene(scene, src)
    wl = np.array([650.0, 660, 670, 655, 665, 1250, 1245])
    (tmp_path / "wl.txt").write_text("\n".join(f"{v:g}" for v in wl))
    code, out, err = run_cli("convert", src, tmp_path / "o.npz", "--wavelengths", tmp_path / "wl.txt")
    assert code == 0, err
    assert "step back" in out
    back = read_scene(tmp_path / "o.npz")
    order = [0, 3, 1, 4, 2, 6, 5]  # wavelengths sorted by hand
    np.testing.assert_allclose(back.wavelengths, wl[order])
    np.testing.assert_array_equal(back.good_bands, good[order])
    # cube and reference spectra move with their band centres (bad band 2 is not compared)
    np.testing.assert_allclose(back.load()[..., back.good_bands], cube[..., order][..., good[order]])
    np.testing.assert_allclose(back.truth.endmembers, E[:, order])
    np.testing.assert_allclose(back.truth.abundances, A)
    # two bands at one centre cannot be ordered
    (tmp_path / "dup.txt").write_text("\n".join(f"{v:g}" for v in [650, 660, 670, 660, 665, 1250, 1245]))
    code, _, err = run_cli("convert", src, tmp_path / "d.npz", "--wavelengths", tmp_path / "dup.txt")
    assert code == 2 and "two bands at 660 nm" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "d.npz").exists()


def test_take_bands_reads_lazily_and_refuses_what_is_not_a_permutation():
    cube = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    scene = Scene(cube, wavelengths=[400.0, 500, 600, 700], fwhm=[1.0, 2, 3, 4])
    out = take_bands(scene, [3, 2, 1, 0], wavelengths=[410.0, 420, 430, 440])
    assert not out.is_loaded
    np.testing.assert_array_equal(out.read(slice(0, 1), slice(1, 3)), cube[0:1, 1:3, ::-1])
    np.testing.assert_array_equal(out.fwhm, [4.0, 3, 2, 1])
    for bad in ([0, 1, 2], [0, 1, 2, 2], [0, 1, 2, 4]):
        with pytest.raises(InputError, match="permutation"):
            take_bands(scene, bad)


@pytest.mark.parametrize("units", ["reflectance", "radiance", "uW/(cm^2 sr nm)"])
@pytest.mark.parametrize("ext", [".npz", ".tif", ".hdr", ".mat"])
def test_convert_keeps_whether_a_scene_is_reflectance_or_radiance(tmp_path, run_cli, units, ext):
    cube = np.random.default_rng(0).uniform(0.1, 0.9, (4, 5, 6)).astype(np.float32)
    write_scene(Scene(cube, wavelengths=np.linspace(400, 900, 6), units=units), tmp_path / "src.npz")
    assert read_scene(tmp_path / "src.npz").units == units
    out = tmp_path / f"out{ext}"
    code, _, err = run_cli("convert", tmp_path / "src.npz", out)
    assert code == 0, err
    back = read_scene(out)
    # ENVI has a header key for reflectance only (its scale factor); radiance is said by a
    # 'data units' key that reads back
    assert back.units == units
    np.testing.assert_allclose(back.load(), cube, rtol=1e-6)  # the scale factor 1 changes no value


def test_unit_labels_as_files_write_them():
    from unmixgen.io.checks import quantity

    assert quantity("Reflectance") == "reflectance"
    assert quantity("W/(m2 sr um)") == "radiance" and quantity("uW cm-2 sr-1 nm-1") == "radiance"
    assert quantity("") is None and quantity("DN") is None and quantity(None) is None
    assert quantity("downwelling irradiance (W m-2 nm-1)") is None  # light arriving, not a scene quantity


def _stepping_envi(tmp_path):
    """An ENVI file whose own centres step back (two detectors); stored band k holds k + 1."""
    data = np.empty((6, 3, 4), "<f4")
    for k in range(6):
        data[k] = k + 1
    data.tofile(tmp_path / "det.img")
    (tmp_path / "det.hdr").write_text("ENVI\nsamples = 4\nlines = 3\nbands = 6\nheader offset = 0\ndata type = 4\n"
                                      "interleave = bsq\nbyte order = 0\nwavelength units = Nanometers\n"
                                      "wavelength = {500, 600, 700, 650, 750, 800}\n")
    return tmp_path / "det.hdr"


def test_band_centres_cannot_replace_those_of_a_file_whose_bands_were_sorted_on_reading(tmp_path, run_cli):
    # the reader already sorted the bands, so centres in the file's band order would land on other bands
    src = _stepping_envi(tmp_path)
    (tmp_path / "wl.txt").write_text("500\n600\n700\n650\n750\n800\n")
    before = src.read_bytes(), (tmp_path / "det.img").read_bytes()
    for spec in (str(tmp_path / "wl.txt"), "400:900"):
        code, _, err = run_cli("convert", src, tmp_path / "o.npz", "--wavelengths", spec)
        assert code == 2 and "sorted on reading" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "o.npz").exists()
    assert (src.read_bytes(), (tmp_path / "det.img").read_bytes()) == before
    # without --wavelengths the sorted bands keep their own values
    assert run_cli("convert", src, tmp_path / "o.npz")[0] == 0
    back = read_scene(tmp_path / "o.npz")
    np.testing.assert_allclose(back.wavelengths, [500, 600, 650, 700, 750, 800])
    np.testing.assert_allclose(back.load()[0, 0], [1, 2, 4, 3, 5, 6])


@pytest.mark.parametrize("ext", [".hdr", ".tif"])
def test_close_band_centres_are_written_exactly(tmp_path, run_cli, ext):
    wl = np.array([500.0, 600.0, 600.00000001, 700.0, 750.123456789012])
    write_scene(Scene(np.random.default_rng(0).uniform(0.1, 0.9, (3, 4, 5)).astype(np.float32), wavelengths=wl),
                tmp_path / "s.npz")
    assert run_cli("convert", tmp_path / "s.npz", tmp_path / f"o{ext}")[0] == 0
    np.testing.assert_array_equal(read_scene(tmp_path / f"o{ext}").wavelengths, wl)


def test_wavelength_files_that_mix_units_and_inputs_that_output_would_overwrite(tmp_path, run_cli):
    src = tmp_path / "s.npz"
    write_scene(Scene(np.random.default_rng(0).uniform(0.1, 0.9, (3, 4, 4)).astype(np.float32)), src)
    (tmp_path / "mixed.txt").write_text("0.5\n0.6\n700\n800\n")
    code, _, err = run_cli("convert", src, tmp_path / "o.npz", "--wavelengths", tmp_path / "mixed.txt")
    assert code == 2 and "mix micrometres and nanometres" in err
    # the band-centre file is an input too: --overwrite must not replace it
    (tmp_path / "wl.npz").write_bytes(b"400\n500\n600\n700\n")
    code, _, err = run_cli("convert", src, tmp_path / "wl.npz", "--wavelengths", tmp_path / "wl.npz", "--overwrite")
    assert code == 2 and (tmp_path / "wl.npz").read_bytes() == b"400\n500\n600\n700\n"


def test_take_bands_refuses_a_boolean_mask():
    scene = Scene(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(InputError, match="integer band indices"):
        take_bands(scene, [True, False])


def test_band_centres_cannot_replace_those_of_a_prisma_product(tmp_path, run_cli):
    # PRISMA stores each detector's bands in decreasing wavelength; the reader sorts them and
    # says so in its metadata like every other reader, so convert refuses without a special case
    from prisma_fixture import make_prisma_he5

    src = make_prisma_he5(tmp_path / "PRS_L2D_STD_t.he5", 6, 5, "L2D").path
    code, _, err = run_cli("convert", src, tmp_path / "o.npz", "--wavelengths", "400:2500")
    assert code == 2 and "sorted on reading" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.npz").exists()


def test_convert_ortho_puts_an_emit_swath_on_its_map_grid(tmp_path, run_cli, envi_scene):
    import rasterio

    from hdf5_fixtures import make_emit_nc

    emit = make_emit_nc(tmp_path / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc")
    code, _, err = run_cli("convert", emit["path"], tmp_path / "raw.tif")
    assert code == 0, err
    code, _, err = run_cli("convert", emit["path"], tmp_path / "map.tif", "--ortho")
    assert code == 0, err
    ortho = read_scene(emit["path"], ortho=True)
    with rasterio.open(tmp_path / "map.tif") as ds:
        assert ds.crs is not None and ds.crs.to_epsg() == 4326
        assert (ds.height, ds.width) == (ortho.rows, ortho.cols)
        np.testing.assert_allclose(tuple(ds.transform)[:6], ortho.transform, rtol=1e-9)
    with rasterio.open(tmp_path / "raw.tif") as ds:
        assert ds.crs is None
    # a file already on its grid: --ortho is refused, nothing written
    code, _, err = run_cli("convert", envi_scene[0], tmp_path / "x.tif", "--ortho")
    assert code == 2 and "--ortho applies to EMIT" in err and not (tmp_path / "x.tif").exists()


def _deny_writes_in(folder, monkeypatch):
    """Make ``folder`` unwritable as the OS would (tests run as root, where chmod does not
    stop writes): Python's file creation there raises PermissionError naming the file, and
    GDAL's fails with the RasterioIOError it raises for such a folder (no file name)."""
    import builtins
    import errno
    import io
    import os

    import rasterio
    from rasterio.errors import RasterioIOError

    def inside(path):
        return os.path.realpath(os.path.dirname(os.path.abspath(os.fspath(path)))) == os.path.realpath(folder)

    def denied(path):
        return PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    real_open, real_os_open, real_rio = builtins.open, os.open, rasterio.open

    def py_open(file, mode="r", *a, **k):
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") and inside(file):
            raise denied(file)
        return real_open(file, mode, *a, **k)

    def os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise denied(path)
        return real_os_open(path, flags, *a, **k)

    def rio_open(fp, mode="r", *a, **k):
        if mode != "r" and inside(fp):
            raise RasterioIOError(f"Attempt to create new tiff file '{fp}' failed: {fp}: Permission denied")
        return real_rio(fp, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", py_open)
    monkeypatch.setattr(io, "open", py_open)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(rasterio, "open", rio_open)


@pytest.mark.parametrize("name", ["o.hdr", "o.tif", "o.npz", "o.mat"])
def test_a_folder_that_cannot_be_written_is_bad_input_in_every_format(run_cli, envi_scene, tmp_path, monkeypatch,
                                                                      name):
    # ENVI and GeoTIFF gave "internal error: PermissionError / RasterioIOError" (exit 1): the
    # ENVI pair's writer did not turn an unwritable folder into bad input, and GDAL's error
    # names no file for atomic_file to recognise
    hdr, _, _ = envi_scene
    locked = tmp_path / "locked"
    locked.mkdir()
    _deny_writes_in(locked, monkeypatch)
    code, _, err = run_cli("convert", hdr, locked / name)
    assert code == 2 and "internal error" not in err and len(err.strip().splitlines()) == 1, err
    assert str(locked / "o.") in err and "Permission denied" in err, err  # names the file (ENVI: its data file)
    assert list(locked.iterdir()) == []
