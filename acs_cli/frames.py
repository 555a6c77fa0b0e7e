"""Pure: one event's JSON, read whole (`parse_json`) or, for a stream whose frames differ only in
their text, through the stream's learned frame (`FrameTemplate`). acs_cli.completion_state uses both."""

from __future__ import annotations

import json
from typing import Any

_loads = json.loads
# the C scanner behind json.loads, without its two whitespace regex matches per call: frames are
# compact JSON, and anything it does not take whole goes through json.loads for the real error
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]


def parse_json(data: str) -> Any:
    """One JSON document; ValueError for anything that is not one, with why: nested too deeply
    (RecursionError), a number too long to read (past Python's 4300 digits), or not JSON.
    NaN, Infinity and numbers past a float's range (1e999) are read as the floats they name."""
    try:
        try:
            value, end = _scan(data, 0)
        except StopIteration:
            return _loads(data)
        if end != len(data):
            return _loads(data)
        return value
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except ValueError as exc:
        if "digits" in str(exc):
            raise ValueError("a number too long to read") from None
        raise ValueError("not JSON") from None


_SCALARS = frozenset((str, int, float, bool, type(None)))
_MARK = "\u2063acs\u2063"  # the marker of learn_template's proof (a frame whose text is the marker is not learned)
_MARK_JSON = json.dumps(_MARK)[1:-1]


class FrameTemplate:
    """A frame with its token's text cut out: a stream's frames are usually the same JSON but for
    that one string (vLLM's differ in nothing else; llama-server's `created` changes once a second).
    A frame that is `prefix + "<any JSON string body>" + suffix` is the learned frame with that text
    in `leaf[key]`: `fill` checks that with two comparisons and reads the string alone, about a
    quarter of the time json takes for a whole vLLM frame (0.5 against 2.2 µs, measured here).
    Everything in the frame besides the path to the text is a scalar, so no record keeps a part of
    it and `leaf` can be refilled in place."""

    __slots__ = ("prefix", "start", "suffix", "frame", "leaf", "key", "hits", "plain")

    def __init__(self, prefix: str, suffix: str, frame: dict[str, Any], leaf: dict[str, Any], key: str) -> None:
        self.prefix, self.start, self.suffix = prefix, len(prefix), suffix
        self.frame, self.leaf, self.key = frame, leaf, key
        self.hits = 0
        self.plain: int | None = None  # the choice index, if the state reads this frame as text alone

    def fill(self, data: str) -> str | None:
        """If `data` is this frame with another text: that text (`frame` holds it now)."""
        if not data.startswith(self.prefix):
            return None
        try:
            text, end = _scanstring(data, self.start)
        except ValueError:
            return None
        if len(data) - end != len(self.suffix) or not data.endswith(self.suffix):
            return None
        self.leaf[self.key] = text
        self.hits += 1
        return text


def learn_template(data: str, frame: dict[str, Any], path: tuple[str | int, ...]) -> FrameTemplate | None:
    """The template of `data` (which parsed to `frame`) around the string at `path`, if the frame
    has one there and nothing but scalars beside the path.

    Where the string starts is found by text search, then proven: the frame with a marker in that
    place must parse to the same frame with the marker at `path`, and with the string's own text
    there it must be the frame itself. JSON is read left to right, so the prefix leaves the reader
    inside that string whatever the string holds, and the suffix is read the same way after it:
    any string body between them is the value at `path`. (Were the place wrong, say a key that a
    later duplicate overrides, the value at `path` would not change with the place's: the marker
    would not be there, unless the frame already held it there and in the place, which is why a
    frame whose text is the marker is not learned.)"""
    key = path[-1]
    if type(key) is not str:
        return None
    i = data.find(f'"{key}":')
    if i < 0:
        return None
    start = i + len(key) + 3
    while data[start : start + 1] in (" ", "\t", "\n", "\r"):
        start += 1
    if data[start : start + 1] != '"':
        return None
    start += 1
    try:
        text, end = _scanstring(data, start)
        if text == _MARK:
            return None
        probe = parse_json(data[:start] + _MARK_JSON + data[end - 1 :])
    except ValueError:
        return None
    leaf = _leaf(probe, path)
    if leaf is None or leaf[key] != _MARK:
        return None
    leaf[key] = text
    if probe != frame:
        return None
    return FrameTemplate(data[:start], data[end:], probe, leaf, key)


def _leaf(node: Any, path: tuple[str | int, ...]) -> Any:
    """The container that holds `path`'s last step, if every value beside the path is a scalar."""
    for depth, step in enumerate(path):
        if type(node) is dict:
            if type(step) is not str or step not in node:
                return None
            others = [v for k, v in node.items() if k != step]
        elif type(node) is list:
            if type(step) is not int or not 0 <= step < len(node):
                return None
            others = node[:step] + node[step + 1 :]
        else:
            return None
        if any(type(v) not in _SCALARS for v in others):
            return None
        if depth == len(path) - 1:
            return node if type(node) is dict else None
        node = node[step]
    return None


