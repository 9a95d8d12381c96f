"""Scenes handed over as xarray DataArrays, laid out by their dimension names.

rioxarray's ``open_rasterio`` gives ``(band, y, x)`` with a ``spatial_ref`` coordinate
holding the CRS and GDAL's geotransform; EMIT's NetCDF through xarray gives ``(downtrack,
crosstrack, bands)``. A DataArray taken as a plain ``(rows, cols, bands)`` array (what
``np.asarray`` gives) turned a 224-band, 100 x 120 scene into 224 rows of 100 columns and
120 bands, without a word. rioxarray's arrays come from GeoTIFFs written in the test and
opened with ``rioxarray.open_rasterio`` (`rio_like`); arrays built by hand are layouts a user
builds (EMIT's variable with emit-tools' coordinates, wavenumber dims, pixel matrices, dims
without names), each said where it is made. `test_xarray_rioxarray` holds the ENVI and NetCDF cases.
"""

from __future__ import annotations

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
rioxarray = pytest.importorskip("rioxarray")

import rasterio  # noqa: E402
from affine import Affine  # noqa: E402
from rasterio.crs import CRS  # noqa: E402

from unmixgen.errors import InputError  # noqa: E402
from unmixgen.scene import Scene, as_scene  # noqa: E402
from unmixgen.simulate.procedural import make_scene  # noqa: E402

WKT = CRS.from_epsg(32633).to_wkt()
GT = (500000.0, 30.0, 0.0, 4200000.0, 0.0, -30.0)  # GDAL order: c a b f d e
RASTERIO_TRANSFORM = (30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)  # a b c d e f


def _cube(rows=5, cols=7, bands=6, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.9, (rows, cols, bands)).astype(np.float32)


def rio_like(folder, cube: np.ndarray, wavelengths_um=None, *, nodata=None, scale=1.0, offset=0.0):
    """What ``rioxarray.open_rasterio`` gives for ``cube (rows, cols, bands)`` written as a GeoTIFF
    in ``folder`` (EPSG:32633, `GT`, ``nodata``, every band's ``scale``/``offset``): dims ``(band,
    y, x)``, band numbers from 1, pixel-centre x/y, ``spatial_ref`` with the CRS and GDAL's
    geotransform, values not decoded (``mask_and_scale=False``). ``wavelengths_um``: a
    ``wavelength`` coordinate in micrometers, assigned as a user does (a GeoTIFF gives none)."""
    rows, cols, bands = cube.shape
    path = folder / f"rio_{len(list(folder.glob('rio_*.tif')))}.tif"
    with rasterio.open(path, "w", driver="GTiff", height=rows, width=cols, count=bands, dtype=cube.dtype,
                       crs="EPSG:32633", transform=Affine.from_gdal(*GT), nodata=nodata) as ds:
        ds.write(np.moveaxis(cube, -1, 0))
        ds.scales, ds.offsets = (scale,) * bands, (offset,) * bands
    da = rioxarray.open_rasterio(path, default_name="reflectance")
    if wavelengths_um is not None:
        da = da.assign_coords(wavelength=("band", np.asarray(wavelengths_um), {"units": "micrometers"}))
    return da


def emit_like(cube: np.ndarray, wavelengths_nm, fwhm_nm, order=("downtrack", "crosstrack", "bands")):
    """EMIT's L2A variable as emit-tools hands it over (band parameters, which the file keeps in a
    group of their own, made coordinates of ``bands``), ``_FillValue`` kept (opened without
    decoding), dims in ``order``. Built by hand: reading the groups of EMIT's NetCDF-4 file with
    xarray needs netCDF4 or h5netcdf, which the test environment does not have."""
    da = xr.DataArray(cube, dims=("downtrack", "crosstrack", "bands"),
                      coords={"wavelengths": ("bands", wavelengths_nm, {"units": "nanometers"}),
                              "fwhm": ("bands", fwhm_nm, {"units": "nanometers"}),
                              "good_wavelengths": ("bands", (np.arange(len(wavelengths_nm)) != 2).astype(np.uint8))},
                      attrs={"_FillValue": -9999.0, "units": "unitless"}, name="reflectance")
    return da.transpose(*order)


