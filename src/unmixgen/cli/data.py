"""`unmixgen info` and `unmixgen convert`: look at a scene, change its format."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .app import app


@app.command()
def info(
    file: Path = typer.Argument(..., help="Scene file (ENVI .hdr, .tif, .he5, .mat, .npy/.npz) or EnMAP folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Describe a scene without reading its cube.

    Example: unmixgen info PRS_L2D_STD_20200101.he5 --json
    """
    from ..io import read_scene
    from ..scene import describe

    scene = read_scene(file)
    scene.require_valid()
    d = describe(scene)
    if as_json:
        print(json.dumps(d))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(file), show_header=False)
    for k, v in d.items():
        if v is None or k == "path":
            continue
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    Console().print(table)


@app.command()
def convert(
    src: Path = typer.Argument(..., help="Input scene, any readable format."),
    dst: Path = typer.Argument(..., help="Output file: .npz, .tif, .hdr (ENVI) or .mat (HySUPP layout)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Convert a scene to another format, in physical units, with its mask and wavelengths.

    Example: unmixgen convert scene.hdr scene.npz
    """
    from ..io import check_output_file, read_scene, write_scene

    check_output_file(dst, overwrite=overwrite, inputs=[src])
    scene = read_scene(src)
    scene.require_valid()
    write_scene(scene, dst)
    print(f"wrote {dst}")
