"""`bitsdb report`: one self-contained HTML triage report of every job in the evidence."""

from __future__ import annotations

import sys

import click

from ..report.verdicts import LEVELS
from ..rules.verdict import SEVERITIES, SEVERITY_RANK
from .common import (
    DEBUG,
    EXIT_FINDINGS,
    EXIT_INPUT_ERROR,
    JOBS,
    PATHS,
    PROGRESS,
    RECOVER,
    RULES,
    SCHEDULER,
    Finishing,
    Run,
    logs_as_of,
    open_output,
    picture_records,
    read_picture,
    say,
    store_as_of,
    usage_error,
)
from .rules import ALLOWLIST, AS_OF, load_ruleset_or_exit


@click.command("report")
@PATHS
@RULES
@ALLOWLIST
@AS_OF
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write (required).")
@click.option("--min-severity", type=click.Choice(LEVELS), default=LEVELS[0], show_default=True,
              help="Verdict filter the page opens with (every job is still in the file).")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit with status 3 when a job's verdict is at or above this severity.")
@RECOVER
@JOBS
@PROGRESS
@SCHEDULER
@DEBUG
def command(paths: tuple[str, ...], rule_paths: tuple[str, ...], allowlist_paths: tuple[str, ...],
            as_of: int | None, output: str, min_severity: str,
            fail_on: str | None, recover: bool, jobs: int | None, progress: bool | None, scheduler: str | None,
            debug: bool) -> None:
    """Write one HTML triage report of every job in PATHS (same inputs and rules as scan).

    \b
    The file is self-contained (no network at view time; open it from a USB stick): an
    overview, hosts sorted by worst verdict, a card per job (verdict and reasons, notify
    command, owner, creator, URLs -> local paths, all times in UTC, provenance), search and
    filters, a timeline per host and a fleet view. Needs the extra: pip install 'bitsdb[report]'.
    Exit status: 0 ok; 1 an input could not be read (the others are still in the report);
    2 usage error, a rule file that does not load or the extra not installed; 3 --fail-on met.
    """
    from ..report import (
        MissingExtra,
        ReportBuilder,
        check_dependencies,
        record_verdict_source,
        render_report,
        verdict_source,
    )

    try:
        check_dependencies()
    except MissingExtra as exc:
        usage_error(str(exc))
    ruleset = load_ruleset_or_exit(rule_paths, allowlist_paths)
    run = Run(debug)
    out = open_output(output, paths)             # checked against the evidence, written beside and renamed
    builder = ReportBuilder(verdict_source(ruleset), inputs=paths,
                            options={"recover": recover, "rules": list(rule_paths) + list(allowlist_paths),
                                     "min_severity": min_severity})
    items: list = []
    with Finishing(out):
        results, picture = read_picture(paths, run, recover=recover, jobs=jobs, progress=progress,
                                        scheduler=scheduler, items=items)
        for _, result in results:
            builder.warnings.extend(f"{result.path}: {warning}" for warning in result.warnings)
            when = store_as_of(result, as_of)
            for job in result.jobs:
                builder.add_job(job, when)
            for jf in result.orphan_files:
                builder.add_orphan(jf)
        if picture is not None:         # log-only jobs and records of no job: counted to the logs' newest time
            when = logs_as_of(picture, as_of)
            for job in picture.log_jobs:
                builder.add_job(job, when)
            record_verdict = record_verdict_source(ruleset)
            for kind, record in picture_records(picture):
                builder.add_record(kind, record, record_verdict(kind, record, when))
        builder.evidence_items = len(items)
        builder.warnings.extend(warning for item in items for warning in item.warnings)
        builder.failures.extend(run.problems)
        view = builder.build()
        page = render_report(view)
        out.write(page)                          # one record: the page appears whole, when it is complete
    if sys.stderr.isatty():
        overview = view["overview"]
        say(f"report {output}: {overview['hosts']} host(s), {overview['cards']} job(s), "
            f"{len(page.encode('utf-8')) / 1e6:.1f} MB")
    # a host's worst counts its records of no job too (service, log coverage, command lines), as scan does
    worst = max((SEVERITY_RANK.get(host["worst"], -1) for host in view["hosts"]), default=-1)
    if fail_on is not None and worst >= SEVERITY_RANK[fail_on]:
        sys.exit(EXIT_FINDINGS)
    if run.failures or run.damaged:
        sys.exit(EXIT_INPUT_ERROR)
