"""acs_cli.http1 from the rules: heads (RFC 9112, validated as h11 does), body framing and content
codings, each fed whole, byte by byte and split at every position.

The same decoders serve the sync transport and the engine; tests/test_transport.py and
tests/test_engine.py run them over real sockets.
"""

from __future__ import annotations

import gzip
import zlib

import pytest

from acs_cli import codings, http1
from acs_cli.http1 import Head, HeadParser, IncompleteBody, MalformedResponse

CHUNKED = b"Transfer-Encoding: chunked"


def head_of(raw: bytes, method: str = "POST", step: int = 0) -> tuple[Head, bytes]:
    """Feed raw (whole, or `step` bytes at a time) and return the head and the bytes after it."""
    parser = HeadParser(method)
    pieces = [raw] if not step else [raw[i : i + step] for i in range(0, len(raw), step)]
    for i, piece in enumerate(pieces):
        head = parser.feed(piece)
        if head is not None:
            return head, parser.rest + b"".join(pieces[i + 1 :])
    raise AssertionError("no head")


def body_of(head: Head, data: bytes, step: int = 0) -> bytes:
    dec = http1.body_decoder(head)
    pieces = [data] if not step else [data[i : i + step] for i in range(0, len(data), step)]
    out = b"".join(dec.feed(p) for p in pieces)
    dec.eof()
    return out


# --------------------------------------------------------------------------- where a head ends

BODY = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    "eol",
    [
        [b"\n", b"\n", b"\n"],  # bare LF head, CRLF body: the classic bug (frames read as headers)
        [b"\r\n", b"\r\n", b"\r\n"],
        [b"\r\n", b"\n", b"\r\n"],
        [b"\n", b"\r\n", b"\n"],
        [b"\r\n", b"\r\n", b"\n"],
        [b"\n", b"\n", b"\r\n"],
    ],
)
@pytest.mark.parametrize("step", [0, 1, 3])
def test_the_head_ends_at_the_first_empty_line_whatever_the_line_ends(eol: list[bytes], step: int) -> None:
    raw = b"HTTP/1.1 200 OK" + eol[0] + b"Content-Type: text/event-stream" + eol[1] + CHUNKED + eol[2] + eol[2] + BODY
    head, rest = head_of(raw, step=step)
    assert head.status == 200 and head.framing == "chunked"
    assert [n for n, _ in head.headers] == [b"Content-Type", b"Transfer-Encoding"]
    assert body_of(head, rest) == b"hello world"


def test_a_bare_lf_head_before_a_crlf_event_stream_keeps_every_frame() -> None:
    frames = b"data: one\r\n\r\ndata: two\r\n\r\n"
    raw = b"HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\n" + frames
    head, rest = head_of(raw)
    assert head.framing == "close" and rest == frames


