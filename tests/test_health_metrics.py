"""Operators' view: ``manage.py check --deploy`` with the documented production
environment, ``GET /healthz`` (each check, bounded when Redis freezes, the
embedded default) and the token-protected Prometheus page ``GET /metrics``."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from arena.metrics import PROVIDER_ANSWER, PROVIDER_ERRORS, PROVIDER_FIRST_TOKEN, observe_stream
from arena.project import health
from arena.providers import OpenAICompatible, ProviderError
from tests.fake_openai import FakeOpenAI
from tests.services import ROOT, ChildProcess, free_port, redis_server_binary, unavailable, wait_for


def documented_production_env() -> dict[str, str]:
    """deploy/env.example, the production environment the README points to."""
    env = {}
    for line in (ROOT / "deploy" / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def check_deploy(tmp_path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SESSION_COOKIE", "CSRF_COOKIE"))}
    documented = documented_production_env()
    assert documented["DEBUG"] == "false" and "SECRET_KEY" in documented
    # This machine's services and a fresh 50-character secret instead of the placeholders.
    for keep in ("DATABASE_URL", "REDIS_URL", "REDIS_CACHE_URL"):
        documented.pop(keep, None)
    # Playwright's tests set this in the test process; a deployment never does (async.E001).
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(documented, SECRET_KEY=secrets.token_urlsafe(48)[:50], ARENA_VAR_DIR=str(tmp_path), **extra)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip


def test_check_deploy_is_clean_with_the_documented_production_environment(tmp_path):
    result = check_deploy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_each_security_switch_turned_off(tmp_path):
    result = check_deploy(tmp_path, SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0", SESSION_COOKIE_SECURE="false")
    assert result.returncode != 0
    for warning in ("security.W008", "security.W004", "security.W012"):
        assert warning in result.stderr + result.stdout


def test_a_malformed_proxy_header_setting_is_refused(tmp_path):
    result = check_deploy(tmp_path, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert result.returncode != 0 and "SECURE_PROXY_SSL_HEADER" in result.stderr


# --- /healthz ---------------------------------------------------------------------


@pytest.fixture
def beats(shared_cache):
    """The heartbeats workers write, starting from none."""
    shared_cache.delete(health.HEARTBEAT_KEY)
    yield shared_cache
    shared_cache.delete(health.HEARTBEAT_KEY)


def test_healthz_is_503_without_a_worker_heartbeat_and_200_with_one(client, transactional_db, beats):
    response = client.get("/healthz")
    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["worker"] == {"ok": False, "workers": 0, "last_heartbeat": None, "age_seconds": None}
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"] and body["checks"]["snapshot"]["ok"]

    health._write_heartbeat("celery@test:1", alive=True)
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok" and response.json()["checks"]["worker"]["workers"] == 1

    health._write_heartbeat("celery@test:1", alive=False)  # a warm shutdown removes the beat
    assert client.get("/healthz").status_code == 503


def test_a_heartbeat_older_than_three_periods_is_a_dead_worker(client, transactional_db, beats, settings):
    settings.ARENA_WORKER_HEARTBEAT_SECONDS = 10
    beats.set(health.HEARTBEAT_KEY, {"celery@gone:7": time.time() - 31})
    worker = client.get("/healthz").json()["checks"]["worker"]
    assert worker["ok"] is False and worker["workers"] == 0 and worker["age_seconds"] > 30
    beats.set(health.HEARTBEAT_KEY, {"celery@gone:7": time.time() - 31, "celery@here:8": time.time() - 5})
    assert client.get("/healthz").json()["checks"]["worker"]["workers"] == 1


def test_a_worker_process_writes_its_heartbeat_and_removes_it_on_shutdown(celery_worker_process, beats, client):
    assert wait_for(lambda: client.get("/healthz").json()["checks"]["worker"]["ok"], timeout=20)
    celery_worker_process.stop()
    assert client.get("/healthz").json()["checks"]["worker"]["workers"] == 0


def test_a_counted_vote_left_without_a_snapshot_fails_the_snapshot_check(
    client, transactional_db, demo_models, settings
):
    from arena.models import Voter
    from ratings.services import recompute_publish
    from votes.models import Vote

    voter = Voter.objects.create(key="health")
    Vote.objects.create(voter=voter, model_a=demo_models[0], model_b=demo_models[1], winner="a")
    settings.ARENA_HEALTH_SNAPSHOT_MAX_LAG_SECONDS = 3600
    snapshot = client.get("/healthz").json()["checks"]["snapshot"]
    assert snapshot["ok"] is True and snapshot["age_seconds"] is None
    settings.ARENA_HEALTH_SNAPSHOT_MAX_LAG_SECONDS = 0
    snapshot = client.get("/healthz").json()["checks"]["snapshot"]
    assert snapshot["ok"] is False and snapshot["oldest_uncounted_vote_seconds"] > 0

    recompute_publish()
    snapshot = client.get("/healthz").json()["checks"]["snapshot"]
    assert snapshot["ok"] is True and snapshot["age_seconds"] >= 0 and snapshot["oldest_uncounted_vote_seconds"] == 0


def test_healthz_fails_instead_of_hanging_when_redis_freezes(transactional_db, settings, tmp_path):
    binary = redis_server_binary()
    if binary is None:
        unavailable("redis-server not installed")
    port = free_port()
    redis = ChildProcess([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                         tmp_path / "redis.log").start(port=port)  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    settings.CELERY_BROKER_URL = url
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                                   "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2}}}  # fmt: skip
    try:
        health._write_heartbeat("celery@test:1", alive=True)
        assert health.health(timeout=1.0)["checks"]["broker"]["ok"] is True
        os.kill(redis.proc.pid, signal.SIGSTOP)  # the server holds its connections and answers nothing
        result = health.health(timeout=0.5)
        assert result["status"] == "fail"
        assert result["checks"]["broker"]["ok"] is False and result["checks"]["worker"]["ok"] is False
        assert result["checks"]["database"]["ok"] is True
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
        redis.stop()


def test_healthz_works_on_the_embedded_default(tmp_path):
    """SQLite and the filesystem broker: no server at all."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "REDIS_CACHE_URL")}
    env["ARENA_VAR_DIR"] = str(tmp_path)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True,
                   timeout=300)  # fmt: skip
    script = (
        "import json; from arena.project.health import health, _write_heartbeat; from arena.celery import app\n"
        "app.send_task('ratings.recompute_if_stale')\n"
        "print(json.dumps(health())); _write_heartbeat('celery@x:1', alive=True); print(json.dumps(health()))"
    )
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout.strip().splitlines()  # fmt: skip
    import json

    before, after = json.loads(out[-2]), json.loads(out[-1])
    assert before["status"] == "fail" and before["checks"]["worker"]["ok"] is False
    assert before["checks"]["broker"] == {"ok": True, "transport": "filesystem", "queued": 1}
    assert after["status"] == "ok", after


