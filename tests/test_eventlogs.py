"""Event logs, command lines, service configuration and the join (docs/EVENTLOGS.md).

The real logs and hives are read from ../shared/samples/real (skipped when absent); tampered
variants are built in tmp_path, never beside the samples.
"""

from __future__ import annotations

import base64
import lzma
import re
import shutil
from pathlib import Path

import pytest

from bitsdb.bitscmd import operations, split_args
from bitsdb.history import join
from bitsdb.model import Job, JobFile, JobState, Provenance
from bitsdb.sources.events import Normaliser, read_log
from bitsdb.sources.evtx import RawRecord, iter_records
from bitsdb.sources.service import hive_kind, service_config
from bitsdb.timeutil import filetime_to_iso

from conftest import real_sample


def evtx(name: str):
    return real_sample("evtx", name)


def all_logs():
    return [read_log(evtx(name)) for name in (
        "ID3-59-60-BITS_job_created.evtx", "ID4688-BITS_transfer_initiated.evtx",
        "ID60-High_volume_file_downloaded_with_BITS.evtx", "ID800-4103-4104-PowerShell_BITS_job_started.evtx",
        "persist_bitsadmin_Microsoft-Windows-Bits-Client-Operational.evtx",
        "windows_bits_4_59_60_lolbas_desktopimgdownldr.evtx")]


# --------------------------------------------------------------------------- command lines


def test_split_args_follows_commandlinetoargvw():
    assert split_args(r'a "b c" d\"e "f\\" g') == ["a", "b c", 'd"e', "f\\", "g"]
    assert split_args('  x   ""  y ') == ["x", "", "y"]


def test_bitsadmin_chain_gives_each_operation():
    text = (r'cmd.exe /c bitsadmin /create backdoor & bitsadmin /addfile backdoor "c:\windows\system32\cmd.exe" '
            r'c:\data\cmd.exe & bitsadmin /SetNotifyCmdLine backdoor c:\data\cmd.exe "/c calc.exe" '
            r'&& bitsadmin /resume backdoor & bitsadmin /list')
    ops = operations(text)
    assert [op.operation for op in ops] == ["create", "addfile", "setnotifycmdline", "resume"]
    assert ops[1].remote_name == r"c:\windows\system32\cmd.exe" and ops[1].local_name == r"c:\data\cmd.exe"
    assert (ops[2].program, ops[2].arguments) == (r"c:\data\cmd.exe", "/c calc.exe")
    assert all(op.job == "backdoor" and op.tool == "bitsadmin" for op in ops)


def test_bitsadmin_transfer_with_options_and_null_arguments():
    (op,) = operations(r'"C:\Windows\System32\bitsadmin.exe" /transfer j /download /priority high http://h/a c:\a')
    assert (op.operation, op.job, op.remote_name, op.local_name) == ("transfer", "j", "http://h/a", r"c:\a")
    assert op.options == ["/download", "/priority high"]
    (op,) = operations("bitsadmin /rawreturn /SetNotifyCmdLine j c:\\x.exe NULL")
    assert op.program == "c:\\x.exe" and op.arguments is None
    assert operations("notepad.exe c:\\notes\\bitsadmin.txt") == []


def test_powershell_cmdlets_positional_lists_and_encoded():
    ops = operations(r"Start-BitsTransfer 'http://a/1.exe','http://a/2.exe' -Dest c:\1.exe,c:\2.exe -Asynchronous")
    assert [(o.remote_name, o.local_name) for o in ops] == [("http://a/1.exe", r"c:\1.exe"), ("http://a/2.exe", r"c:\2.exe")]
    assert ops[0].options == ["-asynchronous"]
    script = "Start-BitsTransfer -Source http://x/y -Destination c:\\y -DisplayName upd"
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    (op,) = operations(f"powershell.exe -nop -enc {encoded}")
    assert (op.operation, op.job, op.remote_name) == ("transfer", "upd", "http://x/y")
    (op,) = operations('$j.SetNotifyCmdLine("C:\\Windows\\System32\\cmd.exe", "/c evil.exe")')
    assert (op.program, op.arguments) == ("C:\\Windows\\System32\\cmd.exe", "/c evil.exe")
    manifest = 'CmdletsToExport="Add-BitsFile","Complete-BitsTransfer","Start-BitsTransfer"'
    assert operations(manifest) == []


