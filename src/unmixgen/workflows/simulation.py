"""Simulating scenes with exact ground truth from abundance maps and endmembers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir
from ..errors import InputError, check_range


def simulate_scenes(abundances: str | Path, endmembers: str | Path, out: str | Path, *,
                    snr_db: float | None = None, noise: str = "white", variability: float | None = None,
                    sensor: str | Path | None = None, fmt: str = "envi", seed: int = 0,
                    overwrite: bool = False) -> dict[str, Any]:
    """Simulate one scene per abundance map into the folder ``out`` (``unmixgen simulate``).

    ``abundances``: maps (an .npz, a synthesize or unmix folder); ``endmembers``: any endmember
    source (`unmixgen.runs.sources.load_endmembers`); ``sensor``: band centres/FWHM to resample
    to (CSV or scene file). Writes per map ``scene_000.npz`` (cube, clean, abundances,
    endmembers, wavelengths), the cube as ENVI or GeoTIFF (``fmt``), a HySUPP-style ``.mat``,
    plus ``endmembers.csv`` and ``run.json``. Returns the run record, with ``shape`` and
    ``scenes``.
    """
    from ..errors import ParameterError

    path_of_library = str(endmembers).rpartition(":")[0] if ":" in str(endmembers) and not Path(endmembers).exists() else endmembers
    inputs = [abundances, sensor, path_of_library]
    from ..atomic import check_output_dir, write_json
    from ..evaluate.maps import check_maps
    from ..io import write_scene
    from ..runs.folder import run_record, write_endmembers_csv
    from ..runs.sources import load_abundance_maps, load_endmembers, load_sensor
    from ..simulate.mixing import snr_db as measure_snr
    from ..simulate.scene import simulate

    check_output_dir(out, overwrite, inputs)
    if fmt not in ("envi", "tif"):
        raise ParameterError("fmt", fmt, "expected envi or tif")
    if noise not in ("white", "signal"):
        raise ParameterError("noise", noise, "expected white or signal")
    if snr_db is not None:
        check_range("snr_db", snr_db)
    t0 = time.perf_counter()
    maps, _ = load_abundance_maps(abundances)
    # the maps become the scenes' exact ground truth: they must be abundances
    check_maps(maps, str(abundances))
    em = load_endmembers(endmembers)
    p = maps.shape[-1]
    if em.spectra.shape[0] != p:
        raise InputError(
            f"{abundances}: {p} endmember maps but {endmembers} gives {em.spectra.shape[0]} spectra; "
            "expected the same number"
        )
    deleted = ~np.isfinite(em.spectra).all(axis=0)
    if deleted.any():  # a library's deleted channels (-1.23e34): no spectrum to mix there
        import warnings

        if deleted.all() or em.wavelengths is None:
            raise InputError(f"{endmembers}: no channel is defined for every spectrum; expected spectra with "
                             "common measured channels")
        warnings.warn(f"{endmembers}: {int(deleted.sum())} channels deleted in at least one spectrum are left "
                      "out of the simulated scenes", UserWarning, stacklevel=2)
        em.spectra, em.wavelengths = em.spectra[:, ~deleted], em.wavelengths[~deleted]
    bands_sensor = load_sensor(sensor) if sensor is not None else None
    if bands_sensor is not None and em.wavelengths is None:
        raise InputError(f"{endmembers}: no wavelengths, so they cannot be resampled to the sensor {sensor}; "
                         "expected endmembers with wavelengths")
    scenes = simulate(maps, em.spectra, wavelengths=em.wavelengths, snr_db=snr_db, noise=noise,
                      variability=variability, sensor=bands_sensor, names=em.names, seed=seed)
    record = run_record("simulate", {
        "abundances": str(abundances), "endmembers": endmembers, "snr_db": snr_db, "noise": noise,
        "variability": variability, "sensor": None if sensor is None else str(sensor),
        "format": fmt, "out": str(out),
    }, seed=seed)
    first = scenes[0]
    with atomic_dir(out, overwrite, inputs) as tmp:
        measured = []
        for i, sc in enumerate(scenes):
            stem = f"scene_{i:03d}"
            np.savez_compressed(tmp / f"{stem}.npz", **sc.arrays())
            scene = sc.to_scene(stem)
            write_scene(scene, tmp / (f"{stem}.hdr" if fmt == "envi" else f"{stem}.tif"))
            write_scene(scene, tmp / f"{stem}.mat")
            if snr_db is not None:
                measured.append(measure_snr(sc.clean, sc.cube))
        write_endmembers_csv(tmp / "endmembers.csv", first.reference_endmembers, first.wavelengths, em.names)
        record["scenes"] = len(scenes)
        record["shape"] = list(first.cube.shape)
        record["endmember_names"] = em.names
        record["measured_snr_db"] = measured or None
        record["timings_s"]["total"] = time.perf_counter() - t0
        write_json(tmp / "run.json", record)
    return record
