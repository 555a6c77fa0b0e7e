"""The OpenAI cookbook's `api_request_parallel_processor.py` approach, re-implemented minimally for
the batch bench (its structure, not its text):

- the requests file is read one line at a time (streamed, like acs);
- ONE loop hands out requests: each pass takes the next request (a retry first, else the next
  line), refills the request and token capacities (per minute), starts the API call as a task when
  both allow, then sleeps 1 ms (`seconds_to_sleep_each_loop`), and pauses 15 s after a rate-limit
  error; it ends when no task is in progress;
- each call is a non-streaming `session.post(json=...)` on one shared aiohttp ClientSession and
  `await response.json()`; an answer with "error" (or an exception) goes back on the retry queue
  while attempts are left;
- each result is appended as `[request, response, metadata]` by opening the file in "a" mode and
  writing one line.

Two changes, both in its favour or neutral here: tokens are counted as characters / 4 (the
original calls tiktoken, which costs more per request and is not installed here), and
`--max-in-flight` caps the tasks running at once (the original has no cap other than the rate
limits; the bench gives both clients the same concurrency).

    python cookbook_batch.py REQUESTS RESULTS URL [--max-in-flight N] [--rpm N] [--tpm N] [--attempts N]

Not a dependency of acs: aiohttp is installed in the bench's venv only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

SLEEP_EACH_LOOP = 0.001
PAUSE_AFTER_RATE_LIMIT = 15


@dataclass
class Status:
    started: int = 0
    in_progress: int = 0
    succeeded: int = 0
    failed: int = 0
    rate_limit_errors: int = 0
    other_errors: int = 0
    last_rate_limit_error: float = 0.0


@dataclass
class ApiRequest:
    task_id: int
    request: dict
    tokens: int
    attempts_left: int
    metadata: dict | None
    errors: list = field(default_factory=list)

    async def call(self, session: aiohttp.ClientSession, url: str, retry: asyncio.Queue, results: str, status: Status) -> None:
        error = None
        try:
            async with session.post(url=url, json=self.request) as response:
                answer = await response.json()
            if "error" in answer:
                error = answer
                if "rate" in str(answer["error"]).lower():
                    status.rate_limit_errors += 1
                    status.last_rate_limit_error = time.time()
        except Exception as exc:
            status.other_errors += 1
            error = exc
        if error is not None:
            self.errors.append(error)
            if self.attempts_left:
                retry.put_nowait(self)
                return
            append_line([self.request, [str(e) for e in self.errors], self.metadata], results)
            status.failed += 1
        else:
            append_line([self.request, answer, self.metadata], results)
            status.succeeded += 1
        status.in_progress -= 1


def append_line(data: object, path: str) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(data) + "\n")


def tokens_of(request: dict) -> int:
    prompt = request.get("prompt", "")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    completion = request.get("max_tokens", 15) * request.get("n", 1)
    return sum(len(p) // 4 for p in prompts) + completion * len(prompts)


async def process(args: argparse.Namespace) -> Status:
    status = Status()
    retry: asyncio.Queue = asyncio.Queue()
    next_request: ApiRequest | None = None
    request_capacity, token_capacity = args.rpm, args.tpm
    last_update = time.time()
    more_lines = True
    task_ids = 0
    with open(args.requests) as file:
        lines = iter(file)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.max_in_flight)) as session:
            while True:
                if next_request is None:
                    if not retry.empty():
                        next_request = retry.get_nowait()
                    elif more_lines:
                        try:
                            request = json.loads(next(lines))
                            next_request = ApiRequest(task_ids, request, tokens_of(request), args.attempts, request.pop("metadata", None))
                            task_ids += 1
                            status.started += 1
                            status.in_progress += 1
                        except StopIteration:
                            more_lines = False
                now = time.time()
                request_capacity = min(request_capacity + args.rpm * (now - last_update) / 60.0, args.rpm)
                token_capacity = min(token_capacity + args.tpm * (now - last_update) / 60.0, args.tpm)
                last_update = now
                running = status.in_progress - retry.qsize() - (1 if next_request is not None else 0)
                if next_request is not None and running < args.max_in_flight:
                    if request_capacity >= 1 and token_capacity >= next_request.tokens:
                        request_capacity -= 1
                        token_capacity -= next_request.tokens
                        next_request.attempts_left -= 1
                        asyncio.create_task(next_request.call(session, args.url, retry, args.results, status))
                        next_request = None
                if status.in_progress == 0:
                    break
                await asyncio.sleep(SLEEP_EACH_LOOP)
                since = time.time() - status.last_rate_limit_error
                if since < PAUSE_AFTER_RATE_LIMIT:
                    await asyncio.sleep(PAUSE_AFTER_RATE_LIMIT - since)
    return status


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("requests")
    p.add_argument("results")
    p.add_argument("url")
    p.add_argument("--max-in-flight", type=int, default=256)
    p.add_argument("--rpm", type=float, default=1e12)
    p.add_argument("--tpm", type=float, default=1e15)
    p.add_argument("--attempts", type=int, default=5)
    status = asyncio.run(process(p.parse_args()))
    print(json.dumps(status.__dict__))


if __name__ == "__main__":
    main()
