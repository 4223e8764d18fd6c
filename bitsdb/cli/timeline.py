"""`bitsdb timeline`: one event per meaningful timestamp, for timeline tools and SIEMs."""

from __future__ import annotations

import click

from ..output import TIMELINE_FORMATS
from .common import DEBUG, JOBS, OUTPUT, PATHS, PROGRESS, RECOVER, RULES, SCHEDULER, run_command


@click.command("timeline")
@PATHS
@click.option("-f", "--format", "fmt", type=click.Choice(TIMELINE_FORMATS), default="timesketch", show_default=True,
              help="Timeline format.")
@OUTPUT
@RECOVER
@click.option("--findings/--no-findings", default=True, show_default=True,
              help="Tag events with the rule ids of their job's findings.")
@RULES
@JOBS
@PROGRESS
@SCHEDULER
@DEBUG
def command(paths: tuple[str, ...], fmt: str, output: str | None, recover: bool, findings: bool,
            rule_paths: tuple[str, ...], jobs: int | None, progress: bool | None, scheduler: str | None,
            debug: bool) -> None:
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
                rule_paths=rule_paths, jobs=jobs, progress=progress,
                scheduler=scheduler)
