"""Click commands of the rules layer: `scan`, and the `rules` group (`list`, `check`).

Registered on the main group by bitsdb.cli (`cli.add_command(scan_command)`,
`cli.add_command(rules_group)`); helpers of bitsdb.cli are imported lazily to keep
the import order free of cycles.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import IO, Iterable

import click

from ..cli import JOBS, PROGRESS, RULES
from .engine import SEVERITIES, SEVERITY_RANK, Finding, RuleError, RuleSet, check_rule_file, load_rules

EXIT_FINDINGS = 3
EXIT_RULES = 2
CSV_COLUMNS = ("severity", "rule_id", "title", "attack", "job_id", "job_name", "explanation", "allowlisted",
               "partial", "source_path", "table", "record_index", "offset", "recovered", "state_file")


def load_rules_or_exit(rule_paths: Iterable[str]) -> RuleSet:
    """The built-in rules plus the user's; a file that does not load ends the run (status 2)."""
    try:
        return load_rules(list(rule_paths))
    except RuleError as exc:
        click.echo(f"bitsdb: error: {exc}", err=True)
        sys.exit(EXIT_RULES)


class FindingWriter:
    def __init__(self, stream: IO[str], fmt: str) -> None:
        self.stream, self.fmt = stream, fmt
        self.csv = None
        if fmt == "csv":
            self.csv = csv.writer(stream, lineterminator="\n")
            self.csv.writerow(CSV_COLUMNS)
        elif fmt == "table":
            stream.write(f"{'SEVERITY':<9} {'RULE':<27} {'JOB':<10} {'NAME':<28} EXPLANATION\n")

    def write(self, finding: Finding) -> None:
        if self.fmt == "jsonl":
            self.stream.write(json.dumps(finding.to_dict(), sort_keys=True, ensure_ascii=False) + "\n")
            return
        prov = finding.provenance or {}
        if self.csv is not None:
            row = {**finding.to_dict(), **{k: prov.get(k) for k in ("source_path", "table", "record_index",
                                                                     "offset", "recovered", "state_file")}}
            row["attack"] = ";".join(finding.attack)
            self.csv.writerow(["" if row.get(c) is None else row.get(c) for c in CSV_COLUMNS])
            return
        name = (finding.job_name or "")[:28]
        self.stream.write(f"{finding.severity:<9} {finding.rule_id:<27} {(finding.job_id or '?')[:8]:<10} "
                          f"{name:<28} {finding.explanation}\n")


@click.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@RULES
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table",
              show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@click.option("--min-severity", type=click.Choice(SEVERITIES), default="info", show_default=True,
              help="Show only findings at or above this severity.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit with status 3 when a finding at or above this severity exists.")
@click.option("--recover", is_flag=True,
              help="Also scan deleted and historical job versions carved from the store.")
@JOBS
@PROGRESS
@click.option("--debug", is_flag=True, help="Show Python tracebacks for unexpected errors.")
def scan_command(paths: tuple[str, ...], rule_paths: tuple[str, ...], fmt: str, output: str | None,
                 min_severity: str, fail_on: str | None, recover: bool, jobs: int | None, progress: bool | None,
                 debug: bool) -> None:
    """Run the detection rules over every job in PATHS and print the findings.

    \b
    Each finding names the rule, severity (info < low < medium < high < critical), the
    ATT&CK techniques, the evidence (field = value) and the job (id + provenance).
    Exit status: 0 ok; 1 an input could not be read (the others are still scanned);
    2 usage error or a rule file that does not load; 3 --fail-on was given and a
    finding at or above that severity exists (3 wins over 1).
    """
    from ..cli import Run, close_output, open_output, readable_results

    ruleset = load_rules_or_exit(rule_paths)
    run = Run(debug)
    stream = open_output(output, paths)
    writer = FindingWriter(stream, fmt)
    threshold = SEVERITY_RANK[min_severity]
    worst = -1
    jobs = shown = total = 0
    try:
        for _, result in readable_results(paths, run, recover=recover, jobs=jobs, progress=progress):
            for job in result.jobs:
                jobs += 1
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
        click.echo(f"bitsdb: {jobs} job(s), {total} finding(s), {shown} shown", err=True)
    if fail_on is not None and worst >= SEVERITY_RANK[fail_on]:
        sys.exit(EXIT_FINDINGS)
    if run.failures:
        sys.exit(1)


@click.group("rules")
def rules_group() -> None:
    """List the detection rules or check a rule file."""


@rules_group.command("list")
@RULES
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def list_command(rule_paths: tuple[str, ...], fmt: str) -> None:
    """Show every loaded rule: id, severity range, ATT&CK techniques, title."""
    ruleset = load_rules_or_exit(rule_paths)
    for rule in ruleset.rules:
        if fmt == "jsonl":
            click.echo(json.dumps({"id": rule.id, "title": rule.title, "severity": rule.severity,
                                   "max_severity": rule.max_severity, "attack": rule.attack,
                                   "source": rule.source, "line": rule.line}, sort_keys=True))
            continue
        span = rule.severity if rule.max_severity == rule.severity else f"{rule.severity}..{rule.max_severity}"
        attack = sorted({*rule.attack, *(a for e in rule.escalate for a in e.attack)})
        click.echo(f"{rule.id:<27} {span:<15} {','.join(attack):<38} {rule.title}")
    click.echo(f"{len(ruleset.rules)} rules, {len(ruleset.allowlist)} allow-list entries", err=True)


@rules_group.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def check_command(paths: tuple[str, ...]) -> None:
    """Load rule FILEs/folders strictly (with the built-in lists available); exit 1 on the first error."""
    failed = False
    for path in paths:
        try:
            ruleset = check_rule_file(path)
        except RuleError as exc:
            click.echo(f"bitsdb: error: {exc}", err=True)
            failed = True
            continue
        click.echo(f"{path}: ok ({len(ruleset.rules)} rules, {len(ruleset.allowlist)} allow-list entries)")
    if failed:
        sys.exit(1)
