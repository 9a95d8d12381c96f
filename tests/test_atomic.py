"""Model folders built for training: a replaced model survives a failed run."""

from __future__ import annotations

import pytest

from unmixgen.atomic import model_dir_build


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_failed_run_over_an_existing_model_keeps_it_whole(tmp_path):
    old = tmp_path / "model"
    old.mkdir()
    (old / "config.json").write_text("{}")
    (old / "weights").write_text("old")
    with pytest.raises(RuntimeError), model_dir_build(old, overwrite=True, usable=lambda _: True) as build:
        assert build != old  # built beside it
        build.mkdir()
        (build / "weights").write_text("half")
        raise RuntimeError("out of memory")
    assert (old / "weights").read_text() == "old" and _files(tmp_path) == ["model"]
    with model_dir_build(old, overwrite=True) as build:
        build.mkdir()
        (build / "weights").write_text("new")
    assert (old / "weights").read_text() == "new" and _files(tmp_path) == ["model"]


def test_overwrite_replaces_only_empty_folders_and_unmixgen_outputs(tmp_path):
    """--overwrite on a folder no unmixgen command wrote (a user's, given as --out by mistake)
    is refused and the folder left whole; an empty folder, a run folder (run.json) and a
    model folder (config.json) are replaced."""
    from unmixgen.atomic import atomic_dir
    from unmixgen.errors import InputError

    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("x")
    with pytest.raises(InputError, match="no unmixgen command wrote"), atomic_dir(mine, overwrite=True):
        pass
    assert _files(mine) == ["chapter1.tex"]
    for name, marker in (("empty", None), ("run", "run.json"), ("model", "config.json")):
        out = tmp_path / name
        out.mkdir()
        if marker:
            (out / marker).write_text("{}")
            (out / "old.npz").write_text("old")
        with atomic_dir(out, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("new")
        assert _files(out) == ["new.txt"]


def test_a_new_model_is_built_in_place_and_kept_only_when_usable(tmp_path):
    for usable, kept in ((False, False), (True, True)):
        out = tmp_path / f"m{usable}"
        with pytest.raises(KeyboardInterrupt), model_dir_build(out, usable=lambda _, u=usable: u) as build:
            assert build == out
            build.mkdir()
            raise KeyboardInterrupt
        assert out.exists() == kept


@pytest.mark.parametrize("out", [".", "..", "sub/.."])
def test_the_current_folder_or_one_holding_it_is_refused_as_output(tmp_path, monkeypatch, out):
    """--out . --overwrite crashed (empty name) and would pull the folder from under the shell;
    it is refused as bad input, and nothing in it is touched."""
    from unmixgen.atomic import atomic_dir
    from unmixgen.errors import InputError

    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "keep.txt").write_text("x")
    monkeypatch.chdir(work)
    with pytest.raises(InputError, match="current folder"), atomic_dir(out, overwrite=True):
        pass
    assert (work / "keep.txt").read_text() == "x" and _files(work) == ["keep.txt", "sub"]


@pytest.mark.parametrize("build", ["atomic_dir", "model_dir_build"])
def test_overwriting_a_link_to_a_folder_leaves_no_link_behind(tmp_path, build):
    # the old link was moved aside to '.out.tmp-...' and then not removed (rmtree refuses links,
    # and its errors were ignored): a stray hidden link next to every such output
    from unmixgen import atomic

    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")
    (tmp_path / "out").symlink_to(target)
    with getattr(atomic, build)(tmp_path / "out", overwrite=True) as tmp:
        tmp.mkdir(exist_ok=True)
        (tmp / "new.txt").write_text("new")
    assert _files(tmp_path) == ["model", "out"]
    assert _files(tmp_path / "out") == ["new.txt"] and _files(target) == ["config.json"]


