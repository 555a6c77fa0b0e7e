"""--raw: the response body exactly as it came off the socket (and with -i the head first).

Piped or redirected, the bytes are exact. On a terminal, control bytes are shown as visible
escapes (like `cat -v`), so a hostile body cannot drive the terminal.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING

from acs_cli.text import visible_wire

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record
    from acs_cli.terminal import Terminal


class RawSink:
    def __init__(self, term: Terminal) -> None:
        self.term = term
        self.visible = term.stdout_tty
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace") if self.visible else None
        self.tail = b""  # the last bytes of the body, to tell whether [DONE] came

    def begin(self) -> None:
        pass

    def head(self, status_line: str, headers: list[tuple[bytes, bytes]]) -> None:
        lines = [status_line.encode("latin-1", "replace")] + [k + b": " + v for k, v in headers]
        self.write_bytes(b"\r\n".join(lines) + b"\r\n\r\n", body=False)

    def write_bytes(self, chunk: bytes, body: bool = True) -> None:
        if body:
            self.tail = (self.tail + chunk[-64:])[-64:]  # never copy a whole read
        if self._decoder is not None:
            chunk = visible_wire(self._decoder.decode(chunk)).encode("utf-8")
        if chunk:
            self.term.write_out(chunk)

    def write(self, records: list[Record]) -> None:
        pass

    def end(self, outcome: Outcome) -> None:
        if self._decoder is not None and not outcome.stdout_closed:
            rest = self._decoder.decode(b"", final=True)
            if rest:
                self.term.write_out(visible_wire(rest).encode("utf-8"))
