"""Refinement benchmark: init vs refined unmixing on simulated USGS scenes, uncertainty
calibration, the spectra prior's denoising against the empirical-library MMSE denoiser and
the per-pixel MLP prior (`spectra_mlp_baseline`), and the 100x100 timing. Prints markdown tables.

    PYTHONPATH=src python benchmarks/refine.py --size 32 --seeds 3 --samples 16 --steps 10
    PYTHONPATH=src python benchmarks/refine.py --timing-only --threads 1   # the 100x100 timing alone
    PYTHONPATH=src python benchmarks/refine.py --denoising-only   # the spectra denoising table alone

The suite is fixed: seeds 0..seeds-1 per SNR (maps from rng 100 + seed, noise from seed),
inits per scene chosen by ``--inits`` (default: VCA + FCLS, FCLS with the true endmembers;
also ``auto``: the blind default, and ``stu``: HybridSTU with the blind default's
endmembers, ``--stu-steps`` training steps); a summary table gives the mean relative change
of RMSE and SAD per SNR and init over the seeds.

    PYTHONPATH=src python benchmarks/refine.py --size 32 --seeds 3 --inits auto,stu   # the other inits
    PYTHONPATH=src python benchmarks/refine.py --size 32 --seeds 3 --spearman-bound-only   # what Spearman can reach
    PYTHONPATH=src python benchmarks/refine.py --size 32 --seeds 3 --wiener-bound-only   # what a linear filter gains
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from unmixgen.evaluate.unmixing import evaluate, match_endmembers
from unmixgen.priors.abundance.model import AbundanceModel
from unmixgen.priors.spectra.model import load_spectra_prior
from unmixgen.refine.mixing import MIXING
from unmixgen.refine.posterior import WEIGHTED_ROUNDS, refine
from unmixgen.runs.endmembers import load_library_spectra
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import abundance_maps
from unmixgen.simulate.scene import simulate
from unmixgen.unmix.archetypal import abundance_basis
from unmixgen.unmix.extraction import vca
from unmixgen.unmix.hybridstu import HybridSTU
from unmixgen.unmix.inversion import fcls
from unmixgen.unmix.registry import DEFAULT_METHOD, make_method
from unmixgen.workflows.refinement import DEFAULT_ABUNDANCE_PRIOR, _shipped

LIB = "../shared/data/usgs_library/USGS_1995_Library.mat"
NAMES = ["Alunite", "Kaolinite", "Muscovite", "Calcite"]
# sets of four spectra the shipped spectra prior never saw (its holdout.npz); the default
# set's Alunite GDS84 is held out too, the other three were in its training data
HELD_OUT = {"minerals": ["Jarosite GDS24", "Montmorillonite SWy-1", "Hematite FE2602", "Talc TL2702"],
            "grass": ["Lawn_Grass", "Olivine GDS70.a", "Pyrophyllite SU1421", "Desert_Varnish"],
            "leaf": ["Walnut_Leaf", "Goethite WS222", "Illite IL105", "Epidote GDS26"]}


# the suite's map families: keyword arguments of `procedural.abundance_maps`; all but "pure"
# without pure pixels (max_abundance < 1); "procedural" is the suite's historical default.
# "pure" has wide pure regions, as many real scenes do (water, fields, roofs)
MAPS = {"procedural": {"purity": 2.0, "max_abundance": 0.8},
        "rough": {"smoothness": 2.5, "purity": 3.0, "max_abundance": 0.8},
        "regions": {"smoothness": 3.0, "purity": 2.0, "regions": 8, "max_abundance": 0.85},
        "sharp": {"smoothness": 3.5, "purity": 6.0, "max_abundance": 0.9},
        "pure": {"smoothness": 3.5, "purity": 8.0},
        # per-pixel Dirichlet(1, ..., 1) draws, no pixel above 0.8: no spatial structure at all,
        # the field's classic simulation (what a map prior cannot help with)
        "dirichlet": {"dirichlet": 1.0, "max_abundance": 0.8}}


def dirichlet_maps(rows: int, cols: int, p: int, rng: np.random.Generator, dirichlet: float,
                   max_abundance: float) -> np.ndarray:
    """``(rows, cols, p)`` float32 per-pixel Dirichlet(``dirichlet``) abundances, each pixel drawn
    again until no abundance exceeds ``max_abundance`` (no pure pixels)."""
    n, out = rows * cols, []
    while sum(len(a) for a in out) < n:
        a = rng.dirichlet(np.full(p, dirichlet), size=2 * n)
        out.append(a[a.max(1) <= max_abundance])
    return np.concatenate(out)[:n].reshape(rows, cols, p).astype(np.float32)


def calibration(samples: np.ndarray, truth: np.ndarray) -> dict:
    """Coverage of central 50 / 90 % intervals, Spearman(std, |error|), ensemble CRPS."""
    s = samples.reshape(samples.shape[0], -1)
    y = truth.reshape(-1)
    out = {}
    for level in (50, 90):
        lo, hi = np.quantile(s, [(100 - level) / 200, 1 - (100 - level) / 200], axis=0)
        out[f"cov{level}"] = float(np.mean((y >= lo - 1e-6) & (y <= hi + 1e-6)))
    mean, std = s.mean(0), s.std(0)
    out["spearman"] = float(spearmanr(std, np.abs(mean - y)).statistic)
    crps = np.mean(np.abs(s - y), 0) - 0.5 * np.mean(np.abs(s[:, None] - s[None]), axis=(0, 1))
    out["crps"] = float(crps.mean())
    return out


def spearman_bound(em, snrs: list[float], seeds: int, draws: int = 64, size: int = 32) -> None:
    """Print what Spearman(std, |error|) an oracle reaches: per abundance entry, the true RMS
    error of FCLS with the true endmembers over ``draws`` independent noise draws of the suite's
    scene, against the |error| of one further draw. No uncertainty estimate can know more
    about an entry's error than its true spread, so this bounds the suite's Spearman target
    for noise-driven errors."""
    print(f"\noracle Spearman: true per-entry RMS error over {draws} noise draws vs |error| of another draw "
          "(FCLS, true endmembers)")
    print("| SNR | " + " | ".join(f"seed {s}" for s in range(seeds)) + " |")
    print("|---|" + "---|" * seeds)
    for snr in snrs:
        row = []
        for seed in range(seeds):
            At = abundance_maps(size, size, 4, np.random.default_rng(100 + seed), purity=2.0, max_abundance=0.8)
            est = []
            for k in range(draws + 1):
                Y = np.asarray(simulate(At, em.spectra, wavelengths=em.wavelengths, snr_db=snr,
                                        seed=1000 * seed + k)[0].to_scene().load(), np.float32)
                est.append(fcls(Y.reshape(-1, Y.shape[-1]), em.spectra).reshape(-1))
            est = np.asarray(est)
            y = At.reshape(-1)
            sigma = np.sqrt(np.mean((est[1:] - y) ** 2, axis=0))
            row.append(float(spearmanr(sigma, np.abs(est[0] - y)).statistic))
        print(f"| {snr:g} | " + " | ".join(f"{v:.2f}" for v in row) + " |", flush=True)


def suite_scene(em, rows: int, cols: int, maps: dict, snr: float, seed: int,
                variability: float | None = None, noise: str = "flat", derived: str = "", outliers: str = "",
                resample: str = "", resample_angle: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """The suite's scene ``seed`` at ``snr`` dB: true maps (rows, cols, p) from rng 100 + seed
    (`procedural.abundance_maps` with ``maps``) and the float32 cube (rows, cols, bands) with
    noise from ``seed``, the same in every band (``noise="flat"``) or spread over the bands like
    a sensor's (``"sensor"``: `semiblind.sensor_noise_profile`); ``derived``: some bands made from
    others as products do (`blind_suite.derive_bands`); ``outliers``: 0.25 % of the pixels saturated or spiked
    (`blind_suite.add_outliers`); ``resample``: a map-grid product (`semiblind.map_grid`, turned
    ``resample_angle`` degrees; its maps and cube alike): a larger sensor image is simulated and
    the central ``rows x cols`` of the map grid, inside the swath, kept."""
    if resample:
        from semiblind import map_grid

        t = np.deg2rad(resample_angle)
        side = int(np.ceil(max(rows, cols) * (np.cos(t) + abs(np.sin(t))))) + 3
        At, Y = suite_scene(em, side, side, maps, snr, seed, variability, noise, derived, outliers)
        Y, At = map_grid([Y, At], resample_angle, resample)
        r0, c0 = (Y.shape[0] - rows) // 2, (Y.shape[1] - cols) // 2
        Y, At = Y[r0:r0 + rows, c0:c0 + cols], At[r0:r0 + rows, c0:c0 + cols]
        if not np.isfinite(Y).all():
            raise AssertionError("the crop reaches outside the swath")
        return np.clip(At, 0, None) / np.clip(At, 0, None).sum(-1, keepdims=True), np.ascontiguousarray(Y)
    band_std = None
    if noise == "sensor":
        from semiblind import sensor_noise_profile

        band_std = sensor_noise_profile(np.asarray(em.wavelengths, np.float64), seed)
    make = dirichlet_maps if "dirichlet" in maps else abundance_maps
    At = make(rows, cols, em.spectra.shape[0], np.random.default_rng(100 + seed), **maps)
    Y = np.asarray(simulate(At, em.spectra, wavelengths=em.wavelengths, snr_db=snr, seed=seed,
                            variability=variability, band_std=band_std)[0].to_scene().load(), np.float32)
    if derived:
        from blind_suite import derive_bands

        Y = derive_bands(Y, derived)
    if outliers:
        from blind_suite import add_outliers

        Y = add_outliers(Y, outliers, seed)
    return At, Y


def wiener_bound(em, snrs: list[float], seeds: int, maps: dict, rows: int, cols: int) -> None:
    """Print what a linear spatial filter can gain over FCLS with the true endmembers: per
    endmember map, the oracle Wiener filter (the true map's power spectrum against the FCLS
    error's mean power, both known here), then clipped at 0 and each pixel divided by its
    sum. A yardstick for the suite's "-15 %" target from correct endmembers: a map prior
    does not gain much more than this on noise-driven error (maps from ``maps``, the suite's
    scenes and noise)."""
    print("\noracle Wiener filter of FCLS maps (true endmembers): RMSE % FCLS -> filtered, change %")
    print("| SNR | " + " | ".join(f"seed {s}" for s in range(seeds)) + " | mean change % |")
    print("|---|" + "---|" * (seeds + 1))
    p = em.spectra.shape[0]
    for snr in snrs:
        cells, changes = [], []
        for seed in range(seeds):
            At, Y = suite_scene(em, rows, cols, maps, snr, seed)
            A = fcls(Y.reshape(-1, Y.shape[-1]), em.spectra).reshape(At.shape)
            F = np.empty_like(A)
            for j in range(p):
                S = np.abs(np.fft.fft2(At[..., j] - At[..., j].mean())) ** 2
                noise = np.mean(np.abs(np.fft.fft2(A[..., j] - At[..., j])) ** 2)
                H = S / (S + noise)
                H[0, 0] = 1.0  # the map's mean passes
                F[..., j] = np.real(np.fft.ifft2(H * np.fft.fft2(A[..., j])))
            F = np.clip(F, 0.0, None)
            F /= np.maximum(F.sum(-1, keepdims=True), 1e-12)
            r0, r1 = (100 * float(np.sqrt(np.mean((X - At) ** 2))) for X in (A, F))
            cells.append(f"{r0:.2f} -> {r1:.2f}")
            changes.append(100 * (r1 / r0 - 1))
        print(f"| {snr:g} | " + " | ".join(cells) + f" | {np.mean(changes):+.1f} |", flush=True)


def scene_shape(args) -> tuple[int, int]:
    """``(rows, cols)`` of the suite's scenes: ``--shape ROWSxCOLS`` or ``--size`` square."""
    return tuple(int(v) for v in args.shape.split("x")) if args.shape else (args.size, args.size)


def mixing_label(record: dict) -> str:
    """The refinement's mixing model, its test value and (scaled) where it started."""
    m = record["mixing"]
    x = m.get("brightness_excess")
    return m["model"] + ("" if x is None else f" ({x:.1f})") + (f", start {m['start']}" if "start" in m else "")


def metrics(E, A, Et, At, Y, brightness=None, mask=None) -> dict:
    """Metrics against the truth ``Et``, ``At``; ``mask`` (rows, cols): only those pixels."""
    perm = match_endmembers(E, Et, by="sad")
    m = evaluate(endmembers=E[perm], abundances=A[..., perm], ref_endmembers=Et, ref_abundances=At, cube=Y,
                 brightness=brightness, mask=mask)
    return {k: m.get(k) for k in ("abundance_rmse_percent", "sad_deg_mean", "sre_db", "psnr_db")}, perm


def spectra_denoising(prior, seed: int = 0, mlp=None) -> list[dict]:
    """Denoising SAM (deg) on the prior's held-out USGS spectra: the prior's MMSE estimate vs
    the exact MMSE denoiser of the training spectra's empirical distribution and, when given,
    the per-pixel MLP prior ``mlp`` (`spectra_mlp_baseline.MLPDenoiser`). The training
    spectra are the prior's ``data.npz``, or its split rebuilt from the USGS library
    (`spectra_mlp_baseline.training_split`)."""
    from spectra_mlp_baseline import training_split
    from unmixgen.nn import checkpoint as ck

    held = ck.load_arrays(prior.model_dir / "holdout.npz")["x"]
    train = training_split(prior)[0]
    good = prior.rep.good
    rng = np.random.default_rng(seed)
    rows = []

    def sam(a, b):
        a, b = 1 + prior.rep.scale * a[:, good], 1 + prior.rep.scale * b[:, good]
        c = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        return float(np.degrees(np.arccos(np.clip(c, -1, 1))).mean())

    for sigma in (0.05, 0.1, 0.2, 0.4):
        noisy = held + rng.normal(0, sigma, held.shape).astype(np.float32)
        row = {"sigma": sigma, "noisy": sam(noisy, held), "prior": sam(prior.denoise(noisy, sigma), held)}
        d2 = ((noisy[:, None, good] - train[None, :, good]) ** 2).sum(-1)
        w = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * sigma ** 2))
        row["empirical_mmse"] = sam((w @ train) / w.sum(1, keepdims=True), held)
        if mlp is not None:
            row["mlp"] = sam(mlp.denoise(noisy, sigma), held)
        rows.append(row)
    return rows


