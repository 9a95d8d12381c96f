"""Figures and the HTML report: valid PNGs, no wavelengths, invalid pixels, escaping."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from unmixgen.report import figures as report
from unmixgen.report import html
from unmixgen.scene import Scene
from unmixgen.simulate import procedural as synthetic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path, min_side=200):
    assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC
    img = imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) >= min_side and max(img.shape[:2]) <= 4000
    assert img[..., :3].std() > 0.01  # not blank
    return img


@pytest.fixture
def figs(monkeypatch) -> list:
    """The figures the report draws during a test, in order (each is still saved)."""
    drawn: list = []
    save = report._save
    monkeypatch.setattr(report, "_save", lambda fig, path: (drawn.append(fig), save(fig, path))[1])
    return drawn


@pytest.fixture(scope="module")
def scene() -> Scene:
    return synthetic.make_scene(rows=18, cols=30, bands=40, p=3, seed=1)


def test_plot_rgb_true_colour_and_invalid_grey(scene, tmp_path):
    cube = scene.load().copy()
    cube[:4, :5] = np.nan
    s = Scene(cube, wavelengths=scene.wavelengths, name="with holes")
    out = report.plot_rgb(s, tmp_path / "rgb.png")
    assert out == tmp_path / "rgb.png"
    _check_png(out)
    assert report._rgb_bands(s)[1].startswith("true colour")
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write leaves no temporary file


def test_plot_rgb_without_wavelengths_and_outside_visible(scene, tmp_path):
    s = Scene(scene.load())
    _check_png(report.plot_rgb(s, tmp_path / "a.png"))
    idx, how = report._rgb_bands(s)
    assert how.startswith("false colour") and len(set(idx)) == 3
    swir = Scene(scene.load()[..., :20], wavelengths=np.linspace(1000, 2400, 20))
    assert report._rgb_bands(swir)[1].startswith("false colour")


def test_plot_rgb_strides_large_scenes(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "MAX_SIDE", 10)
    cube = np.random.default_rng(0).uniform(0.1, 1, (31, 45, 3)).astype(np.float32)
    _check_png(report.plot_rgb(Scene(cube), tmp_path / "big.png"))
    assert report._strided_bands(Scene(cube), [0, 1, 2], 5).shape == (7, 9, 3)


def test_plot_abundances_with_mask_nan_and_truth(scene, tmp_path):
    a = scene.truth.abundances.copy()
    a[0, 0] = np.nan
    mask = np.ones(a.shape[:2], bool)
    mask[5:9, 10:20] = False
    one = _check_png(report.plot_abundances(a, tmp_path / "a.png", names=scene.truth.names, mask=mask))
    two = _check_png(report.plot_abundances(a, tmp_path / "b.png", mask=mask, truth=scene.truth.abundances))
    assert two.shape[0] > one.shape[0]  # a second row for the ground truth
    with pytest.raises(ValueError, match="rows, cols, p"):
        report.plot_abundances(a[0], tmp_path / "c.png")


def test_one_row_and_one_column_scenes_get_readable_figures(tmp_path):
    a = np.random.default_rng(0).dirichlet([1, 1, 1], size=(1, 40)).astype(np.float32)
    for name, maps in (("row", a), ("col", a.transpose(1, 0, 2).copy())):
        report.plot_abundances(maps, tmp_path / f"{name}.png")
        h, w = imread(tmp_path / f"{name}.png").shape[:2]
        # a 1-row panel keeps room for the colour bar; a 1-column one is not 40 panels tall
        assert h >= 150 if name == "row" else h <= 1000, (name, h, w)


def test_plot_endmembers_with_and_without_wavelengths(scene, tmp_path):
    E = scene.truth.endmembers
    _check_png(report.plot_endmembers(E, scene.wavelengths, tmp_path / "e.png",
                                      names=scene.truth.names, truth=E * 0.9))
    _check_png(report.plot_endmembers(E, None, tmp_path / "f.png"))
    # removed bands: lines break at the gap instead of bridging it
    x, y = report._with_gaps(np.r_[np.arange(10.0), np.arange(30.0, 40.0)], np.ones((2, 20)))
    assert np.isnan(x).sum() == 1 and np.isnan(y).sum() == 2


def test_plot_abundance_grid(tmp_path):
    maps = np.stack([synthetic.abundance_maps(20, 28, 4, rng=i) for i in range(5)])
    maps[0, :3, :3] = np.nan
    img = _check_png(report.plot_abundance_grid(maps, tmp_path / "g.png", names=list("abcd"),
                                                titles=["real"] + ["synthetic"] * 4), min_side=150)
    assert img.shape[1] > img.shape[0] * 0.8
    rgb = report._composite(np.eye(3, dtype=np.float32)[None], np.eye(3))
    np.testing.assert_allclose(rgb[0], np.eye(3))  # p <= 3: the plain RGB composite
    _check_png(report.plot_abundance_grid(maps[0, ..., :3], tmp_path / "h.png",
                                          colours=["red", "green", "blue"]), min_side=150)
    with pytest.raises(ValueError, match="colours"):
        report.plot_abundance_grid(maps, tmp_path / "i.png", colours=["red"])


def test_plot_training_curve(tmp_path):
    steps = np.arange(300)
    _check_png(report.plot_training_curve(steps, 1.0 / (1 + steps), tmp_path / "t.png"))
    with pytest.raises(ValueError, match="differ"):
        report.plot_training_curve(steps, steps[:-1], tmp_path / "u.png")


def test_html_report_links_images_and_escapes(tmp_path):
    report.plot_training_curve([0, 1, 2], [3.0, 2.0, 1.0], tmp_path / "loss.png")
    table = html.html_table([{"method": "<VCA>", "SAD": 0.123456}, {"method": "N&FINDR", "RMSE": float("nan")}])
    out = html.write_html_report(
        tmp_path, "Run <1> & co",
        [("Loss <curve>", [tmp_path / "loss.png", "absent.png"], html.html_text("a < b\n\nsecond")),
         ("Metrics", [], "Method <b>x</b>." + table)],
    )
    text = out.read_text()
    assert out.name == "report.html"
    assert '<img src="loss.png"' in text and str(tmp_path) not in text  # relative link
    assert "missing figure: absent.png" in text
    assert "Run &lt;1&gt; &amp; co" in text and "<1>" not in text
    assert "Loss &lt;curve&gt;" in text and "<p>a &lt; b</p>" in text and "<p>second</p>" in text
    assert "Method <b>x</b>.<table>" in text  # the body is an HTML fragment, kept as is
    assert "<td>&lt;VCA&gt;</td>" in text and "<td>N&amp;FINDR</td>" in text and "0.1235" in text
    assert "<th>RMSE</th>" in text and "<script" not in text and "http" not in text


def test_many_endmembers_keep_the_legend_off_the_spectra(tmp_path, figs):
    """16 endmembers and their truth are 32 legend entries: placed 'best' inside the axes they
    covered the middle of the plot; they go beside it."""
    wl = np.linspace(400, 2500, 60)
    E = np.random.default_rng(0).uniform(0.1, 0.9, (16, 60))
    _check_png(report.plot_endmembers(E, wl, tmp_path / "e.png", truth=E[::-1] * 0.95,
                                      truth_names=[f"mineral {k}" for k in range(16)]))
    fig = figs[-1]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    box, legend = ax.get_window_extent(renderer), ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= box.x1 and legend.x1 <= fig.bbox.x1 + 1  # beside the axes, inside the figure
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "mineral 15 (truth)" in labels and "em16 (truth)" not in labels
    # a row without a match (NaN) draws nothing and names nothing
    report.plot_endmembers(E[:3], wl, tmp_path / "f.png", truth=np.r_[E[:2], np.full((1, 60), np.nan)])
    assert [t.get_text() for t in figs[-1].axes[0].get_legend().get_texts()] == [
        "em1", "em2", "em3", "em1 (truth)", "em2 (truth)"]


def test_uncertainty_colour_bar_names_what_it_shows(tmp_path, figs):
    """refine's abundances_interval90.png was titled 'width of the 90 % posterior interval'
    but its colour bar said 'abundance std'."""
    w = np.random.default_rng(0).uniform(0, 0.2, (10, 12, 12)).astype(np.float32)
    report.plot_uncertainty(w, tmp_path / "s.png")
    report.plot_uncertainty(w, tmp_path / "w.png", title="width", label="90 % interval width (abundance)")
    assert [f.axes[-1].get_ylabel() for f in figs] == ["abundance std", "90 % interval width (abundance)"]


def test_abundance_grid_legend_of_many_endmembers_stays_below_the_maps(tmp_path, figs):
    """16 endmembers make three legend rows: the fixed half-inch foot put them over the last
    row of maps."""
    maps = np.random.default_rng(0).dirichlet(np.ones(16), size=(6, 12, 12)).astype(np.float32)
    for p in (3, 16):
        report.plot_abundance_grid(maps[..., :p] / maps[..., :p].sum(-1, keepdims=True), tmp_path / f"g{p}.png")
        fig = figs[-1]
        renderer = fig.canvas.get_renderer()
        lowest = min(ax.get_window_extent(renderer).y0 for ax in fig.axes)
        legend = fig.legends[0].get_window_extent(renderer)
        assert legend.y1 <= lowest and legend.y0 >= 0, (p, legend, lowest)


def _scene_with_bad_bands(units=None) -> Scene:
    s = synthetic.make_scene(rows=12, cols=19, bands=40, p=3, seed=4)
    good = np.ones(40, bool)
    good[15:21] = False  # a water-vapour gap in the middle of the spectrum
    return Scene(s.load(), wavelengths=s.wavelengths, good_bands=good, units=units, truth=s.truth)


def test_result_spectra_break_at_the_scene_bad_bands(tmp_path, figs):
    """A run's endmembers.png drew whatever the method left at the scene's bad bands as a
    line across the gap, where its CSV and library hold nan."""
    from unmixgen.runs.folder import save_result

    s = _scene_with_bad_bands()
    E = s.truth.endmembers + 0.01
    save_result(tmp_path, s, endmembers=E, abundances=None)
    ax = figs[-1].axes[0]
    assert len(ax.lines) == 3 + 3  # estimates and the scene's truth
    for line in ax.lines:
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        inside = (x >= s.wavelengths[15]) & (x <= s.wavelengths[20])
        assert inside.any() and np.isnan(y[inside]).all(), line.get_label()
        assert np.isfinite(y[x < s.wavelengths[15]]).all()
    # the same without wavelengths: against band number
    report.plot_endmembers(E, None, tmp_path / "b.png", good_bands=s.good_bands)
    ys = np.asarray(figs[-1].axes[0].lines[0].get_ydata(), float)
    assert np.isnan(ys[15:21]).all() and np.isfinite(ys[:15]).all() and np.isfinite(ys[21:]).all()


@pytest.mark.parametrize(("units", "label"), [
    ("reflectance", "reflectance"),
    ("W/(m2 sr um)", "radiance (W/(m2 sr um))"),
    ("radiance", "radiance"),
    (None, "value (unit not stated in the file)"),
])
def test_result_spectra_axis_names_the_scene_units(tmp_path, figs, units, label):
    """endmembers.png said 'reflectance' for every scene, a radiance one (EnMAP L1C, PRISMA L1)
    included."""
    from unmixgen.runs.folder import save_result

    s = _scene_with_bad_bands(units)
    save_result(tmp_path, s, endmembers=s.truth.endmembers, abundances=None)
    assert figs[-1].axes[0].get_ylabel() == label


@pytest.mark.parametrize(("units", "label"), [
    ("Reflectance", "reflectance"),  # the word in any case
    ("uW/cm^2/SR/nm", "radiance (uW/cm^2/SR/nm)"),
    ("DN", "value (DN)"),
    ("W/(m2 nm)  irradiance", "value (W/(m2 nm)  irradiance)"),  # light arriving: no scene quantity
    ("", "value (unit not stated in the file)"),
])
def test_values_label_is_public_for_every_spectra_figure(units, label):
    """run folders' endmembers.png and evaluate's matched spectra take their axis label from one
    public function (evaluate imported the run folder's private one)."""
    assert report.values_label(units) == label


@pytest.mark.parametrize("p", [7, 12])
def test_a_dozen_endmembers_keep_the_legend_off_the_spectra(tmp_path, figs, p):
    """p = 12 spectra: the two-column legend sat inside the axes ('best') over the spectra,
    which fill the whole plot; seven or more entries go beside it."""
    wl = np.linspace(400, 2500, 50)
    E = np.linspace(0.05, 0.95, p)[:, None] + 0.02 * np.sin(wl / 100.0)[None]
    report.plot_endmembers(E, wl, tmp_path / "e.png")
    fig = figs[-1]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    box, legend = ax.get_window_extent(renderer), ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= box.x1 and legend.x1 <= fig.bbox.x1 + 1
    assert len(ax.get_legend().get_texts()) == p


@pytest.mark.parametrize(("p", "truth"), [(1, False), (3, True), (3, False), (6, False)])
def test_a_short_legend_never_covers_the_spectra(tmp_path, figs, p, truth):
    """Up to six entries (3 endmembers + 3 truths) the legend sat inside the axes ('best'),
    over the lines where the spectra fill the plot (flat spectra across the whole height)."""
    from unmixgen.report.evaluation import plot_matched_spectra

    wl = np.linspace(400, 2500, 50)
    E = np.linspace(0.05, 0.95, p)[:, None] + 0.02 * np.sin(wl / 100.0)[None]
    report.plot_endmembers(E, wl, tmp_path / "e.png", truth=E * 0.97 if truth else None)
    plot_matched_spectra(E * 0.97, E, wl, tmp_path / "m.png", names=[f"mineral {k}" for k in range(p)],
                         sad_deg=[12.345] * p)
    for fig, entries in zip(figs[-2:], (p * (1 + truth), 2 * p), strict=True):
        ax = fig.axes[0]
        renderer = fig.canvas.get_renderer()
        box, legend = ax.get_window_extent(renderer), ax.get_legend().get_window_extent(renderer)
        assert not box.overlaps(legend), (box, legend)  # outside the axes' data area
        assert legend.x0 >= box.x1 and legend.x1 <= fig.bbox.x1 + 1  # beside it, inside the figure
        assert len(ax.get_legend().get_texts()) == entries


def _lab(rgb) -> np.ndarray:
    """sRGB in [0, 1] (..., 3) -> CIELAB (D65), the textbook formulas."""
    c = np.asarray(rgb, np.float64)
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


@pytest.mark.parametrize("p", [4, 11, 12, 20])
def test_up_to_twenty_endmembers_get_colours_far_apart(tmp_path, figs, p):
    """Above ten endmembers the figures took tab20, whose colours come in pairs of one hue (em1
    dark blue, em2 light blue: a CIE76 difference of about 17)."""
    from matplotlib.colors import to_rgb

    wl = np.linspace(400, 2500, 40)
    E = np.linspace(0.05, 0.95, p)[:, None] + 0.02 * np.sin(wl / 100.0)[None]
    report.plot_endmembers(E, wl, tmp_path / "e.png", truth=E * 0.97)
    lines = figs[-1].axes[0].get_lines()
    solid = [to_rgb(ln.get_color()) for ln in lines if ln.get_linestyle() == "-"]
    dashed = [to_rgb(ln.get_color()) for ln in lines if ln.get_linestyle() == "--"]
    assert len(solid) == p and dashed == solid  # each truth in its estimate's colour
    lab = _lab(solid)
    diff = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    np.fill_diagonal(diff, np.inf)
    assert diff.min() > 25, np.unravel_index(diff.argmin(), diff.shape)
    assert (lab[:, 0] < 85).all()  # none near white: every line shows on the white axes
    # the maps' composites take the same colours
    A = np.random.default_rng(0).dirichlet(np.ones(p), (6, 7)).astype(np.float32)
    report.plot_abundance_grid(A, tmp_path / "g.png")
    patches = [to_rgb(h.get_facecolor()) for h in figs[-1].legends[0].legend_handles][:p]
    np.testing.assert_allclose(patches, solid)


@pytest.mark.parametrize(("transform", "rows_up", "cols_left"), [
    ((30.0, 0.0, 5e5, 0.0, -30.0, 4e6), False, False),  # north-up: first row at the top
    ((30.0, 0.0, 5e5, 0.0, 30.0, 4e6), True, False),  # south-up (latitude ascending with the row)
    ((-30.0, 0.0, 5e5, 0.0, 30.0, 4e6), True, True),  # turned by 180 degrees
    (None, False, False),  # no map grid: as stored
])
def test_maps_of_a_south_up_grid_are_drawn_north_up(tmp_path, figs, transform, rows_up, cols_left):
    """A south-up product's maps were drawn as stored, upside down against the same maps in
    QGIS; the data stay as stored (first array row = file row 0), the axes turn."""
    from unmixgen.runs.folder import save_result

    s0 = synthetic.make_scene(rows=9, cols=14, bands=30, p=3, seed=5)
    s = Scene(s0.load(), wavelengths=s0.wavelengths, transform=transform,
              crs=None if transform is None else "EPSG:32633")
    save_result(tmp_path, s, endmembers=s0.truth.endmembers, abundances=s0.truth.abundances)
    rgb_fig, ab_fig = figs[0], figs[1]
    for fig in (rgb_fig, ab_fig):
        for ax in [a for a in fig.axes if a.images][:3 if fig is ab_fig else 1]:
            bottom, top = ax.get_ylim()
            left, right = ax.get_xlim()
            assert (bottom < top) == rows_up and (right < left) == cols_left, (fig, ax.get_ylim(), ax.get_xlim())
    shown = ab_fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown[0], s0.truth.abundances[0, :, 0], rtol=1e-6)
    assert ("north up" in ab_fig.get_suptitle()) == (rows_up or cols_left)
    # refine's uncertainty maps turn the same way
    report.plot_uncertainty(s0.truth.abundances * 0.1, tmp_path / "std.png", transform=transform)
    bottom, top = figs[-1].axes[0].get_ylim()
    assert (bottom < top) == rows_up and ("north up" in figs[-1].get_suptitle()) == (rows_up or cols_left)


