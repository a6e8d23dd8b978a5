"""One step of look-ahead: the next item's work runs on another thread while this one is used.

Streaming predict spends most of its time in two kinds of work that can overlap: the model
(LiteRT releases the GIL while it runs) and parsing, formatting and writing (numpy, mostly
on the main thread). Run one after the other, one of the two cores idles through each.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def worked_ahead(
    items: Iterable[Item], work: Callable[[Item], Result]
) -> Generator[Result, None, None]:
    """`work(item)` of each item, in order; the next item is fetched and its work started
    before this result is yielded, so both go on while the caller uses it.

    One `work` runs at a time, in item order, so it needs no locking of its own; an item is
    let go once its work is done (what the caller needs of it goes in the result). An
    exception from `work` is raised when its result is due; leaving the loop early cancels
    the work not yet started.
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix="ahead")
    pending: Future[Result] | None = None
    try:
        for item in items:
            job = pool.submit(work, item)
            del item  # the job holds it until its work is done, and no longer
            if pending is not None:
                yield pending.result()
            pending = job
        if pending is not None:
            yield pending.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
