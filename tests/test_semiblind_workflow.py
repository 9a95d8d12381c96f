"""Semi-blind workflow helpers: the disjoint scene halves of the train-on-synthetic,
test-on-real benchmark, and the abundance prior trained on a scene's own coarse maps."""

from __future__ import annotations

import numpy as np
import pytest

from unmixgen.errors import InputError, ParameterError
from unmixgen.workflows.semiblind import scene_halves, stu_training_maps, train_scene_prior


@pytest.mark.parametrize("rows, cols", [(95, 95), (100, 100), (7, 10), (10, 7), (2, 2)])
@pytest.mark.parametrize("axis", [0, 1])
def test_scene_halves_are_disjoint_contiguous_and_cover_the_grid(rows, cols, axis):
    first, second = scene_halves(rows, cols, axis=axis)
    count = np.zeros((rows, cols), int)
    count[first] += 1
    count[second] += 1
    assert (count == 1).all()  # disjoint and covering
    grid = np.arange(rows * cols).reshape(rows, cols)
    n = (rows, cols)[axis]
    a, b = grid[first], grid[second]
    # the cut runs across the other axis: each half keeps every row (axis=1) / column (axis=0)
    assert a.shape[1 - axis] == b.shape[1 - axis] == (rows, cols)[1 - axis]
    assert a.shape[axis] == n // 2 and b.shape[axis] == n - n // 2
    # the first half is the left / top one, and both are contiguous blocks
    expected_first = grid[:, : n // 2] if axis == 1 else grid[: n // 2]
    np.testing.assert_array_equal(a, expected_first)
    np.testing.assert_array_equal(b, grid[:, n // 2:] if axis == 1 else grid[n // 2:])


def test_scene_halves_refuses_what_cannot_be_halved():
    with pytest.raises(ParameterError):
        scene_halves(4, 4, axis=2)
    with pytest.raises(InputError):
        scene_halves(5, 1, axis=1)


def test_scene_prior_learns_the_smoothed_fcls_maps_in_endmember_order(tmp_path, torch_one_thread):
    from unmixgen.priors.abundance.model import load_model
    from unmixgen.simulate.procedural import make_scene
    from unmixgen.unmix.hybridstu.smoothing import smooth_maps
    from unmixgen.unmix.inversion import fcls

    s = make_scene(rows=32, cols=32, p=3, bands=20, snr_db=40, seed=1)
    E = s.truth.endmembers[::-1].copy()  # not the scene's own order: the prior must follow E
    model_dir = train_scene_prior(s, E, tmp_path / "prior", max_minutes=None, max_steps=2, smoothing=1.0,
                                  width=8, batch_size=4, patch=8)
    model = load_model(model_dir)
    assert model.n_endmembers == 3
    data = np.load(model_dir / "data.npz")
    expected = smooth_maps(s.to_image(fcls(s.valid_pixels(), E), fill=np.nan), s.mask, 1.0)
    np.testing.assert_allclose(data["map_0"], expected, atol=1e-5)
    # the coarse maps follow the scene: the FCLS map with E reversed matches the reversed truth
    truth = s.truth.abundances[..., ::-1]
    assert np.sqrt(np.nanmean((data["map_0"] - truth) ** 2)) < 0.1
    maps = stu_training_maps(f"prior:{model_dir}", 3, n_maps=2, map_size=16, seed=0)
    assert maps.shape == (2, 16, 16, 3) and np.allclose(maps.sum(-1), 1, atol=1e-4)
    with pytest.raises(InputError):
        stu_training_maps(f"prior:{model_dir}", 4)
    # the folders are its own: a second run into the same place is refused, the first kept
    before = sorted(p.name for p in (tmp_path / "prior").rglob("*"))
    with pytest.raises(InputError, match="unmix"):
        train_scene_prior(s, E, tmp_path / "prior", max_steps=2, width=8, batch_size=4, patch=8)
    assert sorted(p.name for p in (tmp_path / "prior").rglob("*")) == before


@pytest.mark.parametrize("stage", ["save_result", "train_abundance_model"])
def test_a_scene_prior_that_fails_leaves_nothing(tmp_path, monkeypatch, stage):
    # out/unmix was written in place before training: a failure (or Ctrl-C) left it, half
    # written or without its model, and every later run into the same place was refused
    import unmixgen.runs.folder as folder
    import unmixgen.workflows.abundance as abundance
    from unmixgen.simulate.procedural import make_scene

    def fail(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(folder if stage == "save_result" else abundance, stage, fail)
    s = make_scene(rows=16, cols=16, p=3, bands=10, snr_db=40, seed=1)
    with pytest.raises(KeyboardInterrupt):
        train_scene_prior(s, s.truth.endmembers, tmp_path / "prior", max_steps=2, smoothing=1.0)
    assert list(tmp_path.iterdir()) == []


def test_unmix_hybridstu_refuses_a_count_beside_an_endmembers_file(tmp_path):
    """unmix_hybridstu(endmembers_file=..., n_endmembers=3) trained on the file's endmembers and
    dropped the count without a word (the command refuses the pair before calling it)."""
    from unmixgen.simulate.procedural import make_scene
    from unmixgen.workflows.semiblind import unmix_hybridstu

    scene = make_scene(rows=8, cols=9, p=2, bands=12, snr_db=30, seed=0)
    np.savez(tmp_path / "em.npz", endmembers=scene.truth.endmembers)
    with pytest.raises(ParameterError, match="^n_endmembers=3: expected either"):
        unmix_hybridstu(scene, endmembers_file=tmp_path / "em.npz", n_endmembers=3, max_steps=1)
