"""NEON AOP surface reflectance HDF5 (flight lines and 1 km tiles, DP1/DP3.30006).

Product layout (NEON AOP hyperspectral HDF5 format, as NEON's own tutorials read it):

- one root group named after the site (``SERC``, ``SOAP``, ...) holding ``Reflectance``;
- ``<SITE>/Reflectance/Reflectance_Data``: int16 ``(rows, cols, bands)`` with attributes
  ``Scale_Factor`` (10000: reflectance = stored / Scale_Factor), ``Data_Ignore_Value``
  (-9999) and, in newer files, ``no_data_value``;
- ``<SITE>/Reflectance/Metadata/Spectral_Data/Wavelength`` and ``FWHM`` (nm);
- ``<SITE>/Reflectance/Metadata/Coordinate_System/Map_Info`` (an ENVI ``map info`` string)
  and ``EPSG Code`` (text);
- attributes ``Band_Window_1_Nanometers`` / ``Band_Window_2_Nanometers`` of the
  ``Reflectance`` group: the water-vapour windows (e.g. 1340-1445 and 1790-1955 nm) whose
  bands are bad.

Values equal to the ignore value read as NaN; pixels are judged valid on the good bands. A
``FWHM`` list with a width that is not finite and positive is ignored with a warning
(`io.bands.usable_fwhm`).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..errors import check_keywords, in_file
from ..scene import Scene
from ..wavelengths import to_nm
from . import hdf5
from .bands import arrange, overlap_policy, per_band, require_good_band, usable_fwhm
from .checks import count, make_scene, number, reading


def _site(f: h5py.File, path: Path) -> str:
    sites = [k for k in f.keys() if hdf5.link_kind(f, k) == "hard" and isinstance(f[k], h5py.Group)
             and hdf5.link_kind(f[k], "Reflectance") == "hard"]
    if len(sites) != 1:
        raise in_file(path, f"{len(sites)} site groups with Reflectance (top level: {hdf5.top_level(path)}); "
                            "expected one <SITE>/Reflectance group (NEON AOP reflectance)")
    return sites[0]


def _bad_windows(refl: h5py.Group, wl: np.ndarray, path: Path) -> np.ndarray | None:
    good = np.ones(wl.size, bool)
    found = False
    for i in (1, 2, 3):
        w = hdf5.attr(refl, f"Band_Window_{i}_Nanometers")
        if w is None:
            continue
        w = np.asarray(w).reshape(-1)
        if w.size != 2 or w.dtype.kind not in "iuf" or not np.all(np.isfinite(w)):
            raise in_file(path, f"attribute Band_Window_{i}_Nanometers is {w!r}; expected two numbers (nm)")
        good &= ~((wl >= w.min()) & (wl <= w.max()))
        found = True
    return good if found else None


def read(path: Path, *, overlap: str = "sort", allow_external: bool = False, **options) -> Scene:
    """Read a NEON AOP reflectance HDF5 file lazily (``metadata["format"] = "neon"``).

    ``allow_external`` follows links and external/virtual storage (refused by default).
    """
    check_keywords(read, options, "an option of the neon reader")
    from .envi import _list, parse_map_info

    path = Path(path)
    overlap_policy(overlap)
    f = hdf5.open_file(path, "a NEON AOP reflectance .h5 file")
    ax = {"allow_external": allow_external}
    with f, reading(path, "read the NEON product", hdf5=True):
        site = _site(f, path)
        refl = hdf5.get(f, f"{site}/Reflectance", path, **ax)
        ds = hdf5.dataset(refl, "Reflectance_Data", path, ndim=3, **ax)
        rows, cols, bands = ds.shape
        name, dtype = ds.name, ds.dtype
        scale = hdf5.attr(ds, "Scale_Factor")
        if scale is None:
            raise in_file(path, f"{name} has no Scale_Factor attribute; expected reflectance x Scale_Factor")
        scale = number(scale, f"{name} attribute 'Scale_Factor'", path, positive=True)
        ignore = hdf5.attr(ds, "Data_Ignore_Value")
        if ignore is None:
            ignore = hdf5.attr(ds, "no_data_value")
        nodata = None if ignore is None else number(ignore, f"{name} attribute 'Data_Ignore_Value'", path)
        spec = hdf5.get(refl, "Metadata/Spectral_Data", path, **ax)
        wl_ds = hdf5.dataset(spec, "Wavelength", path, ndim=1, **ax)
        wl = per_band(hdf5.read_small(wl_ds, path).astype(np.float64), bands, "wavelengths", path)
        if wl is not None:
            wl = to_nm(wl, hdf5.text(hdf5.attr(wl_ds, "Units")), what=f"{path}: Wavelength")
        fw_ds = hdf5.dataset(spec, "FWHM", path, ndim=1, required=False, **ax)
        fwhm = None if fw_ds is None else per_band(hdf5.read_small(fw_ds, path).astype(np.float64),
                                                   bands, "FWHM values", path)
        fwhm = usable_fwhm(fwhm, "FWHM values", path)
        good = None if wl is None else _bad_windows(refl, wl, path)
        cs = hdf5.get(refl, "Metadata/Coordinate_System", path, required=False, **ax)
        crs = transform = None
        if isinstance(cs, h5py.Group):
            map_info = hdf5.string_dataset(cs, "Map_Info", path, required=False, **ax)
            if map_info:
                transform, crs = parse_map_info(_list(map_info), path)
            epsg = hdf5.string_dataset(cs, "EPSG Code", path, required=False, **ax)
            if epsg:
                crs = f"EPSG:{count(epsg, 'Coordinate_System/EPSG Code', path, low=1024, high=999999)}"
    arr = arrange(wl, overlap, path=path)
    good = arr.take(good)
    require_good_band(good, path)
    source = hdf5.H5CubeSource(path, name, (rows, cols, bands), dtype, scale=1.0 / scale,
                               fill=nodata, order=arr.order)
    metadata = {"format": "neon", "site": site, "scale_factor": scale}
    arr.note(metadata, overlap)
    return make_scene(
        path, source, wavelengths=arr.wavelengths, fwhm=arr.take(fwhm), good_bands=good,
        mask=lambda: hdf5.validity_by_reading(source, good), nodata=nodata, crs=crs,
        transform=transform, name=path.stem, units="reflectance",
        metadata=metadata,
    )


__all__ = ["read"]
