"""The recompute's debounce flag as a process learns it (issue #14): while a
queued task is known to be waiting out its window, votes ask Redis nothing;
outside a known window every vote asks, as before."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache, caches

from votes import services
from votes.services import DEBOUNCE_MARGIN_SECONDS, RECOMPUTE_QUEUED_KEY, opening_flag, request_recompute


@pytest.fixture
def cache_calls(monkeypatch):
    """The cache's add and get, counted (and still done)."""
    calls: list[str] = []
    target = caches["default"]  # this test's cache (conftest's _isolated_cache), not the proxy
    for name in ("add", "get"):
        real = getattr(target, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(target, name, counted)
    cache.delete(RECOMPUTE_QUEUED_KEY)
    return calls


def test_a_process_that_queued_the_task_skips_redis_until_its_window_nears_its_end(settings, cache_calls):
    settings.RATINGS_DEBOUNCE_SECONDS = 30
    assert request_recompute() is True  # sets the flag and queues the task
    assert cache.get(RECOMPUTE_QUEUED_KEY) is not None
    cache_calls.clear()

    assert [request_recompute() for _ in range(5)] == [False] * 5
    assert cache_calls == []


def test_a_window_another_process_opened_is_read_once_then_trusted(settings, cache_calls):
    settings.RATINGS_DEBOUNCE_SECONDS = 30
    cache.set(RECOMPUTE_QUEUED_KEY, time.time() + 30, timeout=40)  # another web process's flag
    cache_calls.clear()

    assert request_recompute() is False
    assert cache_calls == ["add", "get"]
    assert [request_recompute() for _ in range(5)] == [False] * 5
    assert cache_calls == ["add", "get"]


def test_once_the_window_nears_its_end_every_vote_asks_redis_again(settings, cache_calls):
    """The task clears the flag and reads the votes only after its window:
    a vote in the last margin before then (or later) must find out for itself
    whether a new task is needed."""
    settings.RATINGS_DEBOUNCE_SECONDS = DEBOUNCE_MARGIN_SECONDS + 0.2
    assert request_recompute() is True
    time.sleep(0.25)  # now within the margin before the window's end
    cache_calls.clear()

    assert request_recompute() is False  # the flag is still there: its task will count this vote
    assert cache_calls[0] == "add"

    cache.delete(RECOMPUTE_QUEUED_KEY)  # the task woke up and cleared it
    assert request_recompute() is True  # a new task for the votes after its read
    assert cache.get(RECOMPUTE_QUEUED_KEY) is not None


def test_a_flag_whose_window_is_over_is_never_trusted_and_read_at_most_once_per_margin(settings, cache_calls):
    """A window that is over but whose flag remains (its task late, or lost
    until the flag expires): each vote asks with its add, none skips."""
    settings.RATINGS_DEBOUNCE_SECONDS = 2
    cache.set(RECOMPUTE_QUEUED_KEY, time.time() - 1, timeout=10)
    cache_calls.clear()

    assert [request_recompute() for _ in range(4)] == [False] * 4
    assert cache_calls.count("add") == 4
    assert cache_calls.count("get") == 1


def test_forget_debounce_starts_over(settings, cache_calls):
    settings.RATINGS_DEBOUNCE_SECONDS = 30
    request_recompute()
    services.forget_debounce()
    cache_calls.clear()

    assert request_recompute() is False  # asks again: the flag is still there
    assert cache_calls[0] == "add"


def test_a_window_is_never_trusted_for_longer_than_the_debounce(settings, cache_calls):
    """A flag whose value lies far ahead (another host's clock, or one set
    back here) is trusted for RATINGS_DEBOUNCE_SECONDS at most."""
    settings.RATINGS_DEBOUNCE_SECONDS = DEBOUNCE_MARGIN_SECONDS + 0.05
    cache.set(RECOMPUTE_QUEUED_KEY, time.time() + 3600, timeout=10)
    cache_calls.clear()
    assert request_recompute() is False
    assert cache_calls == ["add", "get"]

    time.sleep(0.1)  # past the (short) debounce less the margin: asks again
    assert request_recompute() is False
    assert cache_calls[2] == "add"


def test_the_flag_names_its_window_only_once_the_task_is_queued(settings, cache_calls):
    """While its task is being published the flag says "opening <end>":
    another process learns nothing from it and keeps asking; once published,
    the flag holds when the window ends."""
    settings.RATINGS_DEBOUNCE_SECONDS = 30
    cache.set(RECOMPUTE_QUEUED_KEY, opening_flag(time.time() + 30), timeout=40)
    cache_calls.clear()
    assert request_recompute() is False
    time.sleep(DEBOUNCE_MARGIN_SECONDS + 0.01)  # past the read throttle
    assert request_recompute() is False
    assert cache_calls == ["add", "get", "add", "get"]  # never trusted

    cache.delete(RECOMPUTE_QUEUED_KEY)
    services.forget_debounce()
    before = time.time()
    assert request_recompute() is True
    assert before + 29 <= cache.get(RECOMPUTE_QUEUED_KEY) <= time.time() + 30


@pytest.mark.parametrize("flag", ["window", "opening", "none", "unreadable"])
def test_the_task_waits_out_the_window_it_can_see(settings, monkeypatch, flag):
    """The worker's side (ratings/tasks.py): it sleeps until the window's
    end, named by the flag once published and by "opening <end>" before
    (the task often reads the flag before its publisher wrote the end: the
    web's own window, not the worker's setting, counts); not at all without
    a flag (a recompute asked for otherwise); a whole window of its own when
    the cache cannot be read. Then it clears the flag."""
    from ratings import tasks

    settings.RATINGS_DEBOUNCE_SECONDS = 7  # the worker's own setting
    slept: list[float] = []
    monkeypatch.setattr(tasks.time, "sleep", slept.append)  # the waits, recorded instead of slept
    values = {"window": time.time() + 3, "opening": opening_flag(time.time() + 3), "none": None}
    if flag == "unreadable":
        target = caches["default"]

        def unreadable(*args, **kwargs):
            raise ConnectionError("the cache is down")

        monkeypatch.setattr(target, "get", unreadable)
    elif values[flag] is None:
        cache.delete(RECOMPUTE_QUEUED_KEY)
    else:
        cache.set(RECOMPUTE_QUEUED_KEY, values[flag], timeout=20)

    tasks.wait_out_debounce()

    expected = {"window": [pytest.approx(3, abs=0.5)], "opening": [pytest.approx(3, abs=0.5)], "none": []}
    assert slept == expected.get(flag, [7])
    if flag != "unreadable":
        assert cache.get(RECOMPUTE_QUEUED_KEY) is None
