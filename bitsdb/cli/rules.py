"""`bitsdb rules list|check|explain`: the loaded rules, strict checking of rule files, and why a
job got its verdict. Also the options the verdict commands share (--allowlist, --as-of)."""

from __future__ import annotations

import json
import sys
from typing import Iterable

import click

from ..text import one_line
from .common import (DEBUG, EXIT_INPUT_ERROR, JOBS, PATHS, PROGRESS, RECOVER, RULES, Run, readable_results, say,
                     usage_error)

ALLOWLIST = click.option("--allowlist", "allowlist_paths", multiple=True, type=click.Path(),
                         help="Site allow-list file (repeatable): 'allowlist:' entries in the built-in form "
                              "(creator, owner, hosts, destinations), checked as strictly.")


def _parse_as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    from ..rules.engine import parse_time

    try:
        return parse_time(value)
    except (ValueError, TypeError, OverflowError):
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (2024-05-01 or 2024-05-01T12:00:00Z)") from None


AS_OF = click.option("--as-of", "as_of", callback=_parse_as_of, default=None, metavar="TIME",
                     help="Count time-based rules (job age, expiry) to TIME (ISO 8601, UTC unless an offset is "
                          "given). Default: the newest time recorded in each store, never this machine's clock.")


def load_ruleset_or_exit(rule_paths: Iterable[str], allowlist_paths: Iterable[str] = ()):
    """Built-in rules plus the user's rule and allow-list files; one that does not load ends the run (2)."""
    from ..rules.engine import RuleError, load_rules

    try:
        return load_rules(list(rule_paths), allowlists=list(allowlist_paths))
    except RuleError as exc:
        usage_error(str(exc))


@click.group("rules")
def command() -> None:
    """List the detection rules, check a rule file, or explain a job's verdict."""


@command.command("list")
@RULES
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
def list_command(rule_paths: tuple[str, ...], fmt: str) -> None:
    """Show every loaded rule: id, facet, severity range, ATT&CK techniques, title."""
    ruleset = load_ruleset_or_exit(rule_paths)
    for rule in ruleset.rules:
        attack = sorted({*rule.attack, *(a for e in rule.escalate for a in e.attack)})
        if fmt == "jsonl":
            click.echo(json.dumps({"id": rule.id, "title": rule.title, "facet": rule.facet, "severity": rule.severity,
                                   "max_severity": rule.max_severity, "attack": attack, "allowlisted": rule.allowlisted,
                                   "source": rule.source, "line": rule.line}, sort_keys=True))
            continue
        span = rule.severity if rule.max_severity == rule.severity else f"{rule.severity}..{rule.max_severity}"
        click.echo(f"{rule.id:<27} {rule.facet:<13} {span:<15} {','.join(attack):<38} {rule.title}")
    click.echo(f"{len(ruleset.rules)} rules, {len(ruleset.combinations)} combination rules, "
               f"{len(ruleset.allowlist)} allow-list entries", err=True)


@command.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def check_command(paths: tuple[str, ...]) -> None:
    """Load rule FILEs/folders strictly (with the built-in lists available); exit 1 on any error."""
    from ..rules.engine import RuleError, check_rule_file

    failed = False
    for path in paths:
        try:
            ruleset = check_rule_file(path)
        except RuleError as exc:
            say(str(exc), "error")
            failed = True
            continue
        click.echo(one_line(f"{path}: ok ({len(ruleset.rules)} rules, {len(ruleset.allowlist)} allow-list entries, "
                            f"{len(ruleset.combinations)} combination rules)"))
    if failed:
        sys.exit(1)


@command.command("explain")
@PATHS
@click.option("--job", "job_prefix", default=None, metavar="ID",
              help="Only jobs whose id starts with ID (every job when omitted).")
@RULES
@ALLOWLIST
@AS_OF
@RECOVER
@JOBS
@PROGRESS
@DEBUG
def explain_command(paths: tuple[str, ...], job_prefix: str | None, rule_paths: tuple[str, ...],
                    allowlist_paths: tuple[str, ...], as_of: int | None, recover: bool, jobs: int | None,
                    progress: bool | None, debug: bool) -> None:
    """Explain the verdict of jobs in PATHS: every rule and whether it fired (each test with the value
    it saw), each allow-list entry and which facts matched, and how the verdict was combined.

    \b
    Exit status: 0 at least one job explained; 1 an input could not be read or no job matched
    ID; 2 usage error or a rule file that does not load.
    """
    from ..output.findings import plain
    from ..rules.engine import evidence_time

    ruleset = load_ruleset_or_exit(rule_paths, allowlist_paths)
    run = Run(debug)
    wanted = (job_prefix or "").lower().strip("{}")
    explained = 0
    for _, result in readable_results(paths, run, recover=recover, jobs=jobs, progress=progress):
        when = as_of if as_of is not None else evidence_time(result.jobs)
        source = "--as-of" if as_of is not None else "the newest time in this store"
        for job in result.jobs:
            if wanted and not (job.job_id or "").lower().startswith(wanted):
                continue
            explained += 1
            click.echo("\n".join(plain(line) for line in ruleset.explain(job, when, source)))
            click.echo("")
    if not explained:
        say(f"no job{f' with an id starting {job_prefix!r}' if job_prefix else ''} found", "error")
        sys.exit(EXIT_INPUT_ERROR)
    if run.failures:
        sys.exit(EXIT_INPUT_ERROR)
