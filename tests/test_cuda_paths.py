"""The CUDA code paths, run on a CPU-only machine under a pretend GPU (`fake_cuda`): every
network trains, resumes, samples, refines and applies with ``device="cuda"`` without mixing
devices, and gives the CPU run's numbers (the noise comes from CPU generators, the weights
are initialised on the CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fake_cuda import fake_cuda
from unmixgen.errors import ParameterError
from unmixgen.nn import checkpoint as ck
from unmixgen.nn.device import resolve_device
from unmixgen.nn.trainer import Trainer

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def gpu(monkeypatch):
    """A function running ``f()`` under the pretend GPU."""

    def run(f):
        with fake_cuda(monkeypatch):
            return f()

    return run


def test_the_pretend_gpu_refuses_what_cuda_refuses(gpu):
    """The harness itself: mixed devices, numpy of a GPU tensor and a CPU generator drawing GPU
    noise each raise, as on a real GPU; ``auto`` resolves to the GPU."""
    def body():
        x = torch.ones(3).to("cuda")
        assert x.device.type == "cuda" and resolve_device("auto") == "cuda"
        with pytest.raises(RuntimeError, match="same device"):
            x + torch.ones(3)
        with pytest.raises(RuntimeError, match="same device"):
            torch.nn.Linear(3, 1)(x[None])
        with pytest.raises(TypeError, match="cpu"):
            x.numpy()
        with pytest.raises(RuntimeError, match="generator"):
            torch.randn(3, generator=torch.Generator(), device="cuda")
        assert (x + torch.tensor(1.0)).device.type == "cuda"  # a 0-dim CPU tensor is a scalar
        assert torch.zeros(2, device=x.device).device.type == "cuda"
        net = torch.nn.Linear(3, 1).to("cuda")
        assert net(x[None]).device.type == "cuda"
        np.testing.assert_array_equal(x.cpu().numpy(), np.ones(3))

    gpu(body)


def test_trainer_resumes_on_the_gpu_as_on_the_cpu(tmp_path, gpu):
    """Checkpoints written from GPU weights, optimizer moments and the CUDA RNG state are read
    back (every tensor saved from the CPU), and a killed-and-resumed GPU run ends where the
    uninterrupted CPU run does."""
    w_true = torch.tensor([[1.5, -2.0, 0.5]])

    def trainer(folder, device):
        def loss_fn(model, gen):
            x = torch.randn(16, 3, generator=gen)
            y = x @ w_true.T + 0.1 * torch.randn(16, 1, generator=gen)
            return torch.mean((model(x.to(device)) - y.to(device)) ** 2)

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(3, 1))
        folder.mkdir(exist_ok=True)
        return Trainer(model, loss_fn, folder, lr=0.05, warmup_steps=4, ema_decay=0.9, checkpoint_every_s=None,
                       log_every=3, device=device)

    straight = trainer(tmp_path / "cpu", "cpu").fit(max_steps=9, progress=False)

    def on_gpu():
        trainer(tmp_path / "gpu", "cuda").fit(max_steps=4, progress=False)
        resumed = trainer(tmp_path / "gpu", "cuda")
        assert resumed.step == 4 and next(resumed.model.parameters()).device.type == "cuda"
        return resumed.fit(max_steps=9, progress=False)

    # (on a real GPU dropout draws from the CUDA generator, so the losses would differ from the CPU's)
    summary = gpu(on_gpu)
    assert summary.step == straight.step == 9
    assert summary.curve_losses == straight.curve_losses
    wc, wg = (ck.load_weights(ck.latest_checkpoint(tmp_path / n)) for n in ("cpu", "gpu"))
    assert all(torch.equal(wc[k], wg[k]) for k in wc)
    state, _ = ck.load_state(ck.latest_checkpoint(tmp_path / "gpu"))
    assert "rng.cuda" in state and all(v.device.type == "cpu" for v in state.values())


def test_hybridstu_trains_and_applies_on_the_gpu_as_on_the_cpu(tmp_path, gpu):
    """The subspace front's step-0 validation ran the freshly built (CPU) network on GPU
    inputs before the trainer moved it: every GPU fit failed. Now fit, save, load and apply
    on the GPU give the CPU's abundances."""
    from test_hybridstu import sim_scene, small
    from unmixgen.unmix.hybridstu import HybridSTU

    scene, E, _ = sim_scene()
    opts = dict(max_steps=40, eval_every=20)
    cpu = small(**opts).fit(scene, endmembers=E)

    def on_gpu():
        est = small(device="cuda", **opts).fit(scene, endmembers=E)
        est.save_pretrained(tmp_path / "m")
        return est, HybridSTU.from_pretrained(tmp_path / "m", device="auto").transform(scene)

    est, applied = gpu(on_gpu)
    np.testing.assert_array_equal(est.abundances_, cpu.abundances_)
    np.testing.assert_array_equal(applied, cpu.abundances_)
    assert est.history_["validation_rmse"] == cpu.history_["validation_rmse"]


