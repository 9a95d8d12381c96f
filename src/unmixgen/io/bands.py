"""Per-band metadata shared by every reader: the detector-overlap policy, band labels as
wavelengths, and per-band lists that do not match the band count.

Detector overlap
----------------
Instruments with two or more spectrometers (EnMAP and PRISMA: VNIR + SWIR; AVIRIS
classic: four) measure a short stretch of the spectrum twice. Files store the bands
detector by detector, so the wavelengths step back where the next detector starts
(EnMAP: ~993 nm, then ~902 nm). Every reader hands its stored wavelengths to `arrange`,
which returns the band order to present, always strictly increasing. ``overlap=`` selects
what happens where detectors overlap; the same values are accepted by every reader:

``"sort"`` (default)
    Keep every band, sorted by wavelength. Two bands at exactly the same wavelength
    cannot be sorted apart: that is an `InputError` asking for one of the others.
``"short"`` (alias ``"vnir"``)
    In each overlap keep the bands of the detector that covers the shorter wavelengths
    and drop the other detector's bands at or below its last wavelength.
``"long"`` (alias ``"swir"``)
    Keep the bands of the detector that covers the longer wavelengths; drop the other
    detector's bands at or above its first wavelength. (Silicon VNIR detectors lose
    sensitivity towards 1 um, so their last bands are usually the noisier ones.)

Detectors are told apart by the readers that know them (PRISMA stores VNIR and SWIR in
separate cubes; an EnMAP METADATA.XML lists each detector's band numbers); otherwise each
run of increasing wavelengths in file order is one detector. With detectors given, the
policy applies whatever the stored order. Without them, a file whose wavelengths already
increase is returned as it is (no reordering, nothing dropped), whatever the policy: one
run is one detector.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ParameterError, in_file
from ..scene import STORED_ORDER_KEYS, stored_band_order
from ..wavelengths import fwhm_in_nm, usable_fwhm, wavelengths_from_labels
from .checks import count

OVERLAP_POLICIES = ("sort", "short", "long")
_ALIASES = {"vnir": "short", "swir": "long", "both": "sort"}


def overlap_policy(overlap: str) -> str:
    """The canonical name of an overlap policy; `ParameterError` for an unknown one."""
    key = str(overlap).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in OVERLAP_POLICIES:
        raise ParameterError("overlap", overlap, "expected 'sort', 'short' (or 'vnir') or 'long' (or 'swir')")
    return key


@dataclass(frozen=True)
class Arrangement:
    """What `arrange` decided: ``order`` indexes the ``stored`` bands (None = keep as stored)."""

    order: np.ndarray | None
    wavelengths: np.ndarray | None
    stored: int | None = None

    def note(self, metadata: dict, overlap: str) -> None:
        """Record in a scene's metadata that the bands were reordered on reading (nothing when
        the stored order is kept): ``"band_order"`` says how, and `scene.STORED_ORDER_KEYS` the
        stored band of each presented one (`scene.stored_band_order`). `convert --wavelengths`
        relies on the first: centres listed in a file's band order cannot be matched to
        reordered bands; reference spectra without wavelengths of their own (a benchmark's
        endmember .mat) are put in the presented order with the second."""
        if self.order is not None:
            metadata["band_order"] = f"overlap={overlap_policy(overlap)!r}"
            index_key, count_key = STORED_ORDER_KEYS
            metadata[index_key] = [int(i) for i in self.order]
            metadata[count_key] = int(self.stored)

    def take(self, values):
        """``values`` (one per stored band, array or list) in the presented order."""
        if values is None or self.order is None:
            return values
        if isinstance(values, list):
            return [values[i] for i in self.order]
        return np.asarray(values)[self.order]


# A file written from a scene whose bands are not in its source file's order (a reader sorted them,
# `scene.stored_band_order`) records where each of its bands came from: the source file's band,
# 0-based, and the source file's band count. Spectra without wavelengths in the source file's band
# order (a benchmark's endmember .mat) then still fit the file, and its copies. .npz and .mat arrays
# and GeoTIFF dataset tags take these names; ENVI header keys the same with spaces.
SOURCE_ORDER_KEYS = ("source_band_index", "source_bands")


def source_band_order(scene) -> tuple[list[int], int] | None:
    """``(index, count)`` a writer records of ``scene`` under `SOURCE_ORDER_KEYS`, or None when
    its bands are as its source file stores them."""
    order = stored_band_order(scene)
    if order is None or order[0].size != scene.bands:
        return None
    return [int(i) for i in order[0]], int(order[1])


def source_band_order_text(scene) -> dict[str, str]:
    """`source_band_order` as the text a header or tag holds, by `SOURCE_ORDER_KEYS`:
    ``{"source_band_index": "{3, 0, 1}", "source_bands": "4"}``; empty when there is none."""
    source = source_band_order(scene)
    if source is None:
        return {}
    return dict(zip(SOURCE_ORDER_KEYS, ("{" + ", ".join(map(str, source[0])) + "}", str(source[1])), strict=True))


def read_source_band_order(index, total, bands: int, path, names: tuple[str, str] = SOURCE_ORDER_KEYS
                           ) -> tuple[np.ndarray, int] | None:
    """The source band order a file records (`SOURCE_ORDER_KEYS`, under ``names`` in it), checked:
    ``(index (bands,), count)``, or None when it records none. ``index`` is text (``{3, 0, 1}``)
    or numbers, ``total`` one count. `InputError` naming the file and key unless ``index`` holds
    ``bands`` distinct whole numbers from 0 to ``total - 1``."""
    if index is None and total is None:
        return None
    if index is None or total is None:
        have, lack = (names[0], names[1]) if total is None else (names[1], names[0])
        raise in_file(path, f"has {have!r} but no {lack!r}; expected both (where each band came from)")
    n = count(total, repr(names[1]), path, low=bands)
    if isinstance(index, (str, bytes, np.str_, np.bytes_)):
        text = index.decode("utf-8", "replace") if isinstance(index, (bytes, np.bytes_)) else str(index)
        items = text.replace("{", " ").replace("}", " ").replace(",", " ").split()
    else:
        items = list(np.asarray(index).reshape(-1))
    values = np.array([count(v, f"{names[0]!r} value {i + 1}", path, low=0) for i, v in enumerate(items)], np.intp)
    if values.size != bands or np.unique(values).size != bands or (values.size and values.max() >= n):
        raise in_file(path, f"{names[0]!r} ({values.size} values) is not the source file's band of each of its "
                            f"{bands} bands; expected {bands} distinct indices from 0 to {n - 1}")
    return values, n


def note_source_order(metadata: dict, source: tuple[np.ndarray, int] | None, order: np.ndarray | None) -> None:
    """Record a file's ``source`` band order (`read_source_band_order`) as its scene's
    `scene.STORED_ORDER_KEYS`, through the reader's own ``order`` of the file's bands (None: as
    stored); after `Arrangement.note`, whose record of the file's own order it replaces."""
    if source is None:
        return
    index, total = source
    if order is not None:
        index = index[order]
    metadata.update(zip(STORED_ORDER_KEYS, ([int(i) for i in index], int(total)), strict=True))


