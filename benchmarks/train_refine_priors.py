"""Train the two priors `unmixgen refine` ships (run from the repository root).

    PYTHONPATH=src python benchmarks/train_refine_priors.py single-map OUT --minutes 6
    .venv/bin/unmixgen train-spectra ... (the spectra prior: see
    src/unmixgen/assets/spectra_prior/README.md)

``single-map``: the one-vs-rest abundance prior (p = 2: a map ``a_k`` and its complement
``1 - a_k``), trained on procedural maps (`unmixgen.simulate.procedural.abundance_maps`,
seeds 1000+, many smoothness / purity / region settings, p from 2 to 6) so that one set of
weights serves any endmember count and order.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from unmixgen.atomic import atomic_dir
from unmixgen.priors.abundance.patches import TrainingMaps
from unmixgen.priors.abundance.train import create_model_folder, export_for_sampling, train
from unmixgen.simulate.procedural import abundance_maps


def one_vs_rest_maps(n_scenes: int = 24, size: int = 64, seed: int = 1000) -> list[np.ndarray]:
    """(size, size, 2) maps ``[a_k, 1 - a_k]`` for every endmember of ``n_scenes`` scenes."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_scenes):
        p = int(rng.integers(2, 7))
        a = abundance_maps(size, size, p, rng, smoothness=float(rng.uniform(2.5, 4.5)),
                           purity=float(rng.uniform(1.0, 6.0)), regions=int(rng.integers(0, 8)))
        for k in range(p):
            out.append(np.stack([a[..., k], 1.0 - a[..., k]], -1).astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["single-map"])
    ap.add_argument("out")
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--export", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    maps = one_vs_rest_maps()
    data = TrainingMaps(maps, ["map", "rest"], None, ["procedural:seed1000"], [])
    with atomic_dir(Path(args.out)) as tmp:
        create_model_folder(tmp, data, patch=16, width=16, seed=0)
    info = train(args.out, max_minutes=args.minutes, progress=False)
    print({k: info[k] for k in ("step", "loss", "minutes")})
    if args.export:
        export_for_sampling(args.out, args.export)


if __name__ == "__main__":
    main()
