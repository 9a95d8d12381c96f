"""The run folder's scene fingerprint: a result names the scene it was computed on."""

from __future__ import annotations

import numpy as np

from unmixgen.io import read_scene, write_scene
from unmixgen.runs.folder import same_scene, scene_fingerprint
from unmixgen.scene import Scene


def test_fingerprint_is_the_central_window_mean_and_tells_scenes_apart(tmp_path):
    rng = np.random.default_rng(0)
    Y = rng.uniform(0.1, 0.5, (70, 45, 6)).astype(np.float32)
    Y[40, 20] = np.nan  # an invalid pixel inside the window is left out
    scene = Scene(Y)
    f = scene_fingerprint(scene)
    window = Y[19:51, 6:38]  # central 32 x 32 of 70 x 45
    assert f.shape == (4, 6) and np.allclose(f[0], window[:16, :16].reshape(-1, 6).mean(0))
    q = window[16:, :16].reshape(-1, 6)
    assert np.allclose(f[2], q[np.all(np.isfinite(q), axis=1)].mean(0))
    write_scene(scene, tmp_path / "again.tif")  # the same scene in another format
    assert same_scene(f, read_scene(tmp_path / "again.tif"))
    assert not same_scene(f, Scene(Y[::-1].copy()))  # same size, other pixels
    assert not same_scene(f, Scene(Y * 1.01))  # 1 % brighter: another scene
    assert not same_scene(f[:, :5], Scene(Y))  # other band count


def test_fingerprint_of_a_window_without_valid_pixels_matches_anything():
    Y = np.full((40, 40, 3), np.nan, np.float32)
    Y[:2, :2] = 1.0  # valid pixels only outside the central window (rows and columns 4-35)
    f = scene_fingerprint(Scene(Y))
    assert np.isnan(f).all() and same_scene(f, Scene(np.ones((40, 40, 3), np.float32)))
