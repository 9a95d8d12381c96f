"""The whole chain on the embedded synthetic scene (`unmixgen demo`)."""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir
from ..errors import ParameterError, check_range
from .abundance import train_abundance_model


def run_demo(out: str | Path = "demo-output", *, train: bool = False, train_minutes: float = 3.0,
             count: int = 8, semiblind: bool = True, semiblind_steps: int = 2000,
             semiblind_minutes: float | None = None, refine_samples: int = 8,
             refine_steps: int = 10, seed: int = 0, overwrite: bool = False) -> dict[str, Any]:
    """The whole chain on the embedded synthetic scene, written to the folder ``out``.

    synthetic scene -> blind unmix -> (``semiblind``: HybridSTU trained for ``semiblind_steps``
    steps (early stopping may end it sooner; ``semiblind_minutes``, when given, also stops it by
    the clock, and a run stopped so is not reproducible) on scenes simulated with the blind
    endmembers -> diffusion refinement
    with the shipped priors, ``refine_samples`` posterior samples x ``refine_steps`` steps)
    -> abundance diffusion prior (the shipped one, or trained for ``train_minutes`` when
    ``train``) -> ``count`` synthetic 64x64 maps -> realism against held-out real blocks ->
    simulated scenes -> ``report.html``. Every stage is scored against the scene's exact
    ground truth. Returns the run record (also written as ``run.json``).
    """
    out = Path(out)
    from ..atomic import check_output_dir, write_json
    from ..evaluate.synthesis import evaluate_synthesis, format_realism_table
    from ..evaluate.unmixing import evaluate
    from ..io import write_scene
    from ..priors.abundance.model import load_model, shipped_demo_model
    from ..report.figures import plot_abundance_grid, plot_rgb
    from ..report.html import html_table, write_html_report
    from ..runs.folder import run_record, save_result
    from ..simulate.procedural import default_scene
    from ..simulate.scene import simulate
    from ..unmix.registry import DEFAULT_METHOD, make_method

    check_output_dir(out, overwrite)
    check_range("count", count, low=1, high=1024, integer=True)
    check_range("train_minutes", train_minutes, low=0, low_open=True)
    check_range("semiblind_steps", semiblind_steps, low=1, integer=True)
    if semiblind_minutes is not None:
        check_range("semiblind_minutes", semiblind_minutes, low=0, low_open=True)
        if not semiblind:  # a budget for a stage that does not run was dropped without a word
            raise ParameterError("semiblind_minutes", semiblind_minutes, "applies to the semi-blind chain, which "
                                 "semiblind=False turns off", mentions=("semiblind",))
    check_range("refine_samples", refine_samples, low=1, integer=True)
    check_range("refine_steps", refine_steps, low=1, integer=True)
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

        sections = []
        if semiblind:
            sections = _semiblind_chain(tmp, scene, est.endmembers_, record, max_steps=semiblind_steps,
                                        minutes=semiblind_minutes,
                                        samples=refine_samples, steps=refine_steps, seed=seed)

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
        sims = simulate(maps[:2], est.endmembers_, wavelengths=scene.wavelengths, snr_db=30.0, seed=seed,
                        units=scene.units)
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
            *sections,
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


_SCORES = ("abundance_rmse_percent", "sad_deg_mean", "sre_db", "psnr_db")


def _semiblind_chain(tmp: Path, scene, endmembers: np.ndarray, record: dict[str, Any], *, max_steps: int,
                     minutes: float | None, samples: int, steps: int, seed: int) -> list[tuple[str, list[str], str]]:
    """HybridSTU on the blind endmembers, then diffusion refinement of its result, in ``tmp``.

    Writes the run folders ``semiblind/`` and ``refine/``, adds their scores (against the
    scene's truth, with FCLS on the same endmembers as the baseline) and timings to
    ``record`` and returns the report sections.
    """
    from ..atomic import write_json
    from ..evaluate.unmixing import evaluate
    from ..report.html import html_table
    from ..runs.folder import load_result, run_record, save_result
    from ..unmix.hybridstu import HybridSTU
    from ..unmix.inversion import invert_scene
    from .refinement import refine_result

    timings = record["timings_s"]
    truth = scene.truth
    cube = scene.load()  # once, for the three scores

    def score(E, A):
        m = evaluate(endmembers=E, abundances=A, ref_endmembers=truth.endmembers, ref_abundances=truth.abundances,
                     cube=cube, mask=scene.mask, names=truth.names)
        return {k: float(m[k]) for k in _SCORES if isinstance(m.get(k), (int, float))}

    t = time.perf_counter()
    fcls = invert_scene(scene, endmembers, "fcls", progress=False)
    stu = HybridSTU(int(endmembers.shape[0]), seed=seed, max_steps=max_steps, max_minutes=minutes).fit(
        scene, endmembers=endmembers, maps="grf")
    (tmp / "semiblind").mkdir()
    save_result(tmp / "semiblind", scene, endmembers=stu.endmembers_, abundances=stu.abundances_)
    stu_scores = score(stu.endmembers_, stu.abundances_)
    write_json(tmp / "semiblind" / "run.json", {**run_record("unmix", {"method": "hybridstu", "maps": "grf",
                                                                       "max_steps": max_steps,
                                                                       "max_minutes": minutes}, seed=seed),
                                                "training": stu.history_, "metrics": stu_scores})
    timings["semiblind"] = time.perf_counter() - t

    t = time.perf_counter()
    refined = refine_result(tmp / "scene.npz", tmp / "semiblind", tmp / "refine", samples=samples, steps=steps,
                            seed=seed, progress=False)
    res = load_result(tmp / "refine")
    ref_scores = score(res["endmembers"], res["abundances"])
    timings["refine"] = time.perf_counter() - t
    record["semiblind"] = {
        "fcls_same_endmembers": score(endmembers, fcls), "hybridstu": stu_scores, "refined": ref_scores,
        "refine_guard": refined["refine"]["guard"], "training_steps": int(stu.history_.get("steps", 0)),
    }
    trained = stu.history_.get("steps", 0)
    budget = f"{trained} steps" + ("" if minutes is None else f", at most {minutes:g} min")
    rows = [{"stage": name, **{k: f"{v:.3f}" for k, v in sc.items()}} for name, sc in
            (("FCLS, blind endmembers", record["semiblind"]["fcls_same_endmembers"]),
             ("HybridSTU, blind endmembers", stu_scores), ("refined (posterior mean)", ref_scores))]
    return [
        ("Semi-blind unmixing and refinement",
         ["semiblind/abundances.png", "semiblind/endmembers.png", "refine/abundances.png",
          "refine/endmembers.png", "refine/abundances_std.png", "refine/abundances_interval90.png"],
         f"HybridSTU (trained for {budget} on scenes simulated from the blind endmembers and "
         f"Gaussian-random-field maps), then diffusion refinement with the shipped priors ({samples} posterior "
         f"samples x {steps} steps; the last two figures are the per-pixel posterior standard deviation and "
         f"the width of the 90 % posterior interval)."
         + html_table(rows)),
    ]