def test_obs_fold_is_joined_with_a_space_as_h11_does() -> None:
    head, _ = head_of(b"HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\n\tthree\r\nContent-Length: 0\r\n\r\n")
    assert head.get(b"x-long") == b"one two three"


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 abc OK",
        b"HTTP/2 200 OK",
        b"HTTP/2.0 200 OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1 200\tOK",
        b"HTTP/1.1 099 Low",
        b"http/1.1 200 OK",
        b"HTTP/1.1 200 O\x00K",
        b"HTTP/11 200 OK",
    ],
)
def test_malformed_status_lines_are_refused(status_line: bytes) -> None:
    with pytest.raises(MalformedResponse):
        head_of(status_line + b"\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("garbage", [b"ICY 200 OK\r\n\r\n", b"\r\nHTTP/1.1 200 OK\r\n\r\n", b"<html>", b" HTTP/1.1"])
def test_a_response_that_does_not_start_with_a_status_line_fails_at_once(garbage: bytes) -> None:
    with pytest.raises(MalformedResponse):
        HeadParser().feed(garbage)


@pytest.mark.parametrize(
    "line, reason",
    [(b"HTTP/1.1 200", b""), (b"HTTP/1.1 200 ", b""), (b"HTTP/1.0 404 Not  Found", b"Not  Found"), (b"HTTP/1.1 599 \xe9t\xe9", b"\xe9t\xe9")],
)
def test_status_lines_with_an_empty_or_odd_reason_are_accepted(line: bytes, reason: bytes) -> None:
    head, _ = head_of(line + b"\r\nContent-Length: 0\r\n\r\n")
    assert head.reason == reason


@pytest.mark.parametrize(
    "header",
    [b"Bad Name: x", b"X-A : b", b"(x): y", b": novalue", b"NoColon", b"X-Ctl: a\rb", b"X-Nul: a\x00b", b"X-Tab\t: v"],
)
def test_malformed_header_lines_are_refused(header: bytes) -> None:
    with pytest.raises(MalformedResponse):
        head_of(b"HTTP/1.1 200 OK\r\n" + header + b"\r\nContent-Length: 0\r\n\r\n")


def test_a_continuation_line_before_any_header_is_refused() -> None:
    with pytest.raises(MalformedResponse, match="continuation"):
        head_of(b"HTTP/1.1 200 OK\r\n folded\r\nContent-Length: 0\r\n\r\n")


# --------------------------------------------------------------------------- framing headers


@pytest.mark.parametrize(
    "headers",
    [
        [b"Content-Length: abc"],
        [b"Content-Length: -1"],
        [b"Content-Length: +5"],
        [b"Content-Length: 0x10"],
        [b"Content-Length: 1e3"],
        [b"Content-Length: 5 5"],
        [b"Content-Length: 5, 6"],
        [b"Content-Length: 5", b"Content-Length: 6"],
        [b"Content-Length: 1234567890123456789"],
        [b"Content-Length: "],
    ],
)
def test_bad_or_conflicting_content_lengths_are_refused(headers: list[bytes]) -> None:
    with pytest.raises(MalformedResponse, match="Content-Length"):
        head_of(b"HTTP/1.1 200 OK\r\n" + b"\r\n".join(headers) + b"\r\n\r\n")


@pytest.mark.parametrize("headers", [[b"Content-Length: 5, 5"], [b"Content-Length: 5", b"content-length: 5"]])
def test_identical_content_lengths_are_one(headers: list[bytes]) -> None:
    head, rest = head_of(b"HTTP/1.1 200 OK\r\n" + b"\r\n".join(headers) + b"\r\n\r\nhelloEXTRA")
    assert (head.framing, head.length) == ("length", 5)
    assert body_of(head, rest) == b"hello"


@pytest.mark.parametrize(
    "headers",
    [
        [b"Transfer-Encoding: chunked, gzip"],
        [b"Transfer-Encoding: gzip"],
        [b"Transfer-Encoding: gzip, chunked"],
        [b"Transfer-Encoding: xchunked"],
        [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"],
        [b"Transfer-Encoding: chunked, chunked"],
        [b"Transfer-Encoding: identity"],
        [b"Transfer-Encoding: chunked;q=1"],
    ],
)
def test_transfer_encoding_other_than_exactly_chunked_is_refused(headers: list[bytes]) -> None:
    with pytest.raises(MalformedResponse, match="Transfer-Encoding"):
        head_of(b"HTTP/1.1 200 OK\r\n" + b"\r\n".join(headers) + b"\r\n\r\n")


def test_chunked_is_case_insensitive() -> None:
    head, _ = head_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding:  Chunked \r\n\r\n")
    assert head.framing == "chunked" and head.keep_alive


def test_transfer_encoding_wins_over_content_length_and_the_connection_is_not_reused() -> None:
    head, rest = head_of(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n" + CHUNKED + b"\r\n\r\n" + BODY)
    assert head.framing == "chunked" and not head.keep_alive
    assert body_of(head, rest) == b"hello world"


@pytest.mark.parametrize(
    "raw, method, framing, keep",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "GET", "length", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", "GET", "length", False),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n", "GET", "length", False),
        (b"HTTP/1.1 200 OK\r\n\r\n", "GET", "close", False),
        (b"HTTP/1.1 204 No Content\r\n\r\n", "GET", "length", True),
        (b"HTTP/1.1 304 Not Modified\r\n" + CHUNKED + b"\r\n\r\n", "GET", "length", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", "HEAD", "length", True),
    ],
)
def test_framing_and_keep_alive_follow_the_head(raw: bytes, method: str, framing: str, keep: bool) -> None:
    head, _ = head_of(raw, method)
    assert (head.framing, head.keep_alive) == (framing, keep)
    if method == "HEAD" or head.status in (204, 304):
        assert head.length == 0


# --------------------------------------------------------------------------- interim answers and bounds


@pytest.mark.parametrize("step", [0, 1])
def test_interim_answers_are_skipped(step: int) -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\nLink: </x>\n\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    head, rest = head_of(raw, step=step)
    assert head.status == 200 and rest == b"ok"


def test_101_switching_protocols_is_refused() -> None:
    with pytest.raises(MalformedResponse, match="101"):
        head_of(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")


def test_endless_interim_answers_are_cut_off() -> None:
    parser = HeadParser()
    with pytest.raises(MalformedResponse, match="interim"):
        for _ in range(http1.MAX_INTERIM + 2):
            parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n")


@pytest.mark.parametrize("step", [0, 4096])
def test_a_head_larger_than_the_limit_is_refused_before_it_ends(step: int) -> None:
    raw = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 1000) for i in range(100))
    parser = HeadParser()
    with pytest.raises(MalformedResponse, match="64 KiB"):
        for i in range(0, len(raw), step or len(raw)):
            parser.feed(raw[i : i + (step or len(raw))])


def test_received_counts_every_byte_fed() -> None:
    parser = HeadParser()
    assert parser.feed(b"HTTP/1.1 2") is None and parser.received == 10


# --------------------------------------------------------------------------- chunked bodies

STREAM = b"5\r\nhello\r\n6;ext=1\r\n world\r\nA \r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n"


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_chunked_framing_split_anywhere(cut: int) -> None:
    dec = http1.ChunkedDecoder()
    out = dec.feed(STREAM[:cut]) + dec.feed(STREAM[cut:])
    assert out == b"hello world0123456789" and dec.done and dec.leftover == b""


def test_chunked_framing_byte_by_byte_and_leftover() -> None:
    dec = http1.ChunkedDecoder()
    out = b"".join(dec.feed(STREAM[i : i + 1]) for i in range(len(STREAM)))
    assert out == b"hello world0123456789"
    assert dec.feed(b"HTTP/1.1") == b"" and dec.leftover == b"HTTP/1.1"


def test_all_chunks_of_one_read_come_as_one_block() -> None:
    dec = http1.ChunkedDecoder()
    assert dec.feed(b"".join(b"3\r\nabc\r\n" for _ in range(100))) == b"abc" * 100


def test_one_whole_chunk_per_read_as_a_busy_stream_sends_them() -> None:
    """The decoder's shortcut for a read that is exactly one chunk gives what the general rules give."""
    dec = http1.ChunkedDecoder()
    reads = [b"5\r\nhello\r\n", b"06\r\n world\r\n", b"A\r\n0123456789\r\n", b"a\r\nabcdefghij\r\n", b"2;x=y\r\n!!\r\n", b"3\r\na\r\n\r\n"]
    assert [dec.feed(r) for r in reads] == [b"hello", b" world", b"0123456789", b"abcdefghij", b"!!", b"a\r\n"]
    assert dec.feed(b"0\r\n\r\n") == b"" and dec.done
    dec = http1.ChunkedDecoder()
    assert dec.feed(b"5\r\nhello\r\n5\r\n") == b"hello" and dec.feed(b"world\r\n") == b"world"  # not one whole chunk: no shortcut


def test_chunk_lines_may_end_in_a_bare_lf() -> None:
    dec = http1.ChunkedDecoder()
    assert dec.feed(b"5\nhello\n0\n\n") == b"hello" and dec.done


@pytest.mark.parametrize(
    "size",
    [b"zz", b"-5", b"+5", b"0x5", b"5_0", b" 5", b"", b"5 5", b"1" * 17, b"ffffffffffffffffff", b"5\r5", b"\xff"],
)
def test_malformed_chunk_sizes_are_refused(size: bytes) -> None:
    with pytest.raises(MalformedResponse, match="chunk size"):
        http1.ChunkedDecoder().feed(size + b"\r\nhello\r\n0\r\n\r\n")
    with pytest.raises(MalformedResponse, match="chunk size"):  # a read of that one chunk alone
        http1.ChunkedDecoder().feed(size + b"\r\nhello\r\n")


@pytest.mark.parametrize("after", [b"XX", b"\rX", b"lo", b" \r\n"])
def test_chunk_data_must_be_followed_by_crlf(after: bytes) -> None:
    with pytest.raises(MalformedResponse, match="CRLF"):
        http1.ChunkedDecoder().feed(b"3\r\nhel" + after + b"0\r\n\r\n")


def test_a_chunk_size_line_without_end_is_bounded() -> None:
    dec = http1.ChunkedDecoder()
    with pytest.raises(MalformedResponse, match="4 KiB"):
        for _ in range(10):
            dec.feed(b"5;" + b"x" * 1000)


def test_trailers_are_bounded_and_validated() -> None:
    dec = http1.ChunkedDecoder()
    with pytest.raises(MalformedResponse, match="trailers"):
        dec.feed(b"0\r\n" + b"X-T: " + b"y" * 20000 + b"\r\n\r\n")
    dec = http1.ChunkedDecoder()
    dec.feed(b"0\r\n")
    with pytest.raises(MalformedResponse, match="trailers"):
        for _ in range(40):
            dec.feed(b"X-T: " + b"y" * 1000 + b"\r\n")
    with pytest.raises(MalformedResponse, match="trailer"):
        http1.ChunkedDecoder().feed(b"0\r\nnot a header\r\n\r\n")


def test_a_chunked_body_cut_short_is_incomplete() -> None:
    for cut in (3, 10, len(STREAM) - 2):
        dec = http1.ChunkedDecoder()
        dec.feed(STREAM[:cut])
        with pytest.raises(IncompleteBody, match="incomplete chunked read"):
            dec.eof()


def test_length_and_close_bodies() -> None:
    dec = http1.LengthDecoder(5)
    assert dec.feed(b"he") + dec.feed(b"llo!!") == b"hello" and dec.done and dec.leftover == b"!!"
    short = http1.LengthDecoder(5)
    short.feed(b"he")
    with pytest.raises(IncompleteBody):
        short.eof()
    close = http1.CloseDecoder()
    assert close.feed(b"abc") == b"abc" and not close.done
    close.eof()
    assert close.done


# --------------------------------------------------------------------------- content codings

TEXT = b"".join(b"data: {\"text\": \"token %d\"}\n\n" % i for i in range(300))


def _coded(name: str) -> tuple[list[bytes], bytes]:
    if name == "gzip":
        return [b"gzip"], gzip.compress(TEXT)
    if name == "deflate":
        return [b"deflate"], zlib.compress(TEXT)
    if name == "raw deflate":
        c = zlib.compressobj(wbits=-15)
        return [b"deflate"], c.compress(TEXT) + c.flush()
    return [b"deflate", b"gzip"], gzip.compress(zlib.compress(TEXT))


@pytest.mark.parametrize("name", ["gzip", "deflate", "raw deflate", "deflate then gzip"])
def test_content_codings_decode_split_anywhere(name: str) -> None:
    names, data = _coded(name)
    for cut in list(range(12)) + [len(data) // 2, len(data) - 3, len(data) - 1]:
        dec = codings.ContentDecoder(names)
        out = b"".join(dec.decode(data[:cut]) + dec.decode(data[cut:])) + dec.flush()
        assert out == TEXT, cut
    dec = codings.ContentDecoder(names)
    assert b"".join(p for i in range(len(data)) for p in dec.decode(data[i : i + 1])) + dec.flush() == TEXT


def test_content_coding_from_the_head_and_identity() -> None:
    head, _ = head_of(b"HTTP/1.1 200 OK\r\nContent-Encoding: identity, GZIP\r\nContent-Length: 0\r\n\r\n")
    assert head.content_codings == [b"gzip"]
    assert codings.content_decoder(head_of(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")[0]) is None


def test_a_compressed_read_is_inflated_in_bounded_pieces() -> None:
    bomb = gzip.compress(b"\0" * (5 * codings.MAX_DECODED_PIECE))
    pieces = codings.ContentDecoder([b"gzip"]).decode(bomb)
    assert sum(map(len, pieces)) == 5 * codings.MAX_DECODED_PIECE
    assert max(map(len, pieces)) <= codings.MAX_DECODED_PIECE


@pytest.mark.parametrize("names, match", [([b"gzip"], "corrupt"), ([b"compress"], "unsupported"), ([b"br"], "br")])
def test_undecodable_bodies_are_malformed(names: list[bytes], match: str) -> None:
    try:
        import brotli  # type: ignore[import-not-found]  # noqa: F401

        if names == [b"br"]:
            pytest.skip("brotli is installed")
    except ImportError:
        pass
    with pytest.raises(MalformedResponse, match=match):
        dec = codings.ContentDecoder(names)
        dec.decode(b"this is not compressed at all")
        dec.flush()


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("value", [b"a\r\nX-Evil: 1", b"a\nb", b"a\rb", b"a\x00b"])
def test_a_header_value_that_could_smuggle_a_line_is_refused_without_showing_it(value: bytes) -> None:
    with pytest.raises(http1.InvalidRequestHeader) as caught:
        http1.encode_request("POST", b"/v1/completions", [(b"Authorization", b"Bearer " + value)])
    assert "Authorization" in str(caught.value) and value.decode("latin-1") not in str(caught.value)


@pytest.mark.parametrize("name", [b"Bad Name", b"X:Y", b"", b"X\r\nY"])
def test_a_header_name_that_is_not_a_token_is_refused(name: bytes) -> None:
    with pytest.raises(http1.InvalidRequestHeader):
        http1.encode_request("GET", b"/", [(name, b"v")])


def test_a_request_is_encoded_as_http11() -> None:
    raw = http1.encode_request("POST", b"/v1/completions?x=1", [(b"Host", b"h:1"), (b"Content-Length", b"2")], b"{}")
    assert raw == b"POST /v1/completions?x=1 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\n\r\n{}"
