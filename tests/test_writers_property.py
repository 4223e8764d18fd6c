"""Property tests (hypothesis): every writer, on any record the model can hold, writes valid output.

Records are drawn with lone surrogates, control characters and line separators in every text
field, huge and negative numbers, unknown enum values and None everywhere. Whatever they hold,
each record is written (never refused) and judged by the rules, the output is valid UTF-8, JSON formats parse line by
line (or as one array), CSV formats have the header's column count on every row, tables and
body files keep one entry per line. Bounded (max_examples) so CI stays fast.
"""

from __future__ import annotations

import csv
import io
import json
import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitsdb.formats.primitives import WStr
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
    Provenance,
    ProxyUsage,
    Timer,
)
from bitsdb.output import RECORD_FORMATS, TIMELINE_FORMATS, make_writer
from bitsdb.output.findings import FINDING_FORMATS, VerdictWriter
from bitsdb.rules.engine import load_rules

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])

odd_char = st.one_of(
    st.characters(exclude_categories=["Cs"]),                     # any code point of valid text
    st.sampled_from("\n\r\t\x00\x1b\x7f\x85\u2028\u2029\u202e\ufffd|,;\"'\\%/"),
)
#: Text fields of the records evidence fills (Job, JobFile, JobError, Provenance) may also hold
#: lone surrogates: the model boundary repairs them (raw_strings). Values the tool makes itself
#: (list items, dict entries, timer slots) hold any other text.
text = st.lists(odd_char | st.integers(0xD800, 0xDFFF).map(chr), max_size=30).map("".join)
odd_text = st.lists(odd_char, max_size=30).map("".join)
maybe_text = st.none() | text
number = st.none() | st.integers(-(2 ** 70), 2 ** 70)
filetime = st.none() | st.integers(-(2 ** 64), 2 ** 64) | st.integers(125911584000000000, 159029568000000000)


def enum_or_number(enum):
    return st.none() | st.sampled_from(list(enum)) | st.integers(-(2 ** 40), 2 ** 40)


provenance = st.none() | st.builds(
    Provenance, source_path=text, source_sha256=maybe_text, source_kind=maybe_text, table=maybe_text,
    record_index=number, offset=number, recovered=st.booleans(), recovered_from=maybe_text,
    state_file=maybe_text, container=maybe_text, host=maybe_text, partition=maybe_text, snapshot=maybe_text,
    path_in_evidence=maybe_text, source_size=number,
    file_times=st.none() | st.dictionaries(odd_text, odd_text, max_size=2))

job_file = st.builds(
    JobFile, file_id=maybe_text, local_name=maybe_text, remote_name=maybe_text, temp_name=maybe_text,
    bytes_transferred=number, bytes_total=number, drive=maybe_text, volume=maybe_text, local_attributes=number,
    ranges=st.lists(st.builds(FileRange, offset=st.integers(-(2 ** 64), 2 ** 64),
                              length=st.integers(-(2 ** 64), 2 ** 64)), max_size=2),
    remote_last_modified=filetime, local_file_mtime=filetime, layout=text, progress_complete=number,
    progress_bytes_done=number, unknown=st.dictionaries(odd_text, number | odd_text, max_size=2),
    partial=st.booleans(),
    partial_reason=maybe_text, undecoded=st.binary(max_size=8), provenance=provenance)

job = st.builds(
    Job, job_id=maybe_text, marker=maybe_text, marker_label=maybe_text, outer_marker=maybe_text,
    type=enum_or_number(JobType), priority=enum_or_number(JobPriority), state=enum_or_number(JobState),
    display_name=maybe_text, description=maybe_text, notify_program=maybe_text, notify_parameters=maybe_text,
    notify_flags=st.none() | st.integers(0, 2 ** 32 - 1), owner_sid=maybe_text, owner_name=maybe_text,
    file_ids=st.lists(odd_text, max_size=2), files=st.lists(job_file, max_size=3),
    missing_file_ids=st.lists(odd_text, max_size=2),
    errors=st.lists(st.builds(JobError, hresult=number, hresult_hex=maybe_text,
                              context=enum_or_number(ErrorContext), form=st.integers(0, 30), extra=maybe_text),
                    max_size=2),
    transient_error_count=number, min_retry_delay=number, no_progress_timeout=number,
    creation_time=filetime, modification_time=filetime, modification_time_2=filetime, completion_time=filetime,
    inactivity_base_time=filetime, expiration_time=filetime,
    timers=st.lists(st.builds(Timer, slot=odd_text, start=st.integers(0, 2 ** 64), end=st.integers(0, 2 ** 64)),
                    max_size=2),
    proxy_usage=enum_or_number(ProxyUsage), proxy_list=maybe_text, proxy_bypass=maybe_text,
    file_acl_flags=st.none() | st.integers(0, 2 ** 32 - 1),
    custom_headers=st.none() | st.builds(CustomHeaders, plain_length=st.integers(0, 2 ** 32),
                                         blob_length=st.integers(0, 2 ** 32), dpapi_description=st.none() | odd_text,
                                         dpapi_blob=st.binary(max_size=16)),
    security_flags=st.none() | st.integers(0, 2 ** 32 - 1), max_download_time=number,
    cost_flags=st.none() | st.integers(0, 2 ** 32 - 1), network_guid=maybe_text, creator_image=maybe_text,
    http_method=maybe_text, aux_string=maybe_text, partial=st.booleans(), partial_reason=maybe_text,
    blob_size=number, provenance=provenance)