def detector_runs(wavelengths: np.ndarray) -> np.ndarray:
    """Detector label per band: a new detector starts wherever the wavelength does not increase."""
    wl = np.asarray(wavelengths, np.float64)
    steps = np.concatenate([[False], np.diff(wl) <= 0])
    return np.cumsum(steps)


def arrange(wavelengths, overlap: str = "sort", *, detectors=None,
            path: str | os.PathLike | None = None) -> Arrangement:
    """Band order that presents ``wavelengths`` (nm, stored order) strictly increasing.

    Parameters
    ----------
    wavelengths : array (bands,) or None
        Stored band centres in nm. None (no wavelengths) keeps the stored order.
    overlap : "sort", "short"/"vnir" or "long"/"swir"
        See the module docstring.
    detectors : int array (bands,), optional
        Detector label of each stored band; default `detector_runs`. Given, ``"short"`` and
        ``"long"`` apply even to wavelengths stored in increasing order.
    path : the file, for error messages.

    Returns
    -------
    Arrangement whose ``order`` is None when the stored order is already increasing.

    Raises
    ------
    ParameterError
        Unknown policy.
    InputError
        Wavelengths that are not finite and positive, or two bands at the same
        wavelength that the policy keeps both of.
    """
    policy = overlap_policy(overlap)
    if wavelengths is None:
        return Arrangement(None, None)
    wl = np.asarray(wavelengths, np.float64).reshape(-1)
    where = f"{os.fspath(path)}: " if path is not None else ""
    if not np.all(np.isfinite(wl)) or np.any(wl <= 0):
        raise InputError(f"{where}wavelengths must be finite and positive (nm)")
    increasing = bool(np.all(np.diff(wl) > 0))
    if wl.size < 2 or (increasing and (detectors is None or policy == "sort")):
        return Arrangement(None, wl)
    det = detector_runs(wl) if detectors is None else np.asarray(detectors).reshape(-1)
    keep = np.ones(wl.size, bool)
    if policy != "sort":
        # detectors ordered by where they start; each neighbouring pair shares an overlap
        labels = sorted(set(det.tolist()), key=lambda d: wl[det == d].min())
        for lo, hi in zip(labels[:-1], labels[1:], strict=True):
            in_lo, in_hi = keep & (det == lo), keep & (det == hi)
            if not in_lo.any() or not in_hi.any():
                continue
            if policy == "long":
                keep &= ~(in_lo & (wl >= wl[in_hi].min()))
            else:
                keep &= ~(in_hi & (wl <= wl[in_lo].max()))
    if increasing and keep.all():
        return Arrangement(None, wl)  # the detectors do not overlap: nothing to drop
    kept = np.flatnonzero(keep)
    order = kept[np.argsort(wl[kept], kind="stable")]
    sorted_wl = wl[order]
    dup = np.flatnonzero(np.diff(sorted_wl) <= 0)
    if dup.size:
        raise InputError(
            f"{where}two bands at {sorted_wl[dup[0]]:g} nm with overlap={policy!r}; expected "
            "distinct wavelengths: use overlap='short' or 'long' to keep one detector's bands"
        )
    return Arrangement(order, sorted_wl, wl.size)


