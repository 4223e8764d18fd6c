"""The fields rules can name: one flat view of a Job (and of each of its files).

Path-like fields hold the normalised form (see `paths.normalise_path`); findings quote
the original value of the field it came from. The registry below is the reference
`docs/RULES.md` is generated from, and a rule naming a field not in it does not load.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ..timeutil import filetime_to_iso
from ..model import Job, JobFile, NotifyFlags, SecurityFlags, flag_names
from . import paths

FILETIME_PER_DAY = 864_000_000_000
NOTIFY_FIRE_MASK = NotifyFlags.JOB_TRANSFERRED | NotifyFlags.JOB_ERROR


@dataclass(frozen=True)
class FieldSpec:
    path: str
    kind: str            # str | path | int | float | bool | list (path: normalised, needles too)
    description: str
    shown_as: str | None = None     # the raw field findings quote instead of the normalised value


JOB_FIELDS = [
    FieldSpec("job_id", "str", "job GUID"),
    FieldSpec("display_name", "str", "job display name (as stored)"),
    FieldSpec("description", "str", "job description (as stored)"),
    FieldSpec("name_random", "bool", "the display name is one token that reads like generated noise "
              "(paths.looks_random)", "display_name"),
    FieldSpec("type", "str", "DOWNLOAD | UPLOAD | UPLOAD_REPLY (unknown values as numbers)"),
    FieldSpec("state", "str", "QUEUED … CANCELLED (BG_JOB_STATE name)"),
    FieldSpec("priority", "str", "FOREGROUND | HIGH | NORMAL | LOW"),
    FieldSpec("notify_program", "path", "notify program, normalised path", "notify_program"),
    FieldSpec("notify_parameters", "str", "notify parameters, as stored"),
    FieldSpec("notify_command", "str", "program + parameters, lower-case, carets/empty quotes removed, "
              "environment variables expanded", "notify_command"),
    FieldSpec("notify_image", "path", "the program BITS starts (program field, else first token of the "
              "parameters), normalised", "notify_command"),
    FieldSpec("notify_image_name", "str", "file name of notify_image", "notify_command"),
    FieldSpec("notify_image_dir", "path", "folder of notify_image (ends with a backslash)", "notify_command"),
    FieldSpec("notify_image_location", "str", "kind of folder notify_image lies in (see Locations)", "notify_command"),
    FieldSpec("notify_image_writable", "bool", "a standard user can create files where notify_image lies",
              "notify_command"),
    FieldSpec("notify_flags", "int", "BG_NOTIFY_* bit set"),
    FieldSpec("notify_flag_names", "list", "names of the set notify flags"),
    FieldSpec("notify_fires", "bool", "a command is set, flags include JOB_TRANSFERRED or JOB_ERROR and "
              "not DISABLE (flags absent count as the default 3)", "notify_command"),
    FieldSpec("notify_launches_download", "bool", "the notify command names one of the job's local files",
              "notify_command"),
    FieldSpec("notify_documented", "str", "name of the documented Windows notify command (allow-list "
              "`notify_commands`) the command equals exactly, program and arguments", "notify_command"),
    FieldSpec("owner_sid", "str", "owner SID"),
    FieldSpec("owner_name", "str", "well-known owner name (SYSTEM, LOCAL SERVICE, NETWORK SERVICE)"),
    FieldSpec("integrity_level", "str", "owner token integrity level (low, medium, high, system …)"),
    FieldSpec("integrity_rid", "int", "owner token integrity RID (0x4000 = system)"),
    FieldSpec("creator_image", "path", "image of the process that created the job, normalised (ESE records; else "
              "the Bits-Client log's event 3 when the evidence holds it)",
              "creator_image"),
    FieldSpec("creator_name", "str", "file name of creator_image", "creator_image"),
    FieldSpec("creator_dir", "path", "folder of creator_image (ends with a backslash)", "creator_image"),
    FieldSpec("creator_location", "str", "kind of folder creator_image lies in (see Locations)", "creator_image"),
    FieldSpec("creator_writable", "bool", "a standard user can create files where creator_image lies",
              "creator_image"),
    FieldSpec("creator_installed", "bool", "the creator is a program installed in an admin-only folder, other than "
              "a BITS command-line tool or a process that never creates jobs", "creator_image"),
    FieldSpec("files_vendor", "str", "machine-wide allow-list entry whose hosts and destinations match every "
              "file of the job (and its owner): the job moves that vendor's content into its folders"),
    FieldSpec("creator_impersonates", "str", "allow-list entry whose creator file name the creator copies "
              "while lying elsewhere (or, for a per-user updater, fetching from other hosts)"),
    FieldSpec("name_impersonates", "str", "allow-list entry whose specific job name the job copies while "
              "its creator or owner differ, or its hosts and destinations both differ"),
    FieldSpec("updater_off_vendor", "str", "machine-wide allow-list entry whose (admin-only) creator made the "
              "job, while some file comes from a host that is not the vendor's"),
    FieldSpec("updater_off_vendor_destination", "bool", "updater_off_vendor, and some file also goes outside "
              "the vendor's folders"),
    FieldSpec("allowlisted", "bool", "an allow-list entry matches the job (see Allow-list)"),
    FieldSpec("allowlist_entry", "str", "name of the matching allow-list entry"),
    FieldSpec("record_format", "str", "ese (qmgr.db: has creator image and HTTP method) | legacy "
              "(qmgr0/1.dat: has neither)"),
    FieldSpec("min_retry_delay", "int", "seconds between retries (default 600)"),
    FieldSpec("no_progress_timeout", "int", "seconds without progress before ERROR (default 1 209 600)"),
    FieldSpec("no_progress_timeout_days", "float", "no_progress_timeout in days", "no_progress_timeout"),
    FieldSpec("max_download_time", "int", "seconds a download may take (default 7 776 000)"),
    FieldSpec("transient_error_count", "int", "transient error counter"),
    FieldSpec("lifetime_days", "float", "days from creation to the last modification/completion",
              "creation_time"),
    FieldSpec("expiry_window_days", "float", "days from inactivity base time to expiration (90 by default)",
              "expiration_time"),
    FieldSpec("age_days", "float", "days from creation to the as-of time (see Time)", "creation_time"),
    FieldSpec("idle_days", "float", "days from the last modification to the as-of time", "modification_time"),
    FieldSpec("expired_days", "float", "days the as-of time lies past the expiration time (negative: "
              "not yet expired)", "expiration_time"),
    FieldSpec("proxy_usage", "str", "PRECONFIG | NO_PROXY | OVERRIDE | AUTODETECT"),
    FieldSpec("proxy_list", "str", "proxy list (as stored)"),
    FieldSpec("proxy_bypass", "str", "proxy bypass list (as stored)"),
    FieldSpec("security_flags", "int", "BG_SSL_* / redirect policy bit set"),
    FieldSpec("security_flag_names", "list", "names of the set security flags"),
    FieldSpec("custom_headers", "bool", "the job carries (DPAPI-protected) custom HTTP headers"),
    FieldSpec("http_method", "str", "HTTP verb (ESE only)"),
    FieldSpec("error_count", "int", "number of stored error records"),
    FieldSpec("error_hresults", "list", "stored error HRESULTs as 0x........ text"),
    FieldSpec("file_count", "int", "number of files attached to the job (whose records were found)"),
    FieldSpec("files_missing", "bool", "the job lists file ids whose records were not found (URLs and "
              "destinations unknown)"),
    FieldSpec("partial", "bool", "the record did not decode completely"),
    FieldSpec("ignored_fields", "list", "fields decoded past the damage point of a partial record, which "
              "rules do not see (see Damaged records)"),
    FieldSpec("log_only", "bool", "the job is known only from the event logs (no database holds it)"),
    FieldSpec("log_owner", "str", "owner as the Bits-Client log names it (DOMAIN\\user)"),
    FieldSpec("log_creator_name", "str", "file name of the creating process per Bits-Client event 3"),
    FieldSpec("log_events", "int", "number of event-log records of the job"),
    FieldSpec("notify_runs", "int", "processes the BITS service started for the job (notify commands that ran: "
              "Sysmon 1 / Security 4688 children of the BITS service host)"),
    FieldSpec("notify_run_images", "list", "file names of the programs those notify executions started"),
    FieldSpec("notify_failed", "bool", "the log says the notify program failed or returned an error (63, 64)"),
    FieldSpec("command_tools", "list", "tools of the command lines linked to the job (bitsadmin, powershell)"),
    FieldSpec("command_operations", "list", "BITS operations those command lines performed (create, addfile, "
              "setnotifycmdline, transfer, resume …)"),
    FieldSpec("expected_expiry_days", "float", "days a job lives without activity on its host: the "
              "JobInactivityTimeout policy when the SOFTWARE hive sets one, else 90"),
    FieldSpec("lifetime_beyond_expiry", "bool", "lifetime_days exceeds expected_expiry_days", "creation_time"),
    FieldSpec("expiry_beyond_policy", "bool", "expiry_window_days exceeds expected_expiry_days by more than a "
              "day (the expiry was stretched past the host's policy)", "expiration_time"),
    FieldSpec("provenance.recovered", "bool", "recovered (deleted / stale) record rather than a live one"),
    FieldSpec("provenance.recovered_from", "str", "where a recovered record came from"),
    FieldSpec("provenance.state_file", "str", "legacy state file role: current | previous"),
    FieldSpec("provenance.source_kind", "str", "kind of the evidence file (ese_database, legacy_state_file …)"),
    FieldSpec("provenance.source_path", "str", "evidence file path"),
]

FILE_FIELDS = [
    FieldSpec("files.local_name", "path", "local file, normalised path", "files.local_name"),
    FieldSpec("files.local_dir", "path", "folder of the local file (ends with a backslash)", "files.local_name"),
    FieldSpec("files.local_basename", "str", "file name of the local file", "files.local_name"),
    FieldSpec("files.local_ext", "str", "extension of the local file (no dot)", "files.local_name"),
    FieldSpec("files.local_location", "str", "kind of folder the local file lies in (see Locations)",
              "files.local_name"),
    FieldSpec("files.local_writable", "bool", "a standard user can create files where the local file lies",
              "files.local_name"),
    FieldSpec("files.remote_name", "str", "remote URL / UNC path (as stored)"),
    FieldSpec("files.remote_scheme", "str", "http, https, ftp, file, smb, or unc for \\\\host\\share",
              "files.remote_name"),
    FieldSpec("files.remote_is_local", "bool", "the remote name is a path on this machine (C:\\..., "
              "file:///C:/...): the job copies a local file", "files.remote_name"),
    FieldSpec("files.remote_host", "str", "remote host, lower-case, no brackets", "files.remote_name"),
    FieldSpec("files.remote_host_is_ip", "bool", "remote host is a literal IPv4/IPv6 (or numeric) address",
              "files.remote_name"),
    FieldSpec("files.remote_host_intranet", "bool", "remote host is a private address, a single-label name "
              "or has an intranet suffix (.local, .corp, .lan …)", "files.remote_name"),
    FieldSpec("files.remote_user_content", "bool", "remote host is (under) a paste, file-sharing, image, code or "
              "cloud-storage host or a dynamic-DNS / tunnel domain: it serves anyone's content", "files.remote_name"),
    FieldSpec("files.remote_host_lookalike", "str", "vendor domain the remote host imitates: it contains an "
              "allow-listed or well-known vendor domain followed by more labels (dl.google.com.evil.net, "
              "download-microsoft.com.cdn.top) without being that domain"),
    FieldSpec("files.remote_port", "int", "explicit port in the URL", "files.remote_name"),
    FieldSpec("files.remote_port_nonstandard", "bool", "explicit port other than the scheme's default",
              "files.remote_name"),
    FieldSpec("files.remote_userinfo", "bool", "the URL carries a user name or password (user:pass@host)",
              "files.remote_name"),
    FieldSpec("files.remote_path", "str", "path and query of the URL", "files.remote_name"),
    FieldSpec("files.remote_ext", "str", "extension of the last segment of the URL path (no dot)",
              "files.remote_name"),
    FieldSpec("files.remote_path_length", "int", "length of remote_path", "files.remote_name"),
    FieldSpec("files.remote_random_segment", "int", "length of the longest random-looking token of the path "
              "(24+ characters between separators, letters and digits, entropy >= 3.5 bits/char; else 0)",
              "files.remote_name"),
    FieldSpec("files.temp_name", "path", "BITS temporary file, normalised path", "files.temp_name"),
    FieldSpec("files.bytes_total", "int", "file size (-1 unknown)"),
    FieldSpec("files.bytes_transferred", "int", "bytes transferred"),
]

FIELDS: dict[str, FieldSpec] = {spec.path: spec for spec in JOB_FIELDS + FILE_FIELDS}


def _name(value: Any) -> Any:
    if isinstance(value, IntEnum):
        return value.name
    return None if value is None else str(value)


def _folder(path: str | None) -> str | None:
    """Folders end with a backslash so that `contains: '\\temp\\'` also matches the last one."""
    folder = paths.dirname(path)
    return None if folder is None else folder + "\\"


def _days(start: int | None, end: int | None) -> float | None:
    if not start or not end:
        return None
    return round((end - start) / FILETIME_PER_DAY, 3)


class View:
    """Field values (normalised) plus what a finding quotes for each of them."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.raw: dict[str, Any] = {}

    def set(self, path: str, value: Any, raw: Any = None) -> None:
        self.values[path] = value
        if raw is not None:
            self.raw[path] = raw

    def get(self, path: str) -> Any:
        return self.values.get(path)

    def shown(self, path: str) -> tuple[str, Any]:
        """(field, value) as a finding quotes them: the raw field when the path is derived."""
        spec = FIELDS.get(path)
        source = spec.shown_as if spec and spec.shown_as else path
        if source in self.raw:
            return source, self.raw[source]
        return path, self.values.get(path)


