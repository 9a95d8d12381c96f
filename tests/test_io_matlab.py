"""MATLAB benchmark files: layouts, pixel order, ground truth, v7.3, HySUPP round trip."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io as sio

from unmixgen.errors import InputError
from unmixgen.io import matlab, read_scene, write_scene
from unmixgen.scene import GroundTruth, Scene

ROWS, COLS, BANDS, P = 5, 8, 6, 3  # non-square


def _cube():
    r, c, b = np.meshgrid(np.arange(ROWS), np.arange(COLS), np.arange(BANDS), indexing="ij")
    return (100 * r + 10 * c + b + 1).astype(np.float64)  # value encodes (r, c, band)


def _zhu_matrix(cube):
    """(bands, pixels) with MATLAB column-major pixel order, built without reshape tricks."""
    rows, cols, bands = cube.shape
    y = np.empty((bands, rows * cols))
    for c in range(cols):
        for r in range(rows):
            y[:, r + c * rows] = cube[r, c]
    return y


def test_zhu_pixel_order_non_square(tmp_path):
    cube = _cube()
    p = tmp_path / "zhu.mat"
    sio.savemat(p, {"Y": _zhu_matrix(cube).astype(np.uint16), "nRow": np.uint8(ROWS), "nCol": np.uint8(COLS),
                    "nBand": np.uint8(BANDS), "maxValue": np.uint16(1000)})
    s = read_scene(p)
    assert s.metadata["format"] == "matlab" and s.metadata["layout"] == "zhu"
    assert s.shape == (ROWS, COLS, BANDS) and s.name == "zhu" and s.path == str(p)
    assert s.load()[3, 6, 2] == pytest.approx((300 + 60 + 2 + 1) / 1000)
    np.testing.assert_allclose(s.load(), cube / 1000, rtol=1e-6)
    raw = matlab.read(p, scale_max_value=False)
    np.testing.assert_allclose(raw.load(), cube)


def test_v73_reads_like_v5(tmp_path):
    cube = _cube()
    y = _zhu_matrix(cube)
    v5 = tmp_path / "v5.mat"
    sio.savemat(v5, {"Y": y, "nRow": float(ROWS), "nCol": float(COLS)})
    v73 = tmp_path / "v73.mat"
    with h5py.File(v73, "w", userblock_size=512) as f:
        # MATLAB stores column-major: h5py sees each array with its axes reversed.
        f.create_dataset("Y", data=y.T)
        f["Y"].attrs["MATLAB_class"] = np.bytes_("double")
        for k, v in (("nRow", ROWS), ("nCol", COLS)):
            f.create_dataset(k, data=np.array([[float(v)]]))
            f[k].attrs["MATLAB_class"] = np.bytes_("double")
    with open(v73, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")
    a, b = read_scene(v5), read_scene(v73)
    np.testing.assert_array_equal(a.load(), b.load())
    np.testing.assert_array_equal(b.load()[..., 0], cube[..., 0])


def test_cube_any_key_and_truth_file(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(P), size=(ROWS, COLS))
    e = rng.random((P, BANDS))
    p = tmp_path / "cube.mat"
    sio.savemat(p, {"my_cube": a @ e})
    t = tmp_path / "gt.mat"
    # Zhu-style truth: M (bands, p), A (p, N) column-major
    sio.savemat(t, {"M": e.T, "A": _zhu_matrix(a), "cood": np.array(["x", "y", "z"], dtype=object)})
    s = read_scene(p, truth=t)
    assert s.metadata["layout"] == "cube"
    np.testing.assert_allclose(s.truth.endmembers, e, rtol=1e-6)
    np.testing.assert_allclose(s.truth.abundances, a, rtol=1e-6)
    assert s.truth.names == ["x", "y", "z"] and s.truth.source == str(t)
    gt = matlab.read_truth(t, ROWS, COLS, BANDS)
    np.testing.assert_allclose(gt.abundances[4, 7], a[4, 7], rtol=1e-6)


def test_truth_shape_mismatch_names_file(tmp_path):
    p = tmp_path / "cube.mat"
    sio.savemat(p, {"Y": np.ones((ROWS, COLS, BANDS))})
    t = tmp_path / "bad_gt.mat"
    sio.savemat(t, {"M": np.ones((BANDS + 1, P))})
    with pytest.raises(InputError, match="bad_gt.mat"):
        read_scene(p, truth=t)
    t2 = tmp_path / "bad_a.mat"
    sio.savemat(t2, {"A": np.ones((P, ROWS * COLS + 1))})
    with pytest.raises(InputError, match="bad_a.mat"):
        matlab.read_truth(t2, ROWS, COLS, BANDS)


@pytest.mark.parametrize("variables, message", [
    ({"M": np.full((BANDS, P), np.nan)}, "NaN/Inf"),
    ({"M": np.zeros((BANDS, 0))}, "p >= 1"),
    ({"A": np.zeros((0, ROWS * COLS))}, "p >= 1"),
    ({"M": np.ones((BANDS, P)), "cood": np.array(["a", "b"], dtype=object)}, "2 names for 3"),
])
def test_truth_values_are_checked_before_use(tmp_path, variables, message):
    """NaN spectra, no endmember at all or a names list of the wrong length: one InputError
    naming the file (they were an internal error, or scores over zero endmembers)."""
    t = tmp_path / "gt.mat"
    sio.savemat(t, variables)
    with pytest.raises(InputError, match=f"gt.mat: .*{message}"):
        matlab.read_truth(t, ROWS, COLS, BANDS)


def test_no_scene_in_file(tmp_path, run_cli):
    p = tmp_path / "nothing.mat"
    sio.savemat(p, {"x": np.ones((3, 4))})
    with pytest.raises(InputError, match="nothing.mat.*cannot find a scene"):
        read_scene(p)
    code, _, err = run_cli("info", p)
    assert code == 2 and "nothing.mat" in err


def test_hysupp_round_trip_with_truth(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.dirichlet(np.ones(P), size=(ROWS, COLS)).astype(np.float32)
    e = rng.random((P, BANDS)).astype(np.float32) + 0.1
    cube = a @ e
    mask = np.ones((ROWS, COLS), bool)
    mask[2, 7] = False
    wl = np.linspace(400, 900, BANDS)
    s = Scene(cube, wavelengths=wl, mask=mask, truth=GroundTruth(e, a, ["a", "b", "c"]))
    out = tmp_path / "hysupp.mat"
    write_scene(s, out)
    d = sio.loadmat(out)
    assert d["Y"].shape == (BANDS, ROWS * COLS) and d["E"].shape == (BANDS, P) and d["A"].shape == (P, ROWS * COLS)
    assert int(d["H"].item()) == ROWS and int(d["W"].item()) == COLS and int(d["p"].item()) == P
    # HySUPP pixel order: row-major, n = r * W + c
    np.testing.assert_allclose(d["Y"][:, 1 * COLS + 6], cube[1, 6], rtol=1e-6)
    np.testing.assert_allclose(d["A"].reshape(P, ROWS, COLS)[:, 4, 3], a[4, 3], rtol=1e-6)
    assert np.isnan(d["Y"][:, 2 * COLS + 7]).all()
    back = read_scene(out)
    assert back.metadata["layout"] == "hysupp"
    np.testing.assert_array_equal(back.mask, mask)
    np.testing.assert_allclose(back.load()[mask], cube[mask], rtol=1e-6)
    np.testing.assert_allclose(back.wavelengths, wl)
    np.testing.assert_allclose(back.truth.abundances, a, rtol=1e-6)
    np.testing.assert_allclose(back.truth.endmembers, e, rtol=1e-6)
    assert back.truth.names == ["a", "b", "c"]
    assert not list(tmp_path.glob(".*tmp*"))


# -- real benchmark files ------------------------------------------------------------------
def test_samson_truth_matches_palsson_file(shared_data):
    s = read_scene(shared_data / "samson/samson_1.mat", truth=shared_data / "samson/end3.mat")
    p = read_scene(shared_data / "samson/Samson.mat")
    assert s.shape == (95, 95, 156) and s.truth.names[0] == "1-rock"
    ref = sio.loadmat(shared_data / "samson/Samson.mat")["S_GT"]
    np.testing.assert_array_equal(s.truth.abundances, ref.astype(np.float32))
    np.testing.assert_array_equal(p.truth.abundances, s.truth.abundances)
    np.testing.assert_array_equal(p.truth.endmembers, s.truth.endmembers)
    np.testing.assert_array_equal(p.load(), s.load())
    clean = read_scene(shared_data / "samson/rasti_misicnet/Y_clean.mat")
    np.testing.assert_array_equal(clean.load(), s.load())


def test_jasper_scaled_and_truth_error(shared_data):
    j = read_scene(shared_data / "jasper_ridge/jasperRidge2_R198.mat",
                   truth=shared_data / "jasper_ridge/end4.mat")
    raw = sio.loadmat(shared_data / "jasper_ridge/jasperRidge2_R198.mat")["Y"]
    assert j.shape == (100, 100, 198)
    assert j.load().max() == pytest.approx(raw.max() / 5000, rel=1e-6)
    y = j.load().reshape(-1, 198).astype(np.float64)
    rec = j.truth.abundances.reshape(-1, 4).astype(np.float64) @ j.truth.endmembers.astype(np.float64)
    assert np.linalg.norm(y - rec) / np.linalg.norm(y) == pytest.approx(0.175, abs=0.002)
    pal = read_scene(shared_data / "jasper_ridge/Jasper.mat")
    np.testing.assert_array_equal(pal.truth.abundances, j.truth.abundances)


# -- issue 10: every value from the file checked; complex refused; v7.3 links refused --------
def test_zero_byte_mat(tmp_path, run_cli):
    p = tmp_path / "empty.mat"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty.mat: not a readable MATLAB file"):
        read_scene(p)
    code, _, err = run_cli("info", p)
    assert code == 2 and err.strip().count("\n") == 0 and err.count("empty.mat") == 1, err


@pytest.mark.parametrize("value, message", [
    ("five", "variable 'nRow' = 'five' is not a number"),
    (np.nan, "variable 'nRow' = nan is not a whole number"),
    (-5.0, "variable 'nRow' = -5; expected an integer >= 1"),
    (2.5, "variable 'nRow' = 2.5 is not a whole number"),
])
def test_bad_nrow(tmp_path, value, message):
    p = tmp_path / "zhu.mat"
    sio.savemat(p, {"Y": _zhu_matrix(_cube()), "nRow": value, "nCol": float(COLS)})
    with pytest.raises(InputError) as err:
        read_scene(p)
    assert str(err.value).startswith(str(p)) and message in str(err.value)


def test_max_value_as_text(tmp_path):
    p = tmp_path / "zhu.mat"
    sio.savemat(p, {"Y": _zhu_matrix(_cube()), "nRow": float(ROWS), "nCol": float(COLS),
                    "maxValue": "five thousand"})
    with pytest.raises(InputError, match="zhu.mat: variable 'maxValue' = 'five thousand' is not a number"):
        read_scene(p)
    sio.savemat(p, {"Y": _zhu_matrix(_cube()), "nRow": float(ROWS), "nCol": float(COLS), "maxValue": 0.0})
    with pytest.raises(InputError, match="zhu.mat: variable 'maxValue' = 0; expected a positive number"):
        read_scene(p)


def test_complex_mat_is_refused(tmp_path):
    p = tmp_path / "cx.mat"
    sio.savemat(p, {"Y": _zhu_matrix(_cube()) * (1 + 1j), "nRow": float(ROWS), "nCol": float(COLS)})
    with pytest.raises(InputError, match="cx.mat: variable 'Y' has complex type"):
        read_scene(p)


def _v73(path, make):
    with h5py.File(path, "w", userblock_size=512) as f:
        make(f)
        for k, v in (("nRow", ROWS), ("nCol", COLS)):
            f.create_dataset(k, data=np.array([[float(v)]]))
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")


def test_v73_external_storage_and_links_are_refused(tmp_path):
    y = _zhu_matrix(_cube()).T.astype("<f8")  # as h5py sees MATLAB's column-major Y
    secret = tmp_path / "secret.bin"
    secret.write_bytes(y.tobytes())
    p = tmp_path / "ext.mat"
    _v73(p, lambda f: f.create_dataset("Y", shape=y.shape, dtype="<f8",
                                       external=[(str(secret), 0, y.nbytes)]))
    with pytest.raises(InputError, match="ext.mat: /Y keeps its data in external files; refused"):
        read_scene(p)
    np.testing.assert_array_equal(read_scene(p, allow_external=True).load()[..., 0], _cube()[..., 0])
    q = tmp_path / "link.mat"
    _v73(q, lambda f: f.__setitem__("Y", h5py.ExternalLink(str(tmp_path / "other.mat"), "/Y")))
    with pytest.raises(InputError, match="link.mat: /Y is an external link; refused"):
        read_scene(q)
    with pytest.raises(InputError, match="link.mat: cannot open /Y"):
        read_scene(q, allow_external=True)


def test_v5_dimensions_that_disagree_with_the_data_are_refused(tmp_path):
    """scipy's compiled reader trusts the sizes inside the file; dimensions larger than the
    data made it read past its buffer (found by the fuzz test). The structure is checked first."""
    p = tmp_path / "dims.mat"
    sio.savemat(p, {"Y": _zhu_matrix(_cube()), "nRow": float(ROWS), "nCol": float(COLS)})
    raw = bytearray(p.read_bytes())
    assert raw[152:156] == (5).to_bytes(4, "little")  # dims tag of the first variable (miINT32)
    raw[164:168] = (10**9).to_bytes(4, "little")  # Y's second dimension: 40 -> 1e9
    p.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="dims.mat: is a damaged MATLAB v5 file"):
        read_scene(p)


def test_written_mat_keeps_good_bands_and_fwhm(tmp_path):
    # bad bands hold NaN at valid pixels: without the list every pixel read back invalid
    rng = np.random.default_rng(0)
    cube = rng.uniform(0.05, 0.95, (10, 13, 6)).astype(np.float32)
    cube[..., 3:5] = np.nan
    good = np.array([1, 1, 1, 0, 0, 1], bool)
    wl = np.array([450.0, 550.0, 650.0, 1400.0, 1900.0, 2200.0])
    scene = Scene(cube, wavelengths=wl, fwhm=np.full(6, 10.0), good_bands=good)
    write_scene(scene, tmp_path / "s.mat")
    back = read_scene(tmp_path / "s.mat")
    np.testing.assert_array_equal(back.good_bands, good)
    np.testing.assert_allclose(back.fwhm, 10.0)
    assert back.mask.all()
    np.testing.assert_array_equal(back.load()[..., good], cube[..., good])


def test_bad_good_band_flags_are_refused(tmp_path):
    import scipy.io as sio

    cube = np.random.default_rng(1).uniform(0.1, 0.9, (4 * 5, 3)).T
    for flags, message in (([1, 2, 1], "flags of 0 or 1"), ([1, 1], "expected 3 flags"), ([0, 0, 0], "every band")):
        sio.savemat(tmp_path / "b.mat", {"Y": cube, "H": 4, "W": 5, "good_bands": np.array(flags)})
        with pytest.raises(InputError, match=message):
            read_scene(tmp_path / "b.mat")


def test_fwhm_follows_the_wavelengths_unit(tmp_path):
    cube = np.random.default_rng(2).uniform(0.1, 0.9, (3, 4 * 5))
    sio.savemat(tmp_path / "um.mat", {"Y": cube, "H": 4, "W": 5, "wavelengths": np.array([0.5, 0.6, 0.7]),
                                       "fwhm": np.array([0.01, 0.01, 0.02])})
    back = read_scene(tmp_path / "um.mat")
    np.testing.assert_allclose(back.wavelengths, [500, 600, 700])
    np.testing.assert_allclose(back.fwhm, [10, 10, 20])


def test_nm_widths_beside_micrometre_wavelengths_stay_nm(tmp_path):
    # their magnitude cannot tell; widths wider than the whole range were not micrometres
    cube = np.random.default_rng(3).uniform(0.1, 0.9, (3, 4 * 5))
    sio.savemat(tmp_path / "mix.mat", {"Y": cube, "H": 4, "W": 5, "wavelengths": np.array([0.5, 0.6, 0.7]),
                                        "fwhm": np.array([10.0, 10.0, 12.0])})
    np.testing.assert_allclose(read_scene(tmp_path / "mix.mat").fwhm, [10, 10, 12])


# -- hunt 27: truth=other.mat for a converted copy follows the source's band order -----------------
def _sorted_copy(tmp_path):
    """A scene whose source file (ENVI) stores its bands shuffled, read sorted and written as
    ``copy.mat`` (as `convert` does): the copy records each band's source band. Returns the
    copy, the truth's spectra and maps in wavelength order, the shuffle and the centres."""
    from fixtures_io import write_envi
    from unmixgen.simulate.procedural import make_scene

    s = make_scene(rows=ROWS, cols=COLS, bands=12, p=P, snr_db=None, seed=4)
    perm = np.random.default_rng(9).permutation(12)  # stored band j is band perm[j] in wavelength order
    assert not np.array_equal(perm[perm], np.arange(12))  # not its own inverse
    hdr = write_envi(tmp_path, np.ascontiguousarray(s.load()[..., perm]), wavelengths=s.wavelengths[perm])
    write_scene(read_scene(hdr), tmp_path / "copy.mat")
    return tmp_path / "copy.mat", s.truth.endmembers, s.truth.abundances, perm, s.wavelengths


