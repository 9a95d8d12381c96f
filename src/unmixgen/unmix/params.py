"""Estimator parameters in the scikit-learn manner: declared constraints, get/set, repr.

A class names its parameters once, in its ``__init__`` signature, stores them there
unchanged, and declares what each may hold in ``_parameter_constraints``: a dict from the
parameter's name to a list of alternatives (`Interval`, `Options`, `SequenceOf`,
`InstanceOf`, `TorchDevice`, `NONE`). `EstimatorParams.validate_params`, called at the
start of ``fit``, raises `ParameterError` naming the parameter, e.g.
``n_endmembers=1: expected >= 2``.

`EstimatorParams` also gives `get_params` / `set_params` (nested parameters as
``outer__inner``, as in scikit-learn) and a ``repr`` that lists the parameters that differ
from their defaults.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import ParameterError, check_range

__all__ = ["NONE", "Constraint", "EstimatorParams", "InstanceOf", "Interval", "Options",
           "SequenceOf", "TorchDevice", "validate_params"]


class Constraint:
    """One alternative of a parameter's constraint list."""

    #: True when `check`'s message says more than `describe` (e.g. the bound a number broke);
    #: otherwise a refused value is told every alternative of its parameter
    specific: ClassVar[bool] = False

    def matches_type(self, value: Any) -> bool:
        """True when ``value`` has the kind of value this alternative is about."""
        raise NotImplementedError

    def check(self, name: str, value: Any) -> None:
        """Raise `ParameterError` when ``value`` (of a matching type) breaks the constraint."""

    def describe(self) -> str:
        """What the alternative accepts, for error messages (``"an integer >= 2"``)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """A finite real (or, with ``integer``, integral) number within the bounds.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; None means unbounded.
    Booleans are never numbers here.
    """

    specific: ClassVar[bool] = True
    integer: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def matches_type(self, value: Any) -> bool:
        kind = numbers.Integral if self.integer else numbers.Real
        return isinstance(value, kind) and not isinstance(value, bool | np.bool_)

    def check(self, name: str, value: Any) -> None:
        check_range(name, value, low=self.low, high=self.high, low_open=self.low_open,
                    high_open=self.high_open, integer=self.integer)

    def describe(self) -> str:
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {self.low}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {self.high}")
        kind = "an integer" if self.integer else "a number"
        return " ".join([kind, " and ".join(bounds)]) if bounds else kind


@dataclass(frozen=True)
class Options(Constraint):
    """One of a few strings."""

    values: tuple[str, ...]

    def matches_type(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, name: str, value: Any) -> None:
        if value not in self.values:
            raise ParameterError(name, value, f"expected {self.describe()}")

    def describe(self) -> str:
        quoted = [repr(v) for v in self.values]
        return quoted[0] if len(quoted) == 1 else f"one of {', '.join(quoted)}"


@dataclass(frozen=True)
class SequenceOf(Constraint):
    """A tuple or list whose every item meets ``item``; non-empty unless ``empty``."""

    specific: ClassVar[bool] = True
    item: Constraint
    empty: bool = False

    def matches_type(self, value: Any) -> bool:
        return isinstance(value, tuple | list)

    def check(self, name: str, value: Any) -> None:
        if not value and not self.empty:
            raise ParameterError(name, value, f"expected {self.describe()}")
        for i, v in enumerate(value):
            if not self.item.matches_type(v):
                raise ParameterError(f"{name}[{i}]", v, f"expected {self.item.describe()}")
            self.item.check(f"{name}[{i}]", v)

    def describe(self) -> str:
        return f"a {'' if self.empty else 'non-empty '}sequence, each item {self.item.describe()}"


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of ``kind``; ``what`` describes it in messages."""

    kind: type | tuple[type, ...]
    what: str

    def matches_type(self, value: Any) -> bool:
        return isinstance(value, self.kind)

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class TorchDevice(Constraint):
    """A torch device name this machine can use: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    (CUDA ones only with a GPU of that index)."""

    specific: ClassVar[bool] = True

    def matches_type(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, name: str, value: Any) -> None:
        import torch

        try:
            device = torch.device(value)
        except RuntimeError:
            raise ParameterError(name, value, f"expected {self.describe()}") from None
        if device.type == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if not count:
                raise ParameterError(name, value, "no CUDA device is available; expected 'cpu'")
            if device.index is not None and device.index >= count:
                raise ParameterError(name, value, f"this machine has {count} CUDA device(s); expected an index "
                                                  f"below {count}")

    def describe(self) -> str:
        return "a torch device name ('cpu', 'cuda', 'cuda:1')"


