"""Figures (PNG) and a self-contained HTML report of a run.

Every ``plot_*`` function writes one PNG (atomically) and returns its path. Figures are
drawn with matplotlib's object API on an Agg canvas: no screen and no global pyplot state,
so they are safe in worker threads and headless CI. Invalid pixels (``mask == False`` or
NaN) are drawn in grey and the figure says so. Large images are shown with a stride
so a figure never holds more than about ``MAX_SIDE`` pixels per side.

`write_html_report` assembles PNGs, text (`html_text`) and tables (`html_table`) of a folder into
``report.html`` with relative links, inline CSS and no JavaScript.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..atomic import atomic_file

__all__ = [
    "INVALID_COLOUR",
    "plot_abundance_grid",
    "plot_abundances",
    "plot_eigen_spectrum",
    "plot_endmembers",
    "plot_rgb",
    "plot_training_curve",
    "values_label",
]

MAX_SIDE = 800
"""Images larger than this (pixels per side) are shown with a stride."""

INVALID_COLOUR = (0.6, 0.6, 0.6)
"""Colour of invalid pixels in every map (grey)."""

_DPI = 100


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _stride(rows: int, cols: int) -> int:
    return max(1, math.ceil(max(rows, cols) / MAX_SIDE))


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI)
    return path


def _names(p: int, names) -> list[str]:
    if names is not None and len(names) == p:
        return [str(n) for n in names]
    return [f"em{i + 1}" for i in range(p)]


# ten more after tab10, each picked (greedily, from the xkcd colour names) as far as could be in CIELAB from
# tab10 and from the others, among colours neither near-white nor near-black: every two of the twenty differ
# by a CIE76 colour difference above 27 (tab20, used before, paired dark and light shades 17 apart).
# primary blue, bright magenta, dark green, royal, peach, strong pink, plum, muddy brown, lichen, vibrant green
_MORE_COLOURS = ("#0804f9", "#ff08e8", "#033500", "#0c1793", "#ffb07c",
                 "#ff0789", "#580f41", "#886806", "#8fb67b", "#0add08")


def _colours(n: int) -> list[tuple[float, float, float]]:
    """``n`` colours, distinct up to 20: tab10, then `_MORE_COLOURS`; beyond 20 they repeat."""
    from matplotlib import colormaps

    tab10 = colormaps["tab10"]
    palette = [tuple(tab10(i)[:3]) for i in range(10)] + [to_rgb(c) for c in _MORE_COLOURS]
    return [palette[i % len(palette)] for i in range(n)]


def _cmap_with_invalid(name: str = "viridis"):
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad=INVALID_COLOUR)


def _image_axes_labels(ax, stride: int, left: bool = True, bottom: bool = True) -> None:
    unit = "pixel" if stride == 1 else f"pixel / {stride}"
    if bottom:
        ax.set_xlabel(f"column ({unit})", fontsize=8)
    if left:
        ax.set_ylabel(f"row ({unit})", fontsize=8)
    ax.tick_params(labelsize=7)
    # an image a few pixels high or wide: one tick per pixel (a 1-row image had -0.5 / 0.5 overlapping)
    for lim, set_ticks in ((ax.get_ylim(), ax.set_yticks), (ax.get_xlim(), ax.set_xticks)):
        n = int(round(abs(lim[1] - lim[0])))
        if 0 < n <= 4:
            set_ticks(range(n))


def _north_up(ax, transform) -> str:
    """Turn an image's axes so that north is up and east is right on an axis-aligned map grid
    whose rows run northwards (a south-up product: latitude ascending with the row) or whose
    columns run westwards; the tick labels stay the file's row and column numbers. ``transform``
    is the scene's geotransform in rasterio order (or None: drawn as stored, first row at the
    top; so is a rotated grid). Returns a note for the title, '' when nothing was turned."""
    if transform is None:
        return ""
    a, b, _, d, e, _ = (float(v) for v in tuple(transform)[:6])
    if b != 0.0 or d != 0.0 or not (np.isfinite(a) and np.isfinite(e)):
        return ""
    turned = []
    if e > 0:
        ax.invert_yaxis()
        turned.append("first row at the bottom")
    if a < 0:
        ax.invert_xaxis()
        turned.append("first column at the right")
    return "north up: " + ", ".join(turned) if turned else ""


def _figsize_for_grid(nrows: int, ncols: int, aspect: float, panel_w: float = 2.6,
                      extra_w: float = 1.0, extra_h: float = 0.9) -> tuple[float, float]:
    """Figure size (inches) for a grid of image panels of height/width ``aspect``. A panel is
    kept between 0.8 in and 3 panel widths high, so a 1-row scene's colour bar keeps its
    label and a 1-column scene does not make a figure metres tall (the image keeps its
    aspect inside the panel)."""
    panel_h = min(max(panel_w * aspect, 0.8), 3 * panel_w)
    return (ncols * panel_w + extra_w, nrows * panel_h + extra_h * nrows + 0.4)


def _percentile_stretch(channels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Stretch each channel of (r, c, 3) to [0, 1] between its 2nd and 98th percentiles."""
    out = np.zeros(channels.shape, np.float32)
    for i in range(channels.shape[-1]):
        v = channels[..., i][valid & np.isfinite(channels[..., i])]
        if v.size == 0:
            continue
        lo, hi = np.percentile(v, [2, 98])
        if hi <= lo:
            hi = lo + 1e-6
        out[..., i] = np.clip((channels[..., i] - lo) / (hi - lo), 0.0, 1.0)
    return out


