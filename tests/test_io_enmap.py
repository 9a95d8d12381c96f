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


# -- issue 10: EnMAP L2A as DLR delivers it ------------------------------------------------------
def _dlr_product(folder, empty=(), nodata=-32768):
    """VNIR bands 1-5 up to 993 nm, then SWIR bands 6-9 from 902 nm (wavelengths step back at
    the detector overlap, as in every real L2A product), int16 with gain 1e-4."""
    wl = np.array([420.0, 550.0, 700.0, 900.0, 993.0, 902.0, 1000.0, 1650.0, 2200.0])
    fwhm = np.full(9, 8.0)
    gain = np.full(9, 1e-4)
    offset = np.zeros(9)
    stored = np.rint(scene_cube(bands=9) * 10000).astype(np.int16)
    for b in empty:
        stored[..., b] = nodata
    stored[0, 0] = nodata
    tif, xml = write_enmap(folder, stored, wl, fwhm, gain, offset, nodata=nodata)
    return wl, stored, tif, xml


def test_dlr_vnir_then_swir_product_is_read_and_sorted(tmp_path):
    wl, stored, tif, xml = _dlr_product(tmp_path / "p")
    s = read_scene(tmp_path / "p")
    order = np.argsort(wl, kind="stable")
    np.testing.assert_allclose(s.wavelengths, wl[order])
    np.testing.assert_allclose(s.load()[s.mask], (stored[..., order] * np.float32(1e-4))[s.mask], rtol=1e-6)
    long = read_scene(tmp_path / "p", overlap="long")  # drop the VNIR bands >= 902 nm
    np.testing.assert_allclose(long.wavelengths, [420, 550, 700, 900, 902, 1000, 1650, 2200])
    short = read_scene(tmp_path / "p", overlap="short")  # drop the SWIR bands <= 993 nm
    np.testing.assert_allclose(short.wavelengths, [420, 550, 700, 900, 993, 1000, 1650, 2200])


def test_dlr_bands_of_nodata_are_bad_bands(tmp_path):
    wl, stored, tif, xml = _dlr_product(tmp_path / "p", empty=(6, 8))
    s = read_scene(tmp_path / "p")
    order = np.argsort(wl, kind="stable")
    bad = np.isin(order, [6, 8])
    np.testing.assert_array_equal(s.good_bands, ~bad)
    assert np.isnan(s.load()[..., bad]).all()
    assert np.nanmin(s.load()[s.mask]) > 0  # no -3.2768 anywhere
    assert s.mask.sum() == 7 * 11 - 1 and not s.mask[0, 0]


# -- the processing level in the metadata XML (level_X/base/level) -------------------------------
def test_l1c_product_is_radiance_not_reflectance(tmp_path):
    """An L1C product has the L2A layout (one SPECTRAL_IMAGE, per-band gain/offset) but holds
    top-of-atmosphere radiance (EnMAP product specification; SNAP's EnMAP reader labels L1C
    'radiance' from level_X/base/level), in W/(m^2 sr nm) as DLR's gains and offsets give it
    (GFZ's EnPT and EnFROSP read it so), not the word 'radiance' (taken for W/(m^2 sr um))."""
    stored = np.rint(scene_cube() * 5000).astype(np.int16)
    write_enmap(tmp_path / "l1c", stored, WL, FWHM, GAIN, OFFSET, level="L1C")
    s = read_scene(tmp_path / "l1c")
    assert s.units == "W/(m^2 sr nm)" and s.metadata["product"] == "EnMAP L1C"
    l2a = read_scene(write_enmap(tmp_path / "l2a", stored, WL, FWHM, GAIN, OFFSET)[1])
    assert l2a.units == "reflectance" and l2a.metadata["product"] == "EnMAP L2A"


def test_l1b_product_is_refused_by_name(tmp_path):
    """L1B has two images (VNIR, SWIR) in sensor geometry: refused with one clear line, not
    with a band-count mismatch against whichever image sorts first."""
    stored = np.rint(scene_cube() * 5000).astype(np.int16)
    tif, xml = write_enmap(tmp_path / "l1b", stored, WL, FWHM, GAIN, OFFSET, level="L1B")
    with pytest.raises(InputError, match="L1B") as err:
        read_scene(xml)
    assert "expected an EnMAP L1C or L2A product" in str(err.value) and "\n" not in str(err.value)


def test_background_value_of_the_xml_marks_nodata_when_the_image_has_no_tag(tmp_path):
    """level_X/specific/backgroundValue is the documented no-data value of the spectral bands
    (SNAP's EnMAP reader uses it): an image without a nodata tag must not turn -32768 into
    reflectance -3.2768."""
    stored = np.rint(scene_cube() * 5000).astype(np.int16)
    stored[2, 3] = -32768
    stored[..., 4] = -32768  # a band of background only
    write_enmap(tmp_path / "p", stored, WL, FWHM, GAIN, OFFSET, nodata=None, background=-32768)
    s = read_scene(tmp_path / "p")
    assert s.nodata == -32768 and not s.mask[2, 3] and s.mask.sum() == 76
    np.testing.assert_array_equal(s.good_bands, [True, True, True, True, False])
    assert np.nanmin(s.load()[s.mask][:, :4]) > 0


def test_bad_background_value_is_input_error(tmp_path):
    stored = np.rint(scene_cube() * 5000).astype(np.int16)
    _, xml = write_enmap(tmp_path / "p", stored, WL, FWHM, GAIN, OFFSET, nodata=None, background="none")
    with pytest.raises(InputError, match="backgroundValue"):
        read_scene(xml)


