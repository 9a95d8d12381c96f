"""`unmixgen unmix` and `unmixgen evaluate` end to end on small synthetic scenes."""

import json

import numpy as np
import pytest

from unmixgen.io import read_scene, write_scene
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import make_scene
from unmixgen.unmix.inversion import fcls


@pytest.fixture
def scene_file(tmp_path):
    """A non-square 24x37 scene with 3 endmembers, pure pixels, two invalid pixels, truth attached."""
    s = make_scene(rows=24, cols=37, p=3, snr_db=40, seed=3)
    cube = s.load().copy()
    cube[2, 5] = np.nan
    cube[20, 30] = 0
    scene = Scene(cube, wavelengths=s.wavelengths, truth=s.truth,
                  crs="EPSG:32633", transform=(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0))
    path = tmp_path / "scene.npz"
    write_scene(scene, path)
    return path, s


def test_blind_unmix_writes_the_output_folder(run_cli, scene_file, tmp_path):
    path, truth_scene = scene_file
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--endmembers", "3", "--method", "vca", "--out", out, "--no-figures")
    assert code == 0, err
    with np.load(out / "result.npz") as r:
        E, A, mask, wl = r["endmembers"], r["abundances"], r["mask"], r["wavelengths"]
    assert E.shape == (3, truth_scene.bands) and A.shape == (24, 37, 3)
    assert not mask[2, 5] and not mask[20, 30] and mask.sum() == 24 * 37 - 2
    assert np.isnan(A[2, 5]).all() and np.isnan(A[20, 30]).all()
    valid = A[mask]
    assert (valid >= -1e-6).all() and np.allclose(valid.sum(-1), 1, atol=1e-5)
    assert np.allclose(wl, truth_scene.wavelengths)
    # the maps keep the input's georeferencing
    maps = read_scene(out / "abundances.tif")
    assert maps.crs is not None and "32633" in maps.crs
    assert np.allclose(maps.transform, (30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0))
    assert np.allclose(maps.load()[mask], valid, atol=1e-6)
    header = (out / "endmembers.csv").read_text().splitlines()[0]
    assert header.startswith("wavelength_nm,")
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == "vca" and run["seed"] == 0
    assert {"read", "write"} <= set(run["timings_s"])
    # truth travelled with the .npz, so metrics are in run.json; VCA on 40 dB pure pixels is close
    assert run["metrics"]["sad_deg_mean"] < 3.0


@pytest.mark.parametrize("method", ["fcls", "scaled"])
def test_given_endmembers_match_the_inverter_called_directly(run_cli, scene_file, tmp_path, method):
    from unmixgen.unmix.inversion import invert

    path, s = scene_file
    first = tmp_path / "blind"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", first, "--no-figures")[0] == 0
    out = tmp_path / "given"
    code, _, err = run_cli("unmix", path, "--endmembers-file", first / "endmembers.csv",
                           "--method", method, "--out", out, "--no-figures")
    assert code == 0, err
    with np.load(out / "result.npz") as r:
        A, mask = r["abundances"], r["mask"]
    with np.load(first / "result.npz") as r:
        E = r["endmembers"]
    Y = read_scene(path).valid_pixels()
    ref = invert(Y, E, method)
    assert np.abs(A[mask] - ref).max() < 1e-4
    assert np.allclose(A[mask].sum(-1), 1, atol=1e-5)  # both keep abundances on the simplex
    # the scaled model's maps are fractions: the run folder also holds each pixel's brightness
    # (the NNLS sum), so that brightness * (a E) reconstructs the pixel
    assert (out / "brightness.tif").exists() == (method == "scaled")
    if method == "scaled":
        from scipy.optimize import nnls as scipy_nnls

        with np.load(out / "result.npz") as r:
            b = r["brightness"]
        sums = [scipy_nnls(E.T.astype(np.float64), y.astype(np.float64))[0].sum() for y in Y[:50]]
        np.testing.assert_allclose(b[mask][:50], sums, rtol=1e-3)
        assert np.allclose(read_scene(out / "brightness.tif").load()[..., 0][mask], b[mask])
        run = json.loads((out / "run.json").read_text())
        assert run["brightness"]["median"] == pytest.approx(float(np.median(b[mask])))
        assert run["brightness"]["file"] == "brightness.tif"


def test_endmember_file_without_overlap_is_refused(run_cli, scene_file, tmp_path):
    path, s = scene_file
    csv = tmp_path / "far.csv"
    wl = np.linspace(3000, 4000, 20)
    csv.write_text("wavelength_nm,a,b\n" + "\n".join(f"{w},{0.1},{0.2}" for w in wl))
    out = tmp_path / "x"
    code, _, err = run_cli("unmix", path, "--endmembers-file", csv, "--out", out)
    assert code == 2 and "do not overlap" in err and "far.csv" in err
    assert not out.exists()


@pytest.mark.parametrize("p, message", [("1", "expected >= 2"), ("500", "exceeds"), ("three", "not a number"),
                                        ("12.5", "'12.5' is not a whole number")])
def test_bad_endmember_counts(run_cli, scene_file, tmp_path, p, message):
    path, _ = scene_file
    code, _, err = run_cli("unmix", path, "--endmembers", p, "--out", tmp_path / "o")
    assert code == 2 and message in err and "--endmembers" in err
    assert len(err.strip().splitlines()) == 1


def test_constant_scene_is_refused(run_cli, tmp_path):
    path = tmp_path / "flat.npy"
    np.save(path, np.full((6, 9, 12), 0.3, np.float32))
    code, _, err = run_cli("unmix", path, "--endmembers", "2", "--out", tmp_path / "o")
    assert code == 2 and "constant" in err


def test_existing_output_needs_overwrite(run_cli, scene_file, tmp_path):
    path, _ = scene_file
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run_cli("unmix", path, "-p", "3", "--out", out)
    assert code == 2 and "--overwrite" in err
    assert (out / "keep.txt").read_text() == "mine"


def test_evaluate_matches_metrics_on_truth(run_cli, scene_file, tmp_path):
    path, s = scene_file
    out = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", out, "--no-figures")[0] == 0
    truth = tmp_path / "truth.npz"
    np.savez(truth, endmembers=s.truth.endmembers, abundances=s.truth.abundances)
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", out, "--json")
    assert code == 0, err
    res = json.loads(stdout)
    run = json.loads((out / "run.json").read_text())
    assert res["abundance_rmse_percent"] == pytest.approx(run["metrics"]["abundance_rmse_percent"], rel=1e-6)
    assert (out / "evaluation.json").is_file()
    # the calls after the first read what they print or save: no figures (~0.8 s each), the first drew them
    code, stdout, _ = run_cli("evaluate", "--truth", truth, "--estimate", out, "--no-figures")
    assert code == 0 and "SAD" in stdout
    code, stdout, _ = run_cli("evaluate", "--truth", truth, "--estimate", out, "--align", "both", "--json",
                              "--no-figures")
    assert code == 0 and json.loads(stdout)["alignment"] == "both"
    code, _, err = run_cli("evaluate", "--truth", truth, "--estimate", out, "--align", "names")
    assert code == 2 and "--align names: expected 'abundance', 'sad' or 'both'" in err
    # --save never overwrites an input: only a .json of its own
    before = truth.read_bytes()
    run_json = (out / "run.json").read_bytes()
    for target in (truth, out / "result.npz", out, out / "run.json"):
        code, _, err = run_cli("evaluate", "--truth", truth, "--estimate", out, "--save", target)
        assert code == 2 and "--save" in err, err
    assert truth.read_bytes() == before and (out / "result.npz").is_file()
    assert (out / "run.json").read_bytes() == run_json
    code, _, err = run_cli("evaluate", "--truth", truth, "--estimate", out, "--save", tmp_path / "scores.json",
                          "--no-figures")
    assert code == 0 and json.loads((tmp_path / "scores.json").read_text())["alignment"] == "abundance"



