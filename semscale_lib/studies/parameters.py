"""The notebooks' papermill parameters, checked before any work: one rule per parameter name, shared by every
notebook, and one clear line when a value is out of range.

Each notebook's ``parameters`` cell declares typed literals (``epochs: int = 16``, papermill shows the types with
``--help-notebook``); the first cell after it calls :func:`check_parameters` on the notebook's namespace. A value of
the wrong type or out of range raises :class:`ParameterError`, which Jupyter, papermill and nbval show as the one
line ``ParameterError: <name> = <value>: <what is expected>`` instead of a traceback from deep inside the library.
"""
from __future__ import annotations

import math
import re
import typing
from typing import Any, Callable, Mapping

from ..data import DATASETS
from ..losses import LOSSES
from ..models import MODELS
from ..weights import NORMALIZATIONS


class ParameterError(ValueError):
    """A notebook parameter out of range; shown as one line in notebooks (IPython's ``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [f"ParameterError: {self}"]


def _number(low=-math.inf, high=math.inf, *, closed_high: bool = True, integer: bool = False, optional=False):
    kind = "an integer" if integer else "a number"
    bounds = [] if low == -math.inf else [f"≥ {low:g}"]
    bounds += [] if high == math.inf else [f"{'≤' if closed_high else '<'} {high:g}"]
    expected = kind + (" " + " and ".join(bounds) if bounds else "") + (" or None" if optional else "")

    def check(value) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            return expected
        if not math.isfinite(value) or value < low or (value > high if closed_high else value >= high):
            return expected
        return None
    return check


def _choice(names, what: str, *, optional: bool = False, suffix: str | None = None):
    valid = sorted(names)

    def check(value) -> str | None:
        if value is None and optional:
            return None
        name = value[:-len(suffix)] if suffix and isinstance(value, str) and value.endswith(suffix) else value
        if isinstance(name, str) and name in names:
            return None
        return f"one of the {what}: {', '.join(valid)}" + (" or None" if optional else "")
    return check


def _list_of(item: Callable, what: str, *, distinct: bool = False, minimum: int = 1):
    def check(value) -> str | None:
        expected = f"a list of at least {minimum} {what}" + (", each once" if distinct else "")
        if not isinstance(value, (list, tuple)) or len(value) < minimum or any(item(v) for v in value):
            return expected
        if distinct and len(set(map(repr, value))) != len(value):
            return expected
        return None
    return check


def _device(value) -> str | None:
    ok = isinstance(value, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value)
    return None if ok else "auto, cpu, cuda, cuda:N (a GPU index) or mps"


_SEED = _number(0, integer=True)
#: One rule per parameter name (what it must be); parameters without a rule are only type-checked.
RULES: dict[str, Callable[[Any], str | None]] = {
    "dataset": _choice(set(DATASETS), "datasets (the base name; -lt comes from imbalance_factor)"),
    "model": _choice(set(MODELS), "models"),
    "weighting_model": _choice(set(MODELS), "models"),
    "preset": _choice({"paper-table1", "cifar-lt", "cpu-quick"}, "presets", optional=True),
    "imbalance_factor": _number(1, optional=True),
    "epochs": _number(1, integer=True),
    "steps": _number(1, integer=True),
    "seeds": _list_of(_SEED, "seeds (integers ≥ 0)", distinct=True),
    "split_seed": _SEED, "subset_seed": _SEED,
    "val_fraction": _number(0, 1, closed_high=False),
    "balanced_per_class": _number(2, integer=True, optional=True),
    "image_size": _number(1, integer=True),
    "threads": _number(1, integer=True, optional=True),
    "device": _device,
    "alpha": _number(1), "alpha_balanced": _number(1), "alpha_long_tailed": _number(1), "dsb_alpha": _number(1),
    "r_min": _number(-1, 1),
    "margin": _number(0), "relative_margin": _number(0, 1),
    "saturation_level": _number(0, 1, closed_high=False),
    "dsb_stage_epochs": _number(0, integer=True), "weights_log_every": _number(1, integer=True),
    "dsb_refresh_every": _number(1, integer=True),
    "dsb_normalize": _choice(set(NORMALIZATIONS), "normalisations"), "normalize": _choice(set(NORMALIZATIONS),
                                                                                          "normalisations"),
    "losses": _list_of(_choice(set(LOSSES), "losses"), "losses", distinct=True),
    "many_threshold": _number(1, integer=True), "few_threshold": _number(1, integer=True),
    "family_alpha": _number(0, 1, closed_high=False),
    "sizes": _list_of(_number(1, integer=True), "sizes (integers ≥ 1)"),
    "train_sizes": _list_of(_number(1, integer=True), "sizes (integers ≥ 1)", minimum=2),
    "pool_dim": _number(1, integer=True, optional=True),
    "weights_source": _choice({"train", "test"}, "sources"),
}


def _type_problem(value, annotation) -> str | None:
    """Whether ``value`` fits a parameter annotation (str, int, float, bool, list, dict, X | None, …)."""
    if annotation is None or annotation is typing.Any:
        return None
    if isinstance(annotation, str):
        return None                         # a postponed annotation: the rule, if any, decides
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return None if any(_type_problem(value, a) is None for a in args) else \
            " or ".join(getattr(a, "__name__", str(a)) for a in args)
    target = origin or annotation
    if target is type(None):
        return None if value is None else "None"
    if target is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif target is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif target in (list, tuple):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, target)
    return None if ok else getattr(target, "__name__", str(target))


def check_pairs(pairs, methods: Mapping) -> None:
    """Every (treated, baseline) pair of a notebook names two of its ``methods``; else :class:`ParameterError`."""
    unknown = [name for pair in pairs for name in pair if name not in methods]
    if unknown:
        raise ParameterError(f"pairs = {pairs!r}: expected pairs of the methods {list(methods)}, but "
                             f"{sorted(set(unknown))} {'is' if len(set(unknown)) == 1 else 'are'} not among them")
    if any(len(pair) != 2 for pair in pairs):
        raise ParameterError(f"pairs = {pairs!r}: expected [treated, baseline] pairs")


def check_parameters(namespace: Mapping[str, Any], names=None) -> None:
    """Check a notebook's parameters (``globals()``: its ``__annotations__`` name them) before any work: each value
    against its annotation and against :data:`RULES`. Raises :class:`ParameterError` naming the first bad one.
    ``names``: check only these."""
    annotations = dict(namespace.get("__annotations__", {}))
    for name in names or annotations:
        if name not in namespace:
            continue
        value = namespace[name]
        expected = _type_problem(value, annotations.get(name))
        expected = expected or (RULES[name](value) if name in RULES else None)
        if expected:
            raise ParameterError(f"{name} = {value!r}: expected {expected}")


__all__ = ["ParameterError", "RULES", "check_pairs", "check_parameters"]
