#!/usr/bin/env python3
"""Generate docs/RULES.md from the built-in rule, allow-list and verdict files and the location model.

Usage: python tools/gen_rules_doc.py            # rewrite docs/RULES.md
       python tools/gen_rules_doc.py --check    # exit 1 when the committed file is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bitsdb.rules.allowlist import SITE, USER_CONTENT_LISTS  # noqa: E402
from bitsdb.rules.conditions import COMPOSITES, OPS  # noqa: E402
from bitsdb.rules.engine import ALLOWLIST_LOWERING, BUILTIN_DIR, load_rules  # noqa: E402
from bitsdb.rules.fields import FILE_FIELDS, JOB_FIELDS  # noqa: E402
from bitsdb.rules.logfields import COVERAGE_FIELDS, LOG_EVENT_FIELDS, PROCESS_FIELDS, SERVICE_FIELDS  # noqa: E402
from bitsdb.rules.paths import INTRANET_NETWORKS, INTRANET_SUFFIXES, LOCATION_KINDS, LOCATION_RULES  # noqa: E402
from bitsdb.rules.trust import SECTION_FIELDS, SECTION_ORDER  # noqa: E402
from bitsdb.rules.verdict import SEVERITIES  # noqa: E402

TARGET = ROOT / "docs" / "RULES.md"

VERDICT = """\
## Verdicts

`bitsdb scan` gives one verdict per job: a **severity** (<<severities>>), a **confidence** (high,
medium, low) and its **reasons**, in order; the rule hits stay attached as its evidence (`-f jsonl`
keeps everything: hits with their evidence, the allow-list decision, the job's identity and
provenance, the as-of time). How a verdict is made:

1. **What the rules may believe.** A damaged record is reduced to the fields decoded before its
   damage point (see *Damaged records*); time-based fields are counted to the as-of time.
2. **Hits.** Every rule is tested; each hit has a severity (raised by the rule's escalations)
   and belongs to one **facet**, an independent aspect of the job.
3. **Allow-list.** When an allow-list entry matches (see *Allow-list*), hits of rules marked
   `lower` drop <<lowering>> levels. Rules marked `keep` are never lowered: a notify command that
   starts a shell or LOLBin (any notify command, in fact, unless it is an exact documented
   Windows command), a payload in a Startup or system folder, a deleted job that had a notify
   command. `documented-notify` rules are lowered only by an exact documented Windows notify
   command (program and arguments, `notify_commands`).
4. **Combination.** The verdict is the most severe hit, raised by the first combination rule
   that holds and names a higher severity (below, from `bitsdb/rules/verdict.yaml`): several
   independent suspicious facts reach high. Hits of one facet count once.
5. **Reasons**: what raised the verdict first (a combination rule), then every hit from the
   most severe down, each with the reason that raised it. `scan -f table` shows the first three.
6. **Confidence** is high unless the evidence behind the verdict is incomplete: *low* when
   fields that decide a verdict (strings, owner, file list, trailer, file records) were ignored
   as damaged; *medium* when other damaged fields were ignored, when the job's file records were
   not found (URLs and destinations unknown), for legacy records (no creator image), and when an
   allow-list entry matched without the file records or took a host for one of the site's own
   servers (`<<site>>`).

Facets:

<<facets>>

Combination rules:

<<combinations>>
"""

TIME = """\
## Time (as-of)

Rules that count age (`age_days`, `idle_days`, `expired_days`: *long-pending-job*) count to an
**as-of time**. `bitsdb scan` and `bitsdb rules explain` use, for each store file, the newest
time any of its records holds (creation, modification, completion), unless `--as-of TIME`
(ISO 8601, UTC unless an offset is given) says otherwise: never the analyst's clock, so the
same evidence gives the same verdicts whenever it is scanned, and a job pending for months
before acquisition is seen as such. The Python API (`assess(job)`) counts to the job's own
newest time unless `as_of=` is given. The verdict records the as-of time it used.
"""

DAMAGE = """\
## Damaged records

A partial record keeps the fields decoded before its damage point (`partial_reason`). Rules
see a record through `bitsdb/rules/trust.py`:

* the walk stopped in a section (`stopped at SECTION: …`): that section and every later one are
  ignored (its prefix was parsed from bytes that no longer follow the format);
* another record was written over this one (`overwritten: another job record starts N bytes
  after the marker`): every section ending after byte N is ignored, however well it parsed.
  Section ends are measured by building each decoded section again with its own schema;
* a file record whose body failed, or that was overwritten, is ignored;
* damage after the last field (extra bytes, a missing footer) costs nothing.

Ignored fields are absent for the rules (a missing creator is unknown, never "not a known
updater" on its own) and listed in `rules explain`; the verdict's confidence drops as
described above. Sections in order, with the fields they fill:

<<sections>>
"""

LOCATIONS = """\
## Locations: the user-writable model

Every path a rule judges (creator image, notify program, local file) is normalised, then placed
in one kind of folder by one ordered table (`bitsdb/rules/paths.py`, first match wins).
`*_location` fields hold the kind, `*_writable` whether a standard user can create files
there (unknown for other drives and UNC paths). Kinds:

<<kinds>>

The table (regular expressions over the normalised path; `USER` stands for
`c:\\\\(users|documents and settings)\\\\NAME`):

<<locations>>

Hosts: `files.remote_host_intranet` means a private address (<<networks>>), a loopback or
link-local address, a single-label name, or a name ending in <<suffixes>>.
"""

ALLOWLIST = """\
## Allow-list

Entries (`bitsdb/rules/allowlist.yaml`, site entries with `--allowlist FILE`) describe how a
known program really creates jobs; each cites where that behaviour is documented or was seen.
An entry lowers hits only when the facts an attacker controls cannot satisfy it alone:

* **creator**: globs over the normalised creator image. When every creator pattern lies in an
  admin-only folder (its literal folder part, so `c:\\program files*\\` would not count: it
  also matches a user-created `C:\\Program Filesx\\`) the entry is *machine*-scoped: it matches
  when the creator, the owner, the job type and, for every file the record still has, the host
  and destination match. A record whose file records are missing matches with medium confidence.
* A creator in a user-writable folder makes the entry *per-user*: it needs **every** fact:
  creator, owner, and at least one file, every one of them from the vendor's hosts into the
  vendor's folders.
* **hosts**: exact names, or `*.domain` for the vendor's own update subdomains. A host or
  wildcard covering anyone's content (the lists <<user_content>>) is refused when the file
  loads, and so is `*.` over a broad parent domain (`$broad_domains`: microsoft.com, live.com,
  googleapis.com …). `<<site>>` stands for the site's own servers (WSUS, ConfigMgr distribution
  points): accepted only when every creator and destination is admin-only, it matches an intranet
  host or any other domain name that serves no one else's content and imitates no vendor host,
  never a public IP address, and the verdict's confidence drops to medium (list the servers
  with `--allowlist` to have them verified).