def test_evaluate_save_never_overwrites_the_truth_or_a_result_given_as_its_npz(run_cli, scene_file, tmp_path):
    # --save was checked against the --estimate folder only: it replaced the run.json of a truth
    # result folder, and that of an estimate given as its result.npz
    path, _ = scene_file
    runs = [tmp_path / "a", tmp_path / "b"]
    for out, method in zip(runs, ("vca", "nfindr"), strict=True):
        assert run_cli("unmix", path, "-p", "3", "--method", method, "--out", out, "--no-figures")[0] == 0
    a, b = runs
    before = {p: p.read_bytes() for r in runs for p in r.iterdir()}
    for truth, estimate, target in ((a, b, a / "run.json"), (a, b, a / "scores.json"),
                                    (a, b / "result.npz", b / "run.json"),
                                    (a / "result.npz", b, a / "run.json")):
        code, _, err = run_cli("evaluate", "--truth", truth, "--estimate", estimate, "--save", target)
        assert code == 2 and "--save" in err and len(err.strip().splitlines()) == 1, (truth, estimate, target, err)
    assert {p: p.read_bytes() for r in runs for p in r.iterdir()} == before
    code, _, err = run_cli("evaluate", "--truth", a, "--estimate", b / "result.npz", "--save", b / "evaluation.json")
    assert code == 0 and (b / "evaluation.json").is_file(), err


def test_a_run_inside_a_result_folder_it_reads_is_refused(run_cli, scene_file, tmp_path):
    # --endmembers-file run --out run/fcls wrote into the input folder (and a later
    # 'unmix --out run --overwrite' deleted that output with it)
    path, _ = scene_file
    run = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", run, "--no-figures")[0] == 0
    before = sorted(p.name for p in run.iterdir())
    for extra in (("--endmembers-file", run), ("-p", "3", "--truth", run)):
        code, _, err = run_cli("unmix", path, *extra, "--out", run / "sub", "--no-figures")
        assert code == 2 and "inside the input folder" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in run.iterdir()) == before

def test_bad_bands_are_left_out_of_the_spectral_scores(run_cli, scene_file, tmp_path):
    """A scene whose bad bands (bbl) hold garbage: the endmembers there are fitted to that
    garbage, so SAD against the truth is scored on the good bands only, in run.json and by
    evaluate alike (it was tens of degrees with near-perfect abundances)."""
    _, s = scene_file
    cube = s.load().copy()
    bad = np.zeros(s.bands, bool)
    bad[[3, 7]] = True
    cube[..., 3], cube[..., 7] = 0.0, 5.0
    path = tmp_path / "bbl.npz"
    write_scene(Scene(cube, wavelengths=s.wavelengths, good_bands=~bad), path)
    truth = tmp_path / "truth.npz"
    np.savez(truth, endmembers=s.truth.endmembers, abundances=s.truth.abundances)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "-p", "3", "--method", "vca", "--truth", truth, "--out", out,
                           "--no-figures")
    assert code == 0, err
    metrics = json.loads((out / "run.json").read_text())["metrics"]
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", out, "--json")
    assert code == 0, err
    scores = json.loads(stdout)
    for res in (metrics, scores):
        assert res["bands_compared"] == s.bands - 2 and res["sad_deg_mean"] < 5, res
    assert scores["sad_deg_mean"] == pytest.approx(metrics["sad_deg_mean"], rel=1e-6)


@pytest.mark.parametrize("content", [
    {"endmembers": "1-d"}, {"abundances": "1-d"}, {"endmembers": "text"}, {"abundances": "text"},
    {"endmembers": "complex"}, {"endmembers": "nan"}, {"endmembers": "none"}, {"abundances": "none"},
    {"names": "short"},
])
def test_malformed_truth_npz_is_one_line_naming_the_file(run_cli, scene_file, tmp_path, content):
    """Every array of a ground-truth .npz is checked before use: a malformed one is exit 2
    naming the file (it was an internal error, or a complex value silently made real)."""
    path, s = scene_file
    e, a = s.truth.endmembers, s.truth.abundances
    bad = {"1-d": lambda x: x.ravel(), "text": lambda x: np.full(x.shape, "x"),
           "complex": lambda x: x.astype(complex), "nan": lambda x: np.full(x.shape, np.nan),
           "none": lambda x: x[..., :0] if x is a else x[:0]}
    arrays = {"endmembers": e, "abundances": a}
    for key, how in content.items():
        if key == "names":
            arrays["names"] = np.array(["one", "two"])
        else:
            arrays[key] = bad[how](arrays[key])
    truth = tmp_path / "truth.npz"
    np.savez(truth, **arrays)
    out = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", out, "--no-figures")[0] == 0
    for args in (("evaluate", "--truth", truth, "--estimate", out),
                 ("unmix", path, "-p", "3", "--method", "vca", "--truth", truth, "--out", tmp_path / "o2")):
        code, _, err = run_cli(*args)
        assert code == 2 and "truth.npz" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o2").exists()


def test_summary_line_survives_metrics_that_could_not_be_computed(run_cli, scene_file, tmp_path):
    """A truth whose scores come out NaN (null in run.json) must not turn a finished run
    into an internal error after its folder was written."""
    path, s = scene_file
    e = s.truth.endmembers.copy()
    e[:, 2] = np.nan  # a reference (a result folder) with an undefined band
    ref = tmp_path / "ref"
    ref.mkdir()
    np.savez(ref / "result.npz", endmembers=e, abundances=s.truth.abundances, mask=np.ones(s.shape[:2], bool))
    code, stdout, err = run_cli("unmix", path, "-p", "3", "--method", "vca", "--truth", ref,
                                "--out", tmp_path / "run", "--no-figures")
    assert code == 0 and "abundance RMSE" in " ".join(stdout.split()), err


def test_truth_wavelengths_put_its_spectra_on_the_estimate_bands(run_cli, scene_file, tmp_path):
    """A truth .npz carries its spectra's wavelengths: they were ignored, so spectra listed from
    long to short wavelengths (or in um, or on other bands) were scored band by band against
    the estimate's (SAD of tens of degrees for a perfect answer). Now they are put in increasing
    order, and truth on other bands is refused, by evaluate and unmix --truth alike."""
    path, s = scene_file
    E, A, wl = s.truth.endmembers, s.truth.abundances, s.wavelengths
    out = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", out, "--no-figures")[0] == 0
    forms = {"plain.npz": (E, wl), "down.npz": (E[:, ::-1], wl[::-1]), "um.npz": (E, wl / 1000)}
    scores = {}
    for name, (e, w) in forms.items():
        np.savez(tmp_path / name, endmembers=e, abundances=A, wavelengths=w)
        # figures (~0.8 s a call) for the reversed truth only: the scores are what the others check
        figures = () if name == "down.npz" else ("--no-figures",)
        code, stdout, err = run_cli("evaluate", "--truth", tmp_path / name, "--estimate", out, "--json", *figures)
        assert code == 0, err
        scores[name] = json.loads(stdout)["sad_deg_mean"]
    assert scores["down.npz"] == pytest.approx(scores["plain.npz"]) == scores["um.npz"]
    code, _, err = run_cli("unmix", path, "-p", "3", "--method", "vca", "--truth", tmp_path / "down.npz",
                           "--out", tmp_path / "run2", "--no-figures")
    assert code == 0, err
    sad = json.loads((tmp_path / "run2" / "run.json").read_text())["metrics"]["sad_deg_mean"]
    assert sad == pytest.approx(scores["plain.npz"])
    np.savez(tmp_path / "other.npz", endmembers=E, abundances=A, wavelengths=wl + 300)
    for args in (("evaluate", "--truth", tmp_path / "other.npz", "--estimate", out),
                 ("unmix", path, "-p", "3", "--truth", tmp_path / "other.npz", "--out", tmp_path / "run3")):
        code, _, err = run_cli(*args)
        assert code == 2 and "other.npz" in err and "nm" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run3").exists()


