"""Which mixing model refinement holds the abundances to: linear ``y = a E`` or scaled
``y = s a E`` (a free brightness ``s > 0`` per pixel: illumination, topography, the ELMM's
scaling).

Under brightness variability the linear model is wrong however good the endmembers are: FCLS
with the true endmembers then puts the brightness into the mixture (17 % RMSE on simulated
scenes with ELMM log-std 0.15, 5 % for the scaled model's answer), and a diffusion prior over
maps cannot undo that. ``"auto"`` decides by the blind default's truth-free test
(`unmixgen.unmix.selector.brightness_excess`): the energy of the brightness direction beyond
linear mixing, in noise dimensions (about 1 under linear mixing). Above
`BRIGHTNESS_EXCESS` the pixels and the endmembers are divided by their band sums
(`BandSums`), which makes the scaled model an exact linear one with re-weighted fractions; the
refined fractions are mapped back to the given endmembers, and the result carries each pixel's
brightness.

An init that is a least-squares fit of the raw pixels (FCLS: it modelled no brightness) is
replaced by the FCLS answer of the divided pixels (the scaled model's per-pixel answer whose
reconstruction keeps the pixel's band sum); any other (a blind method or HybridSTU that modelled the brightness) starts as it is. The
numbers behind the rule are in benchmarks/RESULTS.md ("Refinement under the scaled mixing
model").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..unmix.selector import brightness_excess

#: the choices of `refine`'s ``mixing``
MIXING = ("auto", "linear", "scaled")
#: the blind default's threshold on `brightness_excess` (`unmixgen.unmix.selector.AutoUnmixer`)
BRIGHTNESS_EXCESS = 2.0
#: pixels the test looks at, at most (its second moments cost N bands^2)
TEST_PIXELS = 100_000
#: pixel band sums are floored at this fraction of their median (dark or negative pixels);
#: an endmember's below this fraction of the largest keeps the linear model
DARK = 1e-3


def check_mixing(mixing: str) -> str:
    if mixing not in MIXING:
        raise ParameterError("mixing", mixing, f"expected one of {', '.join(MIXING)}")
    return mixing


def choose_mixing(Y: np.ndarray, p: int, mixing: str = "auto", seed: int = 0) -> tuple[str, dict]:
    """``("linear" | "scaled", record)`` for pixels ``Y (N, bands)`` and ``p`` endmembers;
    ``mixing`` as `refine`'s (``"auto"`` tests `brightness_excess` against
    `BRIGHTNESS_EXCESS`, on a seeded subsample of `TEST_PIXELS` pixels of larger scenes;
    fewer pixels than bands + 1 stay linear)."""
    check_mixing(mixing)
    record: dict = {"requested": mixing, "brightness_excess": None, "threshold": BRIGHTNESS_EXCESS}
    if mixing != "auto":
        record["model"] = mixing
        return mixing, record
    if Y.shape[0] <= Y.shape[1] or Y.shape[1] <= p:
        record["model"] = "linear"
        return "linear", record
    if Y.shape[0] > TEST_PIXELS:
        Y = Y[np.sort(np.random.default_rng(seed).choice(Y.shape[0], TEST_PIXELS, replace=False))]
    excess = brightness_excess(Y, p)
    record["brightness_excess"] = excess
    record["model"] = "scaled" if excess > BRIGHTNESS_EXCESS else "linear"
    return record["model"], record


@dataclass
class BandSums:
    """The scaled model made linear: pixels ``y = s a E`` divided by their band sums ``t``
    (N,) mix the endmembers divided by theirs, ``c`` (p,), exactly:
    ``y / t = sum_k a'_k E_k / c_k`` with ``a'_k = a_k c_k / sum_j a_j c_j``, whatever the
    brightness ``s``. The normalisation needs no endmembers, so it does not pull the data
    towards the init's (a brightness under biased endmembers would)."""

    t: np.ndarray  # (N,) float64 pixel band sums, floored at `DARK` times their median
    c: np.ndarray  # (p,) float64 endmember band sums

    def to_normalised(self, A: np.ndarray) -> np.ndarray:
        """Fractions ``A (..., p)`` of ``E`` -> fractions of ``E / c`` (float32)."""
        return _simplex(_scaled(A, self.c))

    def from_normalised(self, A: np.ndarray) -> np.ndarray:
        """Fractions of ``E / c`` -> fractions ``(..., p)`` of ``E`` (float32)."""
        return _simplex(_scaled(A, 1.0 / self.c))

    def brightness(self, A_norm: np.ndarray) -> np.ndarray:
        """The brightness ``s`` (N,) float32 of the pixels under fractions ``A_norm (N, p)`` of
        ``E / c``: ``y = s a E`` with ``a = from_normalised(A_norm)``."""
        return (self.t * (np.asarray(A_norm, np.float64) / self.c).sum(-1)).astype(np.float32)


def rescaled_fractions(A: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Fractions ``A (..., p)`` of endmembers ``E`` -> fractions of ``E / w`` (``w (p,)``),
    float32: ``A * w`` summed to one (uniform where the sum is not positive)."""
    return _simplex(_scaled(A, np.asarray(w, np.float64)))


def _scaled(A: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``A * w`` in ``A``'s precision when that is float32 (all the samples of a large scene
    pass through here: no float64 copy of them), else in float64."""
    A = np.asarray(A)
    dtype = np.float32 if A.dtype == np.float32 else np.float64
    return A.astype(dtype, copy=False) * w.astype(dtype)


def _simplex(A: np.ndarray) -> np.ndarray:
    """Rows of ``A (..., p)`` divided by their sums, uniform where the sum is not positive."""
    total = A.sum(-1, keepdims=True)
    bad = ~(total > 0)
    out = A / np.where(bad, 1.0, total).astype(A.dtype)
    if bad.any():
        out[np.broadcast_to(bad, out.shape)] = 1.0 / A.shape[-1]
    return out.astype(np.float32, copy=False)


def band_sums(Y: np.ndarray, E: np.ndarray) -> BandSums | None:
    """`BandSums` of pixels ``Y (N, bands)`` and endmembers ``E (p, bands)``; None when an
    endmember's band sum is not positive or below `DARK` times the largest (dividing by it
    would blow its spectrum up), or the pixels' median band sum is not positive (no
    brightness to divide by; the floor of the pixels' would be about 0)."""
    c = np.asarray(E, np.float64).sum(1)
    if not np.all(np.isfinite(c) & (c > 0)) or c.min() < DARK * c.max():
        return None
    t = np.asarray(Y).sum(1, dtype=np.float64)  # accumulated in float64, no float64 copy of the pixels
    median = float(np.median(t)) if t.size else 0.0
    if not median > 0:
        return None
    return BandSums(t=np.maximum(t, DARK * median), c=c)
