"""The 1D spectra prior: grid representation, network, training folder, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unmixgen.errors import InputError
from unmixgen.priors.spectra.model import SpectraModel
from unmixgen.priors.spectra.network import ResUNet1d
from unmixgen.priors.spectra.representation import GRID_NM, SpectralGrid, good_band_mask
from unmixgen.workflows import train_spectra_model

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def smooth_spectra(n: int, wl: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = (wl - wl.mean()) / np.ptp(wl)
    c = rng.normal(size=(n, 4))
    return (0.3 + 0.1 * np.tanh(c[:, :1] + c[:, 1:2] * u + c[:, 2:3] * u ** 2)
            + 0.05 * np.sin(3 * u * c[:, 3:4])).astype(np.float32)


def test_grid_round_trip_and_brightness_invariance():
    wl = np.arange(400.0, 2451.0, 10.0)
    s = smooth_spectra(5, wl)
    rep = SpectralGrid(scale=0.2)
    x, bright, obs = rep.to_grid(s, wl)
    assert x.shape == (5, GRID_NM.size) and obs.sum() < GRID_NM.size  # 385-400 nm not observed
    edge = (s[:, :1] / bright[:, None] - 1) / 0.2  # below the sensor: its first band's value
    np.testing.assert_allclose(x[:, ~obs & (GRID_NM < 400)], edge * np.ones((1, 2)), atol=1e-5)
    x3, bright3, _ = rep.to_grid(3 * s, wl)
    np.testing.assert_allclose(x3, x, atol=1e-5)
    np.testing.assert_allclose(bright3, 3 * bright, rtol=1e-5)
    back = rep.from_grid(x, bright, rep.srf(wl))
    assert np.max(np.abs(back - s) / s) < 0.02


def test_good_band_mask_drops_water_bands():
    good = good_band_mask()
    assert not good[np.argmin(np.abs(GRID_NM - 1400))] and not good[np.argmin(np.abs(GRID_NM - 1850))]
    assert good[np.argmin(np.abs(GRID_NM - 1000))]


def test_sensor_outside_grid_is_refused():
    with pytest.raises(InputError, match="grid"):
        SpectralGrid().to_grid(np.ones((1, 10)), np.linspace(3000, 4000, 10))


def test_network_keeps_shape_and_depends_on_time():
    net = ResUNet1d(width=8, channel_mult=(1, 2))
    torch.nn.init.normal_(net.out[-1].weight)
    x = torch.randn(3, 1, 256)
    a = net(x, torch.tensor([10, 10, 10]))
    b = net(x, torch.tensor([900, 900, 900]))
    assert a.shape == x.shape and not torch.allclose(a, b)


def test_train_load_and_denoise(tmp_path):
    wl = np.arange(400.0, 2451.0, 10.0)
    np.savez(tmp_path / "lib.npz", endmembers=smooth_spectra(40, wl), wavelengths=wl)
    info = train_spectra_model([tmp_path / "lib.npz"], tmp_path / "prior", max_steps=3, progress=False,
                               width=8, channel_mult=[1, 2], batch_size=8)
    assert info["step"] == 3
    prior = SpectraModel(tmp_path / "prior")
    assert prior.config["kind"] == "spectra_prior" and prior.config["data"]["n_heldout"] == 8
    x = np.zeros((2, 256), np.float32)
    assert prior.denoise(x, 0.5).shape == (2, 256)
    assert prior.timestep_for_sigma(0.01) < prior.timestep_for_sigma(1.0)


def test_abundance_prior_is_not_a_spectra_prior():
    from unmixgen.priors.abundance.model import shipped_demo_model

    with pytest.raises(InputError, match="expected kind .spectra_prior."):
        SpectraModel(shipped_demo_model().model_dir)


def test_train_spectra_model_takes_one_source_given_as_a_path(tmp_path):
    """One source given as a path was read character by character ("/: not a result folder")."""
    wl = np.arange(400.0, 2451.0, 10.0)
    np.savez(tmp_path / "lib.npz", endmembers=smooth_spectra(20, wl), wavelengths=wl)
    for i, source in enumerate((str(tmp_path / "lib.npz"), tmp_path / "lib.npz")):
        info = train_spectra_model(source, tmp_path / f"prior{i}", max_steps=1, progress=False, width=8,
                                   channel_mult=[1, 2], batch_size=8)
        assert info["step"] == 1


@pytest.mark.parametrize("key", ["training", "representation", "schedule"])
def test_resuming_a_spectra_prior_whose_config_lacks_a_section_is_refused(tmp_path, key):
    # a config.json without its training, representation or schedule section raised KeyError
    # when resuming (train-spectra --resume, exit 1)
    import json

    from unmixgen.priors.spectra.train import train

    wl = np.arange(400.0, 2451.0, 10.0)
    np.savez(tmp_path / "lib.npz", endmembers=smooth_spectra(20, wl), wavelengths=wl)
    train_spectra_model([tmp_path / "lib.npz"], tmp_path / "prior", max_steps=1, progress=False, width=8,
                        channel_mult=[1, 2], batch_size=8)
    cfg_path = tmp_path / "prior" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg[key]
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=f"config.json: (lacks the field '{key}'|schedule None)"):
        train(tmp_path / "prior", max_steps=2, progress=False)
    assert json.loads((tmp_path / "prior" / "checkpoint.json").read_text())["step"] == 1


def test_train_spectra_resume_continues_to_the_uninterrupted_result(tmp_path, run_cli):
    # train-spectra had no --resume: a run stopped after a checkpoint could only be thrown away
    from safetensors.numpy import load_file

    wl = np.arange(400.0, 2451.0, 10.0)
    np.savez(tmp_path / "lib.npz", endmembers=smooth_spectra(20, wl), wavelengths=wl)
    small = ["--width", "8", "--batch-size", "8", "--no-progress"]
    code, _, err = run_cli("train-spectra", tmp_path / "lib.npz", "--out", tmp_path / "whole", "--max-steps", "4",
                           *small)
    assert code == 0, err
    code, _, err = run_cli("train-spectra", tmp_path / "lib.npz", "--out", tmp_path / "part", "--max-steps", "2",
                           *small)
    assert code == 0, err
    code, out, err = run_cli("train-spectra", "--resume", "--out", tmp_path / "part", "--max-steps", "4",
                             "--no-progress")
    assert code == 0, err
    assert "step 4" in out

    def ema(folder):
        step = json.loads((folder / "checkpoint.json").read_text())
        files = sorted((folder / "checkpoints").glob("step-*/ema.safetensors"))
        return step["step"], load_file(files[-1])

    (s_whole, w_whole), (s_part, w_part) = ema(tmp_path / "whole"), ema(tmp_path / "part")
    assert s_whole == s_part == 4 and w_whole.keys() == w_part.keys()
    for k in w_whole:
        np.testing.assert_array_equal(w_whole[k], w_part[k])
    for extra in ((tmp_path / "lib.npz",), ("--width", "16"), ()):
        target = tmp_path / "part" if extra != () else tmp_path / "nowhere"
        code, _, err = run_cli("train-spectra", "--resume", *extra, "--out", target, "--max-steps", "5")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