def test_healthz_answers_only_get(client, transactional_db):
    assert client.post("/healthz").status_code == 405


# --- /metrics ---------------------------------------------------------------------


def scrape(client, token: str) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_do_not_exist_without_a_token_setting(client, db, settings):
    settings.ARENA_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_need_the_bearer_token(client, db, settings):
    settings.ARENA_METRICS_TOKEN = "s3cret-token"
    for header in (None, "Bearer wrong", "Token s3cret-token", "s3cret-token"):
        response = client.get("/metrics", **({"HTTP_AUTHORIZATION": header} if header else {}))
        assert response.status_code == 401, header
        assert response.json()["error"] == "not_authenticated" and response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200


def test_metrics_read_votes_battles_streams_and_recomputes_from_the_database(client, db, demo_models, settings):
    from datetime import timedelta

    from django.utils import timezone

    from arena.models import Battle, Voter
    from ratings.services import recompute_publish
    from votes.models import Vote

    settings.ARENA_METRICS_TOKEN = "t"
    voter = Voter.objects.create(key="metrics")
    a, b, c = demo_models[:3]
    for winner in ("a", "a", "b", "tie"):
        Vote.objects.create(voter=voter, model_a=a, model_b=b, winner=winner)
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.ARENA_VOTE_WINDOW_SECONDS + 60)
    Battle.objects.create(voter=voter, model_a=a, model_b=c, prompt="p", status="ready", ready_at=long_ago)
    Battle.objects.create(voter=voter, model_a=a, model_b=c, prompt="p", status="ready", ready_at=now)
    Battle.objects.create(voter=voter, model_a=b, model_b=c, prompt="p", status="pending", streaming_since=now)
    Battle.objects.create(voter=voter, model_a=b, model_b=c, prompt="p", status="skipped", ready_at=now)

    before = scrape(client, "t")
    assert before[("arena_votes_stored_total", (("winner", "a"),))] == 2
    assert before[("arena_votes_stored_total", (("winner", "tie"),))] == 1
    assert before[("arena_battles_opened_total", ())] == 4
    assert before[("arena_battles", (("status", "ready"),))] == 2
    assert before[("arena_battles", (("status", "voted"),))] == 0
    assert before[("arena_battles_skipped_total", ())] == 1
    assert before[("arena_battles_abandoned_total", ())] == 1
    assert before[("arena_streams_in_progress", ())] == 1
    assert before[("arena_recompute_duration_seconds_count", ())] == 0
    assert ("arena_snapshot_age_seconds", ()) not in before

    recompute_publish()
    after = scrape(client, "t")
    assert after[("arena_recompute_duration_seconds_count", ())] == 1
    assert after[("arena_recompute_duration_seconds_sum", ())] == after[("arena_recompute_last_duration_seconds", ())]
    assert after[("arena_recompute_last_duration_seconds", ())] > 0
    assert after[("arena_snapshot_age_seconds", ())] >= 0


