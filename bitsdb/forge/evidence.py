"""Builders for tests and benchmarks: tiny registry hives and collection layouts (never used on evidence).

The hive writer emits the minimal regf structure (base block, one hbin, nk/lh/vk cells)
that real readers accept, so account and host-name resolution can be tested without
shipping a Windows hive.
"""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any

REG_SZ, REG_EXPAND_SZ, REG_DWORD = 1, 2, 4
HBIN_START = 4096
_NO_CELL = 0xFFFFFFFF


class _Cells:
    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, payload: bytes) -> int:
        size = (4 + len(payload) + 7) // 8 * 8
        offset = 32 + len(self.data)          # hbin header precedes the first cell
        self.data += struct.pack("<i", -size) + payload + b"\0" * (size - 4 - len(payload))
        return offset

    def patch_u32(self, cell_offset: int, field_offset: int, value: int) -> None:
        struct.pack_into("<I", self.data, cell_offset - 32 + 4 + field_offset, value)


def _value_bytes(kind: int, value: Any) -> bytes:
    if kind in (REG_SZ, REG_EXPAND_SZ):
        return (str(value) + "\0").encode("utf-16-le")
    if kind == REG_DWORD:
        return struct.pack("<I", value)
    return bytes(value)


def _lh_hash(name: str) -> int:
    h = 0
    for ch in name.upper():
        h = (h * 37 + ord(ch)) & 0xFFFFFFFF
    return h


def _write_key(cells: _Cells, name: str, node: dict, parent: int, root: bool) -> int:
    values = node.get("values", {})
    subkeys = node.get("keys", {})
    encoded = name.encode("ascii")
    nk = struct.pack("<2sHQ4sIIIIIIIIIIIII4sHH", b"nk", 0x2C if root else 0x20, 0, b"\0" * 4, parent,
                     len(subkeys), 0, _NO_CELL, _NO_CELL, len(values), _NO_CELL, _NO_CELL, _NO_CELL,
                     0, 0, 0, 0, b"\0" * 4, len(encoded), 0) + encoded
    me = cells.add(nk)
    if values:
        offsets = []
        for value_name, (kind, value) in values.items():
            data = _value_bytes(kind, value)
            vname = value_name.encode("ascii")
            if len(data) <= 4:
                size, data_offset = 0x80000000 | len(data), int.from_bytes(data.ljust(4, b"\0"), "little")
            else:
                size, data_offset = len(data), cells.add(data)
            offsets.append(cells.add(struct.pack("<2sHIIIHH", b"vk", len(vname), size, data_offset, kind, 1, 0)
                                     + vname))
        values_list = cells.add(struct.pack(f"<{len(offsets)}I", *offsets))
        cells.patch_u32(me, 0x28, values_list)
    if subkeys:
        entries = []
        for child_name in sorted(subkeys, key=str.upper):
            child = _write_key(cells, child_name, subkeys[child_name], me, False)
            entries.append((child, _lh_hash(child_name)))
        lh = struct.pack("<2sH", b"lh", len(entries)) + b"".join(struct.pack("<II", o, h) for o, h in entries)
        cells.patch_u32(me, 0x1C, cells.add(lh))
    return me


def build_hive(tree: dict, file_name: str = "SOFTWARE") -> bytes:
    """A regf hive from {"keys": {name: {...}}, "values": {name: (type, value)}}; root named like Windows does."""
    cells = _Cells()
    root = _write_key(cells, "CsiTool-CreateHive-{00000000-0000-0000-0000-000000000000}", tree, 0, True)
    body_size = (32 + len(cells.data) + 4095) // 4096 * 4096
    free = body_size - 32 - len(cells.data)
    if free:
        cells.data += struct.pack("<i", free) + b"\0" * (free - 4)
    hbin = struct.pack("<4sIIIIQI", b"hbin", 0, body_size, 0, 0, 0, 0) + bytes(cells.data)
    name = f"\\SystemRoot\\System32\\Config\\{file_name}".encode("utf-16-le")[:64].ljust(64, b"\0")
    base = bytearray(struct.pack("<4sIIQIIIIIII", b"regf", 1, 1, 0, 1, 5, 0, 1, root, body_size, 1) + name)
    base = base.ljust(0x1FC, b"\0")
    checksum = 0
    for (word,) in struct.iter_unpack("<I", bytes(base[:0x1FC])):
        checksum ^= word
    checksum = 0xFFFFFFFE if checksum == 0xFFFFFFFF else (checksum or 1)
    base += struct.pack("<I", checksum)
    return bytes(base.ljust(HBIN_START, b"\0")) + hbin


