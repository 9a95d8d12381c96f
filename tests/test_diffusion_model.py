"""Abundance diffusion: data split, representations, training/resume, sampling validity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from unmixgen.evaluate.unmixing import match_endmembers, sad
from unmixgen.nn import checkpoint as ck
from unmixgen.priors.abundance.model import load_model
from unmixgen.priors.abundance.patches import FLOOR, HELDOUT, TRAIN, split_maps
from unmixgen.priors.abundance.representation import (
    CenteredLogRatio,
    SimplexLinear,
    project_simplex,
)
from unmixgen.priors.abundance.train import create_model_folder, train
from unmixgen.runs.sources import load_training_maps

TINY = {"patch": 8, "width": 8, "channel_mult": [1, 2], "batch_size": 8, "checkpoint_every_s": 1e9}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def smooth_maps(rows: int, cols: int, p: int, seed: int, sharp: float = 4.0) -> np.ndarray:
    """Smooth random abundance maps (rows, cols, p) on the simplex."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols] / 6.0
    logits = np.stack([np.sin(xx * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
                       + np.cos(yy * rng.uniform(0.5, 1.5) + rng.uniform(0, 6)) for _ in range(p)], -1)
    e = np.exp(sharp * logits)
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def write_result(folder: Path, a: np.ndarray, e: np.ndarray, method: str | None = None) -> Path:
    folder.mkdir(parents=True)
    np.savez_compressed(folder / "result.npz", abundances=a, mask=np.ones(a.shape[:2], bool),
                        endmembers=e.astype(np.float32), names=np.array([f"m{i}" for i in range(a.shape[-1])]))
    if method:
        (folder / "run.json").write_text(json.dumps({"parameters": {"method": method}}))
    return folder


def endmembers(p: int, bands: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 1.0, (p, bands))


@pytest.fixture(scope="module", params=["simplex", "clr"])
def trained(tmp_path_factory, request) -> Path:
    """A tiny model (p=3, 8 px patches) trained for a few steps on a 40x36 map, for each
    representation."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("diff")
    res = write_result(root / "res", smooth_maps(40, 36, 3, 0), endmembers(3))
    model = root / "model"
    model.mkdir()
    create_model_folder(model, load_training_maps([res]), **TINY, representation=request.param)
    train(model, max_steps=6, progress=False)
    return model


def test_representations_round_trip_and_are_valid_for_any_input():
    a = torch.from_numpy(smooth_maps(8, 8, 4, 1)).permute(2, 0, 1)[None]
    clr = CenteredLogRatio(eps=1e-6).fit(a)
    assert torch.allclose(clr.decode(clr.encode(a)), a, atol=1e-4)
    lin = SimplexLinear()
    assert torch.allclose(lin.decode(lin.encode(a)), a, atol=1e-5)
    x = 5 * torch.randn(3, 4, 8, 8)
    for rep in (clr, lin):
        out = rep.decode(x)
        assert (out >= 0).all() and torch.allclose(out.sum(1), torch.ones(3, 8, 8), atol=1e-5)


def test_simplex_projection_matches_exact_threshold():
    """The projection is max(v - theta, 0) with theta solving sum = 1 (found by bisection)."""
    v = torch.randn(50, 5, dtype=torch.float64) * 2
    proj = project_simplex(v, dim=1).numpy()
    for row, pr in zip(v.numpy(), proj, strict=True):
        lo, hi = row.min() - 1, row.max()
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if np.clip(row - mid, 0, None).sum() > 1 else (lo, mid)
        np.testing.assert_allclose(pr, np.clip(row - lo, 0, None), atol=1e-9)


def test_holdout_blocks_are_disjoint_from_training_patches():
    a = smooth_maps(50, 44, 3, 2)
    a[3, 30] = np.nan  # an invalid pixel: no training crop may contain it
    split = split_maps([a], patch=8)
    cls = split.classes[0]
    assert {HELDOUT, FLOOR} <= set(np.unique(cls))
    covered = np.zeros(a.shape[:2], bool)
    for _, r, c in split.positions:
        covered[r:r + 8, c:c + 8] = True
    assert not (covered & (cls != TRAIN)).any()
    assert not covered[3, 30]
    # held-out blocks are real blocks of the map, spread over the scene (several block rows)
    rows_h = np.nonzero((cls == HELDOUT).any(1))[0]
    assert rows_h.min() < 16 and rows_h.max() > 30
    assert len(split.heldout) >= 2 and len(split.floor) >= 2


def test_endmember_matching_reorders_channels(tmp_path):
    e = endmembers(3, seed=1)
    a = smooth_maps(24, 24, 3, 3)
    perm = [2, 0, 1]
    r1 = write_result(tmp_path / "a", a, e)
    r2 = write_result(tmp_path / "b", a[..., perm], e[perm] * 1.3)  # scaled: same angles
    p = match_endmembers(e[perm], e, by="sad")  # estimate first, reference second
    assert np.allclose(sad(e[perm][p], e), 0, atol=1e-4) and list(np.asarray(perm)[p]) == [0, 1, 2]
    data = load_training_maps([r1, r2])
    np.testing.assert_allclose(data.maps[1], data.maps[0])


def test_resume_equals_uninterrupted_weights_samples_and_loss_log(tmp_path):
    res = write_result(tmp_path / "res", smooth_maps(40, 36, 3, 4), endmembers(3))
    data = load_training_maps([res])
    dirs = []
    for name in ("straight", "resumed"):
        d = tmp_path / name
        d.mkdir()
        create_model_folder(d, data, **{**TINY, "warmup_steps": 4})
        dirs.append(d)
    straight = train(dirs[0], max_steps=14, progress=False, log_every=4)
    train(dirs[1], max_steps=6, progress=False, log_every=4)  # "killed" after its checkpoint at step 6
    assert json.loads((dirs[1] / "checkpoint.json").read_text())["step"] == 6
    resumed = train(dirs[1], max_steps=14, progress=False, log_every=4)
    a, b = (ck.load_weights(ck.latest_checkpoint(d)) for d in dirs)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the loss log (and the printed loss) continue the uninterrupted run's
    assert resumed["loss"] == straight["loss"]
    assert resumed["curve_steps"] == straight["curve_steps"] == [4, 8, 12, 14]
    assert resumed["curve_losses"] == straight["curve_losses"]
    m1, m2 = load_model(dirs[0]), load_model(dirs[1])
    assert m1.step == m2.step == 14
    np.testing.assert_array_equal(m1.sample(2, steps=3, progress=False), m2.sample(2, steps=3, progress=False))


def test_training_target_is_the_velocity_of_the_noise_schedule():
    """The objective noises x0 with the DDPM schedule and regresses v = sqrt(abar) noise -
    sqrt(1 - abar) x0 (checked against diffusers and against the closed form)."""
    from unmixgen.priors.diffusion import diffusion_loss, noisy_and_target, train_scheduler

    sched = train_scheduler({"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
                             "prediction_type": "v_prediction"})
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    t = torch.tensor([0, 10, 500, 999])
    xt, target = noisy_and_target(sched, x0, noise, t)
    torch.testing.assert_close(target, sched.get_velocity(x0, noise, t), rtol=0, atol=0)
    abar = sched.alphas_cumprod.double()[t][:, None, None, None]
    x0d, nd = x0.double(), noise.double()
    torch.testing.assert_close(xt.double(), abar.sqrt() * x0d + (1 - abar).sqrt() * nd, rtol=0, atol=1e-6)
    torch.testing.assert_close(target.double(), abar.sqrt() * nd - (1 - abar).sqrt() * x0d, rtol=0, atol=1e-6)
    # x0 is recoverable from (x_t, v): the parameterisation the samplers assume
    torch.testing.assert_close(abar.sqrt() * xt.double() - (1 - abar).sqrt() * target.double(), x0d,
                               rtol=0, atol=1e-5)

    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, x, tt, labels):
            seen["x"], seen["t"] = x, tt
            return torch.zeros_like(x)

    loss = diffusion_loss(Spy(), sched, x0, noise, t)
    torch.testing.assert_close(seen["x"], xt)
    assert torch.equal(seen["t"], t)
    torch.testing.assert_close(loss, (target ** 2).mean())
    eps = train_scheduler({"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
                           "prediction_type": "epsilon"})
    assert torch.equal(noisy_and_target(eps, x0, noise, t)[1], noise)


def constant_result(root: Path, name: str, a: np.ndarray, rows: int = 24, cols: int = 24) -> Path:
    """A result folder whose map is the abundance vector ``a`` everywhere."""
    maps = np.broadcast_to(np.asarray(a, np.float32), (rows, cols, len(a))).copy()
    return write_result(root / name, maps, endmembers(len(a)))


LEARN = {**TINY, "lr": 3e-3, "warmup_steps": 10, "ema_decay": 0.95}
CONSTANT = np.array([0.7, 0.2, 0.1], np.float32)


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory) -> tuple[Path, dict]:
    """A tiny model trained briefly on maps that are `CONSTANT` everywhere (a trivially
    learnable set: the clean sample is the same in every patch), and its training summary."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("constant")
    m = root / "m"
    m.mkdir()
    create_model_folder(m, load_training_maps([constant_result(root, "c", CONSTANT)]), **LEARN)
    return m, train(m, max_steps=100, progress=False)


def test_loss_falls_on_a_trivially_learnable_set(constant_model):
    losses = constant_model[1]["curve_losses"]
    assert losses[-1] < 0.5 * losses[0], losses


def test_model_trained_on_constant_maps_samples_near_them(constant_model):
    x = load_model(constant_model[0]).sample(8, steps=10, seed=0, progress=False)
    err = np.abs(x.mean((1, 2)) - CONSTANT).max(-1)  # per sample: its mean vs the constant
    assert (err < 0.1).all(), err


def test_model_trained_on_two_mode_maps_samples_both_modes(tmp_path):
    """Maps either all material 0 or all material 2: samples land near one of the two modes
    (not at their average, 0.42 away from both), and both modes are drawn."""
    modes = np.array([[0.9, 0.05, 0.05], [0.05, 0.05, 0.9]], np.float32)
    folders = [constant_result(tmp_path, f"m{k}", a) for k, a in enumerate(modes)]
    m = tmp_path / "m"
    m.mkdir()
    create_model_folder(m, load_training_maps(folders), **{**LEARN, "width": 16, "batch_size": 16})
    train(m, max_steps=150, progress=False)
    x = load_model(m).sample(16, steps=10, seed=0, progress=False).mean((1, 2))  # (16, 3)
    dist = np.abs(x[:, None, :] - modes[None]).max(-1)  # (16, 2)
    near = dist.min(1) < 0.15
    assert near.sum() >= 14, np.round(x, 2)
    assert np.bincount(dist.argmin(1)[near], minlength=2).min() >= 2, np.round(x, 2)


@pytest.mark.parametrize("sampler", ["ddim", "dpm", "ddpm"])
def test_every_sample_is_a_valid_abundance_map(trained, sampler):
    model = load_model(trained)
    steps = {"ddim": 4, "dpm": 4, "ddpm": 20}[sampler]
    x = model.sample(48, sampler=sampler, steps=steps, seed=1, batch_size=48, progress=False)
    assert x.shape == (48, 8, 8, 3) and x.dtype == np.float32
    assert np.isfinite(x).all() and (x >= 0).all()
    np.testing.assert_allclose(x.sum(-1), 1.0, atol=1e-5)


def test_sampling_is_seeded_and_independent_of_batch_size(trained):
    model = load_model(trained)
    a = model.sample(5, sampler="ddpm", steps=5, seed=3, batch_size=5, progress=False)
    b = model.sample(5, sampler="ddpm", steps=5, seed=3, batch_size=2, progress=False)
    c = model.sample(5, sampler="ddpm", steps=5, seed=4, batch_size=5, progress=False)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, c)


