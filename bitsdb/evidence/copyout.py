"""Copying a file out of a container (zip member, file in a disk image) into the private work folder.

A container can claim anything: a 3 MB zip can expand to 3 GB, a small sparse image can hold a
file of terabytes. Copies are bounded per evidence item (docs/SECURITY.md):

* BITSDB_MAX_EXTRACT: bytes copied out of one zip or image in total (default 4 GiB);
* BITSDB_MAX_RATIO: how much a zip member may expand (default 200, i.e. 1:200); members that
  stay under RATIO_FLOOR (256 MiB) are never refused for their ratio (a nearly empty database or
  log full of zeros compresses 1:300 or more; real qmgr.db files measured 1:10 to 1:72).

Sizes take K, M, G, T suffixes (powers of 1024).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..sources.result import SourceError

CHUNK = 1 << 20
MAX_EXTRACT_ENV = "BITSDB_MAX_EXTRACT"
MAX_RATIO_ENV = "BITSDB_MAX_RATIO"
DEFAULT_MAX_EXTRACT = 4 << 30
DEFAULT_MAX_RATIO = 200
RATIO_FLOOR = 256 << 20
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)i?B?\s*$", re.I)


class ExtractionRefused(SourceError):
    """A copy would pass a limit; the message names the limit and how to raise it."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_ratio: float


def parse_size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 8G, 500M, 1073741824)")
    return int(match.group(1)) << (10 * " KMGT".index(match.group(2).upper() or " "))


def extraction_limits() -> Limits:
    """The limits in force (environment, else defaults); ValueError names a bad setting."""
    size = os.environ.get(MAX_EXTRACT_ENV)
    ratio = os.environ.get(MAX_RATIO_ENV)
    try:
        max_bytes = parse_size(size) if size else DEFAULT_MAX_EXTRACT
    except ValueError as exc:
        raise ValueError(f"{MAX_EXTRACT_ENV}: {exc}") from None
    try:
        max_ratio = float(ratio) if ratio else DEFAULT_MAX_RATIO
        if not max_ratio > 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"{MAX_RATIO_ENV}: {ratio!r} is not a positive number") from None
    return Limits(max_bytes, max_ratio)


def human(size: float) -> str:
    if size < 1024:
        return f"{size:.0f} bytes"
    exponent = min(3, int(size).bit_length() // 10 if size >= 1024 else 0)
    return f"{size / (1 << (10 * exponent)):.1f} {('KiB', 'MiB', 'GiB')[exponent - 1]}"


class Budget:
    """Bytes one evidence item may still copy out."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or extraction_limits()
        self.left = self.limits.max_bytes

    def refuse_total(self) -> ExtractionRefused:
        return ExtractionRefused(f"more than {human(self.limits.max_bytes)} would be copied out of this item "
                                 f"(limit {MAX_EXTRACT_ENV}; raise it to read this evidence)")

    def check_ratio(self, size: int, compressed: int) -> None:
        """Refuse a member whose declared expansion passes the ratio limit (bombs)."""
        if size > RATIO_FLOOR and size > self.limits.max_ratio * max(compressed, 1):
            raise ExtractionRefused(
                f"expands 1:{size / max(compressed, 1):.0f} ({human(size)} from {human(compressed)}), more than "
                f"the limit of 1:{self.limits.max_ratio:g} (limit {MAX_RATIO_ENV}; raise it to read this member)")


def copy_out(source: BinaryIO, target: Path | None, budget: Budget | None = None,
             ceiling: int | None = None) -> tuple[str, int]:
    """(sha256, size) of `source`, streamed into `target` (created, never over an existing file or link,
    then made read-only) as it is hashed; with target None nothing is written.

    `budget` bounds what is written; `ceiling` bounds this one copy (a member's declared size and
    ratio). Passing either removes the partial copy and raises ExtractionRefused.
    """
    digest = hashlib.sha256()
    size = 0
    out = open(target, "xb") if target is not None else None
    try:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            size += len(chunk)
            if out is not None and budget is not None and size > budget.left:
                raise budget.refuse_total()
            if ceiling is not None and size > ceiling:
                raise ExtractionRefused(f"holds more than the {human(ceiling)} it declares or may expand to")
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
    except BaseException:
        if out is not None:
            out.close()
            target.unlink(missing_ok=True)
            out = None
        raise
    finally:
        if out is not None:
            out.close()
    if target is not None:
        os.chmod(target, 0o400)
        if budget is not None:
            budget.left -= size
    return digest.hexdigest(), size
