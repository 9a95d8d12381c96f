"""ENVI reader/writer: layouts, data types, byte orders, header fields, laziness, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_io import UTM33N_TRANSFORM, scene_cube, write_envi
from unmixgen.errors import InputError
from unmixgen.io import detect_format, envi, read_scene, write_scene
from unmixgen.scene import Scene

WL_NM = [450.0, 550.0, 650.0, 750.0, 850.0]


def _stored(dtype: str, seed: int = 0) -> np.ndarray:
    """A 7x11x5 cube in ``dtype`` whose values differ per pixel and band (none all-zero)."""
    cube = scene_cube(seed=seed)
    if np.dtype(dtype).kind == "f":
        return cube.astype(dtype)
    return np.rint(cube * 200 + 10).astype(dtype)


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("byte_order", [0, 1])
def test_interleave_and_byte_order(tmp_path, interleave, byte_order):
    stored = _stored("i2")
    hdr = write_envi(tmp_path, stored, interleave=interleave, byte_order=byte_order, wavelengths=WL_NM)
    scene = read_scene(hdr)
    assert scene.shape == (7, 11, 5)
    np.testing.assert_array_equal(scene.load(), stored.astype(np.float32))
    np.testing.assert_array_equal(scene.wavelengths, WL_NM)
    assert scene.metadata["format"] == "envi" and scene.path == str(hdr) and scene.name == "scene"
    assert scene.dtype == np.dtype("i2")


@pytest.mark.parametrize("dtype", ["u1", "i2", "i4", "f4", "f8", "u2", "u4", "i8", "u8"])
def test_all_data_types(tmp_path, dtype):
    stored = _stored(dtype)
    hdr = write_envi(tmp_path, stored, interleave="bil", byte_order=1)
    scene = read_scene(hdr)
    np.testing.assert_array_equal(scene.load(), stored.astype(np.float32))
    assert scene.dtype.kind == np.dtype(dtype).kind and scene.dtype.itemsize == np.dtype(dtype).itemsize


def test_header_offset_micrometres_fwhm_scale_factor(tmp_path):
    stored = _stored("i2")
    hdr = write_envi(tmp_path, stored, header_offset=37, wavelengths=[0.45, 0.55, 0.65, 0.75, 0.85],
                     wavelength_units="Micrometers",
                     extra={"fwhm": "{0.01, 0.01, 0.02, 0.02, 0.03}", "reflectance scale factor": "1000"})
    scene = read_scene(hdr)
    np.testing.assert_allclose(scene.wavelengths, WL_NM)
    np.testing.assert_allclose(scene.fwhm, [10, 10, 20, 20, 30])
    np.testing.assert_allclose(scene.load(), stored / 1000.0, rtol=1e-6)


def test_wavelength_units_inferred_from_magnitude(tmp_path):
    hdr = write_envi(tmp_path, _stored("f4"), wavelengths=[0.45, 0.55, 0.65, 0.75, 0.85], wavelength_units=None)
    np.testing.assert_allclose(read_scene(hdr).wavelengths, WL_NM)


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_a_header_in_latin_1_keeps_its_micro_signs(tmp_path, encoding):
    # IDL and older ENVI on Windows write headers in Latin-1: the micro sign is the one byte 0xB5,
    # which UTF-8 decoding turned into a replacement character (an unknown wavelength unit)
    hdr = write_envi(tmp_path, _stored("f4"), wavelengths=[0.45, 0.55, 0.65, 0.75, 0.85],
                     wavelength_units="\u00b5m", extra={"data units": "\u00b5W/(cm^2 sr nm)"})
    hdr.write_bytes(hdr.read_text(encoding="utf-8").encode(encoding))
    scene = read_scene(hdr)
    np.testing.assert_allclose(scene.wavelengths, WL_NM)
    assert scene.units == "\u00b5W/(cm^2 sr nm)"


def test_bbl_band_names_and_data_ignore_value(tmp_path):
    stored = _stored("i2")
    stored[2, 3, :] = -9999  # nodata pixel
    stored[4, 9, :] = 0  # all-zero pixel
    stored[5, 1, 2] = -9999  # one bad band only: still a valid pixel
    stored[6, 4, 1] = -9999  # one good band: a value missing, so not a pixel to unmix
    hdr = write_envi(tmp_path, stored, extra={
        "bbl": "{1, 1, 0, 1, 0}", "band names": "{a, b, c, d, e}", "data ignore value": "-9999",
        "reflectance scale factor": "100"})
    scene = read_scene(hdr)
    np.testing.assert_array_equal(scene.good_bands, [True, True, False, True, False])
    assert scene.metadata["band_names"] == ["a", "b", "c", "d", "e"]
    assert scene.nodata == -9999
    expected = np.ones((7, 11), bool)
    expected[2, 3] = expected[4, 9] = expected[6, 4] = False
    np.testing.assert_array_equal(scene.mask, expected)


def test_a_zero_ignore_value_that_reads_as_an_offset_marks_a_pixel_missing_one_band(tmp_path):
    # stored 0 reads as -0.1 here: no physical zero, so a good band holding it is a missing value
    stored = _stored("i2") + 1000
    stored[4, 9, :] = 0  # all-zero pixel
    stored[6, 4, 1] = 0  # one good band missing
    stored[5, 1, 2] = 0  # one bad band only: still a valid pixel
    gains = "{" + ", ".join(["0.0001"] * 5) + "}"
    offsets = "{" + ", ".join(["-0.1"] * 5) + "}"
    hdr = write_envi(tmp_path, stored, extra={"bbl": "{1, 1, 0, 1, 1}", "data ignore value": "0",
                                              "data gain values": gains, "data offset values": offsets})
    expected = np.ones((7, 11), bool)
    expected[4, 9] = expected[6, 4] = False
    np.testing.assert_array_equal(read_scene(hdr).mask, expected)


@pytest.mark.parametrize("interleave", ["bsq", "bip"])
@pytest.mark.parametrize("nodata", ["-9999", "nan"])
def test_a_band_of_nothing_but_the_ignore_value_is_a_bad_band(tmp_path, interleave, nodata):
    # the fill would otherwise be unmixed as a reflectance of -99.99
    stored = _stored("f4")
    stored[..., 3] = float(nodata)
    stored[2, 3, :] = float(nodata)  # and one nodata pixel
    hdr = write_envi(tmp_path, stored, interleave=interleave, extra={
        "bbl": "{1, 0, 1, 1, 1}", "data ignore value": nodata, "reflectance scale factor": "100"})
    scene = read_scene(hdr)
    np.testing.assert_array_equal(scene.good_bands, [True, False, True, False, True])
    assert scene.metadata["empty_bands"] == [4]
    assert np.isnan(scene.load()[..., 3]).all()  # never the scaled fill
    expected = np.ones((7, 11), bool)
    expected[2, 3] = False
    np.testing.assert_array_equal(scene.mask, expected)


def test_lazy_memory_map_and_window(tmp_path):
    stored = _stored("u2")
    hdr = write_envi(tmp_path, stored, interleave="bsq", byte_order=1, header_offset=5,
                     extra={"reflectance scale factor": "10"})
    scene = read_scene(hdr)
    arr = scene.source.array
    assert isinstance(arr.base, np.memmap) or isinstance(arr, np.memmap)
    assert not arr.flags.owndata  # a view on the file, not a copy
    win = scene.read(slice(2, 6), slice(3, 10))
    np.testing.assert_allclose(win, stored[2:6, 3:10] / 10.0, rtol=1e-6)
    assert scene.mask.all()
    assert scene._cube is None  # neither the window nor the mask loaded the whole cube


@pytest.mark.parametrize("ext", [".dat", "", ".IMG", ".bil", ".raw"])
def test_data_file_found_beside_header_and_opened_directly(tmp_path, ext):
    stored = _stored("f4")
    hdr = write_envi(tmp_path, stored, data_ext=ext)
    np.testing.assert_array_equal(read_scene(hdr).load(), stored)
    data = tmp_path / f"scene{ext}"
    assert detect_format(data) == "envi"
    np.testing.assert_array_equal(read_scene(data).load(), stored)


def test_map_info_utm_and_coordinate_system_string(tmp_path):
    from rasterio.crs import CRS

    hdr = write_envi(tmp_path, _stored("f4"), extra={
        "map info": "{UTM, 1.5, 2.5, 500015.0, 5799955.0, 30.0, 30.0, 33, North, WGS-84, units=Meters}"})
    scene = read_scene(hdr)
    # pixel (1.5, 2.5) 1-based = corner offset (0.5, 1.5) pixels from the origin
    np.testing.assert_allclose(scene.transform, UTM33N_TRANSFORM)
    assert CRS.from_wkt(scene.crs).to_epsg() == 32633
    css = CRS.from_epsg(3035).to_wkt()
    hdr2 = write_envi(tmp_path, _stored("f4"), name="laea", extra={
        "map info": "{Lambert Azimuthal Equal Area, 1, 1, 4321000, 3210000, 10, 10, units=Meters}",
        "coordinate system string": "{" + css + "}"})
    s2 = read_scene(hdr2)
    assert CRS.from_wkt(s2.crs).to_epsg() == 3035
    np.testing.assert_allclose(s2.transform, (10, 0, 4321000, 0, -10, 3210000))


def _scene_with_everything() -> Scene:
    cube = scene_cube()
    cube[1, 2] = np.nan
    cube[3, 4, 1] = np.inf
    cube[6, 10] = 0
    return Scene(cube, wavelengths=WL_NM, fwhm=[9, 10, 11, 12, 13], good_bands=[1, 1, 0, 1, 1],
                 crs="EPSG:32633", transform=UTM33N_TRANSFORM, name="s",
                 metadata={"band_names": ["b1", "b2", "b3", "b4", "b5"]})


@pytest.mark.parametrize("target", ["out.hdr", "out.img", "out.dat"])
def test_writer_round_trip(tmp_path, target):
    from rasterio.crs import CRS

    scene = _scene_with_everything()
    write_scene(scene, tmp_path / target)
    back = read_scene(tmp_path / target)
    np.testing.assert_array_equal(back.mask, scene.mask)
    np.testing.assert_array_equal(back.load()[back.mask], scene.load()[scene.mask])
    assert np.isnan(back.load()[~back.mask]).all()  # invalid pixels written as nodata (NaN)
    np.testing.assert_allclose(back.wavelengths, WL_NM)
    np.testing.assert_allclose(back.fwhm, scene.fwhm)
    np.testing.assert_array_equal(back.good_bands, scene.good_bands)
    assert back.metadata["band_names"] == ["b1", "b2", "b3", "b4", "b5"]
    np.testing.assert_allclose(back.transform, UTM33N_TRANSFORM)
    assert CRS.from_wkt(back.crs).to_epsg() == 32633
    text = (tmp_path / "out.hdr").read_text()
    assert "wavelength units = Nanometers" in text and "data ignore value = nan" in text
    data_name = "out.img" if target == "out.hdr" else target
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"out.hdr", data_name})


def test_written_file_opens_in_gdal(tmp_path):
    import rasterio

    write_scene(_scene_with_everything(), tmp_path / "g.hdr")
    with rasterio.open(tmp_path / "g.img") as ds:
        assert (ds.count, ds.height, ds.width) == (5, 7, 11)
        assert np.isnan(ds.nodata) and ds.crs.to_epsg() == 32633
        np.testing.assert_allclose(tuple(ds.transform)[:6], UTM33N_TRANSFORM, atol=1e-9)
        band3 = ds.read(3)
    np.testing.assert_array_equal(np.isnan(band3), ~_scene_with_everything().mask)


@pytest.mark.parametrize("interleave", ["bil", "bip"])
def test_writer_rotation_interleave_and_integer_dtype(tmp_path, interleave):
    cube = np.rint(scene_cube() * 100).astype(np.float32)
    cube[0, 0] = np.nan
    t = (20.0, 5.0, 1000.0, 5.0, -20.0, 2000.0)  # a rotated grid
    scene = Scene(cube, transform=t)
    write_scene(scene, tmp_path / "r.hdr", dtype="int16", interleave=interleave)
    back = read_scene(tmp_path / "r.hdr")
    assert back.dtype == np.dtype("int16") and back.metadata["interleave"] == interleave
    assert back.nodata == np.iinfo(np.int16).min and not back.mask[0, 0] and back.mask.sum() == 76
    np.testing.assert_array_equal(back.load()[back.mask], cube[scene.mask])
    np.testing.assert_allclose(back.transform, t, atol=1e-9)


@pytest.mark.parametrize("t", [(30.0, 0.0, 5e5, 0.0, 30.0, 58e5), (-30.0, 0.0, 5e5, 0.0, -30.0, 58e5),
                               (-30.0, 0.0, 5e5, 0.0, 30.0, 58e5)])
def test_south_up_and_mirrored_grids_round_trip(tmp_path, t):
    # map info keeps the pixel sizes' signs; it wrote them positive and flipped the scene
    write_scene(Scene(scene_cube(), transform=t, crs="EPSG:32633"), tmp_path / "s.hdr")
    np.testing.assert_allclose(read_scene(tmp_path / "s.hdr").transform, t, atol=1e-9)


def test_a_sheared_grid_is_refused_not_approximated(tmp_path):
    with pytest.raises(InputError, match="sheared"):
        write_scene(Scene(scene_cube(), transform=(30.0, 5.0, 5e5, 3.0, -30.0, 58e5)), tmp_path / "s.hdr")
    assert not list(tmp_path.iterdir())


# -- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["samples", "lines", "bands", "data type", "interleave"])
def test_missing_required_field(tmp_path, run_cli, field):
    hdr = write_envi(tmp_path, _stored("f4"), omit=(field,))
    with pytest.raises(InputError, match=f"missing the required field '{field}'"):
        read_scene(hdr)
    code, out, err = run_cli("info", hdr)
    assert code == 2 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and "scene.hdr" in err and field in err


def test_data_size_mismatch(tmp_path, run_cli):
    hdr = write_envi(tmp_path, _stored("f4"), extra={"bands": "6"})
    code, _, err = run_cli("info", hdr)
    assert code == 2 and err.strip().count("\n") == 0
    assert "scene.hdr: header says 6 bands" in err and "holds 1540 bytes" in err
    assert "7*11*6*4 + 0 = 1848" in err


def test_non_length_wavelength_units(tmp_path, run_cli):
    hdr = write_envi(tmp_path, _stored("f4"), wavelengths=[1, 2, 3, 4, 5], wavelength_units="Kelvin")
    code, _, err = run_cli("info", hdr)
    assert code == 2 and err.strip().count("\n") == 0 and "scene.hdr" in err and "'Kelvin'" in err


def test_wavenumber_units_converted_and_sorted(tmp_path, run_cli):
    """ENVI's 'Wavenumber' (cm^-1, as FTIR instruments store band centres): wavelengths are
    1e7 / v nm, so the stored order is descending in wavelength and comes out sorted; the
    widths convert with the local slope 1e7 / v^2."""
    stored = _stored("f4")
    v = np.array([25000.0, 20000.0, 12500.0, 10000.0, 5000.0])  # 400, 500, 800, 1000, 2000 nm
    dv = np.array([250.0, 200.0, 125.0, 50.0, 25.0])
    hdr = write_envi(tmp_path, stored, wavelengths=v, wavelength_units="Wavenumber",
                     extra={"fwhm": "{" + ", ".join(f"{x:g}" for x in dv) + "}"})
    s = read_scene(hdr)
    assert np.allclose(s.wavelengths, [400, 500, 800, 1000, 2000])
    assert np.allclose(s.fwhm, 1e7 * dv / v**2)
    assert np.array_equal(s.load(), stored)
    hdr = write_envi(tmp_path, stored, name="neg", wavelengths=[25000, 20000, 0, 10000, 5000],
                     wavelength_units="Wavenumber")
    code, _, err = run_cli("info", hdr)
    assert code == 2 and err.strip().count("\n") == 0 and "neg.hdr" in err and "positive" in err


def test_index_wavelength_units_read_without_wavelengths(tmp_path):
    """ENVI writes 'wavelength units = Index' when the 'wavelength' values are band numbers:
    the cube is read whole, without wavelengths (and their widths), with a warning."""
    stored = _stored("f4")
    hdr = write_envi(tmp_path, stored, wavelengths=[1, 2, 3, 4, 5], wavelength_units="Index",
                     extra={"fwhm": "{1, 1, 1, 1, 1}"})
    with pytest.warns(UserWarning, match="band numbers, not wavelengths"):
        scene = read_scene(hdr)
    assert scene.wavelengths is None and scene.fwhm is None
    assert scene.load().shape[-1] == 5


@pytest.mark.parametrize("units, factor", [("Centimeters", 1e-7), ("cm", 1e-7), ("Angstroms", 10.0),
                                           ("Millimeters", 1e-6), ("Meters", 1e-9)])
def test_every_length_unit_envi_lists_is_converted(tmp_path, units, factor):
    """ENVI's 'wavelength units' lists these lengths; each reads back in nm, none is refused
    as 'not a length'."""
    wl = np.array([450.0, 550.0, 650.0, 750.0, 850.0])
    hdr = write_envi(tmp_path, _stored("f4"), wavelengths=wl * factor, wavelength_units=units)
    np.testing.assert_allclose(read_scene(hdr).wavelengths, wl, rtol=1e-6)


@pytest.mark.parametrize("values, units, looks", [(WL_NM, "Micrometers", "nanometres"),
                                                  (np.array(WL_NM) / 1000, "Nanometers", "micrometres")])
def test_band_centres_in_another_unit_than_declared_are_one_clear_error(tmp_path, values, units, looks):
    # nm values under 'Micrometers' read as 400000-2500000 nm: unmix stopped later with "do not
    # overlap", and simulate wrote a scene with those wavelengths
    hdr = write_envi(tmp_path, _stored("f4"), wavelengths=values, wavelength_units=units)
    with pytest.raises(InputError, match=rf"scene.hdr: wavelengths declared in '{units}' .* look like {looks}"):
        read_scene(hdr)


def test_far_infrared_library_centres_and_narrow_widths_are_plausible():
    from unmixgen.wavelengths import to_nm

    np.testing.assert_allclose(to_nm([2.5, 216.0], "Micrometers"), [2500.0, 216000.0])  # USGS FTIR spectra
    np.testing.assert_allclose(to_nm([5.0, 12.0], "nm", centres=False), [5.0, 12.0])  # band widths
    np.testing.assert_allclose(to_nm([0.0, 450.0], "nm"), [0.0, 450.0])  # an unused (zero) slot is not judged


def test_missing_data_file_unsupported_type_and_wavelength_count(tmp_path):
    hdr = write_envi(tmp_path, _stored("f4"), wavelengths=WL_NM[:4])
    with pytest.warns(UserWarning, match="scene.hdr: 4 wavelengths for 5 bands"):
        assert read_scene(hdr).wavelengths is None
    hdr = write_envi(tmp_path, _stored("f4"), name="cplx", extra={"data type": "6"})
    with pytest.raises(InputError, match="data type 6 is not supported"):
        read_scene(hdr)
    hdr = write_envi(tmp_path, _stored("f4"), name="alone")
    (tmp_path / "alone.img").unlink()
    with pytest.raises(InputError, match="alone.hdr: no data file found"):
        read_scene(hdr)
    hdr.write_text("not an envi header\n")
    with pytest.raises(InputError, match="not an ENVI header"):
        envi.read(hdr)


@pytest.mark.parametrize("dtype, nodata", [("uint16", -1), ("int16", 40000), ("int16", float("nan")), ("uint8", 2.5)])
def test_integer_nodata_outside_the_type_is_refused_before_writing(tmp_path, dtype, nodata):
    """Invalid pixels are written as nodata: one that the type cannot hold would wrap around."""
    with pytest.raises(InputError, match=rf"^nodata .*: expected an integer from .* for {dtype} data"):
        write_scene(Scene(scene_cube()), tmp_path / "n.hdr", dtype=dtype, nodata=nodata)
    assert list(tmp_path.iterdir()) == []


def test_writer_leaves_nothing_on_failure(tmp_path):
    class Boom:
        shape = (7, 11, 5)
        dtype = np.dtype("f4")

        def read(self, rows, cols):
            raise RuntimeError("disk on fire")

    scene = Scene(Boom(), mask=np.ones((7, 11), bool))
    with pytest.raises(RuntimeError):
        write_scene(scene, tmp_path / "x.hdr")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("epsg, transform", [
    (4326, (0.01, 0.0, 10.0, 0.0, -0.01, 50.0)),
    (3035, (10.0, 0.0, 4321000.0, 0.0, -10.0, 3210000.0)),
    (32718, (30.0, 0.0, 300000.0, 0.0, -30.0, 8000000.0)),
])
def test_writer_crs_round_trip(tmp_path, epsg, transform):
    from rasterio.crs import CRS

    write_scene(Scene(scene_cube(), crs=f"EPSG:{epsg}", transform=transform), tmp_path / "c.hdr")
    back = read_scene(tmp_path / "c.hdr")
    assert CRS.from_wkt(back.crs).to_epsg() == epsg
    np.testing.assert_allclose(back.transform, transform)


@pytest.mark.parametrize("epsg, transform", [
    (4326, (0.01, 0.0, 10.0, 0.0, -0.01, 50.0)),
    (32718, (30.0, 0.0, 300000.0, 0.0, -30.0, 8000000.0)),
])
def test_written_crs_is_the_same_crs_in_gdal(tmp_path, epsg, transform):
    # QGIS opens the maps through GDAL: a 'units=Degrees' beside the coordinate system string
    # made GDAL read WGS 84 without its EPSG identity (a CRS unequal to EPSG:4326)
    import rasterio
    from rasterio.crs import CRS

    write_scene(Scene(scene_cube(), crs=f"EPSG:{epsg}", transform=transform), tmp_path / "c.hdr")
    with rasterio.open(tmp_path / "c.img") as ds:
        assert ds.crs == CRS.from_epsg(epsg) and ds.crs.to_epsg() == epsg
        np.testing.assert_allclose(tuple(ds.transform)[:6], transform)


def test_overlapping_detector_wavelengths_are_sorted(tmp_path):
    """Bands whose wavelengths step back (overlapping spectrometers) come out sorted."""
    import numpy as np

    from unmixgen.io import read_scene

    rows, cols, bands = 3, 5, 4
    cube = np.arange(rows * cols * bands, dtype=np.float32).reshape(rows, cols, bands) + 1
    wl = [400.0, 700.0, 650.0, 900.0]  # band 3 steps back
    (tmp_path / "s.img").write_bytes(cube.transpose(2, 0, 1).astype("<f4").tobytes())  # bsq
    (tmp_path / "s.hdr").write_text(
        "ENVI\nsamples = 5\nlines = 3\nbands = 4\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 4\ninterleave = bsq\nbyte order = 0\n"
        "wavelength = {400, 700, 650, 900}\nfwhm = {10, 11, 12, 13}\nbbl = {1, 1, 0, 1}\n"
    )
    s = read_scene(tmp_path / "s.hdr")
    order = np.argsort(wl)
    assert np.allclose(s.wavelengths, np.sort(wl))
    assert np.allclose(s.fwhm, np.array([10, 11, 12, 13])[order])
    assert list(s.good_bands) == [True, False, True, True]
    assert np.array_equal(s.load(), cube[..., order])
    assert np.array_equal(s.read(slice(1, 3), slice(2, 4)), cube[1:3, 2:4][..., order])


# -- issue 10: gains, band names, short wavelength lists, detector overlap, bad values --------
def _gdal_envi(path, stored, *, scales=None, offsets=None, descriptions=None):
    """An ENVI file written by GDAL itself (rasterio's ENVI driver): GDAL stores band
    scales/offsets as ``data gain values``/``data offset values`` and descriptions as
    ``band names``."""
    import rasterio

    rows, cols, bands = stored.shape
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        with rasterio.open(path, "w", driver="ENVI", width=cols, height=rows, count=bands,
                           dtype=stored.dtype.name) as ds:
            ds.write(np.ascontiguousarray(stored.transpose(2, 0, 1)))
            if scales is not None:
                ds.scales = tuple(scales)
            if offsets is not None:
                ds.offsets = tuple(offsets)
            for b, d in enumerate(descriptions or []):
                ds.set_band_description(b + 1, d)
    return path.with_suffix(".hdr")


def test_gdal_gain_offset_values_and_band_name_wavelengths(tmp_path):
    stored = np.rint(scene_cube() * 10000).astype(np.int16)
    gains = [1e-4, 1e-4, 2e-4, 1e-4, 5e-5]
    offsets = [0.0, 0.01, 0.0, -0.02, 0.0]
    names = ["376.44 Nanometers", "501 Nanometers", "0.6127 Micrometers", "Band 4 (705.5 nm)", "881 nm"]
    hdr = _gdal_envi(tmp_path / "g.img", stored, scales=gains, offsets=offsets, descriptions=names)
    text = hdr.read_text()
    assert "data gain values" in text and "data offset values" in text and "wavelength =" not in text
    s = read_scene(hdr)
    expected = stored * np.float32(gains) + np.float32(offsets)
    np.testing.assert_allclose(s.load(), expected, rtol=1e-6, atol=1e-7)  # not 10,000x too large
    np.testing.assert_allclose(s.wavelengths, [376.44, 501.0, 612.7, 705.5, 881.0])
    np.testing.assert_allclose(s.read(slice(2, 4), slice(3, 6)), expected[2:4, 3:6], rtol=1e-6, atol=1e-7)


def test_gains_with_wrong_count_or_zero_are_refused(tmp_path):
    hdr = write_envi(tmp_path, _stored("i2"), extra={"data gain values": "{1, 2}"})
    with pytest.raises(InputError, match="scene.hdr: header 'data gain values' has 2 values for 5 bands"):
        read_scene(hdr)
    hdr = write_envi(tmp_path, _stored("i2"), name="z", extra={"data gain values": "{1, 1, 0, 1, 1}"})
    with pytest.raises(InputError, match="z.hdr: .*zero gain"):
        read_scene(hdr)


def test_camera_header_with_fewer_wavelengths_than_bands(tmp_path):
    """A lab camera header listing 35 wavelengths for 978 bands: read, warned, band numbers."""
    stored = np.random.default_rng(0).integers(1, 4000, (3, 4, 978)).astype(np.uint16)
    hdr = write_envi(tmp_path, stored, interleave="bil", wavelengths=np.linspace(400, 1000, 35),
                     extra={"fwhm": "{" + ", ".join(["2.5"] * 35) + "}"})
    with pytest.warns(UserWarning, match="35 wavelengths for 978 bands") as rec:
        s = read_scene(hdr)
    assert s.wavelengths is None and s.fwhm is None and s.bands == 978
    assert any("fwhm" in str(w.message) for w in rec)
    np.testing.assert_array_equal(s.load(), stored)


VNIR_SWIR = [420.0, 500.0, 600.0, 700.0, 800.0, 900.0, 993.0, 902.0, 950.0, 1000.0, 1500.0, 2200.0]


@pytest.mark.parametrize("overlap, kept", [
    ("sort", [420, 500, 600, 700, 800, 900, 902, 950, 993, 1000, 1500, 2200]),
    ("long", [420, 500, 600, 700, 800, 900, 902, 950, 1000, 1500, 2200]),
    ("swir", [420, 500, 600, 700, 800, 900, 902, 950, 1000, 1500, 2200]),
    ("short", [420, 500, 600, 700, 800, 900, 993, 1000, 1500, 2200]),
])
def test_vnir_then_swir_overlap_policies(tmp_path, overlap, kept):
    """EnMAP-style band order: VNIR up to 993 nm, then SWIR from 902 nm."""
    stored = np.arange(1, 2 * 3 * 12 + 1, dtype=np.float32).reshape(2, 3, 12)
    hdr = write_envi(tmp_path, stored, wavelengths=VNIR_SWIR, extra={"bbl": "{" + ", ".join(
        "0" if w == 1500 else "1" for w in VNIR_SWIR) + "}"})
    s = read_scene(hdr, overlap=overlap)
    np.testing.assert_allclose(s.wavelengths, kept)
    idx = [VNIR_SWIR.index(w) for w in kept]
    np.testing.assert_array_equal(s.load(), stored[..., idx])
    assert list(s.good_bands) == [w != 1500 for w in kept]


def test_overlap_duplicates_and_unknown_policy(tmp_path):
    from unmixgen.errors import ParameterError

    hdr = write_envi(tmp_path, _stored("f4"), wavelengths=[400, 900, 950, 900, 1200])
    with pytest.raises(InputError, match="two bands at 900 nm with overlap='sort'.*'short' or 'long'"):
        read_scene(hdr)
    np.testing.assert_allclose(read_scene(hdr, overlap="long").wavelengths, [400, 900, 1200])
    with pytest.raises(ParameterError, match="overlap='mean'"):
        read_scene(hdr, overlap="mean")


@pytest.mark.parametrize("field, value, message", [
    ("header offset", "-4", "header offset = -4; expected >= 0"),
    ("map info", "{UTM, 1, 1, 500000, 4000000, 30, 30, 33, North, WGS-84, rotation=abc}",
     "'map info' rotation = 'abc' is not a number"),
    ("map info", "{UTM, 1, 1, 500000, nan, 30, 30, 33, North}", "'map info' item 5 = nan"),
    ("samples", "eleven", "'samples' = 'eleven' is not an integer"),
    ("data ignore value", "none", "'data ignore value' = 'none' is not a number"),
    ("reflectance scale factor", "0", "'reflectance scale factor' = 0; expected a non-zero"),
])
def test_bad_header_values_are_input_errors_naming_the_file(tmp_path, run_cli, field, value, message):
    hdr = write_envi(tmp_path, _stored("f4"), extra={field: value})
    with pytest.raises(InputError) as err:
        read_scene(hdr)
    assert str(err.value).startswith(str(hdr)) and message in str(err.value)
    code, _, stderr = run_cli("info", hdr)
    assert code == 2 and stderr.strip().count("\n") == 0 and "Traceback" not in stderr


def test_unparsable_crs_prints_no_proj_error_line(tmp_path, capfd):
    hdr = write_envi(tmp_path, _stored("f4"), extra={
        "map info": "{UTM, 1, 1, 500000, 4000000, 30, 30, 99, North, WGS-84}",
        "coordinate system string": '{PROJCS["broken",GEOGCS["x"]]}'})
    s = read_scene(hdr)
    assert s.crs is None and s.transform is not None
    assert "ERROR" not in capfd.readouterr().err


def test_fifo_is_refused_before_open(tmp_path):
    import os
    import threading

    fifo = tmp_path / "scene.img"
    os.mkfifo(fifo)
    hdr = write_envi(tmp_path, _stored("f4"), name="other")
    (tmp_path / "other.img").unlink()
    hdr.rename(tmp_path / "scene.hdr")
    result = {}

    def attempt():
        try:
            read_scene(tmp_path / "scene.hdr")
        except InputError as exc:
            result["err"] = str(exc)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "reading a FIFO hung"
    assert "FIFO" in result["err"]
    t = threading.Thread(target=lambda: result.update(direct=_catch(fifo)), daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive() and "FIFO" in result["direct"]


def _catch(path):
    try:
        read_scene(path)
    except InputError as exc:
        return str(exc)
    return "no error"


def test_a_crs_proj_does_not_know_is_kept_as_wkt_or_refused(tmp_path):
    t = (30.0, 0.0, 5e5, 0.0, -30.0, 58e5)
    with pytest.raises(InputError, match="EPSG:999999.*not a coordinate reference system"):
        write_scene(Scene(scene_cube(), transform=t, crs="EPSG:999999"), tmp_path / "a.hdr")
    assert not list(tmp_path.iterdir())
    wkt = 'PROJCS["site grid",UNKNOWN[1]]'  # WKT this PROJ cannot parse: kept, not dropped
    write_scene(Scene(scene_cube(), transform=t, crs=wkt), tmp_path / "b.hdr")
    assert wkt in (tmp_path / "b.hdr").read_text()


def test_a_float_band_of_nan_is_a_bad_band_without_a_declared_ignore_value(tmp_path):
    stored = _stored("f4")
    stored[..., 1] = np.nan
    scene = read_scene(write_envi(tmp_path, stored))
    np.testing.assert_array_equal(scene.good_bands, [True, False, True, True, True])
    assert scene.mask.all()


def test_header_with_a_utf8_byte_order_mark_is_read(tmp_path):
    """A header saved by a Windows editor starts with a UTF-8 byte-order mark before 'ENVI':
    read as without it (it was refused as 'not an ENVI header')."""
    stored = _stored("f4")
    hdr = write_envi(tmp_path, stored, wavelengths=WL_NM)
    plain = read_scene(hdr).load()
    hdr.write_bytes(b"\xef\xbb\xbf" + hdr.read_bytes())
    scene = read_scene(hdr)
    np.testing.assert_array_equal(scene.load(), plain)
    np.testing.assert_allclose(scene.wavelengths, WL_NM)


def test_band_name_wavelengths_keep_their_widths(tmp_path):
    """Wavelengths read from band names (no 'wavelength' field) keep the header's fwhm, in nm;
    only band-number units (Index) drop the widths."""
    names = ["450 nm", "550 nm", "650 nm", "750 nm", "850 nm"]
    hdr = write_envi(tmp_path, _stored("f4"),
                     extra={"band names": "{" + ", ".join(names) + "}", "fwhm": "{10, 10, 12, 12, 14}"})
    scene = read_scene(hdr)
    np.testing.assert_allclose(scene.wavelengths, [450, 550, 650, 750, 850])
    np.testing.assert_allclose(scene.fwhm, [10, 10, 12, 12, 14])


def test_major_frame_offsets_are_refused_by_name_and_zero_ones_read(tmp_path):
    """ENVI's optional 'major frame offsets' = {bytes before, bytes after} each major frame
    (line): bytes inside the data file that are not samples. Nonzero ones are refused naming
    the field, not with a band count the data file is said to hold; {0, 0} changes nothing."""
    stored = scene_cube(rows=3, cols=4, bands=2)
    hdr = write_envi(tmp_path, stored, interleave="bil", extra={"major frame offsets": "{0, 0}"})
    np.testing.assert_allclose(read_scene(hdr).load(), stored)
    raw = stored.transpose(0, 2, 1).reshape(3, -1)  # one BIL line per row
    pad = np.zeros((3, 2), np.float32)  # 8 bytes before each line
    (tmp_path / "scene.img").write_bytes(np.concatenate([pad, raw], axis=1).astype("<f4").tobytes())
    text = hdr.read_text().replace("major frame offsets = {0, 0}", "major frame offsets = {8, 0}")
    hdr.write_text(text)
    with pytest.raises(InputError, match="'major frame offsets'") as err:
        read_scene(hdr)
    assert "bands but the data file" not in str(err.value)


@pytest.mark.parametrize("bad", ["0", "-10", "nan", "inf"])
def test_bad_fwhm_is_dropped_with_a_warning(tmp_path, bad):
    # the cube reads the same without widths: a bad list is dropped (file named), not kept
    stored = scene_cube()
    hdr = write_envi(tmp_path, stored, wavelengths=WL_NM, extra={"fwhm": "{10, 10, " + bad + ", 12, 14}"})
    with pytest.warns(UserWarning, match=r"scene.hdr: fwhm values hold .*expected finite positive widths"):
        s = read_scene(hdr)
    assert s.fwhm is None
    np.testing.assert_array_equal(s.load(), stored)


def test_rotated_map_info_turns_the_grid_about_its_tie_point_and_matches_gdal_where_gdal_is_rigid(tmp_path):
    """``rotation=`` rotates the pixel grid rigidly about the tie point: the tie pixel keeps its
    map coordinates and a pixel step is one pixel size long. For square pixels tied at (1, 1),
    GDAL's reading of the same header is the same transform."""
    import math

    import rasterio

    from unmixgen.io.envi import parse_map_info

    def gdal(items):
        np.zeros((2, 4, 5), np.float32).tofile(tmp_path / "x.img")
        (tmp_path / "x.hdr").write_text(
            "ENVI\nsamples = 5\nlines = 4\nbands = 2\nheader offset = 0\nfile type = ENVI Standard\n"
            "data type = 4\ninterleave = bsq\nbyte order = 0\nmap info = {" + ", ".join(items) + "}\n")
        with rasterio.open(tmp_path / "x.img") as ds:
            return tuple(ds.transform)[:6]

    for rot in (30.0, -15.0, 120.0):
        items = ["UTM", "1", "1", "500000", "4000000", "30", "30", "33", "North", "WGS-84", f"rotation={rot}"]
        ours, _ = parse_map_info(items, tmp_path / "x.hdr")
        np.testing.assert_allclose(ours, gdal(items), rtol=0, atol=1e-6)
        tied = ["UTM", "10.5", "20.5", "500000", "4000000", "30", "20", "33", "North", "WGS-84", f"rotation={rot}"]
        a, b, c, d, e, f = parse_map_info(tied, tmp_path / "x.hdr")[0]
        np.testing.assert_allclose([c + a * 9.5 + b * 19.5, f + d * 9.5 + e * 19.5], [500000, 4000000], atol=1e-6)
        assert math.isclose(math.hypot(a, d), 30) and math.isclose(math.hypot(b, e), 20)
        assert abs(a * b + d * e) < 1e-9  # column and row steps at right angles


def _gdal_transform(tmp_path, map_info: str):
    """The transform GDAL (rasterio) reads from a 4 x 5 ENVI file with ``map info = {map_info}``."""
    import rasterio

    np.zeros((2, 4, 5), np.float32).tofile(tmp_path / "g.img")
    (tmp_path / "g.hdr").write_text(
        "ENVI\nsamples = 5\nlines = 4\nbands = 2\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 4\ninterleave = bsq\nbyte order = 0\nmap info = {" + map_info + "}\n")
    with rasterio.open(tmp_path / "g.img") as ds:
        return tuple(ds.transform)[:6]


@pytest.mark.parametrize("rotation", ["180", "180.0", "-180"])
@pytest.mark.parametrize("sizes", ["30, 30", "30, 20"])
def test_rotation_180_is_a_south_up_grid_as_gdal_reads_it(tmp_path, rotation, sizes):
    """GDAL writes a south-up grid (rows going north, columns east: a > 0, e > 0) as positive
    pixel sizes and rotation=180, and reads that back as the same south-up grid. A rigid 180
    degree turn also mirrored the columns (a < 0): every pixel but the first column's was placed
    on the wrong side of the tie point, so the maps of such a scene opened mirrored in QGIS."""
    map_info = f"UTM, 1, 1, 500000, 4000000, {sizes}, 33, North, WGS-84, units=Meters, rotation={rotation}"
    gdal = _gdal_transform(tmp_path, map_info)
    assert gdal[0] > 0 and gdal[4] > 0  # GDAL's answer: south-up, columns still going east
    hdr = write_envi(tmp_path, scene_cube(rows=4, cols=5, bands=2), extra={"map info": "{" + map_info + "}"})
    np.testing.assert_allclose(read_scene(hdr).transform, gdal, rtol=0, atol=1e-9)


def test_a_south_up_grid_gdal_writes_reads_as_gdal_reads_it(tmp_path):
    import warnings

    import rasterio
    from rasterio.transform import Affine

    t = (30.0, 0.0, 500000.0, 0.0, 30.0, 4000000.0)  # south-up
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL's note on the ENVI driver's rotation
        with rasterio.open(tmp_path / "g.img", "w", driver="ENVI", width=5, height=4, count=2, dtype="float32",
                           crs="EPSG:32633", transform=Affine(*t)) as ds:
            ds.write(scene_cube(rows=4, cols=5, bands=2).transpose(2, 0, 1))
        with rasterio.open(tmp_path / "g.img") as ds:
            gdal = tuple(ds.transform)[:6]
    assert "rotation=180" in (tmp_path / "g.hdr").read_text()  # how GDAL says south-up
    np.testing.assert_allclose(read_scene(tmp_path / "g.hdr").transform, gdal, rtol=0, atol=1e-9)


@pytest.mark.parametrize("t", [(30.0, 0.0, 5e5, 0.0, 30.0, 58e5), (-30.0, 0.0, 5e5, 0.0, 30.0, 58e5),
                               # a 180 degree turn computed in floating point: terms of 1e-15 off the axes
                               (-30.0, 3.67394039744206e-15, 5e5, 3.67394039744206e-15, 30.0, 58e5)])
def test_flipped_grids_we_write_read_back_the_same_here_and_in_gdal(tmp_path, t):
    """A grid turned by 180 degrees (both axes flipped) was written 'rotation=180.0', which GDAL
    (and now this reader) takes for a south-up grid; signed pixel sizes say it for both."""
    import rasterio

    write_scene(Scene(scene_cube(), transform=t, crs="EPSG:32633"), tmp_path / "s.hdr")
    assert "rotation" not in envi.parse_header(tmp_path / "s.hdr")["map info"]
    np.testing.assert_allclose(read_scene(tmp_path / "s.hdr").transform, t, rtol=0, atol=1e-9)
    with rasterio.open(tmp_path / "s.img") as ds:
        np.testing.assert_allclose(tuple(ds.transform)[:6], t, rtol=0, atol=1e-9)


@pytest.mark.parametrize("ext", [".hdr", ".tif"])
def test_a_rotated_grid_tied_off_its_corner_is_written_where_its_tie_point_says(tmp_path, run_cli, ext):
    """A rotated 'map info' tied at (10.5, 20.5): the tie pixel's centre is at the easting and
    northing the header gives. GDAL (3.10) reads such a header with the origin offset as if the grid
    were unrotated, so it puts that pixel some 330 m away; the copies, tied at (1, 1) as GDAL writes
    them, open in GDAL with the tie pixel where the header says."""
    import warnings

    import rasterio

    hdr = write_envi(tmp_path, _stored("f4"), wavelengths=WL_NM, extra={
        "map info": "{UTM, 10.5, 20.5, 500000, 4000000, 30, 30, 33, North, WGS-84, rotation=30}"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(tmp_path / "scene.img") as ds:
            gdal_tie = ds.transform * (9.5, 19.5)
    assert np.hypot(gdal_tie[0] - 500000, gdal_tie[1] - 4000000) > 300  # GDAL's reading of the input
    out = tmp_path / f"copy{ext}"
    code, _, err = run_cli("convert", hdr, out)
    assert code == 0, err
    with rasterio.open(out.with_suffix(".img") if ext == ".hdr" else out) as ds:
        np.testing.assert_allclose(ds.transform * (9.5, 19.5), (500000, 4000000), atol=1e-6)


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_loaded_cube_is_c_ordered_so_valid_pixels_is_a_view(tmp_path, interleave):
    # A BSQ/BIL memory map read in its own order made a loaded cube that is not C-contiguous,
    # and valid_pixels() then copied the whole cube (+800 MB for a 1000x1000x200 scene).
    stored = _stored("f4")
    hdr = write_envi(tmp_path, stored, interleave=interleave, wavelengths=WL_NM)
    scene = read_scene(hdr)
    cube = scene.load()
    assert cube.flags.c_contiguous
    np.testing.assert_array_equal(cube, stored)
    Y = scene.valid_pixels()
    assert np.shares_memory(Y, cube)
    np.testing.assert_array_equal(Y, stored.reshape(-1, 5))
    assert read_scene(hdr).read(slice(1, 4), slice(2, 9)).flags.c_contiguous  # a tile, as tilers take it


# -- hunt 13: the CRS of a 'map info' on another datum or in other units, as GDAL (QGIS) reads it ---
@pytest.mark.parametrize("map_info", [
    "{UTM, 1, 1, 500000, 5800000, 30, 30, 10, North, North America 1983, units=Meters}",
    "{UTM, 1, 1, 500000, 4200000, 30, 30, 11, North, North America 1927, units=Meters}",
    "{Geographic Lat/Lon, 1, 1, -120, 45, 0.001, 0.001, North America 1983, units=Degrees}",
    "{Geographic Lat/Lon, 1, 1, -120, 45, 0.001, 0.001, North America 1927, units=Degrees}",
    "{UTM, 1, 1, 1640416.67, 19028871.4, 98.4, 98.4, 33, North, WGS-84, units=Feet}",
])
def test_map_info_datum_and_units_give_the_crs_gdal_reads(tmp_path, run_cli, map_info):
    """A NAD83/NAD27 'map info' without a coordinate system string was read with no CRS (GDAL
    and QGIS place it), so every output lost its place; one in feet was read as WGS 84 / UTM in
    metres, so the outputs, written with that CRS, landed 3.3 times too far from the origin."""
    import warnings

    import rasterio
    from rasterio.crs import CRS

    hdr = write_envi(tmp_path, _stored("f4"), extra={"map info": map_info})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(tmp_path / "scene.img") as ds:
            gdal_crs, gdal_transform = ds.crs, tuple(ds.transform)[:6]
    scene = read_scene(hdr)
    assert scene.crs is not None and CRS.from_user_input(scene.crs) == gdal_crs
    np.testing.assert_allclose(scene.transform, gdal_transform)
    # and the outputs carry it: ENVI as the input came, GeoTIFF too
    for out in ("o.hdr", "o.tif"):
        code, _, err = run_cli("convert", hdr, tmp_path / out)
        assert code == 0, err
        with rasterio.open(tmp_path / ("o.img" if out == "o.hdr" else out)) as ds:
            assert ds.crs == gdal_crs, out
            np.testing.assert_allclose(tuple(ds.transform)[:6], gdal_transform)


def test_map_info_in_kilometres_or_unknown_units_is_not_read_as_metres(tmp_path):
    from rasterio.crs import CRS

    hdr = write_envi(tmp_path, _stored("f4"), extra={
        "map info": "{UTM, 1, 1, 500, 5800, 0.03, 0.03, 33, North, WGS-84, units=Km}"})
    crs = CRS.from_user_input(read_scene(hdr).crs)
    assert crs.linear_units_factor[1] == 1000.0  # the same place as 500000 m, 5800000 m
    hdr = write_envi(tmp_path, _stored("f4"), name="leagues", extra={
        "map info": "{UTM, 1, 1, 500, 5800, 0.03, 0.03, 33, North, WGS-84, units=Leagues}"})
    assert read_scene(hdr).crs is None  # no CRS rather than the wrong place


@pytest.mark.parametrize("dtype", ["int16", "uint16"])
def test_integer_reflectance_is_stored_scaled_and_reads_back(tmp_path, dtype):
    """Reflectance 0-1 written as integers is stored x 10000 (as EnMAP, PRISMA and AVIRIS do), with
    the header's scale factor, so it reads back within the quantisation step, not as 0 or 1."""
    cube = scene_cube()
    cube[1, 2] = np.nan  # a no-data pixel: written as the fill, read back masked
    write_scene(Scene(cube, units="reflectance"), tmp_path / "r.hdr", dtype=dtype)
    h = envi.parse_header(tmp_path / "r.hdr")
    assert float(h["reflectance scale factor"]) == 10000
    back = read_scene(tmp_path / "r.hdr")
    assert back.units == "reflectance" and back.dtype == np.dtype(dtype)
    assert not back.mask[1, 2] and back.mask.sum() == cube.shape[0] * cube.shape[1] - 1  # the mask carries it
    stored = np.fromfile(tmp_path / "r.img", dtype=dtype).reshape(5, 7, 11)
    assert stored[:, 1, 2].tolist() == [back.nodata] * 5
    np.testing.assert_allclose(back.load()[back.mask], cube[back.mask], atol=0.5e-4 + 1e-7)


def test_integer_radiance_with_a_scale_reads_back_through_gains(tmp_path):
    cube = scene_cube() * 30  # radiance, W/(m2 sr um)
    write_scene(Scene(cube, units="radiance"), tmp_path / "l.hdr", dtype="int16", scale=1000)
    back = read_scene(tmp_path / "l.hdr")
    assert back.units == "radiance" and "reflectance scale factor" not in envi.parse_header(tmp_path / "l.hdr")
    np.testing.assert_allclose(back.load(), cube, atol=0.5e-3 + 1e-6)


@pytest.mark.parametrize("units", [None, "radiance"])
def test_fractional_values_are_refused_as_integers_without_a_scale(tmp_path, units):
    """Rounding 0.05-0.95 to whole numbers would keep nothing of the data."""
    with pytest.raises(InputError, match=r"r\.hdr: .*not a whole number.*int16.*expected scale="):
        write_scene(Scene(scene_cube(), units=units), tmp_path / "r.hdr", dtype="int16")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dtype, scale, cube_scale", [("uint8", None, 1.0), ("int16", 10000, 4.0),
                                                      ("uint16", 10000, -1.0)])
def test_scaled_values_that_do_not_fit_the_type_are_refused_not_clipped(tmp_path, dtype, scale, cube_scale):
    scene = Scene(scene_cube() * cube_scale, units="reflectance")
    with pytest.raises(InputError, match=rf"r\.hdr: .*{dtype} holds .*; expected a (smaller|larger|wider)"):
        write_scene(scene, tmp_path / "r.hdr", dtype=dtype, scale=scale)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scale", [0, -1, float("nan")])
def test_a_scale_that_is_not_positive_is_refused(tmp_path, scale):
    from unmixgen.errors import ParameterError

    with pytest.raises(ParameterError, match=r"^scale=.*: expected a finite number > 0"):
        write_scene(Scene(scene_cube()), tmp_path / "r.hdr", dtype="int16", scale=scale)
