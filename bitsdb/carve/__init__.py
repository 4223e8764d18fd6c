"""Recovery of deleted and historical BITS records by carving (FORMAT.md §9)."""
