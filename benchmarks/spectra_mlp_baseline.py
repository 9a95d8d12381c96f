"""The per-pixel MLP prior: issue 9's second denoising baseline for the 1D spectra prior.

A noise-conditional MLP over one grid spectrum (256 points, `unmixgen.priors.spectra`'s
representation), trained exactly like the spectra prior except for the network: the same
training spectra (the prior's split of the USGS 1995 library, rebuilt and checked against the
prior's ``holdout.npz``), the same objective and augmentation (`SpectraObjective`: smooth
multiplicative perturbation renormalised on the good bands, DDPM timesteps drawn uniformly
from the prior's schedule, v-prediction, MSE on the observed good bands), the same
optimiser settings (the shared `Trainer`, AdamW, warm-up, EMA, gradient clipping) and the
same one-step MMSE denoiser (`denoise(noisy, sigma)` at the timestep whose noise-to-signal
ratio matches ``sigma``).

The MLP sees the whole spectrum at once (no convolution, no locality): input the noisy
spectrum and a sinusoidal embedding of ``log sigma_t`` (``sigma_t = sqrt((1 - abar) / abar)``,
the timestep's noise level in clean units); residual blocks ``x + W2 silu(W1 LN(x) + emb)``;
output the velocity (zero-initialised). Fixed budget (steps) and seed.

Benchmark-only (used by ``benchmarks/refine.py --denoising``)::

    PYTHONPATH=src python benchmarks/spectra_mlp_baseline.py --steps 6000   # train + denoising SAM
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from unmixgen.nn import checkpoint as ck
from unmixgen.nn.seeds import seed_torch
from unmixgen.nn.trainer import Trainer
from unmixgen.priors.diffusion import train_scheduler, x0_from_output
from unmixgen.priors.spectra.train import DEFAULTS, SpectraObjective, create_model_folder
from unmixgen.workflows.refinement import _training_spectra

LIB = Path(__file__).resolve().parents[2] / "shared" / "data" / "usgs_library" / "USGS_1995_Library.mat"


def log_sigma_embedding(log_sigma: torch.Tensor, dim: int) -> torch.Tensor:
    """(N, dim) ``[cos(f_k log sigma), sin(f_k log sigma)]``, frequencies 1/8 .. 8 (log sigma
    spans about -8 .. 8 on the cosine schedule)."""
    f = torch.exp(torch.linspace(math.log(1 / 8), math.log(8.0), dim // 2, device=log_sigma.device))
    a = log_sigma[:, None] * f[None]
    return torch.cat([torch.cos(a), torch.sin(a)], 1)


class _Block(nn.Module):
    def __init__(self, hidden: int, emb_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.emb = nn.Linear(emb_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(nn.functional.silu(self.fc1(self.norm(h)) + self.emb(emb)))


class SpectraMLP(nn.Module):
    """``net(x (N,1,G), t (N,)) -> v (N,1,G)``: a residual MLP conditioned on ``log sigma_t``.

    ``alphas_cumprod`` (T,): the training schedule's, to turn timesteps into noise levels.
    """

    def __init__(self, points: int, alphas_cumprod: torch.Tensor, hidden: int = 512, blocks: int = 4,
                 emb_dim: int = 64):
        super().__init__()
        ab = alphas_cumprod.double()
        self.register_buffer("log_sigma", (0.5 * torch.log((1 - ab) / ab)).float(), persistent=False)
        self.emb_dim = emb_dim
        self.emb_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.inp = nn.Linear(points, hidden)
        self.blocks = nn.ModuleList(_Block(hidden, emb_dim) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, points))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.emb_mlp(log_sigma_embedding(self.log_sigma[t], self.emb_dim))
        h = self.inp(x[:, 0])
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)[:, None]


def training_split(prior, lib: str | Path = LIB) -> tuple[np.ndarray, np.ndarray]:
    """The prior's training and held-out grid spectra ``(train (n, G), observed (G,))``:
    its ``data.npz`` when the folder has one, else rebuilt from the USGS library with the
    prior's split settings (`create_model_folder`, seed and ``holdout_every`` defaults) and
    checked against the prior's ``holdout.npz`` and representation scale."""
    data = prior.model_dir / "data.npz"
    if data.is_file():
        d = ck.load_arrays(data)
        return d["x"], d["observed"]
    spectra, wl, names = _training_spectra([lib])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = create_model_folder(Path(tmp), spectra, wl, names, seed=int(prior.config["training"]["seed"]))
        d, h = ck.load_arrays(Path(tmp) / "data.npz"), ck.load_arrays(Path(tmp) / "holdout.npz")
    held = ck.load_arrays(prior.model_dir / "holdout.npz")
    if (h["x"].shape != held["x"].shape or not np.allclose(h["x"], held["x"], atol=1e-6)
            or not np.isclose(cfg["representation"]["scale"], prior.rep.scale)):
        raise RuntimeError(f"the rebuilt split of {lib} does not reproduce {prior.model_dir}'s holdout.npz")
    return d["x"], d["observed"]


