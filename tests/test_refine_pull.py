"""The spectra prior's pull within the data's plane (`refine.pull`): the plane, the in-plane
move and its weight against exact constructions, and the discrepancy path with stand-in priors
whose clean estimate is known (the truth, a spectrum off the plane, a mixture inside)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from unmixgen.errors import ParameterError
from unmixgen.priors.spectra.representation import SpectralGrid
from unmixgen.refine.guard import residuals
from unmixgen.refine.pull import data_plane, in_plane_move, prior_pull
from unmixgen.simulate.procedural import abundance_maps
from unmixgen.unmix.inversion import fcls

pytestmark = pytest.mark.usefixtures("torch_one_thread")

WL = np.arange(400.0, 2451.0, 10.0)


def spectra(p: int, seed: int = 0) -> np.ndarray:
    """Smooth positive spectra (p, bands) on ``WL``: sums of broad Gaussian features."""
    rng = np.random.default_rng(seed)
    x = (WL - WL[0]) / (WL[-1] - WL[0])
    out = []
    for _ in range(p):
        s = 0.3 + 0.2 * rng.uniform() * x
        for _ in range(3):
            s = s + rng.uniform(-0.15, 0.25) * np.exp(-0.5 * ((x - rng.uniform()) / rng.uniform(0.05, 0.2)) ** 2)
        out.append(np.clip(s, 0.05, None))
    return np.asarray(out, np.float32)


def mixed_scene(E: np.ndarray, snr_db: float, seed: int = 0, size: int = 24) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = abundance_maps(size, size, len(E), rng, max_abundance=0.8).reshape(-1, len(E))
    Y = A @ E
    return (Y + rng.normal(0, np.sqrt(np.mean(Y ** 2) / 10 ** (snr_db / 10)), Y.shape)).astype(np.float32)


class StandIn:
    """A spectra prior whose clean estimate of every endmember is ``target`` (p, bands),
    whatever it is given: the attributes `prior_pull` and the sampler use."""

    def __init__(self, target: np.ndarray):
        self.rep = SpectralGrid()
        self.alphas_cumprod = np.cos(0.5 * np.pi * np.linspace(0.0, 0.98, 1000)) ** 2
        self.grid, _, _ = self.rep.to_grid(target, WL)

    def timestep_for_sigma(self, sigma: float) -> int:
        return int(np.argmin(np.abs(np.sqrt((1 - self.alphas_cumprod) / self.alphas_cumprod) - sigma)))

    def x0_estimate(self, xt: torch.Tensor, t: int) -> torch.Tensor:
        g = torch.from_numpy(self.grid)
        return g.repeat(xt.shape[0] // len(g), 1)[:, None, :]


def sad_deg(E: np.ndarray, F: np.ndarray) -> float:
    c = np.sum(E * F, 1) / np.linalg.norm(E, axis=1) / np.linalg.norm(F, axis=1)
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))).mean())


def pull(prior: StandIn, Y: np.ndarray, E0: np.ndarray, snr_db: float, tolerance: float = 0.15):
    sigma2 = float(np.mean(Y.astype(np.float64) ** 2) / 10 ** (snr_db / 10))  # the scene's noise, near enough
    r0 = float(residuals(Y, fcls(Y, E0), E0).mean())
    return prior_pull(prior, prior.rep.srf(WL), WL, Y, E0, r0, sigma2, tolerance, 0.3,
                      torch.Generator().manual_seed(0), draws=2)


def test_data_plane_holds_the_endmembers_of_noiseless_mixtures():
    E = spectra(4).astype(np.float64)
    Y = mixed_scene(E, snr_db=200)
    U = data_plane(Y, 4)
    c = Y.mean(axis=0, dtype=np.float64)
    assert U.shape == (len(WL), 3)
    np.testing.assert_allclose(U.T @ U, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(c + (E - c) @ U @ U.T, E, atol=1e-4)


def test_in_plane_move_is_whole_along_the_plane_and_none_across_it():
    rng = np.random.default_rng(1)
    B = 12
    U = np.linalg.qr(rng.normal(size=(B, 2)))[0]
    normal = rng.normal(size=(3, B))
    normal -= normal @ U @ U.T  # across the plane only
    # endmembers a little off the plane stay off it by as much: only the move is projected
    E0 = rng.normal(size=B) + rng.normal(size=(3, 2)) @ U.T + 0.1 * normal
    d = rng.normal(size=(3, 2)) @ U.T
    E, f = in_plane_move(E0, E0 + d, U)
    np.testing.assert_allclose(f, 1.0)
    np.testing.assert_allclose(E, E0 + d, atol=1e-12)
    E, f = in_plane_move(E0, E0 + normal, U)
    np.testing.assert_allclose(f, 0.0, atol=1e-20)
    np.testing.assert_allclose(E, E0, atol=1e-12)
    # half of the move's energy along the plane: f = 1/2, and the move is the along part halved
    scale = np.linalg.norm(d, axis=1, keepdims=True) / np.linalg.norm(normal, axis=1, keepdims=True)
    E, f = in_plane_move(E0, E0 + d + normal * scale, U)
    np.testing.assert_allclose(f, 0.5)
    np.testing.assert_allclose(E, E0 + 0.5 * d, atol=1e-12)
    E, f = in_plane_move(E0, E0, U)  # no move at all
    np.testing.assert_array_equal(E, E0)


def shrunk(E: np.ndarray, by: float) -> np.ndarray:
    """A simplex inside the true one: each vertex moved ``by`` towards the centroid."""
    return ((1 - by) * E + by * E.mean(0)).astype(np.float32)


def test_a_prior_that_knows_the_truth_pulls_a_shrunk_simplex_out_to_it():
    E = spectra(4)
    Y = mixed_scene(E, snr_db=25)
    E0 = shrunk(E, 0.2)
    Ep, info = pull(StandIn(E), Y, E0, 25)
    assert info["timestep"] > 0 and info["excess"] <= 0.15
    assert min(info["weights"]) > 0.9  # the truth lies in the data's plane
    assert sad_deg(Ep, E) < 0.35 * sad_deg(E0, E)  # what is left: the prior grid's interpolation


def test_a_prior_off_the_plane_moves_nothing_much():
    E = spectra(4)
    Y = mixed_scene(E, snr_db=25)
    E0 = shrunk(E, 0.2)
    U = data_plane(Y, 4)
    # what a prior of other materials wants: a large move across the data's plane, a small one along it
    across = spectra(4, seed=7) - spectra(4, seed=8)
    across -= across @ U @ U.T
    along = (E - E0) @ U @ U.T
    alien = (E0 + 0.2 * along + 0.05 * across / np.abs(across).max(1, keepdims=True)).astype(np.float32)
    _, f = in_plane_move(E0, alien, U)
    assert f.max() < 0.5
    Ep, info = pull(StandIn(alien), Y, E0, 25)
    assert info["timestep"] > 0  # taken, and small because of f (not refused)
    assert np.abs(Ep - E0).max() <= 0.5 * np.abs(0.2 * along).max()


def test_a_pull_the_data_see_is_refused():
    E = spectra(4)
    Y = mixed_scene(E, snr_db=45)
    inside = shrunk(E, 0.3)  # a prior wanting mixtures: the simplex shrinks into the data
    Ep, info = pull(StandIn(inside), Y, E, 45)
    assert info["timestep"] == 0
    np.testing.assert_array_equal(Ep, E)


def test_zero_tolerance_is_no_pull():
    E = spectra(3)
    Y = mixed_scene(E, snr_db=25)
    E0 = shrunk(E, 0.2)
    Ep, info = pull(StandIn(E), Y, E0, 25, tolerance=0.0)
    assert info["timestep"] == 0
    np.testing.assert_array_equal(Ep, E0)


def test_refine_refuses_a_negative_endmember_tolerance():
    from unmixgen.refine.posterior import refine

    with pytest.raises(ParameterError, match="endmember_tolerance"):
        refine(np.zeros((4, 4, 5), np.float32), np.ones((2, 5), np.float32), np.full((4, 4, 2), 0.5, np.float32),
               abundance_prior=None, endmember_tolerance=-1.0)


def test_the_pull_fades_out_as_the_noise_does():
    """The strongest pull's timestep follows the scene's noise (a real prior's clean estimate
    is then nearly its input), whatever the data would allow."""
    E = spectra(4)
    E0 = shrunk(E, 0.05)
    steps = [pull(StandIn(E), mixed_scene(E, snr_db=snr), E0, snr)[1]["timestep"] for snr in (15, 35, 60)]
    assert round(0.3 * 999) >= steps[0] > steps[1] > steps[2] > 0  # t0 caps them all
    assert steps[2] < 10


def test_refine_starts_from_the_pulled_endmembers_and_records_the_pull(tmp_path):
    from test_refine import tiny_prior
    from unmixgen.priors.abundance.model import AbundanceModel
    from unmixgen.refine.posterior import refine

    E = spectra(3)
    size = 16
    Y = mixed_scene(E, snr_db=25, size=size)
    E0 = shrunk(E, 0.15)
    A0 = fcls(Y, E0).reshape(size, size, 3)
    (tmp_path / "p2").mkdir()
    prior = AbundanceModel(tiny_prior(tmp_path / "p2", 2))
    r = refine(Y.reshape(size, size, -1), E0, A0, abundance_prior=prior, spectra_prior=StandIn(E), wavelengths=WL,
               samples=2, steps=2)
    rec = r.record["endmember_pull"]
    assert rec["timestep"] > 0
    default = inspect.signature(refine).parameters["endmember_tolerance"].default
    np.testing.assert_allclose(rec["excess_limit"], default * np.sqrt(2 * 2 / size ** 2))
    assert rec["excess"] <= rec["excess_limit"]
    assert r.record["guard"]["endmembers_kept"]
    assert sad_deg(r.endmembers, E) < 0.5 * sad_deg(E0, E)


def test_refine_keeps_the_endmembers_on_a_few_pixels(tmp_path):
    from test_refine import tiny_prior
    from unmixgen.priors.abundance.model import AbundanceModel
    from unmixgen.refine.posterior import refine

    E = spectra(3)
    Y = mixed_scene(E, snr_db=25, size=5)  # 25 pixels for 3 endmembers: no plane to trust
    E0 = shrunk(E, 0.15)
    (tmp_path / "p2").mkdir()
    prior = AbundanceModel(tiny_prior(tmp_path / "p2", 2))
    r = refine(Y.reshape(5, 5, -1), E0, fcls(Y, E0).reshape(5, 5, 3), abundance_prior=prior,
               spectra_prior=StandIn(E), wavelengths=WL, samples=2, steps=2)
    assert r.record["endmember_pull"]["timestep"] == 0
    # nor are they sampled: the endmembers come back as given
    assert not r.record["endmembers_refined"] and np.array_equal(r.endmembers, E0)


@pytest.mark.parametrize("snr, later", [(12, True), (40, False)])
def test_the_endmembers_start_as_far_out_as_the_noise_leaves_them(tmp_path, snr, later):
    """By default the spectra prior starts at t0 or, on a noisy scene, at the timestep whose
    noise is twice the pixels' relative to the endmembers (`noise_timestep`); an explicit
    ``spectra_t0`` replaces both."""
    from test_refine import tiny_prior
    from unmixgen.priors.abundance.model import AbundanceModel
    from unmixgen.refine.guard import init_fit
    from unmixgen.refine.posterior import refine
    from unmixgen.refine.pull import noise_timestep

    E = spectra(3)
    size = 16
    Y = mixed_scene(E, snr_db=snr, size=size)
    A0 = fcls(Y, E)
    (tmp_path / "p2").mkdir()
    prior = AbundanceModel(tiny_prior(tmp_path / "p2", 2))
    stand_in = StandIn(E)
    t_noise = noise_timestep(stand_in, E, WL, init_fit(Y, A0, E)["sigma2"]) / 999
    r = refine(Y.reshape(size, size, -1), E, A0.reshape(size, size, 3), abundance_prior=prior,
               spectra_prior=stand_in, wavelengths=WL, samples=2, steps=2, t0=0.3)
    assert (t_noise > 0.3) is later
    assert r.record["spectra_t0"] == pytest.approx(max(0.3, t_noise))
    assert r.record["spectra_timesteps"][0] == round(max(0.3, t_noise) * 999)
    assert r.record["timesteps"][0] == round(0.3 * 999)  # the abundances' start is t0 whatever the noise
    fixed = refine(Y.reshape(size, size, -1), E, A0.reshape(size, size, 3), abundance_prior=prior,
                   spectra_prior=stand_in, wavelengths=WL, samples=2, steps=2, t0=0.3, spectra_t0=0.2)
    assert fixed.record["spectra_timesteps"][0] == round(0.2 * 999)
    with pytest.raises(ParameterError, match="spectra_t0"):
        refine(Y.reshape(size, size, -1), E, A0.reshape(size, size, 3), abundance_prior=prior,
               spectra_prior=stand_in, wavelengths=WL, samples=2, steps=2, spectra_t0=1.5)


def test_the_samplers_endmembers_are_judged_with_the_pulls_allowance(tmp_path, monkeypatch):
    """Every decision on refined endmembers (the pull's and each round's sampler's) allows the
    same excess over the init's fit, ``excess_limit``: an init that is its own joint fit (a
    blind method's) leaves no room otherwise, and endmembers nearer the truth were refused."""
    import unmixgen.refine.posterior as post
    from test_refine import tiny_prior
    from unmixgen.priors.abundance.model import AbundanceModel

    E = spectra(3)
    size = 16
    Y = mixed_scene(E, snr_db=25, size=size)
    E0 = shrunk(E, 0.15)
    (tmp_path / "p2").mkdir()
    prior = AbundanceModel(tiny_prior(tmp_path / "p2", 2))
    seen = []
    real = post.accept_endmembers

    def spy(*args, tolerance=0.0, **kw):
        seen.append(tolerance)
        return real(*args, tolerance=tolerance, **kw)

    monkeypatch.setattr(post, "accept_endmembers", spy)
    r = post.refine(Y.reshape(size, size, -1), E0, fcls(Y, E0).reshape(size, size, 3), abundance_prior=prior,
                    spectra_prior=StandIn(E), wavelengths=WL, samples=2, steps=2, rounds=2, lam=1.0)
    limit = r.record["endmember_pull"]["excess_limit"]
    assert r.record["endmember_pull"]["excess"] < limit
    assert len(seen) == 3 and all(t == limit for t in seen)  # the pull's, then one per round