def denoising_table(sp, mlp_steps: int) -> None:
    """Train the per-pixel MLP baseline (``mlp_steps`` steps, seed 0; 0: none) and print the
    denoising table: noisy, prior, empirical-library MMSE, per-pixel MLP."""
    mlp = None
    if mlp_steps > 0:
        from spectra_mlp_baseline import train_mlp_baseline

        mlp = train_mlp_baseline(sp, steps=mlp_steps, seed=0)
        i = mlp.info
        print(f"\nper-pixel MLP baseline: {i['params']} parameters, {i['steps']} steps (seed {i['seed']}) on the "
              f"prior's {i['n_train']} training spectra, final loss {i['loss']:.4f}; "
              f"{i['wall_s']:.0f} s wall, {i['cpu_s']:.0f} s CPU")
    rows = spectra_denoising(sp, mlp=mlp)
    print("\nspectra prior denoising, held-out USGS spectra, mean SAM (deg) on good bands")
    print("| sigma (grid units) | noisy | prior (1 step MMSE) | empirical-library MMSE | per-pixel MLP |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['sigma']} | {row['noisy']:.2f} | {row['prior']:.2f} | {row['empirical_mmse']:.2f} | "
              f"{row.get('mlp', float('nan')):.2f} |")


def main() -> None:
    from blind_suite import add_product_options

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--snrs", default="15,20,30,40")
    ap.add_argument("--spectra-prior", default=None)
    ap.add_argument("--timing", action="store_true", help="also time one 100x100 scene, 8 samples x 20 steps")
    ap.add_argument("--timing-only", action="store_true", help="only the 100x100 timing (no suite)")
    ap.add_argument("--timing-init", choices=("true-E fcls", "auto"), default="true-E fcls",
                    help="init of the timing scene: FCLS with the true endmembers (one round) or the blind "
                         "default (the prior-weight rule's rounds, as `unmixgen refine` runs it)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--profile", default=None, help="write a cProfile of the timing run to this file")
    ap.add_argument("--timing-save", default=None, help="save the timing run's result arrays to this .npz")
    ap.add_argument("--denoising", action="store_true", help="also the spectra prior's denoising table")
    ap.add_argument("--denoising-only", action="store_true", help="only the denoising table (no suite, no timing)")
    ap.add_argument("--mlp-steps", type=int, default=6000,
                    help="training steps of the per-pixel MLP baseline in the denoising table (0: none)")
    ap.add_argument("--t0", type=float, default=None)
    ap.add_argument("--spectra-t0", type=float, default=None)
    ap.add_argument("--eta", type=float, default=None)
    ap.add_argument("--lam", type=float, default=None)
    ap.add_argument("--guard-level", type=float, default=None)
    ap.add_argument("--spread", type=float, default=None)
    ap.add_argument("--tile-overlap", type=float, default=None,
                    help="least overlap of the abundance prior's tiles on scenes larger than 64 px (refine's default: "
                         "TILE_OVERLAP)")
    ap.add_argument("--rounds", type=lambda v: v if v == "origin" else None if v == "auto" else int(v),
                    default="origin",
                    help=f"alternation rounds; 'auto': {WEIGHTED_ROUNDS} when the prior weight is >= 1; 'origin' (default, as "
                         "`unmixgen refine`): 'auto' for endmembers extracted from the scene (VCA, the blind "
                         "default, HybridSTU on its endmembers), 1 for the true ones")
    ap.add_argument("--ls-iterations", type=int, default=None)
    ap.add_argument("--spectra", default="default", choices=["default", *HELD_OUT],
                    help="endmember set of the suite: the default four USGS minerals, or a set held out of "
                         "the shipped spectra prior's training")
    ap.add_argument("--names", default="",
                    help="comma-separated USGS names that replace the set (any p), e.g. "
                         "'Walnut_Leaf,Talc TL2702,Epidote GDS26' for p = 3")
    ap.add_argument("--extra", default="",
                    help="comma-separated USGS names added to the set (p = 4 + their number), e.g. "
                         "'Jarosite GDS24,Hematite FE2602' for p = 6")
    ap.add_argument("--endmember-tolerance", type=float, default=None)
    ap.add_argument("--mixing", default=None, choices=MIXING,
                    help="mixing model of the data steps (refine's default: auto)")
    ap.add_argument("--maps", default="procedural", choices=sorted(MAPS),
                    help="abundance maps of the suite's scenes (`MAPS`): the default smooth fields, rough ones, "
                         "a Voronoi patchwork, sharp near-pure regions (all without pure pixels), or "
                         "regions of pure pixels")
    ap.add_argument("--variability", type=float, default=None,
                    help="per-pixel brightness variability of the scenes (ELMM log-scale std; none by default)")
    ap.add_argument("--noise", default="flat", choices=("flat", "sensor"),
                    help="the scenes' noise the same in every band, or spread over the bands like a sensor's "
                         "(semiblind.sensor_noise_profile), at the same global SNR")
    add_product_options(ap)
    ap.add_argument("--resample", default="", choices=("", "nearest", "bilinear", "cubic"),
                    help="the suite's scenes as map-grid products: resampled onto a grid turned "
                         "--resample-angle degrees (semiblind.map_grid)")
    ap.add_argument("--resample-angle", type=float, default=10.0)
    ap.add_argument("--shape", default="",
                    help="ROWSxCOLS of the suite's scenes instead of --size square ones, e.g. 24x48")
    ap.add_argument("--inits", default="vca+fcls,true-E fcls",
                    help="comma-separated inits: vca+fcls, true-E fcls, auto (blind default), stu (HybridSTU on "
                         "the blind default's endmembers)")
    ap.add_argument("--stu-steps", type=int, default=600, help="training steps of the stu init")
    ap.add_argument("--wiener-bound-only", action="store_true",
                    help="only the oracle Wiener filter's gain over FCLS with the true endmembers (`wiener_bound`)")
    ap.add_argument("--spearman-bound-only", action="store_true",
                    help="only the oracle bound of Spearman(std, |error|) (`spearman_bound`)")
    args = ap.parse_args()
    if args.wiener_bound_only and args.variability:
        ap.error("--wiener-bound-only measures noise-driven error under linear mixing; drop --variability")
    opts = {k: v for k, v in (("t0", args.t0), ("spectra_t0", args.spectra_t0), ("eta", args.eta), ("lam", args.lam),
                              ("guard_level", args.guard_level), ("spread", args.spread), ("tile_overlap", args.tile_overlap),
                              ("ls_iterations", args.ls_iterations),
                              ("endmember_tolerance", args.endmember_tolerance), ("mixing", args.mixing))
            if v is not None}
    if args.rounds not in (1, "origin"):
        opts["rounds"] = args.rounds
    rounds_by_init = args.rounds == "origin"
    print(f"options: {opts or 'defaults'}; maps {args.maps}, variability {args.variability}, "
          f"scenes {args.shape or f'{args.size}x{args.size}'}")
    torch.set_num_threads(args.threads)
    names = NAMES if args.spectra == "default" else HELD_OUT[args.spectra]
    names = [n for n in args.names.split(",") if n] or names
    em = load_library_spectra(LIB, names + [n for n in args.extra.split(",") if n])
    if args.wiener_bound_only:
        wiener_bound(em, [float(v) for v in args.snrs.split(",")], args.seeds, MAPS[args.maps], *scene_shape(args))
        return
    if args.spearman_bound_only:
        spearman_bound(em, [float(v) for v in args.snrs.split(",")], args.seeds, size=args.size)
        return
    ab = AbundanceModel(_shipped(DEFAULT_ABUNDANCE_PRIOR))
    sp = load_spectra_prior(args.spectra_prior)
    if args.denoising_only:
        denoising_table(sp, args.mlp_steps)
        return
    if not args.timing_only:
        suite(args, opts, em, ab, sp, rounds_by_init)
        if args.denoising:
            denoising_table(sp, args.mlp_steps)
    if args.timing or args.timing_only:
        timing(em, ab, sp, opts, args.profile, args.timing_save, args.timing_init, args.variability, args.noise)


