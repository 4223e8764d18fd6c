"""`bitsdb forge SPEC -o qmgr.db`: write a test database from a spec of jobs and files."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..text import one_line
from .common import DEFER_SIGNALS, same_file, say, usage_error


@click.command("forge")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The qmgr.db to write (its edb.log, if the spec stores versions there, goes beside it).")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
def command(spec_path: str, output: str, force: bool) -> None:
    """Write a synthetic BITS qmgr.db from SPEC (YAML/JSON jobs and files, the parser's output shape).

    Older versions (`history`) and deleted jobs (`deleted`) are planted in free
    pages or in an edb.log beside the output, and their offsets printed, so that
    `bitsdb parse --recover` can be checked against them. Exit status 2 when the
    spec is invalid or the output would overwrite something.
    """
    from ..forge.spec import SpecError, forge, load_spec, parse_spec   # here: keeps `bitsdb --help` fast

    spec_file, out = Path(spec_path), Path(output)
    if same_file(spec_file, out):
        usage_error(f"{output}: refusing to overwrite the spec itself")
    try:
        spec = parse_spec(load_spec(spec_file))
    except SpecError as exc:
        usage_error(f"{spec_path}: {exc}")
    log = out.parent / spec.log_name
    targets = [out] + ([log] if any(v.stored_in == "log" for v in spec.planted) else [])
    for target in targets:
        if same_file(spec_file, target):
            usage_error(f"{target}: refusing to overwrite the spec itself")
        if target.exists() and not force:
            usage_error(f"{target}: already exists (use --force to overwrite)")
        if target.exists() and not target.is_file():
            usage_error(f"{target}: not a regular file")
    if log not in targets and log.exists():
        say(f"{log} is left as it is (this spec stores nothing there); recovery will scan it too", "warning")
    if not out.parent.is_dir():
        usage_error(f"{output}: folder {out.parent} does not exist")
    report = _forge_beside(forge, spec, out, spec_path, output)
    click.echo(one_line(f"wrote {report.database}: {len(spec.jobs)} job(s), "
                        f"{sum(len(j.files) for j in spec.jobs)} file(s), {report.page_count} pages, "
                        f"LV chunk size {report.lv_chunk_size}"))
    for item in report.planted:
        click.echo(one_line(f"planted {item.kind} {item.record_id} in {item.path} at offset {item.offset} "
                            f"(0x{item.offset:x})" + (" [deleted]" if item.deleted else "")))


def _forge_beside(forge, spec, out: Path, spec_path: str, output: str):
    """Write into a private folder beside the output, then rename each file into place: an interrupted or
    failed forge leaves no half-written database."""
    import shutil
    import tempfile
    from dataclasses import replace

    from ..forge.spec import SpecError

    try:
        work = Path(tempfile.mkdtemp(prefix=".bitsdb-forge-", dir=out.parent))
    except OSError as exc:
        usage_error(f"{output}: cannot write ({exc.strerror or exc})")
    try:
        try:
            report = forge(spec, work / out.name)
        except SpecError as exc:
            usage_error(f"{spec_path}: {exc}")
        except OSError as exc:
            usage_error(f"{output}: cannot write ({exc.strerror or exc})")
        except ValueError as exc:                       # the ESE writer's own limits (e.g. a record over a page)
            usage_error(f"{spec_path}: cannot lay out the database ({' '.join(str(exc).split())[:200]})")
        placed = {work / out.name: out}
        if report.log is not None:
            placed[report.log] = out.parent / report.log.name
        with DEFER_SIGNALS:
            for temp, final in placed.items():
                os.replace(temp, final)
        return replace(report, database=out, log=placed.get(report.log),
                       planted=[replace(p, path=placed.get(p.path, p.path)) for p in report.planted])
    finally:
        shutil.rmtree(work, ignore_errors=True)
