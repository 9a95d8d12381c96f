"""GDAL geotransforms (``c a b f d e``) read from EMIT's global attribute and from a grid
mapping's ``GeoTransform``: one conversion, one check, one message."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hdf5_fixtures import make_emit_nc
from unmixgen.errors import InputError
from unmixgen.geotransform import from_gdal
from unmixgen.io import read_scene
from unmixgen.labelled import _geotransform

GT = [-116.2, 0.0005, 0.0, 36.5, 0.0, -0.0005]


@pytest.mark.parametrize("value", [GT, np.array(GT, np.float32), " ".join(repr(v) for v in GT), [int(v) for v in
                                                                                                 [10, 2, 0, 50, 0, -2]]])
def test_numbers_or_text_become_rasterio_order(value):
    g = np.asarray(value.split() if isinstance(value, str) else value, np.float64)
    assert from_gdal(value, "gt") == pytest.approx((g[1], g[2], g[0], g[4], g[5], g[3]))


@pytest.mark.parametrize("value, wrong", [
    ("1 2 3", "is not 6 finite numbers"), ([1, 2, 3, 4, 5, np.nan], "is not 6 finite numbers"),
    ("a b c d e f", "is not 6 finite numbers"), (np.ones(6, bool), "is not 6 finite numbers"),
    ([0, 1, 0, 0, 0, 0], "gives pixels of zero area"), ([0, 1, 1, 0, 1, 1], "gives pixels of zero area"),
])
def test_bad_values_are_refused_in_one_line_naming_where_they_were_read(value, wrong):
    with pytest.raises(InputError) as err:
        from_gdal(value, "x.nc: attribute 'gt'")
    text = str(err.value)
    assert text.startswith("x.nc: attribute 'gt' ") and wrong in text and "; expected" in text and "\n" not in text


@pytest.mark.parametrize("gt", [[-116.2, 0.0, 0.0, 36.5, 0.0, -0.00054], "1 2 3"])
def test_emit_and_a_grid_mapping_say_the_same_of_one_bad_geotransform(tmp_path, gt):
    """EMIT's reader and `labelled` each converted the geotransform, with different checks and
    messages (EMIT refused text GDAL writes, and said 'is not 6 finite numbers (GDAL order)'
    where the grid mapping said '...; expected 6 finite numbers in GDAL order')."""
    e = make_emit_nc(tmp_path / "e.nc")
    with h5py.File(e["path"], "r+") as f:
        f.attrs["geotransform"] = np.array(gt) if isinstance(gt, list) else gt
    with pytest.raises(InputError) as emit_err:
        read_scene(e["path"], ortho=True)
    with pytest.raises(InputError) as grid_err:
        _geotransform({"GeoTransform": gt}, "coordinate 'spatial_ref'", "scene")
    emit_text, grid_text = str(emit_err.value), str(grid_err.value)
    assert emit_text.startswith(f"{e['path']}: global attribute 'geotransform' ")
    assert grid_text.startswith("scene: coordinate 'spatial_ref''s GeoTransform ")
    assert emit_text.split("'geotransform' ", 1)[1] == grid_text.split("GeoTransform ", 1)[1]


def test_emit_reads_a_geotransform_written_as_text(tmp_path):
    e = make_emit_nc(tmp_path / "e.nc")
    with h5py.File(e["path"], "r+") as f:
        f.attrs["geotransform"] = " ".join(repr(v) for v in GT)
    assert read_scene(e["path"], ortho=True).transform == pytest.approx((0.0005, 0, -116.2, 0, -0.0005, 36.5))
