"""Disk images through dfvfs: raw/MBR/GPT, E01 (split too), VMDK, VHD/VHDX, qcow2, split raw, shadow copies.

Images are built here from the real samples with Debian tools (ntfs-3g + FUSE, fdisk,
ewf-tools, qemu-utils); tests skip with the reason when a tool or dfvfs is missing.
"""

from __future__ import annotations

import hashlib
import lzma
import shutil
import tempfile
from pathlib import Path

import pytest

from bitsdb.evidence import run_batch
from bitsdb.forge.evidence import (
    missing_tools,
    ntfs_volume,
    partitioned_disk,
    qemu_convert,
    software_hive,
    split_raw,
    system_hive,
    to_e01,
    write_volume,
)

pytest.importorskip("dfvfs", reason="disk images need the optional extra: pip install 'bitsdb[images]'")
pytest.importorskip("regipy", reason="hives are read with regipy (pip install 'bitsdb[images]')")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "real"
WIN11 = SHARED / "artemis" / "win11_qmgr.db"
WIN10 = SHARED / "artemis" / "win10_qmgr.db"
VSSTEST = SHARED / "plaso" / "vsstest.qcow2"
VSSBITS = SHARED / "plaso" / "vssbits.qcow2.xz"
WIN11_SID = "S-1-5-21-4066115557-1486886006-1773980413-1001"
DOWNLOADER = "ProgramData/Microsoft/Network/Downloader"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """One good NTFS volume (qmgr.db + logs + hives) and one with a corrupt qmgr.db, in every container."""
    if not WIN11.exists():
        pytest.skip("real samples absent (../shared/samples/real)")
    reason = missing_tools("mkntfs", "ntfs-3g", "sfdisk", "ewfacquirestream", "qemu-img")
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("images")
    good = work / "stage_good"
    write_volume(good, WIN11, hives={"SOFTWARE": software_hive({WIN11_SID: r"C:\Users\alice"}),
                                     "SYSTEM": system_hive("IMGHOST")})
    bad = work / "stage_bad"
    folder = write_volume(bad, WIN10)
    data = bytearray((folder / "qmgr.db").read_bytes())
    data[0x8000:] = b"\xaa" * (len(data) - 0x8000)
    (folder / "qmgr.db").write_bytes(bytes(data))
    try:
        ntfs_volume(work / "ntfs.raw", 4, good)
        ntfs_volume(work / "bad.raw", 4, bad)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    out = {"ntfs.raw": work / "ntfs.raw"}
    out["mbr.raw"] = partitioned_disk(work / "mbr.raw", [work / "ntfs.raw", work / "bad.raw"], "dos")
    out["gpt.raw"] = partitioned_disk(work / "gpt.raw", [work / "ntfs.raw"], "gpt")
    out["mbr.E01"] = to_e01(out["mbr.raw"], work / "mbr")
    (work / "split").mkdir()
    out["split.E01"] = to_e01(out["gpt.raw"], work / "split" / "gpt", segment_bytes=1 << 20, compression="none")
    out["gpt.vmdk"] = qemu_convert(out["gpt.raw"], work / "gpt.vmdk", "vmdk", "monolithicSparse")
    out["gpt.vhdx"] = qemu_convert(out["gpt.raw"], work / "gpt.vhdx", "vhdx", "dynamic")
    out["gpt.vhd"] = qemu_convert(out["gpt.raw"], work / "gpt.vhd", "vpc", "dynamic")
    out["gpt.qcow2"] = qemu_convert(out["gpt.raw"], work / "gpt.qcow2", "qcow2")
    (work / "splitraw").mkdir()
    out["split.raw"] = split_raw(out["gpt.raw"], work / "splitraw" / "gpt.raw", 3 << 20)
    return out


@pytest.mark.parametrize("name, partition", [
    ("ntfs.raw", None), ("gpt.raw", "p1"), ("split.E01", "p1"), ("gpt.vmdk", "p1"), ("gpt.vhdx", "p1"),
    ("gpt.vhd", "p1"), ("gpt.qcow2", "p1"), ("split.raw", "p1"),
])
def test_every_container_yields_the_database_with_provenance(images, name, partition):
    image = images[name]
    before = sha256(image)
    report = run_batch([image], jobs=1, progress=False)
    assert report.failures == []
    [result] = report.results
    assert result.sha256 == sha256(WIN11) and len(result.jobs) == 4
    volume = f"{partition}/" if partition else ""
    assert result.path == f"{image}!{volume}{DOWNLOADER}/qmgr.db"
    prov = result.jobs[0].provenance
    assert (prov.container, prov.partition, prov.snapshot) == (str(image), partition, None)
    assert (prov.host, prov.host_source) == ("IMGHOST", "SYSTEM hive")
    assert prov.path_in_evidence == f"/{DOWNLOADER}/qmgr.db" and prov.source_size == WIN11.stat().st_size
    assert set(prov.file_times) == {"created", "modified", "accessed", "entry_modified"}
    assert prov.file_times["modified"].endswith("+00:00")
    assert {j.owner_name for j in result.jobs} == {"alice"}
    [group] = report.items[0].groups
    assert [a.name for a in group.artefacts] == ["edb.chk", "edb.log", "qmgr.db"]
    assert sha256(image) == before
    if name == "split.E01":
        assert len(list(image.parent.glob("gpt.E*"))) > 2      # really split


