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
    Finishing,
    Run,
    load_rules_or_exit,
    open_output,
    readable_results,
    say,
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
    out = open_output(output, paths)
    writer = FindingWriter(out, fmt)
    threshold = SEVERITY_RANK[min_severity]
    worst = -1
    job_count = shown = total = 0
    with Finishing(out, writer):
        for source, result in readable_results(paths, run, recover=recover, jobs=jobs, progress=progress,
                                               scheduler=scheduler):
            for index, job in enumerate(result.jobs):
                job_count += 1
                try:
                    found = ruleset.evaluate(job)
                    for finding in found:
                        rank = SEVERITY_RANK[finding.severity]
                        worst = max(worst, rank)
                        if rank >= threshold:
                            writer.write(finding)
                            shown += 1
                    total += len(found)
                except Exception as exc:  # noqa: BLE001 - one record never stops a batch
                    run.not_written(source, f"job {job.job_id or '?'} (record {index})", exc)
    if sys.stderr.isatty():
        say(f"{job_count} job(s), {total} finding(s), {shown} shown")
    if fail_on is not None and worst >= SEVERITY_RANK[fail_on]:
        sys.exit(EXIT_FINDINGS)
    if run.failures:
        sys.exit(EXIT_INPUT_ERROR)
