"""Shared fixtures: the real benchmark data folder and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unmixgen.cli.app import main

SHARED_DATA = Path(os.environ.get("UNMIXGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (CI has it); tests that need it are skipped with a reason otherwise."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def run_cli(capsys):
    """Run ``unmixgen ARGS`` in-process; returns (exit_code, stdout, stderr)."""

    def _run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


@pytest.fixture
def torch_one_thread():
    """Run a test with one torch thread (small nets are fastest so, and it does not fight other work)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
