"""The 1D spectra prior's training and diffusion refinement of a result folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir
from ..errors import (
    InputError,
    ParameterError,
    ParameterWarning,
    check_range,
    note,
    noting_convergence,
)

#: how a scene file without band centres gets them, for the Python and the command-line user
GIVE_CENTRES = ("write a copy that has band centres, `unmixgen convert SCENE OUT --wavelengths START:STOP` or in "
                "Python write_scene(scene, OUT) after scene.wavelengths = ... (nm), and refine that")


def _training_spectra(sources: list[str | Path]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Spectra of every source on the first source's wavelengths: a USGS-layout library
    ``.mat`` or an ENVI spectral library ``.sli`` (all their spectra), or anything
    `unmixgen.runs.endmembers.load_endmembers` reads (result folders, .csv, .npz, named library
    spectra); every source needs wavelengths. Missing channels (NaN: a library's deleted,
    ignored or bad ones) are filled or left out (`_fill_deleted`)."""
    from ..errors import in_file
    from ..io.sli import LIBRARY_EXTENSIONS, read_library
    from ..runs.endmembers import load_endmembers, read_usgs_library
    from ..wavelengths import SAME_GRID_NM

    blocks, names = [], []
    wl0 = None
    for src in sources:
        path = Path(src)
        if path.suffix.lower() == ".mat" and path.is_file():
            d, wl, _ = read_usgs_library(path, need_names=False)
            s = d[:, 3:].T
        elif path.is_file() and path.suffix.lower() in (*LIBRARY_EXTENSIONS, ".hdr"):
            # every spectrum, as from the .mat: one deleted whole is left out below, not the library
            lib = read_library(path)
            if lib.wavelengths is None:
                raise in_file(lib.header, "library has no wavelengths; the spectra prior needs them")
            wl, s = lib.wavelengths, lib.spectra.astype(np.float64)
        else:
            em = load_endmembers(src)
            if em.wavelengths is None:
                raise in_file(path, "endmembers have no wavelengths; the spectra prior needs them")
            wl, s = em.wavelengths, em.spectra.astype(np.float64)
        s, wl = _fill_deleted(s, wl, path)
        if not np.isfinite(s).all() or np.any(s.mean(axis=1) <= 0):
            raise in_file(path, "spectra hold NaN/Inf or one with a mean <= 0; expected reflectances")
        if wl0 is None:
            wl0 = np.asarray(wl, np.float64)
        else:
            # a source narrower than the first would be extended flat: refused instead
            if wl[0] > wl0[0] + SAME_GRID_NM or wl[-1] < wl0[-1] - SAME_GRID_NM:
                raise in_file(path, f"spectra cover {wl[0]:.0f}-{wl[-1]:.0f} nm, less than the first source's "
                                    f"{wl0[0]:.0f}-{wl0[-1]:.0f} nm; expected sources covering its range (give "
                                    "the narrowest source first to train on its range)")
            s = np.stack([np.interp(wl0, wl, row) for row in s])
        blocks.append(s)
        names.append(str(src))
    if wl0 is None:
        raise InputError("no training spectra given; expected a USGS library .mat, an ENVI spectral library .sli or "
                         "result folders")
    return np.concatenate(blocks), wl0, names


