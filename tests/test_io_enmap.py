"""EnMAP L2A reader on a fake product (tiny int16 GeoTIFF + METADATA.XML made in code)."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_io import UTM33N_TRANSFORM, scene_cube, write_enmap
from unmixgen.errors import InputError
from unmixgen.io import detect_format, read_scene

WL = np.array([418.2, 501.0, 612.7, 705.5, 881.0])
FWHM = np.array([6.5, 7.0, 7.5, 8.0, 10.5])
GAIN = np.array([1e-4, 1e-4, 2e-4, 1e-4, 1e-4])
OFFSET = np.array([0.0, 0.0, -0.01, 0.0, 0.02])


@pytest.fixture
def product(tmp_path):
    stored = np.rint(scene_cube() * 5000).astype(np.int16)
    stored[2, 3] = -32768
    tif, xml = write_enmap(tmp_path / "prod", stored, WL, FWHM, GAIN, OFFSET)
    return tmp_path / "prod", tif, xml, stored


@pytest.mark.parametrize("which", [0, 1, 2])
def test_read_from_folder_xml_or_tif(product, which):
    folder, tif, xml, stored = product
    path = (folder, xml, tif)[which]
    assert detect_format(path) == "enmap"
    s = read_scene(path)
    assert s.metadata["format"] == "enmap" and s.path == str(path)
    np.testing.assert_allclose(s.wavelengths, WL)  # bands sorted by number, not XML order
    np.testing.assert_allclose(s.fwhm, FWHM)
    expected = stored * GAIN.astype(np.float32) + OFFSET.astype(np.float32)
    np.testing.assert_allclose(s.load()[s.mask], expected[s.mask], rtol=1e-6, atol=1e-7)
    assert s.mask.sum() == 76 and not s.mask[2, 3]
    np.testing.assert_allclose(s.transform, UTM33N_TRANSFORM)
    assert s.crs is not None and s.units == "reflectance"


def test_window_read(product):
    folder, _, _, stored = product
    s = read_scene(folder)
    win = s.read(slice(3, 7), slice(0, 4))
    np.testing.assert_allclose(win, stored[3:7, 0:4] * GAIN.astype(np.float32) + OFFSET.astype(np.float32),
                               rtol=1e-6, atol=1e-7)
    assert s._cube is None


def test_band_count_mismatch_and_missing_image(product, run_cli):
    folder, tif, xml, _ = product
    text = xml.read_text()
    start = text.index("<bandID")
    end = text.index("</bandID>") + len("</bandID>")
    xml.write_text(text[:start] + text[end:])  # drop one band from the XML
    code, _, err = run_cli("info", folder)
    assert code == 2 and "describes 4 bands" in err and err.strip().count("\n") == 0
    tif.unlink()
    with pytest.raises(InputError, match="no \\*SPECTRAL_IMAGE\\*.TIF"):
        read_scene(xml)


def test_xml_without_band_characterisation(tmp_path):
    (tmp_path / "X-METADATA.XML").write_text("<level_X><specific/></level_X>")
    (tmp_path / "X-SPECTRAL_IMAGE.TIF").write_bytes(b"")
    with pytest.raises(InputError, match="no specific/bandCharacterisation"):
        read_scene(tmp_path / "X-METADATA.XML")
