"""EnMAP Level-2A (and Level-1C) products: ``*SPECTRAL_IMAGE*.TIF`` + ``*METADATA.XML`` (read only).

The XML root (``level_X``) holds ``base/level`` (``L1B``, ``L1C`` or ``L2A``) and
``specific/bandCharacterisation/bandID[@number]`` elements with ``wavelengthCenterOfBand``
(nm), ``FWHMOfBand`` (nm), ``GainOfBand`` and ``OffsetOfBand``; physical value = stored *
gain + offset (a ``FWHMOfBand`` list with a width that is not finite and positive is ignored
with a warning, `io.bands.usable_fwhm`). L2A holds surface reflectance; L1C has the same
layout but holds top-of-atmosphere radiance in W/(m^2 sr nm) (DLR's gains and offsets give
that unit, 1000 times W/(m^2 sr um); the XML states none, so the scene's units are the
level's label in `UNITS`); L1B (a VNIR and a SWIR image in sensor geometry) is refused. The
image's nodata value marks invalid pixels; an image without one uses the XML's
``specific/backgroundValue`` (the no-data value of the spectral bands). The input may be the product folder, the XML or
the TIF.

Detectors: ``specific/vnirProductQuality/expectedChannelsList`` and
``specific/swirProductQuality/expectedChannelsList`` list the band numbers (comma-separated,
1-based) each detector measured; they say which bands ``overlap="short"``/``"long"`` keep
whatever the stored order. Without them the wavelengths' step back at the overlap tells
the detectors apart (see `read`).
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import check_keywords, in_file
from ..scene import Scene
from . import geotiff
from .bands import detector_runs, overlap_policy, usable_fwhm
from .checks import number, reading, require_regular_file


def product_files(path: Path) -> tuple[Path, Path]:
    """``(spectral image TIF, metadata XML)`` of the product ``path`` names."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise in_file(path, "no such file or folder")
    entries = list(folder.iterdir())
    if path.is_file() and path.name.upper().endswith(".XML"):
        xml = path
    else:
        xmls = sorted(p for p in entries if p.name.upper().endswith("METADATA.XML"))
        if not xmls:
            raise in_file(path, "no EnMAP *METADATA.XML found beside it; expected an EnMAP L2A product")
        xml = xmls[0]
    if path.is_file() and path.suffix.lower() in (".tif", ".tiff"):
        tif = path
    else:
        tifs = sorted(p for p in entries if "SPECTRAL_IMAGE" in p.name.upper()
                      and p.suffix.lower() in (".tif", ".tiff"))
        if not tifs:
            raise in_file(path, "no *SPECTRAL_IMAGE*.TIF in the EnMAP product folder")
        tif = tifs[0]
    return tif, xml


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


UNITS = {"L1C": "W/(m^2 sr nm)", "L2A": "reflectance"}  # what each readable level's pixels hold


def metadata_root(xml: Path) -> ET.Element:
    """The parsed METADATA.XML (its root element); `InputError` naming it otherwise."""
    require_regular_file(xml, "metadata XML")
    try:
        return ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as exc:
        raise in_file(xml, f"cannot parse the metadata XML ({exc})") from None


def _find(root: ET.Element, where: str) -> ET.Element | None:
    """The element at the slash-separated ``where`` below ``root`` (namespaces ignored)."""
    el = root
    for name in where.split("/"):
        el = None if el is None else next((c for c in el if _local(c.tag) == name), None)
    return el


def product_info(xml: Path, root: ET.Element | None = None) -> tuple[str, float | None]:
    """``(level, background)``: the processing level ``level_X/base/level`` names, ``"L1C"`` or
    ``"L2A"`` (``"L2A"`` when the XML has none; `InputError` for L1B and anything else), and
    ``level_X/specific/backgroundValue``, the no-data value of the spectral bands (None when
    absent). ``root``: the XML already parsed (`metadata_root`)."""
    root = metadata_root(xml) if root is None else root
    el = _find(root, "base/level")
    level = "L2A" if el is None or not (el.text or "").strip() else el.text.strip().upper()
    if level not in UNITS:
        what = " (a VNIR and a SWIR image in sensor geometry)" if level == "L1B" else ""
        raise in_file(xml, f"base/level is {level[:20]!r}{what}; expected an EnMAP L1C or L2A product")
    el = _find(root, "specific/backgroundValue")
    background = None if el is None else number(el.text or "", "specific/backgroundValue", xml)
    return level, background


def band_characterisation(xml: Path, root: ET.Element | None = None) -> dict[str, np.ndarray]:
    """Per-band ``wavelength``, ``fwhm``, ``gain``, ``offset`` (sorted by band number).
    ``root``: the XML already parsed (`metadata_root`)."""
    root = metadata_root(xml) if root is None else root
    rows = []
    for el in root.iter():
        if _local(el.tag) != "bandID":
            continue
        fields = {_local(c.tag): (c.text or "").strip() for c in el}
        if "wavelengthCenterOfBand" not in fields:
            continue  # bandID elsewhere (quality flags) without spectral information
        try:
            rows.append((
                int(el.attrib.get("number", len(rows) + 1)),
                float(fields["wavelengthCenterOfBand"]),
                float(fields.get("FWHMOfBand") or "nan"),
                float(fields.get("GainOfBand") or 1.0),
                float(fields.get("OffsetOfBand") or 0.0),
            ))
        except ValueError:
            raise in_file(xml, f"bandID {el.attrib.get('number', '?')} has a non-numeric value") from None
    if not rows:
        raise in_file(xml, "no specific/bandCharacterisation/bandID/wavelengthCenterOfBand elements; "
                      "expected an EnMAP METADATA.XML")
    rows.sort()
    arr = np.array(rows, dtype=np.float64)
    return {"number": arr[:, 0].astype(int), "wavelength": arr[:, 1], "fwhm": arr[:, 2],
            "gain": arr[:, 3], "offset": arr[:, 4]}


