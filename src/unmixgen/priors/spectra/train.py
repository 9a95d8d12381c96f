"""Training the spectra prior: the model folder and the denoising objective.

`create_model_folder` puts training spectra on the grid (`representation.SpectralGrid`),
holds out every ``holdout_every``-th spectrum (seeded shuffle) and writes config.json,
data.npz and holdout.npz; `train` trains (or resumes) with the shared
`unmixgen.nn.trainer.Trainer`.

Objective: DDPM noise schedule, v-prediction by default, mean squared error over the
observed good grid points only. Augmentation per draw: a smooth multiplicative perturbation
``exp(c1 u + c2 (u^2 - 1/3))`` over the normalised wavelength ``u`` in [-1, 1]
(``c ~ N(0, augment^2)``), renormalised; brightness scaling needs no augmentation since
brightness is divided out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import InputError, ParameterError, check_range, in_file
from ...nn import checkpoint as ck
from ...nn.device import resolve_device
from ...nn.seeds import seed_torch
from ...nn.trainer import Trainer, check_budget
from ..diffusion import noisy_and_target, train_scheduler
from .network import build_network
from .representation import SpectralGrid

KIND = "spectra_prior"
DEFAULTS: dict[str, Any] = {"width": 32, "channel_mult": [1, 2, 2, 4], "prediction_type": "v_prediction",
                            "beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 1000,
                            "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-4, "warmup_steps": 100,
                            "ema_decay": 0.999, "grad_clip": 1.0, "augment": 0.1, "holdout_every": 5,
                            "seed": 0, "checkpoint_every_s": 120.0}


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    """`DEFAULTS` updated with the ``options`` that are not None, checked."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown spectra prior options: {sorted(unknown)}")
    o = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    for key in ("width", "batch_size", "num_train_timesteps", "holdout_every"):
        check_range(key, o[key], low=1, integer=True)
    # beyond these a CPU run exhausts memory before its first step (batch 100000: 23 GB)
    check_range("batch_size", o["batch_size"], high=4096)
    check_range("width", o["width"], high=512)
    if o["prediction_type"] not in ("v_prediction", "epsilon"):
        raise ParameterError("prediction_type", o["prediction_type"], "expected v_prediction or epsilon")
    check_range("lr", o["lr"], low=0, low_open=True)
    check_range("augment", o["augment"], low=0)
    check_range("seed", o["seed"], low=0, integer=True)
    return o


def create_model_folder(folder: Path, spectra: np.ndarray, wavelengths: np.ndarray, sources: list[str],
                        **options: Any) -> dict:
    """Write config.json, data.npz and holdout.npz of a new spectra prior into ``folder``.

    ``spectra`` (n, bands) reflectances on ``wavelengths`` (nm). Returns the config.
    """
    o = resolve_options(options)
    s = np.asarray(spectra, np.float64)
    if s.ndim != 2 or len(s) < 2 * o["holdout_every"]:
        raise InputError(f"{len(s)} training spectra; expected at least {2 * o['holdout_every']}")
    if not np.all(np.isfinite(s)) or np.any(s.mean(axis=1) <= 0):
        raise InputError("training spectra must be finite with a positive mean")
    rep = SpectralGrid()
    x, _, obs = rep.to_grid(s, wavelengths)
    order = np.random.default_rng(o["seed"]).permutation(len(x))
    held = np.sort(order[:: o["holdout_every"]])
    train_idx = np.setdiff1d(np.arange(len(x)), held)
    rep.scale = float(x[np.ix_(train_idx, obs & rep.good)].std())
    x = x / rep.scale
    cfg = ck.new_config(KIND, representation=rep.config(),
                        network={"width": o["width"], "channel_mult": list(o["channel_mult"])},
                        schedule={k: o[k] for k in ("num_train_timesteps", "beta_schedule", "prediction_type")},
                        training={k: o[k] for k in ("batch_size", "lr", "weight_decay", "warmup_steps",
                                                    "ema_decay", "grad_clip", "augment", "seed",
                                                    "checkpoint_every_s")},
                        data={"sources": sources, "n_train": int(len(train_idx)), "n_heldout": int(len(held))})
    ck.save_arrays(folder / "data.npz", {"x": x[train_idx], "observed": obs})
    ck.save_arrays(folder / "holdout.npz", {"x": x[held], "observed": obs})
    ck.write_config(folder, cfg)
    return cfg


class SpectraObjective:
    """Loss hook of `Trainer`: a batch of augmented grid spectra, noised; masked MSE."""

    def __init__(self, x: np.ndarray, weight: np.ndarray, scale: float, schedule: dict, *, batch_size: int,
                 augment: float, device: str):
        self.x = torch.from_numpy(np.asarray(x, np.float32))
        self.weight = torch.from_numpy(weight.astype(np.float32)).to(device)
        self.scale, self.augment, self.batch_size, self.device = scale, augment, batch_size, device
        self.scheduler = train_scheduler(schedule)
        u = torch.linspace(-1.0, 1.0, self.x.shape[1])
        self.basis = torch.stack([u, u ** 2 - 1.0 / 3.0])  # (2, G)

    def __call__(self, net: torch.nn.Module, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, len(self.x), (self.batch_size,), generator=gen)
        n = 1.0 + self.scale * self.x[idx]
        c = torch.randn((self.batch_size, 2), generator=gen) * self.augment
        n = n * torch.exp(c @ self.basis)
        good = self.weight.cpu() > 0
        n = n / n[:, good].mean(dim=1, keepdim=True)
        x0 = (((n - 1.0) / self.scale) * good)[:, None, :].to(self.device)
        noise = torch.randn(x0.shape, generator=gen).to(self.device)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (self.batch_size,), generator=gen)
        xt, target = noisy_and_target(self.scheduler, x0, noise, t.to(self.device))
        pred = net(xt, t.to(self.device))
        return torch.sum(((pred - target) ** 2) * self.weight) / (self.batch_size * self.weight.sum())


def train(model_dir: str | Path, *, max_steps: int | None = None, max_minutes: float | None = None,
          device: str = "cpu", progress: bool = True, log_every: int = 10) -> dict:
    """Train (or resume) the spectra prior in ``model_dir``; returns the training summary."""
    check_budget(max_steps, max_minutes)
    device = resolve_device(device)
    model_dir = Path(model_dir)
    cfg = ck.read_config(model_dir, kind=KIND)
    if not (model_dir / "data.npz").is_file():
        raise in_file(model_dir, "holds no training data (no data.npz); it cannot be resumed: train a new model")
    data = ck.load_arrays(model_dir / "data.npz")
    with ck.config_fields(model_dir):  # a section missing or of another type: one line naming the file
        tr = {**DEFAULTS, **cfg["training"]}
        rep = SpectralGrid(cfg["representation"]["scale"])
        schedule = ck.check_schedule(model_dir, cfg)
    weight = (data["observed"] & rep.good).astype(np.float32)
    objective = SpectraObjective(data["x"], weight, rep.scale, schedule, batch_size=int(tr["batch_size"]),
                                 augment=float(tr["augment"]), device=device)
    seed_torch(int(tr["seed"]))
    with ck.config_fields(model_dir):
        net = build_network(cfg["network"])
    trainer = Trainer.from_settings(net, objective, model_dir, tr, log_every=log_every, device=device)
    return trainer.fit(max_steps=max_steps, max_minutes=max_minutes, progress=progress).as_dict()
