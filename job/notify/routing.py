"""Who gets which mail, and whether it is worth sending: pure decisions, no I/O."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from job.report.owners import parse_addresses
from job.report.view import ReportContext
from job.settings import Settings


@dataclass(frozen=True, slots=True)
class Delivery:
    recipient: str
    #: The namespaces the recipient owns; None for the global list, which gets everything.
    namespaces: tuple[str, ...] | None


def plan(ctx: ReportContext, mail_to: tuple[str, ...]) -> tuple[list[Delivery], list[str]]:
    """One delivery per address: the global list first, then each owner with all their namespaces.

    An address on the global list is not also mailed as an owner: it already gets everything.
    Returns the deliveries and the rejected global addresses, as problems to report.
    """
    everyone, rejected = parse_addresses(",".join(mail_to))
    deliveries = [Delivery(address, None) for address in everyone]
    owned: dict[str, list[str]] = defaultdict(list)
    for ns in ctx.namespaces:
        for owner in ns.owners:
            if owner not in everyone:
                owned[owner].append(ns.name)
    deliveries += [Delivery(owner, tuple(names)) for owner, names in sorted(owned.items())]
    problems = [f"mail_to: {item!r} is not a mail address; not mailed" for item in rejected]
    return deliveries, problems


def skip_reason(ctx: ReportContext, settings: Settings) -> str:
    """Why this recipient's report is below the mail thresholds; '' when it is worth sending.

    --mail-only-new: something new since the previous run (on a first run, everything found is new);
    --mail-min-severity: at or above that severity; both together: something new at or above it.
    """
    floor = settings.mail_min_severity
    if ctx.accepted.expiring:
        return ""  # an exception about to end is news to its owners, whatever the thresholds
    if settings.mail_only_new:
        new = ctx.changes.new_counts if ctx.changes.has_previous else ctx.totals.counts
        if not (new.at_least(floor) if floor else new.total):
            return "nothing new since the previous run" + (f" at or above {floor}" if floor else "")
    elif floor and not ctx.totals.counts.at_least(floor):
        return f"nothing at or above {floor}"
    return ""
