"""`unmixgen.tiling.map_tiles`: the same result tiled and untiled, on every backend."""

import sys

import numpy as np
import pytest
from scipy import ndimage

from recording_source import RecordingSource, record_window
from unmixgen.errors import InputError, ParameterError
from unmixgen.scene import Scene
from unmixgen.tiling import map_tiles, windows

ROWS, COLS, BANDS = 23, 37, 3  # non-square, and no tile size below divides it


def _cube(seed=0):
    cube = np.random.default_rng(seed).uniform(0.1, 1.0, (ROWS, COLS, BANDS)).astype(np.float32)
    cube[3, 4] = np.nan
    cube[10, 20:23] = 0.0  # all-zero pixels are invalid
    cube[22, 36, 1] = np.inf
    return cube


def box_mean(data, mask):
    """Mean over the valid pixels of each pixel's 3x3 neighbourhood (inside the window)."""
    r, c, _ = data.shape
    vals = np.pad(np.where(mask[..., None], data, 0.0), ((1, 1), (1, 1), (0, 0)))
    weight = np.pad(mask.astype(np.float32), 1)
    total = np.zeros(data.shape, np.float32)
    count = np.zeros((r, c), np.float32)
    for dr in range(3):
        for dc in range(3):
            total += vals[dr:dr + r, dc:dc + c]
            count += weight[dr:dr + r, dc:dc + c]
    return total / np.maximum(count, 1.0)[..., None]


def _backends():
    out = ["serial", "threads"]
    try:
        import dask.array  # noqa: F401

        out.append("dask")
    except ImportError:
        out.append(pytest.param("dask", marks=pytest.mark.skip(reason="dask is not installed")))
    return out


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("tile", [4, 5, 16])
def test_tiled_equals_untiled_with_a_halo(backend, tile):
    scene = Scene(_cube())
    whole = map_tiles(scene, box_mean, tile=max(ROWS, COLS), out_channels=BANDS)
    tiled = map_tiles(scene, box_mean, tile=tile, halo=1, out_channels=BANDS, backend=backend,
                      n_workers=2)
    assert tiled.shape == (ROWS, COLS, BANDS) and tiled.dtype == np.float32
    np.testing.assert_array_equal(tiled, whole)


def test_box_mean_is_what_it_says_and_invalid_pixels_are_fill():
    cube = _cube()
    scene = Scene(cube)
    mask = scene.mask
    out = map_tiles(scene, box_mean, tile=6, halo=1, out_channels=BANDS)
    # an independent masked 3x3 mean: box sums of the masked values over box sums of the mask
    vals = np.where(mask[..., None], cube, 0.0).astype(np.float64)
    num = ndimage.uniform_filter(vals, size=(3, 3, 1), mode="constant")
    den = ndimage.uniform_filter(mask.astype(np.float64), size=3, mode="constant")
    np.testing.assert_allclose(out[mask], (num / den[..., None])[mask], rtol=1e-5)
    assert np.isnan(out[~mask]).all() and (~mask).sum() == 5


def test_without_halo_tiles_lose_their_neighbours():
    # makes sure the equality test above depends on the halo, i.e. box_mean uses neighbours
    scene = Scene(_cube())
    whole = map_tiles(scene, box_mean, tile=64, out_channels=BANDS)
    no_halo = map_tiles(scene, box_mean, tile=5, out_channels=BANDS)
    assert not np.allclose(no_halo[scene.mask], whole[scene.mask])


@pytest.mark.parametrize("backend", ["serial", "threads"])
def test_each_tile_reads_only_its_window(backend):
    cube = _cube()
    src = RecordingSource(cube)
    scene = Scene(src, mask=np.ones((ROWS, COLS), bool))
    map_tiles(scene, lambda d, m: d[..., :1], tile=6, halo=2, out_channels=1, backend=backend)
    expected = sorted(record_window(src.shape, w.outer_rows, w.outer_cols)
                      for w in windows(ROWS, COLS, 6, 2))
    assert sorted(src.windows) == expected  # each outer window once, nothing else
    assert src.largest_window() <= 10 * 10


