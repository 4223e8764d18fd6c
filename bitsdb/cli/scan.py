"""`bitsdb scan`: one verdict per job (severity, confidence, ordered reasons, rule hits)."""

from __future__ import annotations

import sys
from collections import Counter

import click

from ..output.findings import FINDING_FORMATS
from ..rules.verdict import SEVERITIES, SEVERITY_RANK
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
    open_output,
    LOG_SECTION,
    logs_as_of,
    picture_records,
    read_picture,
    say,
    store_as_of,
)
from .rules import ALLOWLIST, AS_OF, load_ruleset_or_exit


@click.command("scan")
@PATHS
@RULES
@ALLOWLIST
@AS_OF
@click.option("-f", "--format", "fmt", type=click.Choice(FINDING_FORMATS), default="table",
              show_default=True, help="Output format.")
@OUTPUT
@click.option("--min-severity", type=click.Choice(SEVERITIES), default="info", show_default=True,
              help="Show only jobs whose verdict is at or above this severity.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit with status 3 when a job's verdict is at or above this severity.")
@click.option("--recover", is_flag=True,
              help="Also judge deleted and historical job versions carved from the store.")
@JOBS
@PROGRESS
@SCHEDULER
@DEBUG
def command(paths: tuple[str, ...], rule_paths: tuple[str, ...], allowlist_paths: tuple[str, ...],
            as_of: int | None, fmt: str, output: str | None, min_severity: str, fail_on: str | None,
            recover: bool, jobs: int | None, progress: bool | None, scheduler: str | None, debug: bool) -> None:
    """Judge every job in PATHS, and what the event logs and hives beside it show, one verdict each.

    \b
    A verdict has a severity (info < low < medium < high < critical), a confidence (high,
    or lower when the record is damaged, legacy or lacks its file records), its reasons in
    order and the rule hits behind them. table: one line per job with its top reasons;
    jsonl: everything, one object per job; csv: one row per job.
    Exit status: 0 ok; 1 an input could not be read (the others are still scanned);
    2 usage error or a rule / allow-list file that does not load; 3 --fail-on was given
    and a verdict at or above that severity exists (3 wins over 1).
    """
    from ..output.findings import VerdictWriter

    ruleset = load_ruleset_or_exit(rule_paths, allowlist_paths)
    run = Run(debug)
    out = open_output(output, paths)
    writer = VerdictWriter(out, fmt)
    threshold = SEVERITY_RANK[min_severity]
    worst = -1
    counts: Counter[str] = Counter()
    shown = 0
    with Finishing(out, writer):
        results, picture = read_picture(paths, run, recover=recover, jobs=jobs, progress=progress,
                                        scheduler=scheduler)
        for where, judged in judge(ruleset, results, picture, as_of):
            try:
                verdict = judged()
                if verdict is None:
                    continue
                counts[verdict.severity] += 1
                rank = SEVERITY_RANK[verdict.severity]
                worst = max(worst, rank)
                if rank >= threshold:
                    writer.write(verdict)
                    shown += 1
            except Exception as exc:  # noqa: BLE001 - one record never stops a batch
                run.not_written(*where, exc)
    if sys.stderr.isatty():
        tally = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITIES) if counts[s])
        say(f"{sum(counts.values())} job(s) ({tally or 'none'}), {shown} shown")
    if fail_on is not None and worst >= SEVERITY_RANK[fail_on]:
        sys.exit(EXIT_FINDINGS)
    if run.failures or run.damaged:
        sys.exit(EXIT_INPUT_ERROR)


def judge(ruleset, results, picture, as_of: int | None):
    """((source, record label), verdict thunk) in output order: each store's jobs (counted to that store's
    newest time unless --as-of), then log-only jobs and the records of event logs and hives (counted to
    the logs' newest time). A thunk may give None (no verdict for that record) or raise (one record's
    problem, said by the caller)."""
    from functools import partial

    for source, result in results:
        when = store_as_of(result, as_of)
        for index, job in enumerate(result.jobs):
            yield (source, f"job {job.job_id or '?'} (record {index})"), partial(ruleset.assess, job, when)
    if picture is None:
        return
    when = logs_as_of(picture, as_of)
    for index, job in enumerate(picture.log_jobs):
        yield (LOG_SECTION, f"job {job.job_id or '?'} (record {index})"), partial(ruleset.assess, job, when)
    for index, (kind, record) in enumerate(picture_records(picture)):
        yield (LOG_SECTION, f"{kind} (record {index})"), partial(ruleset.assess_record, kind, record, when)