def test_truth_for_a_converted_copy_follows_the_source_band_order(tmp_path):
    """read(copy.mat, truth=end.mat) attached a benchmark's spectra (in its source file's band
    order) to the copy's sorted bands unchanged: every band compared with another one."""
    copy, E, A, perm, wl = _sorted_copy(tmp_path)
    sio.savemat(tmp_path / "end.mat", {"M": E[:, perm].T, "A": _zhu_matrix(A)})
    s = matlab.read(copy, truth=tmp_path / "end.mat")
    np.testing.assert_allclose(s.truth.endmembers, E, rtol=1e-6)
    np.testing.assert_allclose(s.truth.abundances, A, rtol=1e-6)
    # spectra on other than the source's band count cannot be put in its order: refused by name
    sio.savemat(tmp_path / "short.mat", {"M": E[:, :10].T})
    with pytest.raises(InputError, match=r"short\.mat: endmembers 'M' have shape \(10, 3\); .*12 bands"):
        matlab.read(copy, truth=tmp_path / "short.mat")


def test_truth_with_wavelengths_is_matched_by_them(tmp_path):
    """A truth .mat with band centres (in micrometres here, bands in any order) is put on the
    scene's bands by them, not by the scene's or its source's band order."""
    copy, E, A, perm, wl = _sorted_copy(tmp_path)
    other = np.random.default_rng(5).permutation(12)
    assert not np.array_equal(other, perm)
    sio.savemat(tmp_path / "wl.mat", {"E": E[:, other].T, "wavelengths": wl[other] / 1000})
    s = matlab.read(copy, truth=tmp_path / "wl.mat")
    np.testing.assert_allclose(s.truth.endmembers, E, rtol=1e-6)
    sio.savemat(tmp_path / "far.mat", {"E": E.T, "wavelengths": wl + 50})
    with pytest.raises(InputError, match=r"far\.mat: endmembers are on 12 bands .* not the 12 bands .* of the "
                                         r"scene"):
        matlab.read(copy, truth=tmp_path / "far.mat")


