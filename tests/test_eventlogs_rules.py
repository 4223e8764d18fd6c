"""Rules over event logs, process evidence and the BITS service (bitsdb/rules/eventlogs.yaml).

The shared logs and hives are judged as the issue asks; a large log of benign updater jobs (the
Bits-Client events real Windows hosts write for Windows Update, Defender, Edge, Google, Office,
Chrome and OneDrive) is built here from event records and must stay quiet.
"""

from __future__ import annotations

import lzma
import shutil

import pytest

from bitsdb.history import join
from bitsdb.model import Job, LogCoverage, LogEvent, ProcessEvent, Provenance, ServiceConfig
from bitsdb.rules.engine import load_rules
from bitsdb.sources.events import LogReadResult, Normaliser, read_log
from bitsdb.sources.evtx import RawRecord
from bitsdb.sources.service import service_config
from conftest import real_sample

BITS = "Microsoft-Windows-Bits-Client/Operational"
SECOND = 10_000_000


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def _picture(*names):
    return join([], [read_log(real_sample("evtx", name)) for name in names])


def test_the_shared_logs_are_judged(rules):
    picture = _picture("ID3-59-60-BITS_job_created.evtx", "ID4688-BITS_transfer_initiated.evtx",
                       "windows_bits_4_59_60_lolbas_desktopimgdownldr.evtx",
                       "persist_bitsadmin_Microsoft-Windows-Bits-Client-Operational.evtx")
    jobs = {job.display_name: job for job in picture.log_jobs}
    transfer = rules.assess(jobs["hackingarticles"], picture.latest_time())
    assert transfer.severity in ("medium", "high", "critical")
    assert {"bitsadmin-transfer-command", "tool-creator"} <= {h.rule_id for h in transfer.hits}
    desktop = rules.assess(jobs["Download LockScreen Image"], picture.latest_time())
    assert desktop.severity in ("high", "critical")
    backdoor = rules.assess(jobs["backdoor"], picture.latest_time())
    assert backdoor.severity in ("medium", "high", "critical")
    # Log-only jobs are not "still on disk".
    assert all(h.rule_id != "finished-job-present" for job in picture.log_jobs
               for h in rules.assess(job, picture.latest_time()).hits)


def test_unlinked_command_lines_are_judged_as_processes(rules):
    picture = _picture("ID4688-BITS_transfer_initiated.evtx")          # the Bits-Client log is not given
    (process,) = picture.processes
    verdict = rules.assess_record("process", process)
    assert verdict.severity == "medium" and [h.rule_id for h in verdict.hits] == ["bitsadmin-transfer-process"]
    powershell = _picture("ID800-4103-4104-PowerShell_BITS_job_started.evtx").processes
    assert all(rules.assess_record("process", p).severity == "medium" for p in powershell)   # a .ps1 into C:\Users


def _hive(tmp_path, patch=None):
    target = tmp_path / "SYSTEM"
    with lzma.open(real_sample("hives", "SYSTEM_win10_1709.xz")) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out)
    if patch:
        old, new = (text.encode("utf-16-le") for text in patch)
        target.write_bytes(target.read_bytes().replace(old, new))
    return str(target)


def test_shared_hives_give_no_finding_and_a_tampered_service_dll_a_high_one(rules, tmp_path):
    for name in ("SYSTEM_win7.xz", "SYSTEM_win10_1709.xz"):
        target = tmp_path / name[:-3]
        with lzma.open(real_sample("hives", name)) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
        verdict = rules.assess_record("service", service_config(str(target)))
        assert verdict.severity == "info" and verdict.hits == [], name
    tampered = service_config(_hive(tmp_path, (r"%SystemRoot%\System32\qmgr.dll", r"%SystemRoot%\System32\evil.dll")))
    verdict = rules.assess_record("service", tampered)
    assert verdict.severity == "high" and [h.rule_id for h in verdict.hits] == ["service-dll-not-default"]


