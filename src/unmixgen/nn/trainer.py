"""The one training loop every network uses.

A network supplies its model and a *loss hook*, ``loss_fn(model, generator) -> loss``, which
draws a batch from ``generator`` and returns the scalar loss; the `Trainer` does the rest:

- AdamW with a linear learning-rate warm-up (a torch `LambdaLR`) and gradient-norm clipping;
- EMA weights for use (`torch.optim.swa_utils.AveragedModel`), with the decay ramped up as
  ``min(ema_decay, (1 + step) / (10 + step))`` so early weights do not linger;
- a budget of steps and/or wall-clock minutes per call;
- checkpoints (`unmixgen.nn.checkpoint`) every N steps and/or M seconds and at the end, and
  resume from the latest one: weights, EMA, optimizer moments, learning-rate schedule, the
  batch generator, torch's global RNG and the loss log are restored, so a killed and resumed
  run continues exactly as the uninterrupted run would have, loss log included;
- a divergence stop: a NaN/Inf loss raises `TrainingDiverged` before the optimizer step,
  keeping the last checkpoint;
- a rich progress bar and the training curve (mean loss per ``log_every`` steps).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel

from ..errors import ParameterError, TrainingDiverged, check_range, in_file
from . import checkpoint as ck

LossFn = Callable[[torch.nn.Module, torch.Generator], torch.Tensor]


def check_budget(max_steps: int | None, max_minutes: float | None) -> None:
    """Refuse a missing or non-positive training budget (`ParameterError`)."""
    if max_steps is None and max_minutes is None:
        raise ParameterError("max_steps", None, "expected a training budget: max_steps, max_minutes or both",
                             mentions=("max_steps", "max_minutes"))
    if max_steps is not None:
        check_range("max_steps", max_steps, low=1, integer=True)
    if max_minutes is not None:
        check_range("max_minutes", max_minutes, low=0, low_open=True)


@dataclass
class TrainingSummary:
    """What a `Trainer.fit` call did.

    ``loss`` is the mean loss of the latest log window (complete or not); ``curve_steps``
    and ``curve_losses`` are the training curve (mean loss per window, the last window
    possibly partial).
    """

    step: int
    loss: float | None
    minutes: float
    total_train_minutes: float
    steps_per_s: float
    curve_steps: list[int] = field(default_factory=list)
    curve_losses: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class _WarmupEMA:
    """EMA update for `AveragedModel` (``multi_avg_fn``): ``ema = d * ema + (1 - d) * w``,
    ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` optimizer steps."""

    def __init__(self, decay: float):
        self.decay = decay

    def __call__(self, averaged: list[torch.Tensor], current: list[torch.Tensor],
                 num_averaged: torch.Tensor) -> None:
        n = int(num_averaged)  # one update per step after the initial copy: n = step
        d = min(self.decay, (1 + n) / (10 + n))
        for a, w in zip(averaged, current, strict=True):
            a.mul_(d).add_(w, alpha=1 - d)


class Trainer:
    """Train ``model`` on the loss of ``loss_fn``, checkpointing into ``folder``.

    Parameters
    ----------
    model : the network (its initial weights are the caller's, e.g. after `seed_torch`).
    loss_fn : ``loss_fn(model, generator) -> scalar loss``; draws its batch (and noise)
        from ``generator`` only, so that resuming draws the same batches.
    folder : model folder (`unmixgen.nn.checkpoint`); a checkpoint there is resumed.
    lr, weight_decay : AdamW settings.
    warmup_steps : the learning rate rises linearly to ``lr`` over this many steps.
    grad_clip : largest gradient norm (None: no clipping).
    ema_decay : decay of the EMA weights (0 <= decay < 1).
    seed : seed of the generator handed to ``loss_fn``.
    checkpoint_every_s, checkpoint_every_steps : write a checkpoint when this many seconds
        or steps have passed since the last one (None: not on that criterion); one is
        always written at the end of `fit`.
    log_every : steps per point of the loss log.
    device : torch device of the model (``"cpu"`` or ``"cuda"``, resolved).
    """

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn, folder: str | Path, *, lr: float = 1e-3,
                 weight_decay: float = 1e-4, warmup_steps: int = 100, grad_clip: float | None = 1.0,
                 ema_decay: float = 0.999, seed: int = 0, checkpoint_every_s: float | None = 120.0,
                 checkpoint_every_steps: int | None = None, log_every: int = 10, device: str = "cpu"):
        check_range("lr", lr, low=0, low_open=True)
        check_range("warmup_steps", warmup_steps, low=0, integer=True)
        check_range("ema_decay", ema_decay, low=0, high=1, high_open=True)
        check_range("log_every", log_every, low=1, integer=True)
        if grad_clip is not None:
            check_range("grad_clip", grad_clip, low=0, low_open=True)
        if checkpoint_every_s is not None:
            check_range("checkpoint_every_s", checkpoint_every_s, low=0, low_open=True)
        if checkpoint_every_steps is not None:
            check_range("checkpoint_every_steps", checkpoint_every_steps, low=1, integer=True)
        self.folder = Path(folder)
        self.loss_fn = loss_fn
        self.device = device
        self.lr, self.warmup_steps, self.grad_clip = lr, warmup_steps, grad_clip
        self.checkpoint_every_s, self.checkpoint_every_steps = checkpoint_every_s, checkpoint_every_steps
        self.log_every = log_every
        self.model = model.to(device)
        self.ema = AveragedModel(self.model, multi_avg_fn=_WarmupEMA(ema_decay))
        self.ema.update_parameters(self.model)  # first update copies: n_averaged = 1 + steps taken
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.step = 0
        self.log: dict = {"losses": [], "loss_steps": [], "pending_losses": [], "train_seconds": 0.0}
        self.saved_step: int | None = None  # step of the checkpoint on disk
        self._restore()
        for g in self.optimizer.param_groups:
            g.setdefault("initial_lr", lr)
        self.lr_schedule = LambdaLR(self.optimizer, self.warmup_factor, last_epoch=self.step - 1)

    @classmethod
    def from_settings(cls, model: torch.nn.Module, loss_fn: LossFn, folder: str | Path, settings: dict, *,
                      log_every: int = 10, device: str = "cpu") -> Trainer:
        """A trainer set up by a model folder's ``training`` settings: ``lr``, ``weight_decay``,
        ``warmup_steps``, ``grad_clip``, ``ema_decay``, ``seed`` and ``checkpoint_every_s``, and
        ``checkpoint_every_steps`` where present. The batch generator is seeded with ``seed + 1``
        (``seed`` itself drew the initial weights)."""
        return cls(model, loss_fn, folder, lr=settings["lr"], weight_decay=settings["weight_decay"],
                   warmup_steps=settings["warmup_steps"], grad_clip=settings["grad_clip"],
                   ema_decay=settings["ema_decay"], seed=int(settings["seed"]) + 1,
                   checkpoint_every_s=settings["checkpoint_every_s"],
                   checkpoint_every_steps=settings.get("checkpoint_every_steps"), log_every=log_every, device=device)

    def warmup_factor(self, step: int) -> float:
        """Learning rate of (0-based) step ``step`` as a fraction of ``lr``."""
        return min(1.0, (step + 1) / max(1, self.warmup_steps))

    # ------------------------------------------------------------------ checkpoints
    def _restore(self) -> None:
        path = ck.latest_checkpoint(self.folder, required=False)
        if path is None:
            return
        tensors, state = ck.load_state(path)
        try:
            self._apply_state(path, tensors, state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # a hand-edited or another model's state
            raise in_file(path, f"training state does not fit the model ({type(exc).__name__}: {ck.first_line(exc)}); it cannot "
                                "be resumed: train a new model") from None
        self.saved_step = self.step

    def _apply_state(self, path: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
        """Set the weights, optimizer, RNG states and loss log from checkpoint ``path``."""
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.ema.module.load_state_dict(ck.load_weights(path))
        self.step = int(state["step"])
        self.ema.n_averaged.fill_(self.step + 1)
        opt_state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, key = k.split(".", 2)
                opt_state.setdefault(int(idx), {})[key] = v
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
        self.generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and torch.device(self.device).type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.log = {"losses": state.get("losses", []), "loss_steps": state.get("loss_steps", []),
                    "pending_losses": state.get("pending_losses", []),
                    "train_seconds": float(state.get("train_seconds", 0.0))}

    def save(self) -> Path:
        """Write a checkpoint of the current step into the folder."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        opt = self.optimizer.state_dict()
        for idx, st in opt["state"].items():
            for key, val in st.items():
                tensors[f"opt.{idx}.{key}"] = val if torch.is_tensor(val) else torch.tensor(val)
        tensors["rng.generator"] = self.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.device(self.device).type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        state = {**self.log, "param_groups": opt["param_groups"]}
        path = ck.save_checkpoint(self.folder, self.step, weights=self.ema.module.state_dict(),
                                  training=tensors, state=state)
        self.saved_step = self.step
        return path

    # ------------------------------------------------------------------ loop
    def _record(self, loss: float) -> None:
        pending = self.log["pending_losses"]
        pending.append(loss)
        if len(pending) >= self.log_every:
            self.log["loss_steps"].append(self.step)
            self.log["losses"].append(float(np.mean(pending)))
            self.log["pending_losses"] = []

    def curve(self) -> tuple[list[int], list[float]]:
        """Training curve: (steps, mean losses) per log window, the open window last."""
        steps, losses = list(self.log["loss_steps"]), list(self.log["losses"])
        if self.log["pending_losses"]:
            steps.append(self.step)
            losses.append(float(np.mean(self.log["pending_losses"])))
        return steps, losses

    def fit(self, *, max_steps: int | None = None, max_minutes: float | None = None,
            progress: bool = True) -> TrainingSummary:
        """Train until ``max_steps`` total steps or ``max_minutes`` of wall time in this
        call, whichever comes first (at least one must be given).

        Raises
        ------
        ParameterError
            No budget, or a non-positive one.
        TrainingDiverged
            The loss was NaN or infinite; the last checkpoint is kept (nothing is saved).
        """
        check_budget(max_steps, max_minutes)
        t_start = time.monotonic()
        last_save, start_step = t_start, self.step
        target = max_steps if max_steps is not None else math.inf
        deadline = t_start + 60.0 * max_minutes if max_minutes is not None else math.inf
        bar = _Bar(max_steps, self.step) if progress else None
        self.model.train()
        try:
            while self.step < target and time.monotonic() < deadline:
                loss = self.loss_fn(self.model, self.generator)
                value = float(loss.detach())
                if not math.isfinite(value):
                    kept = ("no checkpoint was written yet" if self.saved_step is None
                            else f"kept the last good checkpoint (step {self.saved_step})")
                    raise TrainingDiverged(
                        f"{self.folder}: training diverged (loss {value} at step {self.step + 1}); {kept}; "
                        f"retry with a lower learning rate (lr={self.lr})")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                self.optimizer.step()
                self.lr_schedule.step()
                self.step += 1
                self.ema.update_parameters(self.model)
                self._record(value)
                if bar is not None:
                    bar.update(self.step, value)
                now = time.monotonic()
                by_time = self.checkpoint_every_s is not None and now - last_save > self.checkpoint_every_s
                by_steps = (self.checkpoint_every_steps is not None
                            and self.step - (self.saved_step or 0) >= self.checkpoint_every_steps)
                if by_time or by_steps:
                    self.log["train_seconds"] += now - last_save
                    last_save = now
                    self.save()
        finally:
            if bar is not None:
                bar.stop()
        now = time.monotonic()
        self.log["train_seconds"] += now - last_save
        if self.step != self.saved_step:
            self.save()
        steps, losses = self.curve()
        return TrainingSummary(step=self.step, loss=losses[-1] if losses else None,
                               minutes=(now - t_start) / 60.0,
                               total_train_minutes=self.log["train_seconds"] / 60.0,
                               steps_per_s=(self.step - start_step) / max(1e-9, now - t_start),
                               curve_steps=steps, curve_losses=losses)

class _Bar:
    """A rich progress bar: step, latest loss, elapsed time."""

    def __init__(self, total: int | None, start: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("training"), BarColumn(), TextColumn("step {task.completed}"),
                                 TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=start, loss="-")

    def update(self, step: int, loss: float) -> None:
        self.progress.update(self.task, completed=step, loss=f"{loss:.4f}")

    def stop(self) -> None:
        self.progress.stop()
