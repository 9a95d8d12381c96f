"""Georeferencing from every input kind to every output raster: the maps a run writes must open
in QGIS (GDAL) where the input scene lies. Each input is made in code with the layout of the
real product, run through the command, and the output's placement compared with the input's as
GDAL (rasterio) reads both."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from fixtures_io import scene_cube, write_envi, write_tif
from hdf5_fixtures import make_emit_nc
from prisma_fixture import make_prisma_he5
from unmixgen.errors import InputError
from unmixgen.io import read_scene, write_scene
from unmixgen.runs.folder import save_maps
from unmixgen.scene import Scene

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

WL = [450.0, 550.0, 650.0, 750.0, 850.0, 950.0]
TAGS = [{"wavelength": str(w), "wavelength_units": "nm"} for w in WL]


def _gcps(path):
    """(CRS as EPSG or None, [(row, col, x, y), ...]) as GDAL reads the file's ground control points."""
    with rasterio.open(path) as ds:
        points, crs = ds.gcps
        return (crs.to_epsg() if crs else None), [(g.row, g.col, g.x, g.y) for g in points]


def _rpc(rows: int, cols: int):
    """An RPC model of a small scene near 45 N 10 E (an L1 product placed by RPCs only)."""
    from rasterio.rpc import RPC

    return RPC(height_off=100.0, height_scale=500.0, lat_off=45.0, lat_scale=0.05, long_off=10.0,
               long_scale=0.06, line_off=rows / 2, line_scale=rows / 2, samp_off=cols / 2, samp_scale=cols / 2,
               line_num_coeff=[0.0, 0.0, -1.0] + [0.0] * 17, line_den_coeff=[1.0] + [0.0] * 19,
               samp_num_coeff=[0.0, 1.0] + [0.0] * 18, samp_den_coeff=[1.0] + [0.0] * 19,
               err_bias=-1.0, err_rand=-1.0)


def _rpcs(path):
    with rasterio.open(path) as ds:
        return None if ds.rpcs is None else ds.rpcs.to_dict()


def test_a_geotiff_placed_by_rpcs_gives_maps_placed_by_them(tmp_path, run_cli):
    # an L1 product with rational polynomial coefficients and no geotransform: the maps lost them
    # and opened unplaced in QGIS
    cube = scene_cube(9, 12, 6)
    path = write_tif(tmp_path / "l1.tif", cube, band_tags=TAGS, transform=None, crs=None)
    with rasterio.open(path, "r+") as ds:
        ds.rpcs = _rpc(9, 12)
    want = _rpcs(path)
    assert want is not None
    code, _, err = run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", tmp_path / "run", "--no-figures")
    assert code == 0, err
    assert _rpcs(tmp_path / "run" / "abundances.tif") == want
    code, _, err = run_cli("convert", path, tmp_path / "copy.tif")
    assert code == 0, err
    assert _rpcs(tmp_path / "copy.tif") == want
    assert not list(tmp_path.glob("**/*.RPB"))  # kept in the file, no side file left behind by the rename


def test_a_pixel_is_point_geotiff_gives_pixel_is_point_maps_in_the_same_place(tmp_path, run_cli):
    # GDAL reads a PixelIsPoint file's tie point as a pixel centre: the maps said Area (same
    # place through GDAL, half a pixel off for readers that take the tie point as written)
    cube = scene_cube(9, 12, 6)
    path = write_tif(tmp_path / "point.tif", cube, band_tags=TAGS)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(AREA_OR_POINT="Point")

    def placed(file, ignore_point=False):
        with rasterio.Env(GTIFF_POINT_GEO_IGNORE=ignore_point), rasterio.open(file) as ds:
            return ds.tags().get("AREA_OR_POINT"), tuple(ds.transform)[:6], ds.crs.to_epsg()

    code, _, err = run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", tmp_path / "run", "--no-figures")
    assert code == 0, err
    out = tmp_path / "run" / "abundances.tif"
    assert placed(out) == placed(path)
    assert placed(out, ignore_point=True) == placed(path, ignore_point=True)  # the tie point as stored


