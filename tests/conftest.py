"""Shared fixtures: where the real samples live (beside the project, never inside it)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = PROJECT.parent / "shared" / "samples"
REAL = SHARED_SAMPLES / "real"


def real_sample(*parts: str) -> Path:
    """Path of a real sample; skips the test (with the reason) when it is not available."""
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample {path} not available (../shared/samples is absent in this checkout)")
    return path


@pytest.fixture
def artemis():
    return lambda name: real_sample("artemis", name)
