"""PostgreSQL outages lose no vote and answer no 500.

A real web server (runserver) reaches the pytest test database through a
TCP proxy the test owns (tests/tcp_proxy.py), never by touching the shared
server. Votes with an ``Idempotency-Key`` arrive from several clients while
the proxy cuts every connection, or holds them (a frozen server); then it
resumes and every vote that did not get its 201 is retried with the same
key. Asserted, each time:

- no answer is a 500; every outage answer is a 503 with Retry-After in the
  ``{"error", "detail"}`` shape;
- every 201 is a stored vote, with the stored winner and the battle's models;
- every stored vote was answered 201, or its retry with the same key returns
  a 201 with the reveal (the vote, its reveal and its key commit together);
- after the retries every battle has exactly one vote.

And the daily cap holds under concurrency: many simultaneous votes from one
voter, each on its own connection, store exactly the cap.
"""

from __future__ import annotations

import sys
import threading
import time
from urllib.parse import urlparse, urlunparse

import pytest
from rest_framework.authtoken.models import Token

from arena.models import Battle, Voter
from arena.services import ArenaError
from tests.arena.factories import BattleFactory
from tests.services import ChildProcess, free_port, require_postgres, worker_env
from tests.tcp_proxy import TcpProxy
from tests.votes.test_vote_integrity import race
from votes.models import Vote
from votes.services import DailyCapReached, vote_record

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 6
BATTLES = 36
IO_TIMEOUT = 2  # DB_IO_TIMEOUT and DB_CONNECT_TIMEOUT of the web process, seconds


@pytest.fixture
def proxied_web(transactional_db, tmp_path):
    """(web base URL, proxy): runserver whose DATABASE_URL goes through the proxy."""
    import httpx

    require_postgres()
    from django.conf import settings

    db = settings.DATABASES["default"]
    proxy = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)).start()
    env = worker_env()
    url = urlparse(env["DATABASE_URL"])
    auth = url.netloc.rsplit("@", 1)[0] + "@" if "@" in url.netloc else ""
    env.update(
        DATABASE_URL=urlunparse(url._replace(netloc=f"{auth}127.0.0.1:{proxy.port}")),
        DB_IO_TIMEOUT=str(IO_TIMEOUT),
        DB_CONNECT_TIMEOUT=str(IO_TIMEOUT),
        DEBUG="false",
        SECRET_KEY="fault-test-secret-key-not-for-production",
        # Plain HTTP on loopback, no TLS proxy in front: no HTTPS redirect, no Secure cookies.
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        ARENA_VOTE_RATE="0",
        ARENA_VOTE_RATE_PER_ADDRESS="0",
        ARENA_BATTLE_RATE="0",
        ARENA_BATTLE_RATE_PER_ADDRESS="0",
        ARENA_VAR_DIR=str(tmp_path / "var"),
    )
    port = free_port()
    web = ChildProcess(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        tmp_path / "web.log",
        env,
    ).start(port=port)
    base = f"http://127.0.0.1:{port}"
    try:
        httpx.get(f"{base}/api/v1/categories/", timeout=30).raise_for_status()  # through the proxy, once
        yield base, proxy, web
    finally:
        web.stop()
        proxy.stop()


def voter_with_battles(django_user_model, n: int) -> tuple[str, list[str]]:
    user = django_user_model.objects.create_user("fault-voter")
    voter = Voter.objects.create(key=f"user:{user.pk}", user=user)
    battles = [str(BattleFactory(voter=voter).id) for _ in range(n)]
    return Token.objects.create(user=user).key, battles


