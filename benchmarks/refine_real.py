"""Refinement on Samson and Jasper Ridge from two inits (VCA + FCLS, the blind default):
init vs refined abundance RMSE %, SAD, SRE, reconstruction PSNR, mean SAM, the guard's
decisions, calibration of the abundance samples against the reference maps, seconds.

    PYTHONPATH=src python benchmarks/refine_real.py --samples 16 --steps 5
    PYTHONPATH=src python benchmarks/refine_real.py --scenes jasper --endmember-tolerance 0   # without the pull
    PYTHONPATH=src python benchmarks/refine_real.py --scenes samson --samson-wavelengths 401:889   # with the spectra prior
    PYTHONPATH=src python benchmarks/refine_real.py --scenes jasper --jasper-wavelengths usgs   # with the spectra prior

Neither file stores band centres. Samson's are evenly spaced; Jasper Ridge's 198 bands are
AVIRIS bands (``SlectBands``, 1-based), whose centres step back at the detector overlaps,
so the bands are put in increasing wavelength first (`scene.take_bands`, as
``unmixgen convert --wavelengths FILE`` does).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from refine import calibration, mixing_label
from semiblind import DATA, metrics, real_scene
from unmixgen.evaluate.unmixing import match_endmembers
from unmixgen.priors.abundance.model import AbundanceModel
from unmixgen.priors.spectra.model import load_spectra_prior
from unmixgen.refine.mixing import MIXING
from unmixgen.refine.posterior import refine
from unmixgen.scene import take_bands
from unmixgen.unmix.archetypal import abundance_basis
from unmixgen.unmix.extraction import vca
from unmixgen.unmix.inversion import fcls
from unmixgen.unmix.registry import DEFAULT_METHOD, make_method
from unmixgen.wavelengths import wavelengths_from_spec
from unmixgen.workflows.refinement import DEFAULT_ABUNDANCE_PRIOR, _shipped


def jasper_band_centres() -> np.ndarray:
    """Jasper Ridge's band centres in nm, in the file's band order: AVIRIS's, as the USGS
    1995 library (resampled to AVIRIS) lists them in its first column, at ``SlectBands``."""
    import scipy.io as sio

    selected = sio.loadmat(DATA / "jasper_ridge/jasperRidge2_R198.mat")["SlectBands"].ravel().astype(int)
    aviris_um = sio.loadmat(DATA / "usgs_library/USGS_1995_Library.mat")["datalib"][:, 0]
    return 1000.0 * aviris_um[selected - 1].astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--scenes", default="samson,jasper")
    ap.add_argument("--endmember-tolerance", type=float, default=None,
                    help="refine's endmember_tolerance (0: no spectra-prior pull; default: refine's)")
    ap.add_argument("--samson-wavelengths", default=None,
                    help="START:STOP band centres for Samson (its file has none; Zhu: about 401-889 nm), so the "
                         "spectra prior runs there too")
    ap.add_argument("--jasper-wavelengths", default=None,
                    help="'usgs' (the AVIRIS band centres of the USGS library's first column at the file's "
                         "SlectBands) or a file with one centre per band in the file's order")
    ap.add_argument("--mixing", default="auto", choices=MIXING, help="mixing model of the data steps")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ab = AbundanceModel(_shipped(DEFAULT_ABUNDANCE_PRIOR))
    sp = load_spectra_prior(None)
    print("| scene | init | RMSE% init→ref | SAD° init→ref | SRE dB init→ref | PSNR init→ref | SAM° init→ref | "
          "kept px | E kept | cov50 | cov90 | Spearman | CRPS | s | lam | mixing |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.scenes.split(","):
        scene = real_scene(name)
        if name == "samson" and args.samson_wavelengths:
            scene.wavelengths = wavelengths_from_spec(args.samson_wavelengths, scene.bands)
        if name == "jasper" and args.jasper_wavelengths:
            wl = jasper_band_centres() if args.jasper_wavelengths == "usgs" else \
                wavelengths_from_spec(args.jasper_wavelengths, scene.bands, any_order=True)
            order = np.argsort(wl, kind="stable")
            scene = take_bands(scene, order, wavelengths=wl[order])
        cube = scene.load()
        p = scene.truth.endmembers.shape[0]
        for init in ("vca+fcls", DEFAULT_METHOD):
            basis = None
            if init == "vca+fcls":
                E0 = vca(scene.valid_pixels(), p, seed=0)[1]
                A0 = scene.to_image(fcls(scene.valid_pixels(), E0))
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = make_method(DEFAULT_METHOD, p, seed=0).fit(scene)
                E0, A0 = m.endmembers_, m.abundances_
                basis = abundance_basis(m)  # as `unmixgen refine` reads the result
            E0, A0 = np.asarray(E0, np.float32), np.asarray(A0, np.float32)
            m0 = metrics(scene, E0, A0)
            t = time.perf_counter()
            # the spectra prior needs wavelengths (the Samson file has none): abundances only there
            r = refine(cube, E0, A0, abundance_prior=ab, spectra_prior=sp if scene.wavelengths is not None else None,
                       mask=scene.mask,
                       wavelengths=scene.wavelengths, fwhm=scene.fwhm, samples=args.samples, steps=args.steps,
                       # both inits extract their endmembers from the scene, as `unmixgen refine` sees it
                       rounds=None, endmembers_fitted=True, abundance_basis=basis,
                       mixing=args.mixing,
                       **({} if args.endmember_tolerance is None else
                          {"endmember_tolerance": args.endmember_tolerance}))
            sec = time.perf_counter() - t
            m1 = metrics(scene, r.endmembers, r.abundances, brightness=r.brightness)
            perm = match_endmembers(r.endmembers, scene.truth.endmembers, by="sad")
            c = calibration(r.abundance_samples[:, scene.mask][..., perm], scene.truth.abundances[scene.mask])
            g = r.record["guard"]
            f = lambda k, m0=m0, m1=m1: f"{m0[k]:.2f}→{m1[k]:.2f}"  # noqa: E731
            print(f"| {name} | {init} | {f('rmse')} | {f('sad')} | {f('sre')} | {f('psnr')} | {f('sam')} | "
                  f"{100 * g['pixels_kept_fraction']:.0f}% | {g['endmembers_kept']} | {c['cov50']:.2f} | "
                  f"{c['cov90']:.2f} | {c['spearman']:.2f} | {c['crps']:.4f} | {sec:.1f} | {r.record['lam']:g} "
                  f"({r.record['rounds']} round{'s' if r.record['rounds'] > 1 else ''}) | {mixing_label(r.record)} |",
                  flush=True)


if __name__ == "__main__":
    main()
