"""Facts read offline from the evidence's own registry hives: accounts, host name, BITS StateIndex.

Library: regipy (MIT, pure Python, maintained; its only dependencies are construct,
which bitsdb already uses, inflection and pytz). python-registry has had no release
since 2019; dfwinreg needs the native libregf binding and a dfvfs-shaped file system.
Names are never resolved from the analyst's machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..model import WELL_KNOWN_SIDS
from ..sources.detect import file_stamp
from ..sources.result import SourceError
from ..sources.service import open_hive
from ..text import repaired

PROFILE_LIST = r"\Microsoft\Windows NT\CurrentVersion\ProfileList"
BITS_KEY = r"\Microsoft\Windows\CurrentVersion\BITS"
COMPUTER_NAME = r"\Control\ComputerName\ComputerName"

#: Service and built-in SIDs whose names do not depend on the machine.
EXTRA_WELL_KNOWN = {
    "S-1-1-0": "Everyone",
    "S-1-5-6": "SERVICE",
    "S-1-5-11": "Authenticated Users",
    "S-1-5-32-545": "Users",
    "S-1-5-80-0": "ALL SERVICES",
}
_PROFILE_NAME = re.compile(r"[\\/]([^\\/]+)[\\/]*$")


@dataclass
class HiveFacts:
    accounts: dict[str, str] = field(default_factory=dict)   # SID -> name (profile folder name for users)
    computer_name: str | None = None
    state_index: int | None = None
    warnings: list[str] = field(default_factory=list)


def well_known_name(sid: str | None) -> str | None:
    if sid is None:
        return None
    return WELL_KNOWN_SIDS.get(sid) or EXTRA_WELL_KNOWN.get(sid)


def _value(key, name: str):
    try:
        return key.get_value(name)
    except Exception:  # noqa: BLE001 - a missing or unreadable value is just absent
        return None


def _software_facts(path: str, facts: HiveFacts) -> None:
    hive = open_hive(path)
    try:
        profiles = hive.get_key(PROFILE_LIST)
    except Exception:  # noqa: BLE001 - regipy raises its own NotFound types
        profiles = None
    if profiles is not None:
        for sub in profiles.iter_subkeys():
            image_path = _value(sub, "ProfileImagePath")
            if not isinstance(image_path, str) or not sub.name.upper().startswith("S-1-"):
                continue
            match = _PROFILE_NAME.search(image_path.strip())
            if match:
                facts.accounts[repaired(sub.name.upper())] = repaired(match.group(1))
    try:
        index = _value(hive.get_key(BITS_KEY), "StateIndex")
    except Exception:  # noqa: BLE001
        index = None
    if isinstance(index, int):
        facts.state_index = index


def _system_facts(path: str, facts: HiveFacts) -> None:
    hive = open_hive(path)
    current = None
    try:
        current = _value(hive.get_key(r"\Select"), "Current")
    except Exception:  # noqa: BLE001
        pass
    sets = [f"ControlSet{current:03d}"] if isinstance(current, int) else []
    for control_set in sets + ["ControlSet001", "ControlSet002"]:
        try:
            name = _value(hive.get_key(f"\\{control_set}{COMPUTER_NAME}"), "ComputerName")
        except Exception:  # noqa: BLE001
            continue
        if isinstance(name, str) and name.strip():
            facts.computer_name = repaired(name.strip())
            return


def hive_facts(software: str | None, system: str | None) -> HiveFacts:
    """Accounts, StateIndex and ComputerName from local hive files (cached per process; never raises)."""
    facts = _hive_facts(file_stamp(software), file_stamp(system))
    return HiveFacts(dict(facts.accounts), facts.computer_name, facts.state_index, list(facts.warnings))


@lru_cache(maxsize=64)
def _hive_facts(software_key: tuple | None, system_key: tuple | None) -> HiveFacts:
    """Cached on path + size + mtime + inode, so a changed or replaced hive is read again."""
    software = software_key[0] if software_key else None
    system = system_key[0] if system_key else None
    facts = HiveFacts()
    if not software and not system:
        return facts
    try:
        import regipy  # noqa: F401
    except ImportError:
        facts.warnings.append("registry hives found but not read: install regipy (pip install regipy) "
                              "to resolve account names, host name and StateIndex")
        return facts
    for label, path, reader in (("SOFTWARE", software, _software_facts), ("SYSTEM", system, _system_facts)):
        if not path:
            continue
        try:
            reader(path, facts)
        except Exception as exc:  # noqa: BLE001 - a damaged hive costs names, never the BITS records
            problem = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {str(exc)[:120]}"
            facts.warnings.append(f"{label} hive unreadable ({problem})")
    return facts


def resolve(sid: str | None, accounts: dict[str, str]) -> str | None:
    """A SID's name from the evidence's own ProfileList, else the well-known table."""
    if sid is None:
        return None
    return accounts.get(sid.upper()) or well_known_name(sid)
