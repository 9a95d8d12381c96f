"""`unmixgen evaluate` draws what it scores: truth | estimate | error maps, matched spectra and
(refine results) coverage by abundance level, beside its JSON, with the run folder's report;
only what the truth and the result both have, all or nothing, nothing with --no-figures.

The figures are checked by their data (the arrays the images show, masked entries, colour
limits, lines, legend texts and titles), caught as they are saved."""

import json
import re

import numpy as np
import pytest

from unmixgen.io import write_scene
from unmixgen.report import evaluation as evfig
from unmixgen.report import figures as report
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import make_scene

ROWS, COLS, BANDS = 16, 23, 40
NAMES = ["soil", "tree", "water"]
SOUTH_UP = (30.0, 0.0, 5e5, 0.0, 30.0, 4e6)  # latitude ascending with the row
KINDS = ("abundances", "endmembers", "coverage")


@pytest.fixture
def figs(monkeypatch) -> dict:
    """The figures drawn during a test by the file name they are saved under (temporary names
    of a group write end in ``.tmp-...``: the final name is the part before it)."""
    drawn: dict = {}
    save = report._save

    def keep(fig, path):
        drawn[re.sub(r"^\.|\.tmp-.*$", "", path.name)] = fig
        return save(fig, path)

    monkeypatch.setattr(report, "_save", keep)
    return drawn


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A south-up 16x23 scene with invalid pixels and a bad band, FCLS on its true spectra given
    in another order (so the matching has work), and its truth with names and a no-data pixel."""
    from unmixgen.cli.app import main

    tmp = tmp_path_factory.mktemp("evaluate_figures")
    s = make_scene(rows=ROWS, cols=COLS, bands=BANDS, p=3, snr_db=40, seed=4)
    cube = s.load().copy()
    mask = np.ones((ROWS, COLS), bool)
    mask[0, :5] = False
    cube[~mask] = np.nan
    good = np.ones(BANDS, bool)
    good[20] = False
    write_scene(Scene(cube, wavelengths=s.wavelengths, good_bands=good, transform=SOUTH_UP, crs="EPSG:32633"),
                tmp / "scene.npz")
    E, A = s.truth.endmembers.astype(np.float64), s.truth.abundances.astype(np.float64).copy()
    np.savez(tmp / "E.npz", endmembers=E[::-1], wavelengths=s.wavelengths)
    A[5, 7] = np.nan  # no data in the truth only
    np.savez(tmp / "truth.npz", endmembers=E, abundances=A, wavelengths=s.wavelengths, names=NAMES)
    np.savez(tmp / "maps.npz", abundances=A, names=NAMES)
    np.savez(tmp / "spectra.npz", endmembers=E, wavelengths=s.wavelengths, names=NAMES)
    run = tmp / "run"
    assert main(["unmix", str(tmp / "scene.npz"), "--endmembers-file", str(tmp / "E.npz"), "--method", "fcls",
                 "--out", str(run), "--no-figures"]) == 0
    return tmp, run, mask, good


@pytest.fixture
def run(data, tmp_path):
    """A fresh copy of the result folder (evaluate writes into it)."""
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(data[1], dst)
    return dst


def _listing(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _evaluate(run_cli, truth, estimate, *extra):
    """Run evaluate; returns its stderr, which says what it wrote."""
    code, _, err = run_cli("evaluate", "--truth", truth, "--estimate", estimate, *extra)
    assert code == 0, err
    return err


def test_maps_show_truth_estimate_and_signed_error_per_matched_endmember(run_cli, data, run, figs):
    tmp, _, mask, _ = data
    _evaluate(run_cli, tmp / "truth.npz", run)
    scores = json.loads((run / "evaluation.json").read_text())
    assert scores["figures"]["abundances"] == "evaluation_abundances.png"
    fig = figs["evaluation_abundances.png"]
    panels = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert len(panels) == 9  # 3 endmembers x (truth, estimate, error)
    truth = np.load(tmp / "truth.npz")["abundances"]
    est = np.load(run / "result.npz")["abundances"]
    perm = scores["permutation"]
    assert perm != [0, 1, 2]  # the spectra were given reversed: pairs are not positions
    errors = []
    for j, row in enumerate(scores["per_endmember"]):
        t_ax, e_ax, d_ax = panels[3 * j:3 * j + 3]
        shown_t, shown_e, shown_d = (ax.images[0].get_array() for ax in (t_ax, e_ax, d_ax))
        k = perm[j]
        assert np.ma.allclose(shown_t, np.ma.masked_invalid(np.where(mask, truth[..., j], np.nan)))
        assert np.ma.allclose(shown_e, np.ma.masked_invalid(np.where(mask, est[..., k], np.nan)))
        np.testing.assert_allclose(shown_d.compressed(), (est[..., k] - truth[..., j])[mask & np.isfinite(truth[..., j])],
                                   atol=1e-6)
        # no data: the scene's invalid pixels everywhere, the truth's own no-data in the error
        assert np.ma.getmaskarray(shown_e)[~mask].all() and np.ma.getmaskarray(shown_d)[~mask].all()
        assert np.ma.getmaskarray(shown_d)[5, 7] and not np.ma.getmaskarray(shown_e)[5, 7]
        assert t_ax.get_title() == f"{NAMES[j]}: truth"
        assert e_ax.get_title() == f"{row['estimate_name']}: estimate"
        assert d_ax.get_title() == f"{NAMES[j]}: estimate - truth\nRMSE {row['abundance_rmse_percent']:.2f} %"
        lo, hi = d_ax.images[0].get_clim()
        assert lo == -hi and d_ax.images[0].get_cmap().name.startswith("RdBu_r")
        assert t_ax.images[0].get_clim() == (0.0, 1.0)
        errors.append(np.abs(shown_d).max())
        # south-up grid: drawn north up, as the run's other maps
        assert t_ax.get_ylim()[0] < t_ax.get_ylim()[1]
    limits = {ax.images[0].get_clim() for ax in panels[2::3]}
    assert len(limits) == 1 and max(errors) <= limits.pop()[1] < 1.0  # one range for all, over every error
    bars = [ax for ax in fig.axes if not ax.get_title() and ax.collections]  # the colour bars
    assert sorted(ax.get_ylabel() for ax in bars) == ["abundance", "estimate - truth"]
    assert "north up" in fig.get_suptitle()


def test_spectra_are_paired_dashed_truth_solid_estimate_with_sad_in_the_legend(run_cli, data, run, figs):
    tmp, _, _, good = data
    _evaluate(run_cli, tmp / "truth.npz", run)
    scores = json.loads((run / "evaluation.json").read_text())
    ax = figs["evaluation_endmembers.png"].axes[0]
    lines = ax.get_lines()
    assert [ln.get_linestyle() for ln in lines] == ["-"] * 3 + ["--"] * 3
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    for j, row in enumerate(scores["per_endmember"]):
        assert texts[j] == f"{row['estimate_name']} (estimate), SAD {row['sad_deg']:.2f} deg"
        assert texts[3 + j] == f"{NAMES[j]} (truth)"
        assert lines[j].get_color() == lines[3 + j].get_color()  # a pair shares its colour
    E = np.load(run / "result.npz")["endmembers"]
    wl = np.load(tmp / "spectra.npz")["wavelengths"]
    x, y = lines[0].get_data()
    k = scores["permutation"][0]
    np.testing.assert_allclose(y[np.isin(x, wl[good])], E[k][good], rtol=1e-5)
    assert not np.isfinite(y[np.flatnonzero(x == wl[20])]).any()  # the bad band: a gap, no line across it
    assert ax.get_xlabel() == "wavelength (nm)"


def test_files_follow_what_was_given_and_the_report_links_them(run_cli, data, run, figs):
    tmp = data[0]
    _evaluate(run_cli, tmp / "truth.npz", run)
    assert {p.name for p in run.glob("evaluation_*.png")} == {"evaluation_abundances.png",
                                                             "evaluation_endmembers.png"}
    links = re.findall(r'<img src="([^"]+)"', (run / "report.html").read_text())
    assert links == ["evaluation_abundances.png", "evaluation_endmembers.png"]
    for truth, kinds in (("maps.npz", {"abundances"}), ("spectra.npz", {"endmembers"})):
        out = _evaluate(run_cli, tmp / truth, run)
        scores = json.loads((run / "evaluation.json").read_text())
        assert set(scores["figures"]) == kinds and scores["report"] == "report.html"
        # the other evaluation's figure went with its scores: none shows what these do not score
        assert {p.name for p in run.glob("evaluation_*.png")} == {f"evaluation_{k}.png" for k in kinds}
        assert re.findall(r'<img src="([^"]+)"', (run / "report.html").read_text()) == [
            f"evaluation_{k}.png" for k in kinds]
        assert f"evaluation_{kinds.pop()}.png, report.html" in out


def test_no_figures_writes_none(run_cli, data, run, figs):
    tmp = data[0]
    _evaluate(run_cli, tmp / "truth.npz", run)
    figs.clear()
    _evaluate(run_cli, tmp / "truth.npz", run, "--no-figures")
    assert not figs and not list(run.glob("*.png"))
    scores = json.loads((run / "evaluation.json").read_text())
    assert scores["figures"] == {}
    assert "<img" not in (run / "report.html").read_text()


def test_save_elsewhere_puts_the_figures_beside_that_json_and_leaves_the_run_alone(run_cli, data, run, tmp_path,
                                                                                   figs):
    tmp = data[0]
    before = _listing(run)
    _evaluate(run_cli, tmp / "truth.npz", run, "--save", tmp_path / "scores.json", "--json")
    assert _listing(run) == before
    assert {p.name for p in tmp_path.glob("scores*")} == {"scores.json", "scores_abundances.png",
                                                        "scores_endmembers.png"}
    assert not (tmp_path / "report.html").exists()  # a report is the run folder's, not any folder's
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["figures"] == {"abundances": "scores_abundances.png", "endmembers": "scores_endmembers.png"}
    assert scores["report"] is None


def test_a_figure_that_fails_leaves_the_folder_as_it_was(run_cli, data, run, monkeypatch):
    tmp = data[0]
    _evaluate(run_cli, tmp / "spectra.npz", run)  # an earlier evaluation's files, to be kept
    before = _listing(run)

    def broken(*_a, **_k):
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(evfig, "plot_matched_spectra", broken)
    code, _, err = run_cli("evaluate", "--truth", tmp / "truth.npz", "--estimate", run)
    assert code == 1 and "cannot draw" in err
    assert _listing(run) == before  # no new maps figure, old JSON, report and spectra figure kept
    code, _, err = run_cli("evaluate", "--truth", tmp / "truth.npz", "--estimate", run, "--no-figures")
    assert code == 0, err
    assert not list(run.glob("*.png")) and not list(run.glob(".*"))


def test_refine_result_gets_coverage_by_abundance_against_nominal(run_cli, data, run, figs):
    tmp = data[0]
    r = dict(np.load(run / "result.npz"))
    A = r["abundances"]
    r.update(abundances_std=np.full_like(A, 0.02), abundances_q05=np.clip(A - 0.01, 0, 1),
             abundances_q95=np.clip(A + 0.01, 0, 1))
    np.savez(run / "result.npz", **r)
    _evaluate(run_cli, tmp / "truth.npz", run)
    scores = json.loads((run / "evaluation.json").read_text())
    assert set(scores["figures"]) == set(KINDS)
    ax = figs["evaluation_coverage.png"].axes[0]
    by = scores["coverage90_by_abundance"]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [b["coverage90"] for b in by if b["coverage90"] is not None])
    nominal = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(nominal) == 1 and nominal[0].get_ydata()[0] == pytest.approx(0.9)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[:2] == ["nominal 90 %", f"overall {scores['coverage90'] * 100:.1f} %"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0-0.05", "0.05-0.25", "0.25-0.5", "0.5-1"]
    # maps only: no spectra figure, coverage still; spectra only: no coverage (it needs the true maps)
    _evaluate(run_cli, tmp / "spectra.npz", run)
    assert set(json.loads((run / "evaluation.json").read_text())["figures"]) == {"endmembers"}


def test_coverage_plot_leaves_an_empty_bin_without_a_bar(tmp_path, figs):
    bins = [{"abundance_from": 0.0, "abundance_to": 0.05, "pixels": 10, "coverage90": 0.8},
            {"abundance_from": 0.05, "abundance_to": 0.25, "pixels": 0, "coverage90": None},
            {"abundance_from": 0.25, "abundance_to": 1.0, "pixels": 3, "coverage90": 1.0}]
    evfig.plot_coverage_by_abundance(bins, tmp_path / "c.png")
    ax = figs["c.png"].axes[0]
    assert [p.get_height() for p in ax.patches] == [0.8, 1.0]
    assert [t.get_text() for t in ax.texts] == ["10 values", "no values", "3 values"]


@pytest.mark.parametrize(("k", "per_row"), [(2, 1), (8, 2), (13, 3)])
def test_many_endmembers_lay_out_triples_side_by_side(tmp_path, figs, k, per_row):
    rng = np.random.default_rng(k)
    t = rng.dirichlet(np.ones(k), (7, 11)).astype(np.float32)
    e = rng.dirichlet(np.ones(k), (7, 11)).astype(np.float32)
    names = [f"m{i}" for i in range(k)]
    evfig.plot_map_errors(t, e, tmp_path / "m.png", names=names, rmse_percent=[1.0] * (k - 1) + [None])
    fig = figs["m.png"]
    panels = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert len(panels) == 3 * k
    assert len({round(ax.get_position().x0, 3) for ax in panels}) == 3 * per_row
    assert panels[-1].get_title().endswith("RMSE n/a (map NaN)")
    assert fig.get_size_inches()[1] < 30


def test_error_limit_is_a_round_symmetric_bound():
    assert evfig.error_limit(0.034) == pytest.approx(0.05)
    assert evfig.error_limit(0.05) == pytest.approx(0.05)
    assert evfig.error_limit(0.11) == pytest.approx(0.2)
    assert evfig.error_limit(0.7) == 1.0 and evfig.error_limit(0.0) == 0.01


def test_matched_spectra_without_wavelengths_are_drawn_by_band_number(tmp_path, figs):
    e = np.random.default_rng(0).uniform(0.1, 0.5, (2, 12))
    evfig.plot_matched_spectra(e * 1.1, e, None, tmp_path / "s.png", names=["a", "b"], sad_deg=[1.0, float("nan")])
    ax = figs["s.png"].axes[0]
    assert ax.get_xlabel() == "band number"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "a (estimate), SAD 1.00 deg", "b (estimate), SAD n/a", "a (truth)", "b (truth)"]


def test_large_maps_are_shown_strided_without_a_full_size_copy(tmp_path, figs, monkeypatch):
    # the maps of a large scene are drawn every stride-th pixel (at most MAX_SIDE a side); they
    # were cast to float32 whole before striding: a float64 truth of a 2000 x 2000 scene cost a
    # full-size copy of each side (the figure took 117 MB for 128 MB of maps, now 61 MB, all
    # matplotlib's drawing of 800 x 800 panels, whatever the scene's size)
    import tracemalloc

    monkeypatch.setattr(report, "MAX_SIDE", 50)
    rng = np.random.default_rng(0)
    truth = rng.random((2000, 1800, 1))  # float64, as a benchmark .mat gives
    estimate = truth + 0.01 * rng.standard_normal(truth.shape)
    evfig.plot_map_errors(truth[:20, :20], estimate[:20, :20], tmp_path / "warm.png", names=["soil"])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        evfig.plot_map_errors(truth, estimate, tmp_path / "maps.png", names=["soil"], rmse_percent=[1.0])
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * truth.nbytes, peak / truth.nbytes
    shown = figs["maps.png"].axes[0].images[0].get_array()
    assert shown.shape == (50, 45)  # every 40th pixel
    np.testing.assert_array_equal(shown, truth[::40, ::40, 0].astype(np.float32))


def test_a_json_saved_elsewhere_removes_no_file_beside_it(run_cli, data, run, tmp_path):
    # an earlier evaluation's figures are removed in the result folder only: beside a JSON saved
    # elsewhere a file of such a name may be the user's own
    tmp = data[0]
    mine = tmp_path / "scores_abundances.png"
    mine.write_bytes(b"not ours")
    _evaluate(run_cli, tmp / "spectra.npz", run, "--save", tmp_path / "scores.json")
    assert mine.read_bytes() == b"not ours"
