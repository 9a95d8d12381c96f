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
