"""``Recent``: the bounded memory behind every per-process memory of tasks."""

from __future__ import annotations

from application.memory import Recent


def test_past_its_entries_the_oldest_goes_first() -> None:
    recent: Recent[str, str] = Recent(len, max_entries=2)
    for key in ("a", "b", "c"):
        recent.put(key, key * 2)
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (None, "bb", "cc")
    assert len(recent) == 2


def test_putting_a_key_again_makes_it_the_newest_and_counts_its_size_once() -> None:
    recent: Recent[str, str] = Recent(len, max_size=10)
    recent.put("a", "aaaa")
    recent.put("b", "bbbb")
    recent.put("a", "AAAA")  # 8 in all, not 12: nothing goes
    assert (recent.get("a"), recent.get("b")) == ("AAAA", "bbbb")
    recent.put("c", "cccc")  # 12: the oldest, now "b", goes
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == ("AAAA", None, "cccc")


def test_forgetting_frees_its_size() -> None:
    recent: Recent[str, str] = Recent(len, max_size=8)
    recent.put("a", "aaaa")
    recent.put("b", "bbbb")
    recent.discard("a")
    recent.discard("nothing kept here")
    recent.put("c", "cccc")
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (None, "bbbb", "cccc")


def test_a_value_over_the_size_bound_alone_is_not_kept_and_costs_the_others_nothing() -> None:
    recent: Recent[str, str] = Recent(len, max_size=3)
    recent.put("a", "aa")
    recent.put("b", "b")
    recent.put("b", "bbbb")  # replaces "b", and is too large to keep
    assert (recent.get("a"), recent.get("b"), len(recent)) == ("aa", None, 1)
    recent.put("c", "c")
    assert (recent.get("a"), recent.get("c")) == ("aa", "c")
