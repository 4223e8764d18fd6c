"""What every command shares: options, output, messages, signals and exit statuses.

No format knowledge lives here; commands call the domain packages' plain functions.

* Messages: every line on stderr goes through `say`, which escapes control characters
  (bitsdb.text.one_line): one problem is one line, and no value can forge a line.
* Output: `-o` is checked against the evidence (never an input, never inside an input folder,
  also through links), written to a temporary file beside it and renamed at the end; records
  reach it whole (bitsdb.output.base). An interrupted run keeps its complete records in
  `FILE.partial`, never under the name of a finished output.
* Signals: SIGINT and SIGTERM stop the run cleanly (private temporary folders removed, worker
  processes stopped), one line, exit status 128 + signal (130, 143).
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from pathlib import Path
from typing import Iterable, Iterator

import click

from ..text import one_line

EXIT_INPUT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3
EXIT_PIPE_CLOSED = 141          # 128 + SIGPIPE: the reader of standard output went away

PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path())
OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False),
                      help="Write to FILE instead of stdout (never an input or inside an input folder).")
DEBUG = click.option("--debug", is_flag=True, help="Show Python tracebacks for unexpected errors.")
JOBS = click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                    help="Worker processes for evidence items (default: usable CPU cores).")
PROGRESS = click.option("--progress/--no-progress", default=None,
                        help="Progress line and closing summary on stderr (default: progress only when stderr "
                             "is a terminal).")
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


# ----------------------------------------------------------------------------- messages

def say(text: str, kind: str | None = None) -> None:
    """One line on stderr, `bitsdb: [kind: ]text`, control characters escaped: the one way out."""
    click.echo(f"bitsdb: {kind + ': ' if kind else ''}{one_line(text)}", err=True)


def report_problem(path: str, message: str) -> None:
    say(f"{path}: {message}", "error")


def report_warning(path: str, message: str) -> None:
    say(f"{path}: {message}", "warning")


def usage_error(message: str) -> None:
    """A usage problem: one line, exit status 2 (click's own usage errors print more)."""
    say(message, "error")
    raise click.exceptions.Exit(EXIT_USAGE)


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
        self.fail_line(f"{path}: {message}")

    def fail_line(self, line: str) -> None:
        """A problem already phrased as 'where: what'."""
        self.failures += 1
        self.problems.append(line)
        say(line, "error")

    def unexpected(self, path: str, exc: BaseException) -> None:
        if self.debug:
            import traceback

            traceback.print_exception(exc)
        self.fail(path, f"internal error while reading: {type(exc).__name__}: {exc}"
                  + ("" if self.debug else " (run with --debug for details)"))

    def not_written(self, source: str, what: str, exc: Exception) -> None:
        """A record the writer could not take: named, counted, and the run goes on."""
        if isinstance(exc, OutputError):
            raise exc
        if self.debug:
            import traceback

            traceback.print_exception(exc)
        self.fail(source, f"{what}: not written ({type(exc).__name__}: {exc})")


# ----------------------------------------------------------------------------- signals

class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwind (finally blocks remove temporary folders), then exit 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.note = ""                        # what was kept, said in the closing line

    @property
    def status(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class _SignalState:
    """Signals wait while a record is being written (so the output never ends in half a record) and once
    the run is stopping (so clean-up is not cut short)."""

    critical = 0
    pending: int | None = None
    stopping = False


def _on_signal(signum: int, _frame) -> None:
    if _SignalState.critical or _SignalState.stopping:
        _SignalState.pending = _SignalState.pending or signum
        return
    _SignalState.stopping = True
    raise Interrupted(signum)


class _Deferred:
    """`with DEFER_SIGNALS:` a signal arriving inside waits for the block to end."""

    def __enter__(self) -> None:
        _SignalState.critical += 1

    def __exit__(self, *exc) -> None:
        _SignalState.critical -= 1
        if not _SignalState.critical and _SignalState.pending and not _SignalState.stopping:
            _SignalState.stopping = True
            raise Interrupted(_SignalState.pending)


DEFER_SIGNALS = _Deferred()


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM raise Interrupted in the main process (worker processes reset them)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)


# ----------------------------------------------------------------------------- output

class OutputError(Exception):
    """The output itself cannot be written (disk full, permissions): the run stops."""


def same_file(a: Path, b: Path) -> bool:
    """The two paths name one file (through links), or resolve to one path."""
    try:
        return (a.exists() and b.exists() and os.path.samefile(a, b)) or a.resolve() == b.resolve()
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    """`path` lies in `folder` at any depth (through links, and on case-insensitive file systems)."""
    for parent in path.parents:
        try:
            if os.path.samefile(parent, folder):
                return True
        except OSError:
            continue
    return False


def output_problem(target: Path, inputs: Iterable[str]) -> str | None:
    """Why writing `target` (or its `.partial`) could touch evidence, or None.

    Refused: an input itself, anything inside an input folder or evidence tree (any depth, through
    links), and the BITS files (store, logs, checkpoint) beside an input file, which `--recover` reads.
    """
    from ..sources.detect import role_of

    real = Path(os.path.realpath(target))
    for item in inputs:
        given = Path(item)
        if not given.exists():
            continue
        evidence = Path(os.path.realpath(given))
        for candidate in (real, real.with_name(real.name + ".partial")):
            if same_file(candidate, given):
                return f"{item} is one of the inputs: evidence is never overwritten"
            if evidence.is_dir() and _inside(candidate, evidence):
                return f"it lies inside the evidence folder {item}: nothing is written into evidence"
            if evidence.is_file() and role_of(candidate.name) and same_file(candidate.parent, evidence.parent):
                return f"it would replace BITS evidence beside the input {item}"
    return None


class Output:
    """Where a command's records go: stdout, or a temporary file beside FILE, renamed to FILE at the end.

    `write` takes one whole record; it is written completely (signals wait) or not at all.
    """

    def __init__(self, target: str | None, inputs: Iterable[str]) -> None:
        self.target: Path | None = None
        self.temp: Path | None = None
        self.name = "standard output"        # what messages call it
        if target is None or target == "-":
            if sys.stdout is None:               # started with standard output closed (`>&-`)
                usage_error("standard output is closed: give -o FILE")
            sys.stdout.flush()
            self.file = sys.stdout.buffer
            return
        path, self.name = Path(target), target
        problem = output_problem(path, inputs)
        if problem:
            usage_error(f"{target}: refusing to write the output here: {problem}")
        real = Path(os.path.realpath(path))
        if real.exists() and not real.is_file():
            if real.is_dir():
                usage_error(f"{target}: is a folder")
            self.file = self._open(real, "ab")       # a device or pipe (/dev/null): written in place
            return
        if not real.parent.is_dir():
            usage_error(f"{target}: folder {real.parent} does not exist")
        import tempfile

        try:
            fd, temp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name[:64]}.", suffix=".bitsdb-tmp")
        except OSError as exc:
            usage_error(f"{target}: cannot write ({exc.strerror or exc})")
        self.target, self.temp = real, Path(temp)
        self.mode = (real.stat().st_mode & 0o777) if real.exists() else (0o666 & ~_umask())
        self.file = os.fdopen(fd, "wb")

    @staticmethod
    def _open(path: Path, mode: str):
        try:
            return open(path, mode)
        except OSError as exc:
            usage_error(f"{path}: cannot write ({exc.strerror or exc})")

    def write(self, text: str) -> None:
        data = text.encode("utf-8")        # strict: a record that is not valid UTF-8 is refused whole
        try:
            with DEFER_SIGNALS:
                self.file.write(data)
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        with DEFER_SIGNALS:
            try:
                self.file.flush()
            except OSError as exc:
                raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> BaseException:
        """The output cannot take more. The reader of a pipe went away (`bitsdb parse … | head`): end
        quietly as a program killed by SIGPIPE would (status 141), not with an error per record."""
        if self.target is None and isinstance(exc, BrokenPipeError):
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no error at exit either
            except OSError:
                pass
            return SystemExit(EXIT_PIPE_CLOSED)
        return OutputError(f"{self.name}: cannot write ({exc.strerror or exc})")

    def finish(self) -> None:
        """Everything is written: the temporary file becomes FILE."""
        self.flush()
        if self.temp is None:
            return
        with DEFER_SIGNALS:
            self.file.close()
            os.chmod(self.temp, self.mode)
            os.replace(self.temp, self.target)
            self.temp = None

    def abandon(self, records: int | None = None) -> str:
        """The run did not finish: `records` complete records (if any) go to FILE.partial, never to FILE;
        with None (a failure) nothing is left. Returns what happened, for the closing line."""
        try:
            self.flush()
        except OutputError:
            records = None
        if self.temp is None:
            return f"{records} complete record(s) written" if records else ""
        with DEFER_SIGNALS:
            self.file.close()
            if records:
                partial = self.target.with_name(self.target.name + ".partial")
                os.chmod(self.temp, self.mode)
                os.replace(self.temp, partial)
                self.temp = None
                return f"{records} complete record(s) kept in {partial}"
            self.temp.unlink(missing_ok=True)
            self.temp = None
        return f"{self.target} was not written"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def open_output(output: str | None, inputs: tuple[str, ...]) -> Output:
    return Output(output, inputs)


