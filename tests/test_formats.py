"""Schemas and codec on synthetic records: what the real samples do not contain.

Every test builds a blob with the same construct schemas the parser uses and decodes it
again (parse(build(x)) == x), then checks the fields that matter one by one.
"""

from __future__ import annotations

import json
import struct
import uuid

import pytest

from bitsdb.decode import BlobError, build_security_descriptor, decode_file_blob, decode_job_blob, encode_file, encode_job
from bitsdb.decode.security import decode_security
from bitsdb.formats import job as job_fmt
from bitsdb.formats.markers import DPAPI_PROVIDER, ESE_JOB_MARKERS, FILE_MARKER
from bitsdb.formats.primitives import BinarySid, Guid, WStr
from bitsdb.model import (
    CustomHeaders,
    ErrorContext,
    FileRange,
    Job,
    JobError,
    JobFile,
    JobPriority,
    JobState,
    JobType,
    NotifyFlags,
    ProxyUsage,
    SecurityFlags,
    Timer,
)
from bitsdb.timeutil import filetime_to_iso, iso_to_filetime

T0 = iso_to_filetime("2024-05-01T10:00:00.1234567+00:00")
DAY = 86400 * 10**7
UPLOAD_MARKER = "8f5657d0-012c-4e3e-ad2c-f4a5d7656faf"


def make_job(**fields) -> Job:
    """A plausible job; tests override what they are about."""
    base = dict(
        job_id=str(uuid.uuid4()), marker="e10956a1-af43-42c9-92e6-6f9856eba7f6", type=JobType.DOWNLOAD,
        priority=JobPriority.NORMAL, state=JobState.QUEUED, display_name="job", description="",
        notify_program="", notify_parameters="", notify_flags=3, owner_sid="S-1-5-21-1-2-3-1001",
        file_ids=[str(uuid.uuid4())], transient_error_count=0, min_retry_delay=600,
        no_progress_timeout=1209600, creation_time=T0, modification_time=T0 + 10**7,
        modification_time_2=T0 + 10**7, completion_time=0, inactivity_base_time=T0 + 10**7,
        expiration_time=T0 + 10**7 + 90 * DAY, proxy_usage=ProxyUsage.PRECONFIG, file_acl_flags=0,
        security_flags=0, max_download_time=7776000, cost_flags=0x80000067,
        network_guid="7befb604-85b2-4191-b7bd-c5f5a263cb7b", creator_image=r"C:\Windows\System32\bitsadmin.exe",
        http_method="GET", aux_string="",
    )
    base.update(fields)
    return Job(**base)


def roundtrip(job: Job) -> Job:
    blob = encode_job(job)
    again = decode_job_blob(blob)
    assert encode_job(again) == blob, "build(parse(blob)) must give the same bytes"
    return again


# ----------------------------------------------------------------------------- primitives

@pytest.mark.parametrize("text", ["", "GET", "C:\\Users\\bob\\ä€𝄞.exe", "trailing\x00nul"])
def test_wstr_round_trip(text):
    raw = WStr.build(text)
    assert struct.unpack_from("<I", raw)[0] == len((text + "\x00").encode("utf-16-le")) // 2
    assert WStr.parse(raw) == text


def test_wstr_count_zero_and_lone_surrogate_are_kept():
    assert WStr.parse(b"\x00\x00\x00\x00") == ""
    stored = struct.pack("<I", 3) + b"\x00\xd8A\x00\x00\x00"
    odd = WStr.parse(stored)
    assert odd == "\ufffdA" and odd.raw == b"\x00\xd8A\x00"      # valid text; the exact bytes beside it
    assert WStr.build(odd) == stored


def test_job_with_lone_surrogates_round_trips_through_json():
    """Attacker-chosen names holding lone surrogates: valid text out, the original bytes rebuilt exactly."""
    job = make_job(display_name="evil\ud800name", notify_program="C:\\x\udc00.exe")
    files = [JobFile(file_id=None, local_name="C:\\a\udfff.exe", remote_name="http://x/a", temp_name="t")]
    blob = encode_job(job)
    again = decode_job_blob(blob)
    assert again.display_name == "evil\ufffdname" and again.notify_program == "C:\\x\ufffd.exe"
    assert again.raw_strings == {"display_name": "evil\ud800name".encode("utf-16-le", "surrogatepass").hex(),
                                 "notify_program": "C:\\x\udc00.exe".encode("utf-16-le", "surrogatepass").hex()}
    text = json.dumps(again.to_dict(), ensure_ascii=False)
    text.encode("utf-8")                                                  # strict: valid UTF-8
    assert encode_job(Job.from_dict(json.loads(text))) == blob            # the spec form rebuilds the bytes
    file_blob = encode_file(files[0])
    jf = decode_file_blob(file_blob)
    assert jf.local_name == "C:\\a\ufffd.exe" and set(jf.raw_strings) == {"local_name"}
    assert encode_file(JobFile.from_dict(json.loads(json.dumps(jf.to_dict())))) == file_blob
    edited = Job.from_dict({**json.loads(text), "display_name": "renamed"})
    assert decode_job_blob(encode_job(edited)).display_name == "renamed"   # an edited text wins over stale raw


