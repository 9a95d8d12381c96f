"""The chain as library functions: what the CLI and the demo call, usable from a notebook.

Each function takes paths and parameters, does one user-level job (train a prior from result
folders, ...) and returns what it made. Parameters are validated by the functions they call;
errors name the parameter.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_dir
from .errors import InputError, check_range

# Heavy rooms (torch) are imported inside the functions that need them, so `unmixgen unmix`
# with given endmembers never loads torch.


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
    from .nn.device import resolve_device
    from .nn.trainer import check_budget
    from .priors.abundance.settings import resolve_options
    from .priors.abundance.train import create_model_folder, export_for_sampling, train
    from .report.figures import plot_training_curve
    from .runs.sources import load_training_maps

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
    try:
        info = train(out, max_steps=max_steps, max_minutes=max_minutes, device=device, progress=progress)
    except BaseException:
        # a new model that failed before its first checkpoint is no model: leave nothing behind
        from .nn.checkpoint import latest_checkpoint

        if not resume and latest_checkpoint(out, required=False) is None:
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise
    if info["curve_steps"]:
        plot_training_curve(info["curve_steps"], info["curve_losses"], out / "training_curve.png",
                            ylabel="loss (MSE)")
    if export is not None:
        export_for_sampling(out, export, overwrite=overwrite)
    return info


def run_demo(out: str | Path = "demo-output", *, train: bool = False, train_minutes: float = 3.0,
             count: int = 8, seed: int = 0, overwrite: bool = False) -> dict[str, Any]:
    """The whole chain on the embedded synthetic scene, written to the folder ``out``.

    synthetic scene -> blind unmix -> abundance diffusion prior (the shipped one, or trained
    for ``train_minutes`` when ``train``) -> ``count`` synthetic 64x64 maps -> realism against
    held-out real blocks -> simulated scenes -> ``report.html``. Returns the run record
    (also written as ``run.json``).
    """
    out = Path(out)
    from .atomic import atomic_dir, check_output_dir, write_json
    from .evaluate.synthesis import evaluate_synthesis, format_realism_table
    from .evaluate.unmixing import evaluate
    from .io import write_scene
    from .priors.abundance.model import load_model, shipped_demo_model
    from .report.figures import plot_abundance_grid, plot_rgb
    from .report.html import html_table, write_html_report
    from .runs.folder import run_record, save_result
    from .simulate.procedural import default_scene
    from .simulate.scene import simulate
    from .unmix.registry import DEFAULT_METHOD, make_method

    check_output_dir(out, overwrite)
    check_range("count", count, low=1, high=1024, integer=True)
    check_range("train_minutes", train_minutes, low=0, low_open=True)
    record = run_record("demo", {"train": train, "count": count}, seed=seed)
    timings = record["timings_s"]
    with atomic_dir(out, overwrite) as tmp:
        t = time.perf_counter()
        scene = default_scene()
        write_scene(scene, tmp / "scene.npz")
        timings["make_scene"] = time.perf_counter() - t

        # 1. blind unmixing
        t = time.perf_counter()
        est = make_method(DEFAULT_METHOD, scene.truth.n_endmembers, seed=seed).fit(scene)
        (tmp / "unmix").mkdir()
        save_result(tmp / "unmix", scene, endmembers=est.endmembers_, abundances=est.abundances_)
        metrics = evaluate(endmembers=est.endmembers_, abundances=est.abundances_,
                           ref_endmembers=scene.truth.endmembers, ref_abundances=scene.truth.abundances,
                           cube=scene.load(), mask=scene.mask, names=scene.truth.names)
        write_json(tmp / "unmix" / "run.json", {**run_record("unmix", {"method": est.name}, seed=seed),
                                                **est.info_, "metrics": metrics})
        record["unmix"] = {"method": est.name, "metrics": metrics}
        timings["unmix"] = time.perf_counter() - t

        # 2. abundance prior: shipped checkpoint or a fresh short training on the unmixed maps
        t = time.perf_counter()
        if train:
            model_dir = tmp / "model"
            train_abundance_model([tmp / "unmix"], model_dir, max_minutes=train_minutes, seed=seed)
            model = load_model(model_dir)
        else:
            model = shipped_demo_model()
        timings["model"] = time.perf_counter() - t

        # 3. synthesis
        t = time.perf_counter()
        size = 64
        maps = model.sample(count, size=size, sampler="dpm", steps=20, seed=seed)
        np.savez_compressed(tmp / "synthetic_abundances.npz", abundances=maps)
        timings["synthesize"] = time.perf_counter() - t
        plot_abundance_grid(maps, tmp / "synthetic_maps.png",
                            title=f"synthetic abundance maps, {size}x{size} (tiled sampling)")

        # 4. realism against the model's held-out blocks (real maps it never saw, same size)
        t = time.perf_counter()
        hold = model.holdout()
        h = hold["heldout"].shape[1]
        small = model.sample(max(len(hold["heldout"]), 16), size=h, sampler="dpm", steps=20, seed=seed + 1)
        realism = evaluate_synthesis(small, hold["heldout"], train=hold["train"], floor=hold["floor"], seed=seed)
        record["realism"] = realism
        k = min(8, len(hold["heldout"]), len(small))
        plot_abundance_grid(hold["heldout"][:k], tmp / "real_blocks.png",
                            title=f"real held-out blocks, {h}x{h} (never trained on)")
        plot_abundance_grid(small[:k], tmp / "synthetic_blocks.png", title=f"synthetic maps, {h}x{h}")
        timings["realism"] = time.perf_counter() - t

        # 5. simulate sensor outputs from the synthetic maps and the unmixed endmembers
        t = time.perf_counter()
        sims = simulate(maps[:2], est.endmembers_, wavelengths=scene.wavelengths, snr_db=30.0, seed=seed)
        (tmp / "simulated").mkdir()
        for i, s in enumerate(sims):
            sim_scene = s.to_scene()
            write_scene(sim_scene, tmp / "simulated" / f"scene_{i:03d}.npz")
            plot_rgb(sim_scene, tmp / "simulated" / f"scene_{i:03d}_rgb.png")
        timings["simulate"] = time.perf_counter() - t

        m = metrics
        unmix_rows = [{"metric": k, "value": f"{m[k]:.3f}"} for k in
                      ("abundance_rmse_percent", "sad_deg_mean", "sre_db", "reconstruction_rmse", "psnr_db", "ssim_mean")
                      if isinstance(m.get(k), (int, float))]
        write_html_report(tmp, "unmixgen demo", [
            ("Scene", ["unmix/rgb.png"], f"Synthetic scene {scene.rows}x{scene.cols}x{scene.bands}, "
                                         f"{scene.truth.n_endmembers} endmembers, 30 dB."),
            ("Blind unmixing", ["unmix/abundances.png", "unmix/endmembers.png"],
             f"Method {est.name}." + html_table(unmix_rows)),
            ("Real vs synthetic abundance maps", ["real_blocks.png", "synthetic_blocks.png", "synthetic_maps.png"],
             "Abundance diffusion model, DPM-Solver++ 20 steps. Realism against the held-out real "
             "blocks, with a per-pixel Dirichlet and a Gaussian-random-field baseline and the "
             "real-vs-real floor:<pre>" + html.escape(format_realism_table(realism)) + "</pre>"),
            ("Simulated scenes", [f"simulated/scene_{i:03d}_rgb.png" for i in range(len(sims))],
             "Synthetic maps mixed with the unmixed endmembers, white noise at 30 dB."),
        ])
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        write_json(tmp / "run.json", record)
    return record


# ---------------------------------------------------------------------------------------------
# semi-blind unmixing with HybridSTU
# ---------------------------------------------------------------------------------------------
def stu_endmembers(scene, source: str | Path) -> tuple[np.ndarray, list[str]]:
    """Endmembers from ``source`` (CSV, .npz, result folder, ``LIB.mat:names``) on the scene's
    bands (`unmixgen.runs.sources.fit_to_bands`); `InputError` when they do not cover every
    good band of the scene (the network reads every band)."""
    from .errors import in_file
    from .runs.sources import fit_to_bands, load_endmembers

    em = load_endmembers(source)
    E, covered = fit_to_bands(em, scene.wavelengths, scene.bands)
    missing = int((~covered & scene.good_bands).sum())
    if missing:
        raise in_file(source, f"endmembers cover {int((covered & scene.good_bands).sum())} of the scene's "
                      f"{int(scene.good_bands.sum())} good bands ({missing} outside their wavelengths); expected "
                      "spectra covering every band of the scene")
    return E, list(em.names)


def stu_training_maps(spec: str, p: int, *, n_maps: int = 24, map_size: int = 48, seed: int = 0,
                      device: str = "cpu"):
    """The training maps named by ``spec``: ``"grf"`` or ``"dirichlet"`` (fitted by the
    estimator), ``"prior:MODEL"`` (``n_maps`` maps of ``map_size`` pixels sampled from an
    abundance prior, or ``prior:demo`` for the shipped one) or a file/folder of maps
    (`unmixgen.runs.sources.load_abundance_maps`). `InputError` when the count of maps
    differs from ``p``."""
    from .errors import InputError, in_file
    from .runs.sources import load_abundance_maps

    if spec in ("grf", "dirichlet"):
        return spec
    if spec.startswith("prior:"):
        from .priors.abundance.model import load_model, shipped_demo_model

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


def train_stu(scene_path: str | Path, endmembers_file: str | Path, out: str | Path, *, maps: str = "grf",
              overwrite: bool = False, **params: Any) -> dict:
    """Train a HybridSTU model for a scene and write its model folder (``unmixgen train-stu``).

    ``params`` go to `unmixgen.unmix.hybridstu.HybridSTU`; the scene is unmixed as part of
    training (its abundances are not written here). Returns the training history.
    """
    from .atomic import check_output_dir
    from .io import read_scene
    from .unmix.hybridstu import HybridSTU

    check_output_dir(out, overwrite, [scene_path, endmembers_file])
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
    est.save_pretrained(out, overwrite=overwrite, names=names, wavelengths=scene.wavelengths)
    return est.history_


def unmix_hybridstu(scene, *, model: str | Path | None = None, endmembers_file: str | Path | None = None,
                    n_endmembers: int | str | None = None, maps: str = "grf", seed: int = 0,
                    **params: Any) -> tuple[np.ndarray, np.ndarray, list[str] | None, dict]:
    """Semi-blind abundances of ``scene`` with HybridSTU (``unmixgen unmix --method hybridstu``).

    With ``model``: apply a trained model. Else take the endmembers from ``endmembers_file``,
    or extract ``n_endmembers`` with the blind default method, then simulate, train and
    apply in one go. Returns ``(E, A, names, info)`` for the run folder.
    """
    from .errors import InputError
    from .unmix.hybridstu import HybridSTU

    t0 = time.perf_counter()
    if model is not None:
        if endmembers_file is not None:
            raise InputError("give either a trained model or endmembers to train one, not both")
        est = HybridSTU.from_pretrained(model, device=params.get("device", "cpu"))
        A = est.transform(scene)
        info = {"method": "hybridstu", "model": str(model), "n_endmembers": int(est.endmembers_.shape[0]),
                "training": est.history_, "timings_s": {"apply": time.perf_counter() - t0}}
        return est.endmembers_, A, est.names_, info
    info: dict[str, Any] = {"method": "hybridstu"}
    if endmembers_file is not None:
        E, names = stu_endmembers(scene, endmembers_file)
        info["endmember_source"] = str(endmembers_file)
    else:
        from .unmix.registry import DEFAULT_METHOD, make_method

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
    info.update({"n_endmembers": int(E.shape[0]), "maps": maps, "training": est.history_,
                 "parameters": {k: v for k, v in est.get_params().items()},
                 "timings_s": {"total": time.perf_counter() - t0}})
    return E, est.abundances_, names, info


def _training_spectra(sources: list[str | Path]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Spectra of every source on the first source's wavelengths: a USGS-layout library
    ``.mat`` (all its spectra), or anything `unmixgen.runs.sources.load_endmembers` reads
    (result folders, .csv, .npz); every source needs wavelengths."""
    from scipy.io import loadmat

    from .errors import InputError, in_file
    from .runs.sources import load_endmembers
    from .wavelengths import to_nm

    blocks, names = [], []
    wl0 = None
    for src in sources:
        path = Path(src)
        if path.suffix.lower() == ".mat" and path.is_file():
            m = loadmat(path)
            if "datalib" not in m:
                raise in_file(path, "not a spectral library in the USGS 1995 layout (needs 'datalib')")
            d = np.asarray(m["datalib"], np.float64)
            order = np.argsort(d[:, 0], kind="stable")
            wl, s = to_nm(d[order, 0], "um"), d[order, 3:].T
        else:
            em = load_endmembers(src)
            if em.wavelengths is None:
                raise in_file(path, "endmembers have no wavelengths; the spectra prior needs them")
            wl, s = em.wavelengths, em.spectra.astype(np.float64)
        if wl0 is None:
            wl0 = np.asarray(wl, np.float64)
        else:
            s = np.stack([np.interp(wl0, wl, row) for row in s])
        blocks.append(s)
        names.append(str(src))
    if wl0 is None:
        raise InputError("no training spectra given; expected a USGS library .mat or result folders")
    return np.concatenate(blocks), wl0, names


