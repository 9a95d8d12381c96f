"""Abundance diffusion: guidance, the train-abundance / synthesize commands, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from test_diffusion_model import TINY, endmembers, smooth_maps, write_result
from unmixgen.priors.abundance.model import load_model
from unmixgen.priors.abundance.train import create_model_folder, train
from unmixgen.runs.sources import load_training_maps

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def dominated(rows, cols, p, k, seed):
    """Maps where endmember ``k`` dominates (mean abundance ~0.8)."""
    a = smooth_maps(rows, cols, p, seed, sharp=1.0)
    a = 0.25 * a
    a[..., k] += 0.75
    return a.astype(np.float32)


def test_guidance_scale_changes_samples_towards_the_label(tmp_path):
    e = endmembers(3)
    r0 = write_result(tmp_path / "a", dominated(32, 32, 3, 0, 1), e, method="alpha")
    r1 = write_result(tmp_path / "b", dominated(32, 32, 3, 1, 2), e, method="beta")
    data = load_training_maps([r0, r1], label_from="method")
    assert data.labels == ["alpha", "beta"]
    m = tmp_path / "m"
    m.mkdir()
    create_model_folder(m, data, **{**TINY, "lr": 3e-3, "warmup_steps": 10, "ema_decay": 0.9})
    train(m, max_steps=150, progress=False)
    model = load_model(m)
    assert model.labels == ["alpha", "beta"]
    kw = {"steps": 10, "seed": 0, "progress": False}
    g0 = model.sample(16, label="alpha", guidance=0.0, **kw)  # unconditional
    g3 = model.sample(16, label="alpha", guidance=3.0, **kw)
    b3 = model.sample(16, label="beta", guidance=3.0, **kw)
    assert not np.allclose(g0, g3)
    assert g3[..., 0].mean() > g0[..., 0].mean() and b3[..., 1].mean() > g0[..., 1].mean()
    for x in (g0, g3, b3):
        assert (x >= 0).all() and np.allclose(x.sum(-1), 1, atol=1e-5)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    write_result(root / "r1", smooth_maps(40, 36, 3, 0), endmembers(3))
    return root


def test_train_and_synthesize_commands(results, tmp_path, run_cli):
    model = tmp_path / "model"
    code, out, err = run_cli("train-abundance", results / "r1", "--out", model, "--patch", "8", "--width", "8",
                             "--max-steps", "3", "--no-progress", "--threads", "1")
    assert code == 0, err
    assert (model / "config.json").is_file() and (model / "checkpoint.json").is_file()
    assert (model / "training_curve.png").is_file()
    code, out, err = run_cli("train-abundance", "--resume", "--out", model, "--max-steps", "5", "--no-progress",
                             "--export", tmp_path / "slim")
    assert code == 0, err
    assert json.loads((model / "checkpoint.json").read_text())["step"] == 5
    slim = load_model(tmp_path / "slim")  # sampling-only copy: same weights, no training state
    np.testing.assert_array_equal(slim.sample(1, steps=2, progress=False),
                                  load_model(model).sample(1, steps=2, progress=False))
    assert not (tmp_path / "slim" / "data.npz").exists()
    assert (tmp_path / "slim" / "training_curve.png").is_file()
    code, out, err = run_cli("train-abundance", "--resume", "--out", tmp_path / "slim", "--max-steps", "6")
    assert code == 2 and "cannot be resumed" in err
    # a setting for a resumed model would be ignored: refused instead
    code, out, err = run_cli("train-abundance", "--resume", "--out", model, "--max-steps", "6", "--patch", "16")
    assert code == 2 and "--patch: not used with --resume" in err
    assert json.loads((model / "checkpoint.json").read_text())["step"] == 5
    synth = tmp_path / "synth"
    code, out, err = run_cli("synthesize", model, "--count", "3", "--size", "12", "--steps", "2",
                             "--out", synth, "--no-progress")
    assert code == 0, err
    with np.load(synth / "abundances.npz") as z:
        a = z["abundances"]
    assert a.shape == (3, 12, 12, 3) and (a >= 0).all() and np.allclose(a.sum(-1), 1, atol=1e-5)
    assert (synth / "abundances.png").is_file() and (synth / "run.json").is_file()
    assert len(sorted(synth.glob("map_*.tif"))) == 3
    code, out, err = run_cli("synthesize", model, "--count", "1", "--steps", "2", "--out", synth, "--no-progress")
    assert code == 2 and "exists" in err and "--overwrite" in err


@pytest.mark.parametrize("args, message", [
    (["--patch", "64"], "larger than the maps"),
    (["--patch", "36"], "only"),
    (["--label-from", "colour"], "--label-from"),
])
def test_train_bad_input(results, tmp_path, run_cli, args, message):
    code, out, err = run_cli("train-abundance", results / "r1", "--out", tmp_path / "m", "--max-steps", "1",
                             "--no-progress", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_divergence_exits_1_and_keeps_no_half_checkpoint(results, tmp_path, run_cli):
    """A numerical divergence is an internal failure (status 1), not bad input (2)."""
    code, _, err = run_cli("train-abundance", results / "r1", "--out", tmp_path / "m", "--patch", "8", "--width", "8",
                           "--lr", "1e30", "--max-steps", "20", "--no-progress")
    assert code == 1 and "diverged" in err and "no checkpoint was written yet" in err, err
    assert not (tmp_path / "m").exists()  # a new model that never reached a checkpoint leaves nothing


def test_train_refuses_mismatched_folders(results, tmp_path, run_cli):
    four = write_result(tmp_path / "four", smooth_maps(40, 36, 4, 1), endmembers(4))
    code, _, err = run_cli("train-abundance", results / "r1", four, "--out", tmp_path / "m", "--max-steps", "1")
    assert code == 2 and "4 endmembers" in err
    bands = write_result(tmp_path / "bands", smooth_maps(40, 36, 3, 1), endmembers(3, bands=30))
    code, _, err = run_cli("train-abundance", results / "r1", bands, "--out", tmp_path / "m", "--max-steps", "1")
    assert code == 2 and "30 bands" in err
    other = write_result(tmp_path / "other", smooth_maps(40, 36, 3, 1), endmembers(3, seed=9) ** 4)
    code, _, err = run_cli("train-abundance", results / "r1", other, "--out", tmp_path / "m", "--max-steps", "1")
    assert code == 2 and "do not match" in err


def test_too_few_patches_message_names_the_minimum(tmp_path, run_cli):
    small = write_result(tmp_path / "small", smooth_maps(17, 17, 3, 1), endmembers(3))
    code, _, err = run_cli("train-abundance", small, "--out", tmp_path / "m", "--patch", "8", "--max-steps", "1")
    assert code == 2 and "minimum" in err


def test_synthesize_bad_input(results, tmp_path, run_cli):
    code, _, err = run_cli("synthesize", tmp_path / "nothing", "--count", "1", "--out", tmp_path / "s")
    assert code == 2 and "no such model folder" in err
    incomplete = tmp_path / "inc"
    incomplete.mkdir()
    create_model_folder(incomplete, load_training_maps([results / "r1"]), **TINY)
    code, _, err = run_cli("synthesize", incomplete, "--count", "1", "--out", tmp_path / "s")
    assert code == 2 and "incomplete" in err
    train(incomplete, max_steps=1, progress=False)
    for args, name in ((["--count", "1", "--steps", "0"], "steps"), (["--count", "0"], "count"),
                       (["--count", "1", "--sampler", "euler"], "sampler"), (["--count", "1", "--seed", "-1"], "--seed -1")):
        code, _, err = run_cli("synthesize", incomplete, *args, "--out", tmp_path / "s")
        assert code == 2 and name in err and len(err.strip().splitlines()) == 1, err
    cfg = json.loads((incomplete / "config.json").read_text())
    cfg["format_version"] = 99
    (incomplete / "config.json").write_text(json.dumps(cfg))
    code, _, err = run_cli("synthesize", incomplete, "--count", "1", "--out", tmp_path / "s")
    assert code == 2 and "version" in err
    assert not (tmp_path / "s").exists()


def test_help_has_examples(run_cli):
    for cmd in ("train-abundance", "synthesize"):
        code, out, _ = run_cli(cmd, "--help")
        assert code == 0 and "Example: unmixgen " + cmd in " ".join(out.split())


def test_export_never_replaces_an_input_or_the_model(results, tmp_path, run_cli):
    """--export names a new folder: one of the result folders read, or --out itself, is
    refused before any training (with --overwrite the input would be replaced by the copy)."""
    import shutil

    r1 = tmp_path / "r1"
    shutil.copytree(results / "r1", r1)
    (r1 / "run.json").write_text('{"command": "unmix"}')  # as every unmix result has
    before = sorted(p.name for p in r1.iterdir())
    tiny = ["--patch", "8", "--width", "8", "--max-steps", "1", "--no-progress", "--threads", "1"]
    code, _, err = run_cli("train-abundance", r1, "--out", tmp_path / "m", "--export", r1, "--overwrite", *tiny)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "input" in err, err
    assert sorted(p.name for p in r1.iterdir()) == before and (r1 / "result.npz").is_file()
    assert not (tmp_path / "m").exists()
    code, _, err = run_cli("train-abundance", r1, "--out", tmp_path / "m", "--export", tmp_path / "m", *tiny)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--export" in err, err
    assert not (tmp_path / "m").exists()  # refused before training: no half-done model left


def test_too_many_maps_for_memory_names_count_not_size(results, tmp_path, run_cli):
    """A --count whose maps cannot fit in memory is refused naming --count (it named the
    default --size, which the user never gave)."""
    model = tmp_path / "model"
    code, _, err = run_cli("train-abundance", results / "r1", "--out", model, "--patch", "8", "--width", "8",
                           "--max-steps", "1", "--no-progress", "--threads", "1")
    assert code == 0, err
    code, _, err = run_cli("synthesize", model, "--count", "1000000000", "--steps", "2", "--out", tmp_path / "s",
                           "--no-progress")
    assert code == 2 and err.startswith("error: --count 1000000000:") and "GiB" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()
    code, _, err = run_cli("synthesize", model, "--count", "2", "--size", "100000", "--steps", "2",
                           "--out", tmp_path / "s", "--no-progress")
    assert code == 2 and err.startswith("error: --size 100000:") and "GiB" in err, err


def test_guidance_that_is_not_a_usable_number_is_refused(results, tmp_path, run_cli):
    """--guidance nan, inf or 1e30 made every map NaN (exit 0, 'non-negative and sums to one
    by construction' broken): refused, naming --guidance, and nothing is written."""
    other = write_result(tmp_path / "r2", smooth_maps(40, 36, 3, 1), endmembers(3))
    model = tmp_path / "model"
    code, _, err = run_cli("train-abundance", results / "r1", other, "--label-from", "folder", "--out", model,
                           "--patch", "8", "--width", "8", "--max-steps", "1", "--no-progress", "--threads", "1")
    assert code == 0, err
    for g in ("nan", "inf", "1e30"):
        code, _, err = run_cli("synthesize", model, "--count", "1", "--steps", "2", "--label", "r1",
                               "--guidance", g, "--out", tmp_path / "s", "--no-progress")
        assert code == 2 and err.startswith("error: --guidance") and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "s").exists()
    code, _, err = run_cli("synthesize", model, "--count", "1", "--steps", "2", "--label", "r1",
                           "--guidance", "3", "--out", tmp_path / "s", "--no-progress")
    assert code == 0, err
    with np.load(tmp_path / "s" / "abundances.npz") as z:
        assert np.isfinite(z["abundances"]).all()



