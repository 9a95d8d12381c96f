"""Fuzz every reader with mutated valid fixtures: the answer is a usable Scene or an
`InputError`, never anything else (no traceback, no hang, no giant allocation).

Hypothesis drives the mutations with a small fixed budget (``derandomize=True``: the same
examples every run, so CI is reproducible). Binary formats get byte flips and truncation;
text headers get field values replaced with hostile text; HDF5 products get attributes
rewritten, objects deleted or turned into groups and links.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures_io import scene_cube, write_enmap, write_envi, write_tif
from hdf5_fixtures import make_emit_nc, make_neon_h5
from prisma_fixture import make_prisma_he5
from test_io_ehdr import write_headwall_bil
from unmixgen.errors import InputError
from unmixgen.io import read_scene
from unmixgen.scene import Scene

# 30 examples per reader in the suite; UNMIXGEN_FUZZ_EXAMPLES=1000 for a longer local hunt
BUDGET = settings(max_examples=int(os.environ.get("UNMIXGEN_FUZZ_EXAMPLES", "30")), derandomize=True, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HOSTILE = ["", "-1", "0", "nan", "inf", "-inf", "1e309", "abc", "{", "}", "{1, 2", "99999999999",
           "2.5", "-0", "bsq", "{nan, nan}", "\x00", "rotation=abc", "é", "1" * 40]


def _use(path: Path, **options) -> None:
    """Read ``path`` and touch what a command touches; only InputError may come out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            scene = read_scene(path, **options)
        except InputError:
            return
        assert isinstance(scene, Scene)
        try:
            block = scene.read(slice(0, 2), slice(0, 2))
            assert block.dtype == np.float32 and block.shape[2] == scene.bands
            if scene.rows * scene.cols <= 1 << 16:
                assert scene.mask.shape == (scene.rows, scene.cols)
        except InputError:
            return


# -- builders: one valid product per reader, in a folder of its own --------------------------
def _envi(folder: Path) -> Path:
    return write_envi(folder, np.rint(scene_cube() * 1000).astype(np.int16), wavelengths=[450, 550, 650, 750, 850],
                      extra={"map info": "{UTM, 1, 1, 500000, 4000000, 30, 30, 33, North, WGS-84}",
                             "data gain values": "{1e-3, 1e-3, 1e-3, 1e-3, 1e-3}", "bbl": "{1, 1, 0, 1, 1}",
                             "fwhm": "{10, 10, 10, 10, 10}", "data ignore value": "-9999"})


def _ehdr(folder: Path) -> Path:
    stored = np.rint(scene_cube(5, 6, 4) * 4000 + 1).astype(np.uint16)
    return write_headwall_bil(folder, stored, [400.0, 500.0, 600.0, 700.0])


def _tif(folder: Path) -> Path:
    tags = [{"wavelength": f"{w}", "wavelength_units": "nm", "bbl": "1"} for w in (450, 550, 993, 902, 850)]
    return write_tif(folder / "s.tif", np.rint(scene_cube() * 1000).astype(np.int16), nodata=-1,
                     band_tags=tags, scales=[1e-3] * 5, offsets=[0] * 5)


def _enmap(folder: Path) -> Path:
    wl = [420.0, 550.0, 993.0, 902.0, 1650.0]
    write_enmap(folder, np.rint(scene_cube() * 1000).astype(np.int16), wl, [8.0] * 5, [1e-4] * 5, [0.0] * 5)
    return next(folder.glob("*METADATA.XML"))


def _npz(folder: Path) -> Path:
    p = folder / "s.npz"
    np.savez(p, cube=scene_cube(), wavelengths=np.array([450, 550, 650, 750, 850.0]),
             mask=np.ones((7, 11), bool), transform=np.array([30, 0, 5e5, 0, -30, 4e6]))
    return p


def _npy(folder: Path) -> Path:
    p = folder / "s.npy"
    np.save(p, scene_cube())
    return p


def _mat(folder: Path) -> Path:
    p = folder / "s.mat"
    cube = scene_cube(4, 5, 3)
    sio.savemat(p, {"Y": cube.reshape(-1, 3, order="F").T, "nRow": 4.0, "nCol": 5.0, "maxValue": 1.0})
    return p


def _prisma(folder: Path) -> Path:
    return make_prisma_he5(folder / "p.he5", 3, 4, "L2D", zero_pixels=[], flagged_pixels=[]).path


def _emit(folder: Path) -> Path:
    return make_emit_nc(folder / "e.nc", 4, 3)["path"]


def _neon(folder: Path) -> Path:
    return make_neon_h5(folder / "n.h5", 4, 3)["path"]


BYTE_READERS = {"tif": _tif, "npz": _npz, "npy": _npy, "mat": _mat, "envi-data": _envi, "ehdr-data": _ehdr}
TEXT_READERS = {"envi": _envi, "ehdr": _ehdr, "enmap": _enmap}
HDF5_READERS = {"prisma": _prisma, "emit": _emit, "neon": _neon}


