"""The field's public MATLAB benchmark files that are not in shared/data, as their layouts
really are (Zhu's Urban and Cuprite, the classification cubes and their label maps, v7.3 copies),
scaled down and made in code.

Zhu's files: ``Y`` (bands, pixels) column-major over ``nRow`` x ``nCol``, ``maxValue``, and
``SlectBands`` (bands, 1): the 1-based band of the sensor's file each kept band is. Cuprite's
truth ``groundTruth_Cuprite_nEnd12.mat`` has ``M`` on all 224 sensor bands, ``slctBnds``
(1, 188) naming the scene's, ``waveLength`` (224, 1) in um, ``cood``, ``nEnd``, and no
abundances; users take ``M(slctBnds, :)``. Classification files hold one (rows, cols, bands)
cube (``indian_pines_corrected`` uint16, ``paviaU``, ``salinas_corrected``) and a (rows, cols)
uint8 map of class labels (``indian_pines_gt``): labels, not abundances.
"""

from __future__ import annotations

from dataclasses import replace

import h5py
import numpy as np
import pytest
import scipy.io as sio

from unmixgen.errors import InputError
from unmixgen.io import matlab, read_scene

ROWS, COLS = 6, 4  # non-square, like Cuprite's 250 x 190
SENSOR_BANDS = 14
SELECTED = np.array([1, 2, 3, 5, 6, 8, 9, 11, 12, 14])  # 1-based, as SlectBands / slctBnds


def _cube(bands=SELECTED.size):
    r, c, b = np.meshgrid(np.arange(ROWS), np.arange(COLS), np.arange(bands), indexing="ij")
    return (100 * r + 10 * c + b + 1).astype(np.float64)  # value encodes (r, c, band)


def _names(*names):
    cell = np.empty((len(names), 1), object)
    for i, n in enumerate(names):
        cell[i, 0] = np.array([n])
    return cell


def _zhu_scene(path, max_value=1000.0):
    cube = _cube()
    sio.savemat(path, {"Y": cube.reshape(-1, cube.shape[2], order="F").T, "nRow": np.array([[ROWS]], float),
                       "nCol": np.array([[COLS]], float), "nBand": np.array([[SELECTED.size]], float),
                       "maxValue": np.array([[max_value]]), "SlectBands": SELECTED.reshape(-1, 1).astype(float)})
    return cube


def _cuprite_truth(path, p=3):
    m = np.random.default_rng(0).random((SENSOR_BANDS, p))
    sio.savemat(path, {"M": m, "cood": _names("Alunite", "Buddingtonite", "Calcite")[:p],
                       "nEnd": np.array([[p]], float), "slctBnds": SELECTED.reshape(1, -1).astype(float),
                       "waveLength": np.linspace(0.37, 2.5, SENSOR_BANDS).reshape(-1, 1)})
    return m


def _v73(path, variables):
    """A MATLAB v7.3 file: HDF5 with a 512-byte user block, arrays transposed (column-major)."""
    classes = {"f": "double", "u": "uint16", "i": "int16"}
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in variables.items():
            v = np.asarray(v)
            f.create_dataset(k, data=v.T).attrs["MATLAB_class"] = np.bytes_(
                "uint8" if v.dtype == np.uint8 else classes[v.dtype.kind])
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM")


def test_zhu_scene_records_its_selected_bands(tmp_path):
    cube = _zhu_scene(tmp_path / "Urban_R10.mat")
    s = read_scene(tmp_path / "Urban_R10.mat")
    assert s.load()[3, 2, 4] == pytest.approx((300 + 20 + 4 + 1) / 1000)  # column-major, maxValue
    np.testing.assert_allclose(s.load(), cube / 1000, rtol=1e-6)
    assert s.metadata["selected_bands"] == "1:3,5:6,8:9,11:12,14"


def test_v73_urban_reads_like_v5(tmp_path):
    _zhu_scene(tmp_path / "v5.mat")
    d = sio.loadmat(tmp_path / "v5.mat")
    _v73(tmp_path / "v73.mat", {k: d[k] for k in ("Y", "nRow", "nCol", "maxValue", "SlectBands")})
    a, b = read_scene(tmp_path / "v5.mat"), read_scene(tmp_path / "v73.mat")
    np.testing.assert_array_equal(a.load(), b.load())
    assert b.metadata["selected_bands"] == "1:3,5:6,8:9,11:12,14"