* **destinations**: globs over the normalised local path (`..` resolved), the vendor's folders.
* **owner**: `system`, `local_service`, `network_service`, `user` or SID globs.
* **job_name** (optional) never counts on its own. **legacy_job_name** lets records without a
  creator image (legacy qmgr0/1.dat, damaged records) match: then name, owner, type, hosts and
  destinations must all match.
* Facts that the allow-list checks also feed rules: a creator with an entry's file name but
  elsewhere (or a per-user updater fetching from other hosts) is `impersonated-updater`; an
  entry's specific job name on a job whose creator or owner differ is `impersonated-job-name`;
  an installed (admin-only) updater fetching from a host that is not its vendor's is
  `updater-foreign-host`. Processes hosting many components (`$service_host_processes`:
  svchost.exe …) are not judged that way.

`bitsdb rules explain` shows each entry's verdict on a job, fact by fact.

<<entries>>

Documented Windows notify commands (exact program and arguments; the only notify commands
whose hit is lowered):

<<notify>>
"""

LANGUAGE = """\
## Writing rules

A rule file is YAML with the top-level keys `rules`, `lists` (named value lists, used as `$name`),
`allowlist`, `notify_commands`, `facets` and `combine`. Load your own with
`bitsdb scan --rules FILE|DIR` (repeatable) and validate them with `bitsdb rules check FILE`;
site allow-list entries go in a file with only `allowlist:` passed with `--allowlist FILE`. A
file that does not load (bad YAML, an unknown key, field or facet, a bad regex, an unknown
`$list`, a duplicate id, an allow-list entry an attacker could satisfy) is an error naming the
file, the item and the line; nothing is skipped silently.

```yaml
rules:
  - id: my-rule                      # letters, digits, . _ -
    title: One line shown in hits
    severity: medium                 # <<severities>>
    facet: source                    # one of the facets above (default: other)
    attack: [T1197, T1105]           # T1197 is required
    description: Why it matters (shown in this reference).
    explain: 'optional headline naming {field} values'
    allowlisted: lower               # lower (default) | keep | documented-notify
    when: CONDITION
    escalate:                        # optional: raise severity, add reasons / techniques
      - {severity: high, reason: why, attack: [T1059], when: CONDITION}
combine:
  - {id: my-combination, severity: high, reason: '{count} facts ({facets})', when: {facets: 2, at_least: medium}}
```

Conditions:

