"""Property tests over every decoder (hypothesis, bounded for CI): whatever the bytes, only the
documented errors escape (BlobError, SourceError) and what comes back is well-formed.

Inputs are arbitrary bytes and, more usefully, the project's own records and stores mutated where it
hurts (string counts, lengths, counts, markers, cuts, pages; bitsdb.forge.hostile). The long run of
the same mutations is `tools/fuzz.py`.
"""

from __future__ import annotations

import io
import json
import random
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitsdb.carve.scanner import Scanner, decode_ese_file_hit, ese_job_head_span
from bitsdb.decode import BlobError, decode_file_blob, decode_job_blob
from bitsdb.decode.file import file_head_span
from bitsdb.decode.job import job_head_problems, job_head_span
from bitsdb.decode.legacy import decode_legacy_file_list, decode_legacy_job, decode_legacy_record
from bitsdb.forge import hostile
from bitsdb.forge.carving import file_bytes, job_bytes
from bitsdb.forge.legacy import legacy_samples
from bitsdb.sources.detect import detect_bytes
from bitsdb.sources.legacy import parse_state_file
from bitsdb.sources.result import SourceError
from bitsdb.stores import read

ROOT = Path(__file__).resolve().parents[1]
BOUNDED = settings(max_examples=150, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@lru_cache(maxsize=None)
def seeds() -> dict[str, list[bytes]]:
    states = [data for version in ("win7", "win10") for data in legacy_samples(version).values()]
    legacy_jobs = [hostile.legacy_job_record()]
    for data in states:
        legacy_jobs += [data[r.offset:r.end] for r in parse_state_file(data).records]
    jobs = [job_bytes(n, version=n % 3, files=n % 3) for n in range(3)]
    jobs.append((ROOT / "samples" / "synthetic" / "persistence_job.blob").read_bytes())
    files = [file_bytes(n) for n in range(2)] + [(ROOT / "samples" / "synthetic" / "persistence_file.blob").read_bytes()]
    file_lists = [r[r.find(hostile.FILE_LIST_MARKER):] for r in legacy_jobs if hostile.FILE_LIST_MARKER in r]
    return {"job": jobs, "file": files, "legacy_job": legacy_jobs, "legacy_files": file_lists, "state": states}


@lru_cache(maxsize=None)
def fields(kind: str, index: int) -> list[int]:
    return hostile.length_fields(seeds()[kind][index])


def mutated(kind: str):
    """Seeds of `kind`, mutated structure-aware (sometimes not at all, sometimes arbitrary bytes)."""
    def build(args):
        index, seed, choice = args
        items = seeds()[kind]
        index %= len(items)
        rng = random.Random(seed)
        if choice == 0:
            return items[index]
        if choice == 1:
            return rng.randbytes(rng.randrange(0, 512))
        return hostile.mutate_record(items[index], rng, fields(kind, index))
    return st.tuples(st.integers(0, 50), st.integers(0, 2**32), st.integers(0, 9)).map(build)


def well_formed(record, size: int) -> None:
    json.dumps(record.to_dict())
    assert not record.partial or record.partial_reason
    if getattr(record, "blob_size", None) is not None:
        assert record.blob_size <= size + 32


@BOUNDED
@given(mutated("job") | st.binary(max_size=4096))
def test_decode_job_blob(data):
    try:
        job = decode_job_blob(data)
    except BlobError:
        return
    well_formed(job, len(data))
    if not job_head_problems(job):
        assert ese_job_head_span(data, 0), "the carver's head check never refuses a record the decoder takes"


@BOUNDED
@given(mutated("file") | st.binary(max_size=2048))
def test_decode_file_blob(data):
    try:
        jf = decode_file_blob(data)
    except BlobError:
        return
    well_formed(jf, len(data))


@BOUNDED
@given(mutated("file"))
def test_file_head_check_never_refuses_a_carvable_file(data):
    hit = decode_ese_file_hit(data, 0, len(data))
    if hit is not None:
        assert file_head_span(data, 0)
        well_formed(hit.record, len(data))


@BOUNDED
@given(mutated("legacy_job") | st.binary(max_size=4096))
def test_decode_legacy_job_and_record(data):
    try:
        job = decode_legacy_job(data)
    except BlobError:
        return
    well_formed(job, len(data))
    record, end = decode_legacy_record(data, 0)
    assert 0 < end <= len(data)
    if not job_head_problems(record):
        assert job_head_span(data, 0), "resync's head check never refuses a record the decoder takes"


@BOUNDED
@given(mutated("legacy_files") | st.binary(max_size=2048))
def test_decode_legacy_file_list(data):
    files, end, error = decode_legacy_file_list(data)
    assert 0 <= end <= len(data) and (error is None or isinstance(error, str))
    for jf in files:
        well_formed(jf, len(data))


@BOUNDED
@given(mutated("state"))
def test_parse_state_file(data):
    try:
        state = parse_state_file(data)
    except SourceError:
        return
    for record in state.records:
        assert 0 <= record.offset < record.end <= len(data)
        well_formed(record.job, len(data))
    assert all("\n" not in line for line in state.errors + state.warnings)


@BOUNDED
@given(st.lists(mutated("job") | mutated("file") | mutated("legacy_job") | st.binary(max_size=256),
                max_size=6))
def test_carving_scanner(parts):
    data = b"".join(parts)
    last = -1
    for carved in Scanner(window=64 * 1024, hash_input=False).records(io.BytesIO(data)):
        assert last < carved.offset < len(data)
        last = carved.offset
        well_formed(carved.record, len(data))


@BOUNDED
@given(mutated("job") | mutated("state") | mutated("legacy_files") | st.binary(max_size=512))
def test_detect_bytes(data):
    assert detect_bytes(data).value


@lru_cache(maxsize=None)
def demo_database() -> bytes:
    return (ROOT / "samples" / "demo" / "qmgr.db").read_bytes()


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32))
def test_ese_reader_on_damaged_databases(tmp_path_factory, seed):
    data, how = hostile.mutate_database(demo_database(), random.Random(seed))
    path = tmp_path_factory.mktemp("db") / "qmgr.db"
    path.write_bytes(data)
    try:
        result = read(path)
    except SourceError as exc:
        assert "\n" not in str(exc)
        return
    for job in result.jobs:
        well_formed(job, len(data))
    assert all("\n" not in line for line in result.errors + result.warnings), how


@pytest.mark.parametrize("shape", sorted(hostile.COSTLY_SHAPES))
def test_costly_shapes_give_only_documented_errors(tmp_path, shape):
    path = tmp_path / "qmgr0.dat"
    path.write_bytes(hostile.COSTLY_SHAPES[shape](64 * 1024))
    try:
        result = read(path)
    except SourceError:
        return
    for job in result.jobs:
        well_formed(job, path.stat().st_size)
