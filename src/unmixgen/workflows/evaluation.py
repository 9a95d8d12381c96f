"""Saving an evaluation: the scores (JSON), the figures of what they compared and the run
folder's report, written together or not at all.

``unmixgen evaluate`` scores a result (`unmixgen.evaluate.unmixing.evaluate`); this module
writes what it found next to the JSON. The figures are named after the JSON (``STEM`` is
``evaluation`` for the default ``ESTIMATE/evaluation.json``):

- ``STEM_abundances.png``: per matched endmember, truth | estimate | signed error maps
  (`unmixgen.report.evaluation.plot_map_errors`), when both sides have maps;
- ``STEM_endmembers.png``: the matched spectra, truth dashed, estimate solid, SAD in the legend
  (`plot_matched_spectra`), when both sides have spectra;
- ``STEM_coverage.png``: the 90 % intervals' coverage by true abundance against the nominal
  90 % (`plot_coverage_by_abundance`), when the result has intervals (a refine result) and
  the truth maps.

The JSON records them (``figures``: kind -> file name). When the JSON goes into the result
folder itself, ``report.html`` there is (re)written too: the scores and these figures, the run's
parameters and warnings (its run.json), then every other figure of the run. There, figures of an
earlier evaluation under the same names that this one does not draw are removed with the new files
in place, so the folder never shows figures of other scores; beside a JSON saved elsewhere nothing
is removed (files of those names there may be anyone's).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError, in_file

FIGURE_KINDS = ("abundances", "endmembers", "coverage")
"""What an evaluation draws, in this order; each file is ``STEM_KIND.png``."""

REPORT = "report.html"


def figure_paths(target: str | os.PathLike) -> dict[str, Path]:
    """The figures of the scores saved as ``target`` (a .json): kind -> ``STEM_KIND.png`` beside it."""
    target = Path(target)
    return {kind: target.with_name(f"{target.stem}_{kind}.png") for kind in FIGURE_KINDS}


def _drawable(result: dict[str, Any], estimate: dict[str, Any], truth) -> list[str]:
    """The kinds of figure the given arrays allow (only what was given on both sides is drawn)."""
    perm = result.get("permutation")
    matched = perm is not None and any(int(j) >= 0 for j in perm)
    kinds = []
    if matched and estimate.get("abundances") is not None and truth.abundances is not None:
        kinds.append("abundances")
    if matched and estimate.get("endmembers") is not None and truth.endmembers is not None:
        kinds.append("endmembers")
    if result.get("coverage90_by_abundance"):
        kinds.append("coverage")
    return kinds


def _pairs(result: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """(reference indices, estimate indices, per-endmember rows) of the matched pairs."""
    perm = np.asarray(result["permutation"], int)
    ref = np.flatnonzero(perm >= 0)
    rows = list(result.get("per_endmember") or [])
    return ref, perm[ref], rows


def _unmatched_note(result: dict[str, Any]) -> str | None:
    left = [f"truth {n}" for n in result.get("unmatched_reference") or []]
    left += [f"estimate {n}" for n in result.get("unmatched_estimate") or []]
    return f"not matched (not shown): {', '.join(left)}" if left else None


def _place(estimate_path: Path, shape: tuple[int, int]):
    """The geotransform of the result's georeferenced maps (None: drawn as stored)."""
    from .simulation import place_of_maps

    folder = estimate_path if estimate_path.is_dir() else estimate_path.parent
    try:
        maps = place_of_maps(folder, shape)
    except InputError:  # a damaged maps file: the figures are drawn as stored, the scores stand
        return None
    return None if maps is None else maps.transform


