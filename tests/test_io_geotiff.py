"""GeoTIFF reader/writer: spectral metadata variants, nodata, scales, windows, round trips."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio

from fixtures_io import UTM33N_TRANSFORM, scene_cube, write_tif
from recording_source import RecordingSource
from unmixgen.errors import InputError
from unmixgen.io import geotiff, read_scene, write_scene
from unmixgen.scene import Scene

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

WL_NM = [450.0, 550.0, 650.0, 750.0, 850.0]


def _scene() -> Scene:
    cube = scene_cube()
    cube[1, 2] = np.nan
    cube[3, 4, 0] = -np.inf
    cube[6, 10] = 0
    return Scene(cube, wavelengths=WL_NM, fwhm=[9, 10, 11, 12, 13], good_bands=[1, 0, 1, 1, 1],
                 crs="EPSG:32633", transform=UTM33N_TRANSFORM)


def test_round_trip(tmp_path):
    scene = _scene()
    write_scene(scene, tmp_path / "s.tif")
    assert [p.name for p in tmp_path.iterdir()] == ["s.tif"]  # no temp files or sidecars
    back = read_scene(tmp_path / "s.tif")
    assert back.metadata["format"] == "geotiff" and back.path == str(tmp_path / "s.tif")
    np.testing.assert_array_equal(back.mask, scene.mask)
    np.testing.assert_array_equal(back.load()[back.mask], scene.load()[scene.mask])
    assert np.isnan(back.load()[~back.mask]).all()
    np.testing.assert_allclose(back.wavelengths, WL_NM)
    np.testing.assert_allclose(back.fwhm, scene.fwhm)
    np.testing.assert_array_equal(back.good_bands, scene.good_bands)
    np.testing.assert_allclose(back.transform, UTM33N_TRANSFORM)
    assert rasterio.crs.CRS.from_wkt(back.crs).to_epsg() == 32633


def test_written_file_is_plain_gdal_geotiff(tmp_path):
    write_scene(_scene(), tmp_path / "q.tif")
    with rasterio.open(tmp_path / "q.tif") as ds:
        assert ds.driver == "GTiff" and ds.dtypes == ("float32",) * 5 and np.isnan(ds.nodata)
        assert ds.compression is not None
        assert ds.descriptions == ("450 nm", "550 nm", "650 nm", "750 nm", "850 nm")
        assert float(ds.tags(2)["wavelength"]) == 550.0
        assert float(ds.tags(2, ns="IMAGERY")["CENTRAL_WAVELENGTH_UM"]) == pytest.approx(0.55)
        assert ds.tags()["wavelength_units"] == "Nanometers"


def test_band_tags_in_micrometres_with_scales_and_nodata(tmp_path):
    stored = np.rint(scene_cube() * 1000).astype(np.int16)
    stored[0, 5] = -1
    tags = [{"wavelength": f"{w / 1000:g}", "wavelength_units": "micrometers", "fwhm": "0.01"} for w in WL_NM]
    p = write_tif(tmp_path / "t.tif", stored, nodata=-1, band_tags=tags,
                  scales=[0.001] * 5, offsets=[0.5] * 5)
    s = read_scene(p)
    np.testing.assert_allclose(s.wavelengths, WL_NM)
    np.testing.assert_allclose(s.fwhm, [10.0] * 5)
    assert s.nodata == -1 and s.mask.sum() == 76 and not s.mask[0, 5]
    np.testing.assert_allclose(s.load(), stored * 0.001 + 0.5, rtol=1e-6)
    assert s.dtype == np.dtype("int16")


def test_envi_style_dataset_tags_and_descriptions(tmp_path):
    stored = scene_cube()
    p = write_tif(tmp_path / "e.tif", stored, dataset_tags={
        "wavelength": "{0.45, 0.55, 0.65, 0.75, 0.85}", "wavelength_units": "Micrometers"})
    np.testing.assert_allclose(read_scene(p).wavelengths, WL_NM)
    p = write_tif(tmp_path / "d.tif", stored, crs=None, transform=None,
                  descriptions=[f"Band {i + 1} ({w / 1000:.2f} um)" for i, w in enumerate(WL_NM)])
    s = read_scene(p)
    np.testing.assert_allclose(s.wavelengths, WL_NM)
    assert s.crs is None and s.transform is None
    assert read_scene(write_tif(tmp_path / "n.tif", stored)).wavelengths is None


def test_non_length_unit_and_count_mismatch(tmp_path, run_cli):
    stored = scene_cube()
    tags = [{"wavelength": str(i), "wavelength_units": "kelvin"} for i in range(5)]
    p = write_tif(tmp_path / "w.tif", stored, band_tags=tags)
    code, _, err = run_cli("info", p)
    assert code == 2 and "w.tif" in err and "kelvin" in err and err.strip().count("\n") == 0
    p = write_tif(tmp_path / "c.tif", stored, dataset_tags={"wavelength": "{400, 500}"})
    with pytest.warns(UserWarning, match="c.tif: 2 wavelength values in the metadata for 5 bands"):
        assert read_scene(p).wavelengths is None


def test_window_read_and_no_leaked_handle(tmp_path):
    stored = scene_cube()
    p = write_tif(tmp_path / "h.tif", stored)
    s = geotiff.read(p)
    np.testing.assert_array_equal(s.read(slice(1, 6), slice(2, 9)), stored[1:6, 2:9])
    assert s._cube is None and s.mask.all()
    fds = [os.readlink(f"/proc/self/fd/{f}") for f in os.listdir("/proc/self/fd")
           if os.path.exists(f"/proc/self/fd/{f}")]
    assert str(p) not in fds


def test_tiled_large_scene_streams_in_blocks(tmp_path):
    cube = np.random.default_rng(1).uniform(0.1, 1, (300, 270, 2)).astype(np.float32)
    scene = Scene(cube)
    write_scene(scene, tmp_path / "big.tif", block_rows=64)
    with rasterio.open(tmp_path / "big.tif") as ds:
        assert ds.block_shapes[0] == (256, 256)
    np.testing.assert_array_equal(read_scene(tmp_path / "big.tif").load(), cube)


# -- issue 10: detector overlap, bad-band tags, empty bands, complex data ---------------------
VNIR_SWIR = [420.0, 550.0, 700.0, 993.0, 902.0, 1100.0, 2200.0]  # SWIR starts below VNIR's end


def test_vnir_then_swir_band_tags_are_sorted_not_refused(tmp_path):
    stored = np.arange(1, 3 * 4 * 7 + 1, dtype=np.float32).reshape(3, 4, 7)
    tags = [{"wavelength": f"{w:g}", "wavelength_units": "Nanometers"} for w in VNIR_SWIR]
    p = write_tif(tmp_path / "vs.tif", stored, band_tags=tags,
                  descriptions=[f"band {i + 1}" for i in range(7)])
    s = read_scene(p)
    order = np.argsort(VNIR_SWIR)
    np.testing.assert_allclose(s.wavelengths, np.sort(VNIR_SWIR))
    np.testing.assert_array_equal(s.load(), stored[..., order])
    np.testing.assert_array_equal(s.read(slice(1, 3), slice(2, 4)), stored[1:3, 2:4][..., order])
    assert s.metadata["band_names"] == [f"band {i + 1}" for i in order]
    short = read_scene(p, overlap="short")
    np.testing.assert_allclose(short.wavelengths, [420, 550, 700, 993, 1100, 2200])
    np.testing.assert_array_equal(short.load(), stored[..., [0, 1, 2, 3, 5, 6]])


def test_enmap_box_per_band_bbl_tags(tmp_path):
    """EnMAP-Box's RasterWriter stores a bad-band flag per band as the band tag ``bbl``
    (older versions: ``bad_band_multiplier``)."""
    stored = scene_cube()
    tags = [{"wavelength": f"{w:g}", "wavelength_units": "nanometers", "bbl": "1"} for w in WL_NM]
    tags[1]["bbl"] = "0"
    del tags[3]["bbl"]
    tags[3]["bad_band_multiplier"] = "0"
    s = read_scene(write_tif(tmp_path / "bb.tif", stored, band_tags=tags))
    np.testing.assert_array_equal(s.good_bands, [True, False, True, False, True])
    tags[1]["bbl"] = "maybe"
    with pytest.raises(InputError, match="bb2.tif: band tag 'bbl' holds a non-numeric value"):
        read_scene(write_tif(tmp_path / "bb2.tif", stored, band_tags=tags))


def test_band_that_is_entirely_nodata_is_bad_and_never_scaled(tmp_path):
    stored = np.rint(scene_cube() * 10000).astype(np.int16)
    stored[..., 2] = -32768  # a whole band of nodata
    stored[4, 5] = -32768  # and one nodata pixel
    stored[1, 2, 3] = -32768  # and a pixel missing one good band
    p = write_tif(tmp_path / "nd.tif", stored, nodata=-32768, scales=[1e-4] * 5, offsets=[0] * 5)
    s = read_scene(p)
    np.testing.assert_array_equal(s.good_bands, [True, True, False, True, True])
    assert np.isnan(s.load()[..., 2]).all()  # not -3.2768 "reflectance"
    assert s.load()[..., [0, 1, 3, 4]][s.mask].min() > 0
    expected_mask = np.ones((7, 11), bool)
    expected_mask[4, 5] = expected_mask[1, 2] = False
    np.testing.assert_array_equal(s.mask, expected_mask)
    # written out (NaN in the empty band) and read back: still the same valid pixels
    write_scene(s, tmp_path / "back.tif")
    back = read_scene(tmp_path / "back.tif")
    np.testing.assert_array_equal(back.mask, expected_mask)
    np.testing.assert_array_equal(back.good_bands, s.good_bands)


def test_a_zero_nodata_that_reads_as_an_offset_marks_a_pixel_missing_one_band(tmp_path):
    """uint16 reflectance with an offset (stored 0 reads as -0.1) and nodata 0, as products store
    it: at a swath's edge a pixel may miss some bands (its SWIR). A zero nodata marks only
    all-zero pixels, since a physical zero is a plausible value in one band; this stored zero is
    no value at all, and was unmixed as -0.1 reflectance (25 % abundance RMSE against 2.6 % for the
    same data in ENVI with -9999)."""
    stored = (np.rint(scene_cube() * 10000) + 1000).astype(np.uint16)
    stored[4, 5] = 0  # a no-data pixel
    stored[1, 2, 3:] = 0  # a pixel missing two good bands
    s = read_scene(write_tif(tmp_path / "edge.tif", stored, nodata=0, scales=[1e-4] * 5, offsets=[-0.1] * 5))
    expected = np.ones((7, 11), bool)
    expected[4, 5] = expected[1, 2] = False
    np.testing.assert_array_equal(s.mask, expected)
    # without an offset a stored zero is a physical zero: still only all-zero pixels are no-data
    plain = read_scene(write_tif(tmp_path / "plain.tif", stored, nodata=0, scales=[1e-4] * 5, offsets=[0] * 5))
    expected[1, 2] = True
    np.testing.assert_array_equal(plain.mask, expected)


def test_complex_geotiff_is_refused(tmp_path):
    stored = (scene_cube() + 1j * scene_cube(seed=1)).astype(np.complex64)
    p = write_tif(tmp_path / "cx.tif", stored)
    with pytest.raises(InputError, match="cx.tif: raster has complex type"):
        read_scene(p)


def test_a_tif_cut_short_is_damaged_not_read_without_its_tags(tmp_path):
    # GDAL skips the unreadable metadata tag with a warning; the wavelengths would vanish silently

    write_tif(tmp_path / "f.tif", scene_cube(10, 13, 6),
              band_tags=[{"wavelength": str(w), "wavelength_units": "nm"} for w in (450, 550, 650, 1400, 1900, 2200)])
    data = (tmp_path / "f.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: int(len(data) * 0.9)])
    assert read_scene(tmp_path / "f.tif").wavelengths is not None
    with pytest.raises(InputError, match="cut.tif: cannot read the raster's tags .*damaged"):
        read_scene(tmp_path / "cut.tif")


@pytest.mark.parametrize("wl, units, fwhm", [
    ("450", None, "10"),  # nm, no unit declared: a width of 10 is 10 nm, not 10 um
    ("0.45", None, "0.01"),  # um, no unit declared: 0.01 um
    ("450", "nm", "10"),
    ("0.45", "micrometers", "0.01"),
])
def test_fwhm_without_unit_is_in_the_wavelengths_unit(tmp_path, wl, units, fwhm):
    # a width alone cannot tell nm from um (10 nm reads as um by magnitude); the band centres can
    tags = [{"wavelength": f"{float(wl) * (b + 1):g}", "fwhm": fwhm, **({"wavelength_units": units} if units else {})}
            for b in range(5)]
    s = read_scene(write_tif(tmp_path / "f.tif", scene_cube(), band_tags=tags))
    np.testing.assert_allclose(s.wavelengths, 450.0 * np.arange(1, 6))
    np.testing.assert_allclose(s.fwhm, [10.0] * 5)


def test_dataset_level_fwhm_without_unit_is_in_the_wavelengths_unit(tmp_path):
    tags = {"wavelength": "{450, 550, 650, 750, 850}", "fwhm": "{9, 10, 11, 12, 13}"}
    s = read_scene(write_tif(tmp_path / "f.tif", scene_cube(), dataset_tags=tags))
    np.testing.assert_allclose(s.fwhm, [9, 10, 11, 12, 13])


@pytest.mark.parametrize("bad", ["0", "-10", "nan"])
def test_bad_fwhm_is_dropped_with_a_warning(tmp_path, bad):
    # per-band tags as GDAL/ENVI-style writers put them; the cube reads the same without widths
    stored = scene_cube()
    tags = [{"wavelength": f"{w:g}", "wavelength_units": "nm", "fwhm": bad if b == 2 else "10"}
            for b, w in enumerate(WL_NM)]
    p = write_tif(tmp_path / "s.tif", stored, band_tags=tags)
    with pytest.warns(UserWarning, match=r"s.tif: fwhm values hold .*expected finite positive widths"):
        s = read_scene(p)
    assert s.fwhm is None
    np.testing.assert_array_equal(s.load(), stored)


def test_bad_dataset_level_fwhm_is_dropped_with_a_warning(tmp_path):
    tags = {"wavelength": "{450, 550, 650, 750, 850}", "fwhm": "{9, 10, -11, 12, 13}"}
    p = write_tif(tmp_path / "s.tif", scene_cube(), dataset_tags=tags)
    with pytest.warns(UserWarning, match=r"s.tif: fwhm values hold -11 \(entry 3\)"):
        s = read_scene(p)
    assert s.fwhm is None


def test_stepped_and_reversed_windows_read_as_numpy_slices_them(tmp_path):
    # a GeoTIFF read ignored the step (slice(0, 7, 2) gave 7 rows, not 4) and every source
    # answered a reversed slice with an empty block; a loaded scene answered both right
    cube = scene_cube(7, 11, 5)
    write_scene(Scene(cube), tmp_path / "s.tif")
    for scene in (read_scene(tmp_path / "s.tif"), Scene(RecordingSource(cube))):
        for rows, cols in ((slice(0, 7, 2), slice(1, 11, 3)), (slice(None, None, -1), slice(-4, None)),
                           (slice(5, 0, -2), slice(None, None, -3)), (slice(3, 3), slice(None))):
            np.testing.assert_array_equal(scene.read(rows, cols), cube[rows, cols])
        with pytest.raises(InputError, match=r"^rows: 3; expected a slice, e.g. slice\(3, 3 \+ 1\) for one"):
            scene.read(3, slice(None))


def test_loaded_cube_is_c_ordered_so_valid_pixels_is_a_view(tmp_path):
    # rasterio reads band-first; kept in that order the loaded cube was not C-contiguous and
    # valid_pixels() copied all of it (+800 MB for a 1000x1000x200 scene)
    cube = scene_cube(seed=3)
    write_scene(Scene(cube), tmp_path / "c.tif")
    scene = read_scene(tmp_path / "c.tif")
    loaded = scene.load()
    assert loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, cube)
    assert np.shares_memory(scene.valid_pixels(), loaded)


@pytest.mark.parametrize("where", ["internal", "sidecar"])
def test_a_mask_stored_with_the_raster_marks_invalid_pixels(tmp_path, where):
    # GDAL writes masks into the TIFF (or a .msk beside it; QGIS exports, gdal_translate -mask):
    # the pixels it excludes hold whatever the writer left, here a plausible spectrum, and were
    # read as valid
    rows, cols, bands = 12, 15, 6
    stored = np.random.default_rng(0).uniform(0.1, 0.5, (rows, cols, bands)).astype(np.float32)
    stored[:3, :4] = 0.3  # under the mask: not nodata, not NaN, not all-zero
    valid = np.ones((rows, cols), bool)
    valid[:3, :4] = False
    path = tmp_path / "masked.tif"
    tags = [{"wavelength": str(500 + 100 * b), "wavelength_units": "nm"} for b in range(bands)]
    write_tif(path, stored, band_tags=tags)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=where == "internal"), rasterio.open(path, "r+") as ds:
        ds.write_mask(np.where(valid, 255, 0).astype(np.uint8))
    assert os.path.exists(str(path) + ".msk") == (where == "sidecar")
    scene = read_scene(path)
    np.testing.assert_array_equal(scene.mask, valid)
    np.testing.assert_allclose(scene.valid_pixels(), stored[valid], rtol=1e-6)


def test_a_raster_placed_by_ground_control_points_gives_outputs_placed_by_them(tmp_path, run_cli):
    # an L1 product with GCPs and no geotransform: every map came out unplaced in QGIS
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS

    rows, cols, bands = 20, 24, 8
    stored = np.random.default_rng(1).uniform(0.1, 0.6, (rows, cols, bands)).astype(np.float32)
    gcps = [GroundControlPoint(row=r, col=c, x=500000.0 + 30 * c + 3 * r, y=5800000.0 - 30 * r + 2 * c, z=0.0)
            for r, c in ((0, 0), (0, cols), (rows, 0), (rows, cols), (10, 12))]
    path = tmp_path / "l1.tif"
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": bands, "dtype": "float32"}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.ascontiguousarray(stored.transpose(2, 0, 1)))
        ds.gcps = (gcps, CRS.from_epsg(32633))
        for b in range(bands):
            ds.update_tags(b + 1, wavelength=str(500 + 50 * b), wavelength_units="nm")
    scene = read_scene(path)
    assert scene.transform is None and len(scene.metadata["gcps"]) == 5
    assert CRS.from_wkt(scene.crs).to_epsg() == 32633

    def placed(file):
        with rasterio.open(file) as ds:
            points, crs = ds.gcps
            return crs.to_epsg(), [(g.row, g.col, g.x, g.y) for g in points]

    want = placed(path)
    code, _, err = run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", tmp_path / "run", "--no-figures")
    assert code == 0, err
    assert placed(tmp_path / "run" / "abundances.tif") == want
    code, _, err = run_cli("convert", path, tmp_path / "copy.tif")
    assert code == 0, err
    assert placed(tmp_path / "copy.tif") == want
