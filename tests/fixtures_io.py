"""Tiny fake scene files made in code: ENVI, GeoTIFF, EnMAP L2A products.

Every generator writes the bytes itself (raw numpy for ENVI data, rasterio for GeoTIFF,
ElementTree for EnMAP XML) so tests do not depend on the writers they check.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

UTM33N_TRANSFORM = (30.0, 0.0, 500000.0, 0.0, -30.0, 5800000.0)
ENVI_CODES = {"u1": 1, "i2": 2, "i4": 3, "f4": 4, "f8": 5, "u2": 12, "u4": 13, "i8": 14, "u8": 15}


def scene_cube(rows: int = 7, cols: int = 11, bands: int = 5, seed: int = 0) -> np.ndarray:
    """A non-square float32 cube in [0.05, 0.95] where every value differs."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, (rows, cols, bands)).astype(np.float32)


def write_envi(folder: Path, stored: np.ndarray, *, name: str = "scene", interleave: str = "bsq",
               byte_order: int = 0, header_offset: int = 0, data_ext: str = ".img",
               extra: dict[str, str] | None = None, omit: tuple[str, ...] = (),
               wavelengths=None, wavelength_units: str | None = "Nanometers") -> Path:
    """Write ``stored`` (rows, cols, bands) as an ENVI header + data file; return the header."""
    rows, cols, bands = stored.shape
    dt = stored.dtype.newbyteorder("<" if byte_order == 0 else ">")
    if interleave == "bsq":
        raw = stored.transpose(2, 0, 1)
    elif interleave == "bil":
        raw = stored.transpose(0, 2, 1)
    else:
        raw = stored
    data = np.ascontiguousarray(raw).astype(dt)
    (folder / f"{name}{data_ext}").write_bytes(b"\x7f" * header_offset + data.tobytes())
    fields = {
        "samples": str(cols),
        "lines": str(rows),
        "bands": str(bands),
        "header offset": str(header_offset),
        "file type": "ENVI Standard",
        "data type": str(ENVI_CODES[stored.dtype.str[1:]]),
        "interleave": interleave,
        "byte order": str(byte_order),
    }
    if wavelengths is not None:
        fields["wavelength"] = "{" + ",\n ".join(f"{w:g}" for w in wavelengths) + "}"
        if wavelength_units is not None:
            fields["wavelength units"] = wavelength_units
    fields.update(extra or {})
    text = "ENVI\n" + "".join(f"{k} = {v}\n" for k, v in fields.items() if k not in omit)
    hdr = folder / f"{name}.hdr"
    hdr.write_text(text)
    return hdr


def write_tif(path: Path, stored: np.ndarray, *, nodata=None, transform=UTM33N_TRANSFORM,
              crs: str | None = "EPSG:32633", band_tags: list[dict] | None = None,
              descriptions: list[str] | None = None, dataset_tags: dict | None = None,
              scales=None, offsets=None) -> Path:
    """Write ``stored`` (rows, cols, bands) as a plain GeoTIFF with rasterio."""
    import rasterio
    from rasterio.transform import Affine

    rows, cols, bands = stored.shape
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": bands,
               "dtype": stored.dtype.name, "nodata": nodata}
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = Affine(*transform)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.ascontiguousarray(stored.transpose(2, 0, 1)))
        for b in range(bands):
            if band_tags:
                ds.update_tags(b + 1, **band_tags[b])
            if descriptions:
                ds.set_band_description(b + 1, descriptions[b])
        if dataset_tags:
            ds.update_tags(**dataset_tags)
        if scales is not None:
            ds.scales = tuple(float(s) for s in scales)
        if offsets is not None:
            ds.offsets = tuple(float(s) for s in offsets)
    return path


def write_enmap(folder: Path, stored: np.ndarray, wavelengths, fwhm, gains, offsets, *,
                nodata: int | None = -32768, level: str = "L2A",
                background: int | None = None, channels=None) -> tuple[Path, Path]:
    """A fake EnMAP L1C or L2A product: ``*-SPECTRAL_IMAGE.TIF`` (int16) + ``*-METADATA.XML``.

    The XML follows the real layout: ``level_X/base/level`` (``L1B``, ``L1C`` or ``L2A``) and
    ``level_X/specific/bandCharacterisation/bandID[@number]`` with ``wavelengthCenterOfBand``,
    ``FWHMOfBand``, ``GainOfBand``, ``OffsetOfBand``; ``background`` writes
    ``specific/backgroundValue`` (the no-data value of the spectral bands), ``nodata=None``
    an image without a nodata tag. ``channels = (vnir, swir)`` (band numbers, 1-based) writes
    ``specific/vnirProductQuality`` and ``specific/swirProductQuality``, each with
    ``numChannelsExpected`` and ``expectedChannelsList`` (the numbers, comma-separated), as
    real products say which bands each detector measured.
    """
    stem = f"ENMAP01-____{level}-DT0000000001_20230101T100000Z_001_V010400_20230102T000000Z"
    folder.mkdir(parents=True, exist_ok=True)
    tif = write_tif(folder / f"{stem}-SPECTRAL_IMAGE.TIF", stored, nodata=nodata)
    root = ET.Element("level_X")
    base = ET.SubElement(root, "base")
    ET.SubElement(base, "format").text = f"ENMAP_{level}"
    ET.SubElement(base, "level").text = level
    specific = ET.SubElement(root, "specific")
    ET.SubElement(specific, "code").text = level
    if background is not None:
        ET.SubElement(specific, "backgroundValue").text = str(background)
    for name, numbers in zip(("vnirProductQuality", "swirProductQuality"), channels or (), strict=False):
        quality = ET.SubElement(specific, name)
        ET.SubElement(quality, "numChannelsExpected").text = str(len(numbers))
        ET.SubElement(quality, "expectedChannelsList").text = ",".join(str(n) for n in numbers)
    chars = ET.SubElement(specific, "bandCharacterisation")
    order = list(range(len(wavelengths)))[::-1]  # out of order on purpose: sort by number
    for i in order:
        b = ET.SubElement(chars, "bandID", number=str(i + 1))
        ET.SubElement(b, "wavelengthCenterOfBand").text = f"{wavelengths[i]:.4f}"
        ET.SubElement(b, "FWHMOfBand").text = f"{fwhm[i]:.4f}"
        ET.SubElement(b, "GainOfBand").text = repr(float(gains[i]))
        ET.SubElement(b, "OffsetOfBand").text = repr(float(offsets[i]))
    xml = folder / f"{stem}-METADATA.XML"
    ET.ElementTree(root).write(xml, encoding="utf-8", xml_declaration=True)
    return tif, xml