def test_truth_npz_maps_in_the_layouts_the_mat_reader_takes(run_cli, scene_file, tmp_path):
    """Truth maps as (p, rows, cols) (channels first, as torch keeps them) or (pixels, p) in an
    .npz: the .mat reader takes both, the .npz one refused them with a misleading line ("3
    endmembers but 37 abundance maps"). They score as (rows, cols, p) does."""
    path, s = scene_file
    E, A = s.truth.endmembers, s.truth.abundances
    out = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", out, "--no-figures")[0] == 0
    forms = {"rcp.npz": A, "prc.npz": A.transpose(2, 0, 1), "np.npz": A.reshape(-1, 3, order="F")}
    scores = {}
    for name, a in forms.items():
        np.savez(tmp_path / name, endmembers=E, abundances=a)
        # figures (~0.8 s a call) for the flat truth only: the scores are what the others check
        figures = () if name == "np.npz" else ("--no-figures",)
        code, stdout, err = run_cli("evaluate", "--truth", tmp_path / name, "--estimate", out, "--json", *figures)
        assert code == 0, (name, err)
        scores[name] = json.loads(stdout)["abundance_rmse_percent"]
    assert scores["prc.npz"] == scores["rcp.npz"] == scores["np.npz"]


def test_evaluate_refuses_mismatched_truth(run_cli, scene_file, tmp_path):
    path, _ = scene_file
    out = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", out, "--no-figures")[0] == 0
    truth = tmp_path / "truth.npz"
    np.savez(truth, abundances=np.full((10, 10, 3), 1 / 3))
    code, _, err = run_cli("evaluate", "--truth", truth, "--estimate", out)
    assert code == 2 and "truth.npz" in err


def test_evaluate_estimate_that_is_a_scene_file_not_a_result_is_one_line(run_cli, scene_file, tmp_path):
    """--estimate given a scene (.npy, .hdr) instead of a result folder: exit 2 naming it, not
    an internal error or numpy's pickle advice."""
    path, _ = scene_file
    npy = tmp_path / "cube.npy"
    np.save(npy, np.zeros((4, 5, 6), np.float32))
    hdr = tmp_path / "scene.hdr"
    hdr.write_text("ENVI\nsamples = 5\n")
    for estimate in (npy, hdr):
        code, _, err = run_cli("evaluate", "--truth", path, "--estimate", estimate)
        assert code == 2 and str(estimate) in err and "not a result folder" in err, err
        assert "pickle" not in err and len(err.strip().splitlines()) == 1, err


def test_unmix_without_endmembers_or_with_an_unknown_method_says_so(run_cli, scene_file, tmp_path):
    path, _ = scene_file
    for args, message in ((("--out", tmp_path / "o"), "no endmembers asked for"),
                          (("-m", "bogus", "--out", tmp_path / "o"), "--method bogus")):
        code, _, err = run_cli("unmix", path, *args)
        assert code == 2 and message in err and "None" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_inversion_warnings_are_kept_in_the_run_record(run_cli, scene_file, tmp_path, monkeypatch):
    import warnings

    import unmixgen.unmix.inversion as inversion
    from unmixgen.errors import ConvergenceWarning

    path, s = scene_file
    np.savez(tmp_path / "E.npz", endmembers=s.truth.endmembers, wavelengths=s.wavelengths)
    real = inversion.invert_scene

    def warns(*args, **kw):
        warnings.warn("fcls: 2 of 90 pixels did not meet the KKT conditions", ConvergenceWarning, stacklevel=2)
        return real(*args, **kw)

    monkeypatch.setattr(inversion, "invert_scene", warns)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "E.npz", "--out", out, "--no-figures")
    assert code == 0 and "KKT" in err, err
    assert any("KKT" in w for w in json.loads((out / "run.json").read_text())["warnings"])


def test_endmembers_covering_part_of_the_scene_use_only_those_bands(run_cli, scene_file, tmp_path):
    path, s = scene_file
    wl = s.wavelengths
    keep = wl <= 1500  # the endmember file stops at 1500 nm
    csv = tmp_path / "part.csv"
    E = s.truth.endmembers[:, keep]
    csv.write_text("wavelength_nm,a,b,c\n" + "\n".join(
        f"{w},{E[0, i]},{E[1, i]},{E[2, i]}" for i, w in enumerate(wl[keep])))
    out = tmp_path / "part"
    code, _, err = run_cli("unmix", path, "--endmembers-file", csv, "--out", out, "--no-figures")
    assert code == 0, err
    assert "outside the endmembers' wavelengths" in err
    run = json.loads((out / "run.json").read_text())
    assert run["bands_used"] == int(keep.sum())
    with np.load(out / "result.npz") as r:
        A, mask = r["abundances"], r["mask"]
    ref = fcls(read_scene(path).valid_pixels()[:, keep], E)
    assert np.abs(A[mask] - ref).max() < 1e-4
    with np.load(out / "result.npz") as r:  # not known beyond the file's range: NaN, not zeros
        assert np.isnan(r["endmembers"][:, ~keep]).all() and np.isfinite(r["endmembers"][:, keep]).all()
    # scored against the truth on the bands the endmembers cover, not turned into NaN
    out2 = tmp_path / "part_truth"
    code, _, err = run_cli("unmix", path, "--endmembers-file", csv, "--truth", path, "--out", out2, "--no-figures")
    assert code == 0, err
    metrics = json.loads((out2 / "run.json").read_text())["metrics"]
    assert metrics["bands_compared"] == int(keep.sum()) and metrics["sad_deg_mean"] < 1e-3
    assert np.isfinite(metrics["psnr_db"])


def test_given_endmembers_never_load_the_whole_cube(run_cli, tmp_path, monkeypatch):
    """`unmix --endmembers-file` (figures on, the default) reads the cube tile by tile only."""
    from unmixgen.runs.folder import write_endmembers_csv
    from unmixgen.scene import ArraySource

    # taller than every tile (mask 512, inversion 256, figures 512): a whole-cube read shows
    s = make_scene(rows=520, cols=48, bands=30, p=3, snr_db=40, seed=5)
    cube = s.load().copy()
    cube[510, 3] = np.nan
    path = tmp_path / "tall.hdr"
    write_scene(Scene(cube, wavelengths=s.wavelengths), path)  # ENVI: memory-mapped, read lazily
    csv = tmp_path / "em.csv"
    write_endmembers_csv(csv, s.truth.endmembers, s.wavelengths)

    largest = []
    real_read = ArraySource.read

    def recording_read(self, rows, cols):
        r0, r1, c0, c1 = rows.indices(self.shape[0])[:2] + cols.indices(self.shape[1])[:2]
        largest.append((r1 - r0) * (c1 - c0))
        return real_read(self, rows, cols)

    def no_load(self):
        raise AssertionError("Scene.load() called: the whole cube would be in memory")

    monkeypatch.setattr(ArraySource, "read", recording_read)
    monkeypatch.setattr(Scene, "load", no_load)
    out = tmp_path / "given"
    code, _, err = run_cli("unmix", path, "--endmembers-file", csv, "--out", out, "--no-figures")
    assert code == 0, err
    assert largest and max(largest) < 520 * 48
    monkeypatch.undo()
    with np.load(out / "result.npz") as r:
        A, mask = r["abundances"], r["mask"]
    assert not mask[510, 3] and np.isnan(A[510, 3]).all()
    ref = fcls(cube[mask], s.truth.endmembers)
    assert np.abs(A[mask] - ref).max() < 1e-4


