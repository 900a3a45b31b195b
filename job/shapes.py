"""The shape of a JSON document read back from a file the job wrote (a stage file may be damaged
or edited by hand): checked before use, so that a wrong field is one clear error, not a crash
later on.

A shape is a type (int accepts no bool, float accepts int but only a finite number a float holds), a one-item list (a list of those),
a tuple (a list of exactly those), a dict (an object with those keys; "?key" may be absent),
Maybe(shape) (that or null), Strings (an object of strings), COUNTS_BY_KEY (an object of objects
of counts) or Choice(values).
"""
from __future__ import annotations

import math
from typing import Any


class Maybe:
    def __init__(self, shape: Any) -> None:
        self.shape = shape


class Choice:
    def __init__(self, *values: str) -> None:
        self.values = values


Strings = object()
COUNTS_BY_KEY = object()  # {key: {name: count}}


def finite_number(value: Any) -> bool:
    """A number that a float holds: not NaN, not infinite, not an integer of hundreds of digits
    (JSON's numbers have no bound). Not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def misfit(value: Any, shape: Any, where: str) -> str | None:
    """Where `value` departs from `shape` (a JSON path), or None when it fits."""
    found = _misfit(value, shape)
    if found is None:
        return None
    path, words = found
    return f"{where}{''.join(reversed(path))} {words}"


def _misfit(value: Any, shape: Any) -> tuple[list[str], str] | None:
    """None when `value` fits; else the path to what does not, innermost part first, and why. The
    path is built only for what does not fit: every field of every line is checked."""
    if shape is str or shape is bool or shape is dict:
        return None if isinstance(value, shape) else ([], f"is not {_NAMES[shape]}")
    if isinstance(shape, Maybe):
        return None if value is None else _misfit(value, shape.shape)
    if isinstance(shape, Choice):
        return None if value in shape.values else ([], f"is not one of {', '.join(shape.values)}")
    if shape is Strings:
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        return None if ok else ([], "is not an object of strings")
    if shape is COUNTS_BY_KEY:
        ok = isinstance(value, dict) and all(
            isinstance(v, dict) and all(isinstance(n, int) and not isinstance(n, bool) for n in v.values())
            for v in value.values())
        return None if ok else ([], "is not an object of counts per severity")
    if shape is int or shape is float:
        ok = isinstance(value, int if shape is int else (int, float)) and not isinstance(value, bool)
        if ok and shape is float and not finite_number(value):
            return [], "is not a finite number"
        return None if ok else ([], "is not a number")
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [], "is not a list"
        for i, item in enumerate(value):
            found = _misfit(item, shape[0])
            if found is not None:
                found[0].append(f"[{i}]")
                return found
        return None
    if isinstance(shape, tuple):
        if not isinstance(value, list) or len(value) != len(shape):
            return [], f"is not a list of {len(shape)} items"
        for i, (item, part) in enumerate(zip(value, shape)):
            found = _misfit(item, part)
            if found is not None:
                found[0].append(f"[{i}]")
                return found
        return None
    if not isinstance(value, dict):
        return [], "is not an object"
    for key, part in shape.items():
        name = key[1:] if key[0] == "?" else key
        if name not in value:
            if key[0] == "?":
                continue
            return [f".{name}"], "is missing"
        found = _misfit(value[name], part)
        if found is not None:
            found[0].append(f".{name}")
            return found
    return None


_NAMES = {str: "a string", bool: "true or false", dict: "an object"}
