"""A trained abundance diffusion model, loaded from its folder, ready to sample.

>>> model = load_model("models/samson")            # doctest: +SKIP
>>> maps = model.sample(8, size=64, sampler="ddim", steps=50, seed=0)  # (8, 64, 64, p)
>>> maps = model.sample(8, size=(48, 96), seed=0)  # (8, 48, 96, p)          # doctest: +SKIP

Every returned map is non-negative and sums to one per pixel by construction: the sampler
runs in the representation's space (`representation.py`) and the back-map (softmax, or
simplex projection for ``"simplex"``) always lands on the simplex.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ...errors import InputError, ParameterError, check_memory, check_range, in_file
from ...nn import checkpoint as ck
from ...nn.device import resolve_device
from ...nn.seeds import sample_generators
from ..canvas import TiledDenoiser
from ..diffusion import GuidedNet, sample, sampling_scheduler
from ..samplers import DEFAULT_BATCH_SIZE, DEFAULT_SAMPLER, check_sampling
from .network import build_network
from .representation import make_representation
from .settings import KIND


class AbundanceModel:
    """Sampling side of a trained model (EMA weights).

    Attributes
    ----------
    config : dict, the model's config.json.
    n_endmembers : int, p.
    patch_size : int, training patch size in pixels.
    block_size : int, size of the held-out blocks in pixels.
    labels : list[str] or None, the conditioning labels.
    names : list[str], endmember names.
    step : int, training steps of the loaded checkpoint.
    last_projection_distance : float, mean per-pixel distance of the simplex projection in
        the last `sample` call (``simplex`` representation; 0 otherwise).
    """

    def __init__(self, model_dir: str | os.PathLike, device: str = "cpu"):
        self.model_dir = Path(model_dir)
        self.config = ck.read_config(self.model_dir, kind=KIND)
        path = ck.latest_checkpoint(self.model_dir)
        self.device = resolve_device(device)
        with ck.config_fields(self.model_dir):
            ck.check_schedule(self.model_dir, self.config)
            self.net = build_network(self.config["network"])
            self.rep = make_representation(self.config["representation"])
            self.n_endmembers: int = int(self.config["n_endmembers"])
            self.patch_size: int = int(self.config["patch_size"])
            self.block_size: int = int(self.config.get("block_size", self.patch_size))
            self.labels: list[str] | None = self.config.get("labels")
            self.names: list[str] = self.config.get("names") or [f"em{i + 1}" for i in range(self.n_endmembers)]
        _check_sizes(self)
        try:
            self.net.load_state_dict(ck.load_weights(path))
        except (RuntimeError, OSError) as exc:
            raise InputError(f"{self.model_dir}: weights do not fit the config ({exc}); retrain") from None
        self.net.to(self.device).eval().requires_grad_(False)
        self.step = int(ck.read_state(path)["step"])
        self.last_projection_distance = 0.0

    def holdout(self) -> dict[str, np.ndarray]:
        """Real blocks saved with the model: ``heldout`` (M,b,b,p), ``floor`` (L,b,b,p) and the
        training crops ``train`` (K,P,P,p), float32; `InputError` naming the file without
        ``heldout``, which every reader of it needs."""
        path = self.model_dir / "holdout.npz"
        arrays = ck.load_arrays(path)
        if "heldout" not in arrays:
            raise in_file(path, f"has no 'heldout' array (keys: {', '.join(sorted(arrays))}); expected the held-out "
                                "maps training saves: retrain the model")
        return arrays

    def label_index(self, label: str | None) -> int | None:
        """Index of ``label`` among the model's labels (None for None)."""
        if label is None:
            return None
        if not self.labels:
            raise ParameterError("label", label, "this model was trained without labels")
        if label not in self.labels:
            raise ParameterError("label", label, f"not a label of this model; expected one of "
                                 f"{', '.join(self.labels)}")
        return self.labels.index(label)

    @torch.no_grad()
    def sample(self, count: int, *, size: int | tuple[int, int] | None = None, sampler: str = DEFAULT_SAMPLER,
               steps: int | None = None, seed: int = 0, guidance: float | None = None,
               label: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> np.ndarray:
        """Sample ``count`` abundance maps (count, rows, cols, p) float32 on the simplex.

        ``size``: ``rows`` = ``cols`` = ``size``, or ``(rows, cols)``; any size >= 1, default the
        patch size. The network sees patch-sized tiles only: the sampler runs on a canvas at
        least a patch on each side (larger maps with blended overlapping tiles,
        `unmixgen.priors.canvas`) and returns its top-left ``rows`` x ``cols``. ``sampler`` is one of
        `unmixgen.priors.samplers.SAMPLERS`, ``steps`` defaults to the sampler's default.
        ``guidance`` is the classifier-free guidance scale (1 = conditional model only,
        0 = unconditional, > 1 strengthens the label); it needs ``label``. Sample ``i`` is
        seeded by ``(seed, i)``, whatever ``batch_size``.
        """
        steps = check_sampling(sampler, steps, self.config["schedule"]["num_train_timesteps"])
        check_range("count", count, low=1, integer=True)
        rows, cols = map_shape(self.patch_size if size is None else size)
        check_range("batch_size", batch_size, low=1, integer=True)
        check_range("seed", seed, low=0, integer=True)  # as every other seed: -1 would be 2**32 - 1
        # smaller maps: a crop of a patch-sized sample
        canvas = (max(rows, self.patch_size), max(cols, self.patch_size))
        # the output plus a few canvas-sized states per batch (the network sees patch-sized tiles);
        # the refusal names the option that asks for more: many maps, or large ones
        maps, states = count * rows * cols, 6 * min(batch_size, count) * canvas[0] * canvas[1]
        name, value = ("count", count) if maps >= states else ("size", size if rows == cols else f"{rows}x{cols}")
        check_memory(name, value, 4.0 * self.n_endmembers * (maps + states))
        if guidance is not None and label is None:
            raise ParameterError("guidance", guidance, "needs a label (the label to guide towards)")
        if guidance is not None:
            # a finite scale: NaN, inf or one that overflows float32 (1e30) made every map NaN;
            # useful scales are a few units, so +-1000 refuses none of them
            check_range("guidance", guidance, low=-1000, high=1000)
        lab = self.label_index(label)
        null = self.config["network"]["num_labels"] if self.labels else None
        guided = GuidedNet(self.net, null_label=null, label=lab, guidance=1.0 if guidance is None else float(guidance))
        denoise = TiledDenoiser(guided, self.patch_size)
        channels = self.config["network"]["channels"]
        out = np.empty((count, rows, cols, self.n_endmembers), np.float32)
        bar = _Bar(f"sampling ({sampler}, {steps} steps)", -(-count // batch_size) * steps) if progress else None
        dist = []
        try:
            for s in range(0, count, batch_size):
                m = min(batch_size, count - s)
                sched = sampling_scheduler(sampler, self.config["schedule"], self.rep.clip_range)
                x = sample(denoise, sched, (m, channels, *canvas), sample_generators(seed, s, m), steps,
                           self.device, None if bar is None else bar.advance)
                a = self.rep.decode(x)[:, :, :rows, :cols]
                dist.append(getattr(self.rep, "last_projection_distance", 0.0))
                out[s:s + m] = a.permute(0, 2, 3, 1).float().cpu().numpy()
        finally:
            if bar is not None:
                bar.stop()
        self.last_projection_distance = float(np.mean(dist)) if dist else 0.0
        return out


def map_shape(size) -> tuple[int, int]:
    """``(rows, cols)`` of maps of ``size``: an int (square) or ``(rows, cols)``, whole numbers
    >= 1; `ParameterError` naming ``size`` otherwise."""
    import numbers

    pair = (size, size) if isinstance(size, numbers.Integral) and not isinstance(size, bool) else size
    if isinstance(pair, (tuple, list)) and len(pair) == 2 and all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in pair):
        return int(pair[0]), int(pair[1])
    raise ParameterError("size", size, "expected an integer >= 1 (square maps) or (rows, cols), both integers >= 1")


def _check_sizes(model: AbundanceModel) -> None:
    """`InputError` naming the model's config.json unless its sizes agree: p >= 1 endmembers,
    as many network channels and names, patches and blocks of >= 1 pixel, labels as a list
    (another p met the sampler's output as a ValueError, a negative patch size as numpy's
    "negative dimensions")."""
    channels = model.config["network"].get("channels")
    bad = [f"{k} {v!r}" for k, v in (("n_endmembers", model.n_endmembers), ("patch_size", model.patch_size),
                                     ("block_size", model.block_size)) if v < 1]
    if channels != model.n_endmembers:
        bad.append(f"network channels {channels!r} for n_endmembers {model.n_endmembers}")
    if not isinstance(model.names, list) or len(model.names) != model.n_endmembers:
        bad.append(f"names {model.names!r} for n_endmembers {model.n_endmembers}")
    if model.labels is not None and not isinstance(model.labels, list):
        bad.append(f"labels {model.labels!r}")
    if bad:
        raise in_file(model.model_dir / "config.json", f"{'; '.join(bad)}; expected sizes >= 1, one channel "
                                                       "and name per endmember, labels as a list: retrain the model")


class _Bar:
    """A rich progress bar over sampler steps."""

    def __init__(self, title: str, total: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn(title), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                 TimeElapsedColumn())
        self.progress.start()
        self.task = self.progress.add_task("sample", total=total)

    def advance(self) -> None:
        self.progress.advance(self.task)

    def stop(self) -> None:
        self.progress.stop()


DEMO_MODEL = Path(__file__).resolve().parents[2] / "assets" / "demo_abundance"


def shipped_demo_model(device: str = "cpu") -> AbundanceModel:
    """The small model shipped with unmixgen, trained on the embedded default scene's maps
    (see ``assets/demo_abundance/README.md`` for the command that made it)."""
    if not (DEMO_MODEL / "config.json").is_file():
        raise InputError(f"{DEMO_MODEL}: the shipped demo model is missing; train it with run_demo(train=True) "
                         "(`unmixgen demo --train`)")
    return AbundanceModel(DEMO_MODEL, device=device)


def load_model(model_dir: str | os.PathLike, device: str = "cpu") -> AbundanceModel:
    """Load a trained abundance model folder (the --out of ``unmixgen train-abundance``).

    Raises `InputError` when the folder is missing, incomplete or from another format version.
    """
    return AbundanceModel(model_dir, device=device)
