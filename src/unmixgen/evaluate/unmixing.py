"""Unmixing metrics: endmember matching, abundance and spectral errors, image quality.

Every metric is computed in float64 whatever the input dtype, and returns plain Python
floats (scalars) or float64 arrays (per endmember / per pixel). Shapes follow the package
conventions:

- endmembers ``(p, bands)``, rows are spectra;
- abundances ``(rows, cols, p)`` or flattened ``(N, p)``;
- cubes ``(rows, cols, bands)`` or ``(N, bands)``.

Invalid pixels are NaN in a cube or abundance map, or ``False`` in an optional ``mask``
(``(rows, cols)`` or ``(N,)``); every metric skips them. A pixel counts when it is valid in
the mask and finite in every array compared.

Estimated and reference endmembers come in arbitrary order; `match_endmembers` finds the
assignment (Hungarian algorithm) and `evaluate` scores everything after it. By the
convention of the unmixing literature, abundance RMSE is reported in percent (abundance
units x 100) and spectral angles in degrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..atomic import jsonable
from ..errors import InputError, ParameterError, check_range
from ..labelled import bands_last, variable_of

__all__ = [
    "abundance_rmse",
    "dead_maps",
    "evaluate",
    "format_table",
    "match_endmembers",
    "matched_abundance_rmse",
    "mse",
    "psnr",
    "reconstruction_rmse",
    "rmse",
    "sad",
    "sad_matrix",
    "sam_map",
    "sre",
    "ssim_maps",
]


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _f64(x: Any, what: str) -> np.ndarray:
    if x is None:
        raise InputError(f"{what}: missing; expected an array")
    return np.asarray(x, dtype=np.float64)


def _flat_pixels(x: np.ndarray, what: str) -> np.ndarray:
    """``(rows, cols, k)`` or ``(N, k)`` -> ``(N, k)``."""
    if x.ndim == 3:
        return x.reshape(-1, x.shape[-1])
    if x.ndim == 2:
        return x
    raise InputError(f"{what}: has shape {x.shape}; expected (rows, cols, k) or (N, k)")


def _same_image(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """`InputError` naming ``what`` when two ``(rows, cols, k)`` arrays cover images of other
    shapes (e.g. one is ``(cols, rows, k)``): their flattened pixels would not pair up."""
    if a.ndim == 3 and b.ndim == 3 and a.shape[:2] != b.shape[:2]:
        raise InputError(f"{what}: maps of {a.shape[:2]} and {b.shape[:2]} pixels; expected the same "
                         "(rows, cols) image")


def _valid_rows(mask: np.ndarray | None, n: int, *arrays: np.ndarray) -> np.ndarray:
    """Boolean ``(N,)``: the pixel is in ``mask`` and finite in every array ``(N, k)``."""
    valid = np.ones(n, bool)
    if mask is not None:
        m = np.asarray(mask, bool).reshape(-1)
        if m.size != n:
            raise InputError(f"mask: has {m.size} pixels; expected {n} to match the arrays")
        valid &= m
    for a in arrays:
        valid &= np.isfinite(a).all(axis=1)
    return valid


def dead_maps(A: Any, mask: np.ndarray | None) -> np.ndarray:
    """Bool ``(p,)``: the maps of ``A`` (``(rows, cols, p)`` / ``(N, p)``) with no finite value
    at any pixel of ``mask`` (a failed endmember; not a pixel's nodata, which is NaN in every
    map). A mask of another size is left to the checks that name it."""
    a = np.asarray(A)
    fin = np.isfinite(a.reshape(-1, a.shape[-1]))
    if mask is not None and np.size(mask) == fin.shape[0]:
        fin = fin[np.asarray(mask, bool).reshape(-1)]
    return ~fin.any(axis=0)


def _some_map_finite(A: Any, mask: np.ndarray | None, what: str) -> None:
    """`InputError` naming ``what`` when every map of ``A`` is NaN at every valid pixel."""
    if np.ndim(A) >= 2 and np.shape(A)[-1] and dead_maps(A, mask).all():
        raise InputError(f"{what}: every map is NaN (or Inf) at every valid pixel; expected finite abundances "
                         "(NaN only at invalid pixels)")


def _check_count(endmembers: Any, abundances: Any, what: str) -> None:
    """`InputError` naming ``what`` when spectra ``(p, bands)`` and abundances ``(..., k)``
    of one side disagree on the number of endmembers (e.g. spectra given as ``(bands, p)``)."""
    if endmembers is None or abundances is None or np.ndim(endmembers) != 2:
        return
    p, k = np.shape(endmembers)[0], np.shape(abundances)[-1]
    if p != k:
        raise InputError(f"{what}: shape {np.shape(endmembers)} holds {p} spectra but abundances "
                         f"{np.shape(abundances)} have {k} maps; expected (p, bands) with p = {k} "
                         "(spectra as columns, (bands, p), need a transpose)")


def _same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise InputError(f"{what}: shapes {a.shape} and {b.shape} differ; expected equal shapes")


# ----------------------------------------------------------------------------------------
# generic errors
# ----------------------------------------------------------------------------------------
def mse(a: np.ndarray, b: np.ndarray) -> float:
    r"""Mean squared error over all finite entries: :math:`\frac1n\sum_i (a_i - b_i)^2`.

    Unit: the square of the inputs' unit. Entries that are NaN/Inf in either array are
    skipped; NaN when none remain.
    """
    a, b = _f64(a, "mse"), _f64(b, "mse")
    _same_shape(a, b, "mse")
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return float("nan")
    d = a[ok] - b[ok]
    return float(np.mean(d * d))


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    r"""Root mean squared error :math:`\sqrt{\mathrm{mse}(a, b)}`, in the inputs' unit."""
    return float(np.sqrt(mse(a, b)))


# ----------------------------------------------------------------------------------------
# spectra
# ----------------------------------------------------------------------------------------
ANGLE_BLOCK = 16384
"""Rows per block of `_angles_deg` (its unit-vector temporaries are one block's)."""


