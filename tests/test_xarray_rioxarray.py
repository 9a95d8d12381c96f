"""DataArrays as rioxarray and xarray really make them, from files written in the test.

`test_xarray_scene` builds DataArrays by hand; these open real files with
``rioxarray.open_rasterio`` (GDAL underneath) and ``xarray.open_dataset``, so the
attributes are the ones a notebook user gets: per-band ``scales``/``offsets`` tuples when a
GeoTIFF's bands have different ones, an ENVI header's ``wavelength``/``fwhm`` as coordinates
with ``wavelength_units`` left an attribute, ``bbl`` as text, GDAL's identity GeoTransform for a
file without one, and a grid mapping left a variable of the Dataset without
``decode_coords="all"``. Each scene is compared with what `read_scene` makes of the same file.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
rioxarray = pytest.importorskip("rioxarray")
rasterio = pytest.importorskip("rasterio")

from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from unmixgen.errors import InputError, ParameterError  # noqa: E402
from unmixgen.io import read_scene  # noqa: E402
from unmixgen.scene import as_scene  # noqa: E402

TRANSFORM = from_origin(500000.0, 4200000.0, 30.0, 30.0)


def _open(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rioxarray's "Scales differ across bands", GDAL's not georeferenced
        return rioxarray.open_rasterio(path, **kw)


def _stored(bands=3, rows=4, cols=5, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(100, 9000, (bands, rows, cols)).astype(np.int16)


def _geotiff(path, stored, scales, offsets, nodata=-9999, descriptions=None):
    bands, rows, cols = stored.shape
    with rasterio.open(path, "w", driver="GTiff", height=rows, width=cols, count=bands, dtype=stored.dtype,
                       crs="EPSG:32633", transform=TRANSFORM, nodata=nodata) as ds:
        ds.write(stored)
        ds.scales, ds.offsets = tuple(scales), tuple(offsets)
        if descriptions is not None:
            ds.descriptions = tuple(descriptions)
    return path


# -- per-band scales and offsets -------------------------------------------------------


def test_per_band_scales_and_offsets_of_a_geotiff_through_rioxarray_are_applied(tmp_path):
    # bands with different scales: rioxarray 0.19 leaves no scale_factor/add_offset but 'scales' and
    # 'offsets' tuples (with mask_and_scale=False), which were not read: the scene was the stored counts
    stored = _stored()
    stored[:, 1, 2] = -9999
    scales, offsets = (1e-4, 2e-4, 5e-5), (0.0, -0.1, 0.05)
    path = _geotiff(tmp_path / "s.tif", stored, scales, offsets)
    raw = _open(path)
    assert "scales" in raw.attrs and "scale_factor" not in raw.attrs  # what the fixture stands for
    s = as_scene(raw)
    want = stored.astype(np.float32) * np.float32(scales)[:, None, None] + np.float32(offsets)[:, None, None]
    got = s.load()
    assert not s.mask[1, 2] and s.mask.sum() == 4 * 5 - 1  # the fill judged on the stored values
    np.testing.assert_allclose(got[s.mask], np.moveaxis(want, 0, -1)[s.mask], rtol=1e-6)
    decoded = _open(path, mask_and_scale=True)  # rioxarray's own decoding, and the package's reader
    np.testing.assert_allclose(got[s.mask], np.moveaxis(decoded.values, 0, -1)[s.mask], rtol=1e-6)
    np.testing.assert_allclose(got[s.mask], read_scene(path).load()[s.mask], rtol=1e-6)


def test_per_band_scales_follow_bands_sorted_by_wavelength(tmp_path):
    # descriptions give the wavelengths, stored long to short: the bands are presented sorted,
    # and each band's scale must go with it
    stored = _stored(seed=1)
    scales, offsets = (1.0, 10.0, 100.0), (0.0, 0.0, 0.5)
    path = _geotiff(tmp_path / "s.tif", stored, scales, offsets, descriptions=("650 nm", "550 nm", "450 nm"))
    s = as_scene(_open(path))
    np.testing.assert_array_equal(s.wavelengths, [450.0, 550.0, 650.0])
    want = np.moveaxis(stored.astype(np.float32) * np.float32(scales)[:, None, None]
                       + np.float32(offsets)[:, None, None], 0, -1)[..., ::-1]
    np.testing.assert_allclose(s.load(), want, rtol=1e-6)


def test_scales_of_a_band_selection_are_refused_not_misapplied(tmp_path):
    # da.isel keeps the file's attributes: three scales for the two bands left, which two is unknown
    path = _geotiff(tmp_path / "s.tif", _stored(), (1e-4, 2e-4, 5e-5), (0.0, 0.0, 0.0))
    picked = _open(path).isel(band=[0, 2])
    with pytest.raises(InputError, match=r"attribute 'scales' holds 3 values for 2 bands.*mask_and_scale=True"):
        as_scene(picked)
    decoded = _open(path, mask_and_scale=True).isel(band=[0, 2])  # decoded by rioxarray: no attributes to apply
    np.testing.assert_allclose(as_scene(decoded).load()[0, 0], decoded.values[:, 0, 0], rtol=1e-6)


def test_scale_factor_and_scales_that_disagree_are_refused(tmp_path):
    path = _geotiff(tmp_path / "s.tif", _stored(), (1e-4, 2e-4, 5e-5), (0.0, 0.0, 0.0))
    da = _open(path)
    da.attrs["scale_factor"] = 1e-4
    with pytest.raises(InputError, match="scale_factor .* and scales .* disagree"):
        as_scene(da)


def test_a_zero_per_band_scale_is_refused(tmp_path):
    path = _geotiff(tmp_path / "s.tif", _stored(), (1e-4, 0.0, 5e-5), (0.0, 0.0, 0.0))
    with pytest.raises(InputError, match=r"scales \(band 2\) 0.0; expected a finite non-zero number"):
        as_scene(_open(path))


# -- per-band wavelength tags of a GeoTIFF -----------------------------------------------------


def _tagged_geotiff(path, wavelengths, fwhm=None, descriptions=None):
    """A GeoTIFF with GDAL's per-band 'wavelength' (and 'fwhm') tags, as gdal_translate or this package writes them."""
    stored = _stored(len(wavelengths), seed=6)
    _geotiff(path, stored, (1.0,) * len(wavelengths), (0.0,) * len(wavelengths), descriptions=descriptions)
    with rasterio.open(path, "r+") as ds:
        for b, w in enumerate(wavelengths):
            ds.update_tags(b + 1, wavelength=repr(w), wavelength_units="nm",
                           **({} if fwhm is None else {"fwhm": repr(fwhm[b])}))
    return path


