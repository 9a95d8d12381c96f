"""The model folder every network is saved in: a JSON config naming the model's ``kind``,
and safetensors checkpoints (never pickle), written atomically and resumable.

Layout of ``MODEL_DIR``::

    config.json            format, format_version, kind, unmixgen_version and the settings of
                           the network, its data and its training (written once)
    checkpoint.json        pointer to the latest complete checkpoint (written last, atomically)
    checkpoints/step-N/    ema.safetensors    the weights to use (EMA of the trained weights)
                           state.safetensors  what resuming needs: raw weights, optimizer
                                              moments, RNG states
                           state.json         step, loss log, optimizer hyper-parameters

The kind's own module adds its files (the abundance prior: ``data.npz``, ``holdout.npz``).
A checkpoint folder is filled under a temporary name and renamed when complete; only then
is ``checkpoint.json`` replaced (one rename) and older checkpoint folders removed, so a kill
at any moment leaves the previous checkpoint usable.

Folders written before ``kind`` existed (format ``unmixgen-abundance-diffusion``, the shipped
demo model among them) are read as abundance priors.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .. import __version__
from ..atomic import atomic_file, write_json
from ..errors import InputError, ParameterError, in_file, reading

FORMAT = "unmixgen-model"
FORMAT_VERSION = 1
KINDS = ("abundance_prior", "spectra_prior", "hybridstu")
LEGACY_FORMATS = {"unmixgen-abundance-diffusion": "abundance_prior"}
"""Formats of folders without a ``kind`` field, and the kind they hold."""

EMA_FILE, STATE_FILE, STATE_JSON = "ema.safetensors", "state.safetensors", "state.json"
PREDICTION_TYPES = ("epsilon", "v_prediction")


def new_config(kind: str, **settings: Any) -> dict:
    """The head of a model's config.json (format, version, ``kind``) followed by ``settings``."""
    if kind not in KINDS:
        raise ParameterError("kind", kind, f"expected one of {', '.join(KINDS)}")
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "unmixgen_version": __version__, **settings}


def write_config(model_dir: Path, config: dict) -> None:
    """Write ``config.json`` into ``model_dir`` atomically."""
    write_json(Path(model_dir) / "config.json", config)


def read_config(model_dir: str | os.PathLike, kind: str | None = None) -> dict:
    """The model's config.json, checked for format, version and (when given) ``kind``.

    A legacy folder without ``kind`` gets the kind of its format filled in. Raises
    `InputError` naming the folder or file when any check fails.
    """
    model_dir = Path(model_dir)
    path = model_dir / "config.json"
    if model_dir.exists() and not model_dir.is_dir():  # a file of the folder (its config.json) given for it
        raise in_file(model_dir, f"is a file, not a model folder; expected the folder written by unmixgen "
                                 f"training ({model_dir.parent}?)")
    if not model_dir.is_dir():
        raise in_file(model_dir, "no such model folder; expected a folder written by unmixgen training")
    if not path.is_file():
        raise in_file(model_dir, "not a model folder (no config.json); expected a folder written by "
                      "unmixgen training")
    cfg = _read_json_object(path, "the model's settings")
    fmt = cfg.get("format")
    if fmt not in (FORMAT, *LEGACY_FORMATS):
        raise in_file(model_dir, f"config.json format is {fmt!r}; expected {FORMAT!r}")
    if cfg.get("format_version") != FORMAT_VERSION:
        raise in_file(model_dir, f"model folder has format version {cfg.get('format_version')} (written by "
                      f"unmixgen {cfg.get('unmixgen_version', '?')}); this unmixgen ({__version__}) reads "
                      f"version {FORMAT_VERSION}: retrain the model")
    cfg.setdefault("kind", LEGACY_FORMATS.get(fmt))
    if kind is not None and cfg["kind"] != kind:
        raise in_file(model_dir, f"holds a model of kind {cfg['kind']!r}; expected kind {kind!r}")
    return cfg


def _read_json_object(path: Path, what: str) -> dict:
    """The JSON object in ``path``; `InputError` naming the file when it is no JSON, not UTF-8
    text, or JSON of another type (a list, a string), which every reader would trip over."""
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise in_file(path, f"is not valid JSON ({exc}); expected a JSON object of {what}") from None
    if not isinstance(value, dict):
        raise in_file(path, f"holds a JSON {type(value).__name__}; expected a JSON object of {what}")
    return value