def _fill_deleted(spectra: np.ndarray, wl: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A library's spectra ``(n, bands)`` and wavelengths ``(bands,)`` without its missing
    channels (NaN): channels missing in every spectrum at either end of the range (an ENVI
    library's ``bbl``) are cut off; the others inside each spectrum's measured range are filled
    linearly along wavelength; spectra still missing their first or last channel (not
    measured over the whole range) are left out, with a warning. `InputError` when none is
    left."""
    import warnings

    from ..errors import in_file

    holes = np.isnan(spectra)
    if not holes.any():
        return spectra, wl
    kept = np.flatnonzero(~holes.all(axis=0))
    if not kept.size:
        raise in_file(path, "every channel is missing in every spectrum; expected measured spectra")
    cut = slice(kept[0], kept[-1] + 1)
    spectra, wl, holes = spectra[:, cut], wl[cut], holes[:, cut]
    short = holes[:, 0] | holes[:, -1] | ((~holes).sum(axis=1) < 2)
    out = spectra[~short].copy()
    for row in out:
        gap = np.isnan(row)
        if gap.any():
            row[gap] = np.interp(wl[gap], wl[~gap], row[~gap])
    if not len(out):
        raise in_file(path, "every spectrum misses its first or last channel (deleted, -1.23e34, or marked bad); "
                            "expected spectra measured over the library's whole range")
    filled = int(holes[~short].any(axis=1).sum())
    warnings.warn(f"{path}: {int(short.sum())} spectra not measured over the whole range left out; "
                  f"{filled} with deleted channels inside it filled by interpolation", UserWarning, stacklevel=3)
    return out, wl


def train_spectra_model(sources: list[str | Path] | str | Path, out: str | Path, *, max_minutes: float | None = None,
                        max_steps: int | None = None, overwrite: bool = False, device: str = "cpu",
                        progress: bool = True, resume: bool = False, **options: Any) -> dict:
    """Train a 1D spectra prior (the Python form of ``unmixgen train-spectra``).

    Parameters
    ----------
    sources : a USGS-layout spectral library ``.mat`` and/or endmember sources (result
        folders, .csv, .npz) with wavelengths; a list, or one source (none when ``resume``).
    out : model folder to create (refused when it exists, unless ``overwrite``), or to continue
        training when ``resume``.
    max_minutes, max_steps : training budget (at least one): the total step count, and this
        run's wall time (with ``resume`` the steps go on from the last checkpoint).
    resume : continue the model in ``out`` from its last checkpoint, with its saved spectra and
        settings (a run killed or stopped early, or one to train longer).
    options : keys of `unmixgen.priors.spectra.train.DEFAULTS` (None: the default); none when
        ``resume``.

    Returns the training summary; the curve is drawn to ``out/training_curve.png``.
    """
    from ..atomic import model_dir_build
    from ..errors import in_file
    from ..nn.checkpoint import has_checkpoint
    from ..nn.device import resolve_device
    from ..nn.trainer import check_budget
    from ..priors.spectra import train as spectra_train
    from ..report.figures import plot_training_curve

    check_budget(max_steps, max_minutes)
    resolve_device(device)
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)

    def trained(folder: Path) -> dict:
        info = spectra_train.train(folder, max_steps=max_steps, max_minutes=max_minutes, device=device,
                                   progress=progress)
        if info["curve_steps"]:
            plot_training_curve(info["curve_steps"], info["curve_losses"], folder / "training_curve.png",
                                ylabel="loss (MSE)")
        return info

    if resume:
        if sources:
            raise ParameterError("sources", [str(v) for v in sources], "expected none when resuming (the model "
                                 "folder holds its training spectra)")
        if {k: v for k, v in options.items() if v is not None}:
            raise ParameterError(sorted(options)[0], options[sorted(options)[0]], "not used when resuming (the "
                                 "model continues with the settings it was created with)")
        out = Path(out)
        if not out.is_dir():
            raise in_file(out, "no such model folder to resume")
        if not has_checkpoint(out):
            raise in_file(out, "has no checkpoint to resume from; expected a model folder train-spectra wrote")
        return trained(out)
    spectra_train.resolve_options(options)
    if not sources:
        raise ParameterError("sources", [], "expected a spectral library or endmember sources to train on")
    spectra, wl, names = _training_spectra(sources)
    # a new model that failed before its first checkpoint is no model; a replaced one is kept
    # until the new one is trained
    with model_dir_build(out, overwrite, inputs=list(sources), usable=has_checkpoint) as build:
        with atomic_dir(build) as tmp:
            spectra_train.create_model_folder(tmp, spectra, wl, names, **options)
        info = trained(build)
    return info


def _shipped(name: str) -> Path:
    """A model folder shipped under the package's ``assets/`` (``unmixgen/assets``, one level
    above this ``workflows`` package)."""
    return Path(__file__).resolve().parents[1] / "assets" / name


DEFAULT_ABUNDANCE_PRIOR = "refine_abundance"
"""The shipped one-vs-rest abundance prior (any p) under ``assets/``."""


def _warn_overridden(notes: list[str], rec: dict, rounds: int | None, spectra_prior, options: dict) -> None:
    """Warn (kept in ``notes``, run.json ``warnings``) about the options the user set that
    refine did not apply because the init's endmembers sit at clusters of pure pixels (``rec``:
    the refine record, ``rounds_from`` "pure-pixel clusters"): one round ran, without sampling
    the endmembers, whatever ``rounds`` (None: not given), the spectra prior and its settings
    said. The data decide this, so it is no error."""
    # the parameters by their names (the CLI shows its flags: `ParameterWarning`)
    given = [("rounds", rounds)] if rounds is not None and rounds != 1 else []
    if spectra_prior is not None:
        given.append(("spectra_prior", str(spectra_prior)))
    given += [(k, options[k]) for k in SPECTRA_OPTIONS if options.get(k) is not None]
    if not given:
        return
    pure = rec.get("pure_clusters") or {}
    how = ("held as given" if pure.get("given_replaced") is False
           else "moved onto the clusters' means")
    note(notes, ParameterWarning(given, f"not applied: the init's endmembers sit at clusters of pure pixels, which "
                                        f"fix them ({how}), so one round ran without sampling the endmembers "
                                        "(run.json: refine.rounds_from, refine.pure_clusters)"), stacklevel=3)


SPECTRA_OPTIONS = ("spectra_t0", "ls_iterations")
"""Options of `refine_result` that only the spectra prior's sampling of the endmembers takes."""