@pytest.mark.parametrize("bad", [np.nan, 0.0, -7.0, np.inf])
def test_bad_fwhm_is_dropped_with_a_warning(tmp_path, bad):
    # a zero or negative FWHMOfBand was kept (only NaN was dropped, silently)
    fwhm = FWHM.copy()
    fwhm[3] = bad
    _, xml = write_enmap(tmp_path / "p", np.rint(scene_cube() * 5000).astype(np.int16), WL, fwhm, GAIN, OFFSET)
    with pytest.warns(UserWarning, match=r"METADATA.XML: FWHMOfBand values hold .*expected finite positive widths"):
        s = read_scene(xml)
    assert s.fwhm is None


def test_product_without_any_fwhm_reads_without_widths_or_warning(tmp_path):
    import warnings

    _, xml = write_enmap(tmp_path / "p", np.rint(scene_cube() * 5000).astype(np.int16), WL, FWHM, GAIN, OFFSET)
    text = xml.read_text()
    for f in FWHM:
        text = text.replace(f"<FWHMOfBand>{f:.4f}</FWHMOfBand>", "")
    xml.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = read_scene(xml)
    assert s.fwhm is None


# -- detectors named by the metadata XML (specific/{vnir,swir}ProductQuality/expectedChannelsList) --
# 9 bands, VNIR up to 993 nm and SWIR from 902 nm (band numbers in detector order)
VNIR_WL = [420.0, 550.0, 700.0, 950.0, 993.0]
SWIR_WL = [902.0, 975.0, 1650.0, 2200.0]


def _product_with_channels(folder, stored_order, channels=True):
    """``stored_order`` "detector" (VNIR bands, then SWIR: DLR's order) or "wavelength" (the
    same bands sorted); the XML names each detector's band numbers unless ``channels=False``."""
    wl = np.array(VNIR_WL + SWIR_WL)
    det = np.array([0] * 5 + [1] * 4)
    if stored_order == "wavelength":
        order = np.argsort(wl, kind="stable")
        wl, det = wl[order], det[order]
    numbers = np.arange(1, 10)
    lists = (numbers[det == 0].tolist(), numbers[det == 1].tolist()) if channels else None
    stored = np.rint(scene_cube(bands=9) * 10000).astype(np.int16)
    write_enmap(folder, stored, wl, np.full(9, 8.0), np.full(9, 1e-4), np.zeros(9), channels=lists)
    return wl, stored


@pytest.mark.parametrize("stored_order", ["detector", "wavelength"])
@pytest.mark.parametrize("overlap, expected", [
    ("long", [420, 550, 700, 902, 975, 1650, 2200]),  # VNIR bands >= 902 nm dropped
    ("short", [420, 550, 700, 950, 993, 1650, 2200]),  # SWIR bands <= 993 nm dropped
    ("sort", sorted(VNIR_WL + SWIR_WL)),
])
def test_overlap_uses_the_detectors_the_xml_names_whatever_the_stored_order(tmp_path, stored_order,
                                                                           overlap, expected):
    # bands already sorted by wavelength were returned as they were: overlap="long"/"short" did nothing
    wl, stored = _product_with_channels(tmp_path / "p", stored_order)
    s = read_scene(tmp_path / "p", overlap=overlap)
    np.testing.assert_allclose(s.wavelengths, expected)
    idx = [int(np.flatnonzero(wl == w)[0]) for w in expected]
    np.testing.assert_allclose(s.load()[1:], stored[1:][..., idx] * np.float32(1e-4), rtol=1e-6)


@pytest.mark.parametrize("overlap", ["long", "short"])
def test_sorted_bands_without_detector_lists_warn_that_all_bands_are_kept(tmp_path, overlap):
    _product_with_channels(tmp_path / "p", "wavelength", channels=False)
    with pytest.warns(UserWarning, match=rf"METADATA.XML: the bands are sorted by wavelength and no "
                                         rf".*expectedChannelsList.*; overlap='{overlap}' cannot tell the "
                                         r"detectors apart, so all 9 bands are kept"):
        s = read_scene(tmp_path / "p", overlap=overlap)
    np.testing.assert_allclose(s.wavelengths, sorted(VNIR_WL + SWIR_WL))


@pytest.mark.parametrize("vnir, swir", [
    ("1,2,3,4", "6,7,8,9"),  # band 5 in neither list
    ("1,2,3,4,5", "5,6,7,8,9"),  # band 5 in both
    ("1,2,3,4,5", "6,7,8,x"),  # not a band number
    ("1,2,3,4,5", "6,7,8,10"),  # no band 10
])
def test_detector_lists_that_do_not_name_each_band_once_are_ignored_with_a_warning(tmp_path, vnir, swir):
    # the lists cannot be used: the detectors are told apart by the wavelengths' step back, as before
    _product_with_channels(tmp_path / "p", "detector")
    xml = next((tmp_path / "p").glob("*METADATA.XML"))
    text = xml.read_text().replace(">1,2,3,4,5<", f">{vnir}<").replace(">6,7,8,9<", f">{swir}<")
    xml.write_text(text)
    with pytest.warns(UserWarning, match=r"METADATA.XML: specific/vnirProductQuality/expectedChannelsList "
                                         r"and specific/swirProductQuality/expectedChannelsList do not name "
                                         r"each of the 9 bands once"):
        s = read_scene(tmp_path / "p", overlap="long")
    np.testing.assert_allclose(s.wavelengths, [420, 550, 700, 902, 975, 1650, 2200])


def test_convert_never_writes_into_the_product_folder(product, run_cli):
    # the EnMAP folder is the input: a converted file inside it changed the product
    folder, _, _, _ = product
    before = sorted(p.name for p in folder.iterdir())
    code, _, err = run_cli("convert", folder, folder / "scene.npz")
    assert code == 2 and "inside an input folder" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in folder.iterdir()) == before
