"""Generators of real on-disk artefacts (ESE databases) for tests and benchmarks."""

__all__: list[str] = []

# Imported on first use: the parser reads ESE constants from bitsdb.forge.ese_format and must not
# pay for the writer, the spec loader or the scale generator.
_LAZY = {
    **{name: "bitsdb.forge.ese" for name in ("ColumnSpec", "IndexSpec", "Remnant", "TableData", "WriteReport",
                                            "write_ese_database", "write_qmgr_database")},
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
