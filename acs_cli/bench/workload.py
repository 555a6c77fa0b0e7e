"""What each request of a run asks for: synthetic prompts of a chosen token length, or the prompts
of a file, and the output length; all from a seed, so a run's workload can be repeated.

Synthetic prompts: when the server has a `/tokenize` endpoint (vLLM and llama-server do, at the
root of the origin), one long text of random words is tokenized once and each request sends a
window of those token ids as its prompt: its length in tokens is exact and no two requests share
a prefix by design. Without one, the prompt is words, about 0.75 per token (a rule of thumb that
the summary marks as an estimate); the server's usage, when it sends one, is preferred to both.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acs_cli.errors import UsageError
from acs_cli.request import encode_body

WORDS = (
    "the of and to in is was for on that with as by at from his her an which are this be has had not "
    "were but one their all new more also after first two time who other into they can over some "
    "years only most where made many world people then than them between these during under city "
    "three while would such both school year since about state known later through being well used "
    "part each around including called early work against season before final music number long "
    "place family film river water light house small power north south game great old second line "
    "record group local history order public team company members near field church story began"
).split()
WORDS_PER_TOKEN = 0.75  # the estimate without /tokenize


@dataclass(frozen=True)
class Length:
    """`N[:SPREAD]`: each request draws uniformly from N - SPREAD to N + SPREAD (at least 1)."""

    mean: int
    spread: int = 0

    def draw(self, rng: random.Random) -> int:
        if not self.spread:
            return self.mean
        return max(1, rng.randint(self.mean - self.spread, self.mean + self.spread))

    @property
    def most(self) -> int:
        return self.mean + self.spread


def parse_length(text: str | None, flag: str) -> Length | None:
    if text is None:
        return None
    mean, _, spread = text.partition(":")
    try:
        length = Length(int(mean), int(spread) if spread else 0)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not N or N:SPREAD", f"for example {flag} 512 or {flag} 512:128") from None
    if length.mean < 1 or length.spread < 0 or length.spread >= length.mean:
        raise UsageError(f"{flag} {text!r}: N must be at least 1 and SPREAD below N", f"for example {flag} 512:128")
    return length


def read_prompts(path: str) -> list[tuple[Any, int | None]]:
    """A JSONL file of {"prompt": …, "max_tokens": …} objects, or one prompt per line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read the prompts file {path}: {reason}", "give a readable UTF-8 file: JSONL or one prompt per line") from None
    prompts: list[tuple[Any, int | None]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                item = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: nested too deeply
                raise UsageError(f"{path}:{number}: not a JSON object", 'each line is {"prompt": "…", "max_tokens": 64} or a plain prompt') from None
            if "prompt" not in item:
                raise UsageError(f"{path}:{number}: no \"prompt\"", 'each line is {"prompt": "…", "max_tokens": 64} or a plain prompt')
            max_tokens = item.get("max_tokens")
            prompts.append((item["prompt"], max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None))
        else:
            prompts.append((line, None))
    if not prompts:
        raise UsageError(f"the prompts file {path} holds no prompt", "one prompt per line, or JSONL objects with a \"prompt\"")
    return prompts


def words(count: int, rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(max(1, count)))


@dataclass
class Workload:
    """Request i's body and what is known of its input length, reproducible from the seed."""

    body: dict[str, Any]  # the fixed fields (model, sampling, stream, extra params)
    seed: int = 0
    input_length: Length | None = None
    output_length: Length | None = None
    token_pool: list[int] = field(default_factory=list)  # /tokenize's ids of a long random text
    prompts: list[tuple[Any, int | None]] = field(default_factory=list)  # --prompts
    fix_output: bool = True  # ignore_eos + min_tokens with --output-tokens

    def request(self, i: int) -> tuple[bytes, int | None, str, int | None]:
        """(body bytes, input tokens or None, their source, the output length it fixed or None)."""
        rng = random.Random(f"{self.seed}:{i}")
        body = dict(self.body)
        tokens: int | None = None
        source = "estimate"
        if self.prompts:
            body["prompt"], max_tokens = self.prompts[i % len(self.prompts)]
            if max_tokens is not None:
                body["max_tokens"] = max_tokens
        elif self.input_length is not None:
            n = self.input_length.draw(rng)
            if len(self.token_pool) >= n:
                start = rng.randrange(len(self.token_pool) - n + 1)
                body["prompt"], tokens, source = self.token_pool[start : start + n], n, "tokenize"
            else:
                body["prompt"], tokens = words(round(n * WORDS_PER_TOKEN), rng), n
        if self.output_length is not None:
            n = self.output_length.draw(rng)
            body["max_tokens"] = n
            if self.fix_output:
                body["ignore_eos"] = True
                body["min_tokens"] = n
        fixed = body.get("max_tokens") if self.output_length is not None and self.fix_output else None
        return encode_body(body), tokens, source, fixed

    def pool_text(self) -> str | None:
        """The text to tokenize once for synthetic prompts (None: not needed)."""
        if self.input_length is None or self.prompts:
            return None
        rng = random.Random(f"{self.seed}:pool")
        return words(self.input_length.most * 2 + 64, rng)


def tokenize_body(model: str, text: str) -> bytes:
    """One body both servers read: vLLM takes model + prompt, llama-server takes content."""
    return encode_body({"model": model, "prompt": text, "content": text, "add_special_tokens": False, "add_special": False})


def token_ids(payload: Any) -> list[int] | None:
    """The token ids of a /tokenize answer ({"tokens": [ids…]}), None for any other shape."""
    tokens = payload.get("tokens") if isinstance(payload, dict) else None
    if isinstance(tokens, list) and tokens and all(type(t) is int for t in tokens):
        return tokens
    return None
