"""Training the abundance diffusion model.

`create_model_folder` cuts the maps into the hold-out split and writes config.json,
data.npz and holdout.npz; `train` then trains (or resumes) from what that folder holds, so a
killed run continues with ``train(model_dir)`` from its last checkpoint with the same
batches, optimizer moments, EMA weights and RNG state.

Objective: DDPM noise schedule (diffusers `DDPMScheduler`, 1000 steps, cosine betas by
default), epsilon- or v-prediction, MSE, AdamW with a short linear warm-up, gradient-norm
clipping, EMA weights for sampling. With labels, each label is dropped (replaced by the
null label) with probability ``label_dropout`` so that the same network also models the
unconditional distribution, for classifier-free guidance.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import __version__
from ...errors import InputError
from ...nn import checkpoint as ck
from ...nn.device import resolve_device
from .network import build_network
from .patches import PatchSampler, TrainingMaps, renormalise, split_maps
from .representation import make_representation

DEFAULTS: dict[str, Any] = {
    "patch": 16,
    "block": None,  # hold-out block size; None = patch
    "representation": "simplex",
    "clr_eps": 1e-3,
    "width": 32,
    "channel_mult": [1, 2, 2],
    "blocks": 1,
    "dropout": 0.0,
    "prediction_type": "v_prediction",
    "beta_schedule": "squaredcos_cap_v2",
    "num_train_timesteps": 1000,
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "warmup_steps": 100,
    "ema_decay": 0.999,
    "grad_clip": 1.0,
    "label_dropout": 0.15,
    "seed": 0,
    "checkpoint_every_s": 120.0,
}


class TrainingDiverged(InputError):
    """The loss became NaN/Inf; the last good checkpoint was kept."""


def create_model_folder(folder: Path, data: TrainingMaps, **options: Any) -> dict:
    """Write config.json, data.npz and holdout.npz for a new model into ``folder`` (existing,
    empty). Options are the keys of `DEFAULTS`. Returns the config."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown training options: {sorted(unknown)}")
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    patch = int(opts["patch"])
    down = 2 ** (len(opts["channel_mult"]) - 1)
    if patch < 8 or patch > 256 or patch % down:
        raise InputError(f"--patch: {patch} is not supported; expected a multiple of {down} from 8 to 256")
    if opts["representation"] not in ("clr", "simplex"):
        raise InputError(f"--representation: {opts['representation']!r} is not one of clr, simplex")
    if opts["prediction_type"] not in ("epsilon", "v_prediction"):
        raise InputError(f"--prediction: {opts['prediction_type']!r} is not one of epsilon, v_prediction")
    split = split_maps(data.maps, patch, opts["block"])
    labels = sorted(set(data.labels)) if data.labels is not None else None
    map_labels = (np.array([labels.index(lab) for lab in data.labels]) if labels
                  else np.zeros(len(data.maps), int))
    # representation fitted on the training crops (only training pixels)
    rep = make_representation({"name": opts["representation"], "eps": opts["clr_eps"]})
    fit_blocks = torch.from_numpy(renormalise(split.train_blocks)).permute(0, 3, 1, 2)
    rep.fit(fit_blocks)
    p = data.maps[0].shape[-1]
    rep_cfg = rep.config()
    cfg = {
        "format": ck.FORMAT,
        "format_version": ck.FORMAT_VERSION,
        "unmixgen_version": __version__,
        "n_endmembers": p,
        "patch_size": patch,
        "block_size": int(opts["block"] or patch),
        "names": data.names,
        "labels": labels,
        "representation": rep_cfg,
        "network": {"channels": p, "width": opts["width"], "channel_mult": list(opts["channel_mult"]),
                    "blocks": opts["blocks"], "num_labels": len(labels) if labels else 0,
                    "dropout": opts["dropout"]},
        "schedule": {"num_train_timesteps": opts["num_train_timesteps"],
                     "beta_schedule": opts["beta_schedule"],
                     "prediction_type": opts["prediction_type"]},
        "training": {k: opts[k] for k in ("batch_size", "lr", "weight_decay", "warmup_steps",
                                          "ema_decay", "grad_clip", "label_dropout", "seed",
                                          "checkpoint_every_s")},
        "data": {"sources": data.sources, "matching": data.match,
                 "map_shapes": [list(m.shape) for m in data.maps],
                 "n_train_positions": len(split.positions), "n_heldout": len(split.heldout),
                 "n_floor": len(split.floor), "n_train_blocks": len(split.train_blocks),
                 "holdout_phases": [list(ph) for ph in split.phases],
                 "map_labels": [labels[i] for i in map_labels] if labels else None},
    }
    arrays = {f"map_{i}": m for i, m in enumerate(data.maps)}
    arrays["positions"] = split.positions.astype(np.int64)
    arrays["map_labels"] = map_labels.astype(np.int64)
    for i, c in enumerate(split.classes):
        arrays[f"classes_{i}"] = c
    ck.save_arrays(folder / "data.npz", arrays)
    ck.save_arrays(folder / "holdout.npz", {"heldout": split.heldout, "floor": split.floor,
                                            "train": split.train_blocks})
    ck.write_json_atomic(folder / "config.json", cfg)
    return cfg


