"""Procedural hyperspectral scenes with exact ground truth: the embedded default scene.

Nothing here downloads anything. A scene is built from

- endmember spectra drawn by `spectrum` from simple physical shapes (pigment and water
  absorptions, red edge, mineral and hydrocarbon features) that evaluate on any
  wavelength grid in nm;
- abundance maps from `abundance_maps`: smooth Gaussian random fields (white noise filtered
  to a power-law spectrum, `unmixgen.simulate.random_fields`), one per endmember, mapped onto the simplex with a
  softmax (higher ``purity`` = sharper, purer regions), with optional Voronoi regions,
  optional pure pixels and an optional cap on the largest abundance;
- linear mixing and noise at a given SNR (`unmixgen.simulate.mixing`).

`make_scene` returns a `Scene` with `GroundTruth` attached; `default_scene` is the demo scene.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ParameterError, check_range
from ..scene import GroundTruth, Scene
from . import mixing
from .random_fields import (
    gaussian_amplitude,
    gaussian_random_fields,
    power_law_amplitude,
    spectral_filter,
)

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "abundance_maps",
    "default_scene",
    "default_wavelengths",
    "library",
    "make_scene",
    "spectrum",
]

# Atmospheric water-vapour bands that real sensors lose (nm); see `default_wavelengths`.
WATER_VAPOUR_BANDS_NM = ((1340.0, 1460.0), (1790.0, 1960.0))


# --------------------------------------------------------------------------------------
# spectral building blocks (wavelengths in nm)
# --------------------------------------------------------------------------------------
def _g(wl, centre, width):
    """Gaussian bump of unit height; ``width`` is the standard deviation in nm."""
    return np.exp(-0.5 * ((wl - centre) / width) ** 2)


def _s(wl, centre, width):
    """Logistic step from 0 to 1 around ``centre``."""
    return 0.5 * (1.0 + np.tanh((wl - centre) / (2.0 * width)))


def _dip(wl, centre, width, depth):
    """Multiplicative absorption band: 1 - depth at the centre."""
    return 1.0 - depth * _g(wl, centre, width)


def _leaf_water(wl):
    """Relative absorption of liquid water in a leaf (optical depth for unit water content)."""
    continuum = 0.25 * _s(wl, 1330, 40) + 0.45 * _s(wl, 1950, 90) + 0.9 * _s(wl, 2420, 70)
    bands = (
        0.05 * _g(wl, 970, 35)
        + 0.13 * _g(wl, 1190, 45)
        + 0.55 * _g(wl, 1450, 55)
        + 1.25 * _g(wl, 1935, 65)
    )
    return continuum + bands


def _vegetation(wl, v):
    # v > 0: denser, wetter, greener canopy; v < 0: sparser, stressed.
    chl = 1.0 + 0.25 * v
    vis = 0.035 + 0.07 * _g(wl, 552, 32) * (1.0 - 0.2 * v)
    vis *= _dip(wl, 672, 22, min(0.6 * chl, 0.9)) * _dip(wl, 450, 45, 0.35)
    nir = 0.48 + 0.06 * v
    edge = _s(wl, 718 - 6 * v, 16)
    r = vis * (1 - edge) + nir * edge
    return r * np.exp(-(1.0 + 0.3 * v) * _leaf_water(wl))


def _dry_vegetation(wl, v):
    # non-photosynthetic vegetation: brown slope, cellulose/lignin bands, little water.
    r = 0.06 + 0.30 * _s(wl, 700, 130) + 0.08 * _s(wl, 1300, 250) * (1.0 - _s(wl, 2000, 250))
    r *= 1.0 + 0.12 * v
    r *= _dip(wl, 1200, 40, 0.04) * _dip(wl, 1450, 50, 0.12) * _dip(wl, 1930, 55, 0.18)
    r *= _dip(wl, 1730, 25, 0.06) * _dip(wl, 2100, 45, 0.22) * _dip(wl, 2300, 30, 0.10)
    return r


def _soil(wl, v):
    # v > 0: drier / brighter; v < 0: moist, darker, deeper water bands.
    bright = 1.0 + 0.25 * v
    r = 0.05 + 0.38 * (1.0 - np.exp(-np.maximum(wl - 350.0, 0.0) / 700.0))
    r *= 0.62 + 0.38 * _s(wl, 560, 45)  # iron-oxide charge-transfer shoulder
    r *= _dip(wl, 880, 90, 0.07)  # ferric iron crystal-field band
    wet = 1.0 - 0.6 * v
    r *= _dip(wl, 1415, 30, 0.14 * wet) * _dip(wl, 1915, 40, 0.22 * wet)
    r *= _dip(wl, 2205, 22, 0.10)  # clay Al-OH
    r *= 1.0 - 0.10 * _s(wl, 2300, 60)
    return r * bright


def _water(wl, v):
    # v > 0: more turbid (brighter green/red).
    t = max(0.0, 1.0 + v)
    r = 0.012 + 0.05 * _g(wl, 440, 90) + 0.012 * t * _g(wl, 570, 45) + 0.004 * t * _g(wl, 690, 25)
    return r * (1.0 - _s(wl, 730, 30)) + 0.002


def _asphalt(wl, v):
    # v > 0: older, weathered (brighter).
    x = np.clip((wl - 400.0) / 2100.0, -0.2, 1.2)
    r = (0.045 + 0.02 * v) + (0.08 + 0.03 * v) * (1.0 - np.exp(-2.0 * x)) / (1.0 - np.exp(-2.0))
    r *= _dip(wl, 1730, 22, 0.08) * _dip(wl, 2310, 22, 0.10) * _dip(wl, 2350, 20, 0.06)
    return r


def _concrete(wl, v):
    r = 0.22 + 0.14 * _s(wl, 520, 90) - 0.05 * _s(wl, 1900, 300)
    r *= 1.0 + 0.12 * v
    r *= _dip(wl, 1440, 35, 0.07) * _dip(wl, 1930, 45, 0.10) * _dip(wl, 2340, 30, 0.12)
    r *= _dip(wl, 2260, 25, 0.04)
    return r


def _roof(wl, v):
    # red clay tiles: strong ferric iron edge, then a bright plateau.
    r = 0.07 + 0.30 * _s(wl, 590, 25) + 0.08 * _s(wl, 1100, 200) - 0.06 * _s(wl, 2200, 150)
    r *= (1.0 + 0.1 * v) * _dip(wl, 880, 80, 0.12) * _dip(wl, 1420, 30, 0.05) * _dip(wl, 1920, 40, 0.07)
    return r


def _metal(wl, v):
    # galvanised metal roof: bright, nearly flat, slowly declining.
    r = (0.42 + 0.05 * v) - 0.12 * _s(wl, 1200, 500) + 0.03 * _g(wl, 500, 120)
    return r * _dip(wl, 880, 120, 0.03)


def _kaolinite(wl, v):
    # kaolinite-like clay mineral: bright, OH at 1395/1415, Al-OH doublet 2160/2205.
    r = 0.50 + 0.28 * _s(wl, 550, 120) - 0.10 * _s(wl, 2350, 60)
    r *= 1.0 + 0.1 * v
    r *= _dip(wl, 1395, 12, 0.12) * _dip(wl, 1415, 14, 0.16) * _dip(wl, 1915, 30, 0.08)
    r *= _dip(wl, 2162, 14, 0.18) * _dip(wl, 2207, 16, 0.28)
    r *= _dip(wl, 2320, 20, 0.06) * _dip(wl, 2385, 20, 0.08)
    return r


_KIND_FUNCS = {
    "vegetation": _vegetation,
    "dry_vegetation": _dry_vegetation,
    "soil": _soil,
    "water": _water,
    "asphalt": _asphalt,
    "concrete": _concrete,
    "roof": _roof,
    "metal": _metal,
    "kaolinite": _kaolinite,
}
_ALIASES = {"npv": "dry_vegetation", "rock": "kaolinite", "mineral": "kaolinite", "clay": "kaolinite"}

KINDS: tuple[str, ...] = tuple(_KIND_FUNCS)
"""Endmember kinds `spectrum` knows (aliases: npv, rock, mineral, clay)."""

DEFAULT_KINDS: tuple[str, ...] = (
    "vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation", "roof", "kaolinite", "metal",
)
"""Kinds taken in this order when a scene asks for ``p`` endmembers without naming them."""


def _kind(kind: str) -> str:
    k = str(kind).strip().lower().replace("-", "_").replace(" ", "_")
    k = _ALIASES.get(k, k)
    if k not in _KIND_FUNCS:
        raise ParameterError("kind", kind, f"unknown endmember kind; expected one of {', '.join(KINDS)}")
    return k


def _wavelengths(wavelengths) -> np.ndarray:
    wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if wl.size < 1 or not np.all(np.isfinite(wl)) or np.any(wl <= 0):
        raise InputError("wavelengths: expected finite positive values in nm")
    return wl


def spectrum(kind: str, wavelengths, rng=None, variant: float = 0.0) -> np.ndarray:
    """Reflectance spectrum of a material on any wavelength grid.

    Parameters
    ----------
    kind : str
        One of `KINDS`: ``vegetation`` (green peak ~550 nm, chlorophyll absorption ~670 nm,
        red edge ~700-750 nm, NIR plateau, leaf-water bands at 970/1200/1450/1940 nm, SWIR
        decline), ``dry_vegetation`` (alias ``npv``), ``soil``, ``water``, ``asphalt``,
        ``concrete``, ``roof`` (red clay tiles), ``metal``, ``kaolinite`` (alias ``rock``,
        ``mineral``).
    wavelengths : array (bands,)
        Band centres in nm, any spacing and range (shapes are defined 350-2600 nm and
        extend smoothly outside).
    rng : numpy Generator, int or None
        When given, adds random spectral variability: a random ``variant`` offset (sd 0.3),
        a brightness factor (sd ~6 %) and a smooth multiplicative shape perturbation (~2 %).
    variant : float
        Deterministic change of the material's physical state, about -1..1 (vegetation:
        canopy density / water / chlorophyll; soil: dryness; water: turbidity; asphalt:
        age; others: brightness).

    Returns
    -------
    ndarray (bands,) float32, reflectance in [0, 1]
    """
    func = _KIND_FUNCS[_kind(kind)]
    wl = _wavelengths(wavelengths)
    v = float(variant)
    gen = None if rng is None else np.random.default_rng(rng)
    if gen is not None:
        v += 0.3 * gen.standard_normal()
    r = func(wl, float(np.clip(v, -1.5, 1.5)))
    if gen is not None:
        r = r * np.exp(0.06 * gen.standard_normal())
        # smooth shape perturbation: a few low-frequency cosines over 350-2600 nm
        x = (wl - 350.0) / 2250.0
        k = np.arange(1, 5)[:, None]
        coef = gen.normal(0.0, 0.02, (4, 1)) / k
        phase = gen.uniform(0, 2 * np.pi, (4, 1))
        r = r * (1.0 + np.sum(coef * np.cos(np.pi * k * x[None] + phase), axis=0))
    return np.clip(r, 0.0, 1.0).astype(np.float32)


def library(wavelengths, kinds=None, rng=None) -> tuple[np.ndarray, list[str]]:
    """Endmember matrix for a list of kinds.

    Parameters
    ----------
    wavelengths : array (bands,) in nm
    kinds : list of str or None
        Default: all of `DEFAULT_KINDS`. A kind may repeat; repeats get different
        ``variant`` values (and names ``soil_2``, ...) so rows stay distinct.
    rng : numpy Generator, int or None
        Passed to `spectrum` for random variability.

    Returns
    -------
    E : ndarray (p, bands) float32, reflectance
    names : list of p str
    """
    kinds = list(DEFAULT_KINDS if kinds is None else kinds)
    if not kinds:
        raise ParameterError("kinds", kinds, "expected at least one endmember kind")
    gen = None if rng is None else np.random.default_rng(rng)
    rows, names, seen = [], [], {}
    for kind in kinds:
        k = _kind(kind)
        n = seen.get(k, 0)
        seen[k] = n + 1
        variant = 0.0 if n == 0 else (0.6 if n % 2 else -0.6) * ((n + 1) // 2)
        rows.append(spectrum(k, wavelengths, rng=gen, variant=variant))
        names.append(k if n == 0 else f"{k}_{n + 1}")
    return np.stack(rows).astype(np.float32), names


# --------------------------------------------------------------------------------------
# abundance maps
# --------------------------------------------------------------------------------------
def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of (rows, cols, n) images (periodic, via FFT); sigma in pixels."""
    rows, cols = images.shape[:2]
    return spectral_filter(images, gaussian_amplitude(rows, cols, sigma)[..., None], axes=(0, 1))


