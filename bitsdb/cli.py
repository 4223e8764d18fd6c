"""Command line: argument handling and wiring only; no format knowledge lives here.

Exit status: 0 all inputs read, 1 at least one input could not be read (the others
are still fully processed), 2 usage error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import __version__
from .output import RECORD_FORMATS, TIMELINE_FORMATS

EXIT_INPUT_ERROR = 1


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def report_problem(path: str, message: str) -> None:
    click.echo(f"bitsdb: error: {path}: {message}", err=True)


def report_warning(path: str, message: str) -> None:
    click.echo(f"bitsdb: warning: {path}: {message}", err=True)


class Run:
    """Per-invocation state shared by commands: debug mode and the failure count."""

    def __init__(self, debug: bool) -> None:
        from .sources.result import DEBUG_ENV

        self.debug = debug
        self.failures = 0
        if debug:
            os.environ[DEBUG_ENV] = "1"      # worker processes inherit it

    def fail(self, path: str, message: str) -> None:
        self.failures += 1
        report_problem(path, message)

    def fail_line(self, line: str) -> None:
        """A problem already phrased as 'where: what'."""
        self.failures += 1
        click.echo(f"bitsdb: error: {line}", err=True)

    def unexpected(self, path: str, exc: BaseException) -> None:
        if self.debug:
            import traceback

            traceback.print_exception(exc)
        self.fail(path, f"internal error while reading: {type(exc).__name__}: {exc}"
                  + ("" if self.debug else " (run with --debug for details)"))


def open_output(output: str | None, inputs: tuple[str, ...]):
    if output is None or output == "-":
        return sys.stdout
    target = Path(output)
    for item in inputs:
        if _same_file(target, Path(item)):
            raise click.UsageError(f"output {output} is one of the inputs: evidence is never overwritten")
    return open(target, "w", encoding="utf-8", newline="")


class LazyGroup(click.Group):
    """Commands from other packages are imported only when used: `bitsdb parse` must not pay for
    the rules engine or the carver at start-up."""

    lazy_commands = {
        "scan": ("bitsdb.rules.cli", "scan_command"),
        "rules": ("bitsdb.rules.cli", "rules_group"),
        "carve": ("bitsdb.carve.cli", "carve_command"),
        "forge": ("bitsdb.forge.cli", "forge_command"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy_commands and name not in self.commands:
            import importlib

            module, attr = self.lazy_commands[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)


def close_output(stream) -> None:
    """Flush what was written; close it unless it is stdout."""
    stream.flush()
    if stream is not sys.stdout:
        stream.close()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bitsdb")
def cli() -> None:
    """Offline forensic parser for the Windows BITS job database (MITRE ATT&CK T1197).

    Reads qmgr.db (Windows 10/11, Server 2016+), legacy qmgr0.dat/qmgr1.dat state
    files (Windows XP-8.1, early Windows 10), raw Jobs/Files records and folders
    holding them. Evidence is opened read-only and never modified.
    """


def readable_results(paths: tuple[str, ...], run: Run, *, recover: bool = False, jobs: int | None = None,
                     progress: bool | None = None):
    """(source, SourceResult) for every BITS store found in PATHS (files, folders, collections, zips,
    disk images), in a fixed order; problems are reported on stderr and counted, never fatal."""
    import time

    from .evidence import BatchReport, iter_batch

    started, items, workers = time.perf_counter(), [], []
    for item in iter_batch(paths, jobs=jobs, progress=progress, workers_used=workers, recover=recover):
        for warning in item.warnings:
            click.echo(f"bitsdb: warning: {warning}", err=True)
        for result in item.results:
            for warning in result.warnings:
                report_warning(result.path, warning)
            yield result.path, result
        for failure in item.failures:
            run.fail_line(failure)
        item.results = []            # written: the summary only needs the counts
        items.append(item)
    chatty = progress if progress is not None else sys.stderr.isatty()
    if run.failures or (chatty and len(items) > 1):
        report = BatchReport(items=items, jobs=workers[0] if workers else 1, seconds=time.perf_counter() - started)
        click.echo(report.summary(), err=True)


def write_inputs(paths: tuple[str, ...], writer, run: Run, **options) -> None:
    """Read every input into `writer`; problems are counted, never fatal."""
    for item, result in readable_results(paths, run, **options):
        writer.begin_source(item, result.kind, len(result.jobs), len(result.orphan_files))
        for job in result.jobs:
            writer.write_job(job)
        for jf in result.orphan_files:
            writer.write_orphan(jf)


def run_command(paths: tuple[str, ...], fmt: str, output: str | None, debug: bool, *, timeline: bool,
                findings: bool, rule_paths: tuple[str, ...], **options) -> None:
    from .output import make_writer

    findings_for = None
    if findings:
        from .rules.cli import load_rules_or_exit

        findings_for = load_rules_or_exit(rule_paths).evaluate
    run = Run(debug)
    stream = open_output(output, paths)
    writer = make_writer(fmt, stream, timeline=timeline, findings_for=findings_for)
    try:
        write_inputs(paths, writer, run, **options)
    finally:
        writer.close()
        close_output(stream)
    if run.failures:
        sys.exit(EXIT_INPUT_ERROR)


PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path())
OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
DEBUG = click.option("--debug", is_flag=True, help="Show Python tracebacks for unexpected errors.")
JOBS = click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                    help="Worker processes for evidence items (default: usable CPU cores).")
PROGRESS = click.option("--progress/--no-progress", default=None,
                        help="Progress line on stderr (default: only when stderr is a terminal).")
RULES = click.option("--rules", "rule_paths", multiple=True, type=click.Path(),
                     help="Extra rule file or folder of .yaml files (repeatable); may add rules, lists and "
                          "allow-list entries.")
RECOVER = click.option("--recover", is_flag=True,
                       help="Also carve deleted and historical job versions from the database, its ESE logs "
                            "and state-file slack (marked recovered: true).")


@cli.command("parse")
@PATHS
@click.option("-f", "--format", "fmt", type=click.Choice(RECORD_FORMATS), default="jsonl",
              show_default=True, help="Output format.")
@OUTPUT
@RECOVER
@click.option("--with-findings", is_flag=True,
              help="Run the detection rules and attach each job's findings to its record.")
@RULES
@JOBS
@PROGRESS
@DEBUG
def parse_command(paths: tuple[str, ...], fmt: str, output: str | None, recover: bool, with_findings: bool,
                  rule_paths: tuple[str, ...], jobs: int | None, progress: bool | None, debug: bool) -> None:
    """Decode every job (with its files) in PATHS.

    PATHS may be qmgr.db / qmgr0.dat / qmgr1.dat files, raw records, folders and
    KAPE/Velociraptor collections, zip triage packages, or disk images (raw, E01, VMDK,
    VHD/VHDX, qcow2; every partition and shadow copy; needs the `images` extra).

    \b
    Formats: jsonl/json  one object per job, files nested, every field;
             csv         one row per job x file (Timeline Explorer style, UTC);
             table       a readable summary.
    Exit status: 0 ok, 1 an input could not be read (others still processed), 2 usage.
    """
    run_command(paths, fmt, output, debug, timeline=False, recover=recover, findings=with_findings,
                rule_paths=rule_paths, jobs=jobs, progress=progress)


@cli.command("timeline")
@PATHS
@click.option("-f", "--format", "fmt", type=click.Choice(TIMELINE_FORMATS), default="timesketch", show_default=True, help="Timeline format.")
@OUTPUT
@RECOVER
@click.option("--findings/--no-findings", default=True, show_default=True,
              help="Tag events with the rule ids of their job's findings.")
@RULES
@JOBS
@PROGRESS
@DEBUG
def timeline_command(paths: tuple[str, ...], fmt: str, output: str | None, recover: bool, findings: bool,
                     rule_paths: tuple[str, ...], jobs: int | None, progress: bool | None, debug: bool) -> None:
    """One event per meaningful timestamp of every job and file in PATHS.

    \b
    Formats: timesketch      JSONL for Timesketch (message, datetime, timestamp_desc, ...);
             timesketch-csv  the same as CSV;
             bodyfile        mactime 3.x body file (mactime -b FILE -d -y -z UTC 1990-01-01..2100-12-31);
             ecs             Elastic Common Schema 9.4.0 NDJSON;
             csv             long-form CSV for Timeline Explorer (Timestamp, TimestampDescription).
    Exit status as for parse.
    """
    run_command(paths, fmt, output, debug, timeline=True, recover=recover, findings=findings,
                rule_paths=rule_paths, jobs=jobs, progress=progress)


def main() -> None:
    try:
        cli(prog_name="bitsdb")
    except Exception as exc:  # noqa: BLE001 - no traceback reaches a user who did not ask for one
        if "--debug" in sys.argv:
            raise
        click.echo(f"bitsdb: error: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
                   err=True)
        sys.exit(EXIT_INPUT_ERROR)
