"""Exit statuses and the error tree: every failure acs reports carries a message and a hint.

    AcsError
     ├── UsageError            the caller is wrong: bad flags or no prompt            (2)
     ├── ConfigError           the configuration is wrong: base URL, model, timeout   (3)
     ├── ConnectError          the network failed before a response: refused, DNS, TLS (4)
     ├── TimeoutError_         connect, first byte or gap between frames too slow     (5)
     ├── HTTPStatusError       the server answered non-2xx: 401/403 (6), 4xx (7), 5xx (8)
     ├── StreamError           the server reported an error inside a 200 stream       (9)
     ├── IncompleteStream      the stream ended before the completion did             (10)
     └── ProtocolError         the server sent something that is not a completion     (11)
"""

from __future__ import annotations

from enum import IntEnum

from acs_cli.secrets import redact, remember_secret  # noqa: F401 - re-exported; they live in acs_cli.secrets


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1  # an unexpected internal error (a bug in acs)
    USAGE = 2
    CONFIG = 3
    CONNECT = 4
    TIMEOUT = 5
    AUTH = 6
    HTTP_CLIENT = 7
    HTTP_SERVER = 8
    STREAM_ERROR = 9
    INCOMPLETE = 10
    PROTOCOL = 11
    INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
    BROKEN_PIPE = 141  # the reader of stdout went away, as a shell reports SIGPIPE


class AcsError(Exception):
    status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(AcsError):
    status = ExitStatus.USAGE


class ConfigError(AcsError):
    status = ExitStatus.CONFIG


class ConnectError(AcsError):
    status = ExitStatus.CONNECT

    def __init__(self, message: str, hint: str | None = None, attempts: int = 1) -> None:
        super().__init__(message, hint)
        self.attempts = attempts


class TimeoutError_(AcsError):
    status = ExitStatus.TIMEOUT


class HTTPStatusError(AcsError):
    def __init__(
        self,
        status_code: int,
        message: str,
        hint: str | None = None,
        *,
        error_type: str | None = None,
        code: object = None,
        param: object = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status_code = status_code
        self.error_type = error_type
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self.attempts = 1

    @property  # type: ignore[override]
    def status(self) -> ExitStatus:
        if self.status_code in (401, 403):
            return ExitStatus.AUTH
        if self.status_code >= 500:
            return ExitStatus.HTTP_SERVER
        return ExitStatus.HTTP_CLIENT


class StreamError(AcsError):
    status = ExitStatus.STREAM_ERROR

    def __init__(
        self, message: str, hint: str | None = None, *, error_type: str | None = None, code: object = None
    ) -> None:
        super().__init__(message, hint)
        self.error_type = error_type
        self.code = code


class IncompleteStream(AcsError):
    status = ExitStatus.INCOMPLETE


class ProtocolError(AcsError):
    status = ExitStatus.PROTOCOL
