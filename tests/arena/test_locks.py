"""arena/locks.py: the one single-flight lock of the background jobs."""

from __future__ import annotations

import threading

import pytest

from arena.locks import DETECT_ANOMALIES, RECOMPUTE, advisory_key, single_flight


def held_elsewhere(name: str):
    """Hold ``name`` from another thread (another database connection, as
    another worker would) until the returned event is set."""
    from django.db import connection

    got, release, done = threading.Event(), threading.Event(), threading.Event()
    outcome = {}

    def hold():
        try:
            with single_flight(name) as ok:
                outcome["ok"] = ok
                got.set()
                release.wait(30)
        finally:
            connection.close()
            done.set()

    threading.Thread(target=hold, daemon=True).start()
    assert got.wait(30) and outcome["ok"]
    return release, done


@pytest.mark.django_db(transaction=True)
def test_a_lock_held_elsewhere_is_refused_then_free_after_release():
    release, done = held_elsewhere("tests.some-job")
    with single_flight("tests.some-job") as got:
        assert got is False
    with single_flight("tests.other-job") as got:  # another name is another lock
        assert got is True
    release.set()
    assert done.wait(30)
    with single_flight("tests.some-job") as got:
        assert got is True


@pytest.mark.django_db(transaction=True)
def test_anomaly_detection_skips_while_another_run_holds_its_lock():
    from votes.tasks import detect_anomalies

    release, done = held_elsewhere(DETECT_ANOMALIES)
    try:
        assert detect_anomalies.apply().get() is None  # skipped, not run twice at once
    finally:
        release.set()
        assert done.wait(30)
    assert detect_anomalies.apply().get() is not None  # the lock died with its holder's run


def test_names_have_distinct_keys_and_the_recompute_keeps_its_old_one():
    assert advisory_key(RECOMPUTE) == 0x4152454E41
    keys = {advisory_key(n) for n in (RECOMPUTE, DETECT_ANOMALIES, "a", "b")}
    assert len(keys) == 4 and all(-(2**63) <= k < 2**63 for k in keys)
