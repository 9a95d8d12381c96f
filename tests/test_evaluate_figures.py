"""The figures of an evaluation: truth | estimate | error maps, matched spectra and coverage by
abundance level.

The figures are checked by their data (the arrays the images show, masked entries, colour
limits, lines, legend texts and titles), caught as they are saved."""

import re

import numpy as np
import pytest

from unmixgen.report import evaluation as evfig
from unmixgen.report import figures as report


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
