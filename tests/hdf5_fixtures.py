"""Fake EMIT (NetCDF4) and NEON AOP (HDF5) reflectance products, made in code with h5py.

Both follow the real products' layouts as their producers document them (EMIT: the LP DAAC
NetCDF files written by the EMIT SDS; NEON: the AOP hyperspectral HDF5 format): variable and
group names, dimension order, dtypes, fill values, scale factors, attribute names and types.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

EMIT_FILL = -9999.0
EMIT_RADIANCE_UNITS = "uW/cm^2/SR/nm"  # the L1B radiance variable's units attribute
WGS84_WKT = ('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
             'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AXIS["Latitude",NORTH],'
             'AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]')


def _dims(f: h5py.File, sizes: dict[str, int]) -> None:
    """NetCDF4 dimensions without coordinate variables: HDF5 dimension scales."""
    for name, n in sizes.items():
        d = f.create_dataset(name, shape=(n,), dtype="f4")
        d.make_scale("This is a netCDF dimension but not a netCDF variable.")


def emit_values(rows: int, cols: int, bands: int) -> np.ndarray:
    r, c, b = np.meshgrid(np.arange(rows), np.arange(cols), np.arange(bands), indexing="ij")
    return (0.01 + 0.001 * (100 * r + 10 * c + b)).astype(np.float32)  # encodes (r, c, b)


def make_emit_nc(path: str | Path, rows: int = 6, cols: int = 5, *, level: str = "L2A",
                 fill_pixels=((0, 0),)) -> dict:
    """An EMIT L2A RFL (``reflectance``) or L1B RAD (``radiance``) NetCDF4 file.

    The GLT maps the raw swath, rotated by 90 degrees, onto a (cols + 2) x (rows + 1) north-up
    grid: cell (y, x) takes raw pixel (downtrack x, crosstrack y - 1) when 1 <= y <= cols
    and x < rows; other cells hold 0 (no pixel).
    """
    path = Path(path)
    wl = np.array([381.0, 450.2, 1350.0, 1400.1, 1890.4, 2200.9, 2493.0], np.float32)
    bands = wl.size
    good = np.array([1, 1, 1, 0, 0, 1, 1], np.uint8)
    var = "reflectance" if level == "L2A" else "radiance"
    cube = emit_values(rows, cols, bands)
    for r, c in fill_pixels:
        cube[r, c] = EMIT_FILL
    oy, ox = cols + 2, rows + 1
    glt_x = np.zeros((oy, ox), np.int32)
    glt_y = np.zeros((oy, ox), np.int32)
    for y in range(1, cols + 1):
        for x in range(rows):
            glt_x[y, x] = y  # 1-based crosstrack index (raw column y - 1)
            glt_y[y, x] = x + 1  # 1-based downtrack index (raw row x)
    with h5py.File(path, "w") as f:
        _dims(f, {"downtrack": rows, "crosstrack": cols, "bands": bands, "ortho_y": oy, "ortho_x": ox})
        f.attrs["ncei_template_version"] = "NCEI_NetCDF_Swath_Template_v2.0"
        f.attrs["title"] = f"EMIT {level} Estimated Surface Reflectance 60 m"
        f.attrs["spatial_ref"] = WGS84_WKT
        f.attrs["geotransform"] = np.array([-116.2, 0.000542232520256, 0.0, 36.5, 0.0, -0.000542232520256])
        d = f.create_dataset(var, data=cube)
        d.attrs["_FillValue"] = np.array([EMIT_FILL], np.float32)
        # the EMIT SDS's DAAC converters: "unitless" reflectance, radiance in "uW/cm^2/SR/nm"
        d.attrs["units"] = "unitless" if level == "L2A" else EMIT_RADIANCE_UNITS
        sbp = f.create_group("sensor_band_parameters")
        w = sbp.create_dataset("wavelengths", data=wl)
        w.attrs["units"] = "nm"
        sbp.create_dataset("fwhm", data=np.full(bands, 8.5, np.float32)).attrs["units"] = "nm"
        if level == "L2A":
            sbp.create_dataset("good_wavelengths", data=good)
        loc = f.create_group("location")
        # each raw pixel centre's latitude/longitude (float64, as in the products) and elevation
        lat = 36.5 - 0.0005 * np.arange(rows)[:, None] - 0.0002 * np.arange(cols)[None, :]
        lon = -116.2 + 0.0005 * np.arange(cols)[None, :] - 0.0001 * np.arange(rows)[:, None]
        for name, values in (("lat", lat), ("lon", lon), ("elev", np.zeros((rows, cols)))):
            loc.create_dataset(name, data=values).attrs["_FillValue"] = np.array([EMIT_FILL])
        for name, g in (("glt_x", glt_x), ("glt_y", glt_y)):
            loc.create_dataset(name, data=g).attrs["_FillValue"] = np.array([-9999], np.int32)
    return {"path": path, "cube": cube, "wavelengths": wl, "good": good.astype(bool),
            "glt_x": glt_x, "glt_y": glt_y, "variable": var}


def make_neon_h5(path: str | Path, rows: int = 8, cols: int = 6, *, site: str = "SERC") -> dict:
    """A NEON AOP reflectance tile: int16 reflectance x 10000, ignore value -9999."""
    path = Path(path)
    wl = np.array([383.9, 550.2, 860.0, 1365.1, 1400.2, 1850.3, 2100.0, 2510.0])
    bands = wl.size
    rng = np.random.default_rng(4)
    stored = rng.integers(100, 6000, (rows, cols, bands)).astype(np.int16)
    stored[0, :2] = -9999  # outside the flight line
    with h5py.File(path, "w") as f:
        f.attrs["Site"] = site
        refl = f.create_group(f"{site}/Reflectance")
        refl.attrs["Band_Window_1_Nanometers"] = np.array([1340, 1445], np.int32)
        refl.attrs["Band_Window_2_Nanometers"] = np.array([1790, 1955], np.int32)
        d = refl.create_dataset("Reflectance_Data", data=stored, chunks=(4, 3, bands))
        d.attrs["Scale_Factor"] = np.float64(10000.0)
        d.attrs["Data_Ignore_Value"] = np.float64(-9999.0)
        d.attrs["no_data_value"] = np.float64(-9999.0)
        d.attrs["Dimension_Labels"] = "Line, Sample, Wavelength"
        spec = refl.create_group("Metadata/Spectral_Data")
        spec.create_dataset("Wavelength", data=wl).attrs["Units"] = "nanometers"
        spec.create_dataset("FWHM", data=np.full(bands, 5.0))
        cs = refl.create_group("Metadata/Coordinate_System")
        cs.create_dataset("Map_Info", data=np.bytes_(
            "UTM,  1.000,  1.000,       368000.00,       4307000.0,       1.0000000,       1.0000000,"
            "  18,  North,  WGS-84,  units=Meters, 0.000, 0.000"))
        cs.create_dataset("EPSG Code", data=np.bytes_("32618"))
        cs.create_dataset("Proj4", data=np.bytes_("+proj=UTM +zone=18 +ellps=WGS84 +datum=WGS84 +units=m"))
    return {"path": path, "stored": stored, "wavelengths": wl}
