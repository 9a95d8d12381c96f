"""Where the spectra prior diffuses: one fixed wavelength grid for every sensor, with a
good-band mask and brightness normalisation.

A spectrum ``s`` on its own wavelengths is linearly interpolated onto the grid
(`GRID_NM`, 256 points from 385 to 2505 nm); grid points outside the sensor's range are
*unobserved* (flagged in a mask, holding the edge value; the prior fills them in). Brightness is divided out:
``n = s / mean_good(s)`` with the mean over the grid's good bands (outside the
atmospheric water bands 1340-1450 and 1790-1960 nm, where scene sensors have no usable
bands) that the sensor observes. The diffusion variable is ``x = (n - 1) / scale`` with
``scale`` the standard deviation of the training values, so the data have about unit
variance like the noise.

Back on a sensor's bands, grid spectra are resampled with Gaussian spectral response
functions (`unmixgen.simulate.spectral_response`), band widths from the sensor's FWHM or,
when unknown, its band spacing.

Arrays: spectra ``(n, bands)`` float32 numpy; diffusion tensors ``(n, 1, 256)``.
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from ...simulate.spectral_response import gaussian_srf_matrix

GRID_NM = np.linspace(385.0, 2505.0, 256)
WATER_BANDS_NM = ((1340.0, 1450.0), (1790.0, 1960.0))


def good_band_mask(grid: np.ndarray = GRID_NM) -> np.ndarray:
    """(G,) bool: grid points outside the atmospheric water bands."""
    good = np.ones(grid.shape, bool)
    for lo, hi in WATER_BANDS_NM:
        good &= ~((grid >= lo) & (grid <= hi))
    return good


def band_widths(wavelengths: np.ndarray) -> np.ndarray:
    """FWHM (nm) taken as the local band spacing, for sensors that do not give theirs."""
    wl = np.asarray(wavelengths, np.float64)
    return np.maximum(np.gradient(wl), 1e-3) if wl.size > 1 else np.ones(1)


class SpectralGrid:
    """Maps spectra between a sensor's bands and the normalised grid representation.

    Parameters
    ----------
    scale : standard deviation of the training values of ``n - 1`` (see module doc).
    """

    def __init__(self, scale: float = 1.0):
        self.grid = GRID_NM
        self.good = good_band_mask()
        self.scale = float(scale)

    def config(self) -> dict:
        return {"name": "grid", "start_nm": float(self.grid[0]), "stop_nm": float(self.grid[-1]),
                "points": int(self.grid.size), "water_bands_nm": [list(w) for w in WATER_BANDS_NM],
                "scale": self.scale}

    def observed(self, wavelengths: np.ndarray) -> np.ndarray:
        """(G,) bool: grid points inside the sensor's wavelength range."""
        wl = np.asarray(wavelengths, np.float64)
        return (self.grid >= wl[0]) & (self.grid <= wl[-1])

    def to_grid(self, spectra: np.ndarray, wavelengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spectra (n, bands) on ``wavelengths`` (nm) -> ``(x (n, G), brightness (n,),
        observed (G,))``; unobserved grid points hold the nearest observed value (so band
        responses at the sensor's edges stay right; the prior treats them as unknown).

        Raises `InputError` when the sensor covers fewer than 8 good grid points.
        """
        s = np.asarray(spectra, np.float64)
        wl = np.asarray(wavelengths, np.float64)
        obs = self.observed(wl)
        use = obs & self.good
        if use.sum() < 8:
            raise InputError(f"wavelengths {wl[0]:.0f}-{wl[-1]:.0f} nm cover {int(use.sum())} points of the "
                             f"spectra prior's grid ({self.grid[0]:.0f}-{self.grid[-1]:.0f} nm); expected "
                             "a sensor inside that range covering at least 8")
        g = np.stack([np.interp(self.grid, wl, row) for row in s]) if s.size else np.zeros((0, self.grid.size))
        bright = np.maximum(g[:, use].mean(axis=1), 1e-6)
        x = (g / bright[:, None] - 1.0) / self.scale  # np.interp holds the edge values outside
        return x.astype(np.float32), bright.astype(np.float32), obs

    def srf(self, wavelengths: np.ndarray, fwhm: np.ndarray | None = None) -> np.ndarray:
        """(G, bands) weights taking grid spectra to the sensor's bands (Gaussian SRFs)."""
        wl = np.asarray(wavelengths, np.float64)
        f = band_widths(wl) if fwhm is None else np.asarray(fwhm, np.float64)
        # bands reaching past the grid's ends see the edge value there (one extra node per
        # side, folded back onto the edge row)
        lo = min(self.grid[0], float(np.min(wl - 3 * f))) - 1.0
        hi = max(self.grid[-1], float(np.max(wl + 3 * f))) + 1.0
        ext = np.concatenate([[lo], self.grid, [hi]])
        w = gaussian_srf_matrix(ext, wl, f, min_coverage=0.5)
        w[1] += w[0]
        w[-2] += w[-1]
        return w[1:-1].astype(np.float32)

    def from_grid(self, x: np.ndarray, brightness: np.ndarray, srf: np.ndarray) -> np.ndarray:
        """Grid values x (n, G) -> spectra (n, bands) on the sensor of ``srf``."""
        n = 1.0 + self.scale * np.asarray(x, np.float64)
        return ((n * np.asarray(brightness, np.float64)[:, None]) @ srf).astype(np.float32)
