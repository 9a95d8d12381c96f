"""Full-scene unmixing through the CLI: wall time and peak memory.

Writes a synthetic 1000 x 1000 x 230 float32 cube (.npy, memory-mappable; spatially
structured abundances, p = 9, 30 dB) and times, in a fresh process, either blind
unmixing (default)

    unmixgen unmix CUBE.npy --endmembers 9 --method vca --out DIR --overwrite

or, with ``--endmembers-file``, abundances for the p endmembers the cube was mixed from
(written first as a CSV)

    unmixgen unmix CUBE.npy --endmembers-file EM.csv --method fcls --out DIR --overwrite

Memory, for the unmix process only:

- peak RSS: the kernel's maximum resident set (``wait4`` rusage, as GNU ``time -f %M``).
  It counts the pages of the memory-mapped cube the process has touched, which are page
  cache the kernel may drop at any time;
- peak anonymous RSS: ``RssAnon`` from ``/proc/PID/status`` sampled every 10 ms, i.e.
  the memory the process itself holds (arrays, the loaded cube), without mapped file pages.

Targets (issue 3, blind): <= 30 s wall and peak RSS <= 3x the float32 cube.

The cube and CSV are written with functions that exist under their old and new module
names, so the same file measures an older checkout:
``PYTHONPATH=/path/to/old/src .venv/bin/python benchmarks/full_scene_unmix.py ...``.

Usage: .venv/bin/python benchmarks/full_scene_unmix.py [--rows 1000 --cols 1000 --bands 230 --p 9]
       [--method vca] [--endmembers-file] [--figures] [--dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import unmixgen

try:
    from unmixgen.simulate.mixing import add_noise, linear
    from unmixgen.simulate.procedural import abundance_maps, library
except ImportError:  # checkouts before the one-room-per-stage layout (issue 7)
    from unmixgen.mixing import add_noise, linear
    from unmixgen.synthetic import abundance_maps, library

KINDS = ["vegetation", "soil", "water", "asphalt", "concrete", "roof", "dry_vegetation", "kaolinite", "metal"]


def make_cube(path: Path, rows: int, cols: int, bands: int, p: int, seed: int = 0, noise: str = "flat",
              variability: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Write the cube to ``path`` (.npy); return its endmembers ``(p, bands)`` and wavelengths (nm).
    ``noise="sensor"``: the noise spread over the bands like a sensor's (`semiblind.sensor_noise_profile`);
    ``variability``: each pixel's brightness scaled by ``exp(variability * N(0, 1))`` (the scaled model)."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(400, 2500, bands)
    E, _ = library(wl, kinds=(KINDS * 2)[:p], rng=rng)
    A = abundance_maps(rows, cols, p, rng)
    cube = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols, bands))
    step = 100
    extra = {}
    if noise == "sensor":
        from semiblind import sensor_noise_profile

        extra = {"band_std": sensor_noise_profile(wl, seed)}
    for r in range(0, rows, step):  # mix and add noise in row blocks: bounded memory
        mixed = linear(A[r:r + step], E)
        if variability:
            mixed = mixed * np.exp(variability * rng.standard_normal(mixed.shape[:-1] + (1,))).astype(np.float32)
        cube[r:r + step] = add_noise(mixed, 30.0, rng, **extra)
    cube.flush()
    del cube
    return np.asarray(E, np.float32), wl


def write_csv(path: Path, E: np.ndarray, wl: np.ndarray) -> None:
    """Endmember CSV in the run-folder layout: ``wavelength_nm`` then one column per endmember."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wavelength_nm"] + [f"em{i + 1}" for i in range(E.shape[0])])
        for b, nm in enumerate(wl):
            w.writerow([repr(float(nm))] + [repr(float(v)) for v in E[:, b]])


def run_measured(cmd: list[str], log: Path) -> tuple[int, float, float, float]:
    """Run ``cmd``; return (exit status, wall s, peak RSS MiB, peak anonymous RSS MiB)."""
    peak_anon_kb = 0
    t = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    status_file = Path(f"/proc/{proc.pid}/status")
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_anon_kb
        while not done.is_set():
            try:
                for line in status_file.read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        peak_anon_kb = max(peak_anon_kb, int(line.split()[1]))
            except OSError:
                pass
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_maxrss / 1024, peak_anon_kb / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--cols", type=int, default=1000)
    ap.add_argument("--bands", type=int, default=230)
    ap.add_argument("--p", type=int, default=9)
    ap.add_argument("--method", default=None, help="default: vca (blind), fcls (--endmembers-file)")
    ap.add_argument("--endmembers-file", action="store_true",
                    help="invert for the cube's own endmembers, given as a CSV, instead of blind unmixing")
    ap.add_argument("--figures", action="store_true", help="also write the PNG figures")
    ap.add_argument("--noise", choices=("flat", "sensor"), default="flat",
                    help="the cube's noise the same in every band, or spread like a sensor's (the blind default "
                         "and --band-weights then weigh the bands)")
    ap.add_argument("--variability", type=float, default=0.0,
                    help="std of each pixel's log brightness scaling (the blind default then takes edaa)")
    ap.add_argument("--extra", default="", help="more unmix options, e.g. '--band-weights noise'")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args()
    method = args.method or ("fcls" if args.endmembers_file else "vca")
    print("command:", " ".join(sys.argv))
    print("unmixgen:", Path(unmixgen.__file__).parent)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        cube_path = tmp / "cube.npy"
        t = time.perf_counter()
        E, wl = make_cube(cube_path, args.rows, args.cols, args.bands, args.p, noise=args.noise,
                          variability=args.variability)
        print(f"made {args.rows}x{args.cols}x{args.bands} cube in {time.perf_counter() - t:.1f} s")
        cmd = [sys.executable, "-c", "import sys; from unmixgen.cli import main; sys.exit(main())",
               "unmix", str(cube_path), "--method", method, "--out", str(tmp / "run"), "--overwrite"]
        if args.endmembers_file:
            write_csv(tmp / "endmembers.csv", E, wl)
            cmd += ["--endmembers-file", str(tmp / "endmembers.csv")]
        else:
            cmd += ["--endmembers", str(args.p)]
        if not args.figures:
            cmd.append("--no-figures")
        cmd += args.extra.split()
        code, wall, rss_mb, anon_mb = run_measured(cmd, tmp / "unmix.log")
        if code != 0:
            raise SystemExit(f"unmix failed ({code}): {(tmp / 'unmix.log').read_text()[-3000:]}")
        cube_mb = args.rows * args.cols * args.bands * 4 / 2**20
        timings = json.loads((tmp / "run" / "run.json").read_text())["timings_s"]
        mode = "given E" if args.endmembers_file else "blind"
        print()
        print("| scene | p | mode | method | figures | wall s | peak RSS MB | peak anon RSS MB "
              "| cube MB | RSS / cube | anon / cube |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {args.rows}x{args.cols}x{args.bands} | {args.p} | {mode} | {method} | {args.figures} | "
              f"{wall:.1f} | {rss_mb:.0f} | {anon_mb:.0f} | {cube_mb:.0f} | {rss_mb / cube_mb:.2f} | "
              f"{anon_mb / cube_mb:.2f} |")
        print("stage timings (s):", {k: round(v, 2) for k, v in timings.items()})


if __name__ == "__main__":
    main()