GEO_POINTS = "{1, 1, 45.0, 10.0, 13, 1, 45.01, 10.12, 1, 10, 44.91, 9.99, 13.5, 10.5, 44.92, 10.115}"


def test_envi_geo_points_are_read_as_gdal_reads_them(tmp_path):
    # ENVI's tie points (1-based pixel x, y; latitude, longitude) were dropped: the scene had no
    # placement at all
    hdr = write_envi(tmp_path, scene_cube(9, 12, 6), wavelengths=WL, extra={"geo points": GEO_POINTS})
    scene = read_scene(hdr)
    assert scene.transform is None
    crs, points = _gcps(hdr.with_suffix(".img"))
    assert [tuple(g[:4]) for g in scene.metadata["gcps"]] == points
    assert points[3] == (9.5, 12.5, 10.115, 44.92)  # GDAL: pixel - 1, line - 1, x = longitude, y = latitude
    assert rasterio.crs.CRS.from_user_input(scene.crs).to_epsg() == 4326


def test_envi_geo_points_reach_every_map_format(tmp_path, run_cli):
    hdr = write_envi(tmp_path, scene_cube(9, 12, 6), wavelengths=WL, extra={"geo points": GEO_POINTS})
    _, want = _gcps(hdr.with_suffix(".img"))
    code, _, err = run_cli("unmix", hdr, "-p", "3", "--method", "vca", "--out", tmp_path / "run", "--no-figures")
    assert code == 0, err
    assert _gcps(tmp_path / "run" / "abundances.img")[1] == want  # ENVI maps for ENVI input: geo points
    assert [tuple(g[:4]) for g in read_scene(tmp_path / "run" / "abundances.hdr").metadata["gcps"]] == want
    code, _, err = run_cli("convert", hdr, tmp_path / "copy.tif")
    assert code == 0, err
    assert _gcps(tmp_path / "copy.tif") == (4326, want)


def test_map_info_wins_over_geo_points_as_in_gdal(tmp_path):
    hdr = write_envi(tmp_path, scene_cube(9, 12, 6), wavelengths=WL, extra={
        "geo points": GEO_POINTS, "map info": "{UTM, 1, 1, 500000, 5800000, 30, 30, 33, North, WGS-84}"})
    scene = read_scene(hdr)
    assert scene.transform == (30.0, 0.0, 500000.0, 0.0, -30.0, 5800000.0)
    assert "gcps" not in scene.metadata


@pytest.mark.parametrize("value, expected", [
    ("{1, 1, 45.0}", "groups of four"),
    ("{1, 1, 45.0, ten}", "not a number"),
    ("{1, 1, 95.0, 10.0}", "latitude"),
    ("{1, 1, 45.0, 1000.0}", "longitude"),
    ("{1, 1, 45.0, nan}", "finite"),
])
def test_malformed_geo_points_are_one_clear_error(tmp_path, run_cli, value, expected):
    hdr = write_envi(tmp_path, scene_cube(9, 12, 6), wavelengths=WL, extra={"geo points": value})
    with pytest.raises(InputError, match=expected) as info:
        read_scene(hdr)
    assert "geo points" in str(info.value)
    code, _, err = run_cli("info", hdr)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "geo points" in err


def _latlon_gcps_match(path, lat, lon):
    """The output's GCPs sit at pixel centres and give each pixel's own latitude/longitude."""
    crs, points = _gcps(path)
    assert crs == 4326 and len(points) >= 4
    for row, col, x, y in points:
        r, c = int(row - 0.5), int(col - 0.5)
        assert (row - 0.5, col - 0.5) == (r, c)
        assert (x, y) == pytest.approx((float(lon[r, c]), float(lat[r, c])))
    rows = {p[0] for p in points}
    cols = {p[1] for p in points}
    assert min(rows) == 0.5 and max(rows) == lat.shape[0] - 0.5  # the whole swath is spanned
    assert min(cols) == 0.5 and max(cols) == lat.shape[1] - 0.5


