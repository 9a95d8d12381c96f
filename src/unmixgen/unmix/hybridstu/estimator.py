"""`HybridSTU`: semi-blind unmixing (known endmembers) with a CNN trained on simulated scenes.

``fit(scene, endmembers=E, maps=...)``:

1. validates the scene and ``E (p, bands)`` (on the scene's bands), the neighbourhood ``k``
   and the number of valid pixels;
2. estimates the scene's SNR (HySime noise estimate) unless ``snr_db`` is given, and the
   brightness of its pixels relative to ``E`` (median and log-std, `data.estimate_brightness`);
3. takes training maps from ``maps``: arrays ``(N, h, w, p)`` or an iterable of
   ``(h, w, p)`` (e.g. maps synthesized by an abundance prior, or real maps), or
   ``"grf"`` / ``"dirichlet"``: a Gaussian random field or a per-pixel Dirichlet fitted to
   the scene's own (smoothed) maps of the base answer (`unmixgen.evaluate.baselines`);
4. simulates training pairs with the scene's SNR and brightness (`unmixgen.unmix.hybridstu.data`)
   and trains the network (`unmixgen.nn.trainer.Trainer`) with early stopping on a spatially
   disjoint validation part: the weights kept are the EMA weights of the best validation
   abundance RMSE (step 0, the base answer itself, included);
5. calibrates the data-fit guard on the validation pixels (`unmixgen.unmix.hybridstu.guard`);
6. applies the network and the guard to the scene (`transform`), tile by tile with a halo of
   the receptive radius (`unmixgen.tiling.map_tiles`), so the result equals the untiled one.

The network's input is set by ``front``: by default the per-pixel endmember-subspace
features (`unmixgen.unmix.hybridstu.features`), from which it learns a correction of a
per-pixel answer (``base``): FCLS, or the brightness-free NNLS answer of the scaled model
(``"scaled"``), for scenes whose pixels are brightness-scaled mixtures of the endmembers.
``base="auto"`` takes the one with the lower abundance RMSE on the simulated validation
part (no reference map is used), and then fits ``"grf"``/``"dirichlet"`` training maps to
the scene's maps of that answer; ``front="bands"`` feeds all bands to a 3D stem (no base,
no guard). Invalid pixels (NaN, nodata, ...) are zeroed before the network sees them (like
the zero padding beyond the scene border) and come out as NaN. Bands the scene marks bad
are not used. The model folder (`save_pretrained`) is an `unmixgen.nn.checkpoint` folder of
kind ``"hybridstu"`` with the endmembers in ``endmembers.npz``; folders written before the
``3 p + 1`` features are refused with a request to retrain.
"""

from __future__ import annotations

import inspect
import math
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import InputError, ParameterError, brief, check_range, in_file
from ...nn import checkpoint as ck
from ...nn.device import resolve_device
from ...nn.seeds import seed_torch
from ...nn.trainer import Trainer, check_budget
from ...scene import Scene, as_scene, check_bands_last
from ...tiling import map_tiles
from ...wavelengths import SAME_GRID_NM, check_wavelengths, grid_offset_nm
from ..base import NotFittedError
from ..inversion import pixel_brightness
from ..params import EstimatorParams
from ..rank import band_noise_variance, enough_for_band_noise, weights_from_noise
from ..stripes import column_stripes
from . import data as D
from .features import BASES, n_features, subspace_features
from .guard import calibrate, guarded
from .loss import stu_loss, subspace_loss
from .network import FRONTS, HybridSTUNet, check_k, receptive_radius
from .smoothing import auto_smoothing, map_noise_variance, smooth_maps

KIND = "hybridstu"
MAP_SOURCES = ("grf", "dirichlet")
NOISE_PROFILES = ("scene", "white")
STRIPE_MODELS = ("scene", "none")
MIN_VALID_PIXELS = 64


def _label(scene: Scene) -> str:
    """How messages name a scene: its file, else its name."""
    return scene.path or scene.name or "scene"


