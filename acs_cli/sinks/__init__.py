"""Output sinks: what acs does with the records of a stream.

Every sink has three verbs: `begin()` before the request goes out, `write(records)` once per
network read with the records it brought, and `end(outcome)` once when the run is over (success,
failure, or a signal). Decorators wrap another sink and add to it (the usage line, the logprobs
table, the JSON outputs). acs_cli.output picks and stacks them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from acs_cli.outcome import Outcome
    from acs_cli.records import Record


class Sink(Protocol):
    def begin(self) -> None: ...

    def write(self, records: list[Record]) -> None: ...

    def end(self, outcome: Outcome) -> None: ...


class Discard:
    """Writes nothing: the base under the JSON outputs, which print only at the end or per event."""

    def begin(self) -> None:
        pass

    def write(self, records: list[Record]) -> None:
        pass

    def end(self, outcome: Outcome) -> None:
        pass
