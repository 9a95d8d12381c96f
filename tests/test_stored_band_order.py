"""Reference spectra without wavelengths of their own (a benchmark's ``end3.mat``, an ``.npz``
of endmembers only) are in the band order of the file they belong to. A reader that presents
a file's bands sorted by wavelength (bands stored out of order, detectors that overlap) must
put them in the same order, or every spectral score compares mismatched bands silently.

The stored order here is a fixed shuffle, not a reversal: a reversal is its own inverse, so
it would not tell the permutation from its inverse."""

import json

import numpy as np
import pytest
import scipy.io

from fixtures_io import write_envi
from unmixgen.errors import InputError
from unmixgen.io import read_scene
from unmixgen.runs.truth import read_truth
from unmixgen.scene import stored_band_order, take_bands
from unmixgen.simulate.procedural import make_scene

ROWS, COLS, BANDS = 12, 20, 24


def _zhu(A: np.ndarray) -> np.ndarray:
    """(rows, cols, p) maps as a benchmark file's column-major (p, pixels) matrix."""
    return A.reshape(-1, A.shape[-1], order="F").T


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory):
    """An ENVI scene whose file stores its bands shuffled (the reader sorts them), its
    truth in the file's band order (no wavelengths), and the truth in wavelength order."""
    tmp = tmp_path_factory.mktemp("stored_band_order")
    s = make_scene(rows=ROWS, cols=COLS, bands=BANDS, p=3, snr_db=40, seed=3)
    perm = np.random.default_rng(7).permutation(BANDS)  # stored band j is band perm[j] in wavelength order
    assert not np.array_equal(perm[perm], np.arange(BANDS))  # not its own inverse
    hdr = write_envi(tmp, np.ascontiguousarray(s.load()[..., perm]), wavelengths=s.wavelengths[perm])
    E, A = s.truth.endmembers, s.truth.abundances
    scipy.io.savemat(tmp / "end3.mat", {"M": E[:, perm].T, "A": _zhu(A)})
    np.savez(tmp / "end3.npz", endmembers=E[:, perm], abundances=A)
    np.savez(tmp / "E.npz", endmembers=E, wavelengths=s.wavelengths)
    return tmp, hdr, E, A, perm


def test_reader_records_the_stored_order(shuffled):
    tmp, hdr, E, A, perm = shuffled
    scene = read_scene(hdr)
    index, stored = stored_band_order(scene)
    assert stored == BANDS and np.array_equal(perm[index], np.arange(BANDS))
    # bands taken in another order carry it along: still the file's band of each (the
    # centres given anew, as `convert --wavelengths` does)
    back = take_bands(scene, np.arange(BANDS)[::-1], wavelengths=scene.wavelengths)
    assert np.array_equal(stored_band_order(back)[0], index[::-1])
    # a scene whose bands are as stored has none
    s = make_scene(rows=4, cols=5, bands=6, p=2, snr_db=None, seed=1)
    plain = write_envi(tmp, s.load().copy(), name="plain", wavelengths=s.wavelengths)
    assert stored_band_order(read_scene(plain)) is None


@pytest.mark.parametrize("name", ["end3.mat", "end3.npz"])
def test_truth_without_wavelengths_follows_the_sorted_bands(run_cli, shuffled, name):
    """The spectra were exactly the truth's; unmix --truth and evaluate scored them 50 deg
    apart (the truth's bands in file order against the scene's sorted ones)."""
    tmp, hdr, E, A, perm = shuffled
    out = tmp / f"run-{name}"
    code, _, err = run_cli("unmix", hdr, "--endmembers-file", tmp / "E.npz", "--method", "fcls",
                           "--truth", tmp / name, "--out", out, "--no-figures")
    assert code == 0, err
    metrics = json.loads((out / "run.json").read_text())["metrics"]
    assert metrics["sad_deg_mean"] < 1e-3 and metrics["abundance_rmse_percent"] < 0.5, metrics
    code, stdout, err = run_cli("evaluate", "--truth", tmp / name, "--estimate", out, "--json",
                                "--save", tmp / f"{name}-scores.json")
    assert code == 0, err
    assert json.loads(stdout)["sad_deg_mean"] < 1e-3


