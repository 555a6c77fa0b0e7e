"""Pure event-stream parsing, no I/O: bytes in, server-sent events out, as the WHATWG HTML
standard's "parsing an event stream" says (the completion rules are in acs_cli.completion_state)."""

from __future__ import annotations

from acs_cli.errors import ProtocolError

# the most one event (its unfinished line, or its data lines together) may hold: servers send
# single frames of a few MB at most (a 1 MB line must pass); past this acs stops instead of growing
MAX_EVENT = 16 * 1024 * 1024


def _too_large() -> ProtocolError:
    return ProtocolError(
        f"the server sent an event larger than {MAX_EVENT // (1024 * 1024)} MiB without ending it",
        "the text before it is kept; check the server (or a proxy) for a stream without line breaks",
    )


class SSEParser:
    """Incremental event-stream parser.

    Lines end at CRLF, LF or CR and nothing else (a CR at the end of one read and the LF at the
    start of the next are one line end); one leading BOM is stripped; the stream is always UTF-8,
    invalid bytes become U+FFFD; an event is dispatched on a blank line only when its data buffer
    is non-empty; an unterminated event at end of stream is discarded (`close`).
    """

    __slots__ = ("_held", "_held_size", "_skip_lf", "_at_start", "_data", "_data_size", "_event", "last_event_id", "retry")

    def __init__(self) -> None:
        self._held: list[bytes] = []
        self._held_size = 0
        self._data_size = 0
        self._skip_lf = False
        self._at_start = True
        self._data: list[str] = []
        self._event = ""
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """Parse one read; return the (event type, data) pairs it completed."""
        if not chunk:
            return []
        # the common read, one whole `data: …` frame with nothing pending: one line, LF only, so
        # the general rules give exactly its data (this is most of the time of a busy stream)
        if (
            chunk.startswith(b"data: ")
            and chunk.find(b"\n", 6) == len(chunk) - 2
            and chunk[-1] == 10
            and b"\r" not in chunk
            and not (self._held or self._data or self._skip_lf or self._event)
        ):
            self._at_start = False
            return [("message", chunk[6:-2].decode("utf-8", "replace"))]
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return []
        end = chunk.rfind(b"\n")
        cr = chunk.rfind(b"\r")
        if cr > end:
            end = cr
            # the LF that may follow a final CR belongs to it; it can only arrive in the next read
            self._skip_lf = cr == len(chunk) - 1
        if end < 0:
            self._held.append(chunk)  # no line end yet: hold it (joined once, not per read)
            self._held_size += len(chunk)
            if self._held_size > MAX_EVENT:
                raise _too_large()
            return []
        if self._held:
            self._held.append(chunk)
            head = b"".join(self._held)
            end += len(head) - len(chunk)
            self._held.clear()
            self._held_size = 0
            buf = head
        else:
            buf = chunk
        if end + 1 < len(buf):
            rest = buf[end + 1 :]
            self._held.append(rest)
            self._held_size = len(rest)
            if self._held_size > MAX_EVENT:
                raise _too_large()
        text = buf[: end + 1].decode("utf-8", "replace")
        if self._at_start:
            self._at_start = False
            if text[:1] == "\ufeff":
                text = text[1:]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not (self._data or self._event) and text[-2:] == "\n\n":
            # many whole `data: …` frames and nothing else (a client that fell behind reads them
            # together): each frame's data is what the general rules below would give
            frames = text.split("\n\n")
            frames.pop()
            events = []
            for frame in frames:
                if frame[:6] != "data: " or "\n" in frame:
                    break
                events.append(("message", frame[6:]))
            else:
                return events
        lines = text.split("\n")
        lines.pop()  # the text ends with a line end, so the last piece is always empty
        return self._interpret(lines)

    def _interpret(self, lines: list[str]) -> list[tuple[str, str]]:
        events: list[tuple[str, str]] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append((self._event or "message", "\n".join(data)))
                    data.clear()
                    self._data_size = 0
                self._event = ""
                continue
            if line[0] == ":":
                continue
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
                self._data_size += len(value)
                if self._data_size > MAX_EVENT:
                    raise _too_large()
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self.last_event_id = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self.retry = int(value)
        return events

    def close(self) -> None:
        """End of stream: an event without its blank line is discarded, as the spec says."""
        self._data.clear()
        self._event = ""
        self._held.clear()
        self._held_size = self._data_size = 0

    @property
    def mid_event(self) -> bool:
        """Whether bytes of an unfinished event are held (a stream cut here lost something)."""
        return bool(self._held or self._data)
