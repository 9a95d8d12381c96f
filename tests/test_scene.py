import numpy as np
import pytest

from recording_source import RecordingSource
from unmixgen.errors import InputError
from unmixgen.scene import GroundTruth, Scene, describe
from unmixgen.wavelengths import grid_offset_nm, to_nm


def _cube(rows=5, cols=7, bands=4, seed=0):
    return np.random.default_rng(seed).uniform(0.1, 1.0, (rows, cols, bands)).astype(np.float32)


def test_invalid_pixels_are_masked_not_errors():
    cube = _cube()
    cube[0, 0, 1] = np.nan
    cube[1, 2, :] = 0
    cube[4, 6, 3] = np.inf
    s = Scene(cube)
    assert s.mask.sum() == 5 * 7 - 3
    assert not s.mask[0, 0] and not s.mask[1, 2] and not s.mask[4, 6]
    assert s.valid_pixels().shape == (32, 4)


def test_bad_bands_do_not_decide_validity():
    cube = _cube()
    cube[..., 2] = np.nan  # a band flagged bad, all NaN (as bad bands often are)
    cube[3, 1, 0] = np.nan  # a good band's NaN still invalidates its pixel
    s = Scene(cube, good_bands=[True, True, False, True])
    assert s.mask.sum() == 5 * 7 - 1 and not s.mask[3, 1]


def test_nodata_value_marks_pixels_invalid():
    cube = _cube()
    cube[2, 3, :] = -9999
    s = Scene(cube, nodata=-9999)
    assert not s.mask[2, 3] and s.mask.sum() == 34


def test_all_invalid_scene_is_refused():
    s = Scene(np.full((3, 4, 2), np.nan, np.float32))
    with pytest.raises(InputError, match="no valid pixel"):
        s.require_valid()


def test_tiles_cover_scene_once_with_halo():
    cube = _cube(11, 9, 3)
    cube[5, 4, 1] = np.nan  # an invalid pixel in the halo of several tiles
    valid = np.isfinite(cube).all(axis=-1)
    s = Scene(cube)
    seen = np.zeros((11, 9), int)
    for t in s.tiles(4, halo=2):
        seen[t.rows, t.cols] += 1
        assert np.array_equal(t.data[t.inner], cube[t.rows, t.cols], equal_nan=True)
        # the mask covers the outer window, as the data does
        assert np.array_equal(t.mask, valid[t.outer_rows, t.outer_cols])
        assert t.data.shape[0] <= 4 + 4
    assert (seen == 1).all()


def test_to_image_round_trip_on_non_square_scene():
    cube = _cube(3, 5, 2)
    cube[1, 4] = np.nan
    s = Scene(cube)
    img = s.to_image(s.valid_pixels())
    assert np.array_equal(img[s.mask], cube[s.mask])
    assert np.isnan(img[1, 4]).all()


def test_wavelengths_validated_and_converted():
    assert np.allclose(to_nm([0.4, 0.5], "Micrometers"), [400, 500])
    assert np.allclose(to_nm([0.4, 2.5]), [400, 2500])
    assert np.allclose(to_nm([400, 2500]), [400, 2500])
    assert np.allclose(to_nm([10000, 20000], "Wavenumber"), [1000, 500])  # cm^-1
    assert np.allclose(to_nm([299792.458], "GHz"), [1000])  # c / f
    with pytest.raises(InputError, match="not a length"):
        to_nm([1000, 2000], "kelvin")
    with pytest.raises(InputError, match="positive"):
        to_nm([1000, -2000], "wavenumber")
    with pytest.raises(InputError, match="strictly increasing"):
        Scene(_cube(bands=3), wavelengths=[400, 500, 450])


def test_truth_shape_mismatch_is_input_error():
    s = Scene(_cube(5, 7, 4))
    with pytest.raises(InputError, match="expected \\(5, 7, p\\)"):
        s.attach_truth(GroundTruth(abundances=np.ones((7, 5, 2)) / 2))
    with pytest.raises(InputError, match="expected \\(p, 4\\)"):
        s.attach_truth(GroundTruth(endmembers=np.ones((2, 5))))


