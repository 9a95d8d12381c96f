"""The chain as library functions: what the CLI and the demo call, usable from a notebook.

Each function takes paths and parameters, does one user-level job (train a prior from result
folders, ...) and returns what it made. Parameters are validated by the functions they call;
errors name the parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .atomic import atomic_dir
from .nn.device import resolve_device
from .priors.abundance.train import create_model_folder, train
from .runs.sources import load_training_maps


def train_abundance_model(results: list[str | Path], out: str | Path, *, max_minutes: float | None = None,
                          max_steps: int | None = None, resume: bool = False, export: str | Path | None = None,
                          label_from: str | None = None, max_sad: float | None = None, overwrite: bool = False,
                          device: str = "cpu", progress: bool = True, **options: Any) -> dict:
    """Train an abundance prior from ``unmix`` result folders (the Python form of
    ``unmixgen train-abundance``).

    Parameters
    ----------
    results : result folders whose abundance maps to learn (none when ``resume``).
    out : model folder to create (refused when it exists, unless ``overwrite``), or to
        continue training when ``resume``.
    max_minutes, max_steps : training budget of this call (at least one).
    resume : continue the model in ``out`` from its last checkpoint, with its saved data and
        settings (``options`` are then ignored).
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
    from .atomic import check_output_dir
    from .errors import ParameterError, in_file
    from .nn.trainer import check_budget
    from .priors.abundance.settings import resolve_options
    from .priors.abundance.train import export_for_sampling
    from .report.figures import plot_training_curve

    check_budget(max_steps, max_minutes)
    resolve_device(device)
    if export is not None:
        check_output_dir(export, overwrite)
    out = Path(out)
    if resume:
        if results:
            raise ParameterError("results", [str(r) for r in results], "expected none when resuming (the model "
                                 "folder holds its training data)")
        if not out.is_dir():
            raise in_file(out, "no such model folder to resume")
    else:
        resolve_options(options)  # bad settings fail before any map is read
        if not results:
            raise ParameterError("results", [], "expected one or more `unmixgen unmix` result folders")
        given = {k: v for k, v in (("label_from", label_from), ("max_sad", max_sad)) if v is not None}
        data = load_training_maps(list(results), **given)
        with atomic_dir(out, overwrite=overwrite) as tmp:
            create_model_folder(tmp, data, **options)
    info = train(out, max_steps=max_steps, max_minutes=max_minutes, device=device, progress=progress)
    if info["curve_steps"]:
        plot_training_curve(info["curve_steps"], info["curve_losses"], out / "training_curve.png",
                            ylabel="loss (MSE)")
    if export is not None:
        export_for_sampling(out, export, overwrite=overwrite)
    return info
