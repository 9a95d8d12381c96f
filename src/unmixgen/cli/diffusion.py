"""`unmixgen train-abundance` and `unmixgen synthesize`: the abundance diffusion model."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..errors import InputError, in_file
from .app import app


def _threads(n: int) -> None:
    if n > 0:
        import torch

        torch.set_num_threads(n)


@app.command("train-abundance")
def train_abundance(
    results: list[Path] = typer.Argument(None, help="`unmixgen unmix` result folders (abundance maps to learn from)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (or to continue with --resume)."),
    patch: int = typer.Option(16, "--patch", help="Training patch and hold-out block size in px (multiple of 4, 8..256). "
                              "16 suits ~100 px scenes such as Samson or Jasper Ridge; 32-64 larger scenes."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Wall-time budget for this run, minutes."),
    max_steps: int = typer.Option(None, "--max-steps", help="Total number of training steps to reach."),
    representation: str = typer.Option("simplex", "--representation", help="Diffusion space: simplex (linear, simplex projection; the default, better in benchmarks/synthesis.py) or clr (log-ratio, softmax back-map)."),
    width: int = typer.Option(32, "--width", help="Network width (channels at the first level)."),
    prediction: str = typer.Option("v_prediction", "--prediction", help="v_prediction or epsilon."),
    batch_size: int = typer.Option(32, "--batch-size", help="Patches per training step."),
    lr: float = typer.Option(1e-3, "--lr", help="AdamW learning rate."),
    label_from: str = typer.Option("none", "--label-from", help="Conditioning label per map: folder (folder name), method (unmixing method from run.json) or none."),
    max_sad: float = typer.Option(0.3, "--max-sad", help="Largest spectral angle (rad) accepted when matching endmembers across folders."),
    seed: int = typer.Option(0, "--seed", help="Random seed (initialisation, batches, noise)."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch's default; 1 is fastest on a busy machine)."),
    resume: bool = typer.Option(False, "--resume", help="Continue training the model in --out from its last checkpoint."),
    export: Path = typer.Option(None, "--export", help="Also write a small sampling-only copy (no training maps or optimizer state) to this folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out (and --export) folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a diffusion model of abundance maps from unmixing results.

    Maps are cut into patches (flips, 90-degree rotations); interleaved blocks are held out for evaluation and saved with the model. Endmembers of several folders are matched to the first folder's by spectral angle (Hungarian matching); folders with other band or endmember counts, or a poor match, are refused. --resume continues a killed or finished run from its last checkpoint.

    Example: unmixgen train-abundance runs/samson-vca --out models/samson --patch 16 --max-minutes 20
    """
    from ..atomic import atomic_dir
    from ..nn.device import resolve_device
    from ..priors.abundance.train import create_model_folder, export_for_sampling, train
    from ..runs.sources import load_training_maps

    _threads(threads)
    resolve_device(device)
    if max_steps is None and max_minutes is None:
        raise InputError("give --max-steps or --max-minutes (a training budget)")
    if export is not None:
        from ..atomic import check_output_dir

        check_output_dir(export, overwrite)
    t0 = time.monotonic()
    if resume:
        if results:
            raise InputError("--resume continues from the data saved in --out; give no RESULT_DIR")
        if not out.is_dir():
            raise in_file(out, "no such model folder to resume")
    else:
        if not results:
            raise InputError("no RESULT_DIR given; expected one or more `unmixgen unmix` --out folders")
        data = load_training_maps(results, label_from=label_from, max_sad=max_sad)
        with atomic_dir(out, overwrite=overwrite) as tmp:
            create_model_folder(tmp, data, patch=patch, representation=representation, width=width,
                                prediction_type=prediction, batch_size=batch_size, lr=lr, seed=seed)
    info = train(out, max_steps=max_steps, max_minutes=max_minutes, device=device, progress=progress)
    if export is not None:
        export_for_sampling(out, export, overwrite=overwrite)
    print(f"trained {out}: step {info['step']}, loss {info['loss']:.4f}, "
          f"{info['total_train_minutes']:.1f} min total ({time.monotonic() - t0:.0f} s this run)")


