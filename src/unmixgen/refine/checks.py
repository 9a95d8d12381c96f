"""The checks `posterior.refine` makes before it samples: its arguments' ranges, an init that
belongs to the scene, priors loaded as models on the device it runs on, and the memory its
samples need (`sample_chunk`: how many samples the abundance sampler runs at once)."""

from __future__ import annotations

import os

import numpy as np
import torch

from .. import errors
from ..errors import InputError, ParameterError, brief, check_range
from .mixing import check_mixing

_SAMPLE_CHUNK_VALUES = 2**23  # samples x pixels x p the abundance sampler holds at once (about 1.4 GB peak)
_BYTES_PER_CHUNK_VALUE = 170  # measured peak of the sampler per sample, pixel and endmember it runs at once
_BYTES_PER_SAMPLE_VALUE = 24  # measured: what every sample keeps until the end (samples, quantiles)


def sample_chunk(samples: int, pixels: int, p: int) -> int:
    """How many posterior samples the abundance sampler runs together: all of them on small
    scenes, fewer (at least one) once ``samples x pixels x p`` passes `_SAMPLE_CHUNK_VALUES`."""
    return max(1, min(samples, _SAMPLE_CHUNK_VALUES // max(pixels * p, 1)))


def check_memory(samples: int, pixels: int, p: int) -> None:
    """`ParameterError` on ``samples`` when ``samples`` posterior samples of ``pixels`` x
    ``p`` abundances would not fit in the memory available now (the sampler's working copies
    for one chunk of samples, `sample_chunk`, and what every sample keeps)."""
    need = (_BYTES_PER_CHUNK_VALUE * sample_chunk(samples, pixels, p) + _BYTES_PER_SAMPLE_VALUE * samples) * pixels * p
    errors.check_memory("samples", samples, need, available=True, what=f"{pixels} pixels x {p} endmembers")


def off_simplex(A: np.ndarray, tol: float = 1e-3) -> str:
    """How abundances ``A`` (N, p) leave the simplex beyond ``tol`` ("" when they do not)."""
    low, dev = float(A.min()), float(np.abs(A.sum(-1) - 1).max())
    return f"min {low:.3g}, largest |sum - 1| {dev:.3g}" if low < -tol or dev > tol else ""


def check_inputs(cube: np.ndarray, E0: np.ndarray, A0: np.ndarray, mask: np.ndarray,
                 finite: np.ndarray) -> np.ndarray:
    """Refuse an initial result that does not belong to the scene, non-finite endmembers or
    non-finite pixels the mask marks valid (``finite``: (rows, cols) pixels finite on every
    band) (`InputError`); return the pixels to refine, (rows, cols) bool: valid ones where
    the init has abundances."""
    if cube.ndim != 3:
        raise InputError(f"cube has shape {cube.shape}; expected (rows, cols, bands)")
    rows, cols, bands = cube.shape
    if A0.ndim != 3 or A0.shape[:2] != (rows, cols):
        raise InputError(f"init abundances have shape {A0.shape}; expected ({rows}, {cols}, p) like the scene "
                         "(an init from another scene?)")
    if E0.ndim != 2 or E0.shape != (A0.shape[2], bands):
        raise InputError(f"init endmembers have shape {E0.shape}; expected ({A0.shape[2]}, {bands}) "
                         "(p from the abundances, the scene's bands)")
    if A0.shape[2] < 2:
        raise InputError("init has fewer than 2 endmembers; expected p >= 2")
    if not np.all(np.isfinite(E0)):
        raise InputError("init endmembers contain NaN/Inf; expected finite spectra on the scene's bands (drop bad "
                         "bands from the cube and the endmembers first)")
    if mask.shape != (rows, cols) or not mask.any():
        raise InputError(f"mask has shape {mask.shape} and {int(mask.sum())} valid pixels; expected "
                         f"({rows}, {cols}) with at least one")
    bad = int(np.count_nonzero(mask & ~finite))
    if bad:
        raise InputError(f"cube has NaN/Inf at {bad} pixel{'s' if bad > 1 else ''} the mask marks valid; expected "
                         "finite values at every valid pixel (mask=None takes the finite pixels)")
    have = mask & np.all(np.isfinite(A0), axis=-1)
    if not have.any():
        raise InputError("init has no abundances (NaN) at any valid pixel; expected an init of this scene")
    off = off_simplex(A0[have])
    if off:
        raise InputError(f"init abundances are not on the simplex ({off}); expected non-negative abundances that "
                         "sum to one")
    return have


def check_priors(abundance_prior, spectra_prior, device: str | None = None) -> None:
    """`ParameterError` when a prior is given as its folder's path (or the abundance prior is
    missing) instead of a loaded model, or (with ``device``, resolved) was loaded on another
    device: its network would meet the sampler's tensors there (torch's "Expected all tensors
    to be on the same device" on a GPU)."""
    if abundance_prior is None or isinstance(abundance_prior, (str, os.PathLike)):
        raise ParameterError("abundance_prior", str(abundance_prior), "expected a loaded AbundanceModel "
                             "(unmixgen.priors.abundance.model.load_model(folder))")
    if isinstance(spectra_prior, (str, os.PathLike)):
        raise ParameterError("spectra_prior", str(spectra_prior), "expected a loaded SpectraModel "
                             "(unmixgen.priors.spectra.model.load_spectra_prior(folder)) or None")
    if device is None:
        return
    for name, prior, loader in (("abundance_prior", abundance_prior, "abundance.model.load_model"),
                                ("spectra_prior", spectra_prior, "spectra.model.load_spectra_prior")):
        on = getattr(prior, "device", None)
        if prior is not None and on is not None and torch.device(on) != torch.device(device):
            raise ParameterError(name, str(prior.model_dir), f"was loaded on {on} but refine runs on {device}; "
                                 f"expected a prior loaded on {device} (unmixgen.priors.{loader}(folder, "
                                 f"device={device!r}))")


def check_arguments(*, samples, steps, rounds, mixing, band_weights, seed, eta, lam, ls_iterations,
                     endmember_tolerance, spread, tile, tile_overlap, guard_level, spectra_t0,
                     abundance_basis) -> None:
    """`ParameterError` for the first of `refine`'s numbers and choices out of its range."""
    check_range("samples", samples, low=1, integer=True)
    check_range("steps", steps, low=1, integer=True)
    if rounds is not None:
        check_range("rounds", rounds, low=1, integer=True)
    check_mixing(mixing)
    if band_weights is not None and not (isinstance(band_weights, str) and band_weights == "noise"):
        # an array (weights themselves) is refused by name, not by numpy's ambiguous truth value
        raise ParameterError("band_weights", brief(band_weights), "expected 'noise' or None")
    check_range("seed", seed, low=0, integer=True)  # derive_seed takes a negative one modulo 2**32
    check_range("eta", eta, low=0, high=1)
    if lam is not None:
        check_range("lam", lam, low=0)
    check_range("ls_iterations", ls_iterations, low=0, integer=True)
    check_range("endmember_tolerance", endmember_tolerance, low=0)
    check_range("spread", spread, low=0)
    check_range("tile", tile, low=1, integer=True)
    check_range("tile_overlap", tile_overlap, low=0, high=1, high_open=True)
    check_range("guard_level", guard_level, low=0, high=1, low_open=True, high_open=True)
    if spectra_t0 is not None:
        check_range("spectra_t0", spectra_t0, low=0, high=1, low_open=True)
    if abundance_basis not in (None, "l2", "sum"):
        raise ParameterError("abundance_basis", abundance_basis, "expected None, 'l2' or 'sum'")
