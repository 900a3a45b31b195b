"""The Jinja2 environment of templates/: the HTML report's and the mail's (templates/mail/)."""
from __future__ import annotations

import functools
from pathlib import Path

import jinja2
from markupsafe import Markup

from job import __version__
from job.model import SEVERITIES
from job.report import rows
from job.report.formats import link_host, plural, short_digest, signed, when
from job.report.palette import SEVERITY_COLOURS, background, foreground
from job.report.text import one_line
from job.report.view import SEVERITIES_DESC
from job.triage import iso_day


def _templates() -> Path:
    """templates/ at the top of a checkout; in an installed package, its copy `imvjob_templates`."""
    source = Path(__file__).resolve().parents[2] / "templates"
    if (source / "base.html").is_file():
        return source
    import importlib.util

    spec = importlib.util.find_spec("imvjob_templates")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("imvjob is installed without its templates (imvjob_templates)")
    return Path(list(spec.submodule_search_locations)[0])


TEMPLATES = _templates()


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "svg"), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=lambda n: f"{n:,}",
        link_host=link_host,
        when=when,
        one_line=one_line,
        short_digest=short_digest,
        plural=plural,
        sev_bg=background,
        sev_fg=foreground,
        day=iso_day,
        signed=signed,
    )
    env.globals.update(SEVERITIES=SEVERITIES, SEVERITIES_DESC=SEVERITIES_DESC, COLOURS=SEVERITY_COLOURS,
                       version=__version__, plural=plural,
                       # The long tables' rows, written in Python (job.report.rows escapes every value).
                       vulnerability_rows=lambda groups: Markup(rows.vulnerability_rows(groups)),
                       entry_rows=lambda entries: Markup(rows.entry_rows(entries)),
                       sev_badge=lambda name: Markup(rows.sev(name)))
    return env