def train_spectra_model(sources: list[str | Path], out: str | Path, *, max_minutes: float | None = None,
                        max_steps: int | None = None, overwrite: bool = False, device: str = "cpu",
                        progress: bool = True, **options: Any) -> dict:
    """Train a 1D spectra prior (the Python form of ``unmixgen train-spectra``).

    Parameters
    ----------
    sources : a USGS-layout spectral library ``.mat`` and/or endmember sources (result
        folders, .csv, .npz) with wavelengths.
    out : model folder to create (refused when it exists, unless ``overwrite``).
    max_minutes, max_steps : training budget (at least one).
    options : keys of `unmixgen.priors.spectra.train.DEFAULTS` (None: the default).

    Returns the training summary; the curve is drawn to ``out/training_curve.png``.
    """
    from .nn.device import resolve_device
    from .nn.trainer import check_budget
    from .priors.spectra import train as spectra_train
    from .report.figures import plot_training_curve

    check_budget(max_steps, max_minutes)
    resolve_device(device)
    spectra_train.resolve_options(options)
    spectra, wl, names = _training_spectra(list(sources))
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        spectra_train.create_model_folder(tmp, spectra, wl, names, **options)
    info = spectra_train.train(out, max_steps=max_steps, max_minutes=max_minutes, device=device, progress=progress)
    if info["curve_steps"]:
        plot_training_curve(info["curve_steps"], info["curve_losses"], out / "training_curve.png",
                            ylabel="loss (MSE)")
    return info


