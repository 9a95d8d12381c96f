"""Abundance synthesis benchmark: realism of diffusion samples vs baselines and the floor.

For each scene (Samson, Jasper Ridge) and each map source (``unmix``: blind unmixing of the
raw scene, the unsupervised path; ``truth``: the ground-truth maps, for reference), trains
the abundance diffusion model with ``unmixgen.priors.abundance`` on the training region of the
interleaved hold-out, samples maps of the hold-out block size with DDIM-50, DPM-Solver++-20
and DDPM-1000, and prints the realism table of `unmixgen.evaluate.synthesis.evaluate_synthesis`
(model vs per-pixel Dirichlet, Gaussian random field, and the floor = a second disjoint
set of real blocks), the ratios to the floor, the memorization check, and seconds per
64x64 map for each sampler (overlapping-tile sampling).

    .venv/bin/python benchmarks/synthesis.py --scenes samson,jasper_ridge --source unmix,truth --minutes 30
    .venv/bin/python benchmarks/synthesis.py --scenes samson --source truth --minutes 3 --representations clr,simplex

The machine is shared: ``--threads 1`` (default) is the fastest setting under load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def scene_maps(name: str, source: str, data_dir: Path, method: str | None, seed: int):
    """(abundances (rows, cols, p), endmembers (p, B), names, info) from truth or blind unmixing."""
    from unmixgen.io import datasets

    scene = datasets.load(name, data_dir)
    if source == "truth":
        t = scene.truth
        return np.asarray(t.abundances, np.float32), np.asarray(t.endmembers, np.float32), None, "ground truth"
    p = scene.truth.n_endmembers if scene.truth is not None else datasets.get(name).endmembers
    from unmixgen.unmix.registry import DEFAULT_METHOD, make_method

    meth = method or DEFAULT_METHOD
    est = make_method(meth, p, seed=seed)
    t0 = time.perf_counter()
    est.fit(scene)
    info = f"blind unmix: {meth}, p={p}, {time.perf_counter() - t0:.1f} s"
    if scene.truth is not None:
        from unmixgen.evaluate.unmixing import match_endmembers
        from unmixgen.evaluate.unmixing import sad as spectral_angles

        perm = match_endmembers(est.endmembers_, scene.truth.endmembers, by="sad")
        sad = np.radians(spectral_angles(est.endmembers_[perm], scene.truth.endmembers))
        info += f", SAD to truth {np.round(sad, 3).tolist()} rad"
    return np.asarray(est.abundances_, np.float32), np.asarray(est.endmembers_, np.float32), None, info


def write_result(folder: Path, a: np.ndarray, e: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    mask = np.isfinite(a).all(-1)
    np.savez_compressed(folder / "result.npz", abundances=a, mask=mask, endmembers=e,
                        names=np.array([f"em{i + 1}" for i in range(a.shape[-1])]))
    return folder


def fmt(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.4g}"


def print_table(title: str, rows: dict[str, dict], cols: list[str]) -> None:
    head = ["set", *cols]
    body = [[k, *(fmt(r.get(c)) for c in cols)] for k, r in rows.items()]
    w = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    print(title)
    for line in [head, ["-" * x for x in w], *body]:
        print("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(line)))
    print()


def run_one(scene: str, source: str, rep: str, args, work: Path) -> dict:
    from unmixgen.evaluate.synthesis import evaluate_synthesis
    from unmixgen.priors.abundance.model import load_model
    from unmixgen.priors.abundance.train import create_model_folder, train
    from unmixgen.runs.sources import load_training_maps

    a, e, _, info = scene_maps(scene, source, args.data, args.method, args.seed)
    res = write_result(work / f"{scene}-{source}", a, e)
    mdir = work / f"model-{scene}-{source}-{rep}"
    mdir.mkdir()
    create_model_folder(mdir, load_training_maps([res]), patch=args.patch, representation=rep,
                        width=args.width, seed=args.seed, prediction_type=args.prediction,
                        batch_size=args.batch_size, lr=args.lr)
    tr = train(mdir, max_minutes=args.minutes, max_steps=args.max_steps, progress=False)
    model = load_model(mdir)
    h = model.holdout()
    print(f"== {scene} / {source} / representation {rep}: {info}")
    print(f"   training: {tr['step']} steps in {tr['minutes']:.1f} min ({tr['steps_per_s']:.2f} steps/s), "
          f"final loss {tr['loss']:.4f}; held-out {len(h['heldout'])}, floor {len(h['floor'])}, "
          f"train crops {len(h['train'])} of {model.patch_size} px")
    combined: dict[str, dict] = {}
    ratios: dict[str, dict] = {}
    speed: dict[str, float] = {}
    memo = {}
    b = model.block_size
    for sampler, steps in args.samplers:
        n = args.samples if sampler != "ddpm" else args.ddpm_samples
        t0 = time.perf_counter()
        s = model.sample(n, size=b, sampler=sampler, steps=steps, seed=args.seed, batch_size=64, progress=False)
        dt = time.perf_counter() - t0
        assert np.isfinite(s).all() and (s >= 0).all() and np.allclose(s.sum(-1), 1, atol=1e-4)
        r = evaluate_synthesis(s, h["heldout"], train=h["train"], floor=h["floor"], seed=args.seed)
        key = f"model {sampler}-{steps}"
        combined[key] = r["rows"]["model"]
        ratios[key] = r["ratio_to_floor"]["model"]
        memo[key] = r["memorization"]
        for base in ("dirichlet", "grf", "floor"):
            combined.setdefault(base, r["rows"][base])
            ratios.setdefault(base, r["ratio_to_floor"][base])
        # speed: seconds per 64x64 map (tiled when the patch is smaller)
        if args.speed_maps > 0:
            t0 = time.perf_counter()
            model.sample(args.speed_maps, size=64, sampler=sampler, steps=steps, seed=1,
                         batch_size=args.speed_maps, progress=False)
            speed[key] = (time.perf_counter() - t0) / args.speed_maps
        proj = (f", mean simplex-projection distance {model.last_projection_distance:.4f}"
                if model.rep.name == "simplex" else "")
        print(f"   {key}: {n} maps of {b}x{b} in {dt:.1f} s{proj}", flush=True)
    # reference: the real training crops themselves (what a model that reproduced its training
    # distribution exactly would score; the scenes are not stationary, so this can exceed the floor)
    from unmixgen.evaluate.realism import realism_metrics

    tb = h["train"][:, :b, :b]
    tb = tb[np.random.default_rng(args.seed).permutation(len(tb))[:max(len(h["heldout"]), 64)]]
    combined["train crops (real)"] = realism_metrics(tb, h["heldout"], seed=args.seed)
    ratios["train crops (real)"] = {k: combined["train crops (real)"][k] / combined["floor"][k]
                                    for k in ("w1", "sliced_w1", "power_spectrum", "variogram")}
    cols = ["w1", "sliced_w1", "power_spectrum", "variogram", "diversity_ratio", "copied_fraction"]
    print_table(f"realism vs {len(h['heldout'])} held-out {b}x{b} blocks (lower is better)", combined, cols)
    print_table("ratio to the floor", ratios, ["w1", "sliced_w1", "power_spectrum", "variogram"])
    for k, m in memo.items():
        if m:
            print(f"memorization {k}: {m['n_flagged']} flagged; median NN RMSE {m['sample_nn_rmse_median']:.4g} "
                  f"vs held-out {m['heldout_nn_rmse_median']:.4g}")
    if speed:
        print("seconds per 64x64 map: " + ", ".join(f"{k}: {v:.2f}" for k, v in speed.items()))
    print(flush=True)
    return {"scene": scene, "source": source, "rep": rep, "rows": combined, "ratios": ratios,
            "train": tr, "speed": speed}


def parse_samplers(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        name, steps = item.split("-")
        out.append((name, int(steps)))
    return out


def main(argv: list[str] | None = None) -> None:
    from unmixgen.priors.abundance.settings import DEFAULTS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", default="samson,jasper_ridge")
    ap.add_argument("--source", default="unmix,truth", help="unmix, truth or both (comma-separated)")
    ap.add_argument("--representations", default="simplex", help="simplex, clr (comma-separated)")
    ap.add_argument("--minutes", type=float, default=30.0, help="training budget per model (minutes)")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--patch", type=int, default=DEFAULTS["patch"])
    ap.add_argument("--width", type=int, default=DEFAULTS["width"])
    ap.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    ap.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    ap.add_argument("--prediction", default=DEFAULTS["prediction_type"])
    ap.add_argument("--samplers", default="ddim-50,dpm-20,ddpm-1000", type=parse_samplers)
    ap.add_argument("--samples", type=int, default=64, help="maps per sampler")
    ap.add_argument("--ddpm-samples", type=int, default=64, help="maps for DDPM (slow)")
    ap.add_argument("--speed-maps", type=int, default=2, help="64x64 maps timed per sampler (0: skip)")
    ap.add_argument("--method", default=None, help="blind unmixing method (default: the registry's)")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}\n", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for scene in args.scenes.split(","):
            for source in args.source.split(","):
                for rep in args.representations.split(","):
                    results.append(run_one(scene, source, rep, args, Path(tmp)))
    print("summary: model / floor ratios (target: spatial <= 1.5 and below both baselines; values <= 1.2)")
    rows = {}
    for r in results:
        for key, ratio in r["ratios"].items():
            if key.startswith("model"):
                base = {b: r["ratios"][b] for b in ("dirichlet", "grf")}
                rows[f"{r['scene']}/{r['source']}/{r['rep']}/{key[6:]}"] = {
                    **ratio,
                    "psd_vs_best_baseline": ratio["power_spectrum"] / min(v["power_spectrum"] for v in base.values()),
                    "vario_vs_best_baseline": ratio["variogram"] / min(v["variogram"] for v in base.values()),
                    "div_ratio": r["rows"][key]["diversity_ratio"],
                    "minutes": r["train"]["minutes"],
                }
    print_table("", rows, ["w1", "sliced_w1", "power_spectrum", "variogram", "psd_vs_best_baseline",
                           "vario_vs_best_baseline", "div_ratio", "minutes"])


if __name__ == "__main__":
    main()
