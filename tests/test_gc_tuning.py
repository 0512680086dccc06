"""The web process tunes the garbage collector once its application is
imported (arena/gc_tuning.py, through arena.asgi); ARENA_GC_TUNING=0 leaves
CPython's defaults."""

from __future__ import annotations

from tests.test_settings import run_python

CODE = "import gc, arena.asgi; print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"


def test_the_web_application_freezes_start_up_objects_and_raises_the_thresholds():
    result = run_python(CODE, DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["50000", "True"]


def test_the_tuning_can_be_turned_off():
    result = run_python(CODE, DEBUG="true", ARENA_GC_TUNING="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["700", "False"]
