"""`unmixgen evaluate` with ground truths in the forms benchmark files really have: MATLAB
(bands, p) / (p, pixels) matrices with their size variables, flat maps in either pixel order,
truths with more or fewer endmembers than the estimate. Scored on a non-square scene, where a
wrong pixel order does not cancel out."""

import json

import numpy as np
import pytest
import scipy.io

from unmixgen.errors import InputError
from unmixgen.io import write_scene
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import make_scene

ROWS, COLS = 12, 20


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 12x20 scene, its truth, and the FCLS result on its true endmembers (RMSE ~0.1 %)."""
    from unmixgen.cli.app import main

    tmp = tmp_path_factory.mktemp("evaluate_truths")
    s = make_scene(rows=ROWS, cols=COLS, p=3, snr_db=40, seed=3)
    scene = tmp / "scene.npz"
    write_scene(Scene(s.load().copy(), wavelengths=s.wavelengths), scene)
    E, A = s.truth.endmembers.astype(np.float64), s.truth.abundances.astype(np.float64)
    np.savez(tmp / "E.npz", endmembers=E, wavelengths=s.wavelengths)
    out = tmp / "run"
    assert main(["unmix", str(scene), "--endmembers-file", str(tmp / "E.npz"), "--method", "fcls",
                 "--out", str(out), "--no-figures"]) == 0
    return out, E, A


def _zhu(A: np.ndarray, order: str = "F") -> np.ndarray:
    """(rows, cols, p) maps as a benchmark file's (p, pixels) matrix."""
    return A.reshape(-1, A.shape[-1], order=order).T


def _scores(run_cli, truth, estimate, *extra):
    """The scores evaluate prints as JSON. No figures: drawing them was ~0.9 s a call, nearly all of
    it; the tests that score an odd truth or estimate draw its figures in a call of their own."""
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", estimate, "--json",
                                "--save", truth.parent / f"{truth.stem}-scores.json", "--no-figures", *extra)
    assert code == 0, err
    return json.loads(stdout)


@pytest.mark.parametrize("sizes", [{"nRow": COLS, "nCol": ROWS}, {"lines": COLS, "cols": ROWS},
                                   {"nRow": 10, "nCol": 24}])
def test_truth_mat_of_a_scene_of_another_size_is_refused(run_cli, run, tmp_path, sizes):
    """A Zhu/Palsson truth .mat says the size of its scene (nRow/nCol, lines/cols): the reader
    ignored it, so a truth of the 20x12 (transposed) scene, or of any scene of as many pixels,
    was unfolded onto the 12x20 estimate and scored without a word."""
    out, E, A = run
    truth = tmp_path / "end3.mat"
    scipy.io.savemat(truth, {"M": E.T, "A": _zhu(A), **sizes})
    code, _, err = run_cli("evaluate", "--truth", truth, "--estimate", out)
    assert code == 2 and "end3.mat" in err and len(err.strip().splitlines()) == 1, err
    declared = f"{sizes.get('nRow', sizes.get('lines'))}x{sizes.get('nCol', sizes.get('cols'))}"
    assert declared in err and f"{ROWS}x{COLS}" in err
    if declared == f"{COLS}x{ROWS}":
        assert "swapped" in err
    # the sizes of the scene itself are fine
    scipy.io.savemat(truth, {"M": E.T, "A": _zhu(A), "nRow": ROWS, "nCol": COLS, "nEnd": 3})
    assert _scores(run_cli, truth, out)["abundance_rmse_percent"] < 0.5


