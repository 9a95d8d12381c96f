"""The output folder every run writes (see DESIGN.md, "Command line").

    result.npz        endmembers (p, bands), abundances (rows, cols, p), wavelengths, mask,
                      good_bands (when a band is bad), scene_fingerprint (4, bands: mean
                      spectra of the central 32 x 32 pixels' quarters, to tell the scene again),
                      stored_band_index and stored_bands (when the scene's reader reordered its
                      file's bands: `scene.stored_band_order`, for truths without wavelengths),
                      units (the scene's, when known: reflectance or radiance), ...
    abundances.tif    the maps with the input's georeferencing (or abundances.hdr/.img for
                      ENVI input), invalid pixels as nodata (NaN)
    abundances_std.tif, abundances_q05.tif, abundances_q95.tif
                      (refine) the posterior's per-pixel spread, written like the abundances
    brightness.tif    per-pixel brightness s of the scaled model y = s a E (runs whose maps are
                      fractions of the pixel's brightness: `--method scaled`, HybridSTU on that
                      base); also ``brightness`` in result.npz
    endmembers.csv    wavelength_nm (or band) column + one column per endmember; nan at the
                      scene's bad bands (missing values, as the library below)
    endmembers.sli, endmembers.hdr
                      the same spectra as an ENVI spectral library (float32, wavelengths in
                      nm, spectra names; `unmixgen.io.sli`), for ENVI, EnMAP-Box, SPy; an
                      endmember source like the CSV
    run.json          command, parameters, versions, seed, timings, metrics
    *.png             figures
    evaluation.json, evaluation_*.png, report.html
                      written later by `unmixgen evaluate` (`unmixgen.workflows.evaluation`)

Callers fill a temporary folder (`atomic_dir`) through these functions; the folder gets its
final name only when everything is written.
"""

from __future__ import annotations

import csv
import json
import platform
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import InputError, brief, in_file, reading
from ..scene import STORED_ORDER_KEYS, Scene, placement, stored_band_order, window_on_data