@dataclass(frozen=True)
class _NoneConstraint(Constraint):
    def matches_type(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "None"


#: the alternative "None" (a default that means "choose for me")
NONE = _NoneConstraint()


def validate_params(constraints: dict[str, list[Constraint]], params: dict[str, Any]) -> None:
    """Check every ``params[name]`` against its alternatives; `ParameterError` on the first failure.

    A number out of bounds gets that bound (``n_endmembers=1: expected >= 2``); any other
    refused value gets the list of everything accepted
    (``n_endmembers='x': expected an integer >= 2 or 'auto'``).
    """
    for name, alternatives in constraints.items():
        value = params[name]
        typed = [c for c in alternatives if c.matches_type(value)]
        errors: list[tuple[Constraint, ParameterError]] = []
        for c in typed:
            try:
                c.check(name, value)
                break
            except ParameterError as err:
                errors.append((c, err))
        else:  # no alternative accepted the value
            if errors and errors[0][0].specific:
                raise errors[0][1]
            accepted = " or ".join(c.describe() for c in alternatives)
            raise ParameterError(name, value, f"expected {accepted}")


class EstimatorParams:
    """Parameters read from the ``__init__`` signature: validation, get/set, repr."""

    #: parameter name -> accepted alternatives; every ``__init__`` parameter has an entry
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {}

    @classmethod
    def _param_defaults(cls) -> dict[str, Any]:
        sig = inspect.signature(cls.__init__)
        return {
            p.name: p.default for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters by name; with ``deep``, also ``name__inner`` ones
        of parameters that are themselves estimators."""
        out: dict[str, Any] = {}
        for name in self._param_defaults():
            value = getattr(self, name)
            out[name] = value
            if deep and isinstance(value, EstimatorParams):
                out.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
        return out

    def set_params(self, **params: Any) -> EstimatorParams:
        """Set parameters by name (``name__inner`` for a nested estimator's); returns self.

        Values are stored, not checked (``fit`` checks them); an unknown name is a
        `ParameterError` at once, naming it as given (``extractor__snrr``), and then nothing
        is set.
        """
        self._check_param_names(params)
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, inner = key.partition("__")
            if sep:
                nested.setdefault(name, {})[inner] = value
            else:
                setattr(self, name, value)
        for name, inner_params in nested.items():
            getattr(self, name).set_params(**inner_params)
        return self

    def _check_param_names(self, params: dict[str, Any], prefix: str = "") -> None:
        """`ParameterError` for the first name of ``params`` that is not a parameter (nested
        ones included); the name is given with ``prefix``, as the caller wrote it."""
        names = list(self._param_defaults())
        for key, value in params.items():
            name, sep, inner = key.partition("__")
            if name not in names:
                raise ParameterError(prefix + key, value, f"not a parameter of {type(self).__name__}; "
                                                          f"expected one of {', '.join(names)}")
            if sep:
                nested = getattr(self, name)
                if not isinstance(nested, EstimatorParams):
                    raise ParameterError(prefix + key, value, f"{name} has no parameters of its own")
                nested._check_param_names({inner: value}, f"{prefix}{name}__")

    def validate_params(self) -> None:
        """Check the stored parameters against ``_parameter_constraints`` (nested ones too)."""
        validate_params(self._parameter_constraints, self.get_params(deep=False))
        for value in self.get_params(deep=False).values():
            if isinstance(value, EstimatorParams):
                value.validate_params()

    def __repr__(self) -> str:
        defaults = self._param_defaults()
        changed = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items()
                   if not _same(v, defaults[k])]
        return f"{type(self).__name__}({', '.join(changed)})"


def _same(value: Any, default: Any) -> bool:
    if value is default:
        return True
    if type(value) is not type(default):
        return False
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # e.g. arrays: ambiguous truth value
        return False
