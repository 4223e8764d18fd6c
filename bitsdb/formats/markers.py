"""Marker GUIDs of the BITS job store (FORMAT.md §2): the one table of them."""

from __future__ import annotations

import uuid
from enum import Enum


def _raw(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


#: ESE job blob markers -> the label other parsers use for them.
ESE_JOB_MARKERS: dict[bytes, str] = {
    _raw("e10956a1-af43-42c9-92e6-6f9856eba7f6"): "DownloadJob 10.3.2",
    _raw("8f5657d0-012c-4e3e-ad2c-f4a5d7656faf"): "UploadJob 10.3.2",
    _raw("03715c38-281f-40ca-9813-9de91a5a84d1"): "DownloadJob 10.3.1",
    _raw("68d31ed8-34d5-4fe1-8923-94abcbf4c1cf"): "UploadJob 10.3.0",
    _raw("4cd4959f-7064-4bf2-84d7-476a7e62699f"): "job marker 4CD4959F",
    _raw("a92619f1-0332-4cbf-9427-898818958831"): "job marker A92619F1",
    _raw("ddbc33c1-5afb-4daf-b8a1-2268b39d01ad"): "job marker DDBC33C1",
    _raw("94416750-0357-461d-a4cc-5dd9990706e4"): "job marker 94416750",
}

#: Legacy state-file job markers (qmgr0/1.dat).
LEGACY_JOB_MARKERS: dict[bytes, str] = {
    _raw("35203693-0ca0-4a10-84f3-b17e7b499cd7"): "legacy job (Windows 7)",
    _raw("3ded46b3-103b-44f9-bc2f-e8378bd31986"): "legacy job (Windows 10 pre-ESE)",
    _raw("c8701310-5336-41b3-83e5-81557f361b87"): "legacy job C8701310",
    _raw("64ea938c-0f03-4068-b46f-f97fe51d4dcd"): "legacy job 64EA938C",
    _raw("810ce774-bbd2-48cc-9e47-862e8d58f3c6"): "legacy job 810CE774",
}

ALL_JOB_MARKERS: dict[bytes, str] = {**ESE_JOB_MARKERS, **LEGACY_JOB_MARKERS}

DEFAULT_JOB_MARKER = _raw("e10956a1-af43-42c9-92e6-6f9856eba7f6")
FILE_MARKER = _raw("519ecfe4-d946-4397-b73e-268513051ab2")
FILE_LIST_MARKER = _raw("7756da36-516f-435a-acac-44a248fff34d")
PROGRESS_TERMINATOR = _raw("7aadb02e-8bcf-4d2e-b82f-4319d2fb5f75")
LEGACY_FILE_HEADER = _raw("c82bf713-9940-4a12-9f1a-3aaebd894eea")
LEGACY_QUEUE_MARKER = _raw("005f4447-bda9-44ba-9851-c47bb6c07ace")
LEGACY_PREFIX_WIN7 = _raw("2b196af5-007c-438f-8d12-1cfca4cc9b76")
LEGACY_PREFIX_WIN10 = _raw("09ed3228-c7a6-45e9-8f6d-36d946c27c3e")
DPAPI_PROVIDER = _raw("df9d8cd0-1501-11d1-8c7a-00c04fc297eb")

ESE_SIGNATURE = b"\xef\xcd\xab\x89"


class InputKind(str, Enum):
    """What a file is, decided in one place (bitsdb.sources.detect)."""

    ESE_DATABASE = "ese_database"
    LEGACY_STATE_FILE = "legacy_state_file"
    RAW_JOB = "raw_job_blob"
    RAW_FILE = "raw_file_blob"
    RAW_LEGACY_FILES = "raw_legacy_file_list"    # inline file records of a legacy job
    UNKNOWN = "unknown"


def marker_label(marker: bytes) -> str:
    return ALL_JOB_MARKERS.get(bytes(marker), "unknown marker")