def _located(view: View, prefix: str, path: str | None) -> None:
    location = paths.locate(path)
    view.set(prefix + "_location", location.kind if location else None)
    view.set(prefix + "_writable", location.writable if location else None)


def file_view(jf: JobFile) -> View:
    view = View()
    local = paths.normalise_path(jf.local_name)
    view.set("files.local_name", local, jf.local_name)
    view.set("files.local_dir", _folder(local))
    view.set("files.local_basename", paths.basename(local))
    view.set("files.local_ext", paths.extension(local))
    _located(view, "files.local", local)
    remote = paths.parse_remote(jf.remote_name)
    view.set("files.remote_name", jf.remote_name, jf.remote_name)
    view.set("files.remote_scheme", remote["scheme"])
    host = remote["host"]
    view.set("files.remote_is_local", remote["scheme"] == "file" and not host)
    view.set("files.remote_host", host)
    view.set("files.remote_host_is_ip", paths.host_is_ip(host))
    view.set("files.remote_host_intranet", paths.is_intranet_host(host))
    port = remote["port"]
    view.set("files.remote_port", port)
    default = paths.DEFAULT_PORTS.get(str(remote["scheme"]))
    view.set("files.remote_port_nonstandard", port is not None and port != default)
    view.set("files.remote_userinfo", bool(remote.get("userinfo")))
    view.set("files.remote_path", remote["path"])
    view.set("files.remote_ext", paths.url_extension(remote["path"]) if remote["scheme"] != "file" else
             paths.extension(paths.normalise_path(remote["path"])))
    view.set("files.remote_path_length", len(remote["path"] or ""))
    view.set("files.remote_random_segment", paths.longest_random_segment(remote["path"]))
    view.set("files.temp_name", paths.normalise_path(jf.temp_name), jf.temp_name)
    view.set("files.bytes_total", jf.bytes_total)
    view.set("files.bytes_transferred", jf.bytes_transferred)
    return view


