"""worked_ahead: the next item's work overlaps the caller's use of this one, in order."""

from __future__ import annotations

import itertools
import threading

import pytest

from forecaster.device.ahead import worked_ahead


def test_results_come_in_order_and_one_work_runs_at_a_time():
    running, most, lock = 0, 0, threading.Lock()
    called = []

    def work(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        called.append(item)
        with lock:
            running -= 1
        return item * item

    assert list(worked_ahead(range(50), work)) == [i * i for i in range(50)]
    assert called == list(range(50))
    assert most == 1
    assert list(worked_ahead([], work)) == []


def test_the_next_items_work_runs_while_the_caller_holds_this_result():
    started = [threading.Event() for _ in range(3)]

    def work(item: int) -> int:
        started[item].set()
        return item

    for result in worked_ahead(range(3), work):
        if result < 2:
            # Nothing more is asked of the generator until this wait is over.
            assert started[result + 1].wait(timeout=30)


def test_an_error_in_work_is_raised_when_its_result_is_due():
    def work(item: int) -> int:
        if item == 2:
            raise ValueError("bad item 2")
        return item

    seen = []
    with pytest.raises(ValueError, match="bad item 2"):
        for result in worked_ahead(range(5), work):
            seen.append(result)
    assert seen == [0, 1]


def test_leaving_early_stops_fetching_and_working():
    fetched = []
    worked = []

    def items():
        for i in itertools.count():
            fetched.append(i)
            yield i

    def work(item: int) -> int:
        worked.append(item)
        return item

    ahead = worked_ahead(items(), work)
    assert next(ahead) == 0
    ahead.close()
    assert fetched == [0, 1]  # the one being used, and the next
    assert worked in ([0], [0, 1])  # the next one's work may have started before the close
