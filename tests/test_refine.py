"""Refinement: the data steps against exact solvers, the guard, and posterior sampling with
tiny priors (valid abundances, shapes, bad input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from unmixgen.errors import InputError, ParameterError
from unmixgen.priors.abundance.model import AbundanceModel
from unmixgen.priors.abundance.patches import TrainingMaps
from unmixgen.priors.abundance.train import create_model_folder, train
from unmixgen.refine.data_steps import abundance_step, endmember_step, posterior_draw
from unmixgen.refine.guard import accept_endmembers, guard, residuals
from unmixgen.refine.posterior import endmember_standard_error, refine
from unmixgen.simulate.procedural import abundance_maps

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny_prior(folder: Path, p: int) -> Path:
    maps = [abundance_maps(24, 24, p, np.random.default_rng(s)) for s in range(2)]
    create_model_folder(folder, TrainingMaps(maps, [f"e{i}" for i in range(p)]), patch=8, width=8,
                        channel_mult=[1, 2])
    train(folder, max_steps=2, progress=False)
    return folder


@pytest.fixture(scope="module")
def one_vs_rest(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("prior") / "p2"
    folder.mkdir()
    return tiny_prior(folder, 2)


def scene(rows=12, cols=10, p=3, bands=20, seed=0, snr=None):
    rng = np.random.default_rng(seed)
    A = abundance_maps(rows, cols, p, rng)
    E = rng.uniform(0.1, 1.0, (p, bands)).astype(np.float32)
    Y = (A @ E).astype(np.float32)
    if snr is not None:
        Y = Y + rng.normal(0, np.sqrt(np.mean(Y ** 2) / 10 ** (snr / 10)), Y.shape).astype(np.float32)
    return Y, E, A


def test_abundance_step_recovers_noiseless_abundances_and_tends_to_the_prior():
    Y, E, A = scene()
    Yv = torch.from_numpy(Y.reshape(-1, Y.shape[-1]))
    Et = torch.from_numpy(E)[None]
    far = torch.full((1, Yv.shape[0], 3), 1 / 3)
    a = abundance_step(Yv, Et, far, mu=1e-8)[0].numpy()
    np.testing.assert_allclose(a, A.reshape(-1, 3), atol=1e-3)
    a_prior = abundance_step(Yv, Et, far, mu=1e8)[0].numpy()
    np.testing.assert_allclose(a_prior, 1 / 3, atol=1e-4)


def test_endmember_step_converges_to_least_squares():
    Y, E, A = scene(snr=20)
    Av = torch.from_numpy(A.reshape(-1, 3).astype(np.float32))[None]
    Yv = torch.from_numpy(Y.reshape(-1, Y.shape[-1]))
    start = torch.full((1, 3, Y.shape[-1]), 0.5)
    ls = np.linalg.lstsq(A.reshape(-1, 3), Y.reshape(-1, Y.shape[-1]), rcond=None)[0]
    out = endmember_step(Yv, Av, start, iterations=200)[0].numpy()
    np.testing.assert_allclose(out, np.maximum(ls, 0), atol=2e-3)
    one = endmember_step(Yv, Av, start, iterations=1)[0].numpy()
    fit = lambda e: np.sum((Y.reshape(-1, Y.shape[-1]) - A.reshape(-1, 3) @ e) ** 2)  # noqa: E731
    assert fit(ls) <= fit(one) < fit(start[0].numpy())


def test_posterior_draw_has_the_step_covariance_within_the_simplex_plane():
    """Away from the simplex faces the draw is the Gaussian N(mean, sigma^2 (E E^T + mu I)^-1)
    seen in the sum-to-one plane: covariance P C P with P the projection onto sum-zero."""
    rng = np.random.default_rng(0)
    p, B, N, sigma2, mu = 3, 30, 40000, 1e-5, 0.5
    E = torch.from_numpy(rng.uniform(0.1, 1.0, (1, p, B)))
    mean = torch.full((1, N, p), 1.0 / p, dtype=torch.float64)
    a = posterior_draw(mean, E, sigma2, mu, torch.from_numpy(rng.standard_normal((1, N, p))))[0].numpy()
    assert (a >= 0).all() and np.allclose(a.sum(-1), 1)
    C = sigma2 * np.linalg.inv(E[0].numpy() @ E[0].numpy().T + mu * np.eye(p))
    P = np.eye(p) - 1.0 / p
    np.testing.assert_allclose(np.cov(a.T), P @ C @ P, rtol=0.05, atol=0.02 * np.abs(P @ C @ P).max())
    np.testing.assert_allclose(a.mean(0), 1.0 / p, atol=1e-3)


def test_posterior_draw_with_dependent_endmembers_spreads_along_the_unidentified_direction():
    # endmembers 4-6 are mixtures of 1-3: E E^T has rank 3, only mu bounds the rest (float32
    # inverse of E E^T + mu I is then not positive definite)
    rng = np.random.default_rng(1)
    E3 = rng.uniform(0.1, 1.0, (3, 30))
    mix = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.2, 0.3, 0.5]])
    E = torch.from_numpy(np.vstack([E3, mix @ E3]).astype(np.float32))[None]
    mean = torch.full((1, 20000, 6), 1 / 6)
    sigma2, mu = 1e-6, 1e-7
    a = posterior_draw(mean, E, sigma2, mu, torch.from_numpy(rng.standard_normal((1, 20000, 6))).float())[0]
    assert torch.isfinite(a).all() and (a >= 0).all() and torch.allclose(a.sum(-1), torch.ones(20000), atol=1e-5)
    # moving (1/2, 1/2, 0, -1, 0, 0) leaves a E unchanged: the data do not fix it, so it spreads
    # most (with a prior weight that keeps the spread inside the simplex)
    a = posterior_draw(mean, E, sigma2, 1e-4, torch.from_numpy(rng.standard_normal((1, 20000, 6))).float())[0]
    d = a - a.mean(0)
    along = d @ torch.tensor([0.5, 0.5, 0.0, -1.0, 0.0, 0.0]) / 1.5 ** 0.5
    assert along.std() > 0.05  # while the mixtures a E stay within a few sigma of each other
    assert (d @ E[0]).std() < 5 * sigma2 ** 0.5


def test_guard_keeps_equal_fit_and_shrinks_a_worse_one_to_the_region_boundary():
    Y, E, A = scene(snr=30)
    Yv, Av = Y.reshape(-1, Y.shape[-1]), A.reshape(-1, 3)
    same = guard(Yv, Av, E, Av, E)
    assert same["endmembers_kept"] and same["pixels_kept"].all()
    bad_a = np.roll(Av, 1, axis=1)
    bad = guard(Yv, Av, E, bad_a, E * 3, level=0.9)
    assert not bad["endmembers_kept"] and bad["pixels_kept"].mean() < 0.5
    kept = bad["pixels_kept"]
    np.testing.assert_array_equal(bad["A"][kept], bad_a[kept])
    # shrunk pixels lie on the segment init -> refined, on the region's boundary, on the simplex
    s = bad["shrink"][~kept]
    np.testing.assert_allclose(bad["A"][~kept], Av[~kept] + s[:, None] * (bad_a[~kept] - Av[~kept]), atol=1e-6)
    assert (s >= 0).all() and (s < 1).all() and np.allclose(bad["A"].sum(-1), 1, atol=1e-6)
    tol = bad["sigma2"] * chi2.ppf(0.9, 2)
    excess = residuals(Yv, bad["A"], E) - residuals(Yv, Av, E)
    # the init (the truth here) is no least-squares fit: shrunk pixels sit on either bound
    shrunk = ~kept & (bad["shrink"] > 0)
    np.testing.assert_allclose(np.abs(excess[shrunk]), tol, rtol=1e-3)
    assert (np.abs(excess) <= tol * (1 + 1e-3)).all()
    # a per-pixel noise scale widens each pixel's region by that factor
    scale = np.where(np.arange(len(Yv)) % 2 == 0, 1.0, 1e6)
    wide = guard(Yv, Av, E, bad_a, E * 3, level=0.9, noise_scale=scale)
    assert wide["pixels_kept"][1::2].all()
    np.testing.assert_array_equal(wide["shrink"][::2], bad["shrink"][::2])


def test_guard_uses_a_given_endmember_decision():
    Y, E, A = scene(snr=30)
    Yv, Av = Y.reshape(-1, Y.shape[-1]), A.reshape(-1, 3)
    E_ref = E * 1.01
    e = accept_endmembers(Yv, Av, E, E_ref)
    own, given = guard(Yv, Av, E, Av, E_ref), guard(Yv, Av, E, Av, E_ref, accepted=e)
    for k in ("A", "shrink", "E", "A_base"):
        np.testing.assert_array_equal(given[k], own[k])
    # the decision is taken from `accepted`, not recomputed
    flipped = guard(Yv, Av, E, Av, E_ref, accepted={**e, "kept": not e["kept"]})
    assert flipped["endmembers_kept"] != own["endmembers_kept"]


def test_guard_stops_a_far_better_fit_than_a_non_least_squares_init():
    """An init that is no least-squares fit: refinement all the way to FCLS fits the data far
    better than noise explains, so the guard stops it where the gain reaches the tolerance."""
    Y, E, A = scene(snr=30)
    Yv, Av = Y.reshape(-1, Y.shape[-1]), A.reshape(-1, 3)
    A_init = 0.7 * Av + 0.3 / 3  # shrunk towards the centre: a poor fit
    from unmixgen.unmix.inversion import fcls
    g = guard(Yv, A_init, E, fcls(Yv, E), E, level=0.9)
    tol = g["sigma2"] * chi2.ppf(0.9, 2)
    gain = residuals(Yv, A_init, E) - residuals(Yv, g["A"], E)
    assert (gain <= tol * (1 + 1e-3)).all() and g["shrink"].mean() < 0.5


def test_guard_region_holds_the_truth_at_its_level():
    """Around a sum-to-one least-squares init the truth's excess residual is sigma^2 chi2_{p-1}:
    the guard keeps the true abundances at about ``level`` of the pixels (interior maps, so the
    non-negativity constraint is inactive)."""
    rng = np.random.default_rng(3)
    p, B, N, sigma = 4, 60, 4000, 0.01
    E = rng.uniform(0.1, 1.0, (p, B))
    A = rng.dirichlet(np.full(p, 30.0), N)
    Y = A @ E + rng.normal(0, sigma, (N, B))
    G = np.linalg.inv(E @ E.T)
    a_u = Y @ E.T @ G
    one = np.ones(p)
    A0 = a_u - (a_u @ one - 1)[:, None] * (G @ one)[None] / (one @ G @ one)
    assert (A0 > 0).all()
    for level in (0.5, 0.9):
        kept = guard(Y, A0, E, A, E, level=level)["pixels_kept"].mean()
        assert abs(kept - level) < 0.04, (level, kept)


def test_refine_gives_valid_posterior_summaries(one_vs_rest):
    Y, E, A = scene(rows=20, cols=18, p=3, snr=25)
    A0 = A.copy()
    mask = np.ones(Y.shape[:2], bool)
    mask[0, 0] = False
    r = refine(Y, E, A0, abundance_prior=AbundanceModel(one_vs_rest), mask=mask, samples=3, steps=3, tile=16)
    assert r.abundances.shape == A.shape and r.abundance_samples.shape == (3, *A.shape)
    assert np.isnan(r.abundances[0, 0]).all() and np.isnan(r.abundances_std[0, 0]).all()
    v = r.abundance_samples[:, mask]
    assert (v >= 0).all() and np.allclose(v.sum(-1), 1, atol=1e-5)
    m = r.abundances[mask]
    assert np.allclose(m.sum(-1), 1, atol=1e-5)
    assert (r.abundances_q05[mask] <= r.abundances_q95[mask] + 1e-7).all()
    assert (r.abundances_std[mask] >= 0).all() and r.abundances_std[mask].max() > 0
    assert r.record["prior_mode"] == "one_vs_rest" and 0 <= r.record["guard"]["pixels_kept_fraction"] <= 1
    # started from the truth, the guarded posterior mean stays near it
    assert np.sqrt(np.mean((m - A[mask]) ** 2)) < 0.05
    r2 = refine(Y, E, A0, abundance_prior=AbundanceModel(one_vs_rest), mask=mask, samples=3, steps=3, tile=16)
    np.testing.assert_array_equal(r.abundance_samples, r2.abundance_samples)  # seeded
    # endmembers not sampled (no spectra prior): their std is the data's standard error, not 0
    assert r.record["endmembers_std_from"] == "least_squares_standard_error"
    want = endmember_standard_error(r.abundances[mask], r.record["noise_sigma2"], Y.shape[-1])
    np.testing.assert_allclose(r.endmembers_std, want, rtol=1e-5)
    assert (r.endmembers_std > 0).all()


def test_endmember_standard_error_is_the_spread_of_least_squares_endmembers():
    # reference: the spread of least-squares endmembers over many noise draws with the
    # abundances known (the quantity the formula states)
    rng = np.random.default_rng(3)
    A = rng.dirichlet([1.0, 2.0, 0.5], size=400)
    E = rng.uniform(0.1, 1.0, (3, 6))
    sigma = 0.02
    fits = [np.linalg.lstsq(A, A @ E + rng.normal(0, sigma, (400, 6)), rcond=None)[0] for _ in range(2000)]
    se = endmember_standard_error(A, sigma ** 2, 6)
    assert se.shape == (3, 6)
    np.testing.assert_allclose(np.std(fits, axis=0), se, rtol=0.06)
    # an endmember with no abundance anywhere is not determined by the data
    A0 = np.column_stack([A[:, :2] / A[:, :2].sum(1, keepdims=True), np.zeros(400)])
    se0 = endmember_standard_error(A0, sigma ** 2, 6)
    assert np.isinf(se0[2]).all() and np.isfinite(se0[:2]).all()


def test_refine_bad_input(one_vs_rest, tmp_path):
    Y, E, A = scene(p=3)
    prior = AbundanceModel(one_vs_rest)
    with pytest.raises(InputError, match="another scene"):
        refine(Y, E, A[:-1], abundance_prior=prior)
    with pytest.raises(ParameterError, match="samples"):
        refine(Y, E, A, abundance_prior=prior, samples=0)
    with pytest.raises(ParameterError, match="t0"):
        refine(Y, E, A, abundance_prior=prior, t0=1.5)
    with pytest.raises(ParameterError, match="tile_overlap"):
        refine(Y, E, A, abundance_prior=prior, tile_overlap=1.0)
    with pytest.raises(ParameterError, match="tile"):
        refine(Y, E, A, abundance_prior=prior, tile=0)
    with pytest.raises(InputError, match="not on the simplex"):
        refine(Y, E, 1.5 * A, abundance_prior=prior)
    with pytest.raises(InputError, match="no abundances"):
        refine(Y, E, np.full_like(A, np.nan), abundance_prior=prior)
    (tmp_path / "p4").mkdir()
    with pytest.raises(ParameterError, match="p=4"):
        refine(Y, E, A, abundance_prior=AbundanceModel(tiny_prior(tmp_path / "p4", 4)))


def test_shipped_refine_abundance_prior_is_found_and_loads():
    from unmixgen.workflows.refinement import DEFAULT_ABUNDANCE_PRIOR, _shipped

    path = _shipped(DEFAULT_ABUNDANCE_PRIOR)
    assert (path / "config.json").is_file()
    assert AbundanceModel(path).n_endmembers == 2


def test_later_rounds_run_the_lower_half_of_the_schedule():
    """A later alternation round starts from the middle timestep and ends at 0, a one-step
    schedule keeps its only step."""
    from unmixgen.refine.schedule import lower_half, timesteps

    ts = timesteps(0.3, 10, 1000)
    half = lower_half(ts)
    assert len(half) == 6 and half == ts[5:] and half[-1] == 0
    assert half[0] < ts[0] and abs(half[0] - ts[0] / 2) <= 1
    assert len(lower_half(timesteps(0.3, 5, 1000))) - 1 == 3  # ceil(5 / 2) steps
    assert lower_half(timesteps(0.3, 1, 1000)) == timesteps(0.3, 1, 1000)


def test_round_schedules_are_the_whole_then_quarter_then_eighth_schedule():
    from unmixgen.refine.schedule import round_schedule, timesteps

    ts = timesteps(0.3, 20, 1000)
    assert round_schedule(ts, 0) == ts
    assert round_schedule(ts, 1) == ts[15:]  # the last 5 of 20 steps
    assert round_schedule(ts, 2) == round_schedule(ts, 7) == ts[17:] and ts[17:][-1] == 0  # the last 3
    assert round_schedule([], 2) == []  # no spectra prior: no endmember steps in any round
    assert round_schedule(timesteps(0.3, 1, 1000), 3) == timesteps(0.3, 1, 1000)


def test_batched_samples_equal_separate_runs_whatever_the_network_batch(one_vs_rest):
    """Sample k of a K-sample run depends only on its own generator (seed, k): the same as a
    run of that sample alone, however the tiles are chunked through the network."""
    from unmixgen.nn.seeds import sample_generators
    from unmixgen.refine.abundance_prior import AbundancePriorAdapter
    from unmixgen.refine.samplers import AbundanceSampler
    from unmixgen.refine.schedule import timesteps

    Y, E, A = scene(rows=20, cols=18, p=3, snr=25)
    model = AbundanceModel(one_vs_rest)
    valid = torch.ones(Y.shape[:2], dtype=torch.bool)
    Yv = torch.from_numpy(Y.reshape(-1, Y.shape[-1]))
    K, ts = 3, timesteps(0.3, 3, 1000)
    A_t = torch.from_numpy(A).permute(2, 0, 1)[None].repeat(K, 1, 1, 1)
    E_t = torch.from_numpy(E)[None].repeat(K, 1, 1)

    def run(adapter, k0, k):
        ab = AbundanceSampler(adapter, lam=1.0, eta=0.5, spread=1.0, device="cpu")
        return ab.run(A_t[k0:k0 + k], E_t[k0:k0 + k], Yv, valid, 1e-4, ts, sample_generators(5, k0, k),
                      lambda: None)

    # 3 samples x 3 maps x 4 tiles of 16 x 16 = 36 network items, 5 per call
    together = run(AbundancePriorAdapter(model, 3, tile=16, max_pixels=5 * 16 * 16), 0, K)
    alone = torch.cat([run(AbundancePriorAdapter(model, 3, tile=16), k, 1) for k in range(K)])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)
    assert (together[0] - together[1]).abs().max() > 1e-3  # the samples do differ


def test_prior_adapter_batches_by_pixels_on_a_channels_last_copy(one_vs_rest):
    from unmixgen.priors.diffusion import GuidedNet
    from unmixgen.refine.abundance_prior import AbundancePriorAdapter

    model = AbundanceModel(one_vs_rest)
    adapter = AbundancePriorAdapter(model, 3, tile=16, max_pixels=5 * 16 * 16)
    guided = adapter.denoiser.denoise.denoise
    assert guided.batch_size(torch.zeros(40, 2, 16, 16)) == 5
    assert guided.batch_size(torch.zeros(40, 2, 100, 100)) == 1  # at least one item
    assert guided.net is not model.net  # the caller's network is not converted
    assert model.net.conv_in.weight.is_contiguous()
    assert guided.net.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(12, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(200)
    with torch.no_grad():
        out = adapter(x, t)
        ref = GuidedNet(model.net)(x, t)
    assert out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_abundance_step_reaches_the_constrained_minimiser_with_similar_endmembers():
    """Against a reference QP solve (scipy SLSQP per pixel) on endmembers so alike that E E^T
    has a condition number in the thousands, where an early stop stays far from the answer."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    p, B, N, mu = 6, 40, 30, 1e-3
    base = rng.uniform(0.2, 0.8, B)
    E = (base + 0.03 * rng.normal(size=(p, B))).astype(np.float64)
    assert np.linalg.cond(E @ E.T) > 1e3
    A = rng.dirichlet(np.ones(p), N)
    Y = A @ E + 1e-3 * rng.normal(size=(N, B))
    A_hat = rng.dirichlet(np.ones(p), N)
    out = abundance_step(torch.from_numpy(Y), torch.from_numpy(E)[None], torch.from_numpy(A_hat)[None], mu,
                         iterations=5000, tol=1e-10)[0].numpy()
    cons = ({"type": "eq", "fun": lambda a: a.sum() - 1},)
    for n in range(N):
        f = lambda a, n=n: np.sum((Y[n] - a @ E) ** 2) + mu * np.sum((a - A_hat[n]) ** 2)  # noqa: E731
        ref = minimize(f, np.full(p, 1 / p), bounds=[(0, 1)] * p, constraints=cons, method="SLSQP",
                       options={"ftol": 1e-14, "maxiter": 500}).x
        assert f(out[n]) <= f(ref) + 1e-9
        np.testing.assert_allclose(out[n], ref, atol=2e-3)


