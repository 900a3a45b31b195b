"""The play: snapshot → scan → desired → apply → report → notify.

Each stage also runs on its own, reading and writing the stage files in OUTPUT, so that a run
can be replayed or debugged stage by stage. This module only wires stages together, in two
families of functions:

- `stage_snapshot`, `stage_scan`, `stage_apply`, `stage_report`: one stage each, data in and
  data out, named after the stages;
- `run_play`, `run_snapshot`, `run_scan`, `run_apply`, `run_report`, `run_notify`, `run_merge`:
  one `imvjob` command each (`run_play` is `imvjob run`), named after the commands; they read
  and write the stage files and return the exit status.
"""
from __future__ import annotations

import datetime as dt
import gc
import sys
from pathlib import Path

from job import apply as apply_stage
from job import codec, desired, feeds, metrics, notify, report, scan, shards, snapshot, stage_files
from job.cluster import Cluster
from job.errors import ConfigError, ImvjobError
from job.log import RunLog
from job.memory import gc_paused
from job.model import ApplyOutcome, ImageRef, ScanResult, Snapshot
from job.settings import Settings, shard_of
from job.triage import day_of, parse_sla

EXIT_OK, EXIT_ERRORS = 0, 2


def _kube(settings: Settings) -> Cluster:
    from job import kube

    return kube.connect(settings)


def _out(settings: Settings) -> Path:
    return settings.output_dir


# --- the stages: data in, data out ------------------------------------------------------


def stage_snapshot(settings: Settings, log: RunLog, client: Cluster | None = None) -> Snapshot:
    log.task("snapshot")
    if settings.offline:
        snap = snapshot.load_pod_list(Path(settings.pods), settings)
    else:
        snap = snapshot.take(client, settings, log)
    log.info(f"{len(snap.pods)} running pods in {len({p.namespace for p in snap.pods})} namespaces, "
             f"{len(snap.refs())} distinct manifests, {len(snap.problems)} problems "
             f"({snap.pages} pages)")
    for problem in snap.problems[:50]:
        log.warn(f"{problem.where}: {problem.message}")
    if len(snap.problems) > 50:
        log.warn(f"... and {len(snap.problems) - 50} more problems (all are in the reports)")
    return snap