class Finishing:
    """`with Finishing(output, writer):` close the writer and rename the output when the block ends
    normally; on an interruption keep the complete records (FILE.partial) and say so; on a failure of
    the output itself remove the temporary file and exit 1."""

    def __init__(self, output: Output, writer=None) -> None:
        self.output, self.writer = output, writer

    def __enter__(self) -> "Finishing":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            try:
                if self.writer is not None:
                    self.writer.close()
                self.output.finish()
                return False
            except OutputError as failed:    # a small output is written only now, when it is flushed
                exc = failed
        if isinstance(exc, Interrupted):
            records = 0
            if self.writer is not None:
                records = self.writer.records
                try:
                    self.writer.close()          # e.g. the closing bracket of a JSON array
                except Exception:  # noqa: BLE001 - the records already written are what matters
                    pass
            exc.note = self.output.abandon(records)
            return False
        self.output.abandon(None)
        if isinstance(exc, OutputError):
            say(str(exc), "error")
            sys.exit(EXIT_INPUT_ERROR)
        return False


def load_rules_or_exit(rule_paths: Iterable[str]):
    """The built-in rules plus the user's; a file that does not load ends the run (status 2)."""
    from ..rules.engine import RuleError, load_rules

    try:
        return load_rules(list(rule_paths))
    except RuleError as exc:
        usage_error(str(exc))