def storm(base: str, token: str, battles: list[str], during) -> dict[str, list]:
    """CLIENTS threads vote on the battles (key = battle id) while ``during()``
    runs in this thread; then every battle without a 201 is retried with its
    key until it gets an answer that is not an outage. Returns each battle's
    answers in order: (status, headers, body)."""
    import httpx

    answers: dict[str, list] = {b: [] for b in battles}
    todo = list(battles)
    lock = threading.Lock()
    started = threading.Event()

    def post(http, battle_id: str):
        try:
            r = http.post(
                f"/api/v1/battles/{battle_id}/vote/",
                json={"winner": winner(battle_id)},
                headers={"Idempotency-Key": f"k-{battle_id}"},
            )
        except httpx.TransportError as exc:  # the web itself never fails like this; recorded if it does
            return (None, {}, repr(exc))
        return (
            r.status_code,
            dict(r.headers),
            r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text,
        )

    def client():
        with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=60) as http:
            while True:
                with lock:
                    if not todo:
                        return
                    battle_id = todo.pop()
                answers[battle_id].append(post(http, battle_id))
                started.set()
                time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    started.wait(timeout=30)
    during()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung"

    with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=60) as http:
        for battle_id, got in answers.items():
            for _ in range(20):
                if got and got[-1][0] not in (None, 503):
                    break
                got.append(post(http, battle_id))
                if got[-1][0] == 503:
                    time.sleep(0.5)
    return answers


def winner(battle_id: str) -> str:
    return "ab"[int(battle_id[-1], 16) % 2]


def assert_nothing_lost(answers: dict[str, list], web) -> None:
    log = web.output()[-4000:]
    every = [a for got in answers.values() for a in got]
    assert not [a for a in every if a[0] is None or a[0] >= 500 and a[0] != 503], (every, log)
    for code, headers, body in every:
        if code == 503:
            assert body["error"] == "database_unavailable" and body["detail"], body
            assert int(headers["retry-after"]) > 0, headers
    assert any(a[0] == 503 for a in every), "the outage was never seen: the test proved nothing"

    stored = {str(v.battle_id): v for v in Vote.objects.select_related("model_a", "model_b")}
    for battle_id, got in answers.items():
        assert battle_id in stored, (battle_id, got, log)
        vote = stored[battle_id]
        reveal = {"winner": vote.winner, "model_a": vote.model_a.name, "model_b": vote.model_b.name}
        created = [body for code, _, body in got if code == 201]
        # Stored ⇒ answered 201 (first time or on a retry with the same key), with the reveal.
        assert created, (battle_id, got)
        assert all(body == reveal for body in created), (battle_id, got, reveal)
        # Nothing but 201s and outages: a 409 would mean a stored vote whose key lost its answer.
        assert {code for code, _, _ in got} <= {201, 503}, (battle_id, got)
    assert Vote.objects.count() == len(answers)
    assert Battle.objects.filter(status=Battle.Status.VOTED).count() == len(answers)
    first = [got[0][0] for got in answers.values()]
    replayed = sum(1 for got in answers.values() for _, h, _ in got if h.get("idempotent-replayed") == "true")
    print(
        f"\n{len(answers)} votes: {first.count(201)} answered 201 at once, {first.count(503)} answered 503 "
        f"({sum(a[0] == 503 for a in every)} 503s in all), {replayed} stored votes recovered by their key, "
        f"{len(stored)} stored, 0 lost, 0 doubled, 0 answered 500"
    )


def test_votes_survive_the_database_cutting_every_connection(proxied_web, django_user_model):
    base, proxy, web = proxied_web
    token, battles = voter_with_battles(django_user_model, BATTLES)

    def outage():
        time.sleep(0.3)
        proxy.cut()
        time.sleep(1.5)
        proxy.resume()

    answers = storm(base, token, battles, outage)
    assert_nothing_lost(answers, web)


def test_votes_survive_a_database_that_holds_every_connection(proxied_web, django_user_model):
    base, proxy, web = proxied_web
    token, battles = voter_with_battles(django_user_model, BATTLES)

    def freeze():
        time.sleep(0.3)
        proxy.hold()
        time.sleep(IO_TIMEOUT * 2.5)
        proxy.resume()

    answers = storm(base, token, battles, freeze)
    assert_nothing_lost(answers, web)


