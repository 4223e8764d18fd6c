"""Exact values of every live job and file in the real Windows 10/11 databases.

References: FORMAT.md Appendix A and ../shared/samples/real/artemis/EXPECTED.json (an
independent decoding made while the spec was written); each value was checked against
our own decoding, not copied blindly: the seconds-precision times in EXPECTED.json are
compared at the precision they carry, the rest exactly.
"""

from __future__ import annotations

import json
from datetime import timezone

import pytest

import bitsdb
from bitsdb.decode import decode_file_blob, decode_job_blob, encode_file, encode_job
from bitsdb.model import JobPriority, JobState, JobType
from bitsdb.timeutil import filetime_to_datetime, filetime_to_iso

from conftest import real_sample


def _seconds(filetime: int) -> str | None:
    when = filetime_to_datetime(filetime)
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize("db", ["win10_qmgr.db", "win11_qmgr.db"])
def test_every_job_matches_reference(db):
    expected_all = json.loads(real_sample("artemis", "EXPECTED.json").read_text())[db]
    result = bitsdb.read(real_sample("artemis", db))
    assert result.kind == "ese_database"
    assert not result.errors and not result.warnings and not result.orphan_files
    jobs = {job.job_id: job for job in result.jobs}
    assert sorted(jobs) == sorted(e["id"] for e in expected_all)
    for exp in expected_all:
        job = jobs[exp["id"]]
        assert not job.partial, job.partial_reason
        assert job.display_name == exp["name"]
        assert int(job.state) == exp["state"] and int(job.type) == exp["type"] and int(job.priority) == exp["prio"]
        assert job.notify_program == exp["cmd"] and job.notify_parameters == exp["args"]
        assert job.notify_flags == exp["flags"]
        assert job.owner_sid == exp["sid"] == job.security.owner == job.security.group
        assert job.file_ids == exp["file_ids"] and [f.file_id for f in job.files] == exp["file_ids"]
        assert job.missing_file_ids == [] and job.errors == [] and exp["errors"] == []
        assert job.transient_error_count == exp["transient"]
        assert job.min_retry_delay == exp["retry"] and job.no_progress_timeout == exp["npt"]
        assert _seconds(job.creation_time) == exp["ctime"]
        assert _seconds(job.modification_time) == exp["mtime"]
        assert _seconds(job.modification_time_2) == exp["mtime2"]
        assert _seconds(job.completion_time) == exp["done"]
        assert _seconds(job.inactivity_base_time) == exp["t5"]
        assert _seconds(job.expiration_time) == exp["exp"]
        assert job.unknown["unk6"] == exp["unk6"]
        assert job.timers == [] and exp["timers"] == [None, None, None]
        assert int(job.proxy_usage) == exp["proxy_usage"] and job.proxy_list is None and job.proxy_bypass is None
        assert job.file_acl_flags == exp["acl"] and job.custom_headers is None
        assert hex(job.security_flags) == exp["secflags"] and job.max_download_time == exp["mdt"]
        assert hex(job.unknown["unk_c0"]) == exp["unk_a"] and job.unknown["unk_c1"] == exp["unk_b"]
        assert hex(job.cost_flags) == exp["cost"]
        assert [job.unknown["net_a_flag"], job.network_guid] == exp["ga"]
        assert exp["gb"] == [job.unknown["net_b_flag"], job.network_guid]
        assert job.creator_image == exp["creator"] and job.http_method == exp["method"]
        assert job.unknown["unk_d16"] == exp["unk16"]
        assert job.blob_size == exp["blob_len"]
        token = exp["token"]
        assert [job.security.token_unknown[0], job.security.owner_integrity_rid, *job.security.token_unknown[1:],
                len(job.security.raw)] == token
        assert job.security.integrity_label == "S-1-16-8192" and job.security.owner_integrity_level == "medium"
        assert [a.sid for a in job.security.dacl] == ["S-1-5-7", exp["sid"], "S-1-5-32-544", "S-1-5-32-580",
                                                     "S-1-15-2-1"]
        assert [a.ace_type_name for a in job.security.dacl][:2] == ["ACCESS_DENIED", "ACCESS_ALLOWED"]
        assert {a.mask for a in job.security.dacl} == {0x000F003F}
        for jf in job.files:
            ef = exp["files"][jf.file_id]
            assert not jf.partial, jf.partial_reason
            assert (jf.local_name, jf.remote_name, jf.temp_name) == (ef["local"], ef["remote"], ef["temp"])
            assert (jf.bytes_transferred, jf.bytes_total) == (ef["bytes_transferred"], ef["bytes_total"])
            assert (jf.drive, jf.volume) == (ef["drive"], ef["volume"])
            assert str(filetime_to_datetime(jf.remote_last_modified)) == ef["remote_last_modified"]
            assert jf.provenance.table == "Files" and jf.provenance.source_sha256 == result.sha256