def timing(em, ab, sp, opts: dict, profile: str | None = None, save: str | None = None,
           init: str = "true-E fcls", variability: float | None = None, noise: str = "flat") -> None:
    """One 100x100 scene (20 dB), 8 samples x 20 steps: wall and CPU (process) seconds of
    `refine` and the load average (other jobs inflate wall time). ``init``: FCLS with the true
    endmembers (one round), or the blind default's result (``auto``: endmembers from the scene,
    so the prior-weight rule's rounds, as `unmixgen refine` runs it). ``variability``: the
    scene's brightness variability (`--variability`; none by default), which makes `refine`
    take the scaled mixing model. ``noise="sensor"``: the noise spread over the bands like a
    sensor's (`--noise sensor`), so the data steps weigh the bands."""
    import cProfile
    import os

    At = abundance_maps(100, 100, 4, np.random.default_rng(0), purity=2.0, max_abundance=0.8)
    band_std = None
    if noise == "sensor":
        from semiblind import sensor_noise_profile

        band_std = sensor_noise_profile(np.asarray(em.wavelengths, np.float64), 0)
    Y = np.asarray(simulate(At, em.spectra, wavelengths=em.wavelengths, snr_db=20, seed=0,
                            variability=variability, band_std=band_std)[0].to_scene().load(), np.float32)
    E0 = em.spectra
    if init == "auto":
        blind = make_method(DEFAULT_METHOD, 4, seed=0).fit(Scene(Y, wavelengths=em.wavelengths))
        E0 = blind.endmembers_
        opts = {"rounds": None, "endmembers_fitted": True, "abundance_basis": abundance_basis(blind), **opts}
    A0 = fcls(Y.reshape(-1, Y.shape[-1]), E0).reshape(100, 100, 4) if init != "auto" else blind.abundances_
    prof = cProfile.Profile() if profile else None
    t, c = time.perf_counter(), time.process_time()
    if prof is not None:
        prof.enable()
    r = refine(Y, E0, A0, abundance_prior=ab, spectra_prior=sp, wavelengths=em.wavelengths, samples=8,
               steps=20, **opts)
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    if save:
        np.savez(save, abundances=r.abundances, abundance_samples=r.abundance_samples, endmembers=r.endmembers,
                 abundances_std=r.abundances_std)
    m, _ = metrics(r.endmembers, r.abundances, em.spectra, At, Y, r.brightness)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\ntiming: 100x100x{Y.shape[-1]}, p=4, 8 samples x 20 steps (+20 endmember steps): "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU, torch threads {torch.get_num_threads()}, load average {load}; "
          f"RMSE {m['abundance_rmse_percent']:.3f} %, SAD {m['sad_deg_mean']:.3f} deg; init {init}, "
          f"rounds {r.record['rounds']}, prior weight {r.record['lam']:g}")