def test_service_start_type_and_image_path(rules):
    base = dict(start=2, start_name="AUTO", image_path=r"%SystemRoot%\System32\svchost.exe -k netsvcs -p",
                service_dll=r"%SystemRoot%\System32\qmgr.dll", object_name="LocalSystem")

    def hits(**change):
        return [h.rule_id for h in rules.assess_record("service", ServiceConfig(**{**base, **change})).hits]

    assert hits() == []
    assert hits(image_path=r"C:\Windows\System32\svchost.exe -k netsvcs") == []
    assert hits(image_path=r"C:\Users\Public\svchost.exe -k netsvcs") == ["service-image-not-default"]
    assert hits(start=4, start_name="DISABLED") == ["service-disabled"]
    assert hits(start=3, start_name="MANUAL") == []                       # a Windows default on some versions
    earlier = {"start": 2, "image_path": base["image_path"], "service_dll": base["service_dll"]}
    assert hits(start=3, start_name="MANUAL", other_control_sets={"ControlSet002": earlier}) == [
        "service-manual-after-automatic"]
    earlier_dll = {**earlier, "start": 3, "service_dll": r"C:\Windows\System32\evil.dll"}
    assert hits(start=3, start_name="MANUAL", other_control_sets={"ControlSet002": earlier_dll}) == [
        "service-changed-between-control-sets"]
    assert hits(object_name="NT AUTHORITY\\NetworkService") == ["service-account-not-default"]


def _system_event(event_id, data):
    return Normaliser("System.evtx")(RawRecord(1, 133000000000000000, "System", "Service Control Manager",
                                               event_id, 0, "WS1", None, None, data))


def test_system_log_service_events(rules):
    lowered = _system_event(7040, {"param1": "Background Intelligent Transfer Service", "param2": "auto start",
                                   "param3": "demand start", "param4": "BITS"})
    assert [h.rule_id for h in rules.assess_record("log_event", lowered).hits] == ["service-start-lowered-event"]
    raised = _system_event(7040, {"param1": "Background Intelligent Transfer Service", "param2": "demand start",
                                  "param3": "auto start", "param4": "BITS"})
    assert rules.assess_record("log_event", raised).hits == []
    other = _system_event(7040, {"param1": "Windows Search", "param2": "auto start", "param3": "disabled",
                                 "param4": "WSearch"})
    assert other is None                                                    # not the BITS service: not kept
    installed = _system_event(7045, {"ServiceName": "BITS", "ImagePath": r"C:\ProgramData\x.exe",
                                     "StartType": "auto start", "AccountName": "LocalSystem"})
    assert rules.assess_record("log_event", installed).severity == "high"


def test_cleared_empty_and_missing_logs_beside_a_database(rules):
    cleared = LogEvent(source="system", event_id=104, action="event log cleared", title=BITS)

    def hits(**values):
        return sorted(h.rule_id for h in rules.assess_record("log_coverage", LogCoverage(**values)).hits)

    assert hits(logs=["a"], bits_client_log="a", bits_client_records=40, database_jobs=3) == []
    assert hits(logs=["a"], bits_client_log="a", cleared=[cleared], database_jobs=3) == [
        "bits-log-cleared", "bits-log-empty-beside-database"]
    assert hits(logs=["Security.evtx"], database_jobs=3) == ["bits-log-missing-beside-database"]
    assert hits(logs=["Security.evtx"], database_jobs=0) == []
    assert hits(logs=["a"], bits_client_log="a", bits_client_records=9, bits_client_last=133000000000000000,
                database_jobs=1, database_last_activity=133000000000000000 + 3 * 864_000_000_000) == [
        "bits-log-ends-before-database"]


def test_notify_execution_and_failure_raise_the_job(rules):
    job = Job(job_id="11111111-2222-3333-4444-555555555555", display_name="upd", creator_image=None,
              provenance=Provenance(source_path="qmgr.db"))
    run = ProcessEvent(time=1, source="sysmon", event_id=1, image=r"C:\Windows\System32\cmd.exe",
                       command_line="cmd.exe /c calc", notify_execution=True)
    from bitsdb.model import JobHistory

    job.history = JobHistory(notify_executions=[run])
    verdict = rules.assess(job)
    assert verdict.severity == "high" and "notify-executed" in {h.rule_id for h in verdict.hits}
    assert rules.assess_record("process", run).severity == "high"


