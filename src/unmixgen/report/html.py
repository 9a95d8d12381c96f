"""HTML reports: escaped text, tables and one self-contained page of sections with figures."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_file


def html_text(text: str) -> str:
    """Plain text as escaped HTML paragraphs (blank lines separate paragraphs)."""
    return "".join(f"<p>{html.escape(par.strip())}</p>" for par in str(text).split("\n\n") if par.strip())


def _cell(v) -> str:
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "&ndash;"
        return html.escape(f"{float(v):.4g}")
    if v is None:
        return "&ndash;"
    return html.escape(str(v))


def html_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A simple HTML table, one row per dict; every value and header is escaped.

    ``columns`` fixes the column order (default: keys in order of first appearance).
    Floats are shown with 4 significant digits; None/NaN as a dash.
    """
    if columns is None:
        columns = []
        for r in rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html_report(folder, title: str, sections, filename: str = "report.html",
                      others: str | None = "Other figures") -> Path:
    """Write ``folder/report.html``: a title and sections of figures, text and tables.

    Parameters
    ----------
    folder : the run folder; images are linked relative to it (keep them inside it)
    title : page title (escaped)
    sections : list of ``(heading, images, body)``
        ``heading`` str (escaped); ``images`` list of PNG paths (absolute or relative to
        ``folder``), shown with their file name as caption (escaped); ``body`` an HTML
        fragment inserted as is (may be empty): build it from escaped pieces, e.g.
        `html_table` and `html_text`, never from raw user text.
    others : heading of a last section that links every PNG under ``folder`` no section
        names (so the report leaves out no figure of the run); None: no such section.

    Returns the path of the report. No external CSS, fonts or JavaScript. `html_report`
    gives the page as text (for a report written together with the figures it links).
    """
    out = Path(folder) / filename
    with atomic_file(out) as tmp:
        tmp.write_text(html_report(folder, title, sections, others=others), encoding="utf-8")
    return out


def html_report(folder, title: str, sections, *, others: str | None = "Other figures",
                figures: Sequence[str] | None = None) -> str:
    """The page `write_html_report` writes, as text.

    ``figures``: the PNGs of ``folder`` (paths relative to it, ``/``-separated) as they will be
    when the page is in place, for a page written in one step with figures not yet renamed into
    place (and old ones about to go); None: the PNGs there now.
    """
    folder = Path(folder)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(str(title))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(str(title))}</h1>",
    ]
    present = None if figures is None else {Path(f).as_posix() for f in figures}
    sections = list(sections)
    if others is not None:
        named = {Path(os.path.relpath(_full(folder, img), folder)).as_posix()
                 for _, images, _ in sections for img in images or []}
        rest = sorted(present if present is not None else
                      (p.relative_to(folder).as_posix() for p in folder.rglob("*.png") if p.is_file()))
        rest = [r for r in rest if r not in named]
        if rest:
            sections.append((others, rest, ""))
    for heading, images, body in sections:
        parts.append(f"<section><h2>{html.escape(str(heading))}</h2>")
        if body:
            parts.append(f"<div>{body}</div>")
        for img in images or []:
            full = _full(folder, img)
            rel = Path(os.path.relpath(full, folder)).as_posix()
            cap = html.escape(rel)
            if full.is_file() if present is None else rel in present:
                parts.append(
                    f'<figure><img src="{html.escape(rel, quote=True)}" alt="{cap}">'
                    f"<figcaption>{cap}</figcaption></figure>"
                )
            else:
                parts.append(f'<p class="missing">missing figure: {cap}</p>')
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def run_sections(record: dict) -> list[tuple[str, list, str]]:
    """Sections of a run's report from its run.json ``record``: the run (command, method,
    endmembers, seed, parameters, timings), its warnings, and its scores when it was scored
    against ground truth (``metrics``: the scalar ones). For `html_report`'s ``sections``."""
    scalar = (str, int, float, bool, np.generic, type(None))
    about = [{"": key, "value": record[key]} for key in ("command", "method", "n_endmembers", "seed", "started")
             if record.get(key) is not None]
    params = [{"parameter": k, "value": v if isinstance(v, scalar) else str(v)}
              for k, v in (record.get("parameters") or {}).items()]
    timings = [{"step": k, "seconds": v} for k, v in (record.get("timings_s") or {}).items()]
    body = html_table(about, ["", "value"]) + (html_table(params, ["parameter", "value"]) if params else "")
    if timings:
        body += html_table(timings, ["step", "seconds"])
    warnings = [str(w) for w in record.get("warnings") or []]
    said = ("<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>" if warnings
            else html_text("No warnings."))
    sections = [("Run", [], body), (f"Warnings ({len(warnings)})", [], said)]
    metrics = record.get("metrics")
    if isinstance(metrics, dict):
        rows = [{"score": k, "value": v} for k, v in metrics.items() if isinstance(v, scalar)]
        sections.append(("Scores against the ground truth", [], html_table(rows, ["score", "value"])))
    return sections


def run_report(folder, record: dict, title: str | None = None) -> str:
    """The page of a run folder: `run_sections` of its ``record`` (run.json), then every
    figure in ``folder`` (PNGs, linked relative to it). `html_report`'s text: write it with the
    run's other files (e.g. inside `unmixgen.atomic.atomic_dir`)."""
    folder = Path(folder)
    name = title or f"{record.get('command', 'run')}: {folder.name}"
    return html_report(folder, name, run_sections(record), others="Figures")


def _full(folder: Path, img) -> Path:
    p = Path(img)
    return p if p.is_absolute() else folder / p


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;border-bottom:2px solid #ccc;padding-bottom:.3em}
h2{font-size:1.25em;margin-top:2em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.missing{color:#a00}
"""
