"""The one simplex projection for numpy and the one for torch, against an exact reference."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from unmixgen.simplex import project_simplex, project_simplex_torch


def bisection_projection(v: np.ndarray, iters: int = 200) -> np.ndarray:
    """Reference without sorting: the projection is ``max(v - theta, 0)`` with ``theta`` the
    root of the decreasing function ``g(theta) = sum(max(v - theta, 0)) - 1``, found by
    bisection on ``[min(v) - 1, max(v)]`` (``g`` >= 0 at the left end, -1 at the right)."""
    lo = v.min(axis=-1, keepdims=True) - 1.0
    hi = v.max(axis=-1, keepdims=True)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        above = np.maximum(v - mid, 0.0).sum(axis=-1, keepdims=True) > 1.0
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return np.maximum(v - 0.5 * (lo + hi), 0.0)


def inputs(seed: int = 0) -> list[np.ndarray]:
    """Vectors of several sizes and scales, with ties, already-projected and one-hot rows."""
    rng = np.random.default_rng(seed)
    out = [rng.normal(0.0, s, (200, p)) for p in (1, 2, 3, 5, 9) for s in (0.1, 1.0, 30.0)]
    ties = np.repeat(rng.normal(size=(50, 1)), 4, axis=1)
    ties[:, 0] += rng.choice([0.0, 0.5], size=50)
    out.append(ties)
    out.append(rng.dirichlet(np.ones(4), size=50))
    out.append(np.eye(6))
    return out


def test_numpy_projection_equals_bisection_reference():
    for v in inputs():
        np.testing.assert_allclose(project_simplex(v), bisection_projection(v), atol=1e-12)


def test_projection_satisfies_the_optimality_conditions():
    # KKT of min ||a - v||^2 on the simplex: a = max(v - theta, 0) and v_i - a_i = theta on the support,
    # v_i <= theta off it. A wrong threshold breaks either the sum or these conditions.
    rng = np.random.default_rng(1)
    v = rng.normal(size=(500, 6)) * rng.uniform(0.1, 5.0, (500, 1))
    a = project_simplex(v)
    assert a.min() >= 0
    np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-12)
    support = a > 0
    theta = np.where(support, v - a, np.nan)
    theta_row = np.nanmean(theta, axis=-1, keepdims=True)
    np.testing.assert_allclose(np.where(support, theta, theta_row), np.broadcast_to(theta_row, v.shape), atol=1e-12)
    assert np.all(v[~support] <= np.broadcast_to(theta_row, v.shape)[~support] + 1e-12)


def test_points_on_the_simplex_do_not_move_and_projection_is_idempotent():
    rng = np.random.default_rng(2)
    a = rng.dirichlet(np.full(5, 0.5), size=300)
    np.testing.assert_allclose(project_simplex(a), a, atol=1e-15)
    v = rng.normal(size=(300, 5))
    once = project_simplex(v)
    np.testing.assert_allclose(project_simplex(once), once, atol=1e-15)


def test_numpy_axis_argument_projects_along_that_axis():
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(2, 4, 7, 5))  # (N, p, H, W): vectors along axis 1
    got = project_simplex(maps, axis=1)
    want = np.moveaxis(project_simplex(np.moveaxis(maps, 1, -1)), -1, 1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.moveaxis(got, 1, -1), bisection_projection(np.moveaxis(maps, 1, -1)), atol=1e-12)


def test_torch_projection_equals_numpy_and_reference():
    for v in inputs(4):
        t = project_simplex_torch(torch.from_numpy(v), dim=1).numpy()
        np.testing.assert_allclose(t, project_simplex(v), atol=1e-12)
        np.testing.assert_allclose(t, bisection_projection(v), atol=1e-12)


def test_torch_projection_on_maps_keeps_layout_dtype_and_is_valid():
    g = torch.Generator().manual_seed(5)
    maps = torch.randn(3, 4, 6, 5, generator=g) * 2.0  # (N, p, H, W), float32
    out = project_simplex_torch(maps)  # default dim=1
    assert out.shape == maps.shape and out.dtype == torch.float32
    assert out.min() >= 0
    torch.testing.assert_close(out.sum(1), torch.ones(3, 6, 5), atol=1e-5, rtol=0)
    ref = bisection_projection(np.moveaxis(maps.double().numpy(), 1, -1))
    np.testing.assert_allclose(np.moveaxis(out.numpy(), 1, -1), ref, atol=1e-5)
    last = project_simplex_torch(maps.movedim(1, -1), dim=-1).movedim(-1, 1)
    torch.testing.assert_close(last, out)


def test_numpy_projection_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from unmixgen.simplex import project_simplex\n"
        "a = project_simplex(np.array([[2.0, 0.0, -1.0], [0.4, 0.4, 0.4]]))\n"
        "assert np.allclose(a, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]]), a\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("p", [1, 4])
def test_single_vector_and_single_component(p):
    v = np.linspace(-1.0, 2.0, p)
    a = project_simplex(v)
    assert a.shape == (p,)
    np.testing.assert_allclose(a, bisection_projection(v[None])[0], atol=1e-12)