def _draw(kind: str, path: Path, result: dict[str, Any], estimate: dict[str, Any], truth,
          estimate_path: Path) -> None:
    from ..report import evaluation as figs
    from ..report.figures import values_label

    ref, est, rows = _pairs(result)
    names = [str(result["names"][j]) for j in ref]
    est_names = [str(r.get("estimate_name", f"em{i + 1}")) for r, i in zip(rows, est, strict=True)]
    note = _unmatched_note(result)
    if kind == "abundances":
        A = np.asarray(estimate["abundances"])
        figs.plot_map_errors(np.asarray(truth.abundances)[..., ref], A[..., est], path, names=names,
                             estimate_names=est_names, rmse_percent=[r.get("abundance_rmse_percent") for r in rows],
                             mask=estimate.get("mask"), transform=_place(estimate_path, A.shape[:2]), note=note)
    elif kind == "endmembers":
        E, T = np.asarray(estimate["endmembers"], np.float64), np.asarray(truth.endmembers, np.float64)
        wl = estimate.get("wavelengths")
        good = estimate.get("good_bands")
        if wl is not None and np.any(np.diff(wl) <= 0):  # bands written as they came: drawn by wavelength
            order = np.argsort(wl, kind="stable")
            wl, E, T = wl[order], E[:, order], T[:, order]
            good = None if good is None else np.asarray(good)[order]
        units = estimate.get("units")
        figs.plot_matched_spectra(T[ref], E[est], wl, path, names=names, estimate_names=est_names,
                                  sad_deg=[r.get("sad_deg") for r in rows], good_bands=good,
                                  ylabel=values_label(None if units is None else str(units)),
                                  title="matched spectra: estimate solid, truth dashed"
                                        + (f"\n{note}" if note else ""))
    else:
        figs.plot_coverage_by_abundance(result["coverage90_by_abundance"], path, overall=result.get("coverage90"))


def _report_html(folder: Path, result: dict[str, Any], written: dict[str, Path], gone: list[Path],
                 truth_path) -> str:
    """The run folder's report: the scores and this evaluation's figures, then the run's others."""
    import json

    from ..evaluate.unmixing import format_table
    from ..report.html import html_report, html_text, run_sections

    now = {p.relative_to(folder).as_posix() for p in folder.rglob("*.png") if p.is_file()}
    now -= {p.relative_to(folder).as_posix() for p in gone}
    now |= {p.name for p in written.values()}
    body = (html_text(f"Scored against {truth_path}.")
            + f"<pre>{html.escape(format_table(result))}</pre>")
    try:  # the run's own page (`unmix --report`) stays in it: its parameters and warnings
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = None
    return html_report(folder, f"{folder.name}: evaluation", [
        ("Evaluation", [p.name for p in written.values()], body),
        *(run_sections(run) if isinstance(run, dict) else []),
    ], others="Figures of the run", figures=sorted(now))


def save_evaluation(target: str | os.PathLike, result: dict[str, Any], *, estimate: dict[str, Any], truth,
                    estimate_path: str | os.PathLike, truth_path: str | os.PathLike | None = None,
                    figures: bool = True) -> dict[str, Any]:
    """Write the scores ``result`` to ``target`` (JSON), its figures beside it and, when
    ``target`` lies in the result folder ``estimate_path``, that folder's ``report.html``.

    Parameters
    ----------
    target : the JSON to write; the figures are `figure_paths` of it
    result : what `unmixgen.evaluate.unmixing.evaluate` returned (with ``estimate_name`` in its
        ``per_endmember`` rows and ``unmatched_estimate``, as the CLI adds them)
    estimate : the result as `unmixgen.runs.folder.load_result` read it (``abundances``,
        ``endmembers``, ``mask``, ``wavelengths``, ``good_bands``, ``units``)
    truth : the `GroundTruth` the result was scored against (in the estimate's band order)
    estimate_path : the result folder (or its result.npz): its georeferenced maps say which
        way is north
    figures : False: no figure (in the result folder, those of an earlier evaluation under these
        names are removed)

    Every file is written under a temporary name and all are renamed into place once all are
    complete: a failure (an unwritable folder, a figure that cannot be drawn) leaves every file
    as it was. Returns what was saved: ``{"figures": {kind: file name}, "report": name or None}``
    (also recorded in the JSON, relative to it).
    """
    from .. import atomic

    target = Path(target)
    folder = target.parent
    estimate_path = Path(estimate_path)
    run_folder = estimate_path if estimate_path.is_dir() else None
    paths = figure_paths(target)
    kinds = _drawable(result, estimate, truth) if figures else []
    written = {kind: paths[kind] for kind in kinds}
    report = (folder / REPORT if run_folder is not None and folder.resolve() == run_folder.resolve() else None)
    # an earlier evaluation's figures are removed in the result folder only, where files of these
    # names are an evaluation's; beside a JSON saved elsewhere they may be anyone's
    gone = [p for kind, p in paths.items() if kind not in written and p.is_file()] if report is not None else []
    saved = {"figures": {kind: p.name for kind, p in written.items()}, "report": None if report is None else REPORT}
    record = {**result, **saved}
    group = [target] + ([report] if report is not None else []) + list(written.values())
    with atomic.atomic_files(group) as tmps:  # the figures first, then the report, the JSON last
        atomic.write_json(tmps[0], record)
        for (kind, _), tmp in zip(written.items(), tmps[len(group) - len(written):], strict=True):
            _draw(kind, tmp, result, estimate, truth, estimate_path)
        if report is not None:
            tmps[1].write_text(_report_html(folder, record, written, gone, truth_path), encoding="utf-8")
    for p in gone:  # an earlier evaluation's figure this one did not draw: it showed other scores
        p.unlink(missing_ok=True)
    return saved


