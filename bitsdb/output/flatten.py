"""Nested record dicts -> flat key/value pairs (Timesketch attributes, CSV cells)."""

from __future__ import annotations

from typing import Any


def flatten(value: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """`{"a": {"b": 1}, "c": [{"d": 2}]}` -> `{"a_b": 1, "c_0_d": 2}`; lists of scalars stay lists."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{prefix}_{key}" if prefix else str(key), out)
    elif isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        for index, item in enumerate(value):
            flatten(item, f"{prefix}_{index}", out)
    else:
        out[prefix] = value
    return out