def per_band(values, bands: int, what: str, path: str | os.PathLike):
    """``values`` when it has one entry per band; otherwise None with a warning naming the file.

    Real headers list fewer wavelengths than bands (a camera header with 35 for 978
    bands); GDAL and SPy open such files without the list, and so do the readers here.
    """
    if values is None or len(values) == bands:
        return values
    warnings.warn(
        f"{os.fspath(path)}: {len(values)} {what} for {bands} bands; expected one per band, "
        f"so the {what} are ignored" + (" (bands are numbered instead)" if what == "wavelengths" else ""),
        UserWarning, stacklevel=3,
    )
    return None


def braced_list(values) -> str:
    """``{v1, v2, ...}`` as ENVI headers and GeoTIFF metadata write per-band lists, each value
    in the shortest text that reads back as the same float (10 digits merged close band
    centres into one)."""
    return "{" + ", ".join(repr(float(v)) for v in values) + "}"


def require_good_band(good: np.ndarray | None, path) -> None:
    """`InputError` when a good-band list marks every band bad."""
    if good is not None and good.size and not np.any(good):
        raise in_file(path, "every band is marked bad (bad-band list or empty bands); "
                            "expected at least one good band")


__all__ = ["OVERLAP_POLICIES", "SOURCE_ORDER_KEYS", "Arrangement", "arrange", "braced_list", "detector_runs",
           "fwhm_in_nm", "note_source_order", "overlap_policy", "per_band", "read_source_band_order",
           "require_good_band", "source_band_order", "source_band_order_text", "usable_fwhm", "wavelengths_from_labels"]
