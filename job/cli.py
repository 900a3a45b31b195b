"""The command line: `imvjob run` for the whole play, and each stage on its own.

Every setting of job.settings.Settings is a flag here, an IMVJOB_* environment variable, and a
key of the --config YAML file. Domain errors become one line and an exit status only here.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator

import click

from job import __version__
from job.errors import ImvjobError
from job.log import RunLog
from job.settings import SETTING_FIELDS, Settings, check_secret_files, envvar, load_config_file

EXIT_OK, EXIT_FATAL, EXIT_ERRORS = 0, 1, 2


def _setting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add one click option per Settings field, in reverse so --help lists them in order."""
    for f in reversed(SETTING_FIELDS):
        meta = f.metadata
        flag = "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"envvar": envvar(f.name), "show_envvar": True, "help": meta["help"],
                                  "show_default": bool(f.default) or f.default == 0}
        if meta["flag"]:
            kwargs.update(is_flag=True, default=False)
        elif meta["multiple"]:
            # A repeatable flag; from the environment, a comma- or space-separated list.
            kwargs.update(multiple=True, default=(), type=_ListItem())
        else:
            kwargs["default"] = f.default
            kwargs["type"] = click.Choice(meta["choices"]) if meta["choices"] else type(f.default)
        names = ("-o", flag) if f.name == "output" else (flag,)
        func = click.option(*names, f.name, **kwargs)(func)
    func = click.option("--config", "config", envvar="IMVJOB_CONFIG", show_envvar=True,
                        type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
                        callback=_load_config, help="YAML file of settings (keys as the flags, with _).")(func)
    return func


class _ListItem(click.ParamType):
    name = "text"

    def split_envvar_value(self, rv: str) -> list[str]:
        return [item for item in rv.replace(",", " ").split() if item]


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if not value:
        return
    try:
        values = load_config_file(value)
    except ImvjobError as exc:
        raise click.BadParameter(str(exc)) from exc
    multiple = {f.name for f in SETTING_FIELDS if f.metadata["multiple"]}
    for key, item in values.items():
        if isinstance(item, list):
            values[key] = tuple(str(i) for i in item)
        elif key in multiple:  # one string: a comma- or space-separated list, as from the environment
            values[key] = tuple(_ListItem().split_envvar_value(str(item)))
    ctx.default_map = {**(ctx.default_map or {}), **values}


def _settings(kwargs: dict[str, Any]) -> Settings:
    return Settings(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()})


def _run_stage(stage: Callable[[Settings, RunLog], int], kwargs: dict[str, Any]) -> None:
    settings = _settings(kwargs)
    log = RunLog(fmt=settings.log_format, progress=settings.progress)
    try:
        _check_at_start(settings)
        code = stage(settings, log)
    except ImvjobError as exc:
        log.error(str(exc))
        code = exc.exit_code
    except OSError as exc:  # an output folder that cannot be written, a full disk
        where = f" {exc.filename}" if exc.filename else ""
        log.error(f"cannot write{where}: {exc.strerror or exc}")
        code = EXIT_FATAL
    except KeyboardInterrupt:
        log.error("interrupted")
        code = 130
    sys.exit(code)


def _check_at_start(settings: Settings) -> None:
    """Mistakes found before any work is done: a selector the API server would refuse (offline it
    would silently select nothing), a secret file that cannot be read (else found only at mail time),
    an exceptions file with a bad entry."""
    from job.accepted import read_exceptions
    from job.pipeline import sla_policy
    from job.labels import parse_selector

    if settings.selector:
        parse_selector(settings.selector)
    sla_policy(settings)
    check_secret_files(settings)
    read_exceptions(settings.exceptions)


@contextlib.contextmanager
def _usage_errors_are_fatal() -> Iterator[None]:
    """click exits 2 on a usage error (an unknown flag, a bad value, a config file refused); this
    job's 2 means "completed with errors", so they exit 1, as any other configuration error."""
    try:
        yield
    except click.UsageError as exc:
        exc.exit_code = EXIT_FATAL
        raise


class _Group(click.Group):
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _usage_errors_are_fatal():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_errors_are_fatal():
            return super().invoke(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="imvjob")
def cli() -> None:
    """imvjob: find the vulnerabilities of every image running in a cluster, keep ImageManifestVuln
    objects in step (as the Container Security Operator does), and report them to the people who
    must act.

    Exit status: 0 the play completed (images a registry could not scan are listed with their
    reason); 2 completed with errors of the job's own making or reach (objects of the images
    concerned kept as they were); 1 could not do its work at all.
    """


#: Subcommands: the whole play, and each stage on its own (name, command function in job.pipeline, help).
COMMANDS = (
    ("run", "run_play", "The whole play: snapshot, scan, apply, report, notify."),
    ("snapshot", "run_snapshot", "List running pods into OUTPUT/snapshot.json."),
    ("scan", "run_scan", "Ask the registries about OUTPUT/snapshot.json's manifests; writes OUTPUT/scan.json."),
    ("apply", "run_apply", "Diff-apply ImageManifestVulns from OUTPUT/snapshot.json and OUTPUT/scan.json."),
    ("report", "run_report", "Render report.html, report.xlsx and summary.json from the stage files in OUTPUT."),
    ("notify", "run_notify", "Mail the reports in OUTPUT to the global list and the namespaces' owners."),
    ("merge", "run_merge", "Sharded runs: one report and mail from every shard's files in OUTPUT/shard-*/."),
)


def _command(name: str, function: str, help_text: str) -> click.Command:
    def command(**kwargs: Any) -> None:
        from job import pipeline  # imported on use: `--help` stays fast

        _run_stage(getattr(pipeline, function), kwargs)

    command.__name__ = name
    return cli.command(name=name, help=help_text)(_setting_options(command))


for _name, _function, _help in COMMANDS:
    _command(_name, _function, _help)


def main() -> None:
    cli(prog_name="imvjob")


if __name__ == "__main__":
    main()