def test_per_band_wavelength_tags_through_rioxarray_are_said_to_be_lost_not_one_applied_to_every_band(tmp_path):
    # rioxarray's attributes are {**tags(), **tags(1)}: the 'wavelength' attribute is band 1's 450 and the
    # other bands' tags are not in the DataArray; the scene had no wavelengths without a word
    path = _tagged_geotiff(tmp_path / "t.tif", [450.0, 550.0, 650.0])
    da = _open(path)
    assert da.attrs["wavelength"] == 450.0 and "long_name" not in da.attrs  # what the fixture stands for
    with pytest.warns(UserWarning, match=r"^scene: attribute 'wavelength' is one number \(450\) for 3 bands "
                                         r"\(rioxarray keeps band 1's tag.*so the scene has no wavelengths; expected "
                                         rf"unmixgen.read_scene\('{re.escape(str(path))}'\)"):
        s = as_scene(da)
    assert s.wavelengths is None
    np.testing.assert_array_equal(read_scene(path).wavelengths, [450.0, 550.0, 650.0])  # the fix it names


def test_a_geotiff_of_the_writer_with_band_names_through_rioxarray_says_its_wavelengths_and_fwhm_are_lost(tmp_path):
    # the writer keeps a scene's band names as descriptions: with names that hold no wavelength, the
    # DataArray has band 1's wavelength and fwhm only
    from unmixgen.io import geotiff
    from unmixgen.scene import Scene

    cube = np.random.default_rng(7).uniform(0.05, 0.9, (4, 5, 3)).astype(np.float32)
    geotiff.write(Scene(cube, wavelengths=[450.0, 550.0, 650.0], fwhm=[10.0, 11.0, 12.0], crs="EPSG:32633",
                        transform=tuple(TRANSFORM)[:6], metadata={"band_names": ["blue", "green", "red"]}),
                  tmp_path / "w.tif")
    da = _open(tmp_path / "w.tif")
    assert da.attrs["long_name"] == ("blue", "green", "red")
    with pytest.warns(UserWarning) as got:
        s = as_scene(da)
    said = " | ".join(str(w.message) for w in got)
    assert "'wavelength' is one number (450)" in said and "no wavelengths" in said
    assert "'fwhm' is one number (10)" in said and "no FWHM" in said
    assert s.wavelengths is None and s.fwhm is None
    native = read_scene(tmp_path / "w.tif")
    np.testing.assert_array_equal(native.fwhm, [10.0, 11.0, 12.0])