def _angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise angle (degrees) between ``a (n, B)`` and ``b (n, B)``; NaN where a row is all zero.

    Kahan's form ``2 atan2(|u - v|, |u + v|)`` of the unit vectors ``u = a / |a|``,
    ``v = b / |b|``: accurate to rounding at every angle, where ``arccos`` of the cosine
    loses half the digits near 0 (it gave about 1e-6 degrees for identical spectra).
    """
    out = np.empty(a.shape[0])
    for i in range(0, a.shape[0], ANGLE_BLOCK):
        u, v = a[i:i + ANGLE_BLOCK], b[i:i + ANGLE_BLOCK]
        nu, nv = np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1)
        ok = (nu > 0) & (nv > 0)
        u = u / np.where(ok, nu, 1.0)[:, None]
        v = v / np.where(ok, nv, 1.0)[:, None]
        ang = 2.0 * np.arctan2(np.linalg.norm(u - v, axis=1), np.linalg.norm(u + v, axis=1))
        out[i:i + ANGLE_BLOCK] = np.where(ok, np.degrees(ang), np.nan)
    return out


def sad(E_est: np.ndarray, E_ref: np.ndarray) -> np.ndarray:
    r"""Spectral angle distance per endmember, in degrees.

    .. math:: \mathrm{SAD}_j = \arccos \frac{\langle \hat e_j, e_j\rangle}
              {\lVert \hat e_j\rVert \, \lVert e_j\rVert} \cdot \frac{180}{\pi}

    Parameters
    ----------
    E_est, E_ref : ``(p, bands)`` spectra, already in matching order (see
        `match_endmembers`).

    Returns
    -------
    ``(p,)`` float64 angles in [0, 180] degrees (NaN for an all-zero spectrum). The mean
    SAD reported by `evaluate` is ``sad(...).mean()``.
    """
    a, b = _f64(E_est, "E_est"), _f64(E_ref, "E_ref")
    if a.ndim == 1:
        a, b = a[None], b[None]
    _same_shape(a, b, "sad")
    return _angles_deg(a, b)


def sad_matrix(E_est: np.ndarray, E_ref: np.ndarray) -> np.ndarray:
    """All pairwise spectral angles in degrees: ``(p_est, p_ref)``, entry ``[i, j]`` = SAD(est i, ref j)."""
    a, b = _f64(E_est, "E_est"), _f64(E_ref, "E_ref")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InputError(f"endmembers: shapes {a.shape} and {b.shape}; expected (p, bands) with equal bands")
    pairs = _angles_deg(np.repeat(a, b.shape[0], axis=0), np.tile(b, (a.shape[0], 1)))  # as `sad`
    return pairs.reshape(a.shape[0], b.shape[0])


def sam_map(cube: np.ndarray, reconstruction: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    r"""Per-pixel spectral angle (SAM) between a cube and its reconstruction, in degrees.

    :math:`\theta_n = \arccos(\langle y_n, \hat y_n\rangle / (\lVert y_n\rVert \lVert \hat y_n\rVert))`.

    Parameters
    ----------
    cube, reconstruction : ``(rows, cols, bands)`` or ``(N, bands)``.
    mask : optional valid-pixel mask ``(rows, cols)`` / ``(N,)``.

    Returns
    -------
    ``(rows, cols)`` or ``(N,)`` float64 degrees; NaN at invalid pixels.
    """
    for x, what in ((cube, "cube"), (reconstruction, "reconstruction")):
        if x is None:
            raise InputError(f"{what}: missing; expected an array")
    y, yh = np.asarray(cube), np.asarray(reconstruction)  # float64 a block at a time: no whole-cube copy
    _same_shape(y, yh, "sam_map")
    spatial = y.shape[:-1]
    yf, yhf = _flat_pixels(y, "cube"), _flat_pixels(yh, "reconstruction")
    m = None if mask is None else np.asarray(mask, bool).reshape(-1)
    if m is not None and m.size != yf.shape[0]:
        raise InputError(f"mask: has {m.size} pixels; expected {yf.shape[0]} to match the arrays")
    out = np.full(yf.shape[0], np.nan)
    for i in range(0, yf.shape[0], ANGLE_BLOCK):
        a, b = np.asarray(yf[i:i + ANGLE_BLOCK], np.float64), np.asarray(yhf[i:i + ANGLE_BLOCK], np.float64)
        valid = _valid_rows(None if m is None else m[i:i + ANGLE_BLOCK], a.shape[0], a, b)
        out[i:i + ANGLE_BLOCK][valid] = _angles_deg(a[valid], b[valid])
    return out.reshape(spatial)


# ----------------------------------------------------------------------------------------
# abundances
# ----------------------------------------------------------------------------------------
def _paired_pixels(a, b, mask, names: tuple[str, str], what: str) -> tuple[np.ndarray, np.ndarray]:
    """The valid pixels of two same-shaped arrays as float64 ``(N, k)`` pairs (mask and NaN/Inf
    rows dropped); `InputError` naming ``what`` when none is left."""
    a, b = _f64(a, names[0]), _f64(b, names[1])
    _same_image(a, b, what)
    af, bf = _flat_pixels(a, names[0]), _flat_pixels(b, names[1])
    _same_shape(af, bf, what)
    valid = _valid_rows(mask, af.shape[0], af, bf)
    if not valid.any():
        raise InputError(f"{what}: no valid pixel to compare (all masked or NaN)")
    return af[valid], bf[valid]


def _paired_abundances(A_est, A_ref, mask) -> tuple[np.ndarray, np.ndarray]:
    return _paired_pixels(A_est, A_ref, mask, ("A_est", "A_ref"), "abundances")


def abundance_rmse(A_est: np.ndarray, A_ref: np.ndarray, mask: np.ndarray | None = None
                   ) -> tuple[float, np.ndarray]:
    r"""Abundance RMSE in percent (abundance fraction x 100).

    .. math::
        \mathrm{RMSE} = 100 \sqrt{\frac{1}{N p}\sum_{n,j} (\hat a_{nj} - a_{nj})^2},\qquad
        \mathrm{RMSE}_j = 100 \sqrt{\frac{1}{N}\sum_{n} (\hat a_{nj} - a_{nj})^2}

    over the N valid pixels (in ``mask`` and finite in both maps).

    Parameters
    ----------
    A_est, A_ref : ``(rows, cols, p)`` or ``(N, p)`` in matching endmember order.
    mask : optional ``(rows, cols)`` / ``(N,)`` valid-pixel mask.

    Returns
    -------
    overall_percent : float
    per_endmember_percent : ``(p,)`` float64
    """
    a, b = _paired_abundances(A_est, A_ref, mask)
    d2 = (a - b) ** 2
    return float(100.0 * np.sqrt(d2.mean())), 100.0 * np.sqrt(d2.mean(axis=0))


def sre(A_est: np.ndarray, A_ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    r"""Signal-to-reconstruction error of the abundances, in dB.

    .. math:: \mathrm{SRE} = 10 \log_{10} \frac{\lVert A\rVert_F^2}{\lVert A - \hat A\rVert_F^2}

    over the valid pixels (HySUPP's definition: the reference's energy, not its variance, so
    a constant non-zero reference map is fine); ``inf`` for a perfect estimate, ``-inf`` when
    the reference is all zero and the estimate is not.
    """
    a, b = _paired_abundances(A_est, A_ref, mask)
    err = float(np.sum((b - a) ** 2))
    sig = float(np.sum(b * b))
    if err == 0.0:
        return float("inf")
    return float(10.0 * np.log10(sig / err)) if sig > 0 else float("-inf")


def ssim_maps(A_est: np.ndarray, A_ref: np.ndarray, mask: np.ndarray | None = None, *,
              data_range: float = 1.0, sigma: float = 1.5, win_size: int = 11
              ) -> tuple[np.ndarray, float]:
    r"""Structural similarity (Wang et al. 2004) of each abundance map; unitless, <= 1.

    .. math:: \mathrm{SSIM}(x, y) = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
              {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}

    with local statistics under a Gaussian window (``win_size`` 11, ``sigma`` 1.5),
    :math:`C_1 = (0.01 L)^2`, :math:`C_2 = (0.03 L)^2` and data range :math:`L = 1`
    (abundances live in [0, 1]). The SSIM map of each endmember is averaged over the valid
    pixels at least ``win_size // 2`` pixels from the image border (as scikit-image does).
    Invalid pixels (mask False or NaN in either map) are set to 0 in both maps before
    filtering, and left out of the average.

    Parameters
    ----------
    A_est, A_ref : ``(rows, cols, p)`` maps in matching endmember order.
    mask : optional ``(rows, cols)`` valid-pixel mask.

    Returns
    -------
    per_map : ``(p,)`` float64 mean SSIM of each map
    mean : float, the average of ``per_map``
    """
    for a, what in ((A_est, "A_est"), (A_ref, "A_ref")):
        if a is None:
            raise InputError(f"{what}: missing; expected an array")
    x, y = np.asarray(A_est), np.asarray(A_ref)
    _same_shape(x, y, "ssim_maps")
    if x.ndim != 3:
        raise InputError(f"ssim_maps: abundances have shape {x.shape}; expected (rows, cols, p) maps")
    valid, keep = _ssim_region(x, y, mask, win_size)
    radius = win_size // 2
    if not keep.any():
        raise InputError("ssim_maps: no valid pixel away from the border to average over")
    truncate = radius / sigma  # window of exactly win_size pixels
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def filt(img: np.ndarray) -> np.ndarray:  # Gaussian over the two spatial axes
        return ndimage.gaussian_filter(img, sigma=sigma, truncate=truncate, mode="reflect")

    # map by map, in float64: a dozen float64 temporaries of one map, not of all p (2.1 GB for
    # five 2000 x 2000 maps when they were filtered together)
    per = np.empty(x.shape[2])
    for j in range(x.shape[2]):
        xj = np.where(valid, x[..., j].astype(np.float64), 0.0)
        yj = np.where(valid, y[..., j].astype(np.float64), 0.0)
        mx, my = filt(xj), filt(yj)
        vx = filt(xj * xj) - mx * mx
        vy = filt(yj * yj) - my * my
        cxy = filt(xj * yj) - mx * my
        smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        per[j] = smap[keep].mean()
    return per, float(per.mean())


def _ssim_region(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None, win_size: int = 11
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(valid, keep)``, both ``(rows, cols)`` bool, for two ``(rows, cols, p)`` maps:
    ``valid`` pixels are finite in both maps and in ``mask``; ``keep`` are the valid pixels
    SSIM averages over, those at least ``win_size // 2`` from the border (all valid pixels
    when the image is too small for that)."""
    valid = np.isfinite(x).all(axis=-1) & np.isfinite(y).all(axis=-1)
    if mask is not None:
        m = np.asarray(mask, bool)
        if m.shape != x.shape[:2]:
            raise InputError(f"mask: has shape {m.shape}; expected {x.shape[:2]}")
        valid &= m
    keep = valid.copy()
    rows, cols = keep.shape
    radius = win_size // 2
    if rows > 2 * radius and cols > 2 * radius:
        border = np.zeros_like(keep)
        border[radius:rows - radius, radius:cols - radius] = True
        keep &= border
    return valid, keep