class HybridSTU(EstimatorParams):
    """Semi-blind unmixing with the HybridSTU CNN; see the module docstring.

    Parameters are read, set and shown as in scikit-learn (`unmixgen.unmix.params.EstimatorParams`:
    ``get_params``, ``set_params``, a repr of those that differ from the defaults) and checked by
    `fit` (`check_params`).

    Parameters
    ----------
    n_endmembers : int
        ``p``; must equal the number of endmember spectra given to `fit`.
    k : int
        Odd neighbourhood size (``k x k`` pixels of context); 1 = spectral only.
    lam : float
        Weight of the spectral-angle term of the loss (`unmixgen.unmix.hybridstu.loss`).
    recon : float
        Weight of the reconstruction-MSE term.
    width : int
        Features of the network's 2D layers.
    front : {"subspace", "bands"}
        The network's input: per-pixel endmember-subspace features with a correction of
        a per-pixel answer, or all bands through a 3D stem (`unmixgen.unmix.hybridstu.network`).
    base : {"auto", "fcls", "scaled"}
        The per-pixel answer the subspace network corrects (module docstring).
    n_maps, map_size : int
        Training maps drawn for ``maps="grf"``/``"dirichlet"`` and their side in pixels.
    map_smoothing : float or "auto"
        Gaussian filter width (pixels) applied to the scene's per-pixel maps before the GRF
        or Dirichlet model is fitted to them, so the training maps do not inherit the noise
        of those maps; 0: none. ``"auto"``: the width of `smoothing.SMOOTHING_WIDTHS` with the least
        estimated error against the noise-free maps (`smoothing.choose_smoothing`, from the scene's
        noise estimate), or 0 where the maps have no spatial structure (`smoothing.auto_smoothing`);
        ``history_["map_smoothing"]`` records the width used, ``history_["map_structure"]``
        the measure.
    snr_db : float or None
        Noise of the training scenes; None: the scene's estimated SNR.
    noise_profile : {"scene", "white"}
        The noise model over the bands. ``"scene"``: the scene's own per-band noise estimate
        (real sensors' noise differs 10-50x between bands); the training scenes' noise is
        spread over the bands as it is, and the network reads pixels and endmembers divided
        by each band's noise std (``band_weights_``), where the noise is white again and
        least squares weighs each band by what it knows. ``"white"``: the same in every band,
        no weights. With ``snr_db`` given the noise is white.
    stripes : {"scene", "none"}
        Detector stripes in the training scenes. ``"scene"``: when the scene's columns are
        striped (`unmixgen.unmix.stripes.column_stripes`, as pushbroom sensors leave them), the
        training scenes get column gains spread as much per band (and only half turns, so
        their columns stay columns; ``history_["stripes"]`` records what was measured); a
        network trained on unstriped scenes trusts a neighbourhood's mean too much there. A
        map-grid product's stripes run along lines at the orbit's heading: the training scenes
        get them at the angle measured (and no mirror images).
        ``"none"``: never.
    variability : float or "auto"
        Standard deviation of the log ELMM brightness scaling of the training scenes;
        ``"auto"``: estimated from the scene (`data.estimate_brightness`). The training
        scenes' median brightness is always the scene's (endmembers brighter or darker
        than the pixels, e.g. a library at another scale, give training pixels alike).
    scaling : {"pixel", "mixed", "endmember"}
        How the training scenes' brightness varies (`data.training_pairs`): one scale per
        pixel (illumination, topography; the default), one per endmember (ELMM), or the two
        on alternate maps.
    jitter : float
        Relative amplitude of the smooth spectral perturbation of the training endmembers.
    max_steps, max_minutes : training budget (at least one).
    batch_size, crop : crops per step and their side.
    lr : peak learning rate (AdamW, warm-up, EMA as in `Trainer`).
    eval_every, patience : validation every this many steps; stop after ``patience``
        validations without improvement.
    guard_level : keep the network's answer only as far from the base answer as the data
        allow: the level of the true abundances' excess residual on the simulated validation
        pixels that a pixel may reach (`unmixgen.unmix.hybridstu.guard`); None or 0: no guard.
    tile : side of the tiles of inference.
    device : ``"auto"``, ``"cpu"`` or ``"cuda"``.
    seed : seeds the training maps, the simulation, the weights and the batches.
    progress : show progress bars.

    Attributes
    ----------
    endmembers_ : (p, bands) float32
    band_weights_ : (good bands,) float32 or None
        The weight of each good band (1 / its noise std, geometric mean 1) the network reads
        pixels and endmembers with; None: unweighted.
    abundances_ : (rows, cols, p) float32, on the simplex, NaN at invalid pixels
    brightness_ : (rows, cols) float32 or None
        Each pixel's brightness when the network corrects the brightness-free answer
        (`corrects_scaled`), else None.
    history_ : dict
        SNR used, map source, steps, validation curve, best step, timings.
    """

    def __init__(self, n_endmembers: int, *, k: int = 5, lam: float = 0.0, recon: float = 0.0,
                 width: int = 48, front: str = "subspace", base: str = "auto", n_maps: int = 24,
                 map_size: int = 48, map_smoothing: float | str = "auto", snr_db: float | None = None,
                 noise_profile: str = "scene", stripes: str = "scene", variability: float | str = "auto",
                 scaling: str = "pixel", jitter: float = 0.0,
                 max_steps: int | None = 3000, max_minutes: float | None = 4.0, batch_size: int = 8,
                 crop: int = 24, lr: float = 2e-3, eval_every: int = 100, patience: int = 5,
                 guard_level: float | None = 0.95, tile: int = 128, device: str = "cpu", seed: int = 0,
                 progress: bool = False):
        self.n_endmembers = n_endmembers
        self.k, self.lam, self.recon, self.width, self.front, self.base = k, lam, recon, width, front, base
        self.n_maps, self.map_size, self.map_smoothing = n_maps, map_size, map_smoothing
        self.snr_db, self.variability, self.scaling, self.jitter = snr_db, variability, scaling, jitter
        self.noise_profile, self.stripes = noise_profile, stripes
        self.max_steps, self.max_minutes = max_steps, max_minutes
        self.batch_size, self.crop, self.lr = batch_size, crop, lr
        self.eval_every, self.patience, self.guard_level = eval_every, patience, guard_level
        self.tile, self.device, self.seed, self.progress = tile, device, seed, progress

    # ------------------------------------------------------------------ validation
    def check_params(self) -> None:
        """Refuse parameters out of range (`ParameterError` naming the parameter)."""
        check_range("n_endmembers", self.n_endmembers, low=2, integer=True)
        check_k(self.k)
        if self.front not in FRONTS:
            raise ParameterError("front", self.front, f"expected one of {', '.join(FRONTS)}")
        if not isinstance(self.noise_profile, str) or self.noise_profile not in NOISE_PROFILES:
            raise ParameterError("noise_profile", brief(self.noise_profile),
                                 f"expected one of {', '.join(NOISE_PROFILES)}")
        if not isinstance(self.stripes, str) or self.stripes not in STRIPE_MODELS:
            raise ParameterError("stripes", brief(self.stripes), f"expected one of {', '.join(STRIPE_MODELS)}")
        if self.scaling not in D.SCALINGS:
            raise ParameterError("scaling", self.scaling, f"expected one of {', '.join(D.SCALINGS)}")
        if self.base not in ("auto", *BASES):
            raise ParameterError("base", self.base, f"expected one of auto, {', '.join(BASES)}")
        for name in ("lam", "recon", "jitter"):
            check_range(name, getattr(self, name), low=0)
        if not (isinstance(self.map_smoothing, str) and self.map_smoothing == "auto"):
            check_range("map_smoothing", self.map_smoothing, low=0)
        if not (isinstance(self.variability, str) and self.variability == "auto"):
            check_range("variability", self.variability, low=0, high=2)
        for name in ("width", "n_maps", "batch_size", "eval_every", "patience", "tile"):
            check_range(name, getattr(self, name), low=1, integer=True)
        check_range("map_size", self.map_size, low=4, integer=True)
        check_range("crop", self.crop, low=4, integer=True)
        check_range("lr", self.lr, low=0, low_open=True)
        if self.guard_level is not None:
            check_range("guard_level", self.guard_level, low=0, high=1, high_open=True)
        check_range("seed", self.seed, low=0, integer=True)
        if self.snr_db is not None:
            check_range("snr_db", self.snr_db)
        check_budget(self.max_steps, self.max_minutes)
        resolve_device(self.device)

    def validate_params(self) -> None:
        """`check_params`, under the name every estimator's check has (`EstimatorParams`)."""
        self.check_params()

    def check_scene(self, scene: Scene) -> np.ndarray:
        """The good-band mask, after refusing scenes the network cannot take."""
        k = check_k(self.k)
        if k > min(scene.rows, scene.cols):  # train-stu shows it as --k; unmix, which has no k, as k=...
            raise ParameterError("k", k, f"expected a neighbourhood no wider than the scene: {_label(scene)} is "
                                         f"{scene.rows} x {scene.cols} pixels, narrower than {k} x {k}")
        good = np.asarray(scene.good_bands, bool)
        if not good.any():
            raise InputError(f"{_label(scene)}: every band is marked bad; expected usable bands")
        return good

    def _check_endmembers(self, endmembers, bands: int, good: np.ndarray | None = None) -> np.ndarray:
        """``endmembers`` as (p, bands) float32, finite on the ``good`` bands (the network and
        the simulation read only those; a bad band may be NaN, as blind results leave it)."""
        if endmembers is None:
            raise ParameterError("endmembers", None, "expected the endmember spectra (p, bands)")
        E = np.asarray(endmembers, np.float32)
        if E.ndim != 2 or E.shape[1] != bands:
            raise InputError(f"endmembers have shape {E.shape}; expected ({self.n_endmembers}, {bands}) on the "
                             "scene's bands (resample them first, e.g. runs.endmembers.fit_to_bands)")
        if E.shape[0] != self.n_endmembers:
            raise ParameterError("n_endmembers", self.n_endmembers,
                                 f"expected the number of endmember spectra given ({E.shape[0]})")
        if not np.all(np.isfinite(E if good is None else E[:, good])):
            raise InputError("endmembers contain NaN/Inf on the scene's good bands; expected finite spectra")
        return E

    # ------------------------------------------------------------------ training
    def fit(self, scene: Scene | np.ndarray, endmembers=None, maps="grf") -> HybridSTU:
        """Train on scenes simulated for ``scene`` and unmix it; see the module docstring.

        ``scene``: a `Scene`, a ``(rows, cols, bands)`` array or an xarray DataArray laid out
        by its dim names (`unmixgen.scene.as_scene`), as `transform` takes it.

        Raises
        ------
        ParameterError, InputError
            Bad parameters, endmembers not on the scene's bands or with another ``p``,
            ``k`` larger than the scene, too few valid pixels, bad maps.
        TrainingDiverged
            The loss became NaN/Inf.
        """
        if endmembers is not None and np.ndim(endmembers) == 2:
            check_bands_last("scene", scene, int(np.shape(endmembers)[1]), "the endmembers' bands")
        scene = as_scene(scene)
        t0 = time.perf_counter()
        self.check_params()
        check_maps_source(maps)
        device = resolve_device(self.device)
        good = self.check_scene(scene)
        E = self._check_endmembers(endmembers, scene.bands, good)
        if E.shape[0] > int(good.sum()):
            raise InputError(f"{_label(scene)}: {E.shape[0]} endmembers but only {int(good.sum())} usable "
                             "bands; expected at most as many endmembers as good bands")
        scene.require_valid()
        n_valid = int(scene.mask.sum())
        needed = max(MIN_VALID_PIXELS, int(good.sum()) + 1 if self.snr_db is None else 0)
        if n_valid < needed:
            raise InputError(f"{_label(scene)}: {n_valid} valid pixels; expected at least {needed} "
                             "(to estimate the noise and fit the training maps)")
        Y = scene.valid_pixels()
        if not good.all():  # a boolean index copies every pixel, also when it keeps every band
            Y = Y[:, good]
        Eg = E[:, good]
        if self.snr_db is not None:  # white noise at the given SNR, as the training scenes get
            snr = float(self.snr_db)
            # the pixels' mean power, by blocks of rows: no float64 copy of the scene
            power = sum(float(np.einsum("ij,ij->", Y[i:i + 65536], Y[i:i + 65536], dtype=np.float64))
                        for i in range(0, len(Y), 65536)) / max(Y.size, 1)
            band_noise = np.full(Y.shape[1], power / 10 ** (snr / 10))
        else:  # the scene's own noise: its SNR and its per-band variance, from one estimate
            noise = D.noise_estimate(Y, seed=self.seed)
            snr = D.estimate_snr_db(Y, seed=self.seed, noise=noise)
            band_noise = band_noise_variance(noise[0], noise[2])
        stripe_std, stripes, angle = None, None, 0.0
        if self.stripes == "scene":
            pixels = noise[0] if self.snr_db is None else Y[:: max(1, len(Y) // 20_000)]
            stripe_std, stripes, angle = self._scene_stripes(scene, good, band_noise, pixels)
        # the bands' weights (1 / noise std) and the training noise's relative std per band
        band_std = weights = None
        if self.snr_db is None and self.noise_profile == "scene" and enough_for_band_noise(*Y.shape):
            weights = weights_from_noise(band_noise)  # None when about white: no copies for nothing
            if weights is not None:
                band_std = 1.0 / weights.astype(np.float64)
        We = Eg if weights is None else (Eg * weights).astype(np.float32)
        wnoise = band_noise if weights is None else band_noise * weights**2
        brightness, var = D.estimate_brightness(Y, Eg, mask=scene.mask,
                                                 noise=noise if self.snr_db is None else None)
        if not isinstance(self.variability, str):
            var = float(self.variability)
        t_prep = time.perf_counter()
        self.scale_ = float(np.mean(np.linalg.norm(We, axis=1)) / math.sqrt(We.shape[1]))
        subspace = self.front == "subspace"
        base = "fcls" if self.base == "auto" or not subspace else self.base
        bases_rmse = None

        smoothing: dict[str, Any] = {}

        def simulated(base: str):
            map_list, source = self._training_maps(maps, scene, Y, We, base, wnoise, smoothing, weights)
            pairs = D.training_pairs(map_list, Eg, snr_db=snr, variability=var, jitter=self.jitter,
                                     seed=self.seed, brightness=brightness, scaling=self.scaling,
                                     band_std=band_std, stripe_std=stripe_std, stripe_angle=angle)
            if weights is not None:  # the network reads weighted pixels
                pairs = [((y * weights).astype(np.float32), a) for y, a in pairs]
            train, val = D.split_maps(pairs, gap=self.k)
            if subspace:
                return map_list, source, train, val, D.to_feature_tensors(train, We, self.scale_), \
                    D.to_feature_tensors(val, We, self.scale_)
            return map_list, source, train, val, D.to_tensors(train, self.scale_), D.to_tensors(val, self.scale_)

        map_list, source, train, val, tr, va = simulated(base)
        if subspace and self.base == "auto":
            p = Eg.shape[0]
            bases_rmse = {name: _feature_validation_rmse(va, p, c) for name, c in BASES.items()}
            best = min(bases_rmse, key=bases_rmse.get)
            if best != base:
                base = best
                if isinstance(maps, str):  # refit the training maps to the scene's maps of that answer
                    map_list, source, train, val, tr, va = simulated(base)
        t_train = time.perf_counter()
        curve = self._train(tr, va, torch.from_numpy(We / self.scale_), device, base, upright=stripe_std is not None,
                            mirror=angle == 0.0)
        self.endmembers_ = np.array(E, np.float32)  # a copy: the caller's array may change later
        self.good_bands_ = good
        self.band_weights_ = None if weights is None else weights.astype(np.float32)
        self.wavelengths_ = scene.wavelengths
        self.guard_tau_ = None
        guard_record = None
        if subspace and self.guard_level:
            guard_record = self._calibrate_guard(va, We, base)
        self.history_ = {"snr_db": snr, "snr_estimated": self.snr_db is None,
                         "noise_profile": "white" if band_std is None else "scene",
                         "noise_std_range": None if band_std is None else float(band_std.max() / band_std.min()),
                         "stripes": stripes,
                         "variability": var,
                         "brightness": brightness, "base": base if subspace else None, **smoothing,
                         "base_validation_rmse": bases_rmse, "map_source": source,
                         "n_training_maps": len(map_list), "n_train_parts": len(train),
                         "n_validation_parts": len(val), **curve, "guard": guard_record}
        t_apply = time.perf_counter()
        self.brightness_ = None
        if self.corrects_scaled():
            (self.abundances_, self.brightness_), kept = self._apply(scene, with_brightness=True)
        else:
            self.abundances_, kept = self._apply(scene)
        self.guard_kept_fraction_ = kept
        t_end = time.perf_counter()
        if guard_record is not None:
            guard_record["scene_pixels_kept_fraction"] = self.guard_kept_fraction_
        self.history_["timings_s"] = {"prepare": t_train - t0, "maps": t_train - t_prep,
                                      "train": t_apply - t_train, "apply": t_end - t_apply, "total": t_end - t0}
        return self

    @staticmethod
    def _scene_stripes(scene: Scene, good: np.ndarray, band_noise: np.ndarray, pixels: np.ndarray
                       ) -> tuple[np.ndarray | None, dict | None, float]:
        """The scene's column stripes (`unmixgen.unmix.stripes`) for the training scenes: the
        gain std per good band (None: none trained with), the record and the stripes' angle
        from the columns (degrees; a map-grid product's detector lines).

        Stripes are trained with where they are detected; the record also gives their variance
        summed over the bands, ``gain_std^2 mean(y^2)`` per band (``y`` the ``pixels (n, good
        bands)``), over the noise variance ``band_noise (good bands,)``. The noise is kept as
        estimated: the HySime regression on some hundred other bands fits a scene's
        few tens of column patterns, so it leaves the stripes out of the noise (2 % stripes at
        30 dB, 0.6 of the noise variance, raised the estimate by 6 %)."""
        found = column_stripes(scene)
        if found is None:
            return None, None, 0.0
        record = found.record()
        std = found.gain_std[good]
        power = np.mean(np.square(pixels, dtype=np.float64), axis=0)
        ratio = float(np.sum(std**2 * power) / max(float(band_noise.sum()), 1e-30))
        record.update(variance_to_noise=round(ratio, 3), trained=found.detected)
        return (std, record, found.angle) if found.detected else (None, record, 0.0)

    def _calibrate_guard(self, val, E: np.ndarray, base: str) -> dict[str, Any]:
        """Set ``guard_tau_`` from the validation parts (`guard.calibrate`); returns the record."""
        p = E.shape[0]
        G = E.astype(np.float64) @ E.T.astype(np.float64)
        f = np.concatenate([x.numpy().reshape(x.shape[0], -1).T for x, _ in val])
        a = np.concatenate([t.numpy().reshape(p, -1).T for _, t in val])
        self.guard_tau_ = calibrate(f, a, G, base, float(self.guard_level))
        net = self.net_.eval()
        with torch.inference_mode():
            pred = np.concatenate([net(x[None])[0].numpy().reshape(p, -1).T for x, _ in val])
        kept, t = guarded(f, pred, G, base, self.guard_tau_)
        return {"level": float(self.guard_level), "tau": self.guard_tau_,
                "validation_rmse": float(np.sqrt(np.mean((kept - a) ** 2))),
                "validation_pixels_kept_fraction": float(np.mean(t >= 1.0))}

    def _training_maps(self, maps, scene: Scene, Y: np.ndarray, E: np.ndarray, base: str = "fcls",
                       band_noise: np.ndarray | None = None, record: dict | None = None,
                       weights: np.ndarray | None = None) -> tuple[list[np.ndarray], str]:
        """Training maps and their source's name; ``record`` gets the smoothing used. ``E`` and
        ``band_noise`` are weighted by ``weights`` (bands,) already, ``Y`` is not."""
        p = E.shape[0]
        check_maps_source(maps)
        if isinstance(maps, str):
            from ...evaluate.baselines import DirichletBaseline, GaussianFieldBaseline
            from ..inversion import invert_weighted

            A = scene.to_image(invert_weighted(Y, E, base, weights), fill=np.nan)
            sigma = self.map_smoothing
            if sigma == "auto":
                sigma, found = auto_smoothing(A, scene.mask, map_noise_variance(E, band_noise))
                if record is not None:
                    record.update(found)
            if record is not None:
                record["map_smoothing"] = float(sigma)
            if sigma > 0:
                A = smooth_maps(A, scene.mask, sigma)
            if maps == "dirichlet":
                model = DirichletBaseline().fit(A[scene.mask][None, None], seed=self.seed)
            else:
                # invalid pixels take the mean abundance, so every block can be used
                A[~scene.mask] = np.nanmean(A[scene.mask], axis=0)
                blocks = _blocks(A, min(self.map_size, scene.rows, scene.cols))
                model = GaussianFieldBaseline().fit(np.stack(blocks), seed=self.seed)
            out = model.sample(self.n_maps, (self.map_size, self.map_size), seed=self.seed)
            return D.as_map_list(out, p), maps
        return D.as_map_list(maps, p), "given"

    def _train(self, train, val, E: torch.Tensor, device: str, base: str = "fcls", upright: bool = False,
               mirror: bool = True) -> dict[str, Any]:
        seed_torch(self.seed)
        p, bands = E.shape
        # on the device from the start: the step-0 validation below runs it before the Trainer moves it
        self.net_ = HybridSTUNet(bands, p, self.k, self.width, front=self.front, base=base).to(device)
        sampler = D.PairSampler(train, self.crop, upright=upright, mirror=mirror)
        E = E.to(device)
        G = E @ E.T
        lam, recon, n, subspace = self.lam, self.recon, self.batch_size, self.front == "subspace"

        def loss_fn(net: torch.nn.Module, gen: torch.Generator) -> torch.Tensor:
            x, a = sampler.batch(n, gen)
            x, a = x.to(device), a.to(device)
            if subspace:
                return subspace_loss(net(x), a, x[:, :p], G, lam=lam, recon=recon, bands=bands)
            return stu_loss(net(x), a, x, E, lam=lam, recon=recon)

        target = self.max_steps if self.max_steps is not None else math.inf
        deadline = time.monotonic() + 60.0 * self.max_minutes if self.max_minutes is not None else math.inf
        best, best_step, best_state, waited = math.inf, 0, None, 0
        val_steps, val_rmse = [], []
        if subspace:
            # step 0 is (almost exactly) the base answer: a candidate, so training never keeps worse weights
            best = _validation_rmse(self.net_, val, device)
            best_state = {k: v.detach().cpu().clone() for k, v in self.net_.state_dict().items()}
            val_steps.append(0)
            val_rmse.append(best)
        with tempfile.TemporaryDirectory(prefix="hybridstu-") as folder:
            trainer = Trainer(self.net_, loss_fn, folder, lr=self.lr, warmup_steps=50, ema_decay=0.99,
                              seed=self.seed + 1, checkpoint_every_s=None, log_every=10, device=device)
            summary = None
            while trainer.step < target and time.monotonic() < deadline:
                chunk = int(min(trainer.step + self.eval_every, target))
                minutes = max(1e-3, (deadline - time.monotonic()) / 60.0) if math.isfinite(deadline) else None
                summary = trainer.fit(max_steps=chunk, max_minutes=minutes, progress=self.progress)
                rmse = _validation_rmse(trainer.ema.module, val, device)
                val_steps.append(trainer.step)
                val_rmse.append(rmse)
                if rmse < best:
                    best, best_step, waited = rmse, trainer.step, 0
                    best_state = {k: v.detach().cpu().clone() for k, v in trainer.ema.module.state_dict().items()}
                else:
                    waited += 1
                    if waited >= self.patience:
                        break
            self.net_.load_state_dict(best_state)
        self.net_.to("cpu").eval()
        fcls_rmse = _feature_validation_rmse(val, p, BASES["fcls"]) if subspace else None
        return {"steps": trainer.step, "best_step": best_step, "fcls_validation_rmse": fcls_rmse, "best_validation_rmse": best,
                "validation_steps": val_steps, "validation_rmse": val_rmse,
                "curve_steps": summary.curve_steps if summary else [],
                "curve_losses": summary.curve_losses if summary else [],
                "early_stopped": waited >= self.patience}

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError("HybridSTU is not trained: call fit() or load a model with from_pretrained()")

    def transform(self, scene: Scene | np.ndarray, *, with_brightness: bool = False, backend: str = "serial", on_tile=None):
        """Abundances ``(rows, cols, p)`` float32 of ``scene``, NaN at invalid pixels; with
        ``with_brightness`` the pair ``(abundances, brightness (rows, cols))``, each pixel's
        least-squares brightness for its answer (`unmixgen.unmix.inversion.pixel_brightness`,
        good bands) from the same tiles: the scaled model's reconstruction is ``s a E``.

        Raises `InputError` when the scene's bands differ from the model's, or when ``k`` is
        larger than the scene. The fitted attributes are left as they are.
        """
        return self._apply(scene, with_brightness=with_brightness, backend=backend, on_tile=on_tile)[0]

    def _apply(self, scene: Scene | np.ndarray, *, with_brightness: bool = False, backend: str = "serial",
               on_tile=None):
        """`transform`'s result and the fraction of pixels the guard kept whole (None: no guard)."""
        self._check_fitted()
        check_bands_last("scene", scene, self.good_bands_.size, "the model's bands")
        scene = as_scene(scene)
        good = self.check_scene(scene)
        if scene.bands != self.good_bands_.size or not np.array_equal(good, self.good_bands_):
            raise InputError(f"{_label(scene)}: {scene.bands} bands ({int(good.sum())} good) but the model was "
                             f"trained on {self.good_bands_.size} bands ({int(self.good_bands_.sum())} good); "
                             "expected a scene from the same sensor")
        wl = getattr(self, "wavelengths_", None)
        off = grid_offset_nm(scene.wavelengths, wl) if wl is not None and scene.wavelengths is not None else 0.0
        if off > SAME_GRID_NM:
            raise InputError(f"{_label(scene)}: wavelengths {scene.wavelengths.min():.0f}-"
                             f"{scene.wavelengths.max():.0f} nm differ from the model's {wl.min():.0f}-{wl.max():.0f} "
                             f"nm by up to {off:.1f} nm; expected a scene from the same sensor")
        device = resolve_device(self.device)
        net = self.net_.to(device).eval()
        scale = np.float32(self.scale_)
        idx = np.flatnonzero(good) if not good.all() else None
        Eg = self.endmembers_[:, good]
        weights = getattr(self, "band_weights_", None)
        We = Eg if weights is None else (Eg * weights).astype(np.float32)
        subspace = getattr(self.net_, "front", "bands") == "subspace"
        tau = getattr(self, "guard_tau_", None) if subspace else None
        G = We.astype(np.float64) @ We.T.astype(np.float64)
        counts = [0, 0]  # pixels kept whole by the guard, pixels guarded (halo pixels included)

        def apply(block: np.ndarray, mask: np.ndarray) -> np.ndarray:
            x = block if idx is None else block[..., idx]
            if weights is not None:
                x = x * weights
            if subspace:
                f = np.zeros(x.shape[:2] + (n_features(We.shape[0]),), np.float32)
                f[mask] = subspace_features(x[mask], We, float(scale))
                x = f
            else:
                x = np.where(mask[..., None], x, 0.0).astype(np.float32) / scale
            with torch.inference_mode():
                t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(device)
                a = net(t)[0].permute(1, 2, 0).cpu().numpy()
            if tau is not None:
                a[mask], kept = guarded(f[mask], a[mask], G, self.net_.base, tau)
                counts[0] += int(np.sum(kept >= 1.0))
                counts[1] += kept.size
            if not with_brightness:
                return a
            b = np.full(mask.shape + (1,), np.nan, np.float32)
            b[mask, 0] = pixel_brightness(block[mask] if idx is None else block[mask][:, idx], a[mask], Eg)
            return np.concatenate([a, b], axis=-1)

        p = int(self.endmembers_.shape[0])
        out = map_tiles(scene, apply, tile=self.tile, halo=receptive_radius(self.k),
                        out_channels=p + with_brightness, backend=backend, on_tile=on_tile)
        kept = counts[0] / counts[1] if counts[1] else None
        if with_brightness:
            return (np.ascontiguousarray(out[..., :p]), np.ascontiguousarray(out[..., p])), kept
        return out, kept

    def corrects_scaled(self) -> bool:
        """True when the network corrects the brightness-free answer: its abundances are then
        fractions of each pixel's brightness (``brightness_``, `transform`)."""
        self._check_fitted()
        return getattr(self.net_, "front", "bands") == "subspace" and getattr(self.net_, "base", None) == "scaled"

    def fit_transform(self, scene: Scene | np.ndarray, endmembers=None, maps="grf") -> np.ndarray:
        return self.fit(scene, endmembers=endmembers, maps=maps).abundances_

    # ------------------------------------------------------------------ model folder
    def save_pretrained(self, folder: str | Path, *, overwrite: bool = False, names: list[str] | None = None,
                        wavelengths=None) -> Path:
        """Write the trained network as a model folder of kind ``"hybridstu"`` (atomically).

        ``names``: one per endmember; ``wavelengths``: band centres in nm, one per band of the
        scenes the model takes (default: those of the fitted scene). Refused (`InputError`)
        before anything is written when they do not fit, as `from_pretrained` would refuse them.
        """
        from ...atomic import atomic_dir

        self._check_fitted()
        p, bands = int(self.endmembers_.shape[0]), int(self.good_bands_.size)
        if names is not None and (isinstance(names, str) or len(names) != p):
            raise InputError(f"names: {names!r}; expected a list of {p} names, one per endmember")
        if wavelengths is not None:
            wavelengths = check_wavelengths(wavelengths, bands)
        cfg = ck.new_config(KIND, n_endmembers=int(self.endmembers_.shape[0]), bands=int(self.good_bands_.size),
                            good_bands=self.good_bands_.astype(int).tolist(), k=int(self.k), width=int(self.width),
                            front=self.net_.front, base=self.net_.base,
                            scale=self.scale_, names=names, guard_tau=getattr(self, "guard_tau_", None),
                            parameters={k: v for k, v in self.get_params().items() if k not in ("device", "progress")},
                            history=getattr(self, "history_", {}))
        with atomic_dir(folder, overwrite=overwrite) as tmp:
            ck.write_config(tmp, cfg)
            arrays = {"endmembers": self.endmembers_}
            wavelengths = getattr(self, "wavelengths_", None) if wavelengths is None else wavelengths
            if wavelengths is not None:
                arrays["wavelengths"] = np.asarray(wavelengths, np.float64)
            if getattr(self, "band_weights_", None) is not None:
                arrays["band_weights"] = self.band_weights_
            ck.save_arrays(tmp / "endmembers.npz", arrays)
            state = {"best_step": getattr(self, "history_", {}).get("best_step")}
            ck.save_checkpoint(tmp, int(getattr(self, "history_", {}).get("steps", 0)),
                               weights=self.net_.state_dict(), training={}, state=state)
        return Path(folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, device: str = "cpu", tile: int = 128) -> HybridSTU:
        """A trained `HybridSTU` read from a model folder (`InputError` for another kind;
        `ParameterError` for a bad ``device`` or ``tile``, before the folder is read)."""
        resolve_device(device)
        check_range("tile", tile, low=1, integer=True)
        cfg = _checked_config(folder, ck.read_config(folder, kind=KIND))
        path = ck.latest_checkpoint(folder)
        arrays = ck.load_arrays(Path(folder) / "endmembers.npz")
        _check_saved_endmembers(Path(folder) / "endmembers.npz", arrays, cfg)
        known = inspect.signature(cls).parameters
        params = {k: v for k, v in cfg.get("parameters", {}).items() if k in known}
        params.pop("n_endmembers", None)
        params["front"] = cfg.get("front", "bands")
        params["base"] = cfg.get("base", "fcls")
        if params["base"] not in BASES:
            raise in_file(folder, f"config.json base {params['base']!r}; expected one of {', '.join(BASES)}")
        tau = cfg.get("guard_tau")
        if tau is not None and not (isinstance(tau, (int, float)) and not isinstance(tau, bool)
                                    and math.isfinite(tau) and tau >= 0):
            raise in_file(folder, f"config.json guard_tau {tau!r}; expected a finite number >= 0 or null")
        params.update(device=device, tile=tile)
        params["k"] = cfg["k"]  # the network's neighbourhood (checked), which the scene checks use
        est = cls(int(cfg["n_endmembers"]), **params)
        est.good_bands_ = np.asarray(cfg["good_bands"], bool)
        est.scale_ = float(cfg["scale"])
        est.guard_tau_ = None if tau is None else float(tau)
        est.endmembers_ = arrays["endmembers"].astype(np.float32)
        est.net_ = HybridSTUNet(int(est.good_bands_.sum()), est.endmembers_.shape[0], int(cfg["k"]), int(cfg["width"]),
                               front=cfg.get("front", "bands"), base=params["base"])
        try:
            est.net_.load_state_dict(ck.load_weights(path))
        except RuntimeError as exc:  # torch lists every tensor that differs, one per line
            first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
            raise in_file(folder, f"weights do not fit the network of its config.json ({first}); retrain") from None
        est.net_.eval()
        est.history_ = cfg.get("history", {})
        est.names_ = cfg.get("names")
        wl = arrays.get("wavelengths")
        if wl is not None:
            wl = np.asarray(wl, np.float64).reshape(-1)
            if wl.size != est.good_bands_.size or not np.isfinite(wl).all():
                raise in_file(folder, f"endmembers.npz holds {wl.size} wavelengths for {est.good_bands_.size} bands "
                                      "(or non-finite ones); expected one per band")
        est.wavelengths_ = wl
        bw = arrays.get("band_weights")
        if bw is not None:
            bw = np.asarray(bw)
            n_good = int(est.good_bands_.sum())
            if bw.dtype.kind not in "biuf" or bw.shape != (n_good,) or not np.all(np.isfinite(bw)) or (bw <= 0).any():
                raise in_file(folder, f"endmembers.npz holds band_weights of shape {bw.shape}; expected {n_good} "
                                      "positive finite numbers, one per good band (retrain the model)")
            bw = bw.astype(np.float32)
        est.band_weights_ = bw
        return est


def _checked_config(folder: str | Path, cfg: dict) -> dict:
    """``cfg`` (a HybridSTU config.json) when every field `HybridSTU.from_pretrained` reads has
    its type; `InputError` naming the field otherwise. A NaN or negative ``scale`` gave all-NaN
    maps, a missing key or a wrong type a KeyError or TypeError."""
    def bad(key: str, expected: str) -> InputError:
        shown = "missing" if key not in cfg else repr(cfg[key])
        return in_file(folder, f"config.json {key} {shown}; expected {expected} (the file was edited or "
                               "damaged: retrain the model)")

    def whole(v, low: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    for key in ("n_endmembers", "k", "width"):
        if not whole(cfg.get(key), 1):
            raise bad(key, "an integer >= 1")
    scale = cfg.get("scale")
    if not ck.is_positive_number(scale):
        raise bad("scale", "a finite number > 0")
    gb = cfg.get("good_bands")
    if not (isinstance(gb, list) and gb and all(v in (0, 1) for v in gb) and any(gb)):
        raise bad("good_bands", "a list of 0 / 1 flags, one per band, at least one 1")
    for key, kind, expected in (("parameters", dict, "an object"), ("history", dict, "an object")):
        if not isinstance(cfg.get(key, {}), kind):
            raise bad(key, expected)
    names = cfg.get("names")
    if names is not None and not (isinstance(names, list) and len(names) == cfg["n_endmembers"]):
        raise bad("names", f"null or a list of {cfg['n_endmembers']} names, one per endmember")
    return cfg


def _check_saved_endmembers(path: Path, arrays: dict[str, np.ndarray], cfg: dict) -> None:
    """`InputError` naming ``path`` unless it holds the ``endmembers`` (p, bands) of the model's
    config.json: another count or band count met the network only as a KeyError, an IndexError
    or torch's list of mismatched tensors."""
    want = (cfg["n_endmembers"], len(cfg["good_bands"]))
    E = arrays.get("endmembers")
    if E is None or E.dtype.kind not in "biuf" or E.shape != want:
        got = "no 'endmembers'" if E is None else f"'endmembers' {E.dtype} of shape {E.shape}"
        raise in_file(path, f"holds {got}; expected numbers of shape {want} (endmembers, bands) as its "
                            "config.json says: retrain the model")


def check_maps_source(maps) -> None:
    """`ParameterError` unless ``maps`` is one of `MAP_SOURCES`, an array or an iterable of maps."""
    if isinstance(maps, str) and maps in MAP_SOURCES:
        return
    if isinstance(maps, str) or not isinstance(maps, (np.ndarray, Iterable)):
        raise ParameterError("maps", maps, f"expected arrays, an iterable of maps or one of {', '.join(MAP_SOURCES)}")


def _validation_rmse(net: torch.nn.Module, val, device: str) -> float:
    """Abundance RMSE over every validation pixel (each part in one forward pass)."""
    net.eval()
    se, n = 0.0, 0
    with torch.inference_mode():
        for x, a in val:
            d = net(x[None].to(device))[0].cpu() - a
            se += float((d**2).sum())
            n += d.numel()
    net.train()
    return math.sqrt(se / max(n, 1))


def _feature_validation_rmse(val, p: int, block: int) -> float:
    """Abundance RMSE on the validation parts of the per-pixel answer in channels
    ``block * p`` to ``(block + 1) * p`` of the subspace features (`features.BASES`)."""
    se, n = 0.0, 0
    for x, a in val:
        d = x[block * p:(block + 1) * p] - a
        se += float((d**2).sum())
        n += d.numel()
    return math.sqrt(se / max(n, 1))


def _blocks(A: np.ndarray, size: int) -> list[np.ndarray]:
    """The non-overlapping ``size x size`` blocks of ``A (rows, cols, p)``."""
    return [A[r:r + size, c:c + size] for r in range(0, A.shape[0] - size + 1, size)
            for c in range(0, A.shape[1] - size + 1, size)]
