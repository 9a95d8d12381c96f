"""`unmixgen unmix` (blind, or abundances for given endmembers) and `unmixgen evaluate`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
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
        raise InputError(f"--endmembers: {value!r} is not a number; expected an integer >= 2 or 'auto'") from None


@app.command()
def unmix(
    scene_path: Path = typer.Argument(..., metavar="SCENE", help="Scene file (any readable format)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    endmembers: str = typer.Option(None, "--endmembers", "-p", help="Number of endmembers, or 'auto' (noise-whitened eigenvalues)."),
    endmembers_file: Path = typer.Option(None, "--endmembers-file",
                                         help="Given endmembers: CSV, .npz with 'endmembers', result folder, or LIB.mat:names."),
    method: str = typer.Option(None, "--method", "-m",
                               help=f"Blind method: auto (default: edaa or mvnmf, chosen from the data), edaa, mvnmf, vca, nfindr, atgp; with --endmembers-file: {', '.join(INVERTERS)} (default fcls)."),
    truth: Path = typer.Option(None, "--truth", help="Ground truth (.mat/.npz/result folder): metrics go into run.json."),
    seed: int = typer.Option(0, "--seed", help="Random seed (runs are reproducible)."),
    model: Path = typer.Option(None, "--model", help="hybridstu: a model folder written by train-stu."),
    maps: str = typer.Option(None, "--maps", help="hybridstu without --model: training maps (grf, dirichlet, prior:MODEL, FILE)."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="hybridstu without --model: training minutes at most."),
    device: str = typer.Option(None, "--device", help="hybridstu: auto, cpu or cuda."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write PNG figures."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
) -> None:
    """Unmix a scene: endmembers + abundance maps into an output folder.

    Blind:  unmixgen unmix scene.hdr --endmembers auto --out run1
    Given:  unmixgen unmix scene.hdr --endmembers-file run1/endmembers.csv --method fcls --out run2
    CNN:    unmixgen unmix scene.hdr --method hybridstu --model stu-model --out run3
    """
    from ..atomic import atomic_dir, check_output_dir, write_json
    from ..io import read_scene
    from ..runs.folder import run_record, save_result
    from ..runs.sources import read_truth

    inputs = [scene_path, endmembers_file, truth, model]
    check_output_dir(out, overwrite, inputs)
    hybrid = method == "hybridstu"
    if not hybrid and (model is not None or maps is not None):
        raise InputError("--model and --maps apply to --method hybridstu only")
    if hybrid and sum(v is not None for v in (model, endmembers_file, endmembers)) != 1:
        raise InputError("--method hybridstu: give exactly one of --model, --endmembers-file or --endmembers N")
    if not hybrid and (endmembers is None) == (endmembers_file is None):
        raise InputError("give exactly one of --endmembers N|auto (blind) or --endmembers-file FILE")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    scene = read_scene(scene_path)
    if truth is not None:
        scene.attach_truth(read_truth(truth, scene.rows, scene.cols, scene.bands))
    scene.require_valid()
    params = {"scene": str(scene_path), "seed": seed}
    if hybrid:
        from ..workflows import unmix_hybridstu
        from .flags import given

        timings["read"] = time.perf_counter() - t
        E, A, names, details = unmix_hybridstu(
            scene, model=model, endmembers_file=endmembers_file,
            n_endmembers=None if endmembers is None else _parse_p(endmembers), seed=seed,
            **given(maps=maps, max_minutes=max_minutes, device=device, progress=True if model is None else None))
        params.update(method="hybridstu", **given(model=model and str(model), endmembers_file=endmembers_file
                                                  and str(endmembers_file), maps=maps))
    elif endmembers_file is not None:
        # Inversion reads the cube tile by tile (invert_scene): the whole cube is never
        # loaded, so "read" covers the header and the valid-pixel mask only.
        timings["read"] = time.perf_counter() - t
        E, A, names, details = _given(scene, endmembers_file, method or "fcls")
        params.update(endmembers_file=str(endmembers_file), method=method or "fcls")
    else:
        scene.load()  # blind methods learn from all valid pixels at once
        timings["read"] = time.perf_counter() - t
        E, A, names, details = _blind(scene, _parse_p(endmembers), method, seed)
        params.update(endmembers=endmembers, method=details["method"])
    timings.update({f"unmix.{k}": v for k, v in details.pop("timings_s", {}).items()})
    record = run_record("unmix", params, seed=seed)
    record.update(details)
    record["timings_s"] = timings
    if scene.truth is not None:
        from ..evaluate.unmixing import evaluate

        # the reconstruction metrics need every pixel: the one load on the
        # --endmembers-file path, and only with ground truth
        record["metrics"] = evaluate(
            endmembers=E, abundances=A, ref_endmembers=scene.truth.endmembers,
            ref_abundances=scene.truth.abundances, cube=scene.load(), mask=scene.mask,
            names=scene.truth.names,
        )
    t = time.perf_counter()
    with atomic_dir(out, overwrite, inputs) as tmp:
        save_result(tmp, scene, endmembers=E, abundances=A, names=names, figures=figures)
        if figures and "rank_estimate" in record:
            from ..report.figures import plot_eigen_spectrum

            plot_eigen_spectrum(record["rank_estimate"], tmp / "rank_eigenvalues.png")
        timings["write"] = time.perf_counter() - t
        write_json(tmp / "run.json", record)
    _summary(out, E, record)


def _blind(scene, p, method, seed):
    from ..unmix.registry import DEFAULT_METHOD, make_method

    est = make_method(method or DEFAULT_METHOD, p, seed=seed)
    est.fit(scene)
    info = dict(est.info_)
    info["method"] = est.name
    info["n_endmembers"] = est.n_endmembers_
    return est.endmembers_, est.abundances_, None, info


def _given(scene, source, method):
    from ..runs.sources import fit_to_bands, load_endmembers
    from ..unmix.inversion import invert_scene

    if method not in INVERTERS:
        raise InputError(f"--method: {method!r} does not apply to given endmembers; expected one of {', '.join(INVERTERS)}")
    t = time.perf_counter()
    em = load_endmembers(source)
    E, covered = fit_to_bands(em, scene.wavelengths, scene.bands)
    use = covered & scene.good_bands
    warnings = []
    if not covered.all():
        warnings.append(f"{int((~covered).sum())} scene bands lie outside the endmembers' wavelengths and were not used")
        _warn(warnings[-1])
    if E.shape[0] > use.sum():
        raise InputError(f"{source}: {E.shape[0]} endmembers but only {int(use.sum())} usable bands")
    A = invert_scene(scene, E, method, bands=use)
    timings = {"load_endmembers+invert": time.perf_counter() - t}
    info = {"method": method, "n_endmembers": int(E.shape[0]), "endmember_source": em.source,
            "bands_used": int(use.sum()), "warnings": warnings, "timings_s": timings}
    return E, A, em.names, info


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, UserWarning, stacklevel=2)


def _summary(out: Path, E: np.ndarray, record: dict) -> None:
    from rich.console import Console

    c = Console()
    m = record.get("metrics")
    line = f"[bold]{record.get('method')}[/bold]: {E.shape[0]} endmembers -> {out}"
    if m and m.get("abundance_rmse_percent") is not None:
        line += f"  (abundance RMSE {m['abundance_rmse_percent']:.2f} %, mean SAD {m.get('sad_deg_mean', float('nan')):.2f} deg)"
    c.print(line)


@app.command()
def evaluate(
    truth: Path = typer.Option(..., "--truth", help="Ground truth: benchmark .mat, .npz with endmembers/abundances, or result folder."),
    estimate: Path = typer.Option(..., "--estimate", help="Result folder of `unmixgen unmix`."),
    align: str = typer.Option("abundance", "--align", help="Match endmembers by 'abundance' maps or spectral angle 'sad'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    save: Path = typer.Option(None, "--save", help="Where to write the JSON (default: ESTIMATE/evaluation.json)."),
) -> None:
    """Score an unmixing result against ground truth (Hungarian-aligned).

    Example: unmixgen evaluate --truth end3.mat --estimate run1
    """
    from ..atomic import write_json
    from ..evaluate.unmixing import evaluate as evaluate_metrics
    from ..evaluate.unmixing import format_table
    from ..runs.folder import load_result
    from ..runs.sources import read_truth

    if align not in ("abundance", "sad"):
        raise InputError(f"--align: {align!r}; expected 'abundance' or 'sad'")
    r = load_result(estimate)
    A = r.get("abundances")
    E = r.get("endmembers")
    if A is None and E is None:
        raise in_file(estimate, "result has neither endmembers nor abundances")
    rows, cols = (A.shape[:2] if A is not None else r["mask"].shape)
    bands = E.shape[1] if E is not None else None
    gt = read_truth(truth, rows, cols, bands)
    if gt.abundances is not None and A is not None and gt.abundances.shape[:2] != A.shape[:2]:
        raise in_file(truth, f"abundances are {gt.abundances.shape[0]}x{gt.abundances.shape[1]} but the estimate is {rows}x{cols}")
    if gt.endmembers is not None and E is not None and gt.endmembers.shape[1] != E.shape[1]:
        raise in_file(truth, f"endmembers have {gt.endmembers.shape[1]} bands but the estimate has {E.shape[1]}")
    result = evaluate_metrics(
        endmembers=E, abundances=A, ref_endmembers=gt.endmembers, ref_abundances=gt.abundances,
        mask=r.get("mask"), names=gt.names, align=align,
    )
    result["truth"] = str(truth)
    result["estimate"] = str(estimate)
    target = save or (Path(estimate) / "evaluation.json" if Path(estimate).is_dir() else None)
    if target is not None:
        write_json(target, result)
    if as_json:
        print(json.dumps(result, default=float))
    else:
        print(format_table(result))
