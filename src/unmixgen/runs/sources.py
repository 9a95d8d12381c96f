"""Inputs that are "a file *or* a run folder" besides endmembers and truth (`unmixgen.runs.endmembers`,
`unmixgen.runs.truth`): abundance maps, sensor band sets, training maps and band noise profiles.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ParameterError, check_range, in_file, reading
from ..evaluate.unmixing import match_endmembers
from ..evaluate.unmixing import sad as spectral_angles
from ..io.checks import real_array, require_npz

if TYPE_CHECKING:  # the patch module imports torch: only load_training_maps needs it
    from ..priors.abundance.patches import TrainingMaps


def _from_npz(path: Path) -> tuple[np.ndarray, list[str] | None]:
    require_npz(path, "an .npz with 'abundances'")
    with reading(path, "read as .npz", also=(ValueError,)), np.load(path, allow_pickle=False) as z:
        if "abundances" not in z.files:
            raise in_file(path, f"has no 'abundances' array (keys: {', '.join(z.files)}); "
                                "expected abundances (N, rows, cols, p) or (rows, cols, p)")
        a = real_array(z["abundances"], "abundances", path)
        names = None
        for key in ("names", "endmember_names"):
            if key in z.files:
                names = [str(n) for n in np.asarray(z[key]).reshape(-1)]  # one name given as a scalar too
    return a, names


def load_abundance_maps(source: str | Path, *, nodata: bool = False) -> tuple[np.ndarray, list[str] | None]:
    """Abundance maps ``(N, rows, cols, p)`` float32 and endmember names (or None).

    ``source``: an ``.npz`` with ``abundances`` ((N, rows, cols, p) or (rows, cols, p)), an
    ``unmix`` result folder (its ``result.npz``) or a ``synthesize`` output folder
    (``abundances.npz``). ``nodata``: pixels NaN in every map of an endmember set (a result's
    invalid pixels, a map-grid product's corners) are kept as NaN; otherwise, and for a pixel
    NaN in some maps only, `InputError`.
    """
    path = Path(source)
    if not path.exists():
        raise in_file(path, "no such file or folder; expected an .npz with 'abundances', "
                            "a result folder or a synthesize output folder")
    if path.is_dir():
        if (path / "abundances.npz").is_file():
            a, names = _from_npz(path / "abundances.npz")
        elif (path / "result.npz").is_file():
            a, names = _from_npz(path / "result.npz")
        elif (path / "config.json").is_file():
            raise in_file(path, "is a model folder (config.json), which holds no maps; expected maps: an "
                                "output folder of synthesize_maps (`unmixgen synthesize`) made from it, an .npz or a result folder")
        else:
            raise in_file(path, "folder has neither abundances.npz (synthesize output) nor "
                                "result.npz (unmix result)")
    elif path.suffix.lower() == ".npz":
        a, names = _from_npz(path)
    else:
        raise in_file(path, "unsupported abundance source; expected an .npz with 'abundances' or a folder")
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise in_file(path, f"abundances have shape {a.shape}; expected (N, rows, cols, p) or (rows, cols, p)")
    if not np.all(np.isfinite(a)):
        invalid = ~np.isfinite(a).all(-1)
        whole = ~np.isfinite(a).any(-1)
        if not nodata:
            raise in_file(path, f"abundances have {int(invalid.sum())} invalid (NaN) pixels; expected complete maps")
        if (invalid & ~whole).any():
            raise in_file(path, f"abundances have {int((invalid & ~whole).sum())} pixels NaN in some maps but not all; "
                                "expected numbers in every map, or NaN in every map (no-data)")
        if whole.all(axis=(1, 2)).any():
            raise in_file(path, "a set of abundance maps has no valid pixel; expected maps with numbers")
    return a, names


def _csv_rows(path: Path) -> list[list[str]]:
    """The rows of a CSV file, without empty and ``#`` comment rows; utf-8-sig: a byte-order
    mark (Excel's "CSV UTF-8") would make the header, or the first number, unreadable."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            return [r for r in csv.reader(f) if r and not r[0].lstrip().startswith("#")]
    except OSError as exc:
        raise in_file(path, f"cannot read ({exc.strerror})") from None


def _sensor_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = _csv_rows(path)
    if not rows:
        raise in_file(path, "empty; expected columns centre,fwhm in nm")
    header = [h.strip().lower() for h in rows[0]]
    body = rows[1:]
    try:
        float(header[0])
        body, header = rows, []
    except ValueError:
        pass
    ci, fi = 0, 1
    if header:
        cands_c = [i for i, h in enumerate(header) if h.startswith(("centre", "center", "wavelength", "wl"))]
        cands_f = [i for i, h in enumerate(header) if h.startswith(("fwhm", "width", "bandwidth"))]
        if not cands_c or not cands_f:
            raise in_file(path, f"header {rows[0]} has no centre and fwhm columns; expected 'centre,fwhm' (nm)")
        ci, fi = cands_c[0], cands_f[0]
    else:
        widths = sorted({len(r) for r in body})
        if widths != [2]:
            raise in_file(path, f"rows of {', '.join(map(str, widths))} unlabelled columns; expected two (centre,fwhm "
                                "in nm), or a header naming the 'centre' and 'fwhm' columns")
    try:
        data = np.array([[float(r[ci]), float(r[fi])] for r in body], np.float64)
    except (ValueError, IndexError) as exc:
        raise in_file(path, f"bad row ({exc}); expected numbers in the centre and fwhm columns") from None
    if len(data) < 1:
        raise in_file(path, "no bands; expected one row per band: centre,fwhm in nm")
    return data[:, 0], data[:, 1]


def load_sensor(source: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Band centres and FWHM ``(K,), (K,)`` in nm, by increasing wavelength, from a CSV or a
    scene file (`load_sensor_bands` without the row order)."""
    centres, fwhm, _ = load_sensor_bands(source)
    return centres, fwhm


def load_sensor_bands(source: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Band centres and FWHM ``(K,), (K,)`` in nm, by increasing wavelength, and the order that
    sorted a CSV's rows (None when they were sorted already, and for a scene file).

    CSV: a header naming a centre column (``centre``/``center``/``wavelength``) and a
    ``fwhm`` column, or two unlabelled columns centre, fwhm; rows in any order (a sensor's
    detectors one after the other, VNIR then SWIR, overlapping), centres distinct. Scene file
    (anything `unmixgen.io.read_scene` reads, which sorts its bands): its wavelengths and FWHM;
    without FWHM the band spacing is used as FWHM.
    """
    path = Path(source)
    if not path.exists():
        raise in_file(path, "no such sensor file; expected a CSV (centre,fwhm in nm) or a scene file")
    order = None
    if path.suffix.lower() == ".csv":
        centres, fwhm = _sensor_csv(path)
        if not (np.all(np.isfinite(centres)) and np.all(np.isfinite(fwhm))):
            raise in_file(path, "band centres and FWHM must be finite numbers (nm)")
        if np.any(np.diff(centres) <= 0):  # detectors listed one after the other: sorted, as the readers do
            order = np.argsort(centres, kind="stable")
            centres, fwhm = centres[order], fwhm[order]
            same = np.flatnonzero(np.diff(centres) == 0)
            if same.size:
                raise in_file(path, f"two bands at {centres[same[0]]:g}; expected distinct band centres (keep one "
                                    "detector's copy of a band)")
    else:
        from ..io import read_scene

        scene = read_scene(path)
        if scene.wavelengths is None:
            raise in_file(path, "scene has no wavelengths; expected band centres in nm for sensor (`--sensor`)")
        centres = scene.wavelengths
        fwhm = scene.fwhm if scene.fwhm is not None else (
            np.gradient(centres) if centres.size > 1 else np.ones(1))
    if np.any(np.diff(centres) <= 0) or not np.all(np.isfinite(centres)):
        raise in_file(path, "band centres must be finite and strictly increasing (nm)")
    if np.any(fwhm <= 0) or not np.all(np.isfinite(fwhm)):
        raise in_file(path, "FWHM values must be finite and positive (nm)")
    if np.nanmax(centres) < 100:  # micrometres
        centres, fwhm = centres * 1e3, fwhm * 1e3
    return centres.astype(np.float64), np.asarray(fwhm, np.float64), order


def _label_for(folder: Path, result: dict, label_from: str) -> str | None:
    if label_from == "none":
        return None
    if label_from == "folder":
        return folder.name
    run = result.get("run")
    run = run if isinstance(run, dict) else {}  # a run.json holding a list or a string names nothing
    params = run.get("parameters")
    method = (params.get("method") if isinstance(params, dict) else None) or run.get("method")
    if not method:
        raise in_file(folder, "run.json names no unmixing method; expected label_from='folder' or 'none' for this folder")
    return str(method)


def load_training_maps(folders: list[str | Path], *, label_from: str = "none",
                       max_sad: float = 0.3) -> TrainingMaps:
    """Read the abundance maps of ``unmix`` result folders, matching endmembers to the first.

    Raises `InputError` for missing maps, differing band / endmember counts, or a poor match.
    """
    from ..priors.abundance.patches import TrainingMaps
    from .folder import load_result

    check_range("max_sad", max_sad, low=0, low_open=True, high=3.1416)
    if label_from not in ("none", "folder", "method"):
        raise ParameterError("label_from", label_from, "expected one of folder, method, none")
    if not folders:
        raise ParameterError("folders", [], "expected one or more output folders of unmix_scene (`unmixgen unmix`)")
    maps, labels, sources, match = [], [], [], []
    ref_e = None
    ref_p = None
    names: list[str] = []
    for i, folder in enumerate(folders):
        folder = Path(folder)
        res = load_result(folder)
        if "abundances" not in res:
            raise in_file(folder, "result.npz holds no abundances; expected the output of unmix_scene (`unmixgen unmix`)")
        a = np.asarray(res["abundances"], np.float32)
        if a.ndim != 3 or a.shape[-1] < 2:
            raise in_file(folder, f"abundances have shape {a.shape}; expected (rows, cols, p) with p >= 2")
        e = res.get("endmembers")
        if "mask" in res:
            m = np.asarray(res["mask"], bool)
            if m.shape == a.shape[:2]:
                a = np.where(m[..., None], a, np.nan).astype(np.float32)
        if i == 0:
            ref_p, ref_e = a.shape[-1], e
            names = list(res.get("names") or [f"em{k + 1}" for k in range(ref_p)])
            perm, sad = np.arange(ref_p), np.zeros(ref_p)
        else:
            if a.shape[-1] != ref_p:
                raise in_file(folder, f"has {a.shape[-1]} endmembers but {folders[0]} has {ref_p}; "
                              "train one model per endmember set")
            if e is None or ref_e is None:
                raise in_file(folder, "has no endmember spectra to match against the first folder; "
                              "expected endmembers in result.npz")
            if e.shape[1] != ref_e.shape[1]:
                raise in_file(folder, f"endmembers have {e.shape[1]} bands but {folders[0]} has "
                              f"{ref_e.shape[1]}; maps of different sensors cannot be matched")
            perm = match_endmembers(e, ref_e, by="sad")
            sad = np.radians(spectral_angles(e[perm], ref_e))
            if sad.max() > max_sad:
                raise in_file(folder, f"endmembers do not match those of {folders[0]} (worst spectral "
                              f"angle {sad.max():.2f} rad > {max_sad} rad); train separate models")
            a = a[..., perm]
        maps.append(a)
        labels.append(_label_for(folder, res, label_from))
        sources.append(str(folder))
        match.append({"folder": str(folder), "permutation": perm.tolist(), "sad_rad": np.round(sad, 4).tolist()})
    return TrainingMaps(maps, names, None if label_from == "none" else labels, sources, match)


def load_band_noise(source: str | Path) -> np.ndarray:
    """A noise standard deviation per band ``(B,)`` float64 (relative: only the shape is used),
    for simulating a sensor's noise profile (`unmixgen.simulate.mixing.add_noise`'s
    ``band_std``).

    CSV: one positive number per band (one per row, or a ``noise_std`` column under a header).
    Scene file (anything `unmixgen.io.read_scene` reads): the scene's own noise, the std of
    each good band's HySime regression residual (`unmixgen.unmix.rank.estimate_noise`) on
    about 20,000 valid pixels of evenly spaced rows (`unmixgen.unmix.rank.band_noise_variance`: a
    band made from the others is not taken for a noise-free one), a bad band (the water
    absorptions a producer flags) the largest.
    `InputError` naming the file otherwise.
    """
    path = Path(source)
    if not path.exists():
        raise in_file(path, "no such file; expected a CSV with one noise std per band, or a scene file")
    if path.suffix.lower() == ".csv":
        std = _band_noise_csv(path)
    else:
        from ..io import read_scene
        from ..unmix.rank import (
            NOISE_PIXELS_PER_BAND,
            band_noise_std,
            band_noise_variance,
            enough_for_band_noise,
            estimate_noise,
        )

        scene = read_scene(path)
        good = np.asarray(scene.good_bands, bool)
        Y = scene.row_sample()[:, good]
        n_good = int(good.sum())
        if not enough_for_band_noise(Y.shape[0], n_good):
            need = NOISE_PIXELS_PER_BAND * n_good
            raise in_file(path, f"{Y.shape[0]} valid pixels in the rows sampled for {n_good} good bands; expected at "
                                f"least {need} pixels and 2 good bands to estimate its noise per band")
        var = band_noise_variance(Y, estimate_noise(Y)[1])
        good_std = band_noise_std(var) if np.isfinite(var).all() else None
        if good_std is None:
            raise in_file(path, "no noise found in any band (a noise-free or constant scene); expected a scene "
                                "with sensor noise")
        std = np.full(good.size, good_std.max())
        std[good] = good_std
    return std


def _band_noise_csv(path: Path) -> np.ndarray:
    rows = _csv_rows(path)
    col = 0
    if rows:
        header = [h.strip().lower() for h in rows[0]]
        try:
            float(header[0])
        except ValueError:
            if "noise_std" not in header:
                raise in_file(path, f"header {rows[0]} has no noise_std column; expected one noise std per band") \
                    from None
            col, rows = header.index("noise_std"), rows[1:]
        else:
            wide = next((i for i, r in enumerate(rows, start=1) if len([v for v in r if v.strip()]) > 1), None)
            if wide is not None:  # wavelength,std without a header: the first column is not the noise
                raise in_file(path, f"row {wide} holds {len([v for v in rows[wide - 1] if v.strip()])} values; "
                                    "expected one noise std per row, or a header naming the noise_std column "
                                    "(e.g. wavelength_nm,noise_std)")
    try:
        std = np.array([float(r[col]) for r in rows], np.float64)
    except (ValueError, IndexError) as exc:
        raise in_file(path, f"bad row ({exc}); expected one number (a noise std) per band") from None
    if std.size == 0 or not np.all(np.isfinite(std)) or (std <= 0).any():
        raise in_file(path, "expected one positive finite noise std per band (at least one band)")
    return std
