"""Carving on synthetic inputs: window edges, truncation, overwrites, noise, large streams, history."""

from __future__ import annotations

import io
import os
import random

import pytest
from click.testing import CliRunner

from bitsdb.carve.history import build_history
from bitsdb.carve.recover import DB_PAGE, IMAGE, LOG_FILE, carve_file, recover, recover_many
from bitsdb.carve.scanner import LOOKBEHIND, Scanner, scan
from bitsdb.forge.carving import (
    file_bytes,
    file_id,
    inline_row,
    job_bytes,
    job_id,
    make_file,
    make_job,
    noisy_image,
)
from bitsdb.decode import decode_job_blob, encode_job
from bitsdb.formats.markers import ESE_JOB_MARKERS, FILE_LIST_MARKER, FILE_MARKER, LEGACY_JOB_MARKERS
from bitsdb.model import JobState
from bitsdb.sources.result import SourceError, SourceResult

WINDOW = 64 * 1024       # the scanner's smallest window: many edges in a small input


def carved(data: bytes, **options):
    return list(scan(io.BytesIO(data), **options))


def test_records_found_at_their_offsets_with_every_field():
    blob_a, blob_b = job_bytes(1), job_bytes(2, state=JobState.ERROR)
    data = b"\x00" * 300 + blob_a + b"\xff" * 77 + blob_b + b"\x00" * 20
    records = carved(data)
    assert [(r.kind, r.offset, r.length) for r in records] == [
        ("job", 300, len(blob_a)), ("job", 300 + len(blob_a) + 77, len(blob_b))]
    first = records[0].record
    assert not first.partial
    assert first == decode_job_blob(blob_a)            # same as decoding the exact blob
    assert (first.display_name, first.notify_program) == ("job 1", "C:\\Windows\\System32\\cmd.exe")
    assert records[1].record.state == JobState.ERROR


@pytest.mark.parametrize("shift", [-len(job_bytes(1)) + 1, -700, -16, -15, -1, 0, 1, 15])
def test_record_split_across_a_window_edge(shift):
    blob = job_bytes(1)
    offset = WINDOW + shift
    data = os.urandom(offset) + blob + os.urandom(3 * WINDOW)
    records = carved(data, window=WINDOW)
    assert [(r.offset, r.length, r.record.partial) for r in records] == [(offset, len(blob), False)]


def test_inline_prefix_across_a_window_edge_gives_the_file_id():
    row = inline_row(file_id(5), file_bytes(5))
    offset = WINDOW - 10          # prefix in one window, marker in the next
    data = b"\x00" * offset + row + b"\x00" * 100
    [record] = carved(data, window=WINDOW)
    assert record.offset == offset + 26 and record.row_id == file_id(5)
    assert record.record.file_id == file_id(5) and not record.record.partial


def test_truncated_job_is_partial_with_reason():
    blob = job_bytes(1)
    cut = blob[: len(blob) - 200]            # ends inside the trailer, input ends there
    [record] = carved(b"\x00" * 64 + cut)
    job = record.record
    assert job.partial and job.job_id == job_id(1)
    assert "trailer" in job.partial_reason
    assert job.display_name == "job 1" and job.modification_time == make_job(1).modification_time
    assert job.creator_image is None


def test_job_cut_at_a_page_boundary_names_the_boundary():
    page = 16384
    blob = job_bytes(1)
    offset = page - 1700                          # the file list fits, the times and trailer do not
    data = bytearray(os.urandom(3 * page))
    data[offset:offset + len(blob)] = blob
    data[4:8] = b"\xef\xcd\xab\x89"             # not needed: page size is passed explicitly
    [record] = carved(bytes(data), page_size=page)
    assert record.record.partial and "page boundary 0x4000" in record.record.partial_reason
    assert record.length <= 1700 and record.record.creation_time is not None
    assert len(record.record.undecoded) <= 256


def test_overwritten_middle_keeps_the_head_and_finds_the_intruder():
    victim, intruder = job_bytes(1), job_bytes(2)
    middle = len(victim) - 300                    # inside the network/trailer region
    data = b"\x00" * 32 + victim[:middle] + intruder + b"\x00" * 32
    records = carved(data)
    assert [r.record.job_id for r in records] == [job_id(1), job_id(2)]
    assert records[0].record.partial and not records[1].record.partial
    assert records[1].offset == 32 + middle


def test_overwritten_head_is_not_a_record_but_the_footer_is_skipped():
    blob = bytearray(job_bytes(1))
    blob[40:80] = os.urandom(40)                  # the strings are gone
    assert carved(b"\x00" * 16 + bytes(blob) + b"\x00" * 16) == []


def test_truncated_file_is_partial():
    blob = file_bytes(3)
    [record] = carved(blob[:-40])
    assert record.kind == "file" and record.record.partial
    assert record.record.local_name.endswith("file3.bin")
    assert "footer" in record.record.partial_reason or "truncated" in record.record.partial_reason