def test_flat_truth_in_the_other_pixel_order_is_caught(run_cli, run, tmp_path):
    """Flat (p, pixels) maps stored row-major (numpy's reshape, HySUPP without its H/W) were
    unfolded column-major onto the 12x20 scene and scored without a word: a perfect estimate
    read 47 % RMSE. Now the truth fitting the estimate far better in the other order is one
    line naming the file and --pixel-order, and --pixel-order C scores it as meant."""
    out, E, A = run
    truth = tmp_path / "end3.mat"
    scipy.io.savemat(truth, {"M": E.T, "A": _zhu(A, "C")})
    code, _, err = run_cli("evaluate", "--truth", truth, "--estimate", out)
    assert code == 2 and "end3.mat" in err and "--pixel-order" in err and "row-major" in err, err
    assert len(err.strip().splitlines()) == 1, err
    good = _scores(run_cli, truth, out, "--pixel-order", "C")["abundance_rmse_percent"]
    assert good < 0.5
    # as stored, when the user says so (F: MATLAB's order), the score is that of the scramble
    assert _scores(run_cli, truth, out, "--pixel-order", "F")["abundance_rmse_percent"] > 20
    # the same for an .npz holding (pixels, p) in numpy's order
    npz = tmp_path / "truth.npz"
    np.savez(npz, endmembers=E, abundances=A.reshape(-1, 3))
    code, _, err = run_cli("evaluate", "--truth", npz, "--estimate", out)
    assert code == 2 and "truth.npz" in err and "--pixel-order" in err, err
    assert _scores(run_cli, npz, out, "--pixel-order", "C")["abundance_rmse_percent"] == pytest.approx(good)
    # in the right order nothing is said
    scipy.io.savemat(truth, {"M": E.T, "A": _zhu(A)})
    assert _scores(run_cli, truth, out)["abundance_rmse_percent"] == pytest.approx(good)


def test_transposed_maps_of_a_square_scene_are_caught(run_cli, tmp_path):
    """On a square scene a truth unfolded in the wrong order is the transpose, and has the
    estimate's shape: nothing could tell it from a bad estimate (the DESIGN's warning)."""
    s = make_scene(rows=16, cols=16, p=3, snr_db=40, seed=5)
    scene = tmp_path / "square.npz"
    write_scene(Scene(s.load().copy(), wavelengths=s.wavelengths), scene)
    E, A = s.truth.endmembers, s.truth.abundances
    np.savez(tmp_path / "E.npz", endmembers=E, wavelengths=s.wavelengths)
    out = tmp_path / "run"
    assert run_cli("unmix", scene, "--endmembers-file", tmp_path / "E.npz", "--method", "fcls",
                   "--out", out, "--no-figures")[0] == 0
    for name, truth in (("S_GT.mat", {"GT": E, "S_GT": A.transpose(1, 0, 2)}),
                        ("flat.mat", {"M": E.T, "A": _zhu(A, "C")})):
        scipy.io.savemat(tmp_path / name, truth)
        code, _, err = run_cli("evaluate", "--truth", tmp_path / name, "--estimate", out)
        assert code == 2 and name in err and "transpose" in err, err
        # unmix --truth scores after the run: it warns, in run.json too
        code, _, err = run_cli("unmix", scene, "--endmembers-file", tmp_path / "E.npz", "--method", "fcls",
                               "--truth", tmp_path / name, "--out", tmp_path / f"u-{name}", "--no-figures")
        assert code == 0 and "transpose" in err, err
        record = json.loads((tmp_path / f"u-{name}" / "run.json").read_text())
        assert any("transpose" in w for w in record["warnings"])


def test_endmembers_left_unmatched_are_named(run_cli, run, tmp_path):
    """A truth with a background class the estimate lacks (4 vs 3), or one with fewer
    endmembers: the scores cover the matched pairs only, and the table and JSON said only
    '3 estimated, 4 reference', never which map was left out of them."""
    out, E, A = run
    A4 = np.concatenate([A * 0.8, np.full((ROWS, COLS, 1), 0.2)], -1)
    E4 = np.concatenate([E, np.full((1, E.shape[1]), 0.05)])
    truth = tmp_path / "end4.mat"
    names = np.array([["soil"], ["tree"], ["water"], ["shadow"]], dtype=object)
    scipy.io.savemat(truth, {"M": E4.T, "A": _zhu(A4), "cood": names})
    r = _scores(run_cli, truth, out)
    assert r["unmatched_reference"] == ["shadow"] and "unmatched_estimate" not in r
    # the matched maps' scores, by hand
    assert r["abundance_rmse_percent"] == pytest.approx(100 * np.sqrt(np.mean(
        (np.load(out / "result.npz")["abundances"] - A4[..., :3]) ** 2)), rel=1e-5)
    code, stdout, _ = run_cli("evaluate", "--truth", truth, "--estimate", out, "--save", tmp_path / "s.json")
    assert code == 0 and "shadow" in stdout and "not matched" in stdout, stdout
    scipy.io.savemat(truth, {"M": E[[0, 2]].T, "A": _zhu(A[..., [0, 2]])})
    r = _scores(run_cli, truth, out)
    assert r["unmatched_estimate"] == ["em2"] and "unmatched_reference" not in r
    assert r["permutation"] == [0, 2]
    code, stdout, _ = run_cli("evaluate", "--truth", truth, "--estimate", out, "--save", tmp_path / "s.json")
    assert "not matched" in stdout and "em2" in stdout.split("not matched")[1], stdout


