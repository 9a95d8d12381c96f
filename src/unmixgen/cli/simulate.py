"""`unmixgen simulate` (scenes with ground truth) and `unmixgen evaluate-synthesis` (realism)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from ..atomic import jsonable
from ..errors import InputError, check_range, in_file, reading
from ..priors.samplers import DEFAULT_SAMPLER
from .app import app

FORMATS = ("envi", "tif")


@app.command("simulate")
def simulate_cmd(
    abundances: Path = typer.Option(..., "--abundances", "-a",
                                    help="Abundance maps: .npz with 'abundances' (N,rows,cols,p) or (rows,cols,p), "
                                         "a synthesize output folder, or an unmix result folder."),
    endmembers: str = typer.Option(..., "--endmembers", "-e",
                                   help="Endmembers: result folder, CSV, .npz with 'endmembers', a benchmark .mat with M (bands, p), an ENVI spectral library (.sli with its .hdr), or LIB.mat:name1,name2 / LIB.sli:name1,name2."),
    snr: float = typer.Option(None, "--snr", help="Noise at this SNR in dB (default: no noise): 10 log10 of the "
                                                 "clean cube's sum of squares over the noise's, over every band and "
                                                 "valid pixel (run.json: measured_snr_db)."),
    noise: str = typer.Option(None, "--noise", help="Noise kind at --snr: white or signal (signal-dependent).",
                              show_default="white"),
    variability: float = typer.Option(None, "--variability",
                                      help="Endmember variability: std of smooth log-normal per-pixel scaling (ELMM)."),
    sensor: Path = typer.Option(None, "--sensor",
                                help="Target sensor bands: a scene file (wavelengths + FWHM) or CSV centre,fwhm (nm)."),
    band_noise: Path = typer.Option(None, "--band-noise",
                                    help="Spread the noise over the bands as a real sensor does: a scene file (its own noise, estimated per band; use it as --sensor too) or a CSV with one noise std per band. The global SNR stays --snr."),
    fmt: str = typer.Option("envi", "--format", help="Cube format besides .npz and .mat: envi or tif."),
    seed: int = typer.Option(0, "--seed", help="Random seed (noise, variability)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
) -> None:
    """Simulate hyperspectral scenes with exact ground truth from abundance maps and endmembers.

    Writes per map scene_000.npz (cube, clean, abundances, endmembers, wavelengths; with
    --variability also pixel_endmembers and scales: endmembers, the truth every file gives,
    are then the spectra before each pixel's scaling, clean = sum of abundances x scales x
    endmembers), the cube
    as ENVI or GeoTIFF, a HySUPP-style scene_000.mat, plus endmembers.csv, endmembers.sli/.hdr
    (the spectra as an ENVI spectral library) and run.json.
    Maps of an unmix result folder lie on its scene's pixel grid: the simulated scenes are placed
    where that scene is (its maps' CRS and geotransform, or ground control points).
    Maps and spectra pair by position; where both name the same materials in another order
    (a synthesize folder, a named CSV) the maps are re-ordered to the spectra's, with a warning.

    Example: unmixgen simulate --abundances synth/ --endmembers USGS_1995_Library.mat:kaolinite,alunite,muscovite --snr 30 --out sim
    """
    from ..workflows import simulate_scenes

    fmt = {"geotiff": "tif", "tiff": "tif", "hdr": "envi"}.get(fmt.lower(), fmt.lower())
    record = simulate_scenes(abundances, endmembers, out, snr_db=snr, noise=noise, variability=variability,
                             sensor=sensor, fmt=fmt, seed=seed, overwrite=overwrite, band_noise=band_noise)
    rows, cols, bands = record["shape"]
    print(f"wrote {record['scenes']} scene(s) of {rows}x{cols}x{bands} with ground truth to {out}")


# --------------------------------------------------------------------------------------
# evaluate-synthesis
# --------------------------------------------------------------------------------------
def _is_maps_folder(path: Path) -> bool:
    return (path / "abundances.npz").is_file() or (path / "result.npz").is_file()


def _reference_arrays(path: Path) -> dict[str, np.ndarray]:
    """``heldout`` (+ optional ``floor``, ``train``) from an .npz, a maps folder or a model folder."""
    if path.is_dir() and not _is_maps_folder(path):
        from ..priors.abundance.model import load_model

        return dict(load_model(path).holdout())
    if path.is_dir() or path.suffix.lower() != ".npz":
        from ..runs.sources import load_abundance_maps

        return {"heldout": load_abundance_maps(path)[0]}
    with reading(path, "read as .npz", also=(ValueError,)), np.load(path, allow_pickle=False) as z:
        keys = z.files
        if "heldout" in keys:
            return {k: np.asarray(z[k], np.float32) for k in ("heldout", "floor", "train") if k in keys}
        if "abundances" in keys:
            a = np.asarray(z["abundances"], np.float32)
            return {"heldout": a[None] if a.ndim == 3 else a}
        raise in_file(path, f"has neither 'heldout' nor 'abundances' (keys: {', '.join(keys)})")


def _check_reference(ref: dict[str, np.ndarray], path: Path) -> np.ndarray:
    """The held-out maps ``(N, rows, cols, p)`` of ``ref``; `InputError` naming ``path`` unless
    they, and its ``train`` / ``floor`` maps, are abundance maps that go with them."""
    from ..evaluate.maps import check_maps

    held = check_maps(ref["heldout"], f"{path}: held-out maps").astype(np.float32)
    for key, what in (("train", "training maps"), ("floor", "floor maps")):
        if ref.get(key) is None:
            continue
        m = check_maps(ref[key], f"{path}: {what}")
        if (m.shape[1:] != held.shape[1:]) if key == "floor" else (m.shape[-1] != held.shape[-1]):
            raise in_file(path, f"{what} have shape {m.shape[1:]} (rows, cols, p) but the held-out maps "
                                f"{held.shape[1:]}; expected " + ("the same size and p" if key == "floor" else
                                                                  "the same p"))
    return held


@app.command("evaluate-synthesis")
def evaluate_synthesis_cmd(
    source: Path = typer.Argument(..., metavar="MODEL_DIR|SAMPLES",
                                  help="A trained model folder (samples are drawn), or samples: a synthesize "
                                       "output folder or .npz with 'abundances'."),
    reference: Path = typer.Option(None, "--reference", "-r",
                                   help="Held-out real maps: .npz with 'heldout' (+ 'floor', 'train') or "
                                        "'abundances', or a model folder. Default: the model's held-out blocks."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    count: int = typer.Option(None, "--count", "-n", help="Number of samples: drawn from a model (default: as many as held-out maps), or the "
                                            "first N of the given samples (default: all)."),
    sampler: str = typer.Option(None, "--sampler", help="Sampler when drawing from a model: ddim, dpm or ddpm.",
                                show_default=DEFAULT_SAMPLER),
    steps: int = typer.Option(None, "--steps", help="Sampling steps when drawing from a model (default: the "
                                                    "sampler's default)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (sampling, baselines, projections)."),
) -> None:
    """Realism of synthetic abundance maps vs held-out real maps, with Dirichlet and
    Gaussian-random-field baselines and the real-vs-real floor.

    Samples are scored against held-out maps of their own size: a synthesize folder made without
    --size (maps of the model's training patch, the held-out block size).

    Example: unmixgen evaluate-synthesis models/samson --sampler dpm --steps 20
    Example: unmixgen synthesize models/samson --count 16 --out synth && unmixgen evaluate-synthesis synth/ --reference models/samson --json
    """
    from ..evaluate.synthesis import evaluate_synthesis, format_realism_table
    from ..runs.sources import load_abundance_maps

    if count is not None and count < 1:
        raise InputError(f"--count {count}: expected at least 1")
    if steps is not None and steps < 1:
        raise InputError(f"--steps {steps}: expected at least 1")
    check_range("seed", seed, low=0, integer=True)  # numpy's generators take no negative seed
    if not source.exists():
        raise in_file(source, "no such file or folder; expected a model folder, a synthesize output folder or an .npz")
    is_model = source.is_dir() and not _is_maps_folder(source)
    if not is_model:  # given samples are scored as they are: how to draw them was dropped without a word
        for flag, value in (("--sampler", sampler), ("--steps", steps)):
            if value is not None:
                raise InputError(f"{flag} {value}: applies when drawing samples from a model folder; {source} "
                                 "holds samples, which are scored as they are")
    model = None
    if is_model:
        from ..priors.abundance.model import load_model

        model = load_model(source)
    if reference is not None:
        if not reference.exists():
            raise in_file(reference, "no such file or folder; expected held-out maps (.npz) or a model folder")
        ref = _reference_arrays(reference)
    elif model is not None:
        ref = dict(model.holdout())
    else:
        raise InputError("--reference is required when evaluating samples; give held-out maps or a model folder")
    ref_path = reference if reference is not None else source
    held = _check_reference(ref, ref_path)
    if model is not None:
        if held.shape[-1] != model.n_endmembers:
            raise in_file(ref_path, f"held-out maps have {held.shape[-1]} endmembers but the model {source} has "
                                    f"{model.n_endmembers}")
        n = count or len(held)
        sampler = sampler or DEFAULT_SAMPLER
        samples = model.sample(n, size=(int(held.shape[1]), int(held.shape[2])), sampler=sampler, steps=steps, seed=seed,
                               progress=not as_json)
    else:
        samples, _ = load_abundance_maps(source)
        if count is not None:
            if count > len(samples):
                raise in_file(source, f"holds {len(samples)} maps but --count {count} asked for more")
            samples = samples[:count]
    if samples.shape[1:] != held.shape[1:]:
        raise in_file(source, f"samples are {samples.shape[1]}x{samples.shape[2]} px with p={samples.shape[3]} but "
                              f"the held-out maps of {ref_path} are {held.shape[1]}x{held.shape[2]} px with "
                              f"p={held.shape[3]}; expected the same size and p")
    result = evaluate_synthesis(samples, held, train=ref.get("train"), floor=ref.get("floor"), seed=seed)
    result["source"] = str(source)
    result["reference"] = str(reference) if reference is not None else str(source)
    if model is not None:
        result["sampler"] = sampler
        result["steps"] = steps
    if as_json:
        print(json.dumps(jsonable(result)))
    else:
        print(format_realism_table(result))