def test_noise_with_marker_bytes_gives_no_records():
    rng = random.Random(7)
    data = bytearray(rng.randbytes(2 * 1024 * 1024))
    markers = list(ESE_JOB_MARKERS) + list(LEGACY_JOB_MARKERS) + [FILE_MARKER]
    for _ in range(3000):
        marker = rng.choice(markers)
        position = rng.randrange(0, len(data) - 200)
        data[position:position + 16] = marker
        if rng.random() < 0.3:                    # a plausible-looking start: zero header fields
            data[position + 16:position + 48] = bytes(32)
        if rng.random() < 0.1:
            data[position + 60:position + 76] = FILE_LIST_MARKER
    scanner = Scanner(window=WINDOW)
    assert list(scanner.records(io.BytesIO(bytes(data)))) == []
    assert scanner.stats.hits >= 2500          # some planted markers overwrite others


def test_zero_filled_input_with_markers_gives_no_records():
    data = bytearray(256 * 1024)
    for i, marker in enumerate(list(ESE_JOB_MARKERS) + [FILE_MARKER]):
        data[1000 * (i + 1):1000 * (i + 1) + 16] = marker
    assert carved(bytes(data)) == []


def test_large_stream_records_at_known_offsets():
    size = 20 * 1024 * 1024
    rng = random.Random(3)
    planted = {}
    offsets = sorted(rng.sample(range(0, size - 8192, 4096), 60))
    for index, offset in enumerate(offsets):
        offset += rng.randrange(0, 2000)
        blob = job_bytes(index) if index % 3 else file_bytes(index)
        planted[offset] = blob
    image = io.BytesIO()
    noisy_image(image, size, list(planted.items()), seed=5)
    image.seek(0)
    scanner = Scanner(window=1024 * 1024)
    found = {r.offset: r for r in scanner.records(image)}
    assert sorted(found) == sorted(planted)
    assert all(found[o].length == len(planted[o]) and not found[o].record.partial for o in planted)
    assert scanner.stats.bytes_scanned == size and scanner.stats.sha256 is not None


def test_memory_is_independent_of_input_size():
    """The scanner never holds more than about a window plus the record overlap."""

    class Probe(io.RawIOBase):
        def __init__(self, size):
            self.left, self.largest = size, 0

        def readable(self):
            return True

        def read(self, n=-1):
            n = min(n, self.left)
            self.left -= n
            return bytes(n)

    sizes = []
    for total in (8 << 20, 64 << 20):
        scanner = Scanner(window=1 << 20, hash_input=False)
        sizes_seen = []
        original = scanner._hits

        def spy(buf, lo, hi, original=original, seen=sizes_seen):
            seen.append(len(buf))
            return original(buf, lo, hi)

        scanner._hits = spy
        list(scanner.records(Probe(total)))
        sizes.append(max(sizes_seen))
    assert sizes[0] == sizes[1] <= (1 << 20) + 256 * 1024 + LOOKBEHIND


# --------------------------------------------------------------------------- history


def _scan_file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_versions_merge_copies_and_keep_state_changes(tmp_path):
    v0, v1 = job_bytes(1, version=0), job_bytes(1, version=1, state=JobState.TRANSFERRED)
    data = b"\x00" * 64 + v0 + b"\x00" * 64 + v0 + b"\x00" * 64 + v1 + b"\x00" * 64 + job_bytes(2)
    path = _scan_file(tmp_path, "image.raw", data)
    recovery = recover_many([path])
    history = recovery.history
    assert history.job_records == 4 and history.versions == 3 and history.job_ids == 2
    jobs = recovery.jobs
    assert [(j.job_id, j.state) for j in jobs] == [
        (job_id(1), JobState.QUEUED), (job_id(1), JobState.TRANSFERRED), (job_id(2), JobState.QUEUED)]
    first = jobs[0].provenance
    assert first.recovered and first.recovered_from == IMAGE and first.offset == 64
    assert first.source_sha256 is not None and first.source_path == str(path)


def test_same_modification_time_but_different_content_is_reported_twice(tmp_path):
    a = make_job(1)
    b = make_job(1)
    b.state = JobState.SUSPENDED
    path = _scan_file(tmp_path, "x.raw", encode_job(a) + encode_job(b) + encode_job(a))
    recovery = recover_many([path])
    assert recovery.history.versions == 1
    assert sorted(int(j.state) for j in recovery.jobs) == [0, 3]
    assert any("different records share it" in w for w in recovery.warnings)


def test_jobs_linked_to_inline_file_rows_and_orphans_kept(tmp_path):
    job = job_bytes(1, files=2)
    f10 = inline_row(file_id(10), file_bytes(10, transferred=50))
    f10_old = inline_row(file_id(10), file_bytes(10, transferred=5))
    stray = file_bytes(99)                          # no row prefix: no Id
    data = b"\x00" * 40 + f10_old + b"\x00" * 40 + job + b"\x00" * 40 + f10 + b"\x00" * 40 + stray
    recovery = recover_many([_scan_file(tmp_path, "y.raw", data)])
    [recovered] = recovery.jobs
    assert [f.file_id for f in recovered.files] == [file_id(10)]
    assert recovered.files[0].bytes_transferred == 50          # most progress wins
    assert recovered.missing_file_ids == [file_id(11)]
    assert recovered.files[0].provenance.recovered
    orphans = recovery.history.orphan_files
    assert sorted((f.file_id or "", f.bytes_transferred) for f in orphans) == [
        ("", 10), (file_id(10), 5)]