def test_per_band_tags_with_wavelength_descriptions_give_the_wavelengths_and_say_the_fwhm_is_lost(tmp_path):
    path = _tagged_geotiff(tmp_path / "t.tif", [450.0, 550.0, 650.0], fwhm=[10.0, 11.0, 12.0],
                           descriptions=("450 nm", "550 nm", "650 nm"))
    with pytest.warns(UserWarning, match=r"attribute 'fwhm' is one number \(10\) for 3 bands.*no FWHM; expected "
                                         r"unmixgen.read_scene.*or da.assign_coords\(fwhm=\('band', values\)\)"):
        s = as_scene(_open(path))
    np.testing.assert_array_equal(s.wavelengths, [450.0, 550.0, 650.0])
    assert s.fwhm is None


# -- ENVI through GDAL: wavelengths, FWHM, their unit, bad bands, scaling -------------------


def _envi(folder, name, *, units, wavelengths, fwhm=None, extra="", stored=None):
    stored = _stored(len(wavelengths), seed=2) if stored is None else stored
    bands, rows, cols = stored.shape
    stored.astype("<i2").tofile(folder / f"{name}.img")
    lines = ["ENVI", f"samples = {cols}", f"lines = {rows}", f"bands = {bands}", "header offset = 0",
             "file type = ENVI Standard", "data type = 2", "interleave = bsq", "byte order = 0",
             f"wavelength units = {units}", "wavelength = {" + ", ".join(map(str, wavelengths)) + "}"]
    if fwhm is not None:
        lines.append("fwhm = {" + ", ".join(map(str, fwhm)) + "}")
    (folder / f"{name}.hdr").write_text("\n".join(lines) + "\n" + extra)
    return folder / f"{name}.img", folder / f"{name}.hdr"


@pytest.mark.parametrize(("units", "wavelengths", "fwhm"), [
    ("Micrometers", [0.45, 0.55, 0.65], [0.01, 0.011, 0.012]),
    ("Nanometers", [450, 550, 650], [10, 11, 12]),  # widths of 10 nm were taken for 10 um: 10000 nm
    ("Millimeters", [0.00045, 0.00055, 0.00065], [0.00001, 0.00001, 0.00001]),
    ("Wavenumber", [22222.2, 18181.8, 15384.6], [493.8, 330.6, 236.7]),  # were nm: 15385-22222 "nm"
    ("GHz", [666205.5, 545077.2, 461219.2], [14804.6, 9910.5, 7095.7]),
])
def test_envi_wavelengths_and_fwhm_through_rioxarray_take_the_wavelength_units(tmp_path, units, wavelengths, fwhm):
    # GDAL puts 'wavelength units' in the attributes and rioxarray makes 'wavelength'/'fwhm' coordinates
    # without units: the unit was guessed from the magnitude, so nm widths became um, wavenumbers nm
    img, hdr = _envi(tmp_path, "s", units=units, wavelengths=wavelengths, fwhm=fwhm)
    da = _open(img)
    assert da.attrs["wavelength_units"] == units and "units" not in da.coords["wavelength"].attrs
    s, native = as_scene(da), read_scene(hdr)
    np.testing.assert_allclose(s.wavelengths, native.wavelengths, rtol=1e-9)
    np.testing.assert_allclose(s.fwhm, native.fwhm, rtol=1e-9)
    assert 440 < s.wavelengths[0] < 460 and 5 < s.fwhm[0] < 15
    np.testing.assert_array_equal(s.load(), native.load())


def test_envi_wavelengths_in_a_unit_they_are_not_in_are_refused(tmp_path):
    img, _ = _envi(tmp_path, "s", units="Micrometers", wavelengths=[450, 550, 650])
    with pytest.raises(InputError, match=r"declared in 'Micrometers' .* look like nanometres"):
        as_scene(_open(img))


def test_envi_index_wavelengths_are_band_numbers_not_micrometres(tmp_path):
    # 'wavelength units = Index': 1, 2, 3 were read as 1000, 2000, 3000 nm
    img, hdr = _envi(tmp_path, "s", units="Index", wavelengths=[1, 2, 3], fwhm=[1, 1, 1])
    with pytest.warns(UserWarning, match="band numbers"):
        s = as_scene(_open(img))
    assert s.wavelengths is None and s.fwhm is None
    with pytest.warns(UserWarning, match="band numbers"):
        assert read_scene(hdr).wavelengths is None


def test_envi_bad_bands_kept_as_text_by_rioxarray_are_read(tmp_path):
    # rioxarray makes coordinates only of 'wavelength' and 'fwhm': 'bbl' stays text, and every band was good
    img, hdr = _envi(tmp_path, "s", units="Nanometers", wavelengths=[450, 550, 650], extra="bbl = {1, 0, 1}\n")
    da = _open(img)
    assert da.attrs["bbl"] == "1, 0, 1"
    s, native = as_scene(da), read_scene(hdr)
    np.testing.assert_array_equal(s.good_bands, [True, False, True])
    np.testing.assert_array_equal(s.good_bands, native.good_bands)



