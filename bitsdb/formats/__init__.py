"""Construct schemas, one module per on-disk structure (mirrors docs/FORMAT.md)."""
