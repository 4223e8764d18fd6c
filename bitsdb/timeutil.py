"""FILETIME <-> text. One place for the conventions: UTC, explicit offset, 7 fractional digits."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_MAX_FILETIME = 2650467743999999999  # 9999-12-31, the last value datetime can hold


def filetime_to_datetime(value: int | None) -> datetime | None:
    """None for 0 ("not set") and for values datetime cannot represent."""
    if not value or not 0 < value <= _MAX_FILETIME:
        return None
    return _EPOCH + timedelta(microseconds=value // 10)


_TICKS_PER_DAY = 864_000_000_000
_DATES: dict[int, str] = {}


def filetime_to_iso(value: int | None) -> str | None:
    """ISO 8601 UTC with 7 fractional digits: 2022-12-21T02:18:03.1204650+00:00.

    Hot in every output: the date text is cached per day, the time computed with integers.
    """
    if not value or not 0 < value <= _MAX_FILETIME:
        return None
    days, ticks = divmod(value, _TICKS_PER_DAY)
    date = _DATES.get(days)
    if date is None:
        if len(_DATES) >= 65536:
            _DATES.clear()
        date = _DATES[days] = (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")
    seconds, fraction = divmod(ticks, 10_000_000)
    return f"{date}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:07d}+00:00"


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
