"""Windows 11 24H2 trailer (FORMAT.md §5.10.1): package identity in flag-prefixed optional fields
before the creator image. Blobs are built here byte by byte from the FORMAT.md table (not by the
encoder), then decoded, re-encoded, carved and forged."""

from __future__ import annotations

import io
import struct
import uuid
from pathlib import Path

import pytest

from bitsdb import api
from bitsdb.carve.scanner import scan
from bitsdb.decode import decode_job_blob, encode_job
from bitsdb.forge.carving import inline_row
from bitsdb.forge.spec import SpecError, forge
from bitsdb.model import Job, JobPriority, JobState, JobType

NETWORK_GUID = "7befb604-85b2-4191-b7bd-c5f5a263cb7b"
PFN = "Microsoft.OutlookForWindows_8wekyb3d8bbwe"
APP_ID = "!Microsoft.OutlookforWindows"
CREATOR = r"C:\Program Files (x86)\Microsoft\EdgeWebView\Application\127.0.2651.74\msedgewebview2.exe"
T0 = 133801632000000000


def classic_job(**fields) -> Job:
    base = dict(job_id=str(uuid.UUID(int=0x24D2)), type=JobType.DOWNLOAD, priority=JobPriority.FOREGROUND,
                state=JobState.TRANSFERRED, display_name="attachment", owner_sid="S-1-5-21-1-2-3-1001",
                file_ids=[str(uuid.UUID(int=0x24D3))], creation_time=T0, modification_time=T0 + 10**7,
                modification_time_2=T0 + 10**7, completion_time=T0 + 10**7, inactivity_base_time=T0 + 10**7,
                expiration_time=T0 + 10**7 + 90 * 86400 * 10**7, cost_flags=0x80000065, network_guid=NETWORK_GUID,
                creator_image=CREATOR, http_method="GET", aux_string="")
    base.update(fields)
    return Job(**base)


