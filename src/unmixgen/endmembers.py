"""Endmember sources users name on the command line, and fitting them to a scene's bands.

A source is one of

- a result folder of ``unmixgen unmix`` (its ``result.npz``),
- a CSV with a wavelength column and one column per endmember (``endmembers.csv``),
- an ``.npz`` with ``endmembers`` (p, bands) and optional ``wavelengths`` / ``names``,
- named spectra of a spectral library, ``LIB.mat:name1,name2`` (the USGS 1995 library
  layout: ``datalib`` (bands, 3 + n) with wavelengths in um in column 0, spectra from
  column 3, and a ``names`` char array).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, in_file
from .wavelengths import to_nm


@dataclass
class Endmembers:
    """Spectra ``(p, bands)`` float32 with their wavelengths (nm, increasing) when known."""

    spectra: np.ndarray
    wavelengths: np.ndarray | None
    names: list[str]
    source: str


def load_endmembers(source: str | Path) -> Endmembers:
    """Read endmembers from any supported source (see module docstring)."""
    text = str(source)
    if ":" in text and not Path(text).exists():
        lib, _, names = text.rpartition(":")
        return load_library_spectra(lib, [n for n in names.split(",") if n.strip()])
    path = Path(text)
    if not path.exists():
        raise in_file(path, "no such file or folder; expected a result folder, .csv, .npz or LIB.mat:names")
    if path.is_dir() or path.name == "result.npz":
        from .outputs import load_result

        r = load_result(path)
        if "endmembers" not in r:
            raise in_file(path, "result has no endmembers")
        return Endmembers(np.asarray(r["endmembers"], np.float32), r.get("wavelengths"),
                          r.get("names") or _default_names(len(r["endmembers"])), text)
    ext = path.suffix.lower()
    if ext == ".csv":
        from .outputs import read_endmembers_csv

        e, wl, names = read_endmembers_csv(path)
        return Endmembers(e, wl, names, text)
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "endmembers" not in z.files:
                raise in_file(path, f"has no 'endmembers' array (keys: {', '.join(z.files)})")
            e = np.asarray(z["endmembers"], np.float32)
            wl = to_nm(z["wavelengths"], what=f"{path}: wavelengths") if "wavelengths" in z.files else None
            names = [str(n) for n in z["names"]] if "names" in z.files else _default_names(len(e))
        if e.ndim != 2:
            raise in_file(path, f"endmembers have shape {e.shape}; expected (p, bands)")
        return Endmembers(e, wl, names, text)
    raise in_file(path, "unsupported endmember source; expected a result folder, .csv, .npz or LIB.mat:names")


def load_library_spectra(library: str | Path, names: list[str]) -> Endmembers:
    """Pick spectra by (case-insensitive, substring) name from a USGS-1995-layout library .mat."""
    from scipy.io import loadmat

    path = Path(library)
    if not path.is_file():
        raise in_file(path, "no such spectral library file")
    if not names:
        raise in_file(path, "no spectrum names given; expected LIB.mat:name1,name2")
    try:
        m = loadmat(path)
    except Exception as exc:
        raise in_file(path, f"cannot read as a MATLAB file ({exc})") from None
    if "datalib" not in m or "names" not in m:
        raise in_file(path, "not a spectral library in the USGS 1995 layout (needs 'datalib' and 'names')")
    data = np.asarray(m["datalib"], np.float64)
    all_names = [bytes(np.asarray(r, np.uint8)).decode("latin1").strip() for r in m["names"]]
    order = np.argsort(data[:, 0], kind="stable")
    wl = to_nm(data[order, 0], "um")
    spectra, picked = [], []
    for want in names:
        key = want.strip().lower()
        hits = [i for i in range(3, len(all_names)) if key in all_names[i].lower()]
        exact = [i for i in hits if all_names[i].lower() == key]
        if not hits:
            close = [n for n in all_names[3:] if key[:4] in n.lower()][:5]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise in_file(path, f"no spectrum named {want!r}{hint}")
        i = (exact or hits)[0]
        spectra.append(data[order, i])
        picked.append(all_names[i])
    return Endmembers(np.asarray(spectra, np.float32), wl, picked, f"{path}:{','.join(names)}")


def fit_to_bands(em: Endmembers, scene_wl: np.ndarray | None, scene_bands: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Endmembers on the scene's bands, and the bands they cover.

    Returns ``(E (p, bands) float32, covered (bands,) bool)``. Same wavelengths (or no
    wavelengths and the same band count): used as they are. Different wavelengths that
    overlap the scene's: linearly interpolated onto the scene bands inside the endmembers'
    range; bands outside it are marked not covered (the caller unmixes on covered bands).
    No overlap: `InputError`.
    """
    e = em.spectra
    p, b = e.shape
    if em.wavelengths is None or scene_wl is None:
        if b != scene_bands:
            raise InputError(
                f"{em.source}: {b} endmember bands but the scene has {scene_bands}, and wavelengths are "
                "missing on one side; expected the same bands or wavelengths on both"
            )
        return e, np.ones(scene_bands, bool)
    ewl = np.asarray(em.wavelengths, np.float64)
    if ewl.shape == scene_wl.shape and np.allclose(ewl, scene_wl, rtol=0, atol=0.5):
        return e, np.ones(scene_bands, bool)
    tol = 0.5  # nm: rounding in files
    covered = (scene_wl >= ewl[0] - tol) & (scene_wl <= ewl[-1] + tol)
    if covered.sum() < 2:
        raise InputError(
            f"{em.source}: endmember wavelengths {ewl[0]:.0f}-{ewl[-1]:.0f} nm do not overlap the scene's "
            f"{scene_wl[0]:.0f}-{scene_wl[-1]:.0f} nm; expected spectra covering the scene's bands"
        )
    out = np.zeros((p, scene_bands), np.float32)
    x = np.clip(scene_wl[covered], ewl[0], ewl[-1])
    for i in range(p):
        out[i, covered] = np.interp(x, ewl, e[i])
    return out, covered


def _default_names(p: int) -> list[str]:
    return [f"em{i + 1}" for i in range(p)]