def make_train_scheduler(schedule: dict):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=schedule["num_train_timesteps"],
                         beta_schedule=schedule["beta_schedule"],
                         prediction_type=schedule["prediction_type"], clip_sample=False)


def _plot_curve(steps: list[int], losses: list[float], path: Path) -> None:
    try:
        from ...report.figures import plot_training_curve  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        plot_training_curve = None
    if plot_training_curve is not None:
        plot_training_curve(steps, losses, path)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (MSE)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with ck.atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def train(model_dir: str | Path, *, max_steps: int | None = None, max_minutes: float | None = None,
          device: str = "cpu", progress: bool = True, log_every: int = 10) -> dict:
    """Train (or resume) the model in ``model_dir`` until ``max_steps`` total steps or
    ``max_minutes`` of wall time in this call, whichever comes first (at least one must be
    given). Writes a checkpoint every ``checkpoint_every_s`` seconds and at the end.

    Returns ``{"step", "loss", "minutes", "steps_per_s"}``. Raises `TrainingDiverged` (an
    `InputError`) when the loss is not finite, keeping the last good checkpoint.
    """
    model_dir = Path(model_dir)
    if max_steps is None and max_minutes is None:
        raise InputError("give --max-steps or --max-minutes (a training budget)")
    if max_steps is not None and max_steps < 1:
        raise InputError(f"--max-steps: {max_steps} < 1; expected a positive number of steps")
    if max_minutes is not None and max_minutes <= 0:
        raise InputError(f"--max-minutes: {max_minutes} <= 0; expected a positive time budget")
    device = resolve_device(device)
    cfg = ck.read_config(model_dir)
    tr = cfg["training"]
    if not (model_dir / "data.npz").is_file():
        raise InputError(f"{model_dir}: holds no training data (no data.npz; an exported sampling-only "
                         "model?); it cannot be resumed: train a new model")
    data = ck.load_arrays(model_dir / "data.npz")
    maps = [data[f"map_{i}"] for i in range(len(cfg["data"]["map_shapes"]))]
    labels_cfg = cfg.get("labels")
    sampler = PatchSampler(maps, data["positions"], cfg["patch_size"],
                           data["map_labels"] if labels_cfg else None)
    rep = make_representation(cfg["representation"])
    torch.manual_seed(int(tr["seed"]))
    model = build_network(cfg["network"])
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tr["lr"], weight_decay=tr["weight_decay"])
    gen = torch.Generator().manual_seed(int(tr["seed"]) + 1)
    ckpt = ck.latest_checkpoint(model_dir, required=False)
    state: dict[str, Any] = {"losses": [], "loss_steps": [], "train_seconds": 0.0}
    step = 0
    if ckpt is not None:
        state = ck.load_training_state(ckpt, model, ema, optimizer, gen)
        step = int(state["step"])
    model.to(device)
    ema.to(device)
    for st in optimizer.state.values():
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step":
                st[k] = v.to(device)
    sched = make_train_scheduler(cfg["schedule"])
    acp = sched.alphas_cumprod.to(device)
    T = cfg["schedule"]["num_train_timesteps"]
    pred_type = cfg["schedule"]["prediction_type"]
    null = cfg["network"]["num_labels"]
    t_start = time.monotonic()
    last_ckpt = t_start
    window: list[float] = []
    target_steps = max_steps if max_steps is not None else math.inf
    deadline = t_start + 60.0 * max_minutes if max_minutes is not None else math.inf
    last_good_step = step

    def save(at: int) -> None:
        nonlocal last_good_step
        state["train_seconds"] = float(state.get("train_seconds", 0.0))
        ck.save_checkpoint(model_dir, step=at, model=model, ema=ema, optimizer=optimizer,
                           generator=gen, state=state)
        last_good_step = at

    bar = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("training"), BarColumn(), TextColumn("step {task.completed}"),
                       TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), transient=False)
        bar.start()
        total = max_steps if max_steps is not None else None
        task = bar.add_task("train", total=total, completed=step, loss="-")
    model.train()
    start_step = step
    try:
        while step < target_steps and time.monotonic() < deadline:
            a, labels = sampler.batch(int(tr["batch_size"]), gen)
            a = a.to(device)
            x0 = rep.encode(a)
            noise = torch.randn(x0.shape, generator=gen).to(device)
            t = torch.randint(0, T, (x0.shape[0],), generator=gen).to(device)
            s1 = acp[t].sqrt()[:, None, None, None]
            s2 = (1 - acp[t]).sqrt()[:, None, None, None]
            xt = s1 * x0 + s2 * noise
            target = noise if pred_type == "epsilon" else s1 * noise - s2 * x0
            if labels is not None:
                drop = torch.rand(labels.shape, generator=gen) < tr["label_dropout"]
                labels = torch.where(drop, torch.full_like(labels, null), labels).to(device)
            lr = tr["lr"] * min(1.0, (step + 1) / max(1, tr["warmup_steps"]))
            for g in optimizer.param_groups:
                g["lr"] = lr
            pred = model(xt, t, labels)
            loss = torch.mean((pred - target) ** 2)
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise TrainingDiverged(
                    f"{model_dir}: training diverged (loss {lv} at step {step + 1}); kept the last good "
                    f"checkpoint (step {last_good_step}); retry with a lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tr["grad_clip"])
            optimizer.step()
            step += 1
            decay = min(tr["ema_decay"], (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                    pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
            window.append(lv)
            if len(window) >= log_every:
                state["loss_steps"].append(step)
                state["losses"].append(float(np.mean(window)))
                window = []
            if bar is not None:
                bar.update(task, completed=step, loss=f"{lv:.4f}")
            now = time.monotonic()
            if now - last_ckpt > tr["checkpoint_every_s"]:
                state["train_seconds"] = float(state.get("train_seconds", 0.0)) + (now - last_ckpt)
                last_ckpt = now
                save(step)
    finally:
        if bar is not None:
            bar.stop()
    now = time.monotonic()
    state["train_seconds"] = float(state.get("train_seconds", 0.0)) + (now - last_ckpt)
    if window:
        state["loss_steps"].append(step)
        state["losses"].append(float(np.mean(window)))
    if step != last_good_step or ckpt is None:
        save(step)
    if state["losses"]:
        _plot_curve(state["loss_steps"], state["losses"], model_dir / "training_curve.png")
    minutes = (now - t_start) / 60.0
    return {"step": step, "loss": state["losses"][-1] if state["losses"] else None,
            "minutes": minutes, "total_train_minutes": state["train_seconds"] / 60.0,
            "steps_per_s": (step - start_step) / max(1e-9, now - t_start)}


def export_for_sampling(model_dir: str | Path, dest: str | Path, *, overwrite: bool = False) -> Path:
    """Copy what sampling needs (config, hold-out, EMA weights, state.json, training curve) to
    ``dest``, without the training maps and optimizer state: a small folder to ship. It
    samples and evaluates like the original but cannot be resumed."""
    import shutil

    from ...atomic import atomic_dir

    model_dir = Path(model_dir)
    ck.read_config(model_dir)
    src = ck.latest_checkpoint(model_dir)
    rel = src.relative_to(model_dir)
    with atomic_dir(dest, overwrite=overwrite) as tmp:
        for name in ("config.json", "holdout.npz", "checkpoint.json", "training_curve.png"):
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, tmp / name)
        (tmp / rel).mkdir(parents=True)
        for name in ("ema.safetensors", "state.json"):
            shutil.copy2(src / name, tmp / rel / name)
    return Path(dest)