def warn_relative(paths: Iterable[str], scheduler: str | None) -> None:
    """Cluster workers open evidence by path, each in its own working directory."""
    if scheduler and any(not os.path.isabs(path) for path in paths):
        say("--scheduler: relative paths are opened by each worker in its own working directory; give "
            "absolute paths on shared storage (docs/CLUSTER.md)", "warning")


def open_pool_or_exit(jobs: int | None, scheduler: str | None, tasks: int | None = None):
    """The worker pool for a command; an unusable --scheduler ends the run (status 2, one line)."""
    from ..evidence.cluster import PoolError, open_pool

    try:
        return open_pool(jobs, scheduler, tasks)
    except PoolError as exc:
        usage_error(str(exc))


# ----------------------------------------------------------------------------- reading and writing

def readable_results(paths: tuple[str, ...], run: Run, *, recover: bool = False, jobs: int | None = None,
                     progress: bool | None = None, scheduler: str | None = None,
                     side: dict | None = None,
                     items: list | None = None) -> Iterator:
    """(source, SourceResult) for every BITS store found in PATHS (files, folders, collections, zips,
    disk images), in a fixed order; problems are reported on stderr and counted, never fatal.

    The closing summary is printed when several items were read and one failed or stderr is a
    terminal, or when --progress was given; a single item's problem is its one line. `items`, when
    given, receives each evidence item's ItemResult (counts only) once it is read.
    """
    import time
    from contextlib import closing

    from ..evidence import BatchReport, iter_batch
    from ..evidence.cluster import PoolError
    from ..evidence.copyout import extraction_limits

    try:
        extraction_limits()
    except ValueError as exc:
        usage_error(str(exc))
    warn_relative(paths, scheduler)
    started, workers, events = time.perf_counter(), [], []
    items = [] if items is None else items
    with closing(iter_batch(paths, jobs=jobs, progress=progress, workers_used=workers, recover=recover,
                            scheduler=scheduler, events=events)) as batch:
        try:
            first = next(batch, None)
        except PoolError as exc:
            usage_error(str(exc))
        yield from _items(itertools.chain([first] if first is not None else [], batch), run, items, side)
    chatty = progress if progress is not None else sys.stderr.isatty()
    if progress or events or (len(items) > 1 and (run.failures or chatty)):
        report = BatchReport(items=items, jobs=workers[0] if workers else 1, seconds=time.perf_counter() - started,
                             events=events)
        for line in report.summary_lines():
            click.echo(one_line(line), err=True)


