"""Rebuild samples/demo/ from samples/demo/demo.yaml: qmgr.db, edb.log and the expected outputs.

Run from anywhere; paths inside the outputs are relative to the project root
(`samples/demo/...`), as they are when the commands are run from there:

    python tools/make_demo.py            # rewrite the files
    python tools/make_demo.py --check    # exit 1 if anything would change
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from bitsdb.forge.spec import forge, load_spec, parse_spec  # noqa: E402

DEMO = Path("samples/demo")
SPEC = DEMO / "demo.yaml"
OUTPUTS = {
    "expected.parse.jsonl": ["parse", "-f", "jsonl", "--recover", str(DEMO)],
    "expected.scan.jsonl": ["scan", "-f", "jsonl", str(DEMO)],
}


def build_store(folder: Path) -> list[Path]:
    """Forge the demo spec into `folder` (qmgr.db + edb.log); returns the files written."""
    report = forge(parse_spec(load_spec(ROOT / SPEC)), folder / "qmgr.db")
    return [report.database] + ([report.log] if report.log else [])


def portable(text: str) -> str:
    """Make resolved paths relative to the project root, so the files match in any checkout."""
    import json

    prefix = json.dumps(str(ROOT) + os.sep)[1:-1]
    return text.replace(prefix, "")


def run_outputs() -> dict[str, str]:
    """The expected outputs, produced by the CLI from the project root on samples/demo."""
    from bitsdb.cli import cli

    previous = os.getcwd()
    os.chdir(ROOT)
    try:
        out = {}
        for name, args in OUTPUTS.items():
            result = CliRunner().invoke(cli, args, catch_exceptions=False)
            if result.exit_code != 0:
                raise SystemExit(f"bitsdb {' '.join(args)} exited {result.exit_code}: {result.output[-300:]}")
            out[name] = portable(result.stdout if hasattr(result, "stdout") else result.output)
        return out
    finally:
        os.chdir(previous)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="Compare instead of writing.")
    args = parser.parse_args()
    demo = ROOT / DEMO
    with tempfile.TemporaryDirectory() as scratch:
        built = {path.name: path.read_bytes() for path in build_store(Path(scratch))}
    changed = [name for name, data in built.items()
               if not (demo / name).is_file() or (demo / name).read_bytes() != data]
    if args.check:
        outputs = run_outputs()
        changed += [name for name, text in outputs.items()
                    if not (demo / name).is_file() or (demo / name).read_text(encoding="utf-8") != text]
        print("up to date" if not changed else "would change: " + ", ".join(changed))
        return 1 if changed else 0
    for name, data in built.items():
        (demo / name).write_bytes(data)
    for name, text in run_outputs().items():    # after the store is in place
        (demo / name).write_text(text, encoding="utf-8")
    print(f"wrote {', '.join(sorted(built))} and {', '.join(OUTPUTS)} in {DEMO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
