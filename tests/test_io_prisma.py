"""PRISMA HE5 reader on fake products made by `prisma_fixture.make_prisma_he5`."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from prisma_fixture import SWIR_ZERO_SLOTS, VNIR_ZERO_SLOTS, expected_dn, make_prisma_he5
from unmixgen.errors import InputError
from unmixgen.io import prisma, read_scene

ROWS, COLS = 9, 14  # non-square on purpose


@pytest.fixture(scope="module")
def l2d(tmp_path_factory):
    p = tmp_path_factory.mktemp("prisma") / "PRS_L2D_STD_test.he5"
    return make_prisma_he5(p, ROWS, COLS, "L2D", partly_zero_pixel=(4, 6))


def _expected_pixel(fp, r, c, overlap="sort"):
    """(wavelengths, values) of pixel (r, c) computed from the product's attributes."""
    a = fp.attrs
    wl, val = [], []
    for cube, cw, lo, hi in (("vnir", fp.cw_vnir, a["L2ScaleVnirMin"], a["L2ScaleVnirMax"]),
                             ("swir", fp.cw_swir, a["L2ScaleSwirMin"], a["L2ScaleSwirMax"])):
        for slot, w in enumerate(cw):
            if w <= 0:
                continue
            dn = float(expected_dn(r, c, slot, cube))
            wl.append(float(w))
            val.append(float(lo) + dn * (float(hi) - float(lo)) / 65535.0)
    wl, val = np.array(wl), np.array(val)
    swir_min = fp.cw_swir[fp.cw_swir > 0].min()
    vnir_max = fp.cw_vnir.max()
    n_v = int((fp.cw_vnir > 0).sum())
    is_v = np.arange(wl.size) < n_v
    if overlap in ("swir", "long"):
        keep = ~is_v | (wl < swir_min)
    elif overlap in ("vnir", "short"):
        keep = is_v | (wl > vnir_max)
    else:
        keep = np.ones(wl.size, bool)
    wl, val = wl[keep], val[keep]
    o = np.argsort(wl)
    return wl[o], val[o]


def test_wavelengths_increasing_zero_slots_dropped(l2d):
    n_used = 66 - len(VNIR_ZERO_SLOTS) + 173 - len(SWIR_ZERO_SLOTS)
    assert read_scene(l2d.path).bands == n_used  # default overlap="sort": every band, sorted
    s = read_scene(l2d.path, overlap="swir")
    assert s.metadata["format"] == "prisma" and s.metadata["level"] == "L2D"
    # stored in decreasing wavelength per detector: the reordering is recorded, which `convert
    # --wavelengths` relies on to refuse centres listed in the file's order
    assert s.metadata["band_order"] == "overlap='long'"
    assert s.path == str(l2d.path) and s.name == l2d.path.stem
    assert np.all(np.diff(s.wavelengths) > 0) and np.all(s.wavelengths > 0)
    swir_min = l2d.cw_swir[l2d.cw_swir > 0].min()
    n_vnir_overlap = int(((l2d.cw_vnir > 0) & (l2d.cw_vnir >= swir_min)).sum())
    assert n_vnir_overlap > 0
    assert s.bands == n_used - n_vnir_overlap
    assert s.fwhm is not None and s.fwhm.shape == (s.bands,)
    low = s.wavelengths < 900  # VNIR only: the fixture's VNIR FWHM is 10 + wl/1000
    np.testing.assert_allclose(s.fwhm[low], 10 + s.wavelengths[low] / 1000, rtol=1e-5)
    high = s.wavelengths > 1100  # SWIR only: 9 + wl/2000
    np.testing.assert_allclose(s.fwhm[high], 9 + s.wavelengths[high] / 2000, rtol=1e-5)


@pytest.mark.parametrize("overlap", ["swir", "vnir", "both", "sort", "short", "long"])
def test_overlap_policy_and_scaling_of_one_pixel(l2d, overlap):
    s = read_scene(l2d.path, overlap=overlap)
    r, c = 6, 11  # rows != cols, and r != c: a transposed read would give another pixel
    wl, val = _expected_pixel(l2d, r, c, overlap)
    np.testing.assert_allclose(s.wavelengths, wl, rtol=0, atol=1e-3)
    np.testing.assert_allclose(s.read(slice(r, r + 1), slice(c, c + 1))[0, 0], val, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.load()[r, c], val, rtol=1e-5, atol=1e-6)
    if overlap in ("swir", "long"):
        assert s.wavelengths[0] < 920 and s.wavelengths[-1] > 2400
        in_ov = (s.wavelengths >= 920) & (s.wavelengths <= 1010)
        assert in_ov.sum() == ((l2d.cw_swir >= 920) & (l2d.cw_swir <= 1010)).sum()