def test_wstr_rejects_absurd_counts():
    with pytest.raises(Exception):
        WStr.parse(struct.pack("<I", 10**6) + b"\x00" * 100)


def test_guid_uses_windows_byte_order():
    text = "266504ac-d974-446c-96ad-2be13a5665b0"
    assert Guid.build(text) == uuid.UUID(text).bytes_le and Guid.parse(uuid.UUID(text).bytes_le) == text


@pytest.mark.parametrize("sid", ["S-1-5-18", "S-1-5-21-1079689790-2336414676-942872339-1001", "S-1-16-12288"])
def test_binary_sid_round_trip(sid):
    assert BinarySid.parse(BinarySid.build(sid)) == sid


def test_filetime_text_keeps_seven_digits():
    assert filetime_to_iso(T0) == "2024-05-01T10:00:00.1234567+00:00"
    assert filetime_to_iso(0) is None


def test_built_security_descriptor_decodes_like_a_real_one():
    raw = build_security_descriptor("S-1-5-18", 0x4000)
    info = decode_security(job_fmt.OwnerSecurity.parse(job_fmt.OwnerSecurity.build(dict(
        tok_unk0=1, owner_integrity_rid=0x4000, tok_unk2=0, tok_unk3=0, tok_unk4=0, security_descriptor=raw))))
    assert info.owner == info.group == "S-1-5-18"
    assert info.integrity_label == "S-1-16-16384" and info.owner_integrity_level == "system"
    assert [a.sid for a in info.dacl] == ["S-1-5-7", "S-1-5-18", "S-1-5-32-544", "S-1-5-32-580", "S-1-15-2-1"]
    assert info.control == 0x801F and info.decode_error is None


# ----------------------------------------------------------------------------- jobs

def test_rich_job_round_trips_every_field():
    headers_blob = (struct.pack("<I", 1) + DPAPI_PROVIDER + struct.pack("<I", 1)
                    + uuid.UUID("11111111-2222-3333-4444-555555555555").bytes_le + struct.pack("<I", 0)
                    + struct.pack("<I", 48) + "BITS Job Custom headers\x00".encode("utf-16-le") + b"\xaa" * 200)
    job = make_job(
        type=JobType.UPLOAD, state=JobState.TRANSIENT_ERROR, priority=JobPriority.FOREGROUND,
        display_name="upd", description="This is a file transfer that uses the Background Intelligent "
        "Transfer Service (BITS).", notify_program=r"C:\Windows\System32\cmd.exe",
        notify_parameters=r'cmd.exe /c "C:\Users\Public\a.exe"', notify_flags=0x3 | 0x10, owner_sid="S-1-5-18",
        file_ids=[str(uuid.UUID(int=i)) for i in range(1, 51)],
        errors=[JobError(hresult=0x80072EE7, hresult_hex="0x80072EE7", context=ErrorContext.REMOTE_FILE, form=21,
                         extra="persistent state",
                         unknown={"err_unk0": 0, "err_unk2": 1, "err_unk4": 3, "has_extra": 1})],
        transient_error_count=1, no_progress_timeout=90 * 86400,
        timers=[Timer("no_progress", T0, T0 + 5 * DAY), Timer("error", T0, T0), Timer("retry", T0, T0 + 600 * 10**7)],
        proxy_usage=ProxyUsage.OVERRIDE, proxy_list="http://10.0.0.5:8080", proxy_bypass="<local>",
        file_acl_flags=0xF, custom_headers=CustomHeaders(plain_length=104, blob_length=len(headers_blob),
                                                         dpapi_blob=headers_blob),
        security_flags=0x2 | 0x4 | 0x8 | 0x800, max_download_time=3600, cost_flags=0x800000FF,
        creator_image=r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", http_method="PUT",
        aux_string="Schedule",
    )
    again = roundtrip(job)
    assert not again.partial
    assert again.type is JobType.UPLOAD and again.state is JobState.TRANSIENT_ERROR
    assert again.notify_program == job.notify_program and again.notify_parameters == job.notify_parameters
    assert again.notify_flags == NotifyFlags.JOB_TRANSFERRED | NotifyFlags.JOB_ERROR | NotifyFlags.FILE_TRANSFERRED
    assert again.owner_name == "SYSTEM" and again.security.owner == "S-1-5-18"
    assert again.file_ids == job.file_ids and len(again.file_ids) == 50
    (error,) = again.errors
    assert (error.hresult_hex, error.context, error.extra, error.form) == ("0x80072EE7", ErrorContext.REMOTE_FILE,
                                                                         "persistent state", 21)
    assert [(t.slot, t.start, t.end) for t in again.timers] == [(t.slot, t.start, t.end) for t in job.timers]
    assert again.proxy_usage is ProxyUsage.OVERRIDE
    assert (again.proxy_list, again.proxy_bypass) == ("http://10.0.0.5:8080", "<local>")
    assert again.file_acl_flags == 0xF
    headers = again.custom_headers
    assert headers.plain_length == 104 and headers.blob_length == len(headers_blob)
    assert headers.dpapi_provider == "df9d8cd0-1501-11d1-8c7a-00c04fc297eb"
    assert headers.dpapi_master_key == "11111111-2222-3333-4444-555555555555"
    assert headers.dpapi_description == "BITS Job Custom headers"
    assert again.security_flags & SecurityFlags.IGNORE_UNKNOWN_CA
    assert (again.max_download_time, again.cost_flags) == (3600, 0x800000FF)
    assert again.creator_image.endswith("powershell.exe") and again.http_method == "PUT"
    assert again.aux_string == "Schedule"
    assert again.unknown["unk6"] == "000000000001"
    assert job.to_dict()["timers"][2]["end"] == filetime_to_iso(T0 + 600 * 10**7)


