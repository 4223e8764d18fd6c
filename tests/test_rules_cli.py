"""`bitsdb scan` and `bitsdb rules list|check`, driven through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb.decode import encode_job
from bitsdb.cli.rules import command as rules_group
from bitsdb.cli.scan import command as scan_command
from bitsdb.rules.corpus import build_job

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "real" / "artemis" / "win10_qmgr.db"


@pytest.fixture()
def evil_blob(tmp_path: Path) -> Path:
    job = build_job({"owner_sid": "S-1-5-18", "notify_program": "%COMSPEC%", "notify_parameters": "/c calc"},
                    [], "cli-evil")
    path = tmp_path / "job.raw"
    path.write_bytes(encode_job(job))
    return path


def test_rules_list_and_check(tmp_path):
    runner = CliRunner()
    result = runner.invoke(rules_group, ["list"])
    assert result.exit_code == 0 and "notify-command" in result.output and "T1197" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - id: mine\n    title: t\n    severity: low\n    attack: [T1197]\n"
                    "    when: {field: creator_name, in: $lolbins}\n")
    result = runner.invoke(rules_group, ["check", str(good)])
    assert result.exit_code == 0 and "ok (1 rules" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: mine\n    title: t\n    severity: low\n    attack: [T1197]\n"
                   "    when: {field: creator_name, regex: '['}\n")
    result = runner.invoke(rules_group, ["check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: rule mine (line 6): field 'creator_name': bad regex" in result.output
    assert "Traceback" not in result.output


def test_scan_raw_blob_fail_on_and_formats(evil_blob):
    runner = CliRunner()
    result = runner.invoke(scan_command, [str(evil_blob)])
    assert result.exit_code == 0
    assert "critical" in result.output and "notify-command" in result.output
    assert runner.invoke(scan_command, ["--fail-on", "high", str(evil_blob)]).exit_code == 3
    lines = runner.invoke(scan_command, ["-f", "jsonl", "--min-severity", "high", str(evil_blob)]).output.splitlines()
    records = [json.loads(line) for line in lines]
    assert records and all(r["severity"] in ("high", "critical") for r in records)
    assert records[0]["rule_id"] == "notify-command" and "%COMSPEC% /c calc" in records[0]["explanation"]
    rows = list(csv.DictReader(io.StringIO(runner.invoke(scan_command, ["-f", "csv", str(evil_blob)]).output)))
    assert rows and rows[0]["severity"] == "critical" and "T1197" in rows[0]["attack"]


def test_scan_bad_inputs_and_bad_rules(tmp_path, evil_blob):
    runner = CliRunner()
    missing = tmp_path / "nope.db"
    result = runner.invoke(scan_command, [str(missing), str(evil_blob)])
    assert result.exit_code == 1 and "notify-command" in result.output
    assert runner.invoke(scan_command, ["--fail-on", "low", str(missing), str(evil_blob)]).exit_code == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    result = runner.invoke(scan_command, ["--rules", str(bad), str(evil_blob)])
    assert result.exit_code == 2 and "invalid YAML" in result.output


def test_scan_real_sample_nothing_above_low():
    if not REAL.exists():
        pytest.skip(f"real sample {REAL} not available")
    runner = CliRunner()
    assert runner.invoke(scan_command, ["--fail-on", "medium", str(REAL)]).exit_code == 0
    result = runner.invoke(scan_command, ["-f", "jsonl", str(REAL)])
    assert result.exit_code == 0
    assert [json.loads(x)["severity"] for x in result.output.splitlines()] == ["info"]