FEW_SAMPLES = 8
"""Below this many posterior samples the run warns that its intervals are rough."""


def _checked_options(samples, steps, rounds, seed, t0, options: dict) -> tuple[dict, str | None]:
    """`ParameterError` for a refinement setting out of range; returns ``(options as `refine`
    takes them, band_weights as asked)``: ``mixing`` / ``band_weights`` left out when None (the
    defaults), ``band_weights`` ``"none"`` as None. ``options`` itself is left as given."""
    if rounds != "auto" and rounds is not None:
        check_range("rounds", rounds, low=1, integer=True)
    check_range("samples", samples, low=1, integer=True)
    check_range("steps", steps, low=1, integer=True)
    check_range("seed", seed, low=0, integer=True)  # before the scene is read (refine checks it again)
    from ..refine.schedule import timesteps

    timesteps(t0, steps, 1000)
    options = dict(options)
    if options.get("spectra_t0") is not None:
        check_range("spectra_t0", options["spectra_t0"], low=0, high=1, low_open=True)
    if options.get("lam") is not None:
        check_range("lam", options["lam"], low=0)
    if options.get("mixing") is None:  # None: the default, as for the other options
        options.pop("mixing", None)
    else:
        from ..refine.mixing import check_mixing

        check_mixing(options["mixing"])
    asked_weights = options.get("band_weights")  # "noise", "none" or None, as run.json records it
    if options.get("band_weights") is None:  # None: the default (weighted where the noise differs between bands)
        options.pop("band_weights", None)
    else:
        from ..unmix.rank import band_weights_option

        options["band_weights"] = band_weights_option(options["band_weights"])
    return options, asked_weights


@dataclass
class SceneRefinement:
    """What `refine_scene` returns.

    result : `unmixgen.refine.posterior.Refined`: the guarded posterior mean ``abundances``,
        ``abundances_std``, ``abundances_q05``, ``abundances_q95`` (rows, cols, p), ``endmembers``
        and ``endmembers_std`` (p, bands; on the scene's bad bands the given endmembers, std NaN),
        ``pixels_kept`` (rows, cols) and the samples.
    brightness : (rows, cols) float32 per-pixel brightness of the scaled mixing model (the given
        one times refine's where both are), or None; ``brightness_from`` says whose.
    record : run.json's ``refine`` section; warnings : what was noted (also shown as warnings).
    abundance_prior, spectra_prior : the model folders used (``spectra_prior`` None: the
        endmembers were not sampled).
    """

    result: Any
    brightness: np.ndarray | None
    brightness_from: str
    record: dict
    warnings: list[str]
    abundance_prior: Path
    spectra_prior: Path | None


