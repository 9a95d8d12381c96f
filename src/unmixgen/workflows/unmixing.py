"""Unmixing a scene file into a run folder: blind, given endmembers, or HybridSTU."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir
from ..errors import InputError, ParameterError, note, noting_convergence
from ..scene import stored_band_order
from .semiblind import maps_source, unmix_hybridstu

#: ``outliers`` of `unmix_scene`: the default blind method screens them out of its fit, or keeps them
OUTLIERS = ("screen", "keep")


def unmix_scene(scene_path: str | Path, out: str | Path, *, n_endmembers: int | str | None = None,
                endmembers_file: str | Path | None = None, method: str | None = None,
                truth: str | Path | None = None, seed: int = 0, model: str | Path | None = None,
                maps: str | None = None, max_minutes: float | None = None, max_steps: int | None = None,
                device: str | None = None,
                figures: bool = True, overwrite: bool = False, progress: bool = True,
                band_weights: str | None = None, outliers: str | None = None,
                report: bool = False) -> dict[str, Any]:
    """Unmix the scene file ``scene_path`` into the run folder ``out`` (``unmixgen unmix``).

    Exactly one way to get endmembers:

    - blind: ``n_endmembers`` (a number, or ``"auto"``) with a blind ``method`` (registry
      name; default the registry's default); the cube is loaded (all valid pixels at once);
    - given: ``endmembers_file`` (CSV, .npz, result folder, ENVI spectral library
      ``.sli``, ``LIB.mat:names``, ``LIB.sli:names``), resampled to
      the scene's bands, inverted tile by tile with an inverter ``method`` (default FCLS):
      the whole cube is never loaded (unless ``truth`` asks for reconstruction metrics);
    - ``method="hybridstu"``: a trained ``model``, or train one from ``endmembers_file`` /
      ``n_endmembers`` extracted endmembers (``maps``, ``max_minutes``, ``max_steps``, ``device``).
      Training stopped by ``max_minutes`` is not reproducible (a rerun with the same seed may
      train another number of steps); stopped by ``max_steps`` it is.

    ``band_weights`` (``"noise"`` or ``"none"``; None: the method's default): whether the default
    blind method (`AutoUnmixer`, weighted by default) or an inverter (unweighted by default, the
    exact least-squares answer) weighs each band by ``1 / its noise std`` where the scene's
    noise differs between bands (`unmixgen.unmix.rank.band_noise_weights`).
    ``outliers`` (``"screen"`` or ``"keep"``; None: screen): whether the default blind method
    leaves pixels no mixture comes near (saturated, glints, spikes) out of its fit
    (`unmixgen.unmix.outliers`). ``progress``: HybridSTU's training progress bar. ``truth`` (a benchmark file or result
    folder) adds metrics to run.json. ``report``: also write ``out/report.html``, a page of the
    run's parameters, warnings, scores and every figure (`unmixgen.report.html.run_report`). Returns the
    run record (also written as ``out/run.json``), with ``n_endmembers``.
    """
    from ..atomic import check_output_dir, write_json
    from ..io import read_scene, require_path
    from ..runs.folder import run_record, save_result
    from ..runs.truth import read_truth, truth_orientation
    from ..unmix.inversion import DEFAULT_METHOD as INVERTER

    hybrid = method == "hybridstu"
    inputs = [scene_path, endmembers_file, truth, model, maps_source(maps)]
    require_path(scene_path, "scene_path")
    check_output_dir(out, overwrite, inputs)
    if not hybrid and (model is not None or maps is not None):
        raise ParameterError("model" if model is not None else "maps", str(model if model is not None else maps),
                             "applies to method='hybridstu' only")
    if not hybrid:  # a training budget for a method that trains nothing was dropped without a word
        for name, value in (("max_minutes", max_minutes), ("max_steps", max_steps)):
            if value is not None:
                raise ParameterError(name, value, "applies to method='hybridstu' only (its training); the other "
                                     "methods run until they converge")
    if hybrid and sum(v is not None for v in (model, endmembers_file, n_endmembers)) != 1:
        raise ParameterError("method", method, "needs exactly one of model (a trained folder), endmembers_file "
                             "(given spectra) or n_endmembers (a count)",
                             mentions=("model", "endmembers_file", "n_endmembers"))
    if hybrid and model is not None:
        for name, value in (("maps", maps), ("max_minutes", max_minutes), ("max_steps", max_steps)):
            if value is not None:
                raise ParameterError(name, value, "sets the training of hybridstu without a model; a trained model "
                                     "is applied as it is")
    if method is not None and not hybrid:
        from ..unmix.inversion import METHODS as INVERTERS
        from ..unmix.registry import METHODS as BLIND

        if method not in BLIND and method not in INVERTERS:
            raise ParameterError("method", method, f"expected one of {', '.join([*BLIND, *INVERTERS, 'hybridstu'])}")
    # after the name's check: a misspelt method is that error
    blind_device = _blind_device(device, method, endmembers_file) if not hybrid and device is not None else None
    asked_weights = band_weights  # "noise", "none" or None (the method's default), for run.json
    if band_weights is not None:
        from ..unmix.rank import band_weights_option

        band_weights = band_weights_option(band_weights)
        if hybrid or (endmembers_file is None and (method or "auto") != "auto"):
            raise ParameterError("band_weights", band_weights or "none", "applies to the default blind method (auto) "
                                 "and to inverters of given endmembers; hybridstu weighs by its own noise estimate")
        options = {"band_weights": band_weights}
    else:
        options = {}
    if blind_device is not None:
        options["device"] = blind_device
    if outliers is not None:
        if not isinstance(outliers, str) or outliers not in OUTLIERS:
            raise ParameterError("outliers", outliers, f"expected {' or '.join(OUTLIERS)}")
        if hybrid or endmembers_file is not None or (method or "auto") != "auto":
            raise ParameterError("outliers", outliers, "applies to the default blind method (auto); the other "
                                 "methods fit every pixel")
        options["screen_outliers"] = outliers == "screen"
    if not hybrid and n_endmembers is None and endmembers_file is None:
        raise InputError("no endmembers asked for: expected a number of endmembers for blind unmixing (-p N or "
                         "-p auto; n_endmembers in Python) or given ones (--endmembers-file; endmembers_file)")
    if not hybrid and n_endmembers is not None and endmembers_file is not None:
        raise ParameterError("n_endmembers", n_endmembers, "expected either a number of endmembers (blind) or an "
                             "endmembers file, not both")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    # what the reader and the valid-pixel mask said (bands dropped or sorted, zero fill, stuck detector
    # lines): a reader may work out the mask as it reads (.npz), before the truth reads it
    scene_notes: list[str] = []
    with noting_convergence(scene_notes, UserWarning):
        scene = read_scene(scene_path)
        scene.require_valid()
    if truth is not None:
        scene.attach_truth(read_truth(truth, scene.rows, scene.cols, scene.bands, scene.wavelengths,
                                      stored_order=stored_band_order(scene), mask=scene.mask),
                           band_order="scene")  # read_truth put it in the scene's order
    pixels = {"valid": int(scene.mask.sum()), "invalid": int((~scene.mask).sum()),
              "zero_filled": int(scene.metadata.get("zero_pixels", 0))}
    if "stuck_lines" in scene.metadata:
        pixels["stuck_lines"] = scene.metadata["stuck_lines"]
    params: dict[str, Any] = {"scene": str(scene_path), "seed": seed}
    if not hybrid:  # run.json's band_weights (null) alone cannot tell "none" from noise too white to weigh
        params["band_weights"] = asked_weights
        params["outliers"] = outliers
    if hybrid:
        timings["read"] = time.perf_counter() - t
        options = {k: v for k, v in (("maps", maps), ("max_minutes", max_minutes), ("max_steps", max_steps),
                                     ("device", device)) if v is not None}
        E, A, names, details = unmix_hybridstu(scene, model=model, endmembers_file=endmembers_file,
                                               n_endmembers=n_endmembers, seed=seed,
                                               progress=progress and model is None, **options)
        params.update(method="hybridstu", model=None if model is None else str(model),
                      endmembers_file=None if endmembers_file is None else str(endmembers_file), maps=maps)
    elif endmembers_file is not None:
        # inversion reads the cube tile by tile: "read" covers the header and the mask only
        timings["read"] = time.perf_counter() - t
        E, A, names, details = _invert_given(scene, endmembers_file, method or INVERTER,
                                             weighted=options.get("band_weights") == "noise")
        params.update(endmembers_file=str(endmembers_file), method=method or INVERTER)
    else:
        scene.load()  # blind methods learn from all valid pixels at once
        timings["read"] = time.perf_counter() - t
        E, A, names, details = _unmix_blind(scene, n_endmembers, method, seed, options)
        params.update(endmembers=n_endmembers, method=details["method"])
    timings.update({f"unmix.{k}": v for k, v in details.pop("timings_s", {}).items()})
    if not hybrid:  # hybridstu measures them for its training and records them there
        t = time.perf_counter()
        stripes = _column_stripes_note(scene, scene_path, scene_notes, details.pop("stripes_measured", None))
        timings["stripes"] = time.perf_counter() - t
    # per-pixel brightness of the scaled mixing model y = s a E (method "scaled", or HybridSTU
    # correcting it): the maps are fractions, the brightness is the rest of the reconstruction
    arrays = details.pop("arrays", {})
    brightness = arrays.get("brightness")
    record = run_record("unmix", params, seed=seed)
    record.update(details)
    record["pixels"] = pixels
    if not hybrid:
        record["stripes"] = stripes
    record["warnings"] = scene_notes + record.get("warnings", [])
    record["timings_s"] = timings
    if scene.truth is not None:
        from ..evaluate.unmixing import evaluate

        wrong = truth_orientation(scene.truth, A, scene.mask)
        if wrong is not None:  # the run stands; its scores against this truth do not
            note(record["warnings"], f"{wrong}; its metrics in run.json score the truth as read (either way is "
                                     "scored by evaluate_result(truth, out, pixel_order='C' or 'F'), "
                                     "`unmixgen evaluate --pixel-order`)")
        # the reconstruction metrics need every pixel: the one load of the given path
        record["metrics"] = evaluate(
            endmembers=E, abundances=A, ref_endmembers=scene.truth.endmembers,
            ref_abundances=scene.truth.abundances, cube=scene.load(), mask=scene.mask,
            names=scene.truth.names, brightness=brightness, bands=scene.good_bands,
        )
    t = time.perf_counter()
    with atomic_dir(out, overwrite, inputs) as tmp:
        save_result(tmp, scene, endmembers=E, abundances=A, names=names, figures=figures, extra=arrays)
        if brightness is not None:
            from ..runs.folder import save_brightness

            record["brightness"] = save_brightness(tmp, scene, brightness)
        if "outliers" in arrays:  # 1 where the blind fit left a pixel out, georeferenced like the maps
            from ..runs.folder import save_maps

            record["outliers"]["file"] = save_maps(tmp, scene, arrays["outliers"][..., None].astype("float32"),
                                                   stem="outliers", names=["outlier"]).name
        if figures and "rank_estimate" in record:
            from ..report.figures import plot_eigen_spectrum

            plot_eigen_spectrum(record["rank_estimate"], tmp / "rank_eigenvalues.png")
        timings["write"] = time.perf_counter() - t
        write_json(tmp / "run.json", record)
        if report:  # after every figure: the page links what the folder holds
            from ..report.html import run_report

            (tmp / "report.html").write_text(run_report(tmp, record, f"unmix: {Path(out).name}"), encoding="utf-8")
    record["n_endmembers"] = int(E.shape[0])
    return record


def _column_stripes_note(scene, scene_path, notes: list[str], found=None) -> dict | None:
    """The scene's column stripes (`unmixgen.unmix.stripes`; measured after the fit, so a loaded
    scene is not read again, unless ``found`` is the fit's own measure of them: `-p auto`'s) for
    run.json, None where the scene is too small to tell; a warning kept in ``notes`` where they
    are found: a per-pixel answer carries them into the maps."""
    from ..unmix.stripes import column_stripes

    found = column_stripes(scene) if found is None else found
    if found is None:
        return None
    record = found.record()
    if found.detected:
        where = ("the image columns are striped (each column's" if found.angle == 0.0 else
                 f"the image is striped along lines {found.angle:g} deg from its columns (a map grid's view of "
                 "a pushbroom's columns; each line's")
        note(notes, f"{scene_path}: {where} gain off by "
                    f"{record['gain_std_percent_median']:.2g} % per band, the median band; a pushbroom detector's "
                    "calibration): the maps carry the stripes along those lines (method='hybridstu', "
                    "`--method hybridstu`, trains with them)", stacklevel=3)
    return record


def runs_on_torch(method: str | None, endmembers_file=None) -> bool:
    """Whether `unmix_scene`'s ``method`` (None: the default for the inputs) runs on torch:
    hybridstu, and the blind methods that take a device (the default, edaa, mvnmf); not VCA,
    N-FINDR, ATGP nor the inverters of given endmembers."""
    from ..unmix.registry import DEFAULT_METHOD, METHODS, method_parameters

    if method == "hybridstu":
        return True
    name = method or DEFAULT_METHOD
    return endmembers_file is None and name in METHODS and "device" in method_parameters(name)


def _blind_device(device: str, method: str | None, endmembers_file) -> str | None:
    """The torch device for a method other than hybridstu: the resolved ``device`` for the blind
    methods that run on torch (the default, edaa, mvnmf), None for the rest (VCA, N-FINDR, ATGP
    and the inverters of given endmembers run on the CPU), whose ``"cpu"`` or ``"auto"`` is
    accepted; `ParameterError` when such a method is asked to run on a GPU, instead of running
    it on the CPU without a word."""
    from ..nn.device import resolve_device
    from ..unmix.registry import DEFAULT_METHOD, METHODS, method_parameters

    resolved = resolve_device(device)
    name = method or DEFAULT_METHOD
    if runs_on_torch(method, endmembers_file):
        return resolved
    if resolved != "cpu" and device != "auto":
        torch_methods = [m for m in METHODS if "device" in method_parameters(m)]
        what = "inverting given endmembers" if endmembers_file is not None else f"method {name!r}"
        raise ParameterError("device", device, f"{what} runs on the CPU only; expected cpu or auto, or a method "
                             f"with a GPU path ({', '.join(torch_methods)}, hybridstu)")
    return None


def _unmix_blind(scene, n_endmembers, method, seed, options=None):
    from ..unmix.archetypal import abundance_basis
    from ..unmix.registry import DEFAULT_METHOD, make_method

    est = make_method(method or DEFAULT_METHOD, n_endmembers, seed=seed, **(options or {}))
    est.fit(scene)
    info = dict(est.info_)
    info["method"] = est.name
    info["n_endmembers"] = est.n_endmembers_
    rank = getattr(est, "rank_estimate_", None)
    if rank is not None and rank.stripes is not None:
        info["stripes_measured"] = rank.stripes  # -p auto's measure: not made again
    arrays = {}
    if getattr(est, "outliers_", None) is not None:  # the pixels auto left out of its fit, as a map
        arrays["outliers"] = est.outliers_
    basis = abundance_basis(est)
    if basis is not None:  # fractions of E / |E|: refine reads them so
        arrays["abundance_basis"] = np.array(basis)
    if arrays:
        info["arrays"] = arrays
    return est.endmembers_, est.abundances_, None, info


def _invert_given(scene, source, method, weighted: bool = False):
    """Abundances for the endmembers of ``source`` on the bands they cover, tile by tile;
    ``weighted``: each band weighed by ``1 / its noise std`` where the noise differs between
    bands (estimated on about 20,000 valid pixels of evenly spaced rows, `Scene.row_sample`)."""
    from ..runs.endmembers import fit_to_bands, load_endmembers, scale_mismatch
    from ..unmix.inversion import METHODS as INVERTERS
    from ..unmix.inversion import invert_scene

    if method not in INVERTERS:
        raise ParameterError("method", method, f"does not apply to given endmembers; expected one of "
                                               f"{', '.join(INVERTERS)}")
    t = time.perf_counter()
    em = load_endmembers(source)
    if em.spectra.shape[0] < 2:
        raise InputError(f"{source}: {em.spectra.shape[0]} endmember; expected at least 2 (one endmember is every "
                         "pixel whole)")
    E, covered = fit_to_bands(em, scene.wavelengths, scene.bands, stored_order=stored_band_order(scene),
                              selected=scene.metadata.get("selected_bands"))
    use = covered & scene.good_bands
    notes = []
    if not covered.all():
        note(notes, f"{int((~covered).sum())} scene bands lie outside the endmembers' wavelengths (or next to "
                    "channels their library deleted) and were not used", stacklevel=2)
    if E.shape[0] > use.sum():
        raise InputError(f"{source}: {E.shape[0]} endmembers but only {int(use.sum())} usable bands")
    scaled = method == "scaled"  # maps are fractions of each pixel's brightness, which is kept too
    if method in ("fcls", "scls"):  # sum-to-one: the pixels must be as bright as mixtures of E
        mismatch = scale_mismatch(scene, E, use)
        if mismatch:
            note(notes, f"{source}: {mismatch}", stacklevel=2)
    weights = None
    if weighted:
        from ..unmix.rank import NOISE_PIXELS_PER_BAND, band_noise_weights, enough_for_band_noise

        sample = scene.row_sample()[:, use]
        weights = band_noise_weights(sample)
        if not enough_for_band_noise(*sample.shape):  # asked for, and not the noise's whiteness that says no
            note(notes, f"band weights: {len(sample)} valid pixels are too few to estimate the noise of "
                        f"{sample.shape[1]} bands (expected at least {NOISE_PIXELS_PER_BAND * sample.shape[1]}); "
                        "every band was weighed alike", stacklevel=2)
    with noting_convergence(notes):  # shown as before, and kept in run.json
        result = invert_scene(scene, E, method, bands=use, with_brightness=scaled, band_weights=weights)
    A, brightness = result if scaled else (result, None)
    info = {"method": method, "n_endmembers": int(E.shape[0]), "endmember_source": em.source,
            "bands_used": int(use.sum()), "warnings": notes,
            "band_weights": None if weights is None else {"noise_std_range": float(weights.max() / weights.min())},
            "timings_s": {"load_endmembers+invert": time.perf_counter() - t}}
    if brightness is not None:
        info["arrays"] = {"brightness": brightness}
    return E, A, em.names, info