@pytest.mark.parametrize("job_type", [JobType.DOWNLOAD, JobType.UPLOAD, JobType.UPLOAD_REPLY])
def test_job_types_and_states(job_type):
    for state in JobState:
        again = roundtrip(make_job(type=job_type, state=state))
        assert again.type is job_type and again.state is state


def test_unknown_enum_values_stay_numbers_and_flags_keep_unknown_bits():
    job = make_job(priority=3, notify_flags=0x1 | 0x400)
    blob = bytearray(encode_job(job))
    struct.pack_into("<I", blob, 0x18, 8)      # state CANCELLED stays an enum
    again = decode_job_blob(bytes(blob))
    assert again.state is JobState.CANCELLED
    assert again.to_dict()["notify_flags"]["names"] == ["JOB_TRANSFERRED", "0x400"]
    data = again.to_dict()
    assert data["priority"] == "LOW" and data["notify_flags"]["value"] == 0x401


def test_double_marker_blob_keeps_both_guids_and_extra():
    job = make_job(type=JobType.UPLOAD, outer_marker=UPLOAD_MARKER, extra=b"\x01\x02upload-reply")
    blob = encode_job(job)
    assert blob[:16] == uuid.UUID(UPLOAD_MARKER).bytes_le and blob[-16:] == blob[:16]
    again = decode_job_blob(blob)
    assert again.outer_marker == UPLOAD_MARKER and again.marker == job.marker
    assert again.extra == b"\x01\x02upload-reply" and not again.partial
    assert again.type is JobType.UPLOAD and again.job_id == job.job_id


def test_25_byte_error_records_are_chosen_when_21_misaligns_the_times():
    job = make_job(state=JobState.ERROR)
    sections = job_fmt.ESE_JOB_SECTIONS
    built = encode_job(job)
    # Swap the (empty) 21-byte error section for one 25-byte record.
    err25 = job_fmt.ErrorSection25.build(dict(records=[dict(code=0x80190194, err_unk_a=5, err_unk_b=0, err_unk_c=0,
                                                            err_unk_d=0, err_unk_e=0)]))
    marker = job_fmt.EseFileList.build(dict(file_ids=job.file_ids))
    cut = built.index(marker) + len(marker)
    blob = built[:cut] + err25 + built[cut + 4:]
    again = decode_job_blob(blob, sections)
    assert not again.partial, again.partial_reason
    (error,) = again.errors
    assert error.form == 25 and error.hresult_hex == "0x80190194"
    assert again.creation_time == T0 and again.creator_image == job.creator_image


def test_unknown_marker_accepted_only_when_the_record_validates():
    marker = "01234567-89ab-cdef-0123-456789abcdef"
    again = decode_job_blob(encode_job(make_job(marker=marker)))
    assert again.marker == marker and again.marker_label == "unknown marker" and not again.partial
    with pytest.raises(BlobError):
        decode_job_blob(uuid.UUID(marker).bytes_le + bytes(range(256)) * 4)


