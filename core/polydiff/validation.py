"""Checks of option values where they enter: types from dataclass annotations, ranges, finiteness.

Every failure is a :class:`~polydiff.errors.ConfigError` of one line that names the option, the
value and the fix. Config dataclasses call :func:`check_dataclass` from ``__post_init__``, so
construction, ``dataclasses.replace``, ``--set`` and loading a ``config.json`` all validate.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Any

from polydiff.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """What a numeric or text option may hold.

    Attributes:
        lo, hi: Bounds (None = unbounded); ``lo_open`` / ``hi_open`` exclude them.
        choices: The allowed values (strings of text options).
        text: How errors describe the rule, instead of the bounds (``"1, 2 or 3"``).
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[Any, ...] = ()
    text: str = ""

    def describe(self) -> str:
        """``">= 1"``, ``"in [0, 1)"``, ``"one of a, b"`` (or ``text`` when given)."""
        if self.text:
            return self.text
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.lo is not None and self.hi is not None:
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            return f"in {left}{_num(self.lo)}, {_num(self.hi)}{right}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
        return ""

    def admits(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))


#: Largest finite float32: floats that meet tensors must fit.
FLOAT32_MAX = 3.4028234663852886e38


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def coerce(value: Any, tp: Any, name: str, fix: str = "") -> Any:
    """``value`` checked against the annotation ``tp`` (int, float, str, bool, ``X | None``,
    ``tuple[X, ...]``, ``tuple[X, Y]``); lists become tuples and ints become floats where a float
    is expected. Floats must be finite. Raises :class:`ConfigError` naming ``name``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return coerce(value, inner[0], name, fix)
        for a in inner:
            try:
                return coerce(value, a, name, fix)
            except ConfigError:
                continue
        raise _bad(name, value, " or ".join(_type_name(a) for a in inner), fix)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _bad(name, value, "a list", fix)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{name}[{i}]", fix) for i, v in enumerate(value))
        if len(value) != len(args):
            raise _bad(name, value, f"a list of {len(args)} values", fix)
        return tuple(coerce(v, a, f"{name}[{i}]", fix) for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _bad(name, value, "true or false", fix)
    if tp is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _bad(name, value, "an integer", fix)
    if tp is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _bad(name, value, "a finite number", fix)
            if abs(value) > FLOAT32_MAX:  # the tensors it meets are float32: it would become inf there
                raise _bad(name, value, f"a number within float32's range (|x| <= {FLOAT32_MAX:.3g})", fix)
            return float(value)
        raise _bad(name, value, "a number", fix)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _bad(name, value, "a string", fix)
    return value  # annotations this helper does not know (dicts of options) are not checked


def check_value(name: str, value: Any, tp: Any, rule: Rule | None = None, fix: str = "") -> Any:
    """:func:`coerce` ``value`` to ``tp``, then check it against ``rule`` (None passes)."""
    value = coerce(value, tp, name, fix)
    if rule is None or value is None:
        return value
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not rule.admits(item):
            raise _bad(name, value, rule.describe(), fix, what="must be")
    return value


def _bad(name: str, value: Any, expected: str, fix: str, what: str = "must be") -> ConfigError:
    shown = f"'{value}'" if isinstance(value, str) else repr(value)
    return ConfigError(f"{name} {what} {expected}, got {shown}" + (f"; {fix}" if fix else ""))


def check_dataclass(
    obj: Any, section: str, rules: dict[str, Rule], flags: dict[str, str] | None = None
) -> None:
    """Check (and normalise in place) every field of the config dataclass ``obj`` against its
    annotation and ``rules``; errors name ``section.field`` (and the CLI flag from ``flags``) and
    suggest the default."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        name, flag = f"{section}.{f.name}", (flags or {}).get(f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        fix = ""
        if default is not None:
            fix = f"e.g. {flag} {_json(default)}" if flag else f"e.g. --set {name}={_json(default)}"
            fix += " (the default)"
        if flag:
            name += f" ({flag})"
        value = check_value(name, getattr(obj, f.name), hints[f.name], rules.get(f.name), fix)
        object.__setattr__(obj, f.name, value)


def _json(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ",".join(_json(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return repr(value)


#: Type, range and a sound example of each sampling option that every sampling path shares
#: (pipeline, CLI, a run's ``sample`` section).
SAMPLING: dict[str, tuple[Any, Rule | None, str]] = {
    "sampler": (str, None, "ddim"),
    "steps": (int, Rule(lo=1), "50"),
    "num_per_prompt": (int, Rule(lo=1), "1"),
    "batch_size": (int, Rule(lo=1), "64"),
    "guidance": (float, None, "3 (1 = no guidance)"),
    "temperature": (float, Rule(lo=0, lo_open=True), "1"),
    "seed": (int, None, "0"),
    "eta": (float, Rule(lo=0), "0 (deterministic; 1 = DDPM-like)"),
    "length_scale": (float, Rule(lo=0, lo_open=True), "1 (normal rate; 2 = twice as slow)"),
    "clip_denoised": (bool | float, None, "true"),
    "dynamic_threshold": (float, Rule(lo=0, hi=1, lo_open=True), "0.995"),
    "spacing": (str, None, "trailing"),
}


def check_sampling(option: str, value: Any, label: str | None = None) -> Any:
    """Check the sampling option ``option`` (a key of :data:`SAMPLING`); errors name ``label``
    (e.g. the CLI flag ``--steps``), default ``option``, and suggest a sound value."""
    tp, rule, example = SAMPLING[option]
    label = label or option
    fix = f"e.g. {label} {example}" if label.startswith("--") else f"e.g. {label}={example}"
    return check_value(label, value, tp, rule, fix)
