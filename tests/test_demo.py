"""`unmixgen demo` end to end: the whole chain writes a complete, valid output folder."""

import json
import math
import re

import numpy as np
import pytest

from unmixgen.evaluate.realism import METRICS
from unmixgen.io import read_scene


def test_demo_runs_the_whole_chain(run_cli, tmp_path, monkeypatch):
    import functools

    import unmixgen.workflows

    # the refinement (8 posterior samples x 10 steps in the demo, no CLI option) took 38 of the
    # test's 64 s; 2 samples x 5 steps still give a spread (std, quantiles) and a posterior mean
    # to check (refined RMSE 1.5 % against HybridSTU's 3.3 %), in under a third of the time
    monkeypatch.setattr(unmixgen.workflows, "run_demo",
                        functools.partial(unmixgen.workflows.run_demo, refine_samples=2, refine_steps=5))
    out = tmp_path / "demo"
    code, stdout, err = run_cli("demo", "--out", out, "--count", "2", "--semiblind-steps", "150")
    assert code == 0, err
    run = json.loads((out / "run.json").read_text())
    # blind unmixing scored against the scene's exact ground truth
    assert run["unmix"]["metrics"]["sad_deg_mean"] < 10
    # semi-blind chain: HybridSTU starts from FCLS's answer (zero-initialised correction), the
    # refinement's guard keeps its data fit; both scored on the truth like the blind step
    semi = run["semiblind"]
    # trained by steps, not by the clock, so a second run gives the same maps
    assert semi["training_steps"] == 150
    rmse = {k: semi[k]["abundance_rmse_percent"] for k in ("fcls_same_endmembers", "hybridstu", "refined")}
    assert all(math.isfinite(v) and v > 0 for v in rmse.values()), rmse
    assert rmse["hybridstu"] < 1.5 * rmse["fcls_same_endmembers"], rmse
    assert rmse["refined"] < 1.2 * rmse["hybridstu"], rmse
    with np.load(out / "refine" / "result.npz") as z:
        A, std, lo, hi = z["abundances"], z["abundances_std"], z["abundances_q05"], z["abundances_q95"]
    assert A.shape == std.shape == lo.shape == hi.shape == (96, 128, 5)
    assert (A >= 0).all() and np.allclose(A.sum(-1), 1, atol=1e-4)
    assert (std >= 0).all() and (lo <= hi + 1e-6).all() and std.max() > 0
    # synthetic maps are valid abundances
    with np.load(out / "synthetic_abundances.npz") as z:
        maps = z["abundances"]
    assert maps.shape[0] == 2 and maps.shape[1:3] == (64, 64)
    assert (maps >= 0).all() and np.allclose(maps.sum(-1), 1, atol=1e-5)
    # realism table: the model, both baselines and the floor, with finite distances; the
    # model's spatial statistics beat the structureless per-pixel Dirichlet baseline
    realism = run["realism"]
    rows, ratios = realism["rows"], realism["ratio_to_floor"]
    assert set(rows) == {"model", "dirichlet", "grf", "floor"} == set(ratios)
    for name in rows:
        for metric in METRICS:
            value, ratio = rows[name][metric], ratios[name][metric]
            assert isinstance(value, float) and math.isfinite(value) and value >= 0, (name, metric, value)
            assert isinstance(ratio, float) and math.isfinite(ratio) and ratio >= 0, (name, metric, ratio)
            assert ratio == pytest.approx(value / rows["floor"][metric])
    assert any(rows["model"][m] < rows["dirichlet"][m] for m in ("power_spectrum", "variogram")), rows
    # simulated scenes carry their ground truth
    sim = read_scene(out / "simulated" / "scene_000.npz")
    assert sim.truth is not None and sim.truth.abundances.shape == (64, 64, maps.shape[-1])
    html = (out / "report.html").read_text()
    for fig in ("unmix/abundances.png", "semiblind/abundances.png", "refine/abundances_std.png", "synthetic_maps.png",
                "real_blocks.png"):
        assert fig in html and (out / fig).is_file()
    # every figure of the run is linked, every link is a figure (refine's 90 % interval map was left out)
    links = re.findall(r'<img src="([^"]+)"', html)
    assert sorted(links) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert "refine/abundances_interval90.png" in html.split("<h2>Other figures")[0]
    # a second run refuses to overwrite without --overwrite, leaving the folder alone
    before = sorted(p.name for p in out.iterdir())
    code, _, err = run_cli("demo", "--out", out)
    assert code == 2 and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == before
