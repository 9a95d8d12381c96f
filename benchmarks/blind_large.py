"""The blind default on large scenes: its simplex fitted to every pixel or to a sample
(`MinVolNMF.fit_pixels`). Prints a markdown row per scene and setting: abundance RMSE %,
mean SAD (deg), seconds of the fit and the pixels it was fitted to.

    PYTHONPATH=src python benchmarks/blind_large.py --size 300 --snrs 20,30 --seeds 2 --threads 1
    PYTHONPATH=src python benchmarks/blind_large.py --size 1000 --snrs 20 --seeds 1 --threads 1

Scenes: `benchmarks/refine.py`'s suite scenes (USGS minerals, maps of ``--maps``, no pure
pixels unless ``pure``), ``--size`` pixels square.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from refine import LIB, MAPS, NAMES, suite_scene
from unmixgen.evaluate.unmixing import evaluate, match_endmembers
from unmixgen.runs.endmembers import load_library_spectra
from unmixgen.scene import Scene
from unmixgen.unmix.minvol import FIT_PIXELS
from unmixgen.unmix.registry import DEFAULT_METHOD, make_method


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--snrs", default="20,30")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--maps", default="procedural", choices=sorted(MAPS))
    ap.add_argument("--variability", type=float, default=None,
                    help="per-pixel brightness variability (ELMM log-std): the default then picks edaa")
    ap.add_argument("--extra", default="", help="comma-separated USGS names added to the four minerals")
    ap.add_argument("--settings", default=f"all,{FIT_PIXELS}",
                    help="comma-separated fit_pixels values: 'all' (every pixel) or a pixel count")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    em = load_library_spectra(LIB, NAMES + [n for n in args.extra.split(",") if n])
    p = em.spectra.shape[0]
    print("| scene | SNR | seed | fit_pixels | method | RMSE % | SAD deg | fit s | pixels fitted |")
    print("|---|---|---|---|---|---|---|---|---|")
    for snr in [float(v) for v in args.snrs.split(",")]:
        for seed in range(args.seeds):
            At, Y = suite_scene(em, args.size, args.size, MAPS[args.maps], snr, seed, args.variability)
            for setting in args.settings.split(","):
                fit = None if setting == "all" else int(setting)
                m = make_method(DEFAULT_METHOD, p, seed=seed)
                if hasattr(m, "fit_pixels"):  # "auto" forwards it to the method it picks
                    m.fit_pixels = fit
                t = time.perf_counter()
                m.fit(Scene(Y, wavelengths=em.wavelengths))
                sec = time.perf_counter() - t
                E, A = m.endmembers_, m.abundances_
                perm = match_endmembers(E, em.spectra, by="sad")
                r = evaluate(endmembers=E[perm], abundances=A[..., perm], ref_endmembers=em.spectra,
                             ref_abundances=At)
                info = m.info_
                print(f"| {args.maps} {args.size}x{args.size} p{p} | {snr:g} | {seed} | {setting} | "
                      f"{info.get('chosen', info['method'])} | {r['abundance_rmse_percent']:.2f} | {r['sad_deg_mean']:.2f} | {sec:.1f} | "
                      f"{info.get('pixels_fitted', np.prod(At.shape[:2]))} |", flush=True)


if __name__ == "__main__":
    main()