ALIGNMENTS = ("abundance", "sad", "both")
"""What `evaluate_result` matches endmembers on (``align``): maps, spectral angle, or both."""


class EvaluationNotSaved(InputError):
    """The scores could not be saved (an unwritable folder): nothing was written, and the
    scores are in ``scores`` (what `evaluate_result` would have returned, without ``figures``
    and ``report``), so a folder that cannot take them does not hide them."""

    def __init__(self, message: str, scores: dict[str, Any]):
        super().__init__(message)
        self.scores = scores


def check_save_target(save: str | os.PathLike, estimate: str | os.PathLike, truth: str | os.PathLike) -> Path:
    """``save`` as a path when it may take the scores, else `ParameterError`: a ``.json`` name
    that is no folder and no file `evaluate_result` reads (a file in the ``truth`` result
    folder, one in the ``estimate`` folder but its ``evaluation.json``, or the ``run.json``
    beside a result given as its ``.npz``, read with it)."""
    save = Path(save)
    if save.suffix.lower() != ".json" or save.is_dir() or _reads(save, Path(estimate), Path(truth)):
        raise ParameterError("save", save, "expected a .json file name for the scores, outside the estimate "
                             "and truth folders (or the estimate folder's evaluation.json)",
                             mentions=("estimate", "truth"))
    return save


def _reads(save: Path, estimate: Path, truth: Path) -> bool:
    """Whether writing ``save`` would change what `evaluate_result` reads."""
    where = save.resolve()
    for read in (estimate, truth):
        src = read.resolve()
        if src.is_dir():
            if where.parent == src and not (read is estimate and save.name == "evaluation.json"):
                return True
        elif where == src.parent / "run.json":
            return True
    return False