def test_rgb_figure_of_an_unloaded_scene_reads_tiles(tmp_path, monkeypatch):
    """The one figure of `unmix` that reads the cube (rgb.png) does so tile by tile."""
    from recording_source import RecordingSource
    from unmixgen.report.figures import plot_rgb

    cube = np.random.default_rng(0).uniform(0.1, 1.0, (520, 48, 12))
    src = RecordingSource(cube)
    scene = Scene(src, wavelengths=np.linspace(400, 1000, 12))
    monkeypatch.setattr(Scene, "load", lambda self: pytest.fail("plot_rgb loaded the whole cube"))
    plot_rgb(scene, tmp_path / "rgb.png")
    assert (tmp_path / "rgb.png").stat().st_size > 0
    assert 0 < src.largest_window() < 520 * 48


def test_auto_endmembers_records_the_estimate_and_its_figure(run_cli, scene_file, tmp_path):
    path, _ = scene_file
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--endmembers", "auto", "--method", "vca", "--out", out)
    assert code == 0, err
    run = json.loads((out / "run.json").read_text())
    est = run["rank_estimate"]
    assert run["n_endmembers"] == est["n_endmembers"] == 3
    assert (out / "rank_eigenvalues.png").stat().st_size > 1000


def test_bad_endmember_npz_files_are_one_line_errors(run_cli, scene_file, tmp_path):
    path, _ = scene_file
    e = np.random.default_rng(0).random((3, 4)).astype(np.float32) + 0.1
    bad = {
        "unsorted.npz": {"endmembers": e, "wavelengths": np.array([500.0, 400.0, 600.0, 700.0])},
        "short.npz": {"endmembers": e, "wavelengths": np.array([400.0, 500.0])},
        "nan.npz": {"endmembers": np.where(np.eye(3, 4, dtype=bool), np.nan, e)},
    }
    for name, arrays in bad.items():
        np.savez(tmp_path / name, **arrays)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    for name in [*bad, "broken.npz"]:
        code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / name, "--out", tmp_path / "o")
        assert code == 2 and name in err and len(err.strip().splitlines()) == 1, (name, err)
    assert not (tmp_path / "o").exists()


def test_bad_endmember_csv_files_are_one_line_errors(run_cli, scene_file, tmp_path):
    """Ragged rows, infinite values and NaN wavelengths are refused naming the file and the row."""
    path, _ = scene_file
    good_rows = ["wavelength,a,b", "400,0.1,0.2", "500,0.2,0.3", "600,0.3,0.4"]
    bad = {
        "ragged.csv": (good_rows[:2] + ["500,0.2"] + good_rows[3:], "row 3 has 2 values; expected 3"),
        "nan_wavelength.csv": (good_rows[:3] + ["nan,0.3,0.4"], "row 4 holds infinity or a NaN wavelength"),
        "inf.csv": (good_rows[:2] + ["500,0.2,inf"] + good_rows[3:], "row 3 holds infinity or a NaN wavelength"),
        # two rows swapped; a file without its wavelength column (the first spectrum read as one)
        "swapped.csv": (good_rows[:1] + good_rows[2:3] + good_rows[1:2] + good_rows[3:], "does not increase at row 3"),
        "no_wavelengths.csv": (["a,b,c", "0.3,0.2,0.1", "0.1,0.3,0.2", "0.2,0.4,0.3"], "does not increase at row 3"),
        "one.csv": (["wavelength,a", "400,0.1", "500,0.2", "600,0.3"], "expected at least 2"),
    }
    for name, (rows, message) in bad.items():
        (tmp_path / name).write_text("\n".join(rows) + "\n")
        code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / name, "--out", tmp_path / "o")
        assert code == 2 and name in err and message in err and len(err.strip().splitlines()) == 1, (name, err)
    assert not (tmp_path / "o").exists()


def test_a_run_whose_endmembers_miss_bands_reads_back_as_an_endmember_source(run_cli, scene_file, tmp_path):
    # endmembers covering part of the scene's bands leave NaN on the others in the run's
    # endmembers.csv; that file was refused as a source ("row N holds NaN or infinity")
    from unmixgen.runs.folder import read_endmembers_csv

    path, truth_scene = scene_file
    E, wl = truth_scene.truth.endmembers, truth_scene.wavelengths
    keep = slice(0, 2 * len(wl) // 3)
    rows = ["wavelength_nm," + ",".join(f"m{i}" for i in range(len(E)))]
    rows += [f"{w:g}," + ",".join(f"{v:.8g}" for v in E[:, b]) for b, w in enumerate(wl[keep])]
    (tmp_path / "part.csv").write_text("\n".join(rows) + "\n")
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "part.csv", "--out", tmp_path / "r1")
    assert code == 0, err
    written, wl_out, _ = read_endmembers_csv(tmp_path / "r1" / "endmembers.csv")
    assert np.isnan(written).any() and np.isfinite(written[:, keep]).all()
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "r1" / "endmembers.csv", "--out",
                           tmp_path / "r2")
    assert code == 0, err
    with np.load(tmp_path / "r1" / "result.npz") as a, np.load(tmp_path / "r2" / "result.npz") as b:
        np.testing.assert_allclose(b["abundances"], a["abundances"], atol=1e-5)


def test_endmember_csv_listed_from_long_to_short_wavelengths_reads_reversed(tmp_path):
    from unmixgen.runs.folder import read_endmembers_csv

    (tmp_path / "down.csv").write_text("wavelength,a,b\n600,0.3,0.4\n500,0.2,0.3\n400,0.1,0.2\n")
    E, wl, names = read_endmembers_csv(tmp_path / "down.csv")
    np.testing.assert_array_equal(wl, [400, 500, 600])
    np.testing.assert_allclose(E, [[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]])
    assert names == ["a", "b"]


def test_endmember_csv_with_a_byte_order_mark_or_other_bytes_is_read(tmp_path):
    # a spreadsheet's "CSV UTF-8" starts with a byte-order mark: its 'band' header read as
    # '\ufeffband' and the band numbers below were refused as micrometres; a name in Latin-1
    # raised UnicodeDecodeError (exit 1). Read as the wavelength files are: the mark dropped,
    # other bytes replaced
    from unmixgen.runs.folder import read_endmembers_csv

    (tmp_path / "bom.csv").write_text("band,a,b\n1,0.1,0.2\n2,0.2,0.3\n3,0.3,0.4\n", encoding="utf-8-sig")
    E, wl, names = read_endmembers_csv(tmp_path / "bom.csv")
    assert wl is None and names == ["a", "b"] and E.shape == (2, 3)
    (tmp_path / "latin.csv").write_bytes("wavelength_nm,sol,végétation\n400,0.1,0.2\n500,0.2,0.3\n"
                                         "600,0.3,0.4\n".encode("latin-1"))
    E, wl, names = read_endmembers_csv(tmp_path / "latin.csv")
    np.testing.assert_array_equal(wl, [400, 500, 600])
    assert names[0] == "sol" and names[1].startswith("v") and E.shape == (2, 3)