def refine_scene(scene: Any, endmembers: np.ndarray, abundances: np.ndarray, *, brightness: np.ndarray | None = None,
                 abundance_basis: str | None = None, endmembers_from: str = "unknown",
                 abundance_prior: str | Path | None = None, spectra_prior: str | Path | None = None,
                 samples: int = 16, steps: int = 20, rounds: int | str | None = "auto", t0: float = 0.3,
                 seed: int = 0, device: str = "cpu", progress: bool = False,
                 sources: tuple[str, str] = ("scene", "init"), **options: Any) -> SceneRefinement:
    """Refine an unmixing of ``scene`` held in memory: what `refine_result` does between
    reading its inputs and writing its folder, for a notebook's arrays (e.g. a fitted
    ``make_method(...)``'s ``endmembers_`` and ``abundances_``).

    Parameters
    ----------
    scene : a `Scene` or a ``(rows, cols, bands)`` array.
    endmembers : (p, bands); abundances : (rows, cols, p) on the simplex (NaN: start from FCLS).
    brightness : (rows, cols) per-pixel brightness of an init of the scaled model ``y = s a E``
        (values >= 0; NaN or 0: none); the pixels are refined divided by it.
    abundance_basis : the init's fraction basis (`refine` ``abundance_basis``), or None.
    endmembers_from : ``"scene"`` (extracted from this scene: the rounds and ``endmembers_fitted``
        follow, as `endmember_origin` says for a result folder), ``"given"`` or ``"unknown"``.
    abundance_prior, spectra_prior, samples, steps, rounds, t0, seed, device, options : as for
        `refine_result` (None priors: the shipped ones).
    progress : show a progress bar of the denoising steps.
    sources : how messages name the scene and the init (`refine_result` passes their paths).
    """
    from ..io.checks import real_array
    from ..nn.device import resolve_device
    from ..priors.abundance.model import AbundanceModel
    from ..priors.spectra.model import load_spectra_prior
    from ..refine.posterior import refine
    from ..scene import as_scene

    scene_name, init_name = sources
    options, _ = _checked_options(samples, steps, rounds, seed, t0, options)
    if endmembers_from not in ("scene", "given", "unknown"):
        raise ParameterError("endmembers_from", endmembers_from, "expected 'scene', 'given' or 'unknown'")
    scene = as_scene(scene)
    scene.require_valid()  # as refine_result's reading: the message names the scene, not refine's mask
    # real numbers (complex values would lose their imaginary part silently, text fail in a cast)
    E0, A0 = real_array(endmembers, "endmembers", init_name), real_array(abundances, "abundances", init_name)
    if (A0.ndim != 3 or E0.ndim != 2 or A0.shape[:2] != (scene.rows, scene.cols)
            or E0.shape[-1] != scene.bands):
        raise InputError(f"{init_name}: abundances of shape {A0.shape} and endmembers of shape {E0.shape} for a "
                         f"{scene.rows}x{scene.cols} scene with {scene.bands} bands; expected (rows, cols, p) and "
                         "(p, bands) of this scene")
    _check_estimate(A0, E0, scene.good_bands, init_name)
    if brightness is not None:  # a (cols,) vector would be broadcast over every row without a word
        brightness = _checked_brightness(brightness, init_name, scene.rows, scene.cols)
    device = resolve_device(device)
    auto = rounds == "auto"
    if auto:
        rounds = None if endmembers_from == "scene" else 1
    ab = AbundanceModel(abundance_prior or _shipped(DEFAULT_ABUNDANCE_PRIOR), device)
    sp = None
    if scene.wavelengths is not None:
        sp = load_spectra_prior(spectra_prior, device)
    elif spectra_prior is not None:
        raise InputError(f"{scene_name}: the scene has no wavelengths; the spectra prior needs them ({GIVE_CENTRES})")
    else:  # settings of the endmembers' sampling, which does not run here, were dropped without a word
        for name in SPECTRA_OPTIONS:
            if options.get(name) is not None:
                raise ParameterError(name, options[name], f"sets the spectra prior's sampling of the endmembers; "
                                     f"{scene_name} has no wavelengths, so its endmembers are kept as the init has "
                                     f"them ({GIVE_CENTRES})")
    cube = scene.load()
    if brightness is not None:
        # pixels without a usable brightness (NaN, 0) are refined as they are
        ok = np.isfinite(brightness) & (brightness > 0)
        cube = np.divide(cube, np.where(ok, brightness, 1.0)[..., None].astype(np.float32),
                         out=np.empty(cube.shape, np.float32))  # a new array: the scene's stays as read
    notes: list[str] = []
    # bad bands (e.g. ENVI bbl) take no part: they may hold NaN or garbage
    good = np.asarray(scene.good_bands, bool)
    pick = (lambda v: None if v is None else np.asarray(v)[..., good]) if not good.all() else (lambda v: v)
    # valid pixels the init left without abundances (it was run with another mask) start from
    # the least-squares abundances of the init's endmembers, so every valid pixel is refined
    missing = scene.mask & ~np.all(np.isfinite(A0), axis=-1)
    A_start = A0
    if missing.any():
        from ..unmix.inversion import fcls

        A_start = A0.copy()
        A_start[missing] = fcls(pick(cube)[missing], pick(E0))
        note(notes, f"{init_name}: {int(missing.sum())} valid pixels of the scene have no init "
                    "abundances (NaN); they start from FCLS with the init's endmembers")
    if sp is None:
        note(notes, f"{scene_name}: the scene has no wavelengths, so its endmembers are kept as "
                    f"the init has them (the spectra prior needs band centres: {GIVE_CENTRES})")
    if samples < FEW_SAMPLES:
        note(notes, ParameterWarning([("samples", samples)], f"the std and 5 / 95 % quantiles of fewer "
                                     f"than {FEW_SAMPLES} samples are rough (the mean may even lie outside "
                                     "its interval); use 16 or more for uncertainty"))
    bar = _steps_bar(progress)
    try:
        r = refine(pick(cube), pick(E0), A_start, abundance_prior=ab, spectra_prior=sp, mask=scene.mask,
                   wavelengths=pick(scene.wavelengths), fwhm=pick(scene.fwhm), samples=samples, steps=steps,
                   rounds=rounds, t0=t0, seed=seed, device=device, progress=bar, abundance_basis=abundance_basis,
                   **{"endmembers_fitted": endmembers_from == "scene", **options})
    finally:
        if bar is not None:
            bar.stop()
    if not good.all():  # back on all bands: the bad ones keep the init's values, their std unknown
        E_full, std_full = E0.copy(), np.full(E0.shape, np.nan, np.float32)
        E_full[:, good], std_full[:, good] = r.endmembers, r.endmembers_std
        r.endmembers, r.endmembers_std = E_full, std_full
    record = r.record
    record["init_endmembers_origin"] = endmembers_from
    if r.record["rounds_from"] == "pure-pixel clusters":
        _warn_overridden(notes, r.record, None if auto else rounds, spectra_prior, options)
    if auto and r.record["rounds_from"] != "pure-pixel clusters":  # the clusters, not the auto rule, set them
        record["rounds_from"] = ("auto: endmembers from the scene, by the prior weight" if endmembers_from == "scene"
                                 else f"auto: endmembers {endmembers_from}")
    record["bands_used"] = int(good.sum())
    record["brightness_divided"] = brightness is not None
    brightness_from = "from the init"
    if r.brightness is not None:  # the scaled mixing model, chosen by refine: its brightness on top
        brightness_from = ("from the init times refine's" if brightness is not None
                           else "estimated by refine (scaled mixing model)")
        if brightness is None:
            brightness = r.brightness
        else:
            # the pixels were divided by the init's usable brightness only (NaN, 0: by 1), so
            # those without one carry refine's alone; pixels refine left out keep the init's
            brightness = np.where(np.isfinite(r.brightness), np.where(ok, brightness, 1.0) * r.brightness,
                                  brightness).astype(np.float32)
    g = r.record["guard"]
    sampled = r.record["endmembers_refined"]
    if g["pixels_kept_fraction"] < 1 or (sampled and not g["endmembers_kept"]):
        what = ("refined endmembers " + ("kept" if g["endmembers_kept"] else "rejected") if sampled
                else "endmembers not refined (kept from the init)")
        notes.append(f"guard: refined abundances kept at {100 * g['pixels_kept_fraction']:.1f} % of "
                     f"valid pixels; {what}")
    return SceneRefinement(r, brightness, brightness_from, record, notes, ab.model_dir,
                           None if sp is None else sp.model_dir)


