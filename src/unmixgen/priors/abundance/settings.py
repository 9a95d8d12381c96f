"""Settings of an abundance prior: the defaults (the one place they live) and their checks.

Imports no torch, so the command line reads its defaults from here cheaply.

Keys of `DEFAULTS`:

data and network
    ``patch`` training patch size (px), ``block`` hold-out block size (px, None = patch),
    ``representation`` (``simplex`` or ``clr``, see `representation`), ``clr_eps``,
    ``width``, ``channel_mult``, ``blocks``, ``dropout`` (see `network.ResUNet`).
noise schedule
    ``prediction_type`` (``v_prediction`` or ``epsilon``), ``beta_schedule``,
    ``num_train_timesteps``.
training (`unmixgen.nn.trainer.Trainer`)
    ``batch_size`` patches per step, ``lr``, ``weight_decay``, ``warmup_steps``,
    ``ema_decay``, ``grad_clip``, ``label_dropout`` (probability of training a step's
    label as the null label, for classifier-free guidance), ``seed``,
    ``checkpoint_every_s`` / ``checkpoint_every_steps`` (None: not on that criterion).
"""

from __future__ import annotations

from typing import Any

from ...errors import ParameterError, check_range

KIND = "abundance_prior"

DEFAULTS: dict[str, Any] = {
    "patch": 16,
    "block": None,
    "representation": "simplex",
    "clr_eps": 1e-3,
    "width": 32,
    "channel_mult": [1, 2, 2],
    "blocks": 1,
    "dropout": 0.0,
    "prediction_type": "v_prediction",
    "beta_schedule": "squaredcos_cap_v2",
    "num_train_timesteps": 1000,
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "warmup_steps": 100,
    "ema_decay": 0.999,
    "grad_clip": 1.0,
    "label_dropout": 0.15,
    "seed": 0,
    "checkpoint_every_s": 120.0,
    "checkpoint_every_steps": None,
}

TRAINING_KEYS = ("batch_size", "lr", "weight_decay", "warmup_steps", "ema_decay", "grad_clip",
                 "label_dropout", "seed", "checkpoint_every_s", "checkpoint_every_steps")
"""The keys saved in a model's ``training`` settings."""

REPRESENTATIONS = ("simplex", "clr")
PREDICTION_TYPES = ("v_prediction", "epsilon")
BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ParameterError(name, value, f"expected one of {', '.join(allowed)}")


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    """`DEFAULTS` updated with the ``options`` that are not None, checked.

    Raises `TypeError` for an unknown key and `ParameterError` for a bad value.
    """
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown abundance prior options: {sorted(unknown)}")
    o = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    levels = o["channel_mult"]
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ParameterError("channel_mult", levels, "expected a non-empty list of positive integers")
    for m in levels:
        check_range("channel_mult", m, low=1, integer=True)
    down = 2 ** (len(levels) - 1)
    patch = o["patch"]
    check_range("patch", patch, low=8, high=256, integer=True)
    if patch % down:
        raise ParameterError("patch", patch, f"expected a multiple of {down} from 8 to 256")
    if o["block"] is not None:
        check_range("block", o["block"], low=1, integer=True)
    _one_of("representation", o["representation"], REPRESENTATIONS)
    _one_of("prediction_type", o["prediction_type"], PREDICTION_TYPES)
    _one_of("beta_schedule", o["beta_schedule"], BETA_SCHEDULES)
    check_range("clr_eps", o["clr_eps"], low=0, low_open=True)
    for key in ("width", "blocks", "num_train_timesteps", "batch_size"):
        check_range(key, o[key], low=1, integer=True)
    check_range("dropout", o["dropout"], low=0, high=1, high_open=True)
    check_range("lr", o["lr"], low=0, low_open=True)
    check_range("weight_decay", o["weight_decay"], low=0)
    check_range("warmup_steps", o["warmup_steps"], low=0, integer=True)
    check_range("ema_decay", o["ema_decay"], low=0, high=1, high_open=True)
    if o["grad_clip"] is not None:
        check_range("grad_clip", o["grad_clip"], low=0, low_open=True)
    check_range("label_dropout", o["label_dropout"], low=0, high=1)
    check_range("seed", o["seed"], low=0, integer=True)
    if o["checkpoint_every_s"] is not None:
        check_range("checkpoint_every_s", o["checkpoint_every_s"], low=0, low_open=True)
    if o["checkpoint_every_steps"] is not None:
        check_range("checkpoint_every_steps", o["checkpoint_every_steps"], low=1, integer=True)
    return o
