"""Legacy state files qmgr0.dat / qmgr1.dat: real records, built files, current/previous, damage."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import pytest

from bitsdb.api import read
from bitsdb.decode import BlobError
from bitsdb.formats import legacy as fmt
from bitsdb.formats.markers import FILE_LIST_MARKER, LEGACY_QUEUE_MARKER
from bitsdb.forge.legacy import (
    VERSIONS,
    build_state_file,
    encode_legacy_job,
    legacy_samples,
)
from bitsdb.model import JobState
from bitsdb.decode.legacy import decode_legacy_file_list, decode_legacy_job
from bitsdb.sources.legacy import choose_current, parse_state_file, read_legacy_pair, read_legacy_pairs
from bitsdb.sources.result import SourceError
from bitsdb.timeutil import filetime_to_iso

from conftest import real_sample

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "legacy"
DAY = 86400 * 10**7


def vlc_record() -> bytes:
    return real_sample("bitsinject", "win10legacy_job_SYSTEM_cmd_vlc.dat").read_bytes()


def assert_vlc_job(job):
    """FORMAT.md Appendix A values of the real early-Windows-10 payload."""
    assert job.job_id == "2f265c44-d606-40f4-ba5e-3c269739aa37"
    assert job.display_name == "STST" and job.description == ""
    assert job.marker_label == "legacy job (Windows 10 pre-ESE)"
    assert job.notify_program == r"c:\windows\System32\cmd.exe" and job.notify_flags == 3
    assert job.owner_sid == "S-1-5-18" and job.owner_name == "SYSTEM"
    assert job.security.owner_integrity_rid == 0x4000 and job.security.integrity_label == "S-1-16-16384"
    assert len(job.security.raw) == 0x47C and job.unknown["tok_unk0"] == 1
    assert int(job.state) == 0 and int(job.priority) == 2 and int(job.type) == 0
    assert job.min_retry_delay == 600 and job.no_progress_timeout == 1_209_600
    assert job.expiration_time - job.inactivity_base_time == 90 * DAY
    assert job.max_download_time == 7_776_000 and job.cost_flags == 0x80000067
    assert job.file_ids == [] and len(job.files) == 1
    f = job.files[0]
    assert f.local_name == r"c:\temp\vlc.exe"
    assert f.remote_name == "http://get.videolan.org/vlc/2.2.4/win64/vlc-2.2.4-win64.exe"
    assert f.temp_name == r"c:\temp\BITFFC1.tmp"
    assert (f.bytes_transferred, f.bytes_total) == (9_985, 31_717_016)
    assert filetime_to_iso(f.remote_last_modified) == "2016-06-01T14:58:18.0000000+00:00"
    assert f.progress_bytes_done == 9_985 and f.layout == "legacy_inline" and not f.partial
    assert not job.partial, job.partial_reason


# --------------------------------------------------------------------------- real data


def test_real_win10_record_decodes_to_the_spec_values():
    data = vlc_record()
    job = decode_legacy_job(data)
    assert_vlc_job(job)
    assert job.blob_size == 1973
    assert job.unknown["unk_l1"] == 1 and job.unknown["zeros42"] == "00" * 42


def test_real_win10_record_rebuilds_byte_for_byte():
    data = vlc_record()
    assert encode_legacy_job(decode_legacy_job(data)) == data
    assert fmt.LegacyJobRecord.build(fmt.LegacyJobRecord.parse(data)) == data


def test_real_record_inside_a_built_state_file():
    data = vlc_record()
    state_file = build_state_file([data], "win10")
    assert state_file[0x3C:0x3C + len(data)] == data
    state = parse_state_file(state_file)
    assert (state.version, state.header_offset, state.declared_counts) == ("win10", 0x18, [1, 0])
    assert state.crc_valid is True and not state.errors and not state.warnings
    assert len(state.records) == 1 and state.records[0].offset == 0x3C
    assert_vlc_job(state.records[0].job)


def test_real_empty_state_file_crc_and_rebuild():
    path = real_sample("bitsinject", "win10legacy_no_jobs_qmgr.dat")
    data = path.read_bytes()
    state = parse_state_file(data)
    assert state.crc_stored == 0x4FD04D6B == fmt.crc32(data[:0x90]) and state.crc_valid
    assert (state.version, state.declared_counts, state.records) == ("win10", [0, 0], [])
    assert (state.slack_offset, state.slack_size, state.slack_nonzero) == (0x94, 16384 - 0x94, 0)
    assert not state.warnings and not state.errors
    assert build_state_file([], "win10") == data
    result = read(path)
    assert result.kind == "legacy_state_file" and result.jobs == [] and not result.errors


def test_real_win81_inline_file_record_is_partial():
    data = real_sample("artemis", "win81_file.raw").read_bytes()
    files, end, error = decode_legacy_file_list(data)
    assert len(files) == 1 and "truncated" in error
    f = files[0]
    assert f.partial and "truncated" in f.partial_reason
    assert f.local_name.startswith("C:\\Users\\bob\\AppData\\Local\\Temp\\edge_BITS_888_428908036\\")
    assert f.remote_name.startswith("http://msedge.b.tlu.dl.delivery.mp.microsoft.com/filestreamingservice/")
    assert f.temp_name.endswith("\\BITB403.tmp")
    assert (f.bytes_transferred, f.bytes_total, f.drive) == (3_226_443, 3_226_443, "C:\\")
    assert f.volume == "\\\\?\\Volume{8195d9c8-2089-11ea-824e-806e6f6e6963}\\"
    assert f.unknown["unk_f1"] == 3 and f.remote_last_modified is None


# --------------------------------------------------------------------------- samples


def _tool():
    spec = importlib.util.spec_from_file_location("build_legacy_samples", ROOT / "tools" / "build_legacy_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_committed_samples_are_rebuilt_identically(version):
    for name, data in legacy_samples(version).items():
        assert (SAMPLES / version / name).read_bytes() == data, f"{version}/{name} differs from the builder"


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_committed_samples_parse_to_the_expected_output(version, monkeypatch):
    monkeypatch.chdir(ROOT)
    expected = (SAMPLES / version / "qmgr.expected.jsonl").read_text(encoding="utf-8")
    assert _tool().expected_jsonl(f"samples/legacy/{version}") == expected


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_sample_pair_current_previous(version):
    folder = SAMPLES / version
    for order in ([folder / "qmgr0.dat", folder / "qmgr1.dat"], [folder / "qmgr1.dat", folder / "qmgr0.dat"]):
        results = {Path(r.path).name: r for r in read_legacy_pair(order)}
        previous, current = results["qmgr0.dat"], results["qmgr1.dat"]
        assert {j.provenance.state_file for j in current.jobs} == {"current"}
        assert {j.provenance.state_file for j in previous.jobs} == {"previous"}
        assert all(j.provenance.recovered for j in previous.jobs)
        # the job removed since is still shown; the byte-identical record is not repeated
        assert [j.display_name for j in previous.jobs] == ["Contoso Agent Update", "backup"]
        assert "backup" not in {j.display_name for j in current.jobs}
        assert any("byte-identical" in w for w in previous.warnings)
        assert [int(j.state) for j in previous.jobs if j.display_name == "Contoso Agent Update"] == [2]
        assert not current.errors and not previous.errors
        assert all(not j.partial for r in results.values() for j in r.jobs)
    # the registry StateIndex, when known, wins over the job times
    forced = {Path(r.path).name: r for r in read_legacy_pair([folder / "qmgr0.dat", folder / "qmgr1.dat"],
                                                             state_index=0)}
    assert {j.provenance.state_file for j in forced["qmgr0.dat"].jobs} == {"current"}
    assert len(forced["qmgr1.dat"].jobs) == (2 if version == "win10" else 1)   # minus the identical record


def test_error_record_forms_follow_the_sample_versions():
    for version, form in (("win7", 25), ("win10", 21)):
        state = parse_state_file(legacy_samples(version)["qmgr1.dat"])
        errors = [e for r in state.records for e in r.job.errors]
        assert errors and {e.form for e in errors} == {form}
        assert errors[0].hresult == 0x80190194


def test_win10_sample_details_and_slack():
    state = parse_state_file(legacy_samples("win10")["qmgr1.dat"])
    tiles = state.records[2].job
    assert tiles.state == JobState.TRANSIENT_ERROR and tiles.proxy_list == "http=proxy.contoso.example:3128"
    assert [t.slot for t in tiles.timers] == ["retry"] and len(tiles.files) == 2
    assert [(r.offset, r.length) for r in tiles.files[0].ranges] == [(0, 4096), (8192, -1)]
    assert state.slack_nonzero > 0 and any(w.startswith("slack:") for w in state.warnings)
    assert state.crc_valid and not state.errors


def test_built_jobs_round_trip():
    for version in VERSIONS:
        for data in legacy_samples(version).values():
            state = parse_state_file(data)
            for record in state.records:
                assert encode_legacy_job(record.job) == data[record.offset:record.end]


def test_unknown_legacy_marker_keeps_its_tail_raw():
    job = decode_legacy_job(vlc_record())
    job.marker = "c8701310-5336-41b3-83e5-81557f361b87"
    job.unknown["legacy_tail"] = "0102030405"
    record = encode_legacy_job(job)
    again = decode_legacy_job(record)
    assert again.unknown["legacy_tail"] == "0102030405" and not again.partial
    assert again.marker_label == "legacy job C8701310" and again.files[0].local_name == r"c:\temp\vlc.exe"
    state = parse_state_file(build_state_file([record, record], "win7"))
    assert len(state.records) == 2 and not state.errors


def test_header_is_found_by_searching_not_by_first_byte():
    data = build_state_file([vlc_record()], "win7")
    shifted = b"\x28" + bytes(19) + data[16:]          # first byte says Win10, prefix is 20 bytes
    state = parse_state_file(shifted)
    assert state.header_offset == 20 and len(state.records) == 1 and not state.errors
    assert any("unknown prefix GUID" in w for w in state.warnings)


# --------------------------------------------------------------------------- damage


@pytest.fixture
def current10() -> bytes:
    return legacy_samples("win10")["qmgr1.dat"]


def _records(data: bytes):
    return parse_state_file(data).records


def test_truncated_state_file_keeps_every_decodable_job(current10):
    offsets = [r.offset for r in _records(current10)]
    cut = current10[:offsets[1] + 700]
    state = parse_state_file(cut)
    assert [r.job.partial for r in state.records] == [False, True]
    assert state.records[1].job.job_id == "7e5a1c2d-9b3f-4e61-a0d4-2f8c61b9d0aa"
    assert "truncated" in state.records[1].job.partial_reason
    assert any("truncated" in e for e in state.errors) and not state.complete


def test_wrong_crc_is_a_warning_not_a_failure(current10):
    trailer_end = parse_state_file(current10).trailer_end
    bad = bytearray(current10)
    bad[trailer_end] ^= 0xFF
    state = parse_state_file(bytes(bad))
    assert state.crc_valid is False and len(state.records) == 3 and not state.errors
    assert any(w.startswith("CRC32 mismatch: stored") for w in state.warnings)
    # the sound file of a pair is preferred over one failing its CRC
    good = parse_state_file(legacy_samples("win10")["qmgr0.dat"])
    assert choose_current([state, good]) == (1, "the other file is damaged or fails its CRC")


def test_job_count_larger_than_the_data(current10):
    bad = bytearray(current10)
    struct.pack_into("<I", bad, 0x18 + 16 + 16, 7)
    state = parse_state_file(bytes(bad))
    assert len(state.records) == 3
    assert any("declares 7 job(s) but 3 were found" in e for e in state.errors)


def test_garbage_between_records_is_skipped_and_reported(current10):
    second = _records(current10)[1].offset
    bad = current10[:second] + b"\xAA" * 37 + current10[second:]
    state = parse_state_file(bad)
    assert [r.job.display_name for r in state.records] == ["Contoso Agent Update", "WindowsUpdateCheck",
                                                           "Contoso Map Tiles"]
    assert any("37 unexpected byte(s) between records" in e for e in state.errors)


def test_string_count_running_past_the_end(current10):
    first = _records(current10)[0].offset
    bad = bytearray(current10)
    struct.pack_into("<I", bad, first + 0x30, 30000)     # display name count
    state = parse_state_file(bytes(bad))
    head = state.records[0].job
    assert head.partial and head.job_id == "266504ac-0000-4000-8000-5a3e1e000001" and head.display_name is None
    assert "strings" in head.partial_reason
    assert [r.job.display_name for r in state.records[1:]] == ["WindowsUpdateCheck", "Contoso Map Tiles"]
    assert not any("is partial" in e for e in state.errors)    # a warning, once, from stores.finish


def test_file_string_running_past_the_end_gives_partial_job(current10):
    record = _records(current10)[0]
    at = current10.index(FILE_LIST_MARKER, record.offset) + 20
    bad = bytearray(current10)
    struct.pack_into("<I", bad, at, 32000)               # local name count of the first file
    state = parse_state_file(bytes(bad))
    job = state.records[0].job
    assert job.partial and "file_list" in job.partial_reason and job.display_name == "Contoso Agent Update"
    assert len(state.records) == 3 and not state.records[1].job.partial


def test_not_a_state_file_and_truncated_header(tmp_path):
    with pytest.raises(SourceError, match="header marker pair"):
        parse_state_file(b"\x00" * 64)
    with pytest.raises(BlobError):
        decode_legacy_job(b"\x00" * 64)
    path = tmp_path / "qmgr0.dat"
    data = legacy_samples("win7")["qmgr1.dat"]
    path.write_bytes(data[:0x30])                        # header pair, then the file ends
    result = read(path)
    assert result.jobs == [] and any("truncated" in e for e in result.errors)


def test_queue_marker_missing_after_records(current10):
    end = _records(current10)[-1].end
    assert current10[end:end + 16] == LEGACY_QUEUE_MARKER
    bad = current10[:end] + bytes(16) + current10[end + 16:]
    state = parse_state_file(bad)
    assert len(state.records) == 3 and state.errors


def test_read_legacy_pairs_groups_by_folder_and_never_raises(tmp_path):
    pair = [SAMPLES / "win7" / "qmgr1.dat", SAMPLES / "win7" / "qmgr0.dat"]
    lone = tmp_path / "a" / "qmgr0.dat"
    lone.parent.mkdir()
    lone.write_bytes(legacy_samples("win10")["qmgr0.dat"])
    broken = tmp_path / "b" / "qmgr0.dat"
    broken.parent.mkdir()
    broken.write_bytes(b"\x01" * 100)
    sibling = broken.parent / "qmgr1.dat"
    sibling.write_bytes(legacy_samples("win10")["qmgr1.dat"])
    outcome = read_legacy_pairs([*pair, lone, broken, sibling])
    assert [p for p, _ in outcome] == [*pair, lone, broken, sibling]
    roles = {p: r if isinstance(r, SourceError) else {j.provenance.state_file for j in r.jobs} for p, r in outcome}
    assert roles[pair[0]] == {"current"} and roles[pair[1]] == {"previous"}
    assert roles[lone] == {None} and roles[sibling] == {None}
    assert isinstance(roles[broken], SourceError) and "header marker pair" in str(roles[broken])