def test_rioxarray_layout_is_read_by_dim_names_with_wavelengths_and_georeferencing(tmp_path):
    cube = _cube(5, 7, 6)
    wl_um = np.linspace(0.45, 2.4, 6)
    da = rio_like(tmp_path, cube, wl_um, nodata=-9999.0)
    s = as_scene(da)
    assert s.shape == (5, 7, 6)
    np.testing.assert_array_equal(s.load(), np.transpose(da.values, (1, 2, 0)))
    np.testing.assert_allclose(s.wavelengths, wl_um * 1000)
    assert CRS.from_wkt(s.crs) == CRS.from_epsg(32633)
    assert s.transform == RASTERIO_TRANSFORM
    assert s.nodata == -9999.0
    assert s.name == "reflectance"


def test_fill_value_pixels_are_invalid_and_nan_pixels_too(tmp_path):
    cube = _cube(6, 4, 5)
    cube[1, 2] = -9999.0
    cube[4, 0, 3] = np.nan
    s = as_scene(rio_like(tmp_path, cube, nodata=-9999.0))
    expected = np.ones((6, 4), bool)
    expected[1, 2] = expected[4, 0] = False
    np.testing.assert_array_equal(s.mask, expected)


def test_emit_layout_takes_wavelengths_fwhm_and_fill_in_any_dim_order():
    cube = _cube(6, 5, 8, seed=1)
    cube[0, 0] = -9999.0
    wl = np.linspace(400, 2500, 8)
    fwhm = np.full(8, 8.5)
    for order in (("downtrack", "crosstrack", "bands"), ("bands", "crosstrack", "downtrack")):
        s = as_scene(emit_like(cube, wl, fwhm, order))
        np.testing.assert_array_equal(s.load(), cube)
        np.testing.assert_allclose(s.wavelengths, wl)
        np.testing.assert_allclose(s.fwhm, fwhm)
        assert s.nodata == -9999.0 and not s.mask[0, 0] and s.mask.sum() == 29
        assert s.units == "reflectance"  # 'unitless' on a reflectance variable is not a label
        np.testing.assert_array_equal(s.good_bands, np.arange(8) != 2)


def test_wavenumbers_are_sorted_into_increasing_wavelengths():
    cube = _cube(3, 4, 5)
    k = np.array([25000.0, 20000.0, 12500.0, 8000.0, 5000.0])  # cm^-1, decreasing wavelength order reversed
    # built by hand: a wavenumber dim is a user's layout (ENVI's Wavenumber unit: test_xarray_rioxarray)
    da = xr.DataArray(np.moveaxis(cube, -1, 0), dims=("wavenumber", "y", "x"),
                      coords={"wavenumber": ("wavenumber", k, {"units": "cm-1"})})
    s = as_scene(da)
    np.testing.assert_allclose(s.wavelengths, 1e7 / k)  # 400, 500, 800, 1250, 2000 nm: already increasing
    np.testing.assert_array_equal(s.load(), cube)
    shuffled = da.isel(wavenumber=[2, 0, 4, 1, 3])
    s = as_scene(shuffled)
    np.testing.assert_allclose(s.wavelengths, 1e7 / k)
    np.testing.assert_array_equal(s.load(), cube)


def test_scene_constructor_lays_out_a_dataarray_by_its_dims(tmp_path):
    cube = _cube(4, 9, 3)
    np.testing.assert_array_equal(Scene(rio_like(tmp_path, cube)).load(), cube)


def test_estimator_on_a_dataarray_gives_the_abundances_of_the_numpy_cube(tmp_path):
    from unmixgen.unmix.inversion import invert_scene
    from unmixgen.unmix.registry import make_method

    scene = make_scene(rows=14, cols=17, bands=24, p=3, seed=2)
    cube = scene.load()
    da = rio_like(tmp_path, cube, scene.wavelengths / 1000)
    on_array = make_method("vca", 3, seed=0).fit(cube)
    on_da = make_method("vca", 3, seed=0).fit(da)
    np.testing.assert_array_equal(on_da.endmembers_, on_array.endmembers_)
    np.testing.assert_array_equal(on_da.abundances_, on_array.abundances_)
    np.testing.assert_array_equal(on_da.transform(da), on_array.transform(cube))
    np.testing.assert_array_equal(invert_scene(da, on_array.endmembers_, progress=False),
                                  invert_scene(cube, on_array.endmembers_, progress=False))


