"""ENVI spectral libraries (.sli + .hdr) as endmember and training sources, and as a run output.

Fixtures write the bytes and the header text themselves, the way ENVI writes a library
(``file type = ENVI Spectral Library``, samples = channels, lines = spectra, bands = 1), so
the tests do not depend on the writer they check.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from unmixgen.errors import InputError
from unmixgen.io import read_scene, write_scene
from unmixgen.io.sli import read_library
from unmixgen.runs.endmembers import fit_to_bands, load_endmembers
from unmixgen.scene import Scene
from unmixgen.simulate.procedural import make_scene
from unmixgen.unmix.inversion import fcls

CODES = {"f4": 4, "f8": 5, "i2": 2}
NAMES = ["Kaolinite CM9", "Alunite GDS84", "Alunite", "Muscovite GDS107"]


def library_values(n=4, channels=12, seed=0):
    """``(n, channels)`` reflectances in (0.1, 0.9), every one distinct."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.9, (n, channels))


def write_sli(folder, stored, *, name="lib", ext=".sli", header_name=None, code=None, byte_order=0, offset=0,
              wavelengths=None, units="Nanometers", names=NAMES, extra=None, omit=()):
    """Write ``stored (spectra, channels)`` as ENVI does: raw samples (``byte_order``) after
    ``offset`` bytes, and a header; returns ``(header, data file)``."""
    stored = np.asarray(stored)
    lines, samples = stored.shape
    code = code or CODES[stored.dtype.str[1:]]
    dt = stored.dtype.newbyteorder("<" if byte_order == 0 else ">")
    data = folder / f"{name}{ext}"
    data.write_bytes(b"\x00" * offset + np.ascontiguousarray(stored.astype(dt)).tobytes())
    fields = {"description": "{test library}", "samples": str(samples), "lines": str(lines), "bands": "1",
              "header offset": str(offset), "file type": "ENVI Spectral Library", "data type": str(code),
              "interleave": "bsq", "sensor type": "Unknown", "byte order": str(byte_order)}
    if wavelengths is not None:
        fields["wavelength units"] = units
        fields["wavelength"] = "{\n " + ",\n ".join(f"{w:.6f}" for w in wavelengths) + "}"
    if names is not None:
        fields["spectra names"] = "{\n " + ",\n ".join(names) + "}"
    fields.update(extra or {})
    hdr = folder / (header_name or f"{name}.hdr")
    hdr.write_text("ENVI\n" + "".join(f"{k} = {v}\n" for k, v in fields.items() if k not in omit))
    return hdr, data


WL_NM = np.linspace(420.0, 970.0, 12)


@pytest.mark.parametrize("case", ["f4 little nm", "f8 big um offset", "i2 big scaled um", "i2 little scaled unknown",
                                  "f4 descending name.sli.hdr"])
def test_library_reads_as_envi_writes_it(tmp_path, case):
    """Byte order 0 and 1, data types 4, 5 and 2 (with a reflectance scale factor), a header
    offset, micrometres named or not, a header named lib.sli.hdr, wavelengths stored long to
    short: the same spectra on increasing nm, with their names, from the data file or the header."""
    values = library_values()
    wl, units, extra, kw = WL_NM, "Nanometers", {}, {}
    stored = values.astype(np.float32)
    if "f8" in case:
        stored = values.astype(np.float64)
    if "i2" in case:
        stored = np.round(values * 10000).astype(np.int16)
        extra["reflectance scale factor"] = "10000.000000"
    if "um" in case:
        wl, units = WL_NM / 1000, "Micrometers"
    if "unknown" in case:
        wl, units = WL_NM / 1000, "Unknown"
    if "descending" in case:
        stored, wl = stored[:, ::-1], wl[::-1]
        kw["header_name"] = "lib.sli.hdr"
    hdr, data = write_sli(tmp_path, stored, byte_order=1 if "big" in case else 0,
                          offset=128 if "offset" in case else 0, wavelengths=wl, units=units, extra=extra, **kw)
    tol = 0.6e-4 if "i2" in case else 1e-6
    for given in (data, hdr):
        lib = read_library(given)
        assert lib.spectra.dtype == np.float32 and lib.spectra.shape == (4, 12)
        np.testing.assert_allclose(lib.spectra, values, atol=tol)
        np.testing.assert_allclose(lib.wavelengths, WL_NM, rtol=1e-9)
        assert lib.names == NAMES and lib.header == hdr and lib.data == data
        em = load_endmembers(given)
        np.testing.assert_allclose(em.spectra, values, atol=tol)
        assert em.names == NAMES and em.source == str(given)


