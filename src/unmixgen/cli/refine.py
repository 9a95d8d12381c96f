"""`unmixgen train-spectra` and `unmixgen refine`: the spectra prior and posterior refinement."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ParameterError
from ..workflows.refinement import refine_result as _refine_result
from .app import app
from .flags import default_text, given

# the library's defaults, shown in --help (one source: the function's signature)
_REFINE = default_text(_refine_result)


@app.command("train-spectra")
def train_spectra(
    sources: list[Path] = typer.Argument(None, help="Spectral libraries (a USGS-layout .mat, an ENVI spectral library .sli with its .hdr: all their spectra) and/or endmember sources (result folders, .csv, .npz, LIB.sli:names) with wavelengths (none with --resume)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (or to continue with --resume)."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Wall-time budget, minutes."),
    max_steps: int = typer.Option(None, "--max-steps", help="Number of training steps."),
    width: int = typer.Option(None, "--width", help="Network width (channels at the first level).", show_default="32"),
    batch_size: int = typer.Option(None, "--batch-size", help="Spectra per training step.", show_default="64"),
    lr: float = typer.Option(None, "--lr", help="AdamW learning rate.", show_default="1e-3"),
    seed: int = typer.Option(None, "--seed", help="Random seed.", show_default="0"),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch's default)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    resume: bool = typer.Option(False, "--resume", help="Continue training the model in --out from its last checkpoint (with its saved spectra and settings); --max-steps is the total step count, --max-minutes this run's time."),
) -> None:
    """Train a 1D diffusion prior of endmember spectra on a fixed wavelength grid.

    Example: unmixgen train-spectra ../shared/data/usgs_library/USGS_1995_Library.mat --out models/spectra --max-minutes 10
    """
    from ..nn.device import set_threads
    from ..workflows import train_spectra_model

    set_threads(threads)
    info = train_spectra_model(sources or [], out, max_minutes=max_minutes, max_steps=max_steps, overwrite=overwrite,
                               device=device, progress=progress, resume=resume,
                               **given(width=width, batch_size=batch_size, lr=lr, seed=seed))
    print(f"trained {out}: step {info['step']}, loss {info['loss']:.4f}")


@app.command("refine")
def refine(
    scene: Path = typer.Argument(..., help="The scene the init result was computed on."),
    init: Path = typer.Option(..., "--init", help="Result folder to refine (`unmixgen unmix` output, blind or FCLS)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    abundance_prior: Path = typer.Option(None, "--abundance-prior", help="Abundance prior folder: one-vs-rest (p=2, any scene) or trained on this scene's p.", show_default="the shipped one-vs-rest prior"),
    spectra_prior: Path = typer.Option(None, "--spectra-prior", help="Spectra prior folder.", show_default="the shipped USGS prior"),
    samples: int = typer.Option(None, "--samples", "-k", help="Posterior samples.", show_default=_REFINE["samples"]),
    steps: int = typer.Option(None, "--steps", help="Denoising steps per round and prior.", show_default=_REFINE["steps"]),
    rounds: str = typer.Option(None, "--rounds", help="Endmember/abundance alternations, or auto: 8 for endmembers extracted from the scene when the prior's weight is >= 1, else 1 (run.json: refine.rounds_from).", show_default=_REFINE["rounds"]),
    t0: float = typer.Option(None, "--t0", help="Starting noise level, fraction of the training timesteps in (0, 1].", show_default=_REFINE["t0"]),
    spectra_t0: float = typer.Option(None, "--spectra-t0", help="The endmembers' starting noise level (same units as --t0).", show_default="--t0, or more on noisy scenes (twice the pixels' noise)"),
    lam: float = typer.Option(None, "--prior-weight", help="Weight (>= 0) of the abundance prior against the data: its error variance is taken as its noise level over this weight; 0: the data alone (least squares).", show_default="chosen per scene among 0.5, 1, 2, 4 by cross-validation across the odd and even bands (run.json: refine.prior_weight)"),
    mixing: str = typer.Option(None, "--mixing", help="Mixing model of the data steps: linear (y = a E), scaled (y = s a E, a free brightness s per pixel, written as a brightness map beside the abundances) or auto: scaled when the pixels' brightness varies beyond linear mixing (run.json: refine.mixing).", show_default="auto"),
    band_weights: str = typer.Option(None, "--band-weights", help="noise: where the scene's noise differs between bands (the 90th-percentile band's std at least 1.5x the 10th's, as real sensors' does), the data steps weigh each band by 1 / its noise std (run.json: refine.band_weights); none: every band alike.", show_default="noise"),
    seed: int = typer.Option(None, "--seed", help="Random seed.", show_default="0"),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0 = torch's default)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    report: bool = typer.Option(False, "--report", help="Also write report.html: the run's parameters, warnings and figures on one page."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write PNG figures."),
) -> None:
    """Refine an unmixing result by diffusion posterior sampling, with per-pixel uncertainty.

    Writes result.npz with abundances (guarded posterior mean), abundances_std, abundances_q05, abundances_q95, endmembers_std; the std and quantile maps also as rasters georeferenced like abundances.tif (abundances_std.tif, ...; ENVI for ENVI input); and uncertainty figures. Each refined pixel is kept only while its data fit stays within what the noise explains of the init's (a chi-square region with p-1 degrees of freedom); pixels outside are moved back towards the init to the region's edge (run.json says how many were kept whole). On noisy scenes the spectra prior first moves the init's endmembers within the pixels' plane, as far as the data cannot tell the difference (run.json: refine.endmember_pull).

    Example: unmixgen refine samson.mat --init runs/samson-fcls --samples 16 --steps 20 --out runs/samson-refined
    """
    from ..nn.device import set_threads
    from ..workflows import refine_result

    set_threads(threads)
    rounds = _rounds(rounds)
    rec = refine_result(scene, init, out, device=device, overwrite=overwrite, progress=progress, report=report,
                        figures=figures,
                        **given(abundance_prior=abundance_prior, spectra_prior=spectra_prior, samples=samples,
                                steps=steps, rounds=rounds, t0=t0, spectra_t0=spectra_t0, lam=lam, seed=seed,
                                mixing=mixing, band_weights=band_weights))
    g = rec["refine"]["guard"]
    print(f"refined {init} -> {out}: {rec['refine']['samples']} samples, "
          f"{100 * g['pixels_kept_fraction']:.1f} % of pixels kept, endmembers "
          f"{'refined' if g['endmembers_kept'] else 'kept from the init'} ({rec['refine']['seconds']:.1f} s)")


def _rounds(text: str | None) -> int | str | None:
    """``--rounds``: None (not given) or ``"auto"`` as they are, else a whole number;
    `ParameterError` otherwise (its range is checked by `refine_result`)."""
    if text is None or text.strip().lower() == "auto":
        return None if text is None else "auto"
    try:
        return int(text)
    except ValueError:
        raise ParameterError("rounds", text, "expected a whole number (>= 1) or auto") from None
