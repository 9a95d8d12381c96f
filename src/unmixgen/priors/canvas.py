"""Sampling 2D canvases larger than the network's training patch: blended overlapping tiles.

The canvas (N, C, H, W) is covered by overlapping tiles of the patch size (stride about half
a tile by default). At *every* sampling step the network runs on all tiles and the outputs are blended
into one canvas-sized model output with a separable squared-triangular window (weights fall
towards tile edges, so no seams); the scheduler then updates the whole canvas. Every tile
therefore sees one consistent noisy canvas and neighbouring tiles agree where they overlap.
"""

from __future__ import annotations

import numpy as np
import torch

from .diffusion import Denoise


def tile_starts(size: int, tile: int, overlap: float = 0.5) -> list[int]:
    """Start offsets (px) of tiles of ``tile`` px covering ``size`` px, overlapping by at
    least ``overlap`` of a tile; the first starts at 0 and the last ends at ``size``."""
    if size <= tile:
        return [0]
    stride = max(1, int(tile * (1 - overlap)))
    n = int(np.ceil((size - tile) / stride)) + 1
    return sorted({int(round(v)) for v in np.linspace(0, size - tile, n)})


def blend_window(rows: int, cols: int | None = None) -> torch.Tensor:
    """Blending weights (rows, cols), square when ``cols`` is None: separable,
    squared-triangular, strictly positive and highest in the centre, so the output near a
    tile's edge (zero padding, little context) counts little. Squared rather than plain
    triangular: seams are fainter (see ``benchmarks/RESULTS.md``)."""
    def profile(n: int) -> torch.Tensor:
        i = torch.arange(n, dtype=torch.float32)
        w = torch.minimum(i + 1, n - i) ** 2
        return w / w.max()

    return profile(rows)[:, None] * profile(rows if cols is None else cols)[None, :]


class TiledDenoiser:
    """``denoise(x, t)`` on canvases larger than ``tile``: blended overlapping tiles.

    Canvases no larger than ``tile`` on both sides go to ``denoise`` whole. The tile layout,
    the window and its per-pixel sum (all fixed by the canvas size) are computed once per
    canvas size, dtype and device and then reused (a sampling loop calls with one size).
    ``overlap`` (`tile_starts`): the least overlap of neighbouring tiles, as a fraction of a
    tile; on a large canvas the network sees about ``1 / (1 - overlap) ** 2`` times its pixels.
    """

    def __init__(self, denoise: Denoise, tile: int, overlap: float = 0.5):
        self.denoise = denoise
        self.tile = tile
        self.overlap = overlap
        self._layouts: dict[tuple, tuple[list[int], list[int], torch.Tensor, torch.Tensor]] = {}

    def layout(self, h: int, w: int, dtype: torch.dtype, device) -> tuple[list[int], list[int], torch.Tensor,
                                                                          torch.Tensor]:
        """Row starts, column starts, the window (th, tw) and the window sum (1, 1, h, w)
        for an ``h`` x ``w`` canvas; tiles are ``th = min(h, tile)`` by ``tw = min(w, tile)``
        (a canvas narrower than a tile on one side is tiled along the other only)."""
        key = (h, w, dtype, str(device))
        if key not in self._layouts:
            th, tw = min(h, self.tile), min(w, self.tile)
            rs, cs = tile_starts(h, th, self.overlap), tile_starts(w, tw, self.overlap)
            win = blend_window(th, tw).to(device, dtype)
            wsum = torch.zeros((1, 1, h, w), dtype=dtype, device=device)
            for r in rs:
                for q in cs:
                    wsum[:, :, r:r + th, q:q + tw] += win
            self._layouts[key] = (rs, cs, win, wsum)
        return self._layouts[key]

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if h <= self.tile and w <= self.tile:
            return self.denoise(x, t)
        rs, cs, win, wsum = self.layout(h, w, x.dtype, x.device)
        th, tw = win.shape
        crops = torch.cat([x[:, :, r:r + th, q:q + tw] for r in rs for q in cs])
        out = self.denoise(crops, t)
        acc = torch.zeros_like(x)
        k = 0
        for r in rs:
            for q in cs:
                acc[:, :, r:r + th, q:q + tw] += out[k * n:(k + 1) * n] * win
                k += 1
        return acc / wsum
