"""Print the settings of job/settings.py as documentation, so that it never drifts from the code.

    python docs/settings_table.py            # the Markdown table in docs/deploy.md
    python docs/settings_table.py --config   # the commented config.yaml of cronjob.yaml's ConfigMap
    python docs/settings_table.py --update   # write both into docs/deploy.md and cronjob.yaml

tests/deploy/test_deploy_docs.py checks that both places hold exactly what this prints.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from job.settings import SECRET_ENV, SETTING_FIELDS, envvar  # noqa: E402

GROUPS = {"cluster": "cluster and scope", "play": "the play", "registry": "registries", "report": "reports",
          "mail": "mail", "metrics": "metrics",
          "chat": "chat and webhooks"}
CONFIG_INDENT = "    "  # config.yaml is a block scalar inside the ConfigMap
ROOT = Path(__file__).resolve().parents[1]
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
CRONJOB = ROOT / "cronjob.yaml"
TABLE_BEGIN, TABLE_END = "<!-- settings-table: begin -->\n", "<!-- settings-table: end -->\n"
CONFIG_BEGIN, CONFIG_END = "  config.yaml: |\n", "---\n"


def flag(field: dataclasses.Field) -> str:
    return "--" + field.name.replace("_", "-")


def yaml_value(value: Any) -> str:
    """The default as it is written in the YAML config file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, str):
        if not value:
            return '""'
        return yaml.safe_dump(value, width=1000).removesuffix("\n").removesuffix("\n...")
    return repr(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table() -> str:
    lines = ["| Config key | Flag | Environment variable | Default | What it does |",
             "| --- | --- | --- | --- | --- |"]
    for f in SETTING_FIELDS:
        meta = f.metadata
        if meta["flag"]:
            default = "off (a switch)"
        elif meta["multiple"]:
            default = "none (a list)"
        elif f.default == "":
            default = "(empty)"
        else:
            default = f"`{f.default}`"
        help_text = meta["help"]
        if meta["choices"]:
            shown = ", ".join(f"`{c}`" if c else "(empty)" for c in meta["choices"])
            help_text += f" One of: {shown}."
        lines.append(f"| `{f.name}` | `{flag(f)}` | `{envvar(f.name)}` | {_cell(default)} | {_cell(help_text)} |")
    lines.append("")
    lines.append("Environment only, never flags or config keys: "
                 + ", ".join(f"`{name}`" for name in SECRET_ENV)
                 + " (secrets), `IMVJOB_CONFIG` (the config file, also `--config`).")
    return "\n".join(lines) + "\n"


def config_yaml() -> str:
    lines = ["# imvjob settings (docs/deploy.md lists them all). Each is also a flag --name-with-dashes",
             "# and an environment variable IMVJOB_NAME; the container's env wins over this file."]
    group = None
    for f in SETTING_FIELDS:
        if f.metadata["group"] != group:
            group = f.metadata["group"]
            lines += ["", f"# --- {GROUPS.get(group, group)} ---"]
        lines.append(f"# {f.metadata['help']}")
        lines.append(f"# {f.name}: {yaml_value(f.default)}")
    return "\n".join(CONFIG_INDENT + line if line else "" for line in lines) + "\n"


def between(text: str, begin: str, end: str) -> tuple[int, int]:
    """(start, stop) of what lies between the first `begin` line and the next `end` line."""
    start = text.index(begin) + len(begin)
    return start, text.index("\n" + end, start - 1) + 1


def embedded_table(text: str) -> str:
    start, stop = between(text, TABLE_BEGIN, TABLE_END)
    return text[start:stop]


def embedded_config(text: str) -> str:
    start, stop = between(text, CONFIG_BEGIN, CONFIG_END)
    return text[start:stop]


def update() -> None:
    for path, begin, end, content in ((DEPLOY_DOC, TABLE_BEGIN, TABLE_END, markdown_table()),
                                      (CRONJOB, CONFIG_BEGIN, CONFIG_END, config_yaml())):
        text = path.read_text(encoding="utf-8")
        start, stop = between(text, begin, end)
        path.write_text(text[:start] + content + text[stop:], encoding="utf-8")
        print(f"updated {path.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--config", action="store_true", help="print the ConfigMap's config.yaml instead")
    what.add_argument("--update", action="store_true", help="write both into docs/deploy.md and cronjob.yaml")
    args = parser.parse_args(argv)
    if args.update:
        update()
    else:
        sys.stdout.write(config_yaml() if args.config else markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
