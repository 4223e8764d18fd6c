"""Text the tool did not write: strings from evidence that are not valid Unicode, and messages.

Two rules live here and nowhere else (README "Output", docs/SECURITY.md):

* A value that is not valid Unicode (a lone UTF-16 surrogate in a job string, bytes of a
  file name that are not UTF-8) becomes text with U+FFFD in place of each bad unit, as a
  `RepairedText` that keeps the exact original bytes in `.raw`. The model moves that into
  the record's `raw_strings` map (field -> hex), so output is always valid UTF-8 and the
  evidence's bytes are never lost (encoders rebuild them from the map).
* A message (error, warning, progress, summary) shows control characters, line and
  paragraph separators, format characters and lone surrogates as escapes, so one problem
  is always one line and no value from the evidence can forge a line of its own.
"""

from __future__ import annotations

import os
import re

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


class RepairedText(str):
    """Text with U+FFFD where the source had a unit that is not Unicode; `.raw` holds the source bytes."""

    raw: bytes

    def __new__(cls, text: str, raw: bytes) -> "RepairedText":
        self = super().__new__(cls, text)
        self.raw = raw
        return self

    def __reduce__(self):                  # worker processes send records back pickled
        return (RepairedText, (str(self), self.raw))


def is_valid(text: str) -> bool:
    """True when `text` holds no lone surrogate (it encodes to UTF-8)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_utf16(data: bytes) -> str:
    """UTF-16LE bytes as text: a plain str when valid, else a RepairedText keeping the bytes."""
    try:
        return data.decode("utf-16-le")
    except UnicodeDecodeError:
        return RepairedText(data.decode("utf-16-le", "replace"), bytes(data))


def utf16_bytes(text: str) -> bytes:
    """The UTF-16LE code units of `text` (lone surrogates included): what BITS stores."""
    return text.encode("utf-16-le", "surrogatepass")


def path_bytes(text: str) -> bytes:
    """The bytes of a file name: what the file system holds (Python keeps undecodable bytes as
    surrogate escapes), or WTF-8 when the name held a lone UTF-16 surrogate (NTFS names)."""
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def repaired(text: str, raw_of=utf16_bytes) -> str:
    """`text` itself when valid; else a RepairedText with U+FFFD per lone surrogate and the raw bytes."""
    if is_valid(text):
        return text
    return RepairedText(_SURROGATE.sub(REPLACEMENT, text), raw_of(text))


def repaired_path(text: str) -> str:
    """A path for output: U+FFFD per byte that was not UTF-8, the file system's bytes kept in `.raw`."""
    return repaired(text, path_bytes)


def matches(text: str, raw: bytes) -> bool:
    """True when UTF-16LE `raw` decodes (U+FFFD for bad units) to `text`: the raw value still stands for it."""
    return raw.decode("utf-16-le", "replace") == text


# ----------------------------------------------------------------------------- messages

#: C0 and C1 controls, DEL, line/paragraph separators, bidi and other format characters, surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
                     "\ufeff\ufff9-\ufffb\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:           # a byte of a file name that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """`text` with every character that could break or forge a line of a message escaped."""
    return _UNSAFE.sub(_escape, str(text))
