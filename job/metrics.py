"""Prometheus metrics of a run, pushed to a Pushgateway and/or written as a node-exporter textfile.

A CronJob cannot be scraped between its runs, so each run leaves its figures where Prometheus
finds them. Labels are bounded: namespace, severity, state, stage, and registry host (at most
--metrics-max-hosts of them, the rest summed as "other"); never a CVE, an image or a pod, whose
numbers grow with the cluster and overload Prometheus.

`collect` is pure (the report context and the run's facts → a registry of gauges); `publish`
does the I/O, and a Pushgateway that is down or slow costs the run a reported error (exit 2),
never its work.
"""
from __future__ import annotations

import base64
import json
import resource
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import push_to_gateway, pushadd_to_gateway, write_to_textfile

from job.codec import read_state_json, write_file
from job.log import RunLog
from job.model import SEVERITIES, SEVERITY_RANK
from job.settings import Settings, read_secret

if TYPE_CHECKING:
    from job.model import ApplyOutcome
    from job.report.view import ReportContext

PREFIX = "imvjob_"
#: A frequent run's own figures (--no-reports): in a group (Pushgateway) or a file (textfile) of
#: their own, beside the full runs'.
FREQUENT_PREFIX = PREFIX + "frequent_"
FREQUENT_GROUP = {"run": "frequent"}
OTHER_HOST = "other"
#: Consecutive runs each registry host answered with the job's own errors, for the alert on
#: "a registry erroring for two runs" (a Pushgateway keeps only the last push).
STATE_FILE = "metrics-state.json"


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the run knows beyond its report."""

    started: float  # Unix time
    finished: float
    completed: bool  # the play reached its recap (exit 0 or 2)
    exit_code: int
    stages: tuple[tuple[str, float], ...]  # (stage, seconds)
    peak_rss_bytes: int


def run_facts(log: RunLog, *, completed: bool, exit_code: int) -> RunFacts:
    """I/O: the clock, the log's task times and the process's peak memory."""
    now, mono = time.time(), time.monotonic()
    marks = list(log.tasks) + [("", mono)]
    stages: dict[str, float] = {}
    for (name, start), (_next, end) in zip(marks, marks[1:]):
        stages[name] = stages.get(name, 0.0) + max(0.0, end - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return RunFacts(log.started, now, completed, exit_code, tuple(stages.items()), peak)


# --- pure: figures → registry -----------------------------------------------------------------


def bounded_hosts(errors: Mapping[str, int], manifests: Mapping[str, int], *, limit: int) -> dict[str, str]:
    """Pure: {host: label}; the `limit` hosts that matter most keep their name (those with errors
    first, then the busiest), the others are labelled "other"."""
    order = sorted(manifests, key=lambda h: (-(errors.get(h, 0) > 0), -manifests[h], h))
    return {h: (h if i < max(limit, 0) else OTHER_HOST) for i, h in enumerate(order)}


def failing_runs(previous: Mapping[str, int], errors: Mapping[str, int]) -> dict[str, int]:
    """Pure: consecutive erroring runs per host label, given the previous run's and this run's errors."""
    return {host: (previous.get(host, 0) + 1 if n else 0) for host, n in errors.items()}


def registry_figures(ctx: "ReportContext", *, max_hosts: int) -> tuple[Counter, Counter]:
    """Pure: manifests asked per (host label, state), and the job's own errors per host label."""
    by_host: Counter = Counter()
    errors: Counter = Counter()
    states: Counter = Counter()
    for image in ctx.images:
        by_host[image.ref.host] += 1
        states[(image.ref.host, image.state)] += 1
        errors[image.ref.host] += int(image.job_error)
    labels = bounded_hosts(errors, by_host, limit=max_hosts)
    manifests: Counter = Counter()
    for (host, state), n in states.items():
        manifests[(labels[host], state)] += n
    host_errors: Counter = Counter()
    for host, n in errors.items():
        host_errors[labels[host]] += n
    return manifests, host_errors


