"""Everything that writes artefacts, for tests, benchmarks, samples and detection engineering.

    ese, ese_tree  real ESE databases (qmgr.db); spec: job specs -> qmgr.db + planted history
    scale     large databases for benchmarks        legacy    qmgr0.dat / qmgr1.dat state files
    samples   the project's sample records          carving   noisy images with records at known offsets
    evidence  collection trees, zips, tiny registry hives (test and benchmark fixtures)

Nothing here is imported when evidence is read: the parser must not pay for the writers.
"""

__all__: list[str] = []

# Imported on first use.
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