def test_pixel_matrices_with_a_spectral_dim_first_are_taken_bands_last():
    from unmixgen.unmix.inversion import fcls
    from unmixgen.unmix.rank import hysime
    from unmixgen.unmix.registry import make_method

    scene = make_scene(rows=12, cols=15, bands=20, p=3, seed=3)
    Y = scene.valid_pixels()
    # built by hand: a pixel matrix is a user's layout, no reader makes one
    da = xr.DataArray(Y.T, dims=("band", "pixel"))  # 20 x 180: as (N, bands) it was 20 pixels of 180 bands
    fitted = make_method("vca", 3, seed=0).fit(scene)
    np.testing.assert_array_equal(fitted.transform(da), fitted.transform(Y))
    np.testing.assert_array_equal(fcls(da, fitted.endmembers_), fcls(Y, fitted.endmembers_))
    assert hysime(da).n_endmembers == hysime(Y).n_endmembers
    with pytest.raises(InputError, match=r"^Y: DataArray with dims y, x has no spectral dim; expected"):
        hysime(xr.DataArray(Y[:, :2], dims=("y", "x")))


def test_a_crs_proj_cannot_read_or_a_bad_geotransform_is_refused_in_one_line(tmp_path):
    # grid mappings no library writes, put on the real array by hand
    da = rio_like(tmp_path, _cube())
    bad_crs = da.assign_coords(spatial_ref=xr.DataArray(0, attrs={"crs_wkt": "not a crs"}))
    with pytest.raises(InputError, match=r"^scene: coordinate 'spatial_ref''s crs_wkt is not a CRS PROJ reads"):
        as_scene(bad_crs)
    bad_gt = da.assign_coords(spatial_ref=xr.DataArray(0, attrs={"crs_wkt": WKT, "GeoTransform": "1 2 3"}))
    with pytest.raises(InputError, match=r"^scene: coordinate 'spatial_ref''s GeoTransform '1 2 3' is not 6 finite numbers; "
                                         r"expected GDAL order"):
        as_scene(bad_gt)


def test_array_functions_take_a_dataarray_by_its_dims(tmp_path):
    from unmixgen.evaluate.unmixing import evaluate
    from unmixgen.unmix.spatial_rank import spatial_rank

    scene = make_scene(rows=20, cols=23, bands=16, p=3, seed=4)
    cube = scene.load()
    da = rio_like(tmp_path, cube)
    assert spatial_rank(da).n_endmembers == spatial_rank(cube).n_endmembers
    E, A = scene.truth.endmembers, scene.truth.abundances
    got = evaluate(endmembers=E, abundances=A, cube=da)
    assert got["reconstruction_rmse"] == evaluate(endmembers=E, abundances=A, cube=cube)["reconstruction_rmse"]


@pytest.mark.parametrize(("dims", "found"), [
    (("dim_0", "dim_1", "dim_2"), "dims dim_0, dim_1, dim_2"),
    (("y", "x", "time"), "dims y, x, time"),
    (("band", "wavelength", "x"), "dims band, wavelength, x"),
    (("band", "y", "z"), "dims band, y, z"),
])
def test_dims_without_spectral_or_spatial_names_are_refused_in_one_line(dims, found):
    da = xr.DataArray(_cube(3, 4, 5), dims=dims)  # by hand: dims a user gives (or none, numpy's dim_0)
    with pytest.raises(InputError) as err:
        as_scene(da)
    message = str(err.value)
    assert "\n" not in message and found in message and "expected" in message and "band" in message


def test_a_dataarray_with_other_than_three_dims_is_refused():
    da = xr.DataArray(_cube(3, 4, 5)[None], dims=("time", "y", "x", "band"))  # by hand: a time series stacked
    with pytest.raises(InputError, match=r"^scene: DataArray with dims time, y, x, band; expected three"):
        as_scene(da)


def test_a_dataset_is_its_one_variable_with_a_spectral_dim_and_otherwise_refused_naming_its_variables():
    # built in memory as a user builds one (files opened as Datasets: test_xarray_rioxarray)
    from unmixgen.errors import ParameterError

    cube = _cube()
    ds = xr.Dataset({"reflectance": (("y", "x", "band"), cube), "mask": (("y", "x"), np.ones((5, 7)))})
    np.testing.assert_array_equal(as_scene(ds).load(), cube)  # the mask has no spectral dim: not a candidate
    with pytest.raises(ParameterError, match=r"^X='xarray Dataset of variables mask': none has a spectral dim"):
        as_scene(ds[["mask"]], "X")


