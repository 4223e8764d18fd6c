"""Event logs and hives found wherever the evidence layer looks, and through the commands.

Collections with KAPE `%4` names, zips and an NTFS image are built in tmp_path from the real
logs (copies for the test only; never written into the project).
"""

from __future__ import annotations

import json
import lzma
import shutil

import pytest
from click.testing import CliRunner

from bitsdb.cli import cli
from bitsdb.evidence import run_batch
from bitsdb.forge.evidence import missing_tools, ntfs_volume, system_hive, write_volume, zip_folder
from conftest import real_sample

BITS_LOG = "Microsoft-Windows-Bits-Client%4Operational.evtx"
TRANSFER_JOB = "5f2863d6-e0ab-4470-8530-8f129b46177a"


def _stage_volume(root, with_downloader=False):
    """A volume tree: winevt/Logs with the Bits-Client and Security logs under KAPE names, an unrelated
    log that must not be read, and a SYSTEM hive."""
    logs = root / "Windows" / "System32" / "winevt" / "Logs"
    logs.mkdir(parents=True)
    shutil.copyfile(real_sample("evtx", "ID3-59-60-BITS_job_created.evtx"), logs / BITS_LOG)
    shutil.copyfile(real_sample("evtx", "ID4688-BITS_transfer_initiated.evtx"), logs / "Security.evtx")
    shutil.copyfile(real_sample("evtx", "ID60-High_volume_file_downloaded_with_BITS.evtx"), logs / "Application.evtx")
    write_volume(root, real_sample("artemis", "win10_qmgr.db") if with_downloader else None,
                 hives={"SYSTEM": system_hive("JUMP01")})
    return root


def _log_jobs(items):
    from bitsdb.history import join

    return join([j for item in items for r in item.results for j in r.jobs],
                [log for item in items for log in item.logs]).log_jobs


def test_kape_collection_logs_and_hive(tmp_path):
    item = tmp_path / "2024-05-01T101500_JUMP01"
    _stage_volume(item / "C")
    report = run_batch([tmp_path], jobs=1, progress=False)
    assert report.failures == []
    logs = [log for i in report.items for log in i.logs]
    assert sorted(log.path.rsplit("/", 1)[-1] for log in logs) == [BITS_LOG, "Security.evtx"]
    (job,) = [j for j in _log_jobs(report.items) if j.job_id == TRANSFER_JOB]
    provenance = job.provenance
    assert provenance.host == "JUMP01" and provenance.host_source == "SYSTEM hive"
    assert provenance.path_in_evidence == f"C/Windows/System32/winevt/Logs/{BITS_LOG}"
    assert provenance.record_index == 10260 and provenance.source_sha256
    assert job.history.processes and job.history.processes[0].operations[0].operation == "transfer"


def test_zip_of_a_collection(tmp_path):
    stage = tmp_path / "stage"
    _stage_volume(stage / "C", with_downloader=True)
    archive = zip_folder(stage, tmp_path / "JUMP01.zip")
    report = run_batch([archive], jobs=1, progress=False)
    assert report.failures == []
    assert report.results and sum(len(i.logs) for i in report.items) == 2
    from bitsdb.history import join

    (service,) = join([], [], [s for i in report.items for s in i.services]).services   # one hive, two groups
    assert service.start is None and "no Services\\BITS key" in service.warnings[0]   # the forged hive has none
    assert service.provenance.source_path == f"{archive}!C/Windows/System32/config/SYSTEM"
    (job,) = [j for j in _log_jobs(report.items) if j.job_id == TRANSFER_JOB]
    assert job.provenance.source_path == f"{archive}!C/Windows/System32/winevt/Logs/{BITS_LOG}"


@pytest.mark.tool
def test_ntfs_image_logs_are_found(tmp_path):
    pytest.importorskip("dfvfs", reason="disk images need the optional extra: pip install 'bitsdb[images]'")
    reason = missing_tools("mkntfs", "ntfs-3g")
    if reason:
        pytest.skip(reason)
    stage = _stage_volume(tmp_path / "stage", with_downloader=True)
    try:
        image = ntfs_volume(tmp_path / "disk.raw", 8, stage)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    report = run_batch([image], jobs=1, progress=False)
    assert report.failures == []
    names = sorted(log.path.rsplit("/", 1)[-1] for i in report.items for log in i.logs)
    assert names == [BITS_LOG, "Security.evtx"]
    (job,) = [j for j in _log_jobs(report.items) if j.job_id == TRANSFER_JOB]
    assert job.provenance.source_path == f"{image}!Windows/System32/winevt/Logs/{BITS_LOG}"
    assert job.provenance.file_times and job.provenance.host == "JUMP01"