def software_hive(profiles: dict[str, str], state_index: int | None = None) -> bytes:
    """SOFTWARE with ProfileList entries {SID: profile path} and, optionally, BITS\\StateIndex."""
    profile_keys = {sid: {"values": {"ProfileImagePath": (REG_EXPAND_SZ, path)}} for sid, path in profiles.items()}
    current_version: dict = {"keys": {}}
    if state_index is not None:
        current_version["keys"]["BITS"] = {"values": {"StateIndex": (REG_DWORD, state_index)}}
    tree = {"keys": {"Microsoft": {"keys": {
        "Windows NT": {"keys": {"CurrentVersion": {"keys": {"ProfileList": {"keys": profile_keys}}}}},
        "Windows": {"keys": {"CurrentVersion": current_version}},
    }}}}
    return build_hive(tree, "SOFTWARE")


def system_hive(computer_name: str, control_set: int = 1) -> bytes:
    """SYSTEM with Select\\Current and ControlSet00N\\Control\\ComputerName\\ComputerName."""
    tree = {"keys": {
        "Select": {"values": {"Current": (REG_DWORD, control_set)}},
        f"ControlSet{control_set:03d}": {"keys": {"Control": {"keys": {"ComputerName": {"keys": {
            "ComputerName": {"values": {"ComputerName": (REG_SZ, computer_name)}}}}}}}},
    }}
    return build_hive(tree, "SYSTEM")


DOWNLOADER = ("ProgramData", "Microsoft", "Network", "Downloader")
CONFIG = ("Windows", "System32", "config")


def write_volume(root: Path, qmgr_db: Path | None, *, hives: dict[str, bytes] | None = None,
                 extra: dict[str, bytes] | None = None) -> Path:
    """A Windows volume tree under `root`: the Downloader folder (qmgr.db + stand-in logs) and hives."""
    folder = root.joinpath(*DOWNLOADER)
    folder.mkdir(parents=True, exist_ok=True)
    if qmgr_db is not None:
        shutil.copyfile(qmgr_db, folder / "qmgr.db")
        (folder / "edb.log").write_bytes(b"L" * 4096)
        (folder / "edb.chk").write_bytes(b"CHK")
    for name, data in (extra or {}).items():
        (folder / name).write_bytes(data)
    if hives:
        config = root.joinpath(*CONFIG)
        config.mkdir(parents=True, exist_ok=True)
        for name, data in hives.items():
            (config / name).write_bytes(data)
    return folder


def kape_collection(base: Path, host: str, qmgr_db: Path, hives: dict[str, bytes] | None = None,
                    stamp: str = "2024-05-01T101500") -> Path:
    """KAPE target output: <stamp>_<host>/C/ProgramData/…"""
    item = base / f"{stamp}_{host}"
    write_volume(item / "C", qmgr_db, hives=hives)
    return item


def velociraptor_collection(base: Path, host: str, qmgr_db: Path, hives: dict[str, bytes] | None = None,
                            stamp: str = "2024-05-01T10_15_00Z") -> Path:
    """Velociraptor offline collector layout: Collection-<host>-<stamp>/uploads/auto/C%3A/ProgramData/…"""
    item = base / f"Collection-{host}-{stamp}"
    write_volume(item / "uploads" / "auto" / "C%3A", qmgr_db, hives=hives)
    return item


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip a collection folder the way collectors do (paths relative to the folder, no root entry)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return target


# --- disk images (Debian tools: ntfs-3g, fdisk, ewf-tools, qemu-utils; FUSE for ntfs-3g) ---------------

IMAGE_TOOLS = {"mkntfs": "ntfs-3g", "ntfs-3g": "ntfs-3g", "sfdisk": "fdisk", "ewfacquirestream": "ewf-tools",
               "qemu-img": "qemu-utils"}