def test_samples_run_in_chunks_give_the_same_result(one_vs_rest, monkeypatch):
    """On large scenes the abundance sampler runs a few samples at a time (memory bounded by
    the chunk); every sample depends only on its own noise stream, so nothing changes."""
    import unmixgen.refine.checks as post

    Y, E, A = scene(rows=20, cols=18, p=3, snr=25)
    prior = AbundanceModel(one_vs_rest)
    whole = refine(Y, E, A, abundance_prior=prior, samples=3, steps=2, tile=16, lam=1.0)
    monkeypatch.setattr(post, "_SAMPLE_CHUNK_VALUES", 20 * 18 * 3)  # one sample per chunk
    assert post.sample_chunk(3, 20 * 18, 3) == 1
    calls = []
    chunked = refine(Y, E, A, abundance_prior=prior, samples=3, steps=2, tile=16, lam=1.0,
                     progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_allclose(chunked.abundance_samples, whole.abundance_samples, rtol=0, atol=1e-5)
    np.testing.assert_allclose(chunked.abundances, whole.abundances, rtol=0, atol=1e-5)
    assert calls[-1][0] == calls[-1][1] == 3 * 2  # three chunks of two steps


def test_the_number_of_rounds_follows_the_prior_weight_unless_given(one_vs_rest):
    """With ``rounds=None`` a second round runs only under a prior weighted at least 1 (chosen
    or given); a given number of rounds is run as given; the progress count ends where it
    said it would."""
    from unmixgen.refine.posterior import SECOND_ROUND_WEIGHT, WEIGHTED_ROUNDS

    Y, E, A = scene(rows=20, cols=18, p=3, snr=25)
    prior = AbundanceModel(one_vs_rest)
    for lam, rounds, expected in ((SECOND_ROUND_WEIGHT / 2, None, 1), (SECOND_ROUND_WEIGHT, None, WEIGHTED_ROUNDS),
                                  (SECOND_ROUND_WEIGHT / 2, 3, 3), (None, None, None)):
        calls = []
        r = refine(Y, E, A, abundance_prior=prior, samples=2, steps=2, tile=16, lam=lam, rounds=rounds,
                   progress=lambda done, total, calls=calls: calls.append((done, total)))
        if expected is None:  # chosen by cross-validation: the rounds follow the weight chosen
            expected = WEIGHTED_ROUNDS if r.record["lam"] >= SECOND_ROUND_WEIGHT else 1
        assert r.record["rounds"] == expected
        assert r.record["rounds_from"] == ("given" if rounds else "prior weight")
        assert calls[-1][0] == calls[-1][1]
        # steps: 2 in the first round, 1 in each later one (one chunk, no spectra prior)
        assert calls[-1][1] - (16 if lam is None else 0) == 2 + (expected - 1)
    # the library default is one round, whatever the weight
    assert refine(Y, E, A, abundance_prior=prior, samples=2, steps=2, tile=16, lam=2.0).record["rounds"] == 1


def test_progress_ends_at_its_total_when_the_weight_cannot_be_cross_validated(one_vs_rest):
    """With too few bands to split (5 bands, p = 3) the weight falls back to 1 without running
    a refinement: the progress total drops the cross-validation's steps and still ends full."""
    Y, E, A = scene(rows=20, cols=18, p=3, bands=5, snr=25)
    calls = []
    r = refine(Y, E, A, abundance_prior=AbundanceModel(one_vs_rest), samples=2, steps=2, tile=16,
               progress=lambda done, total: calls.append((done, total)))
    assert r.record["prior_weight"]["chosen"] == 1.0 and r.record["prior_weight"]["scores"] is None
    assert calls[-1][0] == calls[-1][1] == 2


@pytest.mark.parametrize("variability", [0.0, 0.2])
def test_refined_endmembers_are_refused_where_brightness_explains_the_misfit(variability):
    """Pixels whose brightness varies (y = s a E): FCLS with the true endmembers misfits, and
    least-squares endmembers refitted to its abundances fit better only by bending towards the
    bright pixels. With a free brightness per pixel they fit no better than the true ones, so
    they are refused; on a scene without such variability the same refit is accepted."""
    from unmixgen.unmix.inversion import fcls

    Y, E, _ = scene(rows=30, cols=30, bands=40, snr=35, seed=3)
    Yv = Y.reshape(-1, Y.shape[-1])
    s = np.exp(variability * np.random.default_rng(4).standard_normal((len(Yv), 1))).astype(np.float32)
    Yv = Yv * s
    A0 = fcls(Yv, E)
    E_ref = np.linalg.lstsq(A0.astype(np.float64), Yv.astype(np.float64), rcond=None)[0].astype(np.float32)
    fits_better = residuals(Yv, fcls(Yv, E_ref), E_ref).mean() < residuals(Yv, A0, E).mean()
    assert fits_better  # the old rule alone would accept E_ref in both cases
    assert accept_endmembers(Yv, A0, E, E_ref)["kept"] == (variability == 0.0)


def bright_scene(rows=24, cols=20, p=3, bands=30, snr=40, seed=5, spread=0.25):
    """``scene`` with a smooth per-pixel brightness ``s`` (rows, cols): pixels ``s a E``."""
    from scipy.ndimage import gaussian_filter

    Y, E, A = scene(rows=rows, cols=cols, p=p, bands=bands, seed=seed, snr=snr)
    z = gaussian_filter(np.random.default_rng(seed + 1).standard_normal((rows, cols)), 3.0)
    s = np.exp(spread * z / z.std()).astype(np.float32)
    return (Y * s[..., None]).astype(np.float32), E, A, s


def test_choose_mixing_finds_brightness_beyond_linear_mixing():
    from unmixgen.refine.mixing import choose_mixing

    Y, E, _ = scene(rows=30, cols=30, p=3, bands=30, snr=30, seed=2)
    Yb, *_ = bright_scene(rows=30, cols=30, snr=30, seed=2)
    model, rec = choose_mixing(Y.reshape(-1, 30), 3)
    assert model == "linear" and rec["brightness_excess"] < 2
    model, rec = choose_mixing(Yb.reshape(-1, 30), 3)
    assert model == "scaled" and rec["brightness_excess"] > 2
    assert choose_mixing(Yb.reshape(-1, 30), 3, "linear")[0] == "linear"
    assert choose_mixing(Y.reshape(-1, 30), 3, "scaled")[0] == "scaled"
    with pytest.raises(ParameterError, match="mixing"):
        choose_mixing(Y.reshape(-1, 30), 3, "elmm")


def test_refine_divides_out_a_varying_brightness(one_vs_rest):
    """Pixels ``s a E`` with the true endmembers: FCLS puts the brightness into the mixture; the
    scaled model's refinement divides it out (its brightness is the true one), starts from the
    scaled model's answer and ends far nearer the truth than the linear model's."""
    from unmixgen.unmix.inversion import fcls

    Yb, E, A, s = bright_scene()
    keep = Yb.copy()
    A0 = fcls(Yb.reshape(-1, Yb.shape[-1]), E).reshape(A.shape)
    prior = AbundanceModel(one_vs_rest)
    r = refine(Yb, E, A0, abundance_prior=prior, samples=2, steps=2, tile=16)
    np.testing.assert_array_equal(Yb, keep)  # the caller's cube is not divided in place
    assert r.record["mixing"]["model"] == "scaled" and r.record["mixing"]["start"] == "scaled"
    np.testing.assert_allclose(r.brightness, s, rtol=0.03)
    lin = refine(Yb, E, A0, abundance_prior=prior, samples=2, steps=2, tile=16, mixing="linear")
    assert lin.brightness is None and lin.record["mixing"]["model"] == "linear"
    rmse = lambda X: float(np.sqrt(np.mean((X - A) ** 2)))  # noqa: E731
    assert rmse(r.abundances) < 0.5 * rmse(lin.abundances) and rmse(r.abundances) < 0.5 * rmse(A0)
    v = r.abundances.reshape(-1, A.shape[-1])
    assert (v >= 0).all() and np.allclose(v.sum(-1), 1, atol=1e-5)
    # an init that already modelled the brightness starts as it is
    from unmixgen.unmix.inversion import scaled

    A_sc = scaled(Yb.reshape(-1, Yb.shape[-1]), E).reshape(A.shape)
    r2 = refine(Yb, E, A_sc, abundance_prior=prior, samples=2, steps=2, tile=16)
    assert r2.record["mixing"]["start"] == "init"
    # a scene without brightness variability stays linear
    Y, *_ = scene(rows=24, cols=20, p=3, bands=30, seed=5, snr=40)
    r3 = refine(Y, E, fcls(Y.reshape(-1, 30), E).reshape(A.shape), abundance_prior=prior, samples=2, steps=2,
                tile=16)
    assert r3.record["mixing"]["model"] == "linear" and r3.brightness is None
    # an endmember without a positive band sum has no brightness to divide by: linear, said so
    E_neg = E.copy()
    E_neg[0] = E_neg[0] - 2 * E_neg[0].mean()
    r4 = refine(Yb, E_neg, A0, abundance_prior=prior, samples=2, steps=2, tile=16, mixing="scaled")
    assert r4.record["mixing"]["model"] == "linear" and "band sum" in r4.record["mixing"]["note"]
    assert r4.brightness is None


def test_band_sums_make_the_scaled_model_linear_and_map_fractions_back():
    """``y = s a E`` divided by its band sum is the mixture of ``E / c`` with the re-weighted
    fractions, exactly; the fractions and the brightness map back; an endmember without a
    positive band sum gives no normalisation."""
    from unmixgen.refine.mixing import band_sums

    rng = np.random.default_rng(0)
    E = rng.uniform(0.05, 1.0, (3, 12))
    A = rng.dirichlet([1.0, 1.0, 1.0], size=50)
    s = rng.uniform(0.3, 3.0, 50)
    Y = s[:, None] * (A @ E)
    n = band_sums(Y, E)
    An = n.to_normalised(A)
    np.testing.assert_allclose(Y / n.t[:, None], An @ (E / n.c[:, None]), rtol=1e-5)
    np.testing.assert_allclose(n.from_normalised(An), A, atol=1e-6)
    np.testing.assert_allclose(n.brightness(An), s, rtol=1e-5)
    E_bad = E.copy()
    E_bad[1] = -E_bad[1]
    assert band_sums(Y, E_bad) is None
    E_bad[1] = 1e-4 * E[1] / E[1].sum()  # positive, but dividing by it would blow it up
    assert band_sums(Y, E_bad) is None


def test_scaled_mixing_falls_back_to_linear_when_most_pixels_have_no_positive_band_sum(one_vs_rest):
    """Pixels whose median band sum is not positive give no brightness to divide by (their
    floor would be ~0 and the divided pixels overflow): the linear model is kept, as for an
    endmember without a positive band sum, instead of failing in the sampler."""
    from unmixgen.refine.mixing import band_sums
    from unmixgen.unmix.inversion import fcls

    Yb, E, A, _ = bright_scene()
    Yb[:16] = -Yb[:16]
    assert band_sums(Yb.reshape(-1, Yb.shape[-1]), E) is None
    A0 = fcls(Yb.reshape(-1, Yb.shape[-1]), E).reshape(A.shape)
    r = refine(Yb, E, A0, abundance_prior=AbundanceModel(one_vs_rest), samples=2, steps=2, tile=16, mixing="scaled")
    assert r.record["mixing"]["model"] == "linear" and r.brightness is None


def test_endmembers_at_pure_pixel_clusters_are_moved_onto_them_and_kept(one_vs_rest):
    from unmixgen.priors.spectra.model import load_spectra_prior
    from unmixgen.simulate.procedural import library
    from unmixgen.unmix.inversion import fcls
    from unmixgen.unmix.vertex_clusters import vertex_clusters

    wl = np.linspace(420, 2400, 120)
    E, _ = library(wl, ["soil", "vegetation", "concrete", "water"], rng=0)
    E = E.astype(np.float32)
    A = abundance_maps(36, 40, 4, np.random.default_rng(0), smoothness=3.5, purity=8.0).reshape(-1, 4)
    clean = (A @ E).astype(np.float32)
    Y = clean + np.random.default_rng(1).normal(0, np.sqrt(np.mean(clean ** 2) / 100), clean.shape).astype(np.float32)
    # a pure-pixel extraction's answer: one noisy pure pixel per material
    E0 = np.stack([Y[np.flatnonzero(A[:, j] > 0.999)[0]] for j in range(4)])
    A0 = fcls(Y, E0)
    r = refine(Y.reshape(36, 40, -1), E0, A0.reshape(36, 40, 4), abundance_prior=AbundanceModel(one_vs_rest),
               spectra_prior=load_spectra_prior(None), wavelengths=wl, samples=2, steps=2, rounds=None)
    assert r.record["pure_clusters"]["moved"] == [0, 1, 2, 3]
    assert r.record["rounds"] == 1 and not r.record["endmembers_refined"]
    np.testing.assert_allclose(r.endmembers, vertex_clusters(Y, E0)[0], rtol=1e-6, atol=1e-7)

    def sad(Ex):
        cos = np.sum(Ex * E, 1) / np.linalg.norm(Ex, axis=1) / np.linalg.norm(E, axis=1)
        return np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()

    assert sad(r.endmembers) < 0.5 * sad(E0)


def test_fitted_endmembers_inside_pure_clusters_are_held_at_their_means_while_the_others_refine(one_vs_rest):
    """A scene where three materials have pure regions and the fourth never exceeds 0.5: the
    three fitted vertices inside their clusters are held at the clusters' means through the
    pull and the rounds (a dark spectrum below the noise was pushed off its pixels otherwise),
    the fourth is refined; given endmembers (a library) are not pinned."""
    from unmixgen.priors.spectra.model import load_spectra_prior
    from unmixgen.simulate.procedural import library
    from unmixgen.unmix.inversion import fcls
    from unmixgen.unmix.vertex_clusters import vertex_clusters

    wl = np.linspace(420, 2400, 120)
    E, _ = library(wl, ["soil", "vegetation", "concrete", "water"], rng=0)
    E = E.astype(np.float32)
    A = abundance_maps(36, 40, 4, np.random.default_rng(0), smoothness=3.5, purity=8.0).reshape(-1, 4)
    excess = np.maximum(A[:, 3] - 0.5, 0)
    A[:, 3] -= excess
    A[:, :3] += excess[:, None] * np.random.default_rng(5).dirichlet(np.ones(3), len(A))
    clean = (A @ E).astype(np.float32)
    noise = np.random.default_rng(1).normal(0, np.sqrt(np.mean(clean ** 2) / 100), clean.shape).astype(np.float32)
    Y = clean + noise
    E0 = np.stack([E[j] - noise[j] for j in range(3)] + [E[3] + 0.05 * (E[3] - E.mean(axis=0))])
    E0 = E0.astype(np.float32)
    A0 = fcls(Y, E0)
    want = vertex_clusters(Y, E0, partial=True)[0]
    kw = dict(abundance_prior=AbundanceModel(one_vs_rest), spectra_prior=load_spectra_prior(None), wavelengths=wl,
              samples=2, steps=2, rounds=2, band_weights=None)
    r = refine(Y.reshape(36, 40, -1), E0, A0.reshape(36, 40, 4), endmembers_fitted=True, **kw)
    rec = r.record["pure_clusters"]
    assert rec["moved"] == rec["pinned"] == [0, 1, 2]
    assert r.record["guard"]["endmembers_kept"] and r.record["endmembers_refined"]
    np.testing.assert_allclose(r.endmembers[:3], want[:3], rtol=1e-6, atol=1e-7)
    assert not np.allclose(r.endmembers[3], E0[3], rtol=1e-3)  # refined
    for pins, fitted in ((True, False), (False, True)):  # given endmembers; the all-or-none rule alone
        other = refine(Y.reshape(36, 40, -1), E0, A0.reshape(36, 40, 4), endmembers_fitted=fitted, pure_pins=pins,
                       **kw)
        assert other.record["pure_clusters"]["moved"] == [] and "pinned" not in other.record["pure_clusters"]
        assert not np.allclose(other.endmembers[:3], want[:3], rtol=1e-3)


def _plateau_scene(purity: float, max_abundance: float | None, seed: int = 0):
    """32 x 32 pixels of four procedural materials at 20 dB whose maps have wide plateaus:
    ``(Y (1024, 120), A (1024, 4), E (4, 120), wavelengths)``."""
    from unmixgen.simulate.procedural import library

    wl = np.linspace(420, 2400, 120)
    E = library(wl, ["soil", "dry_vegetation", "concrete", "kaolinite"], rng=0)[0].astype(np.float32)
    kw = {} if max_abundance is None else {"max_abundance": max_abundance}
    A = abundance_maps(32, 32, 4, np.random.default_rng(100 + seed), smoothness=3.5, purity=purity, **kw).reshape(-1, 4)
    clean = (A @ E).astype(np.float32)
    noise = np.random.default_rng(seed).normal(0, np.sqrt(np.mean(clean ** 2) / 100), clean.shape)
    return (clean + noise).astype(np.float32), A, E, wl


def test_given_endmembers_with_a_cluster_at_every_vertex_are_held_unless_the_clusters_fit_better(one_vs_rest):
    """Given endmembers (a library) are not replaced by their clusters' means when those are
    mixtures' plateaus (every material at 0.95, no pure pixel): the means sit inside the
    simplex, and taking them moved the correct spectra 0.8-1.1 deg off. The data confirm the
    given vertices then, and they are held. Given spectra unlike the scene's materials (a
    tilt of 5 %) are replaced by the means of their pure clusters, which fit far better."""
    from unmixgen.priors.spectra.model import load_spectra_prior
    from unmixgen.unmix.inversion import fcls
    from unmixgen.unmix.vertex_clusters import vertex_clusters

    kw = dict(abundance_prior=AbundanceModel(one_vs_rest), spectra_prior=load_spectra_prior(None), samples=2, steps=2)
    Y, A, E, wl = _plateau_scene(purity=6.0, max_abundance=0.95)
    E_c, rec = vertex_clusters(Y, E)
    assert rec["moved"] == [0, 1, 2, 3] and A.max() <= 0.95 + 1e-6  # plateaus taken for pure clusters
    r = refine(Y.reshape(32, 32, -1), E, fcls(Y, E).reshape(32, 32, 4), wavelengths=wl, **kw)
    assert r.record["pure_clusters"]["given_replaced"] is False
    assert r.record["rounds"] == 1 and not r.record["endmembers_refined"]
    np.testing.assert_array_equal(r.endmembers, E)
    assert not np.allclose(E_c, E, rtol=1e-2)

    Y, A, E, wl = _plateau_scene(purity=8.0, max_abundance=None)
    E0 = (E * (1 + 0.05 * np.linspace(-1, 1, E.shape[1]))).astype(np.float32)
    r = refine(Y.reshape(32, 32, -1), E0, fcls(Y, E0).reshape(32, 32, 4), wavelengths=wl, **kw)
    assert r.record["pure_clusters"]["given_replaced"] is True
    np.testing.assert_allclose(r.endmembers, vertex_clusters(Y, E0)[0], rtol=1e-6, atol=1e-7)
    cos = lambda X: np.sum(X * E, 1) / np.linalg.norm(X, axis=1) / np.linalg.norm(E, axis=1)  # noqa: E731
    assert np.degrees(np.arccos(np.clip(cos(r.endmembers), -1, 1))).mean() < 0.5 * np.degrees(
        np.arccos(np.clip(cos(E0), -1, 1))).mean()


def test_an_init_fitted_to_the_pixels_refuses_the_true_endmembers_without_its_allowance():
    """Endmembers fitted to the same noisy pixels fit their noise by about ``p bands / N``
    noise variances per pixel better than the materials' spectra: the standard-error tolerance
    alone refuses the true spectra against such an init, the allowance accepts them."""
    from unmixgen.unmix.inversion import fcls

    p, bands, n = 4, 60, 150
    rng = np.random.default_rng(3)
    E = rng.uniform(0.1, 1.0, (p, bands)).astype(np.float32)
    A = abundance_maps(10, 15, p, rng, max_abundance=0.8).reshape(-1, p)
    sigma = 0.02
    Y = (A @ E + rng.normal(0, sigma, (n, bands))).astype(np.float32)
    E0 = np.linalg.lstsq(A, Y, rcond=None)[0].astype(np.float32)  # fitted: p x bands values on n pixels
    A0 = fcls(Y, E0)
    tol = 5.0 * np.sqrt(2.0 * (p - 1) / n)
    excess = (residuals(Y, fcls(Y, E), E).mean() - residuals(Y, A0, E0).mean()) / sigma ** 2
    assert tol < excess < tol + p * bands / n
    assert not accept_endmembers(Y, A0, E0, E, tolerance=tol)["kept"]
    assert accept_endmembers(Y, A0, E0, E, tolerance=tol + p * bands / n)["kept"]


def test_refine_allows_for_an_init_fitted_to_the_pixels_only_when_told(one_vs_rest, monkeypatch):
    """The rounds' acceptance gets ``p bands / N`` more tolerance for extracted endmembers and
    none for given ones; the pull's own step keeps its tolerance."""
    from unmixgen.priors.spectra.model import load_spectra_prior
    from unmixgen.refine import posterior

    seen = []

    def spy(*args, tolerance=0.0, **kw):
        seen.append(tolerance)
        return accept_endmembers(*args, tolerance=tolerance, **kw)

    monkeypatch.setattr(posterior, "accept_endmembers", spy)
    wl = np.linspace(420, 2400, 40)
    Y, E, A = scene(rows=12, cols=10, p=3, bands=40, snr=25)
    rec = {}
    for fitted in (False, True):
        seen.clear()
        r = refine(Y, E, A, abundance_prior=AbundanceModel(one_vs_rest), spectra_prior=load_spectra_prior(None),
                   wavelengths=wl, samples=2, steps=2, rounds=2, endmembers_fitted=fitted)
        pull = r.record["endmember_pull"]
        assert r.record["endmembers_fitted"] is fitted
        assert pull["fitted_allowance"] == pytest.approx(3 * 40 / 120 if fitted else 0.0)
        assert seen and all(t == pytest.approx(pull["excess_limit"] + pull["fitted_allowance"]) for t in seen)
        rec[fitted] = pull["excess_limit"]
    assert rec[True] == rec[False]


@pytest.mark.parametrize("device", ["auto", "gpu"])
def test_refine_resolves_its_device_before_any_work(one_vs_rest, device):
    """``device="auto"`` runs where the GPU is (CPU here), as every other call takes it; an
    unknown device is a `ParameterError` naming it, not torch's RuntimeError."""
    Y, E, A = scene(p=3)
    prior = AbundanceModel(one_vs_rest)
    if device == "auto":
        r = refine(Y, E, A, abundance_prior=prior, samples=2, steps=2, lam=1.0, device=device)
        assert r.abundances.shape == A.shape
    else:
        with pytest.raises(ParameterError, match="device"):
            refine(Y, E, A, abundance_prior=prior, samples=2, steps=2, device=device)


def test_refine_refuses_non_finite_endmembers_and_pixels_its_mask_marks_valid(one_vs_rest):
    """NaN in the init's endmembers, or in a pixel the given mask marks valid, is one clear
    `InputError`, not numpy's LinAlgError from the noise estimate."""
    Y, E, A = scene(p=3)
    prior = AbundanceModel(one_vs_rest)
    E_nan = E.copy()
    E_nan[0, 3] = np.nan
    with pytest.raises(InputError, match="init endmembers contain NaN"):
        refine(Y, E_nan, A, abundance_prior=prior, samples=2, steps=2)
    Y_nan = Y.copy()
    Y_nan[4, 5] = np.nan
    with pytest.raises(InputError, match=r"1 pixel .*mask"):
        refine(Y_nan, E, A, abundance_prior=prior, mask=np.ones(Y.shape[:2], bool), samples=2, steps=2)
    # without a mask the NaN pixel is an invalid one, as before
    r = refine(Y_nan, E, A, abundance_prior=prior, samples=2, steps=2, lam=1.0)
    assert np.isnan(r.abundances[4, 5]).all() and np.isfinite(r.abundances[0, 0]).all()


def test_refine_refuses_arrays_and_priors_of_the_wrong_kind(one_vs_rest):
    """A cube that is not (rows, cols, bands), wavelengths or FWHM of another length than the
    bands, and a prior given as its folder's path are each one clear error naming them, not
    numpy's ValueError or an AttributeError."""
    from unmixgen.priors.spectra.model import load_spectra_prior

    Y, E, A = scene(p=3, bands=20)
    prior = AbundanceModel(one_vs_rest)
    wl = np.linspace(450.0, 2400.0, 20)
    with pytest.raises(InputError, match=r"cube has shape \(120, 20\)"):
        refine(Y.reshape(-1, 20), E, A, abundance_prior=prior)
    with pytest.raises(ParameterError, match="abundance_prior"):
        refine(Y, E, A, abundance_prior=str(one_vs_rest))
    with pytest.raises(ParameterError, match="spectra_prior"):
        refine(Y, E, A, abundance_prior=prior, spectra_prior="spectra", wavelengths=wl)
    spectra = load_spectra_prior()
    with pytest.raises(InputError, match="wavelengths: 10 values for 20 bands"):
        refine(Y, E, A, abundance_prior=prior, spectra_prior=spectra, wavelengths=wl[:10])
    with pytest.raises(InputError, match="fwhm: 3 values for 20 bands"):
        refine(Y, E, A, abundance_prior=prior, spectra_prior=spectra, wavelengths=wl, fwhm=np.ones(3))


def coloured_scene(rows=16, cols=15, p=3, bands=20, seed=2, snr=25):
    """`scene` with noise whose std grows 30x from the first band to the last."""
    Y, E, A = scene(rows, cols, p, bands, seed)
    rng = np.random.default_rng(seed + 7)
    std = np.geomspace(1.0, 30.0, bands)
    level = np.sqrt(np.mean(Y**2) / 10 ** (snr / 10) / np.mean(std**2))
    return (Y + level * std * rng.standard_normal(Y.shape)).astype(np.float32), E, A, std


def test_refine_weighs_bands_by_their_noise_and_returns_endmembers_in_the_scenes_units(one_vs_rest):
    from unmixgen.unmix.inversion import fcls

    Y, E, A, std = coloured_scene()
    A0 = fcls(Y.reshape(-1, Y.shape[-1]), E).reshape(A.shape)
    prior = AbundanceModel(one_vs_rest)
    kw = dict(abundance_prior=prior, samples=2, steps=2, tile=16, lam=1.0)
    r = refine(Y, E, A0, **kw)
    bw = r.record["band_weights"]
    assert bw is not None and bw["noise_std_range"] > 10
    np.testing.assert_array_equal(r.endmembers, E)  # no spectra prior: the given ones, exactly
    assert r.record["mixing"]["model"] == "linear"  # weighted, the noise is not taken for brightness
    # the data's standard error of each band: larger where the band is noisier
    assert r.endmembers_std[:, -1].mean() > 5 * r.endmembers_std[:, 0].mean()
    plain = refine(Y, E, A0, band_weights=None, **kw)
    assert plain.record["band_weights"] is None
    truth = lambda X: np.sqrt(np.mean((X - A) ** 2))  # noqa: E731
    assert truth(r.abundances) < truth(plain.abundances)
    with pytest.raises(ParameterError, match="band_weights"):
        refine(Y, E, A0, band_weights="pink", **kw)


def test_the_weighted_spectra_representation_shows_the_prior_real_spectra():
    from unmixgen.priors.spectra.model import load_spectra_prior
    from unmixgen.refine.samplers import WeightedPrior

    prior = load_spectra_prior()
    wl = np.linspace(450.0, 2400.0, 60)
    E = np.stack([0.2 + 0.1 * np.sin(wl / 300.0), 0.5 - 0.1 * np.cos(wl / 200.0)]).astype(np.float32)
    w = np.geomspace(0.2, 5.0, 60).astype(np.float32)
    weighted = WeightedPrior(prior, w)
    x_w, bright_w, obs_w = weighted.rep.to_grid(E * w, wl)
    x, bright, obs = prior.rep.to_grid(E, wl)
    np.testing.assert_allclose(x_w, x, rtol=1e-5, atol=1e-6)
    srf = prior.rep.srf(wl, None)
    np.testing.assert_allclose(weighted.rep.from_grid(x, bright, srf), prior.rep.from_grid(x, bright, srf) * w,
                               rtol=1e-6)
    assert weighted.alphas_cumprod is prior.alphas_cumprod  # everything else is the prior's


def test_refine_names_band_weights_given_as_an_array():
    # invert_scene takes weights as an array; refine takes "noise" or None, and an array failed
    # with numpy's "truth value of an array is ambiguous" instead of naming the parameter
    Y, E, A, _ = coloured_scene()
    with pytest.raises(ParameterError, match="band_weights"):
        refine(Y, E, A, abundance_prior=None, band_weights=np.ones(Y.shape[-1], np.float32))


@pytest.mark.parametrize("basis", ["l2", "sum"])
def test_an_init_of_fractions_of_normalised_endmembers_is_refined_and_returned_as_such(one_vs_rest, basis):
    # the blind default's edaa gives fractions of E / |E|; refine read them as fractions of E and
    # returned those (Samson from the blind default: 1.43 -> 1.48 % instead of 1.36 %)
    from unmixgen.refine.mixing import rescaled_fractions
    from unmixgen.unmix.archetypal import endmember_brightness
    from unmixgen.unmix.inversion import scaled

    Yb, E, A, _ = bright_scene()
    A_raw = scaled(Yb.reshape(-1, Yb.shape[-1]), E).reshape(A.shape)
    b = endmember_brightness(E, basis)
    A_basis = rescaled_fractions(A_raw, b)
    prior = AbundanceModel(one_vs_rest)
    kw = {"abundance_prior": prior, "samples": 3, "steps": 2, "tile": 16, "seed": 4}
    raw = refine(Yb, E, A_raw, **kw)
    got = refine(Yb, E, A_basis, abundance_basis=basis, **kw)
    assert got.record["mixing"]["model"] == "scaled"
    b_out = endmember_brightness(raw.endmembers, basis)
    np.testing.assert_allclose(got.endmembers, raw.endmembers, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.abundances, rescaled_fractions(raw.abundances, b_out), atol=2e-5)
    np.testing.assert_allclose(got.abundance_samples, rescaled_fractions(raw.abundance_samples, b_out), atol=2e-5)
    # the brightness carries the new fractions' mixture onto the refined reconstruction
    rec = lambda r: r.brightness[..., None] * (r.abundances @ r.endmembers)  # noqa: E731
    assert np.abs(rec(got) - rec(raw)).mean() < 0.05 * np.abs(rec(raw)).mean()
    assert np.abs(got.abundances - raw.abundances).max() > 0.01  # the bases differ
    with pytest.raises(ParameterError, match="abundance_basis"):
        refine(Yb, E, A_basis, abundance_basis="max", **kw)


def test_refine_takes_a_dataarray_cube_by_its_dim_names(one_vs_rest):
    # np.asarray took rioxarray's (band, y, x) for (rows, cols, bands)
    xr = pytest.importorskip("xarray")
    Y, E, A = scene(rows=14, cols=16, p=3, bands=12, snr=25)
    da = xr.DataArray(np.moveaxis(Y, -1, 0), dims=("band", "y", "x"))
    kw = dict(abundance_prior=AbundanceModel(one_vs_rest), samples=2, steps=2, tile=16)
    np.testing.assert_array_equal(refine(da, E, A, **kw).abundances, refine(Y, E, A, **kw).abundances)
