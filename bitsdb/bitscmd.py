"""Command lines and PowerShell text -> the BITS operations they perform.

bitsadmin (`/transfer`, `/create`, `/addfile`, `/SetNotifyCmdLine`, `/resume` ...) and the
BitsTransfer cmdlets (`Start-BitsTransfer -Source -Destination`, `Add-BitsFile`,
`Set-BitsTransfer`, ...). Used on Sysmon 1 / Security 4688 command lines, PowerShell 4104
script blocks and 4103/800 parameter bindings. Arguments are split the way Windows'
CommandLineToArgvW does; a command line may hold several commands (`cmd /c a & b`), and
`powershell -EncodedCommand` text is decoded and read too.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Iterable

from .model import BitsOperation

BITSADMIN = "bitsadmin"
POWERSHELL = "powershell"

#: bitsadmin switches that change a job -> (operation, how many values follow the job name).
_BITSADMIN_SETTERS = {
    "/setnotifycmdline": ("setnotifycmdline", 2), "/setnotifyflags": ("setnotifyflags", 1),
    "/setminretrydelay": ("setminretrydelay", 1), "/setnoprogresstimeout": ("setnoprogresstimeout", 1),
    "/setcustomheaders": ("setcustomheaders", -1), "/setpriority": ("setpriority", 1),
    "/setproxysettings": ("setproxysettings", -1), "/setdescription": ("setdescription", 1),
    "/setdisplayname": ("setdisplayname", 1), "/setcredentials": ("setcredentials", -1),
    "/setsecurityflags": ("setsecurityflags", 1), "/setmaxdownloadtime": ("setmaxdownloadtime", 1),
    "/setaclflags": ("setaclflags", 1), "/setreplyfilename": ("setreplyfilename", 1),
    "/sethttpmethod": ("sethttpmethod", 1), "/setclientcertificatebyid": ("setclientcertificate", -1),
    "/setclientcertificatebyname": ("setclientcertificate", -1), "/setpeercachingflags": ("setpeercachingflags", 1),
    "/setvalidationstate": ("setvalidationstate", -1), "/makecustomheaderswriteonly": ("makecustomheaderswriteonly", 0),
}
#: Switches that act on a job and take nothing else.
_BITSADMIN_JOB_ACTIONS = {"/resume": "resume", "/suspend": "suspend", "/complete": "complete", "/cancel": "cancel",
                          "/takeownership": "takeownership", "/replaceremoteprefix": "replaceremoteprefix"}
_BITSADMIN_GLOBAL = {"/rawreturn", "/wrap", "/nowrap", "/verbose", "/allusers"}
_TRANSFER_OPTIONS = {"/download", "/upload", "/upload-reply", "/dynamic"}

_SPLIT_COMMANDS = re.compile(r"\s*(?:&&|\|\||&|\||;|\r?\n)\s*")
_BITSADMIN_WORD = re.compile(r"(?:^|[\\/\s\"'])bitsadmin(?:\.exe)?(?=[\s\"']|$)", re.I)
_CMDLETS = ("start-bitstransfer", "add-bitsfile", "set-bitstransfer", "resume-bitstransfer",
            "complete-bitstransfer", "remove-bitstransfer", "suspend-bitstransfer")
_CMDLET_WORD = re.compile(r"\b(" + "|".join(re.escape(c) for c in _CMDLETS) + r")\b", re.I)
_COM_NOTIFY = re.compile(r"\.SetNotifyCmdLine\s*\(\s*(?P<args>[^)]*)\)", re.I)
_ENCODED = re.compile(r"(?:^|\s)[-/]e(?:n(?:c(?:o(?:d(?:e(?:d(?:c(?:o(?:m(?:m(?:a(?:n(?:d)?)?)?)?)?)?)?)?)?)?)?)?)?"
                      r"\s+([A-Za-z0-9+/=]{16,})", re.I)
_BINDING = re.compile(r'ParameterBinding\((?P<cmdlet>[\w-]+)\):\s*name="(?P<name>[^"]*)";\s*value="(?P<value>.*?)"\s*$',
                      re.I | re.M)


def split_args(text: str) -> list[str]:
    """Arguments as CommandLineToArgvW splits them: blanks separate, "..." groups, 2n backslashes
    before a quote give n and the quote toggles, 2n+1 give n and a literal quote."""
    args: list[str] = []
    current: list[str] = []
    in_quotes = have_arg = False
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == "\\":
            run = index
            while run < length and text[run] == "\\":
                run += 1
            count = run - index
            if run < length and text[run] == '"':
                current.append("\\" * (count // 2))
                if count % 2:
                    current.append('"')
                    index = run + 1
                else:
                    index = run
            else:
                current.append("\\" * count)
                index = run
            have_arg = True
            continue
        if char == '"':
            in_quotes = not in_quotes
            have_arg = True
        elif char in " \t" and not in_quotes:
            if have_arg:
                args.append("".join(current))
                current, have_arg = [], False
        else:
            current.append(char)
            have_arg = True
        index += 1
    if have_arg:
        args.append("".join(current))
    return args


def operations(text: str | None, depth: int = 0) -> list[BitsOperation]:
    """Every BITS operation in a command line or script text (empty when there is none)."""
    if not text:
        return []
    found: list[BitsOperation] = []
    for encoded in _ENCODED.findall(text) if depth < 2 else ():
        found.extend(operations(_decode_powershell(encoded), depth + 1))
    if _BITSADMIN_WORD.search(text):
        for piece in _pieces(text):
            found.extend(bitsadmin_operations(piece))
    if _CMDLET_WORD.search(text) or _COM_NOTIFY.search(text):
        found.extend(powershell_operations(text))
    return found


def _pieces(text: str) -> Iterable[str]:
    """Commands joined by & && | ; or line breaks, outside double quotes."""
    start, in_quotes = 0, False
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            in_quotes = not in_quotes
        elif not in_quotes:
            match = _SPLIT_COMMANDS.match(text, index)
            if match and match.end() > index and text[index] in "&|;\r\n":
                yield text[start:index]
                start = index = match.end()
                continue
        index += 1
    yield text[start:]


def _decode_powershell(encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False)
        return raw.decode("utf-16-le", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def bitsadmin_operations(command: str) -> list[BitsOperation]:
    """The operation of one bitsadmin invocation (the text from `bitsadmin` on)."""
    args = split_args(command)
    start = next((i for i, a in enumerate(args) if re.search(r"(^|[\\/])bitsadmin(\.exe)?$", a, re.I)), None)
    if start is None:
        return []
    args = args[start + 1:]
    while args and args[0].lower() in _BITSADMIN_GLOBAL:
        args = args[1:]
    if not args:
        return []
    switch, rest = args[0].lower(), args[1:]
    if switch == "/transfer":
        return _bitsadmin_transfer(rest)
    if switch == "/create":
        options = [a.lower() for a in rest if a.lower() in _TRANSFER_OPTIONS]
        names = [a for a in rest if a.lower() not in _TRANSFER_OPTIONS]
        return [BitsOperation("create", BITSADMIN, job=names[0] if names else None, options=options)]
    if switch in ("/addfile", "/addfilewithranges"):
        op = BitsOperation("addfile", BITSADMIN, job=_at(rest, 0), remote_name=_at(rest, 1), local_name=_at(rest, 2))
        if switch == "/addfilewithranges":
            op.value = _at(rest, 3)
        return [op]
    if switch == "/addfileset":
        return [BitsOperation("addfileset", BITSADMIN, job=_at(rest, 0), value=_at(rest, 1))]
    if switch in _BITSADMIN_SETTERS:
        name, count = _BITSADMIN_SETTERS[switch]
        op = BitsOperation(name, BITSADMIN, job=_at(rest, 0))
        values = rest[1:]
        if name == "setnotifycmdline":
            op.program = _null(_at(values, 0))
            op.arguments = _null(_at(values, 1))
        else:
            op.value = " ".join(values if count < 0 else values[:count]) or None
        return [op]
    if switch in _BITSADMIN_JOB_ACTIONS:
        return [BitsOperation(_BITSADMIN_JOB_ACTIONS[switch], BITSADMIN, job=_at(rest, 0))]
    return []          # read-only switches (/list, /info, /monitor, /get...) change nothing


def _bitsadmin_transfer(rest: list[str]) -> list[BitsOperation]:
    """bitsadmin /transfer <name> [/download|/upload] [/priority P] <remote> <local> [<remote> <local> ...]"""
    if not rest:
        return [BitsOperation("transfer", BITSADMIN)]
    job, tail = rest[0], rest[1:]
    options, files = [], []
    index = 0
    while index < len(tail):
        arg = tail[index]
        if arg.lower() in _TRANSFER_OPTIONS:
            options.append(arg.lower())
        elif arg.lower() == "/priority":
            options.append(f"/priority {_at(tail, index + 1) or ''}".strip())
            index += 1
        elif arg.lower().startswith("/acl"):
            options.append(arg.lower())
        else:
            files.append(arg)
        index += 1
    pairs = [(files[i], _at(files, i + 1)) for i in range(0, len(files), 2)] or [(None, None)]
    return [BitsOperation("transfer", BITSADMIN, job=job, remote_name=remote, local_name=local, options=list(options))
            for remote, local in pairs]


def _at(items: list[str], index: int) -> str | None:
    return items[index] if 0 <= index < len(items) else None


def _null(value: str | None) -> str | None:
    return None if value is None or value.upper() == "NULL" else value


# --------------------------------------------------------------------------- PowerShell

_PS_OPERATION = {"start-bitstransfer": "transfer", "add-bitsfile": "addfile", "set-bitstransfer": "set",
                 "resume-bitstransfer": "resume", "complete-bitstransfer": "complete",
                 "remove-bitstransfer": "cancel", "suspend-bitstransfer": "suspend"}
_PS_PARAMETERS = ("source", "destination", "displayname", "description", "transfertype", "priority",
                  "asynchronous", "bitsjob", "notifycmdline", "setnotifycmdline", "notifyflags", "customheaders",
                  "proxyusage", "proxylist", "retryinterval", "retrytimeout", "credential", "authentication",
                  "dynamic", "suspended", "maxdownloadtime", "securityflags", "useStoredCredential",
                  "transferpolicy", "hostname", "certstorelocation", "certstorename", "certhash", "proxybypass",
                  "proxyauthentication", "proxycredential", "notifycmdline")
_PS_POSITIONAL = {"transfer": ("source", "destination"), "addfile": ("bitsjob", "source", "destination"),
                  "set": ("bitsjob",), "resume": ("bitsjob",), "complete": ("bitsjob",), "cancel": ("bitsjob",),
                  "suspend": ("bitsjob",)}
_PS_SWITCHES = {"asynchronous", "dynamic", "suspended", "usestoredcredential"}
_PS_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"`]|`.)*"|[^\s,;|()'"]+|,""")


