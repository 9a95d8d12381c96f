"""Semi-blind unmixing with HybridSTU: endmembers, training maps, training and application."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..scene import stored_band_order


# ---------------------------------------------------------------------------------------------
# semi-blind unmixing with HybridSTU
# ---------------------------------------------------------------------------------------------
def stu_endmembers(scene, source: str | Path) -> tuple[np.ndarray, list[str]]:
    """Endmembers from ``source`` (CSV, .npz, result folder, ENVI spectral library ``.sli``,
    ``LIB.mat:names``, ``LIB.sli:names``) on the scene's
    bands (`unmixgen.runs.endmembers.fit_to_bands`); `InputError` when they do not cover every
    good band of the scene (the network reads every band)."""
    from ..errors import in_file
    from ..runs.endmembers import fit_to_bands, load_endmembers

    em = load_endmembers(source)
    E, covered = fit_to_bands(em, scene.wavelengths, scene.bands, stored_order=stored_band_order(scene),
                              selected=scene.metadata.get("selected_bands"))
    missing = int((~covered & scene.good_bands).sum())
    if missing:
        raise in_file(source, f"endmembers cover {int((covered & scene.good_bands).sum())} of the scene's "
                      f"{int(scene.good_bands.sum())} good bands ({missing} outside their wavelengths or next to "
                      "channels their library deleted); expected "
                      "spectra covering every band of the scene")
    bad = int((~np.isfinite(E[:, scene.good_bands])).any(axis=0).sum())
    if bad:
        raise in_file(source, f"endmembers are NaN or Inf at {bad} of the scene's good bands (a result unmixed on "
                      "fewer bands?); expected spectra defined on every good band")
    return E, list(em.names)


def maps_source(spec: str | None) -> str | None:
    """The file or folder the training-map ``spec`` reads (`stu_training_maps`): the model of
    ``prior:MODEL`` or a maps file/folder; None for ``grf``, ``dirichlet``, ``prior:demo``."""
    if spec is None or spec in ("grf", "dirichlet"):
        return None
    if spec.startswith("prior:"):
        name = spec[len("prior:"):]
        return None if name == "demo" else name
    return spec


def stu_training_maps(spec: str, p: int, *, n_maps: int = 24, map_size: int = 48, seed: int = 0,
                      device: str = "cpu"):
    """The training maps named by ``spec``: ``"grf"`` or ``"dirichlet"`` (fitted by the
    estimator), ``"prior:MODEL"`` (``n_maps`` maps of ``map_size`` pixels sampled from an
    abundance prior, or ``prior:demo`` for the shipped one) or a file/folder of maps
    (`unmixgen.runs.sources.load_abundance_maps`). `InputError` when the count of maps
    differs from ``p``."""
    from ..errors import in_file
    from ..runs.sources import load_abundance_maps

    if spec in ("grf", "dirichlet"):
        return spec
    if spec.startswith("prior:"):
        from ..priors.abundance.model import load_model, shipped_demo_model

        name = spec[len("prior:"):]
        model = shipped_demo_model(device) if name == "demo" else load_model(name, device)
        if model.n_endmembers != p:
            raise InputError(f"{spec}: the abundance prior makes maps of {model.n_endmembers} endmembers; "
                             f"expected {p} (one per given endmember)")
        return model.sample(n_maps, size=map_size, sampler="dpm", steps=20, seed=seed)
    maps, _ = load_abundance_maps(spec)
    if maps.shape[-1] != p:
        raise in_file(spec, f"maps have {maps.shape[-1]} endmembers; expected {p} (one per given endmember)")
    return maps


def scene_halves(rows: int, cols: int, axis: int = 1) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Two spatially disjoint halves of a ``rows x cols`` grid as ``(row slice, column slice)``
    pairs: the first ``n // 2`` columns (``axis=1``, left/right) or rows (``axis=0``,
    top/bottom) and the rest. Together they cover every pixel exactly once; index a map
    ``A (rows, cols, p)`` with ``A[half]``."""
    from ..errors import ParameterError

    if axis not in (0, 1):
        raise ParameterError("axis", axis, "expected 0 (top/bottom) or 1 (left/right)")
    n = (rows, cols)[axis]
    if n < 2:
        raise InputError(f"a grid of {rows} x {cols} pixels cannot be cut into two halves along axis {axis}")
    cut = n // 2
    whole = slice(0, (rows, cols)[1 - axis])
    first, second = slice(0, cut), slice(cut, n)
    if axis == 1:
        return (whole, first), (whole, second)
    return (first, whole), (second, whole)


