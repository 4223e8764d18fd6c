"""Rewrite bitsdb/formats/fastparse.py from the construct schemas (bitsdb/formats/codegen.py).

    python tools/gen_fastparse.py            # rewrite the file
    python tools/gen_fastparse.py --check    # exit 1 if it would change
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bitsdb.formats.codegen import generate  # noqa: E402

TARGET = ROOT / "bitsdb" / "formats" / "fastparse.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="Compare instead of writing.")
    args = parser.parse_args()
    source = generate()
    current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else None
    if args.check:
        print("up to date" if current == source else f"would change: {TARGET.relative_to(ROOT)}")
        return 0 if current == source else 1
    TARGET.write_text(source, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