def _shipped(name: str) -> Path:
    return Path(__file__).resolve().parent / "assets" / name


DEFAULT_ABUNDANCE_PRIOR = "refine_abundance"
"""The shipped one-vs-rest abundance prior (any p) under ``assets/``."""


def refine_result(scene_path: str | Path, init: str | Path, out: str | Path, *,
                  abundance_prior: str | Path | None = None, spectra_prior: str | Path | None = None,
                  samples: int = 16, steps: int = 20, rounds: int = 1, t0: float = 0.3, seed: int = 0,
                  device: str = "cpu", overwrite: bool = False, figures: bool = True,
                  progress: bool = True, **options: Any) -> dict:
    """Refine the result folder ``init`` of ``scene_path`` by posterior sampling (the Python
    form of ``unmixgen refine``); writes the run folder ``out``.

    Parameters
    ----------
    abundance_prior, spectra_prior : model folders (None: the shipped one-vs-rest abundance
        prior and the USGS spectra prior).
    samples, steps, rounds, t0, seed, options : see `unmixgen.refine.posterior.refine`
        (``options``: ``eta``, ``lam``, ``ls_iterations``, ``guard_level``, ``spread``, ``tile``).

    Returns the run record (also written as ``out/run.json``). ``result.npz`` holds
    ``abundances`` (the guarded posterior mean), ``abundances_std``, ``abundances_q05``,
    ``abundances_q95``, ``endmembers``, ``endmembers_std``, ``init_abundances``,
    ``init_endmembers`` and ``pixels_kept``.
    """
    from .atomic import check_output_dir, write_json
    from .errors import InputError
    from .io import read_scene
    from .priors.abundance.model import AbundanceModel
    from .priors.spectra.model import load_spectra_prior
    from .refine.posterior import refine
    from .refine.schedule import timesteps
    from .report.figures import plot_uncertainty
    from .runs.folder import load_result, run_record, save_result

    check_output_dir(out, overwrite, [scene_path, init])
    check_range("samples", samples, low=1, integer=True)
    check_range("steps", steps, low=1, integer=True)
    timesteps(t0, steps, 1000)
    from .nn.device import resolve_device

    device = resolve_device(device)
    res = load_result(init)
    if "abundances" not in res or "endmembers" not in res:
        raise InputError(f"{init}: result holds no abundances or no endmembers; expected an `unmixgen unmix` "
                         "result folder")
    scene = read_scene(scene_path)
    A0, E0 = np.asarray(res["abundances"], np.float32), np.asarray(res["endmembers"], np.float32)
    if A0.shape[:2] != (scene.rows, scene.cols) or E0.shape[-1] != scene.bands:
        raise InputError(f"{init}: result is for a {A0.shape[0]}x{A0.shape[1]} scene with {E0.shape[-1]} bands; "
                         f"{scene_path} is {scene.rows}x{scene.cols} with {scene.bands} bands (an init from "
                         "another scene?)")
    ab = AbundanceModel(abundance_prior or _shipped(DEFAULT_ABUNDANCE_PRIOR), device)
    sp = None
    if scene.wavelengths is not None:
        sp = load_spectra_prior(spectra_prior, device)
    elif spectra_prior is not None:
        raise InputError(f"{scene_path}: the scene has no wavelengths; the spectra prior needs them")
    cube = scene.load()
    record = run_record("refine", {"init": str(init), "abundance_prior": str(ab.model_dir),
                                   "spectra_prior": None if sp is None else str(sp.model_dir),
                                   "samples": samples, "steps": steps, "rounds": rounds, "t0": t0,
                                   **options}, seed=seed)
    bar = _steps_bar(progress)
    try:
        r = refine(cube, E0, A0, abundance_prior=ab, spectra_prior=sp, mask=scene.mask,
                   wavelengths=scene.wavelengths, fwhm=scene.fwhm, samples=samples, steps=steps, rounds=rounds,
                   t0=t0, seed=seed, device=device, progress=bar, **options)
    finally:
        if bar is not None:
            bar.stop()
    record["refine"] = r.record
    record["timings_s"]["refine"] = r.record["seconds"]
    if r.record["guard"]["pixels_kept_fraction"] < 1 or not r.record["guard"]["endmembers_kept"]:
        record["warnings"].append(
            f"guard: refined abundances kept at {100 * r.record['guard']['pixels_kept_fraction']:.1f} % of valid "
            f"pixels; refined endmembers {'kept' if r.record['guard']['endmembers_kept'] else 'rejected'}")
    names = res.get("names")
    with atomic_dir(out, overwrite, [scene_path, init]) as tmp:
        save_result(tmp, scene, endmembers=r.endmembers, abundances=r.abundances, names=names, figures=figures,
                    extra={"abundances_std": r.abundances_std, "abundances_q05": r.abundances_q05,
                           "abundances_q95": r.abundances_q95, "endmembers_std": r.endmembers_std,
                           "init_abundances": A0, "init_endmembers": E0, "pixels_kept": r.pixels_kept})
        if figures:
            plot_uncertainty(r.abundances_std, tmp / "abundances_std.png", names=names, mask=scene.mask)
            plot_uncertainty(r.abundances_q95 - r.abundances_q05, tmp / "abundances_interval90.png", names=names,
                             mask=scene.mask, title="width of the 90 % posterior interval")
        write_json(tmp / "run.json", record)
    return record