def suite(args, opts: dict, em, ab, sp, rounds_by_init: bool = False) -> None:
    """The accuracy / calibration suite and its summary (see the module doc). ``rounds_by_init``:
    the rounds as `unmixgen refine` picks them (`workflows.refinement.endmember_origin`): the
    prior-weight rule for endmembers extracted from the scene, one round for the true ones."""
    summary: dict = {}
    print("| SNR | seed | init | RMSE% init→ref | SAD° init→ref | SRE dB init→ref | PSNR init→ref | kept px | E kept | cov50 | cov90 | Spearman | CRPS | s | lam | mixing |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for snr in [float(v) for v in args.snrs.split(",")]:
        for seed in range(args.seeds):
            p = em.spectra.shape[0]
            At, Y = suite_scene(em, *scene_shape(args), MAPS[args.maps], snr, seed, args.variability, args.noise,
                                args.derived, args.outliers, args.resample, args.resample_angle)
            B = Y.shape[-1]
            # with outliers the metrics count the other pixels: an outlier's own abundances are no mixture's
            keep = None
            if args.outliers:
                clean = suite_scene(em, *scene_shape(args), MAPS[args.maps], snr, seed, args.variability, args.noise,
                                    args.derived, "", args.resample, args.resample_angle)[1]
                keep = ~np.any(Y != clean, axis=-1)
            blind = None
            for init in args.inits.split(","):
                if init in ("auto", "stu") and blind is None:
                    blind = make_method(DEFAULT_METHOD, p, seed=seed).fit(Scene(Y, wavelengths=em.wavelengths))
                if init == "auto":
                    E0, A0 = blind.endmembers_, blind.abundances_
                elif init == "stu":
                    E0 = blind.endmembers_
                    stu = HybridSTU(p, max_steps=args.stu_steps, max_minutes=None, seed=seed)
                    A0 = stu.fit(Scene(Y, wavelengths=em.wavelengths), endmembers=E0).abundances_
                else:
                    E0 = vca(Y.reshape(-1, B), p, seed=seed)[1] if init == "vca+fcls" else em.spectra
                    A0 = fcls(Y.reshape(-1, B), E0).reshape(*Y.shape[:2], p)
                m0, perm = metrics(E0, A0, em.spectra, At, Y, mask=keep)
                t = time.perf_counter()
                # as `unmixgen refine` does: extracted endmembers were fitted to these pixels
                by_init = {"rounds": 1 if init == "true-E fcls" else None} if rounds_by_init else {}
                by_init["endmembers_fitted"] = init != "true-E fcls"
                if init == "auto":  # as `unmixgen refine` reads the blind default's result
                    by_init["abundance_basis"] = abundance_basis(blind)
                r = refine(Y, E0, A0, abundance_prior=ab, spectra_prior=sp, wavelengths=em.wavelengths,
                           samples=args.samples, steps=args.steps, seed=seed, **opts, **by_init)
                sec = time.perf_counter() - t
                m1, perm1 = metrics(r.endmembers, r.abundances, em.spectra, At, Y, r.brightness, mask=keep)
                samples = r.abundance_samples[..., perm1]
                c = calibration(samples, At) if keep is None else calibration(samples[:, keep], At[keep])
                g = r.record["guard"]
                f = lambda k, m0=m0, m1=m1: f"{m0[k]:.2f}→{m1[k]:.2f}"  # noqa: E731
                print(f"| {snr:.0f} | {seed} | {init} | {f('abundance_rmse_percent')} | {f('sad_deg_mean')} | "
                      f"{f('sre_db')} | {f('psnr_db')} | {100 * g['pixels_kept_fraction']:.0f}% | "
                      f"{g['endmembers_kept']} | {c['cov50']:.2f} | {c['cov90']:.2f} | {c['spearman']:.2f} | "
                      f"{c['crps']:.4f} | {sec:.1f} | {r.record['lam']:g} | {mixing_label(r.record)} |", flush=True)
                rel = lambda k, m0=m0, m1=m1: (m1[k] - m0[k]) / max(m0[k], 1e-9)  # noqa: E731
                summary.setdefault((snr, init), []).append(
                    [rel("abundance_rmse_percent"), rel("sad_deg_mean"), m1["sad_deg_mean"] - m0["sad_deg_mean"],
                     c["cov90"], c["spearman"]])
    print("\nsummary over seeds: mean (min, max) relative change of RMSE; SAD change; 90 % coverage; Spearman")
    print("| SNR | init | RMSE change % | SAD change deg | cov90 | Spearman |")
    print("|---|---|---|---|---|---|")
    for (snr, init), v in summary.items():
        v = np.asarray(v)
        print(f"| {snr:.0f} | {init} | {100 * v[:, 0].mean():+.1f} ({100 * v[:, 0].min():+.1f}, "
              f"{100 * v[:, 0].max():+.1f}) | {v[:, 2].mean():+.2f} | {v[:, 3].mean():.2f} | {v[:, 4].mean():.2f} |")


if __name__ == "__main__":
    main()
