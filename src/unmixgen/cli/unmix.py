"""`unmixgen unmix` (blind, or abundances for given endmembers) and `unmixgen evaluate`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import InputError, in_file
from ..unmix.inversion import METHODS as INVERTERS
from .app import app


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
    maps: str = typer.Option(None, "--maps", help="hybridstu without --model: training maps (grf, dirichlet, prior:MODEL, FILE)."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="hybridstu without --model: training minutes at most (training stopped by time is not reproducible: use --max-steps for that)."),
    max_steps: int = typer.Option(None, "--max-steps", help="hybridstu without --model: training steps at most (reproducible with --seed)."),
    device: str = typer.Option(None, "--device", help="auto, cpu or cuda: hybridstu and the blind methods auto, "
                                                      "edaa and mvnmf (the others run on the CPU)."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (hybridstu, and the blind auto, edaa and mvnmf; 0 = torch's default)."),
    band_weights: str = typer.Option(None, "--band-weights", help="noise: weigh each band by 1 / its estimated noise std where the scene's noise differs between bands (the 90th-percentile band's std at least 1.5x the 10th's, as real sensors' does); none: every band alike. For auto and the inverters of --endmembers-file (run.json: band_weights).", show_default="noise for auto, none for inverters (the exact least-squares answer)"),
    outliers: str = typer.Option(None, "--outliers", help="screen: auto leaves pixels no mixture of the endmembers comes near (saturated, glints, spikes in a few bands) out of its fit and inverts them on the fitted endmembers (run.json: outliers.pixels); keep: fit every pixel.", show_default="screen"),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write PNG figures."),
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


def _reads(save: Path, estimate: Path, truth: Path) -> bool:
    """Whether writing ``save`` would change what ``evaluate`` reads: a file in the --truth
    result folder, one in the --estimate folder but its evaluation.json, or the run.json beside
    a result given as its .npz (read with it)."""
    where = save.resolve()
    for read in (estimate, truth):
        src = Path(read).resolve()
        if src.is_dir():
            if where.parent == src and not (read is estimate and save.name == "evaluation.json"):
                return True
        elif where == src.parent / "run.json":
            return True
    return False


@app.command()
def evaluate(
    truth: Path = typer.Option(..., "--truth", help="Ground truth: benchmark .mat, .npz with endmembers/abundances, or result folder."),
    estimate: Path = typer.Option(..., "--estimate", help="Result folder of `unmixgen unmix`."),
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
    from ..evaluate.unmixing import evaluate as evaluate_metrics
    from ..evaluate.unmixing import format_table
    from ..runs.folder import endmember_names, load_result
    from ..runs.sources import read_truth, truth_orientation
    from ..workflows.evaluation import save_evaluation

    if align is not None and align not in ("abundance", "sad", "both"):
        raise InputError(f"--align: {align!r}; expected 'abundance', 'sad' or 'both'")
    # never onto the truth, a result file or a result's run.json: only a .json of its own
    if save is not None and (save.suffix.lower() != ".json" or save.is_dir() or _reads(save, estimate, truth)):
        raise InputError(f"--save {save}: expected a .json file name for the scores, outside the --estimate "
                         "and --truth folders (or the estimate's evaluation.json)")
    r = load_result(estimate)
    A = r.get("abundances")
    E = r.get("endmembers")
    if A is None and E is None:
        raise in_file(estimate, "result has neither endmembers nor abundances")
    if A is None and "mask" not in r:  # the scene's size unfolds the truth's (p, pixels) maps
        raise in_file(estimate, "result has endmembers but neither abundances nor a mask; expected the --out of "
                                "`unmixgen unmix`")
    rows, cols = (A.shape[:2] if A is not None else r["mask"].shape)
    bands = E.shape[1] if E is not None else None
    if pixel_order is not None and pixel_order.upper() not in ("F", "C"):
        raise InputError(f"--pixel-order {pixel_order}: expected F (column-major) or C (row-major)")
    # a truth without wavelengths is in the band order of the scene's file (`save_result`)
    stored = r.get("stored_band_index"), r.get("stored_bands")
    gt = read_truth(truth, rows, cols, bands, r.get("wavelengths"),
                    pixel_order=None if pixel_order is None else pixel_order.upper(),
                    stored_order=None if E is None or stored[0] is None else (stored[0], int(stored[1])),
                    mask=r.get("mask"))
    # an alignment asked for and not possible fell back to another, said only in the scores
    for what in {"abundance": ("abundances",), "sad": ("endmembers",), "both": ("abundances", "endmembers")}.get(
            align, ()):
        for side, has in (("the estimate", (A if what == "abundances" else E) is not None),
                          (f"the truth {truth}", getattr(gt, what) is not None)):
            if not has:
                raise InputError(f"--align {align}: matches on {what}, and {side} has none; expected --align "
                                 f"{'sad' if what == 'abundances' else 'abundance'} (or no --align)")
    if pixel_order is not None and gt.abundances is None:  # nothing to unfold or check
        raise InputError(f"--pixel-order {pixel_order}: unfolds the truth's abundance maps, and {truth} has none; "
                         "expected it only with a truth that has maps")
    if gt.abundances is not None and A is not None and gt.abundances.shape[:2] != A.shape[:2]:
        raise in_file(truth, f"abundances are {gt.abundances.shape[0]}x{gt.abundances.shape[1]} but the estimate is {rows}x{cols}")
    import numpy as np

    valid = r.get("mask")
    valid = None if valid is None or np.shape(valid) != (rows, cols) else np.asarray(valid, bool)
    for src, maps, what in ((estimate, A, "result"), (truth, gt.abundances, "ground truth")):
        # every map NaN: nothing to match or score (one map so is scored as such by evaluate)
        if maps is not None and maps.shape[:2] == (rows, cols) and not np.isfinite(
                maps if valid is None else np.asarray(maps)[valid]).any():
            raise in_file(src, f"abundances are NaN at every {'valid ' if valid is not None else ''}pixel in every "
                               f"map; expected a {what} with finite abundance maps (NaN only at invalid pixels)")
    wrong = None if pixel_order is not None else truth_orientation(gt, A, r.get("mask"))
    if wrong is not None:
        fix = (f"--pixel-order {'C' if gt.pixel_order == 'F' else 'F'} reads it so, --pixel-order {gt.pixel_order} "
               "scores it as stored" if gt.pixel_order else "--pixel-order F scores it as stored")
        raise InputError(f"{wrong}; {fix}")
    if gt.endmembers is not None and E is not None and gt.endmembers.shape[1] != E.shape[1]:
        raise in_file(truth, f"endmembers have {gt.endmembers.shape[1]} bands but the estimate has {E.shape[1]}")
    result = evaluate_metrics(
        endmembers=E, abundances=A, ref_endmembers=gt.endmembers, ref_abundances=gt.abundances,
        mask=r.get("mask"), names=gt.names, align=align or "abundance",
        uncertainty={k: r[f"abundances_{k}"] for k in ("std", "q05", "q95") if f"abundances_{k}" in r},
        bands=r.get("good_bands"),
    )
    # the result's own names (em1, em2, ... or the given ones), as its CSV, maps and figures say
    est_names = endmember_names(E.shape[0] if E is not None else A.shape[-1], r.get("names"))
    for row in result.get("per_endmember") or []:
        row["estimate_name"] = est_names[row["estimate_index"]]
    if "unmatched_estimate_index" in result:
        result["unmatched_estimate"] = [est_names[i] for i in result["unmatched_estimate_index"]]
    result["truth"] = str(truth)
    result["estimate"] = str(estimate)
    target = save or (Path(estimate) / "evaluation.json" if Path(estimate).is_dir() else None)
    if as_json:  # the scores first: a folder that cannot take them does not hide them
        print(json.dumps(result, default=float))
    else:
        print(format_table(result))
    if target is not None:
        try:
            saved = save_evaluation(target, result, estimate=r, truth=gt, estimate_path=estimate,
                                    truth_path=truth, figures=figures)
        except InputError as exc:
            if save is not None:  # asked for: a failure
                raise
            print(f"warning: {exc}; the scores were not saved (--save FILE.json writes them elsewhere)",
                  file=sys.stderr)
        else:  # on stderr: stdout holds the scores alone (scripts read the table's last lines, or the JSON)
            files = [target.name, *saved["figures"].values(), *([saved["report"]] if saved["report"] else [])]
            print(f"written to {target.parent}: {', '.join(files)}", file=sys.stderr)
