"""Synthetic records (built with the project's own encoder) for carving tests and the benchmark."""

from __future__ import annotations

import uuid

from ..decode import encode_file, encode_job
from ..formats.ese import inline_row  # noqa: F401 - the row format, re-exported for carving fixtures
from ..model import Job, JobFile, JobPriority, JobState, JobType

BASE_TIME = 133_000_000_000_000_000          # 2022-06-14
DAY = 864_000_000_000


def job_id(n: int) -> str:
    return str(uuid.UUID(int=0x1000 + n))


def file_id(n: int) -> str:
    return str(uuid.UUID(int=0xF000 + n))


def make_job(n: int, version: int = 0, state: JobState = JobState.QUEUED, files: int = 1) -> Job:
    mtime = BASE_TIME + n * DAY + version * 10_000_000
    return Job(job_id=job_id(n), type=JobType.DOWNLOAD, priority=JobPriority.NORMAL, state=state,
               display_name=f"job {n}", description=f"synthetic job {n} v{version}",
               notify_program="C:\\Windows\\System32\\cmd.exe" if n % 2 else "", notify_parameters="",
               owner_sid="S-1-5-21-1-2-3-1001", notify_flags=3,
               file_ids=[file_id(n * 10 + i) for i in range(files)],
               creation_time=BASE_TIME + n * DAY, modification_time=mtime, modification_time_2=mtime,
               inactivity_base_time=mtime, expiration_time=mtime + 90 * DAY,
               creator_image="C:\\Tools\\creator.exe", http_method="GET")


def make_file(n: int, transferred: int = 10) -> JobFile:
    return JobFile(file_id=file_id(n), local_name=f"C:\\Users\\u\\file{n}.bin",
                   remote_name=f"https://example.test/file{n}.bin", temp_name=f"C:\\Users\\u\\BIT{n:04X}.tmp",
                   bytes_transferred=transferred, bytes_total=100, drive="C:\\",
                   volume="\\\\?\\Volume{00000000-0000-0000-0000-000000000001}\\",
                   remote_last_modified=BASE_TIME)


def job_bytes(n: int, **kw) -> bytes:
    return encode_job(make_job(n, **kw))


def file_bytes(n: int, **kw) -> bytes:
    return encode_file(make_file(n, **kw))


def noisy_image(stream, size: int, records: list[tuple[int, bytes]], seed: int = 1,
                chunk: int = 1 << 20) -> None:
    """Write `size` bytes of pseudo-random noise with each (offset, bytes) record embedded.

    Written chunk by chunk so that a benchmark image of any size needs little memory.
    """
    import random

    rng = random.Random(seed)
    pending = sorted(records)
    position = 0
    while position < size:
        length = min(chunk, size - position)
        block = bytearray(rng.randbytes(length))
        for offset, blob in pending:
            lo, hi = max(offset, position), min(offset + len(blob), position + length)
            if lo < hi:
                block[lo - position:hi - position] = blob[lo - offset:hi - offset]
        stream.write(block)
        position += length