def counted(text: str) -> bytes:
    """FORMAT.md §1.2: u32 count of UTF-16 units including the NUL, then the text and the NUL."""
    raw = (text + "\x00").encode("utf-16-le")
    return struct.pack("<I", len(raw) // 2) + raw


def with_optional_fields(fields: bytes, net_b_flag: int = 0, job: Job | None = None) -> bytes:
    """A job blob whose bytes between net_a_guid and net_b_guid are `net_b_flag` + `fields`
    (the older layout has `01` there and no fields)."""
    blob = encode_job(job or classic_job())
    guid = uuid.UUID(NETWORK_GUID).bytes_le
    classic = b"\x01" + guid + b"\x01" + guid + b"\x00" * 21 + counted(CREATOR)
    assert blob.count(classic) == 1
    return blob.replace(classic, b"\x01" + guid + bytes([net_b_flag]) + fields + guid + b"\x00" * 21
                        + counted(CREATOR))


#: The bytes of FORMAT.md §5.10.1 after net_a_guid: 00, 01 + PFN, 01 + application id, 01 + 0x25.
SPEC_FIELDS = b"\x01" + counted(PFN) + b"\x01" + counted(APP_ID) + b"\x01" + struct.pack("<I", 0x25)


def test_counts_as_in_the_spec():
    assert counted(PFN)[:4] == b"\x2a\x00\x00\x00" and counted(APP_ID)[:4] == b"\x1d\x00\x00\x00"


def test_spec_example_decodes_completely_and_rebuilds_byte_for_byte():
    blob = with_optional_fields(SPEC_FIELDS)
    job = decode_job_blob(blob)
    assert not job.partial, job.partial_reason
    assert (job.creator_image, job.package_family_name, job.application_id) == (CREATOR, PFN, APP_ID)
    assert job.http_method == "GET" and job.aux_string == "" and job.network_guid == NETWORK_GUID
    assert job.unknown["net_b_flag"] == 0
    assert job.unknown["optional_fields"] == ["package_family_name", "application_id", 0x25]
    assert "net_b_guid" not in job.unknown                 # the same GUID as net_a_guid
    assert encode_job(job) == blob
    data = job.to_dict()
    assert (data["package_family_name"], data["application_id"]) == (PFN, APP_ID)


def test_older_layout_is_unchanged():
    job = classic_job()
    blob = encode_job(job)
    again = decode_job_blob(blob)
    assert again.package_family_name is None and again.application_id is None
    assert "optional_fields" not in again.unknown and again.unknown["net_b_flag"] == 1
    assert encode_job(again) == blob and again.creator_image == CREATOR


UNKNOWN_FIELD = b"\x01" + bytes.fromhex("aabbccddeeff00112233445566778899")


@pytest.mark.parametrize("name, fields, expected", [
    ("extra unknown field at the end", SPEC_FIELDS + UNKNOWN_FIELD,
     ["package_family_name", "application_id", 0x25, {"hex": UNKNOWN_FIELD.hex()}]),
    ("unknown field between known ones",
     b"\x01" + counted(PFN) + UNKNOWN_FIELD + b"\x01" + struct.pack("<I", 0x25),
     ["package_family_name", {"hex": UNKNOWN_FIELD.hex() + "0125000000"}]),
    ("absent package identity", b"\x00\x00\x01" + struct.pack("<I", 0x25), [None, None, 0x25]),
    ("empty strings", b"\x01" + counted("") + b"\x01" + counted("") + b"\x01" + struct.pack("<I", 7),
     ["package_family_name", "application_id", 7]),
    ("only a package family name", b"\x01" + counted(PFN), ["package_family_name"]),
    ("a third text field", SPEC_FIELDS + b"\x01" + counted("Extra"),
     ["package_family_name", "application_id", 0x25, {"text": "Extra"}]),
])
def test_variants_keep_the_creator_and_every_byte(name, fields, expected):
    blob = with_optional_fields(fields)
    job = decode_job_blob(blob)
    assert not job.partial, (name, job.partial_reason)
    assert job.creator_image == CREATOR and job.http_method == "GET", name
    assert job.unknown["optional_fields"] == expected, name
    assert encode_job(job) == blob, name


def test_empty_strings_are_empty_not_absent():
    job = decode_job_blob(with_optional_fields(b"\x01" + counted("") + b"\x01" + counted("")))
    assert job.package_family_name == "" and job.application_id == ""


def test_unknown_field_in_the_middle_costs_only_its_bytes_and_what_follows_it():
    job = decode_job_blob(with_optional_fields(b"\x01" + counted(PFN) + UNKNOWN_FIELD + b"\x01"
                                               + struct.pack("<I", 0x25)))
    assert job.package_family_name == PFN and job.application_id is None and job.creator_image == CREATOR


def test_second_network_guid_must_match_after_optional_fields():
    """Bytes inserted elsewhere (here after the cost flags) misalign the head: no tail is taken
    for the creator then, the record stays partial with the rest kept."""
    blob = encode_job(classic_job())
    at = blob.index(struct.pack("<I", 0x80000065)) + 4
    job = decode_job_blob(blob[:at] + b"\x07\x00\x00\x00" + b"\xff" * 9 + blob[at:])
    assert job.partial and job.undecoded and job.creator_image is None


def test_truncated_trailer_keeps_the_fields_before_the_cut():
    blob = with_optional_fields(SPEC_FIELDS)
    pfn_end = blob.index(counted(PFN)) + len(counted(PFN))
    app_end = blob.index(counted(APP_ID)) + len(counted(APP_ID))
    creator_end = blob.index(counted(CREATOR)) + len(counted(CREATOR))
    cases = [(pfn_end - 10, (None, None, None)), (pfn_end + 10, (PFN, None, None)),
             (app_end + 3, (PFN, APP_ID, None)), (creator_end - 20, (PFN, APP_ID, None)),
             (creator_end + 5, (PFN, APP_ID, CREATOR)), (len(blob) - 10, (PFN, APP_ID, CREATOR))]
    for cut, expected in cases:
        job = decode_job_blob(blob[:cut])
        assert job.partial and job.partial_reason, cut
        assert (job.package_family_name, job.application_id, job.creator_image) == expected, cut
        assert job.display_name == "attachment" and job.cost_flags == 0x80000065, cut
        assert job.undecoded == blob[cut - len(job.undecoded):cut], cut     # the rest is kept


def test_carved_copies_decode_completely():
    blob = with_optional_fields(SPEC_FIELDS)
    job_id = classic_job().job_id
    data = b"\x55" * 1000 + inline_row(job_id, blob) + b"\x00" * 500 + blob[:len(blob) - 120] + b"\x00" * 64
    records = [r for r in scan(io.BytesIO(data)) if r.kind == "job"]
    assert len(records) == 2
    whole, cut = records[0].record, records[1].record
    assert not whole.partial and records[0].row_id == job_id
    assert (whole.package_family_name, whole.application_id, whole.creator_image) == (PFN, APP_ID, CREATOR)
    assert whole == decode_job_blob(blob)
    assert cut.partial and (cut.package_family_name, cut.application_id) == (PFN, APP_ID)


def test_encoder_default_layout_and_errors():
    job = classic_job(package_family_name=PFN, application_id=APP_ID)
    blob = encode_job(job)
    again = decode_job_blob(blob)
    assert again.unknown["optional_fields"] == ["package_family_name", "application_id", 0x25]
    assert again.unknown["net_b_flag"] == 0 and (again.package_family_name, again.application_id) == (PFN, APP_ID)
    assert blob == with_optional_fields(SPEC_FIELDS)       # the encoder writes what FORMAT.md shows
    with pytest.raises(ValueError, match="package_family_name"):
        encode_job(classic_job(package_family_name=PFN, unknown={"optional_fields": [None, "application_id"]}))
    with pytest.raises(ValueError, match="optional_fields"):
        encode_job(classic_job(unknown={"optional_fields": [{"bogus": 1}]}))


def test_forge_writes_the_variant_and_parse_gives_the_spec_back(tmp_path: Path):
    spec = {"jobs": [{
        "job_id": "24d2a001-0000-4000-8000-000000000001", "display_name": "OutlookAttachmentDownload",
        "owner_sid": "S-1-5-21-1-2-3-1001", "creator_image": CREATOR, "package_family_name": PFN,
        "application_id": APP_ID, "network_guid": NETWORK_GUID,
        "unknown": {"unk_c0": 0x10, "net_b_flag": 0, "optional_fields": ["package_family_name", "application_id",
                                                                          0x25, {"hex": UNKNOWN_FIELD.hex()}]},
        "files": [{"file_id": "24d2a001-0000-4000-8000-000000000002", "local_name": r"C:\Users\a\x.pdf",
                   "remote_name": "https://example.com/x.pdf", "temp_name": r"C:\Users\a\BIT1.tmp"}]}]}
    report = forge(spec, tmp_path / "qmgr.db")
    result = api.read(report.database)
    assert result.errors == []
    (job,) = result.jobs
    assert not job.partial and job.creator_image == CREATOR
    data = job.to_dict()
    for key in ("package_family_name", "application_id", "creator_image"):
        assert data[key] == spec["jobs"][0][key]
    for key, value in spec["jobs"][0]["unknown"].items():
        assert data["unknown"][key] == value


def test_forge_rejects_package_identity_the_layout_cannot_hold(tmp_path: Path):
    spec = {"jobs": [{"job_id": "24d2a001-0000-4000-8000-000000000003", "owner_sid": "S-1-5-18",
                      "package_family_name": PFN, "unknown": {"optional_fields": [None]}}]}
    with pytest.raises((SpecError, ValueError), match="package_family_name"):
        forge(spec, tmp_path / "qmgr.db")


def test_zero_bytes_do_not_pass_for_a_tail():
    """Overwritten records (a real one in the win10 sample) end in foreign bytes and zeros: with
    a zero network GUID or only empty strings there, no creator is taken from them."""
    zero = "00000000-0000-0000-0000-000000000000"
    blob = encode_job(classic_job(network_guid=zero))
    guid = bytes(16)
    at = blob.index(b"\x01" + guid + b"\x01" + guid)
    foreign = blob[:at + 18] + b"\x01\x77\x66\x55\x44" + bytes(600)
    job = decode_job_blob(foreign)
    assert job.partial and job.creator_image is None and "optional_fields" not in job.unknown
    nonzero = encode_job(classic_job())
    at = nonzero.index(uuid.UUID(NETWORK_GUID).bytes_le) + 16
    junk = nonzero[:at + 1] + b"\x01\x77\x66\x55\x44" + uuid.UUID(NETWORK_GUID).bytes_le + bytes(600)
    job = decode_job_blob(junk)
    assert job.partial and job.creator_image is None       # empty counted strings are not a tail there


@pytest.mark.parametrize("layout", [None, ["package_family_name", "application_id", None, 0x25]])
def test_package_identity_with_a_zero_network_guid(layout):
    """Jobs without a network id are common (about half the real records carry a zero GUID): a
    24H2 job of that kind decodes completely and rebuilds byte for byte."""
    job = classic_job(network_guid=None, package_family_name=PFN, application_id=APP_ID)
    if layout is not None:
        job.unknown["optional_fields"] = layout
    blob = encode_job(job)
    decoded = decode_job_blob(blob)
    assert not decoded.partial, decoded.partial_reason
    assert (decoded.creator_image, decoded.package_family_name, decoded.application_id) == (CREATOR, PFN, APP_ID)
    assert decoded.http_method == "GET" and encode_job(decoded) == blob
