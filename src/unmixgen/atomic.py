"""Atomic writes: build under a temporary name beside the target, rename when complete;
and the one JSON encoder (`jsonable`) every record uses.

A failure (or a kill) leaves the target untouched and no half-written file under its name;
at worst a hidden ``.name.tmp-*`` sibling remains.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, in_file

_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
"""Errors that only writing raises: a full disk, a spent quota, a read-only file system."""

_NO_ROOM_TEXT = tuple(os.strerror(code) for code in _NO_ROOM)
"""Their messages, which GDAL's errors (no error number) carry in their text."""


def _no_room(exc: OSError) -> bool:
    return exc.errno in _NO_ROOM or any(text in str(exc) for text in _NO_ROOM_TEXT)


def _reason(exc: OSError) -> str:
    """What went wrong, in the system's words: GDAL's errors have no ``strerror``, only text."""
    return exc.strerror or next((text for text in _NO_ROOM_TEXT if text in str(exc)), None) or str(exc)


def _about(exc: OSError, *paths: Path) -> bool:
    """Whether ``exc`` concerns one of ``paths`` or their folder (an output problem, not
    ours), or says the disk is full or read-only (only the output is written)."""
    names = {os.path.realpath(p) for p in paths} | {os.path.realpath(Path(p).parent) for p in paths}
    return _no_room(exc) or any(f is not None and os.path.realpath(f) in names
                                        for f in (exc.filename, exc.filename2))


def _within(exc: OSError, folder: Path) -> bool:
    """Whether ``exc`` concerns a file in ``folder`` (the output being built), or says the
    disk is full or read-only."""
    top = os.path.realpath(folder)
    return _no_room(exc) or any(
        f is not None and (os.path.realpath(f) == top or os.path.realpath(f).startswith(top + os.sep))
        for f in (exc.filename, exc.filename2))


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
    except OSError as exc:
        if _about(exc, tmp, path):
            raise in_file(path, f"cannot write ({_reason(exc)}); expected a writable location") from None
        raise
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
    except OSError as exc:  # an unwritable folder is the output's problem, as in `atomic_file`
        for tmp, final in zip(tmps, paths, strict=True):
            if _about(exc, tmp, Path(final)):
                raise in_file(final, f"cannot write ({_reason(exc)}); expected a writable location") from None
        raise
    finally:
        for tmp in tmps:
            if tmp.exists():
                tmp.unlink()


