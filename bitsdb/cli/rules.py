"""`bitsdb rules list|check`: the loaded detection rules, and strict checking of rule files."""

from __future__ import annotations

import json
import sys

import click

from ..text import one_line
from .common import RULES, load_rules_or_exit, say


@click.group("rules")
def command() -> None:
    """List the detection rules or check a rule file."""


@command.command("list")
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


@command.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def check_command(paths: tuple[str, ...]) -> None:
    """Load rule FILEs/folders strictly (with the built-in lists available); exit 1 on the first error."""
    from ..rules.engine import RuleError, check_rule_file

    failed = False
    for path in paths:
        try:
            ruleset = check_rule_file(path)
        except RuleError as exc:
            say(str(exc), "error")
            failed = True
            continue
        click.echo(one_line(f"{path}: ok ({len(ruleset.rules)} rules, {len(ruleset.allowlist)} allow-list entries)"))
    if failed:
        sys.exit(1)