def test_policy_sets_the_expiry_the_lifetime_rule_uses(rules):
    from bitsdb.model import JobHistory

    day = 864_000_000_000
    job = Job(job_id="11111111-2222-3333-4444-555555555555", display_name="x", creation_time=133000000000000000,
              modification_time=133000000000000000 + 60 * day, provenance=Provenance(source_path="qmgr.db"))
    assert "long-lived-job" not in {h.rule_id for h in rules.assess(job).hits}           # 60 < 90 days
    job.history = JobHistory(inactivity_timeout_days=30)
    assert "long-lived-job" in {h.rule_id for h in rules.assess(job).hits}               # 60 > the policy's 30


# --------------------------------------------------------------------------- a large benign log

#: (creator, log owner, title, remote URL, local name) as these updaters really write them.
UPDATERS = [
    (r"C:\Windows\System32\svchost.exe", r"NT AUTHORITY\SYSTEM", "WU Client Download",
     "http://7.au.download.windowsupdate.com/c/msdownload/update/software/secu/2023/05/"
     "windows10.0-kb5026361-x64_{n:040x}.cab",
     r"C:\Windows\SoftwareDistribution\Download\{n:032x}\windows10.0-kb5026361-x64.cab"),
    (r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.23050.5-0\MsMpEng.exe", r"NT AUTHORITY\SYSTEM",
     "Microsoft Defender Antivirus definition update",
     "https://definitionupdates.microsoft.com/download/DefinitionUpdates/versionedsignatures/AM/1.391.{n}.0/"
     "amd64/mpam-d.exe",
     r"C:\ProgramData\Microsoft\Windows Defender\Definition Updates\Updates\mpam-d-{n}.exe"),
    (r"C:\Program Files (x86)\Microsoft\EdgeUpdate\MicrosoftEdgeUpdate.exe", r"NT AUTHORITY\SYSTEM",
     r"C:\Program Files (x86)\Microsoft\EdgeUpdate\Download\{{{n:08X}-1111-2222-3333-444444444444}}",
     "http://msedge.b.tlu.dl.delivery.mp.microsoft.com/filestreamingservice/files/{n:08x}-aaaa-bbbb-cccc-"
     "dddddddddddd?P1=1688000000&P2=404&P3=2&P4=abc",
     r"C:\Program Files (x86)\Microsoft\EdgeUpdate\Download\{{{n:08X}-1111-2222-3333-444444444444}}"
     r"\114.0.1823.{n}\MicrosoftEdge_X64_114.0.1823.{n}.exe"),
    (r"C:\Program Files (x86)\Google\Update\GoogleUpdate.exe", r"NT AUTHORITY\SYSTEM",
     r"C:\Program Files (x86)\Google\Update\Download\{{{n:08X}-5555-6666-7777-888888888888}}",
     "http://edgedl.me.gvt1.com/edgedl/release2/chrome/acihtkcueyye3ymoj2afvv7ulzxa_114.0.5735.{n}/"
     "114.0.5735.{n}_chrome_installer.exe",
     r"C:\Program Files (x86)\Google\Update\Download\{{{n:08X}-5555-6666-7777-888888888888}}\114.0.5735.{n}"
     r"\114.0.5735.{n}_chrome_installer.exe"),
    (r"C:\Program Files\Common Files\microsoft shared\ClickToRun\OfficeClickToRun.exe", r"NT AUTHORITY\SYSTEM",
     "Office Click-to-Run update {n}",
     "http://officecdn.microsoft.com/pr/492350f6-3a01-4f97-b9c0-c7c6ddf67d60/Office/Data/16.0.16529.{n}/"
     "stream.x64.x-none.dat",
     r"C:\Program Files\Microsoft Office\Updates\Download\PackageFiles\{n:08X}\root\stream.x64.x-none.dat"),
    (r"C:\Program Files\Google\Chrome\Application\chrome.exe", r"CONTOSO\alice", "Chrome Component Updater",
     "http://edgedl.me.gvt1.com/edgedl/release2/chrome_component/{n:016x}_1.0.0.{n}/1.0.0.{n}_all_{n:x}.crx3",
     r"C:\Users\alice\AppData\Local\Temp\chrome_BITS_{n}_1234\1.0.0.{n}_all.crx3"),
    (r"C:\Users\alice\AppData\Local\Microsoft\OneDrive\OneDriveStandaloneUpdater.exe", r"CONTOSO\alice",
     "UpdateDescriptionXml", "https://g.live.com/1rewlive5skydrive/ODSUProduction64?n={n}",
     r"C:\Users\alice\AppData\Local\Microsoft\OneDrive\StandaloneUpdater\update{n}.xml"),
]


