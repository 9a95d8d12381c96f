"""`unmixgen demo`: the whole chain on the embedded synthetic scene, in a few minutes on a CPU.

    synthetic scene -> blind unmix -> semi-blind HybridSTU -> diffusion refinement (shipped priors)
        -> abundance diffusion model (shipped or --train) -> synthetic abundance maps
        -> simulated scenes -> realism metrics -> report.html
"""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
    train: bool = typer.Option(False, "--train", help="Retrain the abundance model instead of using the shipped one."),
    train_minutes: float = typer.Option(None, "--train-minutes", help="Training budget with --train (minutes)."),
    count: int = typer.Option(None, "--count", help="Synthetic abundance maps to generate."),
    semiblind: bool = typer.Option(True, "--semiblind/--no-semiblind",
                                   help="Run the semi-blind chain (HybridSTU, then diffusion refinement)."),
    semiblind_minutes: float = typer.Option(None, "--semiblind-minutes", help="HybridSTU training budget (minutes)."),
    seed: int = typer.Option(None, "--seed", help="Random seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
) -> None:
    """Run the whole chain on the embedded synthetic scene and write a report.

    Example: unmixgen demo --out demo-output --overwrite
    """
    from ..workflows import run_demo
    from .flags import given

    record = run_demo(out, train=train, overwrite=overwrite, semiblind=semiblind,
                      **given(train_minutes=train_minutes, count=count, semiblind_minutes=semiblind_minutes,
                              seed=seed))
    print(f"demo written to {out} (report: {out / 'report.html'}) in {record['timings_s']['total']:.0f} s")
