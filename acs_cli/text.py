"""Text shown to people: shortening, and the one visible-escapes function for untrusted strings.

Everything a server sends (model text, finish reasons, model ids, error messages, headers) is
untrusted: on a terminal, C0 and C1 controls other than tab and newline, DEL, and the bidi
overrides that reorder what a reader sees are shown as visible escapes (`\\e`, `\\r`, `\\x07`,
`\\u202e`), never interpreted.
"""

from __future__ import annotations

_VISIBLE = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F]}
_VISIBLE.update({c: f"\\u{c:04x}" for c in range(0x80, 0xA0)})
_VISIBLE.update({c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
_VISIBLE[0x1B] = "\\e"
_VISIBLE[0x0D] = "\\r"
_VISIBLE[0x08] = "\\b"
_UNSAFE = frozenset(chr(c) for c in _VISIBLE)


def visible_pieces(text: str) -> list[tuple[str, bool]]:
    """Split text into (piece, is_escape) so escapes can be styled apart from model text."""
    if _UNSAFE.isdisjoint(text):
        return [(text, False)]
    text = text.replace("\r\n", "\n")
    pieces: list[tuple[str, bool]] = []
    start = 0
    for i, ch in enumerate(text):
        if ch in _UNSAFE:
            if i > start:
                pieces.append((text[start:i], False))
            pieces.append((_VISIBLE[ord(ch)], True))
            start = i + 1
    if start < len(text):
        pieces.append((text[start:], False))
    return pieces


def make_visible(text: str) -> str:
    """The text with every control character shown as a visible escape (newline and tab kept)."""
    if _UNSAFE.isdisjoint(text):
        return text
    return "".join(piece for piece, _ in visible_pieces(text))


def visible_wire(text: str) -> str:
    """Like make_visible, but every carriage return is shown too (`--raw` on a terminal shows
    the line endings as they came, as `cat -v` would)."""
    if _UNSAFE.isdisjoint(text):
        return text
    return "".join(_VISIBLE[ord(ch)] if ch in _UNSAFE else ch for ch in text)


def shorten(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters: line breaks shown as \\n, an ellipsis when cut."""
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 1] + "…"