def stage_scan(snap: Snapshot, settings: Settings, log: RunLog, client: Cluster | None = None,
               ) -> dict[ImageRef, ScanResult]:
    log.task("scan")
    results = scan.scan(snap, settings, log, client=client)
    counts: dict[str, int] = {}
    for r in results.values():
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    log.info(f"{len(results)} manifests: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return results


def stage_apply(snap: Snapshot, results: dict[ImageRef, ScanResult], settings: Settings, log: RunLog,
                client: Cluster | None = None) -> ApplyOutcome:
    log.task("apply")
    now = dt.datetime.now(dt.timezone.utc)
    schema = None if settings.offline else client.imv_spec_schema()
    if schema is None and not settings.offline:
        log.warn("cannot read the ImageManifestVuln CRD: objects are compared as written, not as stored")
    state = desired.desired_state(snap, results, now=now, shard=shard_of(settings), spec_schema=schema)
    if state.listed is not None:
        log.info(f"pods narrowed by the selector {snap.selector!r}: the objects' other pods are kept, not removed")
    if state.unsure:
        log.info(f"{len(state.unsure)} pods or namespaces could not be read in full: nothing of theirs is removed")
    if settings.offline:
        outcome = apply_stage.write_offline(state, _out(settings) / "imagemanifestvulns.yaml")
        log.info(f"{len(outcome.created)} objects written to {outcome.target}")
    else:
        outcome = apply_stage.apply(state, client, settings, log)
    for problem in outcome.failed:
        log.error(f"{problem.where}: {problem.message}")
    for key in sorted(outcome.diffs):  # --diff: the per-object changes, on stdout for a pager or a file
        sys.stdout.write(outcome.diffs[key] or f"--- {key}: no difference\n")
    return outcome


def stage_report(snap: Snapshot, results: dict[ImageRef, ScanResult], outcome: ApplyOutcome | None,
                 settings: Settings, log: RunLog):
    log.task("report")
    out = _out(settings)
    previous = report.load_previous(Path(settings.previous) if settings.previous else out, current=snap, log=log)
    if previous is None:
        log.info("no previous run to read first-seen days from: every finding's age and deadline start today")
    triage = load_triage(snap, results, settings, log)
    # The context is millions of small objects without cycles (50,000 pods): built with the cyclic
    # collector held off, then frozen out of its way, so that the collections the rendering
    # triggers look at what the rendering allocates (they took ~10 s of a ~50 s report stage).
    with gc_paused():
        ctx = report.build_context(snapshot=snap, results=results, outcome=outcome, previous=previous,
                                   settings=settings, triage=triage)
    gc.freeze()
    for path in report.write_reports(ctx, out):
        log.info(f"wrote {path}")
    return ctx


def sla_policy(settings: Settings) -> dict[str, int]:
    """--sla as {severity: days}; a policy that cannot be read is a configuration error."""
    try:
        return parse_sla(settings.sla)
    except ValueError as exc:
        raise ConfigError(f"--sla: {exc}") from exc


def load_triage(snap: Snapshot, results: dict[ImageRef, ScanResult], settings: Settings,
                log: RunLog) -> report.Triage:
    """The KEV and EPSS feeds (URLs trusted as the registries are) and the SLA policy to rank with."""
    trust = None
    if "://" in settings.kev_feed or "://" in settings.epss_feed:
        from job.registries.tls import Trust

        trust = Trust(extra_certs=settings.extra_certs, insecure_registry=())
    try:
        read = feeds.load(kev_source=settings.kev_feed, epss_source=settings.epss_feed, results=results.values(),
                          today=day_of(snap.taken_at), max_age_days=settings.feed_max_age,
                          ssl_context=trust.context if trust else None)
    finally:
        if trust is not None:
            trust.close()
    for status in read.status:
        if status.problem:
            log.warn(f"{status.name} feed {status.source}: {status.state}, {status.detail}")
        elif status.usable:
            log.info(f"{status.name} feed of {status.date}: {status.detail}")
    from job import accepted  # exceptions and VEX: a bad exceptions file is a ConfigError, a bad VEX a problem

    risk = accepted.load(settings=settings, snapshot=snap)
    for problem in risk.problems:
        snap.problems.append(problem)
        log.warn(f"{problem.where}: {problem.message}")
    if risk.rules:
        log.info(f"{len(risk.rules)} exception entries and VEX statements ({risk.vex_documents} VEX documents)")
    return report.Triage(read, sla_policy(settings), risk.rules, settings.expiring_days, risk.vex_documents)


def recap(snap: Snapshot, results: dict[ImageRef, ScanResult], outcome: ApplyOutcome | None,
          notify_failed: int = 0) -> tuple[str, int]:
    unscanned = sum(1 for r in results.values() if r.state.value != "scanned")
    job_errors = sum(1 for r in results.values() if r.state.is_job_error)
    o = outcome or ApplyOutcome()
    failed = len(o.failed) + job_errors + notify_failed
    ok = len(o.created) + len(o.updated) + len(o.deleted) + len(o.unchanged)
    line = (f"imvjob: ok={ok} created={len(o.created)} updated={len(o.updated)} deleted={len(o.deleted)} "
            f"unchanged={len(o.unchanged)} failed={failed} unscanned={unscanned}")
    return line, (EXIT_ERRORS if failed else EXIT_OK)


# --- the commands: `imvjob run` ------------------------------------------------------------


def run_play(settings: Settings, log: RunLog, client: Cluster | None = None) -> int:
    """The whole play. With --secscan-dir and a live cluster, saved registry answers stand in for the
    registries (a replay); with --pods too, nothing live is used at all."""
    try:
        if client is None and not settings.offline:
            client = _kube(settings)
        return _play(settings, log, client)
    except ImvjobError as exc:
        # A run that could not work still says so, so that an alert on it needs no log reading.
        if settings.no_reports:
            metrics.publish_frequent(None, settings, log, completed=False, exit_code=exc.exit_code)
        else:
            metrics.publish(None, settings, log, completed=False, exit_code=exc.exit_code, out_dir=_out(settings))
        raise
    finally:
        gc.unfreeze()


def _play(settings: Settings, log: RunLog, client: Cluster | None) -> int:
    # The snapshot and the scan results live until the end of the run: once built, the cyclic
    # garbage collector stops going through them (gc.freeze), so that each later collection
    # costs what the stage at hand allocates, not everything the run holds (hundreds of
    # thousands of objects on a large cluster). Refcounting frees them as usual.
    snap = stage_snapshot(settings, log, client)
    gc.freeze()
    results = stage_scan(snap, settings, log, client)
    gc.freeze()
    outcome = stage_apply(snap, results, settings, log, client)
    shard = shard_of(settings)
    if shard is not None:
        return _finish_shard(snap, results, outcome, settings, log, shard)
    # Before the report (the run's peak of memory), what `imvjob report` / `notify` replay it from.
    stage_files.write_replay(_out(settings), snap=snap, results=results, outcome=outcome)
    if settings.no_reports:
        return _finish_frequent(snap, results, outcome, settings, log)
    ctx = stage_report(snap, results, outcome, settings, log)
    log.task("notify")
    sent = notify.notify(ctx, settings, log, out_dir=_out(settings))
    play = recap(snap, results, outcome, sent.failed)[1]
    failed = sent.failed + _publish(ctx, settings, log, play)
    line, code = recap(snap, results, outcome, failed)
    log.recap(line)
    return code


def _finish_frequent(snap: Snapshot, results: dict[ImageRef, ScanResult], outcome: ApplyOutcome,
                     settings: Settings, log: RunLog) -> int:
    """--no-reports: the objects are applied and the stage files written; no report, summary.json or
    mail, so that the next full run compares with the last full run's summary.json. The run's own
    metrics go beside the full runs' (metrics.publish_frequent), never in their place."""
    log.info("no reports (--no-reports): report, summary.json and mail are left to the full runs")
    play = recap(snap, results, outcome)[1]
    failed = metrics.publish_frequent(outcome, settings, log, completed=True, exit_code=play,
                                      cluster=report.cluster_name(settings, snap))
    line, code = recap(snap, results, outcome, failed)
    log.recap(line)
    return code


def _publish(ctx: report.ReportContext, settings: Settings, log: RunLog, code: int) -> int:
    """The run's metrics, once its play completed, saying how it ends (`code`); returns the targets
    that failed, which count in the recap as a failed mail does."""
    return metrics.publish(ctx, settings, log, completed=True, exit_code=code, out_dir=_out(settings))


# --- sharded runs (job.shards) ---------------------------------------------------------


def _finish_shard(snap: Snapshot, results: dict[ImageRef, ScanResult], outcome: ApplyOutcome,
                  settings: Settings, log: RunLog, shard: tuple[int, int]) -> int:
    """A shard writes its stage files instead of a report; the last shard to finish merges."""
    index, count = shard
    out, run = _out(settings), shards.run_id()
    line, code = recap(snap, results, outcome)
    log.task("shard")
    folder = shards.write_shard(out, index=index, count=count, snap=snap, results=results, outcome=outcome,
                                exit_code=code, run=run)
    log.info(f"shard {index} of {count} (run {run or '?'}): stage files in {folder}; the report comes from "
             "merging every shard's files")
    log.recap(line.replace("imvjob:", f"imvjob shard {index}/{count}:", 1))
    if not run:
        log.info(f"no run id ({shards.RUN_ID_ENV}): run `imvjob merge` once every shard has finished")
        return code
    if settings.no_reports:
        log.info("no reports (--no-reports): the shards are not merged")
        return code
    waiting = shards.missing(out, run=run, count=count)
    if waiting:
        log.info(f"shard {', '.join(map(str, waiting))} still running: the last shard to finish merges")
        return code
    lock = shards.claim_merge(out, run)
    if lock is None:
        log.info("every shard has finished; another one merges")
        return code
    try:
        merged = _merge(settings, log)
    except BaseException:
        lock.unlink(missing_ok=True)  # so that a retry of this shard merges
        raise
    shards.forget_other_locks(out, lock)
    return max(code, merged)


def _merge(settings: Settings, log: RunLog) -> int:
    log.task("merge")
    merged = shards.merge(_out(settings))
    run = merged.markers[0].run_id if merged.markers else ""
    log.info(f"{len(merged.markers)} shards of run {run or '?'}: {len(merged.snapshot.pods)} pods, "
             f"{len(merged.results)} manifests")
    ctx = stage_report(merged.snapshot, merged.results, merged.outcome, settings, log)
    log.task("notify")
    sent = notify.notify(ctx, settings, log, out_dir=_out(settings))
    play = recap(merged.snapshot, merged.results, merged.outcome, sent.failed)[1]
    failed = sent.failed + _publish(ctx, settings, log, play)
    line, code = recap(merged.snapshot, merged.results, merged.outcome, failed)
    log.recap(line)
    return code


def run_merge(settings: Settings, log: RunLog) -> int:
    """`imvjob merge`: one report (and mail) from every shard's files in OUTPUT/shard-*/."""
    return _merge(settings, log)


# --- the commands of the stages on their own, through the stage files ----------------------


def run_snapshot(settings: Settings, log: RunLog) -> int:
    client = None if settings.offline else _kube(settings)
    snap = stage_snapshot(settings, log, client)
    codec.write_json(_out(settings) / stage_files.SNAPSHOT_FILE, stage_files.snapshot_to_doc(snap))
    log.info(f"wrote {_out(settings) / stage_files.SNAPSHOT_FILE}")
    return EXIT_OK


def _load_snapshot(settings: Settings) -> Snapshot:
    return stage_files.snapshot_from_doc(codec.read_json(_out(settings) / stage_files.SNAPSHOT_FILE))


def _load_results(settings: Settings) -> dict[ImageRef, ScanResult]:
    return stage_files.read_results(_out(settings) / stage_files.SCAN_FILE)


def run_scan(settings: Settings, log: RunLog) -> int:
    snap = _load_snapshot(settings)
    client = None if (settings.offline or snap.source != "cluster") else _kube(settings)
    results = stage_scan(snap, settings, log, client)
    stage_files.write_results(_out(settings) / stage_files.SCAN_FILE, results)
    log.info(f"wrote {_out(settings) / stage_files.SCAN_FILE}")
    return EXIT_ERRORS if any(r.state.is_job_error for r in results.values()) else EXIT_OK


def run_apply(settings: Settings, log: RunLog) -> int:
    snap, results = _load_snapshot(settings), _load_results(settings)
    client = None if settings.offline else _kube(settings)
    outcome = stage_apply(snap, results, settings, log, client)
    codec.write_json(_out(settings) / stage_files.APPLY_FILE, stage_files.outcome_to_doc(outcome))
    line, code = recap(snap, results, outcome)
    log.recap(line)
    return code


def _load_outcome(settings: Settings) -> ApplyOutcome | None:
    path = _out(settings) / stage_files.APPLY_FILE
    return stage_files.outcome_from_doc(codec.read_json(path)) if path.exists() else None


def run_report(settings: Settings, log: RunLog) -> int:
    snap, results = _load_snapshot(settings), _load_results(settings)
    gc.freeze()  # as the play does once it holds them
    stage_report(snap, results, _load_outcome(settings), settings, log)
    return EXIT_OK


def run_notify(settings: Settings, log: RunLog) -> int:
    snap, results = _load_snapshot(settings), _load_results(settings)
    log.task("notify")
    out = _out(settings)
    previous = report.load_previous(Path(settings.previous) if settings.previous else out, current=snap, log=log)
    ctx = report.build_context(snapshot=snap, results=results, outcome=_load_outcome(settings),
                               previous=previous, settings=settings, triage=load_triage(snap, results, settings, log))
    sent = notify.notify(ctx, settings, log, out_dir=out)
    return EXIT_ERRORS if sent.failed else EXIT_OK