def test_envi_bad_bands_of_a_band_selection_say_the_selection_kept_the_files_list_and_the_way_out(tmp_path):
    # da.isel follows the 'wavelength' coordinate but keeps the 'bbl' text whole: "3 good-band flags for 2
    # bands" said neither why nor what to do, where the wavelength and fwhm lists say both
    img, _ = _envi(tmp_path, "s", units="Nanometers", wavelengths=[450, 550, 650], extra="bbl = {1, 0, 1}\n")
    da = _open(img)
    with pytest.raises(InputError, match=r"attribute 'bbl' holds 3 good-band flags for 2 bands \(selecting bands "
                                         r"keeps the file's list of every band\).*da\.assign_coords\(bbl=") as err:
        as_scene(da.isel(band=[1, 2]))
    # the way out it names, as written there, keeps each selected band's own flag
    fix = re.search(r"da\.assign_coords\((.*)\)\.isel", str(err.value)).group(1)
    kept = eval(f"da.assign_coords({fix})", {"da": da})  # noqa: S307 - the message's own expression
    np.testing.assert_array_equal(as_scene(kept.isel(band=[1, 2])).good_bands, [False, True])


# -- ENVI scaling ------------------------------------------------------------------------------


def test_envi_reflectance_scale_factor_through_rioxarray_is_the_readers(tmp_path):
    # rioxarray keeps 'reflectance scale factor' as a text attribute: the values were 10000 times
    # reflectance, in unknown units, where read_scene gives reflectance
    img, hdr = _envi(tmp_path, "s", units="Nanometers", wavelengths=[450, 550, 650],
                     extra="reflectance scale factor = 10000\n")
    da = _open(img)
    assert da.attrs["reflectance_scale_factor"] == "10000"
    s, native = as_scene(da), read_scene(hdr)
    np.testing.assert_allclose(s.load(), native.load(), rtol=1e-6)
    np.testing.assert_allclose(s.load(), np.moveaxis(da.values, 0, -1) / np.float32(10000), rtol=1e-6)
    assert s.units == native.units == "reflectance"


@pytest.mark.parametrize(("extra", "units"), [
    ("data units = W/(m2 sr um)\n", "W/(m2 sr um)"),
    ("data units = uW/(cm^2 sr nm)\nreflectance scale factor = 1\n", "uW/(cm^2 sr nm)"),  # data units first
    ("data units = Reflectance\n", "Reflectance"),
    ("data units = DN\nreflectance scale factor = 10000\n", "reflectance"),  # names neither: the factor's
])
def test_envi_data_units_through_rioxarray_are_the_scenes_units_as_the_reader_reads_them(tmp_path, extra, units):
    # GDAL keeps 'data units' in the ENVI metadata domain and rioxarray makes it the attribute 'data_units':
    # it was not read, so a radiance scene in uW/(cm^2 sr nm) had unknown units where read_scene labels it
    img, hdr = _envi(tmp_path, "s", units="Nanometers", wavelengths=[450, 550, 650], extra=extra)
    da = _open(img)
    assert "data_units" in da.attrs and "units" not in da.attrs  # what the fixture stands for
    s, native = as_scene(da), read_scene(hdr)
    assert s.units == native.units == units


def test_envi_gains_and_offsets_through_rioxarray_are_the_readers(tmp_path):
    img, hdr = _envi(tmp_path, "s", units="Nanometers", wavelengths=[450, 550, 650],
                     extra="data gain values = {0.1, 0.2, 0.3}\ndata offset values = {1, 2, 3}\n")
    s = as_scene(_open(img))
    np.testing.assert_allclose(s.load(), read_scene(hdr).load(), rtol=1e-6)



@pytest.mark.parametrize("extra", [
    "reflectance scale factor = 10000\ndata gain values = {0.0001, 0.0001, 0.0001}\n",  # ENVI/GDAL write both
    "reflectance scale factor = 10000\n",  # the factor alone: GDAL gives no band scale, nothing decoded
])
@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_envi_reflectance_scale_factor_is_not_applied_on_top_of_gains_rioxarray_decoded(tmp_path, extra,
                                                                                          mask_and_scale):
    # mask_and_scale=True: rioxarray applied 'data gain values' (GDAL's band scale) and moved scale_factor to
    # the encoding, while 'reflectance_scale_factor' stayed an attribute and was applied again: 10000 times
    # too small. read_scene applies the gains and not the factor
    img, hdr = _envi(tmp_path, "s", units="Nanometers", wavelengths=[450, 550, 650], extra=extra)
    da = _open(img, mask_and_scale=mask_and_scale)
    assert "reflectance_scale_factor" in da.attrs  # what the fixture stands for
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gains = 1 / factor: nothing to warn about
        s = as_scene(da)
    native = read_scene(hdr)
    np.testing.assert_allclose(s.load(), native.load(), rtol=1e-6)
    assert 0.005 < float(s.load().mean()) < 1.0 and s.units == native.units == "reflectance"



