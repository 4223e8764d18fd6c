"""Per-blob decode time and to_dict + JSON time (issue 3: 10,000 jobs x 3 files in < 10 s).

Budget: job blob <= 0.35 ms, file blob <= 0.12 ms, to_dict + JSON of a job with
3 files <= 0.15 ms. Blobs come from the scale generator (the records a benchmark
database holds) and, when present, the real artemis samples.
Usage: python benchmarks/bench_decode.py [--jobs N] [--repeat R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bitsdb import model
from bitsdb.decode import BlobError, decode_file_blob, decode_job_blob, encode_file, encode_job
from bitsdb.forge.scale import scale_jobs
from bitsdb.model import Provenance
from bitsdb.output.base import job_record
from bitsdb.output.jsonout import dumps

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "real" / "artemis"


def per_item_ms(function, items, repeat: int) -> float:
    """Best-of-`repeat` mean CPU time per item, in milliseconds.

    CPU time, not wall time: on a shared 2-core machine the wall clock mostly measures the
    neighbours. Caches that only a repeated pass would fill (filetime texts) are emptied first.
    """
    runs = []
    for _ in range(repeat):
        getattr(model, "_ISO_TEXT", {}).clear()
        start = time.process_time()
        for item in items:
            function(item)
        runs.append((time.process_time() - start) / len(items) * 1000)
    return min(runs)


def one_time_compile_ms() -> tuple[float, float] | None:
    """What compiling the whole-record parsers costs (paid once per process, never on small inputs)."""
    from bitsdb.decode import sections
    from bitsdb.formats.file import ESE_FILE_SECTIONS
    from bitsdb.formats.job import ESE_JOB_SECTIONS

    times = []
    for record in (ESE_JOB_SECTIONS, ESE_FILE_SECTIONS):
        start = time.process_time()
        sections.compile_schema(sections.Probe(sections.whole_record(record)).interpreted)
        times.append((time.process_time() - start) * 1000)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    decode_job_blob(encode_job(scale_jobs(1)[0]))       # what a 1-job store pays: nothing is compiled yet
    first_use = time.perf_counter() - start

    jobs = scale_jobs(args.jobs)
    job_blobs = [encode_job(job) for job in jobs]
    file_blobs = [encode_file(jf) for job in jobs for jf in job.files]
    decoded = []
    for index, (job, blob) in enumerate(zip(jobs, job_blobs)):
        again = decode_job_blob(blob)
        again.files = [decode_file_blob(encode_file(jf), jf.file_id) for jf in job.files]
        for record, table in [(again, "Jobs")] + [(jf, "Files") for jf in again.files]:
            # As the ESE reader stamps them, so that the output measured is the output written.
            record.provenance = Provenance(source_path="/cases/host1/qmgr.db", source_sha256="ab" * 32,
                                           source_kind="ese_database", table=table, record_index=index,
                                           recovered_from="live table")
        decoded.append(again)

    job_ms = per_item_ms(decode_job_blob, job_blobs, args.repeat)
    file_ms = per_item_ms(decode_file_blob, file_blobs, args.repeat)
    out_ms = per_item_ms(lambda job: dumps(job_record(job)), decoded, args.repeat)
    dict_ms = per_item_ms(job_record, decoded, args.repeat)
    print(f"first job in the process (encode + decode, interpreted): {first_use * 1000:.1f} ms")
    compile_ms = one_time_compile_ms()
    if compile_ms:
        print(f"one-time compile (after sections.COMPILE_AFTER uses): job record {compile_ms[0]:.1f} ms, "
              f"file record {compile_ms[1]:.1f} ms")
    print(f"job blob decode   {job_ms:.3f} ms   (budget 0.35)   [{len(job_blobs)} scale blobs]")
    print(f"file blob decode  {file_ms:.3f} ms   (budget 0.12)   [{len(file_blobs)} scale blobs]")
    print(f"to_dict + JSON    {out_ms:.3f} ms   (budget 0.15)   [job with {len(decoded[0].files)} files, "
          f"provenance on each; to_dict alone {dict_ms:.3f}]")
    total = len(job_blobs) * (job_ms + out_ms) + len(file_blobs) * file_ms
    print(f"=> {total / 1000 * 10_000 / len(job_blobs):.1f} s of decoding + output for 10,000 jobs x 3 files")

    if REAL.is_dir():
        for path in sorted(REAL.glob("*.raw")):
            blob = path.read_bytes()
            decode = decode_file_blob if "file" in path.name else decode_job_blob
            try:
                decode(blob)
            except BlobError as exc:          # win81_file.raw is a legacy inline record
                print(f"real {path.name:16s} not an ESE blob: {exc}")
                continue
            times = []
            for _ in range(args.repeat):
                begin = time.process_time()
                for _ in range(200):
                    decode(blob)
                times.append((time.process_time() - begin) / 200 * 1000)
            print(f"real {path.name:16s} {min(times):.3f} ms   (median {statistics.median(times):.3f}; "
                  f"the same blob 200 times)")


if __name__ == "__main__":
    main()
