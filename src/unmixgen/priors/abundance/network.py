"""A compact 2D ResUNet with a timestep embedding and an optional class-label embedding.

Own network rather than diffusers' ``UNet2DModel``: the same building blocks (GroupNorm,
SiLU, 3x3 convolutions, residual blocks, sinusoidal timestep embedding added per block,
skip connections), without attention layers, so that a model with ~0.2-2 M parameters runs
fast on a laptop CPU. Input and output ``(N, C, H, W)``; ``H`` and ``W`` must be multiples of
``2 ** (len(channel_mult) - 1)``.

Class conditioning: ``num_labels`` labels plus one extra "null" label (index
``num_labels``) used for classifier-free guidance.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn
from torch.nn import functional as F


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``(N, dim)`` of timesteps ``t`` (N,): ``[cos(t f_k), sin(t f_k)]``
    with frequencies ``f_k = 10000 ** (-k / (dim // 2))`` (diffusers' `get_timestep_embedding`,
    cosines first, no frequency shift: the layout the saved models were trained with)."""
    return get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0)


def _groups(ch: int) -> int:
    for g in (8, 4, 2, 1):
        if ch % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        # without autograd (sampling) the activations and sums reuse their buffers: the same
        # values, less memory traffic
        ip = not torch.is_grad_enabled()
        h = self.conv1(F.silu(self.norm1(x), inplace=ip))
        e = self.emb(emb)[:, :, None, None]
        h = h.add_(e) if ip else h + e
        h = self.conv2(self.drop(F.silu(self.norm2(h), inplace=ip)))
        s = self.skip(x)
        return h.add_(s) if ip else h + s


class ResUNet(nn.Module):
    """ResUNet denoiser: ``forward(x (N,C,H,W), t (N,), labels (N,) or None) -> (N,C,H,W)``.

    Parameters
    ----------
    channels : input/output channels (the representation's channel count).
    width : channels at the first level; level ``i`` has ``width * channel_mult[i]``.
    channel_mult : multipliers per resolution level (one 2x downsampling between levels).
    blocks : residual blocks per level (encoder side; the decoder has one more).
    num_labels : number of conditioning labels (0 = unconditional).
    """

    def __init__(self, channels: int, width: int = 32, channel_mult: tuple[int, ...] = (1, 2, 2),
                 blocks: int = 1, num_labels: int = 0, dropout: float = 0.0):
        super().__init__()
        self.channels = channels
        self.num_labels = num_labels
        self.down_factor = 2 ** (len(channel_mult) - 1)
        emb_dim = width * 4
        self.emb_dim = emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = nn.Embedding(num_labels + 1, emb_dim) if num_labels > 0 else None
        self.base = width
        self.conv_in = nn.Conv2d(channels, width, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        chans = [width]
        ch = width
        for i, m in enumerate(channel_mult):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(ch, width * m, emb_dim, dropout))
                ch = width * m
                chans.append(ch)
            self.down.append(level)
            if i < len(channel_mult) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                chans.append(ch)
        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, m in reversed(list(enumerate(channel_mult))):
            level = nn.ModuleList()
            for _ in range(blocks + 1):
                level.append(ResBlock(ch + chans.pop(), width * m, emb_dim, dropout))
                ch = width * m
            self.up.append(level)
            if i > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.norm_out = nn.GroupNorm(_groups(ch), ch)
        self.conv_out = nn.Conv2d(ch, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.time_mlp(timestep_embedding(t, self.base))
        if self.label_emb is not None:
            if labels is None:
                labels = torch.full((x.shape[0],), self.num_labels, dtype=torch.long, device=x.device)
            emb = emb + self.label_emb(labels)
        h = self.conv_in(x)
        hs = [h]
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, emb)
                hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                hs.append(h)
        h = self.mid2(self.mid1(h, emb), emb)
        for i, level in enumerate(self.up):
            for block in level:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h), inplace=not torch.is_grad_enabled()))


def build_network(cfg: dict) -> ResUNet:
    """The network described by a saved config dict (keys as `ResUNet`'s parameters)."""
    return ResUNet(
        channels=int(cfg["channels"]),
        width=int(cfg.get("width", 32)),
        channel_mult=tuple(int(m) for m in cfg.get("channel_mult", (1, 2, 2))),
        blocks=int(cfg.get("blocks", 1)),
        num_labels=int(cfg.get("num_labels", 0)),
        dropout=float(cfg.get("dropout", 0.0)),
    )