def test_large_map_tiled_sampling_is_valid(trained):
    model = load_model(trained)
    x = model.sample(2, size=20, steps=3, progress=False)  # > 4x the 8x8 patch area
    assert x.shape == (2, 20, 20, 3)
    assert np.isfinite(x).all() and (x >= 0).all()
    np.testing.assert_allclose(x.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"count": 0}, "count=0: expected >= 1"),
    ({"count": 1, "sampler": "euler"}, "sampler='euler': expected one of ddim, dpm, ddpm"),
    ({"count": 1, "steps": 1001}, "steps=1001: expected >= 1 and <= 1000"),
    ({"count": 1, "size": 0}, "size=0: expected an integer >= 1 (square maps) or (rows, cols), both integers >= 1"),
    ({"count": 1, "size": (8, 0)}, "size=(8, 0): expected an integer >= 1 (square maps) or (rows, cols), both "
                                   "integers >= 1"),
    ({"count": 1, "guidance": 2.0}, "guidance=2.0: needs a label (the label to guide towards)"),
    ({"count": 1, "label": "water"}, "label='water': this model was trained without labels"),
    # seeds were taken as int(seed) & 0xFFFFFFFF: -1 sampled as 2**32 - 1, 1.5 as 1, '0' as 0
    ({"count": 1, "seed": -1}, "seed=-1: expected >= 0"),
    ({"count": 1, "seed": 1.5}, "seed=1.5: expected an integer"),
    ({"count": 1, "seed": "0"}, "seed='0': expected an integer"),
])
def test_sampling_errors_name_the_parameter(trained, kwargs, message):
    from unmixgen.errors import ParameterError

    with pytest.raises(ParameterError) as err:
        load_model(trained).sample(**kwargs, progress=False)
    assert str(err.value) == message


