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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..scene import Scene

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

#: values (pixels x bands) read at once: 64 MB of float32
_STRIP_VALUES = 16 * 2**20


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
        Columns measured.
    """

    gain_std: np.ndarray
    ratio: float
    detected: bool
    columns: int

    def record(self) -> dict:
        """JSON-ready summary: detected, ratio, median and max gain std in % (measured bands)."""
        g = self.gain_std[self.gain_std > 0]
        return {"detected": self.detected, "ratio": round(self.ratio, 3), "columns": self.columns,
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


def column_stripes(scene: Scene, *, components: int = COMPONENTS, sample: int = 20_000, seed: int = 0
                   ) -> Stripes | None:
    """The column stripes of ``scene`` (module docstring), judged on its good bands from its
    valid pixels; None when the scene has too few rows, columns or bands to tell (fewer than
    `MIN_COLUMNS` columns with `MIN_HALF_PIXELS` valid pixels in each half of the rows, fewer
    than `MIN_BANDS` good bands). Reads the scene once, in strips of rows, keeping a seeded
    sample of about ``sample`` pixels.

    The signal subspace of the even columns is taken from the odd columns' pixels and the
    other way round: with its own columns in the sample, a subspace of a few tens of columns
    bends towards their stripes. The stripes' variance the subspace still hides is restored
    in expectation (``1 / (1 - P_bb)``, ``P`` the projector)."""
    good = np.flatnonzero(scene.good_bands)
    if good.size < MIN_BANDS:
        return None
    means, counts, pixels = _half_column_means(scene, good, sample, seed)
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
    n = bright.sum(axis=0)
    measured = n >= MIN_COLUMNS
    n = np.maximum(n, 1)
    r1, r2 = ((r - r.sum(axis=0) / n) * bright for r in (rel[0], rel[1]))
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
    return Stripes(gain_std, ratio, ratio >= DETECTION_RATIO, int(used.sum()))
