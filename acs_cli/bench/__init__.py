"""`acs bench`: load-test a completions server on the many-streams engine (acs_cli.engine).

schedule (load shapes, arrival times), workload (prompts and token lengths), runner (the asyncio
driver), metrics (pure: per-request samples to the figures), live (the terminal display), report
(table, JSON, per-request JSONL, HTML, compare), workers (processes and Ray). Only `acs bench`
imports this package, so `acs --help` and `acs complete` never load asyncio or the engine for it.
"""