@pytest.mark.parametrize("options, message", [
    ({"patch": 10}, "patch=10: expected a multiple of 4 from 8 to 256"),
    ({"patch": 512}, "patch=512: expected >= 8 and <= 256"),
    ({"representation": "ilr"}, "representation='ilr': expected one of simplex, clr"),
    ({"prediction_type": "x0"}, "prediction_type='x0': expected one of v_prediction, epsilon"),
    ({"lr": 0.0}, "lr=0.0: expected > 0"),
    ({"checkpoint_every_steps": 0}, "checkpoint_every_steps=0: expected >= 1"),
])
def test_training_settings_errors_name_the_parameter(tmp_path, options, message):
    from unmixgen.errors import ParameterError

    res = write_result(tmp_path / "res", smooth_maps(40, 36, 3, 0), endmembers(3))
    with pytest.raises(ParameterError) as err:
        create_model_folder(tmp_path, load_training_maps([res]), **options)
    assert str(err.value) == message
    assert not (tmp_path / "config.json").exists()


def test_holdout_saved_with_model(trained):
    h = load_model(trained).holdout()
    assert h["heldout"].shape[1:] == (8, 8, 3) and h["floor"].shape[1:] == (8, 8, 3)
    assert h["train"].shape[1:] == (8, 8, 3) and len(h["train"]) >= 8


