"""Training pairs for HybridSTU: scenes simulated from abundance maps and the given endmembers.

For every training map ``A (h, w, p)`` (`training_pairs`):

1. the endmembers get a small smooth spectral perturbation, one per map and endmember:
   ``e_k(b) * (1 + jitter * z_k(b))``, ``z_k`` a Gaussian random field along the bands
   (correlation length ``bands / 16``, standardised), so the network does not learn the
   exact library spectra;
2. `unmixgen.simulate.scene.simulate` mixes them with per-pixel brightness scaling
   (log-normal, standard deviation ``variability``, median ``brightness``; per endmember as
   in the ELMM, or shared by the endmembers of a pixel: ``scaling``) and adds white
   noise at ``snr_db``; the estimator takes all three from the scene itself
   (`estimate_snr_db`, `estimate_brightness`, from the HySime noise estimate of
   `unmixgen.unmix.rank`).

Maps are split into spatially disjoint training and validation parts (`split_maps`): whole
maps when there are several, else the bottom rows of each map with a gap of ``k`` rows, so
no validation pixel shares a receptive field with a training pixel.

`PairSampler` draws batches of random crops (with flips and quarter turns) from the
training part, from a torch generator only, so a resumed training draws the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from ...errors import InputError
from ...scene import window_on_data
from ...simulate.random_fields import gaussian_amplitude, gaussian_random_fields
from ...simulate.scene import simulate, smooth_log_normal_scales
from ..batched import matmul_rows
from ..rank import enough_for_band_noise, estimate_noise, subsample, window_noise_correlation
from ..stripes import line_index
from .features import subspace_features


def noise_estimate(Y: np.ndarray, sample: int = 20_000, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The HySime regression noise estimate of a seeded subsample of ``sample`` pixels of
    ``Y (N, bands)``: ``(pixels (n, bands) float32, noise (n, bands), noise covariance
    (bands, bands))``, for `estimate_snr_db` and for `estimate_brightness` without a mask
    (pass it to both to compute it once)."""
    Y = subsample(np.asarray(Y, np.float32), sample, seed)
    w, Rn = estimate_noise(Y)
    return Y, w, Rn