def test_endmember_csv_led_by_band_numbers_is_not_read_as_micrometres(run_cli, scene_file, tmp_path):
    """A first column of band numbers is never taken for band centres in um (1, 2, ... -> 1000 nm,
    2000 nm, ...: the spectra interpolated onto the wrong bands). Under a band-number header
    (``channel``, ``index``, ...) it is read as band numbers, the same run as with the
    wavelengths; under any other header (``wavelength``, pandas' empty index header) it is refused."""
    path, s = scene_file
    E, wl = s.truth.endmembers, s.wavelengths
    p, bands = E.shape

    def write(name, header, axis):
        rows = [",".join([header, *(f"em{i + 1}" for i in range(p))])]
        rows += [",".join([f"{axis[b]:.6g}", *(f"{E[i, b]:.8g}" for i in range(p))]) for b in range(bands)]
        (tmp_path / name).write_text("\n".join(rows) + "\n")

    write("wl.csv", "wavelength_nm", wl)
    assert run_cli("unmix", path, "--endmembers-file", tmp_path / "wl.csv", "--out", tmp_path / "ref",
                   "--no-figures")[0] == 0
    with np.load(tmp_path / "ref" / "result.npz") as r:
        ref, mask = r["abundances"], r["mask"]
    for header, start in (("channel", 1), ("band_index", 0)):
        write(f"{header}.csv", header, np.arange(start, start + bands))
        out = tmp_path / header
        code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / f"{header}.csv", "--out", out,
                               "--no-figures")
        assert code == 0, err
        with np.load(out / "result.npz") as r:
            assert np.abs(r["abundances"][mask] - ref[mask]).max() < 1e-5, header
    for header, start in (("wavelength", 1), ("", 0)):
        write("numbers.csv", header, np.arange(start, start + bands))
        code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "numbers.csv", "--out",
                               tmp_path / "o", "--no-figures")
        assert code == 2 and "numbers.csv" in err and "band numbers" in err, (header, err)
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_scaled_run_on_envi_input_writes_the_brightness_as_envi(run_cli, scene_file, tmp_path):
    path, _ = scene_file
    envi = tmp_path / "scene.hdr"
    write_scene(read_scene(path), envi)
    first = tmp_path / "blind"
    assert run_cli("unmix", envi, "-p", "3", "--method", "vca", "--out", first, "--no-figures")[0] == 0
    out = tmp_path / "scaled"
    code, _, err = run_cli("unmix", envi, "--endmembers-file", first / "endmembers.csv", "--method", "scaled",
                           "--out", out, "--no-figures")
    assert code == 0, err
    run = json.loads((out / "run.json").read_text())
    assert run["brightness"]["file"] == "brightness.hdr" and (out / "brightness.hdr").is_file()
    assert not (out / "brightness.tif").exists()
    with np.load(out / "result.npz") as r:
        b, mask = r["brightness"], r["mask"]
    np.testing.assert_allclose(read_scene(out / "brightness.hdr").load()[..., 0][mask], b[mask], rtol=1e-6)


@pytest.mark.parametrize("factor, method, warned", [(100.0, "fcls", True), (0.01, "fcls", True),
                                                    (1.0, "fcls", False), (100.0, "scaled", False)])
def test_endmembers_on_another_scale_are_named(run_cli, scene_file, tmp_path, factor, method, warned):
    # reflectance 0-1 endmembers on a percent scene: FCLS cannot absorb the factor
    path, s = scene_file
    np.savez(tmp_path / "E.npz", endmembers=s.truth.endmembers * factor, wavelengths=s.wavelengths)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "E.npz", "--method", method,
                           "--out", out, "--no-figures")
    assert code == 0, err
    notes = json.loads((out / "run.json").read_text())["warnings"]
    assert ("same scale" in err) is warned and any("same scale" in w for w in notes) is warned


@pytest.mark.parametrize("container", ["envi", "tif"])
def test_endmember_scale_check_leaves_a_scaled_products_nodata_out(run_cli, tmp_path, container):
    """Given endmembers are checked against the scene's median pixel; in a product that stores
    integers with a nodata value (ENVI reflectance scale factor, GeoTIFF scale/offset) the sample
    judged the scaled values against the stored nodata, so where most of the grid lies outside
    the swath the median pixel was the fill (-0.9999, -0.1) and the right endmembers were said to
    be on another scale."""
    from fixtures_io import write_envi, write_tif

    s = make_scene(rows=30, cols=40, p=3, snr_db=40, seed=3)
    stored = np.round(s.load() * 10000).astype(np.int32)
    outside = np.zeros((30, 40), bool)
    outside[:, :26] = True  # 65 % no-data
    if container == "envi":
        stored = stored.astype(np.int16)
        stored[outside] = -9999
        path = write_envi(tmp_path, stored, wavelengths=s.wavelengths,
                          extra={"reflectance scale factor": "10000", "data ignore value": "-9999"})
    else:
        stored = (stored + 1000).astype(np.uint16)
        stored[outside] = 0
        path = write_tif(tmp_path / "scene.tif", stored, nodata=0, band_tags=[{"wavelength": f"{w:g}"}
                         for w in s.wavelengths], scales=[1e-4] * s.bands, offsets=[-0.1] * s.bands)
    np.savez(tmp_path / "E.npz", endmembers=s.truth.endmembers, wavelengths=s.wavelengths)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "E.npz", "--out", out, "--no-figures")
    assert code == 0, err
    assert "same scale" not in err
    assert not any("same scale" in w for w in json.loads((out / "run.json").read_text())["warnings"])


def test_benchmark_endmember_mat_is_an_endmember_source(run_cli, scene_file, tmp_path):
    """A benchmark's reference endmembers (Samson's end3.mat layout: ``M`` (bands, p) and
    ``cood`` names, no wavelengths) unmix the scene as the same spectra in an .npz do; a
    .mat without such a matrix is one line naming the file."""
    from scipy.io import savemat

    path, s = scene_file
    E = np.asarray(s.truth.endmembers, np.float64)  # (p, bands)
    names = np.array(["Soil", "Tree", "Water"], dtype=object)
    savemat(tmp_path / "end3.mat", {"M": E.T, "cood": names})
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "end3.mat", "--out", tmp_path / "mat",
                           "--no-figures")
    assert code == 0, err
    with np.load(tmp_path / "mat" / "result.npz") as r:
        A, mask, E_run = r["abundances"], r["mask"], r["endmembers"]
    np.testing.assert_allclose(E_run, E, rtol=1e-6)
    ref = fcls(read_scene(path).valid_pixels(), E.astype(np.float32))
    assert np.abs(A[mask] - ref).max() < 1e-4
    assert (tmp_path / "mat" / "endmembers.csv").read_text().splitlines()[0].endswith(",Soil,Tree,Water")
    savemat(tmp_path / "other.mat", {"X": np.ones(3)})
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "other.mat", "--out", tmp_path / "o")
    assert code == 2 and "other.mat" in err and "no endmember matrix" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("case", ["zero", "duplicate"])