@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_envi_offsets_with_a_reflectance_scale_factor_through_rioxarray_are_read_as_the_reader_reads_them(
        tmp_path, mask_and_scale):
    # 'data offset values' without gains: read_scene applies the offsets and not the factor (with a warning),
    # the DataArray divided by the factor as well (10000 times smaller); and the reader's warning said the
    # header had 'data gain values', which it has not
    img, hdr = _envi(tmp_path, "s", units="Nanometers", wavelengths=[450, 550, 650],
                     extra="reflectance scale factor = 10000\ndata offset values = {1, 2, 3}\n")
    with pytest.warns(UserWarning, match=r"offsets are applied, the reflectance scale factor is not"):
        s = as_scene(_open(img, mask_and_scale=mask_and_scale))
        loaded = s.load()
    with pytest.warns(UserWarning, match=r"header has both 'data offset values' and 'reflectance scale factor' = "
                                         r"10000; the offsets are applied") as seen:
        native = read_scene(hdr).load()
    assert not any("gain" in str(w.message) for w in seen)
    np.testing.assert_allclose(loaded, native, rtol=1e-6)
    np.testing.assert_allclose(native, np.moveaxis(_stored(3, seed=2), 0, -1) + np.float32([1, 2, 3]), rtol=1e-6)


# -- georeferencing ------------------------------------------------------------------------


def _netcdf(path):
    """A scene as rioxarray's DataArray (CRS and transform on 'spatial_ref') saved by xarray."""
    cube = np.random.default_rng(3).uniform(0.05, 0.9, (3, 4, 5)).astype(np.float32)
    da = xr.DataArray(cube, dims=("band", "y", "x"), name="reflectance",
                      coords={"band": [1, 2, 3], "y": 4200000.0 - 30.0 * (np.arange(4) + 0.5),
                              "x": 500000.0 + 30.0 * (np.arange(5) + 0.5)})
    da = da.rio.write_crs("EPSG:32633").rio.write_transform(TRANSFORM)
    da.to_netcdf(path)
    return cube


def test_a_grid_mapping_left_a_dataset_variable_is_said_and_decode_coords_all_places_the_scene(tmp_path):
    # xr.open_dataset without decode_coords="all" keeps 'spatial_ref' a variable of the Dataset: its
    # DataArray names it in grid_mapping but does not hold it, and the scene had no CRS without a word
    _netcdf(tmp_path / "s.nc")
    with xr.open_dataset(tmp_path / "s.nc") as ds:
        assert "spatial_ref" in ds.data_vars and ds["reflectance"].attrs["grid_mapping"] == "spatial_ref"
        with pytest.warns(UserWarning, match=r"grid_mapping 'spatial_ref' is not one of its coordinates.*"
                                             r"decode_coords='all'"):
            s = as_scene(ds["reflectance"])
        assert s.crs is None and s.transform is None
    with xr.open_dataset(tmp_path / "s.nc", decode_coords="all") as ds:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            s = as_scene(ds["reflectance"])
        assert CRS.from_wkt(s.crs) == CRS.from_epsg(32633)
        assert s.transform == tuple(TRANSFORM)[:6]


def test_a_file_without_a_geotransform_gives_no_transform_through_rioxarray(tmp_path):
    # GDAL reports the identity (rioxarray writes it as GeoTransform '0.0 1.0 0.0 0.0 0.0 1.0'): it
    # placed the scene at the origin with 1-unit pixels where the reader places nothing
    stored = _stored()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(tmp_path / "u.tif", "w", driver="GTiff", height=4, width=5, count=3,
                           dtype=stored.dtype) as ds:
            ds.write(stored)
    da = _open(tmp_path / "u.tif")
    assert da.spatial_ref.attrs["GeoTransform"].split() == ["0.0", "1.0", "0.0", "0.0", "0.0", "1.0"]
    s = as_scene(da)
    assert s.transform is None and s.crs is None
    assert read_scene(tmp_path / "u.tif").transform is None