def test_corrupt_database_next_to_a_good_one(images):
    """MBR disk (raw and E01): p1 holds a good qmgr.db, p2 a damaged one; p2 fails alone, p1 is read."""
    report = run_batch([images["mbr.raw"], images["mbr.E01"]], jobs=2, progress=False)
    assert [item.volumes for item in report.items] == [["p1", "p2"], ["p1", "p2"]]
    assert [r.path for r in report.results] == [f"{images['mbr.raw']}!p1/{DOWNLOADER}/qmgr.db",
                                                f"{images['mbr.E01']}!p1/{DOWNLOADER}/qmgr.db"]
    assert report.failures == [
        f"{images[n]}!p2/{DOWNLOADER}/qmgr.db: not a readable ESE database "
        "(unable to open file: invalid number of page tags value out of bounds)" for n in ("mbr.raw", "mbr.E01")]
    # the data partition has no hives of its own: the system partition's name the machine
    assert {g.host for item in report.items for g in item.groups} == {"IMGHOST"}


def test_images_in_a_folder_are_separate_items(images, tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir()
    for name in ("gpt.vmdk", "gpt.vhdx"):
        shutil.copyfile(images[name], folder / name)
    report = run_batch([folder], jobs=2, progress=False)
    assert [item.evidence for item in report.items] == [str(folder / "gpt.vhdx"), str(folder / "gpt.vmdk")]
    assert len(report.results) == 2 and not report.failures


@pytest.mark.skipif(not VSSTEST.exists(), reason="plaso vsstest.qcow2 absent (../shared/samples/real/plaso)")
def test_every_shadow_copy_store_is_scanned():
    report = run_batch([VSSTEST], jobs=1, progress=False)
    assert report.items[0].volumes == ["volume", "vss1", "vss2"]
    assert report.results == [] and report.failures == []
    assert report.items[0].warnings == [f"{VSSTEST}: no BITS files found"]


@pytest.mark.skipif(not VSSBITS.exists(), reason="vssbits.qcow2.xz absent (../shared/samples/real/plaso)")
def test_shadow_copy_image_reports_the_current_volume(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    image = tmp_path / "vssbits.qcow2"
    image.write_bytes(lzma.decompress(VSSBITS.read_bytes()))
    report = run_batch([image], jobs=1, progress=False)
    item = report.items[0]
    assert item.volumes == ["volume", "vss1", "vss2"]
    db = [r for r in report.results if r.path.endswith("qmgr.db")]
    assert len(db) == 1 and db[0].sha256 == sha256(WIN11) and len(db[0].jobs) == 4
    assert {j.provenance.snapshot for j in db[0].jobs} == {None}     # the stores predate the Downloader folder
    assert db[0].jobs[0].provenance.host == "vssbits"
    assert list(scratch.iterdir()) == []                       # the private copies are gone


def test_collection_inside_a_vhdx_container(tmp_path):
    """KAPE can write its output into a VHDX: the volume holds <stamp>_<host>/C/…, not a Windows tree."""
    if not WIN11.exists():
        pytest.skip("real samples absent (../shared/samples/real)")
    reason = missing_tools("mkntfs", "ntfs-3g", "qemu-img")
    if reason:
        pytest.skip(reason)
    from bitsdb.forge.evidence import kape_collection

    stage = tmp_path / "stage"
    stage.mkdir()
    kape_collection(stage, "WKS9", WIN11, hives={"SOFTWARE": software_hive({WIN11_SID: r"C:\Users\carol"}),
                                                 "SYSTEM": system_hive("WKS9-SYS")})
    kape_collection(stage, "WKS8", WIN10)
    try:
        volume = ntfs_volume(tmp_path / "kape.raw", 8, stage)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    container = qemu_convert(volume, tmp_path / "2024-05-01T101500.vhdx", "vhdx", "dynamic")
    report = run_batch([container], jobs=1, progress=False)
    assert not report.failures
    hosts = {r.jobs[0].provenance.host: r for r in report.results}
    assert set(hosts) == {"WKS9-SYS", "WKS8"}
    assert hosts["WKS9-SYS"].jobs[0].owner_name == "carol"
    assert hosts["WKS8"].jobs[0].provenance.host_source == "folder name"
    assert hosts["WKS8"].jobs[0].provenance.path_in_evidence == \
        f"/2024-05-01T101500_WKS8/C/{DOWNLOADER}/qmgr.db"