def record_format(job: Job) -> str:
    """legacy for records of qmgr0/1.dat (no creator image, no HTTP method), else ese."""
    kind = job.provenance.source_kind if job.provenance else None
    if job.marker_label and job.marker_label.startswith("legacy") or (kind and kind.startswith("legacy")):
        return "legacy"
    return "ese"


def _notify(view: View, job: Job, files: list[View]) -> None:
    program = (job.notify_program or "").strip() or None
    parameters = (job.notify_parameters or "").strip() or None
    raw_command = " ".join(p for p in (job.notify_program, job.notify_parameters) if p and p.strip()) or None
    view.raw["notify_command"] = raw_command
    view.set("notify_program", paths.normalise_path(program), job.notify_program)
    view.set("notify_parameters", parameters)
    view.set("notify_command", paths.deobfuscate_command(raw_command))
    image = paths.command_image(program, parameters)
    view.set("notify_image", image)
    view.set("notify_image_name", paths.basename(image))
    view.set("notify_image_dir", _folder(image))
    _located(view, "notify_image", image)
    view.set("notify_flags", job.notify_flags)
    view.set("notify_flag_names", flag_names(NotifyFlags, job.notify_flags) if job.notify_flags is not None else [])
    flags = 3 if job.notify_flags is None else job.notify_flags
    view.set("notify_fires", bool(raw_command) and bool(flags & NOTIFY_FIRE_MASK) and not flags & NotifyFlags.DISABLE)
    command = view.get("notify_command") or ""
    locals_ = [f.get("files.local_name") for f in files if f.get("files.local_name")]
    launches = bool(raw_command) and any(
        local == image or local in command or (paths.basename(local) or "\0") == paths.basename(image)
        for local in locals_)
    view.set("notify_launches_download", launches)


