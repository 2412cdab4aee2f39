"""Exact, reversible escaping of file names for JSON lines and CSV, and safe display on a terminal.

File names are bytes on POSIX. Python decodes the bytes that are not UTF-8 as lone surrogates
U+DC80..U+DCFF (PEP 383, ``surrogateescape``), so a name always round-trips through ``str`` and
``os.fsencode``. The output files must stay valid UTF-8 and one row per line, so:

- **JSON lines** (`json_line`): standard JSON, where every code point that could upset a reader or a
  terminal is written as a ``\\uXXXX`` escape: the C0 controls (as JSON always does), DEL, the C1
  controls U+0080..U+009F, the bidirectional controls (U+200E, U+200F, U+202A..U+202E,
  U+2066..U+2069) and every surrogate. ``json.loads`` gives the exact ``str`` back, and
  ``os.fsencode`` of it the exact bytes of the name.
- **CSV cells** (`csv_escape` / `csv_unescape`): percent escapes, as in URLs, for the characters a
  one-line UTF-8 cell cannot hold, over the UTF-8 bytes of the name: a control character is its
  bytes as ``%XX`` (U+000A is ``%0A``, U+0085 is ``%C2%85``), an undecodable byte is ``%XX`` with
  its value (``%FF``), and a ``%`` followed by two upper-case hex digits is written ``%25`` (a lone ``%`` stays as it is, so
  ``100% crop.jpg`` is unchanged). The cell then gets the spreadsheet guard `spreadsheet_safe`: a
  leading apostrophe when it starts with ``= + - @ '``, a tab or a carriage return. `csv_unescape`
  undoes both exactly.
- **Terminal** (`printable`): control characters, surrogates and the Unicode bidirectional
  overrides are shown as Python-style escapes (``\\x1b``, ``\\udcff`` shown as ``\\xff``, ``\\u202e``),
  so a file name can neither move the cursor, recolour nor hide text.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

__all__ = ["csv_escape", "csv_unescape", "json_line", "printable", "shell_quote", "spreadsheet_safe"]

# Code points JSON lines write as \\uXXXX (C0 is escaped by json itself).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\ud800-\udfff\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Characters a CSV cell escapes as %XX: controls, undecodable bytes, and "%" before two hex digits.
_CSV_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\udc80-\udcff\u200e\u200f\u202a-\u202e\u2066-\u2069]"
                         "|%(?=[0-9A-F]{2})")
_CSV_ESCAPE = re.compile(rb"%([0-9A-F]{2})")
# What a terminal must not receive raw: controls, surrogates, bidi embeddings/overrides/isolates.
_TERMINAL_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u202a-\u202e\u2066-\u2069]")

#: First characters that make a spreadsheet read a cell as a formula (CSV injection), plus the
#: apostrophe itself, so that the guard is unambiguous to undo.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def json_line(row: Any) -> str:
    """One JSON text (no newline) for ``row``: UTF-8-safe and exact for any file name (see module)."""
    text = json.dumps(row, ensure_ascii=False, allow_nan=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _csv_code(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte: its value
        return f"%{code - 0xDC00:02X}"
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))  # C0/DEL: one byte; C1: two


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that no spreadsheet runs as a formula: text starting with ``= + - @``, a tab, a
    carriage return or an apostrophe gets a leading apostrophe (OWASP's advice against CSV injection;
    the apostrophe is in the list so that the guard is exactly reversible). Numbers and None pass."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_escape(text: str) -> str:
    """The CSV cell for ``text``: percent escapes (see module), then `spreadsheet_safe`."""
    return spreadsheet_safe(_CSV_UNSAFE.sub(_csv_code, text))


def csv_unescape(cell: str) -> str:
    """The exact inverse of `csv_escape`."""
    if cell.startswith("'"):
        cell = cell[1:]
    if "%" not in cell:
        return cell
    data = _CSV_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), cell.encode("utf-8", "surrogateescape"))
    return data.decode("utf-8", "surrogateescape")


def _terminal_code(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name: show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: Any) -> str:
    """``str(text)`` safe to print on a terminal: controls, surrogates and bidi overrides escaped."""
    return _TERMINAL_UNSAFE.sub(_terminal_code, str(text))


def shell_quote(arg: str) -> str:
    """``arg`` quoted for a POSIX shell, exactly: ``shlex.quote``, or bash/zsh ANSI-C quoting
    (``$'...'``) when it holds characters a terminal must not receive raw."""
    if not _TERMINAL_UNSAFE.search(arg):
        return shlex.quote(arg)
    out = []
    for char in arg:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif _TERMINAL_UNSAFE.match(char):
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        elif char in "\\'":
            out.append("\\" + char)
        else:
            out.append(char)
    return "$'" + "".join(out) + "'"
