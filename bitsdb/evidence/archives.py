"""Zip triage packages (KAPE, Velociraptor): members located by name, only store files and hives copied out."""

from __future__ import annotations

import os
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..sources.result import SourceError
from .copyout import copy_out
from .locate import decoded, find_in_listing, host_from_name
from .records import Artefact, ArtefactGroup

if TYPE_CHECKING:
    import zipfile

EXTENDED_TIMESTAMP = 0x5455


def is_zip(path: str | Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def _utc_mtime(info: zipfile.ZipInfo) -> float | None:
    """The UTC mtime from the extended-timestamp extra field (0x5455), when the writer stored one."""
    extra = info.extra
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + size]
        if tag == EXTENDED_TIMESTAMP and len(body) >= 5 and body[0] & 1:
            return float(struct.unpack_from("<i", body, 1)[0])
        pos += 4 + size
    return None


def _times(info: zipfile.ZipInfo) -> tuple[dict[str, str], float | None]:
    utc = _utc_mtime(info)
    if utc is not None:
        return {"modified": datetime.fromtimestamp(utc, timezone.utc).isoformat()}, utc
    # The DOS time has no zone: reported as written, labelled so nobody mistakes it for UTC.
    return {"modified_zone_unknown": datetime(*info.date_time).isoformat()}, None


def _stream(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path | None) -> str:
    with archive.open(info) as member:
        return copy_out(member, target)[0]


def zip_groups(path: str | Path, workdir: Path) -> tuple[list[ArtefactGroup], list[str], list[str]]:
    """BITS groups inside a zip; store files, their logs and hives are streamed into workdir."""
    import zipfile

    evidence = str(path)
    warnings: list[str] = []
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"not a readable zip archive ({exc})") from None
    with archive:
        members = {}
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = tuple(p for p in info.filename.replace("\\", "/").split("/") if p and p != ".")
            members[parts] = info
            if info.filename.lower().endswith((".zip", ".e01", ".vmdk", ".vhdx", ".vhd")):
                warnings.append(f"{info.filename}: nested archive or image inside the zip is not opened "
                                f"(extract it and pass it as its own evidence item)")
        zip_host = host_from_name(Path(evidence).name)
        groups = []
        for index, found in enumerate(find_in_listing(members)):
            place = found.place
            host = place.host or zip_host
            group = ArtefactGroup(evidence=evidence, evidence_kind="zip", folder="/".join(found.folder),
                                  host=host, host_source=("folder name" if place.host else
                                                          "archive name" if zip_host else None),
                                  snapshot=place.snapshot)
            target_dir = workdir / f"g{index}"
            target_dir.mkdir(parents=True, exist_ok=True)
            for name, role in found.files:
                info = members[(*found.folder, name)]
                target = target_dir / decoded(name)          # companions too: --recover carves them
                try:
                    if info.flag_bits & 0x1:
                        raise SourceError("encrypted zip member (give the password-free archive)")
                    sha256 = _stream(archive, info, target)
                except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, SourceError, ValueError) as exc:
                    (group.errors if role == "store" else group.warnings).append(
                        f"{evidence}!{info.filename}: cannot extract ({exc})")
                    if target.exists():
                        target.unlink()
                    continue
                times, mtime = _times(info)
                if mtime is not None:
                    os.utime(target, (mtime, mtime))
                group.artefacts.append(Artefact(
                    evidence=evidence, evidence_kind="zip", name=decoded(name), role=role,
                    path_in_evidence=info.filename, size=info.file_size, host=group.host,
                    host_source=group.host_source, snapshot=group.snapshot, sha256=sha256, file_times=times,
                    mtime=mtime, local_path=str(target)))
            for label, parts in found.hives.items():
                target = target_dir / f"hive_{label}"
                try:
                    _stream(archive, members[parts], target)
                    group.hives[label] = str(target)
                except Exception:  # noqa: BLE001 - an unreadable hive only costs names
                    continue
            if group.artefacts or group.errors:
                groups.append(group)
    return groups, warnings, []
