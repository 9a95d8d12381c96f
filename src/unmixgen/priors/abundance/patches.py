"""Training data for the abundance diffusion model: maps from result folders, endmember
matching across folders, the interleaved spatial hold-out, and augmented patch batches.

Hold-out
--------
Each map is cut into a grid of ``block x block`` blocks (``block`` = the patch size by
default); pairs of horizontally adjacent blocks ("dominoes") are coloured like a
checkerboard. Dominoes of one colour are training region; in each domino of the other
colour one block goes to the *held-out* set (compared with samples) and the other to the
*floor* set (a second, disjoint set of real blocks: how far two real sets differ), with
the roles alternating across the scene (`block_classes`; the pattern is fixed, not chosen
from the data). The pixels right of / below the last whole block are training region too. Training patches are crops lying entirely
inside the training region (any offset, so each domino gives ``block + 1`` crops) and away
from invalid (NaN) pixels. Real scenes are not stationary, so an
interleaved hold-out is needed: a contiguous strip would differ from the rest as much as a
baseline does.

Matching endmembers
-------------------
Maps from several result folders are only mixed in one model when their channels mean the
same materials. `unmixgen.runs.sources.load_training_maps` reads the folders and matches
each folder's endmember spectra to the first folder's (`unmixgen.evaluate.unmixing.
match_endmembers` on the spectral angle); the folder's channels are reordered
accordingly. A folder is refused when its band count or endmember count differs, when
it has no endmember spectra (with more than one folder), or when a matched pair is more
than ``max_sad`` radians apart (default 0.3 rad, about 17 degrees).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...errors import ParameterError

MIN_TRAIN_PATCHES = 8
MIN_EVAL_BLOCKS = 2
TRAIN, HELDOUT, FLOOR = 0, 1, 2


@dataclass
class TrainingMaps:
    """Abundance maps ready for training: ``maps[i]`` (rows, cols, p) float32, NaN = invalid."""

    maps: list[np.ndarray]
    names: list[str]
    labels: list[str] | None = None  # per map, or None
    sources: list[str] = field(default_factory=list)
    match: list[dict] = field(default_factory=list)  # per folder: permutation + SAD


def block_classes(shape: tuple[int, int], block: int, phase: tuple[int, int, int, int] = (0, 0, 0, 0)
                  ) -> np.ndarray:
    """Per-pixel class (rows, cols) int8: TRAIN, HELDOUT or FLOOR (see the module docstring).

    Blocks are paired along rows into "dominoes" (block columns ``2k - c, 2k + 1 - c``; a
    block without partner at the edge is a domino of its own). Dominoes form a checkerboard:
    on one colour both blocks are TRAIN, on the other one block is HELDOUT and its partner
    FLOOR (which is which alternates across the scene). All three sets thus spread over
    every part of the scene, and each training domino still offers ``block + 1`` crop
    offsets. ``phase = (r, c, f, t)``: checkerboard colour ``r``, pairing offset ``c``,
    held-out/floor swap ``f``, vertical dominoes ``t``.
    """
    r0, c0, flip, transpose = phase
    rows, cols = shape[::-1] if transpose else shape
    nbr, nbc = rows // block, cols // block
    cls = np.full((rows, cols), TRAIN, np.int8)
    for i in range(nbr):
        for j in range(nbc):
            d = (j + c0) // 2
            if (i + d + r0) % 2 == 0:
                continue
            first = (j + c0) % 2 == 0
            c = HELDOUT if first == ((i // 2 + d // 2 + flip) % 2 == 0) else FLOOR
            cls[i * block:(i + 1) * block, j * block:(j + 1) * block] = c
    return cls.T.copy() if transpose else cls


def _windows_all(ok: np.ndarray, size: int) -> np.ndarray:
    """Boolean (rows-size+1, cols-size+1): the ``size`` window at (r, c) is all ``ok``."""
    s = np.pad(np.cumsum(np.cumsum(ok.astype(np.int64), 0), 1), ((1, 0), (1, 0)))
    tot = s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]
    return tot == size * size


@dataclass
class HoldoutSplit:
    """Training crop positions and the evaluation blocks of a set of maps."""

    positions: np.ndarray  # (K, 3) int: map index, row, col of valid training crops
    heldout: np.ndarray  # (M, block, block, p)
    floor: np.ndarray  # (L, block, block, p)
    train_blocks: np.ndarray  # (K', patch, patch, p) training crops for the memorization check
    classes: list[np.ndarray]  # per map (rows, cols) int8
    phases: list[tuple[int, int, int, int]] = field(default_factory=list)  # per map


def split_maps(maps: list[np.ndarray], patch: int, block: int | None = None, *,
               max_train_blocks: int = 4096, phase: tuple[int, int, int, int] = (0, 0, 0, 0)
               ) -> HoldoutSplit:
    """Interleaved hold-out split and training crop positions. Raises `InputError` when the
    maps are smaller than a patch or leave too few training patches / held-out blocks."""
    block = block or patch
    smallest = min(min(m.shape[:2]) for m in maps)
    if patch > smallest or block > smallest:
        name, value = ("patch", patch) if patch >= block else ("block", block)
        raise ParameterError(name, value, f"larger than the maps ({smallest} px on the short side); "
                             f"expected at most {smallest}")
    positions, heldout, floor, classes, phases = [], [], [], [], []
    for k, m in enumerate(maps):
        valid = np.isfinite(m).all(-1)
        cls = block_classes(m.shape[:2], block, phase)
        classes.append(cls)
        phases.append(phase)
        win = _windows_all(valid & (cls == TRAIN), patch)
        r, c = np.nonzero(win)
        positions.append(np.stack([np.full_like(r, k), r, c], 1))
        nbr, nbc = m.shape[0] // block, m.shape[1] // block
        for i in range(nbr):
            for j in range(nbc):
                sl = (slice(i * block, (i + 1) * block), slice(j * block, (j + 1) * block))
                c0 = cls[sl][0, 0]
                if c0 == TRAIN or not valid[sl].all():
                    continue
                (heldout if c0 == HELDOUT else floor).append(m[sl])
    pos = np.concatenate(positions, 0) if positions else np.zeros((0, 3), int)
    if len(pos) < MIN_TRAIN_PATCHES:
        raise ParameterError("patch", patch, f"the maps give only {len(pos)} training patches (minimum "
                             f"{MIN_TRAIN_PATCHES}); expected a smaller patch, or more or larger maps")
    if len(heldout) < MIN_EVAL_BLOCKS or len(floor) < MIN_EVAL_BLOCKS:
        raise ParameterError("block", block, f"the maps give only {len(heldout)} held-out and {len(floor)} "
                             f"floor blocks (minimum {MIN_EVAL_BLOCKS} each); expected a smaller block (or "
                             "patch), or larger maps")
    stride = max(1, int(np.ceil(np.sqrt(len(pos) / max_train_blocks))))
    keep = pos[(pos[:, 1] % stride == 0) & (pos[:, 2] % stride == 0)][:max_train_blocks]
    train_blocks = np.stack([maps[i][r:r + patch, c:c + patch] for i, r, c in keep])
    p = maps[0].shape[-1]
    empty = np.zeros((0, block, block, p), np.float32)
    return HoldoutSplit(pos, np.stack(heldout).astype(np.float32) if heldout else empty,
                        np.stack(floor).astype(np.float32) if floor else empty,
                        train_blocks.astype(np.float32), classes, phases)


def renormalise(maps: np.ndarray) -> np.ndarray:
    """Clamp tiny negatives and renormalise to sum one per pixel (input maps from unmixing
    methods that only approximately satisfy the constraints)."""
    a = np.clip(maps, 0.0, None)
    s = a.sum(-1, keepdims=True)
    return np.where(s > 0, a / np.where(s > 0, s, 1.0), 1.0 / a.shape[-1]).astype(np.float32)


class PatchSampler:
    """Random augmented training batches ``(N, p, patch, patch)`` torch float32.

    A batch draws crop positions, a horizontal flip and a number of 90-degree rotations per
    patch from the given torch ``generator`` (its state is saved with checkpoints, so resumed
    training draws the same batches).
    """

    def __init__(self, maps: list[np.ndarray], positions: np.ndarray, patch: int,
                 labels: np.ndarray | None = None):
        self.maps = [torch.from_numpy(renormalise(np.nan_to_num(m, nan=0.0))) for m in maps]
        self.positions = torch.as_tensor(positions, dtype=torch.long)
        self.patch = patch
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.positions)

    def batch(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(len(self.positions), (n,), generator=generator)
        flips = torch.randint(2, (n,), generator=generator)
        rots = torch.randint(4, (n,), generator=generator)
        out, labs = [], []
        P = self.patch
        for j in range(n):
            k, r, c = (int(v) for v in self.positions[idx[j]])
            x = self.maps[k][r:r + P, c:c + P].permute(2, 0, 1)
            if flips[j]:
                x = x.flip(-1)
            x = torch.rot90(x, int(rots[j]), dims=(-2, -1))
            out.append(x)
            if self.labels is not None:
                labs.append(self.labels[k])
        labels = torch.stack(labs) if self.labels is not None else None
        return torch.stack(out).contiguous(), labels
