"""A compact timestep-conditioned 1D ResUNet for spectra: ``net(x (N,1,G), t (N,), labels)``.

The 2D abundance network's layout (`unmixgen.priors.abundance.network`) in one dimension:
residual blocks with GroupNorm, SiLU and an additive timestep embedding, strided-conv
downsampling, nearest upsampling and skip connections; zero-initialised output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..abundance.network import timestep_embedding


def _groups(ch: int) -> int:
    return next(g for g in (8, 4, 2, 1) if ch % g == 0)


class ResBlock1d(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv1d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.conv2 = nn.Conv1d(cout, cout, 3, padding=1)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(emb)[:, :, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class ResUNet1d(nn.Module):
    """Parameters: ``width`` channels at the first level, ``channel_mult`` per level (one 2x
    downsampling between levels); the grid length must be a multiple of
    ``2 ** (len(channel_mult) - 1)``."""

    def __init__(self, width: int = 32, channel_mult: tuple[int, ...] = (1, 2, 2, 4)):
        super().__init__()
        self.base = width
        emb_dim = 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv1d(1, width, 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        chans, ch = [width], width
        for i, m in enumerate(channel_mult):
            self.down.append(ResBlock1d(ch, width * m, emb_dim))
            ch = width * m
            chans.append(ch)
            if i < len(channel_mult) - 1:
                self.downsample.append(nn.Conv1d(ch, ch, 3, stride=2, padding=1))
        self.mid = ResBlock1d(ch, ch, emb_dim)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, m in reversed(list(enumerate(channel_mult))):
            self.up.append(ResBlock1d(ch + chans.pop(), width * m, emb_dim))
            ch = width * m
            if i > 0:
                self.upsample.append(nn.Conv1d(ch, ch, 3, padding=1))
        self.out = nn.Sequential(nn.GroupNorm(_groups(ch + width), ch + width), nn.SiLU(),
                                 nn.Conv1d(ch + width, 1, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.time_mlp(timestep_embedding(t, self.base))
        h0 = self.conv_in(x)
        h, skips = h0, []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], 1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(torch.cat([h, h0], 1))


def build_network(cfg: dict) -> ResUNet1d:
    return ResUNet1d(width=int(cfg.get("width", 32)),
                     channel_mult=tuple(int(m) for m in cfg.get("channel_mult", (1, 2, 2, 4))))