def collect(ctx: "ReportContext | None", run: RunFacts, *, max_hosts: int = 20,
            failing: Mapping[str, int] | None = None) -> CollectorRegistry:
    """Pure: the run's gauges. Without a context (a run that failed early) only the run's own
    figures; last_success_timestamp_seconds only when the play completed."""
    registry = CollectorRegistry()
    gauge = _gauges(registry, PREFIX)
    _the_run(gauge, run, which="run", completed=run.completed and ctx is not None)
    if not run.completed or ctx is None:
        return registry
    gauge("peak_memory_bytes", "Peak resident memory of the last run.").set(run.peak_rss_bytes)
    stage = gauge("stage_duration_seconds", "Seconds each stage of the last run took.", ("stage",))
    for name, seconds in run.stages:
        stage.labels(name).set(seconds)
    _vulnerabilities(ctx, gauge)
    _coverage(ctx, gauge)
    manifests, errors = registry_figures(ctx, max_hosts=max_hosts)
    asked = gauge("registry_manifests", "Manifests asked about per registry host and resulting state.",
                  ("host", "state"))
    for (host, state), n in sorted(manifests.items()):
        asked.labels(host, state).set(n)
    errored = gauge("registry_errors", "Manifests a registry host could not answer for reasons of the job's "
                                       "reach (unreachable, unauthorized, error).", ("host",))
    for host, n in sorted(errors.items()):
        errored.labels(host).set(n)
    if failing is not None:
        runs = gauge("registry_failing_runs", "Consecutive runs in which the registry host had errors.", ("host",))
        for host, n in sorted(failing.items()):
            runs.labels(host).set(n)
    if ctx.apply is not None:
        apply = ctx.apply
        _objects(gauge, which="run", count=lambda action: getattr(apply, action))
    return registry


def collect_frequent(run: RunFacts, outcome: "ApplyOutcome | None") -> CollectorRegistry:
    """Pure: a frequent run's (--no-reports) gauges, under names of their own: its success must never
    stand in for a full run's (imvjob_last_success_timestamp_seconds), whose report and mail it skips."""
    registry = CollectorRegistry()
    gauge = _gauges(registry, FREQUENT_PREFIX)
    _the_run(gauge, run, which="frequent run", completed=run.completed and outcome is not None)
    if run.completed and outcome is not None:
        _objects(gauge, which="frequent run", count=lambda action: len(getattr(outcome, action)))
    return registry


def _gauges(registry: CollectorRegistry, prefix: str) -> Callable[..., Gauge]:
    def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return Gauge(prefix + name, doc, tuple(labels), registry=registry)
    return gauge


def _the_run(gauge: Callable[..., Gauge], run: RunFacts, *, which: str, completed: bool) -> None:
    """When the run ended and how; when it completed, that it succeeded and how long it took."""
    gauge("last_run_timestamp_seconds", f"When the last {which} ended (Unix time).").set(run.finished)
    gauge("run_exit_code", f"Exit status of the last {which}: 0 completed, 2 with errors, 1 could not work.").set(
        run.exit_code)
    if completed:
        gauge("last_success_timestamp_seconds", f"When the last {which} that completed its play ended.").set(
            run.finished)
        gauge("run_duration_seconds", f"Seconds the last {which} took.").set(max(0.0, run.finished - run.started))


#: ImageManifestVulns per apply action (the fields of ApplyOutcome, and of the report's ApplySummary).
_OBJECT_ACTIONS = ("created", "updated", "deleted", "unchanged", "failed")


def _objects(gauge: Callable[..., Gauge], *, which: str, count: Callable[[str], int]) -> None:
    objects = gauge("objects", f"ImageManifestVulns the last {which} wrote, per action.", ("action",))
    for action in _OBJECT_ACTIONS:
        objects.labels(action).set(count(action))


def _vulnerabilities(ctx: "ReportContext", gauge: Callable[..., Gauge]) -> None:
    cluster = gauge("cluster_vulnerabilities", "Vulnerabilities of the running images, each image counted "
                                               "once, per severity.", ("severity",))
    for severity in SEVERITIES:
        cluster.labels(severity).set(ctx.totals.counts.of(severity))
    vulns = gauge("vulnerabilities", "Vulnerabilities per namespace and severity (the sum of its "
                                     "ImageManifestVulns).", ("namespace", "severity"))
    fixable = gauge("vulnerabilities_fixable", "Vulnerabilities with a fixed-by version, per namespace.",
                    ("namespace",))
    exploited = gauge("findings_exploited", "Findings (workload x vulnerability) whose CVE is in the KEV "
                                            "catalogue, per namespace.", ("namespace",))
    overdue = gauge("findings_overdue", "Findings past their due date, per namespace and severity; "
                                        "exploited: in KEV; fixable: a fixed-by version exists.",
                    ("namespace", "severity", "exploited", "fixable"))
    oldest = gauge("findings_overdue_days_max", "Days the longest overdue finding is past its due date, "
                                                "per namespace.", ("namespace",))
    for ns in ctx.namespaces:
        for severity, n in ns.counts.items():
            if n:
                vulns.labels(ns.name, severity).set(n)
        fixable.labels(ns.name).set(ns.counts.fixable)
        kev = late = 0
        days = 0
        rows: Counter = Counter()
        for w in ns.workloads:
            if w.triage is None:
                continue
            kev += w.triage.kev
            for f in w.triage.overdue:
                rows[(f.severity, _yes(f.kev is not None), _yes(f.fixable))] += 1
                late += 1
                days = max(days, ctx.today - f.due)
        exploited.labels(ns.name).set(kev)
        for (severity, is_kev, is_fixable), n in sorted(rows.items()):
            overdue.labels(ns.name, severity, is_kev, is_fixable).set(n)
        if late:
            oldest.labels(ns.name).set(days)
    accepted = gauge("findings_accepted", "Findings an exception or a VEX statement accepts, per namespace and "
                                          "severity (listed in the reports, not ranked).", ("namespace", "severity"))
    for ns, counts in sorted(ctx.accepted.by_namespace.items()):
        for severity in SEVERITIES:
            if counts[SEVERITY_RANK[severity]]:
                accepted.labels(ns, severity).set(counts[SEVERITY_RANK[severity]])
    gauge("exceptions_expired", "Exception entries past their end date (their findings count again).").set(
        len(ctx.accepted.expired))


