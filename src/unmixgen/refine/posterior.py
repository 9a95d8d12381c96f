"""Posterior sampling of abundances and endmembers around an initial unmixing result.

First (when a spectra prior is given), the spectra prior pulls the initial endmembers within
the data's plane as far as the data allow (`pull.prior_pull`); all samples start from there.
Then for each of ``samples`` posterior samples (noise from seed ``(seed, k)``; the endmembers
kept are the samples' mean, so a sample also depends on how many there are), ``rounds`` times:

1. endmembers (when a spectra prior is given and the scene has wavelengths): the spectra on
   the prior's grid, noised to ``t0``, denoised for ``steps`` steps, each clean estimate
   brought back to the scene's bands (spectral response functions) and moved towards the
   least-squares fit to the current abundances (`data_steps.endmember_step`).
2. abundances: the initial maps, encoded for the 2D prior (`abundance_prior`), noised to
   ``t0`` and denoised for ``steps`` steps; after every step the prior's clean estimate is
   corrected by the closed-form data step (`data_steps.abundance_step`, weight
   ``mu = lam sigma^2 / s_t^2`` with ``s_t`` the prior's error level) and re-noised
   (`schedule.renoise`), under the sample's current endmembers. Maps leave every step on
   the simplex (projection). The weight ``lam`` is chosen per scene before the first
   abundance round, under the endmembers it refines under, by cross-validation across the
   odd and even bands (`cross_validated_weight`): how much a map prior knows depends on the
   maps' texture.

Where the pixels' brightness varies beyond linear mixing (``mixing``, `mixing.choose_mixing`), all
of this runs on pixels and endmembers divided by their band sums, where the scaled model
``y = s a E`` is linear (`mixing.BandSums`); the results are mapped back, with the brightness.

The samples give the posterior mean, standard deviation and 5 / 95 % quantiles; the guard
(`guard.guard`) then decides what of the mean is kept. The spread is the noise's and the
prior's given the returned endmembers: their own bias (an extraction from a scene without
pure pixels) is not in it. The whole canvas is denoised at
every step through the blended tiled denoiser (`unmixgen.priors.canvas`), so tile borders
see one consistent canvas.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError, ParameterError
from ..labelled import bands_last
from ..nn.device import resolve_device
from ..nn.seeds import sample_generators
from ..priors.abundance.model import AbundanceModel
from ..priors.spectra.model import SpectraModel
from ..unmix.archetypal import endmember_brightness
from ..unmix.inversion import fcls
from ..unmix.rank import band_noise_weights
from ..unmix.vertex_clusters import vertex_clusters
from . import schedule as sch
from .abundance_prior import TILE_OVERLAP, AbundancePriorAdapter
from .checks import check_arguments, check_inputs, check_memory, check_priors, sample_chunk
from .guard import accept_endmembers, guard, init_fit, init_is_least_squares
from .mixing import band_sums, choose_mixing, rescaled_fractions
from .prior_weight import CANDIDATES
from .samplers import AbundanceSampler, EndmemberSampler, WeightedPrior, cross_validated_weight


@dataclass
class Refined:
    """What `refine` returns. Maps are (rows, cols, p) float32 with NaN at invalid pixels;
    endmembers (p, bands) float32."""

    abundances: np.ndarray
    abundances_std: np.ndarray
    abundances_q05: np.ndarray
    abundances_q95: np.ndarray
    endmembers: np.ndarray
    endmembers_std: np.ndarray  # the samples' spread, or `endmember_standard_error` when they share one set
    abundance_samples: np.ndarray  # (K, rows, cols, p)
    pixels_kept: np.ndarray  # (rows, cols) bool: where the guard kept the refined abundances
    record: dict = field(default_factory=dict)
    # (rows, cols) float32, NaN at invalid pixels: each pixel's brightness ``s`` under the
    # scaled mixing model (the reconstruction is then ``s a E``), or None under the linear one
    brightness: np.ndarray | None = None


def _scatter(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(mask.shape, bool)
    out[mask] = values
    return out


def endmember_standard_error(A: np.ndarray, sigma2: float, bands: int) -> np.ndarray:
    """Standard error of least-squares endmembers given abundances ``A`` (N, p) under white
    noise of variance ``sigma2`` per band: ``sigma sqrt([(A^T A)^-1]_jj)``, the same in every
    band -> (p, bands). The noise-driven uncertainty the data leave on endmembers that were
    not sampled (a lower bound: it takes the abundances as known). An endmember with no
    abundance anywhere is not determined by the data: inf."""
    A = np.asarray(A, np.float64)
    G = A.T @ A
    d = np.diag(np.linalg.pinv(G, hermitian=True))
    d = np.where(np.diag(G) > 0, np.maximum(d, 0.0), np.inf)
    se = np.sqrt(max(float(sigma2), 0.0) * d)
    return np.repeat(se[:, None], bands, axis=1)


SECOND_ROUND_WEIGHT = 1.0  # measured: benchmarks/RESULTS.md, "A second alternation round"
WEIGHTED_ROUNDS = 8  # rounds at weights >= SECOND_ROUND_WEIGHT: RESULTS.md, "Eight short alternation rounds"


def _pure_clusters(Y: np.ndarray, A0: np.ndarray, E0: np.ndarray, endmember_tolerance: float,
                   endmembers_fitted: bool, partial: bool) -> tuple[dict, bool, bool, np.ndarray]:
    """`refine`'s rule for endmembers at clusters of pure pixels (see its ``spectra_prior`` and
    ``endmembers_fitted``), on the pixels ``Y`` (N, B) with the init ``A0`` (N, p), ``E0`` (p, B).

    Returns the `vertex_clusters` record, whether every endmember is pinned to its cluster's
    mean (``pinned``), whether given endmembers with a cluster at every vertex are held as
    given instead (``held_given``), and the clusters' means (p, B).
    """
    p = E0.shape[0]
    E_c, pure = vertex_clusters(Y, E0, partial=partial)
    pinned = len(pure["moved"]) == p
    held_given = False
    if pinned and not endmembers_fitted:
        # given endmembers are the user's spectra: their clusters may be mixtures' plateaus
        # (every material at 0.9), whose means sit inside the simplex and moved correct
        # spectra 1 deg off (RMSE +31 %). The means replace them only where the data cannot
        # tell their fit from the given spectra's (pure clusters: their FCLS answers are then
        # exact at the pure pixels) or prefer it (a library spectrum unlike the scene's
        # material); plateaus' means leave the pixels around them outside and fit worse, and
        # a cluster at every given vertex confirms the given spectra, held as given then
        tolerance = endmember_tolerance * float(np.sqrt(2.0 * (p - 1) / len(Y)))
        pinned = accept_endmembers(Y, A0, E0, E_c, tolerance=tolerance)["kept"]
        pure["given_replaced"] = pinned
        held_given = not pinned
    return pure, pinned, held_given, E_c


def _to_given_units(g: dict, out: np.ndarray, a_s: np.ndarray, e_std: np.ndarray, mask: np.ndarray, sums,
                    weights: np.ndarray | None, abundance_basis: str | None, E_given: np.ndarray, E_raw: np.ndarray,
                    refined: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """`refine`'s results from the data steps' model back to the caller's: from pixels divided
    by their band sums (``sums``, the scaled model) with a brightness per pixel, from bands
    weighted by ``weights``, and to fractions of the endmembers divided by their brightness
    (``abundance_basis``). ``g``: the guard's decision; ``out`` (rows, cols, p) and ``a_s``
    (K, rows, cols, p) the abundances kept and the samples (changed in place); ``e_std``
    (p, B); ``E_given`` / ``E_raw``: the init's endmembers under the model and as given;
    ``refined``: the endmembers returned are the guard's (refined or the clusters' means), not
    the given ones. Returns ``out, a_s, E_out, e_std, brightness`` ((rows, cols) or None).
    """
    E_out, bright = g["E"], None
    rows, cols = mask.shape
    if sums is not None:  # back to fractions of the given endmembers' scale, with the brightness
        bright = np.full((rows, cols), np.nan, np.float32)
        bright[mask] = sums.brightness(g["A"])
        out[mask] = sums.from_normalised(g["A"])
        a_s[:, mask] = sums.from_normalised(a_s[:, mask])
        # the clusters' means (pinned) or refined endmembers, at the given endmembers' scale
        E_out = g["E"] * sums.c[:, None] if refined else E_given
        e_std = e_std * sums.c[:, None]
    if weights is not None:  # back to the scene's units; endmembers not refined are the given ones
        E_out = E_out / weights if refined else E_raw
        e_std = e_std / weights
    if abundance_basis is not None:  # fractions of the returned endmembers -> of them divided by their brightness
        b_out = endmember_brightness(E_out, abundance_basis)
        a_raw = out[mask].astype(np.float64) if bright is not None else None
        out[mask] = rescaled_fractions(out[mask], b_out)
        a_s[:, mask] = rescaled_fractions(a_s[:, mask], b_out)
        if bright is not None:
            # the brightness that best carries the new fractions' mixture a' E onto the refined
            # one s a E, by least squares per pixel (a' E is no longer parallel to a E)
            G = np.asarray(E_out, np.float64) @ np.asarray(E_out, np.float64).T
            a_new = out[mask].astype(np.float64)
            num = np.einsum("nj,jk,nk->n", a_raw, G, a_new)
            den = np.einsum("nj,jk,nk->n", a_new, G, a_new)
            bright[mask] *= (num / np.maximum(den, 1e-30)).astype(np.float32)
    return out, a_s, E_out, e_std, bright


def refine(cube: np.ndarray, E0: np.ndarray, A0: np.ndarray, *, abundance_prior: AbundanceModel,
           spectra_prior: SpectraModel | None = None, mask: np.ndarray | None = None,
           wavelengths: np.ndarray | None = None, fwhm: np.ndarray | None = None, samples: int = 16,
           steps: int = 20, rounds: int | None = 1, t0: float = 0.3, spectra_t0: float | None = None,
           eta: float = 0.5, lam: float | None = None, ls_iterations: int = 2, endmember_tolerance: float = 5.0,
           endmembers_fitted: bool = False, guard_level: float = 0.9,
           spread: float = 1.0, tile: int = 64, tile_overlap: float = TILE_OVERLAP, seed: int = 0,
           mixing: str = "auto", band_weights: str | None = "noise", abundance_basis: str | None = None,
           pure_pins: bool = True, device: str = "cpu",
           progress: Callable[[int, int], None] | None = None) -> Refined:
    """Refine ``(E0, A0)`` on ``cube`` by posterior sampling; see the module doc.

    Parameters
    ----------
    cube : (rows, cols, bands) float32; mask : (rows, cols) bool valid pixels (None: finite).
    E0 : (p, bands); A0 : (rows, cols, p) the initial estimate.
    abundance_prior : a loaded 2D prior (one-vs-rest p = 2, or trained on this p).
    spectra_prior : a loaded 1D prior, or None to keep the endmembers (kept too on fewer than
        10 p valid pixels: they do not fix p x bands endmember values). Where every endmember
        has a cluster of pure pixels around it
        (`unmix.vertex_clusters.vertex_clusters`; under the scaled model among the pixels
        divided by their band sums), the endmembers become the clusters' means and are kept,
        with one round: the data fix them there. With ``pure_pins`` and ``endmembers_fitted``,
        under the linear model, endmembers that sit inside such a cluster while others have
        none are held at their clusters' means through the pull and the rounds
        (``record["pure_clusters"]["pinned"]``; not a vertex that is one of the pixels:
        `vertex_clusters` ``partial``): a dark material's spectrum below the noise (water) was
        otherwise fitted to the posterior mean's abundances, which sit inside the simplex at
        its pure pixels (benchmarks/RESULTS.md, "Holding some endmembers at their pure-pixel
        clusters"). ``pure_pins=False``: the all-or-none rule alone.
    wavelengths, fwhm : (bands,) nm of the scene; the spectra prior needs wavelengths.
    samples : K posterior samples; steps : denoising steps per round and prior.
    rounds : alternations endmembers -> abundances. The first runs the whole schedule from
        ``t0`` (and ``spectra_t0``); later ones part of it (`schedule.round_schedule`), from
        the maps and spectra the round before left: their endmembers are fitted to refined
        abundances, which moves endmembers extracted from the scene (blind, HybridSTU, VCA)
        further towards the truth. None: `WEIGHTED_ROUNDS` (8) rounds when the abundance prior's weight ``lam``
        (given or chosen) is at least `SECOND_ROUND_WEIGHT`, else one (a weakly weighted
        prior refines the maps too little for the endmembers fitted to them to gain). The
        default here is one round: a second costs about a third more time and loses accuracy
        from correct endmembers (benchmarks/RESULTS.md, "A second alternation round");
        ``unmixgen refine`` passes None when the init's endmembers were extracted from the
        scene (`unmixgen.workflows.refinement.endmember_origin`).
    t0 : starting noise level as a fraction of the training timesteps, in (0, 1].
    spectra_t0 : the endmembers' starting noise level (same units) for the spectra prior's
        pull and sampler; None: ``t0`` or, on noisy scenes, more: the timestep whose noise
        is twice the pixels' relative to the endmembers' brightness (`pull.noise_timestep`).
    eta : re-noising stochasticity in [0, 1].
    lam : weight of the abundance prior's estimate in the abundance data step (>= 0; the
        prior's error variance is taken as its noise level over ``lam``; 0: the data alone,
        every sample's FCLS abundances under its endmembers, with the least-squares posterior
        draw of ``spread``); None: chosen per
        scene among `prior_weight.CANDIDATES` by cross-validation across bands
        (`cross_validated_weight`; its runs count in ``progress``).
    ls_iterations : line-searched gradient steps of the endmember data step.
    endmember_tolerance : how much worse than the init's the fit of refined endmembers may
        be, in standard errors of a mean excess residual over the ``N`` valid pixels
        (``sqrt(2 (p - 1) / N)`` noise variances per pixel: the more pixels, the better the
        data fix the endmembers and the less the prior may move them). It bounds the spectra
        prior's pull within the data's plane (`pull.prior_pull`, before the sampling) and the
        sampler's endmembers (benchmarks/RESULTS.md, "The sampler's endmembers get the pull's
        allowance"). 0: no pull, and refined
        endmembers are kept only when they fit no worse than the init's (with the allowance of
        ``endmembers_fitted``). The default (5) lets
        noisy scenes take the pull's full step, which the scene's noise already caps
        (benchmarks/RESULTS.md, "The pull's tolerance").
    endmembers_fitted : the init's endmembers were extracted from these pixels (a blind
        method, VCA, HybridSTU on such endmembers). ``p x bands`` values chosen on ``N`` pixels
        fit their noise by about ``p bands / N`` noise variances per pixel better than the
        materials' spectra would, so refined endmembers may fit that much worse before they
        are refused (the rounds' and the pull's acceptance; the pull's own step keeps
        ``endmember_tolerance``). Without it, with many endmembers or few pixels every round
        was refused, although its endmembers were nearer the truth (benchmarks/RESULTS.md,
        "Refined endmembers against an init fitted to the same pixels"). For given endmembers
        (False: a library, a field campaign), a cluster of pixels at every given vertex
        replaces them by the clusters' means only when those fit no worse (the acceptance of
        ``endmember_tolerance``), else it holds them as given: plateaus of mixtures pass for
        pure clusters, and their means had moved correct spectra 1 deg off
        (benchmarks/RESULTS.md, "Given endmembers and clusters at every vertex").
    spread : scale of the final posterior draw of every abundance sample
        (`data_steps.posterior_draw`, standard deviations); 0 ends on the last step's mean.
    guard_level : confidence level of the guard's per-pixel region (`guard.guard`), in (0, 1).
    tile, tile_overlap : the abundance prior runs on canvases larger than ``tile`` px in blended
        tiles overlapping by at least ``tile_overlap`` of a tile, in [0, 1)
        (`abundance_prior.TILE_OVERLAP`).
    mixing : "auto", "linear" or "scaled": the mixing model of the data steps (`mixing`). Under
        "scaled" (by "auto" when the pixels' brightness varies beyond linear mixing) pixels and
        endmembers are refined divided by their band sums (`mixing.BandSums`), the results are
        mapped back and ``Refined.brightness`` holds each pixel's brightness; an init that is
        a least-squares fit of the raw pixels (FCLS) then starts from the divided pixels'
        FCLS answer.
    band_weights : "noise" or None. ``"noise"``: where the scene's noise differs between bands
        (`unmix.rank.band_noise_weights`: real sensors' differs 10-50x), every data step, the
        mixing model's choice and the guard see pixels and endmembers multiplied by ``1 / noise
        std`` per band, where the noise is white as they assume; the spectra prior still sees
        real spectra (`WeightedRep`), and the endmembers are returned in the scene's units.
        About white noise is not weighted. None: every band alike.
    abundance_basis : None, "l2" or "sum": ``A0`` holds fractions of the endmembers divided by
        their brightness (l2 norm or band sum; the blind default's edaa under brightness
        variation, `unmix.archetypal.normalised_fractions`), not of ``E0`` as given. They are
        refined as fractions of ``E0`` and returned, samples included, as fractions of the
        returned endmembers divided by theirs; a returned brightness is then the per-pixel
        least-squares scale of those fractions' mixture onto the refined reconstruction.
    device : "auto", "cpu" or "cuda" (`unmixgen.nn.device.resolve_device`); the priors must be
        loaded on the device it resolves to (``load_model(folder, device="auto")`` with "auto").
    progress : called as ``progress(done, total)`` after every step.
    """
    check_arguments(samples=samples, steps=steps, rounds=rounds, mixing=mixing, band_weights=band_weights,
                     seed=seed, eta=eta, lam=lam, ls_iterations=ls_iterations,
                     endmember_tolerance=endmember_tolerance, spread=spread, tile=tile, tile_overlap=tile_overlap,
                     guard_level=guard_level, spectra_t0=spectra_t0, abundance_basis=abundance_basis)
    device = resolve_device(device)  # "auto" -> where the GPU is; torch takes no "auto"
    check_priors(abundance_prior, spectra_prior, device)
    T = int(abundance_prior.config["schedule"]["num_train_timesteps"])
    ts = sch.timesteps(t0, steps, T)
    cube = np.asarray(bands_last(cube, 2, "cube"), np.float32)  # a DataArray laid out by its dim names
    E0 = np.asarray(E0, np.float32)
    A0 = np.asarray(A0, np.float32)
    finite = np.all(np.isfinite(cube), axis=-1)  # (rows, cols): one pass, the default mask and its check
    mask = finite if mask is None else np.asarray(mask, bool)
    mask = check_inputs(cube, E0, A0, mask, finite)
    for name, values in (("wavelengths", wavelengths), ("fwhm", fwhm)):
        if values is not None and np.size(values) != cube.shape[2]:
            raise InputError(f"{name}: {np.size(values)} values for {cube.shape[2]} bands; expected one per band "
                             "of the cube")
    check_memory(samples, mask.size, E0.shape[0])
    rows, cols, B = cube.shape
    p = E0.shape[0]
    adapter = AbundancePriorAdapter(abundance_prior, p, tile=tile, overlap=tile_overlap)
    if spectra_prior is not None and wavelengths is None:
        raise ParameterError("spectra_prior", str(spectra_prior.model_dir), "needs the scene's wavelengths; "
                             "this scene has none")
    # p x bands endmember values are not fixed by a handful of pixels: kept as given then
    use_spectra = spectra_prior is not None and int(mask.sum()) >= 10 * p
    t_start = time.perf_counter()
    Yv_np = cube[mask]  # a copy: weighted in place below
    A0c = np.where(mask[..., None], A0, 1.0 / p).astype(np.float32)
    E_raw = E0
    if abundance_basis is not None:  # fractions of E0 / |E0| -> of E0 (the data steps' model)
        A0c[mask] = rescaled_fractions(A0c[mask], 1.0 / endmember_brightness(E_raw, abundance_basis))
    weights = band_noise_weights(Yv_np, seed=seed) if band_weights == "noise" else None
    weighted_start = False
    if weights is not None:  # from here on every data step sees weighted bands, where the noise is white
        # an init that is a least-squares fit of the raw pixels (FCLS) weighed every band alike:
        # it starts from the weighted pixels' FCLS answer instead, as under the scaled model
        raw_ls = init_is_least_squares(Yv_np, E0, init_fit(Yv_np, A0c[mask], E0))
        Yv_np *= weights
        E0 = (E0 * weights).astype(np.float32)
        if raw_ls:
            A0c[mask] = fcls(Yv_np, E0)
            weighted_start = True
        if use_spectra:
            spectra_prior = WeightedPrior(spectra_prior, weights)
    endm = EndmemberSampler(spectra_prior, wavelengths, fwhm, ls_iterations, eta, device) if use_spectra else None
    model, mixing_record = choose_mixing(Yv_np, p, mixing, seed=seed)
    divide_by = None  # (rows, cols) what the cube's pixels are divided by (the scaled model)
    sums = band_sums(Yv_np, E0) if model == "scaled" else None
    E_given = E0
    if model == "scaled" and sums is None:
        mixing_record["model"] = "linear"
        mixing_record["note"] = ("an endmember's band sum is not positive or near 0 beside the others', or the "
                                  "pixels' median band sum is not positive: the linear model is kept")
    if sums is not None:
        # an init that is a least-squares fit of the raw pixels (FCLS) modelled no brightness:
        # it starts from the divided pixels' FCLS answer instead; any other (a blind method or
        # HybridSTU that modelled it) starts as it is
        linear_init = init_is_least_squares(Yv_np, E0, init_fit(Yv_np, A0c[mask], E0))
        # from here on the data steps see the divided pixels and endmembers, where the linear
        # model holds (the caller's cube stays as given)
        Yv_np = Yv_np / sums.t[:, None].astype(np.float32)  # float32: no float64 copy of the pixels
        E0 = (E0 / sums.c[:, None]).astype(np.float32)
        divide_by = np.ones((rows, cols), np.float32)
        divide_by[mask] = sums.t
        A0c[mask] = fcls(Yv_np, E0) if linear_init else sums.to_normalised(A0c[mask])
        mixing_record["start"] = "scaled" if linear_init else "init"
        mixing_record["residuals_of"] = "pixels divided by their band sums"  # the guard's and noise_sigma2
    # endmembers that sit at clusters of pure pixels are fixed by the data: the spectra prior's
    # pull and the rounds expand a simplex, as they should where no pixel is pure, and there
    # they would move the endmembers off the pixels (benchmarks/RESULTS.md, "Pure-pixel clusters")
    # where only some endmembers have such a cluster, those are held at its mean while the
    # others are refined (see the docstring, ``pure_pins``)
    pure, pinned, E_pin, held_given = None, False, None, False
    if endm is not None:  # under the scaled model among the divided pixels, where brightness is out
        # some vertices only for endmembers fitted to these pixels (given ones, a library, are
        # not moved onto a cluster that may be a mixture's plateau) under the linear model: the
        # scaled model's archetypes lie inside the data, at mixtures' plateaus as readily
        pure, pinned, held_given, E_c = _pure_clusters(Yv_np, A0c[mask], E0, endmember_tolerance, endmembers_fitted,
                                                       partial=pure_pins and endmembers_fitted and sums is None)
        if held_given:
            endm, rounds = None, 1
        if pinned:
            E0 = E_c  # the clusters' means (an init's noisy pure-pixel picks move onto them)
            A0c[mask] = fcls(Yv_np, E0)
            endm = None
            rounds = 1
        elif pure["moved"]:
            E_pin = E_c
    Yv = torch.from_numpy(Yv_np).to(device)
    valid = torch.from_numpy(mask).to(device)
    base = init_fit(Yv_np, A0c[mask], E0)  # the init's residuals and the noise, for every decision below
    if mixing_record.get("start") == "scaled" or pinned or (weighted_start and sums is None):
        # the start is an FCLS fit: no second FCLS
        base.update(r_ls=float(base["r0"].mean()), init_is_ls=True)
    sigma2 = base["sigma2"]
    ts_e: list[int] = []  # the endmember sampler's timesteps (none without one)
    if endm is None:
        spectra_t0 = None
    else:
        T_e = len(endm.prior.alphas_cumprod)
        t_noise = endm.noise_timestep(E0, sigma2)
        if spectra_t0 is None:
            # on noisy scenes the endmembers start as far out as the scene's noise leaves them open
            spectra_t0 = max(t0, t_noise / (T_e - 1))
        ts_e = sch.timesteps(spectra_t0, steps, T_e)
    gens = sample_generators(seed, 0, samples)
    A = torch.from_numpy(A0c).permute(2, 0, 1)[None].repeat(samples, 1, 1, 1).to(device)
    E = torch.from_numpy(E0)[None].repeat(samples, 1, 1).to(device)
    # the abundance sampler runs a chunk of samples at a time: its working copies then scale
    # with the chunk, not with all samples (a sample depends only on its own noise stream)
    chunk = sample_chunk(samples, mask.size, p)  # the sampler works on the whole canvas
    n_chunks = -(-samples // chunk)

    def schedules(r: int) -> tuple[list[int], list[int]]:
        """The abundance and endmember timesteps of round ``r`` (0-based)."""
        return sch.round_schedule(ts, r), sch.round_schedule(ts_e, r)

    def n_rounds(weight: float | None) -> int:
        """The rounds to run: ``rounds`` when given, else by the prior's weight
        (`WEIGHTED_ROUNDS` while it is still to be chosen)."""
        if rounds is not None:
            return rounds
        return WEIGHTED_ROUNDS if weight is None or weight >= SECOND_ROUND_WEIGHT else 1

    def steps_total(weight: float | None, cv_steps: int) -> int:
        """Progress steps of the sampling rounds plus ``cv_steps`` of the weight's choice."""
        return cv_steps + sum((len(schedules(r)[0]) - 1) * n_chunks + (len(schedules(r)[1]) - 1 if endm else 0)
                              for r in range(n_rounds(weight)))

    # the weight 0 (the data alone) runs no refinement in the cross-validation
    total = steps_total(lam, 2 * sum(c > 0 for c in CANDIDATES) * steps if lam is None else 0)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    weight: dict = {"chosen": lam, "note": "given"}
    abund: AbundanceSampler | None = None  # made once the weight is known
    A_e = A[:, :, valid].transpose(1, 2)  # the abundances the first endmember update fits to
    # the endmembers returned and their `accept_endmembers` decision for the guard (None: E0)
    E_point, decision = E0, None
    sampled = False  # whether the samples carry endmembers of their own (the sampler's kept)
    pulled = {"timestep": 0, "excess": 0.0}
    # (an init that is not a least-squares fit keeps its endmembers: the guard refuses refined
    # ones for it)
    pins = None  # the pinned endmembers for the sampler: (fixed (p,) bool, values (p, B))
    if endm is not None and init_is_least_squares(Yv_np, E0, base):
        excess_limit = endmember_tolerance * float(np.sqrt(2.0 * (p - 1) / len(Yv_np)))
        # what an init fitted to these pixels gained on their noise (0 for given endmembers)
        allowance = p * Yv_np.shape[1] / len(Yv_np) if endmembers_fitted else 0.0
        E_from, fixed, r_from, pin_excess = E0, None, float(base["r0"].mean()), 0.0
        if E_pin is not None:
            d = accept_endmembers(Yv_np, A0c[mask], E0, E_pin, base=base, tolerance=excess_limit + allowance)
            pure["pinned"] = pure["moved"] if d["kept"] else []
            if d["kept"]:
                fixed = np.zeros(p, bool)
                fixed[pure["moved"]] = True
                E_from, E_point, decision = E_pin, E_pin, d
                pins = (torch.from_numpy(fixed).to(device), torch.from_numpy(E_pin).to(device))
                E = torch.from_numpy(E_pin)[None].repeat(samples, 1, 1).to(device)
                A_e = torch.from_numpy(d["A"])[None].repeat(samples, 1, 1).to(device)
                # the pinned set is the new baseline: the pull and the rounds are judged by how
                # much worse than it they fit (its own excess over the init is the init's fit to
                # the noise of its pure pixels, which their mean averages out)
                r_from = float(d["r"].mean())
                pin_excess = max((r_from - float(base["r0"].mean())) / sigma2, 0.0)
        E_p, pulled = endm.pull(Yv_np, E_from, r_from, sigma2, excess_limit, spectra_t0, t_noise, seed, fixed=fixed)
        pulled["excess_limit"] = excess_limit
        pulled["fitted_allowance"] = allowance
        if pins is not None:
            pulled["pinned_excess"] = pin_excess
        if pulled["timestep"]:
            E_point = E_p
            decision = accept_endmembers(Yv_np, A0c[mask], E0, E_p, base=base,
                                         tolerance=excess_limit + pulled["fitted_allowance"] + pin_excess)
            E = torch.from_numpy(E_p)[None].repeat(samples, 1, 1).to(device)
            # the sampler's endmembers are fitted to the FCLS abundances of the pulled ones
            A_e = torch.from_numpy(decision["A"])[None].repeat(samples, 1, 1).to(device)
    # the sampler's endmembers get the pull's allowance: a fit the data cannot tell from the
    # init's (the init's own joint fit, e.g. a blind method's, would otherwise refuse every
    # move, also towards the truth)
    tol = pulled.get("excess_limit", 0.0) + pulled.get("fitted_allowance", 0.0) + pulled.get("pinned_excess", 0.0)
    r = 0
    while r < n_rounds(lam):
        ts_a, ts_en = schedules(r)
        # endmembers first: the abundances are then refined under the endmembers they are
        # returned with (the guard measures the pair together)
        if endm is not None:
            E_new = endm.run(E, A_e, Yv, ts_en, gens, tick, pins=pins)
            # decided before the abundances are refined under them: abundances matched to
            # endmembers the guard later rejects would not be matched to the ones returned
            e_new = E_new.cpu().numpy().astype(np.float32).mean(axis=0)
            d = accept_endmembers(Yv_np, A0c[mask], E0, e_new, tolerance=tol, base=base)
            if d["kept"]:
                E, E_point, decision = E_new, e_new, d
                sampled = True
        if abund is None:
            if lam is None:
                # cross-validated under the endmembers the abundances are refined under: with
                # biased init endmembers the halves' FCLS answers share their bias, which the
                # pulled or sampled endmembers have less of
                cv_start = done[0]
                lam, weight = cross_validated_weight(adapter, cube, mask, np.asarray(E_point, np.float32), sigma2,
                                                      ts, eta, seed, device, samples, tick, divide_by, weights)
                # the rounds may depend on the weight chosen; the choice may have run no
                # refinement at all (too few pixels or bands)
                total = steps_total(lam, done[0] - cv_start)
            abund = AbundanceSampler(adapter, lam, eta, spread, device)
        for k in range(0, samples, chunk):  # in place: no second copy of every sample's maps
            A[k:k + chunk] = abund.run(A[k:k + chunk], E[k:k + chunk], Yv, valid, sigma2, ts_a, gens[k:k + chunk],
                                       tick)
        A_e = A[:, :, valid].transpose(1, 2)
        r += 1
    # the point estimate is the mean of the samples' clean estimates; the spread (std, quantiles)
    # comes from the samples with their final posterior draw
    a_mean = A.mean(dim=0).permute(1, 2, 0).cpu().numpy().astype(np.float32)
    A = abund.draw(A, E, valid, sigma2, ts, gens)
    a_s = A.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)  # (K, rows, cols, p)
    e_s = E.cpu().numpy().astype(np.float32)
    # divided by their band sums, dark pixels carry more noise than bright ones
    scale = None if sums is None else (float(np.median(sums.t)) / sums.t) ** 2
    g = guard(Yv_np, A0c[mask], E0, a_mean[mask], E_point, level=guard_level, accepted=decision, base=base,
              noise_scale=scale)
    e_kept = bool(endm) and g["endmembers_kept"] and not np.array_equal(g["E"], E0)
    # the samples' spread when they carry their own endmembers; otherwise they all share one
    # set (the init's or the pulled one) and what is known of it is the data's standard error
    e_sampled = e_kept and sampled  # the guard keeps E0 or E_point, the sampler's mean then
    e_std = e_s.std(axis=0) if e_sampled else endmember_standard_error(g["A"], g["sigma2"], B)
    r_bright = base.get("r_brightness")  # computed when refined endmembers were judged
    out = np.full((rows, cols, p), np.nan, np.float32)
    out[mask] = g["A"]
    # the guard's shrink towards its centre applied to every sample too
    s = np.zeros((rows, cols), np.float32)
    s[mask] = g["shrink"]
    base = A0c.copy()
    base[mask] = g["A_base"]
    a_s = (base[None] + s[None, ..., None] * (a_s - base[None])).astype(np.float32)
    out, a_s, E_out, e_std, bright = _to_given_units(g, out, a_s, e_std, mask, sums, weights, abundance_basis,
                                                     E_given, E_raw, refined=e_kept or pinned)

    def stat(v: np.ndarray) -> np.ndarray:
        return np.where(mask[..., None], v, np.nan).astype(np.float32)

    record = {"samples": samples, "steps": steps, "rounds": r, "rounds_from": "pure-pixel clusters" if pinned or held_given else "given" if rounds else "prior weight",
              "t0": t0, "timesteps": ts, "later_round_timesteps": [sch.round_schedule(ts, k) for k in range(1, r)],
              "spectra_t0": spectra_t0, "spectra_timesteps": ts_e, "eta": eta,
              "lam": lam, "prior_weight": weight, "ls_iterations": ls_iterations, "endmember_tolerance": endmember_tolerance,
              "endmembers_fitted": endmembers_fitted,
              "endmember_pull": pulled, "guard_level": guard_level, "spread": spread, "prior_mode": adapter.mode,
              "endmembers_refined": bool(endm), "pure_clusters": pure, "noise_sigma2": g["sigma2"], "mixing": mixing_record,
              "band_weights": None if weights is None else {
                  "noise_std_range": float(weights.max() / weights.min()),
                  "start": "weighted least squares" if weighted_start else "init",
                  "note": "noise_sigma2 and the guard's residuals are of pixels weighted by 1 / noise std per band"},
              "endmembers_std_from": "samples" if e_sampled else "least_squares_standard_error",
              "guard": {"endmembers_kept": e_kept,
                        "pixels_kept_fraction": float(g["pixels_kept"].mean()),
                        "mean_shrink": float(g["shrink"].mean()),
                        "residual_init": g["residual_init"], "residual_refined": g["residual_refined"],
                        "residual_final": g["residual_final"],
                        # the init's endmembers with a free brightness per pixel: refined
                        # endmembers that fit worse so are refused
                        "residual_brightness": r_bright},
              "seconds": time.perf_counter() - t_start}
    return Refined(abundances=out, abundances_std=stat(a_s.std(axis=0)),
                   abundances_q05=stat(np.quantile(a_s, 0.05, axis=0)),
                   abundances_q95=stat(np.quantile(a_s, 0.95, axis=0)),
                   endmembers=E_out.astype(np.float32),
                   endmembers_std=e_std.astype(np.float32),
                   pixels_kept=_scatter(mask, g["pixels_kept"]),
                   abundance_samples=np.where(mask[None, ..., None], a_s, np.nan).astype(np.float32),
                   record=record, brightness=bright)
