from unmixgen import __version__


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and __version__ in out


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
    for args in (("info", p), ("convert", p, tmp_path / "out.npz"), ("unmix", p, "-p", "2", "--out", tmp_path / "o")):
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