def test_threads_backend_keeps_a_bounded_number_of_tiles():
    src = RecordingSource(_cube())
    scene = Scene(src, mask=np.ones((ROWS, COLS), bool))
    in_flight = []

    def on_tile(done, total):
        in_flight.append(len(src.windows) - done)

    map_tiles(scene, lambda d, m: d, tile=3, out_channels=BANDS, backend="threads", n_workers=2,
              on_tile=on_tile)
    assert len(in_flight) == len(windows(ROWS, COLS, 3)) and max(in_flight) <= 2 * 2


@pytest.mark.parametrize("rows,cols,tile,halo", [(9, 13, 4, 0), (9, 13, 4, 2), (5, 5, 5, 1), (1, 7, 3, 4),
                                                  (17, 6, 8, 1), (10, 10, 3, 3)])
def test_windows_cover_every_pixel_once_and_halos_are_the_clipped_dilation(rows, cols, tile, halo):
    # rows % tile == 1 in several cases: a last tile of a single row or column must not be lost
    seen = np.zeros((rows, cols), int)
    for w in windows(rows, cols, tile, halo):
        seen[w.rows, w.cols] += 1
        inner = np.zeros((rows, cols), bool)
        inner[w.rows, w.cols] = True
        assert 1 <= w.rows.stop - w.rows.start <= tile and 1 <= w.cols.stop - w.cols.start <= tile
        # the outer window: every pixel within `halo` (Chebyshev distance) of the tile, by brute force
        rr, cc = np.nonzero(inner)
        want = np.zeros((rows, cols), bool)
        want[max(rr.min() - halo, 0):rr.max() + halo + 1, max(cc.min() - halo, 0):cc.max() + halo + 1] = True
        got = np.zeros((rows, cols), bool)
        got[w.outer_rows, w.outer_cols] = True
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got[w.outer_rows, w.outer_cols][w.inner], inner[w.rows, w.cols])
        assert inner[w.outer_rows, w.outer_cols][w.inner].all()
    np.testing.assert_array_equal(seen, 1)


@pytest.mark.parametrize("backend", _backends())
def test_tiles_without_valid_pixels_are_not_read_or_computed(backend):
    cube = _cube()
    cube[:8, :8] = np.nan  # covers tile (0, 0) of the 8-pixel grid
    src = RecordingSource(cube)
    scene = Scene(src)
    _ = scene.mask
    src.windows.clear()
    calls = []

    def fn(data, mask):
        calls.append(data.shape)
        return data

    out = map_tiles(scene, fn, tile=8, out_channels=BANDS, fill=-1.0, backend=backend, n_workers=2)
    assert len(calls) == len(windows(ROWS, COLS, 8)) - 1 == len(src.windows)
    assert (out[:8, :8] == -1.0).all()
    np.testing.assert_array_equal(out[scene.mask], cube[scene.mask])


def test_fn_with_the_wrong_shape_is_refused():
    scene = Scene(_cube())
    with pytest.raises(ValueError, match=r"expected \(\d+, \d+, 2\)"):
        map_tiles(scene, lambda d, m: d, tile=8, out_channels=2)


def test_a_bare_array_is_refused_with_what_to_pass():
    # was "'numpy.ndarray' object has no attribute 'mask'"
    with pytest.raises(InputError, match=r"^scene is a ndarray, not a scene; expected a Scene \(unmixgen.Scene"):
        map_tiles(_cube(), box_mean, out_channels=BANDS)


@pytest.mark.parametrize("kw, name", [({"tile": 0}, "tile=0"), ({"halo": -1}, "halo=-1"),
                                      ({"backend": "mpi"}, "backend='mpi'"),
                                      ({"backend": "threads", "n_workers": 0}, "n_workers=0")])
def test_bad_parameters_name_the_parameter(kw, name):
    with pytest.raises(ParameterError, match=name):
        map_tiles(Scene(_cube()), box_mean, out_channels=BANDS, **kw)


def test_dask_backend_without_dask_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)  # import dask now raises ImportError
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ParameterError, match="backend='dask'.*not installed"):
        map_tiles(Scene(_cube()), box_mean, out_channels=BANDS, backend="dask")