def test_an_estimated_spectrum_of_zeros_is_not_averaged_away(run_cli, run, tmp_path):
    """An estimate with an all-zero spectrum (a failed extraction) has no angle to its
    reference: the mean SAD was the mean of the others (1e-6 deg, perfect). Now it is null,
    and the table and JSON name the endmember."""
    import shutil

    out, E, A = run
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    z = dict(np.load(bad / "result.npz"))
    z["endmembers"] = z["endmembers"].copy()
    z["endmembers"][1] = 0
    np.savez(bad / "result.npz", **z)
    truth = tmp_path / "end3.mat"
    scipy.io.savemat(truth, {"M": E.T, "A": _zhu(A)})
    for align in ("abundance", "sad", "both"):
        r = _scores(run_cli, truth, bad, "--align", align)
        assert r["sad_deg"][0] < 1e-3 and r["sad_deg"][1] is None
        assert r["sad_deg_mean"] is None and r["sad_undefined"] == ["em2"], r
    code, stdout, _ = run_cli("evaluate", "--truth", truth, "--estimate", bad, "--save", tmp_path / "s.json")
    assert code == 0 and "no angle" in stdout and "em2" in stdout.split("no angle")[1], stdout


@pytest.mark.parametrize("key", ["A", "M"])
def test_complex_truth_is_refused_not_skipped(run_cli, run, tmp_path, key):
    """A complex A (or M) in a truth .mat was passed over as 'not numbers': the file was then
    scored on its spectra alone (or said to hold no truth), exit 0, nothing said of A."""
    out, E, A = run
    truth = {"M": E.T, "A": _zhu(A)}
    truth[key] = truth[key] * (1 + 0j)
    scipy.io.savemat(tmp_path / "end3.mat", truth)
    code, _, err = run_cli("evaluate", "--truth", tmp_path / "end3.mat", "--estimate", out)
    assert code == 2 and "end3.mat" in err and "complex" in err and repr(key) in err, err


def _with_maps(src, dst, change):
    """A copy of the result folder ``src`` at ``dst`` with its abundances changed in place by ``change``."""
    import shutil

    shutil.copytree(src, dst)
    z = dict(np.load(dst / "result.npz"))
    z["abundances"] = z["abundances"].copy()
    change(z["abundances"])
    np.savez(dst / "result.npz", **z)
    return dst


@pytest.mark.parametrize("side", ["estimate", "truth"])
def test_one_abundance_map_all_nan_is_scored_as_such(run_cli, run, tmp_path, side):
    """One endmember's map NaN at every pixel (a failed endmember, in the result or the truth)
    made every pixel invalid, and evaluate stopped with 'abundances: no valid pixel to compare
    (all masked or NaN)', naming no file, though the other maps score fine. They are scored;
    the NaN map is named, with no score of its own and no overall one."""
    out, E, A = run
    truth = tmp_path / "end3.mat"
    scipy.io.savemat(truth, {"M": E.T, "A": _zhu(A)})
    good = _scores(run_cli, truth, out)
    est = out
    if side == "estimate":
        est = _with_maps(out, tmp_path / "bad", lambda a: a.__setitem__((..., 1), np.nan))
    else:
        A_bad = A.copy()
        A_bad[..., 1] = np.nan
        scipy.io.savemat(truth, {"M": E.T, "A": _zhu(A_bad)})
    r = _scores(run_cli, truth, est)
    assert r["abundance_undefined"] == ["em2"]
    assert r["abundance_rmse_percent"] is None and r["sre_db"] is None and r["ssim_mean"] is None
    rows = {row["name"]: row for row in r["per_endmember"]}
    assert rows["em2"]["abundance_rmse_percent"] is None and rows["em2"]["ssim"] is None
    for row in good["per_endmember"]:
        if row["name"] != "em2":  # the others as without the NaN map: the same pixels, the same scores
            assert rows[row["name"]]["abundance_rmse_percent"] == pytest.approx(row["abundance_rmse_percent"])
            assert rows[row["name"]]["ssim"] == pytest.approx(row["ssim"])
    assert r["sad_deg_mean"] == pytest.approx(good["sad_deg_mean"])  # spectra are unaffected
    code, stdout, _ = run_cli("evaluate", "--truth", truth, "--estimate", est, "--save", tmp_path / "s.json")
    assert code == 0 and "at every pixel" in stdout and "em2" in stdout.split("at every pixel")[1], stdout


