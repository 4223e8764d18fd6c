"""One normaliser for Windows paths, command lines and URLs, used by every rule.

Attackers vary how a path is written (case, quotes, `%TEMP%`, `C:\\PROGRA~1`, `\\\\?\\`,
forward slashes, trailing spaces) so that string rules miss it. Rules compare the
normalised form; findings still quote the original value.
"""

from __future__ import annotations

import ipaddress
import math
import re
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
    return component


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
    parts = [_expand_short(part.rstrip(" .") if i else part) for i, part in enumerate(value.split("\\"))]
    return "\\".join(parts).rstrip(" ")


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
    out: dict[str, object] = {"scheme": None, "host": None, "port": None, "path": None}
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
    try:
        split = urlsplit(value)
    except ValueError:
        return out
    scheme = split.scheme.lower() or None
    if scheme and len(scheme) == 1:           # c:\... is a drive, not a scheme
        out.update(scheme="file", path=value)
        return out
    out["scheme"] = scheme
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