def test_cuprite_truth_on_all_sensor_bands_is_put_on_the_scenes_by_slctBnds(tmp_path):
    _zhu_scene(tmp_path / "CupriteS1_R10.mat", max_value=1.0)
    m = _cuprite_truth(tmp_path / "groundTruth_Cuprite_nEnd3.mat")
    s = read_scene(tmp_path / "CupriteS1_R10.mat", truth=tmp_path / "groundTruth_Cuprite_nEnd3.mat")
    np.testing.assert_allclose(s.truth.endmembers, m[SELECTED - 1].T.astype(np.float32))
    assert s.truth.abundances is None and s.truth.names == ["Alunite", "Buddingtonite", "Calcite"]
    gt = matlab.read_truth(tmp_path / "groundTruth_Cuprite_nEnd3.mat", ROWS, COLS, SELECTED.size)
    np.testing.assert_allclose(gt.endmembers, m[SELECTED - 1].T.astype(np.float32))
    gt = matlab.read_truth(tmp_path / "groundTruth_Cuprite_nEnd3.mat", ROWS, COLS, SENSOR_BANDS)
    np.testing.assert_allclose(gt.endmembers, m.T.astype(np.float32))  # the full 224-band scene


def test_cuprite_truth_keeping_other_bands_than_the_scene_is_refused(tmp_path):
    _zhu_scene(tmp_path / "CupriteS1_R10.mat", max_value=1.0)
    p = tmp_path / "groundTruth_Cuprite_nEnd3.mat"
    _cuprite_truth(p)
    d = sio.loadmat(p)
    d["slctBnds"] = np.arange(1, 11, dtype=float).reshape(1, -1)  # as many bands, not the scene's
    sio.savemat(p, {k: v for k, v in d.items() if not k.startswith("__")})
    with pytest.raises(InputError, match=r"slctBnds keeps sensor bands 1:10 but the scene .* keeps "
                                         r"1:3,5:6,8:9,11:12,14; expected"):
        read_scene(tmp_path / "CupriteS1_R10.mat", truth=p)


def test_cuprite_truth_whose_slctBnds_do_not_fit_is_refused(tmp_path):
    p = tmp_path / "groundTruth_Cuprite_nEnd3.mat"
    _cuprite_truth(p)
    with pytest.raises(InputError, match=r"groundTruth_Cuprite_nEnd3.mat: endmembers 'M' have shape \(14, 3\)"):
        matlab.read_truth(p, ROWS, COLS, 9)  # 9 bands: slctBnds names 10
    d = sio.loadmat(p)
    d["slctBnds"] = np.array([[0, 1, 2, 3, 4, 5, 6, 7, 8, 15]], float)  # 0 and 15: not 1-based into 14
    sio.savemat(p, {k: v for k, v in d.items() if not k.startswith("__")})
    with pytest.raises(InputError, match=r"slctBnds.*expected"):
        matlab.read_truth(p, ROWS, COLS, SELECTED.size)


@pytest.mark.parametrize("v73", [False, True])
def test_classification_cube_and_its_label_map(tmp_path, v73):
    cube = (np.arange(ROWS * COLS * 7).reshape(ROWS, COLS, 7) * 3).astype(np.uint16)
    labels = np.random.default_rng(1).integers(0, 17, (ROWS, COLS)).astype(np.uint8)
    scene, gt = tmp_path / "Indian_pines_corrected.mat", tmp_path / "Indian_pines_gt.mat"
    if v73:
        _v73(scene, {"indian_pines_corrected": cube})
        _v73(gt, {"indian_pines_gt": labels})
    else:
        sio.savemat(scene, {"indian_pines_corrected": cube})
        sio.savemat(gt, {"indian_pines_gt": labels})
    s = read_scene(scene)
    np.testing.assert_array_equal(s.load(), cube.astype(np.float32))  # (rows, cols, bands) as stored
    assert s.metadata["variable"] == "indian_pines_corrected"
    with pytest.raises(InputError, match=r"Indian_pines_gt.mat: 'indian_pines_gt' \(6, 4\) uint8 holds class "
                                         r"labels.*not abundances; expected") as err:
        read_scene(scene, truth=gt)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"Indian_pines_gt.mat: 'indian_pines_gt' \(6, 4\) uint8 holds class "
                                         r"labels.*expected a scene"):
        read_scene(gt)


def test_label_map_as_evaluate_truth_is_refused_in_one_line(run_cli, tmp_path):
    labels = np.random.default_rng(1).integers(0, 17, (ROWS, COLS)).astype(np.uint8)
    sio.savemat(tmp_path / "PaviaU_gt.mat", {"paviaU_gt": labels})
    np.savez(tmp_path / "est.npz", abundances=np.full((ROWS, COLS, 3), 1 / 3, np.float32))
    code, _, err = run_cli("evaluate", "--truth", tmp_path / "PaviaU_gt.mat", "--estimate", tmp_path / "est.npz")
    assert code == 2 and "class labels" in err and "not abundances" in err and err.count("\n") == 1, err