def test_scale_applied_per_window_without_loading_memmap(tmp_path):
    raw = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    mm = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.uint16, shape=raw.shape)
    mm[:] = raw
    from unmixgen.scene import ArraySource

    s = Scene(ArraySource(np.load(tmp_path / "c.npy", mmap_mode="r"), scale=0.5))
    assert s.read(slice(1, 2), slice(0, 2)).dtype == np.float32
    assert np.allclose(s.read(slice(1, 2), slice(0, 2)), raw[1:2, 0:2] * 0.5)


def test_only_load_reads_the_whole_cube():
    # taller than the mask's 512-pixel tiles, so a whole-cube read would show as one window
    cube = _cube(600, 9, 3)
    cube[550, 4] = np.nan
    src = RecordingSource(cube.astype(np.float64))  # float64 storage: load() reads, not wraps
    s = Scene(src)
    assert s.shape == (600, 9, 3) and s.dtype == np.float64  # storage dtype
    assert s.mask.sum() == 600 * 9 - 1 and not s.mask[550, 4]
    s.require_valid()
    assert 0 < s.valid_fraction < 1 and describe(s)["invalid_pixels"] == 1
    assert np.array_equal(s.read(slice(10, 12), slice(2, 5)), cube[10:12, 2:5])
    assert sum(t.mask.sum() for t in s.tiles(100, halo=3)) > 0
    assert not s.is_loaded
    assert 0 < src.largest_window() < 600 * 9
    loaded = s.load()
    assert src.largest_window() == 600 * 9 and s.is_loaded
    assert loaded.dtype == np.float32 and np.array_equal(loaded, cube, equal_nan=True)
    n_reads = len(src.windows)
    assert s.load() is loaded and len(src.windows) == n_reads  # kept, not read again
    assert np.array_equal(s.read(slice(0, 2), slice(0, 2)), cube[:2, :2])  # from the loaded cube
    assert len(src.windows) == n_reads


def test_valid_pixels_loads_the_cube():
    cube = _cube(4, 6, 2)
    s = Scene(RecordingSource(cube.astype(np.float64)))
    assert not s.is_loaded
    assert np.array_equal(s.valid_pixels(), cube.reshape(-1, 2))
    assert s.is_loaded


def test_float32_array_is_loaded_without_a_copy():
    cube = _cube(3, 4, 2)
    assert Scene(cube).load() is cube


def test_grid_offset_is_the_largest_band_centre_difference():
    wl = np.array([400.0, 500.0, 600.0])
    assert grid_offset_nm(wl, wl + [0.0, 0.3, -0.2]) == pytest.approx(0.3)
    assert grid_offset_nm(wl, wl[:2]) == np.inf  # another band count is never the same grid
    assert grid_offset_nm(wl, [400.0, np.nan, 600.0]) == np.inf


def test_as_scene_wraps_real_cubes_and_refuses_others():
    from unmixgen.scene import as_scene

    cube = np.ones((3, 4, 5), np.int16)
    s = as_scene(cube)
    assert isinstance(s, Scene) and s.shape == (3, 4, 5) and as_scene(s) is s
    for bad, message in ((cube[0], "shape"), (cube.astype(np.complex64), "complex"), (cube.astype(str), "dtype")):
        with pytest.raises(InputError, match=message):
            as_scene(bad)


def test_scene_takes_array_likes_and_refuses_values_that_are_not_real_numbers():
    # Scene(list) was "'list' object has no attribute 'shape'"; Scene(tensor) was built and
    # failed at load() with "'Tensor' object has no attribute 'read'"; a complex cube was
    # read with numpy's ComplexWarning and its imaginary part dropped
    torch = pytest.importorskip("torch")
    cube = _cube(3, 5, 4)
    for like in (cube.tolist(), torch.from_numpy(cube), cube.astype(np.float64)):
        np.testing.assert_array_equal(Scene(like).load(), cube)
    for bad in (cube.astype(np.complex64), cube.astype(str)):
        with pytest.raises(InputError, match=rf"^cube has dtype {bad.dtype}; expected real numbers"):
            Scene(bad)


