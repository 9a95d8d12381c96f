"""PRISMA HE5 reader speed: `unmixgen info` (must not read the cube) and full-cube reads.

Generates a PRISMA-layout L2D HE5 (default 1000 x 1000 pixels, 66 + 173 = 239 uint16 band
slots, contiguous storage, a few fill/flagged pixels) and prints:

- wall time and peak RSS of ``unmixgen info FILE --json`` in a subprocess
  (peak RSS from ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``);
- seconds to read the whole cube to float32 reflectance with `unmixgen.io.prisma`;
- seconds for a bare h5py read of the same two uint16 datasets; and their ratio.

Usage: .venv/bin/python benchmarks/prisma_io.py [--rows 1000 --cols 1000] [--file PATH] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from prisma_fixture import make_prisma_he5  # noqa: E402
from unmixgen.io import read_scene  # noqa: E402


def _info_subprocess(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``unmixgen info FILE --json`` in a fresh process.

    Peak RSS comes from /usr/bin/time when present; otherwise from
    getrusage(RUSAGE_CHILDREN), which is only right when no earlier child was bigger.
    """
    exe = Path(sys.executable).with_name("unmixgen")
    cmd = [str(exe), "info", str(path), "--json"] if exe.exists() else [
        sys.executable, "-c", "from unmixgen.cli import main; main()", "info", str(path), "--json"]
    gnu_time = Path("/usr/bin/time")
    if gnu_time.exists():
        cmd = [str(gnu_time), "-f", "MAXRSS_KB=%M", *cmd]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"info failed: {out.stderr}")
    if gnu_time.exists():
        kb = int(out.stderr.strip().splitlines()[-1].split("=")[1])
    else:
        kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, kb / 1024.0


def _bare_h5py(path: Path) -> float:
    t = time.perf_counter()
    with h5py.File(path, "r") as f:
        for name in ("VNIR_Cube", "SWIR_Cube"):
            ds = f[f"HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/{name}"]
            a = np.empty(ds.shape, ds.dtype)
            ds.read_direct(a)
            del a
    return time.perf_counter() - t


def _drop_page_cache() -> bool:
    """Empty the OS page cache (root only), so the next read comes from disk."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def _cold(fn, path: Path) -> float | None:
    return fn(path) if _drop_page_cache() else None


def _reader(path: Path) -> float:
    t = time.perf_counter()
    scene = read_scene(path)
    cube = scene.read()
    assert cube.dtype == np.float32
    del cube
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--cols", type=int, default=1000)
    ap.add_argument("--file", type=Path, default=None, help="where to write the HE5 (default: temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--repeat", type=int, default=2, help="timed repetitions (best is reported)")
    ap.add_argument("--cold", action="store_true",
                    help="also time reads from disk, dropping the page cache first (needs root)")
    args = ap.parse_args()
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))

    tmp = None
    path = args.file
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="prisma_bench_")
        path = Path(tmp.name) / "PRS_L2D_STD_bench.he5"
    t = time.perf_counter()
    make_prisma_he5(path, args.rows, args.cols, "L2D")
    gen = time.perf_counter() - t
    size_mb = os.path.getsize(path) / 2**20
    info_wall, info_rss = min(_info_subprocess(path) for _ in range(args.repeat))
    _bare_h5py(path)  # warm the page cache so both reads see the same conditions
    bare = min(_bare_h5py(path) for _ in range(args.repeat))
    ours = min(_reader(path) for _ in range(args.repeat))
    cold_bare = _cold(_bare_h5py, path) if args.cold else None
    cold_ours = _cold(_reader, path) if args.cold else None

    rows = [
        ("file", f"{args.rows}x{args.cols}x239 uint16, {size_mb:.0f} MB (generated in {gen:.1f} s)"),
        ("unmixgen info --json: wall", f"{info_wall:.3f} s (limit 1 s)"),
        ("unmixgen info --json: peak RSS", f"{info_rss:.0f} MB (limit 300 MB)"),
        ("bare h5py read (uint16, both cubes)", f"{bare:.3f} s"),
        ("unmixgen read -> float32 reflectance", f"{ours:.3f} s"),
        ("ratio reader / bare h5py", f"{ours / bare:.2f} (limit 1.5)"),
    ]
    if cold_bare is not None and cold_ours is not None:
        rows += [
            ("from disk (page cache dropped): bare", f"{cold_bare:.3f} s"),
            ("from disk (page cache dropped): ours", f"{cold_ours:.3f} s"),
            ("from disk: ratio", f"{cold_ours / cold_bare:.2f} (limit 1.5)"),
        ]
    elif args.cold:
        rows.append(("from disk", "not measured: dropping the page cache needs root"))
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    if tmp is not None and not args.keep:
        tmp.cleanup()
    elif args.keep:
        print("kept", path)


if __name__ == "__main__":
    main()
