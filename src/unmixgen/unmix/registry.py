"""The blind unmixing methods by name, for the CLI (``--method``) and benchmarks.

``DEFAULT_METHOD`` is the most accurate method on real scenes that unmixes a
100 x 100 x 200 scene in under a minute on two CPU cores: "edaa" (archetypal analysis with
L2 brightness normalisation and 24 restarts; about 10 s on Jasper Ridge). Measured with
``benchmarks/unmixing_quality.py --seeds 3`` (mean over seeds; abundance RMSE %, mean SAD deg):

=========  ===============  ===============  ============================
method     Samson           Jasper Ridge     synthetic, no pure px, 30 dB
=========  ===============  ===============  ============================
edaa       10.35 / 1.48     6.61 / 3.81      17.10 / 14.07
mvnmf      32.61 / 7.24     17.87 / 11.28    11.38 / 7.67
vca        31.98 / 10.02    15.94 / 8.95     12.83 / 14.92
=========  ===============  ===============  ============================

(edaa row measured before its abundance switch.) Since then, when pixel brightness follows
the mixing (`archetypal.brightness_ratio` <= 1.1, e.g. synthetic scenes; Samson and Jasper
are 1.44 and 1.19 and keep exactly the numbers above) edaa re-fits its abundances to the raw
pixels under the scaled model: synthetic no-pure-pixel 30 dB, seeds 0-2, abundance RMSE
16.40 / 16.04 / 18.85 -> 10.57 / 8.79 / 8.42 % (SAD unchanged, 14 deg); demo scene
(`synthetic.default_scene`) seeds 0-2 15.09 / 13.82 / 14.08 -> 6.71 / 14.24 / 8.34 %;
synthetic 20 dB seed 0 17.56 -> 13.38 %, 40 dB seed 0 19.19 -> 12.88 %.

Without pure pixels on a plain linear-mixing scene, "mvnmf" recovers the spectra best
(archetypes stay inside the data's convex hull); choose it with ``--method mvnmf`` there.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .archetypal import ArchetypalAnalysis
from .base import BlindUnmixer
from .extraction import ATGPFCLS, NFINDRFCLS, VCAFCLS
from .minvol import MinVolNMF

METHODS: dict[str, type[BlindUnmixer]] = {
    cls.name: cls for cls in (ArchetypalAnalysis, MinVolNMF, VCAFCLS, NFINDRFCLS, ATGPFCLS)
}
DEFAULT_METHOD: str = "edaa"


def make_method(name: str, n_endmembers: int | str = "auto", seed: int = 0, **params: Any) -> BlindUnmixer:
    """An unfitted method by registry name; ``params`` go to its constructor.

    Raises `InputError` for an unknown name or a parameter the method does not take.
    """
    if name not in METHODS:
        raise InputError(f"--method: {name!r} is unknown; expected one of {', '.join(sorted(METHODS))}")
    cls = METHODS[name]
    try:
        return cls(n_endmembers, seed=seed, **params)
    except TypeError as err:
        raise InputError(f"--method {name}: {err}") from None
