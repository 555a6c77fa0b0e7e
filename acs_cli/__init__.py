"""acs: stream text completions from an OpenAI-compatible /v1/completions endpoint."""

__version__ = "0.1.0"
