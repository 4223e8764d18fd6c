"""`bitsdb carve PATH...`: recover job and file records from any file, raw image or disk image."""

from __future__ import annotations

import sys

import click

from ..output import RECORD_FORMATS
from ..text import one_line
from .common import (
    DEBUG,
    EXIT_INPUT_ERROR,
    JOBS,
    OUTPUT,
    PROGRESS,
    SCHEDULER,
    Finishing,
    Run,
    open_output,
    open_pool_or_exit,
    report_warning,
    say,
    warn_relative,
    write_records,
)


@click.command("carve")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-f", "--format", "fmt", type=click.Choice(RECORD_FORMATS), default="jsonl",
              show_default=True, help="Output format.")
@OUTPUT
@click.option("--all-records", is_flag=True,
              help="Every validated record (each copy at its offset) instead of one per job version.")
@click.option("--no-hash", is_flag=True, help="Do not compute the SHA-256 of each input (faster on big files).")
@click.option("--window-mib", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Read window in MiB (memory use is about three windows).")
@click.option("--range-mib", type=click.IntRange(1, 1 << 20), default=64, show_default=True,
              help="Disk images are scanned in ranges of this size, each a task for a worker.")
@JOBS
@PROGRESS
@SCHEDULER
@DEBUG
def command(paths: tuple[str, ...], fmt: str, output: str | None, all_records: bool, no_hash: bool,
            window_mib: int, range_mib: int, jobs: int | None, progress: bool | None, scheduler: str | None,
            debug: bool) -> None:
    """Scan PATHS for BITS job and file records, wherever they lie.

    A disk image (raw, E01, VMDK, VHD/VHDX, qcow2; containers need the `images` extra) is
    read decoded: every partition, every Volume Shadow Copy store and the unpartitioned
    space, all of it (unallocated clusters, file slack, pagefile.sys, hiberfil.sys, ESE
    logs …), in ranges scanned by worker processes (--jobs) or a Dask cluster
    (--scheduler). Each record says where it lies: partition, snapshot, volume offset,
    and unallocated space or the allocated file (path). Any other file is read as bytes.

    Finds every record by its marker GUID, validates it and decodes as far as it
    validates (partial records are reported with the reason). Copies of one job
    version (job id + modification time) are merged unless --all-records is given, and
    list every place they were found; carved jobs are linked to carved files where the
    ESE row prefix gives the file Id. A folder stands for the qmgr.db/qmgr*.dat in it
    plus the ESE logs beside qmgr.db. All inputs of one PATH argument form one history.
    Summary lines go to stderr.

    Exit status: 0 ok, 1 an input could not be read (others still processed), 2 usage.
    """
    from ..carve.recover import carve_inputs
    from ..evidence.volumes import carve_as_image
    from ..output import make_writer
    from ..sources.result import SourceError

    run = Run(debug)
    warn_relative(paths, scheduler)
    out = open_output(output, paths)
    writer = make_writer(fmt, out)
    pool = None
    try:
        with Finishing(out, writer):
            for given in paths:
                try:
                    image = carve_as_image(given)
                except SourceError as exc:
                    run.fail(given, str(exc))
                    continue
                if image:
                    if pool is None:
                        pool = open_pool_or_exit(jobs, scheduler)
                    located = _carve_image(given, pool, range_mib << 20, progress, run)
                else:
                    _report_skipped(given)
                    located = _carve_files(given, carve_inputs(given), window_mib << 20, not no_hash, run)
                if located is not None:
                    _write(given, located, writer, all_records, run)
    except BaseException:
        if pool is not None:
            pool.abort()                 # interrupted: workers stop now, not after their range
        raise
    if pool is not None:
        for event in pool.events():
            say(f"carve: workers: {event}")
        pool.close()
    if run.failures:
        sys.exit(EXIT_INPUT_ERROR)


def _report_skipped(given: str) -> None:
    """A folder's links and special files are never carved; each one left out is said (as parse does)."""
    from pathlib import Path

    from ..evidence.folders import walk_tree

    if Path(given).is_dir():
        for line in walk_tree(Path(given))[1]:
            say(line, "warning")


def _carve_files(given: str, inputs: list, window: int, hash_input: bool, run: Run):
    """Each file scanned as bytes (a qmgr.db page-aware); None when nothing could be read."""
    from ..carve.recover import carve_file
    from ..sources.result import SourceError

    if not inputs:
        run.fail(given, "directory holds no BITS files (qmgr.db, qmgr0.dat, qmgr1.dat)")
        return None
    located, scanned = [], 0
    for rank, item in enumerate(inputs):
        try:
            scan = carve_file(item, rank=rank, window=window, hash_input=hash_input)
        except SourceError as exc:
            run.fail(str(item), str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one bad input never stops a batch
            run.unexpected(str(item), exc)
            continue
        stats = scan.stats
        jobs = sum(1 for x in scan.located if x.carved.kind == "job")
        say(f"carve: {item}: {stats.bytes_scanned} bytes, {stats.hits} marker hits, "
            f"{jobs} job and {len(scan.located) - jobs} file records")
        if stats.stopped:
            report_warning(str(item), stats.stopped)
        located.extend(scan.located)
        scanned += 1
    return located if scanned else None


def _carve_image(given: str, pool, range_size: int, progress: bool | None, run: Run):
    """Every volume, snapshot store and unpartitioned area of the decoded image, in ranges on `pool`."""
    from ..evidence.cluster import TaskRunner
    from ..evidence.imagecarve import carve_images, summary_line

    chatty = progress if progress is not None else sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        click.echo(f"\rbitsdb: carve: {one_line(given)}: {done}/{total} task(s)", err=True, nl=done == total)

    [carve] = carve_images([given], TaskRunner(pool), range_size, show if chatty else None)
    for warning in carve.warnings:
        say(warning, "warning")
    for failure in carve.failures:
        run.fail_line(failure)
    if carve.survey is None:
        return None
    say(f"carve: {summary_line(carve)}")
    return carve.located()


def _write(given: str, located: list, writer, all_records: bool, run: Run) -> None:
    from ..carve.history import build_history

    if all_records:
        jobs = [x.carved.record for x in located if x.carved.kind == "job"]
        files = [x.carved.record for x in located if x.carved.kind == "file"]
        for x in located:
            x.carved.record.provenance = x.provenance
        writer.begin_source(given, "carved", len(jobs), len(files))
        write_records(given, writer, run, jobs, files)
        return
    history = build_history(located)
    for warning in history.warnings:
        report_warning(given, warning)
    say(f"carve: {given}: {history.job_records} job records -> {history.versions} "
        f"versions of {history.job_ids} jobs ({len(history.jobs)} distinct records), "
        f"{history.linked_files} files linked, {len(history.orphan_files)} unlinked files")
    writer.begin_source(given, "carved", len(history.jobs), len(history.orphan_files))
    write_records(given, writer, run, history.jobs, history.orphan_files)
