"""Text shown to people: shortening, and the one visible-escapes function for untrusted strings.

Everything a server sends (model text, finish reasons, model ids, error messages, headers) is
untrusted: on a terminal, C0 and C1 controls other than tab and newline, DEL, and the bidi
overrides that reorder what a reader sees are shown as visible escapes (`\\e`, `\\r`, `\\x07`,
`\\u202e`), never interpreted.
"""

from __future__ import annotations

import re

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


MIN_TEXT = 24  # the narrowest text column a hanging indent may leave
# patterns compiled on first use (re caches them), so importing this module stays cheap
_SGR = r"\x1b\[[0-9;]*m"  # our own styles: they take no room on the screen
_WORD = r"( *)([^ ]+)"  # only U+0020 breaks a line: a no-break space never does


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide (East Asian) characters count 2, combining marks and
    zero-width characters 0, SGR style sequences 0."""
    if text.isascii() and "\x1b" not in text:
        return len(text)
    import unicodedata  # only for text beyond ASCII

    width = 0
    for ch in re.sub(_SGR, "", text):
        if unicodedata.combining(ch) or ch in "\u200b\u200c\u200d\u2060\ufeff":
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def wrap(text: str, width: int, indent: int | str = 2) -> str:
    """`text` in lines of at most `width` columns, every line after the first indented by
    `indent` (spaces, or the string itself): a hanging indent.

    Lines break only at spaces, never inside a word (a word longer than a line gets a line of its
    own and overflows it), and preferably before a ` · ` separator, so `first token 0.21 s`
    stays together; the `·` then starts the continuation line. Spaces inside a line (aligned
    columns) are kept; the spaces at a break are dropped. Line breaks in `text` are kept, and the
    lines after them get the indent too. An indent that would leave less than MIN_TEXT columns
    for the text is cut (a narrow terminal gets a smaller indent, not longer lines). A width
    below 1 leaves the text as it is. Give it visible text (make_visible first)."""
    if width < 1:
        return text
    pad = " " * indent if isinstance(indent, int) else indent
    most = max(min(2, width // 2), width - MIN_TEXT)
    if display_width(pad) > most:
        pad = " " * most
    out: list[str] = []
    for number, line in enumerate(text.split("\n")):
        out += _wrap_line(line, width, pad, "" if number == 0 else pad)
    return "\n".join(out)


def _wrap_line(line: str, width: int, pad: str, start: str) -> list[str]:
    lead = line[: len(line) - len(line.lstrip(" "))]
    words = re.findall(_WORD, line[len(lead) :])
    if not words:
        return [(start + line).rstrip(" ")]
    words[0] = (lead, words[0][1])
    lines: list[str] = []
    current, used = start, display_width(start)
    fresh = True  # nothing but the indent on the current line yet
    for segment in _segments(words):
        seg_text = "".join(space + word for space, word in segment)
        seg_width = display_width(seg_text)
        room = width - display_width(pad)
        if not fresh and used + seg_width > width and seg_width - len(segment[0][0]) <= room:
            lines.append(current)  # the whole segment fits on a line of its own: keep it together
            current, used, fresh = pad, display_width(pad), True
        for space, word in segment:
            if fresh:
                space = space if not lines and current == start else ""
            elif used + display_width(space + word) > width:
                lines.append(current)
                current, used, space = pad, display_width(pad), ""
            current += space + word
            used += display_width(space + word)
            fresh = False
    lines.append(current)
    return lines


def _segments(words: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Words grouped at each ` · ` separator (the `·` starts the next group)."""
    groups: list[list[tuple[str, str]]] = [[]]
    for space, word in words:
        if word == "·" and space and groups[-1]:
            groups.append([])
        groups[-1].append((space, word))
    return groups
