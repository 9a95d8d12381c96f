"""mvnmf with and without its pure-pixel cluster step, on the refinement suite's scenes.

For each map family of `refine.MAPS` (only "pure" has pure pixels), SNR and seed: abundance
RMSE % of FCLS with the true endmembers, of mvnmf without the step (``pure_clusters=False``)
and with it (`unmix.vertex_clusters.vertex_clusters` on its endmembers, which is what
``pure_clusters=True`` runs), the mean SAD of the endmembers and which vertices moved.

    PYTHONPATH=src python benchmarks/pure_clusters.py --maps pure,sharp,procedural,regions,rough --snrs 15,20,30,40 --seeds 2
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

from refine import LIB, MAPS, NAMES, suite_scene
from unmixgen.evaluate.unmixing import match_endmembers, rmse, sad
from unmixgen.runs.endmembers import load_library_spectra
from unmixgen.scene import Scene
from unmixgen.unmix.inversion import fcls
from unmixgen.unmix.minvol import MinVolNMF
from unmixgen.unmix.vertex_clusters import vertex_clusters


def fcls_rmse(Y: np.ndarray, E: np.ndarray, At: np.ndarray, order: np.ndarray) -> float:
    """Abundance RMSE % of FCLS with ``E`` against ``At`` (N, p), estimate columns ``order``."""
    return 100 * rmse(fcls(Y, E)[:, order], At)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maps", default="pure,sharp,procedural,regions,rough")
    ap.add_argument("--snrs", default="15,20,30,40")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    em = load_library_spectra(LIB, NAMES)
    Et = em.spectra
    print("| maps | SNR | seed | FCLS true E % | mvnmf % (SAD deg) | with clusters % (SAD deg) | moved |")
    print("|---|---|---|---|---|---|---|")
    for maps in args.maps.split(","):
        for snr in (float(v) for v in args.snrs.split(",")):
            for seed in range(args.seeds):
                At, Y = suite_scene(em, args.size, args.size, MAPS[maps], snr, seed)
                Yf, Af = Y.reshape(-1, Y.shape[-1]), At.reshape(-1, At.shape[-1])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    E0 = MinVolNMF(len(NAMES), seed=0, pure_clusters=False).fit(
                        Scene(Y, wavelengths=em.wavelengths)).endmembers_
                E1, rec = vertex_clusters(Yf, E0)
                order = match_endmembers(E0, Et, by="sad")  # estimate rows in the truth's order
                truth = fcls_rmse(Yf, Et, Af, np.arange(len(Et)))
                print(f"| {maps} | {snr:g} | {seed} | {truth:.2f} | {fcls_rmse(Yf, E0, Af, order):.2f} "
                      f"({sad(E0[order], Et).mean():.2f}) | {fcls_rmse(Yf, E1, Af, order):.2f} "
                      f"({sad(E1[order], Et).mean():.2f}) | "
                      f"{'all' if rec['moved'] else 'none'} |", flush=True)


if __name__ == "__main__":
    main()
