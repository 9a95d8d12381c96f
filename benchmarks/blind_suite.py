"""Blind unmixing development suite: every method on 24 fixed simulated scenes + Samson, Jasper.

The suite is fixed (parameters and seeds below) before any method is tuned on it, so a
default chosen on it can be judged on scenes it was not chosen on. It spans:

- purity: pure pixels, and no pure pixels (largest abundance capped at 0.5 .. 0.9);
- p = 3 .. 9 endmembers; SNR 20 .. 40 dB (white noise); 64 .. 224 bands;
- smooth maps and patchy maps (Voronoi regions), sparse mixtures (each pixel keeps only
  its 2 or 3 largest abundances);
- brightness variation (ELMM scaling of the endmembers, ``simulate(variability=...)``);
- dark endmembers (water, a flat 2 % "shade" spectrum);
- procedural spectra (`simulate.procedural.library`) and USGS 1995 library minerals.

Per scene and method: abundance RMSE (%), mean SAD (degrees), seconds. Summary lines: for
every scene the default's RMSE over the best of the project's own methods, and the median
over scenes of the default's RMSE over VCA + FCLS's (targets 1.1 and 0.8, issue 11).

    PYTHONPATH=src .venv/bin/python benchmarks/blind_suite.py --threads 1
    PYTHONPATH=src .venv/bin/python benchmarks/blind_suite.py --methods edaa,vca --scenes s01,s02
    PYTHONPATH=src .venv/bin/python benchmarks/blind_suite.py --list      # the scene table
    PYTHONPATH=src .venv/bin/python benchmarks/blind_suite.py --methods auto --threads 2 \
        --scenes speed-p6,speed-p6-var,speed-p9,speed-p9-var          # 100 x 100 x 200 speed cases

``--jsonl FILE`` appends one JSON line per (scene, method); ``--previous FILE`` adds the rows
of an earlier run to the summary, so a new default can be compared with methods run before.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

USGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "usgs_library" / "USGS_1995_Library.mat"

#: USGS 1995 minerals used by the library scenes (substring names, see load_library_spectra)
MINERALS = ("Alunite GDS84", "Buddingtonite GDS85", "Calcite WS272", "Kaolinite CM9", "Montmorillonite SWy-1",
            "Muscovite GDS107", "Nontronite GDS41", "Hematite GDS27", "Lawn_Grass", "Jarosite GDS99",
            "Pyrophyllite PYS1A fine", "Goethite WS222", "Dolomite HS102", "Chlorite HS179")


@dataclass(frozen=True)
class Case:
    """One suite scene. ``source``: "proc" (procedural kinds) or "usgs" (mineral indices)."""

    name: str
    source: str
    members: tuple  # procedural kinds, or indices into MINERALS; "shade" = flat 2 % spectrum
    bands: int
    snr_db: float
    size: int = 64
    max_abundance: float | None = None  # None: pure pixels (3 per endmember) inserted
    purity: float = 3.0
    regions: int = 0
    sparse: int = 0  # keep only the k largest abundances per pixel (0: all)
    variability: float = 0.0  # std of log ELMM scaling factors
    seed: int = 0
    noise: str = "flat"  # or "sensor": spread over the bands like a sensor's (semiblind.sensor_noise_profile)
    derived: str = ""  # "duplicate", "interpolated" or "constant": bands a producer made from others (`derive_bands`)
    outliers: str = ""  # "saturated" or "spikes": a quarter of a percent of pixels that are no mixture (`add_outliers`)
    artefact: str = ""  # a pushbroom sensor's: a dead, stuck or hot detector column, lost lines, stripes (`add_artefact`)
    dirichlet: float = 0.0  # > 0: per-pixel Dirichlet(dirichlet) draws, no spatial structure (the field's classic)


P = "proc"
U = "usgs"
SUITE: tuple[Case, ...] = (
    Case("s01", P, ("vegetation", "soil", "asphalt"), 224, 30, seed=1),
    Case("s02", P, ("vegetation", "soil", "water", "asphalt"), 211, 30, max_abundance=0.8, seed=2),
    Case("s03", P, ("vegetation", "soil", "water", "asphalt", "concrete"), 150, 25, max_abundance=0.7,
         regions=8, seed=3),
    Case("s04", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation"), 100, 30,
         max_abundance=0.75, seed=4),
    Case("s05", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation"), 211, 30,
         max_abundance=0.56, seed=5),
    Case("s06", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation", "roof"), 150, 35,
         regions=12, seed=6),
    Case("s07", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation", "roof",
                    "kaolinite", "metal"), 100, 40, size=80, seed=7),
    Case("s08", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation", "roof",
                    "kaolinite", "metal"), 211, 30, size=80, max_abundance=0.9, seed=8),
    Case("s09", U, (0, 3, 7, 8, 12), 224, 30, sparse=2, seed=9),
    Case("s10", U, (2, 4, 8, 11), 224, 20, seed=10),
    Case("s11", U, (0, 1, 3, 6, 8, 13), 150, 40, max_abundance=0.7, seed=11),
    Case("s12", U, (0, 1, 2, 3, 6, 7, 8, 10), 224, 25, size=72, sparse=3, regions=10, seed=12),
    Case("s13", U, (3, 7, 8), 100, 30, max_abundance=0.6, seed=13),
    Case("s14", P, ("vegetation", "soil", "asphalt", "roof"), 211, 30, variability=0.2, seed=14),
    Case("s15", P, ("vegetation", "soil", "water", "concrete", "dry_vegetation"), 150, 25, max_abundance=0.8,
         variability=0.3, seed=15),
    Case("s16", U, (1, 2, 6, 8, 11), 224, 35, variability=0.15, regions=6, seed=16),
    Case("s17", P, ("vegetation", "water", "shade"), 64, 30, seed=17),
    Case("s18", P, ("vegetation", "soil", "water", "shade", "concrete"), 100, 30, max_abundance=0.8, seed=18),
    Case("s19", U, (0, 3, 4, 8, 12, "shade"), 224, 20, regions=10, seed=19),
    Case("s20", P, ("vegetation", "soil", "water", "asphalt"), 211, 40, max_abundance=0.5, seed=20),
    Case("s21", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation", "roof",
                    "kaolinite"), 150, 20, size=72, regions=14, seed=21),
    Case("s22", U, (0, 2, 3, 6, 7, 8, 13), 64, 25, max_abundance=0.85, seed=22),
    Case("s23", P, ("vegetation", "soil", "water", "asphalt", "concrete", "roof"), 64, 35, sparse=2, seed=23),
    Case("s24", U, (0, 1, 2, 3, 4, 6, 7, 8, 11), 150, 30, size=80, max_abundance=0.8, seed=24),
)
#: sensor-noise cases: suite scenes (s10, s02, s13, s14, s03) with the noise spread over the bands as a real
#: sensor's is (20-60x between bands, at the same global SNR); run with --scenes n01,...,n05
SENSOR = (
    Case("n01", U, (2, 4, 8, 11), 224, 20, seed=10, noise="sensor"),
    Case("n02", P, ("vegetation", "soil", "water", "asphalt"), 211, 30, max_abundance=0.8, seed=2, noise="sensor"),
    Case("n03", U, (3, 7, 8), 100, 30, max_abundance=0.6, seed=13, noise="sensor"),
    Case("n04", P, ("vegetation", "soil", "asphalt", "roof"), 211, 30, variability=0.2, seed=14, noise="sensor"),
    Case("n05", P, ("vegetation", "soil", "water", "asphalt", "concrete"), 150, 25, max_abundance=0.7,
         regions=8, seed=3, noise="sensor"),
)
#: sensor-noise cases with bands a producer made from others (n01, n02, n05 again): five bands copied from
#: their neighbour, five interpolated from their two neighbours, two dead bands filled with zeros;
#: run with --scenes n06,n07,n08
SENSOR += (
    Case("n06", U, (2, 4, 8, 11), 224, 20, seed=10, noise="sensor", derived="duplicate"),
    Case("n07", P, ("vegetation", "soil", "water", "asphalt"), 211, 30, max_abundance=0.8, seed=2, noise="sensor",
         derived="interpolated"),
    Case("n08", P, ("vegetation", "soil", "water", "asphalt", "concrete"), 150, 25, max_abundance=0.7,
         regions=8, seed=3, noise="sensor", derived="constant"),
)
#: outlier cases: suite scenes (s01, s01, s10, s14, s03, n02) with 0.25 % of their pixels saturated (flat at
#: the scene's maximum) or spiked (three bands x5), as detectors, glints and cosmic hits leave them; the
#: RMSE counts those pixels against their mixtures' truth; run with --scenes o01,...,o06
OUTLIERS = (
    Case("o01", P, ("vegetation", "soil", "asphalt"), 224, 30, seed=1, outliers="saturated"),
    Case("o02", P, ("vegetation", "soil", "asphalt"), 224, 30, seed=1, outliers="spikes"),
    Case("o03", U, (2, 4, 8, 11), 224, 20, seed=10, outliers="saturated"),
    Case("o04", P, ("vegetation", "soil", "asphalt", "roof"), 211, 30, variability=0.2, seed=14,
         outliers="saturated"),
    Case("o05", P, ("vegetation", "soil", "water", "asphalt", "concrete"), 150, 25, max_abundance=0.7,
         regions=8, seed=3, outliers="spikes"),
    Case("o06", P, ("vegetation", "soil", "water", "asphalt"), 211, 30, max_abundance=0.8, seed=2, noise="sensor",
         outliers="spikes"),
)
SENSOR += OUTLIERS
#: pushbroom artefacts (`add_artefact`) on n01 (USGS p = 4, 20 dB, sensor noise) and s01: a detector column
#: dead (zero) or hot (the scene's maximum) in the SWIR bands, two lines lost in the SWIR, a column stuck at
#: one value, columns striped (2 % gain, 0.2 % offset); run with --scenes a01,...,a05
ARTEFACTS = (
    Case("a01", U, (2, 4, 8, 11), 224, 20, seed=10, noise="sensor", artefact="dead-column"),
    Case("a02", U, (2, 4, 8, 11), 224, 20, seed=10, noise="sensor", artefact="hot-column"),
    Case("a03", U, (2, 4, 8, 11), 224, 20, seed=10, noise="sensor", artefact="lost-lines"),
    Case("a04", P, ("vegetation", "soil", "asphalt"), 224, 30, seed=1, artefact="stuck-column"),
    Case("a05", U, (2, 4, 8, 11), 224, 20, seed=10, noise="sensor", artefact="stripes"),
)
SENSOR += ARTEFACTS
#: maps without spatial structure, the field's classic simulation: every pixel an independent Dirichlet draw
#: (below ``max_abundance``, or with 3 pure pixels per endmember inserted); run with --scenes d01,...,d06
DIRICHLET = (
    Case("d01", U, (0, 3, 7, 8), 224, 30, max_abundance=0.8, dirichlet=1.0, seed=31),
    Case("d02", U, (0, 1, 3, 6, 8, 13), 224, 20, dirichlet=1.0, seed=32),
    Case("d03", U, (1, 2, 6, 8, 11), 150, 40, max_abundance=0.9, dirichlet=1.0, seed=33),
    Case("d04", P, ("vegetation", "soil", "water", "asphalt", "concrete"), 211, 25, max_abundance=0.85,
         dirichlet=0.5, seed=34),
    Case("d05", U, (0, 1, 2, 3, 6, 7, 8, 10), 224, 30, size=72, dirichlet=1.0, seed=35),
    Case("d06", P, ("vegetation", "soil", "asphalt", "roof"), 211, 30, max_abundance=0.8, variability=0.2,
         dirichlet=1.0, seed=36),
)
SENSOR += DIRICHLET
REAL_SCENES = ("samson", "jasper")
#: speed cases (issue 11 targets: <= 10 s for p <= 6, <= 20 s for p = 9 on 100 x 100 x 200)
SPEED = (
    Case("speed-p6", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation"), 200, 30,
         size=100, max_abundance=0.8, seed=101),
    Case("speed-p6-var", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation"), 200, 30,
         size=100, max_abundance=0.8, variability=0.2, seed=102),
    Case("speed-p9", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation", "roof",
                         "kaolinite", "metal"), 200, 30, size=100, max_abundance=0.8, seed=103),
    Case("speed-p9-var", P, ("vegetation", "soil", "water", "asphalt", "concrete", "dry_vegetation", "roof",
                             "kaolinite", "metal"), 200, 30, size=100, max_abundance=0.8, variability=0.2, seed=104),
)


def _spectra(case: Case):
    """``(E (p, bands) float32, wavelengths (bands,) nm, names)`` for a case."""
    from unmixgen.simulate.procedural import library

    if case.source == "proc":
        wl = np.linspace(400.0, 2500.0, case.bands)
        kinds = [k for k in case.members if k != "shade"]
        E, names = library(wl, kinds, rng=case.seed)
        E, names = list(E), list(names)
    else:
        from unmixgen.runs.endmembers import load_library_spectra

        idx = [m for m in case.members if m != "shade"]
        lib = load_library_spectra(USGS, [MINERALS[i] for i in idx])
        keep = np.linspace(0, lib.spectra.shape[1] - 1, case.bands).round().astype(int)
        wl = np.asarray(lib.wavelengths, np.float64)[keep]
        E, names = list(lib.spectra[:, keep]), list(lib.names)
    if "shade" in case.members:  # dark, nearly flat: shadow / deep water
        E.append((0.02 + 0.005 * (wl - wl[0]) / (wl[-1] - wl[0])).astype(np.float32))
        names.append("shade")
    return np.asarray(E, np.float32), wl, names


def _abundances(case: Case, p: int) -> np.ndarray:
    from unmixgen.simulate.procedural import abundance_maps

    rng = np.random.default_rng(1000 + case.seed)
    if case.dirichlet:
        return _dirichlet_abundances(case, p, rng)
    A = abundance_maps(case.size, case.size, p, rng, purity=case.purity, regions=case.regions,
                       pure_pixels=case.max_abundance is None and not case.sparse,
                       max_abundance=case.max_abundance)
    if case.sparse:
        kth = np.sort(A, axis=-1)[..., -case.sparse][..., None]
        A = np.where(A >= kth, A, 0.0)
        A /= A.sum(-1, keepdims=True)
        # pure pixels after sparsification, so the sparse scenes keep pure-pixel truth
        flat = A.reshape(-1, p)
        for k in range(p):
            i = int(np.argmax(flat[:, k]))
            flat[i] = 0.0
            flat[i, k] = 1.0
    return A.astype(np.float32)


def _dirichlet_abundances(case: Case, p: int, rng: np.random.Generator) -> np.ndarray:
    """``(size, size, p)`` float32 independent Dirichlet(``case.dirichlet``) pixels: each drawn again
    until none of its abundances exceeds ``case.max_abundance``, or (None) with 3 pure pixels per
    endmember at random places."""
    n, cap, parts = case.size * case.size, case.max_abundance or 1.0, []
    while sum(len(a) for a in parts) < n:
        a = rng.dirichlet(np.full(p, case.dirichlet), size=2 * n)
        parts.append(a[a.max(1) <= cap])
    A = np.concatenate(parts)[:n]
    if case.max_abundance is None:
        at = rng.choice(n, 3 * p, replace=False)
        A[at] = np.repeat(np.eye(p), 3, axis=0)
    return A.reshape(case.size, case.size, p).astype(np.float32)


def build_scene(case: Case):
    """The `Scene` (with ground truth) of a suite case, deterministic."""
    from unmixgen.simulate.scene import simulate

    E, wl, names = _spectra(case)
    A = _abundances(case, E.shape[0])
    band_std = None
    if case.noise == "sensor":
        from semiblind import sensor_noise_profile

        band_std = sensor_noise_profile(wl, case.seed)
    sim = simulate(A, E, wavelengths=wl, snr_db=case.snr_db, variability=case.variability or None, band_std=band_std,
                   names=names, seed=case.seed)[0]
    if case.derived:
        sim.cube = derive_bands(sim.cube, case.derived)
    if case.outliers:
        sim.cube = add_outliers(sim.cube, case.outliers, case.seed)
    scene = sim.to_scene(name=case.name)
    if case.artefact:  # read as a product is: valid pixels judged from the values (no-data, stuck lines)
        from unmixgen.scene import Scene

        scene = Scene(add_artefact(sim.cube, wl, case.artefact, case.seed), wavelengths=wl, truth=scene.truth,
                      name=case.name, units="reflectance")
    return scene


def add_product_options(ap, prefix: str = "") -> None:
    """``--derived`` and ``--outliers`` on the argparse parser ``ap`` (`derive_bands`,
    `add_outliers`), for the suites that simulate their scenes; ``prefix`` starts their help."""
    ap.add_argument("--derived", default="", choices=("", "duplicate", "interpolated", "constant"),
                    help=f"{prefix}make some bands from others as products do (blind_suite.derive_bands): five "
                         "copied from their neighbour, five interpolated, or two dead bands filled with zeros")
    ap.add_argument("--outliers", default="", choices=("", "saturated", "spikes"),
                    help=f"{prefix}0.25 %% of the pixels no mixture (blind_suite.add_outliers): flat at the scene's "
                         "maximum, or three bands x5")


def add_outliers(cube: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """``cube (rows, cols, B)`` with a quarter of a percent of its pixels (at least one) no mixture:
    flat at the cube's maximum (``"saturated"``) or with three random bands five times as bright
    (``"spikes"``)."""
    rng = np.random.default_rng([seed, 99])
    cube = cube.copy()
    flat = cube.reshape(-1, cube.shape[-1])
    for i in rng.choice(len(flat), max(1, len(flat) // 400), replace=False):
        if kind == "saturated":
            flat[i] = cube.max()
        else:
            flat[i, rng.choice(flat.shape[1], 3, replace=False)] *= 5
    return cube


def add_artefact(cube: np.ndarray, wl: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """``cube (rows, cols, B)`` (bands ``wl`` nm) with a pushbroom sensor's artefact in its SWIR
    bands (> 1000 nm): column 10 read as zero (``"dead-column"``), column 30 at the cube's
    maximum (``"hot-column"``), rows 20-21 zero (``"lost-lines"``), column 10 stuck at 0.25
    (``"stuck-column"``), or each column's own gain (std 2 %, stronger at the detector's ends)
    and offset (0.2 % of the cube's maximum) per band (``"stripes"``)."""
    cube = cube.copy()
    swir = np.asarray(wl) > 1000
    if kind == "dead-column":
        cube[:, 10, swir] = 0.0
    elif kind == "hot-column":
        cube[:, 30, swir] = cube.max()
    elif kind == "lost-lines":
        cube[20:22, :, swir] = 0.0
    elif kind == "stuck-column":
        cube[:, 10, swir] = 0.25
    elif kind == "stripes":
        rng = np.random.default_rng([seed, 5])
        cols, bands = cube.shape[1], cube.shape[2]
        gain = column_gains(rng, cols, bands, 0.02, swir)
        offset = 0.002 * float(cube.max()) * rng.standard_normal((cols, bands)) * swir[None]
        cube = (cube * gain[None] + offset[None]).astype(np.float32)
    else:
        raise ValueError(f"unknown artefact {kind!r}")
    return cube


def column_gains(rng: np.random.Generator, cols: int, bands: int, std: float, in_bands=None) -> np.ndarray:
    """Each detector element's gain ``(cols, bands)`` of a pushbroom sensor: ``1 + std z`` (z
    standard normal from ``rng``), twice as spread at the detector's ends; 1 outside the bool
    ``in_bands (bands,)`` when given."""
    ends = 1 + np.abs(np.linspace(-1, 1, cols)) ** 4
    spread = std * rng.standard_normal((cols, bands)) * ends[:, None]
    return 1 + (spread if in_bands is None else spread * in_bands[None])


def derive_bands(cube: np.ndarray, kind: str) -> np.ndarray:
    """``cube (rows, cols, B)`` with some bands made from others, as products have them: five bands
    (at 1/6 ... 5/6 of the range) copied from the band before (``"duplicate"``) or the mean of the
    two beside (``"interpolated"``), or two bands filled with zeros (``"constant"``, at 1/3, 2/3)."""
    cube = cube.copy()
    B = cube.shape[-1]
    if kind == "constant":
        cube[..., [B // 3, 2 * B // 3]] = 0.0
        return cube
    for b in (B * k // 6 for k in range(1, 6)):
        cube[..., b] = cube[..., b - 1] if kind == "duplicate" else 0.5 * (cube[..., b - 1] + cube[..., b + 1])
    return cube


def describe(case: Case) -> str:
    purity = "pure" if case.max_abundance is None else f"max{case.max_abundance:g}"
    extra = [f"sparse{case.sparse}" if case.sparse else "", f"regions{case.regions}" if case.regions else "",
             f"var{case.variability:g}" if case.variability else "", "dark" if
             ("shade" in case.members or "water" in case.members) else "",
             "sensor-noise" if case.noise == "sensor" else "", case.derived and f"{case.derived}-bands",
             case.outliers and f"{case.outliers}-pixels", case.artefact,
             case.dirichlet and f"dirichlet{case.dirichlet:g}"]
    return (f"{case.source} p={len(case.members)} B={case.bands} {case.snr_db:g}dB {case.size}x{case.size} "
            f"{purity} " + " ".join(e for e in extra if e))


def get_scene(name: str):
    if name in REAL_SCENES:
        from unmixing_quality import real_scene

        return real_scene(name)
    return build_scene(next(c for c in SUITE + SPEED + SENSOR if c.name == name))


def run_method(method: str, scene, seed: int = 0) -> dict:
    from unmixgen.errors import ConvergenceWarning
    from unmixgen.evaluate.unmixing import evaluate
    from unmixgen.unmix.registry import make_method

    p = scene.truth.n_endmembers
    m = make_method(method, p, seed=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(scene)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    r = evaluate(endmembers=m.endmembers_, abundances=m.abundances_, ref_endmembers=scene.truth.endmembers,
                 ref_abundances=scene.truth.abundances)
    return {"rmse": float(r["abundance_rmse_percent"]), "sad": float(r["sad_deg_mean"]), "s": dt, "cpu": cpu,
            "chosen": m.info_.get("chosen")}


def summarize(results: dict, default: str, methods: list[str], own: list[str]) -> list[str]:
    """Summary lines: per-scene ratio default / best own method, median ratio default / vca."""
    lines, ratios_best, ratios_vca = [], [], []
    for sc, row in results.items():
        if default not in row:
            continue
        best = min((row[m]["rmse"], m) for m in own if m in row)
        rb = row[default]["rmse"] / best[0]
        ratios_best.append(rb)
        rv = row[default]["rmse"] / row["vca"]["rmse"] if "vca" in row else float("nan")
        ratios_vca.append(rv)
        flag = "ok " if rb <= 1.1 else "MISS"
        lines.append(f"{sc:7s} default/best-own {rb:5.2f} ({best[1]} {best[0]:.2f}) {flag}  default/vca {rv:5.2f}")
    if ratios_best:
        rb, rv = np.array(ratios_best), np.array(ratios_vca)
        lines.append(f"SUMMARY default={default}: scenes within 1.1x of best own method: {(rb <= 1.1).sum()}/{rb.size}"
                     f" (worst {rb.max():.2f}); median default/vca RMSE ratio {np.nanmedian(rv):.2f} (target <= 0.8)")
    return lines


def rank_table(scenes: list[str]) -> int:
    """Print the ``-p auto`` estimate (`scene_rank`: the spatial one, with any stripes taken into
    the noise) and HySime's against the true p; "ok" when within 1."""
    from unmixgen.unmix.rank import hysime
    from unmixgen.unmix.spatial_rank import scene_rank

    print(f"{'scene':7s} {'true p':>6s} {'SNR':>4s} {'auto':>5s} {'regime':9s} {'HySime':>6s}  within 1")
    hits = 0
    counted = 0
    for sc in scenes:
        scene = get_scene(sc)
        if scene is None:
            continue
        p = scene.truth.n_endmembers
        snr = "real" if sc in REAL_SCENES else f"{next(c for c in SUITE + SPEED + SENSOR if c.name == sc).snr_db:g}"
        est = scene_rank(scene)
        hy = hysime(scene.valid_pixels()).n_endmembers
        ok = abs(est.n_endmembers - p) <= 1
        if snr == "real" or float(snr) >= 25:
            counted += 1
            hits += ok
        print(f"{sc:7s} {p:6d} {snr:>4s} {est.n_endmembers:5d} {est.regime:9s} {hy:6d}  {'ok' if ok else 'MISS'}")
    print(f"within 1 of the true p on {hits}/{counted} scenes with SNR >= 25 dB or real")
    return 0


def main(argv: list[str] | None = None) -> int:
    from unmixgen.unmix.registry import DEFAULT_METHOD, METHODS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(sorted(METHODS)), help="comma-separated registry names")
    ap.add_argument("--scenes", default=",".join([c.name for c in SUITE] + list(REAL_SCENES)))
    ap.add_argument("--default", default=DEFAULT_METHOD, help="method judged against the targets")
    ap.add_argument("--threads", type=int, default=1, help="torch / BLAS threads")
    ap.add_argument("--seed", type=int, default=0, help="the methods' seed (the scenes stay fixed)")
    ap.add_argument("--jsonl", default=None, help="append one JSON line per (scene, method) here")
    ap.add_argument("--previous", default=None,
                    help="a --jsonl file of an earlier run: its rows join the summary (rows run now win)")
    ap.add_argument("--list", action="store_true", help="print the scene table and exit")
    ap.add_argument("--rank", action="store_true",
                    help="print the n_endmembers='auto' estimate (and HySime's) per scene and exit")
    args = ap.parse_args(argv)
    if args.list:
        for c in SUITE + SENSOR:
            print(c.name, describe(c))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    if args.rank:
        return rank_table([s for s in args.scenes.split(",") if s])
    methods = [m for m in args.methods.split(",") if m]
    own = sorted(METHODS)
    print("command:", shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(argv))
    header = f"{'scene':7s} {'method':8s} {'RMSE %':>7s} {'SAD deg':>8s} {'s':>7s} {'cpu s':>7s}  description"
    print(header)
    print("-" * 100)
    results: dict = {}
    if args.previous:
        for line in Path(args.previous).read_text().splitlines():
            row = json.loads(line)
            results.setdefault(row.pop("scene"), {})[row.pop("method")] = row
    for sc in [s for s in args.scenes.split(",") if s]:
        scene = get_scene(sc)
        if scene is None:
            print(f"{sc:7s} (data not found)")
            continue
        desc = sc if sc in REAL_SCENES else describe(next(c for c in SUITE + SPEED + SENSOR if c.name == sc))
        for method in methods:
            r = run_method(method, scene, seed=args.seed)
            results.setdefault(sc, {})[method] = r
            chosen = f" [{r['chosen']}]" if r.get("chosen") else ""
            print(f"{sc:7s} {method:8s} {r['rmse']:7.2f} {r['sad']:8.2f} {r['s']:7.2f} {r['cpu']:7.2f}  {desc}{chosen}",
                  flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps({"scene": sc, "method": method, "seed": args.seed, **r}) + "\n")
    print()
    for line in summarize(results, args.default, methods, own):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
