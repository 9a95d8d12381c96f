"""`unmixgen.evaluate_result`: what `unmixgen evaluate` does, in one call from Python (the CLI is
its thin caller), with errors that name the parameters; and `--json` prints the JSON it saved."""

import json
import shutil

import numpy as np
import pytest

import unmixgen as ug
from unmixgen.atomic import jsonable
from unmixgen.errors import InputError, ParameterError
from unmixgen.io import write_scene
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import make_scene
from unmixgen.workflows.evaluation import EvaluationNotSaved

NAMES = ["soil", "tree", "water"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A 30x47 scene, FCLS on its true spectra given in another order, and its truth (named)."""
    tmp = tmp_path_factory.mktemp("evaluate_workflow")
    s = make_scene(rows=30, cols=47, bands=40, p=3, snr_db=40, seed=2)
    write_scene(Scene(s.load(), wavelengths=s.wavelengths), tmp / "scene.npz")
    E, A = s.truth.endmembers, s.truth.abundances
    np.savez(tmp / "E.npz", endmembers=E[::-1], wavelengths=s.wavelengths)
    np.savez(tmp / "truth.npz", endmembers=E, abundances=A, wavelengths=s.wavelengths, names=NAMES)
    np.savez(tmp / "maps.npz", abundances=A, names=NAMES)
    ug.unmix_scene(tmp / "scene.npz", tmp / "run", endmembers_file=tmp / "E.npz", method="fcls", figures=False)
    return tmp


@pytest.fixture
def run(data, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(data / "run", dst)
    return dst


def test_one_call_scores_saves_and_draws_what_the_command_does(run_cli, data, run, tmp_path):
    record = ug.evaluate_result(data / "truth.npz", run)
    saved = json.loads((run / "evaluation.json").read_text())
    assert json.loads(json.dumps(jsonable(record))) == saved  # returned as saved
    assert record["figures"] == {"abundances": "evaluation_abundances.png", "endmembers": "evaluation_endmembers.png"}
    assert record["report"] == "report.html" and (run / "report.html").is_file()
    assert all((run / name).is_file() for name in record["figures"].values())
    # the matching found the reversed order, and the scores name both sides
    assert record["permutation"] == [2, 1, 0] and record["abundance_rmse_percent"] < 1
    assert [r["estimate_name"] for r in record["per_endmember"]] == ["em3", "em2", "em1"]
    # the command writes the same files with the same scores
    cli = tmp_path / "cli"
    shutil.copytree(data / "run", cli)
    code, _, err = run_cli("evaluate", "--truth", data / "truth.npz", "--estimate", cli)
    assert code == 0, err
    by_cli = json.loads((cli / "evaluation.json").read_text())
    assert {k: v for k, v in by_cli.items() if k != "estimate"} == {k: v for k, v in saved.items() if k != "estimate"}
    assert sorted(p.name for p in cli.iterdir()) == sorted(p.name for p in run.iterdir())


def test_json_printed_is_the_json_saved(run_cli, data, run, tmp_path):
    """--json printed the scores before anything was written, without the ``figures`` and
    ``report`` the saved file has."""
    code, stdout, err = run_cli("evaluate", "--truth", data / "truth.npz", "--estimate", run, "--json")
    assert code == 0, err
    printed = json.loads(stdout)
    assert printed == json.loads((run / "evaluation.json").read_text())
    assert printed["figures"]["abundances"] == "evaluation_abundances.png" and printed["report"] == "report.html"
    code, stdout, err = run_cli("evaluate", "--truth", data / "truth.npz", "--estimate", run, "--json",
                                "--save", tmp_path / "s.json", "--no-figures")
    assert code == 0, err
    printed = json.loads(stdout)
    assert printed == json.loads((tmp_path / "s.json").read_text())
    assert printed["figures"] == {} and printed["report"] is None


def test_save_false_writes_nothing_and_a_result_npz_has_no_default_place(data, run):
    before = sorted(p.name for p in run.iterdir())
    for estimate, save in ((run, False), (run / "result.npz", None)):
        record = ug.evaluate_result(data / "truth.npz", estimate, save=save)
        assert "figures" not in record and "report" not in record and record["abundance_rmse_percent"] < 1
        assert sorted(p.name for p in run.iterdir()) == before


def test_errors_name_the_parameters(data, run):
    with pytest.raises(ParameterError, match=r"^align='names': expected 'abundance', 'sad' or 'both'"):
        ug.evaluate_result(data / "truth.npz", run, align="names")
    with pytest.raises(ParameterError, match=r"^align='sad': matches on endmembers, and the truth .*maps.npz has"):
        ug.evaluate_result(data / "maps.npz", run, align="sad")
    with pytest.raises(ParameterError, match=r"^pixel_order='x': expected F"):
        ug.evaluate_result(data / "truth.npz", run, pixel_order="x")
    for target in (run / "run.json", run / "scores.txt", run / "scores.json"):
        with pytest.raises(ParameterError, match=r"^save=.*: expected a .json file name"):
            ug.evaluate_result(data / "truth.npz", run, save=target)
    assert not (run / "evaluation.json").exists()


def test_scores_that_cannot_be_saved_are_kept_in_the_error(data, run, monkeypatch):
    import unmixgen.atomic as atomic

    def read_only(target, *_a, **_k):
        raise InputError(f"{target}: cannot write (Permission denied); expected a writable location")

    monkeypatch.setattr(atomic, "write_json", read_only)
    with pytest.raises(EvaluationNotSaved, match="Permission denied") as caught:
        ug.evaluate_result(data / "truth.npz", run)
    assert caught.value.scores["abundance_rmse_percent"] < 1 and "figures" not in caught.value.scores
    assert isinstance(caught.value, InputError)  # the CLI's exit status 2 when --save asked for it
    assert not (run / "evaluation.json").exists() and not list(run.glob("*.png"))
