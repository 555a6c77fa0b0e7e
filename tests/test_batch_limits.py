"""--rpm / --tpm token buckets and the balancer over several endpoints, on a fake clock."""

from __future__ import annotations

import asyncio

from acs_cli.batch.balance import REST_AFTER, REST_FIRST, Balancer, Endpoint
from acs_cli.batch.limits import Limits, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_holds_one_second_and_refills() -> None:
    clock = Clock()
    bucket = TokenBucket(120, clock)  # 2 per second
    assert bucket.wait(1) == 0
    bucket.take(1)
    bucket.take(1)
    assert bucket.wait(1) == 0.5
    clock.now += 0.5
    assert bucket.wait(1) == 0


def test_a_request_bigger_than_the_bucket_goes_into_debt_instead_of_starving() -> None:
    clock = Clock()
    bucket = TokenBucket(600, clock)  # 10 tokens a second
    assert bucket.wait(50) == 0  # a full bucket admits it
    bucket.take(50)
    assert bucket.wait(1) == 4.1  # the debt is paid before the next one


def test_rpm_paces_requests() -> None:
    clock = Clock()
    limits = Limits(rpm=60, clock=clock, sleep=clock.sleep)

    async def send(n: int) -> list[float]:
        times = []
        for _ in range(n):
            await limits.admit(1)
            times.append(clock.now)
        return times

    times = asyncio.run(send(5))
    assert [round(t - 100.0, 6) for t in times] == [0, 1, 2, 3, 4]


def test_tpm_settles_against_the_usage() -> None:
    clock = Clock()
    limits = Limits(tpm=6000, clock=clock, sleep=clock.sleep)  # 100 tokens a second
    asyncio.run(limits.admit(100))
    assert limits.tokens is not None and limits.tokens.level == 0
    limits.settle(100, 40)  # used less than estimated: 60 back
    assert limits.tokens.level == 60


def endpoints(n: int) -> list[Endpoint]:
    return [Endpoint(f"e{i}", None) for i in range(n)]


def test_least_outstanding_then_fewest_sent() -> None:
    eps = endpoints(3)
    balancer = Balancer(eps, Clock())
    picked = [asyncio.run(balancer.acquire()).name for _ in range(4)]
    assert picked == ["e0", "e1", "e2", "e0"]
    balancer.release(eps[1], False)
    assert asyncio.run(balancer.acquire()).name == "e1"


def test_a_failing_replica_is_rested_then_probed() -> None:
    clock = Clock()
    eps = endpoints(2)
    balancer = Balancer(eps, clock)
    for _ in range(REST_AFTER):
        eps[0].outstanding += 1
        balancer.release(eps[0], True)
    assert eps[0].resting_until == clock.now + REST_FIRST and balancer.resting() == 1
    assert all(balancer.pick() is eps[1] for _ in range(3))
    clock.now += REST_FIRST
    eps[0].outstanding += 1
    balancer.release(eps[0], True)  # the probe fails: a longer rest at once
    assert eps[0].resting_until == clock.now + 2 * REST_FIRST
    clock.now += 2 * REST_FIRST
    eps[0].outstanding += 1
    balancer.release(eps[0], False)
    assert (eps[0].failures, eps[0].rests) == (0, 0)


def test_the_last_working_replica_is_not_rested_but_retry_after_is_honoured() -> None:
    clock = Clock()
    (ep,) = eps = endpoints(1)
    balancer = Balancer(eps, clock)
    for _ in range(REST_AFTER + 2):
        ep.outstanding += 1
        balancer.release(ep, True)
    assert balancer.pick() is ep
    ep.outstanding += 1
    balancer.release(ep, False, retry_after=7)
    assert balancer.pick() == 7