def _abundance_prior(folder, device, labels=None):
    from unmixgen.priors.abundance.patches import TrainingMaps
    from unmixgen.priors.abundance.train import create_model_folder, train
    from unmixgen.simulate.procedural import abundance_maps

    folder.mkdir()
    p = 2 if labels is None else 3
    maps = [abundance_maps(24, 24, p, np.random.default_rng(s)) for s in range(2)]
    create_model_folder(folder, TrainingMaps(maps, [f"e{i}" for i in range(p)], labels=labels), patch=8, width=8,
                        channel_mult=[1, 2])
    train(folder, max_steps=2, progress=False, device=device)
    train(folder, max_steps=3, progress=False, device=device)  # a resume
    return folder


def test_abundance_prior_trains_resumes_and_samples_on_the_gpu_as_on_the_cpu(tmp_path, gpu):
    """Training (and its resume), sampling with every sampler on blended tiles, and guided
    sampling of a labelled prior run on the GPU with the CPU's numbers."""
    from unmixgen.priors.abundance.model import AbundanceModel

    def run(tag, device):
        plain = AbundanceModel(_abundance_prior(tmp_path / f"p{tag}", device), device)
        labelled = AbundanceModel(_abundance_prior(tmp_path / f"l{tag}", device, labels=["a", "b"]), device)
        out = {s: plain.sample(2, size=(10, 20), sampler=s, steps=2, seed=0, progress=False)
               for s in ("ddim", "dpm", "ddpm")}
        out["guided"] = labelled.sample(2, size=12, steps=2, seed=0, label="a", guidance=2.0, progress=False)
        return out

    cpu = run("c", "cpu")
    on_gpu = gpu(lambda: run("g", "cuda"))
    for key, maps in cpu.items():
        np.testing.assert_array_equal(on_gpu[key], maps, err_msg=key)


def test_spectra_prior_and_refine_run_on_the_gpu_as_on_the_cpu(tmp_path, gpu):
    """The spectra prior trains and resumes on the GPU; refinement with both priors (pull,
    endmember and abundance samplers, two rounds, the cross-validated weight) gives the CPU's
    result."""
    from test_refine import scene
    from test_spectra_prior import smooth_spectra
    from unmixgen.priors.abundance.model import AbundanceModel
    from unmixgen.priors.spectra.model import SpectraModel
    from unmixgen.refine.posterior import refine
    from unmixgen.workflows import train_spectra_model

    wl = np.arange(400.0, 2451.0, 10.0)
    np.savez(tmp_path / "lib.npz", endmembers=smooth_spectra(40, wl), wavelengths=wl)
    Y, E, A = scene(p=3, bands=20, snr=30)
    bands = np.linspace(450.0, 2400.0, 20)

    def run(tag, device):
        folder = tmp_path / f"s{tag}"
        train_spectra_model([tmp_path / "lib.npz"], folder, max_steps=2, progress=False, width=8,
                            channel_mult=[1, 2], batch_size=8, device=device)
        train_spectra_model([], folder, max_steps=3, progress=False, resume=True, device=device)
        spectra = SpectraModel(folder, device)
        prior = AbundanceModel(_abundance_prior(tmp_path / f"a{tag}", device), device)
        r = refine(Y, E, A, abundance_prior=prior, spectra_prior=spectra, wavelengths=bands, samples=2, steps=2,
                   rounds=2, device=device)
        return spectra.denoise(np.zeros((2, 256), np.float32), 0.5), r

    den_cpu, r_cpu = run("c", "cpu")
    den_gpu, r_gpu = gpu(lambda: run("g", "cuda"))
    np.testing.assert_array_equal(den_gpu, den_cpu)
    for name in ("abundances", "abundances_std", "endmembers"):
        np.testing.assert_array_equal(getattr(r_gpu, name), getattr(r_cpu, name), err_msg=name)