DEFAULT_EXPIRY_DAYS = 90


def _times(view: View, job: Job, as_of: int | None) -> None:
    last = max(job.modification_time or 0, job.completion_time or 0) or None
    lifetime = _days(job.creation_time, last)
    window = _days(job.inactivity_base_time, job.expiration_time)
    expected = float((job.history.inactivity_timeout_days if job.history else None) or DEFAULT_EXPIRY_DAYS)
    view.set("lifetime_days", lifetime)
    view.set("expiry_window_days", window)
    view.set("expected_expiry_days", expected)
    view.set("lifetime_beyond_expiry", lifetime is not None and lifetime > expected)
    view.set("expiry_beyond_policy", window is not None and window > expected + 1)
    view.set("age_days", _days(job.creation_time, as_of))
    view.set("idle_days", _days(job.modification_time, as_of))
    view.set("expired_days", _days(job.expiration_time, as_of))
    for name in ("creation_time", "modification_time", "expiration_time"):
        view.raw[name] = filetime_to_iso(getattr(job, name)) if getattr(job, name) else None


def _history(view: View, job: Job) -> None:
    """What the event logs add (docs/EVENTLOGS.md): empty values when no log mentions the job."""
    history = job.history
    processes = history.processes if history else []
    runs = history.notify_executions if history else []
    view.set("log_only", bool(history and history.log_only))
    view.set("log_owner", history.owner_account if history else None)
    creator = history.creator_image if history else None
    view.set("log_creator_name", paths.basename(paths.normalise_path(creator)) if creator else None, creator)
    view.set("log_events", len(history.events) if history else 0)
    view.set("notify_runs", len(runs))
    view.set("notify_run_images", sorted({paths.basename(paths.normalise_path(p.image)) or "" for p in runs
                                          if p.image}))
    view.set("notify_failed", any(e.event_id in (63, 64) for e in (history.events if history else [])))
    view.set("command_tools", sorted({op.tool for p in processes for op in p.operations}))
    view.set("command_operations", sorted({op.operation for p in processes for op in p.operations}))


