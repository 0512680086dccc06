"""Abuse cases against the real database: CSRF, rate limits, the daily cap,
the vote window, Idempotency-Key, salted client addresses, banned voters."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from arena.models import Battle, IdempotencyRecord, Voter
from tests.arena.factories import BattleFactory
from tests.arena.helpers import open_battle, vote
from tests.services import ROOT, worker_env
from votes.models import Vote

pytestmark = pytest.mark.django_db


def limits(settings, action: str, **scopes: str) -> None:
    rates = copy.deepcopy(settings.ARENA_RATE_LIMITS)
    rates[action].update(scopes)
    settings.ARENA_RATE_LIMITS = rates


# --- CSRF -----------------------------------------------------------------------


def test_browser_vote_without_the_csrf_token_is_refused_and_not_stored(demo_models):
    browser = Client(enforce_csrf_checks=True)
    browser.get("/arena/")  # the page sets the CSRF cookie and opens a battle
    battle_id = Battle.objects.get().id

    forged = browser.post(f"/api/v1/battles/{battle_id}/vote/", data={"winner": "a"}, content_type="application/json")

    assert forged.status_code == 403
    assert forged.json()["error"] == "permission_denied"
    assert "CSRF" in forged.json()["detail"]
    assert not Vote.objects.exists()
    token = browser.cookies["csrftoken"].value
    honest = browser.post(
        f"/api/v1/battles/{battle_id}/vote/",
        data={"winner": "a"},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert honest.status_code == 201, honest.content
    assert Vote.objects.count() == 1


def test_opening_a_battle_needs_the_csrf_token_too(demo_models):
    browser = Client(enforce_csrf_checks=True)
    browser.get("/arena/")
    before = Battle.objects.count()

    response = browser.post("/api/v1/battles/", data={}, content_type="application/json")

    assert response.status_code == 403
    assert Battle.objects.count() == before


def test_signed_in_session_votes_need_the_csrf_token(demo_models):
    User.objects.create_user("alice", password="pw")
    browser = Client(enforce_csrf_checks=True)
    browser.login(username="alice", password="pw")
    browser.get("/arena/")
    token = browser.cookies["csrftoken"].value
    battle = browser.post("/api/v1/battles/", data={}, content_type="application/json", headers={"X-CSRFToken": token})
    assert battle.status_code == 201

    forged = browser.post(
        f"/api/v1/battles/{battle.json()['id']}/vote/", data={"winner": "b"}, content_type="application/json"
    )

    assert forged.status_code == 403
    assert not Vote.objects.exists()


def test_api_token_clients_need_no_csrf_token(demo_models):
    user = User.objects.create_user("bot")
    api = Client(enforce_csrf_checks=True, headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})

    battle = api.post("/api/v1/battles/", data={}, content_type="application/json")
    assert battle.status_code == 201, battle.content
    assert vote(api, battle.json()["id"], "a").status_code == 201
    assert Vote.objects.get().voter.user == user


# --- rate limits and the daily cap ---------------------------------------------------


def test_votes_per_session_are_rate_limited_with_retry_after(settings, demo_models):
    limits(settings, "vote", voter="3/m")
    voter = Client()
    battles = [open_battle(voter)["id"] for _ in range(4)]

    codes = [vote(voter, b, "a").status_code for b in battles[:3]]
    limited = vote(voter, battles[3], "a")

    assert codes == [201, 201, 201]
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert "at most 3 per minute" in limited.json()["detail"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert Vote.objects.count() == 3
    assert Battle.objects.get(id=battles[3]).status == Battle.Status.READY  # can be voted on later
    # Another voter is not held back by this one's limit.
    other = Client()
    assert vote(other, open_battle(other)["id"], "b").status_code == 201


def test_battles_per_client_address_are_rate_limited_across_sessions(settings, demo_models):
    limits(settings, "battle", address="2/m", voter="")
    same_address = [Client(REMOTE_ADDR="203.0.113.7") for _ in range(3)]

    codes = [c.post("/api/v1/battles/", data={}, content_type="application/json").status_code for c in same_address]
    elsewhere = Client(REMOTE_ADDR="198.51.100.1").post("/api/v1/battles/", data={}, content_type="application/json")

    assert codes == [201, 201, 429]
    assert elsewhere.status_code == 201
    assert Battle.objects.count() == 3


def test_the_voting_page_is_rate_limited_too(settings, demo_models):
    limits(settings, "battle", voter="1/m")
    voter = Client()
    assert voter.get("/arena/").status_code == 200
    open_id = Battle.objects.get().id
    assert vote(voter, open_id, "a").status_code == 201  # now the page must open a new battle

    page = voter.get("/arena/")

    assert page.status_code == 429
    assert "Retry-After" in page.headers
    assert b"Too many battle requests" in page.content
    assert b"No battle available" not in page.content


def test_staff_are_not_rate_limited(settings, demo_models):
    limits(settings, "battle", voter="1/m", address="1/m")
    staff = Client()
    staff.force_login(User.objects.create_user("op", is_staff=True))
    assert [staff.post("/api/v1/battles/", data={}, content_type="application/json").status_code for _ in range(3)] == [
        201,
        201,
        201,
    ]


def test_rate_limit_settings_are_validated_when_read():
    from arena.integrity import Rate

    assert Rate.parse("30/m") == Rate(30, 60)
    assert Rate.parse("100/10m") == Rate(100, 600)
    assert Rate.parse("") is None and Rate.parse("0") is None
    with pytest.raises(ValueError, match="N/<s|m|h|d>"):
        Rate.parse("30 per minute")
    env = worker_env({"ARENA_VOTE_RATE": "lots"})
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "rate limit vote/voter is 'lots'" in result.stderr


def test_daily_cap_counts_the_last_24_hours(settings):
    settings.ARENA_DAILY_VOTE_CAP = 2
    from votes.services import DailyCapReached, vote_record

    voter = Voter.objects.create(key="capped")
    old = BattleFactory(voter=voter)
    vote_record(battle_id=old.id, voter=voter, winner="a")
    Vote.objects.filter(battle=old).update(created_at=timezone.now() - timedelta(hours=25))
    for _ in range(2):
        battle = BattleFactory(voter=voter)
        vote_record(battle_id=battle.id, voter=voter, winner="b")
    third = BattleFactory(voter=voter)

    with pytest.raises(DailyCapReached, match="2 votes in the last 24 hours"):
        vote_record(battle_id=third.id, voter=voter, winner="a")
    assert Vote.objects.filter(voter=voter).count() == 3
    assert Battle.objects.get(id=third.id).status == Battle.Status.READY


def test_daily_cap_over_http_is_a_429(settings, demo_models):
    settings.ARENA_DAILY_VOTE_CAP = 1
    voter = Client()
    first, second = open_battle(voter)["id"], open_battle(voter)["id"]
    assert vote(voter, first, "a").status_code == 201
    response = vote(voter, second, "a")
    assert response.status_code == 429
    assert response.json()["error"] == "daily_cap_reached"


# --- which battles may be voted on ---------------------------------------------------


def test_a_vote_after_the_time_window_is_refused(settings):
    settings.ARENA_VOTE_WINDOW_SECONDS = 3600
    from votes.services import BattleExpired, vote_record

    stale = BattleFactory(ready_at=timezone.now() - timedelta(hours=2))
    fresh = BattleFactory(ready_at=timezone.now() - timedelta(minutes=59))

    with pytest.raises(BattleExpired):
        vote_record(battle_id=stale.id, voter=stale.voter, winner="a")
    vote_record(battle_id=fresh.id, voter=fresh.voter, winner="a")
    assert list(Vote.objects.values_list("battle_id", flat=True)) == [fresh.id]


def test_expired_battle_over_http_is_a_410(settings, demo_models):
    settings.ARENA_VOTE_WINDOW_SECONDS = 60
    voter = Client()
    battle_id = open_battle(voter)["id"]
    Battle.objects.filter(id=battle_id).update(ready_at=timezone.now() - timedelta(minutes=5))
    response = vote(voter, battle_id, "a")
    assert response.status_code == 410
    assert response.json()["error"] == "battle_expired"


@pytest.mark.parametrize(
    ("status", "message"),
    [(Battle.Status.PENDING, "not complete"), (Battle.Status.FAILED, "answers failed")],
)
def test_a_battle_whose_answers_are_not_complete_cannot_be_voted_on(status, message):
    from votes.services import VoteRejected, vote_record

    battle = BattleFactory(status=status)
    with pytest.raises(VoteRejected, match=message):
        vote_record(battle_id=battle.id, voter=battle.voter, winner="a")
    assert not Vote.objects.exists()


def test_a_banned_voter_can_neither_open_battles_nor_vote(demo_models):
    voter = Client()
    battle_id = open_battle(voter)["id"]
    Voter.objects.update(banned=True)

    assert voter.post("/api/v1/battles/", data={}, content_type="application/json").status_code == 403
    assert vote(voter, battle_id, "a").status_code == 400
    assert not Vote.objects.exists()


# --- Idempotency-Key -------------------------------------------------------------


def keyed_vote(client, battle_id, winner, key):
    return client.post(
        f"/api/v1/battles/{battle_id}/vote/",
        data={"winner": winner},
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )


def test_a_retried_vote_with_the_same_key_records_one_vote_and_the_same_answer(demo_models):
    voter = Client()
    battle_id = open_battle(voter)["id"]

    first = keyed_vote(voter, battle_id, "a", "retry-1")
    retry = keyed_vote(voter, battle_id, "a", "retry-1")

    assert first.status_code == retry.status_code == 201
    assert first.json() == retry.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Vote.objects.count() == 1
    # Without the key the same retry is an honest conflict.
    assert vote(voter, battle_id, "a").status_code == 409


def test_the_same_key_with_a_different_request_is_refused(demo_models):
    voter = Client()
    first_battle, second_battle = open_battle(voter)["id"], open_battle(voter)["id"]
    assert keyed_vote(voter, first_battle, "a", "k").status_code == 201

    other_winner = keyed_vote(voter, first_battle, "b", "k")
    other_battle = keyed_vote(voter, second_battle, "a", "k")

    assert other_winner.status_code == other_battle.status_code == 422
    assert other_winner.json()["error"] == "idempotency_key_reused"
    assert Vote.objects.count() == 1


def test_a_refused_vote_is_replayed_as_refused(demo_models):
    owner, stranger = Client(), Client()
    battle_id = open_battle(owner)["id"]
    open_battle(stranger)

    first = keyed_vote(stranger, battle_id, "a", "probe")
    retry = keyed_vote(stranger, battle_id, "a", "probe")

    assert first.status_code == retry.status_code == 404
    assert first.json() == retry.json()
    assert not Vote.objects.exists()


def test_keys_belong_to_one_voter(demo_models):
    alice, bob = Client(), Client()
    a_battle, b_battle = open_battle(alice)["id"], open_battle(bob)["id"]
    assert keyed_vote(alice, a_battle, "a", "same-key").status_code == 201
    assert keyed_vote(bob, b_battle, "a", "same-key").status_code == 201
    assert Vote.objects.count() == 2


@pytest.mark.parametrize("key", ["", " ", "x" * 201, "naïve"])
def test_malformed_idempotency_keys_are_a_400(demo_models, key):
    voter = Client()
    battle_id = open_battle(voter)["id"]
    response = keyed_vote(voter, battle_id, "a", key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert not Vote.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_simultaneous_retries_with_one_key_store_one_vote(live_server, demo_models):
    import httpx

    user = User.objects.create_user("retrier")
    token = Token.objects.create(user=user).key
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Token {token}"}, timeout=30) as http:
        battle_id = http.post("/api/v1/battles/", json={}).json()["id"]
    barrier = threading.Barrier(4)
    responses: list = [None] * 4

    def post(i):
        with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Token {token}"}, timeout=30) as http:
            barrier.wait(timeout=10)
            responses[i] = http.post(
                f"/api/v1/battles/{battle_id}/vote/", json={"winner": "tie"}, headers={"Idempotency-Key": "once"}
            )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}, [r.text for r in responses]
    assert all(r.json()["error"] == "idempotency_key_in_progress" for r in responses if r.status_code == 409)
    assert Vote.objects.filter(battle_id=battle_id).count() == 1
    assert IdempotencyRecord.objects.get(key="once").status_code == 201


# --- two processes, one vote -------------------------------------------------------

RACER = """
import os, sys, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
django.setup()
from arena.models import Voter
from votes.services import vote_record
from arena.services import ArenaError
voter = Voter.objects.get(key=sys.argv[1])
start = float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
try:
    vote_record(battle_id=sys.argv[2], voter=voter, winner=sys.argv[4])
    print("stored")
