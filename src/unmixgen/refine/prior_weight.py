"""The abundance prior's weight, chosen per scene by cross-validation across bands.

How far the 2D prior's clean estimate should be trusted against the data depends on the
scene's maps: smooth fields are what a map prior knows best, rough or sharp-edged ones less
so, and one fixed weight is too strong for the one and too weak for the other
(benchmarks/RESULTS.md, "The abundance prior's weight per scene"). The scene itself can tell:
under white noise the odd and the even bands carry independent noise on the same abundances.
So the abundances refined from the odd bands alone are scored against the least-squares
(FCLS) abundances of the even bands, and the other way round; the noise of the scoring half
is independent of the refined half's, so the mean squared difference is the refined half's
error plus a constant, and the weight with the lowest score is the one whose refinement
lands nearest the truth. Each half has half the bands, so its data are about 3 dB noisier
than the scene's; the weight scales the prior's precision, not the data's, and carries over.
Noise correlated between neighbouring bands makes the halves agree more than the truth
would, which favours the data (a smaller weight): the safe side.

Weight 0 (the data alone: each half's FCLS answer) is not among the candidates: on maps
without spatial structure, where it scored best, it lost against the prior's weakest weight
once the endmembers were refined as well (benchmarks/RESULTS.md, "Weight 0: the data alone").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..unmix.inversion import fcls

CANDIDATES = (0.5, 1.0, 2.0, 4.0)
"""Weights tried (``lam`` of `posterior.refine`); measured in benchmarks/RESULTS.md. A weight 0
among them would score the halves' FCLS answers (the data alone) without refining them."""


def band_halves(bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the even and the odd bands (interleaved: both halves span the spectrum)."""
    return np.arange(0, bands, 2), np.arange(1, bands, 2)


def choose_prior_weight(refine_half: Callable[[float, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                        Y: np.ndarray, E: np.ndarray, candidates: Sequence[float] = CANDIDATES,
                        samples: int | None = None) -> tuple[float, dict]:
    """The weight of ``candidates`` whose refinement predicts the other half of the bands best.

    Parameters
    ----------
    refine_half : called as ``refine_half(lam, Y_half, E_half, A_start)`` with the pixels
        (N, B_h) and endmembers (p, B_h) of one half of the bands and the FCLS abundances
        (N, p) of that half; returns S posterior samples (S, N, p) refined under weight ``lam``.
        Not called for the weight 0: the data alone are the half's FCLS abundances.
    Y : (N, B) valid pixels; E : (p, B) endmembers.
    samples : how many samples the refinement being tuned averages (None: as many as
        ``refine_half`` returns). A mean of S samples scatters by the samples' variance over
        S about the posterior mean, so its score is moved to what a mean of ``samples``
        would score, with the variance estimated from the S >= 2 samples; without this
        the scatter of a few samples, larger under a stronger prior, would push the choice
        towards the data.

    Returns the chosen weight and a record: ``candidates``, ``scores`` (mean squared
    difference to the other half's FCLS abundances, summed over both directions, one per
    candidate) and ``chosen``. With fewer than ``p`` bands in a half nothing can be scored:
    1.0 is returned and the record says why.
    """
    p, B = E.shape
    halves = band_halves(B)
    if min(len(h) for h in halves) < p:
        return 1.0, {"candidates": list(candidates), "scores": None, "chosen": 1.0,
                     "note": f"{B} bands: too few to split in two halves of at least p = {p}"}
    Y = np.asarray(Y, np.float32)
    E = np.asarray(E, np.float32)
    parts = [(Y[:, h], E[:, h]) for h in halves]
    fits = [fcls(Yh, Eh) for Yh, Eh in parts]
    scores = []
    for lam in candidates:
        s = 0.0
        for i, (Yh, Eh) in enumerate(parts):
            draws = np.asarray(fits[i][None] if lam == 0 else refine_half(float(lam), Yh, Eh, fits[i]), np.float64)
            s += float(np.mean((draws.mean(axis=0) - fits[1 - i]) ** 2))
            S = len(draws)
            if S >= 2 and samples is not None:
                s += float(np.mean(draws.var(axis=0, ddof=1))) * (1.0 / samples - 1.0 / S)
        scores.append(s)
    chosen = float(candidates[int(np.argmin(scores))])
    return chosen, {"candidates": [float(v) for v in candidates], "scores": scores, "chosen": chosen}