@contextmanager
def config_fields(model_dir: str | os.PathLike) -> Iterator[None]:
    """Build a model from its config.json inside this block: a field that is missing, of
    another type or out of range (the KeyError, TypeError, ValueError or torch's RuntimeError
    it raises, or a `ParameterError` naming it) becomes one `InputError` naming the file."""
    path = Path(model_dir) / "config.json"
    try:
        yield
    except ParameterError as exc:  # named by its parameter, which is no flag of the command at hand
        raise in_file(path, f"{exc}; retrain the model") from None
    except InputError:
        raise
    except KeyError as exc:
        raise in_file(path, f"lacks the field {exc}; expected the config.json unmixgen training writes: "
                            "retrain the model") from None
    except (TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise in_file(path, f"holds a field of another type or range ({type(exc).__name__}: {first_line(exc)}); expected "
                            "the config.json unmixgen training writes: retrain the model") from None


def check_schedule(model_dir: str | os.PathLike, config: dict) -> dict:
    """The config's diffusion ``schedule``, or `InputError` naming the file unless it has
    ``num_train_timesteps`` >= 1, a ``beta_schedule`` name and a known ``prediction_type`` (an
    unknown one was read as ``v_prediction``)."""
    s = config.get("schedule")
    n = s.get("num_train_timesteps") if isinstance(s, dict) else None
    if not (isinstance(s, dict) and isinstance(n, int) and not isinstance(n, bool) and n >= 1
            and isinstance(s.get("beta_schedule"), str) and s.get("prediction_type") in PREDICTION_TYPES):
        raise in_file(Path(model_dir) / "config.json", f"schedule {s!r}; expected num_train_timesteps >= 1, a "
                      f"beta_schedule and prediction_type {' or '.join(PREDICTION_TYPES)}: retrain the model")
    return s


def is_positive_number(value: Any) -> bool:
    """Whether a config.json ``value`` is a finite number > 0 (not a bool, a string or null)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (torch's list every mismatched tensor on more)."""
    return (str(exc).splitlines() or [""])[0]


def has_checkpoint(model_dir: str | os.PathLike) -> bool:
    """Whether ``model_dir`` holds a complete checkpoint (a usable, resumable model)."""
    try:
        return latest_checkpoint(model_dir, required=False) is not None
    except InputError:
        return False


def latest_checkpoint(model_dir: str | os.PathLike, *, required: bool = True) -> Path | None:
    """The folder of the latest complete checkpoint, or None when there is none yet.

    Raises `InputError` when ``required`` and there is none, when ``checkpoint.json`` is
    damaged or points outside ``model_dir``, or when the checkpoint lacks its files.
    """
    model_dir = Path(model_dir)
    ptr = model_dir / "checkpoint.json"
    if not ptr.is_file():
        if required:
            raise in_file(model_dir, "model folder is incomplete (no finished checkpoint); resume the "
                          "training or retrain")
        return None
    try:
        info = json.loads(ptr.read_text())
        rel = info["path"]
        if not isinstance(rel, str):
            raise TypeError(f"path is {rel!r}")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise in_file(ptr, f"is damaged ({exc}); retrain the model") from None
    path = model_dir / rel
    root = model_dir.resolve()
    if root not in path.resolve().parents:
        raise in_file(ptr, f"points outside the model folder ({rel!r}); expected a checkpoint folder "
                      "inside it")
    needed = (EMA_FILE, STATE_JSON)  # STATE_FILE: only to resume training
    if not all((path / f).is_file() for f in needed):
        raise in_file(model_dir, f"checkpoint {rel} is incomplete (expected {', '.join(needed)}); "
                      "retrain the model")
    return path


def save_checkpoint(model_dir: Path, step: int, *, weights: dict[str, torch.Tensor],
                    training: dict[str, torch.Tensor], state: dict) -> Path:
    """Write checkpoint ``step`` completely, then point checkpoint.json at it.

    Parameters
    ----------
    weights : the weights to use (EMA), saved as ``ema.safetensors``.
    training : further tensors needed to resume (raw weights, optimizer moments, RNG
        states), saved as ``state.safetensors``.
    state : JSON-able record saved as ``state.json`` with ``step`` added.
    """
    model_dir = Path(model_dir)
    ck_root = model_dir / "checkpoints"
    ck_root.mkdir(exist_ok=True)
    name = f"step-{step:08d}"
    final = ck_root / name
    tmp = ck_root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    # one metadata entry: safetensors keeps them in a hash map whose order differs from run to
    # run, so two entries made the same checkpoint differ byte for byte (the step is in state.json)
    meta = {"format": FORMAT}
    try:
        save_file(_plain(weights), str(tmp / EMA_FILE), metadata=meta)
        save_file(_plain(training), str(tmp / STATE_FILE), metadata=meta)
        for file in (EMA_FILE, STATE_FILE):  # safetensors writes 0600; the folder's other files follow the umask
            _usual_mode(tmp / file)
        (tmp / STATE_JSON).write_text(json.dumps({**state, "step": step}) + "\n")
        if final.exists():  # same step saved again: keep the old one until the new is in place
            aside = ck_root / f".{name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, aside)
            write_json(model_dir / "checkpoint.json", {"step": step, "path": f"checkpoints/{aside.name}"})
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    write_json(model_dir / "checkpoint.json", {"step": step, "path": f"checkpoints/{name}"})
    for old in ck_root.iterdir():  # older checkpoints and leftovers of killed saves
        if old.name != name and (old.name.startswith("step-") or old.name.startswith(".step-")):
            shutil.rmtree(old, ignore_errors=True)
    return final


def _usual_mode(path: Path) -> None:
    """Give ``path`` the permissions a plain ``open(path, "w")`` would (0666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _plain(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def load_weights(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The weights to use (EMA) of checkpoint folder ``path``."""
    with reading(path / EMA_FILE, "read the model weights"):
        return load_file(str(path / EMA_FILE), device=device)


def load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The training tensors and the state.json record of checkpoint folder ``path``.

    Raises `InputError` when the folder holds no training state (a sampling-only export).
    """
    if not (path / STATE_FILE).is_file():
        raise in_file(path.parent.parent, "holds no training state (an exported model for sampling); "
                      "it cannot be resumed: train a new model")
    with reading(path / STATE_FILE, "read the training state"):
        tensors = load_file(str(path / STATE_FILE))
    return tensors, read_state(path)


def read_state(path: Path) -> dict:
    """The state.json record (``step``, loss log, ...) of checkpoint folder ``path``."""
    try:
        state = json.loads((path / STATE_JSON).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise in_file(path / STATE_JSON, f"is damaged ({exc}); retrain the model") from None
    if not isinstance(state, dict):
        raise in_file(path / STATE_JSON, "is damaged (not a JSON object); retrain the model")
    if not isinstance(state.get("step"), int) or isinstance(state["step"], bool) or state["step"] < 0:
        raise in_file(path / STATE_JSON, f"is damaged (step {state.get('step')!r}, expected an integer >= 0); "
                                         "retrain the model")
    return state


def export_for_use(model_dir: str | os.PathLike, dest: str | os.PathLike, *, files: tuple[str, ...] = (),
                   overwrite: bool = False) -> Path:
    """Copy what using a model needs to ``dest``: config.json, checkpoint.json, the ``files``
    named (when present) and the latest checkpoint's weights and state.json, without the
    training state. The copy loads like the original but cannot be resumed."""
    from ..atomic import atomic_dir

    model_dir = Path(model_dir)
    read_config(model_dir)
    src = latest_checkpoint(model_dir)
    rel = src.relative_to(model_dir)
    with atomic_dir(dest, overwrite=overwrite, inputs=[model_dir]) as tmp:
        for name in ("config.json", "checkpoint.json", *files):
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, tmp / name)
        (tmp / rel).mkdir(parents=True)
        for name in (EMA_FILE, STATE_JSON):
            shutil.copy2(src / name, tmp / rel / name)
    return Path(dest)


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to the .npz ``path`` (compressed, atomically)."""
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """All arrays of the .npz ``path`` of a model folder (no pickles)."""
    if not path.is_file():
        raise in_file(path.parent, f"model folder is incomplete (no {path.name}); retrain the model")
    with reading(path, "read the model's arrays"), np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
