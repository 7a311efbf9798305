"""Work started in several threads at the same instant, as several tabs or clients would send it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(count: int, work: Callable[[int], T], timeout: float = 120.0) -> list[T]:
    """work(0) ... work(count - 1), each in its own thread, released together; their results in that order.

    An exception in any of them is raised here, after all have ended."""
    start = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait()
            results[n] = work(n)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        raise errors[0]
    assert all(not thread.is_alive() for thread in threads), "a thread did not finish in time"
    return results  # type: ignore[return-value]
