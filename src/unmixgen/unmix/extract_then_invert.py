"""Blind unmixing in two steps: pick endmembers among the pixels, then invert abundances.

An `Extractor` (`VCA`, `NFINDR`, `ATGP`; the algorithms are in `unmixgen.unmix.extraction`)
chooses ``p`` pixels as endmembers; `ExtractThenInvert` composes one with an inverter of
`unmixgen.unmix.inversion.METHODS` (FCLS by default, which keeps abundances on the
simplex). The registry names "vca", "nfindr" and "atgp" are this class with that extractor
and FCLS. For example, VCA with a known SNR and non-negative least squares::

    ExtractThenInvert(4, extractor=VCA(snr=30), inverter="nnls", seed=0).fit(scene)
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from .base import BlindUnmixer
from .extraction import atgp, nfindr, vca
from .inversion import DEFAULT_METHOD as DEFAULT_INVERTER
from .inversion import METHODS as INVERTERS
from .inversion import invert
from .params import NONE, Constraint, EstimatorParams, InstanceOf, Interval, Options

__all__ = ["ATGP", "EXTRACTORS", "NFINDR", "VCA", "ExtractThenInvert", "Extractor"]


class Extractor(EstimatorParams):
    """Endmember extraction by pure-pixel search; parameters as in scikit-learn."""

    #: the extractor's name (and the registry name of its blind method with FCLS)
    name: ClassVar[str] = "extractor"

    def extract(self, Y: np.ndarray, p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(indices (p,) int64, E (p, bands) float32 = Y[indices])`` for pixels ``Y (N, bands)``."""
        raise NotImplementedError


class VCA(Extractor):
    """Vertex Component Analysis (see `unmixgen.unmix.extraction.vca`).

    Parameters
    ----------
    snr : float or None
        The data's SNR in dB, which chooses VCA's projection; estimated when None.
    """

    name: ClassVar[str] = "vca"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {"snr": [NONE, Interval()]}

    def __init__(self, *, snr: float | None = None):
        self.snr = snr

    def extract(self, Y, p, rng):
        return vca(Y, p, seed=rng, snr=self.snr)


class NFINDR(Extractor):
    """N-FINDR, the largest-volume simplex (see `unmixgen.unmix.extraction.nfindr`).

    Parameters
    ----------
    max_iter : int >= 1
        Sweeps of vertex replacement.
    """

    name: ClassVar[str] = "nfindr"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "max_iter": [Interval(integer=True, low=1)],
    }

    def __init__(self, *, max_iter: int = 3):
        self.max_iter = max_iter

    def extract(self, Y, p, rng):
        return nfindr(Y, p, seed=rng, max_iter=self.max_iter)


class ATGP(Extractor):
    """Automatic Target Generation Process (see `unmixgen.unmix.extraction.atgp`).

    Parameters
    ----------
    subspace : bool
        Search in the top-p eigenvector subspace of the pixels (denoised) rather than on
        the raw spectra.
    """

    name: ClassVar[str] = "atgp"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "subspace": [InstanceOf(bool, "True or False")],
    }

    def __init__(self, *, subspace: bool = True):
        self.subspace = subspace

    def extract(self, Y, p, rng):
        return atgp(Y, p, subspace=self.subspace, seed=rng)


#: the extractors by name
EXTRACTORS: dict[str, type[Extractor]] = {cls.name: cls for cls in (VCA, NFINDR, ATGP)}


class ExtractThenInvert(BlindUnmixer):
    """Endmembers by pure-pixel extraction, abundances by an inverter.

    Parameters
    ----------
    n_endmembers : int >= 2 or "auto"
        Number of endmembers; "auto" estimates it from the noise-whitened eigenvalues, a
        pushbroom's stripes counted as noise (`unmixgen.unmix.spatial_rank.scene_rank`).
    extractor : {"vca", "nfindr", "atgp"} or Extractor
        The extractor by name (with its default parameters) or as an instance, e.g.
        ``VCA(snr=30)``.
    inverter : str
        A key of `unmixgen.unmix.inversion.METHODS`; used by `fit` and `transform`.
    seed : int >= 0
        Seeds the extractor's random choices.

    Attributes
    ----------
    endmembers_, abundances_, n_endmembers_, info_
        As every `BlindUnmixer`; ``info_["endmember_pixel_indices"]`` holds the rows of the
        chosen pixels among the scene's valid pixels (row-major order of ``Scene.mask``).
    """

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **BlindUnmixer._parameter_constraints,
        "extractor": [Options(tuple(EXTRACTORS)), InstanceOf(Extractor, "an Extractor (VCA, NFINDR, ATGP)")],
        "inverter": [Options(tuple(INVERTERS))],
    }

    def __init__(self, n_endmembers: int | str = "auto", *, extractor: str | Extractor = "vca",
                 inverter: str = DEFAULT_INVERTER, seed: int = 0):
        super().__init__(n_endmembers, seed=seed)
        self.extractor = extractor
        self.inverter = inverter

    @property
    def name(self) -> str:  # type: ignore[override]
        """The extractor's name, with ``+inverter`` when that is not the default (FCLS)."""
        ext = self.extractor.name if isinstance(self.extractor, Extractor) else str(self.extractor)
        return ext if self.inverter == DEFAULT_INVERTER else f"{ext}+{self.inverter}"

    def _extractor(self) -> Extractor:
        if isinstance(self.extractor, Extractor):
            return self.extractor
        return EXTRACTORS[self.extractor]()

    def _transform_method(self) -> str:
        return self.inverter

    def _fit_pixels(self, Y: np.ndarray, p: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        extractor = self._extractor()
        t0 = time.perf_counter()
        idx, E = extractor.extract(Y, p, rng)
        t1 = time.perf_counter()
        A = invert(Y, E, self.inverter)
        t2 = time.perf_counter()
        info = {
            "extractor": extractor.name,
            "inversion": self.inverter,
            # rows of the scene's valid pixels (row-major order of Scene.mask)
            "endmember_pixel_indices": [int(i) for i in idx],
            "extraction_s": t1 - t0,
            "inversion_s": t2 - t1,
        }
        return E, A, info