def refine_result(scene_path: str | Path, init: str | Path, out: str | Path, *,
                  abundance_prior: str | Path | None = None, spectra_prior: str | Path | None = None,
                  samples: int = 16, steps: int = 20, rounds: int | str | None = "auto", t0: float = 0.3,
                  seed: int = 0,
                  device: str = "cpu", overwrite: bool = False, figures: bool = True,
                  progress: bool = True, report: bool = False, **options: Any) -> dict:
    """Refine the result folder ``init`` of ``scene_path`` by posterior sampling (the Python
    form of ``unmixgen refine``); writes the run folder ``out``. `refine_scene` does the same
    on a scene and an unmixing held in memory, and writes nothing.

    Parameters
    ----------
    abundance_prior, spectra_prior : model folders (None: the shipped one-vs-rest abundance
        prior and the USGS spectra prior).
    samples, steps, rounds, t0, seed, options : see `unmixgen.refine.posterior.refine`
        (``options``: ``spectra_t0``, ``eta``, ``lam``, ``ls_iterations``, ``guard_level``,
        ``spread``, ``tile``, ``tile_overlap``, ``mixing``, ``band_weights``: ``"noise"`` or ``"none"``). ``rounds="auto"``: by where the init's endmembers came from
        (`endmember_origin`): extracted from the scene, the prior-weight rule (``None``:
        `unmixgen.refine.posterior.WEIGHTED_ROUNDS` rounds when the weight is >= 1), which moves them further towards the truth; given
        (a library, a file) or unknown, one round, which keeps correct endmembers where they are.
        ``endmembers_fitted`` (an option) is by the same origin unless given: extracted from the
        scene, the init fitted these pixels' noise.

    ``report``: also write ``out/report.html``, a page of the run's parameters, warnings and
    every figure (`unmixgen.report.html.run_report`).

    Returns the run record (also written as ``out/run.json``). ``result.npz`` holds
    ``abundances`` (the guarded posterior mean), ``abundances_std``, ``abundances_q05``,
    ``abundances_q95``, ``endmembers``, ``endmembers_std``, ``init_abundances``,
    ``init_endmembers`` and ``pixels_kept`` (``endmembers_std``: the samples' spread where they
    carry endmembers of their own, else the data's least-squares standard error; run.json's
    ``refine.endmembers_std_from`` says which); the std and quantile maps are also written as
    rasters like the abundances (`runs.folder.save_maps`). An init of the scaled mixing model ``y = s a E``
    (its result holds a per-pixel ``brightness``: `unmix --method scaled`, HybridSTU on that
    base) is refined on the pixels divided by that brightness, where the linear model holds,
    and its brightness is carried into ``out``; so is the brightness refine divides out itself
    under the scaled mixing model (``mixing``, `unmixgen.refine.mixing`: by default when the
    pixels' brightness varies beyond linear mixing). Valid pixels the init has no abundances for
    (NaN: it was run with another mask) start from FCLS with the init's endmembers (a warning
    says how many).
    """
    from ..atomic import check_output_dir, write_json
    from ..io import read_scene, require_path
    from ..report.figures import plot_uncertainty
    from ..runs.folder import load_result, run_record, save_maps, save_result

    # the priors are read too: --out PRIOR --overwrite would replace a model folder
    inputs = [scene_path, init, abundance_prior, spectra_prior]
    require_path(scene_path, "scene_path")
    check_output_dir(out, overwrite, inputs)
    checked, asked_weights = _checked_options(samples, steps, rounds, seed, t0, options)  # before the scene is read
    from ..nn.device import resolve_device

    device = resolve_device(device)
    res = load_result(init)
    if "cube" in res:  # a scene file carries its truth as abundances / endmembers: refining it starts from the truth
        raise InputError(f"{init}: is a scene file (it holds a cube and its ground truth), not an unmixing result; "
                         "expected the output folder of unmix_scene (`unmixgen unmix`)")
    if "abundances" not in res or "endmembers" not in res:
        raise InputError(f"{init}: result holds no abundances or no endmembers; expected the output folder of "
                         "unmix_scene (`unmixgen unmix`)")
    scene_notes: list[str] = []  # what the reader and the valid-pixel mask said, kept in run.json too
    with noting_convergence(scene_notes, UserWarning):
        scene = read_scene(scene_path)
        scene.require_valid()
    A0, E0 = np.asarray(res["abundances"], np.float32), np.asarray(res["endmembers"], np.float32)
    if A0.shape[:2] != (scene.rows, scene.cols) or E0.shape[-1] != scene.bands:
        raise InputError(f"{init}: result is for a {A0.shape[0]}x{A0.shape[1]} scene with {E0.shape[-1]} bands; "
                         f"{scene_path} is {scene.rows}x{scene.cols} with {scene.bands} bands (an init from "
                         "another scene?)")
    _check_init(res, init, scene)
    brightness = _init_brightness(res, init, scene.rows, scene.cols)
    # fractions of the endmembers divided by their brightness (the blind default's edaa): refined
    # as fractions of the endmembers and returned as the init has them
    basis = str(res["abundance_basis"]) if "abundance_basis" in res else None
    # made now, its parameters filled in below: "started" is when the refinement began
    record = run_record("refine", {}, seed=seed)
    done = refine_scene(scene, E0, A0, brightness=brightness, abundance_basis=basis,
                        endmembers_from=endmember_origin(res.get("run")), abundance_prior=abundance_prior,
                        spectra_prior=spectra_prior, samples=samples, steps=steps, rounds=rounds, t0=t0, seed=seed,
                        device=device, progress=progress, sources=(str(scene_path), str(init)), **options)
    r = done.result
    record["parameters"] = {"init": str(init), "abundance_prior": str(done.abundance_prior),
                            "spectra_prior": None if done.spectra_prior is None else str(done.spectra_prior),
                            # as asked: "auto" (refine.rounds and rounds_from say what it chose)
                            "samples": samples, "steps": steps, "rounds": rounds, "t0": t0,
                            # "none" as asked: null could not be told from noise too white to weigh
                            **checked, **({"band_weights": asked_weights} if asked_weights else {})}
    record["warnings"] = scene_notes + record["warnings"] + done.warnings
    record["refine"] = done.record
    record["timings_s"]["refine"] = r.record["seconds"]
    g = r.record["guard"]
    sampled = r.record["endmembers_refined"]
    names = res.get("names")
    brightness = done.brightness
    with atomic_dir(out, overwrite, inputs) as tmp:
        save_result(tmp, scene, endmembers=r.endmembers, abundances=r.abundances, names=names, figures=figures,
                    describe="refined (posterior mean)" if sampled and g["endmembers_kept"]
                    else "refined (posterior mean; endmembers of the init)",
                    extra={"abundances_std": r.abundances_std, "abundances_q05": r.abundances_q05,
                           "abundances_q95": r.abundances_q95, "endmembers_std": r.endmembers_std,
                           "init_abundances": A0, "init_endmembers": E0, "pixels_kept": r.pixels_kept,
                           **({"brightness": brightness} if brightness is not None else {}),
                           **({"abundance_basis": np.array(basis)} if basis is not None else {})})
        # the posterior's spread per pixel, georeferenced like the abundances (NaN at invalid pixels)
        for key in ("abundances_std", "abundances_q05", "abundances_q95"):
            save_maps(tmp, scene, getattr(r, key), stem=key, names=names)
        if brightness is not None:
            from ..runs.folder import save_brightness

            record["brightness"] = save_brightness(tmp, scene, brightness, done.brightness_from)
        if figures:
            plot_uncertainty(r.abundances_std, tmp / "abundances_std.png", names=names, mask=scene.mask,
                             transform=scene.transform)
            plot_uncertainty(r.abundances_q95 - r.abundances_q05, tmp / "abundances_interval90.png", names=names,
                             mask=scene.mask, title="width of the 90 % posterior interval",
                             label="90 % interval width (abundance)", transform=scene.transform)
        write_json(tmp / "run.json", record)
        if report:  # after every figure: the page links what the folder holds
            from ..report.html import run_report

            (tmp / "report.html").write_text(run_report(tmp, record, f"refine: {Path(out).name}"), encoding="utf-8")
    return record