def test_win10_appendix_a_values():
    (job,) = bitsdb.parse(real_sample("artemis", "win10_qmgr.db"))
    assert job.job_id == "266504ac-d974-446c-96ad-2be13a5665b0"
    assert (job.type, job.priority, job.state) == (JobType.DOWNLOAD, JobPriority.NORMAL, JobState.TRANSFERRED)
    assert job.description == "lmelglejhemejginpboagddgdfbepgmp_372_all_ZZ_djv5ss66g7sivnpz6ljtwr2zji.crx3"
    assert filetime_to_iso(job.creation_time).startswith("2022-12-21T02:18:03.120465")
    assert filetime_to_iso(job.modification_time).startswith("2022-12-21T02:18:43.408792")
    assert job.modification_time == job.modification_time_2 == job.completion_time == job.inactivity_base_time
    assert job.expiration_time - job.inactivity_base_time == 90 * 86400 * 10**7
    assert job.cost_flags == 0x80000065 and job.unknown["unk_c0"] == 0x21
    assert job.creator_image == r"C:\Program Files\Chromium\Application\chrome.exe"
    assert len(job.security.raw) == 0x4C4
    (jf,) = job.files
    assert jf.file_id == "95d6889c-b2d3-4748-8eb1-9da0650cb892"
    assert jf.temp_name.endswith(r"\BITAC67.tmp")
    assert (jf.bytes_transferred, jf.bytes_total, jf.drive) == (4782, 4782, "C:\\")
    assert jf.volume == "\\\\?\\Volume{08542f90-0000-0000-0000-501f00000000}\\"
    assert filetime_to_iso(jf.remote_last_modified) == "2022-12-19T18:16:35.0000000+00:00"
    assert job.provenance.table == "Jobs" and job.provenance.record_index == 0
    assert job.provenance.source_sha256 and len(job.provenance.source_sha256) == 64


WIN11_JOBS = {
    "5c26fc39-0647-43cf-bd6b-2ca3125c7fb3": ("9d39dd16-9979-4b37-a5aa-359b775f2f8a", "2023-02-19T05:22:58.236967"),
    "8e4f897b-f5b3-433e-8864-87c44edaf7d0": ("5b9e2388-b304-4a81-88e0-d961a37923fb", "2023-02-20T03:03:11.858982"),
    "364e3f0d-0423-459b-919d-ac6ea17b4101": ("32f69bc1-d982-4450-bc6d-e037ce4e33ad", "2023-02-19T05:08:26.583039"),
    "c54f0fa1-7435-4369-94ca-d57cf8e63e80": ("843c7694-516a-4719-826b-0ed3356cd41f", "2023-02-18T19:27:58.746154"),
}


def test_win11_appendix_a_values():
    jobs = list(bitsdb.parse(real_sample("artemis", "win11_qmgr.db")))
    assert len(jobs) == 4
    for job in jobs:
        file_id, created = WIN11_JOBS[job.job_id]
        assert filetime_to_iso(job.creation_time).startswith(created)
        assert job.display_name == "MozillaUpdate 308046B0AF4A39CB" and job.priority is JobPriority.FOREGROUND
        assert job.blob_size == 1911 and job.security_flags == 0x100 and job.cost_flags == 0x800000FF
        assert job.creator_image == r"C:\Program Files\Mozilla Firefox\firefox.exe"
        (jf,) = job.files
        assert jf.file_id == file_id and jf.bytes_total == jf.bytes_transferred == 13_267_764
        assert jf.remote_name.endswith("/firefox-109.0.1-110.0.partial.mar")
        assert filetime_to_datetime(jf.remote_last_modified).astimezone(timezone.utc).isoformat() \
            == "2023-02-14T16:03:54+00:00"


def test_raw_blobs_equal_live_rows_and_rebuild_byte_for_byte():
    job_blob = real_sample("artemis", "win10_job.raw").read_bytes()
    file_blob = real_sample("artemis", "win10_file.raw").read_bytes()
    (live,) = bitsdb.parse(real_sample("artemis", "win10_qmgr.db"))
    raw_job = decode_job_blob(job_blob)
    assert encode_job(raw_job) == job_blob
    live_files, live.files = live.files, []
    live.provenance = None
    assert raw_job == live
    raw_file = decode_file_blob(file_blob, live_files[0].file_id)
    assert encode_file(raw_file) == file_blob
    live_files[0].provenance = None
    assert raw_file == live_files[0]


def test_raw_blob_files_are_detected_and_read():
    job_result = bitsdb.read(real_sample("artemis", "win10_job.raw"))
    assert job_result.kind == "raw_job_blob" and len(job_result.jobs) == 1
    assert job_result.jobs[0].file_ids == ["95d6889c-b2d3-4748-8eb1-9da0650cb892"]
    file_result = bitsdb.read(real_sample("artemis", "win10_file.raw"))
    assert file_result.kind == "raw_file_blob" and file_result.orphan_files[0].bytes_total == 4782


@pytest.mark.parametrize("db", ["win10_qmgr.db", "win11_qmgr.db"])
def test_live_blobs_round_trip(db):
    for job in bitsdb.parse(real_sample("artemis", db)):
        assert decode_job_blob(encode_job(job)).display_name == job.display_name
        for jf in job.files:
            again = decode_file_blob(encode_file(jf), jf.file_id)
            again.provenance = jf.provenance
            assert again == jf


@pytest.mark.parametrize("db", ["win10_qmgr.db", "win11_qmgr.db"])
def test_default_security_descriptor_is_what_windows_writes(db):
    from bitsdb.decode import build_security_descriptor

    for job in bitsdb.parse(real_sample("artemis", db)):
        assert build_security_descriptor(job.owner_sid, job.security.owner_integrity_rid) == job.security.raw
