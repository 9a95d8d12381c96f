"""The unit label a satellite or airborne product's reader keeps (`Scene.units`), and that
`convert`, `info --json` and `simulate` pass it on.

The EMIT, PRISMA, EnMAP and NEON readers recorded only the quantity word ("radiance"), which
every reader takes as W/(m^2 sr um): EMIT L1B radiance in uW/(cm^2 sr nm) is 10 times smaller
than that, EnMAP L1C radiance in W/(m^2 sr nm) 1000 times larger. Each now keeps the unit its
product documents (`unmixgen.units.product_units`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures_io import scene_cube, write_enmap
from hdf5_fixtures import EMIT_RADIANCE_UNITS, make_emit_nc, make_neon_h5
from prisma_fixture import make_prisma_he5
from unmixgen.io import read_scene
from unmixgen.units import product_units

PRISMA_L1_UNITS = "W/(m^2 sr um)"  # PRISMA Product Specification: L1 TOA radiance = DN / ScaleFactor - Offset
ENMAP_L1C_UNITS = "W/(m^2 sr nm)"  # DLR's GainOfBand/OffsetOfBand give TOA radiance in W m-2 sr-1 nm-1


def _enmap(folder, level):
    wl = np.array([418.2, 501.0, 612.7, 705.5, 881.0])
    stored = np.rint(scene_cube() * 5000).astype(np.int16)
    return write_enmap(folder, stored, wl, np.full(5, 7.0), np.full(5, 1e-4), np.zeros(5), level=level)[1]


def _product(tmp_path, kind):
    """(path of a fake product, the label its reader must keep)."""
    if kind == "emit_l1b":
        return make_emit_nc(tmp_path / "EMIT_L1B_RAD.nc", level="L1B", fill_pixels=())["path"], EMIT_RADIANCE_UNITS
    if kind == "emit_l2a":
        return make_emit_nc(tmp_path / "EMIT_L2A_RFL.nc")["path"], "reflectance"  # its attribute: "unitless"
    if kind == "prisma_l1":
        return make_prisma_he5(tmp_path / "PRS_L1_STD.he5", 3, 4, "L1").path, PRISMA_L1_UNITS
    if kind == "prisma_l2b":  # at-surface radiance; no unit the reader can rely on: the word
        return make_prisma_he5(tmp_path / "PRS_L2B_STD.he5", 3, 4, "L2B").path, "radiance"
    if kind == "prisma_l2d":
        return make_prisma_he5(tmp_path / "PRS_L2D_STD.he5", 3, 4, "L2D").path, "reflectance"
    if kind == "enmap_l1c":
        return _enmap(tmp_path / "l1c", "L1C"), ENMAP_L1C_UNITS
    if kind == "enmap_l2a":
        return _enmap(tmp_path / "l2a", "L2A"), "reflectance"
    if kind == "neon":  # reflectance x Scale_Factor; the reader divides it out
        return make_neon_h5(tmp_path / "NEON_D02_SERC_DP3_368000_4306000_reflectance.h5")["path"], "reflectance"
    raise AssertionError(kind)


KINDS = ["emit_l1b", "emit_l2a", "prisma_l1", "prisma_l2b", "prisma_l2d", "enmap_l1c", "enmap_l2a", "neon"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_product_keeps_the_unit_it_documents(tmp_path, kind):
    path, label = _product(tmp_path, kind)
    assert read_scene(path).units == label


def test_emit_ortho_keeps_the_label_too(tmp_path):
    path, label = _product(tmp_path, "emit_l1b")
    assert read_scene(path, ortho=True).units == label


@pytest.mark.parametrize("kind", ["emit_l1b", "prisma_l1", "enmap_l1c"])
@pytest.mark.parametrize("ext", [".npz", ".tif", ".hdr"])
def test_convert_and_info_keep_the_product_unit(tmp_path, run_cli, kind, ext):
    path, label = _product(tmp_path, kind)
    code, out, err = run_cli("info", path, "--json")
    assert code == 0, err
    assert json.loads(out)["units"] == label
    code, _, err = run_cli("convert", path, tmp_path / f"out{ext}")
    assert code == 0, err
    assert read_scene(tmp_path / f"out{ext}").units == label


def test_simulate_from_an_emit_radiance_run_keeps_its_unit(tmp_path, run_cli):
    """EMIT L1B -> unmix -> simulate: the simulated scenes are in the EMIT scene's unit."""
    path, label = _product(tmp_path, "emit_l1b")
    code, _, err = run_cli("unmix", path, "-p", "2", "--method", "vca", "--no-figures", "--out", tmp_path / "run")
    assert code == 0, err
    rng = np.random.default_rng(0)
    maps = rng.dirichlet(np.ones(2), (4, 5)).astype(np.float32)
    np.savez(tmp_path / "maps.npz", abundances=maps)
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", tmp_path / "run", "--snr", "40",
                           "--out", tmp_path / "sim")
    assert code == 0, err
    assert read_scene(tmp_path / "sim" / "scene_000.npz").units == label
    assert json.loads((tmp_path / "sim" / "run.json").read_text())["units"] == label


@pytest.mark.parametrize("word, stated, kept", [
    ("radiance", "uW/cm^2/SR/nm", "uW/cm^2/SR/nm"),
    ("radiance", "  W m-2  sr-1 um-1 ", "W m-2 sr-1 um-1"),
    ("radiance", b"uW/cm^2/SR/nm", "uW/cm^2/SR/nm"),
    ("reflectance", "unitless", "reflectance"),
    ("radiance", "unitless", "radiance"),  # names no quantity: the product's word
    ("reflectance", "uW/cm^2/SR/nm", "reflectance"),  # another quantity than the product's: the word
    ("radiance", None, "radiance"),
    ("radiance", np.array([1.0]), "radiance"),
])
def test_product_units_rule(word, stated, kept):
    assert product_units(word, stated) == kept
