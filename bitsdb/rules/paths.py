"""One normaliser for Windows paths, command lines and URLs, and the one model of where a
path lies (who can write there), used by every rule and by the allow-list.

Attackers vary how a path is written (case, quotes, `%TEMP%`, `C:\\PROGRA~1`, `\\\\?\\`,
forward slashes, trailing spaces) so that string rules miss it. Rules compare the
normalised form; findings still quote the original value. `locate()` says which kind of
folder a normalised path is in (LOCATION_RULES, documented in docs/RULES.md).
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Environment variables expanded to the value they have on a default installation.
#: User-specific folders keep a `%user%` placeholder for the profile name.
ENVIRONMENT = {
    "comspec": r"c:\windows\system32\cmd.exe",
    "systemroot": r"c:\windows",
    "windir": r"c:\windows",
    "systemdrive": "c:",
    "homedrive": "c:",
    "programdata": r"c:\programdata",
    "allusersprofile": r"c:\programdata",
    "programfiles": r"c:\program files",
    "programw6432": r"c:\program files",
    "programfiles(x86)": r"c:\program files (x86)",
    "commonprogramfiles": r"c:\program files\common files",
    "commonprogramfiles(x86)": r"c:\program files (x86)\common files",
    "public": r"c:\users\public",
    "userprofile": r"c:\users\%user%",
    "homepath": r"\users\%user%",
    "appdata": r"c:\users\%user%\appdata\roaming",
    "localappdata": r"c:\users\%user%\appdata\local",
    "temp": r"c:\users\%user%\appdata\local\temp",
    "tmp": r"c:\users\%user%\appdata\local\temp",
}

#: Long names whose 8.3 short form (`POWERS~1.EXE`) is expanded when unambiguous.
SHORT_NAME_VOCABULARY = (
    "program files", "program files (x86)", "programdata", "documents and settings", "local settings",
    "application data", "common files", "microsoft", "windowspowershell", "appdata",
    "powershell.exe", "powershell_ise.exe", "bitsadmin.exe", "regsvr32.exe", "rundll32.exe", "certutil.exe",
    "msiexec.exe", "wscript.exe", "cscript.exe", "mshta.exe", "installutil.exe", "regasm.exe",
    "start menu", "startup", "downloads", "desktop", "microsoft shared",
)

_ENV_REF = re.compile(r"%([A-Za-z0-9_()]+)%")
_SHORT = re.compile(r"^([^~.\s]{1,6})~(\d)(?:\.([^.]{0,3}))?$")
_DEVICE_PREFIX = re.compile(r"^(?:\\\\\?\\|\\\?\?\\|\\\\\.\\)")


def short_name_of(long_name: str) -> tuple[str, str]:
    """The 6-character stem and 3-character extension Windows derives an 8.3 name from."""
    base, dot, ext = long_name.rpartition(".") if "." in long_name else (long_name, "", "")
    stem = re.sub(r"[\s.]", "", base)[:6]
    return stem, ext[:3]


def _expand_short(component: str) -> str:
    match = _SHORT.match(component)
    if not match:
        return component
    stem, _tilde, ext = match.group(1), match.group(2), match.group(3) or ""
    candidates = [name for name in SHORT_NAME_VOCABULARY if short_name_of(name) == (stem, ext)]
    if not candidates:
        return component
    # Windows numbers colliding short names in creation order; the vocabulary lists the usual order.
    return candidates[min(int(_tilde) - 1, len(candidates) - 1)]


def expand_environment(text: str) -> str:
    return _ENV_REF.sub(lambda m: ENVIRONMENT.get(m.group(1).lower(), m.group(0)), text)


def normalise_path(text: str | None) -> str | None:
    """Lower-case, unquoted, expanded, backslashed, prefix-free form of a Windows path."""
    if text is None:
        return None
    value = text.replace("\x00", "").strip().strip("\"'").strip()
    value = expand_environment(value.lower())
    value = value.replace("/", "\\")
    if value.startswith("\\\\?\\unc\\"):
        value = "\\\\" + value[8:]
    value = _DEVICE_PREFIX.sub("", value)
    unc = value.startswith("\\\\")
    value = re.sub(r"\\{2,}", r"\\", value)
    if unc:
        value = "\\" + value
    parts = [_expand_short(part.rstrip(" .") if i and part not in (".", "..") else part)
             for i, part in enumerate(value.split("\\"))]
    return "\\".join(_resolve_dots(parts, keep=4 if unc else 1)).rstrip(" ")


def _resolve_dots(parts: list[str], keep: int) -> list[str]:
    """Drop `.` and apply `..` as Windows does (never above the drive or the UNC share), so that
    `C:\\Program Files\\..\\Users\\Public` is judged where it really points."""
    if "." not in parts and ".." not in parts:
        return parts
    out = parts[:keep]
    for part in parts[keep:]:
        if part == ".":
            continue
        if part == "..":
            if len(out) > keep:
                out.pop()
            continue
        out.append(part)
    return out


def basename(path: str | None) -> str | None:
    if not path:
        return None
    return path.rstrip("\\").rsplit("\\", 1)[-1]


def dirname(path: str | None) -> str | None:
    if not path or "\\" not in path:
        return None
    return path.rsplit("\\", 1)[0]


def extension(path: str | None) -> str | None:
    name = basename(path)
    if not name or "." not in name:
        return None
    return name.rsplit(".", 1)[-1]


def split_command(command: str | None) -> list[str]:
    """Split a Windows command line the way CreateProcess sees argv[0] (quotes group)."""
    if not command:
        return []
    return [a if a else b for a, b in re.findall(r'"([^"]*)"|(\S+)', command.strip())]


def command_image(program: str | None, parameters: str | None) -> str | None:
    """The program BITS starts: the program field, else the first token of the parameters."""
    if program and program.strip().strip("\"'").strip():
        return normalise_path(program)
    tokens = split_command(expand_environment(parameters or ""))
    return normalise_path(tokens[0]) if tokens else None


def deobfuscate_command(command: str | None) -> str | None:
    """Lower-case command text with cmd caret escapes and empty quote pairs removed."""
    if command is None:
        return None
    value = expand_environment(command.replace("\x00", "")).lower()
    value = value.replace("^", "").replace('""', "").replace("''", "")
    return re.sub(r"\s+", " ", value).strip()


# --------------------------------------------------------------------------- URLs

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def parse_remote(remote: str | None) -> dict[str, object]:
    """Scheme, host, port and path of a remote name (URL, UNC or file path)."""
    out: dict[str, object] = {"scheme": None, "host": None, "port": None, "path": None, "userinfo": None}
    if not remote:
        return out
    value = remote.replace("\x00", "").strip().strip("\"'").strip()
    slashed = value.replace("/", "\\")
    if slashed.startswith("\\\\?\\unc\\") or slashed.lower().startswith("\\\\?\\unc\\"):
        slashed = "\\\\" + slashed[8:]
    if slashed.startswith("\\\\") and not value.lower().startswith(("http:", "https:", "ftp:", "file:")):
        parts = slashed[2:].split("\\", 1)
        out.update(scheme="unc", host=parts[0].lower().strip("[]"), path="\\" + (parts[1] if len(parts) > 1 else ""))
        return out
    if re.match(r"(?i)(https?|ftp)://", value):
        value = value.replace("\\", "/")     # WinHTTP reads a backslash as a path separator
    try:
        split = urlsplit(value)
    except ValueError:
        return out
    scheme = split.scheme.lower() or None
    if scheme and len(scheme) == 1:           # c:\... is a drive, not a scheme
        out.update(scheme="file", path=value)
        return out
    out["scheme"] = scheme
    out["userinfo"] = split.netloc.rpartition("@")[0] or None
    try:
        out["host"] = (split.hostname or "").lower().rstrip(".") or None
        out["port"] = split.port
    except ValueError:
        netloc = split.netloc.rsplit("@", 1)[-1].lower()
        host, _colon, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
        out["host"] = (host or netloc).strip("[]") or None
        out["port"] = int(port) if port.isdigit() else None
    out["path"] = split.path + (("?" + split.query) if split.query else "")
    return out


def host_is_ip(host: str | None) -> bool:
    if not host:
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    # Dotted forms Windows also accepts: decimal (3232235777) or hex (0xc0a80101) hosts.
    return bool(re.fullmatch(r"\d{8,10}|0x[0-9a-f]{8}", host))


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def longest_random_segment(path: str | None) -> int:
    """Length of the longest random-looking token of a URL path.

    A token (split on / \\ ? & = . _ - + ~ %) counts when it is 24+ characters long, mixes
    letters and digits and has an entropy of at least 3.5 bits per character: hashes, base64
    and generated ids, not version strings such as MicrosoftEdge_X64_110.0.1587.50.
    """
    if not path:
        return 0
    best = 0
    for token in re.split(r"[/\\?&=._\-+~%]", path):
        if len(token) >= 24 and re.search(r"\d", token) and re.search(r"[a-zA-Z]", token) \
                and entropy(token) >= 3.5:
            best = max(best, len(token))
    return best


# --------------------------------------------------------------------------- locations
#
# Where a path lies decides how much a fact about it is worth: a creator image in an
# admin-only folder cannot be planted by a standard user; a payload in a Startup folder runs
# at logon. The model is one ordered table (first match wins), over normalised paths (lower
# case, backslashes, %VARS% expanded, user profiles as c:\users\NAME\).

#: The kinds of folder, as docs/RULES.md explains them.
LOCATION_KINDS: dict[str, str] = {
    "autostart": "a file here is started by Windows at logon or shell start (Startup folders, PowerShell "
                 "profiles)",
    "system": "the Windows system folders (System32, SysWOW64, Fonts, the Windows folder itself); a few of their "
              "subfolders are writable by users and flagged so",
    "admin": "only administrators and SYSTEM can create files: Program Files, the rest of C:\\Windows "
             "(ccmcache, SoftwareDistribution …), the admin-only subtrees of ProgramData (Windows Defender, "
             "Package Cache, the BITS store …), the SYSTEM profile",
    "temp": "a temporary folder: a user's Temp (user-writable), C:\\Windows\\Temp (users may create files), "
            "the SYSTEM temp folders (admin-only)",
    "staging": "user-writable folders that software rarely installs into and attackers stage in: Users\\Public, "
               "files directly in ProgramData, Downloads, Desktop, Documents, LocalLow, the AppData roots, "
               "PerfLogs, the Recycle Bin, C:\\Windows\\Tasks / Tracing, new top-level folders on C:",
    "profile": "user-writable folders where applications keep their own files: the rest of a user profile "
               "(AppData\\Local\\Vendor\\App, Roaming\\Vendor …) and ProgramData application folders "
               "(ProgramData\\Vendor\\…: users may add files there by default, installed software stages its "
               "downloads there)",
    "remote": "a UNC path (\\\\host\\share\\…)",
    "unknown": "another drive, a relative path, or nothing recognisable (never trusted, never called staging)",
}


@dataclass(frozen=True)
class Location:
    kind: str
    writable: bool | None       # a standard user can create files there (None: cannot tell)
    area: str                   # the table row that matched, for explanations


_USER = r"c:\\(?:users|documents and settings)\\[^\\]+"
_SYSDIRS = r"c:\\windows\\(?:system32|syswow64|sysnative)"

#: (regex over the normalised path, kind, writable, area). Order matters: first match wins.
LOCATION_RULES: tuple[tuple[str, str, bool | None, str], ...] = (
    (_USER + r"\\(?:appdata\\roaming\\microsoft\\windows\\)?start menu\\programs\\startup\\", "autostart", True,
     "user Startup folder"),
    (r"c:\\programdata\\microsoft\\windows\\start menu\\programs\\startup\\", "autostart", False,
     "all-users Startup folder"),
    (_USER + r"\\(?:onedrive[^\\]*\\)?documents\\(?:windows)?powershell\\[^\\]*profile\.ps1$", "autostart", True,
     "PowerShell profile"),
    (_SYSDIRS + r"\\windowspowershell\\v1\.0\\[^\\]*profile\.ps1$", "autostart", False, "PowerShell profile"),
    (_SYSDIRS + r"\\config\\systemprofile\\appdata\\local\\temp\\", "temp", False, "SYSTEM temp folder"),
    (_SYSDIRS + r"\\config\\systemprofile\\", "admin", False, "SYSTEM profile"),
    (_SYSDIRS + r"\\(?:spool\\drivers\\color|spool\\printers|tasks|tasks_migrated|com\\dmp|fxstmp"
     r"|microsoft\\crypto\\rsa\\machinekeys|logfiles\\wmi)\\", "system", True,
     "user-writable folder inside System32"),
    (_SYSDIRS + r"\\", "system", False, "System32 / SysWOW64"),
    (r"c:\\windows\\fonts\\", "system", False, "Fonts"),
    (r"c:\\windows\\[^\\]+$", "system", False, "the Windows folder"),
    (r"c:\\windows\\systemtemp\\", "temp", False, "SYSTEM temp folder"),
    (r"c:\\windows\\serviceprofiles\\[^\\]+\\appdata\\local\\temp\\", "temp", False, "service temp folder"),
    (r"c:\\windows\\temp\\", "temp", True, "C:\\Windows\\Temp"),
    (r"c:\\windows\\(?:tasks|tracing|registration\\crmlog|debug\\wia|pla\\(?:reports|rules|templates))\\", "staging",
     True, "user-writable folder inside C:\\Windows"),
    (r"c:\\windows\\", "admin", False, "C:\\Windows"),
    (r"c:\\program files(?: \(x86\))?\\", "admin", False, "Program Files"),
    (r"c:\\programdata\\(?:microsoft\\windows defender|microsoft\\windows defender advanced threat protection"
     r"|microsoft\\network\\downloader|microsoft\\windows\\start menu|package cache|usoprivate|usoshared)\\",
     "admin", False, "admin-only ProgramData subtree"),
    (r"c:\\programdata\\[^\\]+$", "staging", True, "ProgramData root"),
    (r"c:\\programdata\\", "profile", True, "ProgramData application folder"),
    (r"c:\\users\\public\\", "staging", True, "Users\\Public"),
    (r"c:\\documents and settings\\all users\\", "staging", True, "All Users profile"),
    (r"c:\\users\\default\\", "admin", False, "default user profile"),
    (_USER + r"\\(?:appdata\\local|local settings)\\temp\\", "temp", True, "user Temp folder"),
    (_USER + r"\\appdata\\local\\microsoft\\windows\\(?:inetcache|temporary internet files)\\", "staging", True,
     "browser / Outlook cache"),
    (_USER + r"\\appdata\\locallow\\", "staging", True, "AppData\\LocalLow"),
    (_USER + r"\\(?:appdata\\(?:local|roaming)|application data|local settings\\application data)\\[^\\]+$",
     "staging", True, "AppData root"),
    (_USER + r"\\(?:appdata|application data|local settings)\\", "profile", True, "AppData"),
    (_USER + r"\\(?:downloads|desktop|documents|my documents|music|pictures|videos|favorites|links|contacts"
     r"|saved games|searches)\\", "staging", True, "user Downloads / Desktop / Documents"),
    (_USER + r"\\[^\\]+$", "staging", True, "user profile root"),
    (_USER + r"\\", "profile", True, "user profile"),
    (r"c:\\(?:perflogs|\$recycle\.bin|recycler)\\", "staging", True, "PerfLogs / Recycle Bin"),
    (r"c:\\(?:recovery|system volume information|boot|inetpub)\\", "admin", False, "system folder on C:"),
    (r"c:\\[^\\]+$", "staging", False, "root of C:"),
    (r"c:\\[^\\]+\\", "staging", True, "new top-level folder on C:"),
    (r"\\\\", "remote", None, "UNC path"),
)
_LOCATION_PATTERNS = tuple((re.compile(rx), kind, writable, area) for rx, kind, writable, area in LOCATION_RULES)
UNKNOWN_LOCATION = Location("unknown", None, "not a recognised folder")


def locate(path: str | None) -> Location | None:
    """The kind of folder a normalised path lies in (None for no path)."""
    if not path:
        return None
    for pattern, kind, writable, area in _LOCATION_PATTERNS:
        if pattern.match(path):
            return Location(kind, writable, area)
    return UNKNOWN_LOCATION


def pattern_prefix(pattern: str) -> str:
    """The literal folder part of a glob (everything before the first wildcard, up to a backslash)."""
    cut = min((pattern.index(c) for c in "*?[" if c in pattern), default=len(pattern))
    head = pattern[:cut]
    return head if cut == len(pattern) else head[:head.rfind("\\") + 1]


# --------------------------------------------------------------------------- hosts

#: Host suffixes that name machines of the local network, not the Internet.
INTRANET_SUFFIXES = (".local", ".lan", ".corp", ".internal", ".intranet", ".home.arpa", ".localdomain")
#: Address blocks of private networks (RFC 1918, RFC 4193); documentation and shared ranges are not.
INTRANET_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                             "fc00::/7"))


def host_matches(host: str | None, pattern: str) -> bool:
    """`pattern` is a host (equal) or `*.domain` (any subdomain of domain, not domain itself)."""
    if not host:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def in_domain(host: str | None, domain: str) -> bool:
    """`host` is `domain` or one of its subdomains."""
    return bool(host) and (host == domain or host.endswith("." + domain))


def is_intranet_host(host: str | None) -> bool:
    """A private / link-local / loopback address, a single-label name or an intranet suffix."""
    if not host:
        return False
    bare = host.strip("[]")
    try:
        address = ipaddress.ip_address(bare)
        return address.is_loopback or address.is_link_local or any(address in net for net in INTRANET_NETWORKS
                                                                    if net.version == address.version)
    except ValueError:
        pass
    if host_is_ip(bare):
        return False
    return "." not in bare or bare.endswith(INTRANET_SUFFIXES)


def lookalike_of(host: str | None, vendors: set[str], cdn_suffixes: set[str], known: list[str]) -> str | None:
    """The vendor domain `host` imitates, or None.

    A look-alike holds a vendor domain between label boundaries and goes on after it
    (dl.google.com.evil.net, download-microsoft.com.cdn.top, dl-google.com.evil.net) without
    being that domain or one of its subdomains. Hosts the allow-list names, CDN aliases
    (officecdn.microsoft.com.edgesuite.net) and country variants (google.com.au) are not.
    """
    if not host or host_is_ip(host) or any(host_matches(host, pattern) for pattern in known):
        return None
    if any(in_domain(host, suffix) for suffix in cdn_suffixes):
        return None
    for vendor in sorted(vendors):
        if in_domain(host, vendor):
            continue
        match = re.search(rf"(?:^|[.-]){re.escape(vendor)}([.-].*)$", host)
        if match and not re.fullmatch(r"\.[a-z]{2}", match.group(1)):
            return vendor
    return None


def url_extension(path: str | None) -> str | None:
    """Extension of the last segment of a URL path (query and fragment ignored)."""
    if not path:
        return None
    last = path.split("?", 1)[0].split("#", 1)[0].replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else None


# --------------------------------------------------------------------------- names

_VOWELS = set("aeiouy")


def _consonant_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"[b-df-hj-np-tv-xz]+", text.lower())), default=0)


def _pronounceable(word: str) -> bool:
    lower = word.lower()
    return sum(c in _VOWELS for c in lower) / len(lower) >= 0.25 and _consonant_run(lower) < 6


def looks_random(name: str | None) -> bool:
    """A job name that reads like generated noise (`kX9qzW2vLp`, `3f9a1c77be`), not words.

    One token (no spaces or path), 6-40 characters, and either letters mixed with digits at
    high entropy, or letters with almost no vowels / a long consonant run. Names built from
    words (`PreSignInSettingsConfigJSON`), GUIDs and version strings do not count.
    """
    if not name:
        return False
    text = name.strip()
    if not 6 <= len(text) <= 40 or re.search(r"[\s\\/:.]", text):
        return False
    if re.fullmatch(r"\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?", text, re.I):
        return False
    letters = [c for c in text.lower() if c.isalpha()]
    digits = sum(c.isdigit() for c in text)
    if not letters:
        return False
    words = re.findall(r"[A-Z]?[a-z]{3,}", text)
    if sum(len(w) for w in words) >= 0.6 * len(text) and all(_pronounceable(w) for w in words):
        return False
    vowel_ratio = sum(c in _VOWELS for c in letters) / len(letters)
    longest_consonants = _consonant_run(text)
    if digits and len(letters) >= 3 and entropy(text) >= 3.0 and len(text) >= 8:
        return True
    return len(letters) >= 6 and (vowel_ratio < 0.2 or longest_consonants >= 6)
