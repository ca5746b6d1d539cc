"""The client-side pacer, on a made-up clock (no sleeping, no HTTP)."""

from __future__ import annotations

import pytest

from sources.common import http
from sources.common.http import PACER_MARGIN, Pacer


class FakeClock:
    """`time.monotonic` and `time.sleep` for the pacer: sleeping moves the clock on."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(http, "time", fake)
    return fake


def _sent(pacer: Pacer, clock: FakeClock, requests: int, busy: float = 0.0) -> list[float]:
    """When each of `requests` was let go, the caller working `busy` seconds after each."""
    moments = []
    for _ in range(requests):
        pacer.wait()
        moments.append(clock.now)
        clock.now += busy
    return moments


def _most_in_one_second(moments: list[float]) -> int:
    return max(sum(1 for m in moments if start <= m < start + 1.0) for start in moments)


def test_never_more_than_the_rate_in_any_second(clock: FakeClock) -> None:
    moments = _sent(Pacer(25), clock, 200)
    assert _most_in_one_second(moments) == 25
    # a window's 25 requests every 1 s + margin: 94% of the rate sustained at 25/s
    assert moments[175] - moments[0] == pytest.approx(7 * (1.0 + PACER_MARGIN))


def test_requests_are_a_quarter_interval_apart_at_least(clock: FakeClock) -> None:
    moments = _sent(Pacer(25), clock, 10)
    gaps = [b - a for a, b in zip(moments, moments[1:], strict=False)]
    assert gaps == pytest.approx([0.01] * 9)


def test_slots_missed_while_busy_are_made_up_within_the_window(clock: FakeClock) -> None:
    pacer = Pacer(25)
    _sent(pacer, clock, 25, busy=0.04)  # one every 40 ms for a second
    clock.now += 0.3  # every worker busy: about seven slots missed
    after = _sent(pacer, clock, 10)
    # the first requests after the pause go at once, a quarter interval apart
    assert after[1] - after[0] == pytest.approx(0.01)
    assert after[0] == pytest.approx(101.3)


def test_a_fractional_rate_keeps_whole_requests_in_a_shorter_window(clock: FakeClock) -> None:
    pacer = Pacer(2.5)
    assert pacer.capacity == 2
    assert pacer.window == pytest.approx(0.8 + PACER_MARGIN)
    moments = _sent(pacer, clock, 6)
    assert moments[2] - moments[0] == pytest.approx(0.8 + PACER_MARGIN)


def test_a_rate_below_one_a_second_spaces_single_requests(clock: FakeClock) -> None:
    moments = _sent(Pacer(0.5), clock, 3)
    assert moments[1] - moments[0] == pytest.approx(2.0 + PACER_MARGIN)
