"""Column stripes (`unmixgen.unmix.stripes`): measured where a pushbroom's detector gains differ
between columns, not where the scene's content does, and given to HybridSTU's training scenes."""

from __future__ import annotations

import numpy as np
import pytest

from unmixgen.errors import ParameterError
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import abundance_maps
from unmixgen.simulate.scene import simulate
from unmixgen.unmix.hybridstu import HybridSTU
from unmixgen.unmix.hybridstu import data as D
from unmixgen.unmix.stripes import DETECTION_RATIO, column_stripes, line_index, stripe_angle

BANDS, P = 80, 4


def endmembers() -> np.ndarray:
    x = np.linspace(0, 1, BANDS)
    return np.stack([0.2 + 0.6 * x, 0.8 - 0.5 * x, 0.3 + 0.3 * np.sin(6 * x) ** 2,
                     0.5 + 0.2 * np.cos(9 * x)]).astype(np.float32)


def cube(rows=64, cols=48, snr=35.0, seed=0, A=None) -> tuple[np.ndarray, np.ndarray]:
    A = abundance_maps(rows, cols, P, seed, max_abundance=0.9) if A is None else A
    return simulate(A, endmembers(), snr_db=snr, seed=seed)[0].cube, A


def striped(Y: np.ndarray, std: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    gain = 1.0 + std * np.random.default_rng(seed).standard_normal(Y.shape[1:])  # one per (column, band)
    return (Y * gain[None]).astype(np.float32), gain


def test_column_gains_are_measured_and_a_clean_scene_shows_none():
    Y, _ = cube()
    clean = column_stripes(Scene(Y))
    assert not clean.detected and clean.ratio < DETECTION_RATIO / 2
    found = column_stripes(Scene(striped(Y, 0.02)[0]))
    assert found.detected and found.columns == 48
    assert 0.012 < np.median(found.gain_std) < 0.03  # 2 %, less the part the signal subspace hides
    assert found.record()["detected"] is True


def test_a_material_down_whole_columns_is_not_taken_for_stripes():
    A = abundance_maps(64, 48, P, 2, max_abundance=0.9)
    A[:, 10:14] = np.eye(P)[3]  # a road the whole height of the image, in both halves of the rows
    A[:, 30] = np.eye(P)[1]
    Y, _ = cube(A=A)
    assert not column_stripes(Scene(Y)).detected


def test_a_road_of_a_rare_material_down_one_column_is_not_taken_for_stripes():
    # north-up map grids have their north-south roads down single columns; a material the scene
    # holds nowhere else lies outside the signal subspace, and its halves agree as a stripe's
    Y, _ = cube(rows=96, cols=80, seed=4)
    Y = Y.copy()
    x = np.linspace(0, 1, BANDS)
    road = (0.45 + 0.25 * np.sin(23 * x) * np.cos(5 * x)).astype(np.float32)
    Y[:, 40] = road + 0.002 * np.random.default_rng(0).standard_normal((96, BANDS)).astype(np.float32)
    found = column_stripes(Scene(Y), angle=0.0)
    assert not found.detected and found.columns == 79  # the road's column set aside
    assert column_stripes(Scene(striped(Y, 0.02)[0]), angle=0.0).detected  # real stripes still are


def test_invalid_pixels_and_bad_bands_are_left_out():
    Y, _ = cube(seed=3)
    Y, _ = striped(Y, 0.02)
    Y[5] = np.nan  # a lost line
    Y[np.random.default_rng(0).random(Y.shape[:2]) < 0.05] = np.nan
    good = np.ones(BANDS, bool)
    good[:4] = False
    Y[..., :4] = 1e6  # garbage in bands marked bad
    found = column_stripes(Scene(Y, good_bands=good))
    assert found.detected and np.all(np.isfinite(found.gain_std))
    assert np.all(found.gain_std[:4] == 0) and np.all(found.gain_std[4:] > 0)


def test_a_lake_down_some_columns_leaves_the_infrared_measured_in_the_others():
    A = abundance_maps(64, 48, P, 7, max_abundance=0.9)
    Y, _ = cube(A=A, seed=7)
    rng = np.random.default_rng(7)  # water: dark beyond the red edge, down three whole columns
    Y[:, 20:23, BANDS // 2:] = 0.002 + 0.0005 * rng.standard_normal((64, 3, BANDS - BANDS // 2))
    found = column_stripes(Scene(striped(Y, 0.02)[0]))
    assert found.detected and np.all(found.gain_std[BANDS // 2:] > 0.012)


def test_bands_across_a_gap_of_bad_ones_are_not_averaged_as_neighbours():
    Y, _ = cube(seed=8)
    gain = 1.0 + np.random.default_rng(2).standard_normal(Y.shape[1:]) * np.where(np.arange(BANDS) < 40, 0.03, 0.01)
    Y = (Y * gain).astype(np.float32)
    good = np.ones(BANDS, bool)
    good[40:48] = False  # a water absorption between the 3 % and the 1 % bands
    found = column_stripes(Scene(Y, good_bands=good))
    assert found.gain_std[39] > 0.022 and found.gain_std[48] < 0.016  # each near its own side's spread


def test_a_scene_too_small_to_tell_gives_none():
    Y, _ = cube(rows=24)  # 12 rows a half: too few to tell a column's gain from its noise
    assert column_stripes(Scene(Y)) is None


def test_training_scenes_get_one_gain_per_column_and_band_and_nothing_else_changes():
    A = abundance_maps(20, 16, P, 5, max_abundance=0.9)
    E = endmembers()
    kw = dict(snr_db=30.0, variability=0.1, jitter=0.01, seed=4)
    (plain, a), = D.training_pairs([A], E, **kw)
    (none, _), = D.training_pairs([A], E, **kw, stripe_std=None)
    np.testing.assert_array_equal(none, plain)
    (strip, a2), = D.training_pairs([A], E, **kw, stripe_std=np.full(BANDS, 0.03))
    ratio = strip / plain
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:1], ratio.shape), rtol=1e-5)  # down each column
    assert 0.02 < np.std(ratio[0]) < 0.04 and np.array_equal(a2, a)


def test_hybridstu_trains_with_the_scenes_stripes_and_says_so(torch_one_thread):
    Y, A = cube(rows=40, cols=36, snr=40.0, seed=6)
    opts = dict(k=3, width=8, n_maps=6, map_size=16, max_steps=5, max_minutes=None, batch_size=4, crop=12,
                eval_every=5, tile=64)
    Ys, _ = striped(Y, 0.02)
    est = HybridSTU(P, **opts).fit(Scene(Ys), endmembers=endmembers())
    rec = est.history_["stripes"]
    assert rec["detected"] and rec["trained"] and rec["variance_to_noise"] > 1  # at 40 dB 2 % stripes outweigh
    # the noise (the record says by how much)
    assert not HybridSTU(P, **opts).fit(Scene(Y), endmembers=endmembers()).history_["stripes"]["detected"]
    off = HybridSTU(P, stripes="none", **opts).fit(Scene(Ys), endmembers=endmembers())
    # the same noise either way: the stripes come on top of it
    assert off.history_["stripes"] is None and off.history_["snr_db"] == est.history_["snr_db"]
    with pytest.raises(ParameterError, match="stripes"):
        HybridSTU(P, stripes="yes").check_params()


def test_upright_crops_keep_columns_as_columns():
    import torch

    x = torch.arange(16.0).repeat(16, 1)[None]  # (1, 16, 16): each column its own value, down the rows
    pairs = [(x, x.clone())]
    for upright, rows_alike in ((True, True), (False, False)):
        gen = torch.Generator().manual_seed(0)
        xb, ab = D.PairSampler(pairs, 8, upright=upright).batch(64, gen)
        alike = (xb == xb[:, :, :1]).all(dim=(1, 2, 3))  # every row of the crop the same: columns kept
        assert bool(alike.all()) is rows_alike and torch.equal(xb, ab)


def test_too_few_bands_to_hold_the_scene_in_the_subspace_gives_none():
    # 10 bands leave a subspace of 2 components: a clean 4-endmember scene's own signal fell
    # outside it and read as stripes (ratio 3.3; 7 on a 64 x 48 one), which HybridSTU then
    # trained with (4 % gains) and took out of the noise (35 -> 43 dB)
    x = np.linspace(0, 1, 10)
    E = np.stack([0.2 + 0.6 * x, 0.8 - 0.5 * x, 0.3 + 0.3 * np.sin(6 * x) ** 2, 0.5 + 0.2 * np.cos(9 * x)])
    A = abundance_maps(96, 64, P, 1, max_abundance=0.9)
    Y = simulate(A, E.astype(np.float32), snr_db=35, seed=1)[0].cube
    assert column_stripes(Scene(Y)) is None


def test_rows_split_where_the_valid_pixels_do():
    # the top half of the image no-data (a scene framed by nodata, a truncated acquisition):
    # 46 valid rows are plenty, but a split at rows // 2 left every column's top half empty
    Y, _ = cube(rows=96, cols=64, seed=1)
    Y, _ = striped(Y, 0.02)
    full = column_stripes(Scene(Y))
    Y[:50] = np.nan
    found = column_stripes(Scene(Y))
    assert found is not None and found.detected and found.columns == 64
    assert abs(np.median(found.gain_std) - np.median(full.gain_std)) < 0.004


def test_one_strip_in_memory_at_a_time():
    import tracemalloc

    Y, _ = cube(rows=200, cols=200, seed=2)
    Y = Y.copy()
    Y[3, 7] = np.nan  # an invalid pixel: its NaN must still be kept out of the column means
    scene = Scene(Y.astype(np.float64))  # read as float32 copies window by window
    _ = scene.mask  # computed first: this measures the stripes' own memory
    tracemalloc.start()
    try:
        found = column_stripes(scene, sample=2000, angle=0.0)  # the columns only
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found is not None and np.all(np.isfinite(found.gain_std))
    # each half of the rows is one strip here: its float32 read, and not two more copies of it
    assert peak < 1.6 * Y.nbytes / 2, peak / (Y.nbytes / 2)


def map_grid(Y: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``Y (rows, cols, B)`` of a pushbroom's own geometry resampled by nearest neighbour to a
    grid turned ``degrees`` against it (a map-grid product; NaN outside the swath), and the
    sensor column (int, -1 outside) each grid pixel came from."""
    r, c, _ = Y.shape
    t = np.deg2rad(degrees)
    R, C = int(np.ceil(r * np.cos(t) + c * np.sin(t))), int(np.ceil(c * np.cos(t) + r * np.sin(t)))
    yy, xx = np.mgrid[0:R, 0:C].astype(float)
    y0 = (yy - (R - 1) / 2) * np.cos(t) - (xx - (C - 1) / 2) * np.sin(t) + (r - 1) / 2
    x0 = (yy - (R - 1) / 2) * np.sin(t) + (xx - (C - 1) / 2) * np.cos(t) + (c - 1) / 2
    yi, xi = np.rint(y0).astype(int), np.rint(x0).astype(int)
    ok = (yi >= 0) & (yi < r) & (xi >= 0) & (xi < c)
    out = np.full((R, C, Y.shape[2]), np.nan, np.float32)
    out[ok] = Y[yi[ok], xi[ok]]
    return out, np.where(ok, xi, -1)


@pytest.mark.parametrize("degrees", [7.0, -12.0])
def test_a_map_grids_slanted_stripes_are_found_at_their_angle(degrees):
    # a 2 % striped sensor image turned into a map grid: the columns show nothing, the lines
    # at the heading's angle the same stripes as the sensor's own columns
    Y, _ = cube(rows=96, cols=80, seed=7)
    Ys, _ = striped(Y, 0.02)
    own = column_stripes(Scene(Ys))
    grid, _ = map_grid(Ys, degrees)
    assert not column_stripes(Scene(grid), angle=0.0).detected
    found = column_stripes(Scene(grid))
    assert found.detected and abs(found.angle + degrees) <= 0.5, found.angle  # turning the grid by d turns
    # its lines by -d against the grid's columns
    assert abs(np.median(found.gain_std) - np.median(own.gain_std)) < 0.004
    assert found.record()["angle_deg"] == round(found.angle, 2)
    clean = column_stripes(Scene(map_grid(Y, degrees)[0]))
    assert not clean.detected and clean.ratio < DETECTION_RATIO and clean.angle == 0.0


def test_line_index_follows_the_sensor_columns_of_a_map_grid():
    rows, cols = np.mgrid[0:5, 0:7]
    np.testing.assert_array_equal(line_index(rows, cols, 0.0, (5, 7)), cols)
    grid, source = map_grid(np.zeros((60, 50, 1), np.float32), 10.0)
    inside = source >= 0
    rr, cc = np.nonzero(inside)
    best = 0.0
    for phase in np.linspace(0, 1, 8, endpoint=False):
        lines = line_index(rr, cc, -10.0, grid.shape[:2], phase)
        offset = np.median(lines - source[inside])
        best = max(best, np.mean(lines - source[inside] == offset))
    assert best > 0.97  # one line per sensor column, but for rounding at the borders


def test_the_angle_search_is_none_on_too_few_bands():
    x = np.linspace(0, 1, 10)
    Y = np.random.default_rng(0).random((40, 40, 1)) * x[None, None]
    assert stripe_angle(Scene(Y.astype(np.float32))) is None


def test_training_scenes_get_slanted_stripes_at_the_angle_measured():
    A = abundance_maps(48, 40, P, 5, max_abundance=0.9)
    kw = dict(snr_db=None, variability=0.0, jitter=0.0, seed=4)
    (plain, _), = D.training_pairs([A], endmembers(), **kw)
    (strip, _), = D.training_pairs([A], endmembers(), **kw, stripe_std=np.full(BANDS, 0.03), stripe_angle=20.0)
    gain = (strip / plain)[..., 10]
    # along the lines (a row down, tan(20 deg) = 0.36 columns right) the gain mostly stays; down a
    # column it does not
    step = [np.mean(np.abs(gain[k:, int(round(k * np.tan(np.deg2rad(20)))):] -
                           gain[:-k or None, : gain.shape[1] - int(round(k * np.tan(np.deg2rad(20))))]) < 1e-6)
            for k in (3, 11)]
    column = np.mean(np.abs(gain[11:] - gain[:-11]) < 1e-6)
    assert min(step) > 0.6 and column < 0.2, (step, column)


def test_crops_of_slanted_stripes_are_never_mirrored():
    import torch

    x = (torch.arange(16.0)[None, :] - torch.arange(16.0)[:, None])[None]  # constant along the diagonals
    pairs = [(x, x.clone())]
    for mirror, kept in ((False, True), (True, False)):
        xb, _ = D.PairSampler(pairs, 8, upright=True, mirror=mirror).batch(64, torch.Generator().manual_seed(0))
        diagonal = (xb[:, :, 1:, 1:] == xb[:, :, :-1, :-1]).all(dim=(1, 2, 3))
        assert bool(diagonal.all()) is kept


def test_hybridstu_trains_with_a_map_grids_slanted_stripes(torch_one_thread):
    Y, _ = cube(rows=48, cols=44, snr=40.0, seed=8)
    grid, _ = map_grid(striped(Y, 0.02)[0], 9.0)
    opts = dict(k=3, width=8, n_maps=6, map_size=16, max_steps=5, max_minutes=None, batch_size=4, crop=12,
                eval_every=5, tile=64)
    rec = HybridSTU(P, **opts).fit(Scene(grid), endmembers=endmembers()).history_["stripes"]
    assert rec["detected"] and rec["trained"] and abs(rec["angle_deg"] + 9.0) <= 0.5


def lines_striped(Y: np.ndarray, degrees: float, phase: float, std: float = 0.02, seed: int = 1) -> np.ndarray:
    """``Y`` with a gain per (line at ``degrees``, ``phase`` (`line_index`), band)."""
    h, w = Y.shape[:2]
    lines = line_index(np.arange(h)[:, None], np.arange(w)[None], degrees, (h, w), phase)
    z = np.random.default_rng(seed).standard_normal((int(lines.max()) + 1, Y.shape[2]))
    return (Y * (1.0 + std * z)[lines]).astype(np.float32)


@pytest.mark.parametrize(("degrees", "phase"), [(89.5, 0.5), (-89.75, 0.25), (2.25, 0.5)])
def test_the_angle_search_finds_lines_near_an_axis_whatever_their_phase(degrees, phase):
    # within a few degrees of the columns or rows, lines taken at the wrong phase hold runs of
    # two detector lines each: searched at phase 0 only, 2 % stripes at 89.5 deg, phase 0.5 were
    # not detected (ratio 0.33, at their own lines 62), at 2.25 deg measured 1.2 %
    Y, _ = cube(rows=256, cols=256, seed=7)
    found = column_stripes(Scene(lines_striped(Y, degrees, phase)))
    wrapped = (found.angle - degrees + 90.0) % 180.0 - 90.0
    assert found.detected and abs(wrapped) <= 0.25, found.record()
    assert abs(np.median(found.gain_std) - 0.02) < 0.003, found.record()


def test_lines_a_fraction_of_a_degree_off_the_columns_are_measured_along_their_lines():
    # half seen down the columns (2 % at 0.5 deg: ratio 0.91, 0.73 %), which stopped the search
    Y, _ = cube(rows=256, cols=256, seed=7)
    assert column_stripes(Scene(lines_striped(Y, 0.5, 0.5)), angle=0.0).detected  # weakly
    found = column_stripes(Scene(lines_striped(Y, 0.5, 0.5)))
    assert found.detected and abs(found.angle - 0.5) <= 0.1 and abs(np.median(found.gain_std) - 0.02) < 0.003
    columns = column_stripes(Scene(lines_striped(Y, 0.0, 0.0)))  # the columns themselves stay the columns
    assert columns.detected and columns.angle == 0.0


def test_a_detectors_few_bad_elements_are_stripes_not_roads():
    # real detectors have a few elements far worse than the rest; their gains are their own in
    # every band, where a road's spectrum is smooth: six columns at 5 % on an otherwise clean
    # detector (1.2 % over all columns) were set aside as roads and read as no stripes (ratio 0.06)
    Y, _ = cube(rows=128, cols=120, seed=4)
    rng = np.random.default_rng(3)
    g = np.zeros(Y.shape[1:])
    g[rng.choice(120, 6, replace=False)] = 0.05 * rng.standard_normal((6, BANDS))
    found = column_stripes(Scene((Y * (1 + g)).astype(np.float32)), angle=0.0)
    assert found.detected and found.columns == 120, found.record()
    assert abs(np.median(found.gain_std) - np.sqrt(np.mean(g**2))) < 0.003, found.record()


def test_slanted_stripes_off_the_images_middle_are_measured_as_in_the_middle():
    # a map-grid product clipped off its swath: the valid pixels lie at one side of a wide image.
    # The search's first windows sat on the image's middle, saw part of the data or none and chose
    # the lines' phase half a line off: 2 % stripes measured as 0.98 % (2.04 % unpadded)
    Y, _ = cube(rows=64, cols=64, seed=7)
    Ys = lines_striped(Y, -12.0, 0.5)
    own = column_stripes(Scene(Ys))
    for width in (300, 1300):  # 1300: past the search's widest window (1024), which found no stripes
        wide = np.full((64, width, Ys.shape[2]), np.nan, np.float32)
        wide[:, :64] = Ys
        found = column_stripes(Scene(wide))
        assert own.detected and found.detected and abs(found.angle - own.angle) <= 0.25, (width, found.record())
        assert abs(np.median(found.gain_std) - np.median(own.gain_std)) < 0.001, (width, found.record())
