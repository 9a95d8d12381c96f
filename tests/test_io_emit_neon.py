"""EMIT NetCDF and NEON AOP HDF5 readers on fakes with the real layouts (tests/hdf5_fixtures.py);
detection of HDF5/NetCDF files by content."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hdf5_fixtures import EMIT_FILL, EMIT_RADIANCE_UNITS, make_emit_nc, make_neon_h5
from unmixgen.errors import InputError
from unmixgen.io import detect_format, read_scene


@pytest.fixture
def emit(tmp_path):
    return make_emit_nc(tmp_path / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc")


def test_emit_l2a_raw_geometry(emit):
    assert detect_format(emit["path"]) == "emit"
    s = read_scene(emit["path"])
    assert s.metadata["format"] == "emit" and s.units == "reflectance" and s.transform is None
    assert s.crs == "EPSG:4326" and "gcps" in s.metadata  # no map grid: control points from location/lat, lon
    np.testing.assert_allclose(s.wavelengths, emit["wavelengths"], rtol=1e-6)
    np.testing.assert_allclose(s.fwhm, 8.5)
    np.testing.assert_array_equal(s.good_bands, emit["good"])
    cube = emit["cube"]
    assert np.isnan(s.load()[0, 0]).all()  # the fill value is never data
    np.testing.assert_array_equal(s.load()[1:], cube[1:])
    np.testing.assert_array_equal(s.read(slice(2, 5), slice(1, 4)), cube[2:5, 1:4])
    expected = np.ones((6, 5), bool)
    expected[0, 0] = False
    np.testing.assert_array_equal(s.mask, expected)


def test_emit_orthorectified_through_the_glt(emit):
    s = read_scene(emit["path"], ortho=True)
    gx, gy, cube = emit["glt_x"], emit["glt_y"], emit["cube"]
    assert s.shape == (*gx.shape, 7)
    from rasterio.crs import CRS

    assert CRS.from_wkt(s.crs).to_epsg() == 4326
    assert s.transform == pytest.approx((0.000542232520256, 0, -116.2, 0, -0.000542232520256, 36.5))
    full = s.load()
    for y in range(gx.shape[0]):
        for x in range(gx.shape[1]):
            if gx[y, x] == 0:
                assert np.isnan(full[y, x]).all() and not s.mask[y, x]
            elif (gy[y, x] - 1, gx[y, x] - 1) != (0, 0):
                np.testing.assert_array_equal(full[y, x], cube[gy[y, x] - 1, gx[y, x] - 1])
    np.testing.assert_array_equal(s.read(slice(2, 5), slice(1, 6)), full[2:5, 1:6])


def test_emit_l1b_radiance(tmp_path):
    e = make_emit_nc(tmp_path / "EMIT_L1B_RAD.nc", level="L1B", fill_pixels=())
    s = read_scene(e["path"])
    assert s.units == EMIT_RADIANCE_UNITS and s.good_bands.all() and s.mask.all()  # the attribute, not "radiance"
    np.testing.assert_array_equal(s.load(), e["cube"])


def test_emit_glt_out_of_range(emit):
    with h5py.File(emit["path"], "r+") as f:
        f["location/glt_x"][3, 3] = 99
    with pytest.raises(InputError, match="GLT points outside the 6 x 5 raw image"):
        read_scene(emit["path"], ortho=True)


def test_neon_reflectance(tmp_path):
    n = make_neon_h5(tmp_path / "NEON_D02_SERC_DP3_368000_4306000_reflectance.h5")
    assert detect_format(n["path"]) == "neon"
    s = read_scene(n["path"])
    assert s.metadata["format"] == "neon" and s.metadata["site"] == "SERC"
    np.testing.assert_allclose(s.wavelengths, n["wavelengths"])
    np.testing.assert_array_equal(s.good_bands, [True, True, True, False, False, False, True, True])
    stored = n["stored"]
    valid = stored[..., 0] != -9999
    np.testing.assert_allclose(s.load()[valid], stored[valid] / np.float32(10000), rtol=1e-6)
    assert np.isnan(s.load()[0, :2]).all()  # -9999 is not -0.9999 reflectance
    np.testing.assert_array_equal(s.mask, valid)
    assert s.crs == "EPSG:32618"
    assert s.transform == pytest.approx((1.0, 0, 368000.0, 0, -1.0, 4307000.0))
    np.testing.assert_allclose(s.read(slice(3, 7), slice(2, 5)), stored[3:7, 2:5] / np.float32(10000), rtol=1e-6)


def test_neon_scale_factor_zero_and_text(tmp_path):
    n = make_neon_h5(tmp_path / "n.h5")
    with h5py.File(n["path"], "r+") as f:
        f["SERC/Reflectance/Reflectance_Data"].attrs["Scale_Factor"] = 0.0
    with pytest.raises(InputError, match="n.h5: .*'Scale_Factor' = 0"):
        read_scene(n["path"])
    with h5py.File(n["path"], "r+") as f:
        f["SERC/Reflectance/Reflectance_Data"].attrs["Scale_Factor"] = "ten thousand"
    with pytest.raises(InputError, match="'Scale_Factor' = 'ten thousand' is not a number"):
        read_scene(n["path"])


def test_other_hdf5_is_not_supported_with_the_list(tmp_path, run_cli):
    p = tmp_path / "tanager.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("HDFEOS_like/Data/surface_reflectance", data=np.zeros((2, 3, 4)))
    with pytest.raises(InputError, match="tanager.h5: .*format not supported.*PRISMA.*EMIT.*NEON"):
        read_scene(p)
    code, _, err = run_cli("info", p)
    assert code == 2 and "not supported" in err and err.strip().count("\n") == 0


def test_emit_cube_behind_external_link_is_refused(tmp_path):
    e = make_emit_nc(tmp_path / "e.nc")
    with h5py.File(e["path"], "r+") as f:
        del f["reflectance"]
        f["reflectance"] = h5py.ExternalLink("elsewhere.nc", "/reflectance")
    with pytest.raises(InputError, match="reflectance is an external link; refused"):
        read_scene(e["path"])


def test_a_good_band_of_nothing_but_fill_is_named_when_it_leaves_no_valid_pixel(tmp_path):
    # the pixels are fine but for one band: the refusal names it instead of blaming the pixels
    e = make_emit_nc(tmp_path / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc")
    with h5py.File(e["path"], "r+") as f:
        f[e["variable"]][:, :, 1] = EMIT_FILL  # 450 nm, flagged good
    scene = read_scene(e["path"])
    with pytest.raises(InputError, match=r"no valid pixel: band 2 \(450 nm\) is NaN/nodata in every pixel"):
        scene.require_valid()


def test_a_truncated_emit_file_is_damaged_not_unknown(tmp_path):
    e = make_emit_nc(tmp_path / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc")
    data = e["path"].read_bytes()
    e["path"].write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot open as HDF5/NetCDF .*damaged"):
        detect_format(e["path"])


@pytest.mark.parametrize("bad", [np.nan, 0.0, -8.5, np.inf])
def test_emit_bad_fwhm_is_dropped_with_a_warning(tmp_path, bad):
    # the cube is fine: only the widths are unusable, so they are dropped (named), not kept
    e = make_emit_nc(tmp_path / "e.nc")
    with h5py.File(e["path"], "r+") as f:
        f["sensor_band_parameters/fwhm"][2] = bad
    with pytest.warns(UserWarning, match=r"e.nc: fwhm values hold .*expected finite positive widths"):
        s = read_scene(e["path"])
    assert s.fwhm is None
    np.testing.assert_array_equal(s.load()[1:], e["cube"][1:])


@pytest.mark.parametrize("gt", [
    [-116.2, 0.0, 0.0, 36.5, 0.0, -0.00054],  # zero pixel width
    [-116.2, 0.00054, 0.0, 36.5, 0.0, 0.0],  # zero pixel height
    [-116.2, 0.00054, 0.00054, 36.5, 0.00054, 0.00054],  # both axes along one line
])
def test_emit_geotransform_with_no_area_is_refused(emit, gt):
    with h5py.File(emit["path"], "r+") as f:
        f.attrs["geotransform"] = np.array(gt)
    with pytest.raises(InputError, match=r"\.nc: global attribute 'geotransform' .* zero .*expected"):
        read_scene(emit["path"], ortho=True)
    assert read_scene(emit["path"]).transform is None  # raw geometry does not use it


def test_emit_rotated_geotransform_is_kept(emit):
    gt = [-116.2, 0.0, 0.0005, 36.5, -0.0005, 0.0]  # 90 degrees: zero diagonal, non-zero area
    with h5py.File(emit["path"], "r+") as f:
        f.attrs["geotransform"] = np.array(gt)
    assert read_scene(emit["path"], ortho=True).transform == pytest.approx((0, 0.0005, -116.2, -0.0005, 0, 36.5))


@pytest.mark.parametrize("bad, shown", [(-10000.0, "-10000"), (np.inf, "inf"), (np.nan, "nan")])
def test_neon_scale_factor_negative_or_not_finite(tmp_path, bad, shown):
    # a negative factor would turn every reflectance negative; inf would make it all 0
    n = make_neon_h5(tmp_path / "n.h5")
    with h5py.File(n["path"], "r+") as f:
        f["SERC/Reflectance/Reflectance_Data"].attrs["Scale_Factor"] = bad
    with pytest.raises(InputError, match=rf"n.h5: .*'Scale_Factor' = {shown}; expected a (positive|finite)"):
        read_scene(n["path"])


@pytest.mark.parametrize("bad", [np.nan, 0.0, -5.0, np.inf])
def test_neon_bad_fwhm_is_dropped_with_a_warning(tmp_path, bad):
    n = make_neon_h5(tmp_path / "NEON_D02_SERC_DP3_368000_4307000_reflectance.h5")
    with h5py.File(n["path"], "r+") as f:
        f["SERC/Reflectance/Metadata/Spectral_Data/FWHM"][2] = bad
    with pytest.warns(UserWarning, match=r"reflectance.h5: FWHM values hold .*expected finite positive widths"):
        s = read_scene(n["path"])
    assert s.fwhm is None
    np.testing.assert_allclose(s.load()[1:], n["stored"][1:] / 10000.0, rtol=1e-6)