def test_the_sampled_valid_count_judges_on_good_bands_like_the_mask():
    # a bad band of NaN everywhere: the estimate said no pixel was valid
    cube = np.random.default_rng(0).uniform(0.1, 0.9, (40, 50, 4)).astype(np.float32)
    cube[..., 1] = np.nan
    cube[:10] = np.nan  # a quarter of the rows invalid
    scene = Scene(cube, good_bands=[True, False, True, True])
    sampled = describe(scene, sample_pixels=256)
    assert sampled["valid_pixels_from"] != "all pixels"
    assert sampled["valid_pixels"] == pytest.approx(1500, rel=0.15)
    assert describe(scene, count_valid=True)["valid_pixels"] == 1500


def test_pixel_validity_takes_a_nodata_value_in_any_band_as_missing():
    from unmixgen.scene import pixel_validity

    block = np.ones((1, 4, 3), np.float32)
    block[0, 1, 2] = -9999  # one band missing
    block[0, 2] = -9999  # all bands
    block[0, 3] = 0  # an all-zero pixel
    np.testing.assert_array_equal(pixel_validity(block, -9999)[0], [True, False, False, False])
    # a zero nodata value marks only all-zero pixels (zero is a plausible value in one band)
    block[0, 1, 2] = 0
    np.testing.assert_array_equal(pixel_validity(block, 0)[0], [True, True, True, False])


def test_a_given_mask_that_marks_nan_pixels_valid_is_refused_where_pixels_are_taken():
    # a region-of-interest mask over a cube with a few NaN pixels: every blind method died in
    # numpy's LinAlgError "Eigenvalues did not converge"
    from unmixgen.unmix.registry import make_method

    cube = _cube(6, 9, 4)
    cube[2, 5] = np.nan
    cube[4, 1, 3] = np.inf
    roi = np.ones((6, 9), bool)
    roi[0, 0] = False
    scene = Scene(cube, mask=roi)
    with pytest.raises(InputError, match=r"^scene: 2 pixels the mask marks valid hold NaN/Inf on good bands "
                                         r"\(the first at row 2, col 5\); expected the mask False there"):
        scene.valid_pixels()
    with pytest.raises(InputError, match="the mask marks valid"):
        make_method("vca", 3).fit(scene)
    # Inf on a bad band only is allowed (a bad band may hold anything), and so is a mask that
    # leaves such pixels out
    cube[2, 5] = 0.5
    assert Scene(cube, mask=roi, good_bands=[1, 1, 1, 0]).valid_pixels().shape == (53, 4)
    roi[4, 1] = False
    assert Scene(cube, mask=roi).valid_pixels().shape == (52, 4)


def test_wavelengths_in_micrometres_and_band_numbers_as_flags_are_refused():
    cube = np.ones((3, 4, 5), np.float32)
    with pytest.raises(InputError, match="micrometres"):
        Scene(cube, wavelengths=np.linspace(0.4, 2.5, 5))
    with pytest.raises(InputError, match="band numbers"):
        Scene(cube, good_bands=np.arange(5))
    # 0/1 integers and bools are flags, as before; nm wavelengths pass
    s = Scene(cube, wavelengths=np.linspace(400, 2500, 5), good_bands=np.array([1, 1, 0, 1, 1]))
    assert s.good_bands.tolist() == [True, True, False, True, True]


def test_array_source_reads_c_ordered_windows_of_a_fortran_array():
    # benchmark .mat cubes arrive in Fortran order: the loaded copy must be C-ordered, or
    # valid_pixels() copies the whole cube a second time
    cube = np.asfortranarray(np.random.default_rng(0).random((6, 5, 4)).astype(np.float64))
    scene = Scene(cube)
    loaded = scene.load()
    assert loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, cube.astype(np.float32))
    assert np.shares_memory(scene.valid_pixels(), loaded)


def test_valid_pixels_checks_a_given_mask_once(monkeypatch):
    # the finite check of a given mask's pixels ran on every call (0.14 s per call for a
    # million 224-band pixels); the mask and the loaded cube do not change after the first
    cube = np.ones((4, 5, 3), np.float32)
    s = Scene(cube, mask=np.ones((4, 5), bool))
    calls = []
    original = Scene._require_finite
    monkeypatch.setattr(Scene, "_require_finite", lambda self, Y: calls.append(1) or original(self, Y))
    s.valid_pixels()
    s.valid_pixels()
    assert len(calls) == 1
    bad = cube.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(InputError, match="NaN/Inf"):
        Scene(bad, mask=np.ones((4, 5), bool)).valid_pixels()


