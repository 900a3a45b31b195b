"""One Settings object flows through the run.

Each field is one setting: a CLI flag `--name-with-dashes`, an environment variable
`IMVJOB_NAME`, and a key `name_with_underscores` of the optional YAML config file
(precedence in that order, then the default). Secrets are not fields: they are read from the
environment or from mounted files only (see `read_secret`).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from job.errors import ConfigError
from job.files import NotRegularFile, TooLarge, read_regular


def _opt(default: Any, help: str, *, group: str, choices: tuple[str, ...] = (), multiple: bool = False,
         flag: bool = False) -> Any:
    meta = {"help": help, "group": group, "choices": choices, "multiple": multiple, "flag": flag}
    if isinstance(default, (list, tuple)):
        return field(default=tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    # --- cluster and scope -----------------------------------------------------------------
    kubeconfig: str = _opt("", "Path of a kubeconfig; default: in-cluster ServiceAccount, else ~/.kube/config.",
                           group="cluster")
    context: str = _opt("", "kubeconfig context to use.", group="cluster")
    cluster_name: str = _opt("", "Name of the cluster in reports and mail subjects (default: the context name).",
                             group="cluster")
    namespace: tuple[str, ...] = _opt((), "Only these namespaces (repeatable).", group="cluster", multiple=True)
    include_namespace: tuple[str, ...] = _opt((), "Only namespaces matching these glob patterns (repeatable).",
                                              group="cluster", multiple=True)
    exclude_namespace: tuple[str, ...] = _opt((), "Skip namespaces matching these glob patterns (repeatable).",
                                              group="cluster", multiple=True)
    selector: str = _opt("", "Label selector for pods, e.g. 'app!=debug'.", group="cluster")
    page_size: int = _opt(500, "Pods per LIST page.", group="cluster")
    qps: float = _opt(50.0, "Client-side limit of API requests per second for writes (kubectl's default).",
                      group="cluster")
    write_concurrency: int = _opt(8, "ImageManifestVuln writes in flight at once.", group="cluster")
    lease_namespace: str = _opt("", "Namespace of the Lease that keeps two runs from applying at once "
                                    "(default: the job's own namespace, else 'default').", group="cluster")
    lease_name: str = _opt("imvjob", "Name of that Lease.", group="cluster")
    lease_wait: float = _opt(90.0, "Seconds to wait for a Lease held by another run before giving up; "
                                   "longer than the Lease's 60 s term, so that a retry of a run that was "
                                   "killed while applying waits for its Lease to lapse instead of failing.",
                             group="cluster")
    shard: str = _opt("", "'i/n': this run owns only the manifests whose digest hashes to shard i of n "
                          "(default: JOB_COMPLETION_INDEX of n when --shards is set).", group="cluster")
    shards: int = _opt(0, "Number of shards; with an Indexed Job, each pod takes its JOB_COMPLETION_INDEX.",
                       group="cluster")
    # --- the play --------------------------------------------------------------------------
    check: bool = _opt(False, "Change nothing: server-side dry-run of every write, mail written as .eml files.",
                       group="play", flag=True)
    diff: bool = _opt(False, "Print, per object, what would change or did change.", group="play", flag=True)
    adopt: bool = _opt(False, "Take over ImageManifestVulns without our label (from a CSO install).",
                       group="play", flag=True)
    output: str = _opt("reports", "Folder for reports, summary.json and stage files.", group="play")
    pods: str = _opt("", "Offline: read pods from this file (`kubectl get pods -A -o json`) instead of a cluster.",
                     group="play")
    secscan_dir: str = _opt("", "Offline: read Quay security responses from DIR/sha256.<hex>.json instead of "
                                "asking registries.", group="play")
    log_format: str = _opt("text", "Log lines as text or JSON.", group="play", choices=("text", "json"))
    no_reports: bool = _opt(False, "A frequent run: snapshot, scan and apply only (stage files and scan cache "
                                   "written); no report, summary.json, mail or chat, so that the next full run "
                                   "compares with the last full one. Its metrics are its own (imvjob_frequent_*).",
                            group="play", flag=True)
    progress: str = _opt("auto", "Progress display: auto (on a terminal), always, never.", group="play",
                         choices=("auto", "always", "never"))
    # --- registries ------------------------------------------------------------------------
    registry_concurrency: int = _opt(32, "Registry requests in flight at once, all hosts together.",
                                     group="registry")
    registry_host_concurrency: int = _opt(8, "Registry requests in flight at once to one host.", group="registry")
    connect_timeout: float = _opt(5.0, "Seconds to connect to a registry.", group="registry")
    read_timeout: float = _opt(30.0, "Seconds to wait for a registry's answer.", group="registry")
    max_response_mb: int = _opt(64, "Largest registry response read, in MiB.", group="registry")
    registry_memory_mb: int = _opt(192, "MiB of registry answers held at once, all requests together, counting "
                                        "what decoding them takes (at least --max-response-mb).", group="registry")
    request_deadline: float = _opt(60.0, "Seconds one registry request may take in all, the whole answer read "
                                         "(a registry can send one byte a second: no read timeout ends that).",
                                   group="registry")
    scan_deadline: float = _opt(1800.0, "Seconds the whole scan may take; manifests not answered by then are "
                                        "errors (kept as they were). Keep it well under the CronJob's "
                                        "activeDeadlineSeconds, for apply and report (0: none).", group="registry")
    rescan_after: float = _opt(4.0, "Hours a manifest's scanned report is reused from the scan cache "
                                    "(OUTPUT/scan-cache.json.gz) before its registry is asked again; queued, "
                                    "unsupported and not-found answers are asked again after 15 minutes, failures "
                                    "at the next run (0: ask about every manifest every run).", group="registry")
    retries: int = _opt(4, "Retries of a registry request after a connection error, 5xx or 429.",
                        group="registry")
    retry_budget: float = _opt(60.0, "Seconds one manifest's retries may take in all.", group="registry")
    breaker_threshold: int = _opt(5, "Consecutive failures after which a registry host is given up for the run.",
                                  group="registry")
    extra_certs: str = _opt("", "PEM file or folder of PEM files: CAs added to the system trust store.",
                            group="registry")
    insecure_registry: tuple[str, ...] = _opt((), "Registry host whose TLS certificate is not verified "
                                                  "(repeatable; reported in every run).", group="registry",
                                              multiple=True)
    clair_url: str = _opt("", "Clair v4 base URL, for the hosts of --clair-host.", group="registry")
    clair_host: tuple[str, ...] = _opt((), "Registry host glob whose images Clair scans (repeatable).",
                                       group="registry", multiple=True)
    clair_issuer: str = _opt("quay", "'iss' claim of the JWT sent to Clair.", group="registry")
    clair_psk_file: str = _opt("", "File holding Clair's pre-shared key (base64); or env IMVJOB_CLAIR_PSK.",
                               group="registry")
    harbor_host: tuple[str, ...] = _opt((), "Registry host glob served by Harbor's scan API (repeatable).",
                                        group="registry", multiple=True)
    quay_token_file: str = _opt("", "File holding a Quay API bearer token (needs --quay-token-host); or env "
                                    "IMVJOB_QUAY_TOKEN.", group="registry")
    quay_token_host: tuple[str, ...] = _opt((), "Registry host glob that may receive the Quay API token (repeatable; "
                                                "required with a token: no other host gets it).",
                                            group="registry", multiple=True)
    global_pull_secret: str = _opt("openshift-config/pull-secret",
                                   "'namespace/name' of the cluster-wide pull secret ('' for none).",
                                   group="registry")
    # --- reports and mail ------------------------------------------------------------------
    previous: str = _opt("", "summary.json of the previous run (default: OUTPUT/summary.json before it is "
                             "replaced).", group="report")
    kev_feed: str = _opt("", "CISA Known Exploited Vulnerabilities catalogue (JSON): a file, or an https URL fetched "
                             "with the registries' CAs (--extra-certs). Exploited findings are ranked first.",
                         group="report")
    epss_feed: str = _opt("", "FIRST EPSS scores (CSV, or .csv.gz): a file or an https URL.", group="report")
    feed_max_age: int = _opt(7, "Days after which a feed is reported as stale (it is still used).", group="report")
    sla: str = _opt("Critical=7d,High=30d,Medium=90d", "Days to fix a finding per severity, from the run that "
                                                       "first saw it; a KEV due date when sooner ('' for none).",
                    group="report")
    exceptions: str = _opt("", "YAML file of accepted risks, each with scope, reason, by and until "
                               "(docs/exceptions.md); a bad entry is a configuration error.", group="report")
    vex: tuple[str, ...] = _opt((), "OpenVEX v0.2.0 document, or a folder of them (*.json); repeatable. "
                                    "not_affected and fixed statements accept findings.", group="report",
                                multiple=True)
    exceptions_annotation: str = _opt("", "Namespace annotation whose exception entries its owners may set "
                                          "(e.g. imvjob/exceptions); '' to read none.", group="report")
    expiring_days: int = _opt(14, "Days before its end an exception is listed and mailed as expiring soon.",
                              group="report")
    smtp_host: str = _opt("", "SMTP server; mail is sent only when set.", group="mail")
    smtp_port: int = _opt(0, "SMTP port (default: 465 for tls, 587 for starttls, 25 for none).", group="mail")
    smtp_security: str = _opt("starttls", "starttls, tls (implicit) or none.", group="mail",
                              choices=("starttls", "tls", "none"))
    smtp_user: str = _opt("", "SMTP user; the password comes from IMVJOB_SMTP_PASSWORD or --smtp-password-file.",
                          group="mail")
    smtp_password_file: str = _opt("", "File holding the SMTP password.", group="mail")
    smtp_timeout: float = _opt(30.0, "Seconds for each SMTP operation.", group="mail")
    mail_from: str = _opt("imvjob@localhost", "From address.", group="mail")
    mail_to: tuple[str, ...] = _opt((), "Recipients of the full report (repeatable).", group="mail", multiple=True)
    owner_key: str = _opt("imvjob/notify", "Namespace annotation or label holding owners' addresses "
                                           "(comma-separated).", group="mail")
    mail_min_severity: str = _opt("", "Send only when something at or above this severity is present.",
                                  group="mail", choices=("", "Unknown", "Negligible", "Low", "Medium", "High",
                                                         "Critical", "Defcon1"))
    mail_only_new: bool = _opt(False, "Send only when something is new since the previous run.", group="mail",
                               flag=True)
    attach_html: bool = _opt(False, "Attach the full HTML report too.", group="mail", flag=True)
    report_url: str = _opt("", "Where readers open the report (e.g. https://reports.corp/imvjob/report.html): "
                               "the link in chat messages and mails, which also link each owner to their own "
                               "pages (owners/) on a large cluster.", group="mail")
    # --- metrics and chat (docs/metrics-and-chat.md) ---------------------------------------
    pushgateway_url: str = _opt("", "Prometheus Pushgateway to push the run's metrics to at the end of every "
                                    "run (https://host:9091); credentials from IMVJOB_PUSHGATEWAY_PASSWORD or "
                                    "_TOKEN, or their files.", group="metrics")
    pushgateway_job: str = _opt("imvjob", "'job' of the pushed metrics' grouping key (with 'cluster').",
                                group="metrics")
    pushgateway_user: str = _opt("", "Basic auth user for the Pushgateway (password: IMVJOB_PUSHGATEWAY_PASSWORD "
                                     "or --pushgateway-password-file).", group="metrics")
    pushgateway_password_file: str = _opt("", "File holding the Pushgateway's basic auth password.",
                                          group="metrics")
    pushgateway_token_file: str = _opt("", "File holding a bearer token for the Pushgateway; or env "
                                           "IMVJOB_PUSHGATEWAY_TOKEN.", group="metrics")
    pushgateway_timeout: float = _opt(10.0, "Seconds the push may take in all; a Pushgateway that is down or "
                                            "slow is reported (exit 2), never holds the run.", group="metrics")
    metrics_textfile: str = _opt("", "Also write the metrics in the node-exporter textfile format to this path "
                                     "(e.g. /var/lib/node_exporter/textfile/imvjob.prom).", group="metrics")
    metrics_max_hosts: int = _opt(20, "Registry hosts named in metrics' host label; the others are summed as "
                                      "host=\"other\" (bounds the series).", group="metrics")
    webhook_urls_file: str = _opt("", "The webhooks' Secret, mounted: a folder of one file per key, or a YAML file "
                                      "of key: URL (a URL may start with slack:, teams: or json:); or env "
                                      "IMVJOB_WEBHOOK_URLS. URLs are credentials: never logged.", group="chat")
    webhook_key: str = _opt("imvjob/webhook", "Namespace annotation or label naming its owners' webhook keys "
                                              "(comma-separated).", group="chat")
    webhook_global: tuple[str, ...] = _opt((), "Key of a webhook that gets every namespace's news, e.g. the security "
                                               "team's (repeatable).", group="chat", multiple=True)
    webhook_allowed_host: tuple[str, ...] = _opt((), "Host glob webhooks may post to (repeatable; default any https "
                                                     "host; plain http only to hosts listed here).", group="chat",
                                                 multiple=True)
    webhook_hmac_secret_file: str = _opt("", "File holding a shared secret that signs generic JSON webhooks "
                                             "(X-Imvjob-Signature); or env IMVJOB_WEBHOOK_HMAC_SECRET.",
                                         group="chat")
    webhook_deadline: float = _opt(30.0, "Seconds one webhook may take in all, its retries included.", group="chat")

    @property
    def offline(self) -> bool:
        return bool(self.pods)

    @property
    def output_dir(self) -> Path:
        return Path(self.output)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


SETTING_FIELDS: tuple[dataclasses.Field, ...] = dataclasses.fields(Settings)
SETTING_NAMES = frozenset(f.name for f in SETTING_FIELDS)
#: Secrets: never flags, never in the config file.
SECRET_ENV = ("IMVJOB_SMTP_PASSWORD", "IMVJOB_QUAY_TOKEN", "IMVJOB_CLAIR_PSK", "IMVJOB_PUSHGATEWAY_PASSWORD",
              "IMVJOB_PUSHGATEWAY_TOKEN", "IMVJOB_WEBHOOK_URLS", "IMVJOB_WEBHOOK_HMAC_SECRET")


def envvar(name: str) -> str:
    return "IMVJOB_" + name.upper()


#: A config file is a few dozen settings; anything much larger is a mistake or an attack.
MAX_CONFIG_BYTES = 1 << 20
MAX_SECRET_BYTES = 64 << 10


def load_config_file(path: str) -> dict[str, Any]:
    """Read the YAML config file into {field name: value}; unknown keys, secrets, values of the wrong
    type, anchors and aliases (a few lines of them expand to gigabytes), and files over 1 MiB are errors."""
    import yaml

    text = read_small_file(path, limit=MAX_CONFIG_BYTES, what="config file")
    try:
        data = yaml.load(text, Loader=_loader(yaml)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"config file {path} is nested too deeply") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of settings")
    fields = {f.name: f for f in SETTING_FIELDS}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in ("smtp_password", "quay_token", "clair_psk", "pushgateway_password", "pushgateway_token",
                    "webhook_urls", "webhook_hmac_secret"):
            raise ConfigError(f"config file {path}: {key} is a secret; set it from the environment "
                              f"or a mounted file, not the config file")
        if name not in SETTING_NAMES:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        if value is None:
            continue  # `key:` with no value: the default
        wrong = _wrong_type(fields[name], value)
        if wrong:
            raise ConfigError(f"config file {path}: {name} must be {wrong}, not {_yaml_type(value)}")
        out[name] = value
    return out


def _loader(yaml: Any) -> type:
    """yaml.SafeLoader without anchors and aliases: a config file needs neither."""

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise yaml.composer.ComposerError(None, None, "anchors and aliases (&, *) are not allowed",
                                                  event.start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def _wrong_type(f: dataclasses.Field, value: Any) -> str:
    """What the setting's value must be, when `value` is not that; '' when it is."""
    default = f.default
    if f.metadata["multiple"]:
        ok = isinstance(value, str) or isinstance(value, list) and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value)
        return "" if ok else "a list of strings"
    if isinstance(default, bool):
        return "" if isinstance(value, bool) else "true or false"
    if isinstance(default, (int, float)):
        ok = isinstance(value, (int, float) if isinstance(default, float) else int) and not isinstance(value, bool)
        return "" if ok else "a number"
    return "" if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "a string"


