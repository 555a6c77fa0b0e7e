"""The "OpenAI-SDK loop" peer: the seed's Python example, as a script.

Usage: python openai_loop.py BASE_URL MODEL MAX_TOKENS PROMPT
"""

import sys

from openai import OpenAI

base, model, max_tokens, prompt = sys.argv[1:5]

client = OpenAI(base_url=base, api_key="x")
stream = client.completions.create(
    model=model,
    prompt=prompt,
    max_tokens=int(max_tokens),
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].text, end="", flush=True)
    elif chunk.usage:
        print(f"\n[tokens: {chunk.usage.total_tokens}]", file=sys.stderr)
