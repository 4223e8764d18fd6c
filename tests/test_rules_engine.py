"""Rules engine: normaliser, condition language, load errors, findings, real samples, docs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import bitsdb
from bitsdb.model import JobState, JobType, Provenance
from bitsdb.rules import RuleError, evaluate, load_rules, normalise_path
from bitsdb.rules.corpus import build_job
from bitsdb.rules.paths import command_image, parse_remote

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples" / "real"
SEVERITY = ["info", "low", "medium", "high", "critical"]


@pytest.mark.parametrize("given, expected", [
    (r"C:\PROGRA~1\Contoso\x.exe", r"c:\program files\contoso\x.exe"),
    (r"C:\PROGRA~2\x.exe", r"c:\program files (x86)\x.exe"),
    (r"c:\progra~3\evil.exe", r"c:\programdata\evil.exe"),
    (r"C:\Windows\System32\WindowsPowerShell\v1.0\POWERS~1.EXE", r"c:\windows\system32\windowspowershell\v1.0\powershell.exe"),
    ('"C:\\Windows\\System32\\cmd.exe"  ', r"c:\windows\system32\cmd.exe"),
    ("%COMSPEC%", r"c:\windows\system32\cmd.exe"),
    (r"%TEMP%\a.ps1", r"c:\users\%user%\appdata\local\temp\a.ps1"),
    (r"\\?\C:/Users//Public/a.exe ", r"c:\users\public\a.exe"),
    (r"\\?\UNC\srv\share\x", r"\\srv\share\x"),
    (r"\??\C:\Windows\x.dll", r"c:\windows\x.dll"),
    (r"C:\Users\bob\invoice.pdf .exe  ", r"c:\users\bob\invoice.pdf .exe"),
])
def test_normalise_path(given, expected):
    assert normalise_path(given) == expected


def test_command_image_from_parameters_when_program_empty():
    assert command_image("", '"C:\\Program Files\\x y\\a.exe" -q') == r"c:\program files\x y\a.exe"
    assert command_image(None, "%ComSpec% /c calc") == r"c:\windows\system32\cmd.exe"


@pytest.mark.parametrize("url, host, port, scheme", [
    ("http://1.2.3.4:8080/a", "1.2.3.4", 8080, "http"),
    ("https://[2001:db8::1]/x", "2001:db8::1", None, "https"),
    (r"\\10.0.0.1\share\a.exe", "10.0.0.1", None, "unc"),
    ("HTTPS://Evil.DuckDNS.org./a", "evil.duckdns.org", None, "https"),
    ("file:///c:/x", None, None, "file"),
])
def test_parse_remote(url, host, port, scheme):
    got = parse_remote(url)
    assert (got["host"], got["port"], got["scheme"]) == (host, port, scheme)


# ------------------------------------------------------------------ load errors


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    return path


RULE_HEAD = "rules:\n  - id: r1\n    title: t\n    severity: low\n    attack: [T1197]\n"


@pytest.mark.parametrize("body, fragment", [
    (RULE_HEAD + "    when: {field: no_such_field, exists: true}\n", "unknown field 'no_such_field'"),
    (RULE_HEAD + "    when: {field: display_name, regex: '(unclosed'}\n", "bad regex"),
    (RULE_HEAD + "    when: {field: display_name, in: $nope}\n", "unknown list '$nope'"),
    (RULE_HEAD + "    when: {field: display_name, equals: x, contains: y}\n", "exactly one operator"),
    (RULE_HEAD + "    when: {field: display_name, gt: 3}\n", "not a number"),
    (RULE_HEAD + "    when: {all: []}\n", "non-empty list"),
    (RULE_HEAD + "    colour: red\n    when: {field: display_name, exists: true}\n", "unknown key 'colour'"),
    (RULE_HEAD.replace("low", "severe") + "    when: {field: display_name, exists: true}\n", "severity must be"),
    (RULE_HEAD.replace("[T1197]", "[T1105]") + "    when: {field: display_name, exists: true}\n", "T1197"),
    (RULE_HEAD + "    when:\n      any_file:\n        any_file: {field: files.local_name, exists: true}\n",
     "cannot be nested"),
])
def test_bad_rule_is_a_clear_error_naming_file_rule_and_line(tmp_path, body, fragment):
    path = _write(tmp_path, body)
    with pytest.raises(RuleError) as info:
        load_rules([path])
    message = str(info.value)
    assert str(path) in message and "rule r1" in message and "(line " in message
    assert fragment in message
    assert "\n" not in message


def test_bad_yaml_names_the_line(tmp_path):
    path = _write(tmp_path, "rules:\n  - id: r1\n    title: [unclosed\n")
    with pytest.raises(RuleError, match=r"mine\.yaml \(line \d+, column \d+\): invalid YAML"):
        load_rules([path])


def test_error_line_points_at_the_bad_condition(tmp_path):
    body = RULE_HEAD + "    when:\n      all:\n        - {field: display_name, exists: true}\n" \
                       "        - {field: bogus, exists: true}\n"
    with pytest.raises(RuleError, match=r"\(line 9\): unknown field 'bogus'"):
        load_rules([_write(tmp_path, body)])


def test_duplicate_rule_id_and_name_only_allowlist_are_errors(tmp_path):
    dup = "rules:\n  - id: notify-command\n    title: t\n    severity: low\n    attack: [T1197]\n" \
          "    when: {field: display_name, exists: true}\n"
    with pytest.raises(RuleError, match="already defined"):
        load_rules([_write(tmp_path, dup)])
    name_only = "allowlist:\n  - name: x\n    job_name: ['Chrome Component Updater']\n"
    with pytest.raises(RuleError, match="never the name alone"):
        load_rules([_write(tmp_path, name_only)])


def test_user_rule_uses_builtin_lists_and_fires(tmp_path):
    body = ("rules:\n  - id: my-ps\n    title: PowerShell notify\n    severity: high\n    attack: [T1197]\n"
            "    explain: 'runs {notify_command}'\n    when: {field: notify_image_name, in: $powershell}\n")
    rules = load_rules([_write(tmp_path, body)])
    job = build_job({"notify_program": r"C:\Windows\System32\WINDOW~1\v1.0\POWERS~1.EXE"}, [{}], "u1")
    found = {f.rule_id: f for f in rules.evaluate(job)}
    assert found["my-ps"].severity == "high"
    assert "runs 'C:\\Windows\\System32\\WINDOW~1" in found["my-ps"].explanation


# ------------------------------------------------------------------ semantics


def _rules(tmp_path: Path, when: str):
    body = RULE_HEAD + "    when: " + when + "\n"
    return load_rules([_write(tmp_path, body)], builtin=False)


def test_files_any_all_and_per_file_scope(tmp_path):
    files = [{"local_name": r"C:\Users\Public\a.exe"}, {"local_name": r"C:\Data\b.txt"}]
    job = build_job({}, files, "scope")
    fired = lambda when: bool(_rules(tmp_path, when).evaluate(job))  # noqa: E731
    assert fired("{field: files.local_ext, equals: exe}")
    assert not fired("{field: files.local_ext, equals: exe, match: all}")
    assert fired("{field: files.local_ext, in: [exe, txt], match: all}")
    # two tests over the job's files may hit different files; any_file requires the same file
    assert fired("{all: [{field: files.local_ext, equals: exe}, {field: files.local_dir, equals: 'c:\\data\\'}]}")
    assert not fired("{any_file: {all: [{field: files.local_ext, equals: exe}, "
                     "{field: files.local_dir, equals: 'c:\\data\\'}]}}")
    assert fired("{all_files: {field: files.local_name, startswith: 'C:/'}}")
    no_files = build_job({}, [], "nofiles")
    assert not _rules(tmp_path, "{field: files.local_ext, exists: false, match: all}").evaluate(no_files)


def test_case_sensitivity_and_numbers(tmp_path):
    job = build_job({"display_name": "Contoso Update", "min_retry_delay": 601}, [{}], "case")
    assert _rules(tmp_path, "{field: display_name, equals: contoso update}").evaluate(job)
    assert not _rules(tmp_path, "{field: display_name, equals: contoso update, case: sensitive}").evaluate(job)
    assert _rules(tmp_path, "{field: min_retry_delay, gt: 600}").evaluate(job)
    assert not _rules(tmp_path, "{field: min_retry_delay, le: 600}").evaluate(job)
    assert _rules(tmp_path, "{not: {field: notify_command, exists: true}}").evaluate(job)
    assert _rules(tmp_path, "{field: notify_parameters, empty: true}").evaluate(job)


def test_finding_to_dict_is_json_and_names_job_and_provenance():
    job = build_job({"notify_program": r"C:\Users\Public\x.exe"}, [{}], "dict")
    job.provenance = Provenance(source_path="evidence/qmgr.db", table="Jobs", record_index=7)
    finding = next(f for f in evaluate(job) if f.rule_id == "notify-command")
    data = json.loads(json.dumps(finding.to_dict()))
    assert data["job_id"] == job.job_id and data["provenance"]["record_index"] == 7
    assert data["attack"][0] == "T1197" and data["severity"] == "high"
    assert "notify_command = 'C:\\Users\\Public\\x.exe'" in data["explanation"]
    assert {"field": "notify_command", "value": r"C:\Users\Public\x.exe"} in data["evidence"]


# ------------------------------------------------------------------ done criteria


@pytest.mark.parametrize("name", ["win10_qmgr.db", "win11_qmgr.db"])
def test_real_live_jobs_have_nothing_above_low(name):
    path = SAMPLES / "artemis" / name
    if not path.exists():
        pytest.skip(f"real sample {path} not available")
    jobs = list(bitsdb.parse(path))
    assert jobs
    for job in jobs:
        for finding in evaluate(job):
            assert SEVERITY.index(finding.severity) <= SEVERITY.index("low"), finding.explanation


def _assert_system_cmd_finding(job) -> None:
    findings = evaluate(job)
    top = [f for f in findings if "T1197" in f.attack and f.severity in ("high", "critical")
           and "cmd.exe" in f.explanation.lower()]
    assert top, [f.explanation for f in findings]
    assert any(f.rule_id == "notify-command" and f.severity == "critical" for f in findings)


def test_system_job_with_cmd_notify_appendix_a_equivalent():
    """The SafeBreach Win10 pre-ESE job (FORMAT.md Appendix A) rebuilt as a decoded Job."""
    job = build_job({"display_name": "STST", "owner_sid": "S-1-5-18", "integrity_rid": 0x4000,
                     "notify_program": r"c:\windows\System32\cmd.exe", "creator_image": "",
                     "state": "TRANSFERRING"},
                    [{"local_name": r"c:\temp\vlc.exe", "temp_name": r"c:\temp\BITFFC1.tmp",
                      "remote_name": "http://get.videolan.org/vlc/2.2.4/win64/vlc-2.2.4-win64.exe",
                      "bytes_total": 31717016, "bytes_transferred": 9985}], "stst")
    job.provenance = Provenance(source_path="qmgr0.dat", source_kind="legacy_state_file", state_file="current")
    assert job.type == JobType.DOWNLOAD and job.state == JobState.TRANSFERRING
    _assert_system_cmd_finding(job)


def test_system_job_with_cmd_notify_real_legacy_file():
    path = SAMPLES / "bitsinject" / "win10legacy_job_SYSTEM_cmd_vlc.dat"
    if importlib.util.find_spec("bitsdb.sources.legacy") is None:
        pytest.skip("bitsdb.sources.legacy (legacy state file decoder) not available yet")
    if not path.exists():
        pytest.skip(f"real sample {path} not available")
    jobs = list(bitsdb.parse(path))
    assert jobs
    _assert_system_cmd_finding(next(j for j in jobs if j.owner_sid == "S-1-5-18"))


def test_rules_doc_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gen_rules_doc", ROOT / "tools" / "gen_rules_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "docs/RULES.md is stale: run python tools/gen_rules_doc.py"
