"""Atomic writes: build under a temporary name beside the target, rename when complete.

A failure (or a kill) leaves the target untouched and no half-written file under its name;
at worst a hidden ``.name.tmp-*`` sibling remains.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import in_file


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename."""
    path = Path(path)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_files(paths: list[Path]) -> Iterator[list[Path]]:
    """Like `atomic_file` for a group of files that belong together (ENVI header + data).

    The data files are renamed first and the first path (the header) last, so a reader
    never finds a header whose data is missing.
    """
    tmps = [_temp_sibling(Path(p)) for p in paths]
    try:
        yield tmps
        for tmp, final in list(zip(tmps, paths, strict=True))[::-1]:
            os.replace(tmp, final)
    finally:
        for tmp in tmps:
            if tmp.exists():
                tmp.unlink()


def check_output_dir(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output folder unless ``overwrite``; refuse a file in its place."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise in_file(path, "exists and is not a folder; expected a folder name for the output")
    if path.exists() and not overwrite:
        raise in_file(path, "output folder exists; pass --overwrite to replace it or choose another --out")
    return path


@contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes ``path``.

    An existing ``path`` is refused unless ``overwrite``, and then replaced only after the
    new folder is complete.
    """
    path = check_output_dir(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            old = _temp_sibling(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
