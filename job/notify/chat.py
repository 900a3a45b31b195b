"""Chat and webhook messages: what needs attention, who gets it, and each service's payload. Pure.

Only what needs attention goes out: new findings, overdue and exploited (KEV) findings, and
coverage problems; each item has a stable id, and an item already sent to a webhook is not sent
to it again (job.notify.webhooks keeps the ids), so a run that changed nothing sends nothing.

Payloads: Slack incoming webhooks (Block Kit), Microsoft Teams Workflows webhooks (an Adaptive
Card in a message), and a generic JSON document (SCHEMA, docs/metrics-and-chat.md). Each stays
within its service's limits: the items that do not fit are counted and left to the report's link.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

from job.report.text import one_line
from job.report.view import ReportContext
from job.triage import iso_day

SCHEMA = "imvjob.webhook/v1"
KINDS = ("exploited", "overdue", "new", "coverage")
TITLES = {"exploited": "Known exploited (KEV)", "overdue": "Past their deadline", "new": "New findings",
          "coverage": "Not scanned or not checked"}
# Service limits (Slack: 50 blocks, 3,000 characters a section, 150 a header; Teams: 28 KB a
# message); a little under them, for the envelope.
SLACK_BLOCKS, SLACK_SECTION, SLACK_HEADER = 45, 2900, 150
TEAMS_BYTES = 26_000
JSON_ITEMS = 500
LINES_PER_KIND = 25


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # one of KINDS
    id: str  # stable across runs: what was sent is not sent again
    namespace: str
    subject: str  # "Deployment/web", or a coverage item's subject
    text: str  # one line, plain text
    severity: str = ""
    package: str = ""
    vulnerability: str = ""
    due: str = ""  # ISO day


@dataclass(frozen=True, slots=True)
class Notice:
    """One webhook's message: its items not sent before, in KINDS order."""

    key: str
    cluster: str
    taken_at: str
    report_url: str
    namespaces: tuple[str, ...] | None  # None: the global webhook, everything
    items: tuple[Item, ...]


def routes(ctx: ReportContext, *, annotation: str, global_keys: Iterable[str]) -> dict[str, tuple[str, ...] | None]:
    """{webhook key: its namespaces, or None for a global one}: a namespace names its owners' keys
    in an annotation (or label), comma-separated, as it names mail owners."""
    everything = {k.strip() for k in global_keys if k.strip()}
    owned: dict[str, list[str]] = {}
    snapshot_namespaces = ctx.inputs.snapshot.namespaces
    for ns in ctx.namespaces:
        meta = snapshot_namespaces.get(ns.name)
        value = (meta.annotations.get(annotation) or meta.labels.get(annotation) or "") if meta else ""
        for key in (k.strip() for k in value.split(",")):
            if key and key not in everything:
                owned.setdefault(key, []).append(ns.name)
    plan: dict[str, tuple[str, ...] | None] = {k: None for k in sorted(everything)}
    plan.update({k: tuple(v) for k, v in sorted(owned.items())})
    return plan


def attention(view: ReportContext) -> list[Item]:
    """Pure: every item of this view that needs attention, most urgent kind first."""
    items: list[Item] = []
    for w in view.workloads:
        if w.triage is None:
            continue
        for f in w.triage.top:
            if f.kev is not None:
                items.append(_finding("exploited", w.namespace, w.label, f.package, f.vulnerability, f.severity,
                                      iso_day(f.due), f"{f.kev_cve or f.vulnerability} (KEV"
                                      + (", ransomware" if f.kev.ransomware else "") + ")"))
        for f in w.triage.overdue:
            items.append(_finding("overdue", w.namespace, w.label, f.package, f.vulnerability, f.severity,
                                  iso_day(f.due), f"due {iso_day(f.due)}, {view.today - f.due} days overdue"))
    if view.changes.has_previous:
        for c in view.changes.new():
            items.append(_finding("new", c.namespace, c.workload, c.package, c.vulnerability, c.severity, "", "new"))
    for c in view.coverage:
        ns = c.namespaces[0] if len(c.namespaces) == 1 else ""
        text = f"{c.kind} {c.subject}: {c.state}" + (f", {c.detail}" if c.detail else "")
        items.append(Item("coverage", _id("coverage", c.kind, c.subject, c.state), ns, one_line(c.subject, limit=200),
                          one_line(text, limit=300)))
    return items