def _benign_log(jobs_per_updater: int) -> LogReadResult:
    normalise = Normaliser("Microsoft-Windows-Bits-Client%4Operational.evtx")
    events, record, when = [], 1000, 133250000000000000
    for n in range(jobs_per_updater):
        for creator, owner, title, url, local in UPDATERS:
            job_id = f"{n:08x}-{record:04x}-4000-8000-{record:012x}"
            file_id = f"{record:08x}-{n:04x}-4000-8000-{n:012x}"
            values = dict(n=n)
            url, local, title = url.format(**values), local.format(**values), title.format(**values)
            records = [
                (3, {"jobTitle": title, "jobId": job_id, "jobOwner": owner, "processPath": creator, "processId": 4000 + n}),
                (16403, {"User": owner, "jobTitle": title, "jobId": job_id, "jobOwner": owner, "fileCount": 1,
                         "RemoteName": url, "LocalName": local, "processId": 4000 + n}),
                (59, {"transferId": file_id, "name": title, "Id": job_id, "url": url, "peer": "",
                      "fileTime": "2023-06-01T00:00:00.000000Z", "fileLength": 1 << 20, "bytesTotal": 1 << 20,
                      "bytesTransferred": 0, "bytesTransferredFromPeer": 0}),
                (60, {"transferId": file_id, "name": title, "Id": job_id, "url": url, "peer": "", "hr": 0,
                      "fileLength": 1 << 20, "bytesTotal": 1 << 20, "bytesTransferred": 1 << 20, "proxy": ""}),
                (4, {"User": owner, "jobTitle": title, "jobId": job_id, "jobOwner": owner, "fileCount": 1,
                     "bytesTransferred": 1 << 20, "bytesTransferredFromPeer": 0}),
            ]
            for event_id, data in records:
                record += 1
                when += 7 * SECOND
                events.append(normalise(RawRecord(record, when, BITS, "Microsoft-Windows-Bits-Client", event_id,
                                                  1, "WS1.contoso.com", "S-1-5-18", 1180, data)))
    return LogReadResult(path="Microsoft-Windows-Bits-Client%4Operational.evtx", events=events)


def test_a_large_log_of_benign_updater_jobs_stays_quiet(rules):
    log = _benign_log(30)
    picture = join([], [log])
    assert len(picture.log_jobs) == 30 * len(UPDATERS) and len(log.events) == 5 * len(picture.log_jobs)
    loud = []
    for job in picture.log_jobs:
        verdict = rules.assess(job, picture.latest_time())
        if verdict.severity not in ("info", "low"):
            loud.append((job.display_name, job.creator_image, verdict.severity, [h.rule_id for h in verdict.hits]))
    assert loud == []
    for kind, record in (("log_coverage", entry) for entry in picture.coverage):
        assert rules.assess_record(kind, record).severity in ("info", "low")


def test_log_creator_fills_in_where_the_record_has_none(rules):
    from bitsdb.model import JobHistory

    legacy = Job(job_id="11111111-2222-3333-4444-555555555555", display_name="x", creator_image=None,
                 provenance=Provenance(source_path="qmgr0.dat", source_kind="legacy_state_file"))
    assert "tool-creator" not in {h.rule_id for h in rules.assess(legacy).hits}
    legacy.history = JobHistory(creator_image=r"C:\Windows\System32\bitsadmin.exe")
    assert "tool-creator" in {h.rule_id for h in rules.assess(legacy).hits}
