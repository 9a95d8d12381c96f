"""Speed, memory and exactness of batched FCLS abundance inversion.

Each case runs in its own subprocess so its peak RSS (``ru_maxrss``) is its own. For each
case: wall time of `unmixgen.unmix.inversion.fcls`, pixels/s, peak RSS, the peak RSS
added by the inversion over the data already in memory, and the max abs abundance
difference to the EXACT per-pixel solution (enumeration of all 2^p - 1 supports in float64)
on a sample of pixels. A per-pixel reference solver (scipy ``nnls`` on the augmented
system ``[E^T; w 1^T]``, the classic FCLS recipe) is timed on a small sample and
extrapolated, for the before/after ratio.

``--scene-size RxCxB`` measures full-scene inversion through `invert_scene` (tiles of a
`Scene`), peak RSS against the float32 cube size.

Usage::

    .venv/bin/python benchmarks/inversion_speed.py                 # the three pixel cases
    .venv/bin/python benchmarks/inversion_speed.py --scene-size 1000x1000x230 --p 9
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

CASES = [(10_000, 162, 5), (94_249, 162, 5), (1_000_000, 230, 9)]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def endmembers(p: int, bands: int, rng) -> np.ndarray:
    """Smooth, correlated spectra in [0.05, 0.7] (realistic conditioning)."""
    x = np.linspace(0, 1, bands)
    E = [0.35 + 0.25 * np.sin(2 * np.pi * (k + 1) * x / 3 + k) + 0.1 * rng.random() * x for k in range(p)]
    return np.clip(np.stack(E), 0.05, 0.9).astype(np.float32)


def pixels(n: int, E: np.ndarray, rng, out: np.ndarray | None = None, chunk: int = 20_000) -> np.ndarray:
    """``n`` mixed pixels (sparse-ish Dirichlet abundances, 1 % noise), generated in chunks."""
    p, bands = E.shape
    Y = np.empty((n, bands), np.float32) if out is None else out
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        A = rng.dirichlet(np.full(p, 0.3), m).astype(np.float32)
        Y[s : s + m] = A @ E + rng.standard_normal((m, bands), dtype=np.float32) * 0.01
    return Y


def exact_fcls(Y, E) -> np.ndarray:
    """Exact FCLS by enumerating every support (float64)."""
    Y = np.asarray(Y, np.float64)
    E = np.asarray(E, np.float64)
    n, p = Y.shape[0], E.shape[0]
    best = np.full(n, np.inf)
    A = np.zeros((n, p))
    for k in range(1, p + 1):
        for S in itertools.combinations(range(p), k):
            S = list(S)
            M = np.zeros((k + 1, k + 1))
            M[:k, :k] = E[S] @ E[S].T
            M[:k, k] = M[k, :k] = 1.0
            rhs = np.concatenate([Y @ E[S].T, np.ones((n, 1))], axis=1)
            sol = np.linalg.lstsq(M, rhs.T, rcond=None)[0].T[:, :k]
            a = np.zeros((n, p))
            a[:, S] = np.maximum(sol, 0)
            obj = ((Y - a @ E) ** 2).sum(1)
            better = (sol >= -1e-12).all(1) & (obj < best)
            best[better] = obj[better]
            A[better] = a[better]
    return A


def per_pixel_reference(Y, E, weight: float = 1e3) -> tuple[float, np.ndarray]:
    """Classic per-pixel FCLS: scipy nnls on ``[E^T; w 1^T] a = [y; w]``; returns seconds, A.

    ``w = weight * rms(||e_i||)`` makes the sum-to-one row dominate (Heinz & Chang's
    ``delta`` = 1 / w); the result is only approximately sum-to-one.
    """
    from scipy.optimize import nnls

    E64 = E.astype(np.float64)
    w = weight * np.sqrt((E64**2).sum() / E.shape[0])
    M = np.vstack([E64.T, np.full((1, E.shape[0]), w)])
    t0 = time.perf_counter()
    A = np.stack([nnls(M, np.r_[y.astype(np.float64), w])[0] for y in Y])
    return time.perf_counter() - t0, A


def slsqp_reference(Y, E) -> float:
    """Seconds for a generic per-pixel QP (scipy SLSQP, tight tolerance) on the pixels ``Y``."""
    from scipy.optimize import minimize

    E64 = E.astype(np.float64)
    G = E64 @ E64.T
    p = E.shape[0]
    cons = ({"type": "eq", "fun": lambda a: a.sum() - 1.0, "jac": lambda a: np.ones_like(a)},)
    t0 = time.perf_counter()
    for y in Y.astype(np.float64):
        b = E64 @ y
        minimize(lambda a, b=b: 0.5 * a @ G @ a - b @ a, np.full(p, 1.0 / p), jac=lambda a, b=b: G @ a - b,
                 bounds=[(0, None)] * p, constraints=cons, method="SLSQP", options={"ftol": 1e-12})
    return time.perf_counter() - t0


def run_case(n: int, bands: int, p: int, sample: int, ref_sample: int, repeats: int) -> dict:
    from unmixgen.unmix.inversion import fcls

    rng = np.random.default_rng(0)
    E = endmembers(p, bands, rng)
    Y = pixels(n, E, rng)
    fcls(Y[:2000], E)  # warm up (imports, BLAS threads)
    base = rss_mb()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        A = fcls(Y, E)
        times.append(time.perf_counter() - t0)
    secs = min(times)
    peak = rss_mb()
    idx = np.random.default_rng(1).choice(n, min(sample, n), replace=False)
    R = exact_fcls(Y[idx], E)
    out = {
        "pixels": n, "bands": bands, "p": p, "seconds": secs, "pixels_per_s": n / secs,
        "median_seconds": float(np.median(times)), "repeats": repeats,
        "peak_rss_mb": peak, "inversion_rss_mb": peak - base, "data_mb": Y.nbytes / 2**20,
        "max_abs_diff": float(np.abs(A[idx] - R).max()), "sample": int(idx.size),
        "sum_err": float(np.abs(A.sum(1, dtype=np.float64) - 1).max()), "min": float(A.min()),
    }
    if ref_sample:  # the other inverters on the same pixels (small cases only)
        from unmixgen.unmix.inversion import METHODS

        kw = {"sunsal": {"lam": 1e-4, "sum_to_one": True}}
        others = {}
        for name, fn in METHODS.items():
            if name != "fcls":
                t0 = time.perf_counter()
                A2 = fn(Y, E, **kw.get(name, {}))
                others[name] = (time.perf_counter() - t0, float(np.abs(A2[idx] - R).max()))
        out["others"] = others
        m = min(ref_sample, n)
        t_ref, A_ref = per_pixel_reference(Y[:m], E)
        out["ref_seconds_extrapolated"] = t_ref / m * n
        out["ref_sample"] = m
        out["ref_max_abs_diff_to_exact"] = float(np.abs(A_ref[:200] - exact_fcls(Y[:200], E)).max())
        out["slsqp_seconds_extrapolated"] = slsqp_reference(Y[:200], E) / 200 * n
    return out


def run_scene(rows: int, cols: int, bands: int, p: int, tile: int) -> dict:
    from unmixgen.scene import Scene
    from unmixgen.unmix.inversion import invert_scene

    rng = np.random.default_rng(0)
    E = endmembers(p, bands, rng)
    cube = np.empty((rows, cols, bands), np.float32)
    pixels(rows * cols, E, rng, out=cube.reshape(-1, bands))
    cube[:5, :7] = np.nan  # a few invalid pixels
    scene = Scene(cube)
    _ = scene.mask
    base = rss_mb()
    t0 = time.perf_counter()
    A = invert_scene(scene, E, "fcls", tile_size=tile)
    secs = time.perf_counter() - t0
    peak = rss_mb()
    return {
        "scene": f"{rows}x{cols}x{bands}", "p": p, "tile": tile, "seconds": secs,
        "pixels_per_s": rows * cols / secs, "peak_rss_mb": peak, "inversion_rss_mb": peak - base,
        "cube_mb": cube.nbytes / 2**20, "peak_over_cube": peak / (cube.nbytes / 2**20),
        "nan_pixels": int(np.isnan(A[..., 0]).sum()),
    }


def subprocess_json(args: list[str]) -> dict:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help="internal: N,bands,p (one subprocess)")
    ap.add_argument("--scene-size", help="RxCxB: full-scene inversion through invert_scene")
    ap.add_argument("--p", type=int, default=9, help="endmembers for --scene-size")
    ap.add_argument("--tile", type=int, default=256, help="tile size for --scene-size")
    ap.add_argument("--sample", type=int, default=500, help="pixels checked against the exact solution")
    ap.add_argument("--ref-sample", type=int, default=2000, help="pixels timed with the per-pixel solver")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case (best and median shown)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        if a.case:
            n, b, p = (int(v) for v in a.case.split(","))
            print(json.dumps(run_case(n, b, p, a.sample, a.ref_sample, a.repeats)))
        else:
            r, c, b = (int(v) for v in a.scene_size.split("x"))
            print(json.dumps(run_scene(r, c, b, a.p, a.tile)))
        return

    print("$ " + " ".join([".venv/bin/python", "benchmarks/inversion_speed.py", *sys.argv[1:]]))
    if a.scene_size:
        r = subprocess_json(["--worker", "--scene-size", a.scene_size, "--p", str(a.p), "--tile", str(a.tile)])
        print(f"\nfull-scene FCLS through invert_scene (tile {r['tile']}), p={r['p']}")
        print(f"{'scene':>16} {'seconds':>8} {'Mpix/s':>7} {'cube MB':>8} {'peak RSS MB':>11} "
              f"{'inversion +MB':>13} {'peak/cube':>9}")
        print(f"{r['scene']:>16} {r['seconds']:8.2f} {r['pixels_per_s'] / 1e6:7.2f} {r['cube_mb']:8.0f} "
              f"{r['peak_rss_mb']:11.0f} {r['inversion_rss_mb']:13.0f} {r['peak_over_cube']:9.2f}")
        return

    cases = [tuple(int(v) for v in a.case.split(","))] if a.case else CASES
    rows = []
    for n, b, p in cases:
        ref = a.ref_sample if n <= 100_000 else 0
        rows.append(subprocess_json(["--worker", "--case", f"{n},{b},{p}", "--sample", str(a.sample),
                                     "--ref-sample", str(ref), "--repeats", str(a.repeats)]))
        if n < 50_000:
            rows[-1].pop("others", None)
    print(f"\nbatched FCLS (exact active set), float32 data, {a.repeats} runs per case; max |diff| vs "
          f"exact enumeration on {a.sample} pixels; load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'pixels':>10} {'bands':>5} {'p':>2} {'best s':>8} {'median s':>8} {'Mpix/s':>7} {'data MB':>8} "
          f"{'peak RSS MB':>11} {'inversion +MB':>13} {'max|diff|':>9} {'|sum-1|':>8}")
    for r in rows:
        print(f"{r['pixels']:>10,} {r['bands']:>5} {r['p']:>2} {r['seconds']:8.3f} {r['median_seconds']:8.3f} "
              f"{r['pixels_per_s'] / 1e6:7.2f} {r['data_mb']:8.0f} {r['peak_rss_mb']:11.0f} "
              f"{r['inversion_rss_mb']:13.0f} {r['max_abs_diff']:9.1e} {r['sum_err']:8.1e}")
    for r in rows:
        if "others" in r:
            print(f"\nother inverters, {r['pixels']:,} pixels x {r['bands']} bands, p={r['p']} "
                  "(max|diff| is to the exact FCLS solution; only sunsal with sum_to_one targets it)")
            for name, (t, dmax) in r["others"].items():
                print(f"  {name:>7} {t:7.3f} s  max|diff to FCLS| {dmax:.1e}")
    refs = [r for r in rows if "ref_seconds_extrapolated" in r]
    if refs:
        print("\nper-pixel reference: scipy.optimize.nnls on [E^T; w*1^T], w = 1e3*rms|e|, timed on a sample, extrapolated")
        print("  and a generic per-pixel QP: scipy SLSQP (ftol 1e-12) timed on 200 pixels, extrapolated")
        print(f"{'pixels':>10} {'sample':>6} {'nnls s (extr.)':>14} {'SLSQP s (extr.)':>15} {'batched s':>9} "
              f"{'vs nnls':>7} {'vs SLSQP':>8} {'nnls max|diff| to exact':>23}")
        for r in refs:
            print(f"{r['pixels']:>10,} {r['ref_sample']:>6} {r['ref_seconds_extrapolated']:14.2f} "
                  f"{r['slsqp_seconds_extrapolated']:15.2f} {r['seconds']:9.3f} "
                  f"{r['ref_seconds_extrapolated'] / r['seconds']:6.0f}x "
                  f"{r['slsqp_seconds_extrapolated'] / r['seconds']:7.0f}x {r['ref_max_abs_diff_to_exact']:23.1e}")


if __name__ == "__main__":
    main()