def _run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_parse_scan_and_timeline_include_the_logs(tmp_path):
    logs = real_sample("evtx")
    parsed = _run("parse", str(logs))
    assert parsed.exit_code == 0, parsed.output
    records = [json.loads(line) for line in parsed.output.splitlines()]
    kinds = sorted({r["record_type"] for r in records})
    assert kinds == ["log_coverage", "log_event", "log_job", "process"]
    transfer = next(r for r in records if r.get("job_id") == TRANSFER_JOB)
    assert transfer["provenance"]["source_kind"] == "evtx" and transfer["history"]["log_only"]
    timeline = _run("timeline", "-f", "timesketch", str(logs))
    events = [json.loads(line) for line in timeline.output.splitlines()]
    from bitsdb.sources.events import read_log

    total = sum(len(log.events) + len(log.processes) for log in map(read_log, sorted(logs.glob("*.evtx"))))
    assert len(events) == total - 1              # one per log event (the dllhost 4688 is not BITS evidence)
    assert {e["data_type"] for e in events} == {"windows:evtx:bits_client", "windows:evtx:security",
                                                "windows:evtx:powershell"}
    table = _run("parse", "-f", "table", str(logs))
    assert "Log-only job 5f2863d6" in table.output and "log lifecycle" in table.output


def test_damaged_log_keeps_what_parses_and_says_so_in_one_line(tmp_path):
    data = bytearray(real_sample("evtx", "ID800-4103-4104-PowerShell_BITS_job_started.evtx").read_bytes())
    records = [i for i in range(0x1200, 0x10000) if data[i:i + 4] == b"\x2a\x2a\x00\x00"]
    data[records[3] + 24:records[3] + 200] = b"\xff" * 176       # record 4's body
    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(bytes(data))
    result = _run("parse", str(damaged))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("bitsdb: error:")]
    assert len(errors) == 1 and "damaged event log; 1 part(s) skipped (0 chunk(s), 1 record(s))" in errors[0]
    records = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    processes = [r for r in records if r["record_type"] == "process"]
    assert sorted(p["event_id"] for p in processes) == [800, 4103, 4104]     # record 4 was a 4103 of Join-Path


def test_not_an_event_log_is_one_line(tmp_path):
    bogus = tmp_path / "bogus.evtx"
    bogus.write_bytes(b"ElfFile\x00" + b"\x00" * 100)
    result = _run("parse", str(bogus))
    assert result.exit_code == 1 and "bogus.evtx" in result.output and "Traceback" not in result.output


def test_loose_system_hive(tmp_path):
    hive = tmp_path / "SYSTEM"
    with lzma.open(real_sample("hives", "SYSTEM_win10_1709.xz")) as source, open(hive, "wb") as out:
        shutil.copyfileobj(source, out)
    result = _run("parse", str(hive))
    assert result.exit_code == 0, result.output
    (service,) = [json.loads(line) for line in result.output.splitlines()]
    assert service["record_type"] == "service" and service["start_name"] == "AUTO"
    assert service["provenance"]["source_path"] == str(hive)


def test_ecs_events_of_the_logs_use_ecs_fields_only(tmp_path):
    from test_timeline import TYPE_CHECKS, _leaves

    yaml = pytest.importorskip("yaml")
    reference = real_sample("..", "reference", "ecs-9.4.0", "ecs_flat.yml")
    fields = yaml.load(reference.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    out = _run("timeline", "-f", "ecs", str(real_sample("evtx"))).output
    docs = [json.loads(line) for line in out.splitlines()]
    assert any("process" in doc for doc in docs) and any("url" in doc for doc in docs)
    for doc in docs:
        for name, value in _leaves(doc):
            if name == "bits" or name.startswith("bits."):
                continue
            assert name in fields, f"{name} is not an ECS 9.4.0 field"
            values = value if isinstance(value, list) else [value]
            assert all(TYPE_CHECKS[fields[name]["type"]](v) for v in values), (name, value)
            allowed = {a["name"] for a in fields[name].get("allowed_values", [])}
            assert not allowed or set(values) <= allowed, (name, values)