def test_bad_channels_and_the_ignore_value_are_missing(tmp_path):
    """``bbl`` 0 marks a channel missing in every spectrum, the ``data ignore value`` a value
    in one; both read as NaN (never as reflectance), and the scene bands next to them are not
    used, as next to the USGS library's deleted channels."""
    values = library_values()
    stored = np.round(values * 10000).astype(np.int16)
    stored[2, 7] = -9999
    bbl = ["1"] * 12
    bbl[4] = "0"
    hdr, _ = write_sli(tmp_path, stored, wavelengths=WL_NM,
                       extra={"reflectance scale factor": "10000", "data ignore value": "-9999",
                              "bbl": "{" + ", ".join(bbl) + "}"})
    em = load_endmembers(hdr)
    missing = np.isnan(em.spectra)
    expect = np.zeros((4, 12), bool)
    expect[:, 4] = expect[2, 7] = True
    np.testing.assert_array_equal(missing, expect)
    np.testing.assert_allclose(em.spectra[~missing], values[~expect], atol=0.6e-4)
    scene_wl = np.arange(425.0, 966.0, 10.0)  # none on a library channel
    _, covered = fit_to_bands(em, scene_wl, scene_wl.size)
    next_to = ((scene_wl > WL_NM[3]) & (scene_wl < WL_NM[5])) | ((scene_wl > WL_NM[6]) & (scene_wl < WL_NM[8]))
    np.testing.assert_array_equal(covered, ~next_to)  # between the channels around channels 5 and 8 only


def test_names_are_picked_as_from_a_usgs_library(tmp_path):
    """``LIB.sli:names`` picks by case-insensitive substring, an exact name winning over the
    first partial match, in the order asked; from the data file or the header."""
    values = library_values()
    hdr, data = write_sli(tmp_path, values.astype(np.float32), wavelengths=WL_NM)
    for lib in (data, hdr):
        em = load_endmembers(f"{lib}:muscovite,ALUNITE,kaolin")
        assert em.names == ["Muscovite GDS107", "Alunite", "Kaolinite CM9"]
        np.testing.assert_allclose(em.spectra, values[[3, 2, 0]], rtol=1e-6)
        np.testing.assert_allclose(em.wavelengths, WL_NM)
        assert em.source == f"{lib}:muscovite,ALUNITE,kaolin"
    assert load_endmembers(f"{data}:gds84").names == ["Alunite GDS84"]
    with pytest.raises(InputError, match=r"lib\.sli: no spectrum named 'unobtainium'"):
        load_endmembers(f"{data}:kaolin,unobtainium")
    with pytest.raises(InputError, match="similar: Muscovite GDS107"):
        load_endmembers(f"{data}:muscovado")
    bare, _ = write_sli(tmp_path, values.astype(np.float32), name="bare", wavelengths=WL_NM, names=None)
    with pytest.raises(InputError, match=r"bare\.hdr: header lists no 'spectra names'"):
        load_endmembers(f"{tmp_path / 'bare.sli'}:kaolin")
    assert load_endmembers(bare).names == ["em1", "em2", "em3", "em4"]  # all of them, default names