# --------------------------------------------------------------------------------------
# scene preview
# --------------------------------------------------------------------------------------
RGB_TARGETS_NM = (640.0, 550.0, 460.0)


def _rgb_bands(scene) -> tuple[list[int], str]:
    """Band indices for R, G, B and a description for the title."""
    good = np.flatnonzero(scene.good_bands)
    if good.size == 0:
        good = np.arange(scene.bands)
    wl = scene.wavelengths
    if wl is not None:
        gw = wl[good]
        idx = [int(good[np.argmin(np.abs(gw - t))]) for t in RGB_TARGETS_NM]
        if all(abs(wl[i] - t) <= 30.0 for i, t in zip(idx, RGB_TARGETS_NM, strict=True)):
            return idx, "true colour, bands at {:.0f}/{:.0f}/{:.0f} nm".format(*wl[idx])
    qs = (0.8, 0.5, 0.2) if good.size >= 3 else (0.0, 0.0, 0.0)
    idx = [int(good[round(q * (good.size - 1))]) for q in qs]
    if wl is not None:
        return idx, "false colour, bands at {:.0f}/{:.0f}/{:.0f} nm".format(*wl[idx])
    return idx, "false colour, bands {}/{}/{}".format(*(i + 1 for i in idx))


def _strided_bands(scene, bands: list[int], stride: int) -> np.ndarray:
    """(rows/stride, cols/stride, len(bands)) from the scene, read tile by tile when the
    cube is not already in memory (only the needed bands are kept)."""
    if scene.is_loaded:
        return np.asarray(scene.load()[::stride, ::stride][..., bands], np.float32)
    size = stride * max(1, 512 // stride)
    out = np.empty((len(range(0, scene.rows, stride)), len(range(0, scene.cols, stride)), len(bands)),
                   np.float32)
    for t in scene.tiles(size, with_mask=False):
        block = t.data[::stride, ::stride][..., bands]
        r0, c0 = t.rows.start // stride, t.cols.start // stride
        out[r0:r0 + block.shape[0], c0:c0 + block.shape[1]] = block
    return out


def plot_rgb(scene, path, title: str | None = None) -> Path:
    """True-colour preview of a scene, written to ``path`` (PNG), north up where the scene's
    geotransform says its rows run northwards (`_north_up`), otherwise as stored.

    Uses the bands nearest 640/550/460 nm when the wavelengths cover them (within 30 nm),
    otherwise three good bands at 80/50/20 % of the band range (false colour). Each channel
    is stretched between its 2nd and 98th percentile; invalid pixels are grey. Scenes
    larger than `MAX_SIDE` pixels per side are shown with a stride.
    """
    idx, how = _rgb_bands(scene)
    stride = _stride(scene.rows, scene.cols)
    chans = _strided_bands(scene, idx, stride)
    valid = np.asarray(scene.mask[::stride, ::stride]) & np.isfinite(chans).all(-1)
    img = _percentile_stretch(chans, valid)
    img[~valid] = INVALID_COLOUR
    h, w = img.shape[:2]
    aspect = h / w
    fig = Figure(figsize=_figsize_for_grid(1, 1, aspect, panel_w=6.0, extra_w=0.8, extra_h=0.8))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(img, interpolation="nearest")
    name = title or getattr(scene, "name", None) or getattr(scene, "path", None) or "scene"
    _image_axes_labels(ax, stride)
    turned = _north_up(ax, getattr(scene, "transform", None))
    ax.set_title(f"{name}\n{how}, 2-98 % stretch" + (f"\n{turned}" if turned else ""), fontsize=9)
    if not valid.all():
        # beside the image, not over it: any corner of a scene may hold valid pixels
        ax.legend(handles=[Patch(color=INVALID_COLOUR, label="invalid pixels")], loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# abundances
# --------------------------------------------------------------------------------------
def _masked_maps(maps: np.ndarray, mask, stride: int) -> np.ma.MaskedArray:
    """Every ``stride``-th pixel of ``maps`` as float32, masked where invalid: strided before the
    cast, so float64 maps of a large scene are not copied whole to be shown."""
    m = np.asarray(np.asarray(maps)[::stride, ::stride], np.float32)
    bad = ~np.isfinite(m)
    if mask is not None:
        bad |= ~np.asarray(mask, bool)[::stride, ::stride, None]
    return np.ma.masked_array(m, mask=bad)


def plot_abundances(abundances, path, names=None, mask=None, truth=None,
                    title: str | None = None, transform=None) -> Path:
    """One panel per endmember, colour scale 0-1; with ``truth``, ground truth below.

    Parameters
    ----------
    abundances : array (rows, cols, p)
    path : PNG to write
    names : list of p str or None
    mask : bool array (rows, cols) or None
        ``False`` = invalid pixel, drawn grey (as are NaN values).
    truth : array (rows, cols, p) or None
        Reference maps, assumed aligned with ``abundances`` (same endmember order).
    transform : the scene's geotransform (rasterio order) or None
        Maps of a south-up grid are drawn north up (`_north_up`); None: as stored.
    """
    a = np.asarray(abundances, np.float32)
    if a.ndim != 3:
        raise ValueError(f"abundances must have shape (rows, cols, p); got {a.shape}")
    rows, cols, p = a.shape
    stride = _stride(rows, cols)
    est = _masked_maps(a, mask, stride)
    ref = None if truth is None else _masked_maps(truth, mask, stride)
    labels = _names(p, names)
    if ref is not None:
        grid_rows, grid_cols = 2, max(p, ref.shape[-1])
    else:
        grid_cols = min(p, 6)
        grid_rows = math.ceil(p / grid_cols)
    aspect = est.shape[0] / est.shape[1]
    fig = Figure(figsize=_figsize_for_grid(grid_rows, grid_cols, aspect, extra_w=1.2, extra_h=0.55))
    cmap = _cmap_with_invalid("viridis")
    axes = fig.subplots(grid_rows, grid_cols, squeeze=False)
    im = None
    for ax in axes.flat:
        ax.set_axis_off()
    panels = [(k, est[..., k], labels[k] if ref is None else f"{labels[k]} (estimate)") for k in range(p)]
    if ref is not None:
        panels += [(grid_cols + k, ref[..., k],
                    f"{labels[k] if k < p else f'em{k + 1}'} (ground truth)") for k in range(ref.shape[-1])]
    for pos, img, label in panels:
        ax = axes.flat[pos]
        ax.set_axis_on()
        im = ax.imshow(img, vmin=0.0, vmax=1.0, cmap=cmap, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        r, c = divmod(pos, grid_cols)
        _image_axes_labels(ax, stride, left=(c == 0), bottom=(r == grid_rows - 1))
        turned = _north_up(ax, transform)
    heading = title or ("abundance maps" + (" vs ground truth" if ref is not None else ""))
    fig.suptitle(heading + (f" ({turned})" if turned else ""), fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    cax = fig.add_axes((0.91, 0.15, 0.015, 0.7))
    cb = fig.colorbar(im, cax=cax)
    cb.set_label("abundance (fraction of pixel)", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    if est.mask.any():
        fig.text(0.91, 0.06, "grey:\ninvalid", fontsize=7, color="0.3")
    return _save(fig, path)


def _composite(maps: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(..., p) abundances -> (..., 3) RGB by mixing one colour per endmember."""
    m = np.nan_to_num(np.clip(maps, 0.0, None), nan=0.0)
    rgb = m @ colours
    rgb = np.clip(rgb, 0.0, 1.0)
    bad = ~np.isfinite(maps).all(-1)
    rgb[bad] = INVALID_COLOUR
    return rgb


def plot_abundance_grid(maps, path, *, names=None, titles=None, colours=None, ncols: int | None = None,
                        title: str | None = None, mask=None) -> Path:
    """A grid of ``N`` abundance maps, each as one colour composite.

    Each endmember gets a colour and a pixel shows the abundance-weighted mix of those
    colours: with ``p <= 3`` and default colours this is the RGB composite of the first
    endmembers (red, green, blue); for larger ``p`` those of the spectra figures
    (tab10, then ten more distinct ones). A legend
    names the colours.

    Parameters
    ----------
    maps : array (N, H, W, p) or (H, W, p)
    path : PNG to write
    names : list of p str or None
    titles : list of N str or None (e.g. ``["real", "sample 1", ...]``)
    colours : array (p, 3) in [0, 1], or list of matplotlib colour names, or None
    ncols : panels per row (default about sqrt(N), at most 6)
    mask : bool array (H, W) or (N, H, W) or None; invalid pixels (and NaN) grey
    """
    m = np.asarray(maps, np.float32)
    if m.ndim == 3:
        m = m[None]
    if m.ndim != 4:
        raise ValueError(f"maps must have shape (N, H, W, p); got {m.shape}")
    n, h, w, p = m.shape
    if colours is None:
        colours = np.eye(3)[:p] if p <= 3 else np.array(_colours(p))
    else:
        colours = np.array([to_rgb(c) if isinstance(c, str) else c for c in colours], np.float64)
        if colours.shape != (p, 3):
            raise ValueError(f"colours must be {p} RGB triples; got shape {colours.shape}")
    stride = _stride(h, w)
    m = m[:, ::stride, ::stride].copy()
    if mask is not None:
        mk = np.asarray(mask, bool)
        mk = np.broadcast_to(mk, (n, h, w))[:, ::stride, ::stride]
        m[~mk] = np.nan
    ncols = ncols or min(6, max(1, math.ceil(math.sqrt(n))))
    nrows = math.ceil(n / ncols)
    # manual layout in inches: header, rows of (title + panel), legend
    aspect = m.shape[1] / m.shape[2]
    invalid = bool(np.isnan(m).any())
    legend_rows = math.ceil((p + invalid) / 6)
    margin, gap, head, foot = 0.2, 0.12, 0.75, 0.3 + 0.2 * legend_rows  # room for every legend row
    title_h = 0.28 if titles is not None else 0.0
    panel_w = min(2.2, 9.0 / max(aspect, 0.25) / nrows) if nrows > 4 else 2.2
    panel_h = panel_w * aspect
    grid_w = ncols * panel_w + (ncols - 1) * gap
    fw = max(grid_w + 2 * margin, 5.5)
    fh = head + nrows * (panel_h + title_h) + (nrows - 1) * gap + foot
    fig = Figure(figsize=(fw, fh))
    x0 = (fw - grid_w) / 2
    for i in range(n):
        r, c = divmod(i, ncols)
        left = x0 + c * (panel_w + gap)
        bottom = fh - head - (r + 1) * (panel_h + title_h) - r * gap
        ax = fig.add_axes((left / fw, bottom / fh, panel_w / fw, panel_h / fh))
        ax.set_axis_off()
        ax.imshow(_composite(m[i], colours), interpolation="nearest", aspect="auto")
        if titles is not None and i < len(titles):
            ax.set_title(str(titles[i]), fontsize=8, pad=3)
    handles = [Patch(color=tuple(colours[k]), label=lab) for k, lab in enumerate(_names(p, names))]
    if invalid:
        handles.append(Patch(color=INVALID_COLOUR, label="invalid"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.05 / fh),
               ncol=min(len(handles), 6), fontsize=8, frameon=False)
    fig.suptitle(title or (f"{n} abundance map" + ("s" if n > 1 else "")
                           + "\ncolour = abundance-weighted mix of endmember colours"),
                 fontsize=10, y=1 - 0.1 / fh, va="top")
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# spectra and curves
# --------------------------------------------------------------------------------------
def values_label(units: str | None) -> str:
    """The y-axis label of a spectra figure: what a scene's values are, as its file labels them.

    ``units`` is the scene's unit label (`Scene.units`: ``"reflectance"``, ``"W/(m^2 sr um)"``,
    ...) or None. A label that names a quantity (`unmixgen.units.quantity`) gives that quantity,
    with the label in brackets when it says more (``"radiance (W/(m^2 sr um))"``); any other
    label is shown as the values' unit (``"value (DN)"``), and a scene whose file states none is
    not called reflectance (``"value (unit not stated in the file)"``).
    """
    from ..units import quantity

    kind = quantity(units)
    if kind is None:
        return f"value ({units})" if units else "value (unit not stated in the file)"
    return kind if units.strip().lower() == kind else f"{kind} ({units})"


def _with_gaps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN where the x spacing jumps (removed bands), so lines do not bridge gaps."""
    if x.size < 3:
        return x, y
    d = np.diff(x)
    gaps = np.flatnonzero(d > 3.0 * np.median(d))
    if gaps.size == 0:
        return x, y
    xs = np.insert(x.astype(np.float64), gaps + 1, np.nan)
    ys = np.insert(y.astype(np.float64), gaps + 1, np.nan, axis=-1)
    return xs, ys


def plot_endmembers(endmembers, wavelengths, path, names=None, truth=None,
                    title: str | None = None, ylabel: str = "reflectance", truth_names=None,
                    good_bands=None) -> Path:
    """Endmember spectra against wavelength (nm) or band number.

    Parameters
    ----------
    endmembers : array (p, bands)
    wavelengths : array (bands,) in nm, or None (x axis = band number 1..bands)
    path : PNG to write
    names : list of p str or None
    truth : array (q, bands) or None
        Reference spectra, assumed aligned (row k matches estimate k), drawn dashed in
        the same colour; an all-NaN row (no match) is left out.
    ylabel : y-axis label (the scene's units)
    truth_names : list of q str or None
        Names of the reference spectra; None: named after the estimate they match.
    good_bands : bool array (bands,) or None
        The scene's good bands: the others are missing values (nan) in every spectrum, so
        no line bridges a bad band or a gap of them.

    The legend goes beside the axes, never over the spectra.
    """
    e = np.atleast_2d(np.asarray(endmembers, np.float64))
    p, bands = e.shape
    x = np.arange(1, bands + 1, dtype=np.float64) if wavelengths is None else np.asarray(wavelengths, np.float64)
    if x.shape != (bands,):
        raise ValueError(f"wavelengths have {x.size} values for {bands} bands")
    t = None if truth is None else np.atleast_2d(np.asarray(truth, np.float64))
    if good_bands is not None:
        bad = ~np.asarray(good_bands, bool)
        if bad.shape != (bands,):
            raise ValueError(f"good_bands have {bad.size} values for {bands} bands")
        e = np.where(bad, np.nan, e)
        if t is not None and t.shape[1] == bands:
            t = np.where(bad, np.nan, t)
    q = 0 if t is None else t.shape[0]
    colours = _colours(max(p, q))
    labels = _names(p, names)
    drawn = [] if t is None or t.shape[1] != bands else [k for k in range(q) if np.isfinite(t[k]).any()]
    entries = p + len(drawn)
    # beside the axes, whatever its length: spectra fill the axes, and 'best' put even six entries over them
    fig = Figure(figsize=(9.0 + (2.2 if entries <= 30 else 4.2), 5.0))
    ax = fig.add_subplot(1, 1, 1)
    xs, ys = _with_gaps(x, e)
    for k in range(p):
        ax.plot(xs, ys[k], color=colours[k], lw=1.6, label=labels[k])
    if drawn:
        _, ts = _with_gaps(x, t)
        for k in drawn:
            if truth_names is not None and k < len(truth_names):
                lab = f"{truth_names[k]} (truth)"
            else:
                lab = f"{labels[k]} (truth)" if k < p else f"truth {k + 1}"
            ax.plot(xs, ts[k], color=colours[k], lw=1.2, ls="--", label=lab)
    ax.set_xlabel("wavelength (nm)" if wavelengths is not None else "band number")
    ax.set_ylabel(ylabel)
    ax.set_title(title or ("endmember spectra" + (" (dashed: ground truth)" if t is not None else "")))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8 if entries <= 12 else 7, ncol=1 if entries <= 30 else 2, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _save(fig, path)


def plot_training_curve(steps, losses, path, title: str = "training loss", ylabel: str = "loss",
                        log: bool | None = None) -> Path:
    """Loss against optimisation step, raw (thin) and smoothed (moving average, thick).

    ``log=None`` uses a log y axis when all losses are positive and span > 1 decade.
    """
    s = np.asarray(steps, np.float64).reshape(-1)
    v = np.asarray(losses, np.float64).reshape(-1)
    if s.shape != v.shape:
        raise ValueError(f"steps ({s.size}) and losses ({v.size}) differ in length")
    fig = Figure(figsize=(7.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(s, v, lw=0.8, alpha=0.5, color="tab:blue", label="loss")
    win = max(1, v.size // 50)
    if win > 1:
        kernel = np.ones(win) / win
        smooth = np.convolve(v, kernel, mode="valid")
        ax.plot(s[win - 1:], smooth, lw=2.0, color="tab:blue", label=f"moving average ({win} steps)")
    finite = v[np.isfinite(v)]
    if log is None:
        log = finite.size > 0 and finite.min() > 0 and finite.max() / finite.min() > 10
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_eigen_spectrum(estimate: dict, path, title: str = "number of endmembers") -> Path:
    """The evidence of an ``n_endmembers="auto"`` estimate: eigenvalues and threshold.

    ``estimate`` is `SpatialRankEstimate.as_dict()` (``counted``: the eigenvalues the count
    was made on, descending; ``threshold``; ``n_endmembers``; ``regime``). Log y axis; the
    counted eigenvalues (``n_endmembers - 1`` of them) are filled.
    """
    v = np.asarray(estimate["counted"], np.float64)
    thr = float(estimate["threshold"])
    k = np.arange(1, v.size + 1)
    fig = Figure(figsize=(7.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    pos = np.clip(v, 1e-12, None)
    ax.semilogy(k, pos, "o-", ms=3, lw=1, color="tab:blue", mfc="white", label="noise-whitened eigenvalues")
    kept = v >= thr
    ax.semilogy(k[kept], pos[kept], "o", ms=5, color="tab:blue", label=f"counted: {int(kept.sum())}")
    ax.axhline(thr, color="tab:red", lw=1, ls="--", label=f"threshold ({estimate.get('regime', '')})")
    ax.set_xlabel("component")
    ax.set_ylabel("signal-to-noise ratio (eigenvalue)")
    ax.set_title(f"{title}: estimate {estimate['n_endmembers']}")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------



def plot_uncertainty(std, path, names=None, mask=None, title: str = "posterior standard deviation",
                     label: str = "abundance std", transform=None) -> Path:
    """One panel per endmember of a per-pixel uncertainty map ``std`` (rows, cols, p), on a
    common colour scale from 0 to the largest value (invalid pixels grey); ``label`` names
    the colour bar's quantity. ``transform``: as in `plot_abundances`."""
    s = np.asarray(std, np.float32)
    rows, cols, p = s.shape
    stride = _stride(rows, cols)
    est = _masked_maps(s, mask, stride)
    vmax = float(est.max()) if est.count() else 1.0  # over the valid pixels shown, not the masked ones
    grid_cols = min(p, 6)
    grid_rows = math.ceil(p / grid_cols)
    fig = Figure(figsize=_figsize_for_grid(grid_rows, grid_cols, est.shape[0] / est.shape[1], extra_w=1.2,
                                           extra_h=0.55))
    axes = fig.subplots(grid_rows, grid_cols, squeeze=False)
    im = None
    for ax in axes.flat:
        ax.set_axis_off()
    for k, name in enumerate(_names(p, names)):
        ax = axes.flat[k]
        ax.set_axis_on()
        im = ax.imshow(est[..., k], vmin=0.0, vmax=max(vmax, 1e-6), cmap=_cmap_with_invalid("magma"),
                       interpolation="nearest")
        ax.set_title(name, fontsize=9)
        r, c = divmod(k, grid_cols)
        _image_axes_labels(ax, stride, left=(c == 0), bottom=(r == grid_rows - 1))
        turned = _north_up(ax, transform)
    fig.suptitle(title + (f" ({turned})" if turned else ""), fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    cb = fig.colorbar(im, cax=fig.add_axes((0.91, 0.15, 0.015, 0.7)))
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    if est.mask.any():
        fig.text(0.91, 0.06, "grey:\ninvalid", fontsize=7, color="0.3")
    return _save(fig, path)