def _coverage(ctx: "ReportContext", gauge: Callable[..., Gauge]) -> None:
    t = ctx.totals
    gauge("images_scanned", "Distinct running manifests the registries reported on.").set(t.scanned)
    unscanned = gauge("images_unscanned", "Distinct running manifests without a report, per reason.", ("reason",))
    for state, n in t.unscanned_by_state:
        unscanned.labels(state).set(n)
    gauge("containers_unresolved", "Containers whose image manifest could not be known.").set(t.unresolved)
    gauge("pods", "Running pods in the snapshot.").set(t.pods)


def _yes(value: bool) -> str:
    return "true" if value else "false"


# --- I/O: state, push, textfile --------------------------------------------------------------------


def read_state(out_dir: Path) -> dict[str, int]:
    """The previous run's consecutive erroring runs per host; {} when unknown or unreadable."""
    try:
        runs = read_state_json(out_dir / STATE_FILE)["registry_failing_runs"]
        return {str(k): int(v) for k, v in runs.items()} if isinstance(runs, dict) else {}
    except (ValueError, KeyError, TypeError, OverflowError):  # int(1e400): JSON numbers have no bound
        return {}


def publish(ctx: "ReportContext | None", settings: Settings, log: RunLog, *, completed: bool, exit_code: int,
            out_dir: Path) -> int:
    """I/O: push and/or write the run's metrics. Returns how many targets failed (each is logged)."""
    run = _facts_if_wanted(settings, log, completed=completed, exit_code=exit_code)
    if run is None:
        return 0
    failing = None
    if ctx is not None and completed:
        _, errors = registry_figures(ctx, max_hosts=settings.metrics_max_hosts)
        failing = failing_runs(read_state(out_dir), errors)
        write_file(out_dir / STATE_FILE, json.dumps({"registry_failing_runs": failing}).encode())
    registry = collect(ctx, run, max_hosts=settings.metrics_max_hosts, failing=failing)
    cluster = (ctx.cluster if ctx is not None else settings.cluster_name) or "cluster"
    return _send(registry, settings, log, textfile=settings.metrics_textfile, cluster=cluster,
                 whole=completed and ctx is not None)


def publish_frequent(outcome: "ApplyOutcome | None", settings: Settings, log: RunLog, *, completed: bool,
                     exit_code: int, cluster: str = "") -> int:
    """I/O: a frequent run's metrics: pushed to the group {cluster, run="frequent"} (`cluster` as the full
    runs name it, report.cluster_name), or written to the textfile's sibling <name>.frequent.prom
    (frequent_textfile). Returns how many targets failed."""
    run = _facts_if_wanted(settings, log, completed=completed, exit_code=exit_code)
    if run is None:
        return 0
    textfile = frequent_textfile(settings.metrics_textfile) if settings.metrics_textfile else ""
    return _send(collect_frequent(run, outcome), settings, log, textfile=textfile,
                 cluster=cluster or settings.cluster_name or "cluster", whole=completed and outcome is not None,
                 group=FREQUENT_GROUP)


def _facts_if_wanted(settings: Settings, log: RunLog, *, completed: bool, exit_code: int) -> RunFacts | None:
    """The run's facts when metrics are to be published; None when none are set up, or for a dry run."""
    if not settings.pushgateway_url and not settings.metrics_textfile:
        return None
    run = run_facts(log, completed=completed, exit_code=exit_code)
    log.task("metrics")
    if settings.check:
        # A dry run's figures would stand in for the real job's, its success hide a failing one.
        log.info("--check: metrics neither pushed nor written")
        return None
    return run


def _send(registry: CollectorRegistry, settings: Settings, log: RunLog, *, textfile: str, cluster: str,
          whole: bool, group: Mapping[str, str] | None = None) -> int:
    """The figures to the textfile and/or the Pushgateway; how many of them failed."""
    failed = 0
    if textfile:
        failed += _write_textfile(textfile, registry, log, whole=whole)
    if settings.pushgateway_url:
        failed += _push(settings, registry, log, cluster=cluster, whole=whole, group=group)
    return failed