def test_live_versions_are_not_repeated(tmp_path):
    data = job_bytes(1) + job_bytes(1, version=1)
    live_job = decode_job_blob(job_bytes(1))
    live_job.files = [make_file(10)]
    live = SourceResult(path="qmgr.db", kind="ese_database", jobs=[live_job])
    path = _scan_file(tmp_path, "qmgr.db", data)
    jobs = recover(path, live)
    assert [j.modification_time for j in jobs] == [make_job(1, version=1).modification_time]


def test_recover_reads_companion_logs(tmp_path):
    db = bytearray(4 * 16384)
    db[4:8] = b"\xef\xcd\xab\x89"
    blob = job_bytes(1)
    db[16384 + 100:16384 + 100 + len(blob)] = blob
    (tmp_path / "qmgr.db").write_bytes(bytes(db))
    (tmp_path / "edb00001.log").write_bytes(b"\x00" * 50 + job_bytes(1, version=3))
    (tmp_path / "edbres00001.jrs").write_bytes(b"\x00" * 50 + job_bytes(2))
    (tmp_path / "notes.txt").write_bytes(job_bytes(3))        # not a companion
    jobs = recover(tmp_path / "qmgr.db", None)
    where = sorted((j.job_id, j.provenance.recovered_from, os.path.basename(j.provenance.source_path))
                   for j in jobs)
    assert where == [(job_id(1), DB_PAGE, "qmgr.db"), (job_id(1), LOG_FILE, "edb00001.log"),
                     (job_id(2), LOG_FILE, "edbres00001.jrs")]


def test_carve_file_errors_are_one_line(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        carve_file(tmp_path / "missing.raw")
    with pytest.raises(SourceError, match="directory"):
        carve_file(tmp_path)


def test_build_history_without_records():
    history = build_history([])
    assert history.jobs == [] and history.orphan_files == [] and history.versions == 0


# --------------------------------------------------------------------------- CLI


def _cli():
    from bitsdb.cli import cli

    return cli


def test_cli_carve_jsonl_and_all_records(tmp_path):
    import json

    path = _scan_file(tmp_path, "disk.raw", os.urandom(5000) + job_bytes(1) + job_bytes(1) + os.urandom(100))
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames \
        else CliRunner()
    result = runner.invoke(_cli(), ["carve", str(path)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["job_id"] == job_id(1)
    assert lines[0]["provenance"]["recovered"] is True and lines[0]["provenance"]["offset"] == 5000
    result = runner.invoke(_cli(), ["carve", "--all-records", "--no-hash", str(path)])
    assert [json.loads(line)["provenance"]["offset"] for line in result.stdout.splitlines()] == [
        5000, 5000 + len(job_bytes(1))]


def test_cli_carve_bad_input_is_one_line_and_exit_1(tmp_path):
    good = _scan_file(tmp_path, "ok.raw", job_bytes(2))
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames \
        else CliRunner()
    result = runner.invoke(_cli(), ["carve", "-f", "table", str(tmp_path / "nope.raw"), str(good)])
    assert result.exit_code == 1
    assert "nope.raw: no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr and "job 2" in result.stdout


def test_legacy_records_are_carved_whole_with_inline_files():
    from bitsdb.forge.legacy import encode_legacy_job
    from bitsdb.model import JobFile

    job = make_job(4)
    job.files = [JobFile(file_id=None, local_name=r"C:\temp\x.exe", remote_name="http://198.51.100.4/x.exe",
                         temp_name=r"C:\temp\BIT1.tmp", bytes_transferred=5, bytes_total=10, drive="C:\\",
                         volume="\\\\?\\Volume{00000000-0000-0000-0000-000000000000}\\")]
    job.file_ids = []
    blob = encode_legacy_job(job, "win10")
    [record] = carved(b"\x00" * 10 + blob + b"\xff" * 64)
    assert record.family == "legacy_job" and record.offset == 10 and record.length == len(blob)
    carved_job = record.record
    assert carved_job.job_id == job_id(4) and not carved_job.partial, carved_job.partial_reason
    assert [f.remote_name for f in carved_job.files] == ["http://198.51.100.4/x.exe"]
    assert carved_job.creation_time == job.creation_time


def test_live_job_without_times_is_not_reported_again(tmp_path):
    """A job whose times are all unset (0) is the same version as its carved copy, however cut."""
    job = make_job(3)
    for name in ("creation_time", "modification_time", "modification_time_2", "inactivity_base_time",
                 "expiration_time"):
        setattr(job, name, 0)
    blob = encode_job(job)
    live_job = decode_job_blob(blob)
    live = SourceResult(path="qmgr.db", kind="ese_database", jobs=[live_job])
    path = _scan_file(tmp_path, "qmgr.db", blob)
    assert recover(path, live) == []
