"""ESRI BIL / EHdr reader: a Headwall-style export (WAVELENGTHS block), GDAL agreement,
row padding, short wavelength lists, ENVI vs EHdr header detection."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from fixtures_io import scene_cube, write_envi
from unmixgen.errors import InputError
from unmixgen.io import detect_format, read_scene

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def write_headwall_bil(folder, stored, wavelengths, *, name="hw", pad_row=0, nodata=None,
                       georef=True):
    """A Headwall "ArcGIS" BIL export: uint16, band-interleaved by line, Intel byte order,
    EHdr keywords and a ``WAVELENGTHS ... WAVELENGTHS_END`` block, one value per line."""
    rows, cols, bands = stored.shape
    band_row = cols * 2
    total_row = bands * band_row + pad_row
    raw = bytearray()
    for r in range(rows):
        raw += np.ascontiguousarray(stored[r].T).astype("<u2").tobytes()  # (bands, cols)
        raw += b"\0" * pad_row
    (folder / f"{name}.bil").write_bytes(bytes(raw))
    lines = ["BYTEORDER      I", "LAYOUT         BIL", f"NROWS          {rows}", f"NCOLS          {cols}",
             f"NBANDS         {bands}", "NBITS          16", f"BANDROWBYTES   {band_row}",
             f"TOTALROWBYTES  {total_row}", "PIXELTYPE      UNSIGNEDINT"]
    if georef:
        lines += ["ULXMAP         500015.0", "ULYMAP         4199985.0", "XDIM           30.0", "YDIM           30.0"]
    if nodata is not None:
        lines.append(f"NODATA         {nodata}")
    lines.append("WAVELENGTHS")
    lines += [f"{w:.6f}" for w in wavelengths]
    lines.append("WAVELENGTHS_END")
    hdr = folder / f"{name}.hdr"
    hdr.write_text("\r\n".join(lines) + "\r\n")
    return hdr


def _stored(rows=6, cols=9, bands=5):
    return np.rint(scene_cube(rows, cols, bands) * 4000 + 1).astype(np.uint16)


@pytest.mark.parametrize("pad_row", [0, 6])
def test_headwall_bil_export_matches_gdal(tmp_path, pad_row):
    stored = _stored()
    wl = np.linspace(400.5, 998.2, 5)
    hdr = write_headwall_bil(tmp_path, stored, wl, pad_row=pad_row)
    assert detect_format(hdr) == "ehdr" and detect_format(tmp_path / "hw.bil") == "ehdr"
    s = read_scene(hdr)
    assert s.metadata["format"] == "ehdr" and s.dtype == np.dtype("uint16")
    np.testing.assert_allclose(s.wavelengths, wl)
    np.testing.assert_array_equal(s.load(), stored)
    np.testing.assert_array_equal(s.read(slice(2, 5), slice(1, 7)), stored[2:5, 1:7])
    assert s.transform == (30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)  # ULXMAP: pixel centre
    if pad_row:
        return  # GDAL's EHdr driver does not apply TOTALROWBYTES padding to BIL; ESRI's spec does
    with rasterio.open(tmp_path / "hw.bil") as ds:  # GDAL's EHdr driver on the same file
        assert ds.driver == "EHdr"
        np.testing.assert_array_equal(np.moveaxis(ds.read(), 0, -1), s.load())
        np.testing.assert_allclose(tuple(ds.transform)[:6], s.transform)


def test_export_listing_fewer_wavelengths_than_bands(tmp_path):
    stored = _stored(bands=7)
    hdr = write_headwall_bil(tmp_path, stored, [400.0, 500.0, 600.0])
    with pytest.warns(UserWarning, match="hw.hdr: 3 wavelengths for 7 bands"):
        s = read_scene(hdr)
    assert s.wavelengths is None and s.bands == 7
    np.testing.assert_array_equal(s.load(), stored)


def test_gdal_written_ehdr_with_prj_and_nodata(tmp_path):
    stored = np.rint(scene_cube() * 1000).astype(np.int16)
    stored[3, 4] = -9999
    prof = dict(driver="EHdr", width=11, height=7, count=5, dtype="int16", nodata=-9999,
                crs="EPSG:32633", transform=rasterio.transform.Affine(30, 0, 500000, 0, -30, 5800000))
    with rasterio.open(tmp_path / "g.bil", "w", **prof) as ds:
        ds.write(np.moveaxis(stored, -1, 0))
    s = read_scene(tmp_path / "g.hdr")
    np.testing.assert_array_equal(s.load(), stored)
    assert s.nodata == -9999 and not s.mask[3, 4] and s.mask.sum() == 76
    assert rasterio.crs.CRS.from_wkt(s.crs).to_epsg() == 32633
    np.testing.assert_allclose(s.transform, (30, 0, 500000, 0, -30, 5800000))


def test_envi_header_still_goes_to_envi(tmp_path):
    hdr = write_envi(tmp_path, scene_cube())
    assert detect_format(hdr) == "envi"


@pytest.mark.parametrize("line, message", [
    ("NROWS          -6", "NROWS = -6; expected an integer >= 1"),
    ("NBITS          12", "NBITS 12 with PIXELTYPE UNSIGNEDINT is not supported"),
    ("LAYOUT         BIP2", "LAYOUT 'BIP2' is not supported"),
    ("NCOLS          900", "BANDROWBYTES = 18 is less than one row of a band"),
    ("NROWS          60", "the data file hw.bil holds 540 bytes; the header's layout needs 5400"),
])
def test_bad_headers_are_input_errors(tmp_path, run_cli, line, message):
    hdr = write_headwall_bil(tmp_path, _stored(), np.linspace(400, 900, 5))
    key = line.split()[0]
    text = "\n".join(line if ln.startswith(key) else ln for ln in hdr.read_text().splitlines())
    hdr.write_text(text + "\n")
    with pytest.raises(InputError, match="hw.hdr: " + message.replace("(", r"\(")):
        read_scene(hdr)
    code, _, err = run_cli("info", hdr)
    assert code == 2 and err.strip().count("\n") == 0


def test_unclosed_wavelength_block(tmp_path):
    hdr = write_headwall_bil(tmp_path, _stored(), np.linspace(400, 900, 5))
    hdr.write_text(hdr.read_text().replace("WAVELENGTHS_END", ""))
    with pytest.raises(InputError, match="WAVELENGTHS block has no WAVELENGTHS_END"):
        read_scene(hdr)