CHANNEL_LISTS = tuple(f"specific/{d}ProductQuality/expectedChannelsList" for d in ("vnir", "swir"))


def detectors(xml: Path, numbers: np.ndarray, root: ET.Element | None = None) -> np.ndarray | None:
    """Detector of each band (0 VNIR, 1 SWIR; ``numbers`` are the band numbers, in band
    order) from the XML's `CHANNEL_LISTS`; None when the XML has neither list, or, with a
    warning, when the lists do not name each band once. ``root``: the XML already parsed."""
    root = metadata_root(xml) if root is None else root
    texts = []
    for where in CHANNEL_LISTS:
        el = _find(root, where)
        texts.append(None if el is None else (el.text or ""))
    if texts == [None, None]:
        return None
    try:
        lists = [[int(s) for s in (t or "").split(",") if s.strip()] for t in texts]
    except ValueError:
        lists = None
    if lists is None or sorted(lists[0] + lists[1]) != sorted(numbers.tolist()):
        warnings.warn(f"{xml}: {CHANNEL_LISTS[0]} and {CHANNEL_LISTS[1]} do not name each of the "
                      f"{len(numbers)} bands once; expected every band number in exactly one list, so "
                      "the detectors are told apart by wavelength", UserWarning, stacklevel=3)
        return None
    return np.isin(numbers, lists[1]).astype(int)


def read(path: Path, *, overlap: str = "sort", **options) -> Scene:
    """Read an EnMAP L2A (reflectance) or L1C (radiance) product lazily
    (``metadata["format"] = "enmap"``, ``metadata["product"]`` names the level).

    DLR stores the VNIR bands, then the SWIR bands: the wavelengths step back at the
    detector overlap (~993 nm, then ~902 nm). ``overlap`` says what to present there (see
    `io.bands`; default: every band, sorted by wavelength), using the detectors the XML
    names (`detectors`). Without those lists, bands already sorted by wavelength cannot be
    told apart by detector: ``"short"``/``"long"`` then keep every band, with a warning.
    Bands that hold only nodata and bands flagged bad in the image are bad bands (see
    `io.geotiff.read`).
    """
    check_keywords(read, options, "an option of the enmap reader")
    policy = overlap_policy(overlap)
    tif, xml = product_files(Path(path))
    root = metadata_root(xml)  # parsed once for every field read below
    bc = band_characterisation(xml, root)
    level, background = product_info(xml, root)
    n = bc["wavelength"].size
    with reading(tif, "open as a raster"), geotiff.open_raster(tif) as ds:
        stored, tagged = ds.count, ds.nodata is not None
    if stored != n:
        raise in_file(xml, f"describes {n} bands but {tif.name} has {stored}; expected the same")
    if not np.all(np.isfinite(bc["wavelength"])) or np.any(bc["wavelength"] <= 0):
        raise in_file(xml, "wavelengthCenterOfBand holds a value that is not a positive number (nm)")
    for key, name in (("gain", "GainOfBand"), ("offset", "OffsetOfBand")):
        if not np.all(np.isfinite(bc[key])):
            raise in_file(xml, f"{name} holds a non-finite value; expected finite numbers")
    if np.any(bc["gain"] == 0):
        raise in_file(xml, "GainOfBand is 0 for a band; expected non-zero gains")
    # no FWHMOfBand element at all: no widths, nothing wrong; otherwise every width is checked
    fwhm = None if np.all(np.isnan(bc["fwhm"])) else usable_fwhm(bc["fwhm"], "FWHMOfBand values", xml)
    det = None if policy == "sort" else detectors(xml, bc["number"], root)  # "sort" keeps every band anyway
    if det is None and policy != "sort" and detector_runs(bc["wavelength"]).max() == 0:
        warnings.warn(f"{xml}: the bands are sorted by wavelength and no {CHANNEL_LISTS[0]} / "
                      f"{CHANNEL_LISTS[1]} says which detector measured each; overlap={policy!r} "
                      f"cannot tell the detectors apart, so all {n} bands are kept", UserWarning, stacklevel=2)
    scene = geotiff.read(tif, scales=bc["gain"], offsets=bc["offset"], wavelengths=bc["wavelength"],
                         fwhm=fwhm, overlap=overlap, nodata=None if tagged else background, detectors=det)
    scene.metadata.update(format="enmap", metadata_xml=str(xml), product=f"EnMAP {level}")
    scene.metadata.pop("band_names", None)
    scene.units = UNITS[level]
    scene.path = str(path)
    scene.name = tif.name.upper().split("-SPECTRAL_IMAGE")[0] if "-SPECTRAL_IMAGE" in tif.name.upper() else tif.stem
    return scene
