"""`unmixgen info` and `unmixgen convert`: look at a scene, change its format."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from .app import app


@app.command()
def info(
    file: Path = typer.Argument(..., help="Scene file (ENVI .hdr, .tif, .he5, .mat, .npy/.npz) or EnMAP folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    count_valid: bool = typer.Option(False, "--count-valid",
                                     help="Count valid pixels exactly (reads every pixel); default: estimate "
                                          "from a sample."),
    noise: bool = typer.Option(False, "--noise",
                               help="Also estimate the noise (HySime, on about 20,000 pixels of evenly spaced rows): "
                                    "SNR, how far apart the bands' noise is, and whether unmix, refine and hybridstu "
                                    "weigh the bands by it; noise_derived_bands lists bands the others explain "
                                    "exactly (duplicated, interpolated or constant), weighed as a median band; "
                                    "noise_neighbour_correlation says how much the noise of neighbouring pixels "
                                    "correlates (down the columns, along the rows): about 0 in a sensor's own "
                                    "geometry, 0.1-0.25 in a product resampled to a map grid (cubic, bilinear); "
                                    "stripes_* say whether the columns (or, in a map grid, lines at an angle) are striped (a pushbroom detector's gains, "
                                    "measured over every pixel: one more read of the scene), which hybridstu then "
                                    "trains with."),
) -> None:
    """Describe a scene without reading its cube (valid pixels are estimated from a sample).

    Example: unmixgen info PRS_L2D_STD_20200101.he5 --json
    """
    from ..io import read_scene
    from ..scene import describe

    scene = read_scene(file)
    d = describe(scene, count_valid=count_valid)
    if noise:
        import numpy as np

        from ..unmix.rank import noise_summary

        Y = scene.row_sample()
        good = np.flatnonzero(scene.good_bands)
        s = noise_summary(Y[:, good])
        d.update(noise_snr_db=s["snr_db"], noise_std_spread=s["noise_std_spread"],
                 noise_std_max_min=s["noise_std_max_min"], noise_bands_weighted=s["bands_weighted"],
                 # band numbers from 1; these are weighed as a median band
                 noise_derived_bands=[int(good[i]) + 1 for i in s["derived_bands"]])
        from ..scene import window_on_data
        from ..unmix.rank import window_noise_correlation

        # a 128-pixel window on the data: tens of thousands of neighbour pairs
        win = window_on_data(scene.mask, 128)
        rho = window_noise_correlation(np.nan_to_num(scene.read(*win)[..., good]), scene.mask[win])
        # down the columns, along the rows: ~0 in a sensor's own geometry, 0.1-0.25 resampled
        d.update(noise_neighbour_correlation=None if None in rho else [round(v, 3) for v in rho])
        from ..unmix.stripes import column_stripes

        stripes = column_stripes(scene)  # None: too few rows or columns to tell
        rec = None if stripes is None else stripes.record()
        d.update(stripes_detected=None if rec is None else rec["detected"],
                 # undetected, the number is only the measurement's floor
                 stripes_gain_std_percent=rec["gain_std_percent_median"] if rec and rec["detected"] else None,
                 # degrees from the image columns: 0 in sensor geometry, the heading in a map grid
                 stripes_angle_deg=rec["angle_deg"] if rec and rec["detected"] else None)
    if d["valid_pixels"] == 0:
        print(f"warning: {file}: no valid pixel found ({d['valid_pixels_from']}): every pixel is "
              "NaN/Inf, all-zero, nodata or flagged", file=sys.stderr)
    if as_json:
        from ..atomic import jsonable

        if isinstance(d.get("nodata"), float) and d["nodata"] != d["nodata"]:
            d["nodata"] = "nan"  # a NaN nodata value, not "none declared" (null)
        print(json.dumps(jsonable(d), allow_nan=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(file), show_header=False)
    for k, v in d.items():
        if v is None or k == "path":
            continue
        if k == "placed_by":
            v = ", ".join(v) if v else "nothing (maps open unplaced)"
        elif isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    Console().print(table)


@app.command()
def convert(
    src: Path = typer.Argument(..., help="Input scene, any readable format."),
    dst: Path = typer.Argument(..., help="Output file: .npz, .tif, .hdr (ENVI) or .mat (HySUPP layout)."),
    wavelengths: str = typer.Option(None, "--wavelengths", help="Band centres for a scene whose file has none (MATLAB benchmarks): START:STOP in nm, evenly spaced (Samson: 401:889), or a text/CSV file with one per band, in the file's band order (where the centres step back, as at AVIRIS's detector overlaps, the bands are written sorted)."),
    ortho: bool = typer.Option(False, "--ortho", help="EMIT: resample the swath to the product's north-up map grid through its geometry lookup table (GLT), so the output carries a CRS and opens in place in QGIS; without it the output keeps the raw swath geometry."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Convert a scene to another format, in physical units, with its mask and wavelengths.

    Bands are written in increasing wavelength; where that is not the input file's order, the
    output records the file's, so spectra without wavelengths in that order (a benchmark's
    endmember .mat) still fit it.

    Example: unmixgen convert samson_1.mat samson.hdr --wavelengths 401:889
    Example: unmixgen convert EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc emit.tif --ortho
    """
    import os
    import warnings

    import numpy as np

    from ..errors import InputError
    from ..io import check_output_file, read_scene, write_scene
    from ..scene import take_bands
    from ..wavelengths import wavelengths_from_spec

    check_output_file(dst, overwrite=overwrite,
                      inputs=[src] + ([wavelengths] if wavelengths is not None and os.path.isfile(wavelengths) else []))
    if ortho:
        from ..io import detect_format

        fmt = detect_format(src)
        if fmt != "emit":
            raise InputError(f"{src}: --ortho applies to EMIT products (their GLT); this file is {fmt}, already "
                             "on its own grid")
    scene = read_scene(src, **({"ortho": True} if ortho else {}))
    if wavelengths is not None and scene.wavelengths is not None and "band_order" in scene.metadata:
        # the reader put the bands in wavelength order (`io.bands.Arrangement.note`): centres
        # listed in the file's band order would be matched to other bands
        raise InputError(f"{src}: its own band centres step back, so its bands were sorted on reading and "
                         "--wavelengths cannot be matched to the file's band order; convert it without "
                         "--wavelengths")
    if wavelengths is not None:
        # band-subset files (Jasper Ridge: AVIRIS bands) step back where detectors overlap
        wl = wavelengths_from_spec(wavelengths, scene.bands, any_order=True)
        if scene.wavelengths is not None:
            dropped = " and its band widths (FWHM) dropped" if scene.fwhm is not None else ""
            warnings.warn(f"{src}: its own wavelengths ({scene.wavelengths[0]:.0f}-{scene.wavelengths[-1]:.0f} nm) "
                          f"are replaced by --wavelengths ({wl.min():.0f}-{wl.max():.0f} nm){dropped}", UserWarning,
                          stacklevel=2)
        scene.fwhm = None  # widths belong to the old band centres
        steps = np.flatnonzero(np.diff(wl) < 0)
        if steps.size:
            order = np.argsort(wl, kind="stable")
            where = ", ".join(f"{wl[i]:.0f} -> {wl[i + 1]:.0f} nm" for i in steps[:4])
            print(f"{src}: the band centres step back at band {', '.join(str(i + 2) for i in steps[:4])} "
                  f"({where}); bands written in increasing wavelength, with their order in {src.name} (so "
                  "reference spectra without wavelengths in that order, e.g. a benchmark's endmember .mat, "
                  "still fit the output)")
            scene = take_bands(scene, order, wavelengths=wl[order])
        else:
            scene.wavelengths = wl
    scene.require_valid()
    write_scene(scene, dst)
    print(f"wrote {dst}")