def _yaml_type(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def read_secret(env: str, file: str) -> str:
    """A secret from a mounted file (preferred) or the environment; '' when neither is set. The file
    must be a small regular file (a FIFO would hang the run, /dev/zero fill its memory)."""
    if not file:
        return os.environ.get(env, "").strip()
    return read_small_file(file, limit=MAX_SECRET_BYTES, what="secret file").strip()


def read_small_file(path: str, *, limit: int, what: str) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes; anything else is a ConfigError
    naming it (a FIFO would hang the run, /dev/zero fill its memory)."""
    try:
        data = read_regular(path, max_bytes=limit)
    except NotRegularFile as exc:
        raise ConfigError(f"{what} {path} is not a regular file") from exc
    except TooLarge as exc:
        raise ConfigError(f"{what} {path} is too large (over {limit >> 10} KiB)") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from exc


#: The settings naming a file that holds a secret, and the environment variable standing in for it.
SECRET_FILES = {"smtp_password_file": "IMVJOB_SMTP_PASSWORD", "quay_token_file": "IMVJOB_QUAY_TOKEN",
                "clair_psk_file": "IMVJOB_CLAIR_PSK", "pushgateway_password_file": "IMVJOB_PUSHGATEWAY_PASSWORD",
                "pushgateway_token_file": "IMVJOB_PUSHGATEWAY_TOKEN",
                "webhook_hmac_secret_file": "IMVJOB_WEBHOOK_HMAC_SECRET"}


def check_secret_files(settings: Settings) -> None:
    """Every secret file given can be read: found at the start of a run, not when it is first needed."""
    for name, env in SECRET_FILES.items():
        read_secret(env, getattr(settings, name, ""))


def shard_of(settings: Settings) -> tuple[int, int] | None:
    """(index, count) of this run's shard, from --shard i/n or an Indexed Job's JOB_COMPLETION_INDEX."""
    if settings.shard:
        try:
            index, count = (int(x) for x in settings.shard.split("/", 1))
        except ValueError as exc:
            raise ConfigError(f"--shard must be i/n, e.g. 0/3; got {settings.shard!r}") from exc
    elif settings.shards:
        raw = os.environ.get("JOB_COMPLETION_INDEX", "")
        if not raw.isdigit():
            raise ConfigError("--shards needs JOB_COMPLETION_INDEX (an Indexed Job) or --shard i/n")
        index, count = int(raw), settings.shards
    else:
        return None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"shard {index}/{count} does not exist")
    return (index, count) if count > 1 else None
