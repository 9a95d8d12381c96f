"""`unmixgen train-stu`: train a HybridSTU model (semi-blind unmixing) for a scene."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InputError, ParameterError
from .app import app
from .flags import given

# HybridSTU's defaults as --help shows them. Written here, not read from the estimator, whose
# module imports torch (seconds at every start); tests/test_cli_basics.py holds them to its signature.
STU_DEFAULTS = {"k": "5", "lam": "0.0", "variability": "auto", "scaling": "pixel", "base": "auto",
                "max_steps": "3000", "max_minutes": "4.0", "device": "cpu", "seed": "0"}


@app.command("train-stu")
def train_stu(
    scene_path: Path = typer.Argument(..., metavar="SCENE", help="Scene file (any readable format)."),
    endmembers_file: str = typer.Option(..., "--endmembers-file",
                                        help="Endmembers: CSV, .npz with 'endmembers', result folder, a benchmark .mat with M (bands, p), an ENVI spectral library (.sli with its .hdr), or LIB.mat:names / LIB.sli:names."),
    maps: str = typer.Option("grf", "--maps", help="Training maps: prior:MODEL (or prior:demo), grf, dirichlet, or FILE."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write."),
    k: int = typer.Option(None, "--k", help="Odd neighbourhood size (1 = spectral only).", show_default=STU_DEFAULTS["k"]),
    lam: float = typer.Option(None, "--lam", help="Weight of the spectral-angle loss term.", show_default=STU_DEFAULTS["lam"]),
    variability: str = typer.Option(None, "--variability",
                                    help="ELMM brightness variability of the training scenes (log-std), or auto.", show_default=STU_DEFAULTS["variability"]),
    scaling: str = typer.Option(None, "--scaling",
                                help="How the training scenes' brightness varies: pixel (illumination), "
                                     "endmember (ELMM) or mixed.", show_default=STU_DEFAULTS["scaling"]),
    base: str = typer.Option(None, "--base",
                             help="Per-pixel answer the network corrects: auto, fcls, or scaled (brightness-free NNLS).", show_default=STU_DEFAULTS["base"]),
    max_steps: int = typer.Option(None, "--max-steps", help="Training steps at most.", show_default=STU_DEFAULTS["max_steps"]),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Training minutes at most.", show_default=STU_DEFAULTS["max_minutes"]),
    device: str = typer.Option(None, "--device", help="auto, cpu or cuda.", show_default=STU_DEFAULTS["device"]),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch's default; 1 is fastest on a busy machine)."),
    seed: int = typer.Option(None, "--seed", help="Random seed (runs are reproducible).", show_default=STU_DEFAULTS["seed"]),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a HybridSTU CNN on scenes simulated from the endmembers and training maps.

    Example: unmixgen train-stu scene.hdr --endmembers-file run1 --maps grf --out stu-model
    """
    from rich.console import Console

    from ..nn.device import set_threads
    from ..workflows import train_stu as run

    if variability is not None and variability != "auto":
        try:
            variability = float(variability)
        except ValueError:
            raise ParameterError("variability", variability, "expected a number or auto") from None
    if scaling is not None and variability == 0:  # no brightness variation: how it varies went without a word
        raise InputError(f"--scaling {scaling}: says how the training scenes' brightness varies, and --variability "
                         "0 keeps it constant; expected a variability above 0 (or auto)")
    set_threads(threads)
    h = run(scene_path, endmembers_file, out, maps=maps, overwrite=overwrite,
            **given(k=k, lam=lam, variability=variability, scaling=scaling, base=base, max_steps=max_steps, max_minutes=max_minutes, device=device, seed=seed,
                    progress=progress))
    Console().print(f"[bold]hybridstu[/bold]: {h['steps']} steps (best {h['best_step']}, validation abundance "
                    f"RMSE {100 * h['best_validation_rmse']:.2f} %, SNR {h['snr_db']:.1f} dB, corrects "
                    f"{h.get('base') or 'bands'}) -> {out}")
