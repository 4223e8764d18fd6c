"""`bitsdb scan`: run the detection rules over every job and print the findings."""

from __future__ import annotations

import sys

import click

from ..output.findings import FINDING_FORMATS
from ..rules.engine import SEVERITIES, SEVERITY_RANK
from .common import (
    DEBUG,
    EXIT_FINDINGS,
    EXIT_INPUT_ERROR,
    JOBS,
    OUTPUT,
    PATHS,
    PROGRESS,
    RULES,
    SCHEDULER,
    Run,
    close_output,
    load_rules_or_exit,
    open_output,
    readable_results,
)


@click.command("scan")
@PATHS
@RULES
@click.option("-f", "--format", "fmt", type=click.Choice(FINDING_FORMATS), default="table",
              show_default=True, help="Output format.")
@OUTPUT
@click.option("--min-severity", type=click.Choice(SEVERITIES), default="info", show_default=True,
              help="Show only findings at or above this severity.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit with status 3 when a finding at or above this severity exists.")
@click.option("--recover", is_flag=True,
              help="Also scan deleted and historical job versions carved from the store.")
@JOBS
@PROGRESS
@SCHEDULER
@DEBUG
def command(paths: tuple[str, ...], rule_paths: tuple[str, ...], fmt: str, output: str | None,
            min_severity: str, fail_on: str | None, recover: bool, jobs: int | None, progress: bool | None,
            scheduler: str | None, debug: bool) -> None:
    """Run the detection rules over every job in PATHS and print the findings.

    \b
    Each finding names the rule, severity (info < low < medium < high < critical), the
    ATT&CK techniques, the evidence (field = value) and the job (id + provenance).
    Exit status: 0 ok; 1 an input could not be read (the others are still scanned);
    2 usage error or a rule file that does not load; 3 --fail-on was given and a
    finding at or above that severity exists (3 wins over 1).
    """
    from ..output.findings import FindingWriter

    ruleset = load_rules_or_exit(rule_paths)
    run = Run(debug)
    stream = open_output(output, paths)
    writer = FindingWriter(stream, fmt)
    threshold = SEVERITY_RANK[min_severity]
    worst = -1
    job_count = shown = total = 0
    try:
        for _, result in readable_results(paths, run, recover=recover, jobs=jobs, progress=progress,
                                             scheduler=scheduler):
            for job in result.jobs:
                job_count += 1
                for finding in ruleset.evaluate(job):
                    total += 1
                    rank = SEVERITY_RANK[finding.severity]
                    worst = max(worst, rank)
                    if rank >= threshold:
                        shown += 1
                        writer.write(finding)
    finally:
        close_output(stream)
    if sys.stderr.isatty():
        click.echo(f"bitsdb: {job_count} job(s), {total} finding(s), {shown} shown", err=True)
    if fail_on is not None and worst >= SEVERITY_RANK[fail_on]:
        sys.exit(EXIT_FINDINGS)
    if run.failures or run.damaged:
        sys.exit(EXIT_INPUT_ERROR)