def train_scene_prior(scene, endmembers, out: str | Path, *, max_minutes: float | None = None,
                      max_steps: int | None = 1500, smoothing: float | str = "auto", method: str = "fcls",
                      seed: int = 0,
                      device: str = "cpu", progress: bool = False, **options: Any) -> Path:
    """Train an abundance diffusion prior on the scene's own coarse maps, unsupervised.

    The coarse maps are the abundances of ``scene`` with ``endmembers (p, bands)`` on its
    good bands by ``method`` (an inverter of `unmixgen.unmix.inversion.METHODS`: FCLS, or
    ``"scaled"`` where `HybridSTU` corrects the brightness-free answer, its ``base``),
    smoothed by a Gaussian of ``smoothing`` pixels (``"auto"``: chosen from the scene's noise
    estimate, `unmixgen.unmix.hybridstu.smoothing.auto_smoothing`) like the maps the GRF and
    Dirichlet sources of `HybridSTU` are fitted to (``map_smoothing``), so the three sources start from the same
    maps and the prior's channels are the endmembers' order. They are
    written as a result folder ``out/unmix`` and the prior is trained into ``out/model``
    (`unmixgen.workflows.abundance.train_abundance_model`; ``options`` are prior settings).
    The default budget is a step count, not a time: 3 minutes on a loaded CPU gave ~560
    steps and a prior whose samples were under-dispersed (on Samson the per-channel standard
    deviation was half that of the maps it learned) and differed from run to run.
    Returns the model folder, for ``stu_training_maps("prior:" + str(folder), p)``.
    """
    import shutil

    from ..atomic import atomic_dir, check_output_dir
    from ..runs.folder import save_result
    from ..unmix.hybridstu.smoothing import smooth_maps
    from ..unmix.inversion import invert_scene
    from .abundance import train_abundance_model

    out = Path(out)
    # both folders are created here: an existing one (someone's result or model) is refused
    check_output_dir(out / "unmix", False)
    check_output_dir(out / "model", False)
    E = np.asarray(endmembers, np.float32)
    A = invert_scene(scene, E, method, progress=False)  # tiled, on the good bands
    if smoothing == "auto":
        from ..unmix.hybridstu.data import noise_estimate
        from ..unmix.hybridstu.smoothing import auto_smoothing, map_noise_variance

        good = np.asarray(scene.good_bands, bool)
        Y = scene.valid_pixels()
        band_noise = np.diag(noise_estimate(Y if good.all() else Y[:, good], seed=seed)[2])  # no copy of all bands
        smoothing, _ = auto_smoothing(A, scene.mask, map_noise_variance(E[:, good], band_noise))
    if smoothing > 0:
        A = smooth_maps(A, scene.mask, smoothing)
    made = not out.exists()
    with atomic_dir(out / "unmix") as tmp:
        save_result(tmp, scene, endmembers=E, abundances=A, figures=False)
    try:
        train_abundance_model([out / "unmix"], out / "model", max_minutes=max_minutes, max_steps=max_steps,
                              device=device, progress=progress, seed=seed, **options)
    except BaseException:
        if not (out / "model").exists():  # no model was kept: its maps alone would block the next run
            shutil.rmtree(out / "unmix", ignore_errors=True)
            if made and out.is_dir() and not any(out.iterdir()):
                out.rmdir()
        raise
    return out / "model"


def train_stu(scene_path: str | Path, endmembers_file: str | Path, out: str | Path, *, maps: str = "grf",
              overwrite: bool = False, **params: Any) -> dict:
    """Train a HybridSTU model for a scene and write its model folder (``unmixgen train-stu``).

    ``params`` go to `unmixgen.unmix.hybridstu.HybridSTU`; the scene is unmixed as part of
    training (its abundances are not written here). Returns the training history.
    """
    from ..atomic import check_output_dir
    from ..io import read_scene, require_path
    from ..unmix.hybridstu import HybridSTU

    require_path(scene_path, "scene_path")
    check_output_dir(out, overwrite, [scene_path, endmembers_file, maps_source(maps)])
    scene = read_scene(scene_path)
    scene.require_valid()
    E, names = stu_endmembers(scene, endmembers_file)
    est = HybridSTU(int(E.shape[0]), **params)
    est.check_params()
    est.check_scene(scene)
    training = stu_training_maps(maps, int(E.shape[0]), n_maps=est.n_maps, map_size=est.map_size, seed=est.seed,
                                 device=est.device)
    est.fit(scene, endmembers=E, maps=training)
    est.history_["maps"] = maps
    est.history_["warnings"] = _scale_notes(scene, est, endmembers_file)
    est.save_pretrained(out, overwrite=overwrite, names=names, wavelengths=scene.wavelengths)
    return est.history_


