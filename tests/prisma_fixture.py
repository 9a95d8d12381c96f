"""A fake PRISMA HE5 product, made in code (for tests and `benchmarks/prisma_io.py`).

`make_prisma_he5` writes the parts of the PRISMA product layout that `unmixgen.io.prisma`
reads: the swath group ``HDFEOS/SWATHS/PRS_<level>_HCO`` with ``Data Fields/VNIR_Cube``
and ``SWIR_Cube`` stored ``(rows, bands, cols)`` uint16, the error matrices (same shape,
uint8), root attributes ``List_Cw_Vnir``/``List_Cw_Swir`` (+ FWHM and ``*_Flags``) with
wavelengths in DESCENDING order and unused slots set to 0, the L2 scale attributes or the
L1 scale factors/offsets, and for L2D the EPSG code and corner coordinates. L2B/L2C get
latitude/longitude arrays in ``Geolocation Fields`` instead of a map grid.

The DN values are a deterministic function of (row, col, slot), so a test can compute the
expected value of any pixel without keeping the cube: see `expected_dn`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

N_VNIR = 66
N_SWIR = 173
VNIR_ZERO_SLOTS = (0, 1, 2)  # unused slots (wavelength 0) at the long-wavelength end of the list
SWIR_ZERO_SLOTS = (171, 172)  # ... and at the short end of the SWIR list


@dataclass
class FakePrisma:
    """What a test needs to know about a generated product."""

    path: Path
    level: str
    rows: int
    cols: int
    cw_vnir: np.ndarray  # stored order (descending, zeros in unused slots)
    cw_swir: np.ndarray
    fwhm_vnir: np.ndarray
    fwhm_swir: np.ndarray
    attrs: dict = field(default_factory=dict)
    zero_pixels: list[tuple[int, int]] = field(default_factory=list)  # DN 0 in every band
    flagged_pixels: list[tuple[int, int]] = field(default_factory=list)  # error matrix set in all bands
    partly_zero_pixel: tuple[int, int] | None = None  # DN 0 in some bands only: still valid


def _wavelengths() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    vnir = np.linspace(402.0, 1010.0, N_VNIR - len(VNIR_ZERO_SLOTS))[::-1]  # descending
    swir = np.linspace(920.0, 2497.0, N_SWIR - len(SWIR_ZERO_SLOTS))[::-1]
    cw_v = np.zeros(N_VNIR)
    cw_s = np.zeros(N_SWIR)
    cw_v[[i for i in range(N_VNIR) if i not in VNIR_ZERO_SLOTS]] = vnir
    cw_s[[i for i in range(N_SWIR) if i not in SWIR_ZERO_SLOTS]] = swir
    fw_v = np.where(cw_v > 0, 10.0 + cw_v / 1000.0, 0.0)
    fw_s = np.where(cw_s > 0, 9.0 + cw_s / 2000.0, 0.0)
    return cw_v, cw_s, fw_v, fw_s


def expected_dn(rows: np.ndarray, cols: np.ndarray, slot: int, cube: str) -> np.ndarray:
    """The stored DN at (rows, cols) of ``cube`` ("vnir"/"swir") in stored band ``slot``."""
    base = 1000 if cube == "vnir" else 20000
    r = np.asarray(rows, np.int64)
    c = np.asarray(cols, np.int64)
    return ((base + 7 * r + 13 * c + 101 * slot) % 40000 + 1).astype(np.uint16)


def _block(r0: int, r1: int, cols: int, nbands: int, cube: str) -> np.ndarray:
    r = np.arange(r0, r1)[:, None, None]
    s = np.arange(nbands)[None, :, None]
    c = np.arange(cols)[None, None, :]
    base = 1000 if cube == "vnir" else 20000
    return ((base + 7 * r + 13 * c + 101 * s) % 40000 + 1).astype(np.uint16)


def make_prisma_he5(
    path: str | Path,
    rows: int,
    cols: int,
    level: str = "L2D",
    *,
    chunked: bool = False,
    zero_pixels: list[tuple[int, int]] | None = None,
    flagged_pixels: list[tuple[int, int]] | None = None,
    partly_zero_pixel: tuple[int, int] | None = None,
    with_error_matrix: bool = True,
    with_flags: bool = True,
    block_rows: int = 64,
) -> FakePrisma:
    """Write a fake PRISMA product of ``rows`` x ``cols`` pixels and 66 + 173 band slots.

    Parameters
    ----------
    level : "L1", "L2B", "L2C" or "L2D"
    chunked : store the cubes in HDF5 chunks (one row of all bands per chunk) instead of
        contiguously.
    zero_pixels : pixels with DN 0 in every band of both cubes (invalid).
    flagged_pixels : pixels whose error-matrix entries are non-zero in every band (invalid).
    partly_zero_pixel : a pixel with DN 0 in the first half of the VNIR slots only (valid).
    """
    path = Path(path)
    level = level.upper()
    if level not in ("L1", "L2B", "L2C", "L2D"):
        raise ValueError(f"level must be L1, L2B, L2C or L2D, got {level!r}")
    if zero_pixels is None:
        zero_pixels = [(0, 0), (rows - 1, cols - 1), (rows // 2, 1)]
    if flagged_pixels is None:
        flagged_pixels = [(1, cols - 2)]
    cw_v, cw_s, fw_v, fw_s = _wavelengths()
    swath = f"HDFEOS/SWATHS/PRS_{level}_HCO"
    attrs: dict = {
        "Processing_Level": level[1:],
        "Product_ID": f"PRS_{level}_STD",
        "List_Cw_Vnir": cw_v.astype(np.float32),
        "List_Cw_Swir": cw_s.astype(np.float32),
        "List_Fwhm_Vnir": fw_v.astype(np.float32),
        "List_Fwhm_Swir": fw_s.astype(np.float32),
    }
    if with_flags:
        attrs["List_Cw_Vnir_Flags"] = (cw_v > 0).astype(np.int8)
        attrs["List_Cw_Swir_Flags"] = (cw_s > 0).astype(np.int8)
    if level == "L1":
        attrs.update(ScaleFactor_Vnir=np.float32(100.0), ScaleFactor_Swir=np.float32(400.0),
                     Offset_Vnir=np.float32(0.5), Offset_Swir=np.float32(0.25))
    else:
        attrs.update(L2ScaleVnirMin=np.float32(0.0), L2ScaleVnirMax=np.float32(0.8),
                     L2ScaleSwirMin=np.float32(0.01), L2ScaleSwirMax=np.float32(0.6))
    if level == "L2D":
        # The corner attributes are the CENTRES of the corner pixels of a 30 m grid (as
        # prismaread's pr_setext_L2D and the EnMAP-Box importer read them).
        ul_e, ul_n = 500015.0, 4599985.0
        attrs.update(Epsg_Code=np.int32(32633), Projection_Name="UTM",
                     Product_ULcorner_easting=ul_e, Product_ULcorner_northing=ul_n,
                     Product_URcorner_easting=ul_e + 30.0 * (cols - 1), Product_URcorner_northing=ul_n,
                     Product_LLcorner_easting=ul_e, Product_LLcorner_northing=ul_n - 30.0 * (rows - 1),
                     Product_LRcorner_easting=ul_e + 30.0 * (cols - 1),
                     Product_LRcorner_northing=ul_n - 30.0 * (rows - 1))
    err_name = "PIXEL_SAT_ERR_MATRIX" if level == "L1" else "PIXEL_L2_ERR_MATRIX"
    with h5py.File(path, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        data = f.create_group(f"{swath}/Data Fields")
        geo = f.create_group(f"{swath}/Geolocation Fields")
        for cube, nb in (("vnir", N_VNIR), ("swir", N_SWIR)):
            name = cube.upper()
            kw = {"chunks": (1, nb, cols)} if chunked else {}
            ds = data.create_dataset(f"{name}_Cube", shape=(rows, nb, cols), dtype="u2", **kw)
            err = None
            if with_error_matrix:
                err = data.create_dataset(f"{name}_{err_name}", shape=(rows, nb, cols), dtype="u1", **kw)
            for r0 in range(0, rows, block_rows):
                r1 = min(r0 + block_rows, rows)
                blk = _block(r0, r1, cols, nb, cube)
                for r, c in zero_pixels:
                    if r0 <= r < r1:
                        blk[r - r0, :, c] = 0
                if partly_zero_pixel is not None and cube == "vnir":
                    r, c = partly_zero_pixel
                    if r0 <= r < r1:
                        blk[r - r0, : nb // 2, c] = 0
                ds[r0:r1] = blk
                if err is not None:
                    e = np.zeros((r1 - r0, nb, cols), np.uint8)
                    for r, c in flagged_pixels:
                        if r0 <= r < r1:
                            e[r - r0, :, c] = 1
                    err[r0:r1] = e
        # each pixel centre's latitude/longitude: a swath running a little east of south
        lat = np.linspace(41.0, 40.7, rows)[:, None] + np.linspace(0.0, 0.02, cols)[None, :]
        lon = np.linspace(15.0, 15.35, cols)[None, :] + np.linspace(0.0, 0.05, rows)[:, None]
        if level in ("L2B", "L2C", "L2D"):
            geo.create_dataset("Latitude", data=lat.astype(np.float32))
            geo.create_dataset("Longitude", data=lon.astype(np.float32))
        else:  # L1: one pair per spectrometer (coregistered in the HCO cube)
            for cube in ("VNIR", "SWIR"):
                geo.create_dataset(f"Latitude_{cube}", data=lat.astype(np.float32))
                geo.create_dataset(f"Longitude_{cube}", data=lon.astype(np.float32))
    return FakePrisma(path, level, rows, cols, cw_v, cw_s, fw_v, fw_s, attrs,
                      list(zero_pixels), list(flagged_pixels), partly_zero_pixel)