def _bad_libraries(folder):
    """``{file name: (path given, message)}``: each defect of a library header or its data."""
    v = library_values().astype(np.float32)
    cases = {}

    def add(name, message, stored=v, given="data", **kw):
        hdr, data = write_sli(folder, stored, name=name, **{"wavelengths": WL_NM, **kw})
        cases[name] = (data if given == "data" else hdr, message)

    add("short", "holds 188 bytes; expected lines*samples*4 + header offset = 4*12*4 + 0 = 192", stored=v,
        extra={})
    (folder / "short.sli").write_bytes((folder / "short.sli").read_bytes()[:-4])
    add("bands", "bands = 3; expected an ENVI spectral library", extra={"bands": "3"})
    add("text_type", "'data type' = 'float' is not an integer", extra={"data type": "float"})
    add("complex", "complex types 6 and 9 are not", extra={"data type": "6"})
    add("names", "3 spectra names for 4 spectra", names=NAMES[:3])
    add("wavelengths", "11 wavelengths for 12 channels", wavelengths=WL_NM[:11])
    add("bbl", "2 bad-channel flags (bbl) for 12 channels", extra={"bbl": "{1, 0}"})
    nan = v.copy()
    nan[1, 3] = np.nan
    add("nan", "spectrum 'Alunite GDS84' holds nan at channel 4; expected finite values", stored=nan)
    inf = v.copy()
    inf[3, 0] = np.inf
    add("inf", "spectrum 'Muscovite GDS107' holds inf at channel 1", stored=inf)
    add("image", "is an ENVI image (file type = ENVI Standard), not a spectral library; expected an ENVI spectral "
                 "library", given="hdr", extra={"file type": "ENVI Standard"})
    add("units", "wavelengths have unit 'Parsecs', which is not a length", units="Parsecs")
    add("twice", "two bands at 420 nm", wavelengths=np.r_[WL_NM[:1], WL_NM[:11]])
    return cases


def test_bad_libraries_are_one_input_error_naming_the_file(tmp_path):
    for name, (path, message) in _bad_libraries(tmp_path).items():
        with pytest.raises(InputError) as info:
            load_endmembers(path)
        text = str(info.value)
        assert text.startswith(str(tmp_path / name)) and message in text, (name, text)
        assert "\n" not in text


def test_all_missing_values_are_refused(tmp_path):
    stored = np.full((2, 12), -1.0, np.float32)
    stored[0, 3] = 0.5
    hdr, _ = write_sli(tmp_path, stored, wavelengths=WL_NM, names=["a", "b"], extra={"data ignore value": "-1"})
    with pytest.raises(InputError, match=r"lib\.sli: spectrum 'b' has every channel missing"):
        load_endmembers(tmp_path / "lib.sli")
    with pytest.raises(InputError, match="spectrum 'b' has every channel missing"):
        load_endmembers(f"{hdr}:b")
    np.testing.assert_allclose(load_endmembers(f"{hdr}:a").spectra[0, 3], 0.5)
    bbl = "{" + ", ".join(["0"] * 12) + "}"
    write_sli(tmp_path, stored, name="none", wavelengths=WL_NM, names=["a", "b"], extra={"bbl": bbl})
    with pytest.raises(InputError, match=r"none\.hdr: every value is missing"):
        load_endmembers(tmp_path / "none.sli")


@pytest.fixture
def scene_file(tmp_path):
    """A non-square 24x37 scene of 3 endmembers with wavelengths, and the scene object."""
    s = make_scene(rows=24, cols=37, p=3, snr_db=40, seed=3)
    path = tmp_path / "scene.npz"
    write_scene(Scene(s.load().copy(), wavelengths=s.wavelengths), path)
    return path, s


def test_bad_libraries_exit_2_with_one_line_and_write_nothing(run_cli, scene_file, tmp_path):
    path, _ = scene_file
    for name, (bad, message) in _bad_libraries(tmp_path).items():
        code, _, err = run_cli("unmix", path, "--endmembers-file", bad, "--out", tmp_path / "o")
        assert code == 2 and message in err and name in err and len(err.strip().splitlines()) == 1, (name, err)
        assert not (tmp_path / "o").exists()


