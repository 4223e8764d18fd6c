"""The fast decoding paths give exactly what the reference paths give.

Decoding has four ways to the same Job: the generated parsers (formats.fastparse, written
from the construct schemas by tools/gen_fastparse.py), construct's compiled parser (used once
a schema has been parsed COMPILE_AFTER times), the interpreted whole-record parse, and the
section-by-section walk that partial records take. Each test decodes the same bytes in
every mode and compares the whole Job (dataclass equality, to_dict, and the error text
for bytes that are not records). to_dict's generated per-class code is compared with
the generic field-by-field rules it replaces.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path
import uuid
from enum import IntEnum

import construct
import pytest

import bitsdb
from bitsdb.decode import sections
from bitsdb.decode import security as security_decode
from bitsdb.decode.job import job_to_sections
from bitsdb.decode import BlobError, decode_file_blob, decode_job_blob, encode_file, encode_job
from bitsdb.formats import file as file_fmt
from bitsdb.formats import job as job_fmt
from bitsdb.formats.markers import FILE_MARKER
from bitsdb.formats.primitives import guid_text
from bitsdb.forge.scale import scale_jobs
from bitsdb.model import (
    CostFlags,
    FileRange,
    Job,
    JobError,
    JobFile,
    JobState,
    JobType,
    NotifyFlags,
    Provenance,
    Timer,
    flag_names,
    flags_to_dict,
)
from bitsdb.timeutil import filetime_to_iso

from conftest import REAL, real_sample

MODES = ("reference", "generated", "compiled", "sections", "sections_compiled")


class _NeverParses(construct.Construct):
    """Stands in for the whole-record schema so that every record takes the section walk."""

    def _parse(self, stream, context, path):
        raise construct.ConstructError("forced section-by-section walk", path=path)


def _set_mode(monkeypatch, mode: str) -> None:
    """Fresh caches, then: the generated parsers (formats.fastparse, as in production) / construct
    never compiled / compiled on first use / no whole-record parse."""
    monkeypatch.setattr(sections, "PROBES", {})
    monkeypatch.setattr(security_decode, "_DESCRIPTORS", {})
    monkeypatch.setattr(sections, "USE_GENERATED", mode == "generated")
    monkeypatch.setattr(sections, "COMPILE_AFTER", 1 if mode.endswith("compiled") else 10**9)
    if mode.startswith("sections"):
        monkeypatch.setattr(sections, "whole_record", lambda record: _NEVER)


_NEVER = _NeverParses()


def _outcome(function, *args, **kwargs):
    """What a decoder gives: the record with its dict form, or the error text."""
    try:
        record = function(*args, **kwargs)
    except BlobError as exc:
        return ("error", str(exc))
    return (record, record.to_dict())


def _in_every_mode(monkeypatch, function, *args, **kwargs) -> dict:
    outcomes = {}
    for mode in MODES:
        with monkeypatch.context() as patch:
            _set_mode(patch, mode)
            outcomes[mode] = _outcome(function, *args, **kwargs)
            # Twice: the second decode of a descriptor comes from the cache.
            assert _outcome(function, *args, **kwargs) == outcomes[mode], mode
    return outcomes


def _assert_same(monkeypatch, function, *args, **kwargs):
    outcomes = _in_every_mode(monkeypatch, function, *args, **kwargs)
    reference = outcomes["reference"]
    for mode, outcome in outcomes.items():
        assert outcome == reference, f"{mode} differs from the reference"
    return reference[0]


# --------------------------------------------------------------------------- blobs

def _job(**fields) -> Job:
    base = dict(job_id=str(uuid.uuid4()), marker="e10956a1-af43-42c9-92e6-6f9856eba7f6", type=JobType.DOWNLOAD,
                state=JobState.ERROR, display_name="odd", owner_sid="S-1-5-21-1-2-3-1001",
                file_ids=[str(uuid.uuid4()), str(uuid.uuid4())], creation_time=133801632000000000,
                modification_time=133801632000000000, notify_program="cmd.exe",
                errors=[JobError(hresult=0x80190194, hresult_hex="0x80190194", context=5, form=21,
                                 extra="Not found")],
                timers=[Timer(slot="retry", start=133801632000000000, end=133801633000000000)],
                creator_image=r"C:\Windows\System32\bitsadmin.exe", proxy_list="proxy:8080")
    base.update(fields)
    return Job(**base)


def _with_25_byte_errors() -> bytes:
    job = _job(errors=[])
    built = encode_job(job)
    err25 = job_fmt.ErrorSection25.build(dict(records=[dict(code=0x80190194, err_unk_a=5, err_unk_b=0, err_unk_c=0,
                                                            err_unk_d=0, err_unk_e=0)]))
    file_list = job_fmt.EseFileList.build(dict(file_ids=job.file_ids))
    cut = built.index(file_list) + len(file_list)
    return built[:cut] + err25 + built[cut + 4:]


def _with_new_trailer_fields() -> bytes:
    job = _job()
    blob = encode_job(job)
    at = blob.rindex(struct.pack("<I", 0x80000067)) + 4
    return blob[:at] + b"\x07\x00\x00\x00" + b"\xff" * 9 + blob[at:]


def _packaged(extra: bytes = b"") -> bytes:
    """A Windows 11 24H2 job of a packaged app (§5.10.1), with `extra` bytes after its optional fields."""
    job = _job(package_family_name="Microsoft.OutlookForWindows_8wekyb3d8bbwe",
               application_id="!Microsoft.OutlookforWindows", network_guid="7befb604-85b2-4191-b7bd-c5f5a263cb7b")
    blob = encode_job(job)
    guid = uuid.UUID(job.network_guid).bytes_le
    tail = guid + b"\x00" * 21
    at = blob.rindex(tail)
    return blob[:at] + extra + blob[at:]


def odd_job_blobs() -> dict[str, bytes]:
    plain = encode_job(_job())
    return {
        "plain": plain,
        "truncated_400": plain[:400],
        "truncated_before_footer": plain[:-16],
        "truncated_in_footer": plain[:-5],
        "bytes_after_footer": plain + b"\x01\x02\x03",
        "unknown_marker": encode_job(_job(marker="01234567-89ab-cdef-0123-456789abcdef")),
        "unknown_marker_garbage": uuid.UUID("01234567-89ab-cdef-0123-456789abcdef").bytes_le + bytes(range(256)) * 4,
        "errors_25_byte": _with_25_byte_errors(),
        "double_marker": encode_job(_job(type=JobType.UPLOAD, outer_marker="8f5657d0-012c-4e3e-ad2c-f4a5d7656faf",
                                         extra=b"\x01\x02upload-reply")),
        "new_trailer_fields": _with_new_trailer_fields(),
        "packaged_24h2": _packaged(),
        "packaged_unknown_field": _packaged(extra=b"\x01" + bytes(range(0x40, 0x50))),
        "truncated_packaged_in_creator": _packaged()[:-180],
        "not_a_job": b"\xa1V\t\xe1C\xaf\xc9B\x92\xe6o\x98V\xeb\xa7\xf6" + b"\xff" * 200,
        "too_short": b"\x00" * 10,
        "zeros": b"\x00" * 900,
    }


def _file(**fields) -> JobFile:
    base = dict(file_id=str(uuid.uuid4()), local_name=r"C:\Users\Public\a.exe", remote_name="http://203.0.113.5/a",
                temp_name=r"C:\Users\Public\BIT1.tmp", bytes_transferred=100, bytes_total=1000, drive="C:\\",
                volume="\\\\?\\Volume{08542f90-0000-0000-0000-501f00000000}\\", local_attributes=0x80,
                ranges=[FileRange(0, 4096), FileRange(8192, -1)], remote_last_modified=133801632000000000)
    base.update(fields)
    return JobFile(**base)


def _negative_unk_count(blob: bytes) -> bytes:
    """The same blob with `unk_count` = -5: a negative count means no bytes, and must still parse."""
    body = file_fmt.FileBody.parse(blob[16:])
    original = file_fmt.FileBody.build(body)
    body.unk_count = -5
    return blob.replace(original, file_fmt.FileBody.build(body), 1)


def odd_file_blobs() -> dict[str, tuple[bytes, str | None]]:
    plain = encode_file(_file())
    return {
        "plain": (plain, None),
        "unknown_size": (encode_file(_file(bytes_total=-1, bytes_transferred=0)), None),
        "unk_bytes": (encode_file(_file(unknown={"unk_bytes": "0a0b0c"})), None),
        "negative_unk_count": (_negative_unk_count(plain), None),
        "truncated": (plain[:-30], None),
        "truncated_in_body": (plain[:200], None),
        "not_even_the_names": (plain[:60], None),
        "no_footer": (plain[:-16], None),
        "progress_not_understood": (plain[:-16] + b"\x00" * 5 + FILE_MARKER, None),
        "upload_with_hint": (encode_file(_file(layout="upload", local_file_mtime=133801632000000000)), "upload"),
        "upload_without_hint": (encode_file(_file(layout="upload", local_file_mtime=133801632000000000)), None),
        "download_with_upload_hint": (plain, "upload"),
        "zeros": (b"\x00" * 64, None),
        "too_short": (b"\x00" * 10, None),
    }


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("name", sorted(odd_job_blobs()))
def test_odd_job_blobs_decode_the_same_in_every_mode(monkeypatch, name):
    blob = odd_job_blobs()[name]
    job = _assert_same(monkeypatch, decode_job_blob, blob)
    if name.startswith("truncated") or name in ("new_trailer_fields", "bytes_after_footer"):
        assert job.partial and job.partial_reason          # the odd cases really are odd
    if name in ("not_a_job", "too_short", "zeros", "unknown_marker_garbage"):
        assert job == "error"


@pytest.mark.parametrize("name", sorted(odd_file_blobs()))
def test_odd_file_blobs_decode_the_same_in_every_mode(monkeypatch, name):
    blob, hint = odd_file_blobs()[name]
    jf = _assert_same(monkeypatch, decode_file_blob, blob, "id", layout_hint=hint)
    if name.startswith("truncated") or name in ("no_footer", "progress_not_understood"):
        assert jf.partial
    if name == "negative_unk_count":
        assert not jf.partial and jf.local_name == r"C:\Users\Public\a.exe"


def test_scale_records_decode_the_same_in_every_mode(monkeypatch):
    for job in scale_jobs(12):
        _assert_same(monkeypatch, decode_job_blob, encode_job(job))
        for jf in job.files:
            _assert_same(monkeypatch, decode_file_blob, encode_file(jf), jf.file_id,
                         layout_hint="upload" if job.type == JobType.UPLOAD else None)


@pytest.mark.parametrize("name", ["win10_job.raw", "win10_file.raw", "win81_file.raw"])
def test_real_blobs_decode_the_same_in_every_mode(monkeypatch, name):
    blob = real_sample("artemis", name).read_bytes()
    decoder = decode_file_blob if "file" in name else decode_job_blob
    _assert_same(monkeypatch, decoder, blob)


def test_real_stores_read_the_same_in_every_mode(monkeypatch):
    paths = [p for p in (REAL / "artemis" / "win10_qmgr.db", REAL / "artemis" / "win11_qmgr.db",
                         REAL / "bitsinject" / "win10legacy_job_SYSTEM_cmd_vlc.dat") if p.exists()]
    if not paths:
        pytest.skip(f"real samples under {REAL} not available")
    for path in paths:
        results = {}
        for mode in MODES:
            with monkeypatch.context() as patch:
                _set_mode(patch, mode)
                result = bitsdb.read(path)
                results[mode] = [job.to_dict() for job in result.jobs] + [f.to_dict() for f in result.orphan_files]
        assert results["reference"], path
        for mode in MODES:
            assert results[mode] == results["reference"], f"{path.name}: {mode}"


def test_the_fast_path_is_really_compiled(monkeypatch):
    """Guards against a field that construct cannot compile (a lambda) silently disabling it."""
    _set_mode(monkeypatch, "compiled")
    job = scale_jobs(1)[0]
    decode_job_blob(encode_job(job))
    decode_file_blob(encode_file(job.files[0]))
    for sections_ in (job_fmt.ESE_JOB_SECTIONS, file_fmt.ESE_FILE_SECTIONS):
        probe = sections.PROBES[id(sections.whole_record(sections_))]
        assert probe.compiled not in (None, False)


def test_generated_parsers_are_current_and_used(monkeypatch):
    """fastparse.py is what tools/gen_fastparse.py writes from today's schemas, and well-formed
    job, file and descriptor bytes are read by it (construct is not asked)."""
    from bitsdb.formats import fastparse
    from bitsdb.formats.codegen import generate

    assert Path(fastparse.__file__).read_text(encoding="utf-8") == generate(), "run tools/gen_fastparse.py"
    _set_mode(monkeypatch, "generated")
    job = scale_jobs(1)[0]
    job_blob, file_blob = encode_job(job), encode_file(job.files[0])
    asked = []
    monkeypatch.setattr(sections, "probe_for", lambda schema: asked.append(schema))
    monkeypatch.setattr(sections, "parse_prefix", lambda *args: asked.append(args))
    assert decode_job_blob(job_blob).security.dacl and decode_file_blob(file_blob).local_name
    assert asked == []


def test_construct_is_not_imported_to_read_a_database():
    """`bitsdb parse` of a well-formed store never imports construct (start-up time)."""
    import subprocess
    import sys

    code = ("import sys, bitsdb; from bitsdb.forge.scale import scale_jobs; "
            "from bitsdb.decode import encode_job, encode_file; jobs = scale_jobs(3); "
            "blobs = [encode_job(j) for j in jobs], [encode_file(f) for j in jobs for f in j.files]; "
            "[m for m in list(sys.modules) if m.startswith('construct') and sys.modules.pop(m)]; "
            "import bitsdb.decode.job as dj, bitsdb.decode.file as df; "
            "[dj.decode_job_blob(b) for b in blobs[0]]; [df.decode_file_blob(b) for b in blobs[1]]; "
            "print(any(m.startswith('construct') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stderr


def test_compiled_parse_does_not_accept_a_short_read(monkeypatch):
    """Compiled code reads short at the end of data without an error (here: the security
    descriptor of a record cut at 500 bytes, as the carver meets them): such results must
    go to the reference parse, which reports the truncation."""
    _set_mode(monkeypatch, "compiled")
    cut = encode_job(_job())[:500]
    probe = sections.probe_for(sections.whole_record(job_fmt.ESE_JOB_SECTIONS[:3]))
    assert probe.parse_fast(cut) is None
    silent = probe.compiled.parse(cut)                      # what the guard protects against
    assert len(silent.value.owner.security_descriptor) < silent.value.owner.sd_size
    with pytest.raises(construct.StreamError):
        probe.parse(cut)
    walk = sections.walk_sections(cut, 0, job_fmt.ESE_JOB_SECTIONS[:3])
    assert walk.failure and walk.failure.startswith("owner:") and "owner" in walk.parsed


def test_cached_descriptors_are_not_shared_between_jobs(monkeypatch):
    _set_mode(monkeypatch, "compiled")
    first = decode_job_blob(encode_job(_job()))
    second = decode_job_blob(encode_job(_job()))
    assert first.security == second.security
    first.security.dacl[0].sid_name = "resolved by the evidence reader"
    first.security.dacl.append(first.security.dacl[0])
    assert second.security.dacl[0].sid_name != "resolved by the evidence reader"
    assert len(second.security.dacl) == len(first.security.dacl) - 1
    assert decode_job_blob(encode_job(_job())).security == second.security


def test_flag_names_are_fresh_lists():
    names = flag_names(NotifyFlags, 0x403)
    assert names == ["JOB_TRANSFERRED", "JOB_ERROR", "0x400"]
    names.append("mutated")
    assert flag_names(NotifyFlags, 0x403) == ["JOB_TRANSFERRED", "JOB_ERROR", "0x400"]
    assert flags_to_dict(CostFlags, 0x80000067)["preset"] == "TRANSFER_STANDARD"


# --------------------------------------------------------------------------- to_dict

def _reference_to_dict(obj):
    """The generic rules to_dict implemented before it was generated per class."""
    def plain(value):
        if isinstance(value, IntEnum):
            return value.name
        if isinstance(value, bytes):
            return value.hex()
        if dataclasses.is_dataclass(value):
            return _reference_to_dict(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    out = {}
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            continue
        value = getattr(obj, f.name)
        kind = f.metadata.get("kind")
        if (f.metadata.get("omit_none") and value is None) or (f.metadata.get("omit_empty") and not value):
            continue
        if kind == "filetime":
            out[f.name] = filetime_to_iso(value)
            out[f.name + "_filetime"] = value
        elif kind == "flags":
            out[f.name] = flags_to_dict(f.metadata["flag_type"], value)
        else:
            out[f.name] = plain(value)
    return out


class _Bytes(bytes):
    pass


def test_to_dict_follows_the_generic_rules_on_odd_values():
    odd = _job(
        files=[_file(unknown={"nested": [(1, JobState.QUEUED), {"b": b"\x01"}], "subclass": _Bytes(b"\x02"),
                              "record": FileRange(1, 2), "tuple": (b"\x03", None)},
                     provenance=Provenance(source_path="x", file_times={"mtime": "2025"}))],
        state=9, type=JobType.UPLOAD, priority=True, notify_flags=0x403, cost_flags=0x80000067,
        file_acl_flags=None, extra=b"\xff", undecoded=_Bytes(b"\x00\x01"), unknown={"f": 1.5, "e": JobState.ERROR},
        modification_time=None)
    jobs = [odd] + [decode_job_blob(encode_job(job)) for job in scale_jobs(5)]
    for job in jobs:
        assert job.to_dict() == _reference_to_dict(job)
        for jf in job.files:
            assert jf.to_dict() == _reference_to_dict(jf)
    assert list(odd.to_dict()) == list(_reference_to_dict(odd))          # same key order (JSON output)
    assert "raw" not in odd.to_dict()["security"] if odd.security else True


def test_real_samples_to_dict_follows_the_generic_rules():
    result = bitsdb.read(real_sample("artemis", "win10_qmgr.db"))
    for job in result.jobs:
        assert job.to_dict() == _reference_to_dict(job)
        assert list(job.to_dict()) == list(_reference_to_dict(job))


def test_guid_text_is_uuid_text():
    import random

    rng = random.Random(7)
    samples = [bytes(16), b"\xff" * 16] + [bytes(rng.randrange(256) for _ in range(16)) for _ in range(2000)]
    for raw in samples:
        assert guid_text(raw) == str(uuid.UUID(bytes_le=raw))
    with pytest.raises(ValueError):
        guid_text(b"\x00" * 15)


def test_wstr_errors_read_as_before():
    """WStr is a Prefixed field now; partial_reason texts come from these messages."""
    from bitsdb.formats.primitives import MAX_WSTR_UNITS, WStr

    def last_line(exc_info):
        return str(exc_info.value).splitlines()[-1]

    with pytest.raises(construct.CheckError) as too_many:
        WStr.parse(struct.pack("<I", MAX_WSTR_UNITS + 1) + b"\x00" * 100)
    assert last_line(too_many) == "check failed during parsing"
    with pytest.raises(construct.StreamError) as short:
        WStr.parse(struct.pack("<I", 10) + b"a\x00b\x00")
    assert last_line(short) == "stream read less than specified amount, expected 20, found 4"
    with pytest.raises(construct.CheckError) as too_long:
        WStr.build("x" * MAX_WSTR_UNITS)
    assert last_line(too_long) == "check failed during building"
    assert WStr.parse(WStr.build("x" * (MAX_WSTR_UNITS - 1))) == "x" * (MAX_WSTR_UNITS - 1)


def test_compiled_records_also_build_the_same_bytes():
    """The compiled twins are only used to parse, but they must be whole constructs."""
    job = scale_jobs(1)[0]
    parts = job_to_sections(job)
    values = dict(parts, footer=parts["header"]["marker"])
    compiled = sections.compile_schema(job_fmt.EseJobBlob)
    assert compiled is not False
    assert compiled.build(values) == job_fmt.EseJobBlob.build(values) == encode_job(job)
    assert compiled.parse(encode_job(job)) == job_fmt.EseJobBlob.parse(encode_job(job))
    blob = encode_file(job.files[0])
    body = file_fmt.FileBody.parse(blob[16:])
    assert sections.compile_schema(file_fmt.FileBody).build(body) == file_fmt.FileBody.build(body)


def test_parse_command_imports_neither_construct_nor_the_carver(tmp_path):
    """Start-up: `bitsdb parse` of a database imports only what reading it needs (issue 17)."""
    import subprocess
    import sys

    from conftest import PROJECT as ROOT

    code = ("import atexit, sys; from bitsdb.cli import main; "
            "atexit.register(lambda: print(sorted({m.split('.')[0] if m.startswith('construct') else m "
            "for m in sys.modules if m.startswith(('construct', 'bitsdb.carve', 'bitsdb.rules', 'yaml'))}), "
            "file=sys.stderr)); "
            f"sys.argv = ['bitsdb', 'parse', {str(ROOT / 'samples' / 'demo' / 'qmgr.db')!r}, '-o', {str(tmp_path / 'o')!r}]; "
            "main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_generated_struct_keeps_each_fields_byte_order():
    """Fixed fields are read in one unpack per run; a big-endian field among little-endian ones
    was read little-endian (its byte-order prefix was dropped when the run was merged)."""
    import construct as cs

    from bitsdb.formats.codegen import Generator

    schema = cs.Struct("a" / cs.Int16ul, "b" / cs.Int16ub, "c" / cs.Int32ub, "d" / cs.Int8ul)
    gen = Generator()
    gen.function(schema, "parse_mixed")
    namespace = {"__name__": "bitsdb.formats.generated_test", "__package__": "bitsdb.formats"}
    exec(gen.source(), namespace)
    data = bytes.fromhex("0102" "0304" "05060708" "09")
    value, end = namespace["parse_mixed"](data, 0)
    expected = schema.parse(data)
    assert {name: value[name] for name in "abcd"} == {name: expected[name] for name in "abcd"}
    assert end == len(data)
