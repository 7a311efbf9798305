"""Figures each process keeps for a few seconds, for pages that ask for them far more often than they move."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values by key for ttl_s seconds in this process; expired entries go when a new one is stored, so the
    cache holds at most the keys asked for within one ttl."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        value = compute()
        for stale in [k for k, (expires, _value) in self._entries.items() if expires <= now]:
            del self._entries[stale]
        self._entries[key] = (now + self.ttl_s, value)
        return value