def _regions(rows, cols, p, n_regions, rng) -> np.ndarray:
    """Soft Voronoi patches: (rows, cols, p) indicator of each cell's endmember, blurred."""
    seeds = rng.uniform(0, 1, (n_regions, 2)) * [rows, cols]
    owner = rng.integers(0, p, n_regions)
    rr, cc = np.mgrid[0:rows, 0:cols]
    d2 = (rr[..., None] - seeds[:, 0]) ** 2 + (cc[..., None] - seeds[:, 1]) ** 2
    cell = np.argmin(d2, axis=-1)
    onehot = np.eye(p)[owner[cell]]
    return _blur(onehot, sigma=max(rows, cols) / 60.0)


def abundance_maps(
    rows: int,
    cols: int,
    p: int,
    rng=None,
    *,
    smoothness: float = 4.0,
    purity: float = 3.0,
    regions: int = 0,
    region_strength: float = 2.0,
    pure_pixels: bool | int = False,
    max_abundance: float | None = None,
) -> np.ndarray:
    """Spatially structured abundance maps on the simplex.

    Each endmember gets a smooth Gaussian random field ``z_k`` (white noise filtered in
    the Fourier domain to a power spectrum ``~ 1/f**smoothness``, normalised to unit
    variance); abundances are ``softmax(purity * z)`` over endmembers, so neighbouring
    pixels have similar mixtures, with pure-ish regions separated by mixed transitions.

    Parameters
    ----------
    rows, cols, p : int
        Map size and number of endmembers.
    rng : numpy Generator, int or None
    smoothness : float
        Power-law exponent of the fields' spectrum (2 = rough, 4 = very smooth).
    purity : float
        Softmax gain (inverse temperature): 0 gives uniform mixtures ``1/p``; large values
        give nearly pure regions with thin mixed borders.
    regions : int
        When > 0, also lay ``regions`` Voronoi patches, each favouring one endmember
        (adds ``region_strength`` to its field, with soft borders): field-like patchwork.
    pure_pixels : bool or int
        Insert pure pixels (abundance exactly 1): ``True`` = 3 per endmember, an int = that
        many per endmember, placed where that endmember is already most abundant.
    max_abundance : float or None
        Cap on every abundance, in ``(1/p, 1)``: pixels whose largest abundance exceeds it
        are pulled towards the uniform mixture ``1/p`` just enough, so the scene has no
        pure (or nearly pure) pixels. Incompatible with ``pure_pixels``.

    Returns
    -------
    ndarray (rows, cols, p) float32, non-negative, each pixel summing to one
    """
    for name, value in (("rows", rows), ("cols", cols), ("p", p)):
        check_range(name, value, low=1, integer=True)
    for name, value in (("smoothness", smoothness), ("purity", purity), ("region_strength", region_strength)):
        check_range(name, value)
    check_range("regions", regions, low=0, integer=True)
    if not isinstance(pure_pixels, bool):
        check_range("pure_pixels", pure_pixels, low=0, integer=True)
    if max_abundance is not None:
        check_range("max_abundance", max_abundance, low=1.0 / p, high=1.0, low_open=True)
        if pure_pixels and max_abundance < 1.0:
            raise ParameterError("pure_pixels", pure_pixels,
                                 f"contradicts max_abundance={max_abundance} < 1; choose one")
    rng = np.random.default_rng(rng)
    amp = power_law_amplitude(rows, cols, float(smoothness))
    z = gaussian_random_fields((p, rows, cols), amp, rng, axes=(1, 2), normalize=True)
    z = np.moveaxis(z, 0, -1)
    if regions > 0:
        z = z + region_strength * _regions(rows, cols, p, int(regions), rng)
    logits = float(purity) * z
    logits -= logits.max(axis=-1, keepdims=True)
    a = np.exp(logits)
    a /= a.sum(axis=-1, keepdims=True)

    n_pure = 3 if pure_pixels is True else int(pure_pixels or 0)
    if n_pure > 0:
        flat = a.reshape(-1, p)
        n_pure = min(n_pure, flat.shape[0] // p)
        taken = np.zeros(flat.shape[0], bool)
        for k in range(p):  # a loop over endmembers, not pixels
            score = np.where(taken, -np.inf, flat[:, k])
            idx = np.argpartition(-score, n_pure - 1)[:n_pure] if n_pure < flat.shape[0] else np.arange(n_pure)
            flat[idx] = 0.0
            flat[idx, k] = 1.0
            taken[idx] = True
    if max_abundance is not None and max_abundance < 1.0:
        top = a.max(axis=-1, keepdims=True)
        u = 1.0 / p
        lam = np.minimum(1.0, (max_abundance - u) / np.maximum(top - u, 1e-12))
        a = lam * a + (1.0 - lam) * u
    a = a.astype(np.float32)
    a /= a.sum(axis=-1, keepdims=True)
    return a


# --------------------------------------------------------------------------------------
# scenes
# --------------------------------------------------------------------------------------
def default_wavelengths(start: float = 400.0, stop: float = 2500.0, step: float = 10.0,
                        drop_water_vapour: bool = False) -> np.ndarray:
    """A regular grid ``start..stop`` nm (inclusive) every ``step`` nm, float64.

    ``drop_water_vapour`` removes the bands inside `WATER_VAPOUR_BANDS_NM` (1340-1460 and
    1790-1960 nm), as done with real airborne data.
    """
    wl = np.arange(start, stop + step / 2, step, dtype=np.float64)
    if drop_water_vapour:
        keep = np.ones(wl.size, bool)
        for lo, hi in WATER_VAPOUR_BANDS_NM:
            keep &= ~((wl >= lo) & (wl <= hi))
        wl = wl[keep]
    return wl


def _fwhm_for(wl: np.ndarray) -> np.ndarray:
    if wl.size == 1:
        return np.array([10.0])
    d = np.diff(wl)
    # each band as wide as the spacing to its nearer neighbour
    return np.minimum(np.r_[d[0], d], np.r_[d, d[-1]]).astype(np.float64)


def make_scene(
    rows: int = 64,
    cols: int = 80,
    bands: int | None = None,
    wavelengths=None,
    p: int = 4,
    kinds=None,
    snr_db: float | None = 30.0,
    pure_pixels: bool | int = True,
    max_abundance: float | None = None,
    seed: int = 0,
    noise: str = "white",
    smoothness: float = 4.0,
    purity: float = 3.0,
    regions: int = 0,
    drop_water_vapour: bool = False,
    variability: bool = False,
) -> Scene:
    """A synthetic scene with exact ground truth, deterministic for a seed.

    Parameters
    ----------
    rows, cols : int
        Scene size in pixels (non-square by default on purpose).
    bands : int or None
        With ``wavelengths=None``: ``None`` = 400-2500 nm every 10 nm (211 bands), an int =
        that many bands evenly spread over 400-2500 nm.
    wavelengths : array (bands,) or None
        Band centres in nm (any strictly increasing grid); overrides ``bands``.
    p : int
        Number of endmembers (ignored when ``kinds`` is given).
    kinds : list of str or None
        Endmember kinds (see `spectrum`); default the first ``p`` of `DEFAULT_KINDS`.
    snr_db : float or None
        Noise level, SNR over the whole cube in dB (`mixing.add_noise`); None = no noise.
    pure_pixels, max_abundance, smoothness, purity, regions
        See `abundance_maps`.
    seed : int
        Seeds everything; spectra, maps and noise use independent streams.
    noise : ``"white"`` or ``"signal"``
    drop_water_vapour : bool
        Remove the 1340-1460 and 1790-1960 nm bands from the default grid.
    variability : bool
        Draw the endmember spectra with random variability (`spectrum` ``rng``) instead of
        the nominal shapes.

    Returns
    -------
    Scene
        ``cube`` (rows, cols, bands) float32 reflectance, wavelengths and FWHM (nm),
        ``truth`` = GroundTruth(endmembers (p, bands), abundances (rows, cols, p), names),
        ``metadata["format"] == "synthetic"``.
    """
    if wavelengths is None:
        if bands is None:
            wl = default_wavelengths(drop_water_vapour=drop_water_vapour)
        else:
            check_range("bands", bands, low=1, integer=True)
            wl = np.linspace(400.0, 2500.0, int(bands))
            if drop_water_vapour:
                keep = np.ones(wl.size, bool)
                for lo, hi in WATER_VAPOUR_BANDS_NM:
                    keep &= ~((wl >= lo) & (wl <= hi))
                wl = wl[keep]
    else:
        wl = _wavelengths(wavelengths)
        if wl.size > 1 and not np.all(np.diff(wl) > 0):
            raise InputError("wavelengths: expected strictly increasing values in nm")
    if noise not in ("white", "signal"):
        raise ParameterError("noise", noise, "expected 'white' or 'signal'")
    if snr_db is not None:
        check_range("snr_db", snr_db)
    check_range("seed", seed, low=0, integer=True)
    if kinds is None:
        check_range("p", p, low=1, high=len(DEFAULT_KINDS) * 3, integer=True)
        kinds = [DEFAULT_KINDS[i % len(DEFAULT_KINDS)] for i in range(p)]
    kinds = list(kinds)
    p = len(kinds)
    ss = np.random.SeedSequence(int(seed))
    s_spec, s_maps, s_noise = (np.random.default_rng(s) for s in ss.spawn(3))
    E, names = library(wl, kinds, rng=s_spec if variability else None)
    A = abundance_maps(
        rows, cols, p, s_maps, smoothness=smoothness, purity=purity, regions=regions,
        pure_pixels=pure_pixels, max_abundance=max_abundance,
    )
    clean = mixing.linear(A, E)
    cube = mixing.add_noise(clean, snr_db, rng=s_noise, kind=noise)
    meta = {
        "format": "synthetic",
        "seed": int(seed),
        "snr_db": None if snr_db is None else float(snr_db),
        "noise": noise,
        "kinds": ",".join(names),
    }
    return Scene(
        cube,
        wavelengths=wl,
        fwhm=_fwhm_for(wl),
        truth=GroundTruth(E, A, names, source="synthetic"),
        name=f"synthetic-{rows}x{cols}x{wl.size}-p{p}-seed{seed}",
        units="reflectance",
        metadata=meta,
    )


def default_scene(seed: int = 0) -> Scene:
    """The embedded demo scene: 96 x 128 pixels, 211 bands (400-2500 nm), 5 endmembers
    (vegetation, soil, water, asphalt, concrete), pure pixels present, 30 dB white noise."""
    return make_scene(rows=96, cols=128, p=5, snr_db=30.0, pure_pixels=True, seed=seed, regions=6)