```
CONDITION := {all: [CONDITION, ...]} | {any: [CONDITION, ...]} | {not: CONDITION}
           | {any_file: CONDITION} | {all_files: CONDITION}     # one file / every file satisfies it
           | {field: FIELD, OPERATOR: VALUE, case: sensitive?, match: any|all?}
```

* Operators: <<ops>>. `in` and a list VALUE mean "any of"; `$name` inserts a named list.
  `domain` matches the host itself or any subdomain (`duckdns.org` matches `a.duckdns.org`, not
  `duckdns.org.example.com`). `regex` is Python syntax, searched anywhere in the value.
  `gt/ge/lt/le` compare numbers; `exists: true` means present and non-empty; `empty: true` means
  absent, empty text or an empty list. A field that is unknown (absent, or ignored as damaged)
  satisfies no test but `exists: false` / `empty: true`.
* String tests are case-insensitive unless `case: sensitive`.
* Path fields (kind `path`) hold the normalised form: lower case, backslashes, quotes and
  trailing spaces/dots removed, `\\\\?\\` / `\\??\\` prefixes dropped, `.` and `..` resolved,
  `%COMSPEC%`, `%TEMP%`, `%APPDATA%`… expanded (user folders as `c:\\users\\%user%\\…`), 8.3
  names such as `PROGRA~1`, `POWERS~1.EXE` expanded. Needles on path fields are normalised the
  same way. Folder fields end with a backslash. Hits quote the original value.
* A `files.*` field outside `any_file`/`all_files` is tested over all files of the job: any file
  by default, every file with `match: all` (false for a job without files). Inside
  `any_file`/`all_files` it names the file being tested, so several tests apply to the same file.
* Combinators: <<composites>>.
* Evidence: every test that made the rule hold is quoted in the hit as `field = value`.
* Subjects: rules are written for the `job` subject (its fields below). Another source of facts
  registers its own subject kind and fields (`bitsdb.rules.fields.SUBJECT_FIELDS`) and its rules
  say `subject: KIND`; the verdict engine is the same.

## Commands

`bitsdb scan EVIDENCE...` prints one verdict per job (`-f table|jsonl|csv`): the table one line
per job (severity, confidence, host, job, name, top reasons), CSV one row per job, JSON Lines
everything. `--min-severity` hides jobs below a verdict severity, `--fail-on SEVERITY` makes the
exit status 3 when a verdict at or above it exists, `--allowlist FILE` adds site entries,
`--as-of TIME` sets the time time-based rules count to, `--rules` adds rule files. Exit status:
0 ok; 1 an input could not be read (others still scanned); 2 usage error or a rule / allow-list
file that does not load; 3 `--fail-on` threshold reached (wins over 1).

