"""Forward mixing models and sensor noise.

All functions work on whole arrays with any leading shape: abundances ``A`` are
``(..., p)`` (a scene ``(rows, cols, p)``, a pixel list ``(N, p)`` or a batch), endmembers
``E`` are ``(p, bands)`` (rows are spectra) and the result is ``(..., bands)`` float32.
A pixel's linear model is ``y = a @ E``.

Models
------
- `linear`: ``y = a @ E``.
- `extended_linear` (ELMM): ``y = sum_k s_k a_k e_k`` with a per-pixel, per-endmember
  scaling ``s`` (illumination / topography / brightness variability).
- `bilinear`: second-order (multiple-scattering) terms ``e_i * e_j`` (element-wise) for
  every pair ``i < j``, in the Fan or the Nascimento form.
- `linear_variable`: a different endmember matrix for every pixel, ``E (..., p, bands)``.

Noise
-----
`add_noise` adds zero-mean Gaussian noise at a given signal-to-noise ratio, defined over
the whole cube as ``SNR_dB = 10 log10(sum(clean**2) / sum(noise**2))``; `snr_db` measures it.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ParameterError

__all__ = [
    "add_noise",
    "bilinear",
    "extended_linear",
    "linear",
    "linear_variable",
    "snr_db",
]


def _as_f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _check_ae(A: np.ndarray, E: np.ndarray) -> None:
    if E.ndim != 2:
        raise InputError(f"E: endmembers have shape {E.shape}; expected (p, bands)")
    if A.shape[-1] != E.shape[0]:
        raise InputError(
            f"A: abundances have {A.shape[-1]} endmembers (last axis) but E has {E.shape[0]} rows; "
            "expected the same number"
        )


def linear(A, E) -> np.ndarray:
    """Linear mixing ``y = a @ E``.

    Parameters
    ----------
    A : array (..., p)
        Abundances.
    E : array (p, bands)
        Endmember spectra (rows).

    Returns
    -------
    ndarray (..., bands) float32
    """
    A, E = _as_f32(A), _as_f32(E)
    _check_ae(A, E)
    return A @ E


def extended_linear(A, E, scales) -> np.ndarray:
    """Extended linear mixing model (ELMM): ``y = sum_k scales_k a_k e_k``.

    Parameters
    ----------
    A : array (..., p)
        Abundances.
    E : array (p, bands)
        Reference endmember spectra.
    scales : array (..., p) or broadcastable to it
        Per-pixel, per-endmember positive scaling factors (1 = the reference spectrum).

    Returns
    -------
    ndarray (..., bands) float32
    """
    A, E = _as_f32(A), _as_f32(E)
    _check_ae(A, E)
    s = np.broadcast_to(_as_f32(scales), A.shape)
    return (A * s) @ E


def _pairs(p: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(p, k=1)


def bilinear(A, E, gamma=1.0, kind: str = "fan") -> np.ndarray:
    """Bilinear mixing: linear part plus pairwise interaction spectra ``e_i * e_j``.

    ``"fan"``:  ``y = a @ E + sum_{i<j} gamma_ij a_i a_j (e_i * e_j)`` (Fan et al. 2009;
    with ``gamma`` in [0, 1] this is the generalised bilinear model).

    ``"nascimento"``: the interaction coefficients ``b_ij = gamma_ij a_i a_j`` are treated as
    extra abundances of the virtual endmembers ``e_i * e_j`` and all coefficients are
    renormalised to sum to one: ``y = (a @ E + sum b_ij e_i e_j) / (1 + sum b_ij)``
    (Nascimento and Bioucas-Dias 2009).

    Parameters
    ----------
    A : array (..., p)
        Abundances.
    E : array (p, bands)
        Endmember spectra (reflectance, so products stay in [0, 1]).
    gamma : float or array (..., p*(p-1)/2)
        Interaction strength per pixel and pair; pairs ordered as ``np.triu_indices(p, 1)``.
    kind : ``"fan"`` or ``"nascimento"``

    Returns
    -------
    ndarray (..., bands) float32
    """
    A, E = _as_f32(A), _as_f32(E)
    _check_ae(A, E)
    if kind not in ("fan", "nascimento"):
        raise ParameterError("kind", kind, "expected 'fan' or 'nascimento'")
    i, j = _pairs(E.shape[0])
    b = A[..., i] * A[..., j] * _as_f32(gamma)  # (..., n_pairs)
    y = A @ E + b @ (E[i] * E[j])
    if kind == "nascimento":
        y /= (1.0 + b.sum(axis=-1, keepdims=True))
    return y


def linear_variable(A, E) -> np.ndarray:
    """Linear mixing with per-pixel endmembers: ``y[n] = A[n] @ E[n]``.

    Parameters
    ----------
    A : array (..., p)
        Abundances.
    E : array (..., p, bands)
        One endmember matrix per pixel (leading shape broadcastable with ``A``'s).

    Returns
    -------
    ndarray (..., bands) float32
    """
    A, E = _as_f32(A), _as_f32(E)
    if E.ndim < 2 or E.shape[-2] != A.shape[-1]:
        raise InputError(f"E: endmembers have shape {E.shape}; expected (..., {A.shape[-1]}, bands)")
    return np.matmul(A[..., None, :], E)[..., 0, :]


def snr_db(clean, noisy) -> float:
    """Measured SNR in dB over the whole array: ``10 log10(sum clean^2 / sum (noisy-clean)^2)``.

    Both sums run over the same values: those that are not NaN in either array (a value
    NaN in one array only, e.g. a pixel masked in the noisy cube, is left out of both).
    """
    clean, noisy = np.asarray(clean).reshape(-1), np.asarray(noisy).reshape(-1)
    if clean.shape != noisy.shape:
        raise InputError(f"snr_db: {clean.size} clean values but {noisy.size} noisy ones; expected the same shape")
    signal = error = 0.0
    for i, j in _chunks(clean.size):  # float64 a chunk at a time, never the whole cube
        c, n = clean[i:j].astype(np.float64), noisy[i:j].astype(np.float64)
        both = ~(np.isnan(c) | np.isnan(n))  # the signal of a value with no error is not counted
        c, d = c[both], n[both] - c[both]
        signal += float(np.sum(c * c))
        error += float(np.sum(d * d))
    return float(10.0 * np.log10(signal / error))


CHUNK = 1 << 20
"""Values per chunk of the float64 sums of `add_noise` and `snr_db`."""


def _chunks(n: int, per_item: int = 1):
    """``(start, stop)`` blocks of ``n`` items of ``per_item`` values each, ``CHUNK`` values a block."""
    step = max(1, int(CHUNK) // max(1, per_item))
    return ((i, min(i + step, n)) for i in range(0, n, step))


def add_noise(clean, snr_db: float | None, rng=None, kind: str = "white", band_std=None) -> np.ndarray:
    """Add zero-mean Gaussian noise at a signal-to-noise ratio over the whole cube.

    The SNR is defined globally, ``SNR_dB = 10 log10(sum(clean**2) / E[sum(noise**2)])``, so
    the noise energy is ``sum(clean**2) / 10**(SNR_dB / 10)``. The realised SNR differs from
    the requested one only by sampling error (about ``4.3 * sqrt(2 / n)`` dB for ``n``
    values: < 0.01 dB for a 64 x 80 x 200 cube).

    Parameters
    ----------
    clean : array (..., bands)
        Noise-free signal (e.g. reflectance).
    snr_db : float or None
        Target SNR in dB; ``None`` or ``inf`` returns a float32 copy of ``clean``.
    rng : numpy Generator, int seed or None
        Source of randomness; a seed makes the result deterministic.
    kind : ``"white"`` or ``"signal"``
        ``"white"``: i.i.d. noise with the same variance everywhere.
        ``"signal"``: signal-dependent (Poisson-like, shot noise) noise whose variance is
        proportional to the signal, ``var = c * max(clean, 0)``, with ``c`` chosen to reach
        the same global SNR.
    band_std : array (bands,) or None
        Relative noise standard deviation per band (positive, finite; its scale does not
        matter): the noise of band ``b`` is multiplied by ``band_std[b]`` before one factor
        sets the global SNR. Real sensors' noise differs 10-50x between bands (the detector's
        ends, the water absorptions); None: the same in every band.

    Returns
    -------
    ndarray, same shape as ``clean``, float32
    """
    clean = _as_f32(clean)
    if kind not in ("white", "signal"):
        raise ParameterError("kind", kind, "expected 'white' or 'signal'")
    if snr_db is not None and np.isnan(snr_db):
        raise ParameterError("snr_db", snr_db, "expected a number of dB (None or inf: no noise)")
    if snr_db is None or np.isinf(snr_db):
        return clean.copy()
    bands = clean.shape[-1] if clean.ndim else 1
    if band_std is not None:
        band_std = np.asarray(band_std, np.float64).reshape(-1)
        if band_std.size != bands or not np.all(np.isfinite(band_std)) or (band_std <= 0).any():
            raise ParameterError("band_std", f"{band_std.size} values",
                                 f"expected {bands} positive finite values, one per band")
        band_std = band_std / band_std.max()  # only the shape counts: 1e200 must not square to inf
    rng = np.random.default_rng(rng)
    rows = clean.reshape(-1, bands)
    weight = np.ones(bands) if band_std is None else band_std**2  # relative noise variance per band
    # float64 sums a block of rows at a time: whole-cube float64 copies took 8 GB for 1000x1000x200
    power = 0.0
    counts = np.zeros(bands)  # finite values per band (white) or their positive sum (signal)
    levels = np.zeros(bands)
    for i, j in _chunks(len(rows), bands):
        c = rows[i:j].astype(np.float64)
        finite = np.isfinite(c)
        c = np.where(finite, c, 0.0)
        power += float(np.sum(c * c))
        counts += finite.sum(0)
        levels += np.maximum(c, 0.0).sum(0)
    if power <= 0:  # no noise level makes a ratio to zero signal power
        raise ParameterError("snr_db", snr_db, "the signal is zero everywhere, so no noise level gives this "
                             "SNR; expected a non-zero signal, or no noise")
    noise_energy = power / 10.0 ** (float(snr_db) / 10.0)
    out = rng.standard_normal(clean.shape, dtype=np.float32)  # the noise, then the noisy cube
    noise = out.reshape(-1, bands)
    if kind == "white":
        noise *= np.sqrt(noise_energy / max(float(counts @ weight), 1e-300) * weight).astype(np.float32)
    else:
        if levels.sum() <= 0:
            raise InputError("clean: signal-dependent noise needs a signal with positive values")
        scale = np.sqrt(noise_energy / max(float(levels @ weight), 1e-300) * weight)
        for i, j in _chunks(len(rows), bands):
            c = rows[i:j].astype(np.float64)
            level = np.where(np.isfinite(c), np.maximum(c, 0.0), 0.0)
            noise[i:j] *= (np.sqrt(level) * scale).astype(np.float32)
    out += clean
    return out
