"""Carving whole disk images: deleted databases in unallocated clusters, records inside allocated files,
every container format, range splits, and the same store both live and deleted.

The disk (conftest.carve_disks, built in the test run): p1 held a forged qmgr.db of 50 jobs that
was deleted (its pages are only in unallocated clusters) and holds a pagefile.sys with one job
record inside; p2 holds a live qmgr.db of 5 other jobs and a deleted copy of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from bitsdb.forge.carving import job_id

pytest.importorskip("dfvfs", reason="disk images need the optional extra: pip install 'bitsdb[images]'")
pytestmark = [pytest.mark.tool, pytest.mark.slow]

from conftest import PAGEFILE_OFFSET  # noqa: E402

CONTAINERS = ("disk.raw", "disk.E01", "disk.vmdk", "disk.vhdx", "disk.qcow2")


def _runner() -> CliRunner:
    return CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()


def _cli():
    from bitsdb.cli import cli

    return cli


@pytest.fixture(scope="module")
def disks(carve_disks) -> dict[str, Path]:
    return carve_disks


def _carve(*args: str) -> tuple[int, list[dict], str, str]:
    result = _runner().invoke(_cli(), ["carve", "--no-progress", *args])
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()], result.stdout, result.stderr


def test_deleted_database_is_found_in_unallocated_clusters_and_located(disks):
    code, records, _, stderr = _carve(str(disks["disk.raw"]))
    assert code == 0, stderr
    jobs = [r for r in records if r["record_type"] == "job"]
    deleted = [j for j in jobs if j["job_id"].startswith("11111111-") and int(j["job_id"][-12:]) < 50]
    assert len(deleted) == 50
    for job in deleted:
        prov = job["provenance"]
        assert (prov["container"], prov["partition"], prov["snapshot"]) == (str(disks["disk.raw"]), "p1", None)
        assert prov["allocation"] == "unallocated" and prov["path_in_evidence"] is None
        assert prov["source_path"] == f"{disks['disk.raw']}!p1" and prov["offset"] == prov["volume_offset"]
    # the bytes really are at that volume offset: the record's own job id follows its marker
    volume = disks["p1.raw"].read_bytes()
    for job in deleted:
        at = job["provenance"]["volume_offset"]
        assert volume[at + 32:at + 48] == uuid.UUID(job["job_id"]).bytes_le
    assert "p1, p2, unpartitioned" in stderr


def test_record_inside_an_allocated_file_names_the_file(disks):
    _, records, _, _ = _carve(str(disks["disk.raw"]))
    [paged] = [r for r in records if r.get("job_id") == job_id(7)]
    prov = paged["provenance"]
    assert prov["allocation"] == "allocated file" and prov["path_in_evidence"] == "/pagefile.sys"
    assert prov["offset"] == PAGEFILE_OFFSET and prov["source_path"] == f"{disks['disk.raw']}!p1/pagefile.sys"
    assert prov["volume_offset"] != PAGEFILE_OFFSET


def test_live_and_deleted_copies_are_one_record_with_both_places(disks):
    _, records, _, _ = _carve(str(disks["disk.raw"]))
    live = [r for r in records if r["record_type"] == "job" and r["provenance"]["partition"] == "p2"]
    assert len(live) == 5
    for job in live:
        places = {(p["allocation"], p["path_in_evidence"]) for p in job["provenance"]["locations"]}
        assert places == {("allocated file", "/ProgramData/Microsoft/Network/Downloader/qmgr.db"),
                          ("unallocated", None)}
        assert job["provenance"]["recovered_from"] == "db page"          # the live store's copy comes first


@pytest.mark.parametrize("name", CONTAINERS[1:])
def test_every_container_gives_the_raw_disks_records(disks, name):
    code, _, raw_text, _ = _carve(str(disks["disk.raw"]))
    code, records, text, stderr = _carve(str(disks[name]))
    assert code == 0, stderr
    assert len([r for r in records if r["record_type"] == "job"]) == 56
    assert text.replace(str(disks[name]), "IMAGE") == raw_text.replace(str(disks["disk.raw"]), "IMAGE")


def test_range_split_and_workers_do_not_change_a_byte(disks):
    _, _, whole, _ = _carve("-j", "1", "--range-mib", "64", str(disks["disk.E01"]))
    _, _, split, _ = _carve("-j", "2", "--range-mib", "1", str(disks["disk.E01"]))
    assert whole and split == whole


def test_parse_recover_on_an_image_adds_what_only_the_media_holds(disks):
    result = _runner().invoke(_cli(), ["parse", "--recover", "--no-progress", str(disks["disk.vmdk"])])
    assert result.exit_code == 0, result.stderr
    jobs = [json.loads(line) for line in result.stdout.splitlines()]
    live = [j for j in jobs if not j["provenance"]["recovered"]]
    assert len(live) == 5 and {j["provenance"]["partition"] for j in live} == {"p2"}
    for job in live:                       # its deleted copy is a place of the live record, not a new one
        assert "unallocated" in {p["allocation"] for p in job["provenance"]["locations"]}
    recovered = [j for j in jobs if j["provenance"]["recovered"] and j["record_type"] == "job"]
    assert len(recovered) == 51 and {j["provenance"]["allocation"] for j in recovered} == {"unallocated",
                                                                                         "allocated file"}


def test_container_without_the_images_extra_is_a_one_line_error(disks):
    code = ("import sys; sys.modules['dfvfs'] = None\n"
            "from bitsdb.cli import main; sys.argv = ['bitsdb', 'carve', sys.argv[1]]; main()")
    done = subprocess.run([sys.executable, "-c", code, str(disks["disk.E01"])], capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"bitsdb: error: {disks['disk.E01']}: EWF (E01) image: carving reads the decoded disk, "
                           "which needs the optional extra: pip install 'bitsdb[images]' (dfvfs)\n")


def test_shadow_copy_stores_are_scanned_where_they_differ():
    """plaso's vsstest.qcow2: the current volume whole, each store only in the 16 KiB blocks it holds."""
    from conftest import real_sample

    from bitsdb.carve.ranges import merge_ranges
    from bitsdb.evidence.volumes import VSS_BLOCK, scan_target_range, survey

    image = real_sample("plaso", "vsstest.qcow2")
    found = survey(image)
    assert found.media_format == "QCOW" and found.warnings == []
    assert [(t.label, t.kind, t.snapshot) for t in found.targets] == [
        ("volume", "volume", None), ("vss1", "snapshot", "vss1"), ("vss2", "snapshot", "vss2")]
    volume, *stores = found.targets
    assert volume.regions == ((0, volume.size),)
    for store in stores:
        assert store.fs_spec and 0 < store.scanned_bytes < volume.size // 100
        assert all((stop - start) % VSS_BLOCK == 0 for start, stop in store.regions)
        start, stop = store.regions[0]
        assert merge_ranges([scan_target_range(store, start, stop)]) == []     # no BITS data in this image