# --------------------------------------------------------------------------- reading real logs


def test_bits_client_v1_fields():
    log = read_log(evtx("ID3-59-60-BITS_job_created.evtx"))
    assert log.errors == [] and [e.event_id for e in log.events] == [3, 310, 59, 60, 4]
    created, _, started, stopped, completed = log.events
    assert created.job_id == "5f2863d6-e0ab-4470-8530-8f129b46177a"
    assert created.process_path == r"C:\Windows\System32\bitsadmin.exe" and created.process_id == 7680
    assert created.owner == r"OFFSEC\admmig" and created.provenance.record_index == 10260
    assert created.provenance.table == "Microsoft-Windows-Bits-Client/Operational"
    assert started.file_id == "746fd3d9-d296-42da-9f9c-b7ff6fa9151b"
    assert stopped.bytes_transferred == 50813 and stopped.hresult_hex == "0x00000000"
    assert completed.file_count == 1 and completed.bytes_transferred == 50813


def test_event_time_is_time_created_not_the_shifted_header():
    """The exported samples' record headers carry the next record's time (and 0 for the last)."""
    times = [r.time for r in iter_records(evtx("ID3-59-60-BITS_job_created.evtx"))]
    assert all(times) and times == sorted(times)
    assert filetime_to_iso(times[0]) == "2021-02-22T23:07:21.0433560+00:00"     # not the header's .2183344


def test_security_4688_is_parsed_into_operations():
    log = read_log(evtx("ID4688-BITS_transfer_initiated.evtx"))
    bitsadmin = [p for p in log.processes if p.operations]
    assert len(bitsadmin) == 1
    (op,) = bitsadmin[0].operations
    assert (op.operation, op.job, op.local_name) == ("transfer", "hackingarticles", "c:\\ignite.png")
    assert op.remote_name.startswith("https://www.ma-neobanque.com/")
    assert bitsadmin[0].user == r"OFFSEC\admmig" and bitsadmin[0].parent_image.endswith("cmd.exe")


def test_powershell_4104_4103_800_each_give_the_transfer():
    log = read_log(evtx("ID800-4103-4104-PowerShell_BITS_job_started.evtx"))
    assert sorted(p.event_id for p in log.processes) == [800, 4103, 4104]
    for process in log.processes:
        (op,) = process.operations
        assert op.remote_name.endswith("/T1197/T1197.md") and op.local_name == "C:\\Users\\bits.ps1"


# --------------------------------------------------------------------------- the join


def test_join_of_the_shared_logs():
    picture = join([], all_logs())
    jobs = {job.job_id: job for job in picture.log_jobs}
    transfer = jobs["5f2863d6-e0ab-4470-8530-8f129b46177a"]
    assert transfer.history.log_only and transfer.creator_image.endswith("bitsadmin.exe")
    assert transfer.files[0].bytes_transferred == 50813 and transfer.state == JobState.ACKNOWLEDGED
    assert transfer.provenance.source_kind == "evtx" and transfer.provenance.record_index == 10260
    (process,) = transfer.history.processes
    assert process.source == "security" and process.linked_by == "url"
    backdoor = next(job for job in picture.log_jobs if job.display_name == "backdoor")
    assert backdoor.files[0].remote_name == r"C:\Windows\system32\cmd.exe"
    assert backdoor.history.owner_account == r"IEWIN7\IEUser"
    assert backdoor.history.events[0].event_id == 3           # the Windows 7 event 3 found its job
    assert backdoor.history.events[0].data["job_id_from"].startswith("title and time")
    cancelled, iso = sorted((j for j in picture.log_jobs if j.display_name == "BITS Transfer"),
                            key=lambda j: j.modification_time)
    assert [e.event_id for e in cancelled.history.events] == [3, 5]
    assert [e.event_id for e in iso.history.events] == [3, 59, 60, 5]
    # The PowerShell transfer fetched another URL than any job the logs hold: it stays its own record.
    assert sorted(p.event_id for p in picture.processes) == [800, 4103, 4104]
    assert [e.event_id for e in picture.log_events] == [310]
    # The 4688 of dllhost.exe (an svchost child whose parent is not the BITS service) is dropped.
    assert all("dllhost" not in (p.image or "") for p in picture.processes)