def test_unmix_with_library_spectra_picked_by_name(run_cli, scene_file, tmp_path):
    """The truth spectra stored as ENVI does (int16, scale factor 10000, big endian,
    micrometres) among others: ``LIB.sli:names`` unmixes as FCLS with those spectra."""
    path, s = scene_file
    E = np.asarray(s.truth.endmembers, np.float64)
    others = library_values(2, E.shape[1], seed=5)
    stored = np.round(np.vstack([others[:1], E, others[1:]]) * 10000).astype(np.int16)
    names = ["Decoy one", "Green vegetation", "Dry soil", "Lake water", "Decoy two"]
    write_sli(tmp_path, stored, byte_order=1, wavelengths=s.wavelengths / 1000, units="Micrometers", names=names,
              extra={"reflectance scale factor": "10000"})
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--endmembers-file", f"{tmp_path / 'lib.sli'}:soil,water,vegetation",
                           "--out", out, "--no-figures")
    assert code == 0, err
    with np.load(out / "result.npz") as r:
        A, mask, E_run, run_names = r["abundances"], r["mask"], r["endmembers"], list(r["names"])
    Q = (stored[[2, 3, 1]] / 10000).astype(np.float32)
    np.testing.assert_allclose(E_run, Q, rtol=1e-6)
    assert run_names == ["Dry soil", "Lake water", "Green vegetation"]
    ref = fcls(read_scene(path).valid_pixels(), Q)
    assert np.abs(A[mask] - ref).max() < 1e-4


def test_a_run_folder_writes_its_endmembers_as_a_library_that_reads_back(run_cli, scene_file, tmp_path):
    """endmembers.sli + endmembers.hdr (float32, little endian, nm, spectra names) hold the
    result's spectra; read back they are the same spectra, wavelengths and names, NaN bands
    (outside a narrower source's range) included; the folder itself still reads result.npz."""
    path, s = scene_file
    E = np.asarray(s.truth.endmembers, np.float32)
    keep = s.wavelengths <= 2000  # the scene bands beyond are not covered: NaN in the result
    np.savez(tmp_path / "E.npz", endmembers=E[:, keep], wavelengths=s.wavelengths[keep],
             names=np.array(["veg, green", "soil", "water"]))
    out = tmp_path / "run"
    code, _, err = run_cli("unmix", path, "--endmembers-file", tmp_path / "E.npz", "--out", out, "--no-figures")
    assert code == 0, err
    with np.load(out / "result.npz") as r:
        E_run, wl, names = r["endmembers"], r["wavelengths"], [str(n) for n in r["names"]]
    assert np.isnan(E_run[:, ~keep]).all() and np.isfinite(E_run[:, keep]).all()
    header = (out / "endmembers.hdr").read_text()
    for line in ("file type = ENVI Spectral Library", "data type = 4", "byte order = 0", "bands = 1",
                 f"samples = {s.bands}", "lines = 3", "wavelength units = Nanometers", "data ignore value = nan"):
        assert line in header.splitlines(), line
    raw = np.fromfile(out / "endmembers.sli", "<f4").reshape(3, s.bands)
    np.testing.assert_array_equal(raw, E_run)
    for given in (out / "endmembers.sli", out / "endmembers.hdr"):
        em = load_endmembers(given)
        np.testing.assert_array_equal(em.spectra, E_run)
        np.testing.assert_array_equal(em.wavelengths, wl)
        assert em.names == ["veg; green", "soil", "water"] and names[0] == "veg, green"
    folder = load_endmembers(out)
    assert folder.source == str(out) and folder.names == names
    np.testing.assert_array_equal(folder.spectra, E_run)
    # unmixing with the written library gives the result's abundances again
    code, _, err = run_cli("unmix", path, "--endmembers-file", out / "endmembers.sli", "--out", tmp_path / "again",
                           "--no-figures")
    assert code == 0, err
    with np.load(out / "result.npz") as a, np.load(tmp_path / "again" / "result.npz") as b:
        np.testing.assert_allclose(b["abundances"], a["abundances"], atol=1e-6)
    from unmixgen.workflows.refinement import endmember_origin

    record = json.loads((tmp_path / "again" / "run.json").read_text())
    assert endmember_origin(record) == "scene"  # the endmembers of a run folder, as the folder itself


