"""The model folder: JSON config + safetensors weights (never pickle), written atomically.

Layout of ``MODEL_DIR``::

    config.json            format, version, network / representation / schedule / training
                           settings, endmember names, labels, sources (written once)
    data.npz               training maps (map_0, map_1, ...), crop positions, map labels
    holdout.npz            heldout (M,b,b,p), floor (L,b,b,p), train (K,P,P,p) real blocks
    checkpoint.json        pointer to the latest complete checkpoint (written last, atomically)
    checkpoints/step-N/    ema.safetensors (sampling weights), state.safetensors (raw weights,
                           AdamW moments, RNG states), state.json (step, losses, optimizer
                           hyper-parameters)
    training_curve.png     loss against step

A checkpoint folder is filled under a temporary name and renamed when complete; only then
is ``checkpoint.json`` replaced (one rename), and older checkpoint folders are removed.
A kill at any moment therefore leaves the previous checkpoint usable.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .. import __version__
from ..atomic import atomic_file
from ..errors import in_file

FORMAT = "unmixgen-abundance-diffusion"
FORMAT_VERSION = 1


def write_json_atomic(path: Path, obj: Any) -> None:
    from ..atomic import write_json

    write_json(path, obj)


def read_config(model_dir: str | os.PathLike) -> dict:
    """The model's config.json, checked for format and version. Raises `InputError`."""
    model_dir = Path(model_dir)
    path = model_dir / "config.json"
    if not model_dir.is_dir():
        raise in_file(model_dir, "no such model folder; expected the --out of `unmixgen train-abundance`")
    if not path.is_file():
        raise in_file(model_dir, "not an abundance model folder (no config.json); expected the --out of "
                      "`unmixgen train-abundance`")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise in_file(path, f"is not valid JSON ({exc})") from None
    if cfg.get("format") != FORMAT:
        raise in_file(model_dir, f"config.json format is {cfg.get('format')!r}; expected {FORMAT!r}")
    if cfg.get("format_version") != FORMAT_VERSION:
        raise in_file(model_dir, f"model folder has format version {cfg.get('format_version')} (written by "
                      f"unmixgen {cfg.get('unmixgen_version', '?')}); this unmixgen ({__version__}) reads "
                      f"version {FORMAT_VERSION}: retrain with `unmixgen train-abundance`")
    return cfg


def latest_checkpoint(model_dir: Path, *, required: bool = True) -> Path | None:
    """The folder of the latest complete checkpoint, or None (raises when ``required``)."""
    ptr = model_dir / "checkpoint.json"
    if not ptr.is_file():
        if required:
            raise in_file(model_dir, "model folder is incomplete (no finished checkpoint); resume with "
                          "`unmixgen train-abundance --resume MODEL_DIR` or retrain")
        return None
    try:
        info = json.loads(ptr.read_text())
        path = model_dir / info["path"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise in_file(ptr, f"is damaged ({exc}); retrain the model") from None
    needed = ("ema.safetensors", "state.json")  # state.safetensors: only to resume training
    if not all((path / f).is_file() for f in needed):
        raise in_file(model_dir, f"checkpoint {info['path']} is incomplete (expected {', '.join(needed)}); "
                      "retrain the model")
    return path


def save_checkpoint(model_dir: Path, *, step: int, model: torch.nn.Module, ema: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, generator: torch.Generator,
                    state: dict) -> Path:
    """Write checkpoint ``step`` completely, then point checkpoint.json at it."""
    ck_root = model_dir / "checkpoints"
    ck_root.mkdir(exist_ok=True)
    name = f"step-{step:08d}"
    final = ck_root / name
    tmp = ck_root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in ema.state_dict().items()},
                  str(tmp / "ema.safetensors"), metadata={"format": FORMAT, "step": str(step)})
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        opt = optimizer.state_dict()
        for idx, st in opt["state"].items():
            for key, val in st.items():
                t = val if torch.is_tensor(val) else torch.tensor(val)
                tensors[f"opt.{idx}.{key}"] = t.detach().cpu().contiguous()
        tensors["rng.generator"] = generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        save_file(tensors, str(tmp / "state.safetensors"), metadata={"format": FORMAT, "step": str(step)})
        st = dict(state)
        st["step"] = step
        st["param_groups"] = opt["param_groups"]
        (tmp / "state.json").write_text(json.dumps(st) + "\n")
        if final.exists():  # same step saved again: keep the old one until the new is in place
            aside = ck_root / f".{name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(final, aside)
            write_json_atomic(model_dir / "checkpoint.json", {"step": step, "path": f"checkpoints/{aside.name}"})
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    write_json_atomic(model_dir / "checkpoint.json", {"step": step, "path": f"checkpoints/{name}"})
    for old in ck_root.iterdir():  # older checkpoints and leftovers of killed saves
        if old.name != name and (old.name.startswith("step-") or old.name.startswith(".step-")):
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_ema(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    return load_file(str(path / "ema.safetensors"), device=device)


def load_training_state(path: Path, model: torch.nn.Module, ema: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict:
    """Restore model, EMA, optimizer and RNG states from checkpoint folder ``path``; returns
    the state.json dict (``step``, ``losses``, ...)."""
    if not (path / "state.safetensors").is_file():
        raise in_file(path.parent.parent, "holds no training state (an exported model for sampling); "
                      "it cannot be resumed: train a new model")
    tensors = load_file(str(path / "state.safetensors"))
    state = json.loads((path / "state.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict(load_ema(path))
    opt_state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, key = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[key] = v
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    return state


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise in_file(path.parent, f"model folder is incomplete (no {path.name}); retrain the model")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