@pytest.mark.parametrize("side", ["estimate", "truth"])
@pytest.mark.parametrize("align", [(), ("--align", "sad")])
def test_abundances_all_nan_are_refused_naming_the_file(run_cli, run, tmp_path, side, align):
    """Every map NaN: nothing to match or score on. The error named no file ('abundances: no
    valid pixel to compare'); it names the file and what it expects, and writes no scores."""
    out, E, A = run
    truth = tmp_path / "end3.mat"
    est = out
    if side == "estimate":
        est = _with_maps(out, tmp_path / "bad", lambda a: a.fill(np.nan))
        scipy.io.savemat(truth, {"M": E.T, "A": _zhu(A)})
    else:
        scipy.io.savemat(truth, {"M": E.T, "A": _zhu(np.full_like(A, np.nan))})
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", est, *align)
    named = str(est) if side == "estimate" else str(truth)
    assert code == 2 and len(err.strip().splitlines()) == 1 and not stdout, err
    assert err.startswith(f"error: {named}: abundances are NaN at every valid pixel in every map; expected"), err
    assert not (est / "evaluation.json").exists()


def test_evaluate_matches_and_scores_around_a_map_all_nan():
    """The library: an estimate in another order with one map NaN everywhere is still matched
    on its finite maps, those are scored, and the uncertainty is scored per endmember only."""
    from unmixgen.evaluate.unmixing import evaluate

    rng = np.random.default_rng(0)
    A = rng.dirichlet(np.ones(3), size=(12, 14)).astype(np.float64)
    est = A[..., [2, 0, 1]] + rng.normal(0, 0.01, A.shape)
    est[..., 1] = np.nan  # the estimate of reference 0
    std = np.full(A.shape, 0.02)
    r = evaluate(abundances=est, ref_abundances=A,
                 uncertainty={"std": std, "q05": est - 0.05, "q95": est + 0.05})
    assert r["permutation"][1:] == [2, 0] and r["abundance_undefined"] == ["em1"]
    rmse = [row["abundance_rmse_percent"] for row in r["per_endmember"]]
    assert rmse[0] is None and all(0.5 < v < 1.5 for v in rmse[1:])  # the 1 % noise, in percent
    assert r["abundance_rmse_percent"] is None and "coverage90" not in r and "em1" in r["uncertainty_note"]
    cover = [row["coverage90"] for row in r["per_endmember"]]
    assert cover[0] is None and all(v > 0.99 for v in cover[1:])
    with pytest.raises(InputError, match=r"^abundances: every map is NaN"):
        evaluate(abundances=np.full_like(A, np.nan), ref_abundances=A)


# -- hunt 51: the pixel-order check sums a block of pixels at a time, with the same decisions ----------
def _matched_reference(est, ref, mask):
    """The check's score as it was computed: whole-map float64 matching, then the RMSE."""
    from unmixgen.evaluate.unmixing import abundance_rmse, match_endmembers

    perm = match_endmembers(est, ref, by="abundance", mask=mask)
    hit = np.flatnonzero(perm >= 0)
    return abundance_rmse(np.asarray(est)[..., perm[hit]], ref[..., hit], mask)[0]


