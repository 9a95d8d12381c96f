"""Training an abundance prior from result folders, and synthesizing maps with it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir
from ..errors import check_range


def train_abundance_model(results: list[str | Path] | str | Path, out: str | Path, *, max_minutes: float | None = None,
                          max_steps: int | None = None, resume: bool = False, export: str | Path | None = None,
                          label_from: str | None = None, max_sad: float | None = None, overwrite: bool = False,
                          device: str = "cpu", progress: bool = True, **options: Any) -> dict:
    """Train an abundance prior from ``unmix`` result folders (the Python form of
    ``unmixgen train-abundance``).

    Parameters
    ----------
    results : result folders whose abundance maps to learn, or one folder (none when ``resume``).
    out : model folder to create (refused when it exists, unless ``overwrite``), or to
        continue training when ``resume``.
    max_minutes, max_steps : training budget of this call (at least one).
    resume : continue the model in ``out`` from its last checkpoint, with its saved data and
        settings (``options``, ``label_from`` and ``max_sad`` are then refused: they would not be
        used).
    export : also write a small sampling-only copy of the model to this folder.
    label_from, max_sad : how maps are labelled and matched across folders
        (`unmixgen.runs.sources.load_training_maps`; None: its default).
    options : settings of the prior, keys of `unmixgen.priors.abundance.settings.DEFAULTS`
        (``patch``, ``width``, ``representation``, ``seed``, ...; None: the default).

    Returns
    -------
    The training summary (`unmixgen.nn.trainer.TrainingSummary.as_dict`). The training
    curve is drawn to ``out/training_curve.png``.
    """
    from ..atomic import check_output_dir, model_dir_build
    from ..errors import ParameterError, in_file
    from ..nn.checkpoint import has_checkpoint
    from ..nn.device import resolve_device
    from ..nn.trainer import check_budget
    from ..priors.abundance.settings import resolve_options
    from ..priors.abundance.train import create_model_folder, export_for_sampling, train
    from ..report.figures import plot_training_curve
    from ..runs.sources import load_training_maps

    check_budget(max_steps, max_minutes)
    resolve_device(device)
    results = [results] if isinstance(results, (str, os.PathLike)) else list(results)
    out = Path(out)
    if export is not None:
        # the copy replaces what is at --export: never the model it copies nor a folder it reads
        here, model = os.path.realpath(export), os.path.realpath(out)
        if here == model or model.startswith(here.rstrip(os.sep) + os.sep) or here.startswith(model + os.sep):
            raise ParameterError("export", os.fspath(export), "is the model folder (out), holds it or lies "
                                 "inside it; expected another folder for the sampling-only copy")
        check_output_dir(export, overwrite, list(results))
    resolve_options(options)  # bad settings fail before any map is read (and unknown ones when resuming too)
    if resume:
        if results:
            raise ParameterError("results", [str(r) for r in results], "expected none when resuming (the model "
                                 "folder holds its training data)")
        # the model continues with the settings it was created with: new ones went without a word
        asked = {k: v for k, v in {**options, "label_from": label_from, "max_sad": max_sad}.items() if v is not None}
        if asked:
            name = sorted(asked)[0]
            raise ParameterError(name, asked[name], "not used when resuming (the model continues with the settings "
                                 "it was created with); expected it only for a new model")
        if not out.is_dir():
            raise in_file(out, "no such model folder to resume")
    else:
        if not results:
            raise ParameterError("results", [], "expected one or more output folders of unmix_scene (`unmixgen unmix`)")
        if max_sad is not None:
            check_range("max_sad", max_sad, low=0, low_open=True, high=3.1416)  # a bad value is that error
        if max_sad is not None and len(results) < 2:  # nothing to match: the limit went without a word
            raise ParameterError("max_sad", max_sad, "limits the spectral angle of endmembers matched across "
                                 "result folders, and one folder has none to match; expected two or more folders")
        given = {k: v for k, v in (("label_from", label_from), ("max_sad", max_sad)) if v is not None}
        data = load_training_maps(list(results), **given)

    def trained(folder: Path) -> dict:
        info = train(folder, max_steps=max_steps, max_minutes=max_minutes, device=device, progress=progress)
        if info["curve_steps"]:
            plot_training_curve(info["curve_steps"], info["curve_losses"], folder / "training_curve.png",
                                ylabel="loss (MSE)")
        return info

    if resume:
        info = trained(out)
    else:
        # a new model that failed before its first checkpoint is no model; a replaced one is
        # kept until the new one is trained
        with model_dir_build(out, overwrite, inputs=results, usable=has_checkpoint) as build:
            with atomic_dir(build, inputs=results) as tmp:
                create_model_folder(tmp, data, **options)
            info = trained(build)
    if export is not None:
        export_for_sampling(out, export, overwrite=overwrite)
    return info


def synthesize_maps(model_dir: str | Path, count: int, out: str | Path, *, size: int | tuple[int, int] | None = None,
                    sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
                    label: str | None = None, seed: int = 0, batch_size: int | None = None,
                    device: str = "cpu", overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Sample ``count`` abundance maps from the prior in ``model_dir`` into the folder ``out``
    (``unmixgen synthesize``): ``abundances.npz`` (``abundances`` (count, rows, cols, p),
    ``names``), one GeoTIFF per map, a PNG grid and ``run.json``. ``size``: N (N x N maps) or
    ``(rows, cols)``; its ``size`` is ``[rows, cols]``. Sampling options are those of
    `unmixgen.priors.abundance.model.AbundanceModel.sample` (None: its default). Returns the
    run record, with ``shape``."""
    from ..atomic import check_output_dir, write_json
    from ..io import write_scene
    from ..priors.abundance.model import load_model
    from ..report.figures import plot_abundance_grid
    from ..runs.folder import run_record
    from ..scene import Scene

    check_range("seed", seed, low=0, integer=True)  # as every other command refuses it
    check_output_dir(out, overwrite, [model_dir])
    model = load_model(model_dir, device=device)
    options = {k: v for k, v in (("size", size), ("sampler", sampler), ("batch_size", batch_size)) if v is not None}
    t0 = time.monotonic()
    maps = model.sample(count, steps=steps, seed=seed, guidance=guidance, label=label, progress=progress, **options)
    seconds = time.monotonic() - t0
    rec = run_record("synthesize", {"model": str(model_dir), "count": count, "size": list(maps.shape[1:3]),
                                    "sampler": sampler, "steps": steps, "guidance": guidance,
                                    "label": label, "batch_size": batch_size, "device": device}, seed=seed)
    rec["timings_s"]["sampling"] = seconds
    rec["model_step"] = model.step
    rec["shape"] = list(maps.shape)
    rec["validity"] = {"min": float(maps.min()), "max_sum_error": float(np.abs(maps.sum(-1) - 1).max())}
    if model.rep.name == "simplex":
        rec["validity"]["mean_projection_distance"] = model.last_projection_distance
    with atomic_dir(out, overwrite, [model_dir]) as tmp:
        np.savez_compressed(tmp / "abundances.npz", abundances=maps, names=np.array(model.names))
        for i, m in enumerate(maps):
            write_scene(Scene(m, name=f"map_{i:03d}", metadata={"band_names": model.names}), tmp / f"map_{i:03d}.tif")
        shown = min(16, len(maps))
        plot_abundance_grid(maps[:shown], tmp / "abundances.png", names=model.names,
                            titles=[f"map_{i:03d}" for i in range(shown)],
                            title=f"synthetic abundance maps ({shown} of {len(maps)}), {maps.shape[1]}x{maps.shape[2]}"
                                  "\ncolour = abundance-weighted mix of endmember colours")
        write_json(tmp / "run.json", rec)
    return rec
