"""Simulating scenes with exact ground truth from abundance maps and endmembers."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir
from ..errors import InputError, check_range


def simulate_scenes(abundances: str | Path, endmembers: str | Path, out: str | Path, *,
                    snr_db: float | None = None, noise: str | None = None, variability: float | None = None,
                    sensor: str | Path | None = None, fmt: str = "envi", seed: int = 0,
                    overwrite: bool = False, band_noise: str | Path | None = None) -> dict[str, Any]:
    """Simulate one scene per abundance map into the folder ``out`` (``unmixgen simulate``).

    ``abundances``: maps (an .npz, a synthesize or unmix folder); ``endmembers``: any endmember
    source (`unmixgen.runs.endmembers.load_endmembers`); ``sensor``: band centres/FWHM to resample
    to (CSV or scene file); ``noise``: the noise's kind at ``snr_db``, ``"white"`` (None) or
    ``"signal"`` (signal-dependent), given only with ``snr_db``; ``band_noise``: the noise's spread over the bands
    (`unmixgen.runs.sources.load_band_noise`: a CSV of one std per band, or a scene file whose
    own noise is estimated; the global SNR stays ``snr_db``). Maps pair with spectra by position, or by name where both name
    the same materials (`pair_by_name`). Writes per map ``scene_000.npz`` (cube, clean, abundances,
    endmembers, wavelengths), the cube as ENVI or GeoTIFF (``fmt``), a HySUPP-style ``.mat``,
    plus ``endmembers.csv``, ``endmembers.sli``/``.hdr`` (`unmixgen.runs.folder.save_endmembers`)
    and ``run.json``. Maps from an ``unmix`` result folder place the scenes where its maps are
    (`place_of_maps`; run.json: ``placed_like``). Pixels no-data in the maps (NaN in every map: a
    result's invalid pixels) are no-data (NaN) in the scenes and their truth (run.json:
    ``nodata_pixels``). The scenes are in the units of the endmembers where their source says
    them (`unmixgen.runs.endmembers.Endmembers`; run.json: ``units``, "unknown" where it does not).
    Returns the run record, with ``shape`` and ``scenes``.
    """
    from ..errors import ParameterError

    path_of_library = str(endmembers).rpartition(":")[0] if ":" in str(endmembers) and not Path(endmembers).exists() else endmembers
    inputs = [abundances, sensor, path_of_library, band_noise]
    from ..atomic import check_output_dir, write_json
    from ..evaluate.maps import check_maps
    from ..io import write_scene
    from ..io.numpy_io import placement_arrays
    from ..runs.endmembers import load_endmembers
    from ..runs.folder import run_record, save_endmembers
    from ..runs.sources import load_abundance_maps, load_sensor_bands
    from ..scene import placement
    from ..simulate.mixing import snr_db as measure_snr
    from ..simulate.scene import simulate

    check_output_dir(out, overwrite, inputs)
    if fmt not in ("envi", "tif"):
        raise ParameterError("fmt", fmt, "expected envi or tif")
    if noise is not None and noise not in ("white", "signal"):
        raise ParameterError("noise", noise, "expected white or signal")
    if noise is not None and snr_db is None:  # a kind of noise for scenes written noise-free went without a word
        raise ParameterError("noise", noise, "sets the kind of noise added at the SNR snr_db, and without snr_db "
                             "the scenes have no noise; expected snr_db too", mentions=("snr_db",))
    noise = noise or "white"
    if snr_db is not None:
        check_range("snr_db", snr_db)
    if band_noise is not None and snr_db is None:
        raise ParameterError("band_noise", str(band_noise), "needs snr_db: the profile spreads the noise over the "
                                                            "bands, the SNR sets its level", mentions=("snr_db",))
    t0 = time.perf_counter()
    maps, map_names = load_abundance_maps(abundances, nodata=True)
    # no-data pixels (a result's invalid pixels: a map-grid product's corners) stay no-data in the
    # scenes (`simulate`: NaN, and no part of the signal power that sets the noise level)
    nodata = np.isnan(maps).all(axis=-1)  # as `simulate` takes them: Inf is no no-data value
    # the maps become the scenes' exact ground truth: their valid pixels must be abundances
    check_maps(maps[~nodata][None, :, None] if nodata.any() else maps, str(abundances))
    em = load_endmembers(endmembers)
    p = maps.shape[-1]
    if em.spectra.shape[0] != p:
        raise InputError(
            f"{abundances}: {p} endmember maps but {endmembers} gives {em.spectra.shape[0]} spectra; "
            "expected the same number"
        )
    order, pairing = pair_by_name(map_names, em.names)
    if order is not None:
        maps = maps[..., order]
    if pairing is not None:
        warnings.warn(f"{abundances} and {endmembers}: {pairing}", UserWarning, stacklevel=2)
    deleted = ~np.isfinite(em.spectra).all(axis=0)
    all_wl = em.wavelengths  # deleted channels included: where the gaps are
    if deleted.any():  # a library's deleted channels (-1.23e34), a result's bad bands: no spectrum to mix there
        if deleted.all():
            raise InputError(f"{endmembers}: no channel is defined for every spectrum; expected spectra with "
                             "common measured channels")
        if sensor is None:  # on a sensor's bands, those over these channels are left out (below)
            warnings.warn(f"{endmembers}: {int(deleted.sum())} channels deleted or flagged bad (a bad band of the "
                          "scene a result was unmixed from) in at least one spectrum are left out of the simulated "
                          "scenes", UserWarning,
                          stacklevel=2)
        em.spectra = em.spectra[:, ~deleted]
        em.wavelengths = None if em.wavelengths is None else em.wavelengths[~deleted]
    bands_sensor, sensor_order = None, None
    if sensor is not None:
        *bands_sensor, sensor_order = load_sensor_bands(sensor)
        if sensor_order is not None:
            warnings.warn(f"{sensor}: band centres are not in increasing order (detectors listed one after the "
                          "other?); the simulated scenes hold the bands sorted by wavelength"
                          + (f", and the noise of {band_noise} is taken in {sensor}'s row order"
                             if band_noise is not None and Path(band_noise).suffix.lower() == ".csv" else ""),
                          UserWarning, stacklevel=2)
    if bands_sensor is not None and em.wavelengths is None:
        raise InputError(f"{endmembers}: no wavelengths, so they cannot be resampled to the sensor {sensor}; "
                         "expected endmembers with wavelengths")
    band_std = None
    if band_noise is not None:
        from ..runs.sources import load_band_noise

        band_std = load_band_noise(band_noise)
        bands = em.spectra.shape[1] if bands_sensor is None else bands_sensor[0].size
        if band_std.size != bands:
            raise InputError(f"{band_noise}: noise for {band_std.size} bands but the simulated scenes have {bands}; "
                             "expected one per band (resample to that sensor: sensor=, `--sensor`)")
        if sensor_order is not None and Path(band_noise).suffix.lower() == ".csv":
            band_std = band_std[sensor_order]  # a CSV lists the bands as the sensor's CSV does; a scene is sorted
    left_out = None
    if bands_sensor is not None:
        centres = bands_sensor[0]
        bands_sensor, keep = _covered_sensor_bands(bands_sensor, em.wavelengths, all_wl, deleted, sensor, endmembers)
        if not keep.all():
            left_out = [float(c) for c in centres[~keep]]
            band_std = None if band_std is None else band_std[keep]
    scenes = simulate(maps, em.spectra, wavelengths=em.wavelengths, snr_db=snr_db, noise=noise,
                      band_std=band_std, variability=variability,
                      sensor=None if bands_sensor is None else tuple(bands_sensor), names=em.names, seed=seed,
                      units=em.units)
    record = run_record("simulate", {
        "abundances": str(abundances), "endmembers": endmembers, "snr_db": snr_db, "noise": noise,
        "variability": variability, "sensor": None if sensor is None else str(sensor),
        "format": fmt, "out": str(out), "maps_paired": pairing or "by position",
        "band_noise": None if band_noise is None else str(band_noise),
        "band_noise_std_range": None if band_std is None else float(band_std.max() / band_std.min()),
        "sensor_bands_sorted": sensor_order is not None,
    }, seed=seed)
    record["sensor_bands_left_out"] = left_out
    record["nodata_pixels"] = [int(n) for n in nodata.sum(axis=(1, 2))] if nodata.any() else None
    first = scenes[0]
    place = place_of_maps(abundances, first.cube.shape[:2])
    record["placed_like"] = None if place is None else str(place.path)
    with atomic_dir(out, overwrite, inputs) as tmp:
        measured = []
        for i, sc in enumerate(scenes):
            stem = f"scene_{i:03d}"
            scene = sc.to_scene(stem)
            if place is not None:  # the maps' pixel grid, so the place of the scene they were unmixed from
                scene.crs, scene.transform = place.crs, place.transform
                scene.metadata.update(placement(place))
            np.savez_compressed(tmp / f"{stem}.npz", **sc.arrays(), **placement_arrays(scene))
            write_scene(scene, tmp / (f"{stem}.hdr" if fmt == "envi" else f"{stem}.tif"))
            write_scene(scene, tmp / f"{stem}.mat")
            if snr_db is not None:
                measured.append(measure_snr(sc.clean, sc.cube))
        save_endmembers(tmp, first.reference_endmembers, first.wavelengths, em.names, em.units)
        record["scenes"] = len(scenes)
        record["shape"] = list(first.cube.shape)
        record["endmember_names"] = em.names
        record["units"] = em.units or "unknown"  # the spectra's, so the scenes'
        record["measured_snr_db"] = measured or None
        record["timings_s"]["total"] = time.perf_counter() - t0
        write_json(tmp / "run.json", record)
    return record


def _covered_sensor_bands(bands: list[np.ndarray], wl: np.ndarray, all_wl: np.ndarray, missing: np.ndarray,
                          sensor, endmembers) -> tuple[list[np.ndarray], np.ndarray]:
    """The sensor's ``[centres, fwhm]`` the spectra measure, and which of its bands they are.

    A band whose response lies outside the spectra's range (``wl``, their measured channels) by
    more than `MIN_COVERAGE` allows is refused (`InputError` naming both sources): nothing is
    extrapolated. One with more than that over a gap of ``missing`` channels (on ``all_wl``),
    where the spectra are unknown, is left out with a warning, as the missing channels are
    without a sensor."""
    from ..simulate.spectral_response import MIN_COVERAGE, band_coverage

    centres, fwhm = bands
    cover = band_coverage(wl, centres, fwhm)
    beyond = (cover < MIN_COVERAGE) | (centres < wl[0]) | (centres > wl[-1])
    if beyond.any():
        k = int(np.flatnonzero(beyond)[0])
        raise InputError(
            f"{sensor}: {int(beyond.sum())} of {centres.size} bands lie outside the range {wl[0]:.1f}-{wl[-1]:.1f} nm "
            f"of the spectra of {endmembers} (band {k + 1}: {centres[k]:.1f} nm, FWHM {fwhm[k]:.1f} nm, "
            f"{100 * cover[k]:.0f}% of its response inside, at least {100 * MIN_COVERAGE:.0f}% needed); expected "
            "sensor bands the spectra cover (nothing is extrapolated)")
    keep = np.ones(centres.size, bool)
    if missing.any():
        keep = band_coverage(all_wl, centres, fwhm, missing=missing) >= MIN_COVERAGE
        if not keep.any():
            raise InputError(f"{sensor}: every band has more than {100 * (1 - MIN_COVERAGE):.0f}% of its response "
                             f"over channels missing in {endmembers}; expected bands on its measured channels")
        if not keep.all():
            gone = ", ".join(f"{c:g}" for c in centres[~keep])
            warnings.warn(f"{sensor}: {int((~keep).sum())} bands ({gone} nm) have more than "
                          f"{100 * (1 - MIN_COVERAGE):.0f}% of their response over channels missing (deleted or "
                          f"flagged bad) in {endmembers}, where the spectra are unknown; they are left out of the "
                          "simulated scenes", UserWarning, stacklevel=3)
    return [centres[keep], fwhm[keep]], keep


def place_of_maps(abundances: str | Path, shape: tuple[int, int]):
    """The georeferenced maps file (a lazy `Scene`) of ``abundances`` when that is an ``unmix``
    result folder: its maps lie on the pixel grid of the scene they were unmixed from, and their
    ``abundances.tif`` / ``.hdr`` carry its place. None for other sources (synthesized maps are
    no place), for a folder without that file and for maps of another ``shape`` (rows, cols)."""
    from ..io import read_scene

    folder = Path(abundances)
    if not folder.is_dir() or (folder / "abundances.npz").is_file() or not (folder / "result.npz").is_file():
        return None
    for name in ("abundances.tif", "abundances.hdr"):
        if (folder / name).is_file():
            maps = read_scene(folder / name)
            return maps if maps.shape[:2] == tuple(shape) else None
    return None


def _named(names: list[str] | None, p: int) -> list[str] | None:
    """``names`` casefolded when they are ``p`` distinct names other than the em1, em2, ...
    every writer gives unnamed endmembers; else None."""
    if names is None or len(names) != p:
        return None
    keys = [str(n).strip().casefold() for n in names]
    if len(set(keys)) != p or all(re.fullmatch(r"em\d+", k) for k in keys):
        return None
    return keys


def pair_by_name(map_names: list[str] | None, spectra_names: list[str] | None
                 ) -> tuple[list[int] | None, str | None]:
    """How maps pair with spectra when both carry names: ``(order, note)``.

    ``order`` re-orders the maps' last axis into the spectra's order when both name the same
    materials in another order (a synthesize folder of a model trained on one result, spectra
    from another); None keeps them. ``note`` says what was done or why pairing stays by
    position (different materials); None when nothing is to be said.
    """
    p = len(spectra_names) if spectra_names is not None else 0
    a, e = _named(map_names, p), _named(spectra_names, p)
    if a is None or e is None or a == e:
        return None, None
    if set(a) == set(e):
        order = [a.index(k) for k in e]
        return order, (f"maps re-ordered by name to the spectra's order "
                       f"({', '.join(map(str, spectra_names))})")
    return None, (f"the maps name {', '.join(map(str, map_names))} but the spectra "
                  f"{', '.join(map(str, spectra_names))}; paired by position")
