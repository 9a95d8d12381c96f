"""`unmixgen unmix` (blind, or abundances for given endmembers) and `unmixgen evaluate`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import InputError
from ..unmix.inversion import METHODS as INVERTERS
from .app import app
from .semiblind import STU_DEFAULTS


def _parse_p(value: str) -> int | str:
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        try:
            float(value)
        except ValueError:
            what = "not a number"
        else:
            what = "not a whole number"  # "12.5" is a number: saying it is not would puzzle
        raise InputError(f"--endmembers: {value!r} is {what}; expected an integer >= 2 or 'auto'") from None


@app.command()
def unmix(
    scene_path: Path = typer.Argument(..., metavar="SCENE", help="Scene file (any readable format)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    endmembers: str = typer.Option(None, "--endmembers", "-p", help="Number of endmembers, or 'auto' (noise-whitened eigenvalues)."),
    endmembers_file: Path = typer.Option(None, "--endmembers-file",
                                         help="Given endmembers: CSV, .npz with 'endmembers', result folder, a benchmark .mat with M (bands, p), an ENVI spectral library (.sli with its .hdr), or LIB.mat:names / LIB.sli:names."),
    method: str = typer.Option(None, "--method", "-m",
                               help=f"Blind method: auto (default: edaa or mvnmf, chosen from the data), edaa, mvnmf, vca, nfindr, atgp; with --endmembers-file: {', '.join(INVERTERS)} (default fcls)."),
    truth: Path = typer.Option(None, "--truth", help="Ground truth (.mat/.npz/result folder): metrics go into run.json."),
    seed: int = typer.Option(0, "--seed", help="Random seed (runs are reproducible)."),
    model: Path = typer.Option(None, "--model", help="hybridstu: a model folder written by train-stu."),
    maps: str = typer.Option(None, "--maps", help="hybridstu without --model: training maps (grf, dirichlet, prior:MODEL, FILE).", show_default="grf"),
    max_minutes: float = typer.Option(None, "--max-minutes", help="hybridstu without --model: training minutes at most (training stopped by time is not reproducible: use --max-steps for that).", show_default=STU_DEFAULTS["max_minutes"]),
    max_steps: int = typer.Option(None, "--max-steps", help="hybridstu without --model: training steps at most (reproducible with --seed).", show_default=STU_DEFAULTS["max_steps"]),
    device: str = typer.Option(None, "--device", help="auto, cpu or cuda: hybridstu and the blind methods auto, "
                                                      "edaa and mvnmf (the others run on the CPU)."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (hybridstu, and the blind auto, edaa and mvnmf; 0 = torch's default)."),
    band_weights: str = typer.Option(None, "--band-weights", help="noise: weigh each band by 1 / its estimated noise std where the scene's noise differs between bands (the 90th-percentile band's std at least 1.5x the 10th's, as real sensors' does); none: every band alike. For auto and the inverters of --endmembers-file (run.json: band_weights).", show_default="noise for auto, none for inverters (the exact least-squares answer)"),
    outliers: str = typer.Option(None, "--outliers", help="screen: auto leaves pixels no mixture of the endmembers comes near (saturated, glints, spikes in a few bands) out of its fit and inverts them on the fitted endmembers (run.json: outliers.pixels); keep: fit every pixel.", show_default="screen"),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write PNG figures."),
    report: bool = typer.Option(False, "--report", help="Also write report.html: the run's parameters, warnings, scores (with --truth) and figures on one page."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="hybridstu without --model: show the training progress bar."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
) -> None:
    """Unmix a scene: endmembers + abundance maps into an output folder.

    Blind:  unmixgen unmix scene.hdr --endmembers auto --out run1
    Given:  unmixgen unmix scene.hdr --endmembers-file run1/endmembers.csv --method fcls --out run2
    Library: unmixgen unmix scene.hdr --endmembers-file minerals.sli:kaolinite,alunite --out run4
    CNN:    unmixgen unmix scene.hdr --method hybridstu --model stu-model --out run3
    """
    from ..workflows import unmix_scene
    from .flags import given

    if threads:  # torch is imported only when asked (VCA, N-FINDR and the inverters do not need it)
        from ..workflows.unmixing import runs_on_torch

        if not runs_on_torch(method, endmembers_file):
            raise InputError(f"--threads {threads}: applies to the methods that run on torch (hybridstu, and the "
                             f"blind auto, edaa and mvnmf); {'inverting given endmembers' if endmembers_file else repr(method)} "
                             "does not use torch")
        from ..nn.device import set_threads

        set_threads(threads)
    record = unmix_scene(
        scene_path, out, n_endmembers=None if endmembers is None else _parse_p(endmembers),
        endmembers_file=endmembers_file, method=method, truth=truth, seed=seed, model=model,
        figures=figures, overwrite=overwrite, progress=progress, band_weights=band_weights, outliers=outliers,
        report=report,
        **given(maps=maps, max_minutes=max_minutes, max_steps=max_steps, device=device))
    _summary(out, record)


def _summary(out: Path, record: dict) -> None:
    from rich.console import Console

    c = Console()
    m = record.get("metrics")
    line = f"[bold]{record.get('method')}[/bold]: {record.get('n_endmembers')} endmembers -> {out}"
    if m and m.get("abundance_rmse_percent") is not None:
        sad = m.get("sad_deg_mean")  # absent without reference spectra, None (JSON null) when NaN
        line += (f"  (abundance RMSE {m['abundance_rmse_percent']:.2f} %"
                 + (f", mean SAD {sad:.2f} deg)" if sad is not None else ")"))
    c.print(line)


@app.command()
def evaluate(
    truth: Path = typer.Option(..., "--truth", help="Ground truth: benchmark .mat, .npz with endmembers/abundances, or result folder."),
    estimate: Path = typer.Option(..., "--estimate", help="Result folder of `unmixgen unmix` or `unmixgen refine` (or its result.npz)."),
    align: str = typer.Option(None, "--align", help="Match endmembers by 'abundance' maps, spectral angle 'sad', or 'both' (RMSE + SAD/90 deg: steadier when either is poor); each needs what it matches on in the estimate and the truth.", show_default="abundance, or sad where either side has no maps"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    save: Path = typer.Option(None, "--save", help="Where to write the JSON (default: ESTIMATE/evaluation.json)."),
    pixel_order: str = typer.Option(None, "--pixel-order",
                                    help="How the truth's flat (p, pixels) maps unfold: F column-major (MATLAB, Zhu's "
                                         "files), C row-major (numpy, HySUPP). Given, the truth is scored as read, "
                                         "without the check that it fits the estimate far better in the other order "
                                         "(or transposed).", show_default="C for HySUPP .mat files (H/W), F otherwise"),
    figures: bool = typer.Option(True, "--figures/--no-figures",
                                 help="Draw what was scored next to the JSON: STEM_abundances.png (truth | estimate | "
                                      "error maps), STEM_endmembers.png (matched spectra), STEM_coverage.png (refine "
                                      "results: 90 % coverage by abundance), each where both sides have what it "
                                      "shows; STEM is the JSON's name (evaluation)."),
) -> None:
    """Score an unmixing result against ground truth (Hungarian-aligned).

    For a `refine` result it also scores the uncertainty: coverage of the 90 % intervals
    (overall, per endmember and by true abundance level), Spearman(std, |error|) and CRPS.

    The scores go to ESTIMATE/evaluation.json with figures of what was compared beside it
    (evaluation_abundances.png, evaluation_endmembers.png, evaluation_coverage.png, as far as
    the truth and the result have maps, spectra and intervals) and ESTIMATE/report.html, which
    shows the scores, these figures and the run's own; all or nothing.

    Example: unmixgen evaluate --truth end3.mat --estimate run1
    """
    from ..workflows.evaluation import EvaluationNotSaved, evaluate_result

    try:
        record = evaluate_result(truth, estimate, align=align, pixel_order=pixel_order, save=save, figures=figures)
    except EvaluationNotSaved as exc:  # the scores still: a folder that cannot take them does not hide them
        _print_scores(exc.scores, as_json)
        if save is not None:  # asked for: a failure
            raise
        print(f"warning: {exc}; the scores were not saved (--save FILE.json writes them elsewhere)", file=sys.stderr)
        return
    _print_scores(record, as_json)  # as saved: --json prints the saved JSON
    target = save or (estimate / "evaluation.json" if estimate.is_dir() else None)
    if target is not None:  # on stderr: stdout holds the scores alone (scripts read the table's last lines, or the JSON)
        files = [target.name, *record["figures"].values(), *([record["report"]] if record["report"] else [])]
        print(f"written to {target.parent}: {', '.join(files)}", file=sys.stderr)


def _print_scores(scores: dict, as_json: bool) -> None:
    """The scores on stdout: one line of JSON (as `atomic.write_json` saves it), or the table."""
    from ..atomic import jsonable
    from ..evaluate.unmixing import format_table

    print(json.dumps(jsonable(scores)) if as_json else format_table(scores))