def estimate_snr_db(Y: np.ndarray, sample: int = 20_000, seed: int = 0, *,
                    noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> float:
    """SNR in dB of pixels ``Y (N, bands)``: ``10 log10(sum x^2 / sum w^2)`` with ``w`` the
    HySime regression noise estimate and ``x = Y - w`` (a seeded subsample of ``sample``
    pixels; ``noise``: `noise_estimate` of the same, when the caller has it)."""
    Ys, w, _ = noise_estimate(Y, sample, seed) if noise is None else noise
    w = w.astype(np.float64)
    x = Ys.astype(np.float64) - w
    return float(10.0 * np.log10(np.sum(x**2) / max(np.sum(w**2), 1e-30)))


def estimate_brightness(Y: np.ndarray, E: np.ndarray, sample: int = 20_000, seed: int = 0,
                        high: float = 1.0, *,
                        noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                        mask: np.ndarray | None = None) -> tuple[float, float]:
    """``(median, log_std)`` of the ELMM brightness scales of pixels ``Y (N, bands)`` with
    endmembers ``E (p, bands)``.

    Under ``y = s a E + n`` with ``sum(a) = 1`` the least-squares coordinates
    ``a_ls = y E^T (E E^T)^-1`` sum to ``s`` plus noise. The variance of the scales, relative
    to their squared mean, is ``exp(sigma^2) - 1`` for log-normal scales, and their median is
    ``mean / exp(sigma^2 / 2)``; ``log_std`` is clipped to ``[0, high]``. The median is 1 when
    the endmembers have the pixels' brightness and e.g. 0.4 when they are 2.5 times brighter.

    The variance is measured without the noise's share in one of two ways:

    - with ``mask (rows, cols)`` (``Y`` then holds every valid pixel, in ``mask``'s row-major
      order): the covariance of the sums of 4-neighbour pixel pairs. Brightness (illumination,
      topography, the ELMM's smooth scaling fields) varies smoothly in space; noise that is
      independent from pixel to pixel adds nothing to it, whatever its level, and the part
      neighbours share (a product resampled to a map grid: `_noise_share`) is taken out.
    - else: the sample variance minus the noise part ``1^T P^T R_n P 1`` (``P = E^T (E E^T)^-1``,
      ``R_n`` the HySime noise covariance) on a seeded subsample of ``sample`` pixels
      (``noise``: its `noise_estimate`). An underestimated noise shows as variability (0.07
      at 15 dB on scenes with none).
    """
    E64 = np.asarray(E, np.float64)
    P = E64.T @ np.linalg.pinv(E64 @ E64.T)
    q = P.sum(1)
    if mask is not None:
        mask = np.asarray(mask, bool)
        img = np.full(mask.shape, np.nan)
        img[mask] = matmul_rows(Y, q[:, None])[:, 0]  # float64 by row chunks, not a copy of Y
        m = float(np.nanmean(img))
        d = img - m
        share = _noise_share(Y, mask, q, sample, seed, noise)  # (vertical, horizontal)
        total = count = 0.0
        for prods, noise_part in ((d[:-1, :] * d[1:, :], share[0]), (d[:, :-1] * d[:, 1:], share[1])):
            prods = prods[np.isfinite(prods)]
            total += float(prods.sum()) - prods.size * noise_part
            count += prods.size
        excess = max(0.0, total / count) if count else 0.0
    else:
        Y, _, Rn = noise_estimate(Y, sample, seed) if noise is None else noise
        s = Y.astype(np.float64) @ q
        excess = max(0.0, float(s.var()) - float(q @ Rn @ q))
        m = float(s.mean())
    sigma = float(min(high, np.sqrt(np.log1p(excess / max(m * m, 1e-30)))))
    median = m / math.exp(sigma**2 / 2.0) if m > 0 else 1.0
    return float(median), sigma


#: side of the window (on the valid pixels) whose noise correlation between neighbours `_noise_share` measures:
#: some 32,000 pairs of neighbours times the bands; 0.25 s on 230 bands (256: 1.0 s)
NOISE_WINDOW = 128


def _noise_share(Y: np.ndarray, mask: np.ndarray, q: np.ndarray, sample: int, seed: int,
                 noise: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> tuple[float, float]:
    """The noise's covariance between vertical and between horizontal neighbours' ``y . q``:
    the noise variance along ``q (bands,)`` (HySime per band, with the regression's degrees
    of freedom) times the correlation of neighbours' noise (`rank.window_noise_correlation`) in a
    `NOISE_WINDOW` on the valid pixels of ``mask`` (`scene.window_on_data`). About 0 where the noise
    is independent between pixels; a product resampled to a map grid shares its pixels' noise."""
    n, bands = Y.shape
    if not enough_for_band_noise(n, bands):
        return 0.0, 0.0
    if noise is None:
        noise = noise_estimate(Y, sample, seed)
    Ys, _, Rn = noise
    dof = Ys.shape[0] / max(Ys.shape[0] - bands + 1, 1)
    variance = float(np.sum(q**2 * np.diag(Rn))) * dof
    rs, cs = window_on_data(mask, NOISE_WINDOW)
    # Y's pixels are in the mask's row-major order: those of the window's rows follow the ones above
    rows = mask[rs]
    index = (int(np.count_nonzero(mask[:rs.start])) - 1 + np.cumsum(rows, axis=None).reshape(rows.shape))[:, cs]
    valid = rows[:, cs]
    window = np.zeros(valid.shape + (bands,), np.float32)
    window[valid] = Y[index[valid]]
    rho = window_noise_correlation(window, valid, sample, seed)
    return tuple(variance * (r or 0.0) for r in rho)


def as_map_list(maps, p: int) -> list[np.ndarray]:
    """Abundance maps ``(N, h, w, p)`` or an iterable of ``(h, w, p)`` as a list of float32
    maps renormalised onto the simplex; `InputError` for a wrong ``p``, NaN, negatives or a
    pixel whose abundances sum to 0 (it has no renormalisation)."""
    if isinstance(maps, np.ndarray):
        items: Iterable = maps[None] if maps.ndim == 3 else maps
    else:
        items = maps
    out = []
    for i, m in enumerate(items):
        m = np.asarray(m, np.float32)
        if m.ndim != 3 or m.shape[-1] != p:
            raise InputError(f"maps[{i}]: shape {m.shape}; expected (rows, cols, {p}) abundance maps")
        if not np.all(np.isfinite(m)) or (m < -1e-4).any():
            raise InputError(f"maps[{i}]: NaN or negative abundances; expected maps on the simplex")
        m = np.clip(m, 0.0, None)
        total = m.sum(-1, keepdims=True)
        zero = int(np.count_nonzero(total < 1e-12))
        if zero:
            raise InputError(f"maps[{i}]: {zero} pixel{'s' if zero > 1 else ''} with abundances summing to 0; expected "
                             "maps on the simplex (every pixel's abundances summing to one)")
        out.append(m / total)
    if not out:
        raise InputError("maps: no abundance map given; expected at least one")
    return out


def perturb_spectra(E: np.ndarray, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """``E (p, bands)`` times ``1 + jitter * z``, ``z`` smooth along bands (see module doc)."""
    p, bands = E.shape
    if jitter <= 0 or bands < 2:
        return E.astype(np.float32)
    amp = gaussian_amplitude(1, bands, max(1.0, bands / 16.0))[..., None]
    z = gaussian_random_fields((1, bands, p), amp, rng, axes=(0, 1), normalize=True)[0].T
    return (E * np.clip(1.0 + jitter * z, 0.2, None)).astype(np.float32)


SCALINGS = ("mixed", "pixel", "endmember")


def training_pairs(maps: list[np.ndarray], E: np.ndarray, *, snr_db: float | None, variability: float,
                   jitter: float, seed: int, brightness: float = 1.0, scaling: str = "endmember",
                   band_std: np.ndarray | None = None, stripe_std: np.ndarray | None = None,
                   stripe_angle: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """One simulated ``(cube (h, w, bands), abundances (h, w, p))`` pair per map.

    Brightness scales have median ``brightness`` and log-std ``variability``; ``scaling``
    says how they vary: ``"endmember"``, one smooth field per endmember (the ELMM of
    `unmixgen.simulate.scene.simulate`, which also changes the mixing proportions seen in
    the pixel); ``"pixel"``, one field shared by the endmembers (illumination and
    topography: the pixel's direction stays that of ``a E``); ``"mixed"``, the two
    alternating from map to map. ``band_std (bands,)``: relative noise std per band (the
    scene's noise profile; `unmixgen.simulate.mixing.add_noise`), None: white noise.
    ``stripe_std (bands,)``: relative std of the detector gain of each column per band (the
    scene's stripes, `unmixgen.unmix.stripes`), applied down each map's columns, or along lines
    ``stripe_angle`` degrees from them (`unmixgen.unmix.stripes.line_index`, a random phase per
    map) as a map-grid product has them; None: none.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, m in enumerate(maps):
        e = perturb_spectra(E, jitter, rng) * np.float32(brightness)
        common = scaling == "pixel" or (scaling == "mixed" and i % 2 == 0)
        if common and variability > 0:
            s = smooth_log_normal_scales(m.shape[:2] + (1,), variability, np.random.default_rng([seed, i]))
            sim = simulate(m * s, e, snr_db=snr_db, band_std=band_std, seed=seed + i)[0]
        else:
            sim = simulate(m, e, snr_db=snr_db, band_std=band_std, variability=variability or None,
                           seed=seed + i)[0]
        cube = sim.cube
        if stripe_std is not None:  # its own generator: the rest is drawn as without stripes
            g = np.random.default_rng([seed, i, 55])
            if stripe_angle == 0.0:
                z = g.standard_normal((cube.shape[1], cube.shape[2]))
                cube = (cube * (1.0 + z * np.asarray(stripe_std, np.float64))[None]).astype(np.float32)
            else:
                h, w = cube.shape[:2]
                lines = line_index(np.arange(h)[:, None], np.arange(w)[None], stripe_angle, (h, w), g.random())
                z = g.standard_normal((int(lines.max()) + 1, cube.shape[2]))
                cube = (cube * (1.0 + z * np.asarray(stripe_std, np.float64))[lines]).astype(np.float32)
        out.append((cube, m))
    return out


def split_maps(pairs: list[tuple[np.ndarray, np.ndarray]], gap: int
               ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    """Spatially disjoint (train, validation) parts: the last fifth of the maps when there are
    at least 5, else the bottom fifth of every map's rows after a gap of ``gap`` rows."""
    n = len(pairs)
    if n >= 5:
        n_val = max(1, n // 5)
        return pairs[: n - n_val], pairs[n - n_val:]
    train, val = [], []
    for y, a in pairs:
        h = y.shape[0]
        n_val = max(1, h // 5)
        cut = h - n_val - gap
        if cut < 1:
            raise InputError(f"maps: a {h}-row map is too small to hold out validation rows with a gap of "
                             f"{gap}; expected at least {n_val + gap + 1} rows or 5 maps")
        train.append((y[:cut], a[:cut]))
        val.append((y[h - n_val:], a[h - n_val:]))
    return train, val


def to_tensors(pairs: list[tuple[np.ndarray, np.ndarray]], scale: float
               ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(x (bands, h, w), a (p, h, w))`` float32 tensors, ``x`` divided by ``scale``."""
    return [(torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1) / scale, np.float32)),
             torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), np.float32))) for y, a in pairs]


def to_feature_tensors(pairs: list[tuple[np.ndarray, np.ndarray]], E: np.ndarray, scale: float
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(features (3p+1, h, w), a (p, h, w))`` float32 tensors (`features.subspace_features`)."""
    out = []
    for y, a in pairs:
        h, w, b = y.shape
        f = subspace_features(y.reshape(h * w, b), E, scale).reshape(h, w, -1)
        out.append((torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1))),
                    torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), np.float32))))
    return out


class PairSampler:
    """Random ``crop x crop`` training crops of the (x, a) tensor pairs.

    The crop is the map's size when a map is smaller; a batch then uses the smallest map
    side so its crops stack. ``upright``: half turns only, so the training scenes' columns
    stay columns (their stripes run along the scene's, `training_pairs`' ``stripe_std``);
    ``mirror=False``: no mirror images either, which would turn slanted stripes the other way.
    """

    def __init__(self, pairs: list[tuple[torch.Tensor, torch.Tensor]], crop: int, upright: bool = False,
                 mirror: bool = True):
        self.pairs = pairs
        self.upright = upright
        self.mirror = mirror
        self.crop = int(min(crop, *(min(x.shape[1:]) for x, _ in pairs)))

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (n, bands, c, c)``, ``a (n, p, c, c)``."""
        c = self.crop
        idx = torch.randint(0, len(self.pairs), (n,), generator=gen).tolist()
        xs, as_ = [], []
        for i in idx:  # a loop over the crops of a batch, not over pixels
            x, a = self.pairs[i]
            r0 = int(torch.randint(0, x.shape[1] - c + 1, (1,), generator=gen))
            c0 = int(torch.randint(0, x.shape[2] - c + 1, (1,), generator=gen))
            turn, flip = torch.randint(0, 4, (2,), generator=gen).tolist()
            if self.upright:  # the same draws: 1 and 3 quarter turns become a half turn
                turn = 2 * (turn % 2)
            xc, ac = x[:, r0:r0 + c, c0:c0 + c], a[:, r0:r0 + c, c0:c0 + c]
            xc, ac = torch.rot90(xc, turn, (1, 2)), torch.rot90(ac, turn, (1, 2))
            if flip % 2 and self.mirror:
                xc, ac = xc.flip(2), ac.flip(2)
            xs.append(xc)
            as_.append(ac)
        return torch.stack(xs), torch.stack(as_)