def test_row_sample_gives_about_n_valid_pixels_of_a_scene_with_nodata():
    # rows were spaced for n pixels of every row: a scene framed by nodata (a cropped field, an
    # orthorectified swath) gave a fraction of n, or none at all when the rows missed its valid
    # part, and the per-band noise estimate (info --noise, --band-weights, --band-noise) then
    # said "too few pixels" of a scene with plenty
    rng = np.random.default_rng(0)
    cube = (rng.random((200, 400, 8)) + 0.1).astype(np.float32)
    framed = cube.copy()
    framed[:50] = np.nan
    framed[150:] = np.nan
    strip = cube.copy()
    strip[:, 40:] = np.nan
    for data, n in ((framed, 800), (framed, 4000), (strip, 2000)):
        scene = Scene(data)
        Y = scene.row_sample(n)
        assert 0.5 * n <= len(Y) <= 2 * n and np.isfinite(Y).all(), (n, len(Y))
    whole = Scene(cube)  # every pixel valid: the same evenly spaced rows as before
    rows = np.unique(np.linspace(0, 199, 10).round().astype(int))
    np.testing.assert_array_equal(whole.row_sample(4000), cube[rows].reshape(-1, 8))
    assert len(Scene(np.full((4, 5, 3), np.nan, np.float32)).row_sample()) == 0


def _mixed(rows=40, cols=36, bands=24, seed=3):
    """A noisy mixture of three smooth spectra: every band varies down every line."""
    rng = np.random.default_rng(seed)
    E = 0.2 + 0.6 * rng.uniform(size=(3, bands))
    A = rng.dirichlet(np.ones(3), size=(rows, cols))
    return (A @ E + 0.01 * rng.standard_normal((rows, cols, bands))).astype(np.float32)


def test_a_detector_column_or_line_stuck_at_one_value_is_no_data_with_a_warning():
    # pushbroom products: a dead (zero) or hot (saturated) detector element reads one value down
    # its whole image column in some bands, a dropped line one value along its row; those pixels
    # are no spectra of any mixture and were fitted as data
    cube = _mixed()
    cube[:, 7, 12:] = 0.0  # dead in the second half of the bands
    cube[:, 20, 3:6] = 1.0  # hot in three bands
    cube[11, :, 15:] = 0.0  # a line lost by one detector
    with pytest.warns(UserWarning, match=r"columns 7, 20 and row 11 .* bands 4, 5, 6, 13, 14 and 10 more"):
        mask = Scene(cube).mask
    expected = np.ones(cube.shape[:2], bool)
    expected[:, [7, 20]] = False
    expected[11] = False
    assert np.array_equal(mask, expected)
    good = np.ones(cube.shape[-1], bool)
    good[[3, 4, 5, *range(12, 24)]] = False  # as the warning advises: those bands marked bad keep the pixels
    assert Scene(cube, good_bands=good).mask.all()