def test_a_unit_label_in_a_cell_is_read(tmp_path):
    """MATLAB keeps text in a cell ({'uW/(cm^2 sr nm)'}) as often as in a char array: since the
    reader took 'units', such a file, read before, was refused as 'not one string'. A cell of one
    string is that string; a cell of two is still refused."""
    cube = np.random.default_rng(0).random((6, 5, 4)).astype(np.float32)
    one = np.empty((1, 1), object)
    one[0, 0] = "uW/(cm^2 sr nm)"
    sio.savemat(tmp_path / "one.mat", {"Y_clean": cube, "units": one})
    assert read_scene(tmp_path / "one.mat").units == "uW/(cm^2 sr nm)"
    two = np.empty((1, 2), object)
    two[0, 0], two[0, 1] = "reflectance", "radiance"
    sio.savemat(tmp_path / "two.mat", {"Y_clean": cube, "units": two})
    with pytest.raises(InputError, match=r"two\.mat: variable 'units' is not one string"):
        read_scene(tmp_path / "two.mat")


@pytest.mark.parametrize("compress", [False, True])
def test_a_written_mat_file_is_the_same_bytes_whenever_it_is_written(tmp_path, monkeypatch, compress):
    # scipy puts the time of writing into the header: a rerun with the same seed gave
    # another file
    import time

    from unmixgen.simulate.procedural import make_scene

    scene = make_scene(rows=5, cols=7, bands=12, p=3, seed=0)
    blobs = []
    for i, stamp in enumerate(("Mon Jan  1 00:00:00 2024", "Tue Dec  1 23:59:59 2026")):
        monkeypatch.setattr(time, "asctime", lambda stamp=stamp: stamp)
        write_scene(scene, tmp_path / f"s{i}.mat", compress=compress)
        blobs.append((tmp_path / f"s{i}.mat").read_bytes())
    assert blobs[0] == blobs[1]
    assert blobs[0].startswith(b"MATLAB 5.0 MAT-file")
    back = read_scene(tmp_path / "s0.mat")
    np.testing.assert_allclose(back.load(), scene.load(), rtol=1e-6)
    np.testing.assert_allclose(back.truth.abundances, scene.truth.abundances, rtol=1e-6)


