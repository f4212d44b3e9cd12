"""What each configuration value may be: its field's type annotation, plus a bound or a set of
choices declared beside the class (`@checked(lr=above(0))`).

Every frozen config class runs these checks on construction, so a value is checked the same way
whether it came from a TOML file, a recorded config.json, a CLI override (`with_overrides`,
`dataclasses.replace`) or Python. A bad value is a `FieldError` naming the field; the loader adds
the file and the table, e.g. ``config.toml: [model] lr: expected a number > 0, got "fast"``.

Types understood: bool, int (a bool is not one), float (an int is one; inf and NaN are not),
str, tuple[X, ...] (a list is taken and kept as a tuple), dict[K, V], X | None, a config class.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass

from .errors import ConfigError


class FieldError(ConfigError):
    """One field's bad value: `section` and `key` say where, `problem` what is wrong."""

    def __init__(self, section: str, key: str, problem: str):
        self.section, self.key, self.problem = section, key, problem
        super().__init__(f"{table_label(section)} {key}: {problem}")

    def at(self, section: str) -> "FieldError":
        """The same error under the table the loader read it from (e.g. `kinds.activation`)."""
        return FieldError(section, self.key, self.problem)


def table_label(section: str) -> str:
    """`model` -> `[model]`; a label already in brackets (`[[suite.tasks]] #2`) stays as it is."""
    return section if section.startswith("[") else f"[{section}]"


@dataclass(frozen=True)
class Bound:
    """A numeric range (on each element, for a tuple of numbers) or a closed set of choices."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()

    def admits(self, value) -> bool:
        if self.choices:
            return value in self.choices
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(json.dumps(c) for c in self.choices)
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_num(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_num(self.high)}")
        return " and ".join(parts)


def at_least(low) -> Bound:
    return Bound(low=low)


def above(low) -> Bound:
    return Bound(low=low, low_open=True)


def between(low, high, open_: bool = False) -> Bound:
    """[low, high], or (low, high) with open_."""
    return Bound(low=low, high=high, low_open=open_, high_open=open_)


def one_of(*choices) -> Bound:
    return Bound(choices=tuple(choices))


def checked(section: str, **bounds: Bound):
    """Class decorator, placed under @dataclass: the class checks its fields on construction, by
    their annotations and these bounds, before its own __post_init__ runs. `section` is the
    table its errors name."""

    def wrap(cls):
        unknown = set(bounds) - set(cls.__annotations__)
        if unknown:  # a typo here would silently check nothing
            raise TypeError(f"{cls.__name__}: bounds for unknown field(s) {sorted(unknown)}")
        own = cls.__dict__.get("__post_init__")

        def __post_init__(self):
            check_fields(self, section, bounds)
            if own is not None:
                own(self)

        cls.__post_init__ = __post_init__
        cls.__config_section__ = section
        return cls
    return wrap


def check_fields(instance, section: str, bounds: dict[str, Bound]) -> None:
    hints = _hints(type(instance))
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        bound = bounds.get(f.name)
        try:
            value = _typed(value, hints[f.name])
        except _Mismatch as exc:
            expected = exc.expected if bound is None else _expected(hints[f.name], bound)
            raise FieldError(section, f.name, f"expected {expected}, got {_shown(value)}") from None
        if bound is not None:
            for item in value if isinstance(value, tuple) else (value,):
                if item is not None and not bound.admits(item):  # None: an optional field left unset
                    expected = _expected(hints[f.name], bound)
                    raise FieldError(section, f.name, f"expected {expected}, got {_shown(value)}")
        object.__setattr__(instance, f.name, value)  # a list taken for a tuple is kept as one


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


class _Mismatch(Exception):
    def __init__(self, expected: str):
        super().__init__(expected)
        self.expected = expected


def _typed(value, hint):
    """`value` if it is a `hint` (a list made a tuple for a tuple hint), else _Mismatch."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _typed(value, option)
            except _Mismatch:
                pass
        raise _Mismatch(" or ".join(_name(a) for a in args))
    if hint is type(None):
        if value is None:
            return value
        raise _Mismatch("nothing")
    if hint is typing.Any or hint is object:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch(_name(hint))
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch(_name(hint))
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return value
        raise _Mismatch(_name(hint))
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch(_name(hint))
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise _Mismatch(_name(hint))
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            raise _Mismatch(_name(hint))
        try:
            return tuple(_typed(v, h) for v, h in zip(value, items))
        except _Mismatch:
            raise _Mismatch(_name(hint)) from None
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch(_name(hint))
        try:
            return {_typed(k, args[0]): _typed(v, args[1]) for k, v in value.items()}
        except _Mismatch:
            raise _Mismatch(_name(hint)) from None
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _Mismatch(_name(hint))
    raise TypeError(f"config checks cannot read the annotation {hint!r}")


def _name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return f"a list of {_plural(args[0])}"
    if origin is dict:
        return f"a table of {_plural(args[1])}"
    return {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string",
            type(None): "nothing"}.get(hint, f"a [{getattr(hint, '__config_section__', _type_name(hint))}] table")


def _plural(hint) -> str:
    return {bool: "true/false values", int: "whole numbers", float: "finite numbers",
            str: "strings"}.get(hint, f"{_type_name(hint)} values")


def _type_name(hint) -> str:
    return getattr(hint, "__name__", str(hint))


def _expected(hint, bound: Bound) -> str:
    if bound.choices:
        return bound.describe()
    what = "numbers" if typing.get_origin(hint) is tuple else "a number"
    if hint is int:
        what = "a whole number"
    elif typing.get_origin(hint) is tuple and typing.get_args(hint)[:1] == (int,):
        what = "a list of whole numbers, each"
    return f"{what} {bound.describe()}"


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _shown(value) -> str:
    """The value as the user wrote it (TOML/JSON spelling: "fast", true, [1, 2])."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