@pytest.mark.parametrize("level", ["L1", "L2C"])
def test_a_prisma_swath_product_gives_maps_placed_by_its_latitude_longitude(tmp_path, run_cli, level):
    # L1/L2B/L2C are in instrument geometry with per-pixel latitude/longitude: the maps had no
    # placement; ground control points from those arrays let QGIS place them
    import h5py

    fp = make_prisma_he5(tmp_path / f"PRS_{level}_STD_t.he5", 14, 11, level)
    with h5py.File(fp.path) as f:
        geo = f[f"HDFEOS/SWATHS/PRS_{level}_HCO/Geolocation Fields"]
        lat = geo["Latitude_VNIR" if level == "L1" else "Latitude"][()]
        lon = geo["Longitude_VNIR" if level == "L1" else "Longitude"][()]
    code, _, err = run_cli("unmix", fp.path, "-p", "2", "--method", "vca", "--out", tmp_path / "run", "--no-figures")
    assert code == 0, err
    _latlon_gcps_match(tmp_path / "run" / "abundances.tif", lat, lon)
    with rasterio.open(tmp_path / "run" / "abundances.tif") as ds:
        assert ds.transform.is_identity  # no map grid claimed


def test_prisma_l2d_maps_keep_its_grid(tmp_path, run_cli):
    fp = make_prisma_he5(tmp_path / "PRS_L2D_STD_t.he5", 14, 11, "L2D")
    code, _, err = run_cli("unmix", fp.path, "-p", "2", "--method", "vca", "--out", tmp_path / "run", "--no-figures")
    assert code == 0, err
    scene = read_scene(fp.path)
    with rasterio.open(tmp_path / "run" / "abundances.tif") as ds:
        assert tuple(ds.transform)[:6] == scene.transform and ds.crs.to_epsg() == 32633
        assert not ds.gcps[0]