# -- hunt 44: bad widths are dropped with the readers' warning, not refused ----------------------------
@pytest.mark.parametrize("fwhm", [[10.0, 0.0, 12.0], [10.0, -1.0, 12.0], [10.0, np.nan, 12.0],
                                  [10.0, np.inf, 12.0], [10.0, 12.0]], ids=["zero", "negative", "nan", "inf", "short"])
@pytest.mark.parametrize("version", ["v5", "v73"])
def test_bad_fwhm_is_dropped_with_the_readers_warning(tmp_path, fwhm, version):
    # every other reader (ENVI, GeoTIFF, EMIT, NEON, PRISMA, EnMAP) reads the cube without bad widths,
    # naming the file; a MATLAB file refused the whole scene for them
    y = np.random.default_rng(4).uniform(0.1, 0.9, (3, 4 * 5))
    p = tmp_path / "bad.mat"
    variables = {"Y": y, "H": 4.0, "W": 5.0, "wavelengths": np.array([500.0, 600.0, 700.0]),
                 "fwhm": np.array(fwhm)}
    if version == "v5":
        sio.savemat(p, variables)
    else:
        with h5py.File(p, "w", userblock_size=512) as f:
            for k, v in variables.items():  # MATLAB writes column-major: h5py sees the axes reversed
                f.create_dataset(k, data=np.atleast_2d(v).T)
                f[k].attrs["MATLAB_class"] = np.bytes_("double")
        with open(p, "r+b") as fh:
            fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")
    message = "fwhm values for 3 bands" if len(fwhm) != 3 else "fwhm values hold .*expected finite positive widths"
    with pytest.warns(UserWarning, match=rf"bad\.mat: .*{message}.*ignored"):
        s = read_scene(p)
    assert s.fwhm is None and s.shape == (4, 5, 3)
    np.testing.assert_allclose(s.wavelengths, [500, 600, 700])


