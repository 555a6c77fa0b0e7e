"""The doctor's buffering, model and certificate judgements as pure functions of hand-built records
(acs_cli.doctor.judge), the buffering thresholds at their edges: no server, no sleeps."""

from __future__ import annotations

import math
import ssl
import time

import pytest

from acs_cli.doctor import judge
from tests.doctorutil import probe

# ---------------------------------------------------------------------------------------- buffering


def times(n: int, first: float, last: float) -> list[float]:
    """n arrival times from first to last, evenly spaced."""
    return [first + (last - first) * i / (n - 1) for i in range(n)]


def buffering(n: int, first: float, last: float, reads: int, **kw):
    return judge.judge_buffering(probe(text_times=times(n, first, last), text_reads=reads, **kw))


def test_buffering_all_at_once_at_the_end_warns_with_the_nginx_fix() -> None:
    check = buffering(8, 1.0, 1.0, 1)
    assert check.status == "warn" and "frames arrive all at once: a proxy is buffering the stream" in check.detail
    assert "(8 text frames in 1 read, spread over 0.0 ms of 1.00 s, all at the end)" in check.detail
    assert "proxy_buffering off;" in check.hint and "X-Accel-Buffering: no" in check.hint
    assert "X-Accel-Buffering" not in check.detail and check.seconds == 0.0


def test_buffering_despite_the_x_accel_buffering_header_says_something_ignores_it() -> None:
    check = buffering(8, 1.0, 1.0, 1, headers={"x-accel-buffering": " No "})
    assert check.status == "warn" and "; the response carries X-Accel-Buffering: no" in check.detail
    assert "ignores it" in check.hint and "proxy_buffering off;" in check.hint


def test_buffering_header_other_than_no_is_not_noted() -> None:
    assert "X-Accel" not in buffering(8, 1.0, 1.0, 1, headers={"x-accel-buffering": "yes"}).detail


def test_buffering_frames_as_they_are_generated_pass() -> None:
    check = buffering(16, 0.3, 1.0, 16, headers={"x-accel-buffering": "no"})
    assert check.status == "pass" and "frames arrive as they are generated (16 text frames in 16 reads" in check.detail
    assert "X-Accel-Buffering: no" in check.detail and check.hint is None
    assert check.seconds == pytest.approx(0.7)


def test_buffering_in_bursts_warns() -> None:
    check = buffering(8, 0.1, 0.5, 2)  # spread out, but in two reads
    assert check.status == "warn" and "frames arrive in bursts" in check.detail and "proxy_buffering off;" in check.hint


def test_buffering_fast_after_a_long_wait_in_separate_reads_passes() -> None:
    # a long prompt, then the tokens in quick succession: clumped, but each in its own read
    assert buffering(16, 2.0, 2.05, 16).status == "pass"


@pytest.mark.parametrize("n, status", [(0, "pass"), (1, "pass"), (judge.MIN_FRAMES - 1, "pass"), (judge.MIN_FRAMES, "warn")])
def test_buffering_needs_min_frames(n: int, status: str) -> None:
    check = judge.judge_buffering(probe(text_times=[1.0] * n, text_reads=1 if n else 0))
    assert check.status == status
    if status == "pass":
        assert check.detail.startswith("not enough frames to judge (")


def test_buffering_needs_min_seconds_at_its_edge() -> None:
    edge = judge.MIN_SECONDS
    below = math.nextafter(edge, 0)
    check = buffering(8, below, below, 1)
    assert check.status == "pass" and check.detail.startswith("not enough time to judge: 8 text frames all within") and "--max-tokens" in check.detail
    assert buffering(8, edge, edge, 1).status == "warn"


def clump_edge(total: float) -> float:
    """The latest first arrival whose spread to `total` still counts as clumped."""
    first = total - judge.CLUMP_FRACTION * total
    while total - first > judge.CLUMP_FRACTION * total:
        first = math.nextafter(first, math.inf)
    while total - math.nextafter(first, -math.inf) <= judge.CLUMP_FRACTION * total:
        first = math.nextafter(first, -math.inf)
    return first


@pytest.mark.parametrize("total", [0.25, 1.0, 3.7])
def test_buffering_clump_fraction_at_its_edge(total: float) -> None:
    first = clump_edge(total)
    assert buffering(8, first, total, 2).status == "warn" and "all at once" in buffering(8, first, total, 2).detail
    wider = math.nextafter(first, -math.inf)
    assert "bursts" in buffering(8, wider, total, 2).detail  # just outside: spread out, so bursts
    assert buffering(8, wider, total, 8).status == "pass"