def endmember_origin(run: Any) -> str:
    """Where a result's endmembers came from, by its run.json (``run``): ``"scene"`` (a blind
    method, HybridSTU on extracted endmembers, or endmembers taken from another result folder,
    itself unmixed from a scene), ``"given"`` (a library or an endmember file) or
    ``"unknown"`` (no or another record, a trained HybridSTU model). A result folder's
    ``endmembers.csv`` or ``endmembers.sli`` (a ``run.json`` beside it) counts as the folder."""
    if not isinstance(run, dict) or run.get("command") != "unmix":
        return "unknown"
    params = run.get("parameters")
    params = params if isinstance(params, dict) else {}
    source = params.get("endmembers_file") or run.get("endmember_source")
    if params.get("model") or run.get("model"):
        return "unknown"
    if source is None:
        return "scene"  # blind, or HybridSTU on the endmembers it extracted
    text = str(source)
    if text.startswith("extracted by"):
        return "scene"
    path = Path(text)
    if path.is_dir() or path.name == "result.npz" or _run_folder_csv(path):
        return "scene"
    # a library spectrum (LIB.mat:names, LIB.sli:names) or an endmember file; a result folder since moved
    # still has no suffix
    return "given" if ".mat:" in text or path.suffix else "scene"


def _run_folder_csv(path: Path) -> bool:
    """Whether ``path`` is the ``endmembers.csv`` (or ``endmembers.sli`` / ``.hdr``) a run
    folder writes (its ``run.json`` beside it): the endmembers of that result, as when the
    folder itself is given."""
    return (path.name in ("endmembers.csv", "endmembers.sli", "endmembers.hdr")
            and (path.parent / "run.json").is_file())


