"""Decide what a file is: the one place that looks at magic bytes."""

from __future__ import annotations

import os
import re
import stat
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

#: The store files BITS writes (ESE database; legacy state pair).
STORE_NAMES = ("qmgr.db", "qmgr0.dat", "qmgr1.dat")
#: Files ESE keeps beside qmgr.db: transaction logs, reserve logs, checkpoint, flush map.
_COMPANION = re.compile(r"^(edb[0-9a-f]*\.log|edbtmp\.log|edb\.chk|edbres\d+\.jrs|.*\.jrs|qmgr\.jfm)$", re.I)
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
            decode_job_blob(head)
        except BlobError:
            return InputKind.UNKNOWN
        return InputKind.RAW_JOB
    return InputKind.UNKNOWN


#: Windows' FILE_ATTRIBUTE_REPARSE_POINT (junctions, mount points, symbolic links).
_REPARSE_POINT = 0x400


def special_kind(st: os.stat_result) -> str | None:
    """What an entry is when it is not a plain file or folder ("symbolic link", "FIFO", ...), else None.

    Evidence is read only through plain files and folders: links may point out of the evidence
    and FIFOs, sockets and devices may block or never end (docs/SECURITY.md).
    """
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if getattr(st, "st_file_attributes", 0) & _REPARSE_POINT:
        return "junction or reparse point"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def read_regular_text(path: str | Path) -> str:
    """The UTF-8 text of a file the user names as configuration (a rule file, a forge spec), opened only
    when it is a regular file: a FIFO or device named by mistake would block the run for ever. Raises
    OSError or UnicodeDecodeError."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))   # opening a FIFO must not wait
    with os.fdopen(fd, "rb") as handle:
        kind = special_kind(os.fstat(fd))
        if kind is not None:
            raise OSError(f"not a regular file ({kind})")
        return handle.read().decode("utf-8")


def plain_file(path: str | Path) -> bool:
    """A regular file that is not a link (found inside evidence: only these are opened)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and special_kind(st) is None


def detect_file(path: str | Path) -> InputKind:
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    return detect_bytes(head)


#: Files read beside the BITS stores: Windows event logs and registry hives.
EVTX_SIGNATURE = b"ElfFile\x00"
REGF_SIGNATURE = b"regf"


def side_role(path: str | Path) -> str | None:
    """'log' for an event log, 'hive' for a registry hive (by content), else None."""
    return "log" if starts_with(path, EVTX_SIGNATURE) else "hive" if starts_with(path, REGF_SIGNATURE) else None


def starts_with(path: str | Path, magic: bytes) -> bool:
    """The file begins with `magic` (False when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(magic)) == magic
    except OSError:
        return False


def file_stamp(path: str | None) -> tuple | None:
    """Path + size + mtime + inode: a cache key that changes when the file is changed or replaced."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return (path,)
    return (path, st.st_size, st.st_mtime_ns, st.st_ino)


def role_of(name: str) -> str | None:
    """'store' for qmgr.db/qmgr0.dat/qmgr1.dat, 'companion' for ESE logs/checkpoint/journal files,
    'log' for Windows event logs (.evtx)."""
    lower = name.lower()
    if lower in STORE_NAMES:
        return "store"
    if _COMPANION.match(lower):
        return "companion"
    if lower.endswith(".evtx"):
        return "log"
    return None