@pytest.mark.parametrize("build", ["atomic_dir", "model_dir_build"])
def test_a_failed_output_leaves_no_empty_folders_it_made_for_it(tmp_path, build):
    # --out new/sub/run: the missing parents were created and stayed behind, empty, after a failure
    from unmixgen import atomic

    (tmp_path / "kept").mkdir()
    for out in (tmp_path / "new" / "sub" / "run", tmp_path / "kept" / "sub" / "run"):
        with pytest.raises(RuntimeError), getattr(atomic, build)(out) as tmp:
            tmp.mkdir(parents=True, exist_ok=True)
            (tmp / "half.npz").write_text("half")
            raise RuntimeError("disk full")
    assert _files(tmp_path) == ["kept"] and _files(tmp_path / "kept") == []


def test_a_dangling_link_as_output_is_refused_before_any_work(tmp_path, run_cli):
    # --out LINK to a missing folder passed every check, the work was done, then renaming the
    # finished folder onto the link failed: "internal error: NotADirectoryError" (exit 1)
    import numpy as np

    np.save(tmp_path / "s.npy", np.random.default_rng(0).uniform(0.1, 0.9, (6, 7, 4)).astype(np.float32))
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    (tmp_path / "o.npz").symlink_to(tmp_path / "gone.npz")
    code, _, err = run_cli("unmix", tmp_path / "s.npy", "-p", "2", "--method", "vca", "--out", tmp_path / "out",
                           "--no-figures")
    assert code == 2 and "link" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli("convert", tmp_path / "s.npy", tmp_path / "o.npz")
    assert code == 2 and "link" in err and len(err.strip().splitlines()) == 1, err
    assert _files(tmp_path) == ["o.npz", "out", "s.npy"]
    assert (tmp_path / "out").is_symlink() and (tmp_path / "o.npz").is_symlink()


def test_a_full_disk_while_writing_is_one_line_naming_the_output(tmp_path, run_cli, monkeypatch):
    # ENOSPC while the result was written gave "internal error: OSError: [Errno 28] No space
    # left on device" (exit 1) without naming where; the old output must stay whole
    import errno
    import os

    import numpy as np

    np.save(tmp_path / "s.npy", np.random.default_rng(0).uniform(0.1, 0.9, (6, 7, 4)).astype(np.float32))
    out = tmp_path / "run"
    args = ("unmix", tmp_path / "s.npy", "-p", "2", "--method", "vca", "--out", out, "--no-figures", "--overwrite")
    assert run_cli(*args)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(file, *_a, **_k):
        with open(file, "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez_compressed", full)
    for cmd in (args, ("convert", tmp_path / "s.npy", tmp_path / "s.tif", "--overwrite")):
        monkeypatch.setattr("unmixgen.io.geotiff.open_raster", lambda *_a, **_k: full(_a[0]))
        code, _, err = run_cli(*cmd)
        assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1, err
        assert str(cmd[-2] if cmd[0] == "convert" else out) in err, err
    # a map file of the run that cannot be written is named where it goes, not by its temporary folder
    monkeypatch.undo()
    monkeypatch.setattr("unmixgen.io.geotiff.open_raster", lambda *_a, **_k: full(_a[0]))
    code, _, err = run_cli(*args)
    assert code == 2 and f"{out / 'abundances.tif'}: cannot write (No space left on device)" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _files(tmp_path) == ["run", "s.npy"]


def test_a_full_disk_inside_gdal_is_one_line_naming_the_output(tmp_path, run_cli, monkeypatch):
    # GDAL's write errors carry no error number, only the text: a full disk while a map was
    # written was an internal error
    import numpy as np
    from rasterio.errors import RasterioIOError

    np.save(tmp_path / "s.npy", np.random.default_rng(0).uniform(0.1, 0.9, (6, 7, 4)).astype(np.float32))

    def full(*_a, **_k):
        raise RasterioIOError("Free disk space available is 0 bytes, whereas 2048 are at least necessary. "
                              "TIFFAppendToStrip:Write error at scanline 0: No space left on device")

    monkeypatch.setattr("unmixgen.io.geotiff.open_raster", full)
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", tmp_path / "s.npy", "-p", "2", "--method", "vca", "--out", out, "--no-figures")
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
