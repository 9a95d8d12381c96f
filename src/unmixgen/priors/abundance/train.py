"""Training an abundance prior: the model folder and the denoising objective.

`create_model_folder` cuts the maps into the hold-out split and writes config.json,
data.npz and holdout.npz; `train` then trains (or resumes) from what that folder holds with
the shared `unmixgen.nn.trainer.Trainer`, so a killed run continues with
``train(model_dir)`` from its last checkpoint exactly as if it had not been stopped.

Objective: the DDPM noise schedule (`unmixgen.priors.diffusion`), epsilon- or
v-prediction, mean squared error, on augmented patches in the representation's space. With
labels, each label is replaced by the null label with probability ``label_dropout`` so the
same network also models the unconditional distribution (classifier-free guidance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import in_file
from ...nn import checkpoint as ck
from ...nn.device import resolve_device
from ...nn.seeds import seed_torch
from ...nn.trainer import Trainer, check_budget
from ..diffusion import diffusion_loss, train_scheduler
from .network import build_network
from .patches import PatchSampler, TrainingMaps, renormalise, split_maps
from .representation import Representation, make_representation
from .settings import DEFAULTS, KIND, TRAINING_KEYS, resolve_options


def create_model_folder(folder: Path, data: TrainingMaps, **options: Any) -> dict:
    """Write config.json, data.npz and holdout.npz of a new model into ``folder`` (existing,
    empty). ``options`` are keys of `settings.DEFAULTS` (None: the default). Returns the
    config."""
    opts = resolve_options(options)
    patch = int(opts["patch"])
    split = split_maps(data.maps, patch, opts["block"])
    labels = sorted(set(data.labels)) if data.labels is not None else None
    map_labels = (np.array([labels.index(lab) for lab in data.labels]) if labels
                  else np.zeros(len(data.maps), int))
    # representation fitted on the training crops (only training pixels)
    rep = make_representation({"name": opts["representation"], "eps": opts["clr_eps"]})
    rep.fit(torch.from_numpy(renormalise(split.train_blocks)).permute(0, 3, 1, 2))
    p = data.maps[0].shape[-1]
    cfg = ck.new_config(
        KIND,
        n_endmembers=p,
        patch_size=patch,
        block_size=int(opts["block"] or patch),
        names=data.names,
        labels=labels,
        representation=rep.config(),
        network={"channels": p, "width": opts["width"], "channel_mult": list(opts["channel_mult"]),
                 "blocks": opts["blocks"], "num_labels": len(labels) if labels else 0,
                 "dropout": opts["dropout"]},
        schedule={"num_train_timesteps": opts["num_train_timesteps"],
                  "beta_schedule": opts["beta_schedule"],
                  "prediction_type": opts["prediction_type"]},
        training={k: opts[k] for k in TRAINING_KEYS},
        data={"sources": data.sources, "matching": data.match,
              "map_shapes": [list(m.shape) for m in data.maps],
              "n_train_positions": len(split.positions), "n_heldout": len(split.heldout),
              "n_floor": len(split.floor), "n_train_blocks": len(split.train_blocks),
              "holdout_phases": [list(ph) for ph in split.phases],
              "map_labels": [labels[i] for i in map_labels] if labels else None},
    )
    arrays = {f"map_{i}": m for i, m in enumerate(data.maps)}
    arrays["positions"] = split.positions.astype(np.int64)
    arrays["map_labels"] = map_labels.astype(np.int64)
    for i, c in enumerate(split.classes):
        arrays[f"classes_{i}"] = c
    ck.save_arrays(folder / "data.npz", arrays)
    ck.save_arrays(folder / "holdout.npz", {"heldout": split.heldout, "floor": split.floor,
                                            "train": split.train_blocks})
    ck.write_config(folder, cfg)
    return cfg


class DenoisingObjective:
    """The loss hook of `Trainer`: one batch of augmented patches, noised, and the MSE of the
    network's prediction.

    Every random draw (patches, flips, rotations, noise, timesteps, label dropout) comes from
    the generator the trainer passes, in a fixed order.
    """

    def __init__(self, patches: PatchSampler, rep: Representation, schedule: dict, *, batch_size: int,
                 label_dropout: float, null_label: int, device: str):
        self.patches, self.rep = patches, rep
        self.scheduler = train_scheduler(schedule)
        self.batch_size, self.label_dropout, self.null = batch_size, label_dropout, null_label
        self.device = device

    def __call__(self, net: torch.nn.Module, gen: torch.Generator) -> torch.Tensor:
        a, labels = self.patches.batch(self.batch_size, gen)
        x0 = self.rep.encode(a.to(self.device))
        noise = torch.randn(x0.shape, generator=gen).to(self.device)
        steps = self.scheduler.config.num_train_timesteps
        t = torch.randint(0, steps, (x0.shape[0],), generator=gen).to(self.device)
        if labels is not None:
            drop = torch.rand(labels.shape, generator=gen) < self.label_dropout
            labels = torch.where(drop, torch.full_like(labels, self.null), labels).to(self.device)
        return diffusion_loss(net, self.scheduler, x0, noise, t, labels)


def train(model_dir: str | Path, *, max_steps: int | None = None, max_minutes: float | None = None,
          device: str = "cpu", progress: bool = True, log_every: int = 10) -> dict:
    """Train (or resume) the model in ``model_dir`` until ``max_steps`` total steps or
    ``max_minutes`` of wall time in this call, whichever comes first (at least one).

    Returns `TrainingSummary.as_dict()`: ``step``, ``loss`` (mean of the last log window),
    ``minutes``, ``total_train_minutes``, ``steps_per_s``, ``curve_steps``, ``curve_losses``.
    Raises `TrainingDiverged` when the loss is not finite (the last checkpoint is kept).
    """
    check_budget(max_steps, max_minutes)
    device = resolve_device(device)
    model_dir = Path(model_dir)
    cfg = ck.read_config(model_dir, kind=KIND)
    with ck.config_fields(model_dir):  # a section missing or of another type: one line naming the file
        tr = {k: cfg["training"].get(k, DEFAULTS[k]) for k in TRAINING_KEYS}
        n_maps = len(cfg["data"]["map_shapes"])
        rep = make_representation(cfg["representation"])
        schedule = ck.check_schedule(model_dir, cfg)
        null_label = cfg["network"]["num_labels"]
    if not (model_dir / "data.npz").is_file():
        raise in_file(model_dir, "holds no training data (no data.npz; an exported sampling-only model?); "
                      "it cannot be resumed: train a new model")
    data = ck.load_arrays(model_dir / "data.npz")
    maps = [data[f"map_{i}"] for i in range(n_maps)]
    labelled = bool(cfg.get("labels"))
    patches = PatchSampler(maps, data["positions"], cfg["patch_size"], data["map_labels"] if labelled else None)
    objective = DenoisingObjective(patches, rep, schedule, batch_size=int(tr["batch_size"]),
                                   label_dropout=tr["label_dropout"], null_label=null_label, device=device)
    seed_torch(int(tr["seed"]))
    with ck.config_fields(model_dir):
        net = build_network(cfg["network"])
    trainer = Trainer.from_settings(net, objective, model_dir, tr, log_every=log_every, device=device)
    return trainer.fit(max_steps=max_steps, max_minutes=max_minutes, progress=progress).as_dict()


def export_for_sampling(model_dir: str | Path, dest: str | Path, *, overwrite: bool = False) -> Path:
    """Copy what sampling needs (config, hold-out, EMA weights, state.json, training curve) to
    ``dest``, without the training maps and optimizer state: a small folder to ship. It
    samples and evaluates like the original but cannot be resumed."""
    ck.read_config(model_dir, kind=KIND)
    return ck.export_for_use(model_dir, dest, files=("holdout.npz", "training_curve.png"), overwrite=overwrite)
