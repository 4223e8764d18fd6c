"""Read one artefact group with the existing readers and stamp evidence provenance on every record."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..stores import read_files
from ..sources.result import SourceError, SourceResult, internal_error
from ..model import Location, Provenance, keep_raw_strings
from ..text import repaired_path
from .locate import HIVE_PATHS, LOG_FOLDER, downloader_index
from .records import Artefact, ArtefactGroup
from .registry import hive_facts, resolve


def apply_hive_facts(group: ArtefactGroup) -> None:
    """Accounts, StateIndex and the SYSTEM hive's ComputerName (which beats any name taken from paths)."""
    facts = hive_facts(group.hives.get("SOFTWARE"), group.hives.get("SYSTEM"))
    group.accounts = dict(facts.accounts)
    group.state_index = facts.state_index
    group.warnings.extend(facts.warnings)
    if facts.computer_name:
        group.host, group.host_source = facts.computer_name, "SYSTEM hive"
        for artefact in group.artefacts:
            artefact.host, artefact.host_source = group.host, group.host_source


def read_group(group: ArtefactGroup, recover: bool = False) -> tuple[list[SourceResult], list[str]]:
    """(results, failures): one SourceResult per readable store file; failures are one line each."""
    apply_hive_facts(group)
    failures = list(group.errors)
    by_path = {str(Path(a.local_path)): a for a in group.stores if a.local_path}
    out = []
    for path, result in read_files(list(by_path), recover=recover, state_index=group.state_index):
        artefact = by_path[str(Path(path))]
        if isinstance(result, SourceError):
            failures.append(f"{artefact.display_path}: {result}")
            continue
        if isinstance(result, Exception):
            failures.append(internal_error(artefact.display_path, result))
            continue
        stamp(result, artefact, group)
        failures.extend(f"{artefact.display_path}: {problem}" for problem in result.errors)
        out.append(result)
    return out, failures


def _evidence_provenance(old, artefact: Artefact, group: ArtefactGroup, where=None) -> Provenance:
    base = {f.name: getattr(old, f.name) for f in dataclasses.fields(old)} if old is not None else {}
    evidence = dict(source_path=artefact.display_path, container=group.evidence, host=group.host,
                    host_source=group.host_source, partition=group.partition, snapshot=group.snapshot,
                    path_in_evidence=artefact.path_in_evidence, source_size=artefact.size,
                    file_times=artefact.file_times)
    base.update(evidence)
    # Raw bytes of the fields replaced here no longer apply; Provenance repairs the new values.
    base["raw_strings"] = {k: v for k, v in base.get("raw_strings", {}).items() if k not in evidence}
    base.setdefault("source_sha256", artefact.sha256)
    if base.get("locations") and where is not None:
        base["locations"] = [_evidence_location(place, where(place), group) for place in base["locations"]]
    return Provenance(**base)


def _evidence_location(place: Location, artefact: Artefact, group: ArtefactGroup) -> Location:
    """A place named by a private copy's path, named as the evidence names it."""
    if place.volume_offset is not None:          # already named on the image's volume
        return place
    named = dict(source_path=artefact.display_path, partition=group.partition, snapshot=group.snapshot,
                 path_in_evidence=artefact.path_in_evidence)
    return dataclasses.replace(place, **named,
                               raw_strings={k: v for k, v in place.raw_strings.items() if k not in named})


def stamp(result: SourceResult, artefact: Artefact, group: ArtefactGroup) -> None:
    """Name the source as the evidence names it, and resolve owner SIDs from the evidence's own hives.

    Records recovered from a companion (an ESE log beside the database) are named after that file.
    """
    result.path = artefact.display_path
    if artefact.sha256 and result.sha256 and artefact.sha256 != result.sha256:
        result.errors.append(f"copy differs from the evidence (sha256 {result.sha256} != {artefact.sha256})")
    artefact.sha256 = artefact.sha256 or result.sha256
    result.warnings.extend(group.warnings)
    group.warnings = []
    if group.evidence_kind == "file":
        return                     # a file named on its own: exactly what api.read gives (no evidence context)
    by_local = {repaired_path(str(Path(a.local_path))): a for a in group.artefacts if a.local_path}

    def where(provenance) -> Artefact:
        source = provenance.source_path if provenance is not None else None
        return by_local.get(repaired_path(str(Path(source))), artefact) if source else artefact

    stamped: set[int] = set()        # file records shared by several jobs are stamped once

    for job in result.jobs:
        job.provenance = _evidence_provenance(job.provenance, where(job.provenance), group, where)
        if job.owner_name is None:
            job.owner_name = resolve(job.owner_sid, group.accounts)
            keep_raw_strings(job)            # a name from the evidence's hive may not be valid Unicode
        if job.security is not None:
            for ace in [*job.security.dacl, *job.security.sacl]:
                if ace.sid_name is None:
                    ace.sid_name = resolve(ace.sid, group.accounts)
        for jf in job.files:
            if id(jf) not in stamped:
                stamped.add(id(jf))
                jf.provenance = _evidence_provenance(jf.provenance, where(jf.provenance), group)
    for jf in result.orphan_files:
        jf.provenance = _evidence_provenance(jf.provenance, where(jf.provenance), group)


