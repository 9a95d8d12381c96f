"""The shared sampling loop: tiled canvases, guidance, 1D tensors, seeds."""

from __future__ import annotations

import pytest
import torch

from unmixgen.errors import ParameterError
from unmixgen.nn.seeds import sample_generators
from unmixgen.priors.canvas import TiledDenoiser, tile_starts
from unmixgen.priors.diffusion import GuidedNet, sample, sampling_scheduler
from unmixgen.priors.samplers import check_sampling

SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"}


class Pointwise(torch.nn.Module):
    """A position-independent network: each pixel's output depends only on that pixel's
    channels and the timestep (a 1x1 convolution), so it cannot tell tiles apart."""

    def __init__(self, channels: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.mix = torch.nn.Conv2d(channels, channels, 1)

    def forward(self, x, t, labels=None):
        return torch.tanh(self.mix(x)) * (1 + t.float()[:, None, None, None] / 1000)


@pytest.mark.parametrize(("sampler", "rows", "cols"), [("ddim", 21, 19), ("dpm", 21, 19), ("ddpm", 21, 19),
                                                       ("ddim", 5, 19), ("ddim", 19, 5)])
def test_tiled_sampling_with_a_position_independent_network_equals_untiled(sampler, rows, cols):
    # neither side a multiple of the tile; or one side narrower than a tile (tiled along the other)
    net = Pointwise()
    whole = GuidedNet(net)
    tiled = TiledDenoiser(whole, tile=8)
    seen = []
    tiled.denoise = lambda x, t: seen.append(x.shape) or whole(x, t)
    shape = (2, 3, rows, cols)
    runs = [sample(d, sampling_scheduler(sampler, SCHEDULE, clip_range=1.0), shape, sample_generators(0, 0, 2),
                   6, "cpu") for d in (whole, tiled)]
    th, tw = min(rows, 8), min(cols, 8)
    assert all(s[-2:] == (th, tw) for s in seen)
    assert seen[0][0] == 2 * len(tile_starts(rows, th)) * len(tile_starts(cols, tw))
    torch.testing.assert_close(runs[1], runs[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("overlap", [0.25, 0.0])
def test_less_tile_overlap_runs_fewer_tiles_and_still_equals_untiled(overlap):
    net = Pointwise()
    whole = GuidedNet(net)
    x, t = torch.randn(2, 3, 40, 23), torch.tensor(500)
    counts = {}
    for ov in (0.5, overlap):
        tiled = TiledDenoiser(whole, tile=8, overlap=ov)
        seen = []
        tiled.denoise = lambda x, t, seen=seen: seen.append(x.shape[0]) or whole(x, t)
        torch.testing.assert_close(tiled(x, t), whole(x, t), rtol=0, atol=1e-5)
        counts[ov] = sum(seen) // 2
        assert counts[ov] == len(tile_starts(40, 8, ov)) * len(tile_starts(23, 8, ov))
    assert counts[overlap] < counts[0.5]


def test_tiles_cover_the_canvas_and_overlap():
    for size, tile in ((8, 8), (9, 8), (21, 8), (64, 16), (100, 16)):
        starts = tile_starts(size, tile)
        covered = torch.zeros(size, dtype=torch.bool)
        for s in starts:
            covered[s:s + tile] = True
        assert covered.all() and starts[0] == 0 and starts[-1] == max(0, size - tile)
        assert all(b - a <= tile // 2 for a, b in zip(starts, starts[1:], strict=False))
        quarter = tile_starts(size, tile, 0.25)
        assert quarter[0] == 0 and quarter[-1] == max(0, size - tile)
        assert all(b - a <= tile - tile // 4 for a, b in zip(quarter, quarter[1:], strict=False))


class LabelNet(torch.nn.Module):
    def forward(self, x, t, labels):
        return x * 0 + (labels.float()[:, None, None, None] if labels is not None else -1.0)


def test_guidance_combines_conditional_and_unconditional_outputs():
    x, t = torch.zeros(5, 1, 2, 2), torch.tensor(10)
    null, label = 4, 1
    for g in (0.0, 1.0, 2.5):
        out = GuidedNet(LabelNet(), null_label=null, label=label, guidance=g, max_batch=3)(x, t)
        torch.testing.assert_close(out, torch.full_like(x, null + g * (label - null)))
    assert (GuidedNet(LabelNet(), null_label=null)(x, t) == null).all()  # no label: the null label
    assert (GuidedNet(LabelNet())(x, t) == -1).all()  # unconditional network: no labels at all


class Linear1D(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv1d(1, 1, 3, padding=1)

    def forward(self, x, t, labels=None):
        return self.conv(x)


def test_the_same_loop_samples_1d_tensors_seeded_per_sample():
    den = GuidedNet(Linear1D())
    a = sample(den, sampling_scheduler("ddpm", SCHEDULE, 1.0), (3, 1, 40), sample_generators(7, 0, 3), 5, "cpu")
    b = sample(den, sampling_scheduler("ddpm", SCHEDULE, 1.0), (1, 1, 40), sample_generators(7, 2, 1), 5, "cpu")
    assert a.shape == (3, 1, 40) and torch.isfinite(a).all()
    torch.testing.assert_close(a[2:], b, rtol=0, atol=1e-6)  # sample 2 alone = sample 2 in a batch
    assert not torch.allclose(a[0], a[1])


def test_sampling_request_errors_name_the_parameter():
    assert check_sampling("dpm", None, 1000) == 20
    with pytest.raises(ParameterError, match="^sampler='euler': expected one of ddim, dpm, ddpm$"):
        check_sampling("euler", None, 1000)
    with pytest.raises(ParameterError, match="^steps=0: expected >= 1 and <= 1000$"):
        check_sampling("ddim", 0, 1000)