def _finding(kind: str, ns: str, workload: str, package: str, vuln: str, severity: str, due: str,
             note: str) -> Item:
    text = one_line(f"{severity} {vuln} in {package}, {ns}/{workload}: {note}", limit=300)
    return Item(kind, _id(kind, ns, workload, package, vuln), ns, workload, text, severity, package, vuln, due)


def _id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def unsent(items: Iterable[Item], sent: set[str]) -> tuple[Item, ...]:
    return tuple(i for i in items if i.id not in sent)


# --- payloads ------------------------------------------------------------------------------------


def _by_kind(notice: Notice) -> list[tuple[str, list[Item]]]:
    return [(k, [i for i in notice.items if i.kind == k]) for k in KINDS if any(i.kind == k for i in notice.items)]


def headline(notice: Notice) -> str:
    counts = ", ".join(f"{len(items)} {TITLES[k].lower()}" for k, items in _by_kind(notice))
    scope = "" if notice.namespaces is None else " in " + ", ".join(notice.namespaces[:5]) + (
        " …" if len(notice.namespaces) > 5 else "")
    return one_line(f"imvjob on {notice.cluster}{scope}: {counts}")


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(notice: Notice) -> dict:
    """A Block Kit message: a header, one section per kind (lines cut to fit), and the report's link."""
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": one_line(
        headline(notice), limit=SLACK_HEADER)}}]
    left_out = 0
    for kind, items in _by_kind(notice):
        lines = [f"• {_slack_escape(i.text)}" for i in items[:LINES_PER_KIND]]
        left_out += len(items) - len(lines)
        text = f"*{TITLES[kind]}*"
        for n, line in enumerate(lines):
            if len(text) + len(line) + 1 > SLACK_SECTION:
                left_out += len(lines) - n
                break
            text += "\n" + line
        if len(blocks) < SLACK_BLOCKS:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        else:
            left_out += len(lines)
    footer = f"{left_out} more in the report" if left_out else "Everything is in the report"
    if notice.report_url:
        footer += f": <{notice.report_url}|open the report>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return {"text": headline(notice), "blocks": blocks}


def _teams_text(text: str) -> str:
    # Adaptive Card text is Markdown: registry text must not become a link.
    return text.replace("[", "(").replace("]", ")")


def teams(notice: Notice) -> dict:
    """A message with one Adaptive Card (1.4), as a Teams Workflows webhook takes it, under 28 KB."""
    per_kind = LINES_PER_KIND
    while True:
        body: list[dict] = [{"type": "TextBlock", "text": _teams_text(headline(notice)), "weight": "Bolder",
                             "size": "Medium", "wrap": True}]
        left_out = 0
        for kind, items in _by_kind(notice):
            shown = items[:per_kind]
            left_out += len(items) - len(shown)
            body.append({"type": "TextBlock", "text": TITLES[kind], "weight": "Bolder", "wrap": True,
                         "spacing": "Medium"})
            body += [{"type": "TextBlock", "text": "- " + _teams_text(i.text), "wrap": True, "spacing": "None"}
                     for i in shown]
        if left_out:
            body.append({"type": "TextBlock", "text": f"{left_out} more in the report", "isSubtle": True,
                         "wrap": True})
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": body}
        if notice.report_url:
            card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the report", "url": notice.report_url}]
        payload = {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
        if len(json.dumps(payload).encode()) <= TEAMS_BYTES or per_kind == 0:
            return payload
        per_kind //= 2


def generic(notice: Notice) -> dict:
    """The generic JSON payload, version SCHEMA (docs/metrics-and-chat.md)."""
    shown = notice.items[:JSON_ITEMS]
    return {
        "schema": SCHEMA, "cluster": notice.cluster, "takenAt": notice.taken_at, "reportUrl": notice.report_url,
        "webhook": notice.key, "namespaces": list(notice.namespaces) if notice.namespaces is not None else None,
        "counts": {k: sum(1 for i in notice.items if i.kind == k) for k in KINDS},
        "items": [{"kind": i.kind, "id": i.id, "namespace": i.namespace, "subject": i.subject, "text": i.text,
                   "severity": i.severity, "package": i.package, "vulnerability": i.vulnerability, "due": i.due}
                  for i in shown],
        "truncated": len(notice.items) - len(shown),
    }


RENDER = {"slack": slack, "teams": teams, "json": generic}
