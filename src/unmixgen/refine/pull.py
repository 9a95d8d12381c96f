"""The spectra prior's pull on the endmembers, within the data's plane.

On a noisy scene the data pin the endmembers' plane (the affine hull of the pixels) well but
leave their place *within* it loosely fixed: a minimum-volume or least-squares simplex can
move its vertices along the plane and fit as well, within the noise. The spectra prior knows
what a pure spectrum looks like, so it can choose there. Its clean estimate ``D`` of an
endmember ``e0`` (noised to timestep ``t`` and denoised, averaged over draws) is split into the
part inside the data's plane, which the data allow, and the part across it, which the data
rule out. Each endmember moves by the in-plane part of the prior's move, weighted by the
share of that move the plane holds,

    e = e0 + f P(D - e0),    f = ||P(D - e0)||^2 / ||D - e0||^2

(``P`` the projection onto the plane's directions): a prior that wants a spectrum the data do
not contain (a material it was not trained on) moves mostly across the plane, so ``f`` is small
and so is the move. Timesteps ``t`` grow in three steps to ``t0`` (stronger pulls); a step is kept
while the mean excess residual of the FCLS fit to the pulled endmembers over the init's
stays within ``tolerance`` noise variances per pixel (the discrepancy principle): at high SNR
the data see the move and nothing changes. The strongest pull is also capped by the scene's
noise: its timestep's noise level is at most twice the pixels' noise relative to the endmembers'
brightness (so at high SNR the prior, whose own error is then larger than the data's, barely
moves anything).
"""

from __future__ import annotations

import numpy as np
import torch

from ..priors.spectra.model import SpectraModel
from ..unmix.inversion import fcls
from ..unmix.preprocessing import second_moments
from .guard import residuals

NOISE_FACTOR = 2.0  # measured: benchmarks/RESULTS.md, "The spectra prior's pull"


def data_plane(Y: np.ndarray, p: int) -> np.ndarray:
    """Orthonormal axes (B, p - 1) of the ``p - 1``-dimensional plane through the mean of the
    pixels ``Y`` (N, B) that holds most of them: their leading principal axes."""
    _, C = second_moments(Y)
    return np.linalg.eigh(C)[1][:, ::-1][:, : p - 1]


def in_plane_move(E0: np.ndarray, D: np.ndarray, axes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``E0 + f P(D - E0)`` and the weights ``f`` (p,): the move towards ``D`` along the plane's
    axes (B, p - 1) only (``E0`` is not put onto the plane: endmembers off it stay off it by
    as much), weighted by its share ``f`` of the whole move; see the module doc. E0, D (p, B)."""
    E0 = np.asarray(E0, np.float64)
    move = np.asarray(D, np.float64) - E0
    along = move @ axes @ axes.T
    f = np.sum(along ** 2, axis=1) / np.maximum(np.sum(move ** 2, axis=1), 1e-300)
    return E0 + f[:, None] * along, f


def noise_timestep(prior: SpectraModel, E0: np.ndarray, wavelengths: np.ndarray, sigma2: float) -> int:
    """The spectra prior's timestep whose noise level (grid units) is `NOISE_FACTOR` times the
    pixels' noise ``sqrt(sigma2)`` relative to the endmembers ``E0``'s mean brightness: how far
    the scene's noise leaves endmembers open to the prior (large on noisy scenes, small at
    high SNR)."""
    _, bright, _ = prior.rep.to_grid(np.asarray(E0, np.float32), np.asarray(wavelengths, np.float64))
    relative_noise = NOISE_FACTOR * float(np.sqrt(sigma2) / np.mean(bright)) / prior.rep.scale
    return prior.timestep_for_sigma(relative_noise)


def prior_pull(prior: SpectraModel, srf: np.ndarray, wavelengths: np.ndarray, Y: np.ndarray, E0: np.ndarray,
               r0: float, sigma2: float, tolerance: float, t0: float, generator: torch.Generator,
               draws: int = 16, fractions: tuple[float, ...] = (1 / 3, 2 / 3, 1.0),
               t_noise: int | None = None, fixed: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """The endmembers ``E0`` (p, B) pulled by ``prior`` within the plane of the pixels ``Y`` (N, B).

    ``r0`` is the init's mean squared residual per pixel, ``sigma2`` the noise variance per
    band; ``tolerance`` the largest mean excess residual (in ``sigma2`` per pixel) of the FCLS
    fit to the pulled endmembers over ``r0`` (0: no pull); ``t0`` the largest timestep as a
    fraction of the prior's; ``draws`` noise draws averaged per clean estimate (from
    ``generator``). ``srf`` (G, B) maps the prior's grid to the scene's bands. ``t_noise``:
    `noise_timestep` of ``E0`` when the caller has it (computed otherwise). ``fixed`` (p,) bool:
    endmembers that do not move (pinned at pure-pixel clusters).

    Returns the endmembers (p, B) float32 (``E0`` itself when no step is kept) and a record:
    ``timestep`` of the kept step (0: none), ``excess`` its mean excess residual in ``sigma2``,
    ``weights`` the per-endmember ``f``.
    """
    E0 = np.asarray(E0, np.float32)
    info: dict = {"timestep": 0, "excess": 0.0, "weights": [0.0] * len(E0)}
    if tolerance <= 0:
        return E0, info
    p = E0.shape[0]
    axes = data_plane(Y, p)
    abar = prior.alphas_cumprod
    x0, bright, _ = prior.rep.to_grid(E0, np.asarray(wavelengths, np.float64))
    x0_t = torch.from_numpy(np.asarray(x0, np.float32)).repeat(draws, 1)  # (draws * p, G)
    # the strongest pull matches the scene's noise; at high SNR the pull fades out (the data
    # fix the endmembers better than the prior knows them)
    if t_noise is None:
        t_noise = noise_timestep(prior, E0, wavelengths, sigma2)
    t_max = min(t0 * (len(abar) - 1), t_noise)
    best = E0
    for frac in fractions:
        t = int(round(frac * t_max))
        if t < 1:
            continue
        noise = torch.randn(x0_t.shape, generator=generator)
        xt = float(abar[t]) ** 0.5 * x0_t + float(1 - abar[t]) ** 0.5 * noise
        est = prior.x0_estimate(xt[:, None, :], t)[:, 0].cpu().numpy()
        D = prior.rep.from_grid(est, np.tile(bright, draws), srf).reshape(draws, p, -1).mean(axis=0)
        E, f = in_plane_move(E0, D, axes)
        if fixed is not None:
            E[fixed], f[fixed] = E0[fixed], 0.0
        E = np.clip(E, 0.0, None).astype(np.float32)
        excess = (float(residuals(Y, fcls(Y, E), E).mean()) - r0) / sigma2
        if excess > tolerance:
            break
        best = E
        info = {"timestep": t, "excess": excess, "weights": [float(v) for v in f]}
    return best, info
