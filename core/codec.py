"""The one typed-JSON parser: a dataclass from a JSON object, every field type-checked.

Every record read from disk or passed between processes goes through parse_dataclass (run.json,
sign-ins, job records, ...): a wrong field becomes one RecordError that names it. It sits at the root
of core/ because every floor that stores something reads through it.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any


class RecordError(ValueError):
    """A record (run.json, preds.npz, a job or sign-in record) that is readable but wrong; names the field."""


def _type_name(hint: Any) -> str:
    names = {str: "text", int: "a whole number", float: "a number", bool: "true/false", dict: "an object"}
    if hint in names:
        return names[hint]
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


def _check(value: Any, hint: Any, where: str) -> Any:
    """value converted to the type hint (lists to tuples, ints to floats), or RecordError naming where."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:  # X | None: X's own error says what is wrong
            return _check(value, others[0], where)
        for arg in others:
            try:
                return _check(value, arg, where)
            except RecordError:
                continue
    elif hint is Any:
        return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is dict:
        if isinstance(value, dict):
            return value
    elif origin is tuple:
        args = typing.get_args(hint)
        fixed = len(args) != 2 or args[1] is not Ellipsis  # tuple[float, float] vs tuple[str, ...]
        if isinstance(value, list | tuple) and (not fixed or len(value) == len(args)):
            items = args if fixed else (args[0],) * len(value)
            return tuple(_check(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(value, items, strict=True)))
    elif origin is list:
        item = typing.get_args(hint)[0]
        if isinstance(value, list | tuple):
            return [_check(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        key_t, val_t = typing.get_args(hint)
        if isinstance(value, dict):
            return {_check(k, key_t, where): _check(v, val_t, f"{where}.{k}") for k, v in value.items()}
    elif dataclasses.is_dataclass(hint):
        return parse_dataclass(hint, value, where)
    shown = type(value).__name__ if not isinstance(value, str) else f"{value[:20]!r}"
    raise RecordError(f"{where} should be {_type_name(hint)}, not {shown}")


@functools.cache
def _fields_of(cls: type) -> tuple[dict[str, Any], tuple[dataclasses.Field, ...]]:
    """A dataclass's resolved type hints and fields, worked out once (get_type_hints evaluates every annotation)."""
    return typing.get_type_hints(cls), dataclasses.fields(cls)


def parse_dataclass(cls: type, data: Any, where: str) -> Any:
    """cls(**data) with every field type-checked; unknown keys go to the field named by cls.EXTRA (or are ignored).

    The one parser for typed records read from disk or passed between processes (run.json here);
    `where` names the record in the RecordError (e.g. "run.json", "epoch").
    """
    extra = getattr(cls, "EXTRA", None)
    if not isinstance(data, dict):
        raise RecordError(f"{where} should be an object, not {type(data).__name__}")
    hints, fields = _fields_of(cls)
    known = {f.name: f for f in fields if f.name != extra}
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _check(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(f"{where} lacks {name}")
    if extra:
        kwargs[extra] = {k: v for k, v in data.items() if k not in known}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise RecordError(f"{where}: {err}") from err
