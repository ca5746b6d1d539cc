"""The client-side pacer, on a made-up clock (no sleeping, no HTTP)."""

from __future__ import annotations

import threading

import pytest

from sources.common import http
from sources.common.http import PACER_MARGIN, Pacer, RequestBudget


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
    before = _sent(pacer, clock, 25, busy=0.04)  # one every 40 ms, from 100.00 to 100.96
    clock.now += 0.3  # every worker busy until 101.30: about seven slots missed
    after = _sent(pacer, clock, 12)
    # the requests after the pause go a quarter interval apart until the window binds: the
    # 10th waits for 1.06 s after the 10th request before the pause (100.36)
    assert after[:9] == pytest.approx([101.3 + 0.01 * k for k in range(9)])
    assert after[9] == pytest.approx(100.36 + 1.0 + PACER_MARGIN)
    assert after[11] - after[10] == pytest.approx(0.04)
    assert _most_in_one_second(before + after) == 25


def test_a_fractional_rate_keeps_whole_requests_in_a_shorter_window(clock: FakeClock) -> None:
    pacer = Pacer(2.5)
    assert pacer.capacity == 2
    assert pacer.window == pytest.approx(0.8 + PACER_MARGIN)
    moments = _sent(pacer, clock, 6)
    assert moments[2] - moments[0] == pytest.approx(0.8 + PACER_MARGIN)
    assert _most_in_one_second(moments) == 4  # the promise is per window, not per second


def test_a_rate_below_one_a_second_spaces_single_requests(clock: FakeClock) -> None:
    moments = _sent(Pacer(0.5), clock, 3)
    assert moments[1] - moments[0] == pytest.approx(2.0 + PACER_MARGIN)


def test_threads_share_the_window(clock: FakeClock, monkeypatch) -> None:
    """Eight threads at once: the moments handed out keep the window and the spacing."""
    moments: list[float] = []
    record = threading.Lock()

    def sleep(seconds: float) -> None:  # the clock stands still; each thread notes its moment
        moments_of_thread.value = clock.now + seconds

    moments_of_thread = threading.local()
    monkeypatch.setattr(clock, "sleep", sleep)
    pacer, start = Pacer(25), threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(20):
            moments_of_thread.value = clock.now
            pacer.wait()
            with record:
                moments.append(moments_of_thread.value)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    moments.sort()
    assert len(moments) == 160
    assert _most_in_one_second(moments) == 25
    assert min(b - a for a, b in zip(moments, moments[1:], strict=False)) >= 0.01 - 1e-9
    window = 1.0 + PACER_MARGIN - 1e-9
    assert all(b - a >= window for a, b in zip(moments, moments[25:], strict=False))


def _most_in_any(moments: list[float], seconds: float) -> int:
    return max(sum(1 for m in moments if start <= m < start + seconds) for start in moments)


def test_a_budget_keeps_a_rolling_window_of_its_own(clock: FakeClock) -> None:
    """Revolv3's 20,000 requests in any 15 minutes, scaled down: 10 in any 60 s at 5/s."""
    pacer = Pacer(5, budget=RequestBudget(10, 60.0))
    moments = _sent(pacer, clock, 25)
    assert moments[9] - moments[0] < 3  # the first ten at the per-second pace
    assert moments[10] == pytest.approx(moments[0] + 60 + PACER_MARGIN)  # then the budget
    assert moments[20] == pytest.approx(moments[10] + 60 + PACER_MARGIN)
    assert _most_in_any(moments, 60.0) == 10
    assert _most_in_one_second(moments) <= 5


def test_a_budget_alone_paces_without_a_rate(clock: FakeClock) -> None:
    pacer = Pacer(budget=RequestBudget(3, 10.0))
    moments = _sent(pacer, clock, 7, busy=1.0)
    assert moments[:3] == pytest.approx([100.0, 101.0, 102.0])  # no spacing, no rate
    assert moments[3] == pytest.approx(110.0 + PACER_MARGIN)
    assert moments[6] == pytest.approx(120.0 + 2 * PACER_MARGIN)
    assert _most_in_any(moments, 10.0) == 3


def test_a_pacer_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="rate per second, a budget"):
        Pacer()
