"""Figures of a scored result: what ``unmixgen evaluate`` compared, drawn side by side.

Each ``plot_*`` function writes one PNG (atomically, through `figures._save`) and returns its
path; the arrays come already matched (row or map ``k`` of the estimate is the partner of
row or map ``k`` of the truth), as `unmixgen.evaluate.unmixing.evaluate`'s ``permutation``
pairs them. Maps follow `plot_abundances`' conventions (no-data grey, north up where the
geotransform says so, a stride above `figures.MAX_SIDE` pixels per side); spectra follow
`plot_endmembers`' (gaps at bad bands, wavelength or band number on the x axis).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import figures as _fig

__all__ = ["error_limit", "plot_coverage_by_abundance", "plot_map_errors", "plot_matched_spectra"]


def error_limit(largest: float) -> float:
    """The colour range ``+-limit`` of the signed error maps: the smallest of 1, 2 or 5 times a
    power of ten at or above the ``largest`` absolute error shown (so two evaluations of
    similar quality share a scale), at most 1 (abundance errors lie in [-1, 1])."""
    if not np.isfinite(largest) or largest <= 0:
        return 0.01
    exp = math.floor(math.log10(largest))
    for step in (1.0, 2.0, 5.0, 10.0):
        limit = step * 10.0**exp
        if limit >= largest * (1 - 1e-9):
            return float(min(limit, 1.0))
    return 1.0  # pragma: no cover - 10 x 10^exp is always above


def plot_map_errors(truth, estimate, path, *, names, estimate_names=None, rmse_percent=None, mask=None,
                    transform=None, title: str | None = None, note: str | None = None) -> Path:
    """Per matched endmember: the true map, the estimated map and the signed error (estimate -
    truth), one row of three panels each.

    Parameters
    ----------
    truth, estimate : arrays (rows, cols, k), matched map by map
    path : PNG to write
    names : k str, the truth's names (the panels' titles)
    estimate_names : k str or None, the estimate's own names (em1, ... as its folder says)
    rmse_percent : k floats (or None where undefined), the scored RMSE (%) of each pair: in the
        error panel's title, so the figure says the number the scores say
    mask : bool (rows, cols) or None; ``False`` (and NaN on either side) is no-data, grey; the
        error is no-data where either map is
    transform : the scene's geotransform (rasterio order) or None: maps of a south-up grid are
        drawn north up (`figures._north_up`)
    note : a line under the title (e.g. the endmembers left unmatched)

    The maps share the 0-1 scale of `plot_abundances`; the errors one diverging scale
    (``RdBu_r``, white at 0) of ``+-error_limit(largest |error| shown)``, each with its colour
    bar. More than six endmembers are laid out two or three rows of three panels side by side.
    """
    t, e = np.asarray(truth), np.asarray(estimate)  # cast after the stride (`_fig._masked_maps`): no full copy
    if t.ndim != 3 or t.shape != e.shape:
        raise ValueError(f"truth {t.shape} and estimate {e.shape} must be matched (rows, cols, k) maps")
    rows, cols, k = t.shape
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} maps")
    est_names = list(estimate_names) if estimate_names is not None else list(names)
    stride = _fig._stride(rows, cols)
    tm = _fig._masked_maps(t, mask, stride)
    em = _fig._masked_maps(e, mask, stride)
    err = np.ma.masked_array(em.data - tm.data, mask=tm.mask | em.mask)
    largest = float(np.abs(err).max()) if err.count() else 0.0
    limit = error_limit(largest)

    per_row = 1 if k <= 6 else 2 if k <= 12 else 3  # triples side by side: a dozen maps stay on a page
    grid_rows, grid_cols = math.ceil(k / per_row), 3 * per_row
    aspect = tm.shape[0] / tm.shape[1]
    fig = Figure(figsize=_fig._figsize_for_grid(grid_rows, grid_cols, aspect, panel_w=2.3, extra_w=1.6,
                                                extra_h=0.6))
    axes = fig.subplots(grid_rows, grid_cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    maps_cmap = _fig._cmap_with_invalid("viridis")
    err_cmap = _fig._cmap_with_invalid("RdBu_r")
    im_map = im_err = None
    turned = ""
    for j in range(k):
        r, c0 = divmod(j, per_row)
        c0 *= 3
        rmse = None if rmse_percent is None else rmse_percent[j]
        score = "RMSE n/a (map NaN)" if rmse is None or not np.isfinite(rmse) else f"RMSE {rmse:.2f} %"
        panels = ((tm[..., j], f"{names[j]}: truth", False),
                  (em[..., j], f"{est_names[j]}: estimate", False),
                  (err[..., j], f"{names[j]}: estimate - truth\n{score}", True))
        for i, (img, label, is_err) in enumerate(panels):
            ax = axes[r, c0 + i]
            ax.set_axis_on()
            if is_err:
                im_err = ax.imshow(img, vmin=-limit, vmax=limit, cmap=err_cmap, interpolation="nearest")
            else:
                im_map = ax.imshow(img, vmin=0.0, vmax=1.0, cmap=maps_cmap, interpolation="nearest")
            ax.set_title(label, fontsize=8)
            _fig._image_axes_labels(ax, stride, left=(c0 + i == 0), bottom=(r == grid_rows - 1))
            turned = _fig._north_up(ax, transform)
    heading = title or "abundance maps: truth, estimate and error (estimate - truth)"
    lines = [heading + (f" ({turned})" if turned else "")] + ([note] if note else [])
    fig.suptitle("\n".join(lines), fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    cb = fig.colorbar(im_map, cax=fig.add_axes((0.875, 0.55, 0.012, 0.33)))
    cb.set_label("abundance", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    cb = fig.colorbar(im_err, cax=fig.add_axes((0.875, 0.12, 0.012, 0.33)))
    cb.set_label("estimate - truth", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    if tm.mask.any() or em.mask.any():
        fig.text(0.93, 0.04, "grey:\nno data", fontsize=7, color="0.3")
    return _fig._save(fig, path)


def plot_matched_spectra(truth, estimate, wavelengths, path, *, names, estimate_names=None, sad_deg=None,
                         good_bands=None, ylabel: str = "reflectance", title: str | None = None) -> Path:
    """Each matched pair of spectra in one colour: the truth dashed, the estimate solid, its
    spectral angle (SAD, degrees) in the estimate's legend entry. ``truth``, ``estimate``:
    ``(k, bands)``, matched row by row; ``wavelengths`` (bands,) in nm or None (band number);
    ``good_bands``: the others are gaps in every line, as in `plot_endmembers`, which draws it.
    """
    e = np.atleast_2d(np.asarray(estimate, np.float64))
    t = np.atleast_2d(np.asarray(truth, np.float64))
    if t.shape != e.shape:
        raise ValueError(f"truth {t.shape} and estimate {e.shape} must be matched (k, bands) spectra")
    k = e.shape[0]
    est_names = list(estimate_names) if estimate_names is not None else list(names)
    labels = []
    for j in range(k):
        s = None if sad_deg is None else sad_deg[j]
        angle = "SAD n/a" if s is None or not np.isfinite(s) else f"SAD {s:.2f} deg"
        labels.append(f"{est_names[j]} (estimate), {angle}")
    return _fig.plot_endmembers(e, wavelengths, path, names=labels, truth=t, truth_names=list(names),
                                good_bands=good_bands, ylabel=ylabel,
                                title=title or "matched spectra: estimate solid, truth dashed")


def plot_coverage_by_abundance(bins, path, *, overall: float | None = None, nominal: float = 0.9,
                               title: str | None = None) -> Path:
    """Coverage of the 90 % intervals by true abundance level, against the nominal 90 %.

    ``bins``: ``coverage90_by_abundance`` of an evaluation (dicts with ``abundance_from``,
    ``abundance_to``, ``pixels``, ``coverage90``, None for an empty bin). One bar per bin,
    labelled with its value count (an empty bin says so, with no bar); the nominal level
    dashed, the overall coverage (``overall``) dotted.
    """
    bins = list(bins)
    labels = [f"{b['abundance_from']:g}-{b['abundance_to']:g}" for b in bins]
    values = [np.nan if b.get("coverage90") is None else float(b["coverage90"]) for b in bins]
    x = np.arange(len(bins))
    fig = Figure(figsize=(8.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    drawn = [i for i, v in enumerate(values) if np.isfinite(v)]
    ax.bar(x[drawn], [values[i] for i in drawn], width=0.6, color="tab:blue", alpha=0.6, label="coverage")
    for i, b in enumerate(bins):
        v = values[i]
        text = f"{b['pixels']} values" if np.isfinite(v) else "no values"
        ax.text(i, (v if np.isfinite(v) else 0.0) + 0.02, text, ha="center", va="bottom", fontsize=7)
    # over the bars (a bar reaching past 90 % hid the line it is read against)
    ax.axhline(nominal, color="tab:red", ls="--", lw=1.4, zorder=3, label=f"nominal {nominal * 100:g} %")
    if overall is not None and np.isfinite(overall):
        ax.axhline(overall, color="0.15", ls=":", lw=1.4, zorder=3, label=f"overall {overall * 100:.1f} %")
    ax.set_xticks(x, labels)
    ax.set_xlim(-0.6, len(bins) - 0.4)
    ax.set_ylim(0.0, 1.12)
    ax.set_xlabel("true abundance")
    ax.set_ylabel("fraction of true values inside the 90 % interval")
    ax.set_title(title or "90 % interval coverage by true abundance", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # off the bars
    fig.tight_layout()
    return _fig._save(fig, path)
