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

# Spec-driven forging (`bitsdb forge`) and large test databases; imported on first use so that
# loading the CLI (which registers `forge`) stays cheap.
_LAZY = {
    **{name: "bitsdb.forge.spec" for name in ("ForgeReport", "ForgeSpec", "PlantedRecord", "SpecError", "forge",
                                             "load_spec", "parse_spec", "reader_safe_chunk_size",
                                             "spec_from_jobs")},
    **{name: "bitsdb.forge.scale" for name in ("ScaleReport", "scale_jobs", "write_scale_database")},
}
__all__ += list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