def test_a_vote_committed_while_its_answer_is_lost_is_recovered_by_its_key(proxied_web, django_user_model):
    """Issue #12 item 3, made deterministic: the COMMIT reaches the server, the
    connection dies before its answer comes back. A deferred trigger (the
    test's own, on the test database) makes the commit take 3 s, and the
    proxy cuts while pg_stat_activity shows it running."""
    import httpx
    from django.db import connection

    from tests.services import wait_for

    base, proxy, web = proxied_web
    token, (battle_id,) = voter_with_battles(django_user_model, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION fault_slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER fault_slow_commit AFTER INSERT ON votes_vote "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fault_slow_commit()"
        )
    auth = {"Authorization": f"Token {token}"}
    url = f"{base}/api/v1/battles/{battle_id}/vote/"

    def committing() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND query = 'COMMIT'"
            )
            return cursor.fetchone()[0] > 0

    try:
        answer: dict = {}
        sender = threading.Thread(
            target=lambda: answer.update(
                r=httpx.post(url, json={"winner": "b"}, headers={**auth, "Idempotency-Key": "lost"}, timeout=60)
            )
        )
        sender.start()
        assert wait_for(committing, timeout=20, interval=0.05), web.output()[-3000:]
        proxy.cut()
        sender.join(timeout=60)
        proxy.resume()
        lost = answer["r"]
        assert lost.status_code == 503, lost.text
        assert lost.json()["error"] == "database_unavailable" and lost.headers["Retry-After"]
        # The server finished the commit: the vote is stored though its voter got a 503.
        assert wait_for(lambda: Vote.objects.filter(battle_id=battle_id).exists(), timeout=20)

        retry = httpx.post(url, json={"winner": "b"}, headers={**auth, "Idempotency-Key": "lost"}, timeout=60)
        vote = Vote.objects.select_related("model_a", "model_b").get(battle_id=battle_id)
        assert retry.status_code == 201, retry.text
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.json() == {"winner": "b", "model_a": vote.model_a.name, "model_b": vote.model_b.name}
        # Without the key a retry can only say so: the vote is already stored.
        assert httpx.post(url, json={"winner": "b"}, headers=auth, timeout=60).status_code == 409
        assert Vote.objects.filter(battle_id=battle_id).count() == 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS fault_slow_commit ON votes_vote")
            cursor.execute("DROP FUNCTION IF EXISTS fault_slow_commit()")


def test_a_held_database_is_a_503_within_the_io_timeout_not_a_hang(proxied_web, django_user_model):
    import httpx

    base, proxy, _web = proxied_web
    token, battles = voter_with_battles(django_user_model, 1)
    proxy.hold()
    try:
        # The client's own timeout is the bound under test: well above the
        # server's IO_TIMEOUT, far below "forever".
        response = httpx.post(
            f"{base}/api/v1/battles/{battles[0]}/vote/",
            json={"winner": "a"},
            headers={"Authorization": f"Token {token}", "Idempotency-Key": "held"},
            timeout=IO_TIMEOUT * 6,
        )
    finally:
        proxy.resume()
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "database_unavailable"
    assert response.headers["Retry-After"]
    # A page outside the API: a plain 503, not a 500.
    proxy.cut()
    try:
        page = httpx.get(f"{base}/arena/", timeout=IO_TIMEOUT * 6)
    finally:
        proxy.resume()
    assert page.status_code == 503, page.text[:500]


def test_simultaneous_votes_from_one_voter_store_exactly_the_daily_cap(settings):
    """Each thread has its own PostgreSQL connection; before the voter row was
    locked, 20 simultaneous votes with a cap of 5 stored 10 or 11."""
    require_postgres()
    settings.ARENA_DAILY_VOTE_CAP = 5
    for _round in range(3):
        voter = Voter.objects.create(key=f"capped-{_round}")
        battles = iter([BattleFactory(voter=voter) for _ in range(20)])
        lock = threading.Lock()

        def cast(voter=voter, battles=battles, lock=lock):
            with lock:
                battle = next(battles)
            return vote_record(battle_id=battle.id, voter=voter, winner="a")

        results = race(20, cast)

        stored = [r for r in results if isinstance(r, Vote)]
        refused = [r for r in results if isinstance(r, ArenaError)]
        assert len(stored) == 5, results
        assert len(refused) == 15 and all(isinstance(r, DailyCapReached) for r in refused), results
        assert Vote.objects.filter(voter=voter).count() == 5