def test_given_endmembers_without_wavelengths_follow_the_sorted_bands(run_cli, shuffled):
    """--endmembers-file end3.mat (M in the file's band order) on the sorted scene: the
    abundances were inverted against mismatched spectra."""
    tmp, hdr, E, A, perm = shuffled
    out = tmp / "given"
    code, _, err = run_cli("unmix", hdr, "--endmembers-file", tmp / "end3.mat", "--method", "fcls",
                           "--out", out, "--no-figures")
    assert code == 0, err
    r = np.load(out / "result.npz")
    assert np.allclose(r["endmembers"], E, atol=1e-6)
    assert np.sqrt(np.mean((r["abundances"] - A) ** 2)) < 0.005


def test_truth_whose_band_order_is_unknown_is_refused(tmp_path):
    """A reader that kept one detector's bands where two overlap (overlap='short') presents
    fewer bands than the file holds: a truth without wavelengths on as many bands as the
    scene could be in either order, so it is refused; one on the file's bands is taken."""
    s = make_scene(rows=4, cols=5, bands=10, p=2, snr_db=None, seed=1)
    wl = s.wavelengths
    stored = np.r_[0:6, 4:10]  # two detectors; bands 4 and 5 measured twice
    file_wl = wl[stored] - np.r_[np.zeros(6), np.full(6, 1.0)]  # the second detector 1 nm off
    hdr = write_envi(tmp_path, np.ascontiguousarray(s.load()[..., stored]), wavelengths=file_wl)
    scene = read_scene(hdr, overlap="short")
    assert scene.bands == 10
    E = s.truth.endmembers
    np.savez(tmp_path / "file.npz", endmembers=E[:, stored])
    gt = read_truth(tmp_path / "file.npz", 4, 5, scene.bands, scene.wavelengths,
                    stored_order=stored_band_order(scene))
    assert np.array_equal(gt.endmembers, E)
    np.savez(tmp_path / "ten.npz", endmembers=E)
    with pytest.raises(InputError, match=r"ten\.npz.*10 bands.*12"):
        read_truth(tmp_path / "ten.npz", 4, 5, scene.bands, scene.wavelengths,
                   stored_order=stored_band_order(scene))


def test_result_with_a_broken_stored_order_is_refused(run_cli, shuffled):
    """evaluate trusts a result's stored_band_index to reorder the truth: one that is not a
    permutation of the file's bands is one line naming the folder, not an IndexError."""
    import shutil

    tmp, hdr, E, A, perm = shuffled
    out = tmp / "for-tamper"
    assert run_cli("unmix", hdr, "--endmembers-file", tmp / "E.npz", "--method", "fcls",
                   "--out", out, "--no-figures")[0] == 0
    z = dict(np.load(out / "result.npz"))
    assert np.array_equal(perm[z["stored_band_index"]], np.arange(BANDS)) and int(z["stored_bands"]) == BANDS
    bad = tmp / "tampered"
    shutil.copytree(out, bad)
    z["stored_band_index"] = np.zeros(BANDS, int)
    np.savez(bad / "result.npz", **z)
    code, _, err = run_cli("evaluate", "--truth", tmp / "end3.mat", "--estimate", bad)
    assert code == 2 and "tampered" in err and "stored_band_index" in err, err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("ext", [".hdr", ".tif", ".npz", ".mat"])