def powershell_operations(text: str) -> list[BitsOperation]:
    """Cmdlet calls (by parameter bindings of 4103/800 when present, else by reading the text)."""
    bindings = _BINDING.findall(text)
    if bindings:
        calls: dict[str, dict[str, list[str]]] = {}
        for cmdlet, name, value in bindings:
            calls.setdefault(cmdlet.lower(), {}).setdefault(name.lower(), []).append(value)
        return [op for cmdlet, params in calls.items() if cmdlet in _PS_OPERATION
                for op in _ps_ops(_PS_OPERATION[cmdlet], params)]
    found: list[BitsOperation] = []
    for match in _CMDLET_WORD.finditer(text):
        if text[match.start() - 1:match.start()] in ("'", '"') or text[match.end():match.end() + 1] in ("'", '"'):
            continue                    # a name in a string (a module manifest's CmdletsToExport), not a call
        operation = _PS_OPERATION[match.group(1).lower()]
        end = _statement_end(text, match.end())
        found.extend(_ps_ops(operation, _ps_parameters(operation, text[match.end():end])))
    for match in _COM_NOTIFY.finditer(text):
        values = [_unquote(v.strip()) for v in match.group("args").split(",")]
        found.append(BitsOperation("setnotifycmdline", POWERSHELL, program=_null(_at(values, 0)),
                                   arguments=_null(_at(values, 1))))
    return found


