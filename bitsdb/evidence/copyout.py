"""Copying a file out of a container (zip member, file in a disk image) into the private work folder."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def copy_out(source: BinaryIO, target: Path | None) -> tuple[str, int]:
    """(sha256, size) of `source`, streamed into `target` (created, then made read-only) as it is
    hashed; with target None nothing is written."""
    digest = hashlib.sha256()
    size = 0
    out = open(target, "xb") if target is not None else None
    try:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    if target is not None:
        os.chmod(target, 0o400)
    return digest.hexdigest(), size
