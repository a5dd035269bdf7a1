"""Text from outside (file names, answer bodies, exception texts) made safe to put in a message.

:func:`printable` escapes what could forge or hide log lines: control characters (CR, LF, ESC
and the rest of C0 and C1, U+0085 included), the Unicode line and paragraph separators, and the
bidirectional overrides that reorder what a reader sees. :func:`redact` replaces secrets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPED = [
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x061C,
    0x200E,
    0x200F,
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_TABLE = {
    code: _NAMED.get(chr(code), f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") for code in _ESCAPED
}
MASK = "***"


def printable(text: object) -> str:
    """``text`` with every character that could start a new log line or rewrite one escaped
    (``\\n``, ``\\r``, ``\\x1b``, ``\\u2028``...); everything else, non-ASCII letters included,
    unchanged."""
    return str(text).translate(_TABLE)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` (longest first, empty ones ignored) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
