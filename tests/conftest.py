"""Shared fixtures: where the real samples live (beside the project, never inside it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = PROJECT.parent / "shared" / "samples"
REAL = SHARED_SAMPLES / "real"
#: Where carve_disks puts a job record inside p1's pagefile.sys.
PAGEFILE_OFFSET = 300_000


def real_sample(*parts: str) -> Path:
    """Path of a real sample; skips the test (with the reason) when it is not available."""
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample {path} not available (../shared/samples is absent in this checkout)")
    return path


def report_data(page: str) -> dict:
    """The view-model a `bitsdb report` page carries in its data block."""
    from bitsdb.report import read_data_block

    block = re.search(r'<script type="application/json" id="bitsdb-data">(.*?)</script>', page, re.S)
    assert block, "no data block"
    return read_data_block(block.group(1))


@pytest.fixture
def artemis():
    return lambda name: real_sample("artemis", name)


@pytest.fixture(scope="session")
def carve_disks(tmp_path_factory) -> dict[str, Path]:
    """An MBR disk (raw, E01, VMDK, VHDX, qcow2): p1 held a forged qmgr.db of 50 jobs, deleted (only
    in unallocated clusters), and holds a pagefile.sys with one job record at PAGEFILE_OFFSET; p2 holds
    a live qmgr.db of 5 other jobs and a deleted copy of it. Built with mkntfs, ntfs-3g (FUSE),
    sfdisk, ewfacquirestream and qemu-img; skips with the reason when one is missing."""
    pytest.importorskip("dfvfs", reason="disk images need the optional extra: pip install 'bitsdb[images]'")
    from bitsdb.forge.carving import job_bytes
    from bitsdb.forge.evidence import (
        missing_tools,
        ntfs_with_deleted,
        numbered_jobs_spec,
        partitioned_disk,
        qemu_convert,
        to_e01,
    )
    from bitsdb.forge.spec import forge

    reason = missing_tools("mkntfs", "ntfs-3g", "sfdisk", "ewfacquirestream", "qemu-img")
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("carve-images")
    (work / "old").mkdir()
    (work / "live").mkdir()
    old = forge(numbered_jobs_spec(50), work / "old" / "qmgr.db").database
    live = forge(numbered_jobs_spec(5, first=100), work / "live" / "qmgr.db").database
    pagefile = bytearray(1 << 20)
    record = job_bytes(7)
    pagefile[PAGEFILE_OFFSET:PAGEFILE_OFFSET + len(record)] = record
    try:
        p1 = ntfs_with_deleted(work / "p1.raw", 8, {"Users/Public/qmgr.db": old.read_bytes()},
                               files={"pagefile.sys": bytes(pagefile)})
        p2 = ntfs_with_deleted(work / "p2.raw", 8, {"Temp/copy/qmgr.db": live.read_bytes()}, live=live)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    out = {"disk.raw": partitioned_disk(work / "disk.raw", [p1, p2], "dos"), "p1.raw": p1}
    out["disk.E01"] = to_e01(out["disk.raw"], work / "disk")
    for fmt, sub, name in (("vmdk", "monolithicSparse", "disk.vmdk"), ("vhdx", "dynamic", "disk.vhdx"),
                           ("qcow2", None, "disk.qcow2")):
        out[name] = qemu_convert(out["disk.raw"], work / name, fmt, sub)
    return out