def test_simulate_takes_a_library_and_writes_one(run_cli, tmp_path):
    from unmixgen.simulate.procedural import make_scene as procedural

    s = procedural(rows=6, cols=5, p=2, seed=1)
    stored = np.asarray(s.truth.endmembers, np.float32)
    write_sli(tmp_path, stored, wavelengths=s.wavelengths, names=["Leaf", "Sand"])
    a = np.random.default_rng(0).dirichlet([1, 1], (1, 6, 5)).astype(np.float32)
    np.savez(tmp_path / "maps.npz", abundances=a)
    code, _, err = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", f"{tmp_path / 'lib.sli'}:sand,leaf",
                           "--out", tmp_path / "sim")
    assert code == 0, err
    em = load_endmembers(tmp_path / "sim" / "endmembers.sli")
    assert em.names == ["Sand", "Leaf"]
    np.testing.assert_allclose(em.spectra, stored[[1, 0]], rtol=1e-6)
    np.testing.assert_allclose(em.wavelengths, s.wavelengths)


def test_a_library_is_a_training_set_for_the_spectra_prior(tmp_path):
    """train-spectra reads every spectrum of a .sli: bad channels at the range's end are cut,
    those inside filled along wavelength, a spectrum missing its last channel left out."""
    from unmixgen.workflows.refinement import _training_spectra

    values = library_values(6, 12)
    stored = values.astype(np.float32)
    stored[5, 10] = -1  # its last kept channel: left out
    bbl = ["1"] * 12
    bbl[6] = bbl[11] = "0"
    write_sli(tmp_path, stored, wavelengths=WL_NM / 1000, units="micrometers", names=[f"s{i}" for i in range(6)],
              extra={"bbl": "{" + ", ".join(bbl) + "}", "data ignore value": "-1"})
    with pytest.warns(UserWarning, match="1 spectra not measured over the whole range left out; 5 with deleted"):
        spectra, wl, names = _training_spectra([tmp_path / "lib.sli"])
    np.testing.assert_allclose(wl, WL_NM[:11])
    assert spectra.shape == (5, 11) and np.isfinite(spectra).all() and names == [str(tmp_path / "lib.sli")]
    inside = np.r_[0:6, 7:11]
    np.testing.assert_allclose(spectra[:, inside], values[:5, inside], rtol=1e-6)
    np.testing.assert_allclose(spectra[:, 6], (values[:5, 5] + values[:5, 7]) / 2, rtol=1e-5)


def test_a_library_given_as_a_scene_says_what_it_is(tmp_path):
    write_sli(tmp_path, library_values().astype(np.float32), wavelengths=WL_NM)
    for given in (tmp_path / "lib.sli", tmp_path / "lib.hdr"):
        with pytest.raises(InputError, match=r"lib\.hdr: is an ENVI spectral library \(4 spectra of 12 channels\), "
                                             "not a scene"):
            read_scene(given)


def test_a_library_saved_by_spy_reads(tmp_path):
    """SPy's ``SpectralLibrary.save`` writes ``fwhm = None`` when it has no band widths, an
    empty ``wavelength units`` and ``data ignore value = NaN``, lists as ``{ a , b }``: the
    spectra, names and wavelengths read (a library has no use for widths)."""
    values = library_values().astype(np.float32)
    (tmp_path / "spy.sli").write_bytes(values.astype("<f4").tobytes())
    (tmp_path / "spy.hdr").write_text(
        "ENVI\ndescription = {\n  saved by SPy}\nsamples = 12\nlines = 4\nbands = 1\nheader offset = 0\n"
        "file type = ENVI Spectral Library\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"
        "data ignore value = NaN\nwavelength units = \nspectra names = { " + " , ".join(NAMES) + " }\n"
        "wavelength = { " + " , ".join(f"{w / 1000:g}" for w in WL_NM) + " }\nfwhm = None\n")
    lib = read_library(tmp_path / "spy.sli")
    assert lib.names == NAMES
    np.testing.assert_allclose(lib.spectra, values)
    np.testing.assert_allclose(lib.wavelengths, WL_NM, rtol=1e-5)


