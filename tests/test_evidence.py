"""Evidence layer without disk images: locating rules, collection folders, zips, hives, batch runs."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import tempfile
from pathlib import Path

import pytest

from bitsdb.evidence import iter_evidence, iter_groups, read_evidence, run_batch
from bitsdb.evidence.locate import downloader_index, host_from_name, placement, role_of
from bitsdb.evidence.registry import hive_facts
from bitsdb.forge.evidence import (
    kape_collection,
    software_hive,
    system_hive,
    velociraptor_collection,
    write_volume,
    zip_folder,
)
from bitsdb.sources.result import SourceError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples" / "real" / "artemis"
WIN11 = SAMPLES / "win11_qmgr.db"
WIN10 = SAMPLES / "win10_qmgr.db"
WIN11_SID = "S-1-5-21-4066115557-1486886006-1773980413-1001"
WIN10_SID = "S-1-5-21-1079689790-2336414676-942872339-1001"
LEGACY = ROOT / "samples" / "legacy" / "win10"

needs_regipy = pytest.mark.skipif(importlib.util.find_spec("regipy") is None,
                                  reason="hives are read with regipy (pip install regipy)")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    """Temporary copies go to a folder the test can inspect (and check is emptied)."""
    folder = tmp_path / "_tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


# --- locating rules ---------------------------------------------------------------------------------------

def test_roles_cover_stores_and_ese_companions():
    assert [role_of(n) for n in ("qmgr.db", "QMGR0.DAT", "qmgr1.dat")] == ["store"] * 3
    assert [role_of(n) for n in ("edb.log", "edb0000A.log", "edbtmp.log", "edb.chk", "edbres00001.jrs",
                                 "qmgr.jfm")] == ["companion"] * 6
    assert role_of("qmgr.db.bak") is None and role_of("notes.txt") is None


def test_downloader_folder_is_found_case_insensitively_in_every_layout():
    assert downloader_index(("C", "programdata", "MICROSOFT", "Network", "Downloader")) == 1
    assert downloader_index(("C%3A", "ProgramData", "Microsoft", "Network", "Downloader")) == 1
    xp = ("x", "Documents and Settings", "All Users", "Application Data", "Microsoft", "Network", "Downloader")
    assert downloader_index(xp) == 1
    assert downloader_index(("Documents%20and%20Settings", "All%20Users", "Application%20Data", "Microsoft",
                             "Network", "Downloader")) == 0
    assert downloader_index(("ProgramData", "Microsoft", "Network")) is None


@pytest.mark.parametrize("prefix, host, drive, snapshot, item", [
    (("2024-05-01T101500_WKS1", "C"), "WKS1", "C", None, 1),
    (("cases", "Collection-WKS-22-2024-05-01T10_15_00Z", "uploads", "auto", "C%3A"), "WKS-22", "C", None, 2),
    (("Collection-WKS3-2024-05-01T10_15_00Z", "uploads", "ntfs", "%5C%5C.%5CD%3A"), "WKS3", "D", None, 1),
    (("WKS4", "uploads", "ntfs", "%5C%5C%3F%5CGLOBALROOT%5CDevice%5CHarddiskVolumeShadowCopy3"), "WKS4", None,
     "vss3", 1),
    (("C",), None, "C", None, 0),
])
def test_collection_prefix_gives_host_drive_and_snapshot(prefix, host, drive, snapshot, item):
    place = placement(prefix)
    assert (place.host, place.drive, place.snapshot, len(place.item_parts)) == (host, drive, snapshot, item)


def test_host_names_from_file_names():
    assert host_from_name("DC01.E01") == "DC01"
    assert host_from_name("Collection-laptop7-2023-11-02T08_00_01Z.zip") == "laptop7"
    assert host_from_name("2024-05-01T101500_WKS1") == "WKS1"
    assert host_from_name("2024-05-01T101500") is None


# --- collection folders, zips, hives ----------------------------------------------------------------------

def _hives(sid: str, user: str, computer: str, state_index: int | None = None) -> dict[str, bytes]:
    profiles = {sid: f"C:\\Users\\{user}", "S-1-5-18": r"%systemroot%\system32\config\systemprofile"}
    return {"SOFTWARE": software_hive(profiles, state_index),
            "SYSTEM": system_hive(computer)}


@pytest.fixture
def collections(tmp_path) -> Path:
    """Several hosts: KAPE (with hives), Velociraptor (no hives), XP layout, and a loose qmgr.db."""
    if not WIN11.exists():
        pytest.skip("real samples absent (../shared/samples/real)")
    base = tmp_path / "cases"
    base.mkdir()
    kape_collection(base, "WKS1", WIN11, hives=_hives(WIN11_SID, "alice", "WKS1-SYS"))
    velociraptor_collection(base, "WKS2", WIN10)
    xp = base / "XPHOST" / "C" / "Documents and Settings" / "All Users" / "Application Data" / "Microsoft" / \
        "Network" / "Downloader"
    xp.mkdir(parents=True)
    shutil.copyfile(WIN10, xp / "qmgr.db")
    loose = base / "loose"
    loose.mkdir()
    shutil.copyfile(WIN11, loose / "QMGR.DB")
    (loose / "edb.log").write_bytes(b"x")
    (base / "unrelated").mkdir()
    (base / "unrelated" / "edb.log").write_bytes(b"not BITS on its own")
    return base


def _by_host(report):
    return {r.jobs[0].provenance.host: r for r in report.results}


@needs_regipy
def test_collection_folder_with_several_hosts(collections):
    report = run_batch([collections], jobs=2, progress=False)
    assert not report.failures
    hosts = _by_host(report)
    assert set(hosts) == {"WKS1-SYS", "WKS2", "XPHOST", None}
    wks1 = hosts["WKS1-SYS"]
    assert len(wks1.jobs) == 4 and wks1.sha256 == sha256(WIN11)
    prov = wks1.jobs[0].provenance
    assert prov.container is not None and prov.path_in_evidence
    assert prov.host_source == "SYSTEM hive"
    assert prov.container == str(collections / "2024-05-01T101500_WKS1")
    assert prov.path_in_evidence == "C/ProgramData/Microsoft/Network/Downloader/qmgr.db"
    assert prov.source_size == WIN11.stat().st_size and prov.table == "Jobs"
    assert {j.owner_name for j in wks1.jobs} == {"alice"}            # from the collection's own ProfileList
    wks2 = hosts["WKS2"]
    assert wks2.jobs[0].provenance.host_source == "folder name"
    assert wks2.jobs[0].owner_sid == WIN10_SID and wks2.jobs[0].owner_name is None   # no hive: not guessed
    assert hosts["XPHOST"].jobs[0].provenance.path_in_evidence.startswith("C/Documents and Settings/")
    assert hosts[None].path.endswith("loose/QMGR.DB")
    # one job dict carries the evidence keys
    out = wks1.jobs[0].to_dict()["provenance"]
    assert {"host", "partition", "snapshot", "path_in_evidence", "source_size", "file_times"} <= set(out)


def test_output_order_does_not_depend_on_workers(collections):
    serial = run_batch([collections], jobs=1, progress=False)
    parallel = run_batch([collections], jobs=2, progress=False)
    assert [r.path for r in serial.results] == [r.path for r in parallel.results]
    assert [j.to_dict() for r in serial.results for j in r.jobs] == \
        [j.to_dict() for r in parallel.results for j in r.jobs]
    assert parallel.jobs == 2


@needs_regipy
def test_companions_are_grouped_with_their_store(collections):
    groups = {g.host: g for g in iter_groups(collections)}
    wks1 = groups["WKS1-SYS"]
    assert [(a.name, a.role) for a in wks1.artefacts] == [("edb.chk", "companion"), ("edb.log", "companion"),
                                                          ("qmgr.db", "store")]
    assert wks1.accounts[WIN11_SID] == "alice" and wks1.accounts["S-1-5-18"] == "systemprofile"
    assert {a.name for a in iter_evidence(collections)} >= {"qmgr.db", "QMGR.DB", "edb.log", "edb.chk"}
    assert not any("unrelated" in a.path_in_evidence for a in iter_evidence(collections))


def test_zip_triage_package(collections, tmp_path, private_tmp):
    package = zip_folder(collections / "Collection-WKS2-2024-05-01T10_15_00Z",
                         tmp_path / "Collection-WKS2-2024-05-01T10_15_00Z.zip")
    before = sha256(package)
    report = run_batch([package], jobs=1, progress=False)
    assert not report.failures
    [result] = report.results
    assert result.sha256 == sha256(WIN10) and len(result.jobs) == 1
    assert result.path == f"{package}!uploads/auto/C%3A/ProgramData/Microsoft/Network/Downloader/qmgr.db"
    prov = result.jobs[0].provenance
    assert (prov.host, prov.host_source, prov.container) == ("WKS2", "archive name", str(package))
    assert "modified_zone_unknown" in prov.file_times or "modified" in prov.file_times
    [group] = report.items[0].groups
    logs = group.companions
    assert {a.name for a in logs} == {"edb.log", "edb.chk"} and all(a.sha256 and not a.local_path for a in logs)
    assert sha256(package) == before
    assert list(private_tmp.iterdir()) == []                  # temporary copies removed


def test_evidence_is_never_modified(collections, private_tmp):
    before = tree_hashes(collections)
    run_batch([collections], jobs=2, progress=False)
    assert tree_hashes(collections) == before
    assert list(private_tmp.iterdir()) == []


def test_one_failing_item_never_stops_the_batch(collections, tmp_path):
    broken = kape_collection(tmp_path, "BROKEN", WIN10)
    db = broken / "C" / "ProgramData" / "Microsoft" / "Network" / "Downloader" / "qmgr.db"
    data = bytearray(db.read_bytes())
    data[0x8000:] = b"\xaa" * (len(data) - 0x8000)
    db.write_bytes(bytes(data))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello" * 100)
    seen = []
    report = run_batch([tmp_path / "missing", junk, broken, collections], jobs=2,
                       progress=lambda done, total, item: seen.append((done, total)))
    failures = report.failures
    assert failures[0] == f"{tmp_path / 'missing'}: no such file or directory"
    assert failures[1].startswith(f"{junk}: not a BITS database, state file, job/file record, zip archive")
    assert failures[2].startswith(f"{db}: not a readable ESE database")
    assert len(failures) == 3 and len(report.failed_items) == 3
    assert len(report.results) == 4                          # the good hosts are all read
    assert seen[-1] == (-1, len(report.items)) and len(seen) == len(report.items) + 1
    summary = report.summary()
    assert "3 item(s) with failures" in summary and "not a readable ESE database" in summary


def test_read_evidence_raises_only_when_nothing_was_read(collections, tmp_path):
    assert len(read_evidence(collections, jobs=1)) == 4
    with pytest.raises(SourceError, match="no such file"):
        read_evidence(tmp_path / "nothing-here", jobs=1)


@needs_regipy
def test_hive_facts_and_damaged_hives(tmp_path):
    software = tmp_path / "SOFTWARE"
    software.write_bytes(software_hive({WIN10_SID: r"C:\Users\bob"}, state_index=1))
    system = tmp_path / "SYSTEM"
    system.write_bytes(system_hive("HOST-9", control_set=2))
    facts = hive_facts(str(software), str(system))
    assert (facts.accounts, facts.state_index, facts.computer_name) == ({WIN10_SID: "bob"}, 1, "HOST-9")
    damaged = tmp_path / "BAD"
    damaged.write_bytes(b"regf" + b"\0" * 100)
    facts = hive_facts(str(damaged), None)
    assert facts.accounts == {} and facts.warnings and facts.warnings[0].startswith("SOFTWARE hive unreadable")


@needs_regipy
@pytest.mark.skipif(not (LEGACY / "qmgr0.dat").exists(), reason="legacy samples absent (samples/legacy)")
@pytest.mark.parametrize("state_index, current", [(0, "qmgr0.dat"), (1, "qmgr1.dat")])
def test_state_index_from_the_evidence_decides_the_legacy_pair(tmp_path, state_index, current):
    pytest.importorskip("bitsdb.sources.legacy")
    volume = tmp_path / "HOST" / "C"
    folder = write_volume(volume, None, hives={"SOFTWARE": software_hive({}, state_index)})
    for name in ("qmgr0.dat", "qmgr1.dat"):
        shutil.copyfile(LEGACY / name, folder / name)
    [group] = list(iter_groups(tmp_path / "HOST"))
    assert group.state_index == state_index
    report = run_batch([tmp_path / "HOST"], jobs=1, progress=False)
    states = {Path(r.path).name: {j.provenance.state_file for j in r.jobs} for r in report.results}
    assert states[current] == {"current"}
    assert states[({"qmgr0.dat", "qmgr1.dat"} - {current}).pop()] == {"previous"}


def test_images_need_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dfvfs(name, *args, **kwargs):
        if name.startswith("dfvfs"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    image = tmp_path / "disk.E01"
    image.write_bytes(b"EVF\x09\x0d\x0a\xff\x00" + b"\0" * 600)
    monkeypatch.setattr(builtins, "__import__", no_dfvfs)
    report = run_batch([image], jobs=1, progress=False)
    assert report.failures == [f"{image}: disk images need the optional extra: pip install 'bitsdb[images]' (dfvfs)"]


@pytest.mark.skipif(not (LEGACY / "qmgr0.dat").exists(), reason="legacy samples absent (samples/legacy)")
def test_state_files_given_one_by_one_are_still_compared(tmp_path):
    pytest.importorskip("bitsdb.sources.legacy")
    for name in ("qmgr0.dat", "qmgr1.dat"):
        shutil.copyfile(LEGACY / name, tmp_path / name)
    report = run_batch([tmp_path / "qmgr1.dat", tmp_path / "qmgr0.dat"], jobs=1, progress=False)
    assert len(report.items) == 1 and not report.failures
    states = {Path(r.path).name: {j.provenance.state_file for j in r.jobs} for r in report.results}
    assert states == {"qmgr0.dat": {"previous"}, "qmgr1.dat": {"current"}}
    # files named on their own keep exactly the plain readers' provenance (no evidence keys)
    assert {type(j.provenance).__name__ for r in report.results for j in r.jobs} == {"Provenance"}


def test_without_regipy_hives_cost_names_only(tmp_path, monkeypatch):
    import builtins

    from bitsdb.evidence import registry

    real_import = builtins.__import__

    def no_regipy(name, *args, **kwargs):
        if name.startswith("regipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    hive = tmp_path / "SOFTWARE"
    hive.write_bytes(software_hive({WIN10_SID: r"C:\Users\bob"}))
    monkeypatch.setattr(builtins, "__import__", no_regipy)
    registry._hive_facts.cache_clear()
    facts = hive_facts(str(hive), None)
    registry._hive_facts.cache_clear()
    assert facts.accounts == {} and "install regipy" in facts.warnings[0]


def test_progress_line_on_stderr(collections, capsys):
    run_batch([collections], jobs=1, progress=True)
    err = capsys.readouterr().err
    assert err.endswith("\n") and "bitsdb: 4/4 item(s), 4 store file(s), 0 failed" in err
    run_batch([collections], jobs=1, progress=None)              # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""


def test_a_folder_of_renamed_exports_is_read_by_content(tmp_path):
    """Analysts export stores under other names (`hostA_qmgr.db`) and records as `*.raw`: a folder
    holding them is read by content; a `.raw` that is a BITS record is not sent to the image layer,
    and files of those kinds that hold no BITS data are not reported."""
    from bitsdb.forge.samples import persistence_job
    from bitsdb.decode import encode_job

    demo = Path(__file__).resolve().parents[1] / "samples" / "demo" / "qmgr.db"
    shutil.copyfile(demo, tmp_path / "hostA_qmgr.db")
    job, _ = persistence_job()
    (tmp_path / "job.raw").write_bytes(encode_job(job))
    (tmp_path / "NTUSER.DAT").write_bytes(b"regf" + bytes(4092))
    (tmp_path / "notes").write_text("case notes\n")
    report = run_batch([tmp_path], jobs=1, progress=False)
    assert report.failures == []
    sources = sorted({Path(r.path).name for r in report.results})
    assert sources == ["hostA_qmgr.db", "job.raw"]
    names = {j.display_name for r in report.results for j in r.jobs}
    assert job.display_name in names and len(names) > 3


def test_compressed_evidence_is_named_not_called_unrecognised(tmp_path):
    """A store, image or collection that arrives xz/gzip-compressed or as a 7z is said for what it is,
    with what to do; the good store beside it is read; unrelated compressed files stay quiet."""
    import gzip
    import lzma

    demo = ROOT / "samples" / "demo" / "qmgr.db"
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "disk.qcow2.xz").write_bytes(lzma.compress(b"QFI\xfb" + bytes(508)))
    report = run_batch([loose / "disk.qcow2.xz", demo], jobs=1, progress=False)
    assert len(report.failures) == 1
    assert "xz-compressed file" in report.failures[0] and "xz -dc" in report.failures[0]
    assert "\n" not in report.failures[0] and str(loose / "disk.qcow2.xz") in report.failures[0]
    assert sum(len(r.jobs) for r in report.results) > 3                        # the demo store still read

    tree = tmp_path / "tree" / "HOST1" / "C" / "ProgramData" / "Microsoft" / "Network" / "Downloader"
    tree.mkdir(parents=True)
    shutil.copyfile(demo, tree / "qmgr.db")
    (tree.parent / "qmgr.db.gz").write_bytes(gzip.compress(demo.read_bytes()[:4096]))
    (tree.parent / "collection.7z").write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(32))
    (tree.parent / "app.log.gz").write_bytes(gzip.compress(b"text"))
    report = run_batch([tmp_path / "tree"], jobs=1, progress=False)
    warned = [w for item in report.items for w in item.warnings if "does not open" in w]
    assert sorted(Path(w.split(": ")[0]).name for w in warned) == ["collection.7z", "qmgr.db.gz"]
    assert report.failures == [] and sum(len(r.jobs) for r in report.results) > 3


@needs_regipy
def test_each_hive_of_a_host_is_parsed_once(tmp_path, monkeypatch):
    """regipy reads a whole hive into memory (a SOFTWARE hive can be 100 MB): account names, host name,
    the BITS service and its policies come from one parse of each file, not one per consumer."""
    import regipy.registry

    from bitsdb.evidence import registry
    from bitsdb.sources import service

    kape_collection(tmp_path / "c", "HOST1", WIN10, hives={"SOFTWARE": software_hive({WIN10_SID: r"C:\Users\bob"}),
                                                          "SYSTEM": system_hive("HOST-1")})
    opened: list[str] = []
    original = regipy.registry.RegistryHive

    class Counting(original):
        def __init__(self, path, *args, **kwargs):
            opened.append(Path(path).name)
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(regipy.registry, "RegistryHive", Counting)
    for cache in (service._opened, service._service_config, registry._hive_facts):
        cache.cache_clear()
    report = run_batch([tmp_path / "c"], jobs=1, progress=False)
    for cache in (service._opened, service._service_config, registry._hive_facts):
        cache.cache_clear()
    assert report.failures == []
    [item] = report.items
    assert item.services and item.services[0].control_set                 # the SYSTEM hive was read
    assert sorted(opened) == ["SOFTWARE", "SYSTEM"]
