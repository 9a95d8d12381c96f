"""Gaussian random fields by spectral synthesis, the one generator of the package.

A stationary Gaussian random field on a periodic ``rows x cols`` grid with power spectrum
``S(f)`` is white noise filtered in the Fourier domain by the amplitude ``sqrt(S(f))``::

    z = IRFFT2(RFFT2(w) * amplitude),    w i.i.d. standard normal

(`spectral_filter`; the fields wrap around the edges). Amplitudes live on the half-plane
grid of `numpy.fft.rfft2`, shape ``(rows, cols // 2 + 1)`` (optionally with trailing axes,
e.g. one spectrum per channel), at the frequencies of `rfft_frequencies` in cycles per
pixel. `gaussian_random_fields` draws the noise from a numpy ``Generator`` in the layout the
caller asks for, so a batch of fields is one draw and one pair of FFTs.

Spectra used in the package:

- `power_law_amplitude`: ``S ~ 1 / (|f|^2 + f0^2)^(beta/2)``, the procedural abundance maps
  (`unmixgen.simulate.procedural`);
- `gaussian_amplitude`: the transfer function of a Gaussian blur, i.e. white noise blurred
  by a Gaussian of ``sigma`` pixels: the smooth endmember-scaling fields of
  `unmixgen.simulate.scene` (and the soft region borders of the procedural maps);
- a spectrum fitted to training maps: `unmixgen.evaluate.baselines.GaussianFieldBaseline`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "gaussian_amplitude",
    "gaussian_random_fields",
    "power_law_amplitude",
    "rfft_frequencies",
    "spectral_filter",
    "standardize",
]


def rfft_frequencies(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (cycles per pixel) of the `numpy.fft.rfft2` grid of a ``rows x cols`` image.

    Returns
    -------
    fy : ndarray (rows, 1)
    fx : ndarray (1, cols // 2 + 1)
        Broadcast together they give the ``(rows, cols // 2 + 1)`` half-plane grid.
    """
    return np.fft.fftfreq(rows)[:, None], np.fft.rfftfreq(cols)[None, :]


def power_law_amplitude(rows: int, cols: int, beta: float, f0: float | None = None) -> np.ndarray:
    """Amplitude ``(|f|^2 + f0^2)^(-beta/4)`` of a power-law spectrum, zero at ``f = 0``.

    The power spectrum is ``S = (|f|^2 + f0^2)^(-beta/2)``: ``beta = 2`` is rough,
    ``beta = 4`` very smooth. ``f0`` (cycles per pixel; default ``1 / max(rows, cols)``)
    flattens the spectrum below the scene size so the largest scales do not dominate, and
    the zero DC term gives fields of zero mean.

    Returns
    -------
    ndarray (rows, cols // 2 + 1) float64
    """
    fy, fx = rfft_frequencies(rows, cols)
    if f0 is None:
        f0 = 1.0 / max(rows, cols)
    amp = (fy**2 + fx**2 + f0**2) ** (-beta / 4.0)
    amp[0, 0] = 0.0
    return amp


def gaussian_amplitude(rows: int, cols: int, sigma: float) -> np.ndarray:
    """Transfer function ``exp(-2 pi^2 sigma^2 |f|^2)`` of a periodic Gaussian blur.

    Filtering with it blurs an image with a Gaussian of standard deviation ``sigma`` pixels
    (wrapping around the edges); filtering white noise with it gives a smooth field whose
    correlation length is about ``sigma``.

    Returns
    -------
    ndarray (rows, cols // 2 + 1) float64, 1 at ``f = 0``
    """
    fy, fx = rfft_frequencies(rows, cols)
    return np.exp(-2.0 * (np.pi * sigma) ** 2 * (fy**2 + fx**2))


def spectral_filter(x: np.ndarray, amplitude: np.ndarray, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """``IRFFT2(RFFT2(x) * amplitude)`` over the two spatial ``axes`` of a real array.

    Parameters
    ----------
    x : ndarray, real
        Images; ``axes`` are (rows, cols), the other axes are a batch.
    amplitude : ndarray
        Broadcastable to ``RFFT2(x)``, i.e. ``(..., rows, cols // 2 + 1, ...)`` with the
        half-plane grid at ``axes`` (see `rfft_frequencies`).
    axes : (int, int)

    Returns
    -------
    ndarray, shape of ``x``, float64: periodic convolution of ``x`` with the filter.
    """
    shape = (x.shape[axes[0]], x.shape[axes[1]])
    return np.fft.irfft2(np.fft.rfft2(x, axes=axes) * amplitude, s=shape, axes=axes)


def standardize(z: np.ndarray, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Shift and scale ``z`` in place to mean 0 and standard deviation 1 over ``axes``.

    A constant field (standard deviation 0) becomes all zeros. Returns ``z``.
    """
    z -= z.mean(axis=axes, keepdims=True)
    sd = z.std(axis=axes, keepdims=True)
    z /= np.where(sd > 0, sd, 1.0)
    return z


def gaussian_random_fields(shape: tuple[int, ...], amplitude: np.ndarray, rng: np.random.Generator, *,
                           axes: tuple[int, int] = (0, 1), normalize: bool = False) -> np.ndarray:
    """Gaussian random fields: white noise of ``shape`` filtered by ``amplitude`` over ``axes``.

    Parameters
    ----------
    shape : tuple of int
        Shape of the output and of the white noise drawn, ``rng.standard_normal(shape)``
        (the noise layout fixes which fields a seed gives, so keep it when reproducing).
        ``axes`` are the spatial (rows, cols) axes; the others index fields.
    amplitude : ndarray
        Square root of the power spectrum on the `numpy.fft.rfft2` half-plane grid,
        broadcastable to ``(rows, cols // 2 + 1)`` at ``axes`` (`power_law_amplitude`,
        `gaussian_amplitude`, or fitted per channel).
    rng : numpy Generator
    axes : (int, int)
    normalize : bool
        Standardise every field to mean 0 and standard deviation 1 over ``axes``
        (`standardize`).

    Returns
    -------
    ndarray of ``shape``, float64
    """
    fields = spectral_filter(rng.standard_normal(shape), amplitude, axes)
    return standardize(fields, axes) if normalize else fields
