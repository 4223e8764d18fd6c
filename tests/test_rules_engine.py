"""Rules engine: normaliser, location model, condition language, load errors, allow-list model,
combination, damaged records, time, real samples, docs."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

import bitsdb
from bitsdb.model import JobState, JobType, Provenance
from bitsdb.rules import RuleError, assess, evaluate, load_rules, normalise_path
from bitsdb.rules.corpus import build_job, overwrite
from bitsdb.rules.engine import evidence_time, parse_time
from bitsdb.rules.paths import command_image, locate, looks_random, parse_remote
from bitsdb.rules.trust import trusted_view_of

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples" / "real"
SEVERITY = ["info", "low", "medium", "high", "critical"]
SYSTEM = {"owner_sid": "S-1-5-18", "integrity_rid": 0x4000}


@pytest.mark.parametrize("given, expected", [
    (r"C:\PROGRA~1\Contoso\x.exe", r"c:\program files\contoso\x.exe"),
    (r"C:\PROGRA~2\x.exe", r"c:\program files (x86)\x.exe"),
    (r"c:\progra~3\evil.exe", r"c:\programdata\evil.exe"),
    (r"C:\Windows\System32\WindowsPowerShell\v1.0\POWERS~1.EXE", r"c:\windows\system32\windowspowershell\v1.0\powershell.exe"),
    ('"C:\\Windows\\System32\\cmd.exe"  ', r"c:\windows\system32\cmd.exe"),
    ("%COMSPEC%", r"c:\windows\system32\cmd.exe"),
    (r"%TEMP%\a.ps1", r"c:\users\%user%\appdata\local\temp\a.ps1"),
    (r"\\?\C:/Users//Public/a.exe ", r"c:\users\public\a.exe"),
    (r"\\?\UNC\srv\share\x", r"\\srv\share\x"),
    (r"\??\C:\Windows\x.dll", r"c:\windows\x.dll"),
    (r"C:\Users\bob\invoice.pdf .exe  ", r"c:\users\bob\invoice.pdf .exe"),
    (r"C:\Program Files\Google\Update\..\..\..\Users\Public\x.exe", r"c:\users\public\x.exe"),
    (r"C:\..\..\Windows\.\Fonts\x.dll", r"c:\windows\fonts\x.dll"),
    (r"\\srv\share\..\..\x", r"\\srv\share\x"),
])
def test_normalise_path(given, expected):
    assert normalise_path(given) == expected


def test_command_image_from_parameters_when_program_empty():
    assert command_image("", '"C:\\Program Files\\x y\\a.exe" -q') == r"c:\program files\x y\a.exe"
    assert command_image(None, "%ComSpec% /c calc") == r"c:\windows\system32\cmd.exe"


@pytest.mark.parametrize("url, host, port, scheme", [
    ("http://1.2.3.4:8080/a", "1.2.3.4", 8080, "http"),
    ("https://[2001:db8::1]/x", "2001:db8::1", None, "https"),
    (r"\\10.0.0.1\share\a.exe", "10.0.0.1", None, "unc"),
    ("HTTPS://Evil.DuckDNS.org./a", "evil.duckdns.org", None, "https"),
    ("file:///c:/x", None, None, "file"),
    ("https://dl.google.com@evil.example/x.exe", "evil.example", None, "https"),
    ("https://evil.example\\@dl.google.com/x.exe", "evil.example", None, "https"),
])
def test_parse_remote(url, host, port, scheme):
    got = parse_remote(url)
    assert (got["host"], got["port"], got["scheme"]) == (host, port, scheme)


@pytest.mark.parametrize("path, kind, writable", [
    (r"c:\users\bob\appdata\roaming\microsoft\windows\start menu\programs\startup\a.lnk", "autostart", True),
    (r"c:\programdata\microsoft\windows\start menu\programs\startup\a.exe", "autostart", False),
    (r"c:\windows\system32\evil.dll", "system", False),
    (r"c:\windows\system32\spool\drivers\color\x.exe", "system", True),
    (r"c:\windows\fonts\x.dll", "system", False),
    (r"c:\windows\ccmcache\3\setup.exe", "admin", False),
    (r"c:\windows\temp\x.exe", "temp", True),
    (r"c:\windows\systemtemp\x.exe", "temp", False),
    (r"c:\windows\tasks\x.exe", "staging", True),
    (r"c:\program files (x86)\google\update\googleupdate.exe", "admin", False),
    (r"c:\program files x86\google\update\googleupdate.exe", "staging", True),
    (r"c:\programdata\microsoft\windows defender\platform\4.18\msmpeng.exe", "admin", False),
    (r"c:\programdata\microsoft\windows defender update\msmpeng.exe", "profile", True),
    (r"c:\programdata\x.exe", "staging", True),
    (r"c:\programdata\package cache\{guid}\setup.exe", "admin", False),
    (r"c:\users\public\x.exe", "staging", True),
    (r"c:\users\bob\appdata\local\temp\x.exe", "temp", True),
    (r"c:\users\bob\appdata\locallow\x.exe", "staging", True),
    (r"c:\users\bob\appdata\roaming\x.exe", "staging", True),
    (r"c:\users\bob\appdata\local\google\chrome\application\chrome.exe", "profile", True),
    (r"c:\users\bob\downloads\officesetup.exe", "staging", True),
    (r"c:\temp\a.exe", "staging", True),
    (r"c:\perflogs\a.dll", "staging", True),
    (r"d:\tools\a.exe", "unknown", None),
    (r"\\srv\share\a.exe", "remote", None),
])
def test_location_model(path, kind, writable):
    location = locate(path)
    assert (location.kind, location.writable) == (kind, writable), location


def test_random_names():
    assert looks_random("kX9qzW2vLp") and looks_random("3f9a1c77be4d") and looks_random("xkcdqwrtz")
    for name in ("PreSignInSettingsConfigJSON", "SpeechModelDownloadJob", "Chrome Component Updater", "backdoor",
                 "MozillaUpdate 308046B0AF4A39CB", "{3d82cd36-e033-4c87-a037-c412b96f795e}", "AtomicBITS"):
        assert not looks_random(name), name


# ------------------------------------------------------------------ load errors


def _write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


RULE_HEAD = "rules:\n  - id: r1\n    title: t\n    severity: low\n    attack: [T1197]\n"


@pytest.mark.parametrize("body, fragment", [
    (RULE_HEAD + "    when: {field: no_such_field, exists: true}\n", "unknown field 'no_such_field'"),
    (RULE_HEAD + "    when: {field: display_name, regex: '(unclosed'}\n", "bad regex"),
    (RULE_HEAD + "    when: {field: display_name, in: $nope}\n", "unknown list '$nope'"),
    (RULE_HEAD + "    when: {field: display_name, equals: x, contains: y}\n", "exactly one operator"),
    (RULE_HEAD + "    when: {field: display_name, gt: 3}\n", "not a number"),
    (RULE_HEAD + "    when: {all: []}\n", "non-empty list"),
    (RULE_HEAD + "    colour: red\n    when: {field: display_name, exists: true}\n", "unknown key 'colour'"),
    (RULE_HEAD.replace("low", "severe") + "    when: {field: display_name, exists: true}\n", "severity must be"),
    (RULE_HEAD.replace("[T1197]", "[T1105]") + "    when: {field: display_name, exists: true}\n", "T1197"),
    (RULE_HEAD + "    facet: vibes\n    when: {field: display_name, exists: true}\n", "unknown facet 'vibes'"),
    (RULE_HEAD + "    allowlisted: always\n    when: {field: display_name, exists: true}\n", "allowlisted must be"),
    (RULE_HEAD + "    when:\n      any_file:\n        any_file: {field: files.local_name, exists: true}\n",
     "cannot be nested"),
])
def test_bad_rule_is_a_clear_error_naming_file_rule_and_line(tmp_path, body, fragment):
    path = _write(tmp_path, body)
    with pytest.raises(RuleError) as info:
        load_rules([path])
    message = str(info.value)
    assert str(path) in message and "rule r1" in message and "(line " in message
    assert fragment in message
    assert "\n" not in message


def test_bad_yaml_names_the_line(tmp_path):
    path = _write(tmp_path, "rules:\n  - id: r1\n    title: [unclosed\n")
    with pytest.raises(RuleError, match=r"mine\.yaml \(line \d+, column \d+\): invalid YAML"):
        load_rules([path])


def test_error_line_points_at_the_bad_condition(tmp_path):
    body = RULE_HEAD + "    when:\n      all:\n        - {field: display_name, exists: true}\n" \
                       "        - {field: bogus, exists: true}\n"
    with pytest.raises(RuleError, match=r"\(line 9\): unknown field 'bogus'"):
        load_rules([_write(tmp_path, body)])


def test_duplicate_rule_id_is_an_error(tmp_path):
    dup = "rules:\n  - id: notify-command\n    title: t\n    severity: low\n    attack: [T1197]\n" \
          "    when: {field: display_name, exists: true}\n"
    with pytest.raises(RuleError, match="already defined"):
        load_rules([_write(tmp_path, dup)])


ENTRY = ("allowlist:\n  - name: Contoso\n    source: vendor docs\n    creator: ['{creator}']\n    owner: [{owner}]\n"
         "    hosts: [{hosts}]\n    destinations: ['{dest}']\n")


def _entry(**overrides) -> str:
    values = {"creator": r"c:\program files\contoso\upd.exe", "owner": "system", "hosts": "dl.contoso.com",
              "dest": r"c:\program files\contoso\*"}
    values.update(overrides)
    return ENTRY.format(**values)


@pytest.mark.parametrize("text, fragment", [
    ("allowlist:\n  - name: x\n    source: s\n    job_name: ['Chrome Component Updater']\n",
     "never the job name alone"),
    (_entry(hosts="'*.googleapis.com'"), "storage.googleapis.com, which serves anyone's content"),
    (_entry(hosts="onedrive.live.com"), "serves anyone's content"),
    (_entry(hosts="'*.live.com'"), "serves anyone's content"),
    (_entry(hosts="'*.microsoft.com'"), "parent domain of many unrelated services"),
    (_entry(hosts="raw.githubusercontent.com"), "serves anyone's content"),
    (_entry(hosts="'dl.*.com'"), "neither a host name"),
    (_entry(creator="*\\upd.exe"), "absolute path naming at least one folder"),
    (_entry(dest="*"), "absolute path naming at least one folder"),
    (_entry(owner="everyone"), "is not a SID"),
    (_entry(hosts="site", dest=r"c:\users\*\appdata\*"), "'site' hosts are accepted only"),
    (_entry(creator=r"c:\users\*\appdata\local\contoso\upd.exe", hosts="site"), "'site' hosts are accepted only"),
    (_entry(hosts="intranet"), "neither a host name"),
    (_entry() + "    colour: red\n", "unknown key 'colour'"),
])
def test_allowlist_entries_attackers_could_satisfy_are_refused(tmp_path, text, fragment):
    path = _write(tmp_path, text)
    with pytest.raises(RuleError) as info:
        load_rules(allowlists=[path])
    message = str(info.value)
    assert str(path) in message and "allow-list entry" in message and fragment in message and "\n" not in message


def test_documented_notify_commands_are_exact_system32_components_never_lolbins(tmp_path):
    text = ("notify_commands:\n  - name: x\n    source: s\n    program: '{program}'\n    parameters: ['']\n"
            "    owner: [system]\n")
    for program, fragment in ((r"c:\windows\system32\cmd.exe", "never lowered"),
                              (r"c:\users\public\x.exe", "exact Windows component"),
                              (r"c:\windows\system32\*.exe", "exact Windows component")):
        with pytest.raises(RuleError, match=fragment):
            load_rules([_write(tmp_path, text.format(program=program))])


def test_site_allowlist_file_holds_only_entries(tmp_path):
    with pytest.raises(RuleError, match="holds only 'allowlist:' entries"):
        load_rules(allowlists=[_write(tmp_path, RULE_HEAD + "    when: {field: display_name, exists: true}\n")])
    with pytest.raises(RuleError, match="no such file"):
        load_rules(allowlists=[tmp_path / "missing.yaml"])


def test_scope_follows_where_the_creator_lies(tmp_path):
    rules = load_rules(allowlists=[_write(tmp_path, _entry())])
    assert rules.allowlist[-1].scope == "machine"
    rules = load_rules(allowlists=[_write(tmp_path, _entry(creator=r"c:\program files*\contoso\upd.exe"))])
    assert rules.allowlist[-1].scope == "user"          # a glob reaching C:\Program Filesx\ is user-creatable
    builtin = load_rules()
    scopes = {e.name: e.scope for e in builtin.allowlist}
    assert scopes["Microsoft OneDrive (per-user)"] == "user" and scopes["Google Update / Google Updater (machine)"] \
        == "machine"


def test_user_rule_uses_builtin_lists_and_fires(tmp_path):
    body = ("rules:\n  - id: my-ps\n    title: PowerShell notify\n    severity: high\n    attack: [T1197]\n"
            "    facet: execution\n    explain: 'runs {notify_command}'\n"
            "    when: {field: notify_image_name, in: $powershell}\n")
    rules = load_rules([_write(tmp_path, body)])
    job = build_job({"notify_program": r"C:\Windows\System32\WINDOW~1\v1.0\POWERS~1.EXE"}, [{}], "u1")
    found = {f.rule_id: f for f in rules.evaluate(job)}
    assert found["my-ps"].severity == "high"
    assert "runs 'C:\\Windows\\System32\\WINDOW~1" in found["my-ps"].explanation


# ------------------------------------------------------------------ semantics


def _rules(tmp_path: Path, when: str):
    body = RULE_HEAD + "    when: " + when + "\n"
    return load_rules([_write(tmp_path, body)], builtin=False)


def test_files_any_all_and_per_file_scope(tmp_path):
    files = [{"local_name": r"C:\Users\Public\a.exe"}, {"local_name": r"C:\Data\b.txt"}]
    job = build_job({}, files, "scope")
    fired = lambda when: bool(_rules(tmp_path, when).evaluate(job))  # noqa: E731
    assert fired("{field: files.local_ext, equals: exe}")
    assert not fired("{field: files.local_ext, equals: exe, match: all}")
    assert fired("{field: files.local_ext, in: [exe, txt], match: all}")
    assert fired("{all: [{field: files.local_ext, equals: exe}, {field: files.local_dir, equals: 'c:\\data\\'}]}")
    assert not fired("{any_file: {all: [{field: files.local_ext, equals: exe}, "
                     "{field: files.local_dir, equals: 'c:\\data\\'}]}}")
    assert fired("{all_files: {field: files.local_name, startswith: 'C:/'}}")
    no_files = build_job({}, [], "nofiles")
    assert not _rules(tmp_path, "{field: files.local_ext, exists: false, match: all}").evaluate(no_files)


def test_case_sensitivity_and_numbers(tmp_path):
    job = build_job({"display_name": "Contoso Update", "min_retry_delay": 601}, [{}], "case")
    assert _rules(tmp_path, "{field: display_name, equals: contoso update}").evaluate(job)
    assert not _rules(tmp_path, "{field: display_name, equals: contoso update, case: sensitive}").evaluate(job)
    assert _rules(tmp_path, "{field: min_retry_delay, gt: 600}").evaluate(job)
    assert not _rules(tmp_path, "{field: min_retry_delay, le: 600}").evaluate(job)
    assert _rules(tmp_path, "{not: {field: notify_command, exists: true}}").evaluate(job)
    assert _rules(tmp_path, "{field: notify_parameters, empty: true}").evaluate(job)


def test_verdict_and_hits_are_plain_json_naming_job_and_provenance():
    job = build_job({"notify_program": r"C:\Users\Public\x.exe"}, [{}], "dict")
    job.provenance = Provenance(source_path="evidence/qmgr.db", table="Jobs", record_index=7, host="WS01")
    verdict = assess(job)
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["record_type"] == "verdict" and data["severity"] == "high" and data["confidence"] == "high"
    assert data["subject"]["job_id"] == job.job_id and data["subject"]["host"] == "WS01"
    assert data["subject"]["provenance"]["record_index"] == 7
    hit = next(h for h in data["hits"] if h["rule_id"] == "notify-command")
    assert hit["facet"] == "execution" and hit["attack"][0] == "T1197"
    assert {"field": "notify_command", "value": r"C:\Users\Public\x.exe"} in hit["evidence"]
    assert data["reasons"][0]["source"] == "rule:notify-command"


# ------------------------------------------------------------------ combination


def test_independent_medium_facts_combine_to_high_and_severe_ones_to_critical():
    job = build_job({**SYSTEM, "creator_image": r"C:\Windows\System32\bitsadmin.exe"},
                    [{"remote_name": "http://203.0.113.7:12345/2.bat", "local_name": r"C:\Users\Public\2.bat"}], "c1")
    verdict = assess(job)
    assert max(verdict.hits, key=lambda h: SEVERITY.index(h.severity)).severity == "medium"
    assert verdict.severity == "high"
    assert verdict.reasons[0].source == "combine:independent-facts" and "independent" in verdict.reasons[0].text
    assert {c["id"] for c in verdict.combinations} >= {"independent-facts"}
    two_high = build_job({"notify_program": "cmd.exe", "type": "UPLOAD"}, [{}], "c2")
    assert assess(two_high).severity == "critical"


def test_same_facet_hits_do_not_combine():
    # a notify command seen three ways (LOLBin, re-armed) is one fact: high, not critical
    job = build_job({"notify_program": r"C:\Windows\System32\cmd.exe", "state": "ERROR"}, [{}], "c3")
    verdict = assess(job)
    assert {h.facet for h in verdict.hits} == {"execution"} and verdict.severity == "high"


def test_bitsadmin_with_any_notify_is_high_even_if_the_notify_is_documented():
    job = build_job({"creator_image": r"C:\Windows\System32\bitsadmin.exe", **SYSTEM,
                     "notify_program": r"C:\Windows\System32\directxdatabaseupdater.exe"},
                    [{"local_name": r"C:\Windows\Temp\db.xml", "remote_name": "https://x.contoso.com/db.xml"}], "c4")
    verdict = assess(job)
    notify = next(h for h in verdict.hits if h.rule_id == "notify-command")
    assert notify.severity != notify.base_severity and "documented" in notify.allowlisted
    assert verdict.severity == "high" and any(c["id"] == "hands-on-notify" for c in verdict.combinations)


# ------------------------------------------------------------------ allow-list behaviour


FIREFOX = {"display_name": "MozillaUpdate 308046B0AF4A39CB",
           "creator_image": r"C:\Program Files\Mozilla Firefox\firefox.exe"}
MAR = {"local_name": r"C:\ProgramData\Mozilla-1de4eec8-1241-4177-a864-e594e8d1fb38\updates\1\updates\0\update.mar",
       "remote_name": "https://download-installer.cdn.mozilla.net/pub/firefox/releases/110.0/update/x.mar"}


def test_allowlist_lowers_but_never_a_shell_notify_or_a_system_folder_drop(tmp_path):
    quiet = assess(build_job({**FIREFOX, "priority": "FOREGROUND", "custom_headers": True}, [MAR], "a1"))
    assert quiet.allowlist["entry"] == "Mozilla Firefox / Thunderbird update" and quiet.severity == "info"
    loud = assess(build_job({**FIREFOX, "notify_program": r"C:\Windows\System32\cmd.exe"}, [MAR], "a2"))
    assert loud.allowlist["entry"] and loud.severity == "high" and "notify-command" in loud.allowlist["kept"]
    # a site entry broad enough to cover a Startup folder still cannot lower the drop into it
    site = _write(tmp_path, _entry(creator=r"c:\program files\contoso\upd.exe", owner="user", dest=r"c:\users\*"))
    rules = load_rules(allowlists=[site])
    startup_folder = r"C:\Users\bob\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup"
    startup = build_job({"creator_image": r"C:\Program Files\Contoso\upd.exe"},
                        [{"remote_name": "https://dl.contoso.com/a.exe", "local_name": startup_folder + r"\a.exe"}],
                        "a3")
    verdict = rules.assess(startup)
    assert verdict.allowlist["entry"] == "Contoso" and verdict.severity == "high"


def test_per_user_entries_need_every_fact():
    onedrive = {"display_name": "SetupBinary",
                "creator_image": r"C:\Users\bob\AppData\Local\Microsoft\OneDrive\OneDriveStandaloneUpdater.exe"}
    good = [{"remote_name": "https://oneclient.sfx.ms/Win/Prod/1/OneDriveSetup.exe",
             "local_name": r"C:\Users\bob\AppData\Local\Microsoft\OneDrive\StandaloneUpdater\OneDriveSetup.exe"}]
    assert assess(build_job(onedrive, good, "p1")).allowlist["entry"] == "Microsoft OneDrive (per-user)"
    elsewhere = [dict(good[0], local_name=r"C:\Users\bob\AppData\Local\Temp\OneDriveSetup.exe")]
    assert assess(build_job(onedrive, elsewhere, "p2")).allowlist is None
    other_host = [dict(good[0], remote_name="https://onedrive-cdn.net/OneDriveSetup.exe")]
    verdict = assess(build_job(onedrive, other_host, "p3"))
    assert verdict.allowlist is None and any(h.rule_id == "impersonated-updater" for h in verdict.hits)
    assert verdict.severity == "medium"
    no_files = build_job(onedrive, [{}], "p4")
    no_files.files = []
    assert assess(no_files).allowlist is None           # per-user: the files must be there to check


def test_machine_entry_without_file_records_matches_with_lower_confidence():
    job = build_job({**SYSTEM, "display_name": "CCMDTS Job", "creator_image": r"C:\Windows\CCM\CcmExec.exe"},
                    [{}], "m1")
    job.files = []
    verdict = assess(job)
    assert verdict.allowlist["entry"].startswith("Microsoft Configuration Manager")
    assert verdict.confidence == "medium" and any("file records" in r for r in verdict.confidence_reasons)


def test_legacy_records_match_on_name_owner_hosts_and_destinations_together():
    wu = {**SYSTEM, "display_name": "WU Client Download"}
    files = [{"remote_name": "http://download.windowsupdate.com/c/msdownload/x.cab",
              "local_name": r"C:\Windows\SoftwareDistribution\Download\1\x.cab"}]
    from test_rules_corpus import legacy_codec

    legacy = legacy_codec(dataclasses.replace(build_job(wu, files, "l1"), creator_image=None, http_method=None,
                                              marker=None))
    verdict = assess(legacy)
    assert verdict.allowlist["entry"] == "Windows Update / WSUS" and verdict.severity == "info"
    assert verdict.confidence == "medium"
    other = legacy_codec(dataclasses.replace(build_job(wu, [dict(files[0], remote_name="http://45.142.212.61/x.cab")],
                                                       "l2"), creator_image=None, http_method=None, marker=None))
    verdict = assess(other)
    assert verdict.allowlist is None and verdict.severity in ("medium", "high")


def test_site_hosted_services_match_the_sites_own_servers_unverified():
    ccm = {**SYSTEM, "display_name": "CCMDTS Job", "creator_image": r"C:\Windows\CCM\CcmExec.exe"}
    dp = [{"remote_name": "http://cmdp01.corp.contoso.com/SMS_DP_SMSPKG$/CON00042/setup.exe",
           "local_name": r"C:\Windows\ccmcache\1a\setup.exe"}]
    verdict = assess(build_job(ccm, dp, "s1"))
    assert verdict.allowlist["entry"].startswith("Microsoft Configuration Manager") and verdict.allowlist["site_hosts"]
    assert verdict.severity == "info" and verdict.confidence == "medium"
    upload = assess(build_job({**ccm, "type": "UPLOAD"},
                              [{"remote_name": "http://cmmp01.corp.contoso.com/CCM_Incoming/{5B1C4E2F}",
                                "local_name": r"C:\Windows\CCM\ServiceData\Messaging\x.sic"}], "s2"))
    assert upload.allowlist and upload.severity == "low"                 # upload-job lowered two levels
    for remote in ("http://203.0.113.50/SMS_DP_SMSPKG$/a.exe", "https://dp.blob.core.windows.net/c/a.exe",
                   "http://sccm.microsoft.com.evil.top/a.exe"):
        other = assess(build_job(ccm, [dict(dp[0], remote_name=remote)], "s3"))
        assert other.allowlist is None, remote                           # public IPs, user content, look-alikes
    elsewhere = assess(build_job(ccm, [dict(dp[0], local_name=r"C:\Users\Public\setup.exe")], "s4"))
    assert any(h.rule_id == "updater-foreign-host" for h in elsewhere.hits) and elsewhere.severity == "medium"


def test_lookalike_hosts_of_vendor_domains():
    gu = {**SYSTEM, "creator_image": r"C:\Program Files (x86)\Google\Update\GoogleUpdate.exe"}
    spoof = assess(build_job(gu, [{"remote_name": "https://dl.google.com.update-cdn.net/GoogleUpdateSetup.exe",
                                   "local_name": r"C:\Program Files (x86)\Google\Update\Download\x.exe"}], "k1"))
    hit = next(h for h in spoof.hits if h.rule_id == "remote-lookalike-host")
    assert hit.severity == "critical" and "google.com" in hit.summary
    for host in ("officecdn.microsoft.com.edgesuite.net", "www.google.com.au", "dl.google.com"):
        job = build_job({}, [{"remote_name": f"https://{host}/x.cab"}], "k2")
        assert not any(h.rule_id == "remote-lookalike-host" for h in assess(job).hits), host


def test_executable_code_planted_in_program_folders():
    plant = build_job({**SYSTEM, "creator_image": r"C:\Windows\System32\bitsadmin.exe"},
                      [{"remote_name": "https://cdn.example.net/MpClient.dll",
                        "local_name": r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.1-0\MpClient.dll"}],
                      "pa1")
    hit = next(h for h in assess(plant).hits if h.rule_id == "payload-in-admin-folder")
    assert hit.severity == "critical"
    update = build_job({**SYSTEM, "creator_image": r"C:\Program Files\Contoso\Updater\ContosoUpdate.exe"},
                       [{"local_name": r"C:\Program Files\Contoso\x.dll"}], "pa2")
    assert not any(h.rule_id == "payload-in-admin-folder" for h in assess(update).hits)


def test_a_site_entry_lowers_what_the_record_alone_cannot_tell_from_lateral_tool_transfer(tmp_path):
    job = build_job({**SYSTEM, "display_name": "BITS Transfer", "priority": "FOREGROUND",
                     "creator_image": r"C:\Windows\SysWOW64\WindowsPowerShell\v1.0\powershell.exe"},
                    [{"remote_name": r"\\fs01.corp.contoso.com\Packages$\VPN\vpn.msi",
                      "local_name": r"C:\ProgramData\Contoso\Packages\VPN\vpn.msi"}], "it1")
    assert assess(job).severity in ("medium", "high")
    site = _write(tmp_path, _entry(creator=r"c:\windows\syswow64\windowspowershell\v1.0\powershell.exe",
                                   hosts="fs01.corp.contoso.com", dest=r"c:\programdata\contoso\packages\*"))
    assert load_rules(allowlists=[site]).assess(job).severity in ("info", "low")


# ------------------------------------------------------------------ damaged records


def test_overwritten_record_ignores_fields_past_the_damage_point():
    job = build_job({"creator_image": r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE",
                     "custom_headers": True}, [{}], "d1")
    damaged = overwrite(job, "network")
    trusted, trust = trusted_view_of(damaged)
    assert trust.ignored_sections == ["network", "trailer"] and trusted.creator_image is None
    assert "creator_image" in trust.ignored_fields and trusted.display_name == job.display_name
    verdict = assess(damaged)
    assert verdict.confidence == "low" and "ignored" in verdict.confidence_reasons[0]
    assert not any(h.rule_id == "custom-headers" for h in verdict.hits)       # decoded past the damage point
    cut_late = overwrite(job, "trailer")
    assert trusted_view_of(cut_late)[1].ignored_sections == ["trailer"]


def test_stopped_walk_ignores_the_failed_section():
    job = build_job({}, [{}], "d2")
    job.partial, job.partial_reason = True, "stopped at counters: stream read less than specified amount (offset 0x6e0)"
    assert trusted_view_of(job)[1].ignored_sections[0] == "counters"
    job.partial_reason = "12 bytes after the footer"
    assert trusted_view_of(job)[1].ignored_sections == []


# ------------------------------------------------------------------ time


def test_as_of_drives_time_based_rules():
    job = build_job({"state": "QUEUED", "completion_time": "", "notify_program": r"C:\Program Files\C\n.exe"},
                    [{}], "t1")
    own = assess(job)
    assert not any(h.rule_id == "long-pending-job" for h in own.hits)          # the job's own time: 0 days old
    later = assess(job, as_of=parse_time("2023-06-01"))
    hit = next(h for h in later.hits if h.rule_id == "long-pending-job")
    assert hit.severity == "medium" and later.as_of.startswith("2023-06-01")
    assert evidence_time([job]) == max(job.creation_time, job.modification_time)
    with pytest.raises(ValueError):
        parse_time("yesterday")


# ------------------------------------------------------------------ done criteria on real samples


def _real(name: str) -> Path:
    path = SAMPLES / "artemis" / name
    if not path.exists():
        pytest.skip(f"real sample {path} not available")
    return path


@pytest.mark.parametrize("name", ["win10_qmgr.db", "win11_qmgr.db"])
def test_real_benign_records_live_and_recovered_stay_below_medium(name):
    jobs = list(bitsdb.parse(_real(name), recover=True))
    assert len(jobs) > 10 and any(j.provenance.recovered for j in jobs)
    when = evidence_time(jobs)
    for job in jobs:
        verdict = assess(job, as_of=when)
        assert verdict.severity in ("info", "low"), (job.display_name, verdict.top_reasons())
        for hit in verdict.hits:
            assert SEVERITY.index(hit.severity) <= SEVERITY.index("low"), hit.explanation


def test_real_overwritten_outlook_record_does_not_fire_on_foreign_bytes():
    """The carved copies of the Outlook job whose tail another record overwrote (win10 sample).
    Since issue 17 the trailer decoder finds no creator in the foreign bytes (before, they came
    out as a garbled creator image); the verdicts must stay low either way."""
    jobs = [j for j in bitsdb.parse(_real("win10_qmgr.db"), recover=True)
            if j.partial and (j.display_name or "").startswith("Microsoft Outlook Offline Address Book")]
    assert len(jobs) == 4
    assert not any(job.creator_image for job in jobs)      # no creator taken from foreign bytes
    for job in jobs:
        verdict = assess(job)
        trusted, trust = trusted_view_of(job)
        assert verdict.confidence == "low" and trusted.creator_image is None
        quoted = {e["field"] for h in verdict.hits for e in h.evidence}
        assert not quoted & set(trust.ignored_fields) and verdict.severity in ("info", "low")


def _assert_system_cmd_critical(job) -> None:
    verdict = assess(job)
    assert verdict.severity == "critical", verdict.top_reasons()
    assert "cmd.exe" in verdict.reasons[0].text.lower() and "SYSTEM" in verdict.reasons[0].text


def test_system_job_with_cmd_notify_appendix_a_equivalent():
    """The SafeBreach Win10 pre-ESE job (FORMAT.md Appendix A) rebuilt as a decoded Job."""
    job = build_job({"display_name": "STST", **SYSTEM, "notify_program": r"c:\windows\System32\cmd.exe",
                     "creator_image": "", "state": "TRANSFERRING"},
                    [{"local_name": r"c:\temp\vlc.exe", "temp_name": r"c:\temp\BITFFC1.tmp",
                      "remote_name": "http://get.videolan.org/vlc/2.2.4/win64/vlc-2.2.4-win64.exe",
                      "bytes_total": 31717016, "bytes_transferred": 9985}], "stst")
    job.provenance = Provenance(source_path="qmgr0.dat", source_kind="legacy_state_file", state_file="current")
    assert job.type == JobType.DOWNLOAD and job.state == JobState.TRANSFERRING
    _assert_system_cmd_critical(job)


def test_system_job_with_cmd_notify_real_legacy_file():
    path = SAMPLES / "bitsinject" / "win10legacy_job_SYSTEM_cmd_vlc.dat"
    if not path.exists():
        pytest.skip(f"real sample {path} not available")
    jobs = list(bitsdb.parse(path))
    _assert_system_cmd_critical(next(j for j in jobs if j.owner_sid == "S-1-5-18"))


def test_evaluate_keeps_returning_the_hits():
    job = build_job({"notify_program": "cmd.exe"}, [{}], "compat")
    assert [h.rule_id for h in evaluate(job)] == [h.rule_id for h in assess(job).hits]


def test_rules_doc_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gen_rules_doc", ROOT / "tools" / "gen_rules_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "docs/RULES.md is stale: run python tools/gen_rules_doc.py"
