"""The chain as library functions: what the CLI and the demo call, usable from a notebook.

Each function takes paths and parameters, does one user-level job (unmix a scene, train a prior
from result folders, synthesize, simulate, refine, ...) and returns what it made. Parameters
are validated by the functions they call; errors name the parameter. One module per job; the
heavy rooms (torch) are imported inside the functions that need them, so `unmixgen unmix`
with given endmembers never loads torch.
"""

from .abundance import synthesize_maps, train_abundance_model
from .demo import run_demo
from .evaluation import evaluate_result
from .refinement import refine_result, refine_scene, train_spectra_model
from .semiblind import stu_endmembers, stu_training_maps, train_stu, unmix_hybridstu
from .simulation import simulate_scenes
from .unmixing import unmix_scene

__all__ = [
    "evaluate_result", "refine_result", "refine_scene", "run_demo", "simulate_scenes", "stu_endmembers", "stu_training_maps", "synthesize_maps",
    "train_abundance_model", "train_spectra_model", "train_stu", "unmix_hybridstu", "unmix_scene",
]