def test_refine_refuses_priors_loaded_on_another_device(tmp_path, gpu):
    """``refine(device="auto")`` on a GPU machine with priors loaded as by default (on the
    CPU) met torch's device mismatch in the first network call; now it is a `ParameterError`
    naming the prior and how to load it."""
    from test_refine import scene
    from unmixgen.priors.abundance.model import AbundanceModel
    from unmixgen.priors.spectra.model import load_spectra_prior
    from unmixgen.refine.posterior import refine

    folder = _abundance_prior(tmp_path / "p", "cpu")
    Y, E, A = scene(p=3, bands=20)

    def body():
        with pytest.raises(ParameterError, match=r"abundance_prior=.*loaded on cpu but refine runs on cuda.*"
                                                 r"device='cuda'"):
            refine(Y, E, A, abundance_prior=AbundanceModel(folder), samples=2, steps=2, device="auto")
        with pytest.raises(ParameterError, match="spectra_prior=.*loaded on cpu"):
            refine(Y, E, A, abundance_prior=AbundanceModel(folder, "cuda"), spectra_prior=load_spectra_prior(),
                   wavelengths=np.linspace(450.0, 2400.0, 20), samples=2, steps=2, device="cuda")
        r = refine(Y, E, A, abundance_prior=AbundanceModel(folder, "auto"), samples=2, steps=2, lam=1.0,
                   device="auto")
        assert np.isfinite(r.abundances).all()

    gpu(body)


def test_every_command_with_a_device_runs_on_the_gpu_as_on_the_cpu(tmp_path, run_cli, gpu, monkeypatch):
    """``--device auto`` / ``cuda`` of train-abundance (and its resume), synthesize,
    train-spectra, refine, train-stu (maps sampled from a prior) and unmix --method hybridstu:
    exit 0 with the CPU's numbers."""
    from test_refine import scene
    from unmixgen.io import write_scene
    from unmixgen.workflows import semiblind

    # train-stu samples its training maps from the 8-pixel prior: HybridSTU's 24 maps of 48 x 48
    # (121 tiles each, 20 steps) were 14 of the test's 16 s; 4 maps of 24 x 24 take the same path
    sample_maps = semiblind.stu_training_maps
    monkeypatch.setattr(semiblind, "stu_training_maps",
                        lambda *args, **kw: sample_maps(*args, **{**kw, "n_maps": 4, "map_size": 24}))
    from unmixgen.runs.folder import save_result
    from unmixgen.scene import Scene
    from unmixgen.simulate.procedural import abundance_maps
    from unmixgen.unmix.inversion import fcls

    wl = np.arange(400.0, 2451.0, 50.0)
    rng = np.random.default_rng(0)
    E = rng.uniform(0.1, 0.9, (3, wl.size)).astype(np.float32)
    A = abundance_maps(32, 36, 3, rng)
    Y = (A @ E + rng.normal(0, 0.005, A.shape[:2] + (wl.size,))).astype(np.float32)
    sc = Scene(Y, wavelengths=wl)
    write_scene(sc, tmp_path / "scene.npz")
    (tmp_path / "init").mkdir()
    save_result(tmp_path / "init", sc, endmembers=E,
                abundances=fcls(Y.reshape(-1, wl.size), E).reshape(A.shape), figures=False)
    np.savez(tmp_path / "em.npz", endmembers=E, wavelengths=wl)
    np.savez(tmp_path / "lib.npz", endmembers=np.abs(scene(rows=6, cols=5, bands=wl.size)[0]).reshape(30, -1),
             wavelengths=wl)

    def commands(tag: str, device: str) -> dict:
        d = tmp_path / tag
        quiet = ("--no-progress",)
        runs = [
            ("train-abundance", tmp_path / "init", "--out", d / "ab", "--patch", "8", "--width", "8", "--max-steps", "2",
             "--device", device, *quiet),
            ("train-abundance", "--resume", "--out", d / "ab", "--max-steps", "3", "--device", device, *quiet),
            ("synthesize", d / "ab", "--count", "2", "--size", "12", "--steps", "2", "--out", d / "syn",
             "--device", device, *quiet),
            ("train-spectra", tmp_path / "lib.npz", "--out", d / "sp", "--max-steps", "2", "--width", "8",
             "--batch-size", "8", "--device", device, *quiet),
            ("train-stu", tmp_path / "scene.npz", "--endmembers-file", tmp_path / "em.npz", "--maps",
             f"prior:{d / 'ab'}", "--out", d / "stu", "--k", "3", "--max-steps", "10", "--device", device),
            ("unmix", tmp_path / "scene.npz", "--method", "hybridstu", "--model", d / "stu", "--out", d / "un",
             "--no-figures", "--device", device),
        ]
        for args in runs:
            code, _, err = run_cli(*args)
            assert code == 0, (args[0], err)
        code, _, err = run_cli("refine", tmp_path / "scene.npz", "--init", tmp_path / "init", "--abundance-prior",
                               d / "ab", "--spectra-prior", d / "sp", "--samples", "2", "--steps", "2", "--out",
                               d / "ref", "--device", device, *quiet)
        assert code == 0, ("refine", err)
        out = {}
        for name, key in (("syn/abundances.npz", "abundances"), ("un/result.npz", "abundances"),
                          ("ref/result.npz", "abundances"), ("ref/result.npz", "endmembers")):
            with np.load(d / name) as z:
                out[f"{name}:{key}"] = z[key]
        return out

    cpu = commands("cpu", "cpu")
    on_gpu = gpu(lambda: commands("gpu", "auto"))
    for key, value in cpu.items():
        np.testing.assert_array_equal(on_gpu[key], value, err_msg=key)


