"""Simulated hyperspectral scenes with exact ground truth, from abundance maps and endmembers.

For each abundance map ``A (rows, cols, p)``:

1. optional sensor: the endmember spectra are resampled to the sensor's bands with Gaussian
   spectral responses (`unmixgen.simulate.spectral_response.resample`, centres + FWHM in nm);
2. optional endmember variability, the scaling form of the extended linear mixing model
   (ELMM): every endmember gets a spatially smooth log-normal scaling field
   ``s_k(x) = exp(std * z_k(x))``, ``z_k`` a Gaussian random field (white noise blurred with
   a Gaussian of ``corr_px`` pixels, periodic, standardised to mean 0 and std 1 over the
   map; `unmixgen.simulate.random_fields`), so ``log s`` has standard deviation ``std``; the per-pixel endmembers are
   ``E(x)_k = s_k(x) e_k`` (``(rows, cols, p, bands)``);
3. mixing: ``clean(x) = A(x) @ E(x)`` (`unmixgen.simulate.mixing`);
4. optional noise at a global SNR in dB, white or signal-dependent (`unmixgen.simulate.mixing.add_noise`):
   ``10 log10(sum clean^2 / E[sum noise^2])`` over the valid pixels (no-data pixels, NaN in every
   map, are NaN in the scene and its truth and count for neither sum).

The abundances are kept as given (in the ELMM the scaling belongs to the endmembers). The
scene is in the units of its spectra (mixing and resampling keep them): ``units`` says which,
None (unknown) unless told. `SimulatedScene.to_scene` gives a `Scene` with `GroundTruth` (reference endmembers
``(p, bands)`` and the abundances) for the writers.

Sources: `load_abundance_maps` (``.npz`` with ``abundances``, a result folder, a
``synthesize`` output folder) and `load_sensor` (a scene file or a CSV of centre, FWHM);
endmembers come from `unmixgen.runs.endmembers.load_endmembers` (result folder, CSV, ``.npz``,
``LIB.mat:name1,name2``, an ENVI spectral library ``.sli``, ``LIB.sli:name1,name2``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, ParameterError, brief, check_range
from ..scene import GroundTruth, Scene
from ..units import UNITS_EXAMPLES, scene_units
from .random_fields import gaussian_amplitude, gaussian_random_fields


@dataclass
class SimulatedScene:
    """One simulated scene and its exact ground truth.

    Attributes
    ----------
    cube : (rows, cols, bands) float32
        The noisy scene (equal to ``clean`` without noise).
    clean : (rows, cols, bands) float32
        Noise-free ``A @ E`` (per pixel).
    abundances : (rows, cols, p) float32
    endmembers : (p, bands) or (rows, cols, p, bands) float32
        Per-pixel endmembers when variability is on.
    reference_endmembers : (p, bands) float32
        The spectra before per-pixel scaling (after sensor resampling).
    wavelengths, fwhm : (bands,) float64 nm or None
    scales : (rows, cols, p) float32 or None
        ELMM scaling factors when variability is on.
    names : list of str
    snr_db : float or None
        Requested SNR (None: no noise).
    units : "reflectance", "radiance", a radiance unit label (``"uW/(cm^2 sr nm)"``) or None
        The spectra's units, so the scene's; None: unknown.
    """

    cube: np.ndarray
    clean: np.ndarray
    abundances: np.ndarray
    endmembers: np.ndarray
    reference_endmembers: np.ndarray
    wavelengths: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    scales: np.ndarray | None = None
    names: list[str] = field(default_factory=list)
    snr_db: float | None = None
    units: str | None = None

    def to_scene(self, name: str | None = None) -> Scene:
        """The noisy cube as a `Scene` with `GroundTruth` (reference endmembers, abundances)."""
        truth = GroundTruth(
            endmembers=self.reference_endmembers,
            abundances=self.abundances,
            names=list(self.names) or None,
            source="simulated",
        )
        return Scene(
            self.cube,
            wavelengths=self.wavelengths,
            fwhm=self.fwhm,
            # no-data pixels (`nodata`) are NaN in every band, the others finite (simulate checks):
            # one band tells them apart without a cube-sized temporary
            mask=~np.isnan(self.cube[..., 0]),
            truth=truth,
            name=name or "simulated",
            units=self.units,
            metadata={"simulated": True},
        )

    def nodata(self, pixels: np.ndarray) -> None:
        """Make ``pixels (rows, cols)`` bool no-data: NaN in the cube, the clean cube, the
        abundances and the per-pixel arrays (spectra, scales), as a scene's invalid pixels."""
        self.cube = np.where(pixels[..., None], np.float32(np.nan), self.cube)
        self.clean = np.where(pixels[..., None], np.float32(np.nan), self.clean)
        self.abundances = np.where(pixels[..., None], np.float32(np.nan), self.abundances)
        if self.endmembers.ndim == 4:
            self.endmembers = np.where(pixels[..., None, None], np.float32(np.nan), self.endmembers)
        if self.scales is not None:
            self.scales = np.where(pixels[..., None], np.float32(np.nan), self.scales)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays written to ``scene_NNN.npz`` (``wavelengths``/``scales``/``units`` when known).

        ``endmembers`` is always the (p, bands) reference set, so the file reads as a scene
        with ground truth everywhere; with variability the per-pixel spectra (rows, cols, p,
        bands) are ``pixel_endmembers``."""
        per_pixel = self.endmembers.ndim == 4
        out = {
            "cube": self.cube,
            "clean": self.clean,
            "abundances": self.abundances,
            "endmembers": self.reference_endmembers,
            **({"pixel_endmembers": self.endmembers} if per_pixel else {}),
            "reference_endmembers": self.reference_endmembers,
            "endmember_names": np.array(self.names or [f"em{i + 1}" for i in range(self.abundances.shape[-1])]),
            "snr_db": np.array(np.nan if self.snr_db is None else self.snr_db),
        }
        if self.wavelengths is not None:
            out["wavelengths"] = self.wavelengths
        if self.fwhm is not None:
            out["fwhm"] = self.fwhm
        if self.scales is not None:
            out["scales"] = self.scales
        if self.units is not None:
            out["units"] = np.array(self.units)
        return out


def smooth_log_normal_scales(shape: tuple[int, int, int], std: float, rng: np.random.Generator,
                             corr_px: float | None = None) -> np.ndarray:
    """Scaling fields ``(rows, cols, p)`` float32: ``exp(std * z)`` with ``z`` a smooth GRF.

    ``z`` is white noise blurred (periodically, by FFT) with a Gaussian of ``corr_px`` pixels
    (default ``max(1, min(rows, cols) / 8)``), then standardised to mean 0 and std 1 per
    field, so ``log(scales)`` has exactly mean 0 and standard deviation ``std`` over the map.
    """
    rows, cols, p = shape
    if corr_px is None:
        corr_px = max(1.0, min(rows, cols) / 8.0)
    amp = gaussian_amplitude(rows, cols, corr_px)[..., None]  # the same blur for every field
    z = gaussian_random_fields((rows, cols, p), amp, rng, axes=(0, 1), normalize=True)
    return np.exp(std * z).astype(np.float32)


def _check_abundances(abundances) -> tuple[np.ndarray, np.ndarray]:
    """``(maps (N, rows, cols, p) float32, nodata (N, rows, cols) bool)``: no-data pixels are NaN
    in every map; a pixel NaN in some maps only, or Inf anywhere, is refused. A copy: the
    result's truth is not the caller's array (changing one would change the other)."""
    a = np.array(abundances, np.float32)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or min(a.shape) < 1:
        raise InputError(f"abundances have shape {a.shape}; expected (rows, cols, p) or (N, rows, cols, p)")
    nodata = np.isnan(a).all(-1)
    bad = ~np.isfinite(a).all(-1) & ~nodata
    if bad.any():
        raise InputError(f"abundances have {int(bad.sum())} pixels with Inf, or NaN in some maps only; expected "
                         "finite maps (a no-data pixel NaN in every map)")
    empty = np.flatnonzero(nodata.all(axis=(1, 2)))
    if empty.size:
        raise InputError(f"abundances: map {int(empty[0])} has no valid pixel; expected pixels to simulate")
    return a, nodata


def finite_where_valid(cube: np.ndarray, valid: np.ndarray, block_rows: int = 64) -> bool:
    """Whether ``cube (rows, cols, bands)`` is finite in every band at every ``valid (rows, cols)``
    pixel, ``block_rows`` rows at a time: ``np.isfinite(cube[valid]).all()`` copied the valid
    pixels whole first (0.8 GB for a 1000 x 1000 x 200 scene)."""
    for r0 in range(0, cube.shape[0], block_rows):
        blk = cube[r0:r0 + block_rows]
        if not np.isfinite(blk).all(axis=-1)[valid[r0:r0 + block_rows]].all():
            return False
    return True


def _check_increasing(name: str, wl: np.ndarray) -> None:
    """`ParameterError` naming ``name`` unless ``wl`` is finite and strictly increasing."""
    steps = np.diff(wl)
    if not np.all(np.isfinite(wl)) or np.any(steps <= 0):
        at = int(np.flatnonzero(~(steps > 0))[0]) + 1 if np.all(np.isfinite(wl)) else None
        raise ParameterError(name, brief(wl), "expected finite band centres in nm, strictly increasing"
                             + (f" (band {at}: {wl[at - 1]:g} nm then {wl[at]:g} nm; sort the bands, keep one "
                                "of each centre)" if at is not None else ""))


def simulate(
    abundances,
    endmembers,
    *,
    wavelengths=None,
    snr_db: float | None = None,
    noise: str = "white",
    band_std=None,
    variability: float | None = None,
    corr_px: float | None = None,
    sensor: tuple[np.ndarray, np.ndarray] | None = None,
    names: list[str] | None = None,
    seed: int = 0,
    units: str | None = None,
) -> list[SimulatedScene]:
    """Simulate one scene per abundance map; see the module doc.

    Parameters
    ----------
    abundances : (rows, cols, p) or (N, rows, cols, p)
        On the simplex; a pixel NaN in every map is no-data: NaN in the scene and its truth,
        and left out of the signal power that sets the noise level.
    endmembers : (p, bands)
        Spectra (rows), on ``wavelengths``.
    wavelengths : (bands,) nm, strictly increasing, or None
        Needed when ``sensor`` is given.
    snr_db : float or None
        Global SNR of the added Gaussian noise, a finite number of dB; None adds none.
    noise : ``"white"`` or ``"signal"``
    band_std : (bands,) or None
        Relative noise standard deviation per band of the simulated cube (after ``sensor``
        resampling), e.g. a sensor's noise profile; None: the same in every band (see
        `unmixgen.simulate.mixing.add_noise`).
    variability : float or None
        Standard deviation of the log scaling factors (ELMM), finite and >= 0; None or 0:
        none.
    corr_px : float or None
        Correlation length (pixels, > 0) of the scaling fields; None: ``min(rows, cols) / 8``
        (at least 1).
    sensor : (centres (K,), fwhm (K,) or one width for every band) nm or None
        Resample the endmembers to these bands (centres strictly increasing) before mixing.
    names : list of str or None
        Endmember names, one per endmember.
    seed : int
        Seeds the scaling fields and the noise (scene ``i`` uses child ``i`` of the seed);
        an integer >= 0.
    units : "reflectance", "radiance", a radiance unit label (``"uW/(cm^2 sr nm)"``: kept as
        the scenes' `Scene.units`, as the readers keep a file's) or None
        The units of ``endmembers``, which the scenes are in; None: unknown (nothing is
        claimed).

    Returns
    -------
    list of `SimulatedScene`, one per map.

    Raises
    ------
    ParameterError
        For a parameter outside its range (NaN or Inf included), named as in the signature.
    """
    from . import mixing
    from .spectral_response import resample

    a, nodata = _check_abundances(abundances)
    e = np.array(endmembers, np.float32)  # a copy, as the maps: the truth is the result's own
    if e.ndim != 2:
        raise InputError(f"endmembers have shape {e.shape}; expected (p, bands)")
    p = a.shape[-1]
    if e.shape[0] != p:
        raise InputError(
            f"abundances have {p} endmember maps but {e.shape[0]} endmember spectra were given; "
            "expected the same number"
        )
    if not np.all(np.isfinite(e)):
        raise InputError("endmembers contain NaN/Inf; expected finite spectra")
    if isinstance(names, str):
        raise InputError(f"names: {names!r} is one string; expected a list of {p} names")
    if names and len(names) != p:
        raise InputError(f"names: {len(names)} names for {p} endmembers; expected one name per endmember")
    if noise not in ("white", "signal"):
        raise ParameterError("noise", noise, "expected 'white' or 'signal'")
    if snr_db is not None:  # beyond these, noise (or its absence) is below float32's resolution
        check_range("snr_db", snr_db, low=-40, high=300)
    if variability is not None:  # std of log-scales: exp(5 sigma) already spans 10^10
        check_range("variability", variability, low=0, high=2)
    if corr_px is not None:
        check_range("corr_px", corr_px, low=0, low_open=True)
    check_range("seed", seed, low=0, integer=True)
    if units is not None:  # a label as a scene keeps it: the word, or the radiance unit its file states
        label = scene_units(units)
        if label is None:
            raise ParameterError("units", units, f"expected {UNITS_EXAMPLES}, or None when unknown")
        units = label
    wl = None if wavelengths is None else np.asarray(wavelengths, np.float64).reshape(-1)
    if wl is not None and wl.size != e.shape[1]:
        raise InputError(f"wavelengths: {wl.size} values for endmembers with {e.shape[1]} bands; "
                         "expected one per band")
    if wl is not None:  # the scenes' spectral axis, as every Scene and writer takes it
        _check_increasing("wavelengths", wl)
    fwhm = None
    if sensor is not None:
        if wl is None:
            raise InputError("a sensor was given but the endmembers have no wavelengths; "
                             "expected spectra with wavelengths in nm")
        centres, fwhm = (np.asarray(v, np.float64).reshape(-1) for v in sensor)
        _check_increasing("sensor", centres)
        if fwhm.size == 1:  # one width for every band, as `resample` takes it: the scenes keep one per band
            fwhm = np.full(centres.shape, fwhm[0])
        e = resample(e, wl, centres, fwhm)
        wl = centres
    if band_std is not None:  # checked here, before any work, for the bands simulated
        if snr_db is None:
            raise ParameterError("band_std", f"{np.size(band_std)} values", "shapes the noise; expected snr_db too "
                                 "(without it no noise is added)")
        if np.size(band_std) != e.shape[1]:
            raise ParameterError("band_std", f"{np.size(band_std)} values", f"expected one per simulated band "
                                 f"({e.shape[1]})")
    if snr_db is not None and not np.any(e):
        raise ParameterError("snr_db", snr_db, "the spectra are zero on every band, so no noise level gives "
                             "this SNR; expected non-zero spectra, or no noise")
    if noise == "signal" and snr_db is not None and e.max() <= 0:
        raise InputError("signal-dependent noise needs spectra with positive values")
    seqs = np.random.SeedSequence(seed).spawn(len(a))
    out = []
    for i, amap in enumerate(a):
        rng = np.random.default_rng(seqs[i])
        scales = None
        if variability:
            scales = smooth_log_normal_scales(amap.shape, float(variability), rng, corr_px)
            e_pix = scales[..., None] * e  # (rows, cols, p, bands)
            clean = mixing.linear_variable(amap, e_pix)
            em = e_pix.astype(np.float32)
        else:
            clean = mixing.linear(amap, e)
            em = e
        # no-data pixels are NaN in ``clean``, so the noise level is set from the valid pixels' power
        cube = mixing.add_noise(clean, snr_db, rng, kind=noise, band_std=band_std)
        if not finite_where_valid(cube, ~nodata[i]):
            raise ParameterError("snr_db" if snr_db is not None else "variability",
                                 snr_db if snr_db is not None else variability,
                                 "gives a cube with NaN/Inf values; expected a value that keeps it finite")
        sc = SimulatedScene(
            cube=cube.astype(np.float32, copy=False),
            clean=clean.astype(np.float32, copy=False),
            abundances=amap,
            endmembers=em,
            reference_endmembers=e,
            wavelengths=wl,
            fwhm=fwhm,
            scales=scales,
            names=list(names) if names else [],
            snr_db=snr_db,
            units=units,
        )
        if nodata[i].any():
            sc.nodata(nodata[i])
        out.append(sc)
    return out


# --------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------


__all__ = ["SimulatedScene", "simulate", "smooth_log_normal_scales"]