def test_bad_overlap_policy(l2d):
    with pytest.raises(InputError, match="overlap"):
        read_scene(l2d.path, overlap="average")


def test_full_cube_matches_formula_everywhere(l2d):
    s = read_scene(l2d.path)
    cube = s.load()
    assert cube.shape == (ROWS, COLS, s.bands) and cube.dtype == np.float32
    rr, cc = np.meshgrid(np.arange(ROWS), np.arange(COLS), indexing="ij")
    # band 0 is the shortest VNIR wavelength: the last used VNIR slot (descending storage)
    slot = int(np.flatnonzero(l2d.cw_vnir > 0)[-1])
    a = l2d.attrs
    exp = float(a["L2ScaleVnirMin"]) + expected_dn(rr, cc, slot, "vnir") * (
        float(a["L2ScaleVnirMax"]) - float(a["L2ScaleVnirMin"])) / 65535.0
    good = s.mask & (rr != 4)  # the partly zero pixel has DN 0 in half the VNIR slots
    np.testing.assert_allclose(cube[..., 0][good], exp[good], rtol=1e-5)
    # last band: the longest SWIR wavelength = first used SWIR slot
    slot = int(np.flatnonzero(l2d.cw_swir > 0)[0])
    exp = float(a["L2ScaleSwirMin"]) + expected_dn(rr, cc, slot, "swir") * (
        float(a["L2ScaleSwirMax"]) - float(a["L2ScaleSwirMin"])) / 65535.0
    np.testing.assert_allclose(cube[..., -1][s.mask], exp[s.mask], rtol=1e-5)


def test_windowed_read_equals_full_read(l2d):
    s = read_scene(l2d.path)
    full = s.read()
    np.testing.assert_array_equal(s.read(slice(2, 7), slice(3, 12)), full[2:7, 3:12])
    tiles = np.empty_like(full)
    for t in read_scene(l2d.path).tiles(4, with_mask=False):
        tiles[t.rows, t.cols] = t.data
    np.testing.assert_array_equal(tiles, full)


def test_invalid_pixels(l2d):
    s = read_scene(l2d.path)
    m = s.mask
    expected = np.ones((ROWS, COLS), bool)
    for r, c in l2d.zero_pixels + l2d.flagged_pixels:
        expected[r, c] = False
    np.testing.assert_array_equal(m, expected)
    assert m[4, 6]  # DN 0 in some bands only: valid
    s2 = read_scene(l2d.path, flagged_fraction=None)
    for r, c in l2d.flagged_pixels:
        assert s2.mask[r, c]


def test_l2d_crs_and_transform(l2d):
    """Corner attributes are pixel centres on a 30 m grid (prismaread pr_setext_L2D): the grid's
    left edge is min easting - 15 m, its top edge min northing - 15 m + 30 m * rows."""
    s = read_scene(l2d.path)
    a = l2d.attrs
    assert s.crs == "EPSG:32633"
    assert s.transform == pytest.approx((30.0, 0.0, a["Product_ULcorner_easting"] - 15.0, 0.0, -30.0,
                                         a["Product_ULcorner_northing"] + 15.0))
    # the centre of the lower-right pixel is the LR corner attribute
    from rasterio.transform import Affine

    x, y = Affine(*s.transform) @ (COLS - 0.5, ROWS - 0.5)
    assert (x, y) == pytest.approx((a["Product_LRcorner_easting"], a["Product_LRcorner_northing"]))


def test_l1_radiance(tmp_path):
    fp = make_prisma_he5(tmp_path / "PRS_L1_STD.he5", 5, 8, "L1")
    s = read_scene(fp.path)
    assert s.units == "W/(m^2 sr um)" and s.transform is None and s.metadata["level"] == "L1"
    assert s.crs == "EPSG:4326" and len(s.metadata["gcps"]) == 5 * 8  # its lat/lon's control points
    assert "geolocation" in s.metadata
    r, c = 3, 6
    slot = int(np.flatnonzero(fp.cw_swir > 0)[0])
    dn = float(expected_dn(r, c, slot, "swir"))
    exp = dn / float(fp.attrs["ScaleFactor_Swir"]) - float(fp.attrs["Offset_Swir"])
    assert s.load()[r, c, -1] == pytest.approx(exp, rel=1e-6)
    slot = int(np.flatnonzero(fp.cw_vnir > 0)[-1])
    dn = float(expected_dn(r, c, slot, "vnir"))
    exp = dn / float(fp.attrs["ScaleFactor_Vnir"]) - float(fp.attrs["Offset_Vnir"])
    assert s.load()[r, c, 0] == pytest.approx(exp, rel=1e-6)
    assert not s.mask[fp.flagged_pixels[0]]  # L1 saturation matrix