@app.command()
def synthesize(
    model_dir: Path = typer.Argument(..., help="Model folder written by `unmixgen train-abundance`."),
    count: int = typer.Option(..., "--count", "-n", help="Number of maps to synthesize."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    size: int = typer.Option(None, "--size", help="Map size in px (default: the training patch size; larger maps are tiled)."),
    sampler: str = typer.Option("ddim", "--sampler", help="ddim, dpm (DPM-Solver++) or ddpm (ancestral)."),
    steps: int = typer.Option(None, "--steps", help="Sampler steps (default: ddim 50, dpm 20, ddpm 1000)."),
    guidance: float = typer.Option(None, "--guidance", help="Classifier-free guidance scale (needs --label)."),
    label: str = typer.Option(None, "--label", help="Conditioning label (see the model's config.json)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    batch_size: int = typer.Option(16, "--batch-size", help="Maps sampled at once."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch's default)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Synthesize new abundance maps with a trained model.

    Writes abundances.npz (`abundances` (N, size, size, p)), one GeoTIFF per map, a PNG grid and run.json. Every map is non-negative and sums to one per pixel by construction; maps larger than the training patch are sampled with blended overlapping tiles.

    Example: unmixgen synthesize models/samson --count 16 --size 64 --sampler dpm --steps 20 --out synth
    """
    import numpy as np

    from ..atomic import atomic_dir, check_output_dir, write_json
    from ..priors.abundance.model import load_model
    from ..runs.folder import run_record

    _threads(threads)
    if steps is not None and steps < 1:
        raise InputError(f"--steps: {steps} < 1; expected at least 1")
    if count < 1:
        raise InputError(f"--count: {count} < 1; expected at least 1")
    if size is not None and size < 1:
        raise InputError(f"--size: {size} < 1; expected a positive number of pixels")
    check_output_dir(out, overwrite)
    model = load_model(model_dir, device=device)
    t0 = time.monotonic()
    maps = model.sample(count, size=size, sampler=sampler, steps=steps, seed=seed, guidance=guidance,
                        label=label, batch_size=batch_size, progress=progress)
    seconds = time.monotonic() - t0
    rec = run_record("synthesize", {"model": str(model_dir), "count": count, "size": maps.shape[1],
                                    "sampler": sampler, "steps": steps, "guidance": guidance,
                                    "label": label, "batch_size": batch_size, "device": device}, seed=seed)
    rec["timings_s"]["sampling"] = seconds
    rec["model_step"] = model.step
    rec["validity"] = {"min": float(maps.min()), "max_sum_error": float(np.abs(maps.sum(-1) - 1).max())}
    if model.rep.name == "simplex":
        rec["validity"]["mean_projection_distance"] = model.last_projection_distance
    with atomic_dir(out, overwrite=overwrite) as tmp:
        np.savez_compressed(tmp / "abundances.npz", abundances=maps, names=np.array(model.names))
        _write_geotiffs(tmp, maps, model.names, rec)
        _write_grid(tmp / "abundances.png", maps, model.names)
        write_json(tmp / "run.json", rec)
    print(f"wrote {count} maps of {maps.shape[1]}x{maps.shape[2]}x{maps.shape[3]} to {out} ({seconds:.1f} s)")


def _write_geotiffs(folder: Path, maps, names: list[str], rec: dict) -> None:
    try:
        from ..io import write_scene
        from ..scene import Scene

        for i, m in enumerate(maps):
            write_scene(Scene(m, name=f"map_{i:03d}", metadata={"band_names": names}), folder / f"map_{i:03d}.tif")
    except (ImportError, ModuleNotFoundError, InputError) as exc:  # TODO: drop once io.geotiff lands
        for f in folder.glob("map_*.tif"):
            f.unlink()
        rec["warnings"].append(f"GeoTIFF maps not written: {exc}")


def _write_grid(path: Path, maps, names: list[str]) -> None:
    try:
        from ..report.figures import plot_abundance_grid  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        plot_abundance_grid = None
    if plot_abundance_grid is not None:
        plot_abundance_grid(maps[:16], path, names=names)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(len(maps), 8)
    p = maps.shape[-1]
    fig, axes = plt.subplots(p, n, figsize=(1.4 * n, 1.4 * p), squeeze=False)
    for j in range(n):
        for k in range(p):
            ax = axes[k, j]
            ax.imshow(maps[j, :, :, k], vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(names[k] if k < len(names) else f"em{k + 1}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


__all__ = ["synthesize", "train_abundance"]