class MLPDenoiser:
    """A trained `SpectraMLP` (EMA weights) with the spectra prior's one-step denoiser."""

    def __init__(self, net: SpectraMLP, schedule: dict, info: dict):
        self.net, self.schedule, self.info = net.eval().requires_grad_(False), schedule, info
        self.alphas_cumprod = train_scheduler(schedule).alphas_cumprod.double().numpy()

    @torch.no_grad()
    def denoise(self, x: np.ndarray, sigma: float) -> np.ndarray:
        """MMSE estimate of clean grid spectra from ``x`` (n, G) = clean + N(0, sigma^2)
        noise, at the timestep whose ``sqrt((1 - abar) / abar)`` is nearest ``sigma`` (as
        `SpectraModel.denoise`)."""
        ratio = np.sqrt((1 - self.alphas_cumprod) / self.alphas_cumprod)
        t = int(np.argmin(np.abs(ratio - sigma)))
        ab = float(self.alphas_cumprod[t])
        xt = torch.from_numpy(np.asarray(x, np.float32))[:, None, :] * ab ** 0.5
        out = self.net(xt, torch.full((xt.shape[0],), t, dtype=torch.long))
        return x0_from_output(out, xt, ab, self.schedule["prediction_type"])[:, 0].numpy()


def train_mlp_baseline(prior, *, steps: int = 6000, seed: int = 0, hidden: int = 512, blocks: int = 4,
                       lib: str | Path = LIB) -> MLPDenoiser:
    """Train the per-pixel MLP prior on ``prior``'s training spectra with its objective,
    augmentation, schedule and optimiser settings for ``steps`` steps from ``seed``.
    ``info``: steps, final loss, wall and CPU seconds, parameter count."""
    x, observed = training_split(prior, lib)
    tr = {**DEFAULTS, **prior.config["training"]}
    schedule = prior.config["schedule"]
    weight = (observed & prior.rep.good).astype(np.float32)
    objective = SpectraObjective(x, weight, prior.rep.scale, schedule, batch_size=int(tr["batch_size"]),
                                 augment=float(tr["augment"]), device="cpu")
    seed_torch(seed)
    net = SpectraMLP(x.shape[1], objective.scheduler.alphas_cumprod, hidden=hidden, blocks=blocks)
    wall, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(net, objective, tmp, lr=tr["lr"], weight_decay=tr["weight_decay"],
                          warmup_steps=tr["warmup_steps"], grad_clip=tr["grad_clip"], ema_decay=tr["ema_decay"],
                          seed=seed + 1, checkpoint_every_s=None, device="cpu")
        summary = trainer.fit(max_steps=steps, progress=False)
        ema = trainer.ema.module
    info = {"steps": summary.step, "loss": summary.loss, "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu, "params": sum(p.numel() for p in net.parameters()),
            "n_train": len(x), "seed": seed}
    return MLPDenoiser(ema, schedule, info)


def main() -> None:
    import argparse

    from refine import spectra_denoising  # benchmarks/ is sys.path[0] when run as a script
    from unmixgen.priors.spectra.model import load_spectra_prior

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--spectra-prior", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    prior = load_spectra_prior(args.spectra_prior)
    mlp = train_mlp_baseline(prior, steps=args.steps, seed=args.seed, hidden=args.hidden, blocks=args.blocks)
    print(mlp.info)
    for row in spectra_denoising(prior, mlp=mlp):
        print(row)


if __name__ == "__main__":
    main()
