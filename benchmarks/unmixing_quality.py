"""Blind unmixing quality on real and synthetic scenes: abundance RMSE, SAD, SRE, time.

Scenes: Samson and Jasper Ridge from ../shared/data (skipped when absent; ground truth of
F. Zhu), and synthetic scenes without pure pixels (`simulate.procedural.make_scene`, max
abundance 0.8) at 20, 30 and 40 dB, and the demo scene (`simulate.procedural.default_scene`,
pure pixels, 30 dB). Every method runs with its default parameters (nothing is tuned
per scene); each (method, scene) pair runs with several seeds, and the table prints
mean +- standard deviation over the seeds. Metrics come from `unmixgen.evaluate.unmixing.evaluate`
after Hungarian alignment on abundances.

    .venv/bin/python benchmarks/unmixing_quality.py                 # all methods, 3 seeds
    .venv/bin/python benchmarks/unmixing_quality.py --quick         # 1 seed, small synthetic
    .venv/bin/python benchmarks/unmixing_quality.py --methods edaa,vca --seeds 2
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from unmixgen.errors import ConvergenceWarning
from unmixgen.evaluate.unmixing import evaluate
from unmixgen.scene import Scene
from unmixgen.unmix.registry import DEFAULT_METHOD, METHODS, make_method

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = {
    "samson": ("samson/samson_1.mat", "samson/end3.mat"),
    "jasper": ("jasper_ridge/jasperRidge2_R198.mat", "jasper_ridge/end4.mat"),
}


def real_scene(name: str) -> Scene | None:
    from unmixgen.io import read_scene
    from unmixgen.runs.truth import read_truth

    cube, truth = REAL[name]
    if not (DATA / cube).exists():
        return None
    scene = read_scene(DATA / cube)
    scene.attach_truth(read_truth(DATA / truth, scene.rows, scene.cols, scene.bands))
    return scene


def synthetic_scene(snr_db: float, seed: int, quick: bool) -> Scene:
    from unmixgen.simulate.procedural import make_scene

    rows, cols = (48, 60) if quick else (90, 110)
    return make_scene(rows=rows, cols=cols, bands=None if not quick else 100, p=4, snr_db=snr_db,
                      pure_pixels=False, max_abundance=0.8, seed=seed)


def run(method: str, scene: Scene, seed: int) -> dict[str, float]:
    p = scene.truth.n_endmembers
    m = make_method(method, p, seed=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(scene)
    dt = time.perf_counter() - t0
    r = evaluate(endmembers=m.endmembers_, abundances=m.abundances_, ref_endmembers=scene.truth.endmembers,
                 ref_abundances=scene.truth.abundances)
    return {"rmse": r["abundance_rmse_percent"], "sad": r["sad_deg_mean"], "sre": r["sre_db"], "s": dt,
            "converged": bool(m.info_.get("convergence", {}).get("converged", True))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(sorted(METHODS)), help="comma-separated registry names")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per (method, scene)")
    ap.add_argument("--scenes", default="samson,jasper,syn20,syn30,syn40,demo")
    ap.add_argument("--quick", action="store_true", help="1 seed, smaller synthetic scenes")
    args = ap.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        make_method(m, 2)  # unknown names fail here, before any work
    print("command:", shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(argv))
    print(f"default method: {DEFAULT_METHOD}; seeds: {seeds}; mean +- std over seeds\n")
    header = f"{'scene':8s} {'method':7s} {'abund. RMSE %':>15s} {'SAD deg':>13s} {'SRE dB':>13s} {'seconds':>13s}  conv"
    print(header)
    print("-" * len(header))
    for sc in args.scenes.split(","):
        for method in methods:
            rows = []
            for seed in range(seeds):
                if sc in REAL:
                    scene = real_scene(sc)
                    if scene is None:
                        print(f"{sc:8s} (data not found under {DATA})")
                        break
                elif sc == "demo":
                    from unmixgen.simulate.procedural import default_scene

                    scene = default_scene(seed)
                else:
                    scene = synthetic_scene(float(sc[3:]), seed, args.quick)
                rows.append(run(method, scene, seed))
            if not rows:
                break
            def ms(key, rows=rows):
                v = np.array([r[key] for r in rows], float)
                return f"{v.mean():7.2f} ± {v.std():5.2f}"
            conv = sum(r["converged"] for r in rows)
            print(f"{sc:8s} {method:7s} {ms('rmse'):>15s} {ms('sad'):>13s} {ms('sre'):>13s} {ms('s'):>13s}  {conv}/{len(rows)}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