def test_integer_data_matrix_without_its_sizes_is_not_called_labels(tmp_path):
    p = tmp_path / "jasper_no_sizes.mat"
    sio.savemat(p, {"Y": (np.arange(10 * 400).reshape(10, 400) * 7 % 5000).astype(np.uint16)})
    with pytest.raises(InputError, match="cannot find a scene") as err:
        read_scene(p)
    assert "class labels" not in str(err.value)
    names = np.array([list(n.ljust(12).encode()) for n in ("Alunite GDS84", "Kaolinite CM9")], np.uint8)
    sio.savemat(p, {"names": names, "datalib": np.ones((10, 2))})  # USGS_1995_Library.mat: names as codes
    with pytest.raises(InputError, match="cannot find a scene") as err:
        read_scene(p)
    assert "class labels" not in str(err.value)


def test_v73_truth_keeps_the_names_in_its_cood_cell(tmp_path):
    """MATLAB v7.3 keeps a cell as references to char arrays under #refs#: Zhu's cood names."""
    p = tmp_path / "end4_groundTruth.mat"
    m, a = np.random.default_rng(2).random((SELECTED.size, 4)), np.full((4, ROWS * COLS), 0.25)
    with h5py.File(p, "w", userblock_size=512) as f:
        for k, v in {"M": m, "A": a, "nEnd": np.array([[4.0]])}.items():
            f.create_dataset(k, data=v.T).attrs["MATLAB_class"] = np.bytes_("double")
        refs = f.create_group("#refs#")
        cell = f.create_dataset("cood", (1, 4), dtype=h5py.ref_dtype)  # a (4, 1) cell, transposed
        for i, name in enumerate(["Asphalt", "Grass", "Tree", "Roof"]):
            d = refs.create_dataset(f"n{i}", data=np.array([[ord(ch)] for ch in name], np.uint16))
            d.attrs["MATLAB_class"] = np.bytes_("char")
            cell[0, i] = d.ref
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
    with open(p, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM")
    gt = matlab.read_truth(p, ROWS, COLS, SELECTED.size)
    assert gt.names == ["Asphalt", "Grass", "Tree", "Roof"]
    np.testing.assert_allclose(gt.endmembers, m.T.astype(np.float32))


def _cuprite_mixture(path, m):
    """Zhu's Cuprite scene mixed from the truth's ``M(SELECTED, :)``: (abundances (rows, cols, p))."""
    a = np.random.default_rng(3).dirichlet(np.ones(m.shape[1]), (ROWS, COLS))
    cube = a @ m[SELECTED - 1].T
    sio.savemat(path, {"Y": cube.reshape(-1, cube.shape[2], order="F").T, "nRow": np.array([[ROWS]], float),
                       "nCol": np.array([[COLS]], float), "maxValue": np.array([[1.0]]),
                       "SlectBands": SELECTED.reshape(-1, 1).astype(float)})
    return a


def test_cuprite_truth_as_endmembers_file_is_cut_by_slctBnds(run_cli, tmp_path):
    """`unmix CUPRITE.mat --endmembers-file groundTruth_Cuprite_nEnd12.mat` was refused ("14
    endmember bands but the scene has 10"), though read_truth takes M(slctBnds, :)."""
    m = _cuprite_truth(tmp_path / "groundTruth_Cuprite_nEnd3.mat")
    a = _cuprite_mixture(tmp_path / "CupriteS1_R10.mat", m)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", tmp_path / "CupriteS1_R10.mat", "--endmembers-file",
                           tmp_path / "groundTruth_Cuprite_nEnd3.mat", "--method", "fcls", "--out", out, "--no-figures")
    assert code == 0, err
    r = np.load(out / "result.npz")
    np.testing.assert_allclose(r["endmembers"], m[SELECTED - 1].T, rtol=1e-5)
    np.testing.assert_allclose(r["abundances"], a, atol=1e-3)


def test_cuprite_endmembers_whose_selection_is_not_the_scenes_are_refused(run_cli, tmp_path):
    p = tmp_path / "groundTruth_Cuprite_nEnd3.mat"
    m = _cuprite_truth(p)
    _cuprite_mixture(tmp_path / "CupriteS1_R10.mat", m)
    d = sio.loadmat(p)
    d["slctBnds"] = np.arange(1, 11, dtype=float).reshape(1, -1)  # as many bands, not the scene's
    sio.savemat(p, {k: v for k, v in d.items() if not k.startswith("__")})
    code, _, err = run_cli("unmix", tmp_path / "CupriteS1_R10.mat", "--endmembers-file", p, "--method", "fcls",
                           "--out", tmp_path / "run", "--no-figures")
    assert code == 2 and err.count("\n") == 1, err
    assert "slctBnds keeps sensor bands 1:10 but the scene keeps 1:3,5:6,8:9,11:12,14; expected" in err


