"""`bitsdb scan` (one verdict per job) and `bitsdb rules list|check|explain`, through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb.cli.rules import command as rules_group
from bitsdb.cli.scan import command as scan_command
from bitsdb.decode import encode_job
from bitsdb.forge import forge, spec_from_jobs
from bitsdb.rules.corpus import build_job

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "real" / "artemis" / "win10_qmgr.db"
DEMO = Path(__file__).resolve().parents[1] / "samples" / "demo"


@pytest.fixture()
def evil_blob(tmp_path: Path) -> Path:
    job = build_job({"owner_sid": "S-1-5-18", "notify_program": "%COMSPEC%", "notify_parameters": "/c calc"},
                    [], "cli-evil")
    path = tmp_path / "job.raw"
    path.write_bytes(encode_job(job))
    return path


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """A qmgr.db with a benign updater, a bitsadmin job and a job whose name carries control characters."""
    jobs = [
        build_job({"display_name": "MozillaUpdate 308046B0AF4A39CB",
                   "creator_image": r"C:\Program Files\Mozilla Firefox\firefox.exe"},
                  [{"local_name": r"C:\ProgramData\Mozilla-1de4eec8-1241-4177-a864-e594e8d1fb38\updates\1\update.mar",
                    "remote_name": "https://download-installer.cdn.mozilla.net/pub/firefox/x.mar"}], "cli-ok"),
        build_job({"display_name": "bits", "owner_sid": "S-1-5-18", "integrity_rid": 0x4000,
                   "creator_image": r"C:\Windows\System32\bitsadmin.exe"},
                  [{"remote_name": "http://203.0.113.9:12345/2.bat", "local_name": r"C:\Users\Public\2.bat"}],
                  "cli-bad"),
        build_job({"display_name": "fake\nhigh      critical line\x1b[31m", "notify_program": "cmd.exe"}, [{}],
                  "cli-ctl"),
    ]
    path = tmp_path / "qmgr.db"
    forge(spec_from_jobs(jobs), path)
    return path


def test_rules_list_and_check(tmp_path):
    runner = CliRunner()
    result = runner.invoke(rules_group, ["list"])
    assert result.exit_code == 0 and "notify-command" in result.output and "execution" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - id: mine\n    title: t\n    severity: low\n    attack: [T1197]\n    facet: origin\n"
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


def test_rules_check_of_a_builtin_file_counts_its_own_items():
    """A built-in file is read once (as a built-in, however the path is spelled); checking it still
    reports what it holds."""
    from bitsdb.rules.engine import BUILTIN_DIR, builtin_rules

    entries, combinations = len(builtin_rules().allowlist), len(builtin_rules().combinations)
    assert entries and combinations
    result = CliRunner().invoke(rules_group, ["check", str(BUILTIN_DIR / ".." / "rules" / "allowlist.yaml"),
                                              str(BUILTIN_DIR / "verdict.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith(f"ok (0 rules, {entries} allow-list entries, 0 combination rules)")
    assert lines[1].endswith(f"ok (0 rules, 0 allow-list entries, {combinations} combination rules)")


def test_scan_gives_one_verdict_per_job_in_every_format(store):
    runner = CliRunner()
    table = runner.invoke(scan_command, [str(store)])
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["SEVERITY", "CONF", "HOST"] and len(lines) == 4       # header + one per job
    assert any(line.startswith("high") and "independent suspicious facts" in line for line in lines)
    assert any(line.startswith("info") and "MozillaUpdate" in line for line in lines)
    assert "\\x0a" in table.output and "\x1b" not in table.output                # a name cannot forge a line
    records = [json.loads(x) for x in runner.invoke(scan_command, ["-f", "jsonl", str(store)]).output.splitlines()]
    assert len(records) == 3 and {r["record_type"] for r in records} == {"verdict"}
    bad = next(r for r in records if r["subject"]["job_name"] == "bits")
    assert bad["severity"] == "high" and bad["confidence"] == "high" and bad["as_of"]
    assert {h["rule_id"] for h in bad["hits"]} >= {"tool-creator", "remote-ip-host", "payload-drop"}
    assert bad["subject"]["provenance"]["table"] == "Jobs" and bad["reasons"][0]["source"].startswith("combine:")
    ok = next(r for r in records if r["subject"]["job_name"].startswith("Mozilla"))
    assert ok["allowlist"]["entry"] == "Mozilla Firefox / Thunderbird update" and ok["severity"] == "info"
    rows = list(csv.DictReader(io.StringIO(runner.invoke(scan_command, ["-f", "csv", str(store)]).output)))
    assert len(rows) == 3 and {r["severity"] for r in rows} == {"info", "high"}
    assert all(r["source_path"] == str(store) for r in rows)


def test_min_severity_and_fail_on_use_the_verdict(store):
    runner = CliRunner()
    shown = runner.invoke(scan_command, ["-f", "jsonl", "--min-severity", "high", str(store)]).output.splitlines()
    assert [json.loads(x)["severity"] for x in shown] == ["high", "high"]
    assert runner.invoke(scan_command, ["--fail-on", "high", str(store)]).exit_code == 3
    assert runner.invoke(scan_command, ["--fail-on", "critical", str(store)]).exit_code == 0


def test_scan_raw_blob_and_bad_inputs(tmp_path, evil_blob):
    runner = CliRunner()
    result = runner.invoke(scan_command, ["-f", "jsonl", str(evil_blob)])
    assert result.exit_code == 0 and json.loads(result.output)["severity"] == "critical"
    missing = tmp_path / "nope.db"
    result = runner.invoke(scan_command, [str(missing), str(evil_blob)])
    assert result.exit_code == 1 and "critical" in result.output and f"{missing}" in result.output
    assert runner.invoke(scan_command, ["--fail-on", "low", str(missing), str(evil_blob)]).exit_code == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    result = runner.invoke(scan_command, ["--rules", str(bad), str(evil_blob)])
    assert result.exit_code == 2 and "invalid YAML" in result.output


def test_allowlist_option_adds_site_entries_and_rejects_bad_ones(tmp_path, store):
    runner = CliRunner()
    site = tmp_path / "site.yaml"
    site.write_text("allowlist:\n  - name: Our deployment tool\n    source: internal packaging standard\n"
                    "    creator: ['c:\\windows\\system32\\bitsadmin.exe']\n    owner: [system]\n"
                    "    hosts: ['203.0.113.9']\n    destinations: ['c:\\users\\public\\*']\n")
    result = runner.invoke(scan_command, ["-f", "jsonl", "--allowlist", str(site), str(store)])
    verdicts = {json.loads(x)["subject"]["job_name"]: json.loads(x) for x in result.output.splitlines()}
    assert verdicts["bits"]["allowlist"]["entry"] == "Our deployment tool"
    assert verdicts["bits"]["severity"] == "info" and "tool-creator" in verdicts["bits"]["allowlist"]["lowered"]
    broad = tmp_path / "broad.yaml"
    broad.write_text("allowlist:\n  - name: Too broad\n    source: s\n    creator: ['c:\\program files\\x\\x.exe']\n"
                     "    owner: [user]\n    hosts: ['*.googleapis.com']\n"
                     "    destinations: ['c:\\program files\\x\\*']\n")
    result = runner.invoke(scan_command, ["--allowlist", str(broad), str(store)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    error = [line for line in result.output.splitlines() if line.startswith("bitsdb: error:")]
    assert len(error) == 1 and str(broad) in error[0] and "anyone's content" in error[0]


def test_as_of_option(store):
    runner = CliRunner()
    result = runner.invoke(scan_command, ["-f", "jsonl", "--as-of", "2024-01-01T00:00:00+01:00", str(store)])
    assert result.exit_code == 0
    assert {json.loads(x)["as_of"] for x in result.output.splitlines()} == {"2023-12-31T23:00:00.0000000+00:00"}
    result = runner.invoke(scan_command, ["--as-of", "last tuesday", str(store)])
    assert result.exit_code == 2 and "--as-of" in result.output and "ISO 8601" in result.output


def test_rules_explain(store, tmp_path):
    runner = CliRunner()
    from bitsdb.rules.corpus import _guid

    job_id = _guid("cli-bad", 0)
    result = runner.invoke(rules_group, ["explain", "--job", job_id[:8], str(store)])
    assert result.exit_code == 0
    text = result.output
    assert f"job {job_id} 'bits'" in text and "the newest time in this store" in text
    assert "tool-creator [origin]: FIRED medium" in text and "creator_name in [bitsadmin.exe" in text
    assert "recovered-notify [history]: not fired" in text
    assert "APPLIED independent-facts -> high" in text and "verdict: high (confidence high)" in text
    assert "no    Windows Update / WSUS [machine]" in text
    hostile = runner.invoke(rules_group, ["explain", "--job", _guid("cli-ctl", 0)[:8], str(store)])
    assert hostile.exit_code == 0 and "\x1b" not in hostile.output and "verdict: high" in hostile.output
    missing = runner.invoke(rules_group, ["explain", "--job", "ffffffff", str(store)])
    assert missing.exit_code == 1 and "no job with an id starting 'ffffffff'" in missing.output


def test_scan_real_sample_nothing_above_low():
    if not REAL.exists():
        pytest.skip(f"real sample {REAL} not available")
    runner = CliRunner()
    assert runner.invoke(scan_command, ["--fail-on", "medium", "--recover", str(REAL)]).exit_code == 0
    result = runner.invoke(scan_command, ["-f", "jsonl", str(REAL)])
    assert result.exit_code == 0
    assert [json.loads(x)["severity"] for x in result.output.splitlines()] == ["info"]


def test_parse_with_findings_carries_the_verdict_scan_gives(tmp_path):
    """`parse --with-findings` attaches each job's verdict (severity, confidence, reasons) and the
    rule hits behind it, counted to the same time as `scan`, so the two never disagree."""
    from bitsdb.cli import cli

    demo = Path(__file__).resolve().parents[1] / "samples" / "demo"
    runner = CliRunner()
    parsed = [json.loads(line) for line in runner.invoke(cli, ["parse", "--with-findings", "--recover",
                                                                str(demo)]).output.splitlines()]
    scanned = [json.loads(line) for line in runner.invoke(cli, ["scan", "-f", "jsonl", "--recover",
                                                                 str(demo)]).output.splitlines()]
    by_record = {(v["subject"]["job_id"], v["subject"].get("provenance", {}).get("offset")): v for v in scanned}
    assert len(parsed) == len(scanned) > 5
    for record in parsed:
        verdict = by_record[(record["job_id"], record["provenance"].get("offset"))]
        assert record["verdict"]["severity"] == verdict["severity"]
        assert record["verdict"]["reasons"] == verdict["reasons"]
        assert [f["rule_id"] for f in record["findings"]] == [h["rule_id"] for h in verdict["hits"]]
    assert {r["verdict"]["severity"] for r in parsed} >= {"info", "critical"}
    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli, ["parse", "-f", "csv", "--with-findings",
                                                               str(demo)]).output)))
    assert {row["Verdict"] for row in rows} >= {"info", "critical"}


def test_every_command_counts_age_rules_to_the_same_time():
    """A store's jobs count to that store's newest time, log-only jobs to the logs' newest time, unless
    --as-of: parse --with-findings and scan agree."""
    from bitsdb.cli import cli
    from conftest import real_sample

    demo = Path(__file__).resolve().parents[1] / "samples" / "demo"
    logs = real_sample("evtx")
    runner = CliRunner()
    parsed = [json.loads(line) for line in runner.invoke(cli, ["parse", "--with-findings", str(demo), str(logs)])
              .output.splitlines()]
    scanned = [json.loads(line) for line in runner.invoke(cli, ["scan", "-f", "jsonl", str(demo), str(logs)])
               .output.splitlines()]
    jobs = [r["verdict"]["as_of"] for r in parsed if r["record_type"] == "job"]
    log_jobs = [r["verdict"]["as_of"] for r in parsed if r["record_type"] == "log_job"]
    assert jobs and log_jobs and len(set(jobs)) == len(set(log_jobs)) == 1 and jobs[0] != log_jobs[0]
    scanned_jobs = [v for v in scanned if v["subject"]["kind"] == "job"]
    assert {v["as_of"] for v in scanned_jobs if v["subject"]["provenance"]["source_kind"] != "evtx"} == set(jobs)
    assert {v["as_of"] for v in scanned_jobs if v["subject"]["provenance"]["source_kind"] == "evtx"} == set(log_jobs)
    fixed = [json.loads(line) for line in runner.invoke(cli, ["scan", "-f", "jsonl", "--as-of", "2030-01-01",
                                                               str(demo), str(logs)]).output.splitlines()]
    assert {v["as_of"] for v in fixed if v["subject"]["kind"] == "job"} == {"2030-01-01T00:00:00.0000000+00:00"}