def test_a_library_beside_an_image_header_uses_its_own_header(tmp_path):
    """``scene.sli`` beside ``scene.img`` + ``scene.hdr`` (an image's) has its header as
    ``scene.sli.hdr``: that one is read, from the data file as from ``LIB.sli:names``."""
    values = library_values().astype(np.float32)
    write_sli(tmp_path, values, name="scene", header_name="scene.sli.hdr", wavelengths=WL_NM)
    image = Scene(np.ones((3, 5, 12), np.float32), wavelengths=WL_NM)
    write_scene(image, tmp_path / "scene.img")
    assert (tmp_path / "scene.hdr").is_file()
    lib = read_library(tmp_path / "scene.sli")
    assert lib.header == tmp_path / "scene.sli.hdr" and lib.names == NAMES
    np.testing.assert_allclose(load_endmembers(f"{tmp_path / 'scene.sli'}:alunite").spectra, values[[2]])
    assert read_scene(tmp_path / "scene.img").shape[:2] == (3, 5)  # the image still reads as one


def test_usgs_deleted_channels_are_missing_without_an_ignore_value(tmp_path):
    """The USGS libraries mark deleted channels -1.23e34; an ENVI version of one without a
    ``data ignore value`` reads them as missing, as the .mat reader does, never as a
    reflectance the scene bands would be interpolated from."""
    stored = library_values().astype(np.float32)
    stored[1, 5:7] = -1.23e34
    write_sli(tmp_path, stored, wavelengths=WL_NM)
    em = load_endmembers(tmp_path / "lib.sli")
    expect = np.zeros(stored.shape, bool)
    expect[1, 5:7] = True
    np.testing.assert_array_equal(np.isnan(em.spectra), expect)


def test_quoted_names_keep_their_commas(tmp_path):
    """Names written in double quotes (``"Kaolinite CM9, wet"``) are one name each, not split at
    the comma inside (which refused the library: more names than spectra)."""
    names = ['"Kaolinite CM9, wet"', "Alunite GDS84", '"Alunite, fine"', "Muscovite GDS107"]
    write_sli(tmp_path, library_values().astype(np.float32), wavelengths=WL_NM, names=names)
    lib = read_library(tmp_path / "lib.sli")
    assert lib.names == ["Kaolinite CM9, wet", "Alunite GDS84", "Alunite, fine", "Muscovite GDS107"]
    assert load_endmembers(f"{tmp_path / 'lib.sli'}:kaolinite cm9").names == ["Kaolinite CM9, wet"]


def test_a_spectrum_deleted_whole_is_left_out_of_training_not_the_library(tmp_path):
    """A library spectrum with every channel missing (a USGS spectrum of another instrument's
    range, all -1.23e34) is left out of the spectra prior's training set with the others that
    miss channels, as from the USGS .mat; it refused the whole .sli (and its header)."""
    from unmixgen.workflows.refinement import _training_spectra

    stored = library_values(5, 12).astype(np.float32)
    stored[2] = -1.23e34
    write_sli(tmp_path, stored, wavelengths=WL_NM, names=[f"s{i}" for i in range(5)])
    for given in (tmp_path / "lib.sli", tmp_path / "lib.hdr"):
        with pytest.warns(UserWarning, match="1 spectra not measured over the whole range left out"):
            spectra, wl, _ = _training_spectra([given])
        np.testing.assert_allclose(spectra, stored[[0, 1, 3, 4]], rtol=1e-6)
        np.testing.assert_allclose(wl, WL_NM)