def test_a_stale_geotransform_after_slicing_gives_way_to_the_coordinates(tmp_path):
    # da.isel keeps spatial_ref's GeoTransform of the whole raster; x/y follow the slice
    da = rio_like(tmp_path, _cube(8, 9, 3)).isel(y=slice(2, 6), x=slice(3, 9))
    s = as_scene(da)
    assert s.transform == (30.0, 0.0, 500000.0 + 3 * 30.0, 0.0, -30.0, 4200000.0 - 2 * 30.0)


def test_scale_factor_of_undecoded_values_is_applied_and_fill_judged_on_stored_values(tmp_path):
    stored = np.random.default_rng(0).integers(100, 9000, (4, 5, 6)).astype(np.int16)
    stored[2, 3] = -9999
    da = rio_like(tmp_path, stored, nodata=-9999, scale=1e-4)
    s = as_scene(da)
    np.testing.assert_allclose(s.load(), stored.astype(np.float32) * np.float32(1e-4))
    assert not s.mask[2, 3] and s.mask.sum() == 19


def test_a_scale_factor_of_zero_or_inf_is_refused(tmp_path):
    stored = np.ones((4, 5, 6), np.int16)
    for bad in (0.0, np.inf):
        with pytest.raises(InputError, match="scale_factor"):
            as_scene(rio_like(tmp_path, stored, scale=bad))


def test_a_dask_backed_dataarray_is_read_window_by_window(tmp_path):
    dask_array = pytest.importorskip("dask.array")
    cube = _cube(12, 10, 4)

    class Recording:
        def __init__(self, a):
            self.a, self.shape, self.dtype, self.ndim, self.reads = a, a.shape, a.dtype, a.ndim, []

        def __getitem__(self, key):
            out = self.a[key]
            self.reads.append(out.size)
            return out

    source = Recording(np.moveaxis(cube, -1, 0))
    lazy = dask_array.from_array(source, chunks=(4, 3, 5), meta=np.empty((0, 0, 0), np.float32))
    da = rio_like(tmp_path, cube).copy(data=lazy)
    s = as_scene(da)
    assert sum(source.reads) == 0  # nothing read to build the scene
    np.testing.assert_array_equal(s.read(slice(0, 3), slice(0, 5)), cube[:3, :5])
    assert sum(source.reads) <= 4 * 3 * 5 * 2  # the chunks holding that window, not the cube


