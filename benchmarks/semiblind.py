"""Semi-blind unmixing with HybridSTU against FCLS, its k = 1 ablation and the blind default.

Suites (``--suite``):

- ``sim``: scenes mixed from USGS 1995 library spectra (``../shared/data/usgs_library``;
  ``p`` spectra drawn per seed, at least 8 degrees apart), maps from
  `simulate.procedural.abundance_maps` without pure pixels (max abundance 0.8), at each
  ``--snr`` with and without ELMM brightness variability (log-std ``--variability``).
  HybridSTU trains on GRF maps fitted to the scene's (smoothed) FCLS maps (its default
  source), with the scene's estimated SNR and brightness variability.
- ``real``: Samson and Jasper Ridge with the reference endmembers, and with endmembers
  extracted by the blind default.
- ``sources``: train-on-synthetic, test-on-real (issue 8): Samson and Jasper Ridge with the
  reference endmembers, HybridSTU trained on maps from (a) an abundance diffusion prior trained
  for ``--prior-steps`` on the scene's own smoothed FCLS maps, (b) GRF and (c) Dirichlet fitted
  by the estimator to the same maps, (d) the reference maps of the other (left/right) half;
  every source scored on the same test half against its reference maps (``--both-ways``: each
  half in turn). FCLS is the baseline row. Metrics keep the given endmembers' channel order
  (``--align none``): the reference endmembers and maps share it. ``--add-snr DB`` first adds
  white noise to the real scene (its maps under a poorer sensor, where spatial context counts).
  ``--scenes sim-regions`` (or any ``--maps`` kind) runs the same on a ``sim`` scene whose maps'
  texture is known (Voronoi regions, sharp patches), where a prior of the scene's own maps
  should teach what GRF and Dirichlet fields do not.
- ``bound``: what spatial filtering of FCLS can gain at most on the ``sim`` scenes, from two
  oracles that see the true maps: the best isotropic Gaussian smoothing (sigma picked against
  the truth) and a per-frequency Wiener filter of every FCLS map (gain ``|T|^2 / (|T|^2 +
  |F - T|^2)`` per 2D frequency, ``T`` and ``F`` the Fourier transforms of the true and FCLS
  maps), which no linear shift-invariant filter can beat on that scene. Ratios to FCLS's
  RMSE, to set beside HybridSTU's ``x FCLS`` of the ``sim`` suite; no network is trained.
- ``rank``: the ``-p auto`` count (`unmixgen.unmix.spatial_rank.scene_rank`) on the ``sim``
  suite's scenes without variability, for each of ``--rank-ps``, each ``--snr`` and seed, with
  the options that shape them (``--stripes``, ``--stripe-angle``, ``--resample``, ``--noise``):
  the count with the stripes `column_stripes` finds taken into the noise, and without (the
  plain `spatial_rank`); no network is trained.
- ``speed``: inference time and peak memory of a trained-size network on memory-mapped ``.npy``
  scenes of ``--speed-sizes`` pixels squared x 230 bands, in a child process: ru_maxrss (counts the
  touched file pages of the cube) and the peak of its anonymous (private) memory, polled every 20 ms
  from ``/proc/self/smaps_rollup``, which excludes them.

Metrics: abundance RMSE %, SAD (deg), SRE (dB), reconstruction RMSE, PSNR (dB), mean SAM
(deg), train and inference seconds (`unmixgen.evaluate.unmixing.evaluate`).

    PYTHONPATH=src python benchmarks/semiblind.py --suite sim --seeds 1 --threads 1
    PYTHONPATH=src python benchmarks/semiblind.py --suite bound --seeds 4
    PYTHONPATH=src python benchmarks/semiblind.py --suite rank --seeds 3 --stripes 1 --noise sensor --snr 20,30,40
    PYTHONPATH=src python benchmarks/semiblind.py --suite speed --speed-sizes 500,1000 --threads 2
    PYTHONPATH=src python benchmarks/semiblind.py --suite sources --steps 1000 --prior-steps 1500 --both-ways --threads 1
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def sensor_noise_profile(wl: np.ndarray, seed: int) -> np.ndarray:
    """A relative noise std per band like a real imaging spectrometer's (bands (nm) ``wl``):
    noisier at the detector's ends and in the 1400 / 1900 nm water absorptions, plus a smooth
    random log-profile (std 0.5, about 15 bands of correlation); max / min is 20-60, as the
    HySime estimates of Samson (51) and Jasper Ridge (26) are."""
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng([seed, 77])
    z = gaussian_filter1d(rng.standard_normal(wl.size), 15.0 * wl.size / 224, mode="nearest")
    log_std = 0.5 * z / max(float(z.std()), 1e-12)
    for centre in (1400.0, 1900.0):
        log_std += 1.5 * np.exp(-0.5 * ((wl - centre) / 50.0) ** 2)
    log_std += 1.2 * np.clip((450.0 - wl) / 70.0, 0, 1) + 1.5 * np.clip((wl - 2300.0) / 200.0, 0, 1)
    return np.exp(log_std)


def usgs_scene(p: int, size: int, snr: float, variability: float, seed: int, maps: str = "default",
               noise: str = "flat", derived: str = "", outliers: str = "", stripes: float = 0.0,
               stripe_angle: float = 0.0, resample: str = "", resample_angle: float = 10.0):
    from scipy.io import loadmat

    from unmixgen.evaluate.unmixing import sad_matrix
    from unmixgen.simulate.procedural import abundance_maps
    from unmixgen.simulate.scene import simulate

    m = loadmat(DATA / "usgs_library" / "USGS_1995_Library.mat")
    lib = np.asarray(m["datalib"], np.float64)
    order = np.argsort(lib[:, 0])
    wl = lib[order, 0] * 1000.0
    spectra = lib[order, 3:].T
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for i in rng.permutation(len(spectra)):
        s = spectra[i]
        if not np.all(np.isfinite(s)) or s.min() <= 0:
            continue
        if all(sad_matrix(s[None], spectra[j][None])[0, 0] > 8.0 for j in picked):
            picked.append(int(i))
        if len(picked) == p:
            break
    E = spectra[picked].astype(np.float32)
    if maps == "default":
        A = abundance_maps(size, size, p, seed, max_abundance=0.8)
    else:  # the refinement suite's map kinds (rough, Voronoi regions, sharp near-pure patches)
        from refine import MAPS, dirichlet_maps

        if "dirichlet" in MAPS[maps]:
            A = dirichlet_maps(size, size, p, np.random.default_rng(seed), **MAPS[maps])
        else:
            A = abundance_maps(size, size, p, seed, **MAPS[maps])
    band_std = sensor_noise_profile(wl, seed) if noise == "sensor" else None
    sim = simulate(A, E, wavelengths=wl, snr_db=snr, variability=variability or None, band_std=band_std,
                   seed=seed)[0]
    if stripes:  # a pushbroom detector's: each (column, band) element its own gain
        sim.cube = add_stripes(sim.cube, stripes, seed, stripe_angle)
    if derived:  # bands a producer made from others (duplicated, interpolated, constant)
        from blind_suite import derive_bands

        sim.cube = derive_bands(sim.cube, derived)
    if resample:  # a map-grid product: the sensor's image turned onto a map grid
        from unmixgen.scene import Scene

        cube, A = map_grid([sim.cube, sim.abundances], resample_angle, resample)
        scene = Scene(cube, wavelengths=sim.wavelengths, fwhm=sim.fwhm, mask=np.isfinite(cube).all(axis=-1),
                      name=f"usgs-p{p}-{snr:g}dB-{resample}", units="reflectance")
        truth = sim.to_scene().truth
        truth.abundances = np.nan_to_num(A)
        scene.attach_truth(truth)
        return scene, E
    if outliers:  # 0.25 % of the pixels saturated or spiked
        from blind_suite import add_outliers

        clean = sim.cube
        sim.cube = add_outliers(sim.cube, outliers, seed)
        scene = sim.to_scene(name=f"usgs-p{p}-{snr:g}dB")
        scene.metadata["metrics_mask"] = ~np.any(sim.cube != clean, axis=-1)  # metrics count the other pixels
        return scene, E
    return sim.to_scene(name=f"usgs-p{p}-{snr:g}dB"), E


def map_grid(arrays: list[np.ndarray], degrees: float, kind: str) -> list[np.ndarray]:
    """``arrays`` (each ``(rows, cols, k)``, one sensor image) resampled onto a map grid turned
    ``degrees`` against the sensor's, as a map-grid product is (PRISMA L2D, EnMAP L2A):
    ``kind`` "nearest", "bilinear" or "cubic" (scipy's spline of order 0, 1, 3), the same
    weights for every array, NaN outside the swath. Mixing is linear, so a cube and its
    abundances resampled alike still mix exactly (bar the cubic's overshoot off the simplex)."""
    from scipy import ndimage

    order = {"nearest": 0, "bilinear": 1, "cubic": 3}[kind]
    r, c = arrays[0].shape[:2]
    t = np.deg2rad(degrees)
    R, C = int(np.ceil(r * np.cos(t) + c * abs(np.sin(t)))), int(np.ceil(c * np.cos(t) + r * abs(np.sin(t))))
    yy, xx = np.mgrid[0:R, 0:C].astype(np.float64)
    y0 = (yy - (R - 1) / 2) * np.cos(t) - (xx - (C - 1) / 2) * np.sin(t) + (r - 1) / 2
    x0 = (yy - (R - 1) / 2) * np.sin(t) + (xx - (C - 1) / 2) * np.cos(t) + (c - 1) / 2
    margin = 0.5 if order == 0 else 0.0
    inside = (y0 >= -margin) & (y0 <= r - 1 + margin) & (x0 >= -margin) & (x0 <= c - 1 + margin)
    out = []
    for a in arrays:
        o = np.full((R, C, a.shape[2]), np.nan, np.float32)
        for b in range(a.shape[2]):
            o[..., b][inside] = ndimage.map_coordinates(a[..., b].astype(np.float64), [y0[inside], x0[inside]],
                                                        order=order, mode="nearest")
        out.append(o)
    return out


def add_stripes(cube: np.ndarray, gain_std: float, seed: int, angle: float = 0.0) -> np.ndarray:
    """``cube (rows, cols, B)`` read by a pushbroom sensor whose detector element of each column
    and band has its own gain: ``1 + gain_std z`` (z standard normal, twice as spread at the
    detector's ends), the stripes a flat-field calibration leaves. ``angle`` (degrees): the
    detector's columns run at that angle to the image's, as in a map-grid product resampled by
    nearest neighbour (`unmixgen.unmix.stripes.line_index`, phase 0.3)."""
    from blind_suite import column_gains
    from unmixgen.unmix.stripes import line_index

    rows, cols = cube.shape[:2]
    lines = line_index(np.arange(rows)[:, None], np.arange(cols)[None], angle, (rows, cols), 0.3 if angle else 0.0)
    gain = column_gains(np.random.default_rng([seed, 55]), int(lines.max()) + 1, cube.shape[2], gain_std)
    return (cube * gain[lines]).astype(np.float32)


def real_scene(name: str):
    from unmixgen.io import read_scene
    from unmixgen.runs.truth import read_truth

    cube, truth = {"samson": ("samson/samson_1.mat", "samson/end3.mat"),
                   "jasper": ("jasper_ridge/jasperRidge2_R198.mat", "jasper_ridge/end4.mat")}[name]
    scene = read_scene(DATA / cube)
    scene.attach_truth(read_truth(DATA / truth, scene.rows, scene.cols, scene.bands))
    return scene


def sources_scene(name: str, args):
    """The sources suite's scene ``name``: a real one, or ``sim-MAPS`` (``sim-regions``,
    ``sim-sharp``, ...): the sim suite's scene of those maps at ``--p``, ``--size``, the first
    ``--snr``, ``--variability`` and ``--first-seed``, where the maps' texture is known and
    not smooth."""
    if not name.startswith("sim-"):
        return real_scene(name)
    maps = name[4:]
    scene, _ = usgs_scene(args.p, args.size, args.snr[0], args.variability, args.first_seed, maps)
    scene.name = f"{name}-p{args.p}-{args.snr[0]:g}dB-s{args.first_seed}"
    return scene


def noisier(scene, snr_db: float, seed: int):
    """``scene`` with white Gaussian noise added at ``snr_db`` (over the scene's own signal),
    the same truth and wavelengths: a real scene's maps under the noise of a poorer sensor."""
    from unmixgen.scene import Scene
    from unmixgen.simulate.mixing import add_noise

    cube = add_noise(scene.load(), snr_db, np.random.default_rng(10_000 + seed))
    out = Scene(cube, wavelengths=scene.wavelengths, name=f"{scene.name}+{snr_db:g}dB")
    out.attach_truth(scene.truth)
    return out


def metrics(scene, E, A, mask=None, align: str = "abundance", brightness=None) -> dict[str, float]:
    """Metrics against the scene's reference over its valid pixels, or over ``mask`` of them;
    ``align`` as in `evaluate` (``"none"``: channel j is reference endmember j); ``brightness``
    (rows, cols) scales the reconstruction (the scaled model's results)."""
    from unmixgen.evaluate.unmixing import evaluate, sam_map

    cube = scene.load()
    if mask is None:
        mask = scene.metadata.get("metrics_mask")
    mask = scene.mask if mask is None else mask & scene.mask
    r = evaluate(endmembers=E, abundances=A, ref_endmembers=scene.truth.endmembers,
                 ref_abundances=scene.truth.abundances, cube=cube, mask=mask, align=align, brightness=brightness)
    rec = A @ E if brightness is None else (A * np.asarray(brightness)[..., None]) @ E
    sam = float(np.nanmean(sam_map(cube, rec, mask)))
    return {"rmse": r["abundance_rmse_percent"], "sad": r["sad_deg_mean"], "sre": r["sre_db"],
            "rec": r["reconstruction_rmse"], "psnr": r["psnr_db"], "sam": sam}


def run_methods(scene, E, args, seed: int, blind: bool) -> list[dict]:
    from unmixgen.unmix.hybridstu import HybridSTU
    from unmixgen.unmix.hybridstu.data import noise_estimate
    from unmixgen.unmix.inversion import fcls
    from unmixgen.unmix.rank import band_noise_std, band_noise_variance
    from unmixgen.unmix.registry import DEFAULT_METHOD, make_method

    rows = []
    t = time.perf_counter()
    A = scene.to_image(fcls(scene.valid_pixels(), E))
    rows.append({"method": "fcls", **metrics(scene, E, A), "train_s": 0.0, "infer_s": time.perf_counter() - t})
    # least squares with each band weighted by 1 / its estimated noise std (as HybridSTU reads the
    # pixels): the per-pixel answer that knows which bands are noisy
    t = time.perf_counter()
    Y = scene.valid_pixels()
    Ys, _, Rn = noise_estimate(Y, seed=seed)
    w = 1.0 / band_noise_std(band_noise_variance(Ys, Rn))
    A = scene.to_image(fcls(Y * w, E * w))
    rows.append({"method": "fcls weighted", **metrics(scene, E, A), "train_s": 0.0,
                 "infer_s": time.perf_counter() - t})
    for k in () if args.no_stu else args.ks:
        est = HybridSTU(E.shape[0], k=k, lam=args.lam, max_steps=args.steps, max_minutes=args.minutes, seed=seed,
                        **{key: getattr(args, key) for key in ("front", "lr", "batch_size", "width", "eval_every",
                                                               "patience", "noise_profile", "map_smoothing")
                           if getattr(args, key) is not None},
                        **({} if args.stripe_model is None else {"stripes": args.stripe_model}))
        est.fit(scene, endmembers=E)
        h = est.history_
        rows.append({"method": f"stu k={k}", **metrics(scene, E, est.abundances_, brightness=est.brightness_),
                     "train_s": h["timings_s"]["train"],
                     "infer_s": h["timings_s"]["apply"], "steps": h["steps"], "best": h["best_step"]})
    if blind:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = make_method(DEFAULT_METHOD, E.shape[0], seed=seed).fit(scene)
        rows.append({"method": DEFAULT_METHOD, **metrics(scene, m.endmembers_, m.abundances_), "train_s": 0.0,
                     "infer_s": time.perf_counter() - t})
    return rows


def fmt(case: str, r: dict) -> str:
    extra = f"  steps {r['steps']} (best {r['best']})" if "steps" in r else ""
    return (f"{case:<28} {r['method']:<14} {r['rmse']:7.2f} {r['sad']:6.2f} {r['sre']:6.2f} {r['rec']:8.4f} "
            f"{r['psnr']:6.2f} {r['sam']:6.2f} {r['train_s']:7.1f} {r['infer_s']:6.2f}{extra}")


HEADER = (f"{'case':<28} {'method':<14} {'RMSE%':>7} {'SAD':>6} {'SRE':>6} {'recRMSE':>8} {'PSNR':>6} "
          f"{'SAM':>6} {'train_s':>7} {'inf_s':>6}")


def suite_sim(args) -> None:
    print(HEADER, flush=True)
    for snr in args.snr:
        for var in (0.0, args.variability):
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                scene, E = usgs_scene(args.p, args.size, snr, var, seed, args.maps, args.noise, args.derived,
                                      args.outliers, args.stripes / 100, args.stripe_angle, args.resample,
                                      args.resample_angle)
                case = f"usgs p{args.p} {snr:g}dB var{var:g} s{seed}" + ("" if args.maps == "default" else
                                                                         f" {args.maps}") + \
                    ("" if args.noise == "flat" else f" {args.noise}") + (f" {args.derived}" if args.derived else "") + \
                    (f" {args.outliers}" if args.outliers else "") + \
                    (f" stripes{args.stripes:g}%" if args.stripes else "") + \
                    (f"@{args.stripe_angle:g}deg" if args.stripes and args.stripe_angle else "") + \
                    (f" {args.resample}@{args.resample_angle:g}deg" if args.resample else "")
                for r in run_methods(scene, E, args, seed, blind=args.blind):
                    print(fmt(case, r), flush=True)


def suite_rank(args) -> None:
    from unmixgen.unmix.spatial_rank import scene_rank, spatial_rank

    print("case | true p | auto (stripes in the noise) | plain spatial_rank | stripes found (ratio, median gain %)",
          flush=True)
    right = {"auto": 0, "plain": 0}
    n = 0
    for p in args.rank_ps:
        for snr in args.snr:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                scene, _ = usgs_scene(p, args.size, snr, 0.0, seed, args.maps, args.noise, args.derived,
                                      args.outliers, args.stripes / 100, args.stripe_angle, args.resample,
                                      args.resample_angle)
                est = scene_rank(scene)
                auto, found = est.n_endmembers, est.stripes  # the stripes it measured for the count
                plain = spatial_rank(scene.load(), scene.mask).n_endmembers
                seen = "too small" if found is None else (
                    f"{'yes' if found.detected else 'no'} ({found.ratio:.2f}, "
                    f"{found.record()['gain_std_percent_median']:.2f})")
                right["auto"] += auto == p
                right["plain"] += plain == p
                n += 1
                print(f"p{p} {snr:g}dB s{seed} | {p} | {auto} | {plain} | {seen}", flush=True)
    print(f"right: auto {right['auto']}/{n}, plain {right['plain']}/{n}", flush=True)


def oracle_filter_ratios(A: np.ndarray, truth: np.ndarray,
                         sigmas=(0.5, 0.7, 0.9, 1.1, 1.4, 1.8, 2.5)) -> tuple[float, float, float]:
    """RMSE ratios to ``A``'s of the two oracle filters of the ``bound`` suite, for maps
    ``A`` and ``truth`` (rows, cols, p) without NaN: (best Gaussian, its sigma or 0 when no
    smoothing helps, per-frequency Wiener)."""
    from scipy.ndimage import gaussian_filter

    def rmse(X: np.ndarray) -> float:
        return float(np.sqrt(np.mean((X - truth) ** 2)))

    r0 = rmse(A)
    best, best_sigma = 1.0, 0.0
    for s in sigmas:
        r = rmse(gaussian_filter(A, (s, s, 0), mode="reflect")) / r0
        if r < best:
            best, best_sigma = r, s
    F = np.fft.fft2(A - A.mean(axis=(0, 1)), axes=(0, 1))
    T = np.fft.fft2(truth - truth.mean(axis=(0, 1)), axes=(0, 1))
    S = np.abs(T) ** 2
    W = S / np.maximum(S + np.abs(F - T) ** 2, 1e-30)
    wiener = np.real(np.fft.ifft2(F * W, axes=(0, 1))) + A.mean(axis=(0, 1))
    return best, best_sigma, rmse(wiener) / r0


def suite_bound(args) -> None:
    from unmixgen.unmix.inversion import fcls

    print("| SNR | var | seed | FCLS RMSE % | best Gaussian (x FCLS, sigma px) | per-frequency Wiener oracle (x FCLS) |")
    print("|---|---|---|---|---|---|")
    for snr in args.snr:
        for var in (0.0, args.variability):
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                scene, E = usgs_scene(args.p, args.size, snr, var, seed)
                A = scene.to_image(fcls(scene.valid_pixels(), E))
                truth = scene.truth.abundances
                g, sigma, w = oracle_filter_ratios(A, truth)
                r0 = 100 * float(np.sqrt(np.mean((A - truth) ** 2)))
                print(f"| {snr:g} | {var:g} | {seed} | {r0:.2f} | {g:.2f} ({sigma:g}) | {w:.2f} |", flush=True)


def suite_real(args) -> None:
    from unmixgen.unmix.registry import DEFAULT_METHOD, make_method

    print(HEADER, flush=True)
    for name in ("samson", "jasper"):
        scene = real_scene(name)
        E = scene.truth.endmembers
        for r in run_methods(scene, E, args, 0, blind=True):
            print(fmt(f"{name} reference E", r), flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Ex = make_method(DEFAULT_METHOD, E.shape[0], seed=0).fit(scene).endmembers_
        for r in run_methods(scene, Ex, args, 0, blind=False):
            print(fmt(f"{name} extracted E", r), flush=True)


def suite_sources(args) -> None:
    """Train-on-synthetic, test-on-real: HybridSTU trained on maps from (a) an abundance prior
    trained on the scene's own smoothed maps of the per-pixel answer the estimator corrects
    (FCLS or the brightness-free `scaled` one, as chosen in the GRF fit), (b) GRF, (c) Dirichlet
    (both fitted by the estimator to the same smoothed maps), (d) the reference maps of the other half of
    the scene; scored on one half against its reference maps, both ways round. (a)-(c) use
    no reference map and are fitted once on the whole scene; (d) once per training half."""
    from unmixgen.unmix.hybridstu import HybridSTU
    from unmixgen.unmix.inversion import fcls
    from unmixgen.workflows.semiblind import scene_halves, stu_training_maps, train_scene_prior

    k = args.ks[0]
    print("# columns: case, method, RMSE%, SAD, SRE, recRMSE, PSNR, SAM, train_s (network), inf_s; then the fit's "
          "wall and CPU seconds (incl. prior training and sampling for (a))", flush=True)
    print(HEADER, flush=True)
    for name in args.scenes:
        scene = sources_scene(name, args)
        if args.add_snr is not None:
            scene = noisier(scene, args.add_snr, args.seed)
        E = scene.truth.endmembers
        p = int(E.shape[0])
        halves = scene_halves(scene.rows, scene.cols, axis=1)
        masks = []
        for h in halves:
            m = np.zeros((scene.rows, scene.cols), bool)
            m[h] = True
            masks.append(m)
        side = ("left", "right")

        def est_for(p: int = p) -> HybridSTU:
            return HybridSTU(p, k=k, lam=args.lam, max_steps=args.steps, max_minutes=args.minutes, seed=args.seed,
                             **{key: getattr(args, key) for key in ("front", "lr", "batch_size", "width",
                                                                    "eval_every", "patience")
                                if getattr(args, key) is not None})

        results: dict[str, tuple] = {}  # source -> (A, history, wall, cpu)
        t, c = time.perf_counter(), time.process_time()
        A = scene.to_image(fcls(scene.valid_pixels(), E))
        results["fcls"] = (A, None, time.perf_counter() - t, time.process_time() - c)
        for source in args.sources:
            t, c = time.perf_counter(), time.process_time()
            extra = {}
            if source == "prior":
                # the prior learns the scene's maps of the per-pixel answer the estimator corrects
                base = next((r[1]["base"] for r in results.values() if r[1] and r[1].get("base")), "fcls")
                with tempfile.TemporaryDirectory(dir=args.tmp) as d:
                    folder = Path(args.keep_prior or d) / name
                    model = train_scene_prior(scene, E, folder, max_minutes=args.prior_minutes,
                                              max_steps=args.prior_steps or None, seed=args.seed,
                                              smoothing=est_for().map_smoothing, method=base)
                    t1 = time.perf_counter()
                    est = est_for()
                    maps = stu_training_maps(f"prior:{model}", p, n_maps=est.n_maps, map_size=est.map_size,
                                             seed=args.seed)
                    extra = {"prior_on": base, "prior_s": t1 - t, "sample_s": time.perf_counter() - t1,
                             "map_mean": np.round(maps.mean(axis=(0, 1, 2)), 3).tolist()}
            else:
                est, maps = est_for(), source
            est.fit(scene, endmembers=E, maps=maps)
            results[source] = (est.abundances_, {**est.history_, **extra}, time.perf_counter() - t,
                               time.process_time() - c)
            print(f"# {name} {source}: {extra}", flush=True)
        for test in (1, 0) if args.both_ways else (1,):
            train = 1 - test
            case = f"{name} test={side[test]}"
            if "other-half" in args.other:
                t, c = time.perf_counter(), time.process_time()
                est = est_for()
                est.fit(scene, endmembers=E, maps=scene.truth.abundances[halves[train]][None])
                results[f"ref {side[train]}"] = (est.abundances_, est.history_, time.perf_counter() - t,
                                                 time.process_time() - c)
            for source in ("fcls", *args.sources, f"ref {side[train]}"):
                if source not in results:
                    continue
                A, h, wall, cpu = results[source]
                r = {"method": source if source == "fcls" else f"stu {source}",
                     **metrics(scene, E, A, masks[test], align=args.align),
                     "train_s": h["timings_s"]["train"] if h else 0.0,
                     "infer_s": h["timings_s"]["apply"] if h else wall}
                if h:
                    r.update(steps=h["steps"], best=h["best_step"])
                print(fmt(case, r) + f"  wall {wall:.0f} s cpu {cpu:.0f} s", flush=True)
        # (a)-(c) saw no reference map: they can also be scored on the whole scene
        for source in ("fcls", *args.sources):
            A, h, _, _ = results[source]
            r = {"method": source if source == "fcls" else f"stu {source}",
                 **metrics(scene, E, A, align=args.align), "train_s": h["timings_s"]["train"] if h else 0.0,
                 "infer_s": h["timings_s"]["apply"] if h else 0.0}
            print(fmt(f"{name} whole scene", r), flush=True)


SPEED_CHILD = """
import json, resource, sys, threading, time, numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))

def anon_mb():
    # the process's private memory: file pages of the memory-mapped cube are not counted
    with open("/proc/self/smaps_rollup") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("Anonymous:")) / 1024

peak = [anon_mb()]
done = threading.Event()

def watch():
    while not done.wait(0.02):
        peak[0] = max(peak[0], anon_mb())

threading.Thread(target=watch, daemon=True).start()
from unmixgen.scene import Scene
from unmixgen.unmix.hybridstu import HybridSTU
from unmixgen.unmix.hybridstu.network import HybridSTUNet
cube = np.load(sys.argv[1], mmap_mode="r")
scene = Scene(cube, mask=np.ones(cube.shape[:2], bool))
est = HybridSTU(5, k=int(sys.argv[3]), tile=int(sys.argv[4]), front=sys.argv[5])
torch.manual_seed(0)
est.net_ = HybridSTUNet(cube.shape[2], 5, est.k, est.width, front=est.front).eval()
est.good_bands_ = np.ones(cube.shape[2], bool); est.scale_ = 0.3; est.guard_tau_ = 1e-3  # the guard runs too
est.endmembers_ = np.random.default_rng(1).random((5, cube.shape[2]), dtype=np.float32) * 0.5
base = anon_mb()
t = time.perf_counter(); A = est.transform(scene); dt = time.perf_counter() - t
done.set()
peak[0] = max(peak[0], anon_mb())
print(json.dumps({"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_anon_mb": peak[0], "anon_before_mb": base,
                  "output_mb": A.nbytes / 2**20, "simplex": bool(np.allclose(A.sum(-1), 1, atol=1e-4))}))
"""


def suite_speed(args) -> None:
    print(f"{'size':>10} {'bands':>5} {'k':>2} {'tile':>4} {'threads':>7} {'seconds':>8} {'peak RSS MB':>11} "
          f"{'peak anon MB':>12} {'anon before MB':>14} {'output MB':>9}", flush=True)
    for n in args.speed_sizes:
        with tempfile.TemporaryDirectory(dir=args.tmp) as d:
            path = Path(d) / "cube.npy"
            mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, n, 230))
            rng = np.random.default_rng(0)
            for r0 in range(0, n, 100):
                mm[r0:r0 + 100] = rng.random((min(100, n - r0), n, 230), dtype=np.float32) * 0.5
            mm.flush()
            del mm
            out = subprocess.run([sys.executable, "-c", SPEED_CHILD, str(path), str(args.threads), str(args.ks[0]),
                                  str(args.tile), args.front or "subspace"], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{n}x{n:<6} {230:>5} {args.ks[0]:>2} {args.tile:>4} {args.threads:>7} {r['seconds']:8.1f} "
                  f"{r['peak_rss_mb']:11.0f} {r['peak_anon_mb']:12.0f} {r['anon_before_mb']:14.0f} "
                  f"{r['output_mb']:9.0f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    from blind_suite import add_product_options

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=("sim", "real", "speed", "sources", "bound", "rank"), default="sim")
    ap.add_argument("--rank-ps", type=lambda s: [int(v) for v in s.split(",")], default=[4, 8],
                    help="rank suite: the true numbers of endmembers")
    ap.add_argument("--scenes", type=lambda s: s.split(","), default=["samson", "jasper"],
                    help="sources suite: the real scenes (samson, jasper), or simulated ones: sim-MAPS with MAPS "
                         "one of --maps (--p, --size, the first --snr, --variability, --first-seed)")
    ap.add_argument("--sources", type=lambda s: s.split(","), default=["grf", "dirichlet", "prior"],
                    help="sources suite: map sources fitted on the whole scene (grf, dirichlet, prior; the prior "
                         "learns the maps of the per-pixel answer the first of the others corrected)")
    ap.add_argument("--other", type=lambda s: s.split(","), default=["other-half"],
                    help="sources suite: 'other-half' to also train on the other half's reference maps, '' not")
    ap.add_argument("--prior-minutes", type=float, default=None,
                    help="sources suite: time budget of the abundance prior's training (default: none)")
    ap.add_argument("--prior-steps", type=int, default=1500,
                    help="sources suite: step budget of the abundance prior's training (0: none)")
    ap.add_argument("--align", default="none", choices=("none", "abundance"),
                    help="sources suite: channel matching of the metrics (none: the given endmembers' order, "
                         "which the reference maps share; abundance: Hungarian on the maps, as the other suites)")
    ap.add_argument("--add-snr", type=float, default=None,
                    help="sources suite: add white noise at this SNR (dB) to the real scene first")
    ap.add_argument("--keep-prior", default=None, help="sources suite: keep the trained priors in this folder")
    ap.add_argument("--both-ways", action="store_true", help="sources suite: also test on the left half")
    ap.add_argument("--seed", type=int, default=0,
                    help="sources suite: seed of the networks, the prior's training and its sampled maps")
    ap.add_argument("--snr", type=lambda s: [float(v) for v in s.split(",")], default=[15.0, 20.0, 30.0, 40.0])
    ap.add_argument("--variability", type=float, default=0.15)
    ap.add_argument("--p", type=int, default=5)
    ap.add_argument("--maps", choices=("default", "procedural", "rough", "regions", "sharp", "dirichlet"), default="default",
                    help="sim suite: the scenes' abundance maps (default: this suite's smooth fields; the others "
                         "are benchmarks/refine.py's kinds)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--stripes", type=float, default=0.0,
                    help="sim suite: each column's detector gain per band off by this std in %% (add_stripes)")
    ap.add_argument("--resample", default="", choices=("", "nearest", "bilinear", "cubic"),
                    help="sim suite: the scene (cube and true maps alike) resampled onto a map grid turned "
                         "--resample-angle degrees, as a map-grid product is (map_grid)")
    ap.add_argument("--resample-angle", type=float, default=10.0)
    ap.add_argument("--stripe-angle", type=float, default=0.0,
                    help="sim suite: the stripes run along lines this many degrees from the image columns, as in a "
                         "map-grid product (add_stripes)")
    ap.add_argument("--noise", choices=("flat", "sensor"), default="flat",
                    help="sim suite: the scenes' noise the same in every band, or spread over the bands like a "
                         "real sensor's (sensor_noise_profile), at the same global SNR")
    add_product_options(ap, "sim suite: ")
    ap.add_argument("--stripe-model", default=None, choices=("scene", "none"),
                    help="HybridSTU's stripes in its training scenes (default: the estimator's)")
    ap.add_argument("--noise-profile", default=None, choices=("scene", "white"),
                    help="HybridSTU's training noise profile (default: the estimator's)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--ks", type=lambda s: [int(v) for v in s.split(",")], default=[5, 1])
    ap.add_argument("--lam", type=float, default=0.0)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--front", default=None, help="HybridSTU front end (default: the estimator's)")
    ap.add_argument("--map-smoothing", type=lambda v: v if v == "auto" else float(v), default=None,
                    help="HybridSTU's training-map smoothing width (default: the estimator's)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--blind", action="store_true", help="also run the blind default on simulated scenes")
    ap.add_argument("--no-stu", action="store_true", help="sim suite: baselines only (FCLS, and --blind)")
    ap.add_argument("--speed-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[500, 1000])
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--tmp", default=None, help="folder for the speed suite's memory-mapped cubes")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    print("#", " ".join(shlex.quote(a) for a in ["benchmarks/semiblind.py", *(argv or sys.argv[1:])]), flush=True)
    {"sim": suite_sim, "real": suite_real, "speed": suite_speed, "sources": suite_sources,
     "bound": suite_bound, "rank": suite_rank}[args.suite](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
