"""Number of endmembers from a spatial-neighbour noise estimate (``n_endmembers="auto"``).

HySime (`unmixgen.unmix.rank`) estimates noise by regressing each band on the others, so
noise that is correlated across bands (striping, calibration residue) is taken for signal
and real scenes come out with tens of endmembers. Here the noise is estimated from space
instead: the residual of each pixel against the mean of its 8 neighbours,
``r = y - mean_8(y)``, has covariance ``(1 + 1/8) Rn`` for noise that is independent between
pixels, whatever its correlation across bands, while a spatially smooth signal cancels.

With the data covariance ``Ry`` (mean removed) the generalised eigenvalues
``Ry v = lambda Rn v`` are the signal-to-noise ratios of the principal directions of the
noise-whitened data (noise-adjusted principal components, Green et al. 1988). Under the
linear mixing model ``p`` endmembers span a ``(p - 1)``-dimensional affine set, so ``p - 1``
eigenvalues stand above the noise floor. Two regimes:

1. **A noise floor is reached.** The floor is the median of the lower half of the
   eigenvalues; when the 13th eigenvalue is within ``flat_ratio`` of it, or a later one in
   the first quarter falls onto it (within ``flat_ratio``) from above ``floor_factor`` times
   it, by that factor in one step (more than 13 materials over a clean floor), the data have
   a flat noise floor and ``p - 1`` is the number of eigenvalues above ``floor_factor``
   times the floor. On small scenes (few pixels per band) pure-noise eigenvalues spread up to
   the Marchenko-Pastur edge ``(1 + sqrt(bands / pixels))^2``; twice that edge replaces
   either factor when it is larger.
2. **No floor** (the whitened spectrum decays slowly: texture finer than a pixel, spatially
   correlated noise and material variability on real scenes). No dimension separates signal
   from noise, so the count is of the dominant directions: the noise is re-estimated
   against a wider window (mean of the 9 x 9 neighbourhood, which takes more of the
   fine-scale structure into the "noise"), and ``p - 1`` counts the eigenvalues at least
   ``relative`` times the largest.

**Detector stripes.** A pushbroom scene's columns (or a map grid's lines) each carry their own
gain per band (`unmixgen.unmix.stripes`). Those gains are not noise that a neighbourhood
residual sees whole: they are the same down a column, and the part of them that varies slowly
across the columns cancels in ``y - mean_8(y)``, as a smooth signal does. Each slow pattern of
gains over the columns is a spectrum of its own, so 1 % stripes at 30-40 dB counted 9-14
endmembers on 4-endmember scenes (`benchmarks/RESULTS.md`). Given the stripes' gain spread per band (``stripe_gain_std``,
measured by `column_stripes`), their variance ``gain_std^2 mean(y^2)`` is added to the noise
covariance, and the count takes the stripes for what they are, a sample of ``stripe_lines``
random spectra: their sample covariance spreads up to the Marchenko-Pastur edge
``(1 + sqrt(bands / lines))^2`` of that variance, and with fewer lines than bands it has no
floor of its own. In the direction where the stripes take the largest share ``s`` of the noise
covariance, a direction of noise and stripes reaches ``1 - s + s edge``; the threshold is twice
that times the larger of the floor and 1 (the whitened noise's own level), so stripes faint
beside the noise cost the count nothing.

The thresholds were set on `benchmarks/blind_suite.py` (24 simulated scenes and the
Samson and Jasper Ridge scenes); the measurements are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg

from ..errors import InputError
from ..labelled import bands_last
from ..scene import Scene
from .preprocessing import second_moments

__all__ = ["SpatialRankEstimate", "neighbour_noise_covariance", "scene_rank", "spatial_rank"]


@dataclass
class SpatialRankEstimate:
    """Result of `spatial_rank`.

    Attributes
    ----------
    n_endmembers : the estimate of p (the number of counted eigenvalues + 1).
    eigenvalues : ``(B,)`` float64 generalised eigenvalues (signal-to-noise ratio of each
        noise-adjusted principal component, descending) against the 3 x 3 noise estimate.
    floor : median of the lower half of ``eigenvalues`` (the noise floor; 1 for white noise).
    regime : ``"floor"`` or ``"dominant"`` (see the module docstring).
    threshold : the eigenvalue threshold used, on ``counted`` (same units).
    counted : ``(B,)`` the eigenvalues the count was made on (``eigenvalues`` in the floor
        regime, those against the 9 x 9 noise estimate otherwise).
    stripe_lines : the striped detector lines taken into the noise (None: no stripes).
    stripes : the `unmixgen.unmix.stripes.Stripes` measure `scene_rank` made of the scene
        (None: `spatial_rank` alone, or a scene too small to tell), for callers that report it
        without measuring again.
    """

    n_endmembers: int
    eigenvalues: np.ndarray
    floor: float
    regime: str
    threshold: float
    counted: np.ndarray
    stripe_lines: int | None = None
    stripes: Any = field(default=None, repr=False, compare=False)

    def as_dict(self, max_values: int = 50) -> dict[str, Any]:
        """JSON-ready summary; spectra truncated to the first ``max_values`` values."""
        return {
            "method": "spatial-noise whitened eigenvalues",
            "n_endmembers": int(self.n_endmembers),
            "regime": self.regime,
            "floor": float(self.floor),
            "threshold": float(self.threshold),
            "eigenvalues": [float(v) for v in self.eigenvalues[:max_values]],
            "counted": [float(v) for v in self.counted[:max_values]],
            "truncated_to": int(max_values),
            **({} if self.stripe_lines is None else {"stripes_in_noise": {"lines": int(self.stripe_lines)}}),
        }


def _box_sum(x: np.ndarray, k: int) -> np.ndarray:
    """Sum over the ``k x k`` window of each interior position of ``x (rows, cols, ...)``
    (output ``(rows - k + 1, cols - k + 1, ...)``), by cumulative sums."""
    c = np.cumsum(np.cumsum(x, axis=0), axis=1)
    c = np.pad(c, [(1, 0), (1, 0)] + [(0, 0)] * (x.ndim - 2))
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def neighbour_noise_covariance(cube: np.ndarray, mask: np.ndarray | None = None, *, window: int = 3,
                               strip: int = 64) -> np.ndarray:
    """Noise covariance ``(B, B)`` float64 from each pixel's residual against its neighbours.

    Parameters
    ----------
    cube : ``(rows, cols, B)`` scene.
    mask : ``(rows, cols)`` bool valid pixels (None: all); only windows that are wholly
        valid are used.
    window : odd window size ``k``; the residual is ``y - mean`` of the other ``k*k - 1``
        pixels, scaled by ``1 / (1 + 1 / (k*k - 1))`` to the noise of one pixel.
    strip : rows processed at once (bounds the float64 working memory).
    """
    rows, cols, bands = cube.shape
    if rows < window or cols < window:
        raise InputError(f"scene is {rows} x {cols} pixels; the spatial noise estimate needs at least "
                         f"{window} x {window}")
    valid = np.ones((rows, cols), bool) if mask is None else np.asarray(mask, bool).copy()
    h = window // 2
    n_other = window * window - 1
    R = np.zeros((bands, bands))
    n = 0
    for r0 in range(0, rows - 2 * h, strip):
        r1 = min(rows, r0 + strip + 2 * h)
        block = cube[r0:r1].astype(np.float64)
        good = valid[r0:r1] & np.all(np.isfinite(block), axis=-1)
        block[~good] = 0.0  # cumulative sums would carry a NaN across the whole strip
        ok = _box_sum(good.astype(np.int32), window) == window * window
        centre = block[h:r1 - r0 - h, h:cols - h]
        resid = centre - (_box_sum(block, window) - centre) / n_other
        resid = resid[ok]
        R += resid.T @ resid
        n += resid.shape[0]
    if n <= bands:
        raise InputError(f"only {n} pixels have a fully valid {window} x {window} neighbourhood for "
                         f"{bands} bands; expected more pixels than bands")
    return R / n / (1.0 + 1.0 / n_other)


def _stripe_covariance(gain_std: np.ndarray | None, lines: int | None, square: np.ndarray) -> np.ndarray | float:
    """The stripes' covariance ``(B, B)``, diagonal: per band ``gain_std^2`` times the pixels'
    mean square ``square (B,)``; 0.0 without stripes."""
    if gain_std is None:
        return 0.0
    gain_std = np.asarray(gain_std, np.float64)
    if gain_std.shape != square.shape or not np.all(np.isfinite(gain_std)) or np.any(gain_std < 0):
        raise InputError(f"stripe_gain_std: shape {gain_std.shape}; expected {square.size} finite spreads >= 0, "
                         "one per band of the cube")
    if isinstance(lines, bool) or not isinstance(lines, (int, np.integer)) or lines < 1:
        raise InputError(f"stripe_lines: {lines!r}; expected the number of striped detector lines (>= 1)")
    return np.diag(gain_std ** 2 * square)


def _whitened_eigenvalues(Ry: np.ndarray, Rn: np.ndarray) -> np.ndarray:
    bands = Ry.shape[0]
    Rn = 0.5 * (Rn + Rn.T) + 1e-9 * np.trace(Rn) / bands * np.eye(bands)  # keeps Rn positive definite
    return scipy.linalg.eigh(0.5 * (Ry + Ry.T), Rn, eigvals_only=True)[::-1].copy()


def spatial_rank(cube: np.ndarray, mask: np.ndarray | None = None, *, floor_factor: float = 3.0,
                 flat_ratio: float = 2.0, relative: float = 0.21, stripe_gain_std: np.ndarray | None = None,
                 stripe_lines: int | None = None) -> SpatialRankEstimate:
    """Estimate the number of endmembers of ``cube (rows, cols, B)``; see the module docstring.

    Parameters
    ----------
    cube : ``(rows, cols, B)`` scene, not mean-removed (any float dtype).
    mask : ``(rows, cols)`` bool valid pixels, or None.
    floor_factor : floor regime: count eigenvalues above this multiple of the floor.
    flat_ratio : the floor regime applies when the 13th eigenvalue is below this multiple
        of the floor.
    relative : no-floor regime: count eigenvalues at least this fraction of the largest.
    stripe_gain_std : ``(B,)`` relative spread of the detector lines' gains per band (0.01: 1 %;
        `unmixgen.unmix.stripes.Stripes.gain_std` on the cube's bands), or None: no stripes.
    stripe_lines : how many detector lines carry those gains (`Stripes.columns`); needed with
        ``stripe_gain_std``.

    Returns
    -------
    `SpatialRankEstimate` (``n_endmembers >= 2``).
    """
    if isinstance(cube, Scene):
        raise InputError("cube is a Scene; expected its array: spatial_rank(scene.load(), scene.mask)")
    cube = np.asarray(bands_last(cube, 2, "cube"))  # a DataArray laid out by its dim names
    if cube.ndim != 3:
        raise InputError(f"cube has shape {cube.shape}; expected (rows, cols, bands)")
    rows, cols, bands = cube.shape
    valid = np.ones((rows, cols), bool) if mask is None else np.asarray(mask, bool)
    if valid.shape != (rows, cols):
        raise InputError(f"mask: shape {valid.shape}; expected {(rows, cols)}, one flag per pixel of the cube")
    Y = cube[valid]
    Y = Y[np.all(np.isfinite(Y), axis=1)]
    n = Y.shape[0]
    if n <= bands:
        raise InputError(f"{n} valid pixels for {bands} bands; expected more pixels than bands")
    square, Ry = second_moments(Y)
    Ry = Ry * (n / (n - 1))  # the sample covariance, without a float64 copy of Y
    stripes = _stripe_covariance(stripe_gain_std, stripe_lines, np.diag(square))
    Rn = neighbour_noise_covariance(cube, valid, window=3) + stripes
    ev = _whitened_eigenvalues(Ry, Rn)
    floor = float(np.median(ev[bands // 2:]))
    # pure-noise sample eigenvalues spread up to about (1 + sqrt(bands / pixels))^2 times
    # the floor (Marchenko-Pastur); on small scenes that edge, not the factors, decides
    edge = 2.0 * (1.0 + np.sqrt(bands / Y.shape[0])) ** 2
    if stripe_gain_std is not None:  # the stripes: a sample of stripe_lines spectra (module docstring)
        share = float(_whitened_eigenvalues(stripes, Rn)[0])  # the stripes' largest share of a direction
        edge = max(edge, 2.0 * (1.0 - share + share * (1.0 + np.sqrt(bands / stripe_lines)) ** 2))
        floor = max(floor, 1.0)
    probe = min(12, bands - 1)
    limit = max(flat_ratio, edge) * floor
    # the floor is reached also where the eigenvalues fall from above the count's threshold
    # onto it in one step (by floor_factor at least) within the first quarter: more than 13
    # materials over a clean noise floor. Texture beyond the materials (real scenes) and
    # noise the neighbour estimate does not whiten decline gradually instead
    first = int(np.argmax(ev < limit)) if ev[-1] < limit else bands
    cliff = (0 < first <= bands // 4 and ev[first - 1] >= max(floor_factor, edge) * floor
             and ev[first - 1] >= floor_factor * ev[first])
    if ev[probe] < limit or cliff:
        regime, counted, threshold = "floor", ev, max(floor_factor, edge) * floor
    else:
        regime = "dominant"
        counted = _whitened_eigenvalues(Ry, neighbour_noise_covariance(cube, valid, window=9) + stripes)
        threshold = relative * float(counted[0])
    k = int(np.sum(counted >= threshold))
    return SpatialRankEstimate(n_endmembers=max(2, k + 1), eigenvalues=ev, floor=floor, regime=regime,
                               threshold=threshold, counted=counted,
                               stripe_lines=None if stripe_gain_std is None else int(stripe_lines))


def scene_rank(scene: Scene, good: np.ndarray | None = None) -> SpatialRankEstimate:
    """`spatial_rank` of ``scene`` (its valid pixels, on the bands where the bool ``good
    (bands,)`` is True; None: all), with the detector stripes `column_stripes` finds there taken
    into the noise (module docstring, "Detector stripes"). Loads the scene."""
    from .stripes import column_stripes

    cube = scene.load()
    whole = good is None or bool(np.all(good))
    found = column_stripes(scene)
    striped = {} if found is None or not found.detected else {
        "stripe_gain_std": found.gain_std if whole else found.gain_std[good], "stripe_lines": found.columns}
    est = spatial_rank(cube if whole else cube[..., good], scene.mask, **striped)
    est.stripes = found
    return est
