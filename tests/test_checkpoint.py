"""The model folder: kind, legacy folders, checkpoint pointer safety, atomic re-saves."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from unmixgen.errors import InputError, ParameterError
from unmixgen.nn import checkpoint as ck
from unmixgen.priors.abundance.model import DEMO_MODEL, load_model


def saved_folder(path, kind="spectra_prior", step=3):
    """A model folder of ``kind`` with one checkpoint."""
    path.mkdir()
    ck.write_config(path, ck.new_config(kind, width=4))
    ck.save_checkpoint(path, step, weights={"w": torch.arange(4.0)}, training={"model.w": torch.ones(4)},
                       state={"losses": [1.0]})
    return path


@pytest.mark.parametrize("kind", ck.KINDS)
def test_kind_round_trips_and_a_wrong_kind_is_refused(tmp_path, kind):
    folder = saved_folder(tmp_path / "m", kind)
    cfg = ck.read_config(folder, kind=kind)
    assert cfg["kind"] == kind and cfg["width"] == 4 and cfg["format"] == ck.FORMAT
    other = next(k for k in ck.KINDS if k != kind)
    with pytest.raises(InputError, match=f"holds a model of kind '{kind}'; expected kind '{other}'"):
        ck.read_config(folder, kind=other)
    path = ck.latest_checkpoint(folder)
    assert torch.equal(ck.load_weights(path)["w"], torch.arange(4.0))
    tensors, state = ck.load_state(path)
    assert torch.equal(tensors["model.w"], torch.ones(4)) and state == {"losses": [1.0], "step": 3}


def test_unknown_kind_is_refused():
    with pytest.raises(ParameterError, match="^kind='cnn': expected one of"):
        ck.new_config("cnn")


def test_folder_without_kind_loads_as_an_abundance_prior(tmp_path):
    cfg = json.loads((DEMO_MODEL / "config.json").read_text())
    assert "kind" not in cfg and cfg["format"] == "unmixgen-abundance-diffusion"  # as shipped
    assert ck.read_config(DEMO_MODEL, kind="abundance_prior")["kind"] == "abundance_prior"
    assert load_model(DEMO_MODEL).n_endmembers == cfg["n_endmembers"]


def test_abundance_model_refuses_another_kind(tmp_path):
    demo = tmp_path / "demo"
    shutil.copytree(DEMO_MODEL, demo)
    cfg = json.loads((demo / "config.json").read_text())
    (demo / "config.json").write_text(json.dumps({**cfg, "format": ck.FORMAT, "kind": "spectra_prior"}))
    with pytest.raises(InputError, match="holds a model of kind 'spectra_prior'; expected kind 'abundance_prior'"):
        load_model(demo)


@pytest.mark.parametrize("text", [b"[1, 2]", b'"model"', b"\xff\xfe{}"])
def test_a_config_that_is_no_json_object_is_refused(tmp_path, text):
    # a JSON list or string raised AttributeError ('list' object has no attribute 'get'), bytes
    # that are no UTF-8 a UnicodeDecodeError: internal errors instead of a line naming the file
    folder = saved_folder(tmp_path / "m")
    (folder / "config.json").write_bytes(text)
    with pytest.raises(InputError, match=r"config.json: .*; expected a JSON object of the model's settings$"):
        ck.read_config(folder)


@pytest.mark.parametrize("pointer", ["../outside/step-00000003", "{outside}", ".",
                                     "checkpoints/../../outside/step-00000003"])
def test_checkpoint_pointer_outside_the_folder_is_refused(tmp_path, pointer):
    folder = saved_folder(tmp_path / "m")
    outside = tmp_path / "outside" / "step-00000003"
    shutil.copytree(ck.latest_checkpoint(folder), outside)  # a complete checkpoint, elsewhere
    (folder / "checkpoint.json").write_text(json.dumps({"step": 3, "path": pointer.format(outside=outside)}))
    with pytest.raises(InputError) as err:
        ck.latest_checkpoint(folder)
    assert str(err.value).startswith(f"{folder / 'checkpoint.json'}: points outside the model folder")


def test_resaving_a_step_replaces_it_and_removes_older_checkpoints(tmp_path):
    folder = saved_folder(tmp_path / "m", step=3)
    ck.save_checkpoint(folder, 5, weights={"w": torch.zeros(4)}, training={}, state={})
    ck.save_checkpoint(folder, 5, weights={"w": torch.full((4,), 7.0)}, training={}, state={})
    assert [p.name for p in (folder / "checkpoints").iterdir()] == ["step-00000005"]
    assert torch.equal(ck.load_weights(ck.latest_checkpoint(folder))["w"], torch.full((4,), 7.0))


def test_damaged_or_incomplete_pointer(tmp_path):
    folder = saved_folder(tmp_path / "m")
    for text in (b"{not json", b"\xff\xfe{}"):  # the bytes that are no UTF-8 raised UnicodeDecodeError
        (folder / "checkpoint.json").write_bytes(text)
        with pytest.raises(InputError, match="checkpoint.json: is damaged"):
            ck.latest_checkpoint(folder)
    (folder / "checkpoint.json").write_text(json.dumps({"step": 9, "path": "checkpoints/step-00000009"}))
    with pytest.raises(InputError, match="incomplete"):
        ck.latest_checkpoint(folder)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_damaged_weights_state_and_arrays_are_input_errors(tmp_path):
    # a truncated file of a model folder is bad input (exit 2 naming it), not an internal error
    import numpy as np

    folder = saved_folder(tmp_path / "m")
    path = ck.latest_checkpoint(folder)
    for name, load in ((ck.EMA_FILE, lambda: ck.load_weights(path)), (ck.STATE_FILE, lambda: ck.load_state(path))):
        shutil.copy(path / name, tmp_path / "keep")
        _truncate(path / name)
        with pytest.raises(InputError, match=f"{name}: cannot read .*damaged"):
            load()
        shutil.copy(tmp_path / "keep", path / name)
    (path / ck.STATE_JSON).write_text("{not json")
    with pytest.raises(InputError, match="state.json: is damaged"):
        ck.read_state(path)
    ck.save_arrays(folder / "endmembers.npz", {"e": np.arange(1000.0)})
    _truncate(folder / "endmembers.npz")
    with pytest.raises(InputError, match="endmembers.npz: cannot read .*damaged"):
        ck.load_arrays(folder / "endmembers.npz")


def test_weights_are_written_with_the_usual_permissions(tmp_path):
    import os
    import stat

    folder = saved_folder(tmp_path / "m")
    path = ck.latest_checkpoint(folder)
    umask = os.umask(0)
    os.umask(umask)
    for name in (ck.EMA_FILE, ck.STATE_FILE, ck.STATE_JSON):
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o666 & ~umask, name


def _edited_copy(src, dest, edit):
    """A copy of model folder ``src`` at ``dest`` whose config.json went through ``edit(cfg)``."""
    shutil.copytree(src, dest)
    cfg = json.loads((dest / "config.json").read_text())
    edit(cfg)
    (dest / "config.json").write_text(json.dumps(cfg))
    return dest


ABUNDANCE_EDITS = {
    "no network": lambda c: c.pop("network"),
    "no representation": lambda c: c.pop("representation"),
    "no schedule": lambda c: c.pop("schedule"),
    "no n_endmembers": lambda c: c.pop("n_endmembers"),
    "patch_size text": lambda c: c.update(patch_size="x"),
    "patch_size < 0": lambda c: c.update(patch_size=-16),
    "width < 0": lambda c: c["network"].update(width=-1),
    "names a number": lambda c: c.update(names=3),
    "labels a number": lambda c: c.update(labels=3),
    "another p": lambda c: c.update(n_endmembers=4),
    "unknown prediction": lambda c: c["schedule"].update(prediction_type="zz"),
    "no timesteps": lambda c: c["schedule"].update(num_train_timesteps=-1),
}


@pytest.mark.parametrize("edit", ABUNDANCE_EDITS, ids=list(ABUNDANCE_EDITS))
def test_an_abundance_prior_with_a_hand_edited_config_is_refused(tmp_path, edit):
    # each raised KeyError, ValueError, TypeError or RuntimeError (internal errors) when loading or
    # sampling; an unknown prediction type was read as v_prediction without a word
    folder = _edited_copy(DEMO_MODEL, tmp_path / "m", ABUNDANCE_EDITS[edit])
    with pytest.raises(InputError, match=r"/m/config.json: ") as err:
        load_model(folder).sample(1, steps=2, progress=False)
    assert "\n" not in str(err.value)


SPECTRA_EDITS = {
    "no network": lambda c: c.pop("network"),
    "no schedule": lambda c: c.pop("schedule"),
    "representation a list": lambda c: c.update(representation=[1]),
    "scale text": lambda c: c["representation"].update(scale="x"),
    "scale NaN": lambda c: c["representation"].update(scale=float("nan")),
    "unknown prediction": lambda c: c["schedule"].update(prediction_type="zz"),
}


@pytest.mark.parametrize("edit", SPECTRA_EDITS, ids=list(SPECTRA_EDITS))
def test_a_spectra_prior_with_a_hand_edited_config_is_refused(tmp_path, edit):
    # a NaN scale made refine refuse "endmembers contain NaN or Inf", naming no file; the others
    # raised KeyError, AttributeError or ValueError, or went on as v_prediction
    from unmixgen.priors.spectra.model import SpectraModel, shipped_spectra_prior_dir

    folder = _edited_copy(shipped_spectra_prior_dir(), tmp_path / "m", SPECTRA_EDITS[edit])
    with pytest.raises(InputError, match=r"/m(/config.json)?: ") as err:
        SpectraModel(folder)
    assert "\n" not in str(err.value)


def test_a_state_json_without_its_step_is_damaged(tmp_path):
    folder = saved_folder(tmp_path / "m")
    path = ck.latest_checkpoint(folder)
    (path / ck.STATE_JSON).write_text(json.dumps({"losses": [1.0]}))
    with pytest.raises(InputError, match="state.json: is damaged"):
        ck.read_state(path)


def test_a_holdout_without_its_held_out_maps_is_refused(tmp_path):
    # evaluate-synthesis MODEL (and the demo) raised KeyError 'heldout', exit 1
    import numpy as np

    folder = tmp_path / "m"
    shutil.copytree(DEMO_MODEL, folder)
    with np.load(folder / "holdout.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "heldout"}
    np.savez(folder / "holdout.npz", **arrays)
    with pytest.raises(InputError, match=r"holdout.npz: has no 'heldout' array \(keys: floor, train\)"):
        load_model(folder).holdout()
    assert set(load_model(DEMO_MODEL).holdout()) >= {"heldout", "floor", "train"}


def test_a_file_of_a_model_folder_given_for_the_folder_is_named_as_such(tmp_path):
    # the model's config.json given for the model read "no such model folder", as if nothing were there
    folder = saved_folder(tmp_path / "m")
    with pytest.raises(InputError, match=r"config.json: is a file, not a model folder; expected the folder .*/m"):
        ck.read_config(folder / "config.json")
    with pytest.raises(InputError, match="no such model folder"):
        ck.read_config(tmp_path / "absent")