def test_l2c_swath_has_no_map_grid_and_chunked_layout(tmp_path):
    fp = make_prisma_he5(tmp_path / "PRS_L2C_STD.he5", 6, 4, "L2C", chunked=True, with_flags=False)
    s = read_scene(fp.path)
    assert s.transform is None and s.units == "reflectance"
    assert s.crs == "EPSG:4326" and "gcps" in s.metadata  # placed by its latitude/longitude only
    wl, val = _expected_pixel(fp, 5, 2)
    np.testing.assert_allclose(s.load()[5, 2], val, rtol=1e-5)


def test_missing_cubes_is_input_error_and_exit_2(tmp_path, run_cli):
    p = tmp_path / "not_prisma.he5"
    with h5py.File(p, "w") as f:
        f.create_dataset("HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/Other", data=np.zeros(3))
    with pytest.raises(InputError, match="not_prisma.he5.*no VNIR_Cube/SWIR_Cube"):
        prisma.read(p)
    code, _, err = run_cli("info", p)
    assert code == 2 and "no VNIR_Cube/SWIR_Cube" in err and err.strip().count("\n") == 0


def test_info_json(l2d, run_cli):
    code, out, _ = run_cli("info", l2d.path, "--json")
    assert code == 0
    d = json.loads(out)
    assert d["rows"] == ROWS and d["cols"] == COLS and d["crs"] == "EPSG:32633"
    assert d["invalid_pixels"] == len(l2d.zero_pixels) + len(l2d.flagged_pixels)


# -- issue 10: values read from the file are checked; links and external storage refused -------
def _small(tmp_path, name="p.he5", level="L2D"):
    return make_prisma_he5(tmp_path / name, 3, 4, level, zero_pixels=[], flagged_pixels=[])


def _replace_vnir(fp, make):
    """Delete VNIR_Cube and let ``make(fields_group, file)`` put something else there."""
    with h5py.File(fp.path, "r+") as f:
        fields = f[f"HDFEOS/SWATHS/PRS_{fp.level}_HCO/Data Fields"]
        del fields["VNIR_Cube"]
        make(fields, f)


@pytest.mark.parametrize("attr, value, message", [
    ("L2ScaleVnirMax", "0.8 reflectance", "attribute 'L2ScaleVnirMax' = '0.8 reflectance' is not a number"),
    ("L2ScaleSwirMin", np.float32(np.nan), "attribute 'L2ScaleSwirMin' = nan"),
    ("Epsg_Code", "UTM33", "attribute 'Epsg_Code' = 'UTM33' is not a number"),
    ("List_Cw_Vnir", "400, 500", "List_Cw_Vnir has type"),
])
def test_bad_attributes_are_input_errors(tmp_path, run_cli, attr, value, message):
    fp = _small(tmp_path)
    with h5py.File(fp.path, "r+") as f:
        f.attrs[attr] = value
    with pytest.raises(InputError) as err:
        read_scene(fp.path)
    assert str(err.value).startswith(str(fp.path)) and message in str(err.value)
    code, _, stderr = run_cli("info", fp.path)
    assert code == 2 and stderr.strip().count("\n") == 0


def test_l1_scale_factor_zero(tmp_path):
    fp = _small(tmp_path, level="L1")
    with h5py.File(fp.path, "r+") as f:
        f.attrs["ScaleFactor_Vnir"] = np.float32(0)
    with pytest.raises(InputError, match="'ScaleFactor_Vnir' = 0; expected a non-zero number"):
        read_scene(fp.path)


def test_cube_that_is_a_group(tmp_path):
    fp = _small(tmp_path)
    _replace_vnir(fp, lambda g, f: g.create_group("VNIR_Cube"))
    with pytest.raises(InputError, match="VNIR_Cube is a group, not a dataset"):
        read_scene(fp.path)


def test_soft_links_refused_and_cycles_are_input_errors(tmp_path):
    fp = _small(tmp_path)
    _replace_vnir(fp, lambda g, f: (g.__setitem__("VNIR_Cube", h5py.SoftLink(g.name + "/Loop")),
                                    g.__setitem__("Loop", h5py.SoftLink(g.name + "/VNIR_Cube"))))
    with pytest.raises(InputError, match="VNIR_Cube is a soft link; refused.*allow_external=True"):
        read_scene(fp.path)
    with pytest.raises(InputError, match="p.he5: cannot open .*VNIR_Cube"):
        read_scene(fp.path, allow_external=True)


def test_external_link_refused_and_missing_target_is_input_error(tmp_path):
    fp = _small(tmp_path)
    _replace_vnir(fp, lambda g, f: g.__setitem__("VNIR_Cube", h5py.ExternalLink("gone.h5", "/cube")))
    with pytest.raises(InputError, match="VNIR_Cube is an external link; refused"):
        read_scene(fp.path)
    with pytest.raises(InputError, match="p.he5: cannot open"):
        read_scene(fp.path, allow_external=True)


