"""unmixgen: hyperspectral unmixing, and diffusion models of what it finds.

The public API for notebook users; the ``unmixgen`` command is a thin caller of it::

    import unmixgen as ug

    scene = ug.read_scene("scene.hdr")                 # lazy: nothing is read yet
    method = ug.make_method("vca", n_endmembers=4, seed=0)
    method.fit(scene)                                  # endmembers_ (p, bands), abundances_ (rows, cols, p)
    ug.evaluate_unmixing(endmembers=method.endmembers_, abundances=method.abundances_,
                          ref_endmembers=E_true, ref_abundances=A_true)

Names are imported on first use, so ``import unmixgen`` stays fast and does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name -> module that defines it
_API = {
    # read and write
    "Scene": "unmixgen.scene",
    "read_scene": "unmixgen.io",
    "write_scene": "unmixgen.io",
    "map_tiles": "unmixgen.tiling",
    # simulate
    # (the function `simulate` stays in unmixgen.simulate.scene: the root name is its room)
    "make_scene": "unmixgen.simulate.procedural",
    # evaluate
    # rooms named like a function (evaluate, simulate) keep their name: the function is exported
    # under a longer one
    "evaluate_unmixing": ("unmixgen.evaluate.unmixing", "evaluate"),
    "match_endmembers": "unmixgen.evaluate.unmixing",
    "evaluate_synthesis": "unmixgen.evaluate.synthesis",
    # unmix
    "make_method": "unmixgen.unmix.registry",
    "METHODS": "unmixgen.unmix.registry",
    "DEFAULT_METHOD": "unmixgen.unmix.registry",
    "hysime": "unmixgen.unmix.rank",
    "spatial_rank": "unmixgen.unmix.spatial_rank",
    "fcls": "unmixgen.unmix.inversion",
    "invert": "unmixgen.unmix.inversion",
    "invert_scene": "unmixgen.unmix.inversion",
    "ArchetypalAnalysis": "unmixgen.unmix.archetypal",
    "MinVolNMF": "unmixgen.unmix.minvol",
    "HybridSTU": "unmixgen.unmix.hybridstu",
    # priors
    "AbundanceModel": "unmixgen.priors.abundance.model",
    "load_model": "unmixgen.priors.abundance.model",
    # run folders and whole workflows
    "load_result": "unmixgen.runs.folder",
    "load_endmembers": "unmixgen.runs.endmembers",
    # (one per command, so a notebook never needs the CLI)
    "run_demo": "unmixgen.workflows",
    "unmix_scene": "unmixgen.workflows",
    "evaluate_result": "unmixgen.workflows",
    "train_abundance_model": "unmixgen.workflows",
    "synthesize_maps": "unmixgen.workflows",
    "train_spectra_model": "unmixgen.workflows",
    "refine_result": "unmixgen.workflows",
    "refine_scene": "unmixgen.workflows",
    "train_stu": "unmixgen.workflows",
    "unmix_hybridstu": "unmixgen.workflows",
    "simulate_scenes": "unmixgen.workflows",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'unmixgen' has no attribute {name!r}")
    module, attr = module if isinstance(module, tuple) else (module, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