# ----------------------------------------------------------------------------------------
# reconstruction
# ----------------------------------------------------------------------------------------
def _mixing_arrays(y: np.ndarray, endmembers, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels ``(N, B)``, abundances ``(N, p)`` (as given, flattened) and float64 endmembers
    ``(p, B)``; `InputError` unless they go together."""
    _same_image(y, a, "reconstruction")
    y, a = _flat_pixels(y, "cube"), _flat_pixels(a, "abundances")
    e = _f64(endmembers, "endmembers")
    if a.shape[0] != y.shape[0] or e.shape != (a.shape[1], y.shape[1]):
        raise InputError(
            f"reconstruction: cube {y.shape}, endmembers {e.shape}, abundances {a.shape} "
            "are inconsistent; expected (N, B), (p, B), (N, p)"
        )
    return y, a, e


def reconstruction_rmse(Y: np.ndarray, E: np.ndarray, A: np.ndarray, mask: np.ndarray | None = None) -> float:
    r"""RMSE between a cube and its linear-mixing reconstruction :math:`\hat Y = A E`.

    :math:`\sqrt{\frac{1}{N B}\sum_{n,b} (y_{nb} - (a_n E)_b)^2}` over the valid pixels, in
    the cube's unit (e.g. reflectance).

    Parameters
    ----------
    Y : ``(rows, cols, bands)`` or ``(N, bands)``; E : ``(p, bands)``;
    A : ``(rows, cols, p)`` or ``(N, p)``; mask : optional valid-pixel mask.
    """
    y, a, e = _mixing_arrays(_f64(Y, "cube"), E, _f64(A, "abundances"))
    valid = _valid_rows(mask, y.shape[0], y, a)
    if not valid.any():
        raise InputError("reconstruction: no valid pixel to compare (all masked or NaN)")
    d = y[valid] - a[valid] @ e
    return float(np.sqrt(np.mean(d * d)))


def psnr(Y: np.ndarray, Y_hat: np.ndarray, data_range: float | None = None,
         mask: np.ndarray | None = None) -> float:
    r"""Peak signal-to-noise ratio of a reconstruction, in dB.

    .. math:: \mathrm{PSNR} = 20 \log_{10} \frac{L}{\mathrm{RMSE}(Y, \hat Y)}

    ``data_range`` L defaults to the peak of the reference, :math:`\max |Y|` over the
    valid pixels (reflectance cubes have no fixed maximum, so the scene's own peak is
    used rather than a nominal 1.0). ``inf`` for a perfect reconstruction.
    """
    y, yh = _paired_pixels(Y, Y_hat, mask, ("cube", "reconstruction"), "psnr")
    peak = float(np.abs(y).max()) if data_range is None else float(data_range)
    err = float(np.sqrt(np.mean((y - yh) ** 2)))
    if err == 0.0:
        return float("inf")
    return float(20.0 * np.log10(peak / err))


# ----------------------------------------------------------------------------------------
# matching
# ----------------------------------------------------------------------------------------
def _split(x: Any, by: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """An estimate given as an ``(E, A)`` pair or as one array whose meaning ``by`` tells."""
    if isinstance(x, tuple | list) and len(x) == 2:
        return x[0], x[1]
    if by == "sad":
        return x, None
    if by == "abundance":
        return None, x
    raise InputError("match_endmembers: by='both' needs (endmembers, abundances) pairs")


MATCH_BLOCK = 65536
"""Pixels per block of the abundance matching cost and `matched_abundance_rmse` (float64
copies of one block only: whole maps were copied three times, 0.8 GB for 2000 x 2000 x 4)."""


def _pixel_blocks(a: np.ndarray, b: np.ndarray, cols_a, cols_b, mask: np.ndarray | None, block: int):
    """Columns ``cols_a`` of ``a (N, k)`` and ``cols_b`` of ``b (N, l)`` at their valid rows (in
    ``mask (N,)`` when given, finite in those columns of both), as float64, ``block`` rows at a time."""
    for i in range(0, a.shape[0], block):
        x, y = a[i:i + block, cols_a].astype(np.float64), b[i:i + block, cols_b].astype(np.float64)
        v = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
        if mask is not None:
            v &= mask[i:i + block]
        yield x[v], y[v]


def _flat_maps(A_est, A_ref, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Two maps' pixels ``(N, p_est)``, ``(N, p_ref)`` as given (no float64 copy), the mask
    ``(N,)`` and each side's live maps (not `dead_maps`); `InputError` for maps of other images,
    a side whose every map is dead or a mask of another size."""
    for x, what in ((A_est, "A_est"), (A_ref, "A_ref")):
        if x is None:
            raise InputError(f"{what}: missing; expected an array")
    a, b = np.asarray(A_est), np.asarray(A_ref)
    _same_image(a, b, "abundances")
    a, b = _flat_pixels(a, "A_est"), _flat_pixels(b, "A_ref")
    if a.shape[0] != b.shape[0]:
        raise InputError(f"abundances: {a.shape[0]} and {b.shape[0]} pixels; expected the same scene")
    live_a, live_b = ~dead_maps(a, mask), ~dead_maps(b, mask)
    if not live_a.any() or not live_b.any():
        raise InputError(f"abundances: every map of the {'estimate' if not live_a.any() else 'reference'} is NaN "
                         "at every valid pixel; expected finite abundances (NaN only at invalid pixels)")
    m = None if mask is None else np.asarray(mask, bool).reshape(-1)
    if m is not None and m.size != a.shape[0]:
        raise InputError(f"mask: has {m.size} pixels; expected {a.shape[0]} to match the arrays")
    return a, b, m, live_a, live_b


def _abundance_cost(A_est, A_ref, mask, block: int = MATCH_BLOCK) -> np.ndarray:
    """``(p_est, p_ref)`` RMSE (abundance units) between every pair of maps, summed ``block``
    pixels at a time in float64."""
    return _cost_of(*_flat_maps(A_est, A_ref, mask), block)


def _cost_of(a, b, m, live_a, live_b, block: int) -> np.ndarray:
    """`_abundance_cost` of `_flat_maps`' pixels, mask and live maps."""
    # a map NaN at every pixel (a failed endmember) has no distance to any other; the pixels
    # are judged on the other maps, and its pairs cost more than any pair of finite maps
    ia, ib = np.flatnonzero(live_a), np.flatnonzero(live_b)
    # ||a_i - b_j||^2 = |a_i|^2 + |b_j|^2 - 2 a_i.b_j, per pixel mean
    count, sa, sb, cross = 0, np.zeros(ia.size), np.zeros(ib.size), np.zeros((ia.size, ib.size))
    for x, y in _pixel_blocks(a, b, ia, ib, m, block):
        count += x.shape[0]
        sa += (x * x).sum(0)
        sb += (y * y).sum(0)
        cross += x.T @ y
    if not count:
        raise InputError("abundances: no valid pixel to compare (all masked or NaN)")
    live = np.sqrt(np.maximum(sa[:, None] + sb[None, :] - 2.0 * cross, 0.0) / count)
    cost = np.full((live_a.size, live_b.size), float(live.max()) + 1.0)
    cost[np.ix_(live_a, live_b)] = live
    return cost


def _assignment(cost: np.ndarray) -> np.ndarray:
    """``perm (p_ref,)`` of the least-cost assignment of rows (estimates) to columns
    (references) of ``cost``; -1 for a reference left without an estimate."""
    rows, cols = linear_sum_assignment(cost)
    perm = np.full(cost.shape[1], -1, dtype=np.int64)
    perm[cols] = rows
    return perm


def match_endmembers(estimate: Any, reference: Any, *, by: str = "abundance",
                     mask: np.ndarray | None = None) -> np.ndarray:
    """Hungarian matching of estimated endmembers to reference ones: the one matcher.

    Argument order: the **estimate first, the reference second**, as in every metric of
    this module (``sad(E_est, E_ref)``); ``by`` and ``mask`` are keyword-only. Passing all by
    name, ``match_endmembers(estimate=E_hat, reference=E, by="sad")``, reads unambiguously.

    Parameters
    ----------
    estimate, reference : each either an ``(endmembers, abundances)`` pair (either item may
        be None) or one array: abundances ``(rows, cols, p)`` / ``(N, p)`` when
        ``by="abundance"``, spectra ``(p, bands)`` when ``by="sad"``.
    by : the cost minimised by the assignment (`scipy.optimize.linear_sum_assignment`):
        ``"abundance"`` - RMSE between abundance maps; ``"sad"`` - spectral angle between
        spectra; ``"both"`` - abundance RMSE (fraction, in [0, 1]) + SAD / 90 degrees.
    mask : optional valid-pixel mask for the abundance cost.

    Returns
    -------
    perm : ``(p_ref,)`` int array; ``perm[j]`` is the estimated endmember matched to
        reference endmember ``j``, so ``E_est[perm]`` / ``A_est[..., perm]`` line up with
        the reference (and ``sad(E_est[perm], E_ref)`` gives the matched angles). When there
        are fewer estimates than references the unmatched references get ``-1``; surplus
        estimates are left out.
    """
    if by not in ("abundance", "sad", "both"):
        raise ParameterError("by", by, "expected 'abundance', 'sad' or 'both'")
    E_est, A_est = _split(estimate, by)
    E_ref, A_ref = _split(reference, by)
    cost = None
    if by in ("abundance", "both"):
        if A_est is None or A_ref is None:
            raise InputError(f"match_endmembers: by={by!r} needs estimated and reference abundances")
        cost = _abundance_cost(A_est, A_ref, mask)
    if by in ("sad", "both"):
        if E_est is None or E_ref is None:
            raise InputError(f"match_endmembers: by={by!r} needs estimated and reference endmembers")
        s = np.nan_to_num(sad_matrix(E_est, E_ref), nan=180.0)
        cost = s if cost is None else cost + s / 90.0
    assert cost is not None
    return _assignment(cost)


def matched_abundance_rmse(A_est: np.ndarray, A_ref: np.ndarray, mask: np.ndarray | None = None, *,
                           block: int = MATCH_BLOCK) -> float:
    """The overall abundance RMSE (percent) of ``A_est`` matched to ``A_ref`` by abundance:
    ``abundance_rmse(A_est[..., perm[hit]], A_ref[..., hit], mask)[0]`` with ``perm =
    match_endmembers(A_est, A_ref, by="abundance", mask=mask)`` and ``hit = perm >= 0``, with
    the same cost, assignment and errors (`InputError`), summed in float64 ``block`` pixels at a
    time, so no whole-map float64 copy is made (values may differ in float64's last digits)."""
    check_range("block", block, low=1, integer=True)  # 0 made empty blocks, read as maps NaN everywhere
    a, b, m, live_a, live_b = _flat_maps(A_est, A_ref, mask)
    perm = _assignment(_cost_of(a, b, m, live_a, live_b, block))
    hit = np.flatnonzero(perm >= 0)
    count, total = 0, 0.0
    for x, y in _pixel_blocks(a, b, perm[hit], hit, m, block):
        count += x.shape[0]
        total += float(((x - y) ** 2).sum())
    if not count:
        raise InputError("abundances: no valid pixel to compare (all masked or NaN)")
    return float(100.0 * np.sqrt(total / (count * hit.size))) if hit.size else float("nan")


# ----------------------------------------------------------------------------------------
# everything at once
# ----------------------------------------------------------------------------------------
RECONSTRUCTION_BLOCK = 16384
"""Pixels per block of `evaluate`'s reconstruction scores (float64 copies of one block only)."""


def _reconstruction_scores(cube, endmembers, abundances, mask, brightness) -> tuple[float, float, float]:
    """``(reconstruction_rmse, psnr_db, sam_deg_mean)`` of ``cube`` against ``A E`` (times
    ``brightness`` per pixel when given), as `reconstruction_rmse`, `psnr` and `sam_map` give
    them, summed over blocks of `RECONSTRUCTION_BLOCK` pixels: the cube and its reconstruction
    are never copied whole in float64 (1.6 GB each for a 1000x1000x200 scene)."""
    y, a, e = _mixing_arrays(np.asarray(cube), endmembers, np.asarray(abundances))
    n = y.shape[0]
    m = None
    if mask is not None:
        m = np.asarray(mask, bool).reshape(-1)
        if m.size != n:
            raise InputError(f"mask: has {m.size} pixels; expected {n} to match the arrays")
    s = None if brightness is None else np.asarray(brightness, np.float64).reshape(-1)
    sq, count, peak = 0.0, 0, 0.0
    angles = np.full(n, np.nan)
    step = max(1, int(RECONSTRUCTION_BLOCK))
    for i in range(0, n, step):
        j = min(i + step, n)
        yb, ab = _f64(y[i:j], "cube"), _f64(a[i:j], "abundances")
        if s is not None:
            ab = ab * s[i:j, None]
        yh = ab @ e  # NaN rows stay NaN and are skipped
        valid = _valid_rows(None if m is None else m[i:j], j - i, yb, ab, yh)
        if not valid.any():
            continue
        yv, yhv = yb[valid], yh[valid]
        d = yv - yhv
        sq += float(np.sum(d * d))
        count += d.size
        peak = max(peak, float(np.abs(yv).max()))
        angles[i:j][valid] = _angles_deg(yv, yhv)
    if count == 0:
        raise InputError("reconstruction: no valid pixel to compare (all masked or NaN)")
    err = float(np.sqrt(sq / count))
    psnr_db = float("inf") if err == 0.0 else float(20.0 * np.log10(peak / err))
    defined = np.isfinite(angles)  # an all-zero pixel (cube or reconstruction) has no angle
    return err, psnr_db, float(angles[defined].mean()) if defined.any() else float("nan")


def evaluate(*, endmembers: np.ndarray | None = None, abundances: np.ndarray | None = None,
             ref_endmembers: np.ndarray | None = None, ref_abundances: np.ndarray | None = None,
             cube: np.ndarray | None = None, mask: np.ndarray | None = None,
             names: Sequence[str] | None = None, align: str = "abundance",
             brightness: np.ndarray | None = None,
             uncertainty: dict[str, np.ndarray] | None = None,
             bands: np.ndarray | None = None) -> dict[str, Any]:
    """Score an unmixing result against a reference, after Hungarian alignment.

    Parameters
    ----------
    endmembers, ref_endmembers : ``(p, bands)`` estimated / reference spectra (optional).
    abundances, ref_abundances : ``(rows, cols, p)`` or ``(N, p)`` (optional; NaN marks
        invalid pixels).
    cube : the scene ``(rows, cols, bands)`` / ``(N, bands)``; with estimated endmembers
        and abundances it adds reconstruction RMSE, PSNR and mean SAM.
    mask : optional valid-pixel mask ``(rows, cols)`` / ``(N,)``.
    names : reference endmember names (defaults ``em1, em2, ...``).
    align : ``"abundance"`` (the default, used when both sides have abundances; otherwise
        falls back to ``"sad"``), ``"sad"``, ``"both"`` or ``"none"`` (keep the given order).
    brightness : optional per-pixel scale ``(rows, cols)`` / ``(N,)`` of the reconstruction,
        for results of the scaled mixing model ``y = s a E`` (abundances on the simplex, a
        brightness ``s`` per pixel): the reconstruction is then ``s a E``.
    uncertainty : optional per-pixel uncertainty of ``abundances`` (a refinement's), any of
        ``std``, ``q05``, ``q95`` shaped like them; with reference abundances it adds the
        `unmixgen.evaluate.uncertainty.interval_scores` (``coverage90``, ...).
    bands : optional bool ``(bands,)``, the bands spectra are compared on (a scene's good
        bands: on bad bands the estimated endmembers are fitted to whatever the file holds
        there); None compares on all.

    Returns
    -------
    A JSON-ready dict. Keys carry units: ``abundance_rmse_percent`` (+ ``_per_endmember``),
    ``sre_db``, ``ssim_mean`` / ``ssim_per_endmember`` (maps only), ``sad_deg`` (per
    endmember), ``sad_deg_mean``, ``reconstruction_rmse`` (cube units), ``psnr_db``
    (:math:`20 \\log_{10}(L / \\mathrm{RMSE})` with the peak :math:`L = \\max |Y|` of the cube
    over the valid pixels and compared bands, as `psnr` with ``data_range=None``),
    ``sam_deg_mean`` (the mean of `sam_map` over the pixels where the angle is defined; an
    all-zero pixel has none); ``reconstruction_note`` instead of those three when an estimated
    spectrum has no finite band; plus ``alignment`` (what was matched on), ``permutation``
    (``perm[j]`` = estimated index for reference ``j``, -1 when unmatched),
    ``names`` and ``per_endmember`` (one row per matched reference endmember);
    ``sad_undefined`` names the reference endmembers whose matched spectra have no angle (one
    of them all zero; ``sad_deg_mean`` is then NaN); ``abundance_undefined`` names those whose
    matched maps (either side) are NaN at every valid pixel: their per-endmember scores are NaN,
    the others are scored on their own, and the overall ``abundance_rmse_percent``, ``sre_db``
    and ``ssim_mean`` are NaN (the pooled uncertainty scores give way to an
    ``uncertainty_note``); `InputError` when every map of one side is so;
    ``unmatched_reference`` (names) and ``unmatched_estimate_index`` when one side has more
    endmembers: those are left out of every score. Pieces
    that cannot be computed from what was given are absent. Bands where the estimated or
    the reference endmembers are not finite, or outside ``bands``, are left out of SAD and
    the reconstruction (``bands_compared`` then says how many were used).
    """
    if align not in ("abundance", "sad", "both", "none"):
        raise ParameterError("align", align, "expected 'abundance', 'sad', 'both' or 'none'")
    if cube is not None:  # a DataArray laid out by its dim names, bands last
        cube = variable_of(cube, "cube")  # a Dataset's one variable with a spectral dim
        cube = bands_last(cube, max(1, np.ndim(cube) - 1), "cube")
    _check_count(endmembers, abundances, "endmembers")
    _check_count(ref_endmembers, ref_abundances, "ref_endmembers")
    have_a = abundances is not None and ref_abundances is not None
    have_e = endmembers is not None and ref_endmembers is not None
    p_est = (np.shape(endmembers)[0] if endmembers is not None
             else np.shape(abundances)[-1] if abundances is not None else None)
    p_ref = (np.shape(ref_endmembers)[0] if ref_endmembers is not None
             else np.shape(ref_abundances)[-1] if ref_abundances is not None else None)
    out: dict[str, Any] = {}
    if endmembers is not None and np.ndim(endmembers) == 2:
        # bands where the estimate is not defined (bad bands, bands its library did not cover)
        # are left out of the spectral comparisons rather than turning them into NaN
        have = np.isfinite(np.asarray(endmembers, np.float64)).all(axis=0)
        if ref_endmembers is not None and np.shape(ref_endmembers)[-1] == have.size:
            have &= np.isfinite(np.asarray(ref_endmembers, np.float64)).all(axis=0)
        if bands is not None:
            if np.shape(bands) != have.shape:
                raise InputError(f"bands: has shape {np.shape(bands)}; expected {have.shape}, one flag per band "
                                 "of the endmembers")
            have &= np.asarray(bands, bool)
        if have.any() and not have.all():
            endmembers = np.asarray(endmembers)[:, have]
            if ref_endmembers is not None and np.shape(ref_endmembers)[-1] == have.size:
                ref_endmembers = np.asarray(ref_endmembers)[:, have]
            if cube is not None and np.shape(cube)[-1] == have.size:
                cube = np.asarray(cube)[..., have]
            out["bands_compared"] = int(have.sum())
    if names is not None and p_ref is not None and len(names) != p_ref:
        raise InputError(f"names: {len(names)} names for {p_ref} reference endmembers")
    if have_a:  # no map to score or match on: a failed result (or truth), not a score of NaN
        _some_map_finite(abundances, mask, "abundances")
        _some_map_finite(ref_abundances, mask, "ref_abundances")

    # -- alignment ---------------------------------------------------------------------
    if have_a or have_e:
        how = align
        if how == "abundance" and not have_a:
            how = "sad"
        if how == "sad" and not have_e:
            how = "abundance"
        if how == "both" and not (have_a and have_e):
            how = "abundance" if have_a else "sad"
        if how == "none":
            if p_est != p_ref:
                raise InputError(f"align='none' needs as many estimated ({p_est}) as reference ({p_ref}) endmembers")
            perm = np.arange(p_ref)
        else:
            perm = match_endmembers((endmembers, abundances), (ref_endmembers, ref_abundances),
                                    by=how, mask=mask)
        matched = np.flatnonzero(perm >= 0)
        sel = perm[matched]
        out["alignment"] = how
        out["permutation"] = perm
        out["n_endmembers_est"] = int(p_est)
        out["n_endmembers_ref"] = int(p_ref)
        nm = list(names) if names is not None else [f"em{j + 1}" for j in range(p_ref)]
        out["names"] = nm
        rows: list[dict[str, Any]] = [{"name": nm[j], "reference_index": int(j), "estimate_index": int(perm[j])}
                                      for j in matched]
        # endmembers of one side without a partner: not in any score below, so named here
        if matched.size < p_ref:
            out["unmatched_reference"] = [nm[j] for j in np.flatnonzero(perm < 0)]
        if sel.size < p_est:
            out["unmatched_estimate_index"] = np.setdiff1d(np.arange(p_est), sel)

        if have_a:
            A_e = np.asarray(abundances)[..., sel]
            A_r = np.asarray(ref_abundances)[..., matched]
            # a map NaN at every pixel (either side) has no score; the others are scored on
            # their own, and the overall scores are null rather than the others' average (which
            # would rate a failed endmember as well as the good ones)
            dead = dead_maps(A_e, mask) | dead_maps(A_r, mask)
            live = ~dead
            per = np.full(dead.size, np.nan)
            overall = sre_db = float("nan")
            if live.any():
                overall, per[live] = abundance_rmse(A_e[..., live], A_r[..., live], mask)
                sre_db = sre(A_e[..., live], A_r[..., live], mask)
            if dead.any():
                overall = sre_db = float("nan")
                out["abundance_undefined"] = [nm[j] for j in matched[dead]]
            out["abundance_rmse_percent"] = overall
            out["abundance_rmse_percent_per_endmember"] = per
            out["sre_db"] = sre_db
            for r, v in zip(rows, per, strict=True):
                r["abundance_rmse_percent"] = v
            if uncertainty:
                from .uncertainty import interval_scores

                given = {k: v for k, v in uncertainty.items() if v is not None}
                if set(given) - {"std", "q05", "q95"}:
                    raise ParameterError("uncertainty", sorted(given), "expected keys among 'std', 'q05', 'q95'")
                for k, v in given.items():
                    if np.shape(v) != np.shape(abundances):
                        raise InputError(f"abundances_{k}: shape {np.shape(v)}; expected {np.shape(abundances)} "
                                         "like the abundances")
                lo, hi = np.asarray(given.get("q05")), np.asarray(given.get("q95"))
                if lo.dtype.kind in "iuf" and hi.dtype.kind in "iuf":  # others: `interval_scores` refuses them
                    crossed = int(np.count_nonzero(lo > hi + 1e-6))  # NaN compares False: masked pixels pass
                    if crossed:
                        raise InputError(f"abundances_q05 is above abundances_q95 at {crossed} entries; expected "
                                         "the 5 % quantile at or below the 95 % one (arrays swapped?)")
                scores = (interval_scores(A_e[..., live], A_r[..., live], mask=mask,
                                          **{k: np.asarray(v)[..., sel][..., live] for k, v in given.items()})
                          if live.any() else {})
                per_live = scores.pop("coverage90_per_endmember", None)
                if dead.any():  # the pooled scores would leave the undefined maps out unsaid
                    scores = {"uncertainty_note": "not pooled over the endmembers: the maps of "
                                                  f"{', '.join(out['abundance_undefined'])} are NaN at every pixel"}
                out.update(scores)
                if per_live is not None:
                    per_cov = np.full(dead.size, np.nan)
                    per_cov[live] = per_live
                    for r, v in zip(rows, per_cov, strict=True):
                        r["coverage90"] = v
            # SSIM is absent when no valid pixel lies away from the border (a few edge pixels)
            if np.ndim(A_e) == 3 and live.any():  # (copies of the live maps only when some are dead)
                A_e_live, A_r_live = (A_e, A_r) if live.all() else (A_e[..., live], A_r[..., live])
                if _ssim_region(A_e_live, A_r_live, mask)[1].any():
                    ss = np.full(dead.size, np.nan)
                    ss[live], ss_mean = ssim_maps(A_e_live, A_r_live, mask)
                    out["ssim_per_endmember"] = ss
                    out["ssim_mean"] = float("nan") if dead.any() else ss_mean
                    for r, v in zip(rows, ss, strict=True):
                        r["ssim"] = v
        if have_e:
            s = sad(np.asarray(endmembers)[sel], np.asarray(ref_endmembers)[matched])
            out["sad_deg"] = s
            # an all-zero spectrum has no angle: a mean of the others would rate a failed
            # extraction as well as its good endmembers
            out["sad_deg_mean"] = float(np.mean(s))
            if not np.isfinite(s).all():
                out["sad_undefined"] = [nm[j] for j, v in zip(matched, s, strict=True) if not np.isfinite(v)]
            for r, v in zip(rows, s, strict=True):
                r["sad_deg"] = v
        out["per_endmember"] = rows

    # -- reconstruction ----------------------------------------------------------------
    rec_blocked = (cube is not None and endmembers is not None and abundances is not None
                   and not np.isfinite(np.asarray(endmembers, np.float64)).all())
    if rec_blocked:
        # an estimated spectrum with no finite band (a failed endmember): the reconstruction
        # is NaN at every pixel, so it is absent rather than aborting the other scores
        out["reconstruction_note"] = ("not computed: an estimated endmember has no finite band, so the "
                                      "reconstruction is undefined at every pixel")
    elif cube is not None and endmembers is not None and abundances is not None:
        if brightness is not None:
            want = np.shape(abundances)[:-1]
            if np.shape(brightness) != want:
                raise InputError(f"reconstruction: brightness has shape {np.shape(brightness)}; expected {want}, "
                                 "one value per pixel of the abundances")
        rmse_, psnr_, sam_ = _reconstruction_scores(cube, endmembers, abundances, mask, brightness)
        out["reconstruction_rmse"] = rmse_
        out["psnr_db"] = psnr_
        out["sam_deg_mean"] = sam_
    if "per_endmember" in out:
        out["per_endmember"] = [{k: jsonable(v) for k, v in r.items()} for r in out["per_endmember"]]
    return {k: jsonable(v) for k, v in out.items()}


def _fmt(v: Any, width: int = 10) -> str:
    if v is None:
        return "-".rjust(width)
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:{width}.3e}"
        return f"{v:{width}.4f}"
    return str(v).rjust(width)