def test_a_grid_mapping_of_cf_parameters_only_is_said_to_give_no_crs(tmp_path):
    # a CF grid mapping without WKT (other tools write only grid_mapping_name and its parameters):
    # rasterio reads WKT, so the scene has no CRS, and that is said rather than left to be found later
    cube = np.random.default_rng(4).uniform(0.05, 0.9, (3, 4, 5)).astype(np.float32)
    da = xr.DataArray(cube, dims=("band", "y", "x"), name="reflectance",
                      coords={"band": [1, 2, 3], "y": 4200000.0 - 30.0 * (np.arange(4) + 0.5),
                              "x": 500000.0 + 30.0 * (np.arange(5) + 0.5)}).rio.write_crs("EPSG:32633")
    for key in ("crs_wkt", "spatial_ref"):
        del da.spatial_ref.attrs[key]
    da.to_netcdf(tmp_path / "cf.nc")
    with xr.open_dataset(tmp_path / "cf.nc", decode_coords="all") as ds:
        assert ds["reflectance"].spatial_ref.attrs["grid_mapping_name"] == "transverse_mercator"
        with pytest.warns(UserWarning, match="grid_mapping_name 'transverse_mercator' but no crs_wkt"):
            assert as_scene(ds["reflectance"]).crs is None


# -- band widths that are no widths ------------------------------------------------------------


@pytest.mark.parametrize(("fwhm", "shown"), [([10, 0, 12], "0 (entry 2)"), ([10, 11, -12], "-12 (entry 3)"),
                                             (["nan", 11, 12], "nan (entry 1)")])
def test_envi_zero_negative_or_nan_widths_through_rioxarray_are_dropped_as_the_reader_drops_them(tmp_path, fwhm,
                                                                                                  shown):
    # rioxarray makes a 'fwhm' coordinate of the header's list whatever it holds: a zero, negative or
    # NaN width went into the scene, where read_scene drops the list with a warning
    img, hdr = _envi(tmp_path, "s", units="Nanometers", wavelengths=[450, 550, 650], fwhm=fwhm)
    da = _open(img)
    assert "fwhm" in da.coords  # what the fixture stands for
    shown = re.escape(shown)
    rule = (rf"fwhm values.* hold {shown}; expected finite positive widths \(nm\), so the fwhm values.* are "
            "ignored")
    with pytest.warns(UserWarning, match=rf"^scene: fwhm values \(coordinate 'fwhm'\) hold {shown}") as got:
        s = as_scene(da)
    with pytest.warns(UserWarning, match=rf"^{hdr}: {rule}") as native:
        n = read_scene(hdr)
    assert s.fwhm is None and n.fwhm is None
    np.testing.assert_allclose(s.wavelengths, n.wavelengths)
    assert re.search(rule, str(got[0].message)) and re.search(rule, str(native[0].message))


def test_a_netcdf_fwhm_coordinate_with_a_nan_width_is_dropped_with_a_warning(tmp_path):
    # xarray writes and reads back whatever a 'fwhm' coordinate holds
    cube = np.random.default_rng(5).uniform(0.05, 0.9, (3, 4, 5)).astype(np.float32)
    da = xr.DataArray(cube, dims=("wavelength", "y", "x"), name="reflectance",
                      coords={"wavelength": ("wavelength", [450.0, 550.0, 650.0], {"units": "nm"}),
                              "fwhm": ("wavelength", [10.0, np.nan, 10.0], {"units": "nm"})})
    da.to_netcdf(tmp_path / "s.nc")
    with xr.open_dataset(tmp_path / "s.nc") as ds:
        assert np.isnan(ds["reflectance"].fwhm.values[1])
        with pytest.warns(UserWarning, match=r"fwhm values \(coordinate 'fwhm'\) hold nan \(entry 2\)"):
            s = as_scene(ds["reflectance"])
        assert s.fwhm is None
        np.testing.assert_array_equal(s.wavelengths, [450.0, 550.0, 650.0])


# -- a Dataset where a scene is expected ---------------------------------------------------------


def test_a_netcdf_opened_as_a_dataset_is_its_one_scene_variable_with_its_grid_mapping(tmp_path):
    # xr.open_dataset gives a Dataset: it was refused, though its one variable with a spectral dim is the
    # scene; without decode_coords="all" its grid mapping is another variable, and goes with it
    cube = _netcdf(tmp_path / "s.nc")
    with xr.open_dataset(tmp_path / "s.nc") as ds:
        assert list(ds.data_vars) == ["reflectance", "spatial_ref"]  # what the fixture stands for
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            s = as_scene(ds)
        np.testing.assert_array_equal(s.load(), np.moveaxis(cube, 0, -1))
        assert CRS.from_wkt(s.crs) == CRS.from_epsg(32633)
        assert s.transform == tuple(TRANSFORM)[:6]
        assert s.name == "reflectance"


