"""The HybridSTU network: a spectral-spatial stem, 2D spatial layers, a softmax head.

Output abundances ``(N, p, H, W)``, non-negative and summing to one by construction
(softmax over ``p``). Two front ends (``front``):

- ``"subspace"`` (default): input ``x (N, 3 p + 1, H, W)``, the per-pixel features of
  `unmixgen.unmix.hybridstu.features` (least-squares, FCLS and brightness-free NNLS
  abundances, log residual). The spectral axis is already reduced to the endmember
  coordinates, which have no spectral order, so the stem is one 2D convolution (3 x 3,
  1 x 1 when ``k = 1``) over them. The head predicts a *correction* of a per-pixel answer
  (``base``: ``"fcls"`` for the linear model, ``"scaled"`` for the brightness-scaled one):
  logits ``log(max(a_base, 1e-4)) + delta``, with the last layer initialised to zero, so
  the untrained network returns that answer (to within ``p * 1e-4``) and training starts
  from the exact per-pixel answer instead of from a uniform guess.
- ``"bands"``: input ``x (N, bands, H, W)`` (pixels divided by the model's scale) and the
  3D stem below; logits straight from the head.

Layers of the ``"bands"`` front end, for a ``k x k`` neighbourhood (``k`` odd, receptive
radius ``r = (k - 1) / 2``):

1. stem: two `Conv3d` over (bands, rows, cols) on the cube seen as one channel
   ``(N, 1, bands, H, W)``; the first has a 7-band kernel with stride 4 and a 3 x 3 spatial
   kernel (1 x 1 when ``k = 1``), the second a 5-band kernel with stride 2 and no spatial
   extent; they learn local spectral shapes (absorption features) and their immediate
   neighbourhood;
2. fold: the spectral axis is folded into channels, ``(N, c * bands', H, W)``, and a 1 x 1
   `Conv2d` mixes them to ``width`` features;
3. ``r - 1`` 3 x 3 `Conv2d` layers (spatial reasoning), then a 1 x 1 layer;
4. head: a 1 x 1 `Conv2d` to ``p`` logits and a softmax over them.

The ``"subspace"`` front end shares steps 3 and 4 after its 2D stem.

Every convolution pads with zeros and there is no normalisation over space, so an output
pixel depends only on the input within ``r`` pixels: a tile read with a halo of ``r``
gives exactly the untiled output (`unmixgen.tiling`).
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ParameterError, check_range
from .features import BASES, n_features

STEM_CHANNELS = 8
STEM = ((7, 4), (5, 2))  # (band kernel, band stride) of the two 3D layers
FRONTS = ("subspace", "bands")
FLOOR = 1e-4  # FCLS abundances below this enter the logits as log(FLOOR)


def folded_bands(bands: int) -> int:
    """Spectral length after the stem (``bands`` input bands)."""
    n = bands
    for kb, sb in STEM:
        n = (n + 2 * (kb // 2) - kb) // sb + 1
    return n


def receptive_radius(k: int) -> int:
    """Pixels of context on each side of an output pixel: ``(k - 1) / 2``."""
    return (int(k) - 1) // 2


def check_k(k: int) -> int:
    """Refuse a neighbourhood size that is not a positive odd integer (`ParameterError`)."""
    check_range("k", k, low=1, integer=True)
    if int(k) % 2 == 0:
        raise ParameterError("k", k, "expected an odd neighbourhood size (1, 3, 5, ...)")
    return int(k)


class HybridSTUNet(nn.Module):
    """See the module docstring.

    Parameters
    ----------
    bands : int
        Input bands.
    n_endmembers : int
        ``p``, the number of abundance maps.
    k : int
        Odd neighbourhood size; the receptive field is ``k x k`` pixels.
    width : int
        Features of the 2D layers.
    front : {"subspace", "bands"}
        Input of the network (module docstring).
    base : {"fcls", "scaled"}
        The per-pixel answer the ``"subspace"`` network corrects (module docstring).
    """

    def __init__(self, bands: int, n_endmembers: int, k: int = 5, width: int = 64, front: str = "bands",
                 base: str = "fcls"):
        super().__init__()
        check_k(k)
        if front not in FRONTS:
            raise ParameterError("front", front, f"expected one of {', '.join(FRONTS)}")
        if base not in BASES:
            raise ParameterError("base", base, f"expected one of {', '.join(BASES)}")
        r = receptive_radius(k)
        s = 3 if r >= 1 else 1
        p = int(n_endmembers)
        if front == "subspace":
            self.stem = nn.Sequential(nn.Conv2d(n_features(p), width, s, padding=s // 2), nn.LeakyReLU(0.1))
            layers: list[nn.Module] = []
        else:
            (kb1, sb1), (kb2, sb2) = STEM
            self.stem = nn.Sequential(
                nn.Conv3d(1, STEM_CHANNELS, (kb1, s, s), stride=(sb1, 1, 1), padding=(kb1 // 2, s // 2, s // 2)),
                nn.LeakyReLU(0.1),
                nn.Conv3d(STEM_CHANNELS, STEM_CHANNELS, (kb2, 1, 1), stride=(sb2, 1, 1), padding=(kb2 // 2, 0, 0)),
                nn.LeakyReLU(0.1),
            )
            layers = [nn.Conv2d(STEM_CHANNELS * folded_bands(bands), width, 1), nn.LeakyReLU(0.1)]
        for _ in range(max(0, r - 1)):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.1)]
        layers += [nn.Conv2d(width, width, 1), nn.LeakyReLU(0.1), nn.Conv2d(width, p, 1)]
        if front == "subspace":
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.spatial = nn.Sequential(*layers)
        self.bands, self.n_endmembers, self.k, self.front, self.base = bands, p, k, front, base

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Abundance logits ``(N, p, H, W)`` of ``x (N, channels, H, W)``."""
        n, _, h, w = x.shape
        if self.front == "subspace":
            p, c = self.n_endmembers, BASES[self.base] * self.n_endmembers
            base = torch.log(x[:, c:c + p].clamp_min(FLOOR))
            return base + self.spatial(self.stem(x))
        f = self.stem(x.unsqueeze(1))  # (N, c, bands', H, W)
        return self.spatial(f.reshape(n, -1, h, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Abundances ``(N, p, H, W)``: softmax of the logits over ``p``."""
        return torch.softmax(self.logits(x), dim=1)
