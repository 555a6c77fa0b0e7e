"""Chat wire scenarios: what servers send on `/v1/chat/completions`, and what acs must make of it.

Each `ChatScenario` is a body (chunks built with tests/chat_frames.py, or raw frames) and the
outcome written down by hand: each choice's answer text, reasoning, tool calls (name, joined
arguments) and finish reason, the usage, and the exit status. tests/test_chat_conformance.py
serves every scenario live, replays it, fetches it with --raw; tests/test_chat_properties.py
cuts every one at random points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests import chat_frames as cf

WEATHER = '{"city": "Paris", "unit": "celsius"}'


@dataclass
class ChatScenario:
    id: str
    chunks: list[Any]
    content: dict[int, str]
    finish: dict[int, str | None]
    reasoning: dict[int, str] = field(default_factory=dict)
    calls: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    usage: tuple[int, int] | None = None
    status: int = 0
    done: bool = True
    cut: bool = False  # the connection closes without the last HTTP chunk
    n: int = 1

    def body(self) -> bytes:
        return cf.sse(self.chunks, self.done)

    def segments(self) -> list[bytes]:
        """One segment per event, as servers send them."""
        return [part + b"\n\n" for part in self.body().split(b"\n\n") if part]


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _args_chunks(number: int, arguments: str, size: int) -> list[dict[str, Any]]:
    return [cf.calls(cf.call(number, arguments=piece)) for piece in _split(arguments, size)]


def _llama_server_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """llama-server's shape: finish_reason first, no logprobs or stop_reason keys."""
    return {"choices": [{"finish_reason": finish, "index": 0, "delta": delta}], "created": 1795481920, "id": "chatcmpl-cBtZtq",
            "model": "tiny-llama", "system_fingerprint": "b1-0c1e570", "object": "chat.completion.chunk"}


