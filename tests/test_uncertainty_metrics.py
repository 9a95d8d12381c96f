"""Scores of per-pixel uncertainty against ground truth (`evaluate.uncertainty`), and their
place in `evaluate` and `unmixgen evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from unmixgen.errors import InputError
from unmixgen.evaluate.uncertainty import gaussian_crps, interval_scores
from unmixgen.evaluate.unmixing import evaluate


@pytest.mark.parametrize("mean, std, y", [(0.3, 0.1, 0.25), (0.0, 0.05, 0.4), (0.7, 0.2, 0.7)])
def test_gaussian_crps_matches_its_definition(mean, std, y):
    # CRPS = integral of (F(x) - 1[x >= y])^2 dx
    below = integrate.quad(lambda x: norm.cdf(x, mean, std) ** 2, -np.inf, y)[0]
    above = integrate.quad(lambda x: (1 - norm.cdf(x, mean, std)) ** 2, y, np.inf)[0]
    assert gaussian_crps(np.array(mean), np.array(std), np.array(y)) == pytest.approx(below + above, rel=1e-6)
    assert gaussian_crps(np.array(mean), np.array(0.0), np.array(y)) == pytest.approx(abs(mean - y))


def test_coverage_spearman_and_bins_on_a_constructed_case():
    rng = np.random.default_rng(0)
    truth = rng.dirichlet(np.ones(3), size=(10, 20))
    est = truth + 0.01
    lo, hi = truth - 0.02, truth + 0.02
    hi[:5] = truth[:5] - 0.001  # half the rows: the truth above the interval
    std = np.full(truth.shape, 0.02)
    out = interval_scores(est, truth, std=std, q05=lo, q95=hi)
    assert out["coverage90"] == pytest.approx(0.5)
    np.testing.assert_allclose(out["coverage90_per_endmember"], 0.5)
    assert out["interval90_width_mean"] == pytest.approx(np.mean(hi - lo))
    assert out["spearman_std_abs_error"] is None  # a constant std ranks nothing
    inside = (truth >= lo - 1e-6) & (truth <= hi + 1e-6)
    for b in out["coverage90_by_abundance"]:
        sel = (truth >= b["abundance_from"]) & ((truth < b["abundance_to"]) | (b["abundance_to"] == 1.0))
        assert b["pixels"] == sel.sum()
        if b["pixels"]:
            assert b["coverage90"] == pytest.approx(inside[sel].mean())
    assert out["crps_gaussian_mean"] == pytest.approx(gaussian_crps(est, std, truth).mean())
    # a std proportional to the error ranks the errors perfectly
    exact = interval_scores(truth, truth + np.linspace(0, 0.01, 600).reshape(10, 20, 3),
                            std=np.linspace(0, 0.01, 600).reshape(10, 20, 3) + 0.01)
    assert exact["spearman_std_abs_error"] == pytest.approx(1.0)
    assert "coverage90" not in exact  # no quantiles given


def test_masked_and_nan_pixels_are_left_out():
    truth = np.full((4, 5, 2), 0.5)
    est, lo, hi = truth.copy(), truth - 0.1, truth + 0.1
    lo[0, 0] = 0.9  # outside, but masked
    mask = np.ones((4, 5), bool)
    mask[0, 0] = False
    hi[1, 1] = np.nan  # outside (NaN), but dropped
    assert interval_scores(est, truth, q05=lo, q95=hi, mask=mask)["coverage90"] == 1.0
    none = interval_scores(est, truth, q05=lo, q95=hi, mask=np.zeros((4, 5), bool))
    assert list(none) == ["uncertainty_note"]  # the other scores of an evaluation still stand
    with pytest.raises(InputError, match="abundances_std: 40 negative values"):
        interval_scores(est, truth, std=-np.ones_like(truth[..., :1]).repeat(2, -1))


def test_evaluate_aligns_the_uncertainty_with_the_abundances():
    rng = np.random.default_rng(1)
    truth = rng.dirichlet(np.ones(3), size=(8, 9))
    lo, hi = truth - 0.05, truth + 0.05
    lo[..., 0] = truth[..., 0] + 0.01  # endmember 0 never covered
    order = [2, 0, 1]  # the estimate lists the endmembers in another order
    res = evaluate(abundances=truth[..., order], ref_abundances=truth,
                   uncertainty={"q05": lo[..., order], "q95": hi[..., order], "std": np.full(truth.shape, 0.03)})
    assert res["permutation"] == [1, 2, 0]
    assert res["coverage90"] == pytest.approx(2 / 3)
    assert [r["coverage90"] for r in res["per_endmember"]] == pytest.approx([0.0, 1.0, 1.0])


def test_cli_evaluate_reports_the_uncertainty_of_a_refine_result(run_cli, tmp_path):
    from unmixgen.runs.folder import save_result
    from unmixgen.scene import Scene

    rng = np.random.default_rng(2)
    truth = rng.dirichlet(np.ones(3), size=(6, 7)).astype(np.float32)
    E = rng.uniform(0.1, 0.9, (3, 12)).astype(np.float32)
    np.savez(tmp_path / "truth.npz", abundances=truth, endmembers=E)
    run = tmp_path / "run"
    run.mkdir()
    q05, q95 = truth - 0.1, truth + 0.1
    q95[:3] = truth[:3] - 0.01  # half the rows miss
    save_result(run, Scene(truth @ E), endmembers=E, abundances=truth, figures=False,
                extra={"abundances_std": np.full(truth.shape, 0.05, np.float32), "abundances_q05": q05,
                       "abundances_q95": q95})
    code, out, err = run_cli("evaluate", "--truth", tmp_path / "truth.npz", "--estimate", run, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["coverage90"] == pytest.approx(0.5) and "crps_gaussian_mean" in res
    code, out, _ = run_cli("evaluate", "--truth", tmp_path / "truth.npz", "--estimate", run)
    assert code == 0 and "90 % interval coverage" in out and "0.5000" in out


def test_misshapen_uncertainty_is_named():
    truth = np.full((4, 5, 2), 0.5)
    with pytest.raises(InputError, match=r"abundances_std: shape \(4, 2\); expected \(4, 5, 2\)"):
        interval_scores(truth, truth, std=np.ones((4, 2)))
    with pytest.raises(InputError, match="abundances_q05: not a numeric array"):
        interval_scores(truth, truth, q05=[[1, 2], [3]], q95=truth)
    with pytest.raises(InputError, match="truth: shape"):
        interval_scores(truth, truth[:3])
    with pytest.raises(InputError, match="abundances_std: shape"):
        evaluate(abundances=truth, ref_abundances=truth, uncertainty={"std": np.ones((4, 5, 3))})
    # swapped quantiles would still give a (meaningless) coverage number
    with pytest.raises(InputError, match="abundances_q05 is above abundances_q95 at 40 entries"):
        evaluate(abundances=truth, ref_abundances=truth, uncertainty={"q05": truth + 0.1, "q95": truth - 0.1})


def test_coverage_bins_count_every_value_of_a_truth_a_rounding_off_the_simplex():
    """Benchmark truths hold values a rounding below 0 (MiSiCNet's Samson A_true: -3e-17) or
    above 1, which the truth reader accepts (within 0.01): they fell in no abundance bin, so
    the bins' values did not add up to the values scored and the pure pixels' coverage
    left out some of them."""
    rng = np.random.default_rng(1)
    truth = rng.dirichlet(np.ones(3) * 0.3, size=(8, 10))
    truth[truth < 0.02] = -3e-17
    truth[truth > 0.98] = 1.0 + 1e-7
    est, lo, hi = truth.copy(), truth - 0.01, truth + 0.01
    out = interval_scores(est, truth, q05=lo, q95=hi)
    assert sum(b["pixels"] for b in out["coverage90_by_abundance"]) == truth.size
