"""The realism table of synthetic abundance maps: model, baselines and floor side by side.

`evaluate_synthesis` scores the model's samples, the two baselines
(`unmixgen.evaluate.baselines`, fitted on the training patches) and a second set of real
maps (the floor) against held-out real maps with every distance of
`unmixgen.evaluate.realism`, adds diversity and the memorization check, and returns one
JSON-ready dict; `format_realism_table` prints it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError, check_range
from .baselines import DirichletBaseline, GaussianFieldBaseline
from .maps import check_maps, check_pair
from .realism import METRICS, crops_of_size, diversity, memorization_many, realism_metrics

__all__ = ["evaluate_synthesis", "format_realism_table"]


def evaluate_synthesis(samples, heldout, *, train=None, floor=None, seed: int = 0,
                       window: str | None = None, copy_fraction: float = 0.5) -> dict[str, Any]:
    """Realism table of model ``samples`` vs ``heldout`` real maps, with baselines and floor.

    Parameters
    ----------
    samples, heldout : (N, h, w, p), (M, h, w, p)
        Model samples and held-out real maps, same size and endmember count.
    train : (K, h', w', p) or None
        Training patches: baselines are fitted on them and the memorization check uses
        them (patches larger than the held-out maps are cut into windows of that size,
        see `crops_of_size`; smaller ones skip the check). ``None`` skips both baselines
        and the memorization check.
    floor : (L, h, w, p) or None
        A second disjoint set of real maps; its row is the floor.
    seed : int
        Seeds the baselines, projections and subsamples.

    Returns
    -------
    dict with ``rows`` (set name -> metric -> value; sets ``model``, ``dirichlet``,
    ``grf``, ``floor`` when available; metrics `METRICS` plus ``diversity``,
    ``diversity_ratio`` and, with ``train``, ``copied_fraction``), ``ratio_to_floor``
    (set -> metric -> value / floor value), ``diversity`` (``heldout`` and per set),
    ``memorization`` (summary for the model samples), and ``n_samples``, ``n_heldout``,
    ``size``, ``p``.
    """
    check_range("seed", seed, low=0, integer=True)
    check_range("copy_fraction", copy_fraction, low=0, low_open=True)
    samples, heldout = check_pair(samples, heldout, ("samples", "held-out maps"))
    _, h, w, p = heldout.shape
    sets: dict[str, np.ndarray] = {"model": samples}
    if train is not None:
        train = check_maps(train, "training maps")
        if train.shape[-1] != p:
            raise InputError(f"training maps have {train.shape[-1]} endmembers; held-out maps have {p}")
        n_base = max(len(samples), len(heldout))
        sets["dirichlet"] = DirichletBaseline().fit(train, seed).sample(n_base, (h, w), seed + 1)
        sets["grf"] = GaussianFieldBaseline().fit(train, seed).sample(n_base, (h, w), seed + 2)
    if floor is not None:
        floor, _ = check_pair(floor, heldout, ("floor maps", "held-out maps"))
        sets["floor"] = floor
    div_ref = diversity(heldout, seed=seed)
    bank = None if train is None else crops_of_size(train, h, w)
    mem_ok = bank is not None
    rows: dict[str, dict[str, float]] = {}
    memos = memorization_many(sets, bank, heldout, copy_fraction=copy_fraction) if mem_ok else {}
    memo = memos.get("model")
    for name, maps in sets.items():
        row = realism_metrics(maps, heldout, seed=seed, window=window)
        row["diversity"] = diversity(maps, seed=seed)
        row["diversity_ratio"] = row["diversity"] / div_ref if div_ref > 0 else float("nan")
        if name in memos:
            row["copied_fraction"] = memos[name]["flagged_fraction"]
        rows[name] = row
    ratios: dict[str, dict[str, float]] = {}
    if "floor" in rows:
        for name, row in rows.items():
            ratios[name] = {
                k: (row[k] / rows["floor"][k] if rows["floor"][k] > 0 else float("nan")) for k in METRICS
            }
    memo_summary = None
    if memo is not None:
        memo_summary = {
            "flagged_fraction": memo["flagged_fraction"],
            "n_flagged": int(memo["flagged"].sum()),
            "threshold_rmse": memo["threshold"],
            "sample_nn_rmse_median": float(np.median(memo["nn_rmse"])),
            "heldout_nn_rmse_median": float(np.median(memo["heldout_nn_rmse"])),
            "median_ratio": memo["median_ratio"],
            "rule": f"copy when NN RMSE to training patches (8 dihedral transforms) < "
                    f"{copy_fraction} x 1st percentile of held-out maps' NN RMSE",
        }
    return {
        "rows": rows,
        "ratio_to_floor": ratios,
        "diversity": {"heldout": div_ref, **{k: r["diversity"] for k, r in rows.items()}},
        "memorization": memo_summary,
        "n_samples": int(len(samples)),
        "n_heldout": int(len(heldout)),
        "n_train": None if train is None else int(len(train)),
        "n_floor": None if floor is None else int(len(floor)),
        "size": [int(h), int(w)],
        "p": int(p),
        "metrics_lower_is_better": list(METRICS),
    }


_LABELS = {
    "w1": "W1",
    "sliced_w1": "sliced W1",
    "power_spectrum": "PSD |log10|",
    "variogram": "variogram |log10|",
    "diversity": "diversity",
    "diversity_ratio": "div. ratio",
    "copied_fraction": "copied",
}


def format_realism_table(result: dict[str, Any]) -> str:
    """Plain-text aligned table of an `evaluate_synthesis` result (plus ratios to the floor)."""
    rows = result["rows"]
    cols = [c for c in _LABELS if any(c in r for r in rows.values())]

    def fmt(v) -> str:
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return "-"
        return f"{v:.4g}"

    def table(title: str, data: dict[str, dict[str, float]], columns: list[str]) -> list[str]:
        head = ["set"] + [_LABELS[c] for c in columns]
        body = [[name] + [fmt(r.get(c)) for c in columns] for name, r in data.items()]
        widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
        line = lambda cells: "  ".join(  # noqa: E731
            c.ljust(wd) if i == 0 else c.rjust(wd) for i, (c, wd) in enumerate(zip(cells, widths, strict=True))
        )
        return [title, line(head), line(["-" * wd for wd in widths])] + [line(b) for b in body]

    h, w = result["size"]
    lines = table(
        f"realism vs {result['n_heldout']} held-out maps of {h}x{w} px, p={result['p']} "
        f"(distances: lower is better)",
        rows,
        cols,
    )
    if result.get("ratio_to_floor"):
        lines += [""] + table("ratio to the floor (real vs real)", result["ratio_to_floor"], list(METRICS))
    m = result.get("memorization")
    if m:
        lines += ["", f"memorization: {m['n_flagged']} of {result['n_samples']} samples flagged as copies "
                      f"(median NN RMSE {m['sample_nn_rmse_median']:.4g} vs held-out "
                      f"{m['heldout_nn_rmse_median']:.4g}; threshold {m['threshold_rmse']:.4g})"]
    return "\n".join(lines)