def test_database_job_keeps_its_sid_and_gains_the_log_owner():
    db_job = Job(job_id="5F2863D6-E0AB-4470-8530-8F129B46177A", owner_sid="S-1-5-21-1-2-3-1111",
                 display_name="hackingarticles", provenance=Provenance(source_path="qmgr.db"))
    picture = join([db_job], [read_log(evtx("ID3-59-60-BITS_job_created.evtx"))])
    assert picture.log_jobs == [] and picture.jobs == [db_job]
    assert db_job.owner_sid == "S-1-5-21-1-2-3-1111" and db_job.history.owner_account == r"OFFSEC\admmig"
    assert not db_job.history.log_only and len(db_job.history.events) == 4


def test_powershell_transfer_links_to_the_job_that_fetched_its_url():
    job = Job(job_id="11111111-2222-3333-4444-555555555555", display_name="BITS Transfer",
              files=[JobFile(file_id=None, remote_name="https://raw.githubusercontent.com/redcanaryco/"
                                                         "atomic-red-team/master/atomics/T1197/T1197.md")],
              provenance=Provenance(source_path="qmgr.db", host="FS03"))
    picture = join([job], [read_log(evtx("ID800-4103-4104-PowerShell_BITS_job_started.evtx"))])
    assert sorted(p.event_id for p in job.history.processes) == [800, 4103, 4104]
    assert picture.processes == []


def _record(channel, event_id, data, time=132585124410433560, computer="WS1", pid=None):
    return RawRecord(record_id=7, time=time, channel=channel, provider=None, event_id=event_id, version=1,
                     computer=computer, user_sid=None, process_id=pid, data=data)


def test_notify_execution_from_sysmon_and_4688_parent_pid():
    normalise = Normaliser("x.evtx")
    sysmon = normalise(_record("Microsoft-Windows-Sysmon/Operational", 1, {
        "Image": r"C:\Windows\System32\cmd.exe", "CommandLine": "cmd.exe /c notepad.exe", "ProcessId": 4,
        "ParentImage": r"C:\Windows\System32\svchost.exe", "ParentProcessGuid": "{A}",
        "ParentCommandLine": r"C:\Windows\system32\svchost.exe -k netsvcs -p -s BITS"}))
    assert sysmon.notify_execution
    other = normalise(_record("Microsoft-Windows-Sysmon/Operational", 1, {
        "Image": r"C:\x.exe", "CommandLine": "x", "ParentImage": r"C:\Windows\System32\svchost.exe",
        "ParentCommandLine": r"C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule"}))
    assert other is None
    candidate = normalise(_record("Security", 4688, {
        "NewProcessName": r"C:\Windows\System32\cmd.exe", "CommandLine": "cmd /c calc", "NewProcessId": "0x10",
        "ProcessId": "0x450", "ParentProcessName": r"C:\Windows\System32\svchost.exe"}))
    assert candidate is not None and not candidate.notify_execution
    log = read_log(evtx("ID3-59-60-BITS_job_created.evtx"))       # BITS ran as PID 1104 (0x450) on jump01
    candidate.computer = "JUMP01"
    candidate.time = log.events[-2].time + 30 * 10_000_000
    log.processes.append(candidate)
    picture = join([], [log])
    (job,) = picture.log_jobs
    assert job.history.notify_executions == [candidate] and candidate.notify_execution
    candidate.parent_process_id = 0x999
    assert all(p is not candidate for p in join([], [log]).processes)   # any other svchost child: dropped


