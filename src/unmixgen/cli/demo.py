"""`unmixgen demo`: the whole chain on the embedded synthetic scene, in a few minutes on a CPU.

    synthetic scene -> blind unmix -> semi-blind HybridSTU -> diffusion refinement (shipped priors)
        -> abundance diffusion model (shipped or --train) -> synthetic abundance maps
        -> simulated scenes -> realism metrics -> report.html
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..workflows.demo import run_demo as _run_demo
from .app import app
from .flags import default_text

# the library's defaults, shown in --help (one source: the function's signature)
_DEMO = default_text(_run_demo)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
    train: bool = typer.Option(False, "--train", help="Retrain the abundance model instead of using the shipped one."),
    train_minutes: float = typer.Option(None, "--train-minutes", help="Training budget with --train (minutes).",
                                        show_default=_DEMO["train_minutes"]),
    count: int = typer.Option(None, "--count", help="Synthetic abundance maps to generate.",
                              show_default=_DEMO["count"]),
    semiblind: bool = typer.Option(True, "--semiblind/--no-semiblind",
                                   help="Run the semi-blind chain (HybridSTU, then diffusion refinement)."),
    semiblind_steps: int = typer.Option(None, "--semiblind-steps",
                                        help="HybridSTU training steps (early stopping may end it sooner).",
                                        show_default=_DEMO["semiblind_steps"]),
    semiblind_minutes: float = typer.Option(None, "--semiblind-minutes",
                                            help="Also stop HybridSTU's training by the clock (minutes); a run "
                                                 "stopped so is not reproducible."),
    seed: int = typer.Option(None, "--seed", help="Random seed.", show_default=_DEMO["seed"]),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
) -> None:
    """Run the whole chain on the embedded synthetic scene and write a report.

    Example: unmixgen demo --out demo-output --overwrite
    """
    from ..errors import InputError
    from ..workflows import run_demo
    from .flags import given

    # a budget for a stage that does not run would be dropped without a word
    if train_minutes is not None and not train:
        raise InputError(f"--train-minutes {train_minutes:g}: applies with --train only (the shipped model is used "
                         "otherwise)")
    for flag, value in (("--semiblind-steps", semiblind_steps), ("--semiblind-minutes", semiblind_minutes)):
        if value is not None and not semiblind:
            raise InputError(f"{flag} {value:g}: applies to the semi-blind chain, which --no-semiblind turns off")
    record = run_demo(out, train=train, overwrite=overwrite, semiblind=semiblind,
                      **given(train_minutes=train_minutes, count=count, semiblind_steps=semiblind_steps,
                              semiblind_minutes=semiblind_minutes,
                              seed=seed))
    print(f"demo written to {out} (report: {out / 'report.html'}) in {record['timings_s']['total']:.0f} s")
