"""The mail itself: subject, HTML summary with a plain-text twin, the workbook attached.

Headers only ever hold validated addresses and text stripped of control characters; the
EmailMessage SMTP policy encodes the rest.
"""
from __future__ import annotations

import email.utils
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP

from job.report.templating import environment
from job.report.text import file_name, one_line
from job.report.view import SEVERITIES_DESC, ReportContext

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
HTML_TYPE = ("text", "html")
#: What-to-do rows and new findings shown in the body; the attachments have everything.
BODY_ROWS = 15


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    maintype: str
    subtype: str
    data: bytes


def subject(ctx: ReportContext) -> str:
    t = ctx.totals
    where = ctx.cluster
    if ctx.only is not None:
        names = list(ctx.only)
        where += " / " + ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
    if t.pods and t.scanned == 0:
        words = "nothing could be scanned"
    elif t.counts.total == 0:
        words = "no known vulnerabilities"
    else:
        present = [(s, t.counts.of(s)) for s in SEVERITIES_DESC if t.counts.of(s)]
        words = ", ".join(f"{n:,} {s}" for s, n in present[:2])
        words += f" in {t.vulnerable:,} image{'s' if t.vulnerable != 1 else ''}"
    if ctx.changes.has_previous and ctx.changes.new_counts.total:
        words += f", {ctx.changes.new_counts.total:,} new findings"
    if t.unscanned or t.unresolved:
        words += f"; {t.unscanned + t.unresolved:,} not scanned"
    if ctx.accepted.expiring:
        words += f"; {len(ctx.accepted.expiring):,} accepted expiring soon"
    return one_line(f"[imvjob] {where}: {words}", limit=200)


def attachment_name(ctx: ReportContext, extension: str) -> str:
    scope = "" if ctx.only is None else "-" + "-".join(ctx.only[:3])
    return file_name(f"imvjob-{ctx.cluster}{scope}-{ctx.taken_at[:10]}", limit=100) + "." + extension


def build_message(ctx: ReportContext, *, sender: str, recipient: str, attachments: list[Attachment],
                  note: str = "", links: list[tuple[str, str]] = ()) -> EmailMessage:
    """multipart/mixed: (text/plain | text/html) alternative, then the attachments. links: (label,
    http(s) URL) of the served report's pages (job.report.pages.report_links)."""
    values = {"ctx": ctx, "note": note, "rows": BODY_ROWS, "attachments": [a.filename for a in attachments],
              "links": links,
              "new_changes": ctx.changes.new(BODY_ROWS)}
    env = environment()
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject(ctx)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["Message-ID"] = email.utils.make_msgid(domain=sender.rsplit("@", 1)[-1])
    # Tell auto-responders and vacation replies to stay quiet (RFC 3834).
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(env.get_template("mail/summary.txt").render(values))
    msg.add_alternative(env.get_template("mail/summary.html").render(values), subtype="html")
    for a in attachments:
        msg.add_attachment(a.data, maintype=a.maintype, subtype=a.subtype, filename=a.filename)
    return msg
