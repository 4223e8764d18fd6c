"""Verdict time per job, as a ratio to decoding the same job (issue 13: one verdict per job).

The reference is measured in the same run (decode_job_blob + decode_file_blob of each job's
records), so the ratio holds on a machine whose speed drifts. Jobs: the labelled corpus in
samples/rules (every kind of job the rules meet: live, legacy, recovered, damaged, allow-listed
and not).
Usage: python benchmarks/bench_rules.py [--repeat R]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bitsdb.decode import decode_file_blob, decode_job_blob, encode_file, encode_job
from bitsdb.decode.legacy import decode_legacy_job
from bitsdb.forge.legacy import encode_legacy_job
from bitsdb.rules import builtin_rules
from bitsdb.rules.corpus import load_cases

CORPUS = Path(__file__).resolve().parents[1] / "samples" / "rules"


def best_ms(function, items, repeat: int) -> float:
    """Best-of-`repeat` mean CPU time per item, in milliseconds."""
    runs = []
    for _ in range(repeat):
        start = time.process_time()
        for item in items:
            function(item)
        runs.append((time.process_time() - start) / len(items) * 1000)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cases = load_cases(CORPUS, lambda job: decode_legacy_job(encode_legacy_job(job)))
    live = [c.job for c in cases if c.record != "legacy" and not c.job.partial]
    records = [(encode_job(job), [(encode_file(f), f.file_id, f.layout) for f in job.files]) for job in live]

    def decode(record) -> None:
        blob, files = record
        decode_job_blob(blob)
        for data, file_id, layout in files:
            decode_file_blob(data, file_id, layout_hint=layout)

    rules = builtin_rules()
    rules.assess(live[0])                       # load and derive once, as a scan does
    decode_ms = best_ms(decode, records, args.repeat)
    verdict_ms = best_ms(rules.assess, live, args.repeat)
    all_ms = best_ms(rules.assess, [c.job for c in cases], args.repeat)
    print(f"{len(live)} jobs: decode {decode_ms:.3f} ms/job, verdict {verdict_ms:.3f} ms/job "
          f"= {verdict_ms / decode_ms:.1f}x decoding")
    print(f"all {len(cases)} corpus jobs (legacy, damaged included): verdict {all_ms:.3f} ms/job")


if __name__ == "__main__":
    main()
