"""Unit labels of a scene's values: which quantity a label names, and the label a scene keeps.

A scene is in reflectance, in radiance (in whichever unit its file states) or in unknown
units (None). Readers, writers, `simulate` and the endmember sources share these rules, so
a label such as ``"uW/(cm^2 sr nm)"`` passes through every one of them unchanged.
"""

from __future__ import annotations

import numpy as np

__all__ = ["UNITS_EXAMPLES", "product_units", "quantity", "scene_units"]


def quantity(value) -> str | None:
    """The scene quantity a unit label names: ``"reflectance"``, ``"radiance"`` or None.

    Accepts the words (any case) and radiance units as files write them (``W/(m2 sr um)``,
    ``uW cm-2 sr-1 nm-1``); anything else, e.g. an empty label or irradiance, is None (not
    known)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if "irradiance" in text:  # light arriving, not what a scene's pixels measure
        return None
    if "reflect" in text:
        return "reflectance"
    if "radian" in text or ("w" in text and "sr" in text):
        return "radiance"
    return None


_NO_BRACES = str.maketrans("{}", "()")

UNITS_EXAMPLES = "'reflectance', 'radiance' or a radiance unit such as 'uW/(cm^2 sr nm)'"


def scene_units(value) -> str | None:
    """The unit label a scene keeps (`Scene.units`) and every writer stores, from ``value`` (text,
    bytes or a one-element text array): the label itself, runs of white space made one space
    (no header line or tag holds a line break) and braces made parentheses (an ENVI header
    reads a brace as the bound of its value: ``{W/m2 sr um}`` came back without its ``}``),
    when it names reflectance or radiance
    (`quantity`). So ``"uW/(cm^2 sr nm)"`` reads back as exactly that, not as ``"radiance"``,
    from every format that stores a label. None for no label or one that names neither (an
    irradiance, ``DN``, an empty string): unknown."""
    if isinstance(value, np.ndarray):
        if value.size != 1 or value.dtype.kind not in "US":
            return None
        value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = " ".join(value.split()).translate(_NO_BRACES)
    return text if quantity(text) else None


def product_units(word: str, stated=None) -> str:
    """The label a reader keeps for a product whose layout fixes its quantity (``word``:
    ``"reflectance"`` or ``"radiance"``, e.g. from the variable or processing level): the unit
    the file or the product's specification states (``stated``, read as `scene_units` reads
    it) when that names the same quantity, else ``word``. So an EMIT radiance variable whose
    ``units`` attribute is ``uW/cm^2/SR/nm`` keeps that label, not ``"radiance"`` (which readers
    take as W/(m^2 sr um), 10 times larger), and a reflectance variable stated ``unitless``
    stays ``"reflectance"``; what counts as radiance is `quantity`'s rule, unchanged."""
    label = scene_units(stated)
    return label if label is not None and quantity(label) == word else word
