"""A trained abundance diffusion model, loaded from its folder, ready to sample.

>>> model = load_model("models/samson")            # doctest: +SKIP
>>> maps = model.sample(8, size=64, sampler="ddim", steps=50, seed=0)  # (8, 64, 64, p)

Every returned map is non-negative and sums to one per pixel by construction: the sampler
runs in the representation's space (`representation.py`) and the back-map (softmax, or
simplex projection for ``"simplex"``) always lands on the simplex.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ...errors import InputError
from ...nn import checkpoint as ck
from ...nn.device import resolve_device
from .network import build_network
from .representation import make_representation
from .sample import (
    DEFAULT_STEPS,
    SAMPLERS,
    Denoiser,
    make_scheduler,
    sample_canvas,
    seed_generators,
)


class AbundanceModel:
    """Sampling side of a trained model (EMA weights).

    Attributes
    ----------
    config : dict, the model's config.json.
    n_endmembers : int, p.
    patch_size : int, training patch size in pixels.
    labels : list[str] or None, the conditioning labels.
    names : list[str], endmember names.
    step : int, training steps of the loaded checkpoint.
    """

    def __init__(self, model_dir: str | os.PathLike, device: str = "cpu"):
        self.model_dir = Path(model_dir)
        self.config = ck.read_config(self.model_dir)
        path = ck.latest_checkpoint(self.model_dir)
        self.device = resolve_device(device)
        self.net = build_network(self.config["network"])
        try:
            self.net.load_state_dict(ck.load_ema(path))
        except (RuntimeError, OSError) as exc:
            raise InputError(f"{self.model_dir}: weights do not fit the config ({exc}); retrain") from None
        self.net.to(self.device).eval().requires_grad_(False)
        self.rep = make_representation(self.config["representation"])
        self.n_endmembers: int = int(self.config["n_endmembers"])
        self.patch_size: int = int(self.config["patch_size"])
        self.block_size: int = int(self.config.get("block_size", self.patch_size))
        self.labels: list[str] | None = self.config.get("labels")
        self.names: list[str] = self.config.get("names") or [f"em{i + 1}" for i in range(self.n_endmembers)]
        import json

        self.step = int(json.loads((path / "state.json").read_text())["step"])
        self.last_projection_distance = 0.0

    def holdout(self) -> dict[str, np.ndarray]:
        """Real blocks saved with the model: ``heldout`` (M,b,b,p), ``floor`` (L,b,b,p) and the
        training crops ``train`` (K,P,P,p), float32."""
        return ck.load_arrays(self.model_dir / "holdout.npz")

    def label_index(self, label: str | None) -> int | None:
        if label is None:
            return None
        if not self.labels:
            raise InputError(f"--label {label!r}: this model was trained without labels")
        if label not in self.labels:
            raise InputError(f"--label {label!r}: not a label of this model; expected one of {', '.join(self.labels)}")
        return self.labels.index(label)

    @torch.no_grad()
    def sample(self, n: int, *, size: int | None = None, sampler: str = "ddim", steps: int | None = None,
               seed: int = 0, guidance: float | None = None, label: str | None = None,
               batch_size: int = 16, progress: bool = True) -> np.ndarray:
        """Sample ``n`` abundance maps (n, size, size, p) float32 on the simplex.

        ``size`` defaults to the patch size; larger maps are sampled with blended overlapping
        tiles. ``guidance`` is the classifier-free guidance scale (1 = conditional model
        only, 0 = unconditional, > 1 strengthens the label); it needs ``label``.
        """
        if sampler not in SAMPLERS:
            raise InputError(f"--sampler: {sampler!r} is not one of {', '.join(SAMPLERS)}")
        steps = DEFAULT_STEPS[sampler] if steps is None else int(steps)
        T = self.config["schedule"]["num_train_timesteps"]
        if steps < 1 or steps > T:
            raise InputError(f"--steps: {steps} is out of range; expected 1 to {T}")
        if n < 1:
            raise InputError(f"--count: {n} < 1; expected at least one map")
        size = self.patch_size if size is None else int(size)
        if size < 1:
            raise InputError(f"--size: {size} < 1; expected a positive number of pixels")
        if guidance is not None and label is None:
            raise InputError("--guidance needs --label (the label to guide towards)")
        lab = self.label_index(label)
        g = 1.0 if guidance is None else float(guidance)
        canvas = max(size, self.patch_size)  # smaller maps: a crop of a patch-sized sample
        null = self.config["network"]["num_labels"] if self.labels else None
        den = Denoiser(self.net, self.patch_size, null_label=null, label=lab, guidance=g)
        C = self.config["network"]["channels"]
        out = np.empty((n, size, size, self.n_endmembers), np.float32)
        bar = None
        tick = None
        if progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(TextColumn(f"sampling ({sampler}, {steps} steps)"), BarColumn(),
                           TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
            bar.start()
            nb = -(-n // batch_size)
            task = bar.add_task("sample", total=nb * steps)

            def tick() -> None:
                bar.advance(task)

        dist = []
        try:
            for s in range(0, n, batch_size):
                m = min(batch_size, n - s)
                sched = make_scheduler(sampler, self.config["schedule"], self.rep)
                gens = seed_generators(seed, s, m)
                x = sample_canvas(den, sched, (m, C, canvas, canvas), gens, steps, self.device, tick)
                a = self.rep.decode(x)[:, :, :size, :size]
                dist.append(getattr(self.rep, "last_projection_distance", 0.0))
                out[s:s + m] = a.permute(0, 2, 3, 1).float().cpu().numpy()
        finally:
            if bar is not None:
                bar.stop()
        self.last_projection_distance = float(np.mean(dist)) if dist else 0.0
        return out


DEMO_MODEL = Path(__file__).resolve().parents[2] / "assets" / "demo_abundance"


def shipped_demo_model(device: str = "cpu") -> AbundanceModel:
    """The small model shipped with unmixgen, trained on the embedded default scene's maps
    (see ``assets/demo_abundance/README.md`` for the command that made it)."""
    if not (DEMO_MODEL / "config.json").is_file():
        raise InputError(f"{DEMO_MODEL}: the shipped demo model is missing; run `unmixgen demo --train`")
    return AbundanceModel(DEMO_MODEL, device=device)


def load_model(model_dir: str | os.PathLike, device: str = "cpu") -> AbundanceModel:
    """Load a trained abundance model folder (the --out of ``unmixgen train-abundance``).

    Raises `InputError` when the folder is missing, incomplete or from another format version.
    """
    return AbundanceModel(model_dir, device=device)