def format_table(result: dict[str, Any]) -> str:
    """A plain-text, aligned rendering of an `evaluate` result (for ``unmixgen evaluate``)."""
    scalars = [
        ("abundance RMSE (%)", "abundance_rmse_percent"),
        ("SRE (dB)", "sre_db"),
        ("SSIM (mean)", "ssim_mean"),
        ("SAD (deg, mean)", "sad_deg_mean"),
        ("reconstruction RMSE", "reconstruction_rmse"),
        ("PSNR (dB)", "psnr_db"),
        ("SAM (deg, mean)", "sam_deg_mean"),
        ("90 % interval coverage", "coverage90"),
        ("90 % interval width", "interval90_width_mean"),
        ("Spearman(std, |error|)", "spearman_std_abs_error"),
        ("CRPS (Gaussian)", "crps_gaussian_mean"),
    ]
    lines = []
    if "alignment" in result:
        lines.append(f"aligned on {result['alignment']}: {result.get('n_endmembers_est')} estimated, "
                     f"{result.get('n_endmembers_ref')} reference endmembers")
    label_w = max(len(lbl) for lbl, _ in scalars)
    for label, key in scalars:
        if key in result:
            v = result[key]
            lines.append(f"{label.ljust(label_w)}  {_fmt(v).strip()}")
    if "reconstruction_note" in result:
        lines.append(f"reconstruction: {result['reconstruction_note']}")
    if "uncertainty_note" in result:
        lines.append(f"uncertainty: {result['uncertainty_note']}")
    by = result.get("coverage90_by_abundance")
    if by:
        parts = [f"{b['abundance_from']:g}-{b['abundance_to']:g}: "
                 f"{'-' if b['coverage90'] is None else format(b['coverage90'], '.3f')} ({b['pixels']})" for b in by]
        lines.append("90 % coverage by true abundance (values): " + ", ".join(parts))
    rows = result.get("per_endmember") or []
    if rows:
        # the estimate as its result names it; a bare index is 0-based
        est = "estimate_name" if all("estimate_name" in r for r in rows) else "estimate_index"
        cols = [("estimate", est), ("SAD (deg)", "sad_deg"),
                ("RMSE (%)", "abundance_rmse_percent"), ("SSIM", "ssim"), ("cover 90", "coverage90")]
        cols = [(h, k) for h, k in cols if any(k in r for r in rows)]
        name_w = max(8, *(len(str(r["name"])) for r in rows))
        # names are as wide as they are; numbers fit in 10
        widths = [max(10, len(h), *(len(str(r[k])) for r in rows) if k == "estimate_name" else ())
                  for h, k in cols]
        lines.append("")
        lines.append("endmember".ljust(name_w) + "  " + "  ".join(h.rjust(w) for (h, _), w in zip(cols, widths, strict=True)))
        for r in rows:
            lines.append(str(r["name"]).ljust(name_w) + "  " +
                         "  ".join(_fmt(r.get(k), w) for (_, k), w in zip(cols, widths, strict=True)))
    if result.get("sad_undefined"):
        lines.append("no angle (a spectrum of zeros or of no finite value), so no mean SAD: "
                     + ", ".join(result["sad_undefined"]))
    if result.get("abundance_undefined"):
        lines.append("map NaN (or Inf) at every pixel, so no overall abundance scores: "
                     + ", ".join(result["abundance_undefined"]))
    left = [f"reference {n}" for n in result.get("unmatched_reference") or []]
    est = result.get("unmatched_estimate") or [f"#{i}" for i in result.get("unmatched_estimate_index") or []]
    left += [f"estimate {n}" for n in est]
    if left:
        lines.append("not matched (left out of the scores): " + ", ".join(left))
    return "\n".join(lines)
