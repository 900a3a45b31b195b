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
    if isinstance(shape, Maybe):
        return None if value is None else misfit(value, shape.shape, where)
    if isinstance(shape, Choice):
        return None if value in shape.values else f"{where} is not one of {', '.join(shape.values)}"
    if shape is Strings:
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        return None if ok else f"{where} is not an object of strings"
    if shape is COUNTS_BY_KEY:
        ok = isinstance(value, dict) and all(
            isinstance(v, dict) and all(isinstance(n, int) and not isinstance(n, bool) for n in v.values())
            for v in value.values())
        return None if ok else f"{where} is not an object of counts per severity"
    if shape in (str, bool, dict):
        return None if isinstance(value, shape) else f"{where} is not {_NAMES[shape]}"
    if shape in (int, float):
        ok = isinstance(value, int if shape is int else (int, float)) and not isinstance(value, bool)
        if ok and shape is float and not finite_number(value):
            return f"{where} is not a finite number"
        return None if ok else f"{where} is not a number"
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{where} is not a list"
        for i, item in enumerate(value):
            wrong = misfit(item, shape[0], f"{where}[{i}]")
            if wrong:
                return wrong
        return None
    if isinstance(shape, tuple):
        if not isinstance(value, list) or len(value) != len(shape):
            return f"{where} is not a list of {len(shape)} items"
        for i, (item, part) in enumerate(zip(value, shape)):
            wrong = misfit(item, part, f"{where}[{i}]")
            if wrong:
                return wrong
        return None
    if not isinstance(value, dict):
        return f"{where} is not an object"
    for key, part in shape.items():
        name = key.lstrip("?")
        if name not in value:
            if key.startswith("?"):
                continue
            return f"{where}.{name} is missing"
        wrong = misfit(value[name], part, f"{where}.{name}")
        if wrong:
            return wrong
    return None


_NAMES = {str: "a string", bool: "true or false", dict: "an object"}
