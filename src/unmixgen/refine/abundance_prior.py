"""The 2D prior as refinement sees it: a map between abundances ``(K, p, H, W)`` and the
prior's diffusion space, whatever the prior's own endmember count.

``one_vs_rest`` (a prior trained on two-component maps ``[a, 1 - a]``, p = 2): every
endmember map of every sample is one item of the network's batch, with shared weights;
the per-endmember clean estimates are coupled back onto the simplex by the Euclidean
projection over the p maps of a pixel. Any p and any endmember order work.
``joint``: a prior trained on this scene's p (all maps in one item; the endmember order must
match the prior's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ParameterError
from ..priors.abundance.model import AbundanceModel
from ..priors.canvas import TiledDenoiser
from ..priors.diffusion import GuidedNet, channels_last_copy
from ..simplex import project_simplex_torch

CPU_BATCH_PIXELS = 2 ** 16
"""Pixels per network call on a CPU (sixteen 64 x 64 tiles): the fastest batch size measured
for the shipped prior (``benchmarks/refine_network_batch.py``; ``benchmarks/RESULTS.md``,
"Refinement speed (issue 9)")."""

TILE_OVERLAP = 0.25
"""Least overlap of the refine prior's 64-px tiles on canvases larger than a tile: a quarter
tile (stride 48) puts about 1.8x a large canvas's pixels through the network, half a tile
3.9x; the accuracy measured the same (``benchmarks/RESULTS.md``, "Refinement's tile
overlap")."""


class _Padded:
    """Pads a canvas to a multiple of the network's downsampling factor (reflection)."""

    def __init__(self, denoise, factor: int):
        self.denoise, self.factor = denoise, factor

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.factor, (-w) % self.factor
        if ph or pw:
            mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
            return self.denoise(F.pad(x, (0, pw, 0, ph), mode=mode), t)[..., :h, :w]
        return self.denoise(x, t)


class AbundancePriorAdapter:
    """Encode / denoise / decode abundances for one prior.

    Parameters
    ----------
    model : a loaded `AbundanceModel` with the ``simplex`` representation.
    p : the scene's endmember count.
    tile : canvas tile (px) of the blended tiled denoiser (`unmixgen.priors.canvas`).
    overlap : least overlap of neighbouring tiles, a fraction of a tile (`TILE_OVERLAP`).
    max_batch, max_pixels : the largest network batch in items and, on a CPU, in pixels
        (`unmixgen.priors.diffusion.GuidedNet`); the results do not depend on them (up to
        float rounding). On a CPU the network runs on a channels-last copy of its weights.
    """

    def __init__(self, model: AbundanceModel, p: int, tile: int = 64, overlap: float = TILE_OVERLAP,
                 max_batch: int = 256, max_pixels: int | None = CPU_BATCH_PIXELS):
        rep = model.config["representation"]["name"]
        if rep != "simplex":
            raise ParameterError("abundance_prior", str(model.model_dir),
                                 f"uses the {rep!r} representation; expected a 'simplex' prior")
        if model.labels:
            raise ParameterError("abundance_prior", str(model.model_dir), "is label-conditioned; expected an "
                                 "unconditional prior")
        if model.n_endmembers == p:
            self.mode = "joint"
        elif model.n_endmembers == 2:
            self.mode = "one_vs_rest"
        else:
            raise ParameterError("abundance_prior", str(model.model_dir),
                                 f"was trained on p={model.n_endmembers} endmembers; expected p={p} (this "
                                 "scene's) or a one-vs-rest prior (p=2)")
        self.model, self.p = model, p
        factor = model.net.down_factor
        tile = max(factor, tile - tile % factor)
        cpu = torch.device(model.device).type == "cpu"
        net = channels_last_copy(model.net) if cpu else model.net
        guided = GuidedNet(net, max_batch=max_batch, max_pixels=max_pixels if cpu else None, channels_last=cpu)
        self.denoiser = TiledDenoiser(_Padded(guided, factor), tile, overlap)
        self.schedule = model.config["schedule"]

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        """(K, p, H, W) abundances -> diffusion space (K, p, H, W) or (K p, 2, H, W)."""
        x = 2.0 * a - 1.0
        if self.mode == "joint":
            return x
        k, p, h, w = a.shape
        x = x.reshape(k * p, 1, h, w)
        return torch.cat([x, -x], dim=1)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Clean estimates in diffusion space -> (K, p, H, W) abundances on the simplex."""
        a = (x0.clamp(-1.0, 1.0) + 1.0) / 2.0
        if self.mode == "one_vs_rest":
            a = 0.5 * (a[:, 0] + 1.0 - a[:, 1])  # the map and its complement's estimate
            a = a.reshape(-1, self.p, *a.shape[-2:])
        return project_simplex_torch(a, dim=1)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x, t)