def test_metrics_queue_depth_is_read_from_the_broker(client, db, settings):
    from arena.celery import app
    from tests.services import purge_broker

    settings.ARENA_METRICS_TOKEN = "t"
    purge_broker()
    try:
        assert scrape(client, "t")[("arena_queue_depth", ())] == 0
        app.send_task("ratings.recompute_if_stale")
        app.send_task("ratings.recompute_if_stale")
        assert scrape(client, "t")[("arena_queue_depth", ())] == 2
    finally:
        purge_broker()


@pytest.fixture
def provider():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def _value(metric, *labels: str, suffix: str = "_count") -> float:
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith(suffix) and tuple(sample.labels.get(k) for k in metric._labelnames) == labels:
                return sample.value
    return 0.0


def test_provider_latency_and_errors_are_observed_by_model(provider):
    provider.script("ok-served", text="one two three", delay=0.01)
    provider.script("down-served", status=503)
    ok = OpenAICompatible.from_settings({"base_url": provider.base_url, "model": "ok-served", "timeout": 5})
    down = OpenAICompatible.from_settings({"base_url": provider.base_url, "model": "down-served", "timeout": 5})
    first, answered = _value(PROVIDER_FIRST_TOKEN, "m-ok"), _value(PROVIDER_ANSWER, "m-ok")
    errors = _value(PROVIDER_ERRORS, "m-down", "http", suffix="_total")

    assert "".join(observe_stream("m-ok", ok.stream([{"role": "user", "content": "hi"}]))) == "one two three"
    with pytest.raises(ProviderError):
        list(observe_stream("m-down", down.stream([{"role": "user", "content": "hi"}])))

    assert _value(PROVIDER_FIRST_TOKEN, "m-ok") == first + 1 and _value(PROVIDER_ANSWER, "m-ok") == answered + 1
    assert _value(PROVIDER_ERRORS, "m-down", "http", suffix="_total") == errors + 1
    assert _value(PROVIDER_ANSWER, "m-down") == 0


def test_a_stream_the_voter_leaves_is_neither_answered_nor_failed(provider):
    provider.script("slow-served", text="a b c d e f", delay=0.05)
    slow = OpenAICompatible.from_settings({"base_url": provider.base_url, "model": "slow-served", "timeout": 5})
    chunks = observe_stream("m-slow", slow.stream([{"role": "user", "content": "hi"}]))
    assert next(chunks) == "a"
    chunks.close()
    assert _value(PROVIDER_FIRST_TOKEN, "m-slow") == 1
    assert _value(PROVIDER_ANSWER, "m-slow") == 0
    assert sum(_value(PROVIDER_ERRORS, "m-slow", kind, suffix="_total") for kind in ("stream", "crash", "http")) == 0


def test_probes_are_not_redirected_to_https_but_pages_are(client, transactional_db, settings):
    """Probes and scrapers talk plain HTTP to the web process behind the proxy."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ARENA_METRICS_TOKEN = "t"
    assert client.get("/arena/").status_code == 301
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").status_code == 200
    # Behind the TLS proxy, a request it marks as HTTPS is served.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/arena/", HTTP_X_FORWARDED_PROTO="https").status_code != 301


def test_an_async_provider_stream_is_observed_the_same_way():
    """For the async stream path (httpx.AsyncClient): latency and errors by model."""
    import asyncio

    from arena.metrics import observe_astream

    async def answer():
        for piece in ("x", "y"):
            await asyncio.sleep(0)
            yield piece

    async def failing():
        yield "x"
        raise ProviderError("stream", "cut")

    async def run():
        got = [p async for p in observe_astream("m-async", answer())]
        with pytest.raises(ProviderError):
            async for _ in observe_astream("m-async-bad", failing()):
                pass
        return got

    assert asyncio.run(run()) == ["x", "y"]
    assert _value(PROVIDER_ANSWER, "m-async") == 1 and _value(PROVIDER_FIRST_TOKEN, "m-async-bad") == 1
    assert _value(PROVIDER_ERRORS, "m-async-bad", "stream", suffix="_total") == 1
    assert _value(PROVIDER_ANSWER, "m-async-bad") == 0


def test_with_a_multiprocess_directory_metrics_sum_every_web_process(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR: what two processes observed, a third one's scrape shows (as gunicorn workers)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "arena.settings"}
    observe = (
        "import django; django.setup()\n"
        "from arena.metrics import observe_stream, observe_provider_error\n"
        "list(observe_stream('m-multi', iter(['a', 'b'])))\n"
        "observe_provider_error('m-multi', type('E', (Exception,), {'kind': 'http'})())\n"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", observe], cwd=ROOT, env=env, check=True, timeout=120)
    scrape_script = (
        "import django; django.setup()\n"
        "from prometheus_client import generate_latest\n"
        "from arena.metrics import observed_registry\n"
        "print(generate_latest(observed_registry()).decode())\n"
    )
    text = subprocess.run([sys.executable, "-c", scrape_script], cwd=ROOT, env=env, check=True, timeout=120,
                          capture_output=True, text=True).stdout  # fmt: skip
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("arena_provider_answer_seconds_count", (("model", "m-multi"),))] == 2
    assert samples[("arena_provider_errors_total", (("kind", "http"), ("model", "m-multi")))] == 2