def test_nan_loss_stops_and_keeps_last_checkpoint(trained, tmp_path, monkeypatch):
    import shutil

    from unmixgen.errors import InputError, TrainingDiverged
    from unmixgen.priors.abundance import network

    d = tmp_path / "m"
    shutil.copytree(trained, d)
    orig = network.ResUNet.forward
    monkeypatch.setattr(network.ResUNet, "forward", lambda self, *a, **k: orig(self, *a, **k) * float("nan"))
    with pytest.raises(TrainingDiverged, match="diverged.*step 7.*checkpoint \\(step 6\\)") as err:
        train(d, max_steps=10, progress=False)
    assert not isinstance(err.value, InputError)  # a numerical failure, not bad input
    monkeypatch.undo()
    assert load_model(d).step == 6


def test_shipped_demo_model_samples_valid_maps():
    from unmixgen.priors.abundance.model import shipped_demo_model

    model = shipped_demo_model()
    x = model.sample(2, size=24, sampler="dpm", steps=4, progress=False)
    assert x.shape == (2, 24, 24, model.n_endmembers)
    assert (x >= 0).all() and np.allclose(x.sum(-1), 1, atol=1e-5)
    h = model.holdout()
    assert h["heldout"].shape[1:3] == (model.block_size, model.block_size)


def test_network_gives_the_same_output_with_and_without_autograd():
    """Without autograd the blocks work in place; the values must not change, and with
    autograd the input and the gradient path stay intact."""
    from unmixgen.priors.abundance.network import ResUNet

    torch.manual_seed(0)
    net = ResUNet(channels=2, width=8, channel_mult=(1, 2), blocks=1)
    for p in net.parameters():  # the output layer starts at zero; make every path count
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(3, 2, 16, 16)
    x_copy = x.clone()
    t = torch.tensor([5, 500, 900])
    with torch.no_grad():
        fast = net(x, t)
    slow = net(x.requires_grad_(True), t)
    torch.testing.assert_close(fast, slow.detach(), rtol=0, atol=0)
    slow.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    torch.testing.assert_close(x.detach(), x_copy, rtol=0, atol=0)
