"""Generators of real on-disk artefacts (ESE databases) for tests and benchmarks."""

from bitsdb.forge.ese import (
    ColumnSpec,
    IndexSpec,
    Remnant,
    TableData,
    WriteReport,
    write_ese_database,
    write_qmgr_database,
)

__all__ = [
    "ColumnSpec",
    "IndexSpec",
    "Remnant",
    "TableData",
    "WriteReport",
    "write_ese_database",
    "write_qmgr_database",
]