def versions() -> dict[str, str]:
    """Versions of Python, unmixgen and the numeric libraries, for run.json."""
    out = {"python": platform.python_version(), "unmixgen": __version__, "numpy": np.__version__}
    for mod in ("scipy", "torch", "diffusers", "h5py", "rasterio"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", "?")
    return out


def map_format_for(scene: Scene) -> str:
    """``"envi"`` when the input was ENVI, else ``"tif"``: maps go out as users brought them."""
    fmt = str(scene.metadata.get("format", "")).lower()
    return "envi" if fmt == "envi" else "tif"


def endmember_names(p: int, names: list[str] | None = None) -> list[str]:
    if names is not None and len(names) == p:
        return [str(n) for n in names]
    return [f"em{i + 1}" for i in range(p)]


def save_maps(folder: Path, scene: Scene, maps: np.ndarray, *, stem: str = "abundances",
              names: list[str] | None = None, fmt: str | None = None) -> Path:
    """Write ``maps`` (rows, cols, k) georeferenced like ``scene``; invalid pixels as NaN."""
    from ..io import write_scene

    fmt = fmt or map_format_for(scene)
    maps = np.asarray(maps, np.float32)
    img = Scene(
        maps,
        mask=scene.mask,
        nodata=float("nan"),
        crs=scene.crs,
        transform=scene.transform,
        name=stem,
        metadata={"band_names": endmember_names(maps.shape[-1], names), **placement(scene)},
    )
    path = folder / (f"{stem}.hdr" if fmt == "envi" else f"{stem}.tif")
    write_scene(img, path)
    return path


def save_brightness(folder: Path, scene: Scene, brightness: np.ndarray, note: str = "") -> dict[str, Any]:
    """Write the per-pixel brightness ``(rows, cols)`` of a scaled-model run as a map like the
    abundances (``brightness.tif``, or ``.hdr`` for ENVI input); returns its ``run.json`` entry
    (model, median and 5 / 95 % quantiles over the pixels that have one, file name)."""
    b = brightness[np.isfinite(brightness)]
    entry: dict[str, Any] = {"model": "y = s a E, s per pixel" + (f", {note}" if note else "")}
    if b.size:
        entry.update(median=float(np.median(b)), q05=float(np.quantile(b, 0.05)), q95=float(np.quantile(b, 0.95)))
    entry["file"] = save_maps(folder, scene, brightness[..., None], stem="brightness", names=["brightness"]).name
    return entry


def write_endmembers_csv(path: Path, endmembers: np.ndarray, wavelengths: np.ndarray | None,
                         names: list[str] | None = None) -> None:
    """CSV with a ``wavelength_nm`` column (``band`` when unknown) and one column per endmember."""
    e = np.asarray(endmembers)
    p, bands = e.shape
    axis = wavelengths if wavelengths is not None else np.arange(1, bands + 1)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wavelength_nm" if wavelengths is not None else "band", *endmember_names(p, names)])
        for b in range(bands):
            w.writerow([f"{axis[b]:.6g}", *(f"{e[i, b]:.8g}" for i in range(p))])


def save_endmembers(folder: Path, endmembers: np.ndarray, wavelengths: np.ndarray | None,
                    names: list[str] | None = None, units: str | None = None) -> None:
    """Write ``endmembers (p, bands)`` into the run folder ``folder`` being built: as
    ``endmembers.csv`` (`write_endmembers_csv`) and as the ENVI spectral library
    ``endmembers.sli`` + ``endmembers.hdr`` (`unmixgen.io.sli.write_library`, which also
    says their ``units``: reflectance, radiance or None, unknown)."""
    from ..io.sli import write_library

    folder = Path(folder)
    e = np.asarray(endmembers)
    write_endmembers_csv(folder / "endmembers.csv", e, wavelengths, names)
    write_library(folder / "endmembers.sli", e, wavelengths, endmember_names(e.shape[0], names), units)


def read_endmembers_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Read an endmember CSV: first column wavelengths (nm, or um when < 100) or band numbers,
    strictly increasing (or strictly decreasing: the rows are then reversed). Band numbers need
    a band-number header (``band``, ``channel``, ``index``, ...: `wavelengths.BAND_NUMBER_HEADERS`);
    0, 1, 2, ... or 1, 2, 3, ... under any other header is refused (it would read as um).

    Returns ``(endmembers (p, bands) float32, wavelengths_nm or None, names)``; a ``nan`` value
    is a missing channel of that spectrum (NaN).
    """
    from ..wavelengths import BAND_NUMBER_HEADERS, check_wavelengths, to_nm

    path = Path(path)
    try:
        # utf-8-sig and replace, as wavelength files: a byte-order mark would join the first header
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    except OSError as exc:
        raise in_file(path, f"cannot read ({exc.strerror})") from None
    if len(rows) < 3 or len(rows[0]) < 2:
        raise in_file(path, "expected a header row, a wavelength column and one column per endmember")
    header, body = rows[0], rows[1:]
    if all(_is_number(v) for v in header):  # read as column names, the first band would be lost
        raise in_file(path, f"first row ({','.join(header[:3])}{',...' if len(header) > 3 else ''}) holds numbers, "
                            "not column names; expected a header row (e.g. wavelength_nm,name1,name2) "
                            "above the spectra")
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise in_file(path, f"row {i} has {len(r)} values; expected {len(header)}, one per header column")
    try:
        data = np.array([[float(v) for v in r] for r in body], dtype=np.float64)
    except ValueError as exc:
        raise in_file(path, f"non-numeric value ({exc}); expected numbers below the header row") from None
    # NaN in a spectrum is a missing channel (a band a run's endmembers did not cover, as this
    # module writes them; a library's deleted channel); an infinity or a NaN band centre is no value
    bad = np.isinf(data).any(axis=1) | np.isnan(data[:, 0])
    if bad.any():
        i = int(np.flatnonzero(bad)[0]) + 2
        raise in_file(path, f"row {i} holds infinity or a NaN wavelength; expected numbers (NaN only for a missing "
                            "channel of a spectrum)")
    d = np.diff(data[:, 0])
    if (d < 0).all():  # listed from long to short wavelengths: the same spectra
        data, d = data[::-1], -d[::-1]
    if not (d > 0).all():
        i = int(np.flatnonzero(d <= 0)[0]) + 3
        raise in_file(path, f"first column ({header[0].strip()!r}) does not increase at row {i}; expected "
                            "wavelengths (nm or um) or band numbers in order, then one column per endmember")
    first = header[0].strip().lower()
    if first in BAND_NUMBER_HEADERS:
        return data[:, 1:].T.astype(np.float32), None, [h.strip() for h in header[1:]]
    x = data[:, 0]
    if x[0] in (0, 1) and np.array_equal(x, np.arange(x[0], x[0] + len(x))):  # else read as um: 1000, 2000 nm...
        raise in_file(path, f"first column ({header[0].strip()!r}) holds {x[0]:g}, {x[1]:g}, ..., {x[-1]:g}: band "
                            "numbers, not band centres; expected wavelengths (nm or um), or 'band' as the column "
                            "name for band numbers")
    wl = check_wavelengths(to_nm(x, what=f"{path}: wavelengths"), len(x), what=f"{path}: wavelengths")
    return data[:, 1:].T.astype(np.float32), wl, [h.strip() for h in header[1:]]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_record(command: str, parameters: dict[str, Any], *, seed: int | None = None) -> dict[str, Any]:
    """The skeleton of run.json; callers add ``timings``, ``metrics`` and method details."""
    return {
        "command": command,
        "argv": sys.argv,
        "parameters": parameters,
        "seed": seed,
        "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "timings_s": {},
        "warnings": [],
    }


FINGERPRINT_WINDOW = 32  # pixels on a side of the central window the fingerprint reads


def scene_fingerprint(scene: Scene) -> np.ndarray:
    """Mean spectra ``(4, bands)`` float64 of the valid pixels in the four quarters of the
    scene's central window (at most 32 x 32 pixels; NaN where a quarter has no valid pixel or
    the band holds no numbers): enough to tell a result's scene from another of the same
    size, flipped ones included, from one window read. Where the central window holds no
    valid pixel (a map-grid product clipped off its swath) the window on the data
    (`scene.window_on_data`) is read instead; fingerprints written before, all NaN there,
    still match the scene (`same_scene`)."""
    h, w = min(FINGERPRINT_WINDOW, scene.rows), min(FINGERPRINT_WINDOW, scene.cols)
    r0, c0 = (scene.rows - h) // 2, (scene.cols - w) // 2
    rs, cs = slice(r0, r0 + h), slice(c0, c0 + w)
    mask = scene.mask
    if not mask[rs, cs].any():
        rs, cs = window_on_data(mask, FINGERPRINT_WINDOW)
    block = scene.read(rs, cs).astype(np.float64)
    block[~mask[rs, cs]] = np.nan
    block[~np.isfinite(block)] = np.nan
    out = np.full((4, scene.bands), np.nan)
    quarters = [q for half in np.array_split(block, 2, axis=0) for q in np.array_split(half, 2, axis=1)]
    for i, q in enumerate(quarters):
        pixels = q.reshape(-1, scene.bands)
        counted = np.isfinite(pixels).sum(axis=0)
        np.divide(np.nansum(pixels, axis=0), counted, out=out[i], where=counted > 0)
    return out


def same_scene(fingerprint: np.ndarray, scene: Scene, *, rtol: float = 1e-3) -> bool:
    """True when ``fingerprint`` (a result's `scene_fingerprint`) matches ``scene``'s on the
    scene's good bands where both are finite, to ``rtol`` of the spectrum's mean level (a file saved again
    in another format matches; another scene of the same size does not)."""
    a = np.asarray(fingerprint, np.float64)
    b = scene_fingerprint(scene)
    if a.shape != b.shape:
        return False
    both = np.isfinite(a) & np.isfinite(b) & np.asarray(scene.good_bands, bool)  # a bad band may hold anything
    if not both.any():
        return True  # nothing to compare (no valid pixel in the window)
    level = max(float(np.mean(np.abs(b[both]))), 1e-30)
    return float(np.max(np.abs(a[both] - b[both]))) <= rtol * level


def save_result(folder: str | Path, scene: Scene, *, endmembers: np.ndarray | None,
                abundances: np.ndarray | None, names: list[str] | None = None,
                extra: dict[str, np.ndarray] | None = None, figures: bool = True,
                describe: str | None = None) -> None:
    """Write result.npz, the georeferenced maps, endmembers.csv and endmembers.sli/.hdr
    (`save_endmembers`) and the standard figures into the existing folder ``folder``.
    ``describe`` says what the result is in the figures' titles (e.g. ``"refined: posterior
    mean"``); None: plain 'abundance maps' / 'endmember spectra'."""
    folder = Path(folder)
    arrays: dict[str, np.ndarray] = {"mask": scene.mask, "scene_fingerprint": scene_fingerprint(scene)}
    if scene.wavelengths is not None:
        arrays["wavelengths"] = scene.wavelengths
    if not scene.good_bands.all():  # `evaluate` compares spectra on these only
        arrays["good_bands"] = scene.good_bands
    stored = stored_band_order(scene)
    if stored is not None:  # `evaluate` puts a truth in the file's band order in the scene's
        arrays.update(zip(STORED_ORDER_KEYS, stored, strict=True))
    if scene.units:  # the endmembers' too: a scene simulated from them is in these units
        arrays["units"] = np.array(str(scene.units))
    if endmembers is not None:
        arrays["endmembers"] = np.asarray(endmembers, np.float32)
    if abundances is not None:
        arrays["abundances"] = np.asarray(abundances, np.float32)
    p = (endmembers if endmembers is not None else abundances).shape[0 if endmembers is not None else -1]
    arrays["names"] = np.array(endmember_names(p, names))
    arrays.update(extra or {})
    np.savez_compressed(folder / "result.npz", **arrays)
    if abundances is not None:
        save_maps(folder, scene, abundances, names=names)
    if endmembers is not None:
        # the scene's bad bands as missing values (nan), as in a library: whatever the method left
        # there is no spectrum, and a reader of the CSV or library knows no good_bands
        bad = ~np.asarray(scene.good_bands, bool)
        spectra = np.where(bad, np.float32(np.nan), np.asarray(endmembers, np.float32)) if bad.any() else endmembers
        save_endmembers(folder, spectra, scene.wavelengths, names, scene.units)
    if figures:
        from ..report import figures as report

        report.plot_rgb(scene, folder / "rgb.png")
        truth, truth_names = (None, None) if endmembers is None else _truth_for_figure(scene, endmembers)
        if abundances is not None:
            report.plot_abundances(abundances, folder / "abundances.png", names=_matched_names(p, names, truth_names),
                                   mask=scene.mask, transform=scene.transform,
                                   title=None if describe is None else f"abundance maps, {describe}")
        if endmembers is not None:
            report.plot_endmembers(endmembers, scene.wavelengths, folder / "endmembers.png",
                                   names=names, truth=truth, truth_names=truth_names,
                                   good_bands=scene.good_bands, ylabel=report.values_label(scene.units),
                                   title=_spectra_title(describe, truth is not None))


def _matched_names(p: int, names: list[str] | None, truth_names: list[str] | None) -> list[str]:
    """The endmembers' names, each followed by the reference name matched to it (`_truth_for_figure`)
    where there is one: ``"em1 (road)"``, so the maps say what they show as the spectra figure does."""
    own = endmember_names(p, names)
    if not truth_names:
        return own
    return [f"{n} ({t})" if t and t != n else n for n, t in zip(own, truth_names[:p], strict=True)]


def _spectra_title(describe: str | None, truth: bool) -> str | None:
    if describe is None:
        return None  # the figure's own
    return f"endmember spectra, {describe}" + (" (dashed: ground truth)" if truth else "")


def _truth_for_figure(scene: Scene, endmembers: np.ndarray) -> tuple[np.ndarray | None, list[str] | None]:
    """The scene's reference spectra in the order of ``endmembers (p, bands)``, for the figure.

    Row ``k`` is the reference matched to estimate ``k`` by spectral angle on the good bands
    (Hungarian), NaN where none is (more estimates than references); references left
    unmatched follow. Returns ``(spectra (max(p, q), bands), names or None)``; ``(None,
    None)`` without reference spectra on the scene's bands.
    """
    from ..evaluate.unmixing import match_endmembers

    t = scene.truth
    if t is None or t.endmembers is None:
        return None, None
    E, T = np.asarray(endmembers, np.float64), np.asarray(t.endmembers, np.float64)
    if T.ndim != 2 or T.shape[1] != E.shape[1]:
        return None, None
    good = scene.good_bands & np.isfinite(E).all(axis=0) & np.isfinite(T).all(axis=0)
    perm = match_endmembers(estimate=T[:, good], reference=E[:, good], by="sad")  # perm[k]: truth of estimate k
    order = np.r_[perm, np.setdiff1d(np.arange(len(T)), perm)]
    aligned = np.where((order >= 0)[:, None], T[np.maximum(order, 0)], np.nan)
    if t.names is None or len(t.names) != len(T):
        return aligned, None
    return aligned, [str(t.names[i]) if i >= 0 else "" for i in order]


def load_result(folder: str | Path) -> dict[str, Any]:
    """Read a run folder's result.npz (and run.json when present) into a dict of arrays.

    ``folder`` may also be the result.npz itself. Raises `InputError` when the folder has no
    result.npz, or the file given is not an .npz archive (a scene file, a .npy array).
    """
    folder = Path(folder)
    path = folder / "result.npz" if folder.is_dir() else folder
    if not path.is_file():
        raise in_file(folder, "not a result folder (no result.npz); expected the output folder of unmix_scene "
                              "(`unmixgen unmix`)")
    if not zipfile.is_zipfile(path):  # a scene file, or a .npy renamed (np.load: an array; other bytes: unpickling)
        if folder.is_dir() or path.suffix.lower() == ".npz":
            raise in_file(path, "cannot read the result: not an .npz archive (damaged, or another file "
                                "renamed); expected the result.npz unmix_scene (`unmixgen unmix`) writes")
        raise in_file(folder, "not a result folder, nor a result.npz archive; expected the output folder of "
                              "unmix_scene (`unmixgen unmix`)")
    with reading(path, "read the result", also=(ValueError,)), np.load(path, allow_pickle=False) as z:
        out: dict[str, Any] = {k: z[k] for k in z.files}
    run = path.parent / "run.json"
    if run.is_file():
        try:
            out["run"] = json.loads(run.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise in_file(run, f"is not valid JSON ({exc})") from None
        if not isinstance(out["run"], dict):
            raise in_file(run, "is JSON but not an object; expected the run record `unmixgen` writes ({...})")
    if "names" in out:
        out["names"] = [str(n) for n in np.asarray(out["names"]).reshape(-1)]
    _check_result(out, folder)
    return out


def _check_result(r: dict[str, Any], folder: Path) -> None:
    """`InputError` naming ``folder`` unless the result's arrays are what every reader of it
    assumes: real numbers, ``endmembers`` (p, bands) and ``abundances`` (rows, cols, p) with
    the same p >= 1, their uncertainty arrays of the same shapes, ``mask`` (rows, cols) with a
    valid pixel, one name per endmember and ``units`` one string."""
    from ..io.checks import refuse_complex, units_in_file

    p = None
    for key, ndim, layout in (("endmembers", 2, "(p, bands)"), ("abundances", 3, "(rows, cols, p)")):
        v = r.get(key)
        if v is None:
            continue
        refuse_complex(v.dtype, folder, f"result's {key!r}")
        if v.dtype.kind not in "biuf":
            raise in_file(folder, f"result's {key!r} has type {v.dtype}; expected numbers")
        if v.ndim != ndim or 0 in v.shape:
            raise in_file(folder, f"result's {key!r} have shape {v.shape}; expected {layout} with p >= 1")
        n = v.shape[0] if key == "endmembers" else v.shape[-1]
        if p is not None and n != p:
            raise in_file(folder, f"result has {p} endmembers but {n} abundance maps; expected one map per "
                                  "endmember")
        p = n
    a, m = r.get("abundances"), r.get("mask")
    if m is not None and (m.dtype.kind not in "biuf" or m.ndim != 2
                          or (a is not None and m.shape != a.shape[:2])):
        want = f"{a.shape[0]}x{a.shape[1]}" if a is not None else "(rows, cols)"
        raise in_file(folder, f"result's 'mask' is {m.dtype} of shape {m.shape}; expected a {want} map of valid "
                              "pixels")
    if m is not None and m.dtype.kind != "b" and not np.isin(m, (0, 1)).all():
        raise in_file(folder, "result's 'mask' holds values other than 0 and 1; expected a map of valid pixels "
                              "(True / False)")
    for key, like in (("abundances_std", "abundances"), ("abundances_q05", "abundances"),
                      ("abundances_q95", "abundances"), ("endmembers_std", "endmembers")):
        v, ref = r.get(key), r.get(like)
        if v is not None and (v.dtype.kind not in "biuf" or (ref is not None and v.shape != ref.shape)):
            raise in_file(folder, f"result's {key!r} is {v.dtype} of shape {v.shape}; expected numbers shaped like "
                                  f"its {like!r}" + (f" {ref.shape}" if ref is not None else ""))
    basis = r.get("abundance_basis")
    if basis is not None and (basis.ndim != 0 or str(basis) not in ("l2", "sum")):
        raise in_file(folder, f"result's 'abundance_basis' is {brief(basis.tolist())!r}; expected 'l2' or 'sum' (the "
                              "brightness the endmembers are divided by for the fractions)")
    if m is not None and a is not None and not m.any():
        raise in_file(folder, "result's 'mask' marks no pixel valid; expected at least one valid pixel")
    if "units" in r:  # what readers of the result take as the endmembers' (and a simulated scene's) units
        units_in_file(r["units"], folder, "result's 'units'")
    if p is not None and "names" in r and len(r["names"]) != p:
        raise in_file(folder, f"result has {len(r['names'])} names for {p} endmembers; expected one per endmember")
    if "endmembers" in r:
        _check_bands(r, folder, r["endmembers"].shape[1])


def _check_bands(r: dict[str, Any], folder: Path, bands: int) -> None:
    """`InputError` naming ``folder`` unless the result's ``wavelengths`` and ``good_bands``
    (when present) hold one finite value per band of its endmembers: another count met numpy
    (``fp and xp are not of the same length``) in whoever reads the spectra."""
    from ..wavelengths import check_wavelengths

    if "wavelengths" in r:
        try:  # any order: the bands of a scene whose detectors overlap are written as they come
            check_wavelengths(r["wavelengths"], bands, what="", any_order=True)
        except InputError as exc:
            raise in_file(folder, f"result's 'wavelengths'{exc} (its endmembers have {bands} bands)") from None
    gb = r.get("good_bands")
    if gb is not None and (gb.dtype.kind not in "biu" or gb.size != bands):
        raise in_file(folder, f"result's 'good_bands' is {gb.dtype} of {gb.size} values; expected one flag per "
                              f"band of its {bands} bands")
    index_key, count_key = STORED_ORDER_KEYS
    if index_key in r or count_key in r:
        index, stored = r.get(index_key), r.get(count_key)
        if (index is None or stored is None or index.dtype.kind not in "iu" or index.shape != (bands,)
                or stored.dtype.kind not in "iu" or stored.ndim != 0
                or not (np.unique(index).size == bands and 0 <= index.min() and index.max() < stored)):
            raise in_file(folder, f"result's {index_key!r} and {count_key!r} are not the file's band of each of "
                                  f"its {bands} bands and the file's band count; expected distinct indices below "
                                  "that count")


__all__ = [
    "load_result",
    "read_endmembers_csv",
    "run_record",
    "save_brightness",
    "save_maps",
    "same_scene",
    "save_endmembers",
    "save_result",
    "scene_fingerprint",
    "write_endmembers_csv",
]
