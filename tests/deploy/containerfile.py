"""Read a Containerfile and its build context the way a builder does, for tests that replay it.

Only what the project's Containerfile uses is understood: one stage; FROM, LABEL, ENV, WORKDIR,
COPY (with --chown), RUN (shell form), USER, ENTRYPOINT and CMD (exec form).
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Step:
    line: int
    instruction: str
    args: str


def parse(text: str) -> list[Step]:
    """The instructions, with continuation lines joined and comments dropped."""
    steps: list[Step] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        instruction, _, args = whole.partition(" ")
        steps.append(Step(start, instruction.upper(), args.strip()))
    return steps


def key_values(args: str) -> dict[str, str]:
    """LABEL / ENV arguments: key=value pairs, values possibly quoted."""
    return dict(item.split("=", 1) for item in shlex.split(args))


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    dest: str
    chown: str


def copy_args(args: str) -> Copy:
    words = shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    assert len(words) >= 2, f"COPY needs a source and a destination: {args}"
    return Copy(tuple(words[:-1]), words[-1], flags.get("chown", ""))


# --- the build context --------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out += "/?"
                i += 1
            continue
        char = pattern[i]
        out += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


class IgnoreFile:
    """.containerignore / .dockerignore rules: a path is excluded when the last rule matching it,
    or one of its parent folders, excludes it; `!rule` includes again."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = line[1:].strip() if include else line
            pattern = str(PurePosixPath(pattern.strip("/"))) if pattern.strip("/") else "."
            self.rules.append((include, _pattern_regex(pattern)))

    def excluded(self, path: str) -> bool:
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        state = False
        for include, rx in self.rules:
            if any(rx.match(p) for p in prefixes):
                state = not include
        return state


def context_files(root: Path, source: str, ignore: IgnoreFile) -> list[str]:
    """The files of the build context under `source` (relative paths), as a builder sends them."""
    base = root / source
    if base.is_file():
        candidates = [source.strip("/")]
    elif base.is_dir():
        candidates = sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file())
    else:
        return []
    return [path for path in candidates if not ignore.excluded(path)]