# -- hunt 51: Y is streamed in double, as the field's files hold it, not via a whole-cube float64 copy ---
def test_written_mat_holds_the_cube_and_truth_as_double(tmp_path):
    # Y was a whole-cube float64 copy, then savemat's bytes of it (3.2 GB on top of a 0.8 GB cube);
    # now streamed a block at a time, still double (MATLAB's lsqnonneg/quadprog take no single)
    rng = np.random.default_rng(7)
    a = rng.dirichlet(np.ones(P), size=(ROWS, COLS)).astype(np.float32)
    e = rng.random((P, BANDS)).astype(np.float32) + 0.1
    cube = (a @ e + rng.normal(0, 1e-3, (ROWS, COLS, BANDS))).astype(np.float32)
    mask = np.ones((ROWS, COLS), bool)
    mask[3, 1] = mask[0, 7] = False
    for compress in (False, True):
        out = tmp_path / f"s{int(compress)}.mat"
        write_scene(Scene(cube, mask=mask, truth=GroundTruth(e, a)), out, compress=compress)
        d = sio.loadmat(out)
        assert d["Y"].dtype == np.float64 and d["E"].dtype == np.float64 and d["A"].dtype == np.float64
        want = cube.reshape(ROWS * COLS, BANDS).copy()  # HySUPP: (L, N), pixel n = r * W + c
        want[~mask.reshape(-1)] = np.nan
        np.testing.assert_array_equal(d["Y"], want.T)
        np.testing.assert_array_equal(d["E"], e.T)
        np.testing.assert_array_equal(d["A"], a.reshape(-1, P).T)
        back = read_scene(out)
        assert back.metadata["stored_dtype"] == "float64"
        np.testing.assert_array_equal(back.load()[mask], cube[mask])
        np.testing.assert_array_equal(back.mask, mask)


