"""NumPy reader/writer: .npy memory map, .npz keys, ground truth, round trip, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fixtures_io import UTM33N_TRANSFORM, scene_cube
from unmixgen.errors import InputError
from unmixgen.io import read_scene, write_scene
from unmixgen.scene import GroundTruth, Scene


def _scene() -> Scene:
    cube = scene_cube()
    cube[1, 2] = np.nan
    cube[6, 10] = 0
    rng = np.random.default_rng(3)
    e = rng.uniform(0, 1, (3, 5)).astype(np.float32)
    a = rng.dirichlet([1, 1, 1], (7, 11)).astype(np.float32)
    return Scene(cube, wavelengths=[450, 550, 650, 750, 850], fwhm=[9, 10, 11, 12, 13],
                 good_bands=[1, 1, 0, 1, 1], crs="EPSG:32633", transform=UTM33N_TRANSFORM,
                 truth=GroundTruth(e, a, ["soil", "tree", "water"]))


def test_npz_round_trip_with_truth(tmp_path):
    scene = _scene()
    scene.mask[4, 4] = False  # flagged invalid although its numbers are fine
    write_scene(scene, tmp_path / "s.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]
    z = np.load(tmp_path / "s.npz")
    assert z["cube"].dtype == np.float32 and z["cube"].shape == (7, 11, 5)
    assert z["mask"].dtype == bool and z["mask"].shape == (7, 11)
    assert np.isnan(z["cube"][~z["mask"]]).all()  # invalid pixels are NaN in the file
    back = read_scene(tmp_path / "s.npz")
    assert back.metadata["format"] == "numpy"
    np.testing.assert_array_equal(back.mask, scene.mask)
    np.testing.assert_array_equal(back.load()[back.mask], scene.load()[scene.mask])
    np.testing.assert_array_equal(back.wavelengths, scene.wavelengths)
    np.testing.assert_array_equal(back.fwhm, scene.fwhm)
    np.testing.assert_array_equal(back.good_bands, scene.good_bands)
    assert back.crs == "EPSG:32633" and back.transform == UTM33N_TRANSFORM
    np.testing.assert_array_equal(back.truth.endmembers, scene.truth.endmembers)
    np.testing.assert_array_equal(back.truth.abundances, scene.truth.abundances)
    assert back.truth.names == ["soil", "tree", "water"]


def test_npy_is_memory_mapped(tmp_path):
    cube = scene_cube()
    cube[2, 3] = np.inf
    np.save(tmp_path / "c.npy", cube)
    s = read_scene(tmp_path / "c.npy")
    assert isinstance(s.source.array, np.memmap)
    np.testing.assert_array_equal(s.read(slice(1, 4), slice(5, 11)), cube[1:4, 5:11])
    assert s.mask.sum() == 76 and not s.mask[2, 3]
    assert s.wavelengths is None and s.metadata["format"] == "numpy"


def test_npz_bad_bands_do_not_decide_validity(tmp_path):
    cube = scene_cube()
    cube[..., 2] = np.nan  # the band flagged bad holds NaN everywhere
    cube[4, 5, 0] = np.nan  # a good band's NaN
    np.savez(tmp_path / "bad_band.npz", cube=cube, good_bands=np.array([1, 1, 0, 1, 1], bool))
    s = read_scene(tmp_path / "bad_band.npz")
    assert s.mask.sum() == cube.shape[0] * cube.shape[1] - 1 and not s.mask[4, 5]


def test_npz_single_array_and_micrometres(tmp_path):
    cube = scene_cube()
    np.savez(tmp_path / "one.npz", data=cube)
    np.testing.assert_array_equal(read_scene(tmp_path / "one.npz").load(), cube)
    np.savez(tmp_path / "um.npz", cube=cube, wavelengths=np.array([0.45, 0.55, 0.65, 0.75, 0.85]))
    np.testing.assert_allclose(read_scene(tmp_path / "um.npz").wavelengths, [450, 550, 650, 750, 850])


def test_npz_bad_input(tmp_path, run_cli):
    cube = scene_cube()
    np.savez(tmp_path / "two.npz", a=cube, b=cube)
    code, _, err = run_cli("info", tmp_path / "two.npz")
    assert code == 2 and "two.npz" in err and "'cube'" in err and err.strip().count("\n") == 0
    np.savez(tmp_path / "m.npz", cube=cube, mask=np.ones((11, 7), bool))
    with pytest.raises(InputError, match=r"m.npz: 'mask' has shape \(11, 7\)"):
        read_scene(tmp_path / "m.npz")
    np.savez(tmp_path / "t.npz", cube=cube, endmembers=np.ones((3, 4)))
    with pytest.raises(InputError, match=r"endmembers have shape \(3, 4\)"):
        read_scene(tmp_path / "t.npz")
    np.save(tmp_path / "flat.npy", cube[0])
    with pytest.raises(InputError, match="flat.npy: array has shape"):
        read_scene(tmp_path / "flat.npy")
    with pytest.raises(InputError, match="must end in .npz"):
        from unmixgen.io import numpy_io

        numpy_io.write(Scene(cube), tmp_path / "x.npy")


# -- issue 10: damaged archives, lying headers, complex data, empty cubes ----------------------
def test_corrupt_npz_member_bad_crc(tmp_path, run_cli):
    p = tmp_path / "crc.npz"
    np.savez(p, cube=scene_cube())
    raw = bytearray(p.read_bytes())
    i = raw.index(b"cube.npy") + 200  # inside the stored member's data
    raw[i] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="crc.npz: cannot read the .npz archive"):
        read_scene(p)
    code, _, err = run_cli("info", p)
    assert code == 2 and err.strip().count("\n") == 0


def test_npz_member_header_claiming_4_tb(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": (100000, 100000, 100)})
    buf.write(b"\0" * 64)
    p = tmp_path / "huge.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("cube.npy", buf.getvalue())
    with pytest.raises(InputError, match=r"huge.npz: member 'cube.npy' claims shape \(100000, 100000, 100\) "
                                         r"\(4000000000000 bytes\) but holds 64 bytes"):
        read_scene(p)


def test_complex_arrays_are_refused(tmp_path):
    c = (scene_cube() + 1j).astype(np.complex64)
    np.save(tmp_path / "c.npy", c)
    with pytest.raises(InputError, match="c.npy: array has complex type complex64"):
        read_scene(tmp_path / "c.npy")
    np.savez(tmp_path / "c.npz", cube=c)
    with pytest.raises(InputError, match="c.npz: 'cube' has complex type"):
        read_scene(tmp_path / "c.npz")


def test_empty_cube_message_names_the_file(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 5, 8), np.float32))
    with pytest.raises(InputError, match=r"empty.npy: cube shape \(0, 5, 8\) is empty"):
        read_scene(tmp_path / "empty.npy")


def test_npz_optional_members_are_checked(tmp_path):
    # widths are auxiliary: dropped with the readers' warning (hunt 44), as ENVI/GeoTIFF/... drop them
    np.savez(tmp_path / "f.npz", cube=scene_cube(), fwhm=np.array(["a", "b", "c", "d", "e"]))
    with pytest.warns(UserWarning, match="f.npz: fwhm values have type <U1; expected numbers"):
        assert read_scene(tmp_path / "f.npz").fwhm is None
    np.savez(tmp_path / "t.npz", cube=scene_cube(), transform=np.array([1, 2, np.nan, 4, 5, 6.0]))
    with pytest.raises(InputError, match="t.npz: 'transform'"):
        read_scene(tmp_path / "t.npz")


def test_cube_stored_bands_first(tmp_path, recwarn):
    """Some tools save cubes (bands, rows, cols). With wavelengths matching the first axis the
    .npz is refused with the fix; a .npy whose two last axes are equal and unlike the first
    is read as stored, with a warning naming the fix; a usual cube gets no warning."""
    cube = np.random.default_rng(0).random((9, 6, 6)).astype(np.float32)  # 9 bands of 6 x 6
    np.savez(tmp_path / "bf.npz", cube=cube, wavelengths=np.linspace(400, 900, 9))
    with pytest.raises(InputError, match=r"bf.npz: 'cube' has shape \(9, 6, 6\) and 9 wavelengths.*moveaxis"):
        read_scene(tmp_path / "bf.npz")
    np.save(tmp_path / "bf.npy", cube)
    with pytest.warns(UserWarning, match=r"bf.npy: array of shape \(9, 6, 6\) is read as 9 rows .*moveaxis"):
        assert read_scene(tmp_path / "bf.npy").bands == 6
    np.save(tmp_path / "ok.npy", np.moveaxis(cube, 0, -1))
    recwarn.clear()
    assert read_scene(tmp_path / "ok.npy").bands == 9
    assert not [w for w in recwarn if "bands come first" in str(w.message)]


def test_npz_with_bands_from_long_to_short_wavelengths_reads_as_the_sorted_file(tmp_path):
    # ENVI and GeoTIFF present their bands sorted by wavelength; an .npz must too, with every
    # per-band array (fwhm, good bands, truth endmembers) following its band
    rng = np.random.default_rng(0)
    cube = rng.uniform(0, 1, (5, 7, 6)).astype(np.float32)
    wl = np.array([400, 500, 600, 700, 800, 900.0])
    good = np.array([1, 1, 0, 1, 1, 1], bool)
    E = rng.uniform(0, 1, (2, 6))
    np.savez(tmp_path / "up.npz", cube=cube, wavelengths=wl, fwhm=wl / 100, good_bands=good, endmembers=E)
    np.savez(tmp_path / "down.npz", cube=cube[..., ::-1], wavelengths=wl[::-1], fwhm=(wl / 100)[::-1],
             good_bands=good[::-1], endmembers=E[:, ::-1])
    up, down = read_scene(tmp_path / "up.npz"), read_scene(tmp_path / "down.npz")
    np.testing.assert_array_equal(down.load(), up.load())
    np.testing.assert_array_equal(down.wavelengths, wl)
    np.testing.assert_array_equal(down.fwhm, up.fwhm)
    np.testing.assert_array_equal(down.good_bands, good)
    np.testing.assert_array_equal(down.truth.endmembers, up.truth.endmembers)
    np.testing.assert_allclose(up.truth.endmembers, E, rtol=1e-6)
    assert "band_order" in down.metadata and "band_order" not in up.metadata


@pytest.mark.parametrize("ext", ["npz", "hdr", "tif", "mat"])
def test_write_scene_takes_a_cube_array_as_fit_and_transform_do(tmp_path, ext):
    # a (rows, cols, bands) array was an AttributeError ('mask', 'crs' or 'load') per format
    cube = scene_cube()
    write_scene(cube, tmp_path / f"cube.{ext}")
    np.testing.assert_array_equal(read_scene(tmp_path / f"cube.{ext}").load(), cube)
    with pytest.raises(InputError, match=r"^scene='array of shape \(7, 11\)': expected \(rows, cols, bands\)"):
        write_scene(cube[..., 0], tmp_path / f"plane.{ext}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in tmp_path.glob("cube.*"))


def test_an_option_the_format_does_not_take_is_refused_not_ignored(tmp_path):
    # write_scene(scene, "x.tif", dtype="int16") wrote float32, and read_scene(".npz",
    # pixel_order="F") read C order, each without a word
    from unmixgen.errors import ParameterError

    scene = Scene(scene_cube())
    with pytest.raises(ParameterError, match=r"^dtype='int16': not an option of the geotiff writer; expected one "
                                             r"of block_rows, compress$"):
        write_scene(scene, tmp_path / "s.tif", dtype="int16")
    with pytest.raises(ParameterError, match=r"^dtype='int16': not an option of the matlab writer; expected one "
                                             r"of block_rows, compress$"):
        write_scene(scene, tmp_path / "s.mat", dtype="int16")
    assert not list(tmp_path.iterdir())
    write_scene(scene, tmp_path / "s.npz")
    write_scene(scene, tmp_path / "s.hdr", dtype="int16", nodata=-9999, scale=10000)  # ENVI takes them
    with pytest.raises(ParameterError, match=r"^pixel_order='F': not an option of the numpy reader; expected one "
                                             r"of overlap$"):
        read_scene(tmp_path / "s.npz", pixel_order="F")
    assert read_scene(tmp_path / "s.npz", overlap="sort").shape == scene.shape



def _catch_all_functions():
    """Every ``read``/``write`` of the format modules that takes a ``**options`` catch-all."""
    import importlib
    import inspect
    import pkgutil

    import unmixgen.io

    found = []
    for info in pkgutil.iter_modules(unmixgen.io.__path__):
        module = importlib.import_module(f"unmixgen.io.{info.name}")
        for name in ("read", "write"):
            fn = getattr(module, name, None)
            if fn is not None and getattr(fn, "__module__", None) == module.__name__ and any(
                    p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
                found.append(pytest.param(fn, id=f"{info.name}.{name}"))
    return found


@pytest.mark.parametrize("fn", _catch_all_functions())
def test_a_format_module_called_directly_refuses_an_option_it_does_not_take(tmp_path, fn):
    """geotiff.write(scene, path, dtype="int16") wrote float32 and read(path, pixel_order="F")
    read as before, without a word: only read_scene/write_scene checked the options."""
    import inspect

    from unmixgen.errors import ParameterError

    target = tmp_path / "nothing.here"
    args = (target,) if fn.__name__ == "read" else (Scene(scene_cube()), target)
    taken = [n for n, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY]
    with pytest.raises(ParameterError, match=r"^bogus_option=3: not an option of the \w+ (reader|writer); "
                                             r"expected one of " + ", ".join(taken) + "$"):
        fn(*args, bogus_option=3)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_format_writers_called_directly_keep_the_options_they_take(tmp_path):
    from unmixgen.io import envi, geotiff, matlab, numpy_io

    scene = Scene(scene_cube())
    geotiff.write(scene, tmp_path / "s.tif", compress="lzw", block_rows=3)
    numpy_io.write(scene, tmp_path / "s.npz", block_rows=3)
    matlab.write(scene, tmp_path / "s.mat", compress=True)
    envi.write(scene, tmp_path / "s.hdr", dtype="int16", nodata=-9999, scale=10000)
    for name in ("s.tif", "s.npz", "s.mat"):
        np.testing.assert_allclose(read_scene(tmp_path / name, **({"overlap": "sort"} if name != "s.mat" else {}))
                                   .load(), scene.load(), rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(read_scene(tmp_path / "s.hdr").load(), scene.load(), atol=1e-4)



@pytest.mark.parametrize("ext", [".hdr", ".tif", ".npz", ".mat"])
@pytest.mark.parametrize("label", ["uW/(cm^2 sr nm)", "W m-2 sr-1 um-1", "Reflectance", "radiance"])
def test_a_unit_label_survives_a_write_and_read(tmp_path, ext, label):
    """ENVI wrote 'data units = radiance' for 'uW/(cm^2 sr nm)', and the .npz and GeoTIFF readers
    read the label they had stored as the word 'radiance': the unit (a factor of 10 between
    uW/(cm^2 sr nm) and W/(m^2 sr um)) was lost; the .mat writer stored none."""
    write_scene(Scene(scene_cube(), units=label), tmp_path / f"s{ext}")
    assert read_scene(tmp_path / f"s{ext}").units == label


@pytest.mark.parametrize("ext", [".hdr", ".tif", ".npz", ".mat"])
def test_a_label_naming_no_scene_quantity_reads_back_as_unknown(tmp_path, ext):
    write_scene(Scene(scene_cube(), units="DN"), tmp_path / f"s{ext}")
    assert read_scene(tmp_path / f"s{ext}").units is None
    write_scene(Scene(scene_cube(), units="uW/(cm^2\n sr  nm)"), tmp_path / f"t{ext}")  # no line holds a break
    assert read_scene(tmp_path / f"t{ext}").units == "uW/(cm^2 sr nm)"


@pytest.mark.parametrize("ext", [".hdr", ".tif", ".npz", ".mat"])
def test_a_unit_label_with_braces_reads_back_whole(tmp_path, ext):
    """An ENVI header reads a brace as the bound of a value: 'radiance {W/m2 sr um}' came back
    from ENVI as 'radiance {W/m2 sr um' (and as it was from the other formats). Every format now
    keeps the label with parentheses, the same everywhere."""
    write_scene(Scene(scene_cube(), units="radiance {W/m2 sr um}"), tmp_path / f"s{ext}")
    assert read_scene(tmp_path / f"s{ext}").units == "radiance (W/m2 sr um)"


def test_units_that_are_not_one_string_are_one_clear_error(tmp_path):
    import scipy.io

    np.savez(tmp_path / "n.npz", cube=scene_cube(), units=np.array([1.0, 2.0]))
    with pytest.raises(InputError, match=r"n\.npz: 'units' is not one string .*; expected one unit label"):
        read_scene(tmp_path / "n.npz")
    scipy.io.savemat(tmp_path / "m.mat", {"Y_clean": scene_cube(), "units": 3.0})
    with pytest.raises(InputError, match=r"m\.mat: variable 'units' is not one string .*; expected one unit label"):
        read_scene(tmp_path / "m.mat")


# -- hunt 13: georeferencing an .npz carries must be usable by every writer -----------------------
def test_npz_crs_proj_does_not_know_is_refused_on_reading_not_after_unmixing(tmp_path, run_cli):
    """A 'crs' no writer can use made `unmix` fail at the very end ("scene: CRS is not usable",
    no file named) after all the work, and `info` showed it as if fine."""
    np.savez(tmp_path / "c.npz", cube=scene_cube(), crs=np.array("UTM 33 north"),
             transform=np.array(UTM33N_TRANSFORM))
    with pytest.raises(InputError, match=r"c.npz: 'crs' = 'UTM 33 north' is not a coordinate reference system"):
        read_scene(tmp_path / "c.npz")
    code, _, err = run_cli("unmix", tmp_path / "c.npz", "-p", "2", "--method", "vca", "--out", tmp_path / "run",
                           "--no-figures")
    assert code == 2 and "c.npz" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "run").exists()
    # WKT and EPSG codes stay as the file has them
    np.savez(tmp_path / "ok.npz", cube=scene_cube(), crs=np.array("epsg:32633"), transform=np.array(UTM33N_TRANSFORM))
    assert read_scene(tmp_path / "ok.npz").crs == "epsg:32633"


def test_npz_transform_of_zero_area_is_refused(tmp_path):
    """A transform whose pixels have no area places nothing; written to ENVI it gave a 'map info'
    with pixel size 0 that unmixgen itself then refused to read."""
    np.savez(tmp_path / "z.npz", cube=scene_cube(), crs=np.array("EPSG:32633"), transform=np.zeros(6))
    with pytest.raises(InputError, match=r"z.npz: 'transform' .* zero area"):
        read_scene(tmp_path / "z.npz")


@pytest.mark.parametrize("fwhm", [[10.0, 0.0, 11, 12, 13], [10.0, -1, 11, 12, 13], [10.0, np.nan, 11, 12, 13],
                                  [10.0, 11.0]], ids=["zero", "negative", "nan", "short"])
def test_bad_npz_fwhm_is_dropped_with_the_readers_warning(tmp_path, fwhm):
    # hunt 44: zero/negative/NaN widths were kept (refused later by simulate's sensor response),
    # a short list refused the scene; every other reader drops them, naming the file
    np.savez(tmp_path / "w.npz", cube=scene_cube(), wavelengths=np.array([450.0, 550, 650, 750, 850]),
             fwhm=np.array(fwhm))
    message = r"2 fwhm values for 5 bands" if len(fwhm) == 2 else r"fwhm values hold .*expected finite positive"
    with pytest.warns(UserWarning, match=rf"w\.npz: {message}.*ignored"):
        s = read_scene(tmp_path / "w.npz")
    assert s.fwhm is None and s.wavelengths.size == 5


def test_a_zero_filled_border_of_a_npz_scene_is_said_as_the_other_readers_say_it(tmp_path):
    # the .npz reader left zero-filled pixels out silently (no warning, no metadata) where every
    # other reader counts them in a warning; a mask of the file's own still says where its data are
    rng = np.random.default_rng(0)
    cube = rng.uniform(0.1, 0.9, (12, 9, 6)).astype(np.float32)
    cube[:2] = 0.0
    np.savez(tmp_path / "z.npz", cube=cube, wavelengths=np.linspace(400, 900, 6))
    with pytest.warns(UserWarning, match="18 of 108 pixels are 0 in every band"):
        s = read_scene(tmp_path / "z.npz")
        assert s.mask.sum() == 90
    assert s.metadata["zero_pixels"] == 18
    mask = np.ones((12, 9), bool)
    mask[:2] = False
    np.savez(tmp_path / "m.npz", cube=cube, wavelengths=np.linspace(400, 900, 6), mask=mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_scene(tmp_path / "m.npz").mask.sum() == 90