def test_degenerate_given_endmembers_are_refused(run_cli, scene_file, tmp_path, case):
    """A zero spectrum or two identical ones leave the abundances undetermined (FCLS split them
    arbitrarily, silently): one line naming the file and the endmembers, nothing written."""
    path, s = scene_file
    E = np.asarray(s.truth.endmembers, np.float32).copy()
    if case == "zero":
        E[1] = 0
    else:
        E[2] = E[0]
    np.savez(tmp_path / "E.npz", endmembers=E, wavelengths=s.wavelengths, names=np.array(["a", "b", "c"]))
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "E.npz", "--out", tmp_path / "o")
    assert code == 2 and "E.npz" in err and len(err.strip().splitlines()) == 1, err
    assert ("'b' is zero" in err) if case == "zero" else ("'a' and 'c' are identical" in err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("bad", ["abundances 1-d", "endmembers 1-d", "p differs", "text", "complex", "empty",
                                 "mask shape", "mask values", "names", "no mask"])
def test_malformed_result_folder_is_one_line_naming_it(run_cli, tmp_path, bad):
    """The arrays of a result.npz (an --estimate, or a folder given as --truth) are checked
    when read: exit 2 naming the folder (they were internal errors, a silently dropped
    imaginary part, or a names error that named no file)."""
    rng = np.random.default_rng(0)
    e = rng.uniform(0.1, 1, (3, 8)).astype(np.float32)
    a = rng.dirichlet(np.ones(3), (4, 5)).astype(np.float32)
    good = {"endmembers": e, "abundances": a, "mask": np.ones((4, 5), bool)}
    arrays = dict(good)
    if bad == "abundances 1-d":
        arrays["abundances"] = a.ravel()
    elif bad == "endmembers 1-d":
        arrays["endmembers"] = e.ravel()
    elif bad == "p differs":
        arrays["endmembers"] = e[:2]
    elif bad == "text":
        arrays["abundances"] = np.full(a.shape, "x")
    elif bad == "complex":
        arrays["endmembers"] = e.astype(complex)
    elif bad == "empty":
        arrays["endmembers"], arrays["abundances"] = e[:0], a[..., :0]
    elif bad == "mask shape":
        arrays["mask"] = np.ones((5, 4), bool)
    elif bad == "names":
        arrays["names"] = np.array(["one"])
    elif bad == "mask values":
        arrays["mask"] = np.full((4, 5), 0.5)
    else:  # endmembers only: nothing tells the scene's size
        arrays = {"endmembers": e}
    folder, ok = tmp_path / "bad", tmp_path / "ok"
    for path, content in ((folder, arrays), (ok, good)):
        path.mkdir()
        np.savez(path / "result.npz", **content)
    runs = [("--truth", ok, "--estimate", folder)]
    if bad != "no mask":  # as truth, a folder without a mask is fine
        runs.append(("--truth", folder, "--estimate", ok))
    for args in runs:
        code, _, err = run_cli("evaluate", *args)
        assert code == 2 and f"{folder}:" in err and len(err.strip().splitlines()) == 1, err


def _crafted_result(folder, rows=4, cols=5, bands=8, p=3, seed=0):
    """A result folder with random endmembers (p, bands) and simplex maps (rows, cols, p)."""
    rng = np.random.default_rng(seed)
    e = rng.uniform(0.1, 1, (p, bands)).astype(np.float32)
    a = rng.dirichlet(np.ones(p), (rows, cols)).astype(np.float32)
    folder.mkdir()
    np.savez(folder / "result.npz", endmembers=e, abundances=a, mask=np.ones((rows, cols), bool))
    return e, a


@pytest.mark.parametrize("form", ["npz", "mat", "folder"])
@pytest.mark.parametrize("bad, message", [
    ("percent", "expected fractions in [0, 1] (percent? divide by 100)"),
    ("negative", "expected fractions in [0, 1]"),
    ("p differs", "2 endmembers but 3 abundance maps"),
    ("zero spectrum", "endmember 'em2' has no positive value"),
])
def test_truth_that_is_not_fractions_or_spectra_is_refused(run_cli, tmp_path, form, bad, message):
    """Ground truth in percent (0-100) scored an abundance RMSE of thousands of percent with
    exit 0; negative maps, an all-zero reference spectrum (SAD silently absent) and a .npz
    with 2 spectra but 3 maps (an internal error) are refused naming the file too."""
    from scipy.io import savemat

    e, a = _crafted_result(tmp_path / "est")
    e, a = e.copy(), a.copy()
    if bad == "percent":
        a = a * 100
    elif bad == "negative":
        a = a - 0.5
    elif bad == "p differs":
        e = e[:2]
    else:
        e[1] = 0
    if form == "npz":
        truth = tmp_path / "truth.npz"
        np.savez(truth, endmembers=e, abundances=a)
    elif form == "mat":
        truth = tmp_path / "truth.mat"
        savemat(truth, {"M": e.T.astype(np.float64), "A": a.reshape(-1, 3, order="F").T.astype(np.float64)})
    else:  # a folder of two p is refused when read (load_result), in the same words
        truth = tmp_path / "truth"
        truth.mkdir()
        np.savez(truth / "result.npz", endmembers=e, abundances=a)
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", tmp_path / "est")
    assert code == 2 and f"{truth}:" in err and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "est" / "evaluation.json").exists()


def test_truth_that_does_not_sum_to_one_is_scored_with_a_warning(run_cli, tmp_path):
    e, a = _crafted_result(tmp_path / "est")
    truth = tmp_path / "truth.npz"
    np.savez(truth, endmembers=e, abundances=a * 0.5)
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", tmp_path / "est", "--json")
    assert code == 0, err
    assert "20 of 20 pixels do not sum to one" in err and str(truth) in err
    assert json.loads(stdout)["abundance_rmse_percent"] > 5


def test_estimate_of_maps_only_against_a_benchmark_mat(run_cli, tmp_path):
    """A result with abundances but no endmembers, scored against an end3.mat-like file: the
    truth's M was refused with '... with None bands' although only the maps are compared."""
    from scipy.io import savemat

    e, a = _crafted_result(tmp_path / "ref")
    est = tmp_path / "est"
    est.mkdir()
    np.savez(est / "result.npz", abundances=a, mask=np.ones(a.shape[:2], bool))
    truth = tmp_path / "end3.mat"
    savemat(truth, {"M": e.T.astype(np.float64), "A": a.reshape(-1, 3, order="F").T.astype(np.float64)})
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", est, "--json")
    assert code == 0, err
    assert json.loads(stdout)["abundance_rmse_percent"] == pytest.approx(0, abs=1e-4)


@pytest.mark.parametrize("content", ["npy", "text", "empty"])
def test_npz_that_is_not_a_zip_is_one_line(run_cli, tmp_path, content):
    """A .npy saved under an .npz name was an internal TypeError (np.load gives an array),
    and other bytes got numpy's advice to unpickle them: as truth and as result.npz."""
    _crafted_result(tmp_path / "est")
    bad = tmp_path / "truth.npz"
    if content == "npy":
        with open(bad, "wb") as f:
            np.save(f, np.ones((4, 5, 3), np.float32))
    else:
        bad.write_bytes(b"not an archive" if content == "text" else b"")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "result.npz").write_bytes(bad.read_bytes())
    for args in (("--truth", bad, "--estimate", tmp_path / "est"), ("--truth", tmp_path / "est", "--estimate", folder)):
        code, _, err = run_cli("evaluate", *args)
        assert code == 2 and "cannot read" in err and "not an .npz archive" in err and "pickle" not in err, err
        assert len(err.strip().splitlines()) == 1


