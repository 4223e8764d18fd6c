"""Regenerate samples/legacy/ (synthetic qmgr0.dat/qmgr1.dat pairs and their expected outputs).

Run from the project root: python tools/build_legacy_samples.py
The expected outputs are the JSON Lines `bitsdb parse` writes for the pair (qmgr0.dat, then
qmgr1.dat), with jobs marked current/previous by bitsdb.sources.legacy.read_legacy_pair.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from bitsdb.forge.legacy import VERSIONS, write_legacy_samples
from bitsdb.output.jsonout import JsonLinesWriter
from bitsdb.sources.legacy import read_legacy_pair

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "samples" / "legacy"


def expected_jsonl(folder: str) -> str:
    """JSON Lines for the pair in `folder` (a path relative to the project root, as written in provenance)."""
    stream = io.StringIO()
    writer = JsonLinesWriter(stream)
    for result in read_legacy_pair([f"{folder}/qmgr0.dat", f"{folder}/qmgr1.dat"]):
        for job in result.jobs:
            writer.write_job(job)
    return stream.getvalue()


def main() -> None:
    os.chdir(ROOT)
    for path in write_legacy_samples(FOLDER):
        print(path.relative_to(ROOT))
    for version in VERSIONS:
        target = FOLDER / version / "qmgr.expected.jsonl"
        target.write_text(expected_jsonl(f"samples/legacy/{version}"), encoding="utf-8")
        print(target.relative_to(ROOT))


if __name__ == "__main__":
    main()
