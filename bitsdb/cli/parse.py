"""`bitsdb parse`: every job (with its files) of the evidence, in a record format."""

from __future__ import annotations

import click

from ..output import RECORD_FORMATS
from .common import DEBUG, JOBS, OUTPUT, PATHS, PROGRESS, RECOVER, RULES, SCHEDULER, run_command


@click.command("parse")
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
@SCHEDULER
@DEBUG
def command(paths: tuple[str, ...], fmt: str, output: str | None, recover: bool, with_findings: bool,
            rule_paths: tuple[str, ...], jobs: int | None, progress: bool | None, scheduler: str | None,
            debug: bool) -> None:
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
                rule_paths=rule_paths, jobs=jobs, progress=progress,
                scheduler=scheduler)
