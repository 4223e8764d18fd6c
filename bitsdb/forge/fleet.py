"""A fleet of collections for report tests and benchmarks: a few forged stores laid out as many hosts.

Each host is a KAPE-style collection folder whose Downloader folder holds hard links (copies where
links are not possible) to one of a few forged stores, so 1,000 hosts cost the disk space of a
handful of databases. One store carries hostile strings (markup and script in the job name, URL,
paths and notify command), and one host's folder name is hostile too, so a report that treats
evidence text as markup shows it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .evidence import DOWNLOADER
from .scale import write_scale_database
from .spec import forge

HOSTILE_JOB_NAME = "<script>alert(1)</script>"
HOSTILE_URL = 'http://198.51.100.7/a"><img src=x onerror=alert(2)>.exe'
HOSTILE_LOCAL = r'C:\Users\Public\"><svg onload=alert(3)>.exe'
HOSTILE_HOST = '"><img src=x onerror=alert(4)>'
STAMP = "2024-05-01T101500"


def hostile_spec() -> dict:
    """A forge spec of one store whose strings are markup: a SYSTEM job with a notify command."""
    return {
        "bitsdb_forge": 1,
        "jobs": [{
            "job_id": "0badc0de-0000-4000-8000-00000000a11e",
            "display_name": HOSTILE_JOB_NAME,
            "description": "</script><script>alert(5)</script>",
            "state": "TRANSFERRED",
            "owner_sid": "S-1-5-18",
            "security": {"owner_integrity_rid": 0x4000},
            "creator_image": r"C:\Windows\System32\bitsadmin.exe",
            "notify_program": r"C:\Windows\System32\cmd.exe",
            "notify_parameters": '/c "<b onmouseover=alert(6)>x</b>" & ' + HOSTILE_LOCAL,
            "notify_flags": 3,
            "creation_time": "2025-03-01T10:00:00.1234567+00:00",
            "modification_time": "2025-03-01T10:05:00.7654321+00:00",
            "modification_time_2": "2025-03-01T10:05:00.7654321+00:00",
            "completion_time": "2025-03-01T10:05:00.7654321+00:00",
            "inactivity_base_time": "2025-03-01T10:05:00.7654321+00:00",
            "expiration_time": "2025-05-30T10:05:00.7654321+00:00",
            "files": [{"file_id": "0badc0de-0000-4000-8000-00000000f11e", "remote_name": HOSTILE_URL,
                       "local_name": HOSTILE_LOCAL, "temp_name": r"C:\Users\Public\BIT1.tmp",
                       "bytes_transferred": 4096, "bytes_total": 4096, "drive": "C:\\",
                       "volume": "\\\\?\\Volume{00000000-0000-4000-8000-000000000001}\\"}],
        }],
    }


def forge_fleet_stores(folder: str | Path, scale_stores: int = 3, jobs_per_store: int = 8) -> list[Path]:
    """The stores a fleet is made of: the hostile one and `scale_stores` varied ones (forge.scale)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hostile = folder / "hostile" / "qmgr.db"
    hostile.parent.mkdir(exist_ok=True)
    forge(hostile_spec(), hostile)
    stores = [hostile]
    for seed in range(1, scale_stores + 1):
        target = folder / f"scale{seed}" / "qmgr.db"
        target.parent.mkdir(exist_ok=True)
        write_scale_database(target, jobs=jobs_per_store, files_per_job=2, seed=seed)
        stores.append(target)
    return stores


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def fleet(base: str | Path, hosts: int, stores: list[Path], hostile_host: int | None = None) -> Path:
    """`hosts` collection folders under `base` (HOST00000 …): host i holds stores[i % len(stores)] with
    the files beside it (edb.log …); the folder of host `hostile_host` is named HOSTILE_HOST."""
    root = Path(base)
    root.mkdir(parents=True, exist_ok=True)
    for index in range(hosts):
        name = HOSTILE_HOST if index == hostile_host else f"HOST{index:05d}"
        store = stores[index % len(stores)]
        folder = root.joinpath(f"{STAMP}_{name}", "C", *DOWNLOADER)
        folder.mkdir(parents=True, exist_ok=True)
        for item in sorted(store.parent.iterdir()):
            if item.is_file():
                _link(item, folder / item.name)
    return root