SCENARIOS: list[ChatScenario] = [
    ChatScenario("role-only-content-empty", [cf.role_chunk(content=""), cf.content("Hello"), cf.content(" there"), cf.finish("stop"), cf.usage_chunk(9, 2)],
                 {0: "Hello there"}, {0: "stop"}, usage=(9, 2)),
    ChatScenario("role-only-content-null", [cf.role_chunk(content=None), cf.content("Hi"), cf.finish("stop")], {0: "Hi"}, {0: "stop"}),
    ChatScenario("role-only-content-missing", [cf.role_chunk(content=cf.MISSING), cf.content("Hi"), cf.finish("stop")], {0: "Hi"}, {0: "stop"}),
    ChatScenario("content-null-empty-missing-mid-stream",
                 [cf.role_chunk(), cf.content("a"), cf.chunk({"content": None}), cf.chunk({"content": ""}), cf.chunk({}), cf.content("b"), cf.finish("stop")],
                 {0: "ab"}, {0: "stop"}),
    ChatScenario("reasoning-content-before-answer",
                 [cf.role_chunk(), cf.reasoning("Two and "), cf.reasoning("two.\n"), cf.content("4"), cf.finish("stop"), cf.usage_chunk(12, 5)],
                 {0: "4"}, {0: "stop"}, reasoning={0: "Two and two.\n"}, usage=(12, 5)),
    ChatScenario("reasoning-new-name-before-answer",
                 [cf.role_chunk(), cf.reasoning("Hm", field="reasoning"), cf.reasoning(", yes.", field="reasoning"), cf.content("Yes."), cf.finish("stop")],
                 {0: "Yes."}, {0: "stop"}, reasoning={0: "Hm, yes."}),
    ChatScenario("reasoning-interleaved-with-answer",
                 [cf.role_chunk(), cf.reasoning("first "), cf.content("A"), cf.reasoning("then ", field="reasoning"), cf.content("B"),
                  cf.chunk({"reasoning_content": "both", "content": "C"}), cf.finish("stop")],
                 {0: "ABC"}, {0: "stop"}, reasoning={0: "first then both"}),
    ChatScenario("reasoning-only-cut-by-length", [cf.role_chunk(), cf.reasoning("thinking and"), cf.reasoning(" thinking"), cf.finish("length")],
                 {0: ""}, {0: "length"}, reasoning={0: "thinking and thinking"}),
    ChatScenario("one-tool-call",
                 [cf.role_chunk(), cf.calls(cf.call(0, id="call_1", name="get_weather", arguments="")), *_args_chunks(0, WEATHER, 7),
                  cf.finish("tool_calls"), cf.usage_chunk(40, 12)],
                 {0: ""}, {0: "tool_calls"}, calls={0: [("get_weather", WEATHER)]}, usage=(40, 12)),
    ChatScenario("tool-call-arguments-one-character-a-chunk",
                 [cf.calls(cf.call(0, id="call_1", name="get_weather")), *_args_chunks(0, WEATHER, 1), cf.finish("tool_calls")],
                 {0: ""}, {0: "tool_calls"}, calls={0: [("get_weather", WEATHER)]}),
    ChatScenario("tool-call-whole-in-one-chunk", [cf.chunk({"role": "assistant", "tool_calls": [cf.call(0, id="c", name="now", arguments="{}")]}, finish="tool_calls")],
                 {0: ""}, {0: "tool_calls"}, calls={0: [("now", "{}")]}),
    ChatScenario("several-tool-calls-in-turn",
                 [cf.role_chunk(), cf.reasoning("Two cities."), cf.content("Checking both."),
                  cf.calls(cf.call(0, id="a", name="get_weather", arguments='{"city": ')), cf.calls(cf.call(0, arguments='"Paris"}')),
                  cf.calls(cf.call(1, id="b", name="get_weather", arguments='{"city": ')), cf.calls(cf.call(1, arguments='"Oslo"}')), cf.finish("tool_calls")],
                 {0: "Checking both."}, {0: "tool_calls"}, reasoning={0: "Two cities."},
                 calls={0: [("get_weather", '{"city": "Paris"}'), ("get_weather", '{"city": "Oslo"}')]}),
    ChatScenario("several-tool-calls-in-one-chunk-interleaved",
                 [cf.calls(cf.call(0, id="a", name="f", arguments='{"x"'), cf.call(1, id="b", name="g", arguments='{"y"')),
                  cf.calls(cf.call(1, arguments=": 2}"), cf.call(0, arguments=": 1}")), cf.finish("tool_calls")],
                 {0: ""}, {0: "tool_calls"}, calls={0: [("f", '{"x": 1}'), ("g", '{"y": 2}')]}),
    ChatScenario("finish-length", [cf.role_chunk(), cf.content("Once upon"), cf.content(" a", finish="length")], {0: "Once upon a"}, {0: "length"}),
    ChatScenario("finish-abort", [cf.role_chunk(), cf.content("Once"), cf.finish("abort")], {0: "Once"}, {0: "abort"}, status=10),
    ChatScenario("two-choices-interleaved",
                 [cf.role_chunk(0), cf.role_chunk(1), cf.content("a", 1), cf.content("b", 0), cf.reasoning("r1", 1), cf.content("c", 1, finish="stop"),
                  cf.content("d", 0), cf.finish("length", 0), cf.usage_chunk(3, 4)],
                 {0: "bd", 1: "ac"}, {0: "length", 1: "stop"}, reasoning={1: "r1"}, usage=(3, 4), n=2),
    ChatScenario("two-choices-in-one-chunk",
                 [cf.chunk(choices=[cf.choice({"role": "assistant", "content": "x"}, 0), cf.choice({"role": "assistant", "content": "y"}, 1)]),
                  cf.chunk(choices=[cf.choice({}, 0, "stop"), cf.choice({"content": "z"}, 1, "stop")])],
                 {0: "x", 1: "yz"}, {0: "stop", 1: "stop"}, n=2),
    ChatScenario("no-usage", [cf.role_chunk(), cf.content("Hi"), cf.finish("stop")], {0: "Hi"}, {0: "stop"}),
    ChatScenario("done-missing-after-finish", [cf.role_chunk(), cf.content("Hi"), cf.finish("stop")], {0: "Hi"}, {0: "stop"}, done=False),
    ChatScenario("done-missing-cut-mid-answer", [cf.role_chunk(), cf.content("Hi")], {0: "Hi"}, {0: None}, done=False, cut=True, status=10),
    ChatScenario("cut-mid-tool-call", [cf.role_chunk(), cf.calls(cf.call(0, id="a", name="f", arguments='{"x'))], {0: ""}, {0: None},
                 calls={0: [("f", '{"x')]}, done=False, cut=True, status=10),
    ChatScenario("done-before-finish", [cf.role_chunk(), cf.content("Hi")], {0: "Hi"}, {0: None}, status=10),
    ChatScenario("error-frame-mid-stream", [cf.role_chunk(), cf.content("Hi"), {"error": {"message": "out of memory", "type": "InternalServerError", "code": 500}}],
                 {0: "Hi"}, {0: None}, status=9, done=False),
    ChatScenario("error-frame-first", [{"object": "error", "message": "bad request", "type": "BadRequestError", "code": 400}], {}, {}, status=9, done=False),
    ChatScenario("frame-not-json", [cf.role_chunk(), cf.content("Hi"), "{not json"], {0: "Hi"}, {0: None}, status=11, done=False),
    ChatScenario("llama-server-shape",
                 [_llama_server_chunk({"role": "assistant", "content": None}), _llama_server_chunk({"content": " stream"}),
                  _llama_server_chunk({"content": " s"}), _llama_server_chunk({}, "length"),
                  {"choices": [], "created": 1795481920, "id": "chatcmpl-cBtZtq", "model": "tiny-llama", "object": "chat.completion.chunk",
                   "usage": {"completion_tokens": 2, "prompt_tokens": 27, "total_tokens": 29}, "timings": {"predicted_n": 2}}],
                 {0: " stream s"}, {0: "length"}, usage=(27, 2)),
    ChatScenario("control-characters-in-answer-reasoning-and-call",
                 [cf.role_chunk(), cf.reasoning("\x1b]0;pwned\x07x"), cf.content("a\x1b[2Jb\r\n"), cf.calls(cf.call(0, id="c", name="f\x1b[31m", arguments='{"k": "\\u001b"}')),
                  cf.finish("tool_calls")],
                 {0: "a\x1b[2Jb\r\n"}, {0: "tool_calls"}, reasoning={0: "\x1b]0;pwned\x07x"}, calls={0: [("f\x1b[31m", '{"k": "\\u001b"}')]}),
]
BY_ID = {sc.id: sc for sc in SCENARIOS}
IDS = [sc.id for sc in SCENARIOS]


def piped_stdout(sc: ChatScenario) -> bytes:
    """What `acs chat` prints in a pipe: each choice's answer in index order, a blank line
    between choices (README's joining rule)."""
    out = []
    keys = sorted(sc.content)
    for i, k in enumerate(keys):
        out.append(sc.content[k])
        if i < len(keys) - 1:
            out.append("\n" if sc.content[k].endswith("\n") else "\n\n")
    return "".join(out).encode("utf-8")


def tool_call_lines(sc: ChatScenario) -> list[str]:
    """The stderr lines of the tool calls in a pipe (only those whose choice finished)."""
    lines = []
    for index in sorted(sc.calls):
        for name, arguments in sc.calls[index]:
            where = f"choice {index}: " if sc.n > 1 else ""
            note = "" if sc.finish.get(index) else " (incomplete)"
            lines.append(f"{where}tool call {name}({arguments}){note}".replace("\x1b", "\\e"))  # escapes made visible
    return lines
