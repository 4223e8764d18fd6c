"""Command line: the click group and `main`; one module per command, shared options in `common`.

`click` is imported nowhere outside this package. Commands are imported only when used, so
that `bitsdb parse` does not pay for the rules engine, the carver or the writer of databases.
Exit status: 0 all inputs read, 1 at least one input could not be read (the others are still
fully processed), 2 usage error, 3 `scan --fail-on` met, 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__

#: command name -> module of bitsdb.cli defining `command`
COMMANDS = {
    "parse": "parse",
    "timeline": "timeline",
    "scan": "scan",
    "rules": "rules",
    "carve": "carve",
    "forge": "forge",
    "report": "report",
}


class LazyGroup(click.Group):
    """Each command's module is imported when that command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            self.add_command(importlib.import_module(f"{__name__}.{COMMANDS[name]}").command, name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bitsdb")
def cli() -> None:
    """Offline forensic parser for the Windows BITS job database (MITRE ATT&CK T1197).

    Reads qmgr.db (Windows 10/11, Server 2016+), legacy qmgr0.dat/qmgr1.dat state
    files (Windows XP-8.1, early Windows 10), raw Jobs/Files records and folders
    holding them. Evidence is opened read-only and never modified.
    """


def main() -> None:
    from .common import Interrupted, install_signal_handlers, say

    install_signal_handlers()
    try:
        cli(prog_name="bitsdb")
    except Interrupted as exc:
        # Temporary folders are gone (finally blocks ran on the way here); one line, then 128 + signal.
        say(f"interrupted by {exc.name}" + (f"; {exc.note}" if exc.note else ""))
        sys.exit(exc.status)
    except Exception as exc:  # noqa: BLE001 - no traceback reaches a user who did not ask for one
        if "--debug" in sys.argv:
            raise
        say(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", "error")
        sys.exit(1)
