"""Reading an import a batch ahead: parsing on a thread of its own while the caller writes the last batch.

An import spends its time in two places that can work at once: Python parsing and checking lines, and the
database storing rows (PostgreSQL in its own process; SQLite with the GIL released). Taking turns, each
waits for the other; with the parsing on a second thread, the next batch is ready when the database is.
The thread only parses: the session stays on the caller's thread.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()
# How often a reader blocked on a full queue looks whether the caller has gone.
_POLL_SECONDS = 0.1


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class BatchReader(Generic[T]):
    """Iterate over lists of up to batch_size values of `values`, which are drawn on a background thread.

    Use it as a context manager: leaving the block stops the thread, even when the caller stops early.
    An exception raised while drawing values is raised again in the caller, after the full batches drawn
    before it (the values of the unfinished batch are dropped).
    """

    def __init__(self, values: Iterable[T], batch_size: int) -> None:
        self._values = values
        self._batch_size = batch_size
        # One batch waiting while the next is drawn: enough to overlap, and memory stays a few batches.
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), daemon=True)

    def __enter__(self) -> BatchReader[T]:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator[list[T]]:
        while True:
            value = self._queue.get()
            if value is _DONE:
                return
            if isinstance(value, _Failure):
                raise value.error
            yield value  # type: ignore[misc]

    def _run(self) -> None:
        try:
            batch: list[T] = []
            for value in self._values:
                batch.append(value)
                if len(batch) >= self._batch_size:
                    if not self._put(batch):
                        return
                    batch = []
            if batch and not self._put(batch):
                return
            self._put(_DONE)
        except BaseException as error:
            self._put(_Failure(error))

    def _put(self, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False
