"""Registry of public unmixing benchmark scenes: where to get them, how to check and load them.

Each `Dataset` lists its files (source URLs, sha256, size), which file is the scene and
which holds the ground truth. `load(name)` returns a `Scene` with `scene.truth` attached.

Where the files come from, in this order:

1. ``data_dir`` (CLI ``--data-dir``) or the environment variable ``UNMIXGEN_DATA``: a local
   folder laid out like the shared data folder, ``<data_dir>/<folder>/<file>`` (e.g.
   ``samson/samson_1.mat``). Nothing is downloaded; files are hash-checked.
2. The cache, ``$XDG_CACHE_HOME/unmixgen`` (default ``~/.cache/unmixgen``), same layout;
   missing files are downloaded there once (atomically, hash-checked).

Hashes. The Samson and Jasper Ridge files are pinned to the sha256 of the byte-exact copies
described in the shared data MANIFEST, and their URLs point at the exact commits. The
Urban and Cuprite files could not be downloaded and checked when the registry was written:
their ``sha256`` is ``None`` ("not pinned yet"). `fetch` refuses to download an unpinned
file unless ``allow_unpinned=True`` (CLI ``--allow-unpinned``); it then prints the sha256
it got so it can be pinned here. Unpinned files found in a local ``data_dir`` are used
as they are (the user supplied them).
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_file
from ..errors import InputError, in_file
from ..scene import Scene

_urlopen = urllib.request.urlopen  # replaced in tests


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its name, download URLs (tried in order), sha256, size."""

    name: str
    urls: tuple[str, ...]
    sha256: str | None  # None: not pinned yet (see module docstring)
    size: int | None = None  # bytes, when known


@dataclass(frozen=True)
class Dataset:
    """A benchmark scene: its files and how to load it."""

    name: str
    title: str
    folder: str  # sub-folder of the data dir / cache
    rows: int
    cols: int
    bands: int
    endmembers: int
    scene_file: str
    truth_file: str | None
    files: tuple[DataFile, ...] = field(default_factory=tuple)
    citation: str = ""
    note: str = ""

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(sizes)

    def file(self, name: str) -> DataFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)


_GH = "https://raw.githubusercontent.com"
_MUA = f"{_GH}/ricardoborsoi/MUA_SparseUnmixing/089f5d61162807a5304759e293b132ed9d0d6ab4"
_MAXVOL = f"{_GH}/mabdolali/MaxVol_Dual/2ceb4f74f119163163a1851e24a4c7d71d1015f7"
# gaetanosettembre/data_unmixing (README lists Datasets/Urban and Datasets/Cuprite); the
# branch name is not verified and the files are not pinned.
_SETTEMBRE = f"{_GH}/gaetanosettembre/data_unmixing/main/Datasets"
_ZHU = ("F. Zhu, Hyperspectral Unmixing: Ground Truth Labeling, Datasets, Benchmark "
        "Performances and Survey, arXiv:1708.05125, 2017")

_URBAN_SCENE = DataFile("Urban.mat", (f"{_SETTEMBRE}/Urban/Urban.mat",), None)


def _urban(p: int) -> Dataset:
    gt = f"end{p}_groundTruth.mat"
    return Dataset(
        name=f"urban{p}", title=f"Urban (HYDICE), {p}-endmember ground truth", folder="urban",
        rows=307, cols=307, bands=162, endmembers=p, scene_file="Urban.mat", truth_file=gt,
        files=(_URBAN_SCENE, DataFile(gt, (f"{_SETTEMBRE}/Urban/{gt}",), None)),
        citation=_ZHU, note="not pinned: sha256 unknown until first verified download",
    )


REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="samson", title="Samson", folder="samson", rows=95, cols=95, bands=156, endmembers=3,
            scene_file="samson_1.mat", truth_file="end3.mat",
            files=(
                DataFile("samson_1.mat", (f"{_MUA}/real_data/samson_1.mat",),
                         "1ebacaf7cd32bfc31c0ee3fd56c63a7f29a434893a8b45705fb59cd8a0c8beb6", 3_604_014),
                DataFile("end3.mat", (f"{_MAXVOL}/data/Samson/end3.mat",),
                         "ce768182ce5292390180f827ff5769112cf3d299f4e64ab43e950a310b7ec9fa", 134_259),
            ),
            citation=_ZHU,
        ),
        Dataset(
            name="jasper_ridge", title="Jasper Ridge (AVIRIS)", folder="jasper_ridge", rows=100, cols=100,
            bands=198, endmembers=4, scene_file="jasperRidge2_R198.mat", truth_file="end4.mat",
            files=(
                DataFile("jasperRidge2_R198.mat", (f"{_MUA}/real_data/jasperRidge2_R198.mat",),
                         "0e4118a6452f6044978a8ca3762fb0f791115467904936d463c4e111e56e682e", 2_987_224),
                DataFile("end4.mat", (f"{_MAXVOL}/data/jasper/end4.mat",),
                         "92f5697b43705802b904fd13ba99b6ce65a3d203682864abc3fbec922beec374", 178_271),
            ),
            citation=_ZHU,
        ),
        _urban(4),
        _urban(5),
        _urban(6),
        Dataset(
            name="cuprite", title="Cuprite (AVIRIS), 12 endmembers (no abundance GT)", folder="cuprite",
            rows=250, cols=190, bands=188, endmembers=12, scene_file="Cuprite_data_R188.mat",
            truth_file="Cuprite_GT_nEnd12.mat",
            files=(
                DataFile("Cuprite_data_R188.mat", (f"{_SETTEMBRE}/Cuprite/Cuprite_data_R188.mat",), None),
                DataFile("Cuprite_GT_nEnd12.mat", (f"{_SETTEMBRE}/Cuprite/Cuprite_GT_nEnd12.mat",), None),
            ),
            citation=_ZHU, note="not pinned: sha256 unknown until first verified download",
        ),
    )
}


# -- places ----------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/unmixgen`` or ``~/.cache/unmixgen``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unmixgen"


def local_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The local data folder: ``data_dir``, else ``$UNMIXGEN_DATA``, else None."""
    d = data_dir if data_dir is not None else os.environ.get("UNMIXGEN_DATA") or None
    if d is None:
        return None
    d = Path(d)
    if not d.is_dir():
        raise in_file(d, "data folder not found; expected a folder like samson/samson_1.mat, ...")
    return d


def get(name: str) -> Dataset:
    """The registry entry ``name`` (case-insensitive; '-' and ' ' read as '_')."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = {"jasper": "jasper_ridge", "jasperridge": "jasper_ridge", "urban": "urban6"}.get(key, key)
    if key not in REGISTRY:
        raise InputError(f"unknown dataset {name!r}; expected one of: {', '.join(REGISTRY)}")
    return REGISTRY[key]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check(path: Path, df: DataFile, *, cached: bool = False) -> None:
    if df.sha256 is None:
        return
    got = sha256_of(path)
    if got != df.sha256:
        again = "; delete it to download it again" if cached else ""  # fetch keeps a cached file
        raise in_file(path, f"sha256 {got[:16]}... does not match the registry's {df.sha256[:16]}... "
                            f"(corrupt or a different file); expected the file from {df.urls[0]}{again}")


def _find_local(root: Path, ds: Dataset, df: DataFile) -> Path | None:
    for cand in (root / ds.folder / df.name, root / df.name):
        if cand.is_file():
            return cand
    return None


