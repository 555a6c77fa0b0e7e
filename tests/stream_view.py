"""The parser state as the tests look at it: CompletionState plus each choice's text and
logprobs gathered from the records, the way a sink would keep them."""

from __future__ import annotations

from typing import Any

from acs_cli.completion_state import CompletionState
from acs_cli.errors import AcsError
from acs_cli.records import Delta, Record
from acs_cli.sinks.logprobs import merge_logprobs


class ChoiceView:
    def __init__(self, view: StreamView, index: int) -> None:
        self._view = view
        self.index = index

    @property
    def _state(self) -> Any:
        return self._view.state.choices[self.index]

    @property
    def text(self) -> str:
        return "".join(self._view.texts.get(self.index, ()))

    @property
    def logprobs(self) -> dict[str, list[Any]] | None:
        return self._view.logprobs.get(self.index)

    @property
    def finished(self) -> bool:
        return self._state.finished

    @property
    def finish_reason(self) -> str | None:
        return self._state.finish_reason

    @property
    def stop_reason(self) -> Any:
        return self._state.stop_reason


class StreamView:
    def __init__(self, keep_text: bool = True, expected: int = 1) -> None:
        self.state = CompletionState(expected)
        self.texts: dict[int, list[str]] = {}
        self.logprobs: dict[int, dict[str, list[Any]]] = {}
        self.records: list[Record] = []

    def _take(self, records: list[Record]) -> list[tuple[int, str]]:
        self.records += records
        deltas = []
        for r in records:
            if isinstance(r, Delta):
                self.texts.setdefault(r.index, [])
                if r.text:
                    self.texts[r.index].append(r.text)
                    deltas.append((r.index, r.text))
                if r.logprobs is not None:
                    merge_logprobs(self.logprobs, r)
        return deltas

    def feed(self, events: list[tuple[str, str]]) -> list[tuple[int, str]]:
        return self._take(self.state.feed(events))

    def feed_document(self, payload: Any) -> list[tuple[int, str]]:
        return self._take(self.state.feed_document(payload))

    def end_of_stream(self, *, cut: bool = False, expected: int = 1) -> AcsError | None:
        self.state.expected = max(1, expected)
        return self.state.verdict(cut=cut)

    @property
    def choices(self) -> dict[int, ChoiceView]:
        return {i: ChoiceView(self, i) for i in sorted(self.state.choices)}

    def ordered(self) -> list[ChoiceView]:
        return list(self.choices.values())

    def __getattr__(self, name: str) -> Any:  # usage, done, failure, id, model, frames
        return getattr(self.state, name)
