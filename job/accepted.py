"""Reading accepted risk at the edge: the exceptions file, OpenVEX documents, namespace annotations.

The exceptions file is the operator's configuration: any bad entry is a ConfigError naming it
(exit 1), found at the start of a run. A VEX document or a namespace annotation comes from
others (a supplier, a namespace's owners): a bad one is a problem shown in every output and its
statements are not applied, so the findings it would accept stay in the reports; the run goes on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from job.errors import ConfigError
from job.exceptions import EntryError, Rule, parse_entries
from job.model import Problem, Snapshot
from job.settings import Settings, _loader, read_small_file
from job.vex import VexError
from job.vex import parse as parse_vex

MAX_EXCEPTIONS_BYTES = 1 << 20
MAX_VEX_BYTES = 8 << 20
#: Documents read from one folder at most; more is a mistake (the rest are reported, not read).
MAX_VEX_FILES = 500
MAX_ANNOTATION_BYTES = 64 << 10


@dataclass(frozen=True, slots=True)
class Accepted:
    rules: tuple[Rule, ...] = ()
    problems: tuple[Problem, ...] = ()
    vex_documents: int = 0


def read_exceptions(path: str) -> list[Rule]:
    """The exceptions file's entries; any problem is a ConfigError naming the file and the entry."""
    import yaml

    if not path:
        return []
    text = read_small_file(path, limit=MAX_EXCEPTIONS_BYTES, what="exceptions file")
    try:
        data = yaml.load(text, Loader=_loader(yaml))
    except yaml.YAMLError as exc:
        raise ConfigError(f"exceptions file {path} is not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"exceptions file {path} is nested too deeply") from exc
    try:
        return parse_entries(data or {}, source=f"exceptions file {path}")
    except EntryError as exc:
        raise ConfigError(str(exc)) from exc


def vex_files(sources: tuple[str, ...]) -> tuple[list[str], list[Problem]]:
    """The documents named: files as given, and each folder's *.json files (not its subfolders)."""
    files: list[str] = []
    problems: list[Problem] = []
    for source in sources:
        if not os.path.isdir(source):
            files.append(source)
            continue
        found = sorted(str(p) for p in Path(source).glob("*.json") if not p.name.startswith("."))
        if len(found) > MAX_VEX_FILES:
            problems.append(Problem("VEX", f"{source} holds {len(found)} documents: the first {MAX_VEX_FILES} "
                                           f"are read, the others are not applied"))
        files += found[:MAX_VEX_FILES]
    return files, problems


def read_vex(sources: tuple[str, ...]) -> tuple[list[Rule], list[Problem], int]:
    """Statements of every readable, valid document; a problem for each other one."""
    files, problems = vex_files(sources)
    rules: list[Rule] = []
    read = 0
    for path in files:
        try:
            doc = orjson.loads(read_small_file(path, limit=MAX_VEX_BYTES, what="VEX document"))
            rules += parse_vex(doc, source=f"VEX {path}")
            read += 1
        except (ConfigError, VexError) as exc:
            problems.append(Problem("VEX", f"{exc}: this document's statements are not applied"))
        except (orjson.JSONDecodeError, RecursionError) as exc:
            problems.append(Problem("VEX", f"VEX {path} is not JSON ({str(exc)[:80]}): its statements are "
                                           f"not applied"))
    return rules, problems, read


def read_annotations(snapshot: Snapshot, *, key: str) -> tuple[list[Rule], list[Problem]]:
    """Entries the namespaces' owners put in the annotation `key` (YAML or JSON, a list of entries)."""
    import yaml

    rules: list[Rule] = []
    problems: list[Problem] = []
    if not key:
        return rules, problems
    for name in sorted(snapshot.namespaces):
        text = snapshot.namespaces[name].annotations.get(key)
        if not text:
            continue
        source = f"namespace {name} (annotation {key})"
        try:
            if len(text) > MAX_ANNOTATION_BYTES:
                raise EntryError(f"{source}: larger than {MAX_ANNOTATION_BYTES >> 10} KiB")
            data = yaml.load(text, Loader=_loader(yaml))
            rules += parse_entries(data, source=source, origin="annotation", namespace=name)
        except (yaml.YAMLError, RecursionError) as exc:
            problems.append(Problem(f"{name}/annotation", f"{source} is not valid YAML ({str(exc)[:120]}): "
                                                          f"not applied"))
        except EntryError as exc:
            problems.append(Problem(f"{name}/annotation", f"{exc}: this namespace's exceptions are not applied"))
    return rules, problems


def load(*, settings: Settings, snapshot: Snapshot) -> Accepted:
    """Everything that accepts risk in this run. Raises ConfigError only for the exceptions file."""
    rules = read_exceptions(settings.exceptions)
    annotated, problems = read_annotations(snapshot, key=settings.exceptions_annotation)
    vex, vex_problems, documents = read_vex(settings.vex)
    return Accepted(tuple(rules + annotated + vex), tuple(problems + vex_problems), documents)
