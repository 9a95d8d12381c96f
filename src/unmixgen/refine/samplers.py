"""The samplers `posterior.refine` alternates: the abundance sampler (the 2D prior's reverse
process with the closed-form data step, `data_steps.abundance_step`) and the endmember sampler
(the 1D spectra prior's reverse process with the least-squares data step,
`data_steps.endmember_step`), each over K samples with a noise stream per sample; and the
abundance prior's weight, cross-validated across the odd and even bands with the abundance
sampler on a window of the scene (`cross_validated_weight`).

Shapes: maps ``A`` (K, p, rows, cols); endmembers ``E`` (K, p, bands); valid pixels ``Yv``
(N, bands) with ``valid`` (rows, cols) bool.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..nn.seeds import derive_seed, sample_generators
from ..priors.diffusion import train_scheduler, x0_from_output
from ..priors.spectra.model import SpectraModel
from ..scene import window_on_data
from ..unmix.inversion import fcls
from . import schedule as sch
from .abundance_prior import AbundancePriorAdapter
from .data_steps import abundance_step, endmember_step, posterior_draw
from .prior_weight import choose_prior_weight
from .pull import noise_timestep, prior_pull

_PULL_STREAM = 2**31 - 1  # the pull's key in `derive_seed`: no sample index reaches it
_WEIGHT_STREAM = 2**31 - 2  # the prior weight's cross-validation runs
_WEIGHT_WINDOW = 64  # side of the window the prior weight is cross-validated on (bounds its cost)
_WEIGHT_SAMPLES = 2  # samples per half and weight: two give the samples' scatter (`choose_prior_weight`)
_FINAL_SOLVE_ITERATIONS = 2000  # a cap: pixels leave the solve once converged (`data_steps._fista`)


def _noise(gens: list[torch.Generator], shape: tuple[int, ...], device: str) -> torch.Tensor:
    """Noise for all samples: ``shape`` per sample from its own generator, concatenated."""
    return torch.cat([torch.randn(shape, generator=g) for g in gens]).to(device)


class AbundanceSampler:
    def __init__(self, adapter: AbundancePriorAdapter, lam: float, eta: float, spread: float, device: str):
        self.adapter, self.lam, self.eta, self.spread, self.device = adapter, lam, eta, spread, device
        self.abar = train_scheduler(adapter.schedule).alphas_cumprod.double().numpy()
        self.pred = adapter.schedule["prediction_type"]

    def run(self, A: torch.Tensor, E: torch.Tensor, Yv: torch.Tensor, valid: torch.Tensor, sigma2: float,
            ts: list[int], gens: list[torch.Generator], tick: Callable[[], None]) -> torch.Tensor:
        if self.lam == 0:
            return self._least_squares(A, E, Yv, valid, len(ts) - 1, tick)
        K = A.shape[0]
        x0 = self.adapter.encode(A)
        per = (x0.shape[0] // K, *x0.shape[1:])
        x = sch.start(x0, float(self.abar[ts[0]]), _noise(gens, per, self.device))
        out_a = A
        for i in range(len(ts) - 1):
            t, tn = ts[i], ts[i + 1]
            ab, abn = float(self.abar[t]), float(self.abar[tn])
            with torch.no_grad():
                out = self.adapter(x, torch.tensor(t, device=self.device))
            x0 = x0_from_output(out, x, ab, self.pred).clamp(-1.0, 1.0)
            A_hat = self.adapter.decode(x0)
            s2 = 0.25 * (1 - ab) / ab  # prior's error variance in abundance units (x = 2a - 1)
            a_hat_v = A_hat[:, :, valid].transpose(1, 2)  # (K, N, p)
            # the constrained solve (FISTA) only where the result is returned: it costs more
            # than the network on large canvases, and intermediate steps are re-noised anyway
            a_v = abundance_step(Yv, E, a_hat_v, self.lam * sigma2 / max(s2, 1e-12),
                                 iterations=_FINAL_SOLVE_ITERATIONS if i == len(ts) - 2 else 0)
            out_a = A_hat.clone()
            out_a[:, :, valid] = a_v.transpose(1, 2)
            if i < len(ts) - 2:
                x = sch.renoise(x, self.adapter.encode(out_a), ab, abn, self.eta, _noise(gens, per, self.device))
            tick()
        return out_a

    @staticmethod
    def _least_squares(A: torch.Tensor, E: torch.Tensor, Yv: torch.Tensor, valid: torch.Tensor, n_steps: int,
                       tick: Callable[[], None]) -> torch.Tensor:
        """Weight 0, the data alone: every sample's FCLS abundances under its endmembers (the
        prior's steps would end there too, at the cost of the network); samples that share
        their endmembers share the solve."""
        Y = Yv.cpu().numpy()
        out = A.clone()
        solved: list[tuple[np.ndarray, torch.Tensor]] = []
        for k in range(A.shape[0]):
            e = E[k].cpu().numpy()
            a = next((a for e_done, a in solved if np.array_equal(e_done, e)), None)
            if a is None:
                a = torch.from_numpy(fcls(Y, e)).to(A.device, A.dtype)
                solved.append((e, a))
            out[k][:, valid] = a.T
        for _ in range(n_steps):
            tick()
        return out

    def draw(self, A: torch.Tensor, E: torch.Tensor, valid: torch.Tensor, sigma2: float, ts: list[int],
             gens: list[torch.Generator]) -> torch.Tensor:
        """The samples ``A`` (K, p, H, W) with the final posterior draw added (see `refine`)."""
        out_a = A
        if self.spread > 0:
            # the last step's mean is the sample's clean estimate; the prior's error level at
            # t0 stands for what the prior knows about a pixel, so each sample ends with a
            # draw from the data step's posterior under that prior variance
            ab0 = float(self.abar[ts[0]])
            mu0 = self.lam * sigma2 / max(0.25 * (1 - ab0) / ab0, 1e-12)
            a_v = out_a[:, :, valid].transpose(1, 2)
            a_v = posterior_draw(a_v, E, self.spread ** 2 * sigma2, mu0,
                                 _noise(gens, a_v.shape[1:], self.device).reshape(a_v.shape))
            out_a = out_a.clone()
            out_a[:, :, valid] = a_v.transpose(1, 2)
        return out_a


def cross_validated_weight(adapter: AbundancePriorAdapter, cube: np.ndarray, mask: np.ndarray, E: np.ndarray,
                           sigma2: float, ts: list[int], eta: float, seed: int, device: str, samples: int,
                           tick: Callable[[], None], divide_by: np.ndarray | None = None,
                           band_weights: np.ndarray | None = None) -> tuple[float, dict]:
    """The abundance prior's weight ``lam`` for this scene (`prior_weight.choose_prior_weight`),
    cross-validated on a 64 x 64 window on the scene's valid pixels (`scene.window_on_data`) with two samples per half and
    weight (their own noise stream), under the endmembers ``E`` (p, bands) and the run's
    timesteps ``ts``, for a mean of ``samples`` samples. Falls back to 1.0 on a window with
    fewer than ``10 p`` valid pixels. ``divide_by`` (rows, cols): the window's pixels are
    divided by it first (the scaled mixing model's band sums), after being multiplied by
    ``band_weights`` (bands,) when given (`refine`'s ``band_weights``)."""
    rs, cs = window_on_data(mask, _WEIGHT_WINDOW)
    m = mask[rs, cs]
    p = E.shape[0]
    if int(m.sum()) < 10 * p:
        return 1.0, {"chosen": 1.0, "note": f"{int(m.sum())} valid pixels in the window: too few"}
    valid = torch.from_numpy(m).to(device)

    def refine_half(lam: float, Yh: np.ndarray, Eh: np.ndarray, Ah: np.ndarray) -> np.ndarray:
        canvas = np.full((*m.shape, p), 1.0 / p, np.float32)
        canvas[m] = Ah
        A = torch.from_numpy(canvas).permute(2, 0, 1)[None].repeat(_WEIGHT_SAMPLES, 1, 1, 1).to(device)
        gens = sample_generators(derive_seed(seed, _WEIGHT_STREAM), 0, _WEIGHT_SAMPLES)
        out = AbundanceSampler(adapter, lam, eta, 0.0, device).run(
            A, torch.from_numpy(np.ascontiguousarray(Eh))[None].repeat(_WEIGHT_SAMPLES, 1, 1).to(device),
            torch.from_numpy(np.ascontiguousarray(Yh)).to(device), valid, sigma2, ts, gens, tick)
        return out[:, :, valid].transpose(1, 2).cpu().numpy()

    Yw = cube[rs, cs][m]
    if band_weights is not None:
        Yw = (Yw * band_weights).astype(np.float32)
    if divide_by is not None:
        Yw = (Yw / divide_by[rs, cs][m][:, None]).astype(np.float32)
    lam, info = choose_prior_weight(refine_half, Yw, E, samples=samples)
    info["window"] = [[rs.start, rs.stop], [cs.start, cs.stop]]
    return lam, info


class WeightedRep:
    """A spectra prior's representation for endmembers in weighted bands (``E * weights``):
    spectra are divided by the weights on their way to the prior's grid and multiplied back on
    their way out, so the prior sees real spectra while the data steps see weighted ones."""

    def __init__(self, rep, weights: np.ndarray):
        self._rep, self._w = rep, np.asarray(weights, np.float32)

    def __getattr__(self, name: str):
        return getattr(self._rep, name)

    def to_grid(self, E: np.ndarray, wavelengths: np.ndarray):
        return self._rep.to_grid((np.asarray(E, np.float32) / self._w).astype(np.float32), wavelengths)

    def from_grid(self, x: np.ndarray, bright, srf) -> np.ndarray:
        return (self._rep.from_grid(x, bright, srf) * self._w).astype(np.float32)


class WeightedPrior:
    """A loaded spectra prior whose ``rep`` is `WeightedRep` (everything else as the prior's)."""

    def __init__(self, prior: SpectraModel, weights: np.ndarray):
        self._prior, self.rep = prior, WeightedRep(prior.rep, weights)

    def __getattr__(self, name: str):
        return getattr(self._prior, name)


class EndmemberSampler:
    def __init__(self, prior: SpectraModel, wavelengths: np.ndarray, fwhm: np.ndarray | None,
                 ls_iterations: int, eta: float, device: str):
        self.prior, self.wl = prior, np.asarray(wavelengths, np.float64)
        self.rep = prior.rep
        self.srf = self.rep.srf(self.wl, fwhm)
        self.ls, self.eta, self.device = ls_iterations, eta, device

    def run(self, E: torch.Tensor, A_v: torch.Tensor, Yv: torch.Tensor, ts: list[int],
            gens: list[torch.Generator], tick: Callable[[], None],
            pins: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``pins``: ``(fixed (p,) bool, values (p, B))``, endmembers held at ``values``."""
        K, p, B = E.shape
        abar = self.prior.alphas_cumprod
        flat = E.reshape(K * p, B).cpu().numpy()
        x0, bright, obs = self.rep.to_grid(flat, self.wl)
        obs_t = torch.from_numpy(obs).to(self.device)
        x = sch.start(torch.from_numpy(x0).to(self.device), float(abar[ts[0]]),
                      _noise(gens, (p, x0.shape[1]), self.device))
        E_out = E
        for i in range(len(ts) - 1):
            t, tn = ts[i], ts[i + 1]
            ab, abn = float(abar[t]), float(abar[tn])
            x0_hat = self.prior.x0_estimate(x[:, None, :], t)[:, 0]
            E_hat = self.rep.from_grid(x0_hat.cpu().numpy(), bright, self.srf)
            E_hat_t = torch.from_numpy(E_hat).to(self.device).reshape(K, p, B)
            if pins is not None:
                E_hat_t = torch.where(pins[0][None, :, None], pins[1][None], E_hat_t)
            E_out = endmember_step(Yv, A_v, E_hat_t, self.ls, fixed=None if pins is None else pins[0])
            if i < len(ts) - 2:
                x_dc, bright, _ = self.rep.to_grid(E_out.reshape(K * p, B).cpu().numpy(), self.wl)
                x_dc_t = torch.where(obs_t, torch.from_numpy(x_dc).to(self.device), x0_hat)
                x = sch.renoise(x, x_dc_t, ab, abn, self.eta, _noise(gens, (p, x0.shape[1]), self.device))
            tick()
        return E_out

    def noise_timestep(self, E0: np.ndarray, sigma2: float) -> int:
        return noise_timestep(self.prior, E0, self.wl, sigma2)

    def pull(self, Y: np.ndarray, E0: np.ndarray, r0: float, sigma2: float, tolerance: float, t0: float,
             t_noise: int, seed: int, fixed: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
        """`pull.prior_pull` of ``E0`` on the pixels ``Y``; its noise comes from a stream of its
        own, so the samples' streams are the same whether it moves anything or not."""
        gen = torch.Generator().manual_seed(derive_seed(seed, _PULL_STREAM))
        return prior_pull(self.prior, self.srf, self.wl, Y, E0, r0, sigma2, tolerance, t0, gen, t_noise=t_noise,
                          fixed=fixed)
