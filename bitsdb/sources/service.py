"""The BITS service's configuration, read offline from the SYSTEM hive (what `sc qc bits` shows), and the
BITS group policies of the SOFTWARE hive (`Policies\\Microsoft\\Windows\\BITS`).

Windows' defaults, for the rules: ImagePath `%SystemRoot%\\System32\\svchost.exe -k netsvcs` (`-p` from
Windows 10 1703), ServiceDll `%SystemRoot%\\System32\\qmgr.dll`, account LocalSystem, start type
automatic (delayed) or manual. A policy `JobInactivityTimeout` (days) replaces the 90-day expiry.
Library: regipy (see bitsdb/evidence/registry.py for why).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..model import Provenance, ServiceConfig
from ..timeutil import filetime_to_datetime
from .detect import file_stamp
from .result import SourceError

SERVICE_KEY = r"\Services\BITS"
POLICY_KEY = r"\Policies\Microsoft\Windows\BITS"
START_NAMES = {0: "BOOT", 1: "SYSTEM", 2: "AUTO", 3: "MANUAL", 4: "DISABLED"}
DEFAULT_INACTIVITY_DAYS = 90


def open_hive(path: str):
    """regipy's view of a hive file, which reads the whole file into memory (a SOFTWARE hive can be
    100 MB): the last two opened are kept, so one host's hives are read once for the account names
    (evidence.registry), the service configuration and the hive's kind. SourceError when unreadable."""
    return _opened(file_stamp(path))


@lru_cache(maxsize=2)
def _opened(stamp: tuple):
    import logging

    try:
        from regipy.registry import RegistryHive
    except ImportError:
        raise SourceError("registry hives need regipy: pip install regipy") from None
    logging.getLogger("regipy").setLevel(logging.ERROR)
    try:
        return RegistryHive(stamp[0])
    except Exception as exc:  # noqa: BLE001 - regipy raises many types for a bad hive
        raise SourceError(f"not a readable registry hive ({type(exc).__name__}: {str(exc)[:120]})") from None


def _key(hive, path: str):
    try:
        return hive.get_key(path)
    except Exception:  # noqa: BLE001 - regipy's own NotFound types
        return None


def _values(key) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if key is None:
        return out
    try:
        for value in key.iter_values():
            out[value.name] = value.value
    except Exception:  # noqa: BLE001 - a damaged value list costs those values only
        pass
    return out


def _lookup(values: dict[str, Any], name: str) -> Any:
    for key, value in values.items():
        if key.lower() == name.lower():
            return value
    return None


def _last_written(key) -> str | None:
    """The key's last-write time; None when unset or past what a datetime holds (a crafted hive)."""
    try:
        when = filetime_to_datetime(int(key.header.last_modified))
    except Exception:  # noqa: BLE001
        return None
    return None if when is None else when.isoformat()


def hive_kind(path: str) -> str | None:
    """'SYSTEM' or 'SOFTWARE' by what the hive holds; None for other hives."""
    hive = open_hive(path)
    if _key(hive, r"\Select") is not None and _key(hive, r"\ControlSet001") is not None:
        return "SYSTEM"
    if _key(hive, r"\Microsoft\Windows\CurrentVersion") is not None:
        return "SOFTWARE"
    return None


def _service(hive, control_set: str) -> dict[str, Any] | None:
    key = _key(hive, f"\\{control_set}{SERVICE_KEY}")
    if key is None:
        return None
    values = _values(key)
    parameters = _values(_key(hive, f"\\{control_set}{SERVICE_KEY}\\Parameters"))
    start = _lookup(values, "Start")
    return {"start": start if isinstance(start, int) else None,
            "image_path": _text(_lookup(values, "ImagePath")),
            "service_dll": _text(_lookup(parameters, "ServiceDll") or _lookup(values, "ServiceDll")),
            "object_name": _text(_lookup(values, "ObjectName")),
            "service_type": _int(_lookup(values, "Type")),
            "delayed_autostart": bool(_lookup(values, "DelayedAutostart")) if _lookup(values, "DelayedAutostart")
            is not None else None,
            "last_written": _last_written(key)}


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def service_config(system: str | None, software: str | None = None,
                   display: dict[str, str] | None = None) -> ServiceConfig | None:
    """The BITS service of the current control set (and every other one), with the SOFTWARE policies.

    None when there is no SYSTEM hive; raises SourceError when the hive cannot be read at all.
    `display` maps SYSTEM/SOFTWARE to the names outputs use for the hive files.
    """
    if not system:
        return None
    config = _service_config(file_stamp(system), file_stamp(software))
    config = ServiceConfig.from_dict(config.to_dict())          # a private copy (cached object stays clean)
    shown = (display or {}).get("SYSTEM", system)
    if config.provenance is not None:
        config.provenance.source_path = shown
    return config


@lru_cache(maxsize=32)
def _service_config(system_key: tuple, software_key: tuple | None) -> ServiceConfig:
    hive = open_hive(system_key[0])
    selected = _values(_key(hive, r"\Select"))
    current = _lookup(selected, "Current")
    sets = []
    root = _key(hive, "\\")
    try:
        sets = sorted(sub.name for sub in root.iter_subkeys() if sub.name.lower().startswith("controlset"))
    except Exception:  # noqa: BLE001
        sets = ["ControlSet001", "ControlSet002"]
    chosen = f"ControlSet{current:03d}" if isinstance(current, int) else (sets[0] if sets else None)
    config = ServiceConfig(control_set=chosen,
                           provenance=Provenance(source_path=system_key[0], source_kind="registry hive",
                                                 table=f"{chosen}{SERVICE_KEY}" if chosen else None))
    facts = _service(hive, chosen) if chosen else None
    if facts is None:
        config.warnings.append(f"no {SERVICE_KEY.strip(chr(92))} key in {chosen or 'any control set'}")
    else:
        config.start = facts["start"]
        config.start_name = START_NAMES.get(facts["start"]) if facts["start"] is not None else None
        config.image_path = facts["image_path"]
        config.service_dll = facts["service_dll"]
        config.object_name = facts["object_name"]
        config.service_type = facts["service_type"]
        config.delayed_autostart = facts["delayed_autostart"]
        config.key_last_written = facts["last_written"]
    for name in sets:
        if name.lower() == (chosen or "").lower():
            continue
        other = _service(hive, name)
        if other is not None:
            other["start_name"] = START_NAMES.get(other["start"]) if other["start"] is not None else None
            config.other_control_sets[name] = other
    if software_key:
        try:
            policy_hive = open_hive(software_key[0])
            config.policies = {k: v for k, v in _values(_key(policy_hive, POLICY_KEY)).items()
                               if isinstance(v, (int, str))}
        except SourceError as exc:
            config.warnings.append(f"SOFTWARE hive: {exc}")
        timeout = _lookup(config.policies, "JobInactivityTimeout")
        if isinstance(timeout, int) and timeout > 0:
            config.job_inactivity_timeout_days = timeout
    return config
