"""Refinement with and without holding some endmembers at their pure-pixel clusters.

Scenes of the demo's family (`simulate.procedural.make_scene` with pure pixels and regions:
some materials have wide pure regions, others a few pure pixels), where the blind default's
vertex of a pure region sits inside its cluster but not every vertex has one, so the
all-or-none rule of `vertex_clusters` moves nothing. For each scene: the blind default, then
`refine` as ``unmixgen refine`` runs it (rounds by the prior's weight, endmembers fitted to
the pixels) with ``pure_pins=False`` ("before") and ``True`` (the default, "after"). Prints abundance RMSE %
and mean SAD (deg) of the init and of both refinements, the pinned endmembers and their SAD.

    PYTHONPATH=src python benchmarks/partial_pins.py --snrs 20,30,40 --seeds 4
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

from unmixgen.evaluate.unmixing import match_endmembers, rmse, sad
from unmixgen.priors.abundance.model import load_model
from unmixgen.priors.spectra.model import load_spectra_prior
from unmixgen.refine.posterior import refine
from unmixgen.simulate.procedural import make_scene
from unmixgen.unmix.archetypal import abundance_basis
from unmixgen.unmix.registry import DEFAULT_METHOD, make_method
from unmixgen.workflows.refinement import _shipped

FAMILIES = {"demo5": {"p": 5}, "water4": {"kinds": ["soil", "vegetation", "water", "asphalt"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="demo5,water4")
    ap.add_argument("--snrs", default="20,30,40")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--cols", type=int, default=80)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ab, sp = load_model(_shipped("refine_abundance")), load_spectra_prior(None)
    print("| family | SNR | seed | pinned | RMSE % init / before / after | SAD deg init / before / after "
          "| pinned SAD deg before / after |")
    print("|---|---|---|---|---|---|---|")
    for fam in args.families.split(","):
        for snr in (float(v) for v in args.snrs.split(",")):
            for seed in range(args.seeds):
                scene = make_scene(args.rows, args.cols, snr_db=snr, pure_pixels=True, regions=6, seed=seed,
                                   **FAMILIES[fam])
                Y, Et, At = scene.load(), scene.truth.endmembers, scene.truth.abundances
                p = len(Et)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    blind = make_method(DEFAULT_METHOD, p, seed=seed).fit(scene)
                runs = [(blind.endmembers_, blind.abundances_, None)]
                for pins in (False, True):
                    r = refine(Y, blind.endmembers_, blind.abundances_, abundance_prior=ab, spectra_prior=sp,
                               wavelengths=scene.wavelengths, samples=args.samples, steps=args.steps, rounds=None,
                               endmembers_fitted=True, abundance_basis=abundance_basis(blind), seed=seed,
                               pure_pins=pins)
                    runs.append((r.endmembers, r.abundances, r.record))
                order = match_endmembers(blind.endmembers_, Et, by="sad")  # estimate rows in the truth's order
                errs = [100 * rmse(A.reshape(-1, p)[:, order], At.reshape(-1, p)) for _, A, _ in runs]
                sads = [sad(E[order], Et) for E, _, _ in runs]
                pinned = runs[2][2]["pure_clusters"].get("pinned", [])
                rows = [int(np.flatnonzero(order == j)[0]) for j in pinned]  # truth rows of the pinned
                names = ",".join(scene.truth.names[i] for i in rows) or "-"
                pin_sad = (f"{sads[1][rows].mean():.2f} / {sads[2][rows].mean():.2f}" if rows else "")
                print(f"| {fam} | {snr:g} | {seed} | {names} | {errs[0]:.2f} / {errs[1]:.2f} / {errs[2]:.2f} | "
                      f"{sads[0].mean():.2f} / {sads[1].mean():.2f} / {sads[2].mean():.2f} | {pin_sad} |",
                      flush=True)


if __name__ == "__main__":
    main()
