"""Content-Encoding decoders (gzip, deflate zlib-wrapped or raw, br and zstd when their modules
import) as a stage after HTTP/1.1 framing: the sync transport and the engine run a body through
one when the caller wants the text, and skip it for the bytes on the wire (--raw)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from acs_cli.http1 import Head, MalformedResponse

MAX_DECODED_PIECE = 1 << 20  # a compressed read is inflated in pieces of at most this many bytes


class ContentDecoder:
    """Undoes Content-Encoding codings, applied in reverse order; `decode(data)` returns the
    decoded pieces of one read (each at most MAX_DECODED_PIECE bytes, so a small compressed
    read cannot inflate into unbounded memory at once) and `flush()` the rest at the end."""

    def __init__(self, codings: list[bytes]) -> None:
        self._stages = [_stage(c) for c in reversed(codings)]

    def decode(self, data: bytes) -> list[bytes]:
        pieces = [data]
        for stage in self._stages:
            pieces = [out for piece in pieces for out in stage.decode(piece)]
        return [p for p in pieces if p]

    def flush(self) -> bytes:
        data = b""
        for stage in self._stages:
            data = b"".join(stage.decode(data)) + stage.flush()
        return data

    def decoded(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        """A whole body's blocks decoded as they come, then what `flush` holds."""
        for block in blocks:
            yield from self.decode(block)
        tail = self.flush()
        if tail:
            yield tail


class _Zlib:
    """gzip, or deflate: zlib-wrapped as RFC 9110 says, or raw as many servers send it (told
    apart by the zlib header of the first two bytes, wherever the reads split them)."""

    def __init__(self, gzip: bool) -> None:
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        self._start = b""

    def decode(self, data: bytes) -> list[bytes]:
        if self._z is None:
            self._start += data
            if len(self._start) < 2:
                return []
            data, self._start = self._start, b""
            wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._z = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            out = [self._z.decompress(data, MAX_DECODED_PIECE)]
            while self._z.unconsumed_tail:
                out.append(self._z.decompress(self._z.unconsumed_tail, MAX_DECODED_PIECE))
        except zlib.error as exc:
            raise MalformedResponse(f"the compressed body is corrupt ({exc})") from None
        return out

    def flush(self) -> bytes:
        if self._z is None:
            return b""
        try:
            return self._z.flush()
        except zlib.error as exc:
            raise MalformedResponse(f"the compressed body is corrupt ({exc})") from None


class _Module:
    """br or zstd through their optional modules (a piece per read: their APIs have no bound)."""

    def __init__(self, decompress: object) -> None:
        self._decompress = decompress

    def decode(self, data: bytes) -> list[bytes]:
        try:
            return [self._decompress(data)]  # type: ignore[operator]
        except Exception as exc:
            raise MalformedResponse(f"the compressed body is corrupt ({exc})") from None

    def flush(self) -> bytes:
        return b""


def _stage(coding: bytes) -> _Zlib | _Module:
    if coding in (b"gzip", b"x-gzip"):
        return _Zlib(gzip=True)
    if coding == b"deflate":
        return _Zlib(gzip=False)
    if coding == b"br":
        try:
            import brotli
        except ImportError:
            raise MalformedResponse("the body is brotli-compressed (br) and the brotli module is not installed") from None
        return _Module(brotli.Decompressor().process)
    if coding == b"zstd":
        try:
            import zstandard
        except ImportError:
            raise MalformedResponse("the body is zstd-compressed and the zstandard module is not installed") from None
        return _Module(zstandard.ZstdDecompressor().decompressobj().decompress)
    raise MalformedResponse(f"unsupported Content-Encoding {bytes(coding[:40])!r}")


def content_decoder(head: Head) -> ContentDecoder | None:
    """A decoder for the head's Content-Encoding, or None when the body is not encoded."""
    return ContentDecoder(head.content_codings) if head.content_codings else None