@pytest.mark.parametrize("n, bursty_reads", [(4, 2), (8, 2), (12, 3), (16, 4), (64, 16)])
def test_buffering_few_reads_at_the_edge(n: int, bursty_reads: int) -> None:
    assert bursty_reads == max(2, n // 4)
    assert buffering(n, 1.0, 1.0, bursty_reads).status == "warn"
    assert buffering(n, 1.0, 1.0, bursty_reads + 1).status == "pass"  # clumped, but in many reads
    assert "bursts" in buffering(n, 0.2, 1.0, bursty_reads).detail
    assert buffering(n, 0.2, 1.0, bursty_reads + 1).status == "pass"


def test_buffering_is_skipped_for_a_json_document() -> None:
    check = judge.judge_buffering(probe(kind="json"))
    assert (check.status, check.detail) == ("skip", "skipped: not an event stream")


# ---------------------------------------------------------------------------------------- model


def test_model_configured_and_served() -> None:
    check, model = judge.judge_model(["a", "b"], "b", "http://h/v1")
    assert (check.status, check.detail, model) == ("pass", "b is served (2 models)", "b")


def test_model_configured_but_not_served_lists_the_models() -> None:
    check, model = judge.judge_model(["llama-8b", "qwen-7b"], "gpt-9", "http://h/v1")
    assert model is None and check.status == "fail" and check.exit_status == 3
    assert check.detail == "gpt-9 is not served; the server lists llama-8b, qwen-7b" and "--model" in check.hint
    assert "lists no models" in judge.judge_model([], "gpt-9", "http://h/v1")[0].detail


def test_model_none_configured_and_one_served_is_used() -> None:
    check, model = judge.judge_model(["only"], None, "http://h/v1")
    assert model == "only" and check.status == "pass" and "only will be used" in check.detail


def test_model_none_configured_and_none_served_masks_the_password() -> None:
    check, model = judge.judge_model([], None, "http://bob:hunter2@h/v1")
    assert model is None and check.exit_status == 3
    assert "hunter2" not in check.detail and "http://***@h/v1 lists none" in check.detail


def test_model_none_configured_and_many_served_lists_twenty() -> None:
    ids = [f"m{i}" for i in range(25)]
    check, model = judge.judge_model(ids, None, "http://h/v1")
    assert model is None and "serves 25: m0, m1" in check.detail and "m19 and 5 more" in check.detail and "m20" not in check.detail


# ---------------------------------------------------------------------------------------- certificate


def cert(days: float) -> dict:
    now = time.time()
    not_after = time.strftime("%b %d %H:%M:%S %Y GMT", time.gmtime(now + days * 86400))
    return {
        "subject": ((("commonName", "example.org"),), (("organizationName", "Example"),)),
        "issuer": ((("commonName", "Example CA"),),),
        "notAfter": not_after,
    }


def test_certificate_names_subject_issuer_and_expiry() -> None:
    check = judge.judge_certificate(cert(90.5), "TLSv1.3", 0.02, time.time())
    assert check.status == "pass" and check.seconds == 0.02
    assert check.detail.startswith("TLSv1.3 in 20 ms; certificate CN=example.org, O=Example, issued by CN=Example CA, expires ")
    assert check.detail.endswith("(in 90 days)")


@pytest.mark.parametrize("days, status", [(judge.EXPIRY_WARN_DAYS + 0.5, "pass"), (judge.EXPIRY_WARN_DAYS - 0.5, "warn"), (-3.5, "warn")])
def test_certificate_expiry_edge(days: float, status: str) -> None:
    check = judge.judge_certificate(cert(days), "TLSv1.3", 0.0, time.time())
    assert check.status == status
    if status == "warn":
        assert "renew it" in check.hint


def test_certificate_without_fields() -> None:
    check = judge.judge_certificate({"notAfter": "garbage"}, "TLSv1.2", 0.0, time.time())
    assert check.status == "pass" and "certificate (no subject), issued by (unknown)" in check.detail and "expires" not in check.detail


def test_certificate_time_format_is_what_ssl_reads() -> None:
    assert ssl.cert_time_to_seconds(cert(1)["notAfter"]) > time.time()
