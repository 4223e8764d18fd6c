"""FILETIME <-> text. One place for the conventions: UTC, explicit offset, 7 fractional digits."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_MAX_FILETIME = 2650467743999999999  # 9999-12-31, the last value datetime can hold


def filetime_to_datetime(value: int | None) -> datetime | None:
    """None for 0 ("not set") and for values datetime cannot represent."""
    if not value or value > _MAX_FILETIME:
        return None
    return _EPOCH + timedelta(microseconds=value // 10)


def filetime_to_iso(value: int | None) -> str | None:
    """ISO 8601 UTC with 7 fractional digits: 2022-12-21T02:18:03.1204650+00:00."""
    when = filetime_to_datetime(value)
    if when is None:
        return None
    return f"{when:%Y-%m-%dT%H:%M:%S}.{value % 10_000_000:07d}+00:00"


def filetime_to_ez(value: int | None) -> str:
    """EZ-tools CSV style: yyyy-MM-dd HH:mm:ss.fffffff (UTC), empty when not set."""
    when = filetime_to_datetime(value)
    if when is None:
        return ""
    return f"{when:%Y-%m-%d %H:%M:%S}.{value % 10_000_000:07d}"


def datetime_to_filetime(when: datetime) -> int:
    """Exact for whole microseconds; used by builders and tests."""
    delta = when - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def iso_to_filetime(text: str) -> int:
    """Inverse of filetime_to_iso (keeps all 7 digits)."""
    main, _, rest = text.partition(".")
    digits = rest[:7] if rest else "0"
    base = datetime.fromisoformat(main).replace(tzinfo=timezone.utc)
    return datetime_to_filetime(base) + int(digits.ljust(7, "0"))