class _StepsBar:
    def __init__(self):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("refining"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                 TimeElapsedColumn())
        self.progress.start()
        self.task = self.progress.add_task("refine", total=None)

    def __call__(self, done: int, total: int) -> None:
        self.progress.update(self.task, completed=done, total=total)

    def stop(self) -> None:
        self.progress.stop()


def _steps_bar(progress: bool):
    return _StepsBar() if progress else None


def unmix_scene(scene_path: str | Path, out: str | Path, *, n_endmembers: int | str | None = None,
                endmembers_file: str | Path | None = None, method: str | None = None,
                truth: str | Path | None = None, seed: int = 0, model: str | Path | None = None,
                maps: str | None = None, max_minutes: float | None = None, device: str | None = None,
                figures: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Unmix the scene file ``scene_path`` into the run folder ``out`` (``unmixgen unmix``).

    Exactly one way to get endmembers:

    - blind: ``n_endmembers`` (a number, or ``"auto"``) with a blind ``method`` (registry
      name; default the registry's default); the cube is loaded (all valid pixels at once);
    - given: ``endmembers_file`` (CSV, .npz, result folder, ``LIB.mat:names``), resampled to
      the scene's bands, inverted tile by tile with an inverter ``method`` (default FCLS):
      the whole cube is never loaded (unless ``truth`` asks for reconstruction metrics);
    - ``method="hybridstu"``: a trained ``model``, or train one from ``endmembers_file`` /
      ``n_endmembers`` extracted endmembers (``maps``, ``max_minutes``, ``device``).

    ``truth`` (a benchmark file or result folder) adds metrics to run.json. Returns the
    run record (also written as ``out/run.json``), with ``n_endmembers``.
    """
    from .atomic import check_output_dir, write_json
    from .errors import ParameterError
    from .io import read_scene
    from .runs.folder import run_record, save_result
    from .runs.sources import read_truth
    from .unmix.inversion import DEFAULT_METHOD as INVERTER

    hybrid = method == "hybridstu"
    inputs = [scene_path, endmembers_file, truth, model]
    check_output_dir(out, overwrite, inputs)
    if not hybrid and (model is not None or maps is not None):
        raise ParameterError("model" if model is not None else "maps", str(model if model is not None else maps),
                             "applies to method='hybridstu' only")
    if hybrid and sum(v is not None for v in (model, endmembers_file, n_endmembers)) != 1:
        raise ParameterError("method", method, "needs exactly one of model, endmembers_file or n_endmembers")
    if not hybrid and (n_endmembers is None) == (endmembers_file is None):
        raise ParameterError("n_endmembers", n_endmembers, "give exactly one of n_endmembers (blind: a number "
                             "or 'auto') and endmembers_file (given endmembers)")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    scene = read_scene(scene_path)
    if truth is not None:
        scene.attach_truth(read_truth(truth, scene.rows, scene.cols, scene.bands))
    scene.require_valid()
    params: dict[str, Any] = {"scene": str(scene_path), "seed": seed}
    if hybrid:
        timings["read"] = time.perf_counter() - t
        options = {k: v for k, v in (("maps", maps), ("max_minutes", max_minutes), ("device", device)) if v is not None}
        E, A, names, details = unmix_hybridstu(scene, model=model, endmembers_file=endmembers_file,
                                               n_endmembers=n_endmembers, seed=seed,
                                               progress=model is None, **options)
        params.update(method="hybridstu", model=None if model is None else str(model),
                      endmembers_file=None if endmembers_file is None else str(endmembers_file), maps=maps)
    elif endmembers_file is not None:
        # inversion reads the cube tile by tile: "read" covers the header and the mask only
        timings["read"] = time.perf_counter() - t
        E, A, names, details = _invert_given(scene, endmembers_file, method or INVERTER)
        params.update(endmembers_file=str(endmembers_file), method=method or INVERTER)
    else:
        scene.load()  # blind methods learn from all valid pixels at once
        timings["read"] = time.perf_counter() - t
        E, A, names, details = _unmix_blind(scene, n_endmembers, method, seed)
        params.update(endmembers=n_endmembers, method=details["method"])
    timings.update({f"unmix.{k}": v for k, v in details.pop("timings_s", {}).items()})
    record = run_record("unmix", params, seed=seed)
    record.update(details)
    record["timings_s"] = timings
    if scene.truth is not None:
        from .evaluate.unmixing import evaluate

        # the reconstruction metrics need every pixel: the one load of the given path
        record["metrics"] = evaluate(
            endmembers=E, abundances=A, ref_endmembers=scene.truth.endmembers,
            ref_abundances=scene.truth.abundances, cube=scene.load(), mask=scene.mask,
            names=scene.truth.names,
        )
    t = time.perf_counter()
    with atomic_dir(out, overwrite, inputs) as tmp:
        save_result(tmp, scene, endmembers=E, abundances=A, names=names, figures=figures)
        if figures and "rank_estimate" in record:
            from .report.figures import plot_eigen_spectrum

            plot_eigen_spectrum(record["rank_estimate"], tmp / "rank_eigenvalues.png")
        timings["write"] = time.perf_counter() - t
        write_json(tmp / "run.json", record)
    record["n_endmembers"] = int(E.shape[0])
    return record


def _unmix_blind(scene, n_endmembers, method, seed):
    from .unmix.registry import DEFAULT_METHOD, make_method

    est = make_method(method or DEFAULT_METHOD, n_endmembers, seed=seed)
    est.fit(scene)
    info = dict(est.info_)
    info["method"] = est.name
    info["n_endmembers"] = est.n_endmembers_
    return est.endmembers_, est.abundances_, None, info


def _invert_given(scene, source, method):
    """Abundances for the endmembers of ``source`` on the bands they cover, tile by tile."""
    import warnings

    from .errors import ParameterError
    from .runs.sources import fit_to_bands, load_endmembers
    from .unmix.inversion import METHODS as INVERTERS
    from .unmix.inversion import invert_scene

    if method not in INVERTERS:
        raise ParameterError("method", method, f"does not apply to given endmembers; expected one of "
                                               f"{', '.join(INVERTERS)}")
    t = time.perf_counter()
    em = load_endmembers(source)
    E, covered = fit_to_bands(em, scene.wavelengths, scene.bands)
    use = covered & scene.good_bands
    notes = []
    if not covered.all():
        notes.append(f"{int((~covered).sum())} scene bands lie outside the endmembers' wavelengths and were not used")
        warnings.warn(notes[-1], UserWarning, stacklevel=3)
    if E.shape[0] > use.sum():
        raise InputError(f"{source}: {E.shape[0]} endmembers but only {int(use.sum())} usable bands")
    A = invert_scene(scene, E, method, bands=use)
    info = {"method": method, "n_endmembers": int(E.shape[0]), "endmember_source": em.source,
            "bands_used": int(use.sum()), "warnings": notes,
            "timings_s": {"load_endmembers+invert": time.perf_counter() - t}}
    return E, A, em.names, info


def synthesize_maps(model_dir: str | Path, count: int, out: str | Path, *, size: int | None = None,
                    sampler: str | None = None, steps: int | None = None, guidance: float | None = None,
                    label: str | None = None, seed: int = 0, batch_size: int | None = None,
                    device: str = "cpu", overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Sample ``count`` abundance maps from the prior in ``model_dir`` into the folder ``out``
    (``unmixgen synthesize``): ``abundances.npz`` (``abundances`` (count, size, size, p),
    ``names``), one GeoTIFF per map, a PNG grid and ``run.json``. Sampling options are those of
    `unmixgen.priors.abundance.model.AbundanceModel.sample` (None: its default). Returns the
    run record, with ``shape``."""
    from .atomic import check_output_dir, write_json
    from .io import write_scene
    from .priors.abundance.model import load_model
    from .report.figures import plot_abundance_grid
    from .runs.folder import run_record
    from .scene import Scene

    check_output_dir(out, overwrite, [model_dir])
    model = load_model(model_dir, device=device)
    options = {k: v for k, v in (("size", size), ("sampler", sampler), ("batch_size", batch_size)) if v is not None}
    t0 = time.monotonic()
    maps = model.sample(count, steps=steps, seed=seed, guidance=guidance, label=label, progress=progress, **options)
    seconds = time.monotonic() - t0
    rec = run_record("synthesize", {"model": str(model_dir), "count": count, "size": maps.shape[1],
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
        plot_abundance_grid(maps[:16], tmp / "abundances.png", names=model.names)
        write_json(tmp / "run.json", rec)
    return rec


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
    from .errors import ParameterError

    path_of_library = str(endmembers).rpartition(":")[0] if ":" in str(endmembers) and not Path(endmembers).exists() else endmembers
    inputs = [abundances, sensor, path_of_library]
    from .atomic import atomic_dir, check_output_dir, write_json
    from .io import write_scene
    from .runs.folder import run_record, write_endmembers_csv
    from .runs.sources import load_abundance_maps, load_endmembers, load_sensor
    from .simulate.mixing import snr_db as measure_snr
    from .simulate.scene import simulate

    check_output_dir(out, overwrite, inputs)
    if fmt not in ("envi", "tif"):
        raise ParameterError("fmt", fmt, "expected envi or tif")
    if noise not in ("white", "signal"):
        raise ParameterError("noise", noise, "expected white or signal")
    if snr_db is not None:
        check_range("snr_db", snr_db)
    t0 = time.perf_counter()
    maps, _ = load_abundance_maps(abundances)
    em = load_endmembers(endmembers)
    p = maps.shape[-1]
    if em.spectra.shape[0] != p:
        raise InputError(
            f"{abundances}: {p} endmember maps but {endmembers} gives {em.spectra.shape[0]} spectra; "
            "expected the same number"
        )
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


