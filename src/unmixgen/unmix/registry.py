"""The blind unmixing methods by name, for the CLI (``--method``), the demo and benchmarks.

=========  ===========================================================================
name       method
=========  ===========================================================================
auto       `AutoUnmixer` (the default): "edaa" when pixel brightness varies beyond linear
           mixing, "mvnmf" otherwise
edaa       `ArchetypalAnalysis`: entropic-descent archetypal analysis with restarts and
           brightness normalisation
mvnmf      `MinVolNMF`: minimum-volume NMF from several pure-pixel starts, the smallest
           simplex that explains the data kept; with or without pure pixels
vca        `ExtractThenInvert` with `VCA` endmembers and FCLS abundances
nfindr     `ExtractThenInvert` with `NFINDR` endmembers and FCLS abundances
atgp       `ExtractThenInvert` with `ATGP` endmembers and FCLS abundances
=========  ===========================================================================

``DEFAULT_METHOD`` is the method with the best abundances across the development suite
(``benchmarks/blind_suite.py``: 24 simulated scenes and Samson, Jasper Ridge); the
measurements are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ParameterError
from .archetypal import ArchetypalAnalysis
from .base import BlindUnmixer
from .extract_then_invert import EXTRACTORS, Extractor, ExtractThenInvert
from .inversion import DEFAULT_METHOD as DEFAULT_INVERTER
from .minvol import MinVolNMF
from .selector import AutoUnmixer

__all__ = ["DEFAULT_METHOD", "METHODS", "make_method", "method_parameters"]


class _PurePixelMethod:
    """Constructor of a registry method "extractor + inverter": ``(n_endmembers, *, seed,
    inverter, **extractor_params) -> ExtractThenInvert``."""

    def __init__(self, extractor: type[Extractor]):
        self.extractor = extractor

    def _param_defaults(self) -> dict[str, Any]:
        return {"n_endmembers": "auto", "seed": 0, "inverter": DEFAULT_INVERTER,
                **self.extractor._param_defaults()}

    def __call__(self, n_endmembers: int | str = "auto", *, seed: int = 0,
                 inverter: str = DEFAULT_INVERTER, **extractor_params: Any) -> ExtractThenInvert:
        return ExtractThenInvert(n_endmembers, extractor=self.extractor(**extractor_params),
                                 inverter=inverter, seed=seed)


#: registry name -> constructor ``(n_endmembers, *, seed, **params) -> BlindUnmixer``
METHODS: dict[str, Any] = {
    AutoUnmixer.name: AutoUnmixer,
    ArchetypalAnalysis.name: ArchetypalAnalysis,
    MinVolNMF.name: MinVolNMF,
    **{name: _PurePixelMethod(cls) for name, cls in EXTRACTORS.items()},
}
DEFAULT_METHOD: str = "auto"


def method_parameters(name: str) -> list[str]:
    """The parameters `make_method` takes for method ``name`` besides ``n_endmembers`` and ``seed``."""
    if not isinstance(name, str) or name not in METHODS:
        raise ParameterError("method", name, f"expected one of {', '.join(sorted(METHODS))}")
    return [k for k in METHODS[name]._param_defaults() if k not in ("n_endmembers", "seed")]


def make_method(name: str, n_endmembers: int | str = "auto", seed: int = 0, **params: Any) -> BlindUnmixer:
    """An unfitted method by registry name; ``params`` go to its constructor.

    Raises `ParameterError` for an unknown ``name`` (naming ``method``) or a parameter the
    method does not take (naming that parameter). Parameter values are checked by ``fit``.
    """
    accepted = method_parameters(name)
    for key, value in params.items():
        if key not in accepted:
            raise ParameterError(key, value, f"not a parameter of method {name!r}; "
                                             f"expected one of {', '.join(accepted)}")
    return METHODS[name](n_endmembers, seed=seed, **params)