def frequent_textfile(path: str) -> str:
    """Where a frequent run writes its textfile: beside the full runs' (imvjob.prom: imvjob.frequent.prom),
    where node-exporter's textfile collector reads both."""
    full = Path(path)
    return str(full.with_name((full.stem if full.suffix == ".prom" else full.name) + ".frequent.prom"))


def _write_textfile(path: str, registry: CollectorRegistry, log: RunLog, *, whole: bool) -> int:
    if not whole:
        # Rewriting the file without the last success would lose it: only completed runs write it.
        log.info(f"metrics textfile {path} kept as the last completed run wrote it")
        return 0
    try:
        write_to_textfile(path, registry)  # a temporary file renamed over the old: never read half-written
    except OSError as exc:
        log.error(f"metrics textfile {path} not written: {exc.strerror or exc}")
        return 1
    log.info(f"wrote metrics to {path}")
    return 0


def _push(settings: Settings, registry: CollectorRegistry, log: RunLog, *, cluster: str, whole: bool,
          group: Mapping[str, str] | None = None) -> int:
    gateway = settings.pushgateway_url.rstrip("/")
    if "@" in gateway.split("://", 1)[-1].split("/", 1)[0]:
        log.error("metrics not pushed: --pushgateway-url holds credentials; they go in "
                  "IMVJOB_PUSHGATEWAY_PASSWORD / _TOKEN or their files")
        return 1
    handler = _handler(settings)
    grouping = {"cluster": cluster, **(group or {})}
    # A completed run replaces the whole group (PUT), so that namespaces gone since drop out; a run
    # that failed early adds its own figures only (POST) and keeps the last success and the figures.
    send = push_to_gateway if whole else pushadd_to_gateway
    error = _within(settings.pushgateway_timeout, lambda: send(
        gateway, job=settings.pushgateway_job, registry=registry, grouping_key=grouping,
        timeout=settings.pushgateway_timeout, handler=handler))
    if error:
        log.error(f"metrics not pushed to the Pushgateway: {error}")
        return 1
    where = ", ".join(f"{k}={v}" for k, v in grouping.items())
    log.info(f"pushed metrics to the Pushgateway (job={settings.pushgateway_job}, {where})")
    return 0


def _handler(settings: Settings) -> Callable:
    """prometheus_client's push handler, with the registries' CAs (--extra-certs) and the
    configured credentials; URL and credentials never end up in an error message."""
    token = read_secret("IMVJOB_PUSHGATEWAY_TOKEN", settings.pushgateway_token_file)
    auth = f"Bearer {token}" if token else ""
    if settings.pushgateway_user:
        password = read_secret("IMVJOB_PUSHGATEWAY_PASSWORD", settings.pushgateway_password_file)
        pair = f"{settings.pushgateway_user}:{password}".encode()
        auth = "Basic " + base64.b64encode(pair).decode()
    context = None
    if settings.pushgateway_url.startswith("https:"):
        from job.registries.tls import Trust

        trust = Trust(extra_certs=settings.extra_certs, insecure_registry=())
        context = trust.context  # the CAs are loaded into it: the bundle file may go
        trust.close()

    def handler(url: str, method: str, timeout: float | None, headers: list, data: bytes) -> Callable[[], None]:
        def send() -> None:
            request = urllib.request.Request(url, data=data, method=method)
            for name, value in headers:
                request.add_header(name, value)
            if auth:
                request.add_header("Authorization", auth)
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                response.read(1 << 16)

        return send

    return handler


def _within(seconds: float, work: Callable[[], None]) -> str:
    """Run `work` with a total deadline; '' when it succeeded, else why not (in plain words)."""
    outcome: list[str] = []
    late = f"no answer within {seconds:g}s (--pushgateway-timeout)"

    def target() -> None:
        try:
            work()
            outcome.append("")
        except urllib.error.HTTPError as exc:
            outcome.append(f"HTTP {exc.code} {exc.reason}")
        except urllib.error.URLError as exc:
            # The socket's own timeout may end it a hair before the join's: the same words.
            timed_out = isinstance(exc.reason, TimeoutError)
            outcome.append(late if timed_out else f"cannot connect ({_reason(exc.reason)})")
        except TimeoutError:
            outcome.append(late)
        except OSError as exc:
            outcome.append(_reason(exc))

    thread = threading.Thread(target=target, name="metrics-push", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive() or not outcome:
        return late
    return outcome[0]


def _reason(exc: object) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__ if isinstance(exc, BaseException) and not str(exc) else str(exc)