def check_output_dir(path: str | os.PathLike, overwrite: bool, inputs=()) -> Path:
    """Refuse an output folder that cannot be written or must not be replaced.

    Refused: an existing folder without ``overwrite``; a file in its place; a parent that is
    a file; the current folder or one that holds it (``.``, ``..``: replacing it would pull
    the folder from under the caller); an output that is, or contains, one of ``inputs``
    (files or folders the command reads), which replacing the folder would destroy; with
    ``overwrite``, an existing folder that is neither empty nor an unmixgen output (a user's
    folder given as ``--out`` by mistake would be deleted whole); an output inside an input
    folder (a result, model or product folder the command reads), which it would change.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise in_file(path, f"is a link to {os.readlink(path)}, which does not exist; expected a folder name "
                            "for the output (or a link to an existing folder)")
    if path.exists() and not path.is_dir():
        raise in_file(path, "exists and is not a folder; expected a folder name for the output")
    cwd = os.path.realpath(os.getcwd())
    here = os.path.realpath(path)
    if cwd == here or cwd.startswith(here.rstrip(os.sep) + os.sep):
        raise in_file(path, "is the current folder or holds it; expected a new folder name for the output")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise in_file(parent, "is a file, not a folder; expected a folder path for the output")
            break
    out = os.path.realpath(path)
    for item in inputs:
        if item is None:
            continue
        src = os.path.realpath(item)
        if src == out or src.startswith(out.rstrip(os.sep) + os.sep):
            raise in_file(path, f"contains the input {os.fspath(item)}; replacing it would destroy the "
                                "input, so choose another output folder")
        if os.path.isdir(src) and out.startswith(src.rstrip(os.sep) + os.sep):
            raise in_file(path, f"lies inside the input folder {os.fspath(item)}; writing there would change "
                                "the input, so choose an output folder outside it")
    if path.exists() and not overwrite:
        raise in_file(path, "output folder exists; pass --overwrite (overwrite=True in Python) to replace it or choose another --out")
    if path.exists() and not _ours(path):
        raise in_file(path, "holds files no unmixgen command wrote (no run.json or config.json); overwrite=True "
                            "(--overwrite) replaces only an empty folder or an unmixgen output, so choose another "
                            "output folder")
    return path


def _ours(folder: Path) -> bool:
    """Whether replacing ``folder`` can lose nothing but an unmixgen output: it is empty, or
    holds the run record (run.json) or model config (config.json) every output folder has."""
    return not any(folder.iterdir()) or (folder / "run.json").is_file() or (folder / "config.json").is_file()


@contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False, inputs=()) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes ``path``.

    An existing ``path`` is refused unless ``overwrite``, and then replaced only after the
    new folder is complete; ``inputs`` are never inside it (`check_output_dir`). A folder
    that cannot be created (read-only, no space) is an `InputError` naming it.
    """
    path = check_output_dir(path, overwrite, inputs)
    tmp = _temp_sibling(path)
    created = _missing_parents(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        _remove_empty(created)
        raise in_file(path, f"cannot create the output folder ({_reason(exc)}); expected a writable "
                            "location") from None
    try:
        yield tmp
        if path.exists():
            old = _temp_sibling(path)
            os.replace(path, old)
            os.replace(tmp, path)
            _remove_replaced(old)
        else:
            os.replace(tmp, path)
    except OSError as exc:  # the disk filled up (or the folder turned read-only) while writing
        if _within(exc, tmp):
            raise in_file(path, f"cannot write the output folder ({_reason(exc)}); expected a writable "
                                "location with free space") from None
        raise
    except InputError as exc:  # a file of the output that could not be written: named where it goes
        if str(exc).startswith(os.fspath(tmp) + os.sep):
            raise InputError(os.fspath(path) + str(exc)[len(os.fspath(tmp)):]) from None
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            _remove_empty(created)  # a failed run leaves no empty folders it made for its output


def _missing_parents(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, outermost first (an output creates them)."""
    missing = []
    for parent in Path(path).absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing[::-1]


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (outermost first, as `_missing_parents` lists them) that are empty,
    innermost first; one that holds anything stays, and so do those above it."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


@contextmanager
def model_dir_build(path: str | os.PathLike, overwrite: bool = False, inputs=(),
                    usable: Callable[[Path], bool] = lambda _: False) -> Iterator[Path]:
    """Yield the folder to build and train a model ``path`` in.

    A new ``path`` is built in place, so a run stopped after its first checkpoint leaves a
    usable (resumable) model; on failure it is removed unless ``usable(path)``. An existing
    ``path`` (with ``overwrite``) is built in a temporary sibling that replaces it only on
    success: a failed or stopped run keeps the old model whole.
    """
    path = check_output_dir(path, overwrite, inputs)
    staged = path.exists()
    build = _temp_sibling(path) if staged else path
    created = _missing_parents(path)
    try:
        yield build
    except BaseException:
        if build.exists() and (staged or not usable(build)):
            shutil.rmtree(build, ignore_errors=True)
        if not build.exists():
            _remove_empty(created)
        raise
    if staged:
        old = _temp_sibling(path)
        os.replace(path, old)
        os.replace(build, path)
        _remove_replaced(old)


def _remove_replaced(old: Path) -> None:
    """Remove the output ``old`` a new one replaced: a folder with its files, a link itself
    (not what it points to; `shutil.rmtree` refuses links and would leave it behind)."""
    if old.is_symlink():
        old.unlink(missing_ok=True)
    else:
        shutil.rmtree(old, ignore_errors=True)


def jsonable(obj: Any) -> Any:
    """``obj`` as valid JSON: numpy values as Python ones, NaN as null, +-Inf as "inf"/"-inf"."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):  # JSON has no NaN/Inf
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, info: dict[str, Any]) -> None:
    """Write ``info`` as indented JSON, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(jsonable(info), indent=2) + "\n")
