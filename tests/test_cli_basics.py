import pytest

from unmixgen import __version__


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and __version__ in out


def test_python_dash_m_runs_the_command(tmp_path):
    # where the console script is not on the PATH (a notebook kernel, a venv not activated)
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "unmixgen", "info", str(tmp_path / "nope.hdr")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "nope.hdr" in done.stderr  # the command's own exit codes
    done = subprocess.run([sys.executable, "-m", "unmixgen", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and __version__ in done.stdout


def test_missing_file_is_one_line_exit_2(run_cli, tmp_path):
    code, out, err = run_cli("info", tmp_path / "nope.hdr")
    assert code == 2
    assert err.strip().count("\n") == 0 and "nope.hdr" in err and "no such file" in err


def test_unknown_format_exit_2(run_cli, tmp_path):
    p = tmp_path / "scene.xyz"
    p.write_bytes(b"hello world, not a scene")
    code, _, err = run_cli("info", p)
    assert code == 2 and "unknown format" in err and "Traceback" not in err


def test_all_invalid_scene_exit_2(run_cli, tmp_path):
    import numpy as np

    p = tmp_path / "void.npy"
    np.save(p, np.full((4, 6, 3), np.nan, np.float32))
    # info describes such a file (with a warning); commands that need pixels refuse it
    code, out, err = run_cli("info", p, "--json")
    assert code == 0 and '"valid_pixels": 0' in out and "no valid pixel" in err
    for args in (("convert", p, tmp_path / "out.npz"), ("unmix", p, "-p", "2", "--out", tmp_path / "o")):
        code, _, err = run_cli(*args)
        assert code == 2 and "void.npy" in err and "no valid pixel" in err
    assert not (tmp_path / "out.npz").exists() and not (tmp_path / "o").exists()


def test_nan_pixels_are_counted_not_refused(run_cli, tmp_path):
    import json

    import numpy as np

    cube = np.ones((4, 5, 3), np.float32)
    cube[0, 0, 1] = np.nan
    cube[3, 4] = np.inf
    p = tmp_path / "holes.npy"
    np.save(p, cube)
    code, out, _ = run_cli("info", p, "--json")
    info = json.loads(out)
    assert code == 0 and info["invalid_pixels"] == 2 and info["valid_fraction"] == 18 / 20


def test_usage_errors_are_one_line_exit_2(run_cli):
    # typer raises its own (vendored) click exceptions: they must not surface as internal errors
    for args in (("unmix", "--bogus", "x"), ("nosuchcommand",), ("simulate", "--seed", "abc"), ("unmix",)):
        code, _, err = run_cli(*args)
        assert code == 2, (args, err)
        assert "internal error" not in err and err.strip().count("\n") == 0, (args, err)


def test_parameter_errors_are_shown_with_the_flag():
    import typer

    from unmixgen.cli.app import app
    from unmixgen.cli.flags import as_cli_message
    from unmixgen.errors import ParameterError

    synth = typer.main.get_command(app).commands["synthesize"]
    assert as_cli_message(ParameterError("count", 0, "expected >= 1"), synth) == "--count 0: expected >= 1"
    # a library name the command spells differently comes from the alias table
    unmix = typer.main.get_command(app).commands["unmix"]
    assert as_cli_message(ParameterError("n_endmembers", 1, "expected >= 2"), unmix).startswith("--endmembers 1:")
    # a parameter no flag sets keeps the library's wording
    assert as_cli_message(ParameterError("inner_tol", -1, "expected > 0"), unmix) == "inner_tol=-1: expected > 0"


def test_mentioned_parameters_become_flags_as_words_not_inside_paths():
    import typer

    from unmixgen.cli.app import app
    from unmixgen.cli.flags import as_cli_message
    from unmixgen.errors import ParameterError

    evaluate = typer.main.get_command(app).commands["evaluate"]
    err = ParameterError("align", "sad", "matches on spectra, and runs/align/truth.mat has none (estimate.npz "
                         "neither); expected align 'abundance' or another estimate", mentions=("align", "estimate"))
    shown = as_cli_message(err, evaluate)
    assert shown.startswith("--align sad:") and "expected --align 'abundance'" in shown
    assert "another --estimate" in shown
    assert "runs/align/truth.mat" in shown and "(estimate.npz" in shown, shown


def _commands(group, prefix=""):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_a_flag_is_named_only_where_the_command_has_it():
    # hunt 44: ALIASES sent `demo` users to --samples, which demo refuses as no such option
    import typer

    from unmixgen.cli.app import app
    from unmixgen.cli.flags import ALIASES, as_cli_message, flag_for
    from unmixgen.errors import ParameterError

    group = typer.main.get_command(app)
    demo, refine = group.commands["demo"], group.commands["refine"]
    assert flag_for("n_samples", refine) == "--samples"
    assert flag_for("n_samples", demo) is None and flag_for("device", demo) is None
    assert as_cli_message(ParameterError("n_samples", 0, "expected >= 1"), demo) == "n_samples=0: expected >= 1"
    assert flag_for("seed", demo) == "--seed"  # an alias the command has still maps
    assert flag_for("n_endmembers", None) is None  # no command known: no flag to name
    for name, command in _commands(group):
        flags = {o for p in command.params for o in p.opts}
        for parameter in ALIASES:
            assert flag_for(parameter, command) in flags | {None}, (name, parameter)


def test_a_parameter_error_in_a_command_exits_2_naming_the_flag(run_cli, monkeypatch, tmp_path):
    import unmixgen.io
    from unmixgen.errors import ParameterError

    def refuse(*args, **kwargs):
        raise ParameterError("n_endmembers", 1, "expected >= 2")

    monkeypatch.setattr(unmixgen.io, "read_scene", refuse)
    code, _, err = run_cli("unmix", tmp_path / "s.npy", "-p", "1", "--out", tmp_path / "o")
    assert code == 2 and err.strip() == "error: --endmembers 1: expected >= 2"
    assert not (tmp_path / "o").exists()


def test_a_missing_training_budget_names_the_flags(run_cli, tmp_path):
    # the library's message names max_steps / max_minutes; a command-line user must read the flags
    lib = tmp_path / "lib.csv"
    lib.write_text("wavelength,a,b\n" + "".join(f"{400 + 10 * i},{0.1 + i / 100},{0.5 - i / 200}\n" for i in range(30)))
    code, _, err = run_cli("train-spectra", lib, "--out", tmp_path / "m")
    assert code == 2 and err.strip() == "error: --max-steps: expected a training budget: --max-steps, --max-minutes or both"
    assert "max_" not in err and not (tmp_path / "m").exists()


def test_package_root_api_is_lazy_and_complete():
    import subprocess
    import sys

    import unmixgen

    # importing the package must not load torch (the CLI's `info` stays fast)
    out = subprocess.run([sys.executable, "-c", "import unmixgen, sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    import importlib

    for name in unmixgen.__all__:
        assert getattr(unmixgen, name) is not None, name
        if name != "__version__":  # the root hands out the very object its room defines
            module, attr = unmixgen._API[name] if isinstance(unmixgen._API[name], tuple) else (unmixgen._API[name], name)
            assert getattr(unmixgen, name) is getattr(importlib.import_module(module), attr), name


def test_package_root_holds_every_workflow():
    # the README's notebook user calls the chain from the root (ug.refine_result, ...): each
    # user-level job of unmixgen.workflows is there (stu_* are helpers of train_stu / unmix_hybridstu)
    import unmixgen
    import unmixgen.workflows as workflows

    jobs = {name for name in workflows.__all__ if not name.startswith("stu_")}
    assert {"refine_result", "synthesize_maps", "train_spectra_model"} <= jobs
    assert jobs <= set(unmixgen.__all__), sorted(jobs - set(unmixgen.__all__))
    for name in jobs:
        assert getattr(unmixgen, name) is getattr(workflows, name), name


def test_numeric_options_are_checked_before_any_work(run_cli, tmp_path):
    import numpy as np

    from unmixgen.priors.abundance.model import DEMO_MODEL

    scene = tmp_path / "s.npy"
    np.save(scene, np.random.default_rng(0).random((12, 14, 6)).astype(np.float32) + 0.1)
    assert run_cli("unmix", scene, "-p", "3", "--method", "vca", "--out", tmp_path / "r", "--no-figures")[0] == 0
    cases = [
        (("synthesize", DEMO_MODEL, "--count", "2", "--size", "100000", "--out", tmp_path / "o1"), "--size 100000"),
        (("train-abundance", tmp_path / "r", "--out", tmp_path / "m", "--max-sad", "nan", "--max-steps", "1"), "--max-sad nan"),
        (("simulate", "--abundances", tmp_path / "r", "--endmembers", tmp_path / "r", "--snr", "-1000",
          "--out", tmp_path / "o2"), "--snr -1000"),
        (("simulate", "--abundances", tmp_path / "r", "--endmembers", tmp_path / "r", "--variability", "nan",
          "--out", tmp_path / "o3"), "--variability nan"),
    ]
    for args, start in cases:
        code, _, err = run_cli(*args)
        assert code == 2 and err.startswith(f"error: {start}"), (args, err)
    assert not any((tmp_path / n).exists() for n in ("o1", "m", "o2", "o3"))


def test_info_estimates_valid_pixels_from_a_sample_without_reading_the_cube(tmp_path):
    import numpy as np

    from recording_source import RecordingSource
    from unmixgen.scene import Scene, describe

    rng = np.random.default_rng(3)
    cube = rng.random((600, 700, 4)).astype(np.float32) + 0.1
    invalid = rng.random((600, 700)) < 0.3
    cube[invalid] = np.nan
    src = RecordingSource(cube)
    d = describe(Scene(src))
    assert d["valid_pixels_from"].startswith("sample of")
    assert abs(d["valid_fraction"] - (1 - invalid.mean())) < 0.02
    assert sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in src.windows) <= 65536  # not the 420,000-pixel cube
    exact = describe(Scene(RecordingSource(cube)), count_valid=True)
    assert exact["valid_pixels"] == int((~invalid).sum()) and exact["valid_pixels_from"] == "all pixels"


@pytest.mark.parametrize("container", ["envi", "tif"])
def test_info_sample_judges_a_scaled_products_nodata_as_stored(tmp_path, run_cli, container):
    """A product stores integers (ENVI reflectance scale factor, GeoTIFF scale/offset) with a nodata
    value: the sampled count of a large scene judged the scaled values against the stored nodata
    (-9999 read as -0.9999 is not -9999) and called every no-data pixel valid."""
    import json

    import numpy as np

    from fixtures_io import write_envi, write_tif

    rows, cols, bands = 300, 250, 5  # 75,000 pixels: info samples
    stored = np.random.default_rng(0).integers(500, 5000, (rows, cols, bands))
    outside = np.zeros((rows, cols), bool)
    outside[:, :175] = True  # 70 % of the grid lies outside the swath
    if container == "envi":
        stored = stored.astype(np.int16)
        stored[outside] = -9999
        path = write_envi(tmp_path, stored, interleave="bil", wavelengths=[450, 550, 650, 750, 850],
                          extra={"reflectance scale factor": "10000", "data ignore value": "-9999"})
    else:
        stored = (stored + 1000).astype(np.uint16)
        stored[outside] = 0
        path = write_tif(tmp_path / "scene.tif", stored, nodata=0, scales=[1e-4] * bands, offsets=[-0.1] * bands)
    code, out, err = run_cli("info", path, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["valid_pixels_from"].startswith("sample of")
    assert abs(d["valid_fraction"] - 0.3) < 0.05, d["valid_fraction"]


def test_info_reports_the_stored_type_of_matlab_files(tmp_path, run_cli):
    import json

    import numpy as np
    from scipy.io import savemat

    y = np.random.default_rng(0).integers(1, 4000, (5, 6 * 7)).astype(np.uint16)
    savemat(tmp_path / "z.mat", {"Y": y, "nRow": 6, "nCol": 7, "nBand": 5, "maxValue": 4000})
    code, out, err = run_cli("info", tmp_path / "z.mat", "--json")
    assert code == 0, err
    assert json.loads(out)["dtype"] == "uint16"


def test_unmix_with_given_endmembers_does_not_load_torch(tmp_path):
    """The tile-by-tile inversion path stays light: torch (~120 MB) is for networks only."""
    import subprocess
    import sys

    import numpy as np

    rng = np.random.default_rng(0)
    np.save(tmp_path / "s.npy", rng.random((9, 11, 6)).astype(np.float32) + 0.1)
    np.savez(tmp_path / "e.npz", endmembers=rng.random((3, 6)).astype(np.float32) + 0.1)
    code = ("import sys; import unmixgen.cli; from unmixgen.cli.app import main; "
            f"rc = main(['unmix', r'{tmp_path / 's.npy'}', '--endmembers-file', r'{tmp_path / 'e.npz'}', "
            f"'--out', r'{tmp_path / 'o'}', '--no-figures']); print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["0", "False"], out.stdout + out.stderr


def test_interrupt_exits_130_not_0(run_cli, tmp_path, monkeypatch):
    # Ctrl-C inside a command: click hands the status back instead of raising it
    import numpy as np

    import unmixgen.io as io

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    p = tmp_path / "s.npy"
    np.save(p, np.ones((4, 6, 3), np.float32))
    monkeypatch.setattr(io, "read_scene", interrupted)
    code, _, err = run_cli("info", p)
    assert code == 130 and "interrupted" in err


def test_a_band_that_is_nan_everywhere_is_named(run_cli, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    cube = rng.uniform(0.1, 0.9, (6, 7, 5)).astype(np.float32)
    cube[..., 2] = np.nan  # a dropped band
    p = tmp_path / "s.npy"
    np.save(p, cube)
    code, _, err = run_cli("unmix", p, "-p", "2", "--out", tmp_path / "o")
    assert code == 2 and "band 3 is NaN/nodata in every pixel" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_demo_refuses_budgets_for_stages_that_do_not_run(run_cli, tmp_path):
    for args, flag in ((("--train-minutes", "0.1"), "--train-minutes"),
                       (("--no-semiblind", "--semiblind-minutes", "1"), "--semiblind-minutes"),
                       (("--no-semiblind", "--semiblind-steps", "100"), "--semiblind-steps"),
                       (("--semiblind-steps", "0"), "--semiblind-steps")):
        code, _, err = run_cli("demo", "--out", tmp_path / "d", *args)
        assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "d").exists()


def test_run_demo_refuses_a_semiblind_budget_when_the_chain_is_off(tmp_path):
    """run_demo(semiblind=False, semiblind_minutes=...) dropped the budget without a word (the
    command line refused it, the Python entry point did not)."""
    import pytest

    from unmixgen.errors import ParameterError
    from unmixgen.workflows import run_demo

    with pytest.raises(ParameterError, match="^semiblind_minutes=1: applies to the semi-blind chain"):
        run_demo(tmp_path / "d", semiblind=False, semiblind_minutes=1)
    assert not (tmp_path / "d").exists()


def test_every_torch_command_takes_threads_and_refuses_negative_ones(run_cli, tmp_path):
    for cmd in ("unmix", "train-stu", "refine", "train-spectra", "train-abundance", "synthesize"):
        code, out, _ = run_cli(cmd, "--help")
        assert code == 0 and "--threads" in out, cmd
    import numpy as np

    np.save(tmp_path / "s.npy", np.random.default_rng(0).uniform(0.1, 0.9, (5, 6, 4)).astype(np.float32))
    code, _, err = run_cli("unmix", tmp_path / "s.npy", "-p", "2", "--threads", "-1", "--out", tmp_path / "o")
    assert code == 2 and "--threads -1" in err and not (tmp_path / "o").exists()


def test_threads_beyond_the_machine_are_refused(run_cli, tmp_path):
    """--threads 9999 on a 2-core machine ran torch with 9999 threads: minutes for a tiny
    scene. More threads than CPUs this process may use is refused, naming the limit."""
    import os

    import numpy as np

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    np.save(tmp_path / "s.npy", np.random.default_rng(0).uniform(0.1, 0.9, (5, 6, 4)).astype(np.float32))
    code, _, err = run_cli("unmix", tmp_path / "s.npy", "-p", "2", "--method", "hybridstu",
                           "--threads", str(cpus + 1), "--out", tmp_path / "o")
    assert code == 2 and f"--threads {cpus + 1}" in err and f"<= {cpus}" in err, err
    assert not (tmp_path / "o").exists()



def test_an_unmixgen_folder_given_as_the_scene_is_named_for_what_it_is(run_cli, tmp_path):
    # a run or model folder given where the scene goes (unmix RUN, info MODEL) read "is a folder
    # without an EnMAP METADATA.XML", as if an EnMAP product were damaged
    for marker, kind in (("result.npz", "a result folder"), ("config.json", "a model folder"),
                         ("abundances.npz", "a synthesize output folder")):
        folder = tmp_path / marker.replace(".", "_")
        folder.mkdir()
        (folder / marker).write_bytes(b"x")
        code, _, err = run_cli("info", folder)
        assert code == 2 and err.strip().count("\n") == 0, err
        assert f"{folder}: is {kind} of unmixgen, not a scene; expected a scene file" in err, err


def test_info_noise_reports_the_snr_and_the_spread_of_the_bands_noise(run_cli, tmp_path):
    import json

    import numpy as np

    from unmixgen.io import write_scene
    from unmixgen.scene import Scene
    from unmixgen.simulate.procedural import make_scene

    s = make_scene(rows=50, cols=40, p=3, snr_db=None, seed=1)
    clean = s.load()
    rng = np.random.default_rng(3)
    for name, std in (("white", np.ones(s.bands)), ("coloured", np.geomspace(1.0, 25.0, s.bands))):
        level = np.sqrt(np.mean(clean.astype(np.float64) ** 2) / 10**2.5 / np.mean(std**2))
        cube = (clean + level * std * rng.standard_normal(clean.shape)).astype(np.float32)
        write_scene(Scene(cube, wavelengths=s.wavelengths), tmp_path / f"{name}.npz")
        code, out, err = run_cli("info", tmp_path / f"{name}.npz", "--noise", "--json")
        assert code == 0, err
        d = json.loads(out)
        assert abs(d["noise_snr_db"] - 25.0) < 1.5
        if name == "white":
            assert d["noise_std_spread"] < 1.3 and d["noise_bands_weighted"] is False
        else:
            assert d["noise_std_spread"] > 5 and d["noise_bands_weighted"] is True
        code, out, _ = run_cli("info", tmp_path / f"{name}.npz", "--json")
        assert code == 0 and "noise_snr_db" not in json.loads(out)  # only when asked: it reads pixels
        assert d["noise_derived_bands"] == []
    # a band copied from the one before and a dead band: named (from 1), weighed as a median band
    cube[..., 11] = cube[..., 10]
    cube[..., 30] = 0.0
    write_scene(Scene(cube, wavelengths=s.wavelengths), tmp_path / "derived.npz")
    code, out, err = run_cli("info", tmp_path / "derived.npz", "--noise", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["noise_derived_bands"] == [11, 12, 31] and d["noise_bands_weighted"] is True
    assert d["stripes_detected"] is False and d["stripes_gain_std_percent"] is None
    # each column's detector gain 3 % off per band: striped, and about how much
    gain = 1.0 + 0.03 * rng.standard_normal(cube.shape[1:])
    write_scene(Scene((cube * gain).astype(np.float32), wavelengths=s.wavelengths), tmp_path / "striped.npz")
    code, out, err = run_cli("info", tmp_path / "striped.npz", "--noise", "--json")
    d = json.loads(out)
    assert code == 0 and d["stripes_detected"] is True and 1.5 < d["stripes_gain_std_percent"] < 4.5, d


def test_info_noise_says_how_much_neighbours_share_their_noise(run_cli, tmp_path):
    # a product resampled to a map grid shares each sensor pixel's noise with its neighbours
    # (here 2 x 2 blocks: correlation 0.5 both ways); a sensor's own geometry does not
    import json

    import numpy as np

    from unmixgen.io import write_scene
    from unmixgen.scene import Scene
    from unmixgen.simulate.procedural import make_scene

    s = make_scene(rows=60, cols=50, p=3, snr_db=None, seed=2)
    clean = s.load().astype(np.float64)
    level = np.sqrt(np.mean(clean**2) / 10**2.5)
    z = np.random.default_rng(4).standard_normal((61, 51, s.bands))
    for name, noise, expected in (("white", z[:60, :50], 0.0),
                                  ("shared", (z[:-1, :-1] + z[1:, :-1] + z[:-1, 1:] + z[1:, 1:]) / 2, 0.5)):
        write_scene(Scene((clean + level * noise).astype(np.float32), wavelengths=s.wavelengths),
                    tmp_path / f"{name}.npz")
        code, out, err = run_cli("info", tmp_path / f"{name}.npz", "--noise", "--json")
        assert code == 0, err
        rho = json.loads(out)["noise_neighbour_correlation"]
        assert np.allclose(rho, expected, atol=0.06), (name, rho)


def test_the_command_lets_torch_threads_sleep_unless_told():
    # spinning OpenMP threads slowed the demo's refinement 10x next to one busy process
    import os
    import subprocess
    import sys

    code = "import os, sys, unmixgen.cli; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["PASSIVE", "False"]  # set before torch (and its OpenMP) is loaded
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "ACTIVE"


def test_info_noise_measures_neighbours_where_the_data_are_off_centre(run_cli, tmp_path):
    """A map-grid product clipped off its swath (or a swath crossing a wide grid) has no-data in
    its middle: the neighbour-correlation window sat on the image's middle and found no valid
    pixel, so info said nothing (and hybridstu's brightness estimate took the shared noise for
    brightness, `_noise_share` 0). The window now sits on the valid pixels' extent."""
    import json

    import numpy as np

    from unmixgen.io import write_scene
    from unmixgen.scene import Scene
    from unmixgen.simulate.procedural import make_scene

    s = make_scene(rows=60, cols=50, p=3, snr_db=None, seed=2)
    clean = s.load().astype(np.float64)
    level = np.sqrt(np.mean(clean**2) / 10**2.5)
    z = np.random.default_rng(4).standard_normal((61, 51, s.bands))
    shared = (z[:-1, :-1] + z[1:, :-1] + z[:-1, 1:] + z[1:, 1:]) / 2  # correlation 0.5 both ways
    cube = np.full((60, 300, s.bands), np.nan, np.float32)
    cube[:, 10:60] = clean + level * shared  # the middle 128 columns (86-213) hold no valid pixel
    write_scene(Scene(cube, wavelengths=s.wavelengths), tmp_path / "clip.npz")
    code, out, err = run_cli("info", tmp_path / "clip.npz", "--noise", "--json")
    assert code == 0, err
    rho = json.loads(out)["noise_neighbour_correlation"]
    assert rho is not None and np.allclose(rho, 0.5, atol=0.06), rho


def test_window_on_data_is_the_middle_of_a_full_image_and_follows_the_data():
    import numpy as np

    from unmixgen.scene import window_on_data

    for rows, cols in ((300, 301), (50, 40), (128, 500)):
        r0, c0 = max(0, (rows - 128) // 2), max(0, (cols - 128) // 2)
        assert window_on_data(np.ones((rows, cols), bool), 128) == (slice(r0, min(r0 + 128, rows)),
                                                                    slice(c0, min(c0 + 128, cols)))
    mask = np.zeros((400, 300), bool)
    mask[300:380, 250:290] = True
    win = window_on_data(mask, 128)
    assert mask[win].sum() == mask.sum() and mask[win].shape == (128, 128)
    assert window_on_data(np.zeros((400, 300), bool), 128) == (slice(136, 264), slice(86, 214))


def test_unmix_refuses_training_budgets_and_threads_for_methods_that_do_not_use_them(run_cli, tmp_path):
    """``--max-minutes`` / ``--max-steps`` with a blind method or an inverter were dropped
    without a word (they set hybridstu's training); ``--threads`` was refused for the blind
    default, edaa and mvnmf although they run on torch. Budgets are refused for every method
    but hybridstu; threads are taken by the torch methods and refused for VCA and inverters."""
    import numpy as np

    from unmixgen.simulate.procedural import make_scene

    scene = make_scene(rows=8, cols=9, p=2, bands=12, snr_db=30, seed=0)
    path = tmp_path / "s.npy"
    np.save(path, scene.load())
    np.savez(tmp_path / "em.npz", endmembers=scene.truth.endmembers)
    for args, flag in (((("-p", "2", "--max-steps", "10")), "--max-steps"),
                       (("-p", "2", "--method", "vca", "--max-minutes", "1"), "--max-minutes"),
                       (("--endmembers-file", tmp_path / "em.npz", "--max-steps", "5"), "--max-steps"),
                       (("-p", "2", "--method", "vca", "--threads", "1"), "--threads"),
                       (("--endmembers-file", tmp_path / "em.npz", "--threads", "1"), "--threads")):
        code, _, err = run_cli("unmix", path, *args, "--out", tmp_path / "o")
        assert code == 2 and flag in err and len(err.strip().splitlines()) == 1, (args, err)
        assert not (tmp_path / "o").exists()
    for method in ("auto", "mvnmf"):
        code, _, err = run_cli("unmix", path, "-p", "2", "--method", method, "--threads", "1", "--no-figures",
                               "--out", tmp_path / method)
        assert code == 0, err


def test_library_messages_name_what_a_python_user_sets_and_the_cli_shows_its_flags(tmp_path, monkeypatch):
    # hunt 44: messages of the library named only flags (--model, --endmembers-file, -p; --snr; --allow-unpinned,
    # --data-dir), which a notebook user has none of
    import typer

    from unmixgen.cli.app import app
    from unmixgen.cli.flags import as_cli_message
    from unmixgen.errors import InputError, ParameterError
    from unmixgen.io import datasets
    from unmixgen.workflows import simulate_scenes, unmix_scene

    commands = typer.main.get_command(app).commands
    with pytest.raises(ParameterError) as err:
        unmix_scene(tmp_path / "s.npy", tmp_path / "o", method="hybridstu")
    said = str(err.value)
    assert "--" not in said and "model" in said and "endmembers_file" in said and "n_endmembers" in said, said
    shown = as_cli_message(err.value, commands["unmix"])
    assert "--model" in shown and "--endmembers-file" in shown and "--endmembers" in shown, shown
    assert "endmembers_file" not in shown and "n_endmembers" not in shown, shown

    with pytest.raises(ParameterError) as err:
        simulate_scenes(tmp_path / "maps.npz", tmp_path / "em.csv", tmp_path / "sim", band_noise=tmp_path / "n.csv")
    assert "needs snr_db" in str(err.value) and "--snr" not in str(err.value)
    assert "needs --snr:" in as_cli_message(err.value, commands["simulate"])

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("UNMIXGEN_DATA", raising=False)
    monkeypatch.setattr(datasets, "_urlopen", lambda *a, **k: pytest.fail("no download without a pinned sha256"))
    with pytest.raises(InputError, match=r"not pinned.*allow_unpinned=True \(--allow-unpinned\).*data_dir"):
        datasets.fetch("cuprite")


def test_help_texts_hold_no_square_brackets_and_demo_shows_its_library_defaults():
    # rich markup (the app's help mode) takes "[...]" for a tag and drops it: demo's
    # "[default: 2000; ...]" was shown as "HybridSTU training steps ."
    import inspect

    import typer

    from unmixgen.cli.app import app
    from unmixgen.workflows import run_demo

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        for param in command.params:
            assert "[" not in (getattr(param, "help", None) or ""), (name, param.name)
    demo = group.commands["demo"]
    defaults = inspect.signature(run_demo).parameters
    shown = {p.name: p.show_default for p in demo.params}
    for key in ("train_minutes", "count", "semiblind_steps", "seed"):
        assert shown[key] == str(defaults[key].default), key


def test_train_stu_help_shows_the_estimators_defaults():
    """train-stu's options fall back to HybridSTU's defaults (None: not given); its --help shows
    them from a copy that keeps torch out of the command's start, held here to the signature."""
    import inspect

    import typer

    from unmixgen.cli.app import app
    from unmixgen.cli.semiblind import STU_DEFAULTS
    from unmixgen.unmix.hybridstu import HybridSTU

    defaults = inspect.signature(HybridSTU).parameters
    command = typer.main.get_command(app).commands["train-stu"]
    shown = {p.name: p.show_default for p in command.params}
    for name, text in STU_DEFAULTS.items():
        assert text == str(defaults[name].default), name
        assert shown[name] == text, name
    from unmixgen.workflows.semiblind import unmix_hybridstu

    unmix = {p.name: p.show_default for p in typer.main.get_command(app).commands["unmix"].params}
    assert unmix["maps"] == inspect.signature(unmix_hybridstu).parameters["maps"].default
    assert (unmix["max_minutes"], unmix["max_steps"]) == (STU_DEFAULTS["max_minutes"], STU_DEFAULTS["max_steps"])


def test_train_spectra_help_shows_the_priors_defaults():
    """train-spectra's None options fall back to the spectra prior's DEFAULTS; the numbers its
    --help shows are written in the command (the prior's module imports torch), held here."""
    import typer

    from unmixgen.cli.app import app
    from unmixgen.priors.spectra.train import DEFAULTS

    shown = {p.name: p.show_default for p in typer.main.get_command(app).commands["train-spectra"].params}
    for name in ("width", "batch_size", "lr", "seed"):
        assert float(shown[name]) == DEFAULTS[name], name
