"""`bitsdb forge SPEC -o qmgr.db`: write a test database from a spec of jobs and files."""

from __future__ import annotations

from pathlib import Path

import click

from .common import EXIT_USAGE, same_file


def _fail(message: str) -> None:
    click.echo(f"bitsdb: error: {message}", err=True)
    raise click.exceptions.Exit(EXIT_USAGE)


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
        _fail(f"{output}: refusing to overwrite the spec itself")
    try:
        spec = parse_spec(load_spec(spec_file))
    except SpecError as exc:
        _fail(f"{spec_path}: {exc}")
    log = out.parent / spec.log_name
    targets = [out] + ([log] if any(v.stored_in == "log" for v in spec.planted) else [])
    for target in targets:
        if same_file(spec_file, target):
            _fail(f"{target}: refusing to overwrite the spec itself")
        if target.exists() and not force:
            _fail(f"{target}: already exists (use --force to overwrite)")
        if target.exists() and not target.is_file():
            _fail(f"{target}: not a regular file")
    if log not in targets and log.exists():
        click.echo(f"bitsdb: warning: {log} is left as it is (this spec stores nothing there); "
                   "recovery will scan it too", err=True)
    if not out.parent.is_dir():
        _fail(f"{output}: folder {out.parent} does not exist")
    try:
        report = forge(spec, out)
    except SpecError as exc:
        _fail(f"{spec_path}: {exc}")
    except OSError as exc:
        _fail(f"{output}: cannot write ({exc.strerror or exc})")
    except ValueError as exc:                       # the ESE writer's own limits (e.g. a record over a page)
        _fail(f"{spec_path}: cannot lay out the database ({' '.join(str(exc).split())[:200]})")
    click.echo(f"wrote {report.database}: {len(spec.jobs)} job(s), "
               f"{sum(len(j.files) for j in spec.jobs)} file(s), {report.page_count} pages, "
               f"LV chunk size {report.lv_chunk_size}")
    for item in report.planted:
        click.echo(f"planted {item.kind} {item.record_id} in {item.path} at offset {item.offset} (0x{item.offset:x})"
                   + (" [deleted]" if item.deleted else ""))
