"""Plain arrays (numpy, torch) are ``(rows, cols, bands)``; a bands-first one is not guessed at.

A DataArray is laid out by its dim names (`test_xarray_scene`); a plain array has none, so it is
taken as it is. Where the band count is known (the wavelengths given with it, the fitted
endmembers, a trained model) and the first axis has it while the last does not, the array is
evidently ``(bands, rows, cols)``: a `ParameterError` naming the parameter says so and how to move
the axes, instead of a band-count mismatch that never mentioned the order (or, for a torch batch
``(1, bands, H, W)``, a shape error without the fix).
"""

from __future__ import annotations

import numpy as np
import pytest

import unmixgen as ug
from unmixgen.errors import InputError, ParameterError
from unmixgen.scene import Scene, as_scene
from unmixgen.unmix.inversion import invert, invert_scene


def _scene_cube(rows=6, cols=7, bands=20, p=3, seed=0):
    rng = np.random.default_rng(seed)
    E = rng.uniform(0.1, 0.9, (p, bands)).astype(np.float32)
    A = rng.dirichlet(np.ones(p), (rows, cols)).astype(np.float32)
    return A @ E, E


BANDS_FIRST = r"array of shape \(20, 6, 7\)'?: expected \(rows, cols, bands\), bands last; .*\(20\).*\(7\).*" \
              r"np\.moveaxis\((?P<name>\w+), 0, -1\)"


def test_a_bands_first_cube_with_its_wavelengths_names_the_order_and_the_fix():
    cube, _ = _scene_cube()
    wl = np.linspace(400.0, 2400.0, 20)
    with pytest.raises(ParameterError, match=r"^cube='" + BANDS_FIRST):
        Scene(np.moveaxis(cube, -1, 0), wavelengths=wl)
    with pytest.raises(ParameterError, match=r"^cube=.*fwhm values' count \(20\)"):
        Scene(np.moveaxis(cube, -1, 0), fwhm=np.full(20, 10.0))
    assert Scene(cube, wavelengths=wl).bands == 20
    with pytest.raises(InputError, match="wavelengths.*: 5 values for 20 bands") as info:  # no evidence: as it was
        Scene(cube, wavelengths=wl[:5])
    assert info.value.name == "wavelengths"  # the list the caller gave is named, not the cube


def test_transform_of_a_bands_first_array_names_x_and_the_fix():
    cube, _ = _scene_cube()
    method = ug.make_method("vca", n_endmembers=3, seed=0).fit(cube)
    with pytest.raises(ParameterError, match=r"^X='" + BANDS_FIRST) as info:
        method.transform(np.moveaxis(cube, -1, 0))
    assert info.value.name == "X"
    pixels = cube.reshape(-1, 20)
    with pytest.raises(ParameterError, match=r"^X='array of shape \(20, 42\)'.*\(N, bands\).* X\.T$"):
        method.transform(pixels.T)
    np.testing.assert_allclose(method.transform(pixels), method.transform(cube).reshape(-1, 3), atol=1e-6)


def test_invert_scene_and_invert_name_a_bands_first_input():
    cube, E = _scene_cube()
    with pytest.raises(ParameterError, match=r"^scene='" + BANDS_FIRST):
        invert_scene(np.moveaxis(cube, -1, 0), E, progress=False)
    with pytest.raises(ParameterError, match=r"^Y='array of shape \(20, 42\)'.*Y\.T$"):
        invert(cube.reshape(-1, 20).T, E)
    A = invert_scene(cube, E, progress=False)
    assert A.shape == (6, 7, 3) and np.allclose(A.sum(-1), 1, atol=1e-5)


def test_a_torch_bands_first_tensor_and_batch_are_refused_with_the_fix():
    torch = pytest.importorskip("torch")
    cube, E = _scene_cube()
    method = ug.make_method("vca", n_endmembers=3, seed=0).fit(torch.from_numpy(cube))
    assert method.abundances_.shape == (6, 7, 3)  # (rows, cols, bands) tensors are taken as they are
    with pytest.raises(ParameterError, match=r"X\.permute\(1, 2, 0\)"):
        method.transform(torch.from_numpy(np.moveaxis(cube, -1, 0)))
    batch = torch.from_numpy(np.moveaxis(cube, -1, 0))[None]  # (N, bands, H, W), torch's layout
    with pytest.raises(ParameterError, match=r"^scene='array of shape \(1, 20, 6, 7\)'.*scene\[0\]\.permute\(1, 2, 0\)"):
        ug.make_method("vca", n_endmembers=3, seed=0).fit(batch)


def test_an_array_of_the_wrong_rank_names_the_parameter():
    with pytest.raises(ParameterError, match=r"^scene='array of shape \(7, 11\)': expected \(rows, cols, bands\)"):
        as_scene(np.zeros((7, 11), np.float32))


def test_a_bands_first_dataarray_is_laid_out_by_its_dims_not_refused():
    xr = pytest.importorskip("xarray")
    cube, _ = _scene_cube()
    method = ug.make_method("vca", n_endmembers=3, seed=0).fit(cube)
    da = xr.DataArray(np.moveaxis(cube, -1, 0), dims=("band", "y", "x"))
    np.testing.assert_allclose(method.transform(da), method.transform(cube), atol=1e-6)


def test_hybridstu_fit_with_endmembers_names_a_bands_first_scene_before_training():
    pytest.importorskip("torch")
    cube, E = _scene_cube()
    with pytest.raises(ParameterError, match=r"^scene='" + BANDS_FIRST):
        ug.HybridSTU(n_endmembers=3).fit(np.moveaxis(cube, -1, 0), endmembers=E)