except ArenaError as exc:
    print(exc.code)
"""


@pytest.mark.django_db(transaction=True)
def test_two_processes_submitting_the_same_vote_at_the_same_moment_store_exactly_one():
    battle = BattleFactory()
    start = time.time() + 3.0  # both processes are up and connected by then
    env = worker_env()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, battle.voter.key, str(battle.id), str(start), winner],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for winner in ("a", "b")
    ]
    outcomes = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        outcomes.append(out.strip())

    assert sorted(outcomes) == ["already_voted", "stored"]
    assert Vote.objects.filter(battle=battle).count() == 1


# --- client addresses ------------------------------------------------------------


def test_client_addresses_are_stored_only_as_salted_hashes(settings, demo_models):
    settings.ARENA_ADDRESS_SALT = "pepper"
    address = "192.0.2.44"
    voter = Client(REMOTE_ADDR=address)
    battle_id = open_battle(voter)["id"]
    keyed_vote(voter, battle_id, "a", "k1")

    expected = hmac.new(b"pepper", address.encode(), hashlib.sha256).hexdigest()
    assert Battle.objects.get(id=battle_id).client_hash == expected
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                assert address not in json.dumps(row, default=str), f"raw client address stored in {table}"

    settings.ARENA_ADDRESS_SALT = "other-salt"
    second = open_battle(Client(REMOTE_ADDR=address))["id"]
    assert Battle.objects.get(id=second).client_hash not in ("", expected)


def test_forwarded_for_is_trusted_only_behind_a_configured_proxy(settings, demo_models):
    from arena.integrity import address_hash

    spoofing = Client(REMOTE_ADDR="10.0.0.1", headers={"X-Forwarded-For": "1.2.3.4, 198.51.100.9"})
    direct = open_battle(spoofing)["id"]
    assert Battle.objects.get(id=direct).client_hash == address_hash("10.0.0.1")

    settings.ARENA_TRUSTED_PROXY_COUNT = 1
    proxied = open_battle(spoofing)["id"]
    assert Battle.objects.get(id=proxied).client_hash == address_hash("198.51.100.9")


def test_a_key_left_pending_by_a_dead_process_is_released(demo_models):
    from django.test import RequestFactory

    from arena.integrity import _request_hash

    voter = Client()
    battle_id = open_battle(voter)["id"]
    owner = Battle.objects.get(id=battle_id).voter
    path = f"/api/v1/battles/{battle_id}/vote/"
    same_request = _request_hash(RequestFactory().post(path), {"battle": battle_id, "winner": "a"})
    stuck = IdempotencyRecord.objects.create(voter=owner, key="k", request_hash=same_request, status_code=0, body={})
    IdempotencyRecord.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    response = keyed_vote(voter, battle_id, "a", "k")

    assert response.status_code == 201
    assert IdempotencyRecord.objects.get(key="k").status_code == 201


def test_a_rate_with_an_empty_window_is_refused():
    from arena.integrity import Rate

    with pytest.raises(ValueError, match="empty window"):
        Rate.parse("30/0m")
