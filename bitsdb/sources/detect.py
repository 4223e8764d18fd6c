"""Decide what a file is: the one place that looks at magic bytes."""

from __future__ import annotations

from pathlib import Path

from ..formats.markers import (
    ALL_JOB_MARKERS,
    ESE_SIGNATURE,
    FILE_LIST_MARKER,
    FILE_MARKER,
    LEGACY_FILE_HEADER,
    LEGACY_QUEUE_MARKER,
    InputKind,
)

#: File names BITS uses, for finding the store inside a folder.
BITS_FILE_NAMES = ("qmgr.db", "qmgr0.dat", "qmgr1.dat")
LEGACY_HEADER_PAIR = LEGACY_FILE_HEADER + LEGACY_QUEUE_MARKER
LEGACY_HEADER_WINDOW = 0x40


def detect_bytes(head: bytes) -> InputKind:
    """Classify by the first bytes (at least 0x60 of them when the file is that long)."""
    if len(head) >= 8 and head[4:8] == ESE_SIGNATURE:
        return InputKind.ESE_DATABASE
    if LEGACY_HEADER_PAIR in head[:LEGACY_HEADER_WINDOW + len(LEGACY_HEADER_PAIR)]:
        return InputKind.LEGACY_STATE_FILE
    if head[:16] == FILE_MARKER:
        return InputKind.RAW_FILE
    if head[:16] == FILE_LIST_MARKER:
        return InputKind.RAW_LEGACY_FILES
    if head[:16] in ALL_JOB_MARKERS or head[16:32] in ALL_JOB_MARKERS:
        return InputKind.RAW_JOB
    if len(head) >= 0x60:
        # An unknown 16-byte marker: accept as a job blob only if the record validates.
        from ..decode import BlobError, decode_job_blob

        try:
            decode_job_blob(head if len(head) > 0x1000 else head)
        except BlobError:
            return InputKind.UNKNOWN
        except Exception:  # noqa: BLE001 - any failure means "not a job blob"
            return InputKind.UNKNOWN
        return InputKind.RAW_JOB
    return InputKind.UNKNOWN


def detect_file(path: str | Path) -> InputKind:
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    return detect_bytes(head)


def bits_files_in(folder: str | Path) -> list[Path]:
    """BITS store files directly in a folder or anywhere below it (case-insensitive names)."""
    found = [p for p in Path(folder).rglob("*") if p.is_file() and p.name.lower() in BITS_FILE_NAMES]
    return sorted(found)
