"""Full-scene blind unmixing through the CLI: wall time and peak RSS.

Writes a synthetic 1000 x 1000 x 230 float32 cube (.npy, memory-mappable; spatially
structured abundances, p = 9, 30 dB) and times, in a fresh process,

    unmixgen unmix CUBE.npy --endmembers 9 --method vca --out DIR --overwrite

Peak RSS comes from /usr/bin/time (GNU). Targets (issue 3): <= 30 s wall and peak RSS
<= 3x the float32 cube.

Usage: .venv/bin/python benchmarks/full_scene_unmix.py [--rows 1000 --cols 1000 --bands 230 --p 9]
       [--method vca] [--figures] [--dir DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from unmixgen.simulate.mixing import add_noise, linear
from unmixgen.simulate.procedural import abundance_maps, library


def make_cube(path: Path, rows: int, cols: int, bands: int, p: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    wl = np.linspace(400, 2500, bands)
    kinds = ["vegetation", "soil", "water", "asphalt", "concrete", "roof", "dry_vegetation", "kaolinite", "metal"]
    E, _ = library(wl, kinds=(kinds * 2)[:p], rng=rng)
    A = abundance_maps(rows, cols, p, rng)
    cube = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols, bands))
    step = 100
    for r in range(0, rows, step):  # mix and add noise in row blocks: bounded memory
        cube[r:r + step] = add_noise(linear(A[r:r + step], E), 30.0, rng)
    cube.flush()
    del cube


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--cols", type=int, default=1000)
    ap.add_argument("--bands", type=int, default=230)
    ap.add_argument("--p", type=int, default=9)
    ap.add_argument("--method", default="vca")
    ap.add_argument("--figures", action="store_true", help="also write the PNG figures")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    print("command:", " ".join(sys.argv))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        cube_path = tmp / "cube.npy"
        t = time.perf_counter()
        make_cube(cube_path, args.rows, args.cols, args.bands, args.p)
        print(f"made {args.rows}x{args.cols}x{args.bands} cube in {time.perf_counter() - t:.1f} s")
        exe = Path(sys.executable).with_name("unmixgen")
        cmd = ["/usr/bin/time", "-f", "MAXRSS_KB=%M", str(exe), "unmix", str(cube_path),
               "--endmembers", str(args.p), "--method", args.method, "--out", str(tmp / "run"), "--overwrite"]
        if not args.figures:
            cmd.append("--no-figures")
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if res.returncode != 0:
            raise SystemExit(f"unmix failed ({res.returncode}): {res.stderr}")
        rss_mb = int(res.stderr.strip().splitlines()[-1].split("=")[1]) / 1024
        cube_mb = args.rows * args.cols * args.bands * 4 / 2**20
        import json

        timings = json.loads((tmp / "run" / "run.json").read_text())["timings_s"]
        print()
        print("| scene | p | method | figures | wall s | peak RSS MB | cube MB | RSS / cube |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| {args.rows}x{args.cols}x{args.bands} | {args.p} | {args.method} | {args.figures} | "
              f"{wall:.1f} | {rss_mb:.0f} | {cube_mb:.0f} | {rss_mb / cube_mb:.2f} |")
        print("stage timings (s):", {k: round(v, 2) for k, v in timings.items()})


if __name__ == "__main__":
    main()
