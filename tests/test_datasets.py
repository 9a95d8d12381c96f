"""Dataset registry: local folder, hash checks, cache download path (no network)."""

from __future__ import annotations

import hashlib
import shutil
import urllib.request

import numpy as np
import pytest

from unmixgen.errors import InputError
from unmixgen.io import datasets


def test_registry_entries_are_consistent():
    for ds in datasets.REGISTRY.values():
        names = [f.name for f in ds.files]
        assert ds.scene_file in names and (ds.truth_file is None or ds.truth_file in names)
        for f in ds.files:
            assert f.urls and all(u.startswith("https://") for u in f.urls)
            assert f.sha256 is None or len(f.sha256) == 64
    assert {"samson", "jasper_ridge", "urban4", "urban5", "urban6", "cuprite"} <= set(datasets.REGISTRY)
    assert datasets.get("Jasper-Ridge").name == "jasper_ridge"
    with pytest.raises(InputError, match="unknown dataset"):
        datasets.get("indian_pines_xyz")


def test_load_from_local_folder(shared_data, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent-cache-for-test")
    s = datasets.load("samson", data_dir=shared_data)
    assert s.shape == (95, 95, 156) and s.truth is not None and s.truth.n_endmembers == 3
    assert np.allclose(s.truth.abundances.sum(-1), 1, atol=1e-5)
    monkeypatch.setenv("UNMIXGEN_DATA", str(shared_data))
    j = datasets.load("jasper_ridge")
    assert j.shape == (100, 100, 198) and j.load().max() < 1.2  # divided by maxValue
    assert datasets.status("samson", shared_data) == "local"


def test_hash_mismatch_is_clear_error(shared_data, tmp_path, run_cli):
    (tmp_path / "samson").mkdir()
    for f in ("samson_1.mat", "end3.mat"):
        shutil.copy(shared_data / "samson" / f, tmp_path / "samson" / f)
    code, out, err = run_cli("datasets", "fetch", "samson", "--data-dir", tmp_path)
    assert code == 0 and "ok samson_1.mat" in out
    bad = tmp_path / "samson" / "end3.mat"
    data = bytearray(bad.read_bytes())
    data[-10] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="end3.mat: sha256 .* does not match"):
        datasets.fetch("samson", tmp_path)
    code, _, err = run_cli("datasets", "fetch", "samson", "--data-dir", tmp_path)
    assert code == 2 and "end3.mat" in err and "sha256" in err and err.strip().count("\n") == 0
    # a truncated file is listed as damaged, not as present (its size differs from the registry's)
    assert datasets.status("samson", tmp_path) == "local"  # same size, flipped byte: fetch's hash finds it
    bad.write_bytes(bytes(data[:1000]))
    assert datasets.status("samson", tmp_path) == "damaged"


def test_download_path_with_file_urls(shared_data, tmp_path, monkeypatch):
    """The cache download path, with the URL opener pointed at local file:// URLs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("UNMIXGEN_DATA", raising=False)
    opened = []

    def fake_urlopen(url, timeout=None):
        name = url.rsplit("/", 1)[1]
        opened.append(url)
        return urllib.request.urlopen((shared_data / "samson" / name).as_uri())

    monkeypatch.setattr(datasets, "_urlopen", fake_urlopen)
    assert datasets.status("samson") == "missing"
    paths = datasets.fetch("samson")
    assert len(opened) == 2 and datasets.status("samson") == "cached"
    for df in datasets.get("samson").files:
        assert hashlib.sha256(paths[df.name].read_bytes()).hexdigest() == df.sha256
    datasets.fetch("samson")  # second time: from the cache, no download
    assert len(opened) == 2
    s = datasets.load("samson")
    assert s.truth.abundances.shape == (95, 95, 3)


def test_download_with_wrong_bytes_saves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("UNMIXGEN_DATA", raising=False)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not the file")
    monkeypatch.setattr(datasets, "_urlopen", lambda url, timeout=None: urllib.request.urlopen(junk.as_uri()))
    with pytest.raises(InputError, match="does not match"):
        datasets.fetch("samson")
    folder = tmp_path / "cache" / "unmixgen" / "samson"
    assert not folder.exists() or not any(folder.iterdir())


def test_unpinned_download_refused(tmp_path, monkeypatch, run_cli):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("UNMIXGEN_DATA", raising=False)
    called = []
    monkeypatch.setattr(datasets, "_urlopen", lambda *a, **k: called.append(a))
    code, _, err = run_cli("datasets", "fetch", "cuprite")
    assert code == 2 and "not pinned" in err and not called


def test_cli_list(run_cli, shared_data):
    code, out, _ = run_cli("datasets", "list", "--data-dir", shared_data)
    assert code == 0 and "samson" in out and "urban6" in out and "local" in out


def test_download_larger_than_the_registry_size_is_cut_off(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("UNMIXGEN_DATA", raising=False)
    big = tmp_path / "big.bin"
    size = datasets.get("samson").file("samson_1.mat").size
    assert size is not None
    big.write_bytes(b"\0" * (size + 1))

    class Endless:  # a server that announces nothing and sends more than expected
        def __init__(self):
            self.f = open(big, "rb")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, n):
            return self.f.read(n)

    monkeypatch.setattr(datasets, "_urlopen", lambda url, timeout=None: Endless())
    with pytest.raises(InputError, match="more than the"):
        datasets.fetch("samson")
    folder = tmp_path / "cache" / "unmixgen" / "samson"
    assert not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


def test_cache_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch, run_cli):
    """A cache path blocked by a file (or a read-only home) was an internal
    NotADirectoryError; nothing is downloaded and the line says how to go on."""
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("UNMIXGEN_DATA", raising=False)
    called = []
    monkeypatch.setattr(datasets, "_urlopen", lambda *a, **k: called.append(a))
    code, _, err = run_cli("datasets", "fetch", "samson")
    assert code == 2 and "cannot create the download cache folder" in err and "--data-dir" in err, err
    assert len(err.strip().splitlines()) == 1 and not called


def test_damaged_cached_file_says_to_delete_it(tmp_path, monkeypatch, run_cli):
    """A truncated file in the cache is never downloaded again by itself: the error says so."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("UNMIXGEN_DATA", raising=False)
    folder = tmp_path / "cache" / "unmixgen" / "samson"
    folder.mkdir(parents=True)
    (folder / "samson_1.mat").write_bytes(b"MATLAB 5.0 cut short")
    called = []
    monkeypatch.setattr(datasets, "_urlopen", lambda *a, **k: called.append(a))
    code, _, err = run_cli("datasets", "fetch", "samson")
    assert code == 2 and "samson_1.mat" in err and "delete it to download it again" in err, err
    assert not called and (folder / "samson_1.mat").read_bytes() == b"MATLAB 5.0 cut short"