def test_a_converted_copy_keeps_the_file_band_order(run_cli, shuffled, ext):
    """convert wrote the bands as the reader sorted them and forgot the file's order: a truth in
    that order (no wavelengths) scored the copy's bands against other bands, silently (SAD ~50
    deg). The copy records where each of its bands came from, and so do copies of it."""
    tmp, hdr, E, A, perm = shuffled
    copy = tmp / f"copy{ext}"
    code, _, err = run_cli("convert", hdr, copy)
    assert code == 0, err
    scene = read_scene(copy)
    assert np.all(np.diff(scene.wavelengths) > 0)  # written in the order it was read: sorted
    want = stored_band_order(read_scene(hdr))
    got = stored_band_order(scene)
    assert got is not None and np.array_equal(got[0], want[0]) and got[1] == BANDS
    out = tmp / f"run-copy{ext}"
    code, _, err = run_cli("unmix", copy, "--endmembers-file", tmp / "E.npz", "--method", "fcls",
                           "--truth", tmp / "end3.mat", "--out", out, "--no-figures")
    assert code == 0, err
    metrics = json.loads((out / "run.json").read_text())["metrics"]
    assert metrics["sad_deg_mean"] < 1e-3 and metrics["abundance_rmse_percent"] < 0.5, metrics
    code, stdout, err = run_cli("evaluate", "--truth", tmp / "end3.mat", "--estimate", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["sad_deg_mean"] < 1e-3
    again = tmp / f"again{ext}"
    assert run_cli("convert", copy, again)[0] == 0
    assert np.array_equal(stored_band_order(read_scene(again))[0], want[0])


def test_a_copy_sorted_by_given_band_centres_fits_truths_of_either_file(run_cli, tmp_path):
    """convert --wavelengths sorts band centres that step back: a truth in the source's band order
    (no wavelengths) must still fit the copy, and so must the copy's own truth (with wavelengths)."""
    s = make_scene(rows=ROWS, cols=COLS, bands=BANDS, p=3, snr_db=40, seed=5)
    perm = np.random.default_rng(11).permutation(BANDS)
    src = tmp_path / "nowl.npz"
    np.savez(src, cube=np.ascontiguousarray(s.load()[..., perm]), endmembers=s.truth.endmembers[:, perm],
             abundances=s.truth.abundances)
    (tmp_path / "wl.txt").write_text("\n".join(repr(float(w)) for w in s.wavelengths[perm]))
    np.savez(tmp_path / "E.npz", endmembers=s.truth.endmembers, wavelengths=s.wavelengths)
    copy = tmp_path / "copy.mat"
    code, _, err = run_cli("convert", src, copy, "--wavelengths", tmp_path / "wl.txt")
    assert code == 0, err
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", copy, "--endmembers-file", tmp_path / "E.npz", "--method", "fcls",
                           "--out", out, "--no-figures")
    assert code == 0, err
    for truth in (src, copy):
        code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", out, "--json")
        assert code == 0, err
        assert json.loads(stdout)["sad_deg_mean"] < 1e-3, truth


@pytest.mark.parametrize("index, count, expected", [
    ("{0, 0, 1}", "3", "not the source file's band of each of its 3 bands"),
    ("{0, 1}", "3", "not the source file's band of each of its 3 bands"),
    ("{0, 1, 5}", "3", "not the source file's band of each of its 3 bands"),
    ("{0, 1, x}", "3", "not a number"),
    ("{2, 0, 1}", "2", "expected an integer >= 3"),
])
def test_a_broken_source_band_order_is_one_clear_error(tmp_path, run_cli, index, count, expected):
    hdr = write_envi(tmp_path, np.ones((2, 3, 3), np.float32), wavelengths=[400.0, 500.0, 600.0],
                     extra={"source band index": index, "source bands": count})
    with pytest.raises(InputError, match=expected) as info:
        read_scene(hdr)
    assert "'source band" in str(info.value) and str(info.value).startswith(str(hdr))
    code, _, err = run_cli("info", hdr)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_a_hand_built_truth_is_put_on_the_sorted_bands_or_refused_when_its_order_is_unknown(shuffled):
    """`Scene.attach_truth` with a `GroundTruth` made in Python: spectra in the file's band order
    were attached as if in the scene's, misaligned with every band; on as many bands as both, the
    order is told (band_order) or read from the truth's wavelengths, never guessed."""
    from unmixgen.scene import GroundTruth

    tmp, hdr, E, A, perm = shuffled
    in_file = E[:, perm]  # the file's band order, as a benchmark's M read with scipy
    scene = read_scene(hdr)
    scene.attach_truth(GroundTruth(in_file, A), band_order="file")
    np.testing.assert_array_equal(scene.truth.endmembers, E)
    scene.attach_truth(GroundTruth(E, A), band_order="scene")
    np.testing.assert_array_equal(scene.truth.endmembers, E)
    # with band centres of their own (any order), the spectra are matched by them
    scene.attach_truth(GroundTruth(in_file, A, wavelengths=scene.wavelengths[perm]))
    np.testing.assert_array_equal(scene.truth.endmembers, E)
    with pytest.raises(InputError, match=r"ground truth: endmembers are on 24 bands at .* not the 24 bands"):
        scene.attach_truth(GroundTruth(E, A, wavelengths=scene.wavelengths + 5))
    # neither: as many bands as the file and the scene, in either order
    scene.truth = None
    with pytest.raises(InputError, match=r"^ground truth: .*24 bands without wavelengths.*sorted.*band_order="):
        scene.attach_truth(GroundTruth(in_file, A))
    assert scene.truth is None
    with pytest.raises(ValueError, match="band_order"):
        scene.attach_truth(GroundTruth(E, A), band_order="sorted")