def test_evaluate_names_the_truth_of_a_scene_npz(run_cli, scene_file, tmp_path):
    """A scene .npz (as `simulate` and `write_scene` write it) keeps its endmember names under
    'endmember_names'; evaluate called them em1, em2, ... (with 16 minerals the table could
    not say which was which)."""
    path, s = scene_file
    out = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", out, "--no-figures")[0] == 0
    code, stdout, err = run_cli("evaluate", "--truth", path, "--estimate", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["names"] == list(s.truth.names) != ["em1", "em2", "em3"]


def test_evaluate_table_names_the_estimate_as_the_result_does(run_cli, scene_file, tmp_path):
    """The per-endmember table gave the matched estimate as a 0-based index while the result
    calls its endmembers em1, em2, ... (CSV, GeoTIFF bands, figures): 'estimate 1' was em2."""
    path, s = scene_file
    out = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", out, "--no-figures")[0] == 0
    code, stdout, err = run_cli("evaluate", "--truth", path, "--estimate", out, "--json")
    assert code == 0, err
    rows = json.loads(stdout)["per_endmember"]
    assert [r["estimate_name"] for r in rows] == [f"em{r['estimate_index'] + 1}" for r in rows]
    code, stdout, _ = run_cli("evaluate", "--truth", path, "--estimate", out)
    table = {line.split()[0]: line.split()[1] for line in stdout.splitlines()[-3:]}
    assert table == {r["name"]: r["estimate_name"] for r in rows}


def test_band_weights_weigh_an_inversion_by_each_bands_noise(run_cli, tmp_path):
    """Noise 30x apart between bands: --band-weights noise gives the weighted least-squares
    answer (closer to the truth) and says so in run.json; without it FCLS weighs every band
    alike; a bad value, or one for a blind method other than auto, is one line, exit 2."""
    s = make_scene(rows=40, cols=45, p=3, snr_db=None, seed=4)
    clean = s.load()
    std = np.geomspace(1.0, 30.0, s.bands)
    level = np.sqrt(np.mean(clean.astype(np.float64) ** 2) / 10**2.0 / np.mean(std**2))
    cube = (clean + level * std * np.random.default_rng(2).standard_normal(clean.shape)).astype(np.float32)
    path = tmp_path / "coloured.npz"
    write_scene(Scene(cube, wavelengths=s.wavelengths), path)
    np.savez(tmp_path / "E.npz", endmembers=s.truth.endmembers, wavelengths=s.wavelengths)
    rmse, record = {}, {}
    for name, extra in (("plain", ()), ("weighted", ("--band-weights", "noise"))):
        out = tmp_path / name
        code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "E.npz", "--out", out, "--no-figures",
                               *extra)
        assert code == 0, err
        record[name] = json.loads((out / "run.json").read_text())["band_weights"]
        with np.load(out / "result.npz") as r:
            rmse[name] = float(np.sqrt(np.mean((r["abundances"] - s.truth.abundances) ** 2)))
    assert record["plain"] is None and record["weighted"]["noise_std_range"] > 10
    assert rmse["weighted"] < 0.7 * rmse["plain"]
    for flag, want in (("noise", True), ("none", False)):  # the blind default, weighted unless told
        out = tmp_path / f"blind-{flag}"
        code, _, err = run_cli("unmix", path, "-p", "3", "--band-weights", flag, "--out", out, "--no-figures")
        assert code == 0, err
        assert (json.loads((out / "run.json").read_text())["band_weights"] is not None) == want
    for extra in (("--band-weights", "pink"), ("--band-weights", "none", "-m", "vca")):
        bad = tmp_path / "bad"
        code, _, err = run_cli("unmix", path, "-p", "3", *extra, "--out", bad, "--no-figures")
        assert code == 2 and "--band-weights" in err and len(err.strip().splitlines()) == 1, err
        assert not bad.exists()


def test_run_json_parameters_record_the_band_weights_asked_for(run_cli, scene_file, tmp_path):
    # run.json's band_weights (null) could not tell "--band-weights none" from noise too white to
    # weigh, and the parameters left the choice out: the Python API's run had no trace of it
    from unmixgen.workflows import unmix_scene

    path, s = scene_file
    np.savez(tmp_path / "E.npz", endmembers=s.truth.endmembers, wavelengths=s.wavelengths)
    for extra, want in ((("-p", "3", "--band-weights", "none"), "none"), (("-p", "3"), None),
                        (("--endmembers-file", tmp_path / "E.npz", "--band-weights", "noise"), "noise")):
        out = tmp_path / f"run-{want}"
        code, _, err = run_cli("unmix", path, *extra, "--out", out, "--no-figures")
        assert code == 0, err
        assert json.loads((out / "run.json").read_text())["parameters"]["band_weights"] == want
    record = unmix_scene(path, tmp_path / "api", n_endmembers=3, band_weights="none", figures=False)
    assert record["parameters"]["band_weights"] == "none"


def test_outliers_are_screened_out_of_the_blind_fit_unless_kept(run_cli, tmp_path):
    """Saturated pixels: the default leaves them out of its fit and says how many in run.json;
    --outliers keep fits them too (worse endmembers); a bad value, or one for another method,
    is one line, exit 2."""
    s = make_scene(rows=40, cols=45, p=3, snr_db=30, seed=4)
    cube = s.load().copy()
    flat = cube.reshape(-1, s.bands)
    idx = np.random.default_rng(0).choice(len(flat), 6, replace=False)
    flat[idx] = cube.max()
    path = tmp_path / "saturated.npz"
    write_scene(Scene(cube, wavelengths=s.wavelengths), path)
    record = {}
    for value in ("screen", "keep"):
        out = tmp_path / value
        code, _, err = run_cli("unmix", path, "-p", "3", "--outliers", value, "--out", out, "--no-figures")
        assert code == 0, err
        record[value] = json.loads((out / "run.json").read_text())
        assert record[value]["parameters"]["outliers"] == value
    assert record["screen"]["outliers"] == {"screened": True, "pixels": 6, "file": "outliers.tif"}
    assert record["keep"]["outliers"] == {"screened": False, "pixels": 0}
    # the pixels left out, as a map in the run folder (and result.npz), where they are
    from unmixgen.io import read_scene as read

    expected = np.zeros(40 * 45, bool)
    expected[idx] = True
    np.testing.assert_array_equal(read(tmp_path / "screen" / "outliers.tif").load()[..., 0].reshape(-1) == 1,
                                  expected)
    with np.load(tmp_path / "screen" / "result.npz") as r:
        np.testing.assert_array_equal(r["outliers"].reshape(-1), expected)
    assert not (tmp_path / "keep" / "outliers.tif").exists()
    # still a result folder other commands read (refine's --init, evaluate's --estimate)
    from unmixgen.runs.folder import load_result

    assert load_result(tmp_path / "screen")["abundances"].shape == (40, 45, 3)
    for extra in (("--outliers", "drop"), ("--outliers", "keep", "-m", "vca")):
        bad = tmp_path / "bad"
        code, _, err = run_cli("unmix", path, "-p", "3", *extra, "--out", bad, "--no-figures")
        assert code == 2 and "--outliers" in err and len(err.strip().splitlines()) == 1, err
        assert not bad.exists()


def test_band_weights_asked_for_on_too_few_pixels_say_so(run_cli, tmp_path):
    # 12 x 10 pixels for 211 bands: no per-band noise estimate; the run went unweighted and its
    # record could not be told from one on white noise
    s = make_scene(rows=12, cols=10, p=3, snr_db=30, seed=4)
    path = tmp_path / "tiny.npz"
    write_scene(Scene(s.load(), wavelengths=s.wavelengths), path)
    np.savez(tmp_path / "E.npz", endmembers=s.truth.endmembers, wavelengths=s.wavelengths)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "E.npz", "--band-weights", "noise",
                           "--out", out, "--no-figures")
    assert code == 0, err
    record = json.loads((out / "run.json").read_text())
    assert record["band_weights"] is None
    assert any("too few to estimate the noise" in w for w in record["warnings"]), record["warnings"]
    assert "too few to estimate the noise" in err


def test_evaluate_prints_its_scores_when_the_estimate_folder_cannot_take_them(run_cli, scene_file, tmp_path,
                                                                            monkeypatch):
    # a read-only estimate folder (shared results): the scores were never printed, exit 2
    import unmixgen.atomic as atomic
    from unmixgen.errors import InputError as Refused

    path, s = scene_file
    out = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", out, "--no-figures")[0] == 0
    truth = tmp_path / "truth.npz"
    np.savez(truth, endmembers=s.truth.endmembers, abundances=s.truth.abundances)

    def read_only(target, *_a, **_k):
        raise Refused(f"{target}: cannot write (Permission denied); expected a writable location")

    monkeypatch.setattr(atomic, "write_json", read_only)
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", out, "--json")
    assert code == 0 and "abundance_rmse_percent" in json.loads(stdout), err
    assert "not saved" in err and not (out / "evaluation.json").exists()
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", out, "--save", tmp_path / "s.json")
    assert code == 2 and "Permission denied" in err  # asked for: a failure, after the scores
    assert "SAD" in stdout


