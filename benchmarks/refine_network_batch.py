"""CPU seconds of the shipped refine prior's network on 64 tiles of 64 x 64 px, by network
batch size and memory format (the choice of `unmixgen.refine.abundance_prior.CPU_BATCH_PIXELS`).
Prints the minimum and median over ``--reps`` interleaved repetitions (other jobs on the
machine inflate single measurements).

    PYTHONPATH=src python benchmarks/refine_network_batch.py --threads 1 --batches 2,4,8,16,32,64
"""

from __future__ import annotations

import argparse
import time

import torch

from unmixgen.priors.abundance.model import AbundanceModel
from unmixgen.priors.diffusion import channels_last_copy
from unmixgen.workflows.refinement import DEFAULT_ABUNDANCE_PRIOR, _shipped


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", default="2,4,8,16,32,64")
    ap.add_argument("--reps", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = AbundanceModel(_shipped(DEFAULT_ABUNDANCE_PRIOR)).net
    net_cl = channels_last_copy(net)
    x = torch.randn(64, 2, 64, 64, generator=torch.Generator().manual_seed(0))
    t = torch.full((64,), 150)
    runs = {(b, cl): [] for b in (int(v) for v in args.batches.split(",")) for cl in (False, True)}
    with torch.inference_mode():
        for _ in range(args.reps):
            for b, cl in runs:
                n, xx = (net_cl, x.contiguous(memory_format=torch.channels_last)) if cl else (net, x)
                c = time.process_time()
                for i in range(0, 64, b):
                    n(xx[i:i + b], t[i:i + b])
                runs[b, cl].append(time.process_time() - c)
    print(f"| batch | format | CPU s min | CPU s median |  (64 tiles, {args.threads} thread(s))")
    print("|---|---|---|---|")
    for (b, cl), v in runs.items():
        v = sorted(v)
        print(f"| {b} | {'channels-last' if cl else 'contiguous'} | {v[0]:.3f} | {v[len(v) // 2]:.3f} |")


if __name__ == "__main__":
    main()