def test_train_abundance_model_takes_one_result_folder_given_as_a_path(results, tmp_path):
    """One folder given as a path (str or Path) was read character by character ("/: not a
    result folder") or refused as not iterable."""
    from unmixgen.workflows import train_abundance_model

    for i, folder in enumerate((str(results / "r1"), results / "r1")):
        info = train_abundance_model(folder, tmp_path / f"m{i}", max_steps=1, progress=False, patch=8, width=8)
        assert info["step"] == 1


def test_train_abundance_model_refuses_a_misspelt_option_when_resuming(results, tmp_path):
    """A new model refuses an unknown prior option; a resumed one dropped it without a word."""
    from unmixgen.workflows import train_abundance_model

    model = tmp_path / "model"
    train_abundance_model([results / "r1"], model, max_steps=1, progress=False, patch=8, width=8)
    with pytest.raises(TypeError, match="widht"):
        train_abundance_model([], model, max_steps=2, resume=True, progress=False, widht=64)
    assert json.loads((model / "checkpoint.json").read_text())["step"] == 1
    assert train_abundance_model([], model, max_steps=2, resume=True, progress=False)["step"] == 2


def test_max_sad_with_one_result_folder_is_refused(results, tmp_path, run_cli):
    """``--max-sad`` limits how endmembers of several folders are matched; with one folder there
    is nothing to match and it was dropped without a word."""
    out = tmp_path / "m"
    code, _, err = run_cli("train-abundance", results / "r1", "--out", out, "--max-steps", "1", "--patch", "8",
                           "--max-sad", "0.1", "--no-progress")
    assert code == 2 and err.startswith("error: --max-sad 0.1:") and "two or more" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_settings_for_a_resumed_model_are_refused_not_dropped(results, tmp_path, run_cli):
    """A resumed model continues with the settings it was created with: ``width=64`` (Python)
    and ``--checkpoint-seconds`` / ``--checkpoint-steps`` (command line) were dropped without a
    word. They are refused, naming the setting, and the model is left as it was."""
    from unmixgen.errors import ParameterError
    from unmixgen.workflows import train_abundance_model

    model = tmp_path / "model"
    train_abundance_model([results / "r1"], model, max_steps=1, progress=False, patch=8, width=8)
    for name, value in (("width", 64), ("checkpoint_every_s", 5.0), ("label_from", "folder"), ("max_sad", 0.2)):
        with pytest.raises(ParameterError, match=f"^{re.escape(f'{name}={value!r}')}: not used when resuming"):
            train_abundance_model([], model, max_steps=2, resume=True, progress=False, **{name: value})
    for flag, value in (("--checkpoint-seconds", "5"), ("--checkpoint-steps", "1")):
        code, _, err = run_cli("train-abundance", "--resume", "--out", model, "--max-steps", "2", "--no-progress",
                               flag, value)
        assert code == 2 and err.startswith(f"error: {flag}: not used with --resume"), err
        assert len(err.strip().splitlines()) == 1
    assert json.loads((model / "checkpoint.json").read_text())["step"] == 1