# --------------------------------------------------------------------------- service configuration


@pytest.fixture
def system_hive(tmp_path):
    def make(name: str, patch: tuple[str, str] | None = None):
        target = tmp_path / name
        with lzma.open(real_sample("hives", f"{name}.xz")) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
        if patch:
            old, new = (text.encode("utf-16-le") for text in patch)
            assert len(old) == len(new)
            data = target.read_bytes()
            assert old in data
            target.write_bytes(data.replace(old, new))
        return str(target)
    return make


def test_service_facts_of_the_real_hives(system_hive):
    win7 = service_config(system_hive("SYSTEM_win7"))
    assert (win7.start_name, win7.delayed_autostart) == ("MANUAL", True)
    assert win7.image_path == r"%SystemRoot%\System32\svchost.exe -k netsvcs"
    assert win7.service_dll == r"%SystemRoot%\System32\qmgr.dll" and win7.object_name == "LocalSystem"
    assert win7.other_control_sets["ControlSet002"]["start_name"] == "MANUAL"
    win10 = service_config(system_hive("SYSTEM_win10_1709"))
    assert win10.start_name == "AUTO" and win10.image_path.endswith("-k netsvcs -p")
    assert hive_kind(system_hive("SYSTEM_win10_1709")) == "SYSTEM"


def test_same_length_patch_of_service_dll_is_read(system_hive):
    path = system_hive("SYSTEM_win10_1709", (r"%SystemRoot%\System32\qmgr.dll", r"%SystemRoot%\System32\evil.dll"))
    assert service_config(path).service_dll == r"%SystemRoot%\System32\evil.dll"


def test_hive_key_time_past_year_9999_costs_that_time_only(system_hive, tmp_path):
    """A crafted last-write time of the Services\\BITS key once raised OverflowError: the whole
    service configuration was lost as an internal error."""
    data = bytearray(Path(system_hive("SYSTEM_win10_1709")).read_bytes())
    # nk cell: "nk", flags, last-write FILETIME at +4, ..., name length at +0x48, name at +0x4C.
    cells = [m.start() for m in re.finditer(rb"nk", data)
             if data[m.start() + 0x48:m.start() + 0x4A] == b"\x04\x00" and data[m.start() + 0x4C:m.start() + 0x50] == b"BITS"]
    assert cells, "the BITS key's cell"
    for cell in cells:
        data[cell + 4:cell + 12] = b"\xff" * 8
    crafted = tmp_path / "SYSTEM_crafted"
    crafted.write_bytes(data)
    config = service_config(str(crafted))
    assert config.key_last_written is None and config.start_name == "AUTO"
    assert service_config(system_hive("SYSTEM_win10_1709")).key_last_written == "2020-04-19T11:32:04.619244+00:00"


def test_replicated_log_reads_back_record_for_record(tmp_path):
    from bitsdb.forge.evtx import replicate_log
    from bitsdb.sources.events import iter_normalised

    target = tmp_path / "big.evtx"
    count = replicate_log(evtx("persist_bitsadmin_Microsoft-Windows-Bits-Client-Operational.evtx"), target, 0x1000 + 4 * 0x10000)
    events = list(iter_normalised(target))
    assert len(events) == count > 4 * 100 and target.stat().st_size == 0x1000 + 4 * 0x10000
    assert {e.event_id for e in events} == {3, 59, 60} and all(e.time for e in events)


def test_truncated_log_keeps_the_whole_records_of_its_cut_chunk(tmp_path):
    from bitsdb.forge.evtx import replicate_log

    whole = tmp_path / "whole.evtx"
    count = replicate_log(evtx("persist_bitsadmin_Microsoft-Windows-Bits-Client-Operational.evtx"), whole,
                          0x1000 + 3 * 0x10000)
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(whole.read_bytes()[:0x1000 + 2 * 0x10000 + 0x8000])      # half of the third chunk
    log = read_log(cut)
    per_chunk = count // 3
    assert 2 * per_chunk < len(log.events) < count          # the half chunk's whole records are kept
    (line,) = log.errors
    assert line.startswith("damaged event log; truncated:") and "last chunk cut short" in line
    assert read_log(whole).errors == []


