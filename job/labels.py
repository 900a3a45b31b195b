"""Label selectors (pure): parsed and checked as the API server does, and matched against a pod's
labels when an offline pod list is filtered (--selector); live, the API server selects.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from job.errors import ConfigError

_SELECTOR_TOKEN = re.compile(r"\s*(!=|==|[=!(),<>]|[^\s=!(),<>]+)")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$")
_OPERATORS = ("=", "==", "!=", "in", "notin", ">", "<")
#: One requirement of a label selector: (key, operator, values); operators as above, plus
#: "exists" (`key`) and "!" (`!key`).
Requirement = tuple[str, str, tuple[str, ...]]


def parse_selector(selector: str) -> list[Requirement]:
    """A label selector, checked as the API server checks it (equality, !=, in, notin, exists,
    !exists, > and < on integers; keys and values of label syntax): ConfigError when it is not one,
    rather than a selector that silently selects nothing."""
    tokens = _SELECTOR_TOKEN.findall(selector)
    if "".join(tokens) != "".join(selector.split()) or (tokens and not selector.strip()):
        raise ConfigError(f"--selector {selector!r}: not a label selector")
    out: list[Requirement] = []
    pos = 0

    def fail(reason: str) -> ConfigError:
        return ConfigError(f"--selector {selector!r}: {reason}")

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1] if pos <= len(tokens) else ""

    def peek() -> str:
        return tokens[pos] if pos < len(tokens) else ""

    while tokens:
        negate = peek() == "!"
        if negate:
            take()
        key = take()
        _check_label_key(key, fail)
        if negate:
            out.append((key, "!", ()))
        elif peek() in ("", ","):
            out.append((key, "exists", ()))
        else:
            op = take()
            if op not in _OPERATORS:
                raise fail(f"{op!r} after {key!r} is not an operator ({', '.join(_OPERATORS)})")
            if op in ("in", "notin"):
                if take() != "(":
                    raise fail(f"'{op}' needs a list of values in parentheses")
                values: list[str] = []
                sep = take() if peek() == ")" else ","  # () is an empty set
                while sep == ",":
                    value = "" if peek() in (",", ")") else take()
                    values.append(_check_label_value(value, fail))
                    sep = take()
                if sep != ")":
                    raise fail(f"expected ',' or ')' in the values of {key!r}")
                out.append((key, op, tuple(values)))
            else:
                value = "" if peek() in ("", ",") else take()
                if op in (">", "<") and not re.fullmatch(r"-?[0-9]+", value):
                    raise fail(f"'{key} {op}' needs an integer")
                out.append((key, op, (_check_label_value(value, fail),)))
        sep = take()
        if sep == "":
            break
        if sep != "," or peek() == "":
            raise fail(f"expected ',' and another requirement, found {sep!r}")
    return out


def _check_label_key(key: str, fail: Any) -> None:
    prefix, _, name = key.rpartition("/")
    if not key or key in "=!(),<>" or not _LABEL_NAME.match(name) or len(name) > 63 or (
            "/" in key and (not _LABEL_PREFIX.match(prefix) or len(prefix) > 253)):
        raise fail(f"{key!r} is not a label key")


def _check_label_value(value: str, fail: Any) -> str:
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        raise fail(f"{value!r} is not a label value")
    return value


def matches(labels: Mapping[str, str], requirements: Iterable[Requirement]) -> bool:
    """Whether labels meet every requirement (of parse_selector)."""
    for key, op, values in requirements:
        value = labels.get(key)
        if op == "exists":
            ok = value is not None
        elif op == "!":
            ok = value is None
        elif op in ("=", "=="):
            ok = value == values[0]
        elif op == "!=":
            ok = value != values[0]
        elif op == "in":
            ok = value is not None and value in values
        elif op == "notin":
            ok = value not in values
        else:  # > and <: on integers, as the API server compares them
            try:
                number = int(value) if value is not None else None
            except ValueError:
                number = None
            ok = number is not None and (number > int(values[0]) if op == ">" else number < int(values[0]))
        if not ok:
            return False
    return True


def matches_selector(labels: Mapping[str, str], selector: str) -> bool:
    """Equality- and set-based label selectors, as `kubectl -l` takes them."""
    return matches(labels, parse_selector(selector))
