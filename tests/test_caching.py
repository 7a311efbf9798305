"""The per-process cache behind the glance, progress and open-items figures."""

from __future__ import annotations

from app.caching import TtlCache


def test_a_value_is_reused_within_its_ttl_and_computed_again_after() -> None:
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    kept: TtlCache[str, str] = TtlCache(60.0)
    assert [kept.get("a", lambda: compute("a")) for _ in range(3)] == ["A", "A", "A"]
    assert calls == ["a"]

    expired: TtlCache[str, str] = TtlCache(0.0)
    assert [expired.get("a", lambda: compute("a")) for _ in range(2)] == ["A", "A"]
    assert calls == ["a", "a", "a"]


def test_expired_entries_leave_when_another_is_stored() -> None:
    cache: TtlCache[int, int] = TtlCache(0.0)
    for key in range(100):
        cache.get(key, lambda: 0)
    assert list(cache._entries) == [99]
