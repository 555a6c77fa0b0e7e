"""The "plain httpx loop" peer: the shortest honest streaming client for /v1/completions.

Usage: python httpx_loop.py BASE_URL MODEL MAX_TOKENS PROMPT
Writes the completion text to stdout (flushed per token) and the usage to stderr.
"""

import json
import sys

import httpx
from httpx_sse import connect_sse


def main() -> int:
    base, model, max_tokens, prompt = sys.argv[1:5]
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": int(max_tokens),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    out = sys.stdout
    with httpx.Client(timeout=600) as client:
        with connect_sse(client, "POST", base.rstrip("/") + "/completions", json=body) as source:
            source.response.raise_for_status()
            for event in source.iter_sse():
                if event.data == "[DONE]":
                    break
                data = json.loads(event.data)
                if data.get("choices"):
                    out.write(data["choices"][0]["text"])
                    out.flush()
                elif data.get("usage"):
                    print(f"\n[tokens: {data['usage']['total_tokens']}]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
