"""Regenerate samples/synthetic/ (blobs and their expected outputs).

Run from the project root: python tools/make_samples.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bitsdb.forge.samples import write_samples

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "samples" / "synthetic"

if __name__ == "__main__":
    for blob in write_samples(FOLDER):
        for fmt in ("jsonl", "table"):
            out = blob.with_suffix(f".expected.{fmt}")
            subprocess.run([sys.executable, "-m", "bitsdb", "parse", "-f", fmt, "-o", str(out),
                            f"samples/synthetic/{blob.name}"], check=True, cwd=ROOT)
        print(blob.relative_to(ROOT))
