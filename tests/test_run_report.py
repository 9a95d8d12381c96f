"""`unmix --report` (and `refine --report`, in test_refine_cli.py): the run folder's report.html
on request, with the run's parameters, warnings, scores and every figure the folder holds;
evaluate's rewrite of the page keeps the run's parameters and warnings."""

import html
import json
import re

import numpy as np

from fixtures_io import write_tif
from unmixgen.io import write_scene
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import make_scene


def _scene(tmp_path):
    s = make_scene(rows=30, cols=47, bands=40, p=3, snr_db=40, seed=3)
    cube = s.load().copy()
    cube[:2] = 0.0  # a zero-filled border: a warning in run.json (the GeoTIFF reader finds it lazily)
    path = write_tif(tmp_path / "scene.tif", cube,
                     band_tags=[{"wavelength": f"{w:g}", "wavelength_units": "nm"} for w in s.wavelengths])
    np.savez(tmp_path / "truth.npz", endmembers=s.truth.endmembers, abundances=s.truth.abundances,
             wavelengths=s.wavelengths)
    return path, tmp_path / "truth.npz"


def _links(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_unmix_report_shows_the_run_its_warnings_and_every_figure(run_cli, tmp_path):
    scene, truth = _scene(tmp_path)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", scene, "-p", "auto", "--method", "vca", "--truth", truth, "--report",
                           "--out", out)
    assert code == 0, err
    record = json.loads((out / "run.json").read_text())
    page = (out / "report.html").read_text()
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(pngs) >= 4 and "rank_eigenvalues.png" in pngs  # rgb, abundances, endmembers, the rank's
    assert sorted(_links(page)) == pngs  # every figure, once
    assert record["warnings"] and any("0 in every band" in w for w in record["warnings"])
    for warning in record["warnings"]:
        assert f"<li>{html.escape(warning)}</li>" in page
    assert f"<h2>Warnings ({len(record['warnings'])})</h2>" in page
    assert "<td>method</td><td>vca</td>" in page and "<td>n_endmembers</td><td>3</td>" in page
    rmse = record["metrics"]["abundance_rmse_percent"]
    assert f"<td>abundance_rmse_percent</td><td>{rmse:.4g}</td>" in page
    assert "<title>unmix: run</title>" in page  # the folder's name, not its temporary one
    # evaluate rewrites the page: its scores first, the run's parameters and warnings kept
    code, _, err = run_cli("evaluate", "--truth", truth, "--estimate", out)
    assert code == 0, err
    page = (out / "report.html").read_text()
    assert page.index("<h2>Evaluation") < page.index("<h2>Run") < page.index("<h2>Warnings")
    assert all(f"<li>{html.escape(w)}</li>" in page for w in record["warnings"])
    assert sorted(_links(page)) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))


def test_no_report_unless_asked(run_cli, tmp_path):
    """DESIGN.md: report.html 'where asked'; a run without --report writes none, and a run with
    no warnings says so."""
    s = make_scene(rows=30, cols=47, bands=40, p=3, snr_db=40, seed=3)
    write_scene(Scene(s.load(), wavelengths=s.wavelengths), tmp_path / "scene.npz")
    code, _, err = run_cli("unmix", tmp_path / "scene.npz", "-p", "3", "--method", "vca", "--out", tmp_path / "a")
    assert code == 0 and not (tmp_path / "a" / "report.html").exists(), err
    code, _, err = run_cli("unmix", tmp_path / "scene.npz", "-p", "3", "--method", "vca", "--no-figures", "--report",
                           "--out", tmp_path / "b")
    assert code == 0, err
    page = (tmp_path / "b" / "report.html").read_text()
    assert _links(page) == [] and "<h2>Warnings (0)</h2>" in page and "No warnings." in page


def test_a_npz_scenes_reader_warnings_reach_run_json_of_unmix_and_refine(run_cli, tmp_path):
    # the .npz reader works out the valid pixels as it reads: its zero-fill warning came before
    # the run noted warnings and was shown but never kept
    s = make_scene(rows=30, cols=47, bands=40, p=3, snr_db=40, seed=3)
    cube = s.load().copy()
    cube[:2] = 0.0
    np.savez(tmp_path / "scene.npz", cube=cube, wavelengths=s.wavelengths)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", tmp_path / "scene.npz", "-p", "3", "--method", "vca", "--out", out)
    assert code == 0, err
    record = json.loads((out / "run.json").read_text())
    assert any("0 in every band" in w for w in record["warnings"]), record["warnings"]
    code, _, err = run_cli("refine", tmp_path / "scene.npz", "--init", out, "--samples", "2", "--steps", "2",
                           "--out", tmp_path / "ref")
    assert code == 0, err
    record = json.loads((tmp_path / "ref" / "run.json").read_text())
    assert any("0 in every band" in w for w in record["warnings"]), record["warnings"]
