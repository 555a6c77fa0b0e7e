"""Exit statuses and the error tree: every failure acs reports carries a message and a hint.

    AcsError
     ├── UsageError            the caller is wrong: bad flags or no prompt            (2)
     ├── ConfigError           the configuration is wrong: base URL, model, timeout   (3)
     ├── ConnectError          the network failed before a response: refused, DNS, TLS (4)
     ├── TimedOut              connect, first byte or gap between frames too slow     (5)
     ├── HTTPStatusError       the server answered non-2xx: 401/403 (6), 4xx (7), 5xx (8)
     ├── StreamError           the server reported an error inside a 200 stream       (9)
     ├── IncompleteStream      the stream ended before the completion did             (10)
     ├── ProtocolError         the server sent something that is not a completion     (11)
     ├── OutputFailed          writing stdout failed: disk full, I/O error            (12)
     ├── SomeFailed            acs batch finished, but some requests failed           (14)
     └── StdoutClosed          the reader of stdout went away: end quietly            (141)

Each class names its `kind`, the word --json and --jsonl report it under.
"""

from __future__ import annotations

from enum import IntEnum


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
    OUTPUT = 12  # stdout could not be written (disk full, I/O error): not a reader that left
    SLO_MISSED = 13  # acs bench --slo-goodput: too few requests met the SLOs
    SOME_FAILED = 14  # acs batch: the run finished and wrote every result, but some requests failed
    INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
    BROKEN_PIPE = 141  # the reader of stdout went away, as a shell reports SIGPIPE


class AcsError(Exception):
    status: ExitStatus = ExitStatus.ERROR
    kind = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(AcsError):
    status = ExitStatus.USAGE
    kind = "usage"


class ConfigError(AcsError):
    status = ExitStatus.CONFIG
    kind = "config"


class ConnectError(AcsError):
    status = ExitStatus.CONNECT
    kind = "connect"


class TimedOut(AcsError):
    status = ExitStatus.TIMEOUT
    kind = "timeout"


class HTTPStatusError(AcsError):
    kind = "http"

    def __init__(
        self,
        status_code: int,
        message: str,
        hint: str | None = None,
        *,
        error_type: str | None = None,
        code: object = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.status_code = status_code
        self.error_type = error_type
        self.code = code
        self.retry_after = retry_after  # the server's Retry-After, for a scheduler that retries
        if status_code in (401, 403):
            self.status = ExitStatus.AUTH
        elif status_code >= 500:
            self.status = ExitStatus.HTTP_SERVER
        else:
            self.status = ExitStatus.HTTP_CLIENT


class StreamError(AcsError):
    status = ExitStatus.STREAM_ERROR
    kind = "stream_error"

    def __init__(
        self, message: str, hint: str | None = None, *, error_type: str | None = None, code: object = None
    ) -> None:
        super().__init__(message, hint)
        self.error_type = error_type
        self.code = code


class IncompleteStream(AcsError):
    status = ExitStatus.INCOMPLETE
    kind = "incomplete"


class ProtocolError(AcsError):
    status = ExitStatus.PROTOCOL
    kind = "protocol"


class OutputFailed(AcsError):
    """Writing stdout failed for another reason than its reader leaving (ENOSPC on /dev/full or a
    full disk, EIO): said in one line, without a hint (there is nothing acs could suggest)."""

    status = ExitStatus.OUTPUT
    kind = "output"

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"cannot write to stdout: {exc.strerror or exc}")
        self.errno = exc.errno


class SomeFailed(AcsError):
    """acs batch went through its input, but some requests failed (their lines say how)."""

    status = ExitStatus.SOME_FAILED
    kind = "some_failed"


class StdoutClosed(AcsError):
    """stdout was closed or its reader left (`| head`): nothing more can be shown, so nothing is said."""

    status = ExitStatus.BROKEN_PIPE
    kind = "stdout_closed"

    def __init__(self) -> None:
        super().__init__("stdout was closed")

