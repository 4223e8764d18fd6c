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
        self.debug = debug
        self.failures = 0

    def fail(self, path: str, message: str) -> None:
        self.failures += 1
        report_problem(path, message)

    def unexpected(self, path: str, exc: BaseException) -> None:
        if self.debug:
            import traceback

            traceback.print_exc()
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bitsdb")
def cli() -> None:
    """Offline forensic parser for the Windows BITS job database.

    Reads qmgr.db (Windows 10/11, Server 2016+), raw Jobs/Files blobs and, where
    supported, legacy qmgr0.dat/qmgr1.dat state files. Evidence is opened read-only.
    """


@cli.command("parse")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-f", "--format", "fmt", type=click.Choice(["jsonl", "json", "csv", "table"]), default="jsonl",
              show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for unexpected errors.")
def parse_command(paths: tuple[str, ...], fmt: str, output: str | None, debug: bool) -> None:
    """Decode every job (with its files) in PATHS: qmgr.db files, raw blobs or folders.

    \b
    Formats: jsonl/json  one object per job, files nested, every field;
             csv         one row per job x file (Timeline Explorer style, UTC);
             table       a readable summary.
    Exit status: 0 ok, 1 an input could not be read (others still processed), 2 usage.
    """
    from .api import expand, read
    from .output import make_writer
    from .sources.result import SourceError

    run = Run(debug)
    stream = open_output(output, paths)
    writer = make_writer(fmt, stream)
    try:
        for given in paths:
            try:
                items = expand(given)
            except SourceError as exc:
                run.fail(given, str(exc))
                continue
            for item in items:
                try:
                    result = read(item)
                except SourceError as exc:
                    run.fail(str(item), str(exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - one bad input never stops a batch
                    run.unexpected(str(item), exc)
                    continue
                for warning in result.warnings:
                    report_warning(str(item), warning)
                for problem in result.errors:
                    run.fail(str(item), problem)
                writer.begin_source(str(item), result.kind, len(result.jobs), len(result.orphan_files))
                for job in result.jobs:
                    writer.write_job(job)
                for jf in result.orphan_files:
                    writer.write_orphan(jf)
    finally:
        writer.close()
        if stream is not sys.stdout and output not in (None, "-"):
            stream.close()
    if run.failures:
        sys.exit(EXIT_INPUT_ERROR)


def main() -> None:
    cli(prog_name="bitsdb")