def evaluate_result(truth: str | os.PathLike, estimate: str | os.PathLike, *, align: str | None = None,
                    pixel_order: str | None = None, save: str | os.PathLike | bool | None = None,
                    figures: bool = True) -> dict[str, Any]:
    """Score the result ``estimate`` against ground truth ``truth`` and save the scores with
    figures of what was compared (the Python form of ``unmixgen evaluate``).

    Parameters
    ----------
    truth : a benchmark ``.mat`` (``M`` (bands, p) or ``GT`` (p, bands); ``A`` (p, pixels) or
        ``S_GT`` maps), an ``.npz`` with ``endmembers``/``abundances`` or a result folder
        (`unmixgen.runs.truth.read_truth`)
    estimate : a result folder (or its ``result.npz``) of `unmix_scene`, `refine_result`, ...
    align : ``"abundance"`` (maps), ``"sad"`` (spectral angle) or ``"both"``; each needs what it
        matches on on both sides. None: ``"abundance"``, or ``"sad"`` where either side has
        no maps (the scores' ``alignment`` says which).
    pixel_order : how the truth's flat ``(p, pixels)`` maps unfold, ``"F"`` (column-major,
        MATLAB) or ``"C"`` (row-major, numpy, HySUPP). Given, the truth is scored as read;
        None: ``"C"`` for HySUPP files, ``"F"`` otherwise, and a truth whose maps fit the
        estimate far better in the other order (or transposed) is refused.
    save : the JSON to write; None: ``evaluation.json`` in the ``estimate`` folder (nothing
        when ``estimate`` is a ``result.npz``); False: nothing is written.
    figures : draw what was scored beside the JSON (`save_evaluation`); False: no figure.

    Returns the scores (`unmixgen.evaluate.unmixing.evaluate`, with each matched row's
    ``estimate_name``, ``unmatched_estimate``, ``truth`` and ``estimate``) as saved: with
    ``figures`` (kind -> file name) and ``report`` (``"report.html"`` when the JSON went into
    the result folder, else None) when saved. Raises `InputError` for a truth or result that
    cannot be scored, and `EvaluationNotSaved` (holding the scores) when they cannot be written.
    """
    from ..evaluate.unmixing import dead_maps, evaluate
    from ..runs.folder import endmember_names, load_result
    from ..runs.truth import read_truth, truth_orientation

    estimate_path = Path(estimate)
    if align is not None and align not in ALIGNMENTS:
        raise ParameterError("align", align, "expected 'abundance', 'sad' or 'both'")
    order = pixel_order.upper() if isinstance(pixel_order, str) else pixel_order
    if order not in (None, "F", "C"):
        raise ParameterError("pixel_order", pixel_order, "expected F (column-major) or C (row-major)")
    # never onto the truth, a result file or a result's run.json: only a .json of its own
    if save is not None and save is not False:
        target = check_save_target(save, estimate, truth)
    else:
        target = estimate_path / "evaluation.json" if save is None and estimate_path.is_dir() else None
    r = load_result(estimate)
    A = r.get("abundances")
    E = r.get("endmembers")
    if A is None and E is None:
        raise in_file(estimate, "result has neither endmembers nor abundances")
    if A is None and "mask" not in r:  # the scene's size unfolds the truth's (p, pixels) maps
        raise in_file(estimate, "result has endmembers but neither abundances nor a mask; expected the output "
                                "folder of unmix_scene (`unmixgen unmix`)")
    rows, cols = (A.shape[:2] if A is not None else r["mask"].shape)
    bands = E.shape[1] if E is not None else None
    # a truth without wavelengths is in the band order of the scene's file (`save_result`)
    stored = r.get("stored_band_index"), r.get("stored_bands")
    gt = read_truth(truth, rows, cols, bands, r.get("wavelengths"), pixel_order=order,
                    stored_order=None if E is None or stored[0] is None else (stored[0], int(stored[1])),
                    mask=r.get("mask"))
    # an alignment asked for and not possible fell back to another, said only in the scores
    for what in {"abundance": ("abundances",), "sad": ("endmembers",), "both": ("abundances", "endmembers")}.get(
            align, ()):
        for side, has in (("the estimate", (A if what == "abundances" else E) is not None),
                          (f"the truth {truth}", getattr(gt, what) is not None)):
            if not has:
                raise ParameterError("align", align, f"matches on {what}, and {side} has none; expected align "
                                     f"{'sad' if what == 'abundances' else 'abundance'} (or no align)",
                                     mentions=("align",))
    if pixel_order is not None and gt.abundances is None:  # nothing to unfold or check
        raise ParameterError("pixel_order", pixel_order, f"unfolds the truth's abundance maps, and {truth} has "
                             "none; expected it only with a truth that has maps")
    if gt.abundances is not None and A is not None and gt.abundances.shape[:2] != A.shape[:2]:
        raise in_file(truth, f"abundances are {gt.abundances.shape[0]}x{gt.abundances.shape[1]} but the estimate is "
                             f"{rows}x{cols}")
    valid = r.get("mask")
    valid = None if valid is None or np.shape(valid) != (rows, cols) else np.asarray(valid, bool)
    for src, maps, what in ((estimate, A, "result"), (truth, gt.abundances, "ground truth")):
        # every map NaN: nothing to match or score (one map so is scored as such by evaluate)
        if maps is not None and maps.shape[:2] == (rows, cols) and dead_maps(maps, valid).all():
            raise in_file(src, f"abundances are NaN at every {'valid ' if valid is not None else ''}pixel in every "
                               f"map; expected a {what} with finite abundance maps (NaN only at invalid pixels)")
    wrong = None if pixel_order is not None else truth_orientation(gt, A, r.get("mask"))
    if wrong is not None:  # the flag and the parameter: this one line is what both users read
        other = "C" if gt.pixel_order == "F" else "F"
        fix = (f"--pixel-order {other} (pixel_order='{other}') reads it so, --pixel-order {gt.pixel_order} "
               "scores it as stored" if gt.pixel_order else "--pixel-order F (pixel_order='F') scores it as stored")
        raise InputError(f"{wrong}; {fix}")
    if gt.endmembers is not None and E is not None and gt.endmembers.shape[1] != E.shape[1]:
        raise in_file(truth, f"endmembers have {gt.endmembers.shape[1]} bands but the estimate has {E.shape[1]}")
    result = evaluate(
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
    if target is None:
        return result
    try:
        saved = save_evaluation(target, result, estimate=r, truth=gt, estimate_path=estimate, truth_path=truth,
                                figures=figures)
    except InputError as exc:
        raise EvaluationNotSaved(str(exc), result) from exc
    return {**result, **saved}


__all__ = ["ALIGNMENTS", "FIGURE_KINDS", "EvaluationNotSaved", "check_save_target", "evaluate_result",
           "figure_paths", "save_evaluation"]
