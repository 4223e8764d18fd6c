"""What every command shares: options, output opening and closing, messages and exit statuses.

No format knowledge lives here; commands call the domain packages' plain functions.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import IO, Iterable, Iterator

import click

EXIT_INPUT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3

PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path())
OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
DEBUG = click.option("--debug", is_flag=True, help="Show Python tracebacks for unexpected errors.")
JOBS = click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                    help="Worker processes for evidence items (default: usable CPU cores).")
PROGRESS = click.option("--progress/--no-progress", default=None,
                        help="Progress line on stderr (default: only when stderr is a terminal).")
SCHEDULER = click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
                         help="Run the work on this Dask scheduler's workers instead of local processes "
                              "(needs the 'cluster' extra; workers read evidence at the same paths: "
                              "docs/CLUSTER.md).")
RULES = click.option("--rules", "rule_paths", multiple=True, type=click.Path(),
                     help="Extra rule file or folder of .yaml files (repeatable); may add rules, lists and "
                          "allow-list entries.")
RECOVER = click.option("--recover", is_flag=True,
                       help="Also carve deleted and historical job versions from the database, its ESE logs "
                            "and state-file slack (marked recovered: true).")


def report_problem(path: str, message: str) -> None:
    click.echo(f"bitsdb: error: {path}: {message}", err=True)


def report_warning(path: str, message: str) -> None:
    click.echo(f"bitsdb: warning: {path}: {message}", err=True)


class Run:
    """Per-invocation state shared by commands: debug mode and the failure count."""

    def __init__(self, debug: bool) -> None:
        from ..sources.result import DEBUG_ENV

        self.debug = debug
        self.failures = 0
        self.damaged = 0                     # inputs read with partial records (exit status 1 too)
        self.problems: list[str] = []        # each failure line, for outputs that show them (report)
        if debug:
            os.environ[DEBUG_ENV] = "1"      # worker processes inherit it

    def fail(self, path: str, message: str) -> None:
        self.failures += 1
        self.problems.append(f"{path}: {message}")
        report_problem(path, message)

    def fail_line(self, line: str) -> None:
        """A problem already phrased as 'where: what'."""
        self.failures += 1
        self.problems.append(line)
        click.echo(f"bitsdb: error: {line}", err=True)

    def unexpected(self, path: str, exc: BaseException) -> None:
        if self.debug:
            import traceback

            traceback.print_exception(exc)
        self.fail(path, f"internal error while reading: {type(exc).__name__}: {exc}"
                  + ("" if self.debug else " (run with --debug for details)"))


def same_file(a: Path, b: Path) -> bool:
    """The two paths name one file (through links), or resolve to one path."""
    try:
        return (a.exists() and b.exists() and os.path.samefile(a, b)) or a.resolve() == b.resolve()
    except OSError:
        return False


def open_output(output: str | None, inputs: tuple[str, ...]) -> IO[str]:
    if output is None or output == "-":
        return sys.stdout
    target = Path(output)
    for item in inputs:
        if same_file(target, Path(item)):
            raise click.UsageError(f"output {output} is one of the inputs: evidence is never overwritten")
    return open(target, "w", encoding="utf-8", newline="")


def close_output(stream: IO[str]) -> None:
    """Flush what was written; close it unless it is stdout."""
    stream.flush()
    if stream is not sys.stdout:
        stream.close()


def load_rules_or_exit(rule_paths: Iterable[str]):
    """The built-in rules plus the user's; a file that does not load ends the run (status 2)."""
    from ..rules.engine import RuleError, load_rules

    try:
        return load_rules(list(rule_paths))
    except RuleError as exc:
        click.echo(f"bitsdb: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def warn_relative(paths: Iterable[str], scheduler: str | None) -> None:
    """Cluster workers open evidence by path, each in its own working directory."""
    if scheduler and any(not os.path.isabs(path) for path in paths):
        click.echo("bitsdb: warning: --scheduler: relative paths are opened by each worker in its own working "
                   "directory; give absolute paths on shared storage (docs/CLUSTER.md)", err=True)


def open_pool_or_exit(jobs: int | None, scheduler: str | None, tasks: int | None = None):
    """The worker pool for a command; an unusable --scheduler ends the run (status 2, one line)."""
    from ..evidence.cluster import PoolError, open_pool

    try:
        return open_pool(jobs, scheduler, tasks)
    except PoolError as exc:
        click.echo(f"bitsdb: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def readable_results(paths: tuple[str, ...], run: Run, *, recover: bool = False, jobs: int | None = None,
                     progress: bool | None = None, scheduler: str | None = None,
                     side: dict | None = None,
                     items: list | None = None) -> Iterator:
    """(source, SourceResult) for every BITS store found in PATHS (files, folders, collections, zips,
    disk images), in a fixed order; problems are reported on stderr and counted, never fatal.
    `items`, when given, receives each evidence item's ItemResult (counts only) once it is read."""
    import time

    from ..evidence import BatchReport, iter_batch
    from ..evidence.cluster import PoolError

    warn_relative(paths, scheduler)
    started, workers, events = time.perf_counter(), [], []
    items = [] if items is None else items
    batch = iter_batch(paths, jobs=jobs, progress=progress, workers_used=workers, recover=recover,
                       scheduler=scheduler, events=events)
    try:
        first = next(batch, None)
    except PoolError as exc:
        click.echo(f"bitsdb: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    yield from _items(itertools.chain([first] if first is not None else [], batch), run, items, side)
    chatty = progress if progress is not None else sys.stderr.isatty()
    if run.failures or events or (chatty and len(items) > 1):
        report = BatchReport(items=items, jobs=workers[0] if workers else 1, seconds=time.perf_counter() - started,
                             events=events)
        click.echo(report.summary(), err=True)


def _items(batch, run: Run, items: list, side: dict | None = None) -> Iterator:
    """Report each item's problems and hand on its results (then drop them: the summary needs counts);
    event logs and service facts go into `side` for the join."""
    for item in batch:
        for warning in item.warnings:
            click.echo(f"bitsdb: warning: {warning}", err=True)
        for result in item.results:
            for warning in result.warnings:
                report_warning(result.path, warning)
            if result.damaged:
                run.damaged += 1            # partial records: warnings only, yet the input is damaged
            yield result.path, result
        if side is not None:
            side.setdefault("logs", []).extend(item.logs)
            side.setdefault("services", []).extend(item.services)
        item.logs = []
        for failure in item.failures:
            run.fail_line(failure)
        item.results = []            # written: the summary only needs the counts
        items.append(item)


def read_picture(paths: tuple[str, ...], run: Run, **options):
    """(store results, Picture): everything read, database jobs joined to the event logs and process
    evidence (bitsdb.history), in a fixed order."""
    side: dict = {}
    results = list(readable_results(paths, run, side=side, **options))
    if not side.get("logs") and not side.get("services"):
        return results, None           # database files only: the join machinery is not even imported
    from ..history import join

    picture = join((job for _, result in results for job in result.jobs), side["logs"], side["services"])
    return results, picture


#: The section of the output that holds what the event logs and hives add.
LOG_SECTION = "event logs and registry hives"


def write_inputs(paths: tuple[str, ...], writer, run: Run, **options) -> None:
    """Read every input into `writer`; problems are counted, never fatal."""
    results, picture = read_picture(paths, run, **options)
    for item, result in results:
        writer.begin_source(item, result.kind, len(result.jobs), len(result.orphan_files))
        for job in result.jobs:
            writer.write_job(job)
        for jf in result.orphan_files:
            writer.write_orphan(jf)
    if picture is not None:
        writer.begin_source(LOG_SECTION, "evtx", len(picture.log_jobs), 0)
        for job in picture.log_jobs:
            writer.write_job(job)
        for record_type, record in picture_records(picture):
            writer.write_record(record_type, record, writer.findings_of_record(record_type, record))


def picture_records(picture) -> Iterator[tuple[str, object]]:
    """The records that are not jobs, in a fixed order: service configurations, what the logs of each host
    cover, processes, log events."""
    if picture is None:
        return
    for service in picture.services:
        yield "service", service
    for entry in picture.coverage:
        yield "log_coverage", entry
    for process in picture.processes:
        yield "process", process
    for event in picture.log_events:
        yield "log_event", event


def run_command(paths: tuple[str, ...], fmt: str, output: str | None, debug: bool, *, timeline: bool,
                findings: bool, rule_paths: tuple[str, ...], **options) -> None:
    """parse and timeline: read every input and write its records (or events) in `fmt`."""
    from ..output import make_writer

    findings_for = load_rules_or_exit(rule_paths).evaluate if findings else None
    run = Run(debug)
    stream = open_output(output, paths)
    writer = make_writer(fmt, stream, timeline=timeline, findings_for=findings_for)
    try:
        write_inputs(paths, writer, run, **options)
    finally:
        writer.close()
        close_output(stream)
    if run.failures or run.damaged:
        sys.exit(EXIT_INPUT_ERROR)
