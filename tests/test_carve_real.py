"""Carving the real sample databases (FORMAT.md Appendix A, "Carving expectations")."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitsdb.api import read
from bitsdb.carve.recover import DB_PAGE, carve_file, recover, recover_many
from bitsdb.model import JobState
from bitsdb.timeutil import filetime_to_iso

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "real" / "artemis"
WIN10 = SAMPLES / "win10_qmgr.db"
WIN11 = SAMPLES / "win11_qmgr.db"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real sample {path.name} not available (expected under {SAMPLES})")
    return path


@pytest.fixture(scope="module")
def win10_scan():
    return carve_file(_need(WIN10))


def _jobs(scan):
    return [x.carved for x in scan.located if x.carved.kind == "job"]


def _files(scan):
    return [x.carved for x in scan.located if x.carved.kind == "file"]


def test_win10_counts(win10_scan):
    jobs = _jobs(win10_scan)
    assert len(jobs) == 106
    assert sum(j.record.partial for j in jobs) == 4             # 3 cut at a page edge, 1 overwritten
    assert len({(j.record.job_id, j.record.modification_time) for j in jobs}) == 56
    assert len({j.record.job_id for j in jobs}) == 23
    assert win10_scan.recovered_from == DB_PAGE
    assert win10_scan.stats.bytes_scanned == WIN10.stat().st_size


def test_win10_partial_reasons(win10_scan):
    reasons = sorted(j.record.partial_reason.split(":")[0] for j in _jobs(win10_scan) if j.record.partial)
    assert reasons == ["cut at the page boundary 0xe8000 (5259 bytes after the marker)",
                       "cut at the page boundary 0xec000 (4909 bytes after the marker)",
                       "cut at the page boundary 0xf4000 (6748 bytes after the marker)",
                       # another record overwrote this one's tail: since issue 17 the trailer decoder
                       # stops where it can vouch for nothing (before, it read foreign bytes on into
                       # the other record's marker and said "overwritten")
                       "stopped at trailer"]


def test_win10_job_hits_1_3_18(win10_scan):
    jobs = [j.record for j in _jobs(win10_scan)]
    assert jobs[1].display_name == "PreSignInSettingsConfigJSON"
    assert filetime_to_iso(jobs[3].creation_time).startswith("2019-11-24T23:30:03.984989")
    hit = jobs[18]
    assert hit.job_id == "2d101a37-d827-41c8-828c-664a276b096d"
    assert hit.display_name == "SpeechModelDownloadJob" and hit.owner_sid == "S-1-5-20"
    assert hit.state == JobState.SUSPENDED and hit.errors == []
    others = [j for j in jobs if j.job_id == hit.job_id and j.errors]
    assert others and all(e.hresult == 0x80072EE7 for j in others for e in j.errors)
    assert any(j.timers for j in others)


def test_win10_file_hits_1_4_8(win10_scan):
    files = [f.record for f in _files(win10_scan)]
    assert files[1].local_name == "C:\\Users\\bob\\AppData\\Local\\{CD2A12A4-B1E8-495D-A6C7-5C5C90E27F7A}"
    assert files[4].temp_name == "C:\\Users\\bob\\AppData\\Local\\Temp\\BITC907.tmp"
    assert "download.visualstudio.microsoft.com/" in files[8].remote_name
    assert files[8].remote_name.endswith("Xamarin.Android.Sdk-11.4.99.70.vsix")


def test_win10_history_links_and_live(win10_scan):
    live = read(_need(WIN10))
    recovery = recover_many([WIN10], live)
    history = recovery.history
    assert history.versions == 56 and history.job_ids == 23
    assert history.linked_files == 10                         # FORMAT.md §9.2 step 4
    # one (job id, mtime) pair holds two different records (SUSPENDED/QUEUED, same mtime);
    # the live Chrome job's carved copies are identical to the live row and are dropped.
    assert len(recovery.jobs) == 56
    live_id = live.jobs[0].job_id
    assert all(j.job_id != live_id or j.modification_time != live.jobs[0].modification_time
               for j in recovery.jobs)
    assert all(j.provenance.recovered and j.provenance.recovered_from == DB_PAGE for j in recovery.jobs)
    assert recover(WIN10, live) == recovery.jobs
    speech = [j for j in recovery.jobs if j.job_id == "2d101a37-d827-41c8-828c-664a276b096d"]
    assert [j.modification_time for j in speech] == sorted(j.modification_time for j in speech)
    assert len(speech) == 3


def test_win11_counts():
    scan = carve_file(_need(WIN11))
    jobs = _jobs(scan)
    assert len(jobs) == 29 and not any(j.record.partial for j in jobs)
    assert len({(j.record.job_id, j.record.modification_time) for j in jobs}) == 13
    assert len({j.record.job_id for j in jobs}) == 9
    live = read(WIN11)
    recovered = recover(WIN11, live)
    live_keys = {(j.job_id, j.modification_time) for j in live.jobs}
    assert recovered and not any((j.job_id, j.modification_time) in live_keys for j in recovered)
    assert any(j.custom_headers is not None for j in recovered)
    assert any(j.state == JobState.ERROR for j in recovered)


def test_evidence_is_not_modified():
    from bitsdb.sources.result import sha256_of

    before = sha256_of(_need(WIN11))
    scan = carve_file(WIN11)
    assert scan.stats.sha256 == before == sha256_of(WIN11)