def test_16403_gives_the_local_name_and_the_api_yields_log_only_jobs(tmp_path):
    normalise = Normaliser("x.evtx")
    added = normalise(_record("Microsoft-Windows-Bits-Client/Operational", 16403, {
        "User": r"WS1\bob", "jobTitle": "upd", "jobId": "{AAAAAAAA-1111-2222-3333-444444444444}",
        "jobOwner": r"WS1\bob", "fileCount": 1, "RemoteName": "http://x.test/a.exe",
        "LocalName": r"C:\Users\bob\AppData\Local\Temp\a.exe", "processId": 42}))
    assert (added.job_id, added.url, added.local_name) == ("aaaaaaaa-1111-2222-3333-444444444444",
                                                           "http://x.test/a.exe", r"C:\Users\bob\AppData\Local\Temp\a.exe")
    from bitsdb.sources.events import LogReadResult

    (job,) = join([], [LogReadResult(path="x.evtx", events=[added])]).log_jobs
    assert job.files[0].local_name.endswith("a.exe") and job.owner_name == r"WS1\bob"
    import bitsdb

    shutil.copyfile(evtx("windows_bits_4_59_60_lolbas_desktopimgdownldr.evtx"), tmp_path / "bits.evtx")
    (job,) = list(bitsdb.parse(tmp_path))
    assert job.history.log_only and job.creator_image.endswith("desktopimgdownldr.exe")


def test_coverage_counts_the_bits_client_log_clearings_and_database_activity():
    from bitsdb.sources.events import LogReadResult

    normalise = Normaliser("System.evtx")
    cleared = normalise(_record("System", 104, {"SubjectUserName": "bob", "SubjectDomainName": "WS1",
                                                "Channel": "Microsoft-Windows-Bits-Client/Operational"}))
    assert cleared.action == "event log cleared" and cleared.owner == r"WS1\bob"
    other = normalise(_record("System", 104, {"Channel": "Application"}))
    bits = read_log(evtx("ID3-59-60-BITS_job_created.evtx"))
    db_job = Job(job_id="11111111-2222-3333-4444-555555555555", creation_time=132585124410433560,
                 provenance=Provenance(source_path="qmgr.db"))
    picture = join([db_job], [bits, LogReadResult(path="System.evtx", events=[cleared, other])])
    (entry,) = picture.coverage
    assert entry.bits_client_log == bits.path and entry.bits_client_records == 5
    assert entry.cleared == [cleared] and entry.database_jobs == 1
    assert entry.database_last_activity == 132585124410433560
    assert entry.bits_client_first == bits.events[0].time


def test_inactivity_policy_of_the_host_reaches_its_jobs():
    from bitsdb.model import ServiceConfig

    policy = ServiceConfig(job_inactivity_timeout_days=30, policies={"JobInactivityTimeout": 30},
                           provenance=Provenance(source_path="SYSTEM", host="WS1"))
    mine = Job(job_id="11111111-2222-3333-4444-555555555555", provenance=Provenance(source_path="a", host="ws1"))
    other = Job(job_id="21111111-2222-3333-4444-555555555555", provenance=Provenance(source_path="b", host="WS2"))
    join([mine, other], [], [policy])
    assert mine.history.inactivity_timeout_days == 30 and other.history is None


def test_a_log_in_a_folder_whose_name_is_not_utf8_is_read(tmp_path):
    """Folder names come from the evidence (any bytes on Linux): the log is opened here and handed to
    the parser as a file, so its path never has to be valid UTF-8."""
    import os

    source = evtx("ID3-59-60-BITS_job_created.evtx")
    folder = tmp_path / os.fsdecode(b"case-\xff\xfe")
    folder.mkdir()
    shutil.copyfile(source, folder / "Bits.evtx")
    expected = [r.record_id for r in iter_records(source)]
    assert expected and [r.record_id for r in iter_records(folder / "Bits.evtx")] == expected