def _check_estimate(A0: np.ndarray, E0: np.ndarray, good_bands: np.ndarray, source) -> None:
    """`InputError` naming ``source`` unless ``A0 (rows, cols, p)`` and ``E0 (p, bands)`` agree on
    p, the abundances lie on the simplex (refinement's priors and data steps are of sum-to-one,
    non-negative abundances; NaN: none) and the endmembers are finite on ``good_bands``."""
    if A0.ndim != 3 or E0.ndim != 2 or E0.shape[0] != A0.shape[-1]:
        raise InputError(f"{source}: endmembers of shape {E0.shape} and abundances of shape {A0.shape}; expected "
                         "(p, bands) and (rows, cols, p) with the same p")
    from ..refine.checks import off_simplex

    a = A0[np.all(np.isfinite(A0), axis=-1)]
    off = off_simplex(a) if a.size else ""
    if off:
        raise InputError(f"{source}: abundances are not on the simplex ({off}); expected non-negative abundances "
                         "that sum to one (e.g. unmix_scene's method fcls, scaled, hybridstu or the default, "
                         "`unmixgen unmix --method ...`; scaled is nnls without its brightness)")
    if not np.isfinite(E0[:, good_bands]).all():
        raise InputError(f"{source}: endmembers contain NaN or Inf on the scene's good bands; expected finite spectra")