def test_lines_that_only_look_stuck_stay_valid(recwarn):
    cube = _mixed()
    cube[..., 5] = 0.0  # a dead band: constant in every pixel (a derived band, not a line)
    for r in range(cube.shape[0]):  # a dark area clipped to zero, nine columns and more wide: whole
        cube[r, : 9 + r % 4, 20:] = 0.0  # columns of it hold the value its ragged edge holds too
    assert Scene(cube).mask.all()
    short = _mixed(rows=12)
    short[:, 7, 12:] = 0.0
    assert Scene(short).mask.all()  # too short a column to tell a dead element from the scene
    stuck = cube.copy()
    stuck[:, 30, :] = 0.5
    stuck[:, 30, 0] = 0.4  # all-constant but not all-zero
    assert Scene(stuck, mask=np.ones(cube.shape[:2], bool)).mask.all()  # a given mask is taken as it is
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_zero_filled_pixels_without_a_nodata_value_are_no_data_and_counted_with_a_warning(recwarn):
    # an orthorectified border or lost lines filled with zeros, no nodata value declared: left out
    # (all-zero is no reflectance spectrum), and now the user hears how many
    cube = _mixed()
    cube[:4] = 0.0
    cube[:, -3:] = 0.0
    n = 4 * 36 + 40 * 3 - 4 * 3
    with pytest.warns(UserWarning, match=f"scene: {n} of 1440 pixels are 0 in every band"):
        s = Scene(cube)
        mask = s.mask
    assert (~mask).sum() == n and s.metadata["zero_pixels"] == n and describe(s)["zero_pixels"] == n
    recwarn.clear()
    declared = Scene(cube, nodata=0.0)  # the file says zero is no data: nothing to tell
    assert (~declared.mask).sum() == n and "zero_pixels" not in declared.metadata
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_the_stuck_line_scan_of_a_wide_scene_reads_bounded_windows():
    """The scan reads strips of rows; a strip of a wide scene (a mosaic 6000 columns across) is no
    larger than the mask's own 512 x 512 tiles, so the mask of a lazily read file never holds
    more than one tile's worth of the cube (256 full rows of 6000 x 100 bands were 1.2 GB)."""
    cube = _mixed(rows=300, cols=2100, bands=4)
    cube[:, 7, 2:] = 0.0
    src = RecordingSource(cube)
    with pytest.warns(UserWarning, match="column 7"):
        mask = Scene(src).mask
    assert not mask[:, 7].any() and mask[:, 8:].all()
    assert src.largest_window() <= 512 * 512


# -- hunt 44: fwhm given to a Scene gets the care its wavelengths get ----------------------------------
@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_scene_drops_bad_widths_with_the_readers_warning(bad):
    # a zero, negative or non-finite width was kept, to be refused far from here by simulate's
    # sensor response (or written into converted files); the readers drop such lists with a warning
    with pytest.warns(UserWarning, match=r"^Scene: fwhm values hold .*expected finite positive widths.*ignored") as w:
        s = Scene(_cube(), wavelengths=[450, 550, 650, 750], fwhm=[10.0, bad, 12.0, 13.0])
    assert s.fwhm is None and w[0].filename == __file__  # the warning points at the caller's line
    assert Scene(_cube(), fwhm=np.array([[10, 11, 12, 13]])).fwhm.tolist() == [10, 11, 12, 13]


def test_scene_refuses_fwhm_that_is_not_one_number_per_band_naming_the_parameter():
    from unmixgen.errors import ParameterError

    with pytest.raises(ParameterError, match=r"^fwhm='3 values': 3 values for 4 bands; expected one width") as e:
        Scene(_cube(), fwhm=[10.0, 11.0, 12.0])
    assert e.value.name == "fwhm"
    with pytest.raises(ParameterError, match=r"^fwhm='4 values': expected widths in nm, one number per band"):
        Scene(_cube(), fwhm=["10", "11", "12", "13"])  # was a bare ValueError from numpy
    # the same for the wavelengths and the good-band flags: the parameter the caller gave is named
    with pytest.raises(ParameterError, match=r"^wavelengths='4 values': not strictly increasing"):
        Scene(_cube(), wavelengths=[450, 550, 550, 650])
    with pytest.raises(ParameterError, match=r"^wavelengths='4 values': not numbers"):
        Scene(_cube(), wavelengths=["a", "b", "c", "d"])
    with pytest.raises(ParameterError, match=r"^good_bands='4 values': values other than 0 and 1"):
        Scene(_cube(), good_bands=["yes", "no", "yes", "no"])
    # a reader's scene names its file instead
    with pytest.raises(InputError, match=r"^f\.hdr: fwhm: 3 values for 4 bands"):
        Scene(_cube(), fwhm=[10.0, 11.0, 12.0], path="f.hdr")


def test_unitless_wavelengths_below_100_are_micrometres():
    # thermal-infrared libraries store micrometres up to tens of um (8-14 um, 25 um)
    np.testing.assert_array_equal(to_nm([8.0, 14.0, 25.0, 99.0]), [8000.0, 14000.0, 25000.0, 99000.0])
    np.testing.assert_array_equal(to_nm([0.4, np.nan, 2.5]), [400.0, np.nan, 2500.0])
    np.testing.assert_array_equal(to_nm([120.0, 2500.0]), [120.0, 2500.0])  # nanometres stay