def missing_tools(*tools: str) -> str | None:
    """A one-line reason naming the Debian package to install, or None when every tool is there."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return None
    packages = sorted({IMAGE_TOOLS.get(t, t) for t in missing})
    return f"needs {', '.join(missing)} (apt-get install {' '.join(packages)})"


def _run(*args: str, stdin=None) -> None:
    import subprocess

    subprocess.run(args, check=True, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ntfs_volume(target: Path, size_mib: int, stage: Path, label: str = "BITSTEST") -> Path:
    """An NTFS volume image holding a copy of the `stage` tree (mkntfs, then ntfs-3g through FUSE)."""
    import subprocess
    import tempfile

    with open(target, "wb") as handle:
        handle.truncate(size_mib << 20)
    _run("mkntfs", "-F", "-Q", "-q", "-L", label, str(target))
    with tempfile.TemporaryDirectory(prefix="bitsdb-mnt-") as mount:
        try:
            _run("ntfs-3g", str(target), mount)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"ntfs-3g cannot mount (FUSE missing?): {exc.stderr.decode(errors='replace')[:200]}")
        try:
            _run("cp", "-r", *[str(p) for p in sorted(stage.iterdir())], mount)
        finally:
            _run("umount", mount)
    return target


def partitioned_disk(target: Path, volumes: list[Path], scheme: str = "dos") -> Path:
    """An MBR ("dos") or GPT disk around the given volume images (sfdisk, 1 MiB aligned)."""
    sectors = [(v.stat().st_size + 511) // 512 for v in volumes]
    starts, at = [], 2048
    for count in sectors:
        starts.append(at)
        at += (count + 2047) // 2048 * 2048
    with open(target, "wb") as handle:
        handle.truncate((at + 2048) * 512)
    kind = "type=7" if scheme == "dos" else "type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
    script = f"label: {scheme}\n" + "".join(f"start={s}, size={n}, {kind}\n" for s, n in zip(starts, sectors))
    import subprocess

    subprocess.run(["sfdisk", "-q", str(target)], input=script.encode(), check=True, capture_output=True)
    with open(target, "r+b") as disk:
        for start, volume in zip(starts, volumes):
            disk.seek(start * 512)
            with open(volume, "rb") as source:
                shutil.copyfileobj(source, disk, 1 << 20)
    return target


def to_e01(raw: Path, target_base: Path, segment_bytes: int | None = None, compression: str = "best") -> Path:
    """EnCase 6 image of `raw` (ewfacquirestream); returns the first segment (.E01)."""
    args = ["ewfacquirestream", "-q", "-t", str(target_base), "-c", compression, "-f", "encase6", "-C", "case1",
            "-D", "bitsdb fixture", "-E", "ev1", "-e", "tester", "-N", "none"]
    if segment_bytes:
        args += ["-S", str(segment_bytes)]
    with open(raw, "rb") as stdin:
        _run(*args, stdin=stdin)
    return target_base.with_name(target_base.name + ".E01")


def qemu_convert(raw: Path, target: Path, fmt: str, subformat: str | None = None) -> Path:
    """vmdk / vhdx / vpc (VHD) / qcow2 copy of a raw disk (never compressed: libqcow reads zeros)."""
    args = ["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt]
    if subformat:
        args += ["-o", f"subformat={subformat}"]
    _run(*args, str(raw), str(target))
    return target


def split_raw(raw: Path, target_prefix: Path, piece_bytes: int) -> Path:
    """raw.001, raw.002, … (what dd/FTK split images look like); returns the first piece."""
    index = 1
    with open(raw, "rb") as source:
        while True:
            chunk = source.read(piece_bytes)
            if not chunk:
                break
            Path(f"{target_prefix}.{index:03d}").write_bytes(chunk)
            index += 1
    return Path(f"{target_prefix}.001")


def numbered_jobs_spec(count: int, first: int = 0) -> dict:
    """A forge spec of `count` live download jobs (one file each), ids and times from their number."""
    jobs = []
    for n in range(first, first + count):
        jobs.append({
            "job_id": f"11111111-2222-4333-8444-{n:012d}", "display_name": f"job {n}", "state": "TRANSFERRED",
            "owner_sid": "S-1-5-21-1-2-3-1001", "creation_time": "2025-01-02T03:04:05+00:00",
            "modification_time": f"2025-01-{2 + n // 1440:02d}T{n // 60 % 24:02d}:{n % 60:02d}:07+00:00",
            "notify_program": r"C:\Windows\System32\cmd.exe" if n % 5 == 0 else "",
            "files": [{"file_id": f"aaaaaaaa-2222-4333-8444-{n:012d}", "local_name": rf"C:\Users\bob\f{n}.bin",
                       "remote_name": f"https://example.test/f{n}.bin", "bytes_total": 100,
                       "bytes_transferred": 100}]})
    return {"bitsdb_forge": 1, "jobs": jobs}


def ntfs_with_deleted(target: Path, size_mib: int, deleted: dict[str, bytes], live: Path | None = None,
                      files: dict[str, bytes] | None = None) -> Path:
    """An NTFS volume whose `deleted` files (path -> bytes) were written, then deleted: their bytes
    remain only in unallocated clusters. `live` is a qmgr.db left in the Downloader folder (with a
    stand-in edb.log); `files` are other files left allocated (e.g. a pagefile.sys)."""
    import os
    import subprocess
    import tempfile

    with open(target, "wb") as handle:
        handle.truncate(size_mib << 20)
    _run("mkntfs", "-F", "-Q", "-q", "-L", "CARVE", str(target))
    with tempfile.TemporaryDirectory(prefix="bitsdb-mnt-") as mount:
        root = Path(mount)
        for phase in ("write", "delete"):
            try:
                _run("ntfs-3g", str(target), mount)
            except subprocess.CalledProcessError as exc:
                raise RuntimeError(f"ntfs-3g cannot mount (FUSE missing?): "
                                   f"{exc.stderr.decode(errors='replace')[:200]}") from None
            try:
                for relative, data in deleted.items():
                    path = root / relative
                    if phase == "write":
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(data)
                    else:
                        path.unlink()
                if phase == "write":
                    if live is not None:
                        write_volume(root, live)
                    for relative, data in (files or {}).items():
                        (root / relative).parent.mkdir(parents=True, exist_ok=True)
                        (root / relative).write_bytes(data)
                os.sync()
            finally:
                _run("umount", mount)
    return target