def test_external_raw_storage_and_virtual_dataset_refused(tmp_path):
    """A crafted product whose VNIR cube stores its bytes in another file would copy that
    file into any output: refused unless the user opts in."""
    secret = tmp_path / "secret.bin"
    n = 3 * 66 * 4
    secret.write_bytes(np.arange(1, n + 1, dtype="<u2").tobytes())
    fp = _small(tmp_path)
    _replace_vnir(fp, lambda g, f: g.create_dataset("VNIR_Cube", shape=(3, 66, 4), dtype="<u2",
                                                    external=[(str(secret), 0, 2 * n)]))
    with pytest.raises(InputError, match="VNIR_Cube keeps its data in external files; refused"):
        read_scene(fp.path)
    opted = read_scene(fp.path, allow_external=True)
    assert opted.bands > 0 and np.isfinite(opted.read(slice(0, 1), slice(0, 1))).all()

    fp2 = _small(tmp_path, "v.he5")

    def virtual(g, f):
        layout = h5py.VirtualLayout(shape=(3, 66, 4), dtype="<u2")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "data", shape=(3, 66, 4))
        g.create_virtual_dataset("VNIR_Cube", layout, fillvalue=0)

    _replace_vnir(fp2, virtual)
    with pytest.raises(InputError, match="VNIR_Cube is a virtual dataset that maps other files; refused"):
        read_scene(fp2.path)


@pytest.mark.parametrize("bad", [np.nan, 0.0, -10.0])
def test_bad_fwhm_of_a_used_slot_is_dropped_with_a_warning(tmp_path, bad):
    # unused slots (wavelength 0) have FWHM 0 in real products: only used slots are judged
    fp = _small(tmp_path)
    fw = fp.fwhm_swir.astype(np.float32)
    fw[5] = bad  # a used SWIR slot
    with h5py.File(fp.path, "r+") as f:
        f.attrs["List_Fwhm_Swir"] = fw
    with pytest.warns(UserWarning, match=r"List_Fwhm_Swir values hold .*expected finite positive widths"):
        s = read_scene(fp.path)
    assert s.fwhm is None


def test_zero_fwhm_of_unused_slots_is_not_a_bad_fwhm(tmp_path):
    import warnings

    fp = _small(tmp_path)
    assert fp.fwhm_vnir[list(VNIR_ZERO_SLOTS)].max() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = read_scene(fp.path)
    assert s.fwhm is not None and np.all(s.fwhm > 0)


def test_flagged_fraction_counts_the_scenes_bands_not_unused_slots(tmp_path):
    # 66 + 173 slots, 5 unused (wavelength 0): the fraction is of the 234 bands the scene has
    fp = _small(tmp_path)
    used_v = [s for s in range(66) if s not in VNIR_ZERO_SLOTS]  # 63
    used_s = [s for s in range(173) if s not in SWIR_ZERO_SLOTS]  # 171
    with h5py.File(fp.path, "r+") as f:
        fields = f["HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields"]
        ev, es = fields["VNIR_PIXEL_L2_ERR_MATRIX"], fields["SWIR_PIXEL_L2_ERR_MATRIX"]
        v, s = ev[...], es[...]
        # (1, 2): 118 of 234 bands flagged (50.4 %) -> invalid
        v[1, used_v, 2] = 1
        s[1, used_s[:55], 2] = 1
        # (0, 1): 115 of 234 bands (49.1 %) plus the 5 unused slots -> valid
        v[0, used_v, 1] = 1
        s[0, used_s[:52], 1] = 1
        v[0, list(VNIR_ZERO_SLOTS), 1] = 1
        s[0, list(SWIR_ZERO_SLOTS), 1] = 1
        ev[...], es[...] = v, s
    m = read_scene(fp.path, flagged_fraction=0.5).mask
    assert not m[1, 2]
    assert m[0, 1]
    assert m.sum() == m.size - 1


@pytest.mark.parametrize("make_bad, message", [
    (lambda fw: fw[:-1], r"p.he5: 172 List_Fwhm_Swir values for 173 bands; expected one per band"),
    (lambda fw: np.array([b"ten"] * fw.size), r"p.he5: List_Fwhm_Swir values have type \|S3; expected numbers"),
])
def test_wrong_length_or_non_numeric_fwhm_is_dropped_with_a_warning(tmp_path, make_bad, message):
    # it was dropped silently; a bad width is named (`io.bands.usable_fwhm`), so is a bad list
    fp = _small(tmp_path)
    with h5py.File(fp.path, "r+") as f:
        f.attrs["List_Fwhm_Swir"] = make_bad(fp.fwhm_swir.astype(np.float32))
    with pytest.warns(UserWarning, match=message):
        s = read_scene(fp.path)
    assert s.fwhm is None
