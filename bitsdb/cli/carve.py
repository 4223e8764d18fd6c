"""`bitsdb carve PATH...`: recover job and file records from any file or raw image."""

from __future__ import annotations

import sys

import click

from ..output import RECORD_FORMATS
from .common import DEBUG, EXIT_INPUT_ERROR, OUTPUT, Run, close_output, open_output, report_warning


@click.command("carve")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-f", "--format", "fmt", type=click.Choice(RECORD_FORMATS), default="jsonl",
              show_default=True, help="Output format.")
@OUTPUT
@click.option("--all-records", is_flag=True,
              help="Every validated record (each copy at its offset) instead of one per job version.")
@click.option("--no-hash", is_flag=True, help="Do not compute the SHA-256 of each input (faster on big images).")
@click.option("--window-mib", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Read window in MiB (memory use is about three windows).")
@DEBUG
def command(paths: tuple[str, ...], fmt: str, output: str | None, all_records: bool, no_hash: bool,
                  window_mib: int, debug: bool) -> None:
    """Scan PATHS (any file or raw disk image, read sequentially) for BITS job and file records.

    Finds every record by its marker GUID, validates it and decodes as far as it
    validates (partial records are reported with the reason). Copies of one job
    version (job id + modification time) are merged unless --all-records is given;
    carved jobs are linked to carved files where the ESE row prefix gives the file Id.
    A folder stands for the qmgr.db/qmgr*.dat in it plus the ESE logs beside qmgr.db.
    All inputs of one PATH argument form one history. Summary lines go to stderr.

    Exit status: 0 ok, 1 an input could not be read (others still processed), 2 usage.
    """
    from ..carve.history import build_history
    from ..carve.recover import carve_file, carve_inputs
    from ..output import make_writer
    from ..sources.result import SourceError

    run = Run(debug)
    stream = open_output(output, paths)
    writer = make_writer(fmt, stream)
    try:
        for given in paths:
            inputs = carve_inputs(given)
            if not inputs:
                run.fail(given, "directory holds no BITS files (qmgr.db, qmgr0.dat, qmgr1.dat)")
                continue
            located = []
            scanned = 0
            for rank, item in enumerate(inputs):
                try:
                    scan = carve_file(item, rank=rank, window=window_mib << 20, hash_input=not no_hash)
                except SourceError as exc:
                    run.fail(str(item), str(exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - one bad input never stops a batch
                    run.unexpected(str(item), exc)
                    continue
                stats = scan.stats
                jobs = sum(1 for x in scan.located if x.carved.kind == "job")
                click.echo(f"bitsdb: carve: {item}: {stats.bytes_scanned} bytes, {stats.hits} marker hits, "
                           f"{jobs} job and {len(scan.located) - jobs} file records", err=True)
                if stats.stopped:
                    report_warning(str(item), stats.stopped)
                located.extend(scan.located)
                scanned += 1
            if not scanned:
                continue
            if all_records:
                jobs = [x.carved.record for x in located if x.carved.kind == "job"]
                files = [x.carved.record for x in located if x.carved.kind == "file"]
                for x in located:
                    x.carved.record.provenance = x.provenance
                writer.begin_source(given, "carved", len(jobs), len(files))
                for job in jobs:
                    writer.write_job(job)
                for jf in files:
                    writer.write_orphan(jf)
                continue
            history = build_history(located)
            for warning in history.warnings:
                report_warning(given, warning)
            click.echo(f"bitsdb: carve: {given}: {history.job_records} job records -> {history.versions} "
                       f"versions of {history.job_ids} jobs ({len(history.jobs)} distinct records), "
                       f"{history.linked_files} files linked, {len(history.orphan_files)} unlinked files",
                       err=True)
            writer.begin_source(given, "carved", len(history.jobs), len(history.orphan_files))
            for job in history.jobs:
                writer.write_job(job)
            for jf in history.orphan_files:
                writer.write_orphan(jf)
    finally:
        writer.close()
        close_output(stream)
    if run.failures:
        sys.exit(EXIT_INPUT_ERROR)
