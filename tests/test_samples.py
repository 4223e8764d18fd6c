"""The committed samples are exactly what the code builds, and parse to the committed outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bitsdb.forge.samples import SAMPLES, persistence_job
from bitsdb.decode import decode_job_blob

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "samples" / "synthetic"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_bytes_are_rebuilt_identically(name):
    assert (FOLDER / name).read_bytes() == SAMPLES[name]()


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_sample_parses_to_the_committed_output(name, fmt):
    expected = (FOLDER / name).with_suffix(f".expected.{fmt}").read_text(encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "bitsdb", "parse", "-f", fmt, f"samples/synthetic/{name}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected


def test_sample_job_is_what_the_spec_says():
    job, jf = persistence_job()
    decoded = decode_job_blob((FOLDER / "persistence_job.blob").read_bytes())
    assert decoded.notify_program == job.notify_program and decoded.owner_name == "SYSTEM"
    assert decoded.file_ids == [jf.file_id] and not decoded.partial