`bitsdb rules explain EVIDENCE... [--job ID]` prints, for each job, every allow-list entry and
which facts matched, every rule with each test and the value it saw (and each escalation), the
combination rules that applied, and the verdict with its confidence and reasons.
`bitsdb rules list` lists the rules; `bitsdb rules check FILE` validates a rule file.
"""


def _table(rows: list[list[str]], head: list[str]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return out


def _code(values) -> str:
    return ", ".join(f"`{v}`" for v in values)


#: Subjects other than jobs (docs/EVENTLOGS.md): kind, fields, what one is.
SUBJECTS = (("process", PROCESS_FIELDS, "a BITS command line or notify run no job was linked to"),
            ("service", SERVICE_FIELDS, "the BITS service of a SYSTEM hive, with the SOFTWARE policies"),
            ("log_event", LOG_EVENT_FIELDS, "a System event about the BITS service"),
            ("log_coverage", COVERAGE_FIELDS, "what the event logs read for one host cover"))


def render() -> str:
    ruleset = load_rules()
    raw_rules = {r["id"]: r for name in ("builtin.yaml", "eventlogs.yaml")
                 for r in yaml.safe_load((BUILTIN_DIR / name).read_text(encoding="utf-8"))["rules"]}
    fill = {"<<severities>>": " < ".join(SEVERITIES), "<<lowering>>": str(ALLOWLIST_LOWERING),
            "<<ops>>": _code(OPS), "<<composites>>": _code(COMPOSITES),
            "<<user_content>>": ", ".join(f"`${n}`" for n in USER_CONTENT_LISTS),
            "<<networks>>": ", ".join(str(n) for n in INTRANET_NETWORKS),
            "<<suffixes>>": _code(INTRANET_SUFFIXES), "<<site>>": SITE}
    facets = _table([[f"`{name}`", text] for name, text in ruleset.facets.items()], ["Facet", "What it covers"])
    combinations = _table([[f"`{c.id}`", c.severity, f"`{c.when.describe()}`", c.description or c.reason]
                           for c in ruleset.combinations], ["Rule", "Verdict", "When", "Why"])
    sections = _table([[f"`{s}`", ", ".join(SECTION_FIELDS[s])] for s in SECTION_ORDER], ["Section", "Fields"])
    kinds = _table([[f"`{k}`", text] for k, text in LOCATION_KINDS.items()], ["Kind", "Meaning"])
    user = r"c:\\(?:users|documents and settings)\\[^\\]+"
    locations = _table([[f"`{rx.replace(user, 'USER')}`", kind, {True: "yes", False: "no", None: "?"}[writable], area]
                        for rx, kind, writable, area in LOCATION_RULES], ["Path", "Kind", "User-writable", "Area"])
    entries = _table([[e.name, e.scope, "<br>".join(f"`{c}`" for c in e.creator) or "(records without creator)",
                       _code(e.owner), _code(e.hosts), "<br>".join(f"`{d}`" for d in e.destinations),
                       _code(e.job_name + [f"legacy: {n}" for n in e.legacy_job_name]) or "any",
                       ", ".join(e.types), " ".join(e.source.split())] for e in ruleset.allowlist],
                     ["Entry", "Scope", "Creator", "Owner", "Hosts", "Destinations", "Job names", "Types", "Source"])
    notify = _table([[n.name, f"`{n.program}`", _code(n.parameters), _code(n.owner), " ".join(n.source.split())]
                     for n in ruleset.notify_commands], ["Command", "Program", "Arguments", "Owner", "Source"])

    def text(template: str, **parts: list[str]) -> str:
        for key, value in {**fill, **{f"<<{k}>>": "\n".join(v) for k, v in parts.items()}}.items():
            template = template.replace(key, value)
        return template

    lines = ["# bitsdb detection rules", "",
             "<!-- generated by tools/gen_rules_doc.py from bitsdb/rules/builtin.yaml, eventlogs.yaml, allowlist.yaml, "
             "verdict.yaml and paths.py; do not edit -->", "",
             f"{len(ruleset.rules)} built-in rules in {len(ruleset.facets) - 1} facets, "
             f"{len(ruleset.combinations)} combination rules, {len(ruleset.allowlist)} allow-list entries, "
             f"{len(ruleset.notify_commands)} documented notify commands. Severities: {' < '.join(SEVERITIES)}.", "",
             text(VERDICT, facets=facets, combinations=combinations), text(TIME), text(DAMAGE, sections=sections),
             text(LOCATIONS, kinds=kinds, locations=locations), text(ALLOWLIST, entries=entries, notify=notify),
             "## Rules at a glance", ""]
    rows = []
    for rule in ruleset.rules:
        span = rule.severity if rule.max_severity == rule.severity else f"{rule.severity} → {rule.max_severity}"
        attack = sorted({*rule.attack, *(a for e in rule.escalate for a in e.attack)})
        subject = f" (subject: {rule.subject})" if rule.subject != "job" else ""
        rows.append([f"[`{rule.id}`](#{rule.id})", rule.facet, span, rule.allowlisted, ", ".join(attack),
                     rule.title + subject])
    lines += _table(rows, ["Rule", "Facet", "Severity", "Allow-list", "ATT&CK", "Title"]) + ["", "## Rules", ""]
    for rule in ruleset.rules:
        lowering = {"keep": "; allow-listing never lowers it",
                    "documented-notify": "; lowered only by a documented Windows notify command"}
        lowering = lowering.get(rule.allowlisted, "")
        lines += [f"### {rule.id}", "", f"**{rule.title}** — facet `{rule.facet}`, severity `{rule.severity}`, "
                  "ATT&CK " + ", ".join(f"`{a}`" for a in rule.attack) + lowering, "", rule.description, ""]
        body = {"when": raw_rules[rule.id]["when"]}
        if raw_rules[rule.id].get("escalate"):
            body["escalate"] = raw_rules[rule.id]["escalate"]
        lines += ["```yaml", yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110).rstrip(), "```", ""]
    lines += [text(LANGUAGE), "## Fields", "", "Job fields:", ""]
    lines += _table([[f"`{f.path}`", f.kind, f.description] for f in JOB_FIELDS], ["Field", "Kind", "Meaning"])
    lines += ["", "File fields (one value per file):", ""]
    lines += _table([[f"`{f.path}`", f.kind, f.description] for f in FILE_FIELDS], ["Field", "Kind", "Meaning"])
    for kind, specs, what in SUBJECTS:
        lines += ["", f"Fields of `subject: {kind}` rules ({what}):", ""]
        lines += _table([[f"`{f.path}`", f.kind, f.description] for f in specs], ["Field", "Kind", "Meaning"])
    lines += ["", "## Named lists", ""]
    lines += _table([[f"`${name}`", _code(values)] for name, values in ruleset.lists.items()], ["List", "Values"])
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run python tools/gen_rules_doc.py", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