@pytest.mark.parametrize("key", ["training", "data", "network", "representation"])
def test_resuming_a_model_whose_config_lacks_a_section_is_refused(results, tmp_path, key):
    # a config.json without its training or data section raised KeyError when resuming (exit 1)
    from unmixgen.errors import InputError
    from unmixgen.workflows import train_abundance_model

    model = tmp_path / "model"
    train_abundance_model([results / "r1"], model, max_steps=1, progress=False, patch=8, width=8)
    cfg = json.loads((model / "config.json").read_text())
    del cfg[key]
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=f"config.json: lacks the field '{key}'"):
        train(model, max_steps=2, progress=False)
    assert json.loads((model / "checkpoint.json").read_text())["step"] == 1


def test_outputs_inside_an_input_folder_are_refused(results, tmp_path, run_cli):
    """A model inside the result folder it learns from, a synthesize folder inside the model,
    a copy inside the model it copies: each changed a folder the command reads (and a later
    --overwrite of that folder deleted the output with it). Refused, one line, nothing written."""
    import shutil

    r1 = tmp_path / "r1"
    shutil.copytree(results / "r1", r1)
    tiny = ["--patch", "8", "--width", "8", "--max-steps", "1", "--no-progress", "--threads", "1"]
    code, _, err = run_cli("train-abundance", r1, "--out", r1 / "model", *tiny)
    assert code == 2 and "inside the input folder" in err and len(err.strip().splitlines()) == 1, err
    model = tmp_path / "model"
    code, _, err = run_cli("train-abundance", r1, "--out", model, "--export", model / "slim", *tiny)
    assert code == 2 and "--export" in err and len(err.strip().splitlines()) == 1, err
    assert not model.exists()  # refused before training
    assert run_cli("train-abundance", r1, "--out", model, *tiny)[0] == 0
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, _, err = run_cli("synthesize", model, "--count", "1", "--steps", "2", "--out", model / "synth",
                           "--no-progress")
    assert code == 2 and "inside the input folder" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli("simulate", "--abundances", r1, "--endmembers", r1, "--out", r1 / "sim")
    assert code == 2 and "inside the input folder" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_synthesize_makes_maps_of_any_rows_and_cols(results, tmp_path, run_cli):
    """--size took one number: every map was square, whatever scene it was meant for. Now
    --size ROWSxCOLS gives rows x cols maps (by the rule square sizes follow: any size, the
    network sees patch-sized tiles of a canvas at least a patch on each side), --size N stays
    square, and a size that is neither form is one line naming --size and both forms."""
    model = tmp_path / "model"
    code, _, err = run_cli("train-abundance", results / "r1", "--out", model, "--patch", "8", "--width", "8",
                           "--max-steps", "1", "--no-progress", "--threads", "1")
    assert code == 0, err
    for text, shape in (("12x20", (12, 20)), ("5X13", (5, 13)), ("21x6", (21, 6)), ("11", (11, 11))):
        out = tmp_path / f"s{text}"
        code, stdout, err = run_cli("synthesize", model, "--count", "2", "--size", text, "--steps", "2",
                                    "--out", out, "--no-progress")
        assert code == 0, err
        with np.load(out / "abundances.npz") as z:
            a = z["abundances"]
        assert a.shape == (2, *shape, 3) and (a >= 0).all() and np.allclose(a.sum(-1), 1, atol=1e-5)
        assert f"{shape[0]}x{shape[1]}x3" in stdout
        assert json.loads((out / "run.json").read_text())["parameters"]["size"] == list(shape)
        from unmixgen.io import read_scene

        assert read_scene(out / "map_001.tif").shape == (*shape, 3)
    # the library takes (rows, cols)
    m = load_model(model)
    wide = m.sample(2, size=(7, 12), steps=2, seed=4, progress=False)
    assert wide.shape == (2, 7, 12, 3)
    for bad in ("12x", "x20", "0x5", "12x-3", "12x20x3", "ax5", "1.5x4", "0"):
        code, _, err = run_cli("synthesize", model, "--count", "1", "--size", bad, "--steps", "2",
                               "--out", tmp_path / "bad", "--no-progress")
        assert code == 2 and err.startswith(f"error: --size {bad}:") and "ROWSxCOLS" in err, (bad, err)
        assert len(err.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
    from unmixgen.errors import ParameterError

    for bad in ((0, 4), (4,), (4, 5, 6), (4.5, 4), "12x20"):
        with pytest.raises(ParameterError, match="size"):
            m.sample(1, size=bad, steps=2, progress=False)
    # held-out maps that are not square: evaluate-synthesis MODEL refused them ("the model
    # samples square maps"); it now samples maps of their size
    held = smooth_maps(10, 14, 3, 5)[None].repeat(4, axis=0).astype(np.float32)
    np.savez(tmp_path / "held.npz", heldout=held)
    code, stdout, err = run_cli("evaluate-synthesis", model, "--reference", tmp_path / "held.npz", "--count", "3",
                                "--steps", "2", "--json")
    assert code == 0, err
    assert json.loads(stdout)["size"] == [10, 14]


def test_synthesize_figure_names_its_maps_and_says_how_many_it_shows(tmp_path, monkeypatch):
    """synthesize's abundances.png showed up to 16 maps without a word on which: no panel titles
    (map_000.tif ...) and '16 abundance maps' for a run of 18; the title now says they are
    synthetic, how many of how many, and each panel names its file."""
    from unmixgen.priors.abundance.model import DEMO_MODEL
    from unmixgen.report import figures as report
    from unmixgen.workflows.abundance import synthesize_maps

    drawn: list = []
    save = report._save
    monkeypatch.setattr(report, "_save", lambda fig, path: (drawn.append(fig), save(fig, path))[1])
    synthesize_maps(DEMO_MODEL, 18, tmp_path / "syn", size=(6, 9), steps=1, progress=False)
    fig = drawn[-1]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"map_{i:03d}" for i in range(16)]
    assert all((tmp_path / "syn" / f"{t}.tif").is_file() for t in titles)
    assert "synthetic" in fig.get_suptitle() and "16 of 18" in fig.get_suptitle()