def test_zero_border_and_dead_column_of_a_geotiff_are_no_data_and_reported(run_cli, tmp_path):
    """A pushbroom product as users bring it: a zero-filled border without a nodata value and a
    detector column dead (zero) in the second half of the bands. Neither is fitted: both are
    nodata in the maps, said on stderr and counted in run.json."""
    from fixtures_io import write_tif

    s = make_scene(rows=40, cols=45, p=3, snr_db=30, seed=4)
    cube = s.load().copy()
    cube[:5] = 0.0
    cube[:, 17, s.bands // 2:] = 0.0
    path = write_tif(tmp_path / "l2.tif", cube,
                     band_tags=[{"wavelength": f"{w:g}", "wavelength_units": "nm"} for w in s.wavelengths])
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "-p", "3", "--out", out, "--no-figures")
    assert code == 0, err
    assert "225 of 1800 pixels are 0 in every band" in err and "column 17" in err
    with np.load(out / "result.npz") as r:
        mask, A = r["mask"], r["abundances"]
    assert not mask[:5].any() and not mask[:, 17].any() and mask.sum() == 35 * 44
    assert np.isnan(A[~mask]).all() and np.isfinite(A[mask]).all()
    run = json.loads((out / "run.json").read_text())
    assert run["pixels"] == {"valid": 35 * 44, "invalid": 1800 - 35 * 44, "zero_filled": 225,
                             "stuck_lines": {"columns": [17], "rows": [], "pixels": 35,
                                             "bands": list(range(s.bands // 2 + 1, s.bands + 1))}}
    assert any("column 17" in w for w in run["warnings"]) and any("0 in every band" in w for w in run["warnings"])


def test_striped_columns_are_named_and_recorded(run_cli, tmp_path):
    s = make_scene(rows=48, cols=40, p=3, snr_db=35, seed=5)
    np.savez(tmp_path / "E.npz", endmembers=s.truth.endmembers, wavelengths=s.wavelengths)
    clean = s.load()
    gain = 1.0 + 0.03 * np.random.default_rng(0).standard_normal(clean.shape[1:])  # per column and band
    for name, cube in (("clean", clean), ("striped", (clean * gain).astype(np.float32))):
        write_scene(Scene(cube, wavelengths=s.wavelengths), tmp_path / f"{name}.npz")
        out = tmp_path / name
        code, _, err = run_cli("unmix", tmp_path / f"{name}.npz", "--endmembers-file", tmp_path / "E.npz",
                               "--out", out, "--no-figures")
        assert code == 0, err
        run = json.loads((out / "run.json").read_text())
        striped = name == "striped"
        assert run["stripes"]["detected"] is striped and ("striped" in err) is striped, err
        assert any("striped" in w for w in run["warnings"]) is striped


def _map_grid_corners(rows, cols):
    """Bool (rows, cols): False in the four corner triangles a map-grid product leaves no-data."""
    r, c = np.mgrid[0:rows, 0:cols]
    d = np.minimum(np.minimum(r + c, r + (cols - 1 - c)), np.minimum((rows - 1 - r) + c, (rows - 1 - r) + (cols - 1 - c)))
    return d >= 2


def test_truth_zero_in_the_no_data_corners_is_scored_without_a_sum_warning(run_cli, tmp_path):
    """A map-grid product's truth (as `nan_to_num` of resampled maps leaves it) holds 0 where the
    scene is no-data: the sum-to-one check counted those pixels ('12 of 20 pixels do not sum to
    one') though the metrics skip them; a valid pixel that is off is still reported, alone."""
    rows, cols = 4, 5
    valid = _map_grid_corners(rows, cols)
    e, a = _crafted_result(tmp_path / "est", rows, cols)
    a_est = np.where(valid[..., None], a, np.nan).astype(np.float32)
    np.savez(tmp_path / "est" / "result.npz", endmembers=e, abundances=a_est, mask=valid)
    truth = tmp_path / "truth.npz"
    np.savez(truth, endmembers=e, abundances=np.where(valid[..., None], a, 0).astype(np.float32))
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", tmp_path / "est", "--json")
    assert code == 0 and "sum to one" not in err, err
    assert json.loads(stdout)["abundance_rmse_percent"] < 1e-4
    off = np.where(valid[..., None], a, 0).astype(np.float32)
    off[1, 2] *= 0.5  # one valid pixel whose fractions sum to 0.5
    np.savez(truth, endmembers=e, abundances=off)
    code, stdout, err = run_cli("evaluate", "--truth", truth, "--estimate", tmp_path / "est", "--json")
    assert code == 0 and f"1 of {int(valid.sum())} pixels do not sum to one" in err, err


def test_unmix_truth_zero_in_the_no_data_corners_is_scored_without_a_sum_warning(run_cli, tmp_path):
    """`unmix --truth` on a scene whose no-data corners are NaN and whose truth is 0 there: no
    warning about the corners' sums (the metrics count only the scene's valid pixels)."""
    from unmixgen.io import write_scene
    from unmixgen.scene import Scene
    from unmixgen.simulate.procedural import make_scene

    s = make_scene(rows=8, cols=9, p=3, snr_db=40, seed=1)
    valid = _map_grid_corners(8, 9)
    cube = np.where(valid[..., None], s.load(), np.nan).astype(np.float32)
    write_scene(Scene(cube, wavelengths=s.wavelengths), tmp_path / "scene.npz")
    np.savez(tmp_path / "E.npz", endmembers=s.truth.endmembers, wavelengths=s.wavelengths)
    np.savez(tmp_path / "truth.npz", endmembers=s.truth.endmembers,
             abundances=np.where(valid[..., None], s.truth.abundances, 0).astype(np.float32))
    code, _, err = run_cli("unmix", tmp_path / "scene.npz", "--endmembers-file", tmp_path / "E.npz", "--method",
                           "fcls", "--truth", tmp_path / "truth.npz", "--out", tmp_path / "run", "--no-figures")
    assert code == 0 and "sum to one" not in err, err
    metrics = json.loads((tmp_path / "run" / "run.json").read_text())["metrics"]
    assert metrics["abundance_rmse_percent"] < 2


def test_evaluate_refuses_an_alignment_or_pixel_order_the_data_cannot_take(run_cli, scene_file, tmp_path):
    """``--align sad`` with a truth of maps only (or ``--align abundance`` / ``both`` with spectra
    only) matched on the other without a word but a line in the scores; ``--pixel-order`` with a
    truth without maps unfolded nothing. Refused in one line, nothing written; without --align
    the fallback stays, as documented."""
    path, s = scene_file
    out = tmp_path / "run"
    assert run_cli("unmix", path, "-p", "3", "--method", "vca", "--out", out, "--no-figures")[0] == 0
    np.savez(tmp_path / "maps.npz", abundances=s.truth.abundances)
    np.savez(tmp_path / "spectra.npz", endmembers=s.truth.endmembers)
    for truth, args in (("maps.npz", ("--align", "sad")), ("maps.npz", ("--align", "both")),
                        ("spectra.npz", ("--align", "abundance")), ("spectra.npz", ("--pixel-order", "F"))):
        code, stdout, err = run_cli("evaluate", "--truth", tmp_path / truth, "--estimate", out, *args)
        assert code == 2 and err.startswith(f"error: {' '.join(args)}:") and truth in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and stdout == ""
        assert not (out / "evaluation.json").exists()
    for truth, alignment in (("maps.npz", "abundance"), ("spectra.npz", "sad")):
        code, stdout, err = run_cli("evaluate", "--truth", tmp_path / truth, "--estimate", out, "--json")
        assert code == 0 and json.loads(stdout)["alignment"] == alignment, err