def _statement_end(text: str, start: int) -> int:
    match = re.compile(r"[;|\r\n}]").search(text, start)
    return match.start() if match else len(text)


def _ps_parameters(operation: str, text: str) -> dict[str, list[str]]:
    tokens = _PS_TOKEN.findall(text)
    params: dict[str, list[str]] = {}
    positional = list(_PS_POSITIONAL.get(operation, ()))
    current: str | None = None
    for index, token in enumerate(tokens):
        if token == ",":
            continue
        if token.startswith("-") and len(token) > 1 and token[1].isalpha():
            name, _, inline = token[1:].partition(":")
            current = _ps_name(name)
            params.setdefault(current, [])
            if current in _PS_SWITCHES:
                params[current].append("true")
                current = None
            elif inline:
                params[current].append(_unquote(inline))
                current = None
            continue
        value = _unquote(token)
        followed_by_comma = index + 1 < len(tokens) and tokens[index + 1] == ","
        if current is not None:
            params[current].append(value)
            current = current if followed_by_comma else None     # a list goes on after a comma
        elif positional:
            name = positional.pop(0)
            while name in params and positional:
                name = positional.pop(0)
            params.setdefault(name, []).append(value)
            current = name if followed_by_comma else None
    return params


def _ps_name(name: str) -> str:
    lower = name.lower()
    matches = [p.lower() for p in _PS_PARAMETERS if p.lower().startswith(lower)]
    return lower if lower in (m for m in matches) or len(set(matches)) != 1 else matches[0]


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        inner = token[1:-1]
        return inner.replace("''", "'") if token[0] == "'" else inner.replace('`"', '"')
    return token


