"""The one typed-JSON parser: a dataclass from a JSON object, every field type-checked.

Every record read from disk or passed between processes goes through parse_dataclass (run.json,
sign-ins, job records, ...): a wrong field becomes one RecordError that names it. It sits at the root
of core/ because every floor that stores something reads through it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable
from typing import Any

import numpy as np


class RecordError(ValueError):
    """A run.json or preds.npz that is readable but wrong (missing field, wrong type); names the field."""


def _type_name(hint: Any) -> str:
    names = {str: "text", int: "a whole number", float: "a number", bool: "true/false", dict: "an object",
             list: "a list", np.ndarray: "an array"}  # fmt: skip
    if hint in names:
        return names[hint]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in hint)
    origin = typing.get_origin(hint)
    if origin is tuple and not (len(typing.get_args(hint)) == 2 and typing.get_args(hint)[1] is Ellipsis):
        return f"a list of {len(typing.get_args(hint))}"
    if origin in (tuple, list):
        return "a list"
    if origin is dict:
        return "an object"
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) if a is not type(None) else "null" for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


Checker = Callable[[Any, str], Any]


def _wrong(value: Any, hint: Any, where: str) -> RecordError:
    shown = type(value).__name__ if not isinstance(value, str) else f"{value[:20]!r}"
    return RecordError(f"{where} should be {_type_name(hint)}, not {shown}")


def _check(value: Any, hint: Any, where: str) -> Any:
    """value converted to the type hint (lists to tuples, ints to floats), or RecordError naming where."""
    return _checker(hint)(value, where)


@functools.cache
def _checker(hint: Any) -> Checker:
    """The checker of one type hint, worked out once per hint (a record's fields are checked by closures,
    not by asking `typing` again for every value: a job-index row parses in a few microseconds)."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        nullable = type(None) in args
        arms = [_checker(a) for a in args if a is not type(None)]
        if len(arms) == 1:  # X | None: X's own error says what is wrong
            only = arms[0]
            return lambda v, w: None if v is None and nullable else only(v, w)

        def union(value: Any, where: str) -> Any:
            if value is None and nullable:
                return None
            for arm in arms:
                try:
                    return arm(value, where)
                except RecordError:
                    continue
            raise _wrong(value, hint, where)

        return union
    if hint is Any:
        return lambda v, w: v
    simple = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        dict: lambda v: isinstance(v, dict),
        list: lambda v: isinstance(v, list),
        np.ndarray: lambda v: isinstance(v, np.ndarray),
    }
    if hint in simple:
        accepts = simple[hint]

        def plain(value: Any, where: str) -> Any:
            if accepts(value):
                return value
            raise _wrong(value, hint, where)

        return plain
    if hint is float:

        def number(value: Any, where: str) -> float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            raise _wrong(value, hint, where)

        return number
    if isinstance(hint, type) and issubclass(hint, enum.Enum):  # a StrEnum: stored as its value
        members = {m.value: m for m in hint}

        def member(value: Any, where: str) -> Any:
            if isinstance(value, str) and value in members:
                return members[value]
            raise _wrong(value, hint, where)

        return member
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[str, ...]
            item = _checker(args[0])

            def variadic(value: Any, where: str) -> tuple:
                if isinstance(value, list | tuple):
                    return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))
                raise _wrong(value, hint, where)

            return variadic
        items = [_checker(a) for a in args]  # tuple[float, float]

        def fixed(value: Any, where: str) -> tuple:
            if isinstance(value, list | tuple) and len(value) == len(items):
                return tuple(c(v, f"{where}[{i}]") for i, (v, c) in enumerate(zip(value, items, strict=True)))
            raise _wrong(value, hint, where)

        return fixed
    if origin is list:
        item = _checker(typing.get_args(hint)[0])

        def listed(value: Any, where: str) -> list:
            if isinstance(value, list | tuple):
                return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]
            raise _wrong(value, hint, where)

        return listed
    if origin is dict:
        key_t, val_t = typing.get_args(hint)
        key_c, val_c = _checker(key_t), _checker(val_t)

        def mapping(value: Any, where: str) -> dict:
            if isinstance(value, dict):
                return {key_c(k, where): val_c(v, f"{where}.{k}") for k, v in value.items()}
            raise _wrong(value, hint, where)

        return mapping
    if dataclasses.is_dataclass(hint):
        return lambda v, w: parse_dataclass(hint, v, w)
    # a record declared with a type the parser cannot check is a bug, not bad input: say so at once (a
    # RecordError here would read as "every stored value is wrong" and be quietly set aside)
    raise TypeError(f"the record parser cannot check values of type {hint!r}")


@functools.cache
def _fields_of(cls: type) -> tuple[tuple[str, Checker, bool], ...]:
    """A dataclass's fields as (name, checker, required), worked out once (get_type_hints evaluates every annotation)."""
    hints = typing.get_type_hints(cls)
    extra = getattr(cls, "EXTRA", None)
    return tuple(
        (f.name, _checker(hints[f.name]), f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        for f in dataclasses.fields(cls)
        if f.name != extra and f.init
    )


def parse_dataclass(cls: type, data: Any, where: str) -> Any:
    """cls(**data) with every field type-checked; unknown keys go to the field named by cls.EXTRA (or are ignored).

    The one parser for typed records read from disk or passed between processes (run.json, job records, the
    progress file, events, class settings, the manifest ...); `where` names the record in the RecordError
    (e.g. "run.json", "epoch"). Enum fields take their stored value; `to_json` writes what this reads.
    """
    if not isinstance(data, dict):
        raise RecordError(f"{where} should be an object, not {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    known = set()
    for name, check, required in _fields_of(cls):
        known.add(name)
        if name in data:
            kwargs[name] = check(data[name], f"{where}.{name}")
        elif required:
            raise RecordError(f"{where} lacks {name}")
    extra = getattr(cls, "EXTRA", None)
    if extra:
        kwargs[extra] = {k: v for k, v in data.items() if k not in known}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, RecordError):
            raise
        raise RecordError(f"{where}: {err}") from err


def to_json(value: Any) -> Any:
    """What parse_dataclass reads back: a dataclass as an object (its EXTRA field's keys beside the others),
    an enum as its value, tuples as lists; the one writer of typed records as JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        extra = getattr(value, "EXTRA", None)
        out = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != extra}
        return {**to_json(getattr(value, extra)), **out} if extra else out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {(k.value if isinstance(k, enum.Enum) else k): to_json(v) for k, v in value.items()}
    return value