def test_a_hand_built_truth_on_the_files_bands_is_put_on_the_kept_ones(tmp_path):
    """A reader that kept one detector's bands where two overlap: spectra on the file's 12 bands
    are in its order (as read_truth takes them); on the scene's 10, the order is asked for."""
    from unmixgen.scene import GroundTruth

    s = make_scene(rows=4, cols=5, bands=10, p=2, snr_db=None, seed=1)
    stored = np.r_[0:6, 4:10]
    file_wl = s.wavelengths[stored] - np.r_[np.zeros(6), np.full(6, 1.0)]
    scene = read_scene(write_envi(tmp_path, np.ascontiguousarray(s.load()[..., stored]), wavelengths=file_wl),
                       overlap="short")
    E = s.truth.endmembers
    scene.attach_truth(GroundTruth(E[:, stored]))
    np.testing.assert_array_equal(scene.truth.endmembers, E)
    with pytest.raises(InputError, match=r"10 bands without wavelengths.*12 bands"):
        scene.attach_truth(GroundTruth(E))
    scene.attach_truth(GroundTruth(E), band_order="scene")
    np.testing.assert_array_equal(scene.truth.endmembers, E)


def _arrange_by_hand(wl, det, policy):
    """The kept band indices, in wavelength order, from the policy's wording: in each overlap of
    neighbouring detectors (neighbours by where they start), keep only the shorter-starting
    detector's bands ("short") or only the other's ("long")."""
    wl, det = np.asarray(wl, float), np.asarray(det)
    labels = sorted(set(det.tolist()), key=lambda d: wl[det == d].min())
    drop = set()
    for lo, hi in zip(labels[:-1], labels[1:], strict=True):
        lo_b = [i for i in range(wl.size) if det[i] == lo and i not in drop]
        hi_b = [i for i in range(wl.size) if det[i] == hi and i not in drop]
        if policy == "short":
            top = max(wl[i] for i in lo_b)
            drop |= {i for i in hi_b if wl[i] <= top}
        else:
            bottom = min(wl[i] for i in hi_b)
            drop |= {i for i in lo_b if wl[i] >= bottom}
    kept = [i for i in range(wl.size) if i not in drop]
    return sorted(kept, key=lambda i: wl[i])


def test_arrange_follows_the_overlap_policy_by_hand():
    from unmixgen.io.bands import arrange, detector_runs

    # VNIR 400..1000 then SWIR from 950, with a SWIR band exactly at the VNIR's last wavelength
    wl = np.r_[np.arange(400.0, 1001.0, 50.0), [950.0, 1000.0, 1050.0, 1100.0]]
    det = detector_runs(wl)
    assert det.tolist() == [0] * 13 + [1] * 4
    for policy in ("short", "long"):
        got = arrange(wl, policy)
        assert got.order.tolist() == _arrange_by_hand(wl, det, policy), policy
        assert np.all(np.diff(got.wavelengths) > 0)
    # labels that do not follow the wavelengths: detector 0 is the long one here
    det2 = np.r_[[1] * 13, [0] * 4]
    assert arrange(wl, "short", detectors=det2).order.tolist() == _arrange_by_hand(wl, det2, "short")
    # a repeated wavelength starts a new detector (the stored order does not increase there)
    assert detector_runs([500.0, 600.0, 600.0, 700.0]).tolist() == [0, 0, 1, 1]
    for bad in ([500.0, 0.0, 700.0], [-5.0, 600.0]):
        with pytest.raises(InputError, match="finite and positive"):
            arrange(bad)
