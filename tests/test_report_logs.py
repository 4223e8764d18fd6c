"""The report with event-log histories: log-only jobs, lifecycles, command lines, notify-command runs and
host records of no job (bitsdb.history's join, docs/EVENTLOGS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb.cli import cli
from bitsdb.model import Job, JobHistory, JobState, LogEvent, ProcessEvent, Provenance
from bitsdb.timeutil import iso_to_filetime
from conftest import real_sample, report_data

pytest.importorskip("jinja2", reason="the report extra is not installed: pip install '.[report]'")
pytest.importorskip("plotly", reason="the report extra is not installed: pip install '.[report]'")

from bitsdb.report import ReportBuilder, render_report  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "samples" / "demo"
HOSTILE_COMMAND = 'C:\\Users\\Public\\"><img src=x onerror=alert(7)>.exe /run'


def no_verdict(_job, _as_of=None) -> dict:
    return {"severity": "info", "confidence": None, "reasons": [], "hits": [], "allowlist": None}


def at(text: str) -> int:
    return iso_to_filetime(text)


def persistence_job_with_history() -> Job:
    """A database job whose notify command the logs show running (Sysmon 1 under the BITS service host)."""
    prov = Provenance(source_path="C:/case/HOST1/qmgr.db", host="HOST1")
    log = Provenance(source_path="C:/case/HOST1/Microsoft-Windows-Bits-Client%4Operational.evtx", host="HOST1",
                     source_kind="evtx", table="Microsoft-Windows-Bits-Client/Operational", record_index=12)
    created = LogEvent(time=at("2025-03-01T10:00:00.1234567"), source="bits-client", event_id=3,
                       action="job created", job_id="11111111-2222-4333-8444-555555555555", title="updater",
                       owner="HOST1\\eve", process_path="C:\\Windows\\System32\\bitsadmin.exe", process_id=4242,
                       provenance=log)
    ran = ProcessEvent(time=at("2025-03-01T10:06:00.0000001"), source="sysmon", event_id=1,
                       image="C:\\Users\\Public\\payload.exe", command_line=HOSTILE_COMMAND,
                       parent_image="C:\\Windows\\System32\\svchost.exe",
                       parent_command_line="svchost.exe -k netsvcs -p -s BITS", notify_execution=True,
                       job_ids=["11111111-2222-4333-8444-555555555555"], provenance=log)
    history = JobHistory(owner_account="HOST1\\eve", creator_image="C:\\Windows\\System32\\bitsadmin.exe",
                         creator_process_id=4242, computer="HOST1.corp.example", events=[created],
                         notify_executions=[ran])
    return Job(job_id="11111111-2222-4333-8444-555555555555", display_name="updater", state=JobState.TRANSFERRED,
               owner_sid="S-1-5-21-1-2-3-1001", notify_program="C:\\Users\\Public\\payload.exe",
               creation_time=at("2025-03-01T10:00:00.1234567"), modification_time=at("2025-03-01T10:05:00"),
               completion_time=at("2025-03-01T10:05:00"), provenance=prov, history=history)


def test_notify_runs_and_log_events_are_on_the_card_and_its_row():
    builder = ReportBuilder(no_verdict)
    builder.add_job(persistence_job_with_history())
    view = builder.build()
    (card,) = view["jobs"]
    assert card["notify_ran"] is True and card["origin"] == "live"
    assert card["history"]["notify_runs"][0]["text"].find(HOSTILE_COMMAND) >= 0
    assert card["history"]["owner_account"] == "HOST1\\eve" and card["history"]["creator_pid"] == "4242"
    notify = [m for m in card["marks"] if m["notify"]]
    assert len(notify) == 1 and notify[0]["notify"] == HOSTILE_COMMAND and notify[0]["origin"] == "log"
    assert notify[0]["time"] == "2025-03-01T10:06:00.0000001+00:00"
    assert card["end"] == notify[0]["time"]                    # the bar reaches the last known activity
    assert any(m["kind"].startswith("bits-log-bits-client-3") for m in card["marks"])
    page = render_report(view)
    assert HOSTILE_COMMAND not in page and report_data(page)["jobs"][0]["history"] == card["history"]


def test_shared_event_logs_give_log_only_jobs_with_their_lifecycle(tmp_path):
    logs = real_sample("evtx")
    out = tmp_path / "logs.html"
    result = CliRunner().invoke(cli, ["report", "--no-progress", "-o", str(out), str(DEMO), str(logs)])
    assert result.exit_code == 0, result.output
    data = report_data(out.read_text(encoding="utf-8"))
    parsed = [json.loads(line) for line in CliRunner().invoke(cli, ["parse", str(logs)]).output.splitlines()]
    log_only = [r for r in parsed if r.get("record_type") == "log_job"]
    assert log_only
    cards = [j for j in data["jobs"] if j["origin"] == "log"]
    assert data["overview"]["records"]["log"] == len(log_only) == len(cards)
    assert data["overview"]["stores"] == 1                     # the demo's qmgr.db; event logs are not stores
    transfer = next(j for j in cards if j["name"] == "hackingarticles")
    assert transfer["creator"].lower().endswith("bitsadmin.exe")
    assert transfer["files"][0]["url"].startswith("https://")
    assert transfer["history"]["processes"], "the bitsadmin /transfer command line is linked to its job"
    assert transfer["start"] < transfer["end"] and all(m["origin"] == "log" for m in transfer["marks"])
    backdoor = next(j for j in cards if j["name"] == "backdoor")
    assert backdoor["files"][0]["url"].lower().startswith("c:\\")   # Windows 7: a local path as "URL"
    # the verdicts are scan's: log-only jobs by job id, records of no job by kind
    scan = [json.loads(line) for line in
            CliRunner().invoke(cli, ["scan", "-f", "jsonl", str(DEMO), str(logs)]).output.splitlines()]
    for card in cards:
        (verdict,) = [v for v in scan if v["subject"].get("job_id") == card["job_id"]]
        assert card["severity"] == verdict["severity"] and card["reasons"] == [r["text"] for r in verdict["reasons"]]
    records = sorted((r["kind"], r["severity"]) for h in data["hosts"] for r in h["records"])
    judged = sorted((v["subject"]["kind"], v["severity"]) for v in scan if v["subject"]["kind"] != "job")
    assert records == judged and any(kind == "process" for kind, _ in records)
    for host in data["hosts"]:                 # a host's worst counts its records of no job too
        levels = [level for level, n in host["counts"].items() if n] + [r["severity"] for r in host["records"]]
        assert host["worst"] == max(levels, key=data["levels"].index)


def test_orphan_files_are_counted_under_their_host():
    from bitsdb.model import JobFile

    builder = ReportBuilder(no_verdict)
    builder.add_job(persistence_job_with_history())
    builder.add_orphan(JobFile(file_id="aaaaaaaa-0000-4000-8000-000000000001",
                               provenance=Provenance(source_path="C:/case/HOST1/qmgr.db", host="HOST1")))
    builder.add_orphan(JobFile(file_id="aaaaaaaa-0000-4000-8000-000000000002"))
    view = builder.build()
    (host,) = view["hosts"]
    assert host["name"] == "HOST1" and host["orphan_files"] == 1
    assert view["overview"]["orphan_files"] == 2 and builder.orphans["(unknown host)"] == 1
