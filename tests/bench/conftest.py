"""tests/bench/ is a benchmark run by hand (`python tests/bench/bench.py`), never collected by pytest."""

collect_ignore_glob = ["*.py", "peers/*.py"]