def _peak_bytes(fn):
    """The most memory (bytes) traced at once while ``fn()`` runs, beyond what was held before
    (numpy reports its buffers to tracemalloc), and ``fn``'s result."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = fn()
        return tracemalloc.get_traced_memory()[1] - before, out
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("stored", ["float32", "int16 with per-band scales"])
def test_loading_a_dask_backed_dataarray_holds_the_cube_once_not_its_stored_copy_beside_it(tmp_path, stored):
    # Scene.load() of a dask-backed DataArray computed the whole stored cube (and, bands first as
    # rioxarray gives them, concatenated its transposed chunks into another), then copied it to
    # float32: 2-3 times the cube at once (2.4 GB for an 800 MB scene). Now each chunk is stored
    # into the float32 output where it goes: the cube and a few chunks.
    dask = pytest.importorskip("dask")
    dask_array = pytest.importorskip("dask.array")
    cube = _cube(120, 100, 40)
    if stored == "float32":
        da = rio_like(tmp_path, cube)
        expected = cube
    else:
        counts = np.round(cube * 10000).astype(np.int16)
        da = rio_like(tmp_path, counts)
        scales = np.linspace(1e-4, 2e-4, 40)
        da.attrs["scales"] = tuple(scales)  # as rioxarray gives bands with different scales
        del da.attrs["scale_factor"]
        expected = (counts * scales.astype(np.float32)).astype(np.float32)
    lazy = dask_array.from_array(da.values, chunks=(40, 30, 25))  # (band, y, x) as rioxarray's chunks=
    da = da.copy(data=lazy)
    s = as_scene(da)
    with dask.config.set(scheduler="synchronous"):
        s.read(slice(0, 1), slice(0, 1))  # what the first read imports is not the load's
        peak, loaded = _peak_bytes(s.load)
    np.testing.assert_allclose(loaded, expected, rtol=1e-6)
    assert loaded.dtype == np.float32 and loaded.flags.c_contiguous
    assert peak < 1.25 * cube.nbytes, peak / cube.nbytes  # 2-3 before


def test_loading_a_lazily_opened_dataarray_reads_it_in_strips(tmp_path, monkeypatch):
    # rioxarray without chunks= gives a lazily indexed file: its window was read whole in the stored
    # type and then copied to float32 (twice the cube); now strips of rows are read into the output
    from unmixgen import labelled

    cube = _cube(120, 100, 40)
    da = rio_like(tmp_path, cube)
    monkeypatch.setattr(labelled, "STRIP_BYTES", cube.nbytes // 10)
    s = as_scene(da)
    s.read(slice(0, 1), slice(0, 1))  # what the first read imports is not the load's
    peak, loaded = _peak_bytes(s.load)
    np.testing.assert_array_equal(loaded, cube)
    assert peak < 1.4 * cube.nbytes, peak / cube.nbytes



def test_rows_stored_south_first_under_a_north_up_geotransform_are_placed_by_their_coordinates(tmp_path):
    # GDAL's netCDF driver stores rows bottom-up (y increasing) and writes the north-up
    # GeoTransform of its own flipped view on the grid mapping; xr.open_dataset(...,
    # decode_coords="all") gives that. The pixel size's sign follows the coordinates: with
    # the GeoTransform's e < 0, every row but the first was placed in the mirror image.
    cube = _cube(4, 5, 3)
    da = rio_like(tmp_path, cube).isel(y=slice(None, None, -1))  # y now increases: row 0 is the south edge
    s = as_scene(da)
    y = da.y.values
    assert s.transform == (30.0, 0.0, 500000.0, 0.0, 30.0, y[0] - 15.0)
    a, b, c, d, e, f = s.transform
    np.testing.assert_allclose(f + e * (np.arange(4) + 0.5), y)  # every row's centre where its coordinate says



def test_a_geotiff_of_the_writer_through_rioxarray_gives_the_scene_read_scene_gives(tmp_path):
    # rioxarray lays band 1's tags over the dataset's: the writer's per-band 'wavelength' tag
    # hid its dataset list (the attribute is band 1's one number) and the unit labels came as a
    # tuple, one per band: the scene had no wavelengths and no units
    from unmixgen.io import geotiff, read_scene

    cube = _cube(5, 7, 6)
    cube[1, 2] = np.nan
    wl = np.linspace(450.0, 2400.0, 6)
    geotiff.write(Scene(cube, wavelengths=wl, crs="EPSG:32633", transform=RASTERIO_TRANSFORM,
                        units="W/(m2 sr um)"), tmp_path / "s.tif")
    a, b = read_scene(tmp_path / "s.tif"), as_scene(rioxarray.open_rasterio(tmp_path / "s.tif"))
    np.testing.assert_array_equal(b.load(), a.load())
    np.testing.assert_array_equal(b.mask, a.mask)
    np.testing.assert_allclose(b.wavelengths, a.wavelengths)
    assert CRS.from_wkt(b.crs) == CRS.from_wkt(a.crs)
    assert b.transform == a.transform
    assert b.units == a.units == "W/(m2 sr um)"


def test_workflows_that_read_a_file_refuse_a_dataarray_naming_the_parameter(tmp_path):
    # the README: "Wherever a scene goes, an xarray DataArray goes too" holds for the estimators;
    # the workflow functions read a file (as the CLI does): a DataArray there was a bare TypeError
    # from os.path.realpath, naming nothing
    import unmixgen as ug
    from unmixgen.errors import ParameterError

    da = rio_like(tmp_path, _cube())
    calls = [
        ("path", lambda: ug.read_scene(da)),
        ("scene_path", lambda: ug.unmix_scene(da, tmp_path / "run", n_endmembers=3, method="vca")),
        ("scene_path", lambda: ug.refine_result(da, tmp_path / "run", tmp_path / "refined")),
        ("scene_path", lambda: ug.train_stu(da, tmp_path / "E.csv", tmp_path / "stu")),
    ]
    for name, call in calls:
        with pytest.raises(ParameterError, match=rf"^{name}='DataArray': expected a file's path") as err:
            call()
        assert err.value.name == name and "write_scene(scene, 'scene.npz')" in str(err.value)
        assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rio_0.tif"]  # nothing written
    # what the message says works: the estimator takes it, and so does write_scene + unmix_scene
    ug.write_scene(da, tmp_path / "scene.npz")
    assert ug.unmix_scene(tmp_path / "scene.npz", tmp_path / "run", n_endmembers=3, method="vca",
                          figures=False)["n_endmembers"] == 3