def test_mat_writer_reads_a_lazy_scene_a_block_at_a_time(tmp_path):
    # the cube went through scene.load(): a scene read from a file was put whole in memory
    cube = np.random.default_rng(8).uniform(0.1, 0.9, (ROWS, COLS, BANDS))
    scene = Scene(cube)  # float64 data: presented as float32 through its source, not loaded
    write_scene(scene, tmp_path / "lazy.mat")
    assert not scene.is_loaded
    np.testing.assert_array_equal(read_scene(tmp_path / "lazy.mat").load(), cube.astype(np.float32))


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 40), (3, 7), (1, 1), (5, 1), (0, 3)])
def test_streamed_matrix_is_the_bytes_savemat_writes(tmp_path, compress, dtype, shape):
    import io

    from unmixgen.io.matv5 import write_header, write_matrix

    y = np.random.default_rng(9).random((shape[1], shape[0])).astype(dtype)  # (pixels, bands)
    ref, got = io.BytesIO(), io.BytesIO()
    sio.savemat(ref, {"Y": y.T}, do_compression=compress)
    write_header(got, b"unmixgen")
    write_matrix(got, "Y", shape, dtype, [y[:2], y[2:5], y[5:]], compress=compress)
    assert got.getvalue()[128:] == ref.getvalue()[128:]
    assert got.getvalue()[116:128] == ref.getvalue()[116:128]  # version and byte order
    with pytest.raises(ValueError, match="hold 80 bytes of data; expected 96"):
        write_matrix(io.BytesIO(), "Y", (4, 6), np.float32, [np.ones((5, 4), np.float32)])


def test_a_variable_past_4_gib_is_refused_before_anything_is_written():
    import io

    from unmixgen.io.matv5 import VariableTooLarge, write_matrix

    fh = io.BytesIO()
    with pytest.raises(VariableTooLarge, match="less than 4 GiB"):
        write_matrix(fh, "Y", (1 << 10, 1 << 20), np.float32, iter(()))
    assert fh.getvalue() == b""