def status(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """"local", "cached", "partial", "missing" or "damaged" (a file of another size than the
    registry's; hashes are not checked here: `fetch` does)."""
    ds = get(name)
    root = local_dir(data_dir)
    found = [_find_local(root, ds, f) if root is not None else cache_dir() / ds.folder / f.name for f in ds.files]
    present = [(f, p) for f, p in zip(ds.files, found, strict=True) if p is not None and p.is_file()]
    if any(f.size is not None and p.stat().st_size != f.size for f, p in present):
        return "damaged"
    n = len(present)
    return ("local" if root is not None else "cached") if n == len(ds.files) else ("partial" if n else "missing")


# -- fetching --------------------------------------------------------------------------------
def fetch(name: str, data_dir: str | os.PathLike | None = None, *, allow_unpinned: bool = False,
          progress: bool = False) -> dict[str, Path]:
    """Make every file of dataset ``name`` available and hash-checked; return name -> path.

    With a local data folder, its files are checked (missing or mismatching ones are an
    `InputError`). Otherwise missing cache files are downloaded (atomically) and checked.
    """
    ds = get(name)
    root = local_dir(data_dir)
    paths: dict[str, Path] = {}
    for df in ds.files:
        if root is not None:
            p = _find_local(root, ds, df)
            if p is None:
                raise in_file(root / ds.folder / df.name,
                              f"missing from the data folder; expected {df.name} (download: {df.urls[0]})")
            _check(p, df)
            if df.sha256 is None:
                warnings.warn(f"{p}: sha256 not pinned in the registry; used as is", stacklevel=2)
        else:
            p = cache_dir() / ds.folder / df.name
            if p.is_file():
                _check(p, df, cached=True)
            else:
                _download(df, p, allow_unpinned=allow_unpinned, progress=progress)
        paths[df.name] = p
    return paths


def _download(df: DataFile, dest: Path, *, allow_unpinned: bool, progress: bool) -> None:
    if df.sha256 is None and not allow_unpinned:
        raise InputError(f"{df.name}: sha256 not pinned in the registry, so a download cannot be verified; "
                         "pass allow_unpinned=True (--allow-unpinned) to download it anyway, or put the file in "
                         "the data_dir folder (--data-dir)")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, a read-only home: not the download's fault
        raise in_file(dest.parent, f"cannot create the download cache folder ({exc.strerror}); expected a "
                                   "writable folder (set XDG_CACHE_HOME), or put the files in a folder and pass "
                                   "it as data_dir (--data-dir)") from None
    errors = []
    for url in df.urls:
        try:
            with atomic_file(dest) as tmp:
                h = hashlib.sha256()
                cap = _size_cap(df)
                with _urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
                    total = int(resp.headers.get("Content-Length") or 0) if hasattr(resp, "headers") else 0
                    if total > cap:
                        raise InputError(f"{url}: announces {total} bytes, more than the {cap} expected for "
                                         f"{df.name}; nothing was saved")
                    bar = _progress_bar(df.name, total) if progress else None
                    got_bytes = 0
                    try:
                        while chunk := resp.read(1 << 16):
                            got_bytes += len(chunk)
                            if got_bytes > cap:  # checked while reading: servers can lie about the length
                                raise InputError(f"{url}: sends more than the {cap} bytes expected for "
                                                 f"{df.name}; nothing was saved")
                            h.update(chunk)
                            out.write(chunk)
                            if bar is not None:
                                bar[0].update(bar[1], advance=len(chunk))
                    finally:
                        if bar is not None:
                            bar[0].stop()
                got = h.hexdigest()
                if df.sha256 is not None and got != df.sha256:
                    raise InputError(f"{url}: downloaded sha256 {got[:16]}... does not match the "
                                     f"registry's {df.sha256[:16]}...; nothing was saved")
            if df.sha256 is None:
                warnings.warn(f"{dest}: downloaded unpinned file, sha256 {got}", stacklevel=2)
            return
        except InputError:
            raise
        except (OSError, ValueError) as exc:  # URLError is an OSError
            errors.append(f"{url}: {exc}")
    raise InputError(f"{df.name}: download failed ({'; '.join(errors)}); "
                     "put the file in a folder and pass it as data_dir (--data-dir)")


MAX_UNSIZED_DOWNLOAD = 2 << 30
"""Bytes accepted for a registry file whose size is not recorded (2 GiB)."""


def _size_cap(df: DataFile) -> int:
    """The most bytes a download of ``df`` may bring before its hash is checked."""
    return df.size if df.size is not None else MAX_UNSIZED_DOWNLOAD


def _progress_bar(label: str, total: int):
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    prog = Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    prog.start()
    return prog, prog.add_task(label, total=total or None)


# -- loading ---------------------------------------------------------------------------------
def load(name: str, data_dir: str | os.PathLike | None = None, *, allow_unpinned: bool = False) -> Scene:
    """The benchmark scene ``name`` with its ground truth attached (`Scene.truth`).

    Files come from ``data_dir``/``$UNMIXGEN_DATA`` or the cache (downloaded once).
    """
    from . import matlab

    ds = get(name)
    paths = fetch(ds.name, data_dir, allow_unpinned=allow_unpinned)
    truth = paths[ds.truth_file] if ds.truth_file else None
    scene = matlab.read(paths[ds.scene_file], truth=truth)
    scene.name = ds.name
    scene.metadata["dataset"] = ds.name
    return scene


__all__ = ["REGISTRY", "DataFile", "Dataset", "cache_dir", "fetch", "get", "load", "local_dir", "status"]
