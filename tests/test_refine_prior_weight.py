"""The abundance prior's weight by cross-validation across bands: the selection rule on
stand-in refinements whose best weight is known, and its record inside `refine`."""

from __future__ import annotations

import numpy as np
import pytest

from test_refine import one_vs_rest, scene  # noqa: F401  (the module's prior fixture)
from unmixgen.priors.abundance.model import AbundanceModel
from unmixgen.refine.posterior import refine
from unmixgen.refine.prior_weight import CANDIDATES, band_halves, choose_prior_weight
from unmixgen.simulate.procedural import abundance_maps
from unmixgen.unmix.inversion import fcls

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def noisy_scene(seed=0, n=3000, p=3, bands=40, sigma=0.03):
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.ones(p), size=n).astype(np.float32)
    E = rng.uniform(0.1, 1.0, (p, bands)).astype(np.float32)
    Y = (A @ E + rng.normal(0, sigma, (n, bands))).astype(np.float32)
    return Y, E, A


def shrink_towards(P):
    """A stand-in refinement (one sample): the half's FCLS abundances averaged with a fixed
    estimate ``P`` at weight ``lam`` (what a prior does, with a known error)."""
    return lambda lam, Yh, Eh, Ah: ((Ah + lam * P) / (1 + lam))[None]


def test_band_halves_interleave_and_cover_every_band():
    a, b = band_halves(7)
    assert list(a) == [0, 2, 4, 6] and list(b) == [1, 3, 5]


def test_weight_follows_how_good_the_prior_estimate_is():
    Y, E, A = noisy_scene()
    rng = np.random.default_rng(1)
    # the error of one half's FCLS abundances, known here from the truth
    err = np.sqrt(np.mean((fcls(Y[:, 0::2], E[:, 0::2]) - A) ** 2))
    # a perfect estimate: the more weight the better
    assert choose_prior_weight(shrink_towards(A), Y, E)[0] == max(CANDIDATES)
    # a useless one (the uniform mixture): as little as offered
    assert choose_prior_weight(shrink_towards(np.full_like(A, 1 / 3)), Y, E)[0] == min(CANDIDATES)
    # an estimate as noisy as the data: equal weights are best
    P = A + rng.normal(0, err, A.shape).astype(np.float32)
    lam, info = choose_prior_weight(shrink_towards(P), Y, E)
    assert lam == 1.0 and info["chosen"] == 1.0 and len(info["scores"]) == len(CANDIDATES)


def test_weight_is_scored_against_the_other_half():
    # a refinement that returns its own half's FCLS answer would score 0 against itself for
    # every weight; against the other half it scores that half's noise, so weights that pull
    # towards the truth still win
    Y, E, A = noisy_scene(seed=2)
    lam, info = choose_prior_weight(shrink_towards(A), Y, E)
    assert lam == max(CANDIDATES) and min(info["scores"]) > 0


def test_scatter_of_few_samples_is_discounted_for_the_mean_of_many():
    # two samples per weight whose scatter grows with the weight: scored as they are, the
    # scatter of a two-sample mean hides the better posterior mean; scored for the mean of
    # many samples it does not
    Y, E, A = noisy_scene(seed=3)
    rng = np.random.default_rng(4)

    def scattered(lam, Yh, Eh, Ah):
        mean = (Ah + lam * A) / (1 + lam)
        return mean[None] + 0.01 * lam * rng.normal(size=(2, *mean.shape))

    assert choose_prior_weight(scattered, Y, E)[0] < max(CANDIDATES)
    assert choose_prior_weight(scattered, Y, E, samples=10_000)[0] == max(CANDIDATES)


def test_too_few_bands_to_split_keeps_weight_one():
    Y, E, A = noisy_scene(bands=5, p=3)
    lam, info = choose_prior_weight(shrink_towards(A), Y, E)
    assert lam == 1.0 and info["scores"] is None and "too few" in info["note"]


