"""`unmixgen train-abundance` and `unmixgen synthesize`: the abundance diffusion model."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..errors import InputError, ParameterError
from ..priors.abundance.settings import DEFAULTS
from ..priors.samplers import DEFAULT_BATCH_SIZE, DEFAULT_SAMPLER, DEFAULT_STEPS
from .app import app


@app.command("train-abundance")
def train_abundance(
    ctx: typer.Context,
    results: list[Path] = typer.Argument(None, help="`unmixgen unmix` result folders (abundance maps to learn from)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (or to continue with --resume)."),
    patch: int = typer.Option(DEFAULTS["patch"], "--patch", help="Training patch and hold-out block size in px (multiple of 4, 8..256). "
                              "16 suits ~100 px scenes such as Samson or Jasper Ridge; 32-64 larger scenes."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Wall-time budget for this run, minutes."),
    max_steps: int = typer.Option(None, "--max-steps", help="Total number of training steps to reach."),
    representation: str = typer.Option(DEFAULTS["representation"], "--representation", help="Diffusion space: simplex (linear, simplex projection; better in benchmarks/synthesis.py) or clr (log-ratio, softmax back-map)."),
    width: int = typer.Option(DEFAULTS["width"], "--width", help="Network width (channels at the first level)."),
    prediction: str = typer.Option(DEFAULTS["prediction_type"], "--prediction", help="v_prediction or epsilon."),
    batch_size: int = typer.Option(DEFAULTS["batch_size"], "--batch-size", help="Patches per training step."),
    lr: float = typer.Option(DEFAULTS["lr"], "--lr", help="AdamW learning rate."),
    label_from: str = typer.Option(None, "--label-from", show_default="none", help="Conditioning label per map: folder (folder name), method (unmixing method from run.json) or none."),
    max_sad: float = typer.Option(None, "--max-sad", show_default="0.3", help="Largest spectral angle (rad) accepted when matching endmembers across folders."),
    seed: int = typer.Option(DEFAULTS["seed"], "--seed", help="Random seed (initialisation, batches, noise)."),
    checkpoint_seconds: float = typer.Option(DEFAULTS["checkpoint_every_s"], "--checkpoint-seconds", help="Write a checkpoint every this many seconds of training."),
    checkpoint_steps: int = typer.Option(DEFAULTS["checkpoint_every_steps"], "--checkpoint-steps", help="Also write a checkpoint every this many steps."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch's default; 1 is fastest on a busy machine)."),
    resume: bool = typer.Option(False, "--resume", help="Continue training the model in --out from its last checkpoint (with its saved data and settings)."),
    export: Path = typer.Option(None, "--export", help="Also write a small sampling-only copy (no training maps or optimizer state) to this folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out (and --export) folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a diffusion model of abundance maps from unmixing results.

    Maps are cut into patches (flips, 90-degree rotations); interleaved blocks are held out for evaluation and saved with the model. Endmembers of several folders are matched to the first folder's by spectral angle (Hungarian matching); folders with other band or endmember counts, or a poor match, are refused. --resume continues a killed or finished run from its last checkpoint.

    Example: unmixgen train-abundance runs/samson-vca --out models/samson --patch 16 --max-minutes 20
    """
    from ..nn.device import set_threads
    from ..workflows import train_abundance_model

    if resume:  # the model continues with its saved settings: a new one given here would be ignored
        for name, flag in (("patch", "--patch"), ("representation", "--representation"), ("width", "--width"),
                           ("prediction", "--prediction"), ("batch_size", "--batch-size"), ("lr", "--lr"),
                           ("seed", "--seed"), ("label_from", "--label-from"), ("max_sad", "--max-sad"),
                           ("checkpoint_seconds", "--checkpoint-seconds"), ("checkpoint_steps", "--checkpoint-steps")):
            source = ctx.get_parameter_source(name)
            if source is not None and source.name == "COMMANDLINE":
                raise InputError(f"{flag}: not used with --resume (the model continues with the settings it was "
                                 "created with); expected it only for a new model")
    set_threads(threads)
    t0 = time.monotonic()
    # a resumed model takes none of the settings (their defaults here are a new model's)
    settings = {} if resume else dict(
        label_from=label_from, max_sad=max_sad, patch=patch, representation=representation, width=width,
        prediction_type=prediction, batch_size=batch_size, lr=lr, seed=seed, checkpoint_every_s=checkpoint_seconds,
        checkpoint_every_steps=checkpoint_steps)
    info = train_abundance_model(
        results or [], out, max_minutes=max_minutes, max_steps=max_steps, resume=resume, export=export,
        overwrite=overwrite, device=device, progress=progress, **settings)
    print(f"trained {out}: step {info['step']}, loss {info['loss']:.4f}, "
          f"{info['total_train_minutes']:.1f} min total ({time.monotonic() - t0:.0f} s this run)")


@app.command()
def synthesize(
    model_dir: Path = typer.Argument(..., help="Model folder written by `unmixgen train-abundance`."),
    count: int = typer.Option(..., "--count", "-n", help="Number of maps to synthesize."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    size: str = typer.Option(None, "--size", help="Map size in px: N (N x N) or ROWSxCOLS, e.g. 64x128 (default: the training patch size; larger maps are tiled).", metavar="N|ROWSxCOLS"),
    sampler: str = typer.Option(DEFAULT_SAMPLER, "--sampler", help="ddim, dpm (DPM-Solver++) or ddpm (ancestral)."),
    steps: int = typer.Option(None, "--steps", help="Sampler steps (default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items()) + ")."),
    guidance: float = typer.Option(None, "--guidance", help="Classifier-free guidance scale (needs --label)."),
    label: str = typer.Option(None, "--label", help="Conditioning label (see the model's config.json)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, "--batch-size", help="Maps sampled at once."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch's default)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Synthesize new abundance maps with a trained model.

    Writes abundances.npz (`abundances` (N, rows, cols, p)), one GeoTIFF per map, a PNG grid and run.json. Every map is non-negative and sums to one per pixel by construction; maps larger than the training patch are sampled with blended overlapping tiles.

    Example: unmixgen synthesize models/samson --count 16 --size 64 --sampler dpm --steps 20 --out synth

    Example: unmixgen synthesize models/cuprite --count 4 --size 250x190 --out synth
    """
    from ..nn.device import set_threads
    from ..workflows import synthesize_maps

    set_threads(threads)
    rec = synthesize_maps(model_dir, count, out, size=None if size is None else map_size(size), sampler=sampler, steps=steps, guidance=guidance,
                          label=label, seed=seed, batch_size=batch_size, device=device, overwrite=overwrite,
                          progress=progress)
    shape = rec["shape"]
    print(f"wrote {count} maps of {shape[1]}x{shape[2]}x{shape[3]} to {out} ({rec['timings_s']['sampling']:.1f} s)")


def map_size(text: str) -> int | tuple[int, int]:
    """``--size``: ``N`` (square maps) or ``ROWSxCOLS``, whole numbers >= 1."""
    parts = text.strip().lower().split("x")
    if len(parts) in (1, 2) and all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    raise ParameterError("size", text, "expected N (N x N maps) or ROWSxCOLS (e.g. 64x128), whole numbers >= 1")


__all__ = ["synthesize", "train_abundance"]