def _items(batch, run: Run, items: list, side: dict | None = None) -> Iterator:
    """Report each item's problems and hand on its results (then drop them: the summary needs counts);
    event logs and service facts go into `side` for the join."""
    for item in batch:
        for warning in item.warnings:
            say(warning, "warning")
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


def write_records(source: str, writer, run: Run, jobs, orphan_files=()) -> None:
    """Write a source's records; one that cannot be written is reported (file and record) and skipped."""
    for index, job in enumerate(jobs):
        try:
            writer.write_job(job)
        except Exception as exc:  # noqa: BLE001 - one record never stops a batch
            run.not_written(source, f"job {job.job_id or '?'} (record {index})", exc)
    for index, jf in enumerate(orphan_files):
        try:
            writer.write_orphan(jf)
        except Exception as exc:  # noqa: BLE001
            run.not_written(source, f"file {jf.file_id or '?'} (orphan record {index})", exc)


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


def store_as_of(result, as_of: int | None = None) -> int | None:
    """The time the age rules count a store's jobs to: --as-of, else the newest time that store records
    (never this machine's clock). parse --with-findings, scan and report agree through this."""
    if as_of is not None:
        return as_of
    from ..rules.engine import evidence_time

    return evidence_time(result.jobs)


def logs_as_of(picture, as_of: int | None = None) -> int | None:
    """The same for log-only jobs and the records of event logs and hives: the logs' newest time."""
    return as_of if as_of is not None else picture.latest_time()


def write_inputs(paths: tuple[str, ...], writer, run: Run, **options) -> None:
    """Read every input into `writer`; problems are counted, never fatal."""
    results, picture = read_picture(paths, run, **options)
    for source, result in results:
        if writer.rules is not None:
            writer.as_of = store_as_of(result)
        writer.begin_source(source, result.kind, len(result.jobs), len(result.orphan_files))
        write_records(source, writer, run, result.jobs, result.orphan_files)
    if picture is not None:
        writer.as_of = logs_as_of(picture)
        writer.begin_source(LOG_SECTION, "evtx", len(picture.log_jobs), 0)
        write_records(LOG_SECTION, writer, run, picture.log_jobs)
        for index, (record_type, record) in enumerate(picture_records(picture)):
            try:
                writer.write_record(record_type, record, writer.verdict_of_record(record_type, record))
            except Exception as exc:  # noqa: BLE001 - one record never stops a batch
                run.not_written(LOG_SECTION, f"{record_type} (record {index})", exc)


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

    rules = load_rules_or_exit(rule_paths) if findings else None
    run = Run(debug)
    out = open_output(output, paths)
    writer = make_writer(fmt, out, timeline=timeline, rules=rules)
    with Finishing(out, writer):
        write_inputs(paths, writer, run, **options)
    if run.failures or run.damaged:
        sys.exit(EXIT_INPUT_ERROR)