def _ps_ops(operation: str, params: dict[str, list[str]]) -> list[BitsOperation]:
    sources = [s for v in params.get("source", []) for s in v.split(",") if s.strip()]
    targets = [t for v in params.get("destination", []) for t in v.split(",") if t.strip()]
    job = _first(params, "displayname") or _first(params, "bitsjob")
    options = sorted(k for k in params if k in _PS_SWITCHES or k in ("transfertype", "priority"))
    options = [f"-{k} {_first(params, k)}" if k not in _PS_SWITCHES else f"-{k}" for k in options]
    ops = []
    if operation in ("transfer", "addfile"):
        for index in range(max(len(sources), 1)):
            ops.append(BitsOperation(operation, POWERSHELL, job=job, remote_name=_at(sources, index),
                                     local_name=_at(targets, index) or (targets[0] if len(targets) == 1 else None),
                                     options=list(options)))
    elif operation != "set":
        ops.append(BitsOperation(operation, POWERSHELL, job=job, options=list(options)))
    notify = _first(params, "notifycmdline") or _first(params, "setnotifycmdline")
    if notify:
        pieces = [v for key in ("notifycmdline", "setnotifycmdline") for v in params.get(key, [])]
        ops.append(BitsOperation("setnotifycmdline", POWERSHELL, job=job, program=pieces[0],
                                 arguments=" ".join(pieces[1:]) or None))
    if operation == "set" and not notify:
        settings = {k: v for k, v in params.items() if k not in ("bitsjob",)}
        ops.append(BitsOperation("set", POWERSHELL, job=job, value="; ".join(
            f"{k}={','.join(v)}" for k, v in sorted(settings.items())) or None))
    return ops


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name) or []
    return values[0] if values else None


def image_name(path: str | None) -> str:
    """Lower-case file name of a process image path ('' when none)."""
    return re.split(r"[\\/]", path or "")[-1].strip().strip('"').lower()