def unmix_hybridstu(scene, *, model: str | Path | None = None, endmembers_file: str | Path | None = None,
                    n_endmembers: int | str | None = None, maps: str = "grf", seed: int = 0,
                    **params: Any) -> tuple[np.ndarray, np.ndarray, list[str] | None, dict]:
    """Semi-blind abundances of ``scene`` (a `Scene` or a ``(rows, cols, bands)`` array) with
    HybridSTU (``unmixgen unmix --method hybridstu``).

    With ``model``: apply a trained model as it is (``params``: ``device`` and ``tile`` only;
    training parameters, ``n_endmembers`` and ``maps`` are refused). Else take the endmembers from ``endmembers_file``,
    or extract ``n_endmembers`` with the blind default method, then simulate, train and
    apply in one go. Returns ``(E, A, names, info)`` for the run folder; when the model corrects
    the brightness-free answer, ``info["arrays"]["brightness"]`` is the per-pixel brightness
    ``(rows, cols)`` (an array: the caller takes it out before writing ``info`` as JSON).
    """
    from ..scene import as_scene
    from ..unmix.hybridstu import HybridSTU

    scene = as_scene(scene)  # a (rows, cols, bands) array too, as the estimators take it
    t0 = time.perf_counter()
    if model is not None:
        if endmembers_file is not None:
            raise InputError("give either a trained model or endmembers to train one, not both")
        _check_apply_params(params, n_endmembers, maps)
        est = HybridSTU.from_pretrained(model, **{k: params[k] for k in ("device", "tile") if k in params})
        scaled = est.corrects_scaled()
        A, brightness = est.transform(scene, with_brightness=True) if scaled else (est.transform(scene), None)
        notes = _scale_notes(scene, est, model)
        info = {"method": "hybridstu", "model": str(model), "n_endmembers": int(est.endmembers_.shape[0]),
                "training": est.history_, "timings_s": {"apply": time.perf_counter() - t0},
                "warnings": notes, **_arrays(brightness)}
        return est.endmembers_, A, est.names_, info
    info: dict[str, Any] = {"method": "hybridstu"}
    if endmembers_file is not None and n_endmembers is not None:  # the count went without a word
        from ..errors import ParameterError

        raise ParameterError("n_endmembers", n_endmembers, "expected either a number of endmembers to extract or "
                             "an endmembers file (endmembers_file), not both", mentions=("endmembers_file",))
    if endmembers_file is not None:
        E, names = stu_endmembers(scene, endmembers_file)
        info["endmember_source"] = str(endmembers_file)
    else:
        from ..unmix.registry import DEFAULT_METHOD, make_method

        if n_endmembers is None:
            raise InputError("hybridstu needs endmembers: give a model, an endmembers file or a number of "
                             "endmembers to extract")
        blind = make_method(DEFAULT_METHOD, n_endmembers, seed=seed).fit(scene)
        E, names = blind.endmembers_, None
        info["endmember_source"] = f"extracted by {DEFAULT_METHOD}"
    est = HybridSTU(int(E.shape[0]), seed=seed, **params)
    est.check_params()
    est.check_scene(scene)
    training = stu_training_maps(maps, int(E.shape[0]), n_maps=est.n_maps, map_size=est.map_size, seed=seed,
                                 device=est.device)
    est.fit(scene, endmembers=E, maps=training)
    info["warnings"] = _scale_notes(scene, est, info["endmember_source"])
    info.update({"n_endmembers": int(E.shape[0]), "maps": maps, "training": est.history_,
                 "parameters": {k: v for k, v in est.get_params().items()},
                 "timings_s": {"total": time.perf_counter() - t0}, **_arrays(est.brightness_)})
    return E, est.abundances_, names, info


APPLY_PARAMS = ("device", "tile", "progress")
"""The `HybridSTU` parameters that apply a trained model (``progress`` shows nothing then)."""


def _check_apply_params(params: dict[str, Any], n_endmembers, maps: str) -> None:
    """`ParameterError` for what a trained model is not applied with: ``n_endmembers``, training
    ``maps`` or a `HybridSTU` parameter of its training (a model is applied as it is), or a
    name that is no `HybridSTU` parameter."""
    import inspect

    from ..errors import ParameterError
    from ..unmix.hybridstu import HybridSTU

    known = inspect.signature(HybridSTU).parameters
    given = {**params, **({"n_endmembers": n_endmembers} if n_endmembers is not None else {}),
             **({"maps": maps} if maps != "grf" else {})}
    for name, value in given.items():
        if name not in known and name != "maps":
            raise ParameterError(name, value, "is not a parameter of HybridSTU")
        if name not in APPLY_PARAMS:
            raise ParameterError(name, value, "sets the training of hybridstu without a model; a trained model is "
                                 f"applied as it is (with {', '.join(APPLY_PARAMS)} only)")


def _scale_notes(scene, est, source) -> list[str]:
    """``[warning]`` (also shown) when ``est`` corrects FCLS and the scene's pixels are on another
    scale than its endmembers (from ``source``), which sum-to-one abundances cannot absorb, as
    ``--method fcls`` warns; ``[]`` otherwise (a brightness-free model absorbs the factor)."""
    from ..errors import note
    from ..runs.endmembers import scale_mismatch

    notes: list[str] = []
    if not est.corrects_scaled():
        mismatch = scale_mismatch(scene, est.endmembers_, np.asarray(scene.good_bands, bool))
        if mismatch:
            note(notes, f"{source}: {mismatch}", stacklevel=3)
    return notes


def _arrays(brightness: np.ndarray | None) -> dict[str, Any]:
    """``{"arrays": {"brightness": (rows, cols)}}`` for a model whose maps are fractions of each
    pixel's brightness (`HybridSTU.corrects_scaled`), else ``{}``."""
    return {} if brightness is None else {"arrays": {"brightness": brightness}}