@pytest.mark.parametrize("case", ["plain", "masked", "nan_pixels", "dead_map", "more_estimates", "fewer_estimates"])
@pytest.mark.parametrize("block", [7, 64, 1 << 16])
def test_blockwise_matched_rmse_is_the_whole_map_one(case, block):
    from unmixgen.evaluate.unmixing import matched_abundance_rmse

    rng = np.random.default_rng(["plain", "masked", "nan_pixels", "dead_map", "more_estimates",
                                 "fewer_estimates"].index(case))
    ref = rng.dirichlet(np.ones(4), size=(13, 11)).astype(np.float32)
    est = np.clip(ref[..., ::-1] + rng.normal(0, 0.05, ref.shape), 0, 1).astype(np.float32)
    mask = None
    if case == "masked":
        mask = rng.random((13, 11)) > 0.3
    if case == "nan_pixels":
        est[2:4, 5] = np.nan
        ref[7, :3] = np.nan
        mask = np.ones((13, 11), bool)
    if case == "dead_map":  # a failed endmember, left unmatched
        est = np.concatenate([est, np.full((13, 11, 1), np.nan, np.float32)], axis=-1)
    if case == "more_estimates":
        est = np.concatenate([est, rng.random((13, 11, 2)).astype(np.float32)], axis=-1)
    if case == "fewer_estimates":
        est = est[..., :2]
    got = matched_abundance_rmse(est, ref, mask, block=block)
    assert got == pytest.approx(_matched_reference(est, ref, mask), rel=1e-12)


def test_blockwise_matched_rmse_refuses_what_the_whole_map_one_refuses():
    from unmixgen.evaluate.unmixing import match_endmembers, matched_abundance_rmse

    ref = np.random.default_rng(0).dirichlet(np.ones(3), size=(5, 6)).astype(np.float32)
    cases = [(np.full_like(ref, np.nan), ref, None), (ref, ref, np.zeros((5, 6), bool)),
             (ref, ref, np.ones(7, bool)), (ref, ref[:4], None)]
    for est, r, mask in cases:
        with pytest.raises(InputError) as want:
            match_endmembers(est, r, by="abundance", mask=mask)
        with pytest.raises(InputError) as got:
            matched_abundance_rmse(est, r, mask, block=4)
        assert str(got.value) == str(want.value)


# maps stored as maps (order None): only a square scene's transpose is checked
@pytest.mark.parametrize(("shape", "order"), [((24, 24), "F"), ((24, 24), "C"), ((24, 24), None),
                                              ((18, 29), "F"), ((18, 29), "C")])
@pytest.mark.parametrize("quality", [0.01, 0.08, 0.3])
@pytest.mark.parametrize("wrong", [False, True])
def test_pixel_order_decisions_are_unchanged(shape, order, quality, wrong):
    from unmixgen.runs.truth import ORIENTATION_MARGIN, ORIENTATION_RATIO, truth_orientation
    from unmixgen.scene import GroundTruth

    rows, cols = shape
    rng = np.random.default_rng(rows * cols + int(100 * quality))
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    smooth = np.stack([np.sin(3 * yy + k) + np.cos(4 * xx - k) for k in range(3)], axis=-1)
    truth = np.exp(2 * smooth)
    truth = (truth / truth.sum(-1, keepdims=True)).astype(np.float32)
    est = np.clip(truth + rng.normal(0, quality, truth.shape), 0, 1).astype(np.float32)
    mask = rng.random(shape) > 0.05
    read = truth
    if wrong:  # the truth as a reader in the wrong order gives it
        read = (truth.transpose(1, 0, 2) if order is None else
                truth.reshape(-1, 3, order="F" if order == "C" else "C").reshape(truth.shape, order=order))
    gt = GroundTruth(abundances=np.ascontiguousarray(read), pixel_order=order, source="t")
    alt = (read.transpose(1, 0, 2) if order is None else
           read.reshape(-1, 3, order=order).reshape(truth.shape, order="C" if order == "F" else "F"))
    as_read, other_way = _matched_reference(est, read, mask), _matched_reference(est, alt, mask)
    flagged = other_way <= ORIENTATION_RATIO * as_read and as_read - other_way >= ORIENTATION_MARGIN
    assert (truth_orientation(gt, est, mask) is not None) == flagged
    if quality < 0.05:  # a good estimate: a wrong order is caught, a right one is not
        assert flagged == wrong


def test_blockwise_matched_rmse_names_a_block_size_below_one():
    # block=0 made empty blocks: every map looked NaN, "every map of the estimate is NaN" was said of good maps
    from unmixgen.errors import ParameterError
    from unmixgen.evaluate.unmixing import matched_abundance_rmse

    ref = np.random.default_rng(0).dirichlet(np.ones(3), size=(5, 6)).astype(np.float32)
    for block in (0, -4, 2.5):
        with pytest.raises(ParameterError, match=f"block={block}"):
            matched_abundance_rmse(ref, ref, block=block)
    assert matched_abundance_rmse(ref, ref, block=1) == 0.0