def test_refine_records_the_chosen_weight_or_the_given_one(one_vs_rest):  # noqa: F811
    Y, E, A = scene(rows=20, cols=18, p=3, snr=25)
    prior = AbundanceModel(one_vs_rest)
    calls = []
    r = refine(Y, E, A, abundance_prior=prior, samples=2, steps=2, tile=16,
               progress=lambda done, total: calls.append((done, total)))
    w = r.record["prior_weight"]
    assert r.record["lam"] == w["chosen"] and w["chosen"] in CANDIDATES and len(w["scores"]) == len(CANDIDATES)
    assert w["window"] == [[0, 20], [0, 18]]
    # the cross-validation's runs are in the progress count, which ends at its total
    assert calls[-1][0] == calls[-1][1] == 2 + 2 * len(CANDIDATES) * 2
    r1 = refine(Y, E, A, abundance_prior=prior, samples=2, steps=2, tile=16, lam=1.0)
    assert r1.record["lam"] == 1.0 and r1.record["prior_weight"]["note"] == "given"


def test_refine_on_a_large_scene_cross_validates_its_central_window(one_vs_rest):  # noqa: F811
    rng = np.random.default_rng(0)
    A = abundance_maps(70, 66, 3, rng)
    E = rng.uniform(0.1, 1.0, (3, 12)).astype(np.float32)
    Y = (A @ E + rng.normal(0, 0.01, (70, 66, 12))).astype(np.float32)
    r = refine(Y, E, A, abundance_prior=AbundanceModel(one_vs_rest), samples=1, steps=1, tile=16)
    assert r.record["prior_weight"]["window"] == [[3, 67], [1, 65]]


def test_refine_cross_validates_a_window_on_the_data_where_the_middle_is_no_data(one_vs_rest):  # noqa: F811
    # a map-grid product clipped off its swath: the image's middle 64 columns are no-data, so the
    # weight fell back to 1.0 ("0 valid pixels in the central window: too few") untried
    rng = np.random.default_rng(0)
    A = abundance_maps(40, 30, 3, rng)
    E = rng.uniform(0.1, 1.0, (3, 12)).astype(np.float32)
    Y = np.full((40, 140, 12), np.nan, np.float32)
    Y[:, :30] = A @ E + rng.normal(0, 0.01, (40, 30, 12))
    A0 = np.full((40, 140, 3), np.nan, np.float32)
    A0[:, :30] = A
    r = refine(Y, E, A0, abundance_prior=AbundanceModel(one_vs_rest), samples=1, steps=1, tile=16)
    w = r.record["prior_weight"]
    assert w["window"] == [[0, 40], [0, 64]] and w["scores"] is not None and w["chosen"] in CANDIDATES, w


def test_weight_zero_keeps_the_least_squares_answer(one_vs_rest):  # noqa: F811
    # the data alone: every sample is the FCLS answer under the given endmembers, so from an
    # FCLS init the point estimate is that init (any weight > 0 moves it), and the samples
    # still spread by the least-squares posterior
    Y, E, A = scene(rows=20, cols=18, p=3, snr=25)
    ls = fcls(Y.reshape(-1, Y.shape[-1]), E).reshape(A.shape)
    prior = AbundanceModel(one_vs_rest)
    r = refine(Y, E, ls, abundance_prior=prior, samples=3, steps=3, tile=16, lam=0.0, band_weights=None)
    np.testing.assert_allclose(r.abundances, ls, atol=1e-5)
    assert r.record["lam"] == 0.0 and float(np.nanmean(r.abundances_std)) > 0
    moved = refine(Y, E, ls, abundance_prior=prior, samples=3, steps=3, tile=16, lam=0.5, band_weights=None)
    assert np.abs(moved.abundances - ls).max() > 1e-3


def test_a_prior_that_adds_nothing_scores_worse_than_the_data_alone():
    # weight 0 among the candidates scores each half's FCLS answer itself: refinements that only
    # add error to it lose to it
    Y, E, A = noisy_scene(seed=5)
    rng = np.random.default_rng(6)
    lam, info = choose_prior_weight(lambda lam, Yh, Eh, Ah: (Ah + 0.02 * rng.normal(size=Ah.shape))[None], Y, E,
                                    candidates=(0.0, 1.0))
    assert lam == 0.0 and info["scores"][0] < info["scores"][1]