def test_rgb_invalid_pixel_legend_does_not_cover_the_image(scene, tmp_path, figs):
    """The 'invalid pixels' legend sat in the image's upper-right corner, hiding valid pixels."""
    cube = scene.load().copy()
    cube[-3:, :4] = np.nan
    report.plot_rgb(Scene(cube, wavelengths=scene.wavelengths), tmp_path / "rgb.png")
    fig = figs[-1]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    image, legend = ax.images[0].get_window_extent(renderer), ax.get_legend().get_window_extent(renderer)
    assert not image.overlaps(legend), (image, legend)
    assert legend.x1 <= fig.bbox.x1 + 1 and legend.y0 >= -1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["invalid pixels"]


def test_html_report_links_every_figure_in_the_folder(tmp_path):
    """The demo's report left out figures its run folders hold (refine's 90 % interval map, the
    semi-blind and refined spectra): every PNG under the folder is now linked, those no section
    names under a last section, and nothing twice."""
    for name in ("a.png", "sub/b.png", "sub/deeper/c.png", "sub/d.png"):
        report.plot_training_curve([0, 1], [2.0, 1.0], tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a figure")
    out = html.write_html_report(tmp_path, "run", [("One", ["a.png", tmp_path / "sub" / "b.png"], "")])
    text = out.read_text()
    import re

    links = re.findall(r'<img src="([^"]+)"', text)
    assert sorted(links) == ["a.png", "sub/b.png", "sub/d.png", "sub/deeper/c.png"]
    assert all((tmp_path / link).is_file() for link in links)
    assert text.index("sub/deeper/c.png") > text.index("<h2>Other figures")
    # a report naming every figure has no such section
    text = html.write_html_report(tmp_path, "run", [("All", links, "")]).read_text()
    assert "Other figures" not in text and len(re.findall("<img ", text)) == 4


def test_uncertainty_maps_scale_on_valid_pixels_and_say_grey_is_invalid(tmp_path, figs):
    """The colour scale ran to the largest value anywhere, invalid pixels included (a masked
    pixel holding 5 squeezed the real spread into the darkest colour), and the figure did not
    say what its grey pixels are, as the abundance figure does."""
    w = np.random.default_rng(1).uniform(0, 0.1, (8, 13, 2)).astype(np.float32)
    mask = np.ones((8, 13), bool)
    mask[0, :] = False
    w[0, :] = 5.0
    report.plot_uncertainty(w, tmp_path / "s.png", mask=mask)
    fig = figs[-1]
    image = fig.axes[0].images[0]
    assert image.get_clim() == (0.0, pytest.approx(float(w[1:].max())))
    assert np.ma.getmaskarray(image.get_array())[0].all() and not np.ma.getmaskarray(image.get_array())[1:].any()
    assert any("invalid" in t.get_text() for t in fig.texts)
    report.plot_uncertainty(w[1:], tmp_path / "t.png")
    assert not any("invalid" in t.get_text() for t in figs[-1].texts)


def test_html_report_of_figures_about_to_be_written(tmp_path):
    """A report written in one step with its figures (still under temporary names) links the
    figures as they will be, and not a figure about to be removed."""
    report.plot_training_curve([0, 1], [2.0, 1.0], tmp_path / "old.png")
    report.plot_training_curve([0, 1], [2.0, 1.0], tmp_path / "kept.png")
    text = html.html_report(tmp_path, "run", [("New", ["new.png"], "")], figures=["new.png", "kept.png"])
    import re

    assert re.findall(r'<img src="([^"]+)"', text) == ["new.png", "kept.png"]
    assert "missing figure" not in text and "old.png" not in text
    # as the files are now (the default): the new one is missing, the old one linked
    text = html.html_report(tmp_path, "run", [("New", ["new.png"], "")])
    assert "missing figure: new.png" in text and re.findall(r'<img src="([^"]+)"', text) == ["kept.png", "old.png"]
