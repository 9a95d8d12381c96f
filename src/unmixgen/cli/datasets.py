"""`unmixgen datasets list|fetch`: the benchmark scene registry."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app

datasets_app = typer.Typer(help="Public unmixing benchmark scenes (Samson, Jasper Ridge, Urban, Cuprite).",
                           no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

_DATA_DIR = typer.Option(None, "--data-dir", help="Local folder laid out like samson/samson_1.mat "
                         "(default: $UNMIXGEN_DATA, else the download cache).")


@datasets_app.command("list")
def list_(data_dir: Path | None = _DATA_DIR) -> None:
    """List the registered datasets and whether their files are here.

    Example: unmixgen datasets list --data-dir ../shared/data
    """
    from rich.console import Console
    from rich.table import Table

    from ..io import datasets

    table = Table(title="unmixgen datasets")
    for col in ("name", "size (r x c x b)", "endmembers", "files", "MB", "status"):
        table.add_column(col)
    for ds in datasets.REGISTRY.values():
        size = ds.size
        pinned = all(f.sha256 for f in ds.files)
        table.add_row(ds.name, f"{ds.rows} x {ds.cols} x {ds.bands}", str(ds.endmembers),
                      ", ".join(f.name for f in ds.files),
                      "?" if size is None else f"{size / 1e6:.1f}",
                      datasets.status(ds.name, data_dir) + ("" if pinned else " (sha256 not pinned)"))
    Console().print(table)


@datasets_app.command("fetch")
def fetch(
    name: str = typer.Argument(..., help="Dataset name (see `unmixgen datasets list`)."),
    data_dir: Path | None = _DATA_DIR,
    allow_unpinned: bool = typer.Option(False, "--allow-unpinned",
                                        help="Download files whose sha256 is not pinned yet."),
) -> None:
    """Check a dataset's local files, or download them once into the cache (hash-checked).

    Example: unmixgen datasets fetch samson --data-dir ../shared/data
    """
    from ..io import datasets

    paths = datasets.fetch(name, data_dir, allow_unpinned=allow_unpinned, progress=True)
    for fname, p in paths.items():
        print(f"ok {fname}: {p}")