def _fresh(builder, tmp: Path) -> tuple[Path, Path]:
    """(pristine copy folder, path in it) built once; each example works on a copy."""
    src = tmp / "src"
    src.mkdir()
    return src, builder(src)


def _copy(src: Path, target: Path, tmp: Path) -> Path:
    work = tmp / "work"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(src, work)
    return work / target.relative_to(src)


def _data_file(path: Path) -> Path:
    """The binary part of a product: the data file of a header, else the file itself."""
    if path.suffix.lower() == ".hdr":
        return next(p for p in path.parent.iterdir() if p.stem == path.stem and p != path)
    return path


@pytest.mark.parametrize("kind", sorted(BYTE_READERS))
def test_byte_mutations(kind, tmp_path):
    src, target = _fresh(BYTE_READERS[kind], tmp_path)
    size = _data_file(target).stat().st_size

    @BUDGET
    @given(flips=st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), max_size=8),
           cut=st.one_of(st.none(), st.integers(0, size)))
    def run(flips, cut):
        path = _copy(src, target, tmp_path)
        data = _data_file(path)
        raw = bytearray(data.read_bytes())
        for pos, val in flips:
            raw[pos] = val
        data.write_bytes(bytes(raw[:cut] if cut is not None else raw))
        _use(path)

    run()


@pytest.mark.parametrize("kind", sorted(TEXT_READERS))
def test_header_mutations(kind, tmp_path):
    src, target = _fresh(TEXT_READERS[kind], tmp_path)
    n_lines = len(target.read_text().splitlines())

    @BUDGET
    @given(edits=st.lists(st.tuples(st.integers(0, n_lines - 1),
                                    st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12))),
                          min_size=1, max_size=3),
           drop=st.one_of(st.none(), st.integers(0, n_lines - 1)))
    def run(edits, drop):
        path = _copy(src, target, tmp_path)
        lines = path.read_text().splitlines()
        for i, value in edits:
            line = lines[i]
            if "=" in line:  # ENVI: key = value
                lines[i] = line.split("=", 1)[0] + "= " + value
            elif line.lstrip().startswith("<") and ">" in line and "</" in line:  # XML element text
                head, rest = line.split(">", 1)
                lines[i] = head + ">" + value.replace("<", "").replace("&", "") + "</" + rest.split("</", 1)[1]
            else:  # EHdr: KEYWORD value
                lines[i] = line.split(None, 1)[0] + " " + value if line.split() else value
        if drop is not None:
            del lines[drop]
        path.write_text("\n".join(lines) + "\n")
        _use(path)

    run()


def _hdf5_objects(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    objects, attrs = [], [("/", k) for k in h5py.File(path, "r").attrs]
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            objects.append(name)
            attrs.extend((name, k) for k in obj.attrs)
        f.visititems(visit)
    return objects, attrs


ATTR_VALUES = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from([0, -1, np.nan, np.inf, 1e308, -32768]),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=4).map(
        lambda v: np.array(v, np.float32)),
)


def _mutate(f: h5py.File, op: str, where, value) -> None:
    if op == "attr":
        obj, key = where
        f[obj].attrs[key] = value
        return
    parent_name, _, name = where.rpartition("/")
    parent = f[parent_name or "/"]
    if parent.get(name, getlink=True) is None:
        return
    del parent[name]
    if op == "group":
        parent.create_group(name)
    elif op == "softloop":
        parent[name] = h5py.SoftLink(f"{parent.name.rstrip('/')}/{name}")
    elif op == "external":
        parent[name] = h5py.ExternalLink("missing.h5", "/x")


@pytest.mark.parametrize("kind", sorted(HDF5_READERS))
def test_hdf5_mutations(kind, tmp_path):
    src, target = _fresh(HDF5_READERS[kind], tmp_path)
    objects, attrs = _hdf5_objects(target)

    @BUDGET
    @given(ops=st.lists(st.one_of(
        st.tuples(st.just("attr"), st.sampled_from(attrs), ATTR_VALUES),
        st.tuples(st.just("delete"), st.sampled_from(objects), st.none()),
        st.tuples(st.just("group"), st.sampled_from(objects), st.none()),
        st.tuples(st.just("softloop"), st.sampled_from(objects), st.none()),
        st.tuples(st.just("external"), st.sampled_from(objects), st.none()),
    ), min_size=1, max_size=3), allow=st.booleans())
    def run(ops, allow):
        path = _copy(src, target, tmp_path)
        with h5py.File(path, "r+") as f:
            for op, where, value in ops:
                try:
                    _mutate(f, op, where, value)
                except (KeyError, RuntimeError, ValueError, TypeError, OSError):
                    pass  # the mutation itself hit an earlier one (a broken link): skip it
        _use(path, allow_external=allow)

    run()