def test_a_library_keeps_its_unit_label(tmp_path):
    """write_library wrote 'data units = radiance' for spectra in uW/(cm^2 sr nm), and the
    reader gave back the word: the unit was lost."""
    from unmixgen.io.sli import write_library

    spectra = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], np.float32)
    write_library(tmp_path / "lib.sli", spectra, np.array([400.0, 500.0, 600.0]), ["a", "b"], "uW/(cm^2 sr nm)")
    assert read_library(tmp_path / "lib.sli").units == "uW/(cm^2 sr nm)"
    # and so does a source of endmembers: simulated scenes are in that unit
    assert load_endmembers(tmp_path / "lib.sli").units == "uW/(cm^2 sr nm)"
    # a brace would end the header's value: the label keeps parentheses instead
    write_library(tmp_path / "b.sli", spectra, np.array([400.0, 500.0, 600.0]), ["a", "b"], "{W/(m2 sr um)}")
    assert read_library(tmp_path / "b.sli").units == "(W/(m2 sr um))"


@pytest.mark.parametrize("units, shown", [
    (np.array([1.0, 2.0]), r"2 values of type float64"),
    (np.array(3), r"1 values of type int64"),
    (np.array(["reflectance", "radiance"]), r"2 values of type <U11"),
    (np.array([b"a", b"b"]), r"2 values of type \|S1"),
    (np.array(["reflectance"], dtype=object), r"cannot be loaded"),
])
def test_npz_endmembers_whose_units_are_not_one_string_are_one_clear_error(tmp_path, run_cli, units, shown):
    """An .npz source's 'units' that is not text (numbers, several strings, a pickled object)
    was taken as no units at all (or, for an object array, met a load error naming no key);
    the scene reader refuses it (`io.checks.units_in_file`), so the endmember reader does too."""
    path = tmp_path / "em.npz"
    np.savez(path, endmembers=library_values(2, 6), wavelengths=np.linspace(400.0, 900.0, 6), units=units)
    with pytest.raises(InputError, match=rf"^{path}: 'units' .*{shown}.*; expected one unit label") as err:
        load_endmembers(path)
    assert "\n" not in str(err.value)
    np.savez(tmp_path / "maps.npz", abundances=np.full((3, 4, 2), 0.5, np.float32))
    code, _, err_text = run_cli("simulate", "-a", tmp_path / "maps.npz", "-e", path, "--out", tmp_path / "sim")
    assert code == 2 and "'units'" in err_text and err_text.strip().count("\n") == 0


@pytest.mark.parametrize("units, kept", [(np.array("uW/(cm^2 sr nm)"), "uW/(cm^2 sr nm)"),
                                         (np.array(b"reflectance"), "reflectance"),  # bytes: as the scene reader
                                         (np.array(["radiance"]), "radiance"),
                                         (np.array("DN"), None)])  # text naming no quantity: unknown, as everywhere
def test_npz_endmembers_with_one_text_units_keep_it(tmp_path, units, kept):
    path = tmp_path / "em.npz"
    np.savez(path, endmembers=library_values(2, 6), units=units)
    assert load_endmembers(path).units == kept


def _result(folder, units):
    """A run folder with a 2-endmember, 6-band result.npz whose 'units' is ``units``."""
    folder.mkdir(parents=True)
    np.savez(folder / "result.npz", endmembers=library_values(2, 6).astype(np.float32),
             abundances=np.full((3, 4, 2), 0.5, np.float32), wavelengths=np.linspace(400.0, 900.0, 6), units=units)
    return folder


def test_a_result_whose_units_are_not_one_string_is_refused(tmp_path):
    """A result folder is an endmember source too; its 'units' went through the same silent
    path (numbers read as no units)."""
    from unmixgen.runs.folder import load_result

    folder = _result(tmp_path / "run", np.array([1.0]))
    for load in (load_result, load_endmembers):
        with pytest.raises(InputError, match=rf"^{folder}: result's 'units' is not one string .*; expected one unit"):
            load(folder)
    assert load_endmembers(_result(tmp_path / "ok", np.array("W/(m^2 sr um)"))).units == "W/(m^2 sr um)"
