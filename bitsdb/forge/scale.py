"""Large, realistic qmgr.db files for benchmarks (10,000 jobs x 3 files by default).

Records are varied the way real stores are (several owners, states, updaters,
user-writable targets, a few uploads and notify commands), deterministic for a
seed, and written through the same encoders and ESE writer as every other forged
database, so what a benchmark reads is what the parser meets in real files.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..decode import build_security_descriptor, encode_file, encode_job
from ..model import Job, JobFile, JobPriority, JobState, JobType, SecurityInfo
from .ese import write_qmgr_database
from .spec import DOWNLOAD_MARKER, UPLOAD_MARKER, reader_safe_chunk_size

SECOND = 10**7
DAY = 86400 * SECOND
#: 2025-01-01T00:00:00Z as a FILETIME: every generated time lies in 2025.
BASE_TIME = 133801632000000000

_OWNERS = [("S-1-5-18", 0x4000), ("S-1-5-20", 0x4000),
           ("S-1-5-21-3623811015-3361044348-30300820-1001", 0x2000),
           ("S-1-5-21-3623811015-3361044348-30300820-1002", 0x2000)]
_UPDATERS = [
    ("Chrome Component Updater", r"C:\Program Files\Google\Chrome\Application\chrome.exe",
     "https://edgedl.me.gvt1.com/edgedl/release2/chrome_component/{n}/{n}_all.crx3"),
    ("MicrosoftEdgeUpdate", r"C:\Program Files (x86)\Microsoft\EdgeUpdate\MicrosoftEdgeUpdate.exe",
     "http://msedge.b.tlu.dl.delivery.mp.microsoft.com/filestreamingservice/files/{n}"),
    ("MozillaUpdate 6F193CCC56814779", r"C:\Program Files\Mozilla Firefox\firefox.exe",
     "https://download.mozilla.org/?product=firefox-{n}-partial&os=win64"),
    ("UpdateDescriptionXml", r"C:\Users\bob\AppData\Local\Microsoft\OneDrive\OneDriveStandaloneUpdater.exe",
     "https://g.live.com/1rewlive5skydrive/ODSUProduction{n}"),
]
_STATES = [JobState.TRANSFERRED, JobState.ACKNOWLEDGED, JobState.SUSPENDED, JobState.QUEUED, JobState.ERROR,
           JobState.TRANSIENT_ERROR]


@dataclass
class ScaleReport:
    path: Path
    jobs: int
    files: int
    size: int
    lv_chunk_size: int


def scale_jobs(count: int = 10_000, files_per_job: int = 3, seed: int = 1) -> list[Job]:
    """`count` jobs with `files_per_job` files each; the same seed gives the same records."""
    rng = random.Random(seed)
    descriptors: dict[tuple[str, int], bytes] = {}
    jobs = []
    for number in range(count):
        owner, rid = _OWNERS[rng.randrange(len(_OWNERS))]
        raw = descriptors.get((owner, rid))
        if raw is None:
            raw = descriptors[(owner, rid)] = build_security_descriptor(owner, rid)
        upload = rng.random() < 0.02
        name, creator, url = _UPDATERS[rng.randrange(len(_UPDATERS))]
        created = BASE_TIME + rng.randrange(300 * DAY)
        modified = created + rng.randrange(1, 3600) * SECOND
        state = _STATES[rng.randrange(len(_STATES))]
        job = Job(
            job_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            marker=UPLOAD_MARKER if upload else DOWNLOAD_MARKER,
            type=JobType.UPLOAD if upload else JobType.DOWNLOAD,
            priority=JobPriority(rng.randrange(4)), state=state,
            display_name=f"{name} {number}", description="", owner_sid=owner,
            notify_program=r"C:\Windows\System32\cmd.exe" if number % 500 == 7 else "",
            notify_parameters=f"/c C:\\Users\\Public\\run{number}.bat" if number % 500 == 7 else "",
            notify_flags=3, min_retry_delay=600, no_progress_timeout=1209600,
            creation_time=created, modification_time=modified, modification_time_2=modified,
            completion_time=modified if state in (JobState.TRANSFERRED, JobState.ACKNOWLEDGED) else 0,
            inactivity_base_time=modified, expiration_time=modified + 90 * DAY,
            network_guid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            creator_image=creator, http_method="PUT" if upload else "GET",
            security=SecurityInfo(owner_integrity_rid=rid, owner_integrity_level=None, token_unknown=[0, 1, 1, 0],
                                  raw=raw),
        )
        for index in range(files_per_job):
            size = rng.randrange(1_000, 50_000_000)
            done = size if state in (JobState.TRANSFERRED, JobState.ACKNOWLEDGED) else rng.randrange(size)
            item = f"{number:05d}{index}"
            job.files.append(JobFile(
                file_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                local_name=(rf"C:\Users\bob\Documents\report{item}.docx" if upload
                            else rf"C:\ProgramData\Updates\{name.split()[0]}\{item}.bin"),
                remote_name=("https://upload.example.net/drop/" + item) if upload else url.format(n=item),
                temp_name=rf"C:\ProgramData\Updates\BIT{item}.tmp",
                bytes_transferred=done, bytes_total=size, drive="C:\\",
                volume="\\\\?\\Volume{5c1d0f6a-0000-0000-0000-100000000000}\\",
                remote_last_modified=created - rng.randrange(1, 30) * DAY,
                layout="upload" if upload else "download"))
        job.file_ids = [jf.file_id for jf in job.files]
        jobs.append(job)
    return jobs


def write_scale_database(path: str | Path, jobs: int = 10_000, files_per_job: int = 3,
                         seed: int = 1) -> ScaleReport:
    """Write a large qmgr.db (no planted history) and say what went in."""
    path = Path(path)
    records = scale_jobs(jobs, files_per_job, seed)
    job_rows = [(uuid.UUID(job.job_id).bytes_le, encode_job(job)) for job in records]
    file_rows = [(uuid.UUID(jf.file_id).bytes_le, encode_file(jf)) for job in records for jf in job.files]
    chunk = reader_safe_chunk_size(blob for _, blob in job_rows + file_rows)
    write_qmgr_database(path, job_rows, file_rows, lv_chunk_size=chunk)
    return ScaleReport(path=path, jobs=len(job_rows), files=len(file_rows), size=path.stat().st_size,
                       lv_chunk_size=chunk)