RULES = load_rules([])


class Sink:
    """What the CLI's output does with a record: encode it strictly as UTF-8 (refusing it whole)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, text: str) -> None:
        self.data += text.encode("utf-8")

    def flush(self) -> None:
        pass


def written(fmt: str, jobs: list[Job], orphans: list[JobFile], *, timeline: bool) -> str:
    sink = Sink()
    writer = make_writer(fmt, sink, timeline=timeline, rules=RULES)
    writer.begin_source("source\n\ud800", "kind", len(jobs), len(orphans))
    for item in jobs:
        writer.write_job(item)                   # raises if a record cannot be written: the property fails
    for jf in orphans:
        writer.write_orphan(jf)
    writer.close()
    return bytes(sink.data).decode("utf-8")


def csv_rows(text_out: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text_out, newline="")))
    assert rows and all(len(row) == len(rows[0]) for row in rows)
    return rows


@SETTINGS
@given(jobs=st.lists(job, max_size=3), orphans=st.lists(job_file, max_size=2))
def test_record_writers_take_any_record(jobs, orphans):
    for fmt in RECORD_FORMATS:
        out = written(fmt, jobs, orphans, timeline=False)
        if fmt == "jsonl":
            assert len([json.loads(line) for line in out.split("\n") if line]) == len(jobs) + len(orphans)
        elif fmt == "json":
            assert len(json.loads(out)) == len(jobs) + len(orphans)
        elif fmt == "csv":
            assert len(csv_rows(out)) == 1 + sum(max(1, len(j.files)) for j in jobs) + len(orphans)
        else:
            assert not any(ch in out for ch in "\r\x1b\x85\u2028\u2029")   # table: one entry per line


@SETTINGS
@given(jobs=st.lists(job, max_size=3), orphans=st.lists(job_file, max_size=2))
def test_timeline_writers_take_any_record(jobs, orphans):
    for fmt in TIMELINE_FORMATS:
        out = written(fmt, jobs, orphans, timeline=True)
        if fmt in ("timesketch", "ecs"):
            for line in out.split("\n"):
                if line:
                    json.loads(line)
        elif fmt in ("timesketch-csv", "csv"):
            csv_rows(out)
        else:                                                    # bodyfile: 11 fields a line
            assert all(len(line.split("|")) == 11 for line in out.split("\n") if line)


@SETTINGS
@given(jobs=st.lists(job, max_size=3))
def test_verdict_writers_take_any_record(jobs):
    for fmt in FINDING_FORMATS:
        sink = Sink()
        writer = VerdictWriter(sink, fmt)
        for item in jobs:
            writer.write(RULES.assess(item))
        out = bytes(sink.data).decode("utf-8")
        if fmt == "jsonl":
            assert len([json.loads(line) for line in out.split("\n") if line]) == len(jobs)
        elif fmt == "csv":
            assert len(csv_rows(out)) == 1 + len(jobs)
        else:
            assert len(out.split("\n")) == 2 + len(jobs)


@SETTINGS
@given(st.binary(max_size=64).map(lambda b: b[: len(b) // 2 * 2]))
def test_any_stored_string_decodes_to_valid_text_and_rebuilds_exactly(data):
    stored = struct.pack("<I", len(data) // 2 + 1) + data + b"\x00\x00"
    value = WStr.parse(stored)
    value.encode("utf-8")
    assert WStr.build(value) == stored


@SETTINGS
@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\x00" not in b))
def test_any_file_name_becomes_valid_provenance_with_its_bytes(name):
    path = os.fsdecode(b"/evidence/" + name)
    record = Provenance(source_path=path)
    record.source_path.encode("utf-8")
    if record.raw_strings:
        assert bytes.fromhex(record.raw_strings["source_path"]) == b"/evidence/" + name
    else:
        assert record.source_path == path


_JSON_TREES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20)


@SETTINGS
@given(_JSON_TREES)
def test_the_fast_json_encoder_writes_what_the_standard_one_does(tree):
    """The writers' encoder (orjson, standard fallback) is byte-identical to json's compact form with
    UTF-8 kept, for every tree records produce: text with any code point, integers of any size."""
    from bitsdb.output.jsonout import _COMPACT, dumps, one_line_json

    assert dumps(tree) == one_line_json(_COMPACT.encode(tree))