def test_a_dataset_with_band_parameters_as_variables_gives_them_to_its_scene(tmp_path):
    # EMIT's layout (a reflectance variable over downtrack/crosstrack/bands) with the band parameters as
    # variables of the file, as xarray writes and reads them back
    rng = np.random.default_rng(8)
    cube = rng.uniform(0.05, 0.9, (4, 5, 6)).astype(np.float32)
    wl = np.linspace(400.0, 2500.0, 6)
    xr.Dataset({"reflectance": (("downtrack", "crosstrack", "bands"), cube, {"units": "unitless"}),
                "wavelengths": ("bands", wl, {"units": "nanometers"}),
                "fwhm": ("bands", np.full(6, 8.5), {"units": "nanometers"}),
                "good_wavelengths": ("bands", (np.arange(6) != 2).astype(np.uint8))}).to_netcdf(tmp_path / "e.nc")
    with xr.open_dataset(tmp_path / "e.nc") as ds:
        assert "wavelengths" in ds.data_vars  # what the fixture stands for
        s = as_scene(ds)
        np.testing.assert_array_equal(s.load(), cube)
        np.testing.assert_allclose(s.wavelengths, wl)
        np.testing.assert_allclose(s.fwhm, 8.5)
        np.testing.assert_array_equal(s.good_bands, np.arange(6) != 2)
        assert s.units == "reflectance"


def test_a_dataset_with_several_scene_variables_is_refused_naming_them(tmp_path):

    rng = np.random.default_rng(9)
    dims = ("downtrack", "crosstrack", "bands")
    xr.Dataset({"reflectance": (dims, rng.uniform(size=(4, 5, 6))), "uncertainty": (dims, rng.uniform(size=(4, 5, 6))),
                "mask": (("downtrack", "crosstrack"), np.ones((4, 5)))}).to_netcdf(tmp_path / "two.nc")
    with xr.open_dataset(tmp_path / "two.nc") as ds, pytest.raises(ParameterError) as err:
        as_scene(ds)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("scene='xarray Dataset of variables reflectance, uncertainty, mask': 2 variables have "
                              "a spectral dim (reflectance, uncertainty); expected one variable of it, e.g. "
                              "scene=ds['reflectance']")