def test_an_emit_swath_gives_maps_placed_by_its_latitude_longitude(tmp_path, run_cli):
    import h5py

    e = make_emit_nc(tmp_path / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc", rows=12, cols=9, fill_pixels=())
    with h5py.File(e["path"]) as f:
        lat, lon = f["location/lat"][()], f["location/lon"][()]
    code, _, err = run_cli("unmix", e["path"], "-p", "2", "--method", "vca", "--out", tmp_path / "run",
                           "--no-figures")
    assert code == 0, err
    _latlon_gcps_match(tmp_path / "run" / "abundances.tif", lat, lon)


def test_swath_geolocation_with_fill_values_leaves_those_pixels_out(tmp_path):
    import h5py

    e = make_emit_nc(tmp_path / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc", rows=12, cols=9, fill_pixels=())
    with h5py.File(e["path"], "r+") as f:
        f["location/lat"][0, 0] = -9999.0
        f["location/lon"][11, 8] = -9999.0
    points = read_scene(e["path"]).metadata["gcps"]
    assert [0.5, 0.5] not in [p[:2] for p in points] and [11.5, 8.5] not in [p[:2] for p in points]
    assert all(abs(p[3]) <= 90 and abs(p[2]) <= 180 for p in points)


def test_a_swath_without_usable_geolocation_has_no_placement(tmp_path):
    import h5py

    e = make_emit_nc(tmp_path / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc", rows=12, cols=9, fill_pixels=())
    with h5py.File(e["path"], "r+") as f:
        f["location/lat"][...] = 0.0
        f["location/lon"][...] = 0.0
    scene = read_scene(e["path"])
    assert "gcps" not in scene.metadata and scene.crs is None and scene.transform is None


def test_every_map_a_run_writes_keeps_the_scene_placement(tmp_path):
    # save_maps writes the abundances, uncertainty maps, brightness, outliers: all placed alike
    from rasterio.rpc import RPC

    gcps = [[0.0, 0.0, 10.0, 45.0, 0.0], [0.0, 12.0, 10.1, 45.0, 0.0], [9.0, 0.0, 10.0, 44.9, 0.0]]
    rpcs = _rpc(9, 12).to_dict()
    scene = Scene(scene_cube(9, 12, 6), crs="EPSG:4326", metadata={"gcps": gcps, "rpcs": rpcs})
    for stem in ("abundances", "abundances_std", "brightness"):
        path = save_maps(tmp_path, scene, np.ones((9, 12, 2), np.float32), stem=stem)
        assert _gcps(path) == (4326, [tuple(g[:4]) for g in gcps])
        assert RPC(**_rpcs(path)).to_dict() == rpcs
    point = Scene(scene_cube(9, 12, 6), crs="EPSG:32633", transform=(30.0, 0.0, 500000.0, 0.0, -30.0, 5800000.0),
                  metadata={"area_or_point": "Point"})
    path = save_maps(tmp_path, point, np.ones((9, 12, 2), np.float32), stem="point")
    with rasterio.open(path) as ds:
        assert ds.tags()["AREA_OR_POINT"] == "Point" and tuple(ds.transform)[:6] == point.transform


def test_gcps_in_a_projected_crs_become_latitude_longitude_geo_points_in_envi(tmp_path):
    from rasterio.warp import transform as reproject

    gcps = [[0.0, 0.0, 500000.0, 5800000.0, 0.0], [0.0, 12.0, 500360.0, 5800000.0, 0.0],
            [9.0, 0.0, 500000.0, 5799730.0, 0.0], [9.0, 12.0, 500360.0, 5799730.0, 0.0]]
    scene = Scene(scene_cube(9, 12, 6), crs="EPSG:32633", metadata={"gcps": gcps})
    write_scene(scene, tmp_path / "out.hdr")
    crs, points = _gcps(tmp_path / "out.img")
    lon, lat = reproject("EPSG:32633", "EPSG:4326", [g[2] for g in gcps], [g[3] for g in gcps])
    assert [p[:2] for p in points] == [tuple(g[:2]) for g in gcps]
    np.testing.assert_allclose([p[2] for p in points], lon, atol=1e-9)
    np.testing.assert_allclose([p[3] for p in points], lat, atol=1e-9)
    back = read_scene(tmp_path / "out.hdr")
    assert rasterio.crs.CRS.from_user_input(back.crs).to_epsg() == 4326 and len(back.metadata["gcps"]) == 4


def test_a_npz_copy_keeps_what_places_the_scene(tmp_path, run_cli):
    # .npz kept CRS and transform only: a copy of an RPC or GCP product (or a PixelIsPoint one)
    # gave maps that claimed a CRS but were placed nowhere
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS

    cube = scene_cube(9, 12, 6)
    path = write_tif(tmp_path / "l1.tif", cube, band_tags=TAGS, transform=None, crs=None)
    gcps = [GroundControlPoint(row=r, col=c, x=10.0 + 0.01 * c, y=45.0 - 0.01 * r, z=0.0)
            for r, c in ((0, 0), (0, 12), (9, 0), (9, 12))]
    with rasterio.open(path, "r+") as ds:
        ds.gcps = (gcps, CRS.from_epsg(4326))
        ds.rpcs = _rpc(9, 12)
    code, _, err = run_cli("convert", path, tmp_path / "copy.npz")
    assert code == 0, err
    code, _, err = run_cli("unmix", tmp_path / "copy.npz", "-p", "3", "--method", "vca", "--out", tmp_path / "run",
                           "--no-figures")
    assert code == 0, err
    assert _gcps(tmp_path / "run" / "abundances.tif") == _gcps(path)
    assert _rpcs(tmp_path / "run" / "abundances.tif") == _rpcs(path)
    point = Scene(cube, crs="EPSG:32633", transform=(30.0, 0.0, 500000.0, 0.0, -30.0, 5800000.0),
                  metadata={"area_or_point": "Point"})
    write_scene(point, tmp_path / "point.npz")
    assert read_scene(tmp_path / "point.npz").metadata["area_or_point"] == "Point"


@pytest.mark.parametrize("key, value, expected", [
    ("gcps", np.zeros((3, 4)), "expected \\(n, 5\\)"),
    ("gcps", np.full((3, 5), np.nan), "non-finite"),
    ("rpcs", np.array('{"lat_off": 1}'), "not a usable RPC model"),
    ("rpcs", np.array("not json"), "not a usable RPC model"),
    ("rpcs", np.array('{"lat_scale": 0, "line_num_coeff": [1], "line_den_coeff": [1], "samp_num_coeff": [1], '
                      '"samp_den_coeff": [1], "height_off": 0, "height_scale": 1, "lat_off": 0, "long_off": 0, '
                      '"long_scale": 1, "line_off": 0, "line_scale": 1, "samp_off": 0, "samp_scale": 1}'),
     "not a usable RPC model.*non-zero scales"),
    ("area_or_point", np.array("Centre"), "expected 'Point' or 'Area'"),
])
def test_a_npz_with_bad_placement_is_one_clear_error(tmp_path, key, value, expected):
    np.savez(tmp_path / "bad.npz", cube=scene_cube(4, 5, 3), **{key: value})
    with pytest.raises(InputError, match=f"bad.npz: '{key}'.*{expected}"):
        read_scene(tmp_path / "bad.npz")


# -- ENVI 'rpc info' ---------------------------------------------------------------------------
def _rpc_info_values(rows: int, cols: int, tail=(0, 0, 1)) -> list[float]:
    """The values of an ENVI 'rpc info' in ENVI's order: line, sample, latitude, longitude and height
    offsets, then their five scales, then the line numerator, line denominator, sample numerator and
    sample denominator coefficients (20 each); ENVI writes three more (two chip offsets, a flag).
    Every value differs from the others, so a value read under another name shows."""
    offsets = [rows / 2 + 0.25, cols / 2 + 0.5, 45.0, 10.0, 100.0]
    scales = [rows / 2 + 0.75, cols / 2 + 0.25, 0.05, 0.06, 500.0]
    line_num = [1e-4, 2e-3, -1.0] + [1e-6 * (i + 1) for i in range(17)]
    line_den = [1.0] + [-2e-6 * (i + 1) for i in range(19)]
    samp_num = [-3e-4, 1.0, 4e-3] + [3e-6 * (i + 1) for i in range(17)]
    samp_den = [1.0] + [-4e-6 * (i + 1) for i in range(19)]
    return offsets + scales + line_num + line_den + samp_num + samp_den + list(tail)


def _rpc_info(values) -> str:
    """An 'rpc info' value laid out as ENVI and GDAL write it: four values a line."""
    text = [", ".join(repr(float(v)) for v in values[i:i + 4]) for i in range(0, len(values), 4)]
    return "{\n  " + ",\n  ".join(text) + "}"


def _gdal_rpcs(hdr):
    with rasterio.open(hdr.with_suffix(".img")) as ds:
        return None if ds.rpcs is None else ds.rpcs.to_dict()


def _model(rpcs: dict) -> dict:
    """The coefficients, offsets and scales, without the error estimates (ENVI has none: GDAL reads
    them as unknown, and a GeoTIFF's RPC tag stores unknown as -1)."""
    return {k: v for k, v in rpcs.items() if k not in ("err_bias", "err_rand")}


def _same_rpcs(got: dict, want: dict) -> bool:
    """The same names and values; GDAL keeps each coefficient as text of 16 significant digits, so a
    value read through it may differ from the header's in the last bit."""
    return got.keys() == want.keys() and all(
        got[k] == want[k] if got[k] is None or want[k] is None else np.allclose(got[k], want[k], rtol=1e-15, atol=0)
        for k in got)


@pytest.mark.parametrize("tail", [(0, 0, 1), (), (0, 0, 1, 7.0)])
def test_envi_rpc_info_is_read_as_gdal_reads_it(tmp_path, tail):
    # an ENVI image placed by rational polynomial coefficients (an L1 product saved by ENVI) was
    # read with no placement at all: every map opened nowhere
    hdr = write_envi(tmp_path, scene_cube(9, 12, 6), wavelengths=WL,
                     extra={"rpc info": _rpc_info(_rpc_info_values(9, 12, tail))})
    want = _gdal_rpcs(hdr)
    assert want is not None and want["line_off"] == 4.75 and want["samp_scale"] == 6.25
    scene = read_scene(hdr)
    assert _same_rpcs(scene.metadata["rpcs"], want)
    assert scene.transform is None and scene.crs is None


def test_envi_rpc_info_reaches_every_map_format(tmp_path, run_cli):
    hdr = write_envi(tmp_path, scene_cube(9, 12, 6), wavelengths=WL,
                     extra={"rpc info": _rpc_info(_rpc_info_values(9, 12))})
    want = _model(_gdal_rpcs(hdr))
    code, _, err = run_cli("unmix", hdr, "-p", "3", "--method", "vca", "--out", tmp_path / "run", "--no-figures")
    assert code == 0, err
    assert _same_rpcs(_model(_gdal_rpcs(tmp_path / "run" / "abundances.hdr")), want)  # ENVI maps for ENVI input
    assert _same_rpcs(read_scene(tmp_path / "run" / "abundances.hdr").metadata["rpcs"], _gdal_rpcs(hdr))
    for out in ("copy.tif", "copy.npz"):
        code, _, err = run_cli("convert", hdr, tmp_path / out)
        assert code == 0, err
        assert _same_rpcs(_model(read_scene(tmp_path / out).metadata["rpcs"]), want), out
    assert _same_rpcs(_model(_rpcs(tmp_path / "copy.tif")), want)


def test_a_scene_with_a_geotransform_and_rpcs_keeps_both_in_envi(tmp_path):
    # a GeoTIFF may carry both (GDAL reads both from it); the ENVI copy must keep the grid GDAL
    # places it by (GDAL reads 'rpc info' only without 'map info') and still hold the RPCs
    transform = (30.0, 0.0, 500000.0, 0.0, -30.0, 5800000.0)
    scene = Scene(scene_cube(9, 12, 6), crs="EPSG:32633", transform=transform,
                  metadata={"rpcs": _rpc(9, 12).to_dict()})
    write_scene(scene, tmp_path / "out.hdr")
    with rasterio.open(tmp_path / "out.img") as ds:
        assert tuple(ds.transform)[:6] == transform and ds.crs.to_epsg() == 32633
    back = read_scene(tmp_path / "out.hdr")
    assert back.transform == transform and _model(back.metadata["rpcs"]) == _model(_rpc(9, 12).to_dict())


def _with(index: int, value: str) -> str:
    values = [repr(v) for v in _rpc_info_values(9, 12)]
    values[index] = value
    return "{" + ", ".join(values) + "}"


@pytest.mark.parametrize("value, expected", [
    ("{" + ", ".join(repr(v) for v in _rpc_info_values(9, 12)[:89]) + "}", "has 89 values; expected at least 90"),
    (_with(12, "abc"), r"value 13 \(LINE_NUM_COEFF 3\) = 'abc' is not a number"),
    (_with(31, "nan"), r"value 32 \(LINE_DEN_COEFF 2\) = nan; expected a finite number"),
    (_with(7, "0"), r"value 8 \(LAT_SCALE\) = 0; expected a non-zero number"),
    (_with(90, "inf"), r"value 91 .* = inf; expected a finite number"),
])
def test_malformed_rpc_info_is_one_clear_error(tmp_path, run_cli, value, expected):
    hdr = write_envi(tmp_path, scene_cube(9, 12, 6), wavelengths=WL, extra={"rpc info": value})
    with pytest.raises(InputError, match=expected) as info:
        read_scene(hdr)
    assert str(info.value).startswith(f"{hdr}: 'rpc info'")
    code, _, err = run_cli("info", hdr)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'rpc info'" in err


def test_rpc_info_for_a_chip_of_a_larger_image_warns(tmp_path):
    # the last values place the file in a larger image; GDAL keeps the coefficients of that image
    # (its offsets only go to ICHIP_* metadata), and so is the scene placed: where GDAL places it
    hdr = write_envi(tmp_path, scene_cube(9, 12, 6), wavelengths=WL,
                     extra={"rpc info": _rpc_info(_rpc_info_values(9, 12, (3, 7, 1)))})
    with pytest.warns(UserWarning, match=r"scene.hdr: 'rpc info'.*row 3, column 7 of a larger image"):
        scene = read_scene(hdr)
    assert _same_rpcs(scene.metadata["rpcs"], _gdal_rpcs(hdr))


# -- info says what places the scene -----------------------------------------------------------
def _placed(tmp_path, kind):
    """A scene file placed by ``kind``, as its product lays it out."""
    cube = scene_cube(9, 12, 6)
    if kind == "geotransform":
        return write_envi(tmp_path, cube, wavelengths=WL,
                          extra={"map info": "{UTM, 1, 1, 500000, 5800000, 30, 30, 33, North, WGS-84}"})
    if kind == "gcps":
        return write_envi(tmp_path, cube, wavelengths=WL, extra={"geo points": GEO_POINTS})
    if kind == "rpcs":
        return write_envi(tmp_path, cube, wavelengths=WL, extra={"rpc info": _rpc_info(_rpc_info_values(9, 12))})
    if kind == "gcps, rpcs":  # an L1 GeoTIFF with both
        from rasterio.control import GroundControlPoint
        from rasterio.crs import CRS

        path = write_tif(tmp_path / "l1.tif", cube, band_tags=TAGS, transform=None, crs=None)
        with rasterio.open(path, "r+") as ds:
            ds.gcps = ([GroundControlPoint(row=r, col=c, x=10.0 + 0.01 * c, y=45.0 - 0.01 * r, z=0.0)
                        for r, c in ((0, 0), (0, 12), (9, 0))], CRS.from_epsg(4326))
            ds.rpcs = _rpc(9, 12)
        return path
    return write_tif(tmp_path / "plain.tif", cube, band_tags=TAGS, transform=None, crs=None)


@pytest.mark.parametrize("kind, gcps, rpc_centre", [
    ("geotransform", None, None),
    ("gcps", 4, None),
    ("rpcs", None, [45.0, 10.0]),
    ("gcps, rpcs", 3, [45.0, 10.0]),
    ("", None, None),
])
def test_info_says_what_places_the_scene(tmp_path, run_cli, kind, gcps, rpc_centre):
    # info (what users check before unmixing) said nothing of ground control points or RPCs the
    # scene held: a GCP- or RPC-placed scene looked unplaced (crs and transform null)
    import json
    import re

    path = _placed(tmp_path, kind)
    code, out, err = run_cli("info", path, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["placed_by"] == ([] if not kind else kind.split(", "))
    assert d["gcp_count"] == gcps
    assert d["gcp_crs"] == ("EPSG:4326" if gcps else None)
    assert d["rpc_centre_lat_lon"] == rpc_centre
    code, out, err = run_cli("info", path)
    assert code == 0, err
    assert re.search(r"placed_by\W+" + (re.escape(kind) if kind else r"nothing \(maps open unplaced\)"), out), out
    if gcps:
        assert re.search(rf"gcp_count\W+{gcps}\b", out) and re.search(r"gcp_crs\W+EPSG:4326", out), out
    if rpc_centre:
        assert re.search(r"rpc_centre_lat_lon\W+45\.0, 10\.0", out), out
