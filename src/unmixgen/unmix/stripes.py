"""Detector stripes: how far each image column's gain is off, per band, in a pushbroom scene.

A pushbroom spectrometer (PRISMA, EnMAP, EMIT, DESIS, AVIRIS-NG) reads every image column with
its own detector element in every band. The flat-field calibration leaves each element's gain a
fraction of a percent to a few percent off, the same down the whole column: the bands are striped
along the columns. Per pixel the stripes look like noise (a band-to-band regression such as
HySime counts them as noise), but they do not average out over a neighbourhood as noise does.

`column_stripes` measures them without a model of the scene. Each column's mean spectrum is
taken over the top and over the bottom half of the rows. The scene's spectra lie close to a
low-dimensional subspace (the mean and the leading principal components of a sample of its
pixels); a column's mean does too, but for the noise and the stripes, which differ from band to
band. The part of the column mean outside the subspace, relative to the part inside, is the
column's gain error plus noise. The stripes are the same in both halves and the noise is not:
over the columns, the covariance of the two halves' residuals measures the stripes' variance per
band, half their difference the noise's. (Columns whose content differs between the halves add
nothing to the covariance; a feature that runs down a whole column does, but only with what its
spectrum has outside the subspace.)

The stripes inside the subspace (about ``components / bands`` of their variance) are not seen
one by one; their variance is restored in expectation.

A product resampled to a map grid (PRISMA L2D, EnMAP L2A, EMIT through its GLT) keeps the
stripes along the detector's lines, which the resampling leaves at the orbit's heading: lines at
an angle to the image columns, in the staircase a nearest-neighbour resampling makes.
`column_stripes` also looks for the angle (`stripe_angle`) and measures the stripes along lines
at that angle in the same way, with the two halves taken along the lines; those lines are taken
where the columns show no stripes, or clearly fewer (lines a fraction of a degree off the
columns are half seen down them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ..scene import Scene, window_on_data

#: principal components (beside the mean) taken as the scene's signal: enough for real scenes'
#: content (Samson and Jasper Ridge show no stripes with 20, false ones with 6), few enough
#: beside 100-250 bands to leave the stripes mostly outside
COMPONENTS = 20

#: the stripes count when their variance summed over the bands is at least this share of their
#: estimate's noise variance: clean simulated scenes and the two real scenes measure 0.09-0.19,
#: 1 % gain stripes 0.9-1.4 (`benchmarks/RESULTS.md`)
DETECTION_RATIO = 0.5

#: each half of the rows must hold this many valid pixels of a column for the column to count,
#: and this many columns must count
MIN_HALF_PIXELS = 16
MIN_COLUMNS = 16

#: good bands needed: the signal subspace takes a quarter of them (`COMPONENTS` at most), and a
#: scene's signal outside it reads as stripes. Below 28 bands that is 6 components or fewer,
#: which gave Samson and Jasper Ridge false stripes; at 8-11 bands (2 components) clean
#: simulated 4-endmember scenes measured ratios up to 7, and HybridSTU trained with them
MIN_BANDS = 28

#: bands over which the stripes' variance is averaged (a running mean): one band's variance over
#: some tens of columns is too noisy to use alone, and the gains' spread changes slowly with
#: wavelength
SMOOTH_BANDS = 9

#: a column whose halves agree over the bands by more than three times the median column's
#: agreement plus this many of its robust spreads is content, not a detector's gain (a road of
#: a rare material down the column); 2 % gains reach about 4 times the median at a detector's
#: ends, one road column some thousand times. A column above it whose halves agree band to band
#: (the steps between neighbouring bands) as much as over the bands is a detector element's own
#: gains, white over the bands, and stays: a material's spectrum is smooth
LONE_COLUMN_SPREAD = 10.0

#: where the columns are striped too, lines at another angle are taken when their ratio is this
#: many times the columns': a fraction of a degree from the columns, stripes are half seen down
#: them (ratio 0.9 against 130 along their lines)
SLANT_MARGIN = 1.5

#: values (pixels x bands) read at once: 64 MB of float32
_STRIP_VALUES = 16 * 2**20

#: the angle search (`stripe_angle`): random band combinations of each pixel's part outside the
#: signal subspace it scans, the side of the central window it scans them in, the length along
#: the lines of its first windows and its first angle step (degrees). A window ``w`` long
#: tolerates an angle about ``1 / w`` radians off: 1 degree at 64 pixels.
_SEARCH_FEATURES = 8
_SEARCH_SIDE = 1024
_SEARCH_WINDOW = 64
_SEARCH_STEP = 1.0


@dataclass
class Stripes:
    """What `column_stripes` measured.

    Attributes
    ----------
    gain_std : float64 (bands,)
        Relative standard deviation of the column gains per band (0.02: 2 %), smoothed over
        `SMOOTH_BANDS` bands; 0 on bands not measured (bad, or too dark to divide by).
    ratio : float
        Stripe variance over its estimate's noise variance, summed over the measured bands.
    detected : bool
        ``ratio >= DETECTION_RATIO``.
    columns : int
        Columns (detector lines) measured.
    angle : float
        Degrees between the striped lines and the image columns (`line_index`): 0 in a
        pushbroom's own geometry, the heading's angle in a map grid.
    """

    gain_std: np.ndarray
    ratio: float
    detected: bool
    columns: int
    angle: float = 0.0

    def record(self) -> dict:
        """JSON-ready summary: detected, ratio, lines measured, their angle, median and max gain
        std in % (measured bands)."""
        g = self.gain_std[self.gain_std > 0]
        return {"detected": self.detected, "ratio": round(self.ratio, 3), "columns": self.columns,
                "angle_deg": round(self.angle, 2),
                "gain_std_percent_median": round(100 * float(np.median(g)), 3) if g.size else 0.0,
                "gain_std_percent_max": round(100 * float(g.max()), 3) if g.size else 0.0}


def _signal_basis(Y: np.ndarray, components: int) -> np.ndarray:
    """Orthonormal ``(bands, <= components + 1)`` basis of the mean and leading principal
    components of pixels ``Y (n, bands)`` (float64)."""
    mu = Y.mean(axis=0)
    k = max(1, min(components, Y.shape[1] // 4, Y.shape[0] - 1))
    _, _, vt = np.linalg.svd(Y - mu, full_matrices=False)
    q, _ = np.linalg.qr(np.column_stack([mu, vt[:k].T]))
    return q


def _half_column_means(scene: Scene, good: np.ndarray, sample: int, seed: int
                       ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Mean spectrum ``(2, cols, good bands)`` float64 of each column's valid pixels in the top
    and the bottom half of the rows, their counts ``(2, cols)``, and about ``sample`` valid
    pixels (float64 ``(n, good bands)``) from the even and from the odd columns; one read of the
    scene, in strips of rows, one strip in memory at a time and not copied.

    The halves split the rows where the valid pixels do (``rows // 2`` when every pixel is
    valid): a scene whose top or bottom rows are no-data is still measured on the rest."""
    rows, cols = scene.rows, scene.cols
    mask = scene.mask
    below = np.cumsum(mask.sum(axis=1))  # valid pixels in each row and those above it
    keep = min(1.0, sample / max(int(below[-1]), 1))
    rng = np.random.default_rng(seed)
    half = int(np.searchsorted(below, below[-1] // 2, side="right"))  # rows before: at most half
    all_good = good.size == scene.bands
    sums = np.zeros((2, cols, good.size))
    counts = np.zeros((2, cols))
    picked: list[list[np.ndarray]] = [[], []]
    step = max(1, _STRIP_VALUES // max(cols * scene.bands, 1))
    for h, (start, stop) in enumerate(((0, half), (half, rows))):
        for r0 in range(start, stop, step):
            r1 = min(r0 + step, stop)
            block = scene.read(slice(r0, r1), slice(0, cols))
            if not all_good:  # a boolean or index selection copies the strip, also of every band
                block = block[..., good]
            valid = mask[r0:r1]
            # an invalid pixel may hold NaN (NaN times 0 is NaN): summed only where valid, no copy
            sums[h] += np.sum(block, axis=0, where=valid[..., None], dtype=np.float64)
            counts[h] += valid.sum(axis=0)
            take = valid & (rng.random(valid.shape) < keep)
            for parity in (0, 1):
                at = take.copy()
                at[:, 1 - parity::2] = False
                picked[parity].append(block[at].astype(np.float64))
            del block  # before the next strip is read, not after: one strip in memory
    return sums / np.maximum(counts, 1)[..., None], counts, [np.concatenate(p) for p in picked]


def line_index(rows: np.ndarray, cols: np.ndarray, angle: float, shape: tuple[int, int],
               phase: float = 0.0) -> np.ndarray:
    """The detector line (int64, from 0) of the pixels at ``rows``, ``cols`` (broadcast) of an
    image of ``shape (rows, cols)`` whose stripes run ``angle`` degrees from its columns: a line
    moves ``tan(angle)`` columns to the right per row down and its pixels are one apart across
    it (nearest-neighbour resampling of a detector with the grid's pixel size); ``phase`` (0-1)
    shifts the lines' borders across them. ``angle = 0`` and ``phase = 0``: the column."""
    if angle == 0.0 and phase == 0.0:
        return np.broadcast_to(np.asarray(cols, np.int64), np.broadcast_shapes(np.shape(rows), np.shape(cols)))
    t = np.deg2rad(angle)
    c, s = np.cos(t), np.sin(t)
    h, w = shape
    lowest = min(0.0, -(h - 1) * s, (w - 1) * c, (w - 1) * c - (h - 1) * s)
    return np.floor(np.asarray(cols) * c - np.asarray(rows) * s - lowest + phase + 1e-9).astype(np.int64)


def _along(rows: np.ndarray, cols: np.ndarray, angle: float) -> np.ndarray:
    """Position along the lines at ``angle`` (`line_index`), in pixels: the row when 0."""
    t = np.deg2rad(angle)
    return np.asarray(cols) * np.sin(t) + np.asarray(rows) * np.cos(t)


def _half_line_means(scene: Scene, good: np.ndarray, sample: int, seed: int, angle: float, phase: float
                     ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """`_half_column_means` along lines at ``angle`` degrees with ``phase`` (`line_index`): the halves split
    each line where the valid pixels' position along the lines does, and the sample's parity is
    its line's. The sums of a strip go through a sparse (lines x pixels) matrix of its valid
    pixels, so an invalid pixel's value is never read into them."""
    rows, cols = scene.rows, scene.cols
    mask = scene.mask
    n_lines = int(line_index(np.array([0, 0, rows - 1, rows - 1]), np.array([0, cols - 1, 0, cols - 1]),
                             angle, (rows, cols), phase).max()) + 1
    rr, cc = np.nonzero(mask)
    split = float(np.median(_along(rr, cc, angle))) if rr.size else 0.0
    del rr, cc
    keep = min(1.0, sample / max(int(mask.sum()), 1))
    rng = np.random.default_rng(seed)
    all_good = good.size == scene.bands
    sums = np.zeros((2, n_lines, good.size))
    counts = np.zeros((2, n_lines))
    picked: list[list[np.ndarray]] = [[], []]
    step = max(1, _STRIP_VALUES // max(cols * scene.bands, 1))
    x = np.arange(cols)
    for r0 in range(0, rows, step):
        r1 = min(r0 + step, rows)
        y = np.arange(r0, r1)[:, None]
        lines = line_index(y, x[None], angle, (rows, cols), phase)
        half = (_along(y, x[None], angle) >= split).astype(np.int64)
        valid = mask[r0:r1]
        block = scene.read(slice(r0, r1), slice(0, cols))
        if not all_good:
            block = block[..., good]
        flat = block.reshape(-1, good.size)
        at = np.flatnonzero(valid)
        group = (half.ravel()[at] * n_lines + lines.ravel()[at])
        S = sparse.csr_matrix((np.ones(at.size, np.float32), (group, at)), shape=(2 * n_lines, flat.shape[0]))
        sums += (S @ flat).astype(np.float64).reshape(2, n_lines, good.size)
        counts += np.bincount(group, minlength=2 * n_lines).reshape(2, n_lines)
        take = valid & (rng.random(valid.shape) < keep)
        for parity in (0, 1):
            picked[parity].append(block[take & (lines % 2 == parity)].astype(np.float64))
        del block, flat
    return sums / np.maximum(counts, 1)[..., None], counts, [np.concatenate(p) for p in picked]


def _search_features(scene: Scene, good: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(features (h, w, _SEARCH_FEATURES) float32, valid (h, w))`` of a window of at most
    `_SEARCH_SIDE` a side on the scene's data (`scene.window_on_data`): random combinations of
    each pixel's bands outside the signal subspace, relative to the scene's mean level per band
    (dark bands left out)."""
    Y = scene.row_sample(5000)[:, good].astype(np.float64)  # the subspace only has to hold the content
    q = _signal_basis(Y, COMPONENTS)
    level = np.abs(Y.mean(axis=0))
    del Y
    bright = level > 0.05 * np.median(level)
    W = np.random.default_rng(seed).standard_normal((good.size, _SEARCH_FEATURES))
    W = np.where(bright[:, None], W / np.where(bright, level, 1.0)[:, None], 0.0)
    P = (W - q @ (q.T @ W)).astype(np.float32)  # y P: y's part outside the subspace, combined
    rs, cs = window_on_data(scene.mask, _SEARCH_SIDE)  # the image's middle, or the data off it
    r0, c0, h, w = rs.start, cs.start, rs.stop - rs.start, cs.stop - cs.start
    valid = np.array(scene.mask[rs, cs])
    feats = np.zeros((h, w, _SEARCH_FEATURES), np.float32)
    step = max(1, _STRIP_VALUES // 4 // max(w * scene.bands, 1))  # a quarter strip: 16 MB
    for a in range(0, h, step):
        b = min(a + step, h)
        block = scene.read(slice(r0 + a, r0 + b), slice(c0, c0 + w))
        if good.size < scene.bands:  # a bad band may hold NaN, which no weight of 0 takes out
            block = block[..., good]
        f = np.asarray(block, np.float32) @ P  # NaN where the pixel is, zeroed below
        feats[a:b] = np.where(valid[a:b, :, None], f, 0.0)
        del block, f
    return feats, valid


def _line_length(shape: tuple[int, int], angle: float) -> float:
    """Of the longest line at ``angle`` across an image of ``shape``, in pixels."""
    t = np.deg2rad(angle)
    h, w = shape
    return min((h - 1) / max(abs(np.cos(t)), 1e-9), (w - 1) / max(abs(np.sin(t)), 1e-9))


class _Window:
    """The search's features of a window on the data (`scene.window_on_data`): pixel rows and
    columns (float64) and the features ``(_SEARCH_FEATURES, n)`` of its valid pixels (a
    feature's values contiguous, as `np.bincount` takes its weights), with the window's shape."""

    def __init__(self, feats: np.ndarray, valid: np.ndarray, side: int):
        win = window_on_data(valid, side)  # on the data where the image's middle is no-data
        sub = valid[win]
        self.shape = sub.shape
        rr, cc = np.nonzero(sub)
        self.f = np.ascontiguousarray(feats[win][rr, cc].T)
        self.rr, self.cc = rr.astype(np.float64), cc.astype(np.float64)

    def agreement(self, angle: float, window: float, phases: tuple[float, ...] = (0.0,)) -> float:
        """How much the two halves of every ``window``-long piece of every line at ``angle``
        (`line_index`) agree on the features' means: their covariance over the pieces over the
        noise variance of their mean, summed over the features (`column_stripes`' ratio, per
        piece); the largest over the lines' ``phases``, whose pieces and halves are the same."""
        if self.rr.size == 0:
            return 0.0
        along = _along(self.rr, self.cc, angle)
        pos = (along - along.min()) / window
        piece = np.floor(pos).astype(np.int64)
        half = (pos - piece >= 0.5).astype(np.int64)
        return max(self._agreement(line_index(self.rr, self.cc, angle, self.shape, phase), piece, half, window)
                   for phase in phases)

    def _agreement(self, lines: np.ndarray, piece: np.ndarray, half: np.ndarray, window: float) -> float:
        n_lines = int(lines.max()) + 1
        group = (piece * n_lines + lines) * 2 + half
        n = int(group.max()) + 2
        n -= n % 2
        counts = np.bincount(group, minlength=n)[:n].reshape(-1, 2)
        used = (counts >= max(4, window / 8)).all(axis=1)
        if used.sum() < MIN_COLUMNS:
            return 0.0
        cov = noise = 0.0
        for f in self.f:  # a loop over the features (8), not the pixels
            m = (np.bincount(group, f, minlength=n)[:n].reshape(-1, 2) / np.maximum(counts, 1))[used]
            cov += float(np.sum(m[:, 0] * m[:, 1]))
            noise += float(np.sum((m[:, 0] - m[:, 1]) ** 2)) / 4.0
        return cov / max(noise, 1e-30)


def stripe_angle(scene: Scene, *, seed: int = 0) -> tuple[float, float] | None:
    """``(angle, phase)``: the angle in degrees (-90, 90] from the image columns along which the
    scene is most striped and the phase of its lines' borders (`line_index`); None when the
    scene is too small to search (`column_stripes`).

    A coarse-to-fine search: every `_SEARCH_STEP` degrees with pieces of the lines
    `_SEARCH_WINDOW` long in a central window four times as wide, then around the best angle
    with pieces twice as long, half the step and a window twice as wide, until the pieces span
    the central `_SEARCH_SIDE` window, and finer still until the scene's longest line drifts less
    than a pixel; every angle at the better of two phases (a half apart); then the phase among
    quarters. One read of that window."""
    good = np.flatnonzero(scene.good_bands)
    if good.size < MIN_BANDS or scene.mask.sum() < 4 * good.size:
        return None
    feats, valid = _search_features(scene, good, seed)
    window, step = float(min(_SEARCH_WINDOW, max(valid.shape))), _SEARCH_STEP
    view = _Window(feats, valid, int(4 * window))

    def score(a: float, phases: tuple[float, ...]) -> float:
        # each angle at its best phase: within a few degrees of an axis, lines a half off their
        # borders hold long runs of two detector lines each (2 % stripes at 89.5 deg went unseen)
        return view.agreement(float(a), window, phases)

    angles = np.arange(-90.0 + step, 90.0 + step / 2, step)
    best = float(max(angles, key=lambda a: score(a, (0.0, 0.5))))
    while 2 * window <= _line_length((min(valid.shape[0], int(8 * window)), min(valid.shape[1], int(8 * window))),
                                     best):
        window, step = 2 * window, step / 2
        view = _Window(feats, valid, int(4 * window))
        # the best first: a tie keeps it
        near = best + step * np.array([0.0, -1.0, 1.0, -2.0, 2.0])
        best = float(max(near, key=lambda a: score(a, (0.0, 0.5))))
    # then finer where the scene's lines are longer than the window's pieces: an angle ``step / 2``
    # off drifts ``length * step / 2`` across the lines measured (a pixel at 2.25 deg, searched
    # to 0.5 deg over 256 pixels: 2 % stripes measured 1.2 %); the pieces now the view's lines
    length = _line_length((scene.rows, scene.cols), best)
    window = max(window, _line_length(view.shape, best))
    while np.deg2rad(step) * length > 1.0:
        step /= 2
        near = best + step * np.array([0.0, -1.0, 1.0])
        best = float(max(near, key=lambda a: score(a, (0.0, 0.5))))
    # wrapped before the phase is chosen: the lines at a and a - 180 deg have other borders
    best = (best + 90.0) % 180.0 - 90.0
    best = 90.0 if best == -90.0 else best
    phase = float(max((0.0, 0.5, 0.25, 0.75), key=lambda f: view.agreement(best, window, (f,))))
    return best, phase


def column_stripes(scene: Scene, *, components: int = COMPONENTS, sample: int = 20_000, seed: int = 0,
                   angle: float | str = "auto") -> Stripes | None:
    """The column stripes of ``scene`` (module docstring), judged on its good bands from its
    valid pixels; None when the scene has too few rows, columns or bands to tell (fewer than
    `MIN_COLUMNS` columns with `MIN_HALF_PIXELS` valid pixels in each half of the rows, fewer
    than `MIN_BANDS` good bands). Reads the scene once, in strips of rows, keeping a seeded
    sample of about ``sample`` pixels.

    The signal subspace of the even columns is taken from the odd columns' pixels and the
    other way round: with its own columns in the sample, a subspace of a few tens of columns
    bends towards their stripes. The stripes' variance the subspace still hides is restored
    in expectation (``1 / (1 - P_bb)``, ``P`` the projector).

    ``angle``: the stripes' direction in degrees from the columns (`line_index`), or
    ``"auto"``: the columns, and the lines at the angle `stripe_angle` finds (a map-grid
    product), measured the same way (a read of the central window and one of the scene); the
    measure of the columns is returned unless those lines are striped and, where the columns
    are too, more so by `SLANT_MARGIN`."""
    if angle != "auto":
        return _measure(scene, components, sample, seed, float(angle), 0.0)
    found = _measure(scene, components, sample, seed, 0.0, 0.0)
    if found is None:
        return found
    lines = stripe_angle(scene, seed=seed)
    if lines is None or lines == (0.0, 0.0):
        return found
    slanted = _measure(scene, components, sample, seed, *lines)
    if slanted is None or not slanted.detected:
        return found
    # lines a fraction of a degree from the columns are half seen down the columns (2 % stripes at
    # 0.5 deg: ratio 0.91 and 0.73 %, along their lines 130 and 1.99 %): the columns are kept
    # unless the lines are clearly more striped
    return slanted if not found.detected or slanted.ratio > SLANT_MARGIN * found.ratio else found


def _measure(scene: Scene, components: int, sample: int, seed: int, angle: float, phase: float
             ) -> Stripes | None:
    """`column_stripes` along the lines at ``angle`` degrees with ``phase`` (0, 0: the columns)."""
    good = np.flatnonzero(scene.good_bands)
    if good.size < MIN_BANDS:
        return None
    if angle == 0.0 and phase == 0.0:
        means, counts, pixels = _half_column_means(scene, good, sample, seed)
    else:
        means, counts, pixels = _half_line_means(scene, good, sample, seed, angle, phase)
    used = (counts >= MIN_HALF_PIXELS).all(axis=0)
    if used.sum() < MIN_COLUMNS or min(len(p) for p in pixels) < 2 * good.size:
        return None
    rel = np.zeros_like(means)
    hidden = np.zeros(good.size)
    bright = np.ones(means.shape[1:], bool)
    for parity in (0, 1):
        q = _signal_basis(pixels[1 - parity], components)
        cols = np.zeros(means.shape[1], bool)
        cols[parity::2] = True
        m = means[:, cols]
        inside = m @ q @ q.T
        level = inside.mean(axis=0)  # each column's mean spectrum, in the subspace
        # gains are relative: bands too dark to divide by (water absorptions) are not measured
        ok = level > 0.05 * np.median(np.abs(level))
        rel[:, cols] = np.where(ok, (m - inside) / np.where(ok, level, 1.0), 0.0)
        bright[cols] = ok
        hidden += 0.5 * np.einsum("bk,bk->b", q, q)
    rel, bright = rel[:, used], bright[used]
    # per band over its bright columns: a lake down a few columns is too dark in the infrared
    # to divide by, which must not leave those bands unmeasured in every column
    r1, r2, n, measured = _centred(rel, bright)
    # a road or a canal of a material the subspace does not hold, down one column or line, agrees
    # between the halves as a stripe does, but in that column alone: columns whose agreement over
    # the bands stands out from the others' are left out (a detector's gains spread all of them)
    energy = (r1 * r2)[:, measured].sum(axis=1)
    mid = float(np.median(energy))
    spread = 1.4826 * float(np.median(np.abs(energy - mid)))
    lone = energy > 3.0 * max(mid, 0.0) + LONE_COLUMN_SPREAD * spread
    if lone.any():
        # but a detector's few bad elements are no road: their gains are their own in every band,
        # where a material's spectrum outside the subspace is smooth over neighbouring bands (a
        # white residual agrees twice as much in its band-to-band steps, a smooth one hardly)
        d1, d2 = np.diff(r1[:, measured], axis=1), np.diff(r2[:, measured], axis=1)
        lone &= (d1 * d2).sum(axis=1) < np.maximum(energy, 0.0)
    if lone.any():
        bright &= ~lone[:, None]
        r1, r2, n, measured = _centred(rel, bright)
    cov = (r1 * r2).sum(axis=0) / n
    noise = ((r1 - r2) ** 2).sum(axis=0) / n / 4.0  # the noise variance of the halves' mean
    ratio = float(np.clip(cov[measured], 0, None).sum() / max(noise[measured].sum(), 1e-30))
    var = np.where(measured, np.clip(cov, 0, None) / np.maximum(1.0 - hidden, 0.1), 0.0)
    # averaged over the scene's band numbers, not the good bands': bands on either side of a
    # gap of bad ones (a water absorption) are that far apart in wavelength
    full_var, full_measured = np.zeros(scene.bands), np.zeros(scene.bands)
    full_var[good], full_measured[good] = var, measured
    kernel = np.ones(min(SMOOTH_BANDS, scene.bands))
    smooth = np.convolve(full_var, kernel, "same") / np.maximum(np.convolve(full_measured, kernel, "same"), 1)
    gain_std = np.zeros(scene.bands)
    gain_std[good] = np.where(measured, np.sqrt(smooth[good]), 0.0)
    return Stripes(gain_std, ratio, ratio >= DETECTION_RATIO, int(used.sum() - lone.sum()), angle)


def _centred(rel: np.ndarray, bright: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The halves' residuals ``rel (2, columns, bands)`` less their mean per band over the
    columns ``bright`` there, zero elsewhere; those columns' count per band (at least 1) and
    whether it is enough to measure the band."""
    n = bright.sum(axis=0)
    measured = n >= MIN_COLUMNS
    n = np.maximum(n, 1)
    r1, r2 = ((r - (r * bright).sum(axis=0) / n) * bright for r in (rel[0], rel[1]))
    return r1, r2, n, measured