def test_bands_as_variables_are_refused_with_the_way_to_one_array(tmp_path):

    path = _geotiff(tmp_path / "s.tif", _stored(), (1.0,) * 3, (0.0,) * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = rioxarray.open_rasterio(path, band_as_variable=True)
    assert list(ds.data_vars) == ["band_1", "band_2", "band_3"]  # 2-D each: no spectral dim
    with pytest.raises(ParameterError, match=r"^scene='xarray Dataset of variables band_1, band_2, band_3': none has "
                                             r"a spectral dim .*ds.to_dataarray\('band'\)"):
        as_scene(ds)
    s = as_scene(ds.to_dataarray("band"))  # the fix it names
    np.testing.assert_allclose(s.load(), read_scene(path).load())


def test_estimators_and_scores_take_a_dataset_as_its_scene_variable(tmp_path):
    from unmixgen.evaluate.unmixing import evaluate
    from unmixgen.unmix.registry import make_method

    _netcdf(tmp_path / "s.nc")
    with xr.open_dataset(tmp_path / "s.nc", decode_coords="all") as ds:
        da = ds["reflectance"]
        on_da, on_ds = make_method("vca", 2, seed=0).fit(da), make_method("vca", 2, seed=0).fit(ds)
        np.testing.assert_array_equal(on_ds.endmembers_, on_da.endmembers_)
        np.testing.assert_array_equal(on_ds.transform(ds), on_da.transform(da))
        E, A = on_da.endmembers_, on_da.abundances_
        assert (evaluate(endmembers=E, abundances=A, cube=ds)["reconstruction_rmse"]
                == evaluate(endmembers=E, abundances=A, cube=da)["reconstruction_rmse"])


def test_layout_and_the_extraction_functions_take_a_dataset_as_every_entry_point_does(tmp_path):
    # hunt 44: labelled.layout refused a Dataset with a message of its own, and vca/atgp/nfindr and
    # pixel_brightness took np.asarray of it (a numpy TypeError) or of a (band, pixel) DataArray
    # (the bands read as pixels, silently)
    from unmixgen.labelled import layout
    from unmixgen.unmix.extraction import atgp, nfindr, vca
    from unmixgen.unmix.inversion import pixel_brightness

    cube = _netcdf(tmp_path / "s.nc")  # (band, y, x) as written
    Y = np.moveaxis(cube, 0, -1).reshape(-1, 3)
    with xr.open_dataset(tmp_path / "s.nc", decode_coords="all") as ds:
        assert layout(ds) == layout(ds["reflectance"]) == (1, 2, 0)
        pixels = ds.stack(pixel=("y", "x"))  # a Dataset whose variable is (band, pixel)
        assert layout(pixels, 1) == (1, 0)
        for extract in (vca, atgp, nfindr):
            on_array = extract(Y, 2)
            for given in (pixels, pixels["reflectance"]):
                got = extract(given, 2)
                assert got[1].shape == (2, 3)
                np.testing.assert_array_equal(got[1], on_array[1])
        A = np.full((Y.shape[0], 2), 0.5)
        E = Y[:2]
        np.testing.assert_array_equal(pixel_brightness(pixels, A, E), pixel_brightness(Y, A, E))
        two = pixels.assign(uncertainty=pixels["reflectance"] * 0.01)
        with pytest.raises(ParameterError, match=r"^Y='xarray Dataset of variables reflectance, uncertainty': 2 "):
            vca(two, 2)  # which is meant is not guessed, as for every entry point


# -- hunt 44: band selections and the file's spectral lists ----------------------------------------------
def test_a_dataset_level_wavelength_list_of_a_band_selection_says_the_selection_kept_it_and_the_way_out(tmp_path):
    # GDAL keeps a GeoTIFF's dataset tags 'wavelength = {...}' (the reader's form) and rioxarray parses them
    # into a list; da.isel keeps that list whole, so it no longer fits: "3 values for 2 bands" said nothing
    # of why, nor how to keep the selected bands' values
    path = _geotiff(tmp_path / "d.tif", _stored(), (1.0,) * 3, (0.0,) * 3)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(wavelength="{450, 550, 650}", wavelength_units="nm", fwhm="{10, 11, 12}")
    da = _open(path)
    np.testing.assert_array_equal(as_scene(da).wavelengths, read_scene(path).wavelengths)  # the fixture's list
    with pytest.raises(InputError, match=r"^scene: attribute 'wavelength' holds 3 values for 2 bands \(selecting "
                                         r"bands keeps the file's list of every band\); expected one per band: make it "
                                         r"a coordinate before selecting, da.assign_coords\(wavelength=\('band', "
                                         r"da.attrs\['wavelength'\]\)\).isel\(band=...\)"):
        as_scene(da.isel(band=[0, 2]))
    with pytest.raises(InputError, match=r"attribute 'fwhm' holds 3 values for 2 bands \(selecting bands keeps.*"
                                         r"da.assign_coords\(fwhm=\('band', da.attrs\['fwhm'\]\)\)"):
        as_scene(da.assign_coords(wavelength=("band", da.attrs["wavelength"])).isel(band=[0, 2]))
    # the way it names: both lists made coordinates, then selected
    picked = da.assign_coords(wavelength=("band", da.attrs["wavelength"]),
                              fwhm=("band", da.attrs["fwhm"])).isel(band=[0, 2])
    s = as_scene(picked)
    np.testing.assert_array_equal(s.wavelengths, [450.0, 650.0])
    np.testing.assert_array_equal(s.fwhm, [10.0, 12.0])


def test_one_band_of_a_geotiff_with_per_band_tags_is_said_to_lose_its_wavelength_as_several_are(tmp_path):
    # rioxarray keeps band 1's tags: one band selected had no wavelength and no word (two or more bands were
    # warned about); band 1 itself, or a one-band file, has its own tag, which read_scene reads too
    path = _tagged_geotiff(tmp_path / "t.tif", [450.0, 550.0, 650.0], fwhm=[10.0, 11.0, 12.0])
    da = _open(path)
    with pytest.warns(UserWarning) as got:
        s = as_scene(da.isel(band=[1]))
    said = [str(w.message) for w in got]
    assert any(m.startswith("scene: attribute 'wavelength' is band 1's tag (450), and the one band is band 2 of the "
                            "file") and "so the scene has no wavelengths" in m
               and f"unmixgen.read_scene({str(path)!r})" in m for m in said), said
    assert any("attribute 'fwhm' is band 1's tag (10)" in m and "no FWHM" in m for m in said), said
    assert s.wavelengths is None and s.fwhm is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # band 1's own tags: taken, nothing lost
        first = as_scene(da.isel(band=[0]))
    np.testing.assert_array_equal(first.wavelengths, [450.0])
    np.testing.assert_array_equal(first.fwhm, [10.0])
    one = _tagged_geotiff(tmp_path / "one.tif", [550.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alone = as_scene(_open(one))
    np.testing.assert_array_equal(alone.wavelengths, read_scene(one).wavelengths)
