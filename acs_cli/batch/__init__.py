"""`acs batch`: a file of requests run against one or more servers, resumable, nothing lost and
nothing done twice.

    inputs.py    the three input formats, read streamed, validated with line numbers, fingerprinted
    ids.py       a compact set of custom_ids (8 bytes a slot): duplicates and what is already done
    kinds.py     what a request line asks for (completions, chat: one RequestKind each) and the
                 non-streaming answer object assembled from the stream's records
    results.py   the OpenAI batch output schema, the append-only writer, reading an output to resume
    state.py     the sidecar file: the input's fingerprint and the lock that keeps one writer
    resume.py    what earlier runs wrote: what to skip, the fingerprint check, --retry-failed
    limits.py    --rpm / --tpm token buckets
    balance.py   several endpoints: least outstanding requests, a failing replica rested
    jobs.py      a line made a request (its fields over the defaults); the run's counters
    runner.py    the asyncio driver on acs_cli.engine: retries, backoff, Retry-After, --ordered
    progress.py  the live line on a terminal and the final summary line

Only `acs batch` imports this package (asyncio, the engine and Rich stay out of other commands).
"""