def test_unmix_runs_the_blind_torch_methods_on_the_gpu_and_refuses_it_for_the_rest(tmp_path, run_cli, gpu):
    """``unmix --device`` reached hybridstu only: the blind default, edaa and mvnmf ran on the
    CPU without a word when a GPU was asked for. They now run on it (the CPU's numbers under the
    pretend GPU); methods with no GPU path (VCA, inverting given endmembers) refuse ``cuda``
    (exit 2, one line, nothing written) and take ``cpu`` or ``auto``."""
    from unmixgen.simulate.procedural import make_scene

    scene = make_scene(rows=8, cols=9, p=2, bands=12, snr_db=30, seed=0)
    path = tmp_path / "s.npy"
    np.save(path, scene.load())
    np.savez(tmp_path / "em.npz", endmembers=scene.truth.endmembers)

    def blind(tag, device, method):
        code, _, err = run_cli("unmix", path, "-p", "2", "--method", method, "--device", device, "--no-figures",
                               "--out", tmp_path / tag)
        assert code == 0, err
        with np.load(tmp_path / tag / "result.npz") as z:
            return z["abundances"]

    for method in ("auto", "mvnmf"):
        on_cpu = blind(f"cpu-{method}", "cpu", method)
        np.testing.assert_array_equal(gpu(lambda method=method: blind(f"gpu-{method}", "cuda", method)), on_cpu)
    for extra in (["-p", "2", "--method", "vca"], ["--endmembers-file", tmp_path / "em.npz"]):
        code, _, err = gpu(lambda extra=extra: run_cli("unmix", path, *extra, "--device", "cuda", "--out", tmp_path / "o"))
        assert code == 2 and "runs on the CPU only" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "o").exists()
        for device in ("cpu", "auto"):
            code, _, err = gpu(lambda extra=extra, device=device: run_cli(
                "unmix", path, *extra, "--device", device, "--no-figures", "--out", tmp_path / f"ok-{device}",
                "--overwrite"))
            assert code == 0, err


def test_unmix_on_the_gpu_with_a_misspelt_method_names_the_method(tmp_path, run_cli, gpu):
    """The device was checked before the method's name: ``--method edda --device cuda`` said
    "method 'edda' runs on the CPU only; expected ... a method with a GPU path (..., edaa, ...)",
    as if edda were a method; the unknown name is the error."""
    path = tmp_path / "s.npy"
    np.save(path, np.random.default_rng(0).uniform(0.1, 0.9, (6, 7, 10)).astype(np.float32))
    code, _, err = gpu(lambda: run_cli("unmix", path, "-p", "2", "--method", "edda", "--device", "cuda",
                                       "--out", tmp_path / "o"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "edda" in err and "expected one of" in err and "CPU only" not in err, err
