"""Stuck detector lines and other marks a product leaves without flagging them.

Stuck detector lines: a pushbroom sensor (PRISMA, EnMAP, EMIT, DESIS, Hyperion, AVIRIS-NG)
images each column with its own detector element, each row in one readout. A dead or
saturated element reads one value down its whole column in some bands, a line lost in
transmission one value along its row; products often carry these as zeros or the saturation
value without a flag. No mixture gives such a pixel, and in a small scene a column is more
than the one percent of pixels an outlier screen can take. `product_artefacts` finds them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: the fewest valid pixels an image column (or row) needs before one value held down all of it
#: in a band counts as a stuck detector element (`product_artefacts`): a shorter line of a uniform
#: area may hold one quantised value
MIN_STUCK_LINE = 16

#: rows read at once by `product_artefacts`, and at most as many pixels as the mask's own 512 x 512
#: tiles (fewer rows of a scene more than 1024 columns wide, one row of a mosaic wider than 262144)
_STUCK_STRIP = 256
_STUCK_STRIP_PIXELS = 512 * 512


def _line_ranges(block: np.ndarray, valid: np.ndarray, axis: int):
    """``(min, max)`` of the valid pixels ``valid (r, c)`` of ``block (r, c, bands)`` along
    ``axis`` (0: down each column, 1: along each row), float32 ``(lines, bands)``; +inf / -inf
    where a line has no valid pixel."""
    v = valid[..., None]
    return block.min(axis=axis, initial=np.inf, where=v), block.max(axis=axis, initial=-np.inf, where=v)


def _constant_lines(low: np.ndarray, high: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Bool ``(lines, bands)``: lines of at least `MIN_STUCK_LINE` valid pixels that hold one
    value in a band that varies along most of the lines that long (a band constant everywhere
    is a derived band, `unmix.rank.derived_bands`, not a line)."""
    long = count >= MIN_STUCK_LINE
    const = long[:, None] & (low == high)
    varies = (~const[long]).sum(axis=0) > 0.5 * long.sum()
    return const & varies[None, :]


def product_artefacts(scene: Any, mask: np.ndarray) -> dict[str, Any]:
    """What a product left in ``scene`` (a `unmixgen.scene.Scene`: its ``good_bands``, ``bands`` and
    ``read(rows, cols)``) without flagging it, judged on its good bands, given its
    valid pixels ``mask (rows, cols)`` (`unmixgen.scene.pixel_validity`, or the reader's):

    - ``"zero_filled"``: how many invalid pixels are 0 in every band (an image border filled
      after orthorectification, lost lines; `unmixgen.scene.pixel_validity` leaves them out);
    - ``"stuck"``: the stuck detector lines (module docstring) among the valid pixels, None when
      there are none, else ``{"pixels": bool (rows, cols), "columns": [...], "rows": [...],
      "bands": [...]}`` (0-based line indices; ``bands``: the band numbers, from 1, stuck on
      some line).

    A column (row) is stuck when its valid pixels, at least `MIN_STUCK_LINE`, hold one value in
    a band that varies along most other columns (rows), and fewer than a quarter as many valid
    pixels off the lines constant in that band hold that value too: a dark area clipped to zero
    or a saturated one is not cut off along a line, and its ragged edge holds the value as well.
    Reads the scene in strips of rows, twice when some line is constant."""
    rows, cols = mask.shape
    good = np.flatnonzero(scene.good_bands)
    step = max(1, min(_STUCK_STRIP, _STUCK_STRIP_PIXELS // max(cols, 1)))
    strips = [(r0, min(r0 + step, rows)) for r0 in range(0, rows, step)]
    found: dict[str, Any] = {"zero_filled": 0, "stuck": None}
    if not good.size:
        return found

    every = good.size == scene.bands

    def strip(r0: int, r1: int) -> np.ndarray:
        block = scene.read(slice(r0, r1), slice(0, cols))
        return block if every else block[..., good]  # no copy of a strip whose bands are all good

    c_low = np.full((cols, good.size), np.inf, np.float32)
    c_high = np.full((cols, good.size), -np.inf, np.float32)
    r_low = np.empty((rows, good.size), np.float32)
    r_high = np.empty((rows, good.size), np.float32)
    for r0, r1 in strips:
        block, valid = strip(r0, r1), mask[r0:r1]
        found["zero_filled"] += int((~valid & ~block.any(axis=-1)).sum())
        low, high = _line_ranges(block, valid, 0)
        np.minimum(c_low, low, out=c_low)
        np.maximum(c_high, high, out=c_high)
        r_low[r0:r1], r_high[r0:r1] = _line_ranges(block, valid, 1)
    col_count, row_count = mask.sum(axis=0), mask.sum(axis=1)
    col_const = _constant_lines(c_low, c_high, col_count)
    row_const = _constant_lines(r_low, r_high, row_count)
    if not (col_const.any() or row_const.any()):
        return found
    # how many valid pixels off the constant lines of a band hold a constant line's value
    bands = np.flatnonzero(col_const.any(axis=0) | row_const.any(axis=0))
    values = [np.unique(np.concatenate([c_low[col_const[:, b], b], r_low[row_const[:, b], b]])) for b in bands]
    shared = [np.zeros(v.size, np.int64) for v in values]
    for r0, r1 in strips:
        block, valid = strip(r0, r1), mask[r0:r1]
        for i, b in enumerate(bands):
            off = valid & ~col_const[None, :, b] & ~row_const[r0:r1, None, b]
            x = block[..., b][off]
            # each value's count by its sorted place: pixels x values compared one by one cost
            # 10x the scan on a million pixels with 50 hot columns of distinct values
            at = np.minimum(np.searchsorted(values[i], x), values[i].size - 1)
            hit = values[i][at] == x
            shared[i] += np.bincount(at[hit], minlength=values[i].size)
    pixels = np.zeros((rows, cols), bool)
    stuck_cols, stuck_rows = np.zeros(cols, bool), np.zeros(rows, bool)
    stuck_bands = np.zeros(good.size, bool)
    for i, b in enumerate(bands):
        for const, low, count, stuck in ((col_const, c_low, col_count, stuck_cols),
                                         (row_const, r_low, row_count, stuck_rows)):
            lines = np.flatnonzero(const[:, b])
            held = shared[i][np.searchsorted(values[i], low[lines, b])]
            lone = lines[4 * held < count[lines]]
            stuck[lone] = True
            stuck_bands[b] |= lone.size > 0
    if stuck_cols.any() or stuck_rows.any():
        pixels[:, stuck_cols] = True
        pixels[stuck_rows] = True
        found["stuck"] = {"pixels": pixels & mask, "columns": np.flatnonzero(stuck_cols).tolist(),
                          "rows": np.flatnonzero(stuck_rows).tolist(), "bands": (good[stuck_bands] + 1).tolist()}
    return found


def line_list(kind: str, idx: list[int]) -> str:
    """``"column 7"``, ``"columns 7, 20"``, ``"rows 1, 2, 3, 4, 5 and 9 more"``."""
    head = ", ".join(str(i) for i in idx[:5])
    return f"{kind}{'s' if len(idx) > 1 else ''} {head}" + (f" and {len(idx) - 5} more" if len(idx) > 5 else "")