def test_cuprite_endmembers_whose_selection_names_another_band_count_are_refused(tmp_path):
    from unmixgen.runs.endmembers import fit_to_bands, load_endmembers

    p = tmp_path / "groundTruth_Cuprite_nEnd3.mat"
    _cuprite_truth(p)
    em = load_endmembers(p)
    with pytest.raises(InputError, match=r"slctBnds \(1:3,5:6,8:9,11:12,14\) name 10 of the 14 endmember bands "
                                         r"but the scene has 9 bands; expected"):
        fit_to_bands(replace(em, wavelengths=None), None, 9)
    with pytest.raises(InputError, match=r"the scene's selected bands 1:9 name 9 of the 14 endmember bands but the "
                                         r"scene has 8 bands"):
        fit_to_bands(replace(em, selected_bands=None), None, 8, selected="1:9")
    E, covered = fit_to_bands(replace(em, selected_bands=None, wavelengths=None), None, 9, selected="1:9")
    assert covered.all() and E.shape == (3, 9)


def test_cuprite_waveLength_is_read_in_nm_and_resamples_the_spectra(tmp_path):
    """``waveLength`` (224, 1) in um: the centre of each row of M (all 224 AVIRIS bands)."""
    from unmixgen.runs.endmembers import fit_to_bands, load_endmembers

    p = tmp_path / "groundTruth_Cuprite_nEnd3.mat"
    m = _cuprite_truth(p)
    em = load_endmembers(p)
    wl = np.linspace(370, 2500, SENSOR_BANDS)
    np.testing.assert_allclose(em.wavelengths, wl)
    mid = (wl[:-1] + wl[1:]) / 2  # a scene of other bands, no selection: resampled by wavelength
    E, covered = fit_to_bands(em, mid, mid.size)
    assert covered.all()
    np.testing.assert_allclose(E, ((m[:-1] + m[1:]) / 2).T, rtol=1e-5)
    E, covered = fit_to_bands(em, wl[SELECTED - 1], SELECTED.size, selected="1:3,5:6,8:9,11:12,14")
    np.testing.assert_allclose(E, m[SELECTED - 1].T, rtol=1e-6)
    d = sio.loadmat(p)
    d["waveLength"] = d["waveLength"][:-1]
    sio.savemat(p, {k: v for k, v in d.items() if not k.startswith("__")})
    with pytest.raises(InputError, match=r"'waveLength' holds 13 values .* on 14 bands; expected one band centre"):
        load_endmembers(p)


def test_cuprite_truth_already_cut_to_slctBnds_is_an_endmembers_file(run_cli, tmp_path):
    """A truth saved with M(slctBnds, :) beside its slctBnds (and the sensor's waveLength) is read
    as a truth; as --endmembers-file it was refused ("slctBnds: ... expected the distinct 1-based
    band numbers of the 10 bands of its spectra"), though its rows are those sensor bands."""
    from unmixgen.runs.endmembers import load_endmembers

    p = tmp_path / "groundTruth_Cuprite_cut.mat"
    m = _cuprite_truth(p)
    d = sio.loadmat(p)
    d["M"] = m[SELECTED - 1]
    sio.savemat(p, {k: v for k, v in d.items() if not k.startswith("__")})
    assert matlab.read_truth(p, ROWS, COLS, SELECTED.size).endmembers.shape == (3, SELECTED.size)
    em = load_endmembers(p)
    np.testing.assert_allclose(em.spectra, m[SELECTED - 1].T, rtol=1e-6)
    np.testing.assert_allclose(em.wavelengths, np.linspace(370, 2500, SENSOR_BANDS)[SELECTED - 1])
    a = _cuprite_mixture(tmp_path / "CupriteS1_R10.mat", m)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", tmp_path / "CupriteS1_R10.mat", "--endmembers-file", p, "--method", "fcls",
                           "--out", out, "--no-figures")
    assert code == 0, err
    np.testing.assert_allclose(np.load(out / "result.npz")["abundances"], a, atol=1e-3)


def test_selected_band_text_is_parsed_or_refused_in_one_line():
    from unmixgen.errors import InputError
    from unmixgen.io.matlab import band_numbers, band_ranges

    np.testing.assert_array_equal(band_numbers("1:3,5"), [1, 2, 3, 5])
    assert band_ranges(band_numbers("4:107,113:153")) == "4:107,113:153"
    for bad in ("3:1", "0:4", "a:b", "1:3,,5"):
        with pytest.raises(InputError, match="selected bands"):
            band_numbers(bad)