def _check_init(res: dict, init, scene) -> None:
    """`InputError` unless the init's pixels and wavelengths (when it records them) are the
    scene's; its abundances and endmembers are checked by `refine_scene` (`_check_estimate`)."""
    from ..runs.folder import same_scene
    from ..wavelengths import SAME_GRID_NM, grid_offset_nm

    fp = res.get("scene_fingerprint")
    if fp is not None and fp.dtype.kind not in "biuf":  # read from the file: checked before use
        raise InputError(f"{init}: result's scene_fingerprint has type {fp.dtype}; expected numbers (a result "
                         "written by unmixgen)")
    if fp is not None and not same_scene(fp, scene):
        raise InputError(f"{init}: result was computed on another scene of the same size (the pixel values of its "
                         "central window differ); expected a result of this scene")
    wl = res.get("wavelengths")
    if wl is not None and scene.wavelengths is not None:
        off = grid_offset_nm(wl, scene.wavelengths)  # the band counts already agree
        if off > SAME_GRID_NM:
            wl = np.asarray(wl, np.float64).reshape(-1)
            raise InputError(f"{init}: result's wavelengths {np.nanmin(wl):.0f}-{np.nanmax(wl):.0f} nm differ from "
                             f"the scene's {scene.wavelengths.min():.0f}-{scene.wavelengths.max():.0f} nm by up to "
                             f"{off:.1f} nm; expected a result of this scene")


def _init_brightness(res: dict, init, rows: int, cols: int) -> np.ndarray | None:
    """The init's per-pixel brightness (rows, cols) float32, or None (`_checked_brightness`)."""
    if "brightness" not in res:
        return None
    return _checked_brightness(res["brightness"], init, rows, cols)


def _checked_brightness(brightness, init, rows: int, cols: int) -> np.ndarray:
    """A per-pixel brightness as (rows, cols) float32; `InputError` naming ``init`` when it is
    not a map of the scene's size with non-negative values (NaN: invalid pixels)."""
    b = np.asarray(brightness)
    if b.shape != (rows, cols) or b.dtype.kind not in "fiu":
        raise InputError(f"{init}: brightness has shape {b.shape} ({b.dtype}); expected ({rows}, {cols}) numbers "
                         "like the scene")
    b = b.astype(np.float32)
    if np.any(b[np.isfinite(b)] < 0) or np.isinf(b).any():
        raise InputError(f"{init}: brightness has negative or infinite values; expected values >= 0 (NaN at "
                         "invalid pixels)")
    return b


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
