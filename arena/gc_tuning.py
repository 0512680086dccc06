"""Garbage collection for a long-running web process (the Procfile's
``web``, through ``arena.asgi``).

CPython's cyclic collector stops the whole process while it runs: the event
loop and every request thread. Its oldest generation walks every tracked
object, and a web process holds hundreds of thousands from start-up (Django,
the URL conf, DRF, modules) plus the state of every open stream. Measured in
the web worker during bench/bench_live.py at N = 500 (docs/LIVE.md
"Measured"): four full collections in the 15 s of the run, 86–148 ms each,
every stream start and leaderboard request in flight waiting them out; the
95th percentile of the time to first text moved by as much from run to run
(+90 to +340 ms over the provider's).

``tune_for_serving`` (called once, when the web's application is imported):

* ``gc.freeze()`` after a collection: what exists at start-up (it lives as
  long as the process anyway) moves to a permanent generation that no
  collection walks again;
* thresholds ``(50_000, 20, 10)`` instead of ``(700, 10, 10)``: the young
  generation is collected after 50,000 new container objects instead of
  700, so the objects of a request or a chunk, short-lived, die before
  a collection sees them and few are promoted, and the full collections
  that promotion triggers become rare. Garbage cycles are still collected,
  later.

With both, N = 500 gave +32 ms (headers p95 26 ms, leaderboard p95 13 ms)
where the same code without gave +90 to +340 ms. ``ARENA_GC_TUNING=0`` in
the environment leaves the collector as CPython sets it.
"""

from __future__ import annotations

import gc
import os

THRESHOLDS = (50_000, 20, 10)


def tune_for_serving() -> bool:
    """Freeze start-up objects and raise the thresholds; False if turned off."""
    if os.environ.get("ARENA_GC_TUNING", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return True