def job_view(job: Job, as_of: int | None = None, ignored: list[str] | None = None) -> tuple[View, list[View]]:
    """The rule-facing view of a job and of each of its files (allow-list fields are added later).

    `as_of` is the FILETIME time-based fields count to; `ignored` the fields rules may not see
    (already removed from `job` by trust.trusted_view_of).
    """
    view = View()
    files = [file_view(jf) for jf in job.files]
    view.set("job_id", job.job_id)
    view.set("display_name", job.display_name)
    view.set("description", job.description)
    view.set("name_random", paths.looks_random(job.display_name))
    view.set("type", _name(job.type))
    view.set("state", _name(job.state))
    view.set("priority", _name(job.priority))
    _notify(view, job, files)
    view.set("owner_sid", job.owner_sid)
    view.set("owner_name", job.owner_name)
    security = job.security
    view.set("integrity_level", security.owner_integrity_level if security else None)
    view.set("integrity_rid", security.owner_integrity_rid if security else None)
    # The database's creator image; where it has none (legacy state files), Bits-Client event 3's.
    given = job.creator_image if job.creator_image and job.creator_image.strip() else (
        job.history.creator_image if job.history else None)
    creator = paths.normalise_path(given) if given and given.strip() else None
    view.set("creator_image", creator, given)
    view.set("creator_name", paths.basename(creator))
    view.set("creator_dir", _folder(creator))
    _located(view, "creator", creator)
    view.set("record_format", record_format(job))
    for name in ("min_retry_delay", "no_progress_timeout", "max_download_time", "transient_error_count",
                 "proxy_list", "proxy_bypass", "security_flags", "http_method"):
        view.set(name, getattr(job, name))
    npt = job.no_progress_timeout
    view.set("no_progress_timeout_days", None if npt is None else round(npt / 86400, 3))
    _times(view, job, as_of)
    view.set("proxy_usage", _name(job.proxy_usage))
    view.set("security_flag_names",
             flag_names(SecurityFlags, job.security_flags) if job.security_flags is not None else [])
    view.set("custom_headers", job.custom_headers is not None)
    view.set("error_count", len(job.errors))
    view.set("error_hresults", [e.hresult_hex for e in job.errors if e.hresult_hex])
    view.set("file_count", len(job.files))
    view.set("files_missing", bool(job.missing_file_ids) or (bool(job.file_ids) and not job.files))
    view.set("partial", job.partial)
    view.set("ignored_fields", list(ignored or []))
    _history(view, job)
    prov = job.provenance
    view.set("provenance.recovered", bool(prov and prov.recovered))
    for name in ("recovered_from", "state_file", "source_kind", "source_path"):
        view.set("provenance." + name, getattr(prov, name) if prov else None)
    return view, files


#: The field registry of each kind of subject rules can be written for. A later source of
#: facts (event logs, the SYSTEM hive) registers its own kind here with its own fields.
SUBJECT_FIELDS: dict[str, dict[str, FieldSpec]] = {"job": FIELDS}
