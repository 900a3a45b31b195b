"""Mail the report: the global list gets everything, each owner only their namespaces.

With --check, each message is written to OUTPUT/mail/<recipient>.eml instead of being sent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from job.codec import write_file
from job.errors import ImvjobError, MailError
from job.log import RunLog
from job.notify import webhooks
from job.notify.message import HTML_TYPE, XLSX_TYPE, Attachment, attachment_name, build_message
from job.notify.routing import Delivery, plan, skip_reason
from job.notify.smtp import Mailer, Outgoing
from job.report import pages
from job.report.html import render_html
from job.report.owners import parse_addresses
from job.report.text import file_name
from job.report.view import ReportContext
from job.report.xlsx import xlsx_bytes
from job.settings import Settings

MAIL_DIR = "mail"
_TOO_BIG = ("The attachments were larger than the mail server accepts; the workbook and the full report "
            "are in the job's output folder.")


@dataclass
class NotifyOutcome:
    sent: int = 0  # delivered, or written as .eml with --check
    failed: int = 0
    skipped: str = ""  # why nothing was mailed at all, when nothing was
    below_threshold: int = 0  # recipients whose share is below --mail-min-severity / --mail-only-new
    files: list[Path] = field(default_factory=list)  # .eml files written with --check
    webhooks: int = 0  # webhooks posted to (or written as .json with --check)


def notify(ctx: ReportContext, settings: Settings, log: RunLog, *, out_dir: Path) -> NotifyOutcome:
    """Mail, then chat: a webhook that failed counts as a failed mail does (exit 2)."""
    outcome = _mail(ctx, settings, log, out_dir=out_dir)
    posted = webhooks.deliver(ctx, settings, log, out_dir=out_dir)
    outcome.failed += posted.failed
    outcome.webhooks = posted.sent
    return outcome


def _mail(ctx: ReportContext, settings: Settings, log: RunLog, *, out_dir: Path) -> NotifyOutcome:
    if not settings.smtp_host and not settings.check:
        log.info("no mail: no SMTP server configured")
        return NotifyOutcome(skipped="no SMTP server configured")
    deliveries, problems = plan(ctx, settings.mail_to)
    problems += [f"{c.subject}: {c.detail}" for c in ctx.coverage if c.kind == "owner"]
    for problem in problems:
        log.warn(problem)
    if not deliveries:
        reason = f"no recipients (set --mail-to, or the namespace annotation {settings.owner_key})"
        log.info(f"no mail: {reason}")
        return NotifyOutcome(skipped=reason)
    senders, rejected = parse_addresses(settings.mail_from)
    if len(senders) != 1 or rejected:
        log.error(f"mail_from {settings.mail_from!r} is not one mail address; no mail sent")
        return NotifyOutcome(failed=len(deliveries))

    outcome = NotifyOutcome()
    messages = _messages(ctx, deliveries, settings, senders[0], log, outcome)
    if settings.check:
        _write_eml(messages, out_dir / MAIL_DIR, log, outcome)
    else:
        _send(messages, settings, log, outcome, planned=len(deliveries))
    if outcome.sent == 0 and outcome.failed == 0:
        outcome.skipped = "every recipient's share is below the mail thresholds"
    return outcome


def _messages(ctx: ReportContext, deliveries: list[Delivery], settings: Settings, sender: str, log: RunLog,
              outcome: NotifyOutcome) -> Iterator[Outgoing]:
    """Messages one at a time, so that only one recipient group's attachments are in memory."""
    groups: dict[tuple[str, ...] | None, list[str]] = {}
    # Links to the served report (--report-url); to each recipient's own pages when the report has them.
    split = "pages" in ctx.artifacts or any((settings.output_dir / pages.FOLDER).glob("*.html"))
    for d in deliveries:
        groups.setdefault(d.namespaces, []).append(d.recipient)
    for namespaces, recipients in groups.items():
        view = ctx if namespaces is None else ctx.restrict(namespaces)
        reason = skip_reason(view, settings)
        if reason:
            for recipient in recipients:
                log.info(f"not mailing {recipient}: {reason}")
            outcome.below_threshold += len(recipients)
            continue
        attachments = _attachments(view, settings)
        links = pages.report_links(view, settings.report_url, split=split)
        for recipient in recipients:
            message = build_message(view, sender=sender, recipient=recipient, attachments=attachments, links=links)

            def lite(view: ReportContext = view, recipient: str = recipient):
                return build_message(view, sender=sender, recipient=recipient, attachments=[], note=_TOO_BIG,
                                     links=links)

            yield Outgoing(recipient, message, lite)


def _attachments(view: ReportContext, settings: Settings) -> list[Attachment]:
    """The recipient's workbook (and page): the files already written for this very context, or
    rendered now for an owner's share."""
    xlsx = view.artifacts.get("xlsx")
    out = [Attachment(attachment_name(view, "xlsx"), *XLSX_TYPE,
                      xlsx.read_bytes() if xlsx is not None else xlsx_bytes(view))]
    if settings.attach_html:
        html = view.artifacts.get("html")
        data = html.read_bytes() if html is not None else render_html(view).encode("utf-8", "replace")
        out.append(Attachment(attachment_name(view, "html"), *HTML_TYPE, data))
    return out


def _subject(item: Outgoing) -> str:
    return str(item.message["Subject"])


def _write_eml(messages: Iterator[Outgoing], folder: Path, log: RunLog, outcome: NotifyOutcome) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.eml"):  # messages of an earlier check run would mislead
        old.unlink()
    for item in messages:
        name = file_name(item.recipient)
        path = folder / f"{name}.eml"
        n = 2
        while path.exists() or path.is_symlink():
            path, n = folder / f"{name}-{n}.eml", n + 1
        write_file(path, item.message.as_bytes())  # never through a link planted in the folder
        outcome.sent += 1
        outcome.files.append(path)
        log.info(f"would mail {item.recipient}: wrote {path}")


def _send(messages: Iterator[Outgoing], settings: Settings, log: RunLog, outcome: NotifyOutcome, *,
          planned: int) -> None:
    try:
        mailer = Mailer(settings)
    except ImvjobError as exc:  # a MailError among them
        log.error(f"no mail sent: {exc}")
        outcome.failed = planned
        return
    with mailer:
        for item in messages:
            try:
                note = mailer.send(item)
            except MailError as exc:
                outcome.failed += 1
                log.error(f"mail to {item.recipient} failed: {exc}")
                if exc.fatal:
                    # The recipients not tried yet are not mailed either.
                    rest = planned - outcome.sent - outcome.failed - outcome.below_threshold
                    outcome.failed += max(rest, 0)
                    if rest > 0:
                        log.error(f"mail: {rest} more not sent")
                    return
                continue
            outcome.sent += 1
            log.info(f"mailed {item.recipient}: {_subject(item)}" + (f" ({note})" if note else ""))
