"""The boot prober's deadline (boot_probe.Deadline): one bad clock read must not end or stall a probe."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
from ansible.module_utils.vnflab_host.boot_probe import MAX_GLITCHES_KEPT, BootProbeResult, Deadline


class ScriptedClock:
    """Returns the given readings in order; every pause is recorded."""

    def __init__(self, readings: Iterable[float]) -> None:
        self.readings = iter(readings)
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return next(self.readings)

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


def deadline_from(start: float, seconds: float, readings: list[float]) -> tuple[Deadline, ScriptedClock]:
    """A Deadline whose three start reads are all ``start``, then the given readings."""
    clock = ScriptedClock([start, start, start, *readings])
    return Deadline(seconds, clock, clock.pause), clock


def test_ordinary_reads_are_trusted_without_a_second_read() -> None:
    deadline, clock = deadline_from(100.0, 300.0, [100.4, 101.0, 101.9])
    assert [deadline.now() for _ in range(3)] == [100.4, 101.0, 101.9]
    assert len(clock.pauses) == 2 and deadline.glitch_count == 0  # the two between the start reads


@pytest.mark.parametrize("bad", [1e12, -1e12, 3.0])
def test_one_bad_start_read_does_not_move_the_start(bad: float) -> None:
    for position in range(3):
        reads = [100.0, 100.001, 100.002]
        reads[position] = bad
        clock = ScriptedClock(reads)
        deadline = Deadline(300.0, clock, clock.pause)
        assert 100.0 <= deadline.start <= 100.002
        assert deadline.end == pytest.approx(deadline.start + 300.0)
        assert deadline.glitch_count == 1


def test_a_confirmed_read_past_the_end_expires() -> None:
    deadline, clock = deadline_from(100.0, 300.0, [400.5, 400.6])
    now = deadline.now()
    assert now == 400.5 and deadline.expired(now)
    assert len(clock.pauses) == 3 and deadline.glitches == []


def test_a_real_leap_is_confirmed_and_kept() -> None:
    # the prober was not scheduled for 30 s: the next read agrees, so the leap is real
    deadline, _ = deadline_from(100.0, 300.0, [130.0, 130.001])
    assert deadline.now() == 130.0
    assert deadline.glitch_count == 0


def test_one_bad_read_past_the_end_is_a_glitch_not_the_end() -> None:
    # A read 1000 s ahead that the next read contradicts (16 s after the start).
    deadline, _ = deadline_from(100.0, 300.0, [1100.0, 116.0, 117.0])
    now = deadline.now()
    assert now == 116.0 and not deadline.expired(now)
    assert deadline.glitch_count == 1
    assert [g.as_dict() for g in deadline.glitches] == [{"read_s": 1000.0, "confirmed_s": 16.0}]
    assert deadline.now() == 117.0  # the next ordinary read goes on as before


def test_a_bad_read_short_of_the_end_cannot_push_the_next_request_away() -> None:
    deadline, _ = deadline_from(100.0, 300.0, [250.0, 100.5])
    assert deadline.now() == 100.5
    assert deadline.glitch_count == 1


def test_a_read_back_in_time_is_bad_and_the_clock_stays_put() -> None:
    deadline, _ = deadline_from(100.0, 300.0, [100.5, -5e11, 100.7])
    assert [deadline.now(), deadline.now(), deadline.now()] == [100.5, 100.5, 100.7]
    assert deadline.glitch_count == 1
    assert deadline.glitches[0].confirmed_s == 0.5


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_read_that_is_no_number_is_bad(bad: float) -> None:
    deadline, _ = deadline_from(100.0, 300.0, [100.5, bad, 100.6, 400.0, bad, 100.7])
    assert [deadline.now() for _ in range(4)] == [100.5, 100.5, 100.6, 100.6]  # 400.0 not confirmed
    assert deadline.now() == 100.7
    assert deadline.glitch_count == 2
    assert deadline.glitches[0].as_dict() == {"read_s": str(bad), "confirmed_s": 0.5}  # JSON-safe
    clock = ScriptedClock([bad, 5.0, 5.001])
    assert Deadline(10.0, clock, clock.pause).start == 5.0


def test_every_glitch_is_counted_but_only_the_first_ones_kept() -> None:
    glitches = MAX_GLITCHES_KEPT + 5
    deadline, _ = deadline_from(0.0, 10.0, [reading for i in range(glitches) for reading in (99.0, i * 0.5)])
    assert not any(deadline.expired(deadline.now()) for _ in range(glitches))
    assert deadline.glitch_count == glitches
    assert len(deadline.glitches) == MAX_GLITCHES_KEPT
    assert deadline.glitches[0].confirmed_s == 0.0


@pytest.mark.parametrize("seconds", [0.5, 300.0])
def test_elapsed_is_from_the_start(seconds: float) -> None:
    deadline, _ = deadline_from(50.0, 1000.0, [50.0 + seconds, 50.0 + seconds])
    assert deadline.elapsed() == pytest.approx(seconds)


def test_diagnostics_say_how_the_probe_ended() -> None:
    result = BootProbeResult(first_reply_ns={"198.18.1.2": None}, poll_interval_s=0.001,
                             requested_poll_interval_s=0.001, max_pps=1000, started_ns=1, deadline_ns=2,
                             rx_source="kernel-software", ended="deadline", elapsed_s=300.0, late_replies=1,
                             clock_glitches=2, clock_glitch_reads=[{"read_s": 900.0, "confirmed_s": 12.0}])
    diagnostics = result.diagnostics()
    assert "first_reply_ns" not in diagnostics
    assert (diagnostics["ended"], diagnostics["late_replies"], diagnostics["clock_glitches"]) == ("deadline", 1, 2)
    assert result.as_dict()["first_reply_ns"] == {"198.18.1.2": None}


def test_next_ready_is_round_robin_over_the_allowed_addresses() -> None:
    import collections

    from ansible.module_utils.vnflab_host.boot_probe import _next_ready

    pending = collections.deque(["a", "b", "c"])
    allowed = {"b", "c"}
    picked = [_next_ready(pending, allowed.__contains__) for _ in range(4)]
    assert picked == ["b", "c", "b", "c"]
    assert _next_ready(pending, lambda _address: False) is None
    assert sorted(pending) == ["a", "b", "c"], "nothing is dropped while it waits"
    assert _next_ready(collections.deque(["x"]), None) == "x"