def read_group_logs(group: ArtefactGroup) -> tuple[list, list, list[str]]:
    """(LogReadResults, ServiceConfigs, failures) of the group's event logs and SYSTEM hive.

    Each record's provenance names the log as the evidence names it (table = channel,
    record_index = EventRecordID); a damaged log still gives every record that parsed.
    """
    logs, services, failures = [], [], []
    if not group.event_logs and not group.hives and all(a.role != "hive" for a in group.artefacts):
        return logs, services, failures        # a plain store file: nothing of this to load or read
    from ..sources.events import read_log
    from ..sources.result import sha256_of
    from ..sources.service import hive_kind, service_config

    for artefact in group.event_logs:
        try:
            log = read_log(artefact.local_path, display=artefact.display_path)
            log.sha256 = artefact.sha256 = artefact.sha256 or sha256_of(artefact.local_path)
        except SourceError as exc:
            failures.append(f"{artefact.display_path}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one bad log never stops the batch
            failures.append(internal_error(artefact.display_path, exc))
            continue
        if group.evidence_kind != "file":
            log.host, log.container = group.host, group.evidence
            for record in [*log.events, *log.processes]:
                record.provenance = _evidence_provenance(record.provenance, artefact, group)
        for record in [*log.events, *log.processes]:
            record.provenance.source_sha256 = log.sha256
        failures.extend(f"{artefact.display_path}: {problem}" for problem in log.errors)
        logs.append(log)
    hives = dict(group.hives)
    shown = {label: _hive_display(group, label, path) for label, path in hives.items()}
    for artefact in (a for a in group.artefacts if a.role == "hive"):
        try:
            label = hive_kind(artefact.local_path)
        except SourceError as exc:
            failures.append(f"{artefact.display_path}: {exc}")
            continue
        if label is None:
            failures.append(f"{artefact.display_path}: a registry hive, but neither SYSTEM nor SOFTWARE")
            continue
        hives[label], shown[label] = artefact.local_path, artefact.display_path
    if hives.get("SYSTEM"):
        try:
            config = service_config(hives["SYSTEM"], hives.get("SOFTWARE"), display=shown)
        except SourceError as exc:
            failures.append(f"{shown['SYSTEM']}: {exc}")
            config = None
        except Exception as exc:  # noqa: BLE001
            failures.append(internal_error(shown["SYSTEM"], exc))
            config = None
        if config is not None:
            if group.evidence_kind != "file":
                config.provenance.host, config.provenance.host_source = group.host, group.host_source
                config.provenance.container = group.evidence
                config.provenance.partition, config.provenance.snapshot = group.partition, group.snapshot
            services.append(config)
    elif any(a.role == "hive" for a in group.artefacts) and hives.get("SOFTWARE"):
        failures.append(f"{shown['SOFTWARE']}: a SOFTWARE hive alone gives no service facts (add the SYSTEM hive)")
    return logs, services, failures


def _hive_display(group: ArtefactGroup, label: str, local: str) -> str:
    """The hive as the evidence names it (its own path for folders, `item!volume/Windows/...` otherwise)."""
    if group.evidence_kind in ("folder", "file"):
        return local
    parts = [p for p in group.folder.split("/") if p]
    index = downloader_index(parts)
    if index is None and [p.lower() for p in parts[-len(LOG_FOLDER):]] == [p.lower() for p in LOG_FOLDER]:
        index = len(parts) - len(LOG_FOLDER)
    root = parts[:index] if index is not None else []
    inner = "/".join([*root, *HIVE_PATHS[label]])
    volume = "/".join(part for part in (group.partition, group.snapshot) if part)
    return f"{group.evidence}!{volume + '/' if volume else ''}{inner}"

