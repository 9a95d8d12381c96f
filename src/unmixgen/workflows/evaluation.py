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
folder itself, ``report.html`` there is (re)written too: the scores and these figures, then
every other figure of the run. Figures of an earlier evaluation under the same names that this
one does not draw are removed with the new files in place, so the folder never shows figures of
other scores.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np

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
    from ..errors import InputError
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
    from ..runs.folder import _values_label

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
                                  ylabel=_values_label(None if units is None else str(units)),
                                  title="matched spectra: estimate solid, truth dashed"
                                        + (f"\n{note}" if note else ""))
    else:
        figs.plot_coverage_by_abundance(result["coverage90_by_abundance"], path, overall=result.get("coverage90"))


def _report_html(folder: Path, result: dict[str, Any], written: dict[str, Path], gone: list[Path],
                 truth_path) -> str:
    """The run folder's report: the scores and this evaluation's figures, then the run's others."""
    from ..evaluate.unmixing import format_table
    from ..report.html import html_report, html_text

    now = {p.relative_to(folder).as_posix() for p in folder.rglob("*.png") if p.is_file()}
    now -= {p.relative_to(folder).as_posix() for p in gone}
    now |= {p.name for p in written.values()}
    body = (html_text(f"Scored against {truth_path}.")
            + f"<pre>{html.escape(format_table(result))}</pre>")
    return html_report(folder, f"{folder.name}: evaluation", [
        ("Evaluation", [p.name for p in written.values()], body),
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
    figures : False: no figure (those of an earlier evaluation under these names are removed)

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
    gone = [p for kind, p in paths.items() if kind not in written and p.is_file()]
    report = (folder / REPORT if run_folder is not None and folder.resolve() == run_folder.resolve() else None)
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


__all__ = ["FIGURE_KINDS", "figure_paths", "save_evaluation"]