@pytest.mark.parametrize("marker", [str(uuid.UUID(bytes_le=m)) for m in ESE_JOB_MARKERS])
def test_every_known_ese_marker_is_accepted(marker):
    assert roundtrip(make_job(marker=marker)).marker == marker


def test_new_trailer_fields_do_not_lose_the_record():
    """A newer build adds bytes after the cost flags: decode what validates, keep the rest."""
    job = make_job(creator_image=r"C:\Program Files\App\app.exe")
    blob = encode_job(job)
    cost = struct.pack("<I", job.cost_flags)
    at = blob.rindex(cost) + 4
    newer = blob[:at] + b"\x07\x00\x00\x00" + b"\xff" * 9 + blob[at:]
    again = decode_job_blob(newer)
    assert again.partial and again.partial_reason
    assert again.job_id == job.job_id and again.cost_flags == job.cost_flags
    assert again.max_download_time == job.max_download_time and again.file_ids == job.file_ids
    assert again.undecoded            # the unfamiliar tail is kept, not dropped
    assert again.to_dict()["undecoded"] == again.undecoded.hex()


def test_truncated_job_is_partial_with_the_fields_before_the_cut():
    blob = encode_job(make_job(display_name="cut-me", notify_program="cmd.exe"))
    again = decode_job_blob(blob[:400])
    assert again.partial and "stopped at" in again.partial_reason
    assert again.display_name == "cut-me" and again.notify_program == "cmd.exe"
    assert again.creation_time is None


def test_not_a_job_at_all():
    with pytest.raises(BlobError):
        decode_job_blob(b"\x00" * 10)
    with pytest.raises(BlobError):
        decode_job_blob(bytes(ESE_JOB_MARKERS) if False else b"\xa1V\t\xe1C\xaf\xc9B\x92\xe6o\x98V\xeb\xa7\xf6"
                        + b"\xff" * 200)


# ----------------------------------------------------------------------------- files

def make_file(**fields) -> JobFile:
    base = dict(file_id=str(uuid.uuid4()), local_name=r"C:\Users\Public\a.exe", remote_name="http://203.0.113.5/a.exe",
                temp_name=r"C:\Users\Public\BIT1234.tmp", bytes_transferred=100, bytes_total=1000, drive="C:\\",
                volume="\\\\?\\Volume{08542f90-0000-0000-0000-501f00000000}\\", local_attributes=0x80,
                remote_last_modified=iso_to_filetime("2024-04-30T08:00:00+00:00"))
    base.update(fields)
    return JobFile(**base)


def test_download_file_round_trip_with_ranges_and_unknown_size():
    jf = make_file(bytes_total=-1, bytes_transferred=0,
                   ranges=[FileRange(0, 4096), FileRange(8192, -1)])
    blob = encode_file(jf)
    assert blob[:16] == blob[-16:] == FILE_MARKER
    again = decode_file_blob(blob, jf.file_id)
    assert not again.partial
    assert again.bytes_total == -1 and again.ranges == jf.ranges
    assert (again.local_name, again.remote_name, again.temp_name) == (jf.local_name, jf.remote_name, jf.temp_name)
    assert again.remote_last_modified == jf.remote_last_modified
    assert encode_file(again) == blob


def test_upload_file_layout():
    jf = make_file(layout="upload", temp_name="", local_file_mtime=T0, remote_name="https://example.org/up")
    again = decode_file_blob(encode_file(jf), jf.file_id, layout_hint="upload")
    assert again.layout == "upload" and again.local_file_mtime == T0
    assert again.local_name == jf.local_name and again.temp_name == ""


def test_truncated_file_is_partial():
    blob = encode_file(make_file())
    again = decode_file_blob(blob[:-30])
    assert again.partial and again.local_name == r"C:\Users\Public\a.exe"
    assert "footer" in again.partial_reason or "progress" in again.partial_reason
    with pytest.raises(BlobError):
        decode_file_blob(b"\x00" * 64)


def test_a_file_holding_a_job_with_an_unknown_marker_is_read(tmp_path):
    import bitsdb

    job = make_job(marker="01234567-89ab-cdef-0123-456789abcdef", display_name="new build")
    path = tmp_path / "job.bin"
    path.write_bytes(encode_job(job))
    result = bitsdb.read(path)
    assert result.kind == "raw_job_blob" and [j.display_name for j in result.jobs] == ["new build"]
    noise = tmp_path / "noise.bin"
    noise.write_bytes(uuid.UUID(job.marker).bytes_le + bytes(range(256)) * 8)
    with pytest.raises(Exception, match="unrecognised content"):
        bitsdb.read(noise)
