"""Speed and pure-pixel recovery of HySime, VCA, N-FINDR and ATGP.

For each case (pixels N, bands B, endmembers p): a synthetic scene of Dirichlet mixtures
(every abundance < 0.9) with one pure pixel per endmember at random rows, white noise at
``--snr`` dB. Prints the wall and CPU time of each routine, whether the extracted pixels
are exactly the pure ones, and the worst spectral angle to the true endmembers (degrees).

Usage::

    .venv/bin/python benchmarks/extraction_speed.py
    .venv/bin/python benchmarks/extraction_speed.py --cases 10000x200x5 --snr 30

OpenBLAS threads: on a machine shared by many processes, multithreaded BLAS can be slower
than one thread; compare with ``OPENBLAS_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from unmixgen.evaluate.unmixing import match_endmembers, sad
from unmixgen.unmix.extraction import atgp, nfindr, vca
from unmixgen.unmix.rank import hysime


def scene(n: int, bands: int, p: int, snr_db: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, bands, dtype=np.float32)
    c = rng.uniform(-0.1, 1.1, (p, 6, 1))
    w = rng.uniform(0.04, 0.2, (p, 6, 1))
    h = rng.uniform(0.1, 1.0, (p, 6, 1))
    E = ((h * np.exp(-0.5 * ((x - c) / w) ** 2)).sum(1) + rng.uniform(0.05, 0.3, (p, 1))).astype(np.float32)
    A = rng.dirichlet(np.ones(p), n).astype(np.float32)
    A = 0.9 * A + 0.1 / p  # every abundance < 0.9 + 0.1/p, so the pure pixels are the vertices
    pure = rng.choice(n, p, replace=False)
    A[pure] = np.eye(p, dtype=np.float32)
    Y = A @ E
    sigma = np.sqrt(float(np.mean(Y[:10000] ** 2)) / 10 ** (snr_db / 10))
    Y += rng.standard_normal(Y.shape, dtype=np.float32) * np.float32(sigma)
    return Y, E, pure


def timed(fn, *args, **kw):
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t, time.process_time() - c


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["10000x200x5", "1000000x230x9"],
                    help="NxBxp triples")
    ap.add_argument("--snr", type=float, default=40.0)
    args = ap.parse_args(argv)
    print("command:", " ".join([sys.executable, *sys.argv]))
    header = f"{'case':>16}  {'method':>8}  {'wall s':>7}  {'cpu s':>7}  {'pure found':>10}  {'max SAD deg':>11}  note"
    print(header)
    print("-" * len(header))
    for case in args.cases:
        n, bands, p = (int(v) for v in case.split("x"))
        Y, E, pure = scene(n, bands, p, args.snr)
        est, wall, cpu = timed(hysime, Y)
        print(f"{case:>16}  {'hysime':>8}  {wall:7.2f}  {cpu:7.2f}  {'':>10}  {'':>11}  "
              f"p_hat={est.n_endmembers} (true {p})")
        for name, fn, kw in [("vca", vca, {"seed": 0}), ("nfindr", nfindr, {"seed": 0}),
                             ("atgp", atgp, {}), ("atgp-sub", atgp, {"subspace": True})]:
            (idx, E_est), wall, cpu = timed(fn, Y, p, **kw)
            perm = match_endmembers(E_est, E, by="sad")
            found = sorted(idx.tolist()) == sorted(pure.tolist())
            print(f"{case:>16}  {name:>8}  {wall:7.2f}  {cpu:7.2f}  {str(found):>10}  "
                  f"{sad(E_est[perm], E).max():11.3f}")


if __name__ == "__main__":
    main()
