"""Live battles against a real OpenAI-compatible HTTP server on 127.0.0.1
(tests/fake_openai.py): both sides streamed at once, multi-turn, failures,
auto-pause, the concurrency cap, identity leaks, sampling policies and
anonymity while streaming. No HTTP client is mocked."""

from __future__ import annotations

import json
import random
import socket
from collections import Counter

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from arena import leaks, live
from arena.models import ArenaModel, Battle
from arena.services import choose_pair
from ratings.services import recompute_publish
from tests.fake_openai import FakeOpenAI
from votes.models import Vote

from .helpers import vote

# The stream view is async and does its database work on live's thread pool,
# so the test's data must be committed for those threads to see it.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, scope="module")
def _close_stream_db_threads():
    yield
    live.reset_db_pool()  # their connections would keep the test database from being dropped


@pytest.fixture
def server():
    s = FakeOpenAI().start()
    yield s
    s.stop()


def live_model(server: FakeOpenAI, name: str, **fields) -> ArenaModel:
    settings = {"base_url": server.base_url, "model": f"{name}-endpoint-id", "timeout": 2}
    settings.update(fields.pop("provider_settings", {}))
    return ArenaModel.objects.create(
        name=name,
        display_name=fields.pop("display_name", name.replace("-", " ").title()),
        organization=fields.pop("organization", f"{name.split('-')[0].title()} Labs"),
        provider_kind=ArenaModel.Provider.OPENAI,
        provider_settings=settings,
        **fields,
    )


@pytest.fixture
def pair(server):
    a = live_model(server, "quartz-9b")
    b = live_model(server, "garnet-4b")
    server.script("quartz-9b-endpoint-id", text="Rivers carry water downhill to the sea.")
    server.script("garnet-4b-endpoint-id", text="Water flows downhill because of gravity.")
    return a, b


def sse_events(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def open_live(client, prompt="Why does water flow downhill?"):
    response = client.post("/api/v1/battles/", data={"prompt": prompt}, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


async def _astream(cookies, battle_id):
    client = AsyncClient()
    client.cookies = cookies  # the same voter (session) as the sync client
    response = await client.post(f"/api/v1/battles/{battle_id}/stream/")
    raw = b"".join([part async for part in response.streaming_content]) if response.streaming else response.content
    return response, raw


def collect(events) -> bytes:
    """Drain an async iterator of bytes from sync code."""

    async def drain():
        return b"".join([part async for part in events])

    return async_to_sync(drain)()


def stream(client, battle_id):
    """POST the stream endpoint as the async view is served (ASGI, via Django's
    AsyncClient) for the voter behind the sync ``client``."""
    response, raw = async_to_sync(_astream)(client.cookies, battle_id)
    assert response.status_code == 200, raw
    assert response["Content-Type"] == "text/event-stream"
    return sse_events(raw), raw, response


def answers(events) -> dict[str, str]:
    text = {"a": "", "b": ""}
    for name, data in events:
        if name == "delta":
            text[data["side"]] += data["text"]
    return text


def by_model(battle: Battle) -> dict[str, str]:
    return {"a": battle.model_a.name, "b": battle.model_b.name}


# --- the happy path ----------------------------------------------------------------


def test_a_live_battle_streams_both_answers_then_accepts_a_vote(pair):
    voter = Client()
    body = open_live(voter)
    assert body["status"] == "pending"
    assert body["responses"] == {"a": "", "b": ""}

    events, _, _ = stream(voter, body["id"])

    battle = Battle.objects.get(id=body["id"])
    expected = {
        "quartz-9b": "Rivers carry water downhill to the sea.",
        "garnet-4b": "Water flows downhill because of gravity.",
    }
    got = answers(events)
    assert got == {side: expected[name] for side, name in by_model(battle).items()}
    assert events[0] == ("start", {"turn": 1, "prompt_html": "<p>Why does water flow downhill?</p>\n"})
    assert events[-1] == ("end", {"status": "ready", "turn": 1, "turns_left": 4})
    # Each finished side comes with its whole answer rendered, for the page to swap in.
    done = {d["side"]: d["html"] for n, d in events if n == "side_done"}
    assert done == {side: f"<p>{got[side]}</p>\n" for side in "ab"}
    assert battle.status == Battle.Status.READY and battle.ready_at is not None
    assert (battle.response_a, battle.response_b) == (got["a"], got["b"])

    response = vote(voter, body["id"], "a")
    assert response.status_code == 201
    assert response.json()["model_a"] == battle.model_a.name
    assert Vote.objects.get().turns == 1


def test_both_sides_stream_at_the_same_time(server, pair):
    words = " ".join(f"w{i}" for i in range(12))
    for model in pair:
        server.script(model.provider_settings["model"], text=words, delay=0.05)
    voter = Client()

    events, _, _ = stream(voter, open_live(voter)["id"])

    assert server.max_in_flight == 2
    sides = [d["side"] for n, d in events if n == "delta"]
    # Interleaved, not one answer after the other.
    first_b, last_a = sides.index("b"), len(sides) - 1 - sides[::-1].index("a")
    first_a, last_b = sides.index("a"), len(sides) - 1 - sides[::-1].index("b")
    assert first_b < last_a and first_a < last_b, sides


def test_a_second_turn_sends_each_model_its_own_conversation(server, pair):
    for model in pair:
        server.script(model.provider_settings["model"], turns=[f"{model.name} one", f"{model.name} two"])
    voter = Client()
    battle_id = open_live(voter, "First question?")["id"]
    stream(voter, battle_id)

    follow = voter.post(
        f"/api/v1/battles/{battle_id}/turns/", data={"prompt": "And then?"}, content_type="application/json"
    )
    assert follow.status_code == 201, follow.content
    assert follow.json()["status"] == "pending"
    assert vote(voter, battle_id, "a").status_code == 400  # not while the turn is pending
    events, _, _ = stream(voter, battle_id)

    battle = Battle.objects.get(id=battle_id)
    names = by_model(battle)
    assert answers(events) == {side: f"{name} two" for side, name in names.items()}
    assert events[-1][1] == {"status": "ready", "turn": 2, "turns_left": 3}
    assert battle.turns == [
        {"prompt": "First question?", "a": f"{names['a']} one", "b": f"{names['b']} one"},
        {"prompt": "And then?", "a": f"{names['a']} two", "b": f"{names['b']} two"},
    ]
    for model in pair:
        last = server.scripts[model.provider_settings["model"]].requests[-1]["messages"]
        assert last == [
            {"role": "user", "content": "First question?"},
            {"role": "assistant", "content": f"{model.name} one"},
            {"role": "user", "content": "And then?"},
        ]
    assert vote(voter, battle_id, "b").status_code == 201
    stored = Vote.objects.get()
    assert stored.turns == 2


def test_turns_and_prompt_length_are_limited(settings, pair):
    settings.ARENA_MAX_TURNS = 1
    settings.ARENA_MAX_PROMPT_CHARS = 50
    voter = Client()
    too_long = voter.post("/api/v1/battles/", data={"prompt": "x" * 51}, content_type="application/json")
    assert too_long.status_code == 400
    assert too_long.json()["detail"] == "the prompt is 51 characters; the limit is 50"
    assert not Battle.objects.exists()

    battle_id = open_live(voter)["id"]
    events, _, _ = stream(voter, battle_id)
    assert events[-1][1]["turns_left"] == 0
    more = voter.post(f"/api/v1/battles/{battle_id}/turns/", data={"prompt": "more?"}, content_type="application/json")
    assert more.status_code == 400
    assert "at most 1 turns" in more.json()["detail"]


def test_only_the_owner_can_stream_and_only_an_unanswered_turn(pair):
    owner, stranger = Client(), Client()
    battle_id = open_live(owner)["id"]
    open_live(stranger)

    assert stranger.post(f"/api/v1/battles/{battle_id}/stream/").status_code == 404
    assert owner.post("/api/v1/battles/not-a-uuid/stream/").status_code == 404
    stream(owner, battle_id)
    again = owner.post(f"/api/v1/battles/{battle_id}/stream/")
    assert again.status_code == 400
    assert again.json()["error"] == "turn_refused"


def test_a_turn_streams_in_one_tab_at_a_time(pair):
    voter = Client()
    battle_id = open_live(voter)["id"]
    live.claim_stream(battle_id, Battle.objects.get(id=battle_id).voter)  # another tab is streaming it

    busy = voter.post(f"/api/v1/battles/{battle_id}/stream/")

    assert busy.status_code == 409
    assert busy.json()["error"] == "battle_busy"


# --- failures ----------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("script", "settings_patch", "message"),
    [
        ({"status": 500}, {}, "the model's service returned an error"),
        ({"status": 429}, {}, "the model's service returned an error"),
        ({"text": "one two three four five six", "cut_after": 3}, {}, "the answer stopped half way"),
        ({"text": "slow answer", "delay": 3}, {"timeout": 0.5}, "the model took too long to answer"),
        ({}, {"base_url": "CLOSED"}, "the model could not be reached"),
        ({}, {"api_key_env": "ARENA_TEST_UNSET_KEY"}, "the model is not configured correctly"),
    ],
    ids=["http-500", "http-429", "cut-half-way", "timeout", "refused", "no-api-key"],
)
def test_a_failed_side_is_explained_and_the_battle_cannot_be_voted(server, script, settings_patch, message):
    patch = dict(settings_patch)
    if patch.get("base_url") == "CLOSED":
        patch["base_url"] = f"http://127.0.0.1:{closed_port()}/v1"
    good = live_model(server, "opal-2b")
    bad = live_model(server, "onyx-5b", provider_settings=patch)
    server.script("opal-2b-endpoint-id", text="A fine answer.")
    server.script("onyx-5b-endpoint-id", **script)
    voter = Client()
    battle_id = open_live(voter)["id"]

    events, _, _ = stream(voter, battle_id)

    battle = Battle.objects.get(id=battle_id)
    bad_side = "a" if battle.model_a_id == bad.id else "b"
    errors = [d for n, d in events if n == "side_error"]
    assert errors == [{"side": bad_side, "message": f"Model {bad_side.upper()} failed: {message}"}]
    assert events[-1] == ("end", {"status": "failed", "turn": 1, "turns_left": 0})
    assert battle.status == Battle.Status.FAILED
    assert battle.failure.startswith(f"{bad_side}: ")  # operators see the detail
    refused = vote(voter, battle_id, "a")
    assert refused.status_code == 400
    assert "failed" in refused.json()["detail"]
    assert not Vote.objects.exists()
    assert ArenaModel.objects.get(id=bad.id).consecutive_failures == 1
    assert ArenaModel.objects.get(id=good.id).consecutive_failures == 0


def test_a_failed_turn_can_be_retried_and_then_voted(server):
    live_model(server, "opal-2b")
    live_model(server, "onyx-5b")
    server.script("opal-2b-endpoint-id", text="Fine.")
    flaky = server.script("onyx-5b-endpoint-id", status=503)
    voter = Client()
    battle_id = open_live(voter)["id"]
    events, _, _ = stream(voter, battle_id)
    assert events[-1][1]["status"] == "failed"

    flaky.status = 200
    flaky.text = "Recovered."
    events, _, _ = stream(voter, battle_id)

    assert events[-1][1]["status"] == "ready"
    assert sorted(answers(events).values()) == ["Fine.", "Recovered."]
    battle = Battle.objects.get(id=battle_id)
    assert battle.status == Battle.Status.READY and battle.failure == ""
    assert vote(voter, battle_id, "tie").status_code == 201
    assert ArenaModel.objects.get(name="onyx-5b").consecutive_failures == 0


def test_a_model_that_keeps_failing_is_paused_with_the_reason(settings, server):
    settings.ARENA_AUTO_PAUSE_FAILURES = 2
    live_model(server, "opal-2b")
    live_model(server, "onyx-5b")
    live_model(server, "jade-1b")
    server.script("opal-2b-endpoint-id", text="ok")
    server.script("jade-1b-endpoint-id", text="ok")
    server.script("onyx-5b-endpoint-id", status=500)
    voter = Client()

    while ArenaModel.objects.get(name="onyx-5b").status == ArenaModel.Status.ACTIVE:
        battle_id = open_live(voter)["id"]
        stream(voter, battle_id)
        assert Battle.objects.count() < 60, "onyx-5b never paused"

    onyx = ArenaModel.objects.get(name="onyx-5b")
    assert onyx.status == ArenaModel.Status.PAUSED
    assert onyx.consecutive_failures == 2
    assert onyx.paused_reason.startswith("paused automatically after 2 failed answers in a row; last: http:")
    assert onyx.paused_at is not None
    # Paused models are never drawn again.
    for _ in range(5):
        battle = Battle.objects.get(id=open_live(voter)["id"])
        assert onyx.id not in (battle.model_a_id, battle.model_b_id)
        stream(voter, battle.id)


def test_the_per_model_concurrency_cap_counts_answers_being_streamed(server):
    live_model(server, "opal-2b", max_concurrency=1)
    live_model(server, "onyx-5b", max_concurrency=1)
    first, second = Client(), Client()
    streaming_id = open_live(first)["id"]
    waiting_id = open_live(second)["id"]  # opening takes no slot
    live.claim_stream(streaming_id, Battle.objects.get(id=streaming_id).voter)  # first's answers are streaming

    blocked_stream = second.post(f"/api/v1/battles/{waiting_id}/stream/")
    blocked_open = second.post("/api/v1/battles/", data={"prompt": "hi"}, content_type="application/json")

    for response in (blocked_stream, blocked_open):
        assert response.status_code == 503
        assert response.json()["detail"] == "the models are busy; try again in a moment"
        assert response["Retry-After"] == "5"
    assert Battle.objects.get(id=waiting_id).streaming_since is None

    Battle.objects.filter(id=streaming_id).update(streaming_since=None)  # that stream ended
    events, _, _ = stream(second, waiting_id)
    assert events[-1][1]["status"] == "ready"
    assert Battle.objects.get(id=waiting_id).streaming_since is None


def test_battles_opened_and_never_streamed_block_nobody(server):
    live_model(server, "opal-2b", max_concurrency=1)
    live_model(server, "onyx-5b", max_concurrency=1)
    for _ in range(5):
        open_live(Client())
    latecomer = Client()
    events, _, _ = stream(latecomer, open_live(latecomer)["id"])
    assert events[-1][1]["status"] == "ready"


def test_a_stale_streaming_mark_frees_its_slots(settings, server):
    settings.ARENA_PENDING_STALE_SECONDS = 60
    live_model(server, "opal-2b", max_concurrency=1)
    live_model(server, "onyx-5b", max_concurrency=1)
    dead = open_live(Client())["id"]
    from datetime import timedelta

    from django.utils import timezone

    Battle.objects.filter(id=dead).update(streaming_since=timezone.now() - timedelta(minutes=5))  # its process died
    voter = Client()
    events, _, _ = stream(voter, open_live(voter)["id"])
    assert events[-1][1]["status"] == "ready"


# --- identity leaks ------------------------------------------------------------------


def test_an_answer_naming_its_own_maker_excludes_the_vote_but_still_reveals(server):
    live_model(server, "quartz-9b", organization="Quartzite AI")
    live_model(server, "garnet-4b")
    server.script("quartz-9b-endpoint-id", text="As a model trained by Quartzite AI, I think so.")
    server.script("garnet-4b-endpoint-id", text="I think so too.")
    voter = Client()
    battle_id = open_live(voter)["id"]
    stream(voter, battle_id)

    assert Battle.objects.get(id=battle_id).identity_leak
    response = vote(voter, battle_id, "a")

    assert response.status_code == 201
    assert {response.json()["model_a"], response.json()["model_b"]} == {"quartz-9b", "garnet-4b"}
    stored = Vote.objects.get()
    assert stored.excluded and stored.exclusion_reason == "identity_leak"
    snapshot = recompute_publish(force=True)
    assert snapshot.vote_count == 0


def test_identity_words_default_to_name_display_name_organization_and_family():
    model = ArenaModel(name="claude-v1", display_name="Claude v1", organization="Anthropic")
    words = leaks.identity_words(model)
    assert words == ["Anthropic", "claude", "Claude v1", "claude-v1"]
    assert leaks.names_itself("I am Claude, made by Anthropic.", words)
    assert leaks.names_itself("i'm CLAUDE.", words)
    assert not leaks.names_itself("Claudette wrote this", words)
    model.identity_words = ["Acme"]
    assert leaks.identity_words(model) == ["Acme"]


# --- sampling policies ---------------------------------------------------------------


def test_the_configured_policy_picks_the_pairs(settings, server):
    models = [live_model(server, f"m{k}-x") for k in range(4)]
    rng = random.Random(7)
    settings.ARENA_SAMPLING_POLICY = "uniform"
    pairs = Counter(frozenset(m.name for m in choose_pair(models, rng)) for _ in range(1200))
    assert len(pairs) == 6 and min(pairs.values()) > 120

    settings.ARENA_SAMPLING_POLICY = "weighted"
    ArenaModel.objects.filter(name="m0-x").update(weight=0)
    models = list(ArenaModel.objects.order_by("name"))
    drawn = Counter(m.name for _ in range(300) for m in choose_pair(models, rng))
    assert drawn["m0-x"] == 0


def test_active_sampling_uses_the_newest_snapshot(settings, demo_models):
    from tests.arena.factories import VoterFactory
    from votes.models import Vote as V

    voter = VoterFactory()
    a, b, *rest = demo_models
    V.objects.bulk_create(
        [V(voter=voter, model_a=a, model_b=b, winner="a" if k % 2 else "b") for k in range(200)]
        + [V(voter=voter, model_a=x, model_b=y, winner="a") for x, y in [(a, rest[0]), (b, rest[1])]]
    )
    recompute_publish(force=True)
    settings.ARENA_SAMPLING_POLICY = "active"
    rng = random.Random(3)
    drawn = Counter(frozenset((m1.name, m2.name)) for m1, m2 in (choose_pair(demo_models, rng) for _ in range(2000)))
    # 200 battles already on (a, b): one more vote there narrows nothing much.
    assert drawn[frozenset((a.name, b.name))] < 2000 / 10 / 4


def test_sides_are_shuffled(settings, server):
    models = [live_model(server, "m0-x"), live_model(server, "m1-x")]
    settings.ARENA_SAMPLING_POLICY = "uniform"
    rng = random.Random(1)
    firsts = Counter(choose_pair(models, rng)[0].name for _ in range(400))
    assert 150 < firsts["m0-x"] < 250


# --- anonymity while streaming --------------------------------------------------------


def test_no_identity_in_any_streamed_byte_header_or_error_before_the_vote(server):
    live_model(
        server, "quartz-9b", organization="Quartzite AI", provider_settings={"api_key_env": "ARENA_TEST_KEY_QUARTZ"}
    )
    live_model(server, "garnet-4b", organization="Garnet Research")
    server.script("quartz-9b-endpoint-id", text="Short answer one.")
    failing = server.script("garnet-4b-endpoint-id", status=500)
    secrets = {
        s.lower()
        for m in ArenaModel.objects.all()
        for s in (m.name, m.display_name, m.organization, *m.provider_settings.values())
        if isinstance(s, str) and len(s) >= 3
    }
    secrets |= {server.base_url.lower(), "127.0.0.1", "arena_test_key_quartz", "endpoint-id"}

    import os

    os.environ["ARENA_TEST_KEY_QUARTZ"] = "sk-test"
    try:
        voter = Client()
        seen: list[bytes] = []

        def record(response, body: bytes):
            seen.append(body)
            seen.extend(f"{k}: {v}".encode() for k, v in response.items())

        created = voter.post("/api/v1/battles/", data={"prompt": "Say something."}, content_type="application/json")
        record(created, created.content)
        battle_id = created.json()["id"]
        _, raw, response = stream(voter, battle_id)  # one side fails: its error is streamed too
        record(response, raw)
        refused = vote(voter, battle_id, "a")
        record(refused, refused.content)
        failing.status = 200
        failing.text = "Short answer two."
        _, raw, response = stream(voter, battle_id)
        record(response, raw)
        follow = voter.post(
            f"/api/v1/battles/{battle_id}/turns/", data={"prompt": "More?"}, content_type="application/json"
        )
        record(follow, follow.content)
        _, raw, response = stream(voter, battle_id)
        record(response, raw)
        page = voter.get("/arena/")
        record(page, page.content)
    finally:
        del os.environ["ARENA_TEST_KEY_QUARTZ"]

    blob = b"\n".join(seen).lower()
    assert [s for s in secrets if s.encode() in blob] == []
    assert b"failed: the model's service returned an error" in blob  # the error did reach the voter
    revealed = vote(voter, battle_id, "b").json()
    assert {revealed["model_a"], revealed["model_b"]} == {"quartz-9b", "garnet-4b"}


def test_a_pre_generated_answer_naming_its_maker_marks_the_battle_too(db):
    from arena.services import battle_create
    from tests.arena.factories import VoterFactory, answer_set_with

    q = "Capital of France?"
    answer_set_with({"honest-1b": {q: "Paris."}, "chatty-2b": {q: "I am Chatty, by Chatterbox Inc. Paris."}})
    ArenaModel.objects.filter(name="chatty-2b").update(organization="Chatterbox Inc")
    voter = VoterFactory()

    battle = battle_create(voter=voter)

    assert battle.identity_leak
    from votes.services import vote_record

    assert vote_record(battle_id=battle.id, voter=voter, winner="a").exclusion_reason == "identity_leak"


# --- what a review found -----------------------------------------------------------


def test_a_leak_seen_in_a_failed_turn_still_excludes_the_vote_after_a_retry(server):
    live_model(server, "quartz-9b", organization="Quartzite AI")
    live_model(server, "garnet-4b")
    quartz = server.script("quartz-9b-endpoint-id", text="I was trained by Quartzite AI and I say yes.")
    garnet = server.script("garnet-4b-endpoint-id", status=500)
    voter = Client()
    battle_id = open_live(voter)["id"]
    events, _, _ = stream(voter, battle_id)
    assert events[-1][1]["status"] == "failed"
    assert Battle.objects.get(id=battle_id).identity_leak  # the voter saw the maker's name

    quartz.text = "Yes."  # the retry's answers name nobody
    garnet.status, garnet.text = 200, "No."
    events, _, _ = stream(voter, battle_id)

    assert events[-1][1]["status"] == "ready"
    assert Battle.objects.get(id=battle_id).identity_leak
    assert vote(voter, battle_id, "a").status_code == 201
    assert Vote.objects.get().exclusion_reason == "identity_leak"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("I am Claude-3, an assistant.", ["Claude"]),
        ("I'm GPT-4.", ["GPT-4"]),
        ("Llama-3 here!", ["Llama"]),
        ("As gpt-4o-mini, I can help.", ["gpt-4o"]),
    ],
)
def test_self_names_with_a_version_suffix_are_leaks(text, words):
    assert leaks.names_itself(text, words)


def test_no_more_answers_from_a_paused_model_or_for_a_banned_voter(server, pair):
    voter = Client()
    battle_id = open_live(voter)["id"]
    ArenaModel.objects.filter(id=pair[0].id).update(status=ArenaModel.Status.PAUSED)

    refused = voter.post(f"/api/v1/battles/{battle_id}/stream/")

    assert refused.status_code == 400
    assert refused.json()["detail"] == "one of the models is no longer available; start a new battle"
    assert all(s.calls == 0 for s in server.scripts.values())
    ArenaModel.objects.filter(id=pair[0].id).update(status=ArenaModel.Status.ACTIVE)
    stream(voter, battle_id)
    from arena.models import Voter

    Voter.objects.update(banned=True)
    follow = voter.post(f"/api/v1/battles/{battle_id}/turns/", data={"prompt": "more"}, content_type="application/json")
    assert follow.status_code == 403


def test_a_turn_past_its_deadline_fails_and_closes_the_provider_connections(settings, server):
    settings.ARENA_PENDING_STALE_SECONDS = 12  # the turn's deadline is 10 s less: 2 s
    live_model(server, "opal-2b", provider_settings={"timeout": 5})
    live_model(server, "onyx-5b")
    server.script("opal-2b-endpoint-id", text=" ".join(["slow"] * 30), delay=0.5)
    server.script("onyx-5b-endpoint-id", text="Quick.")
    voter = Client()
    battle_id = open_live(voter)["id"]

    events, _, _ = stream(voter, battle_id)

    battle = Battle.objects.get(id=battle_id)
    slow_side = "a" if battle.model_a.name == "opal-2b" else "b"
    assert [d for n, d in events if n == "side_error"] == [
        {"side": slow_side, "message": f"Model {slow_side.upper()} failed: the model took too long to answer"}
    ]
    assert battle.status == Battle.Status.FAILED and battle.streaming_since is None
    from tests.services import wait_for

    assert wait_for(lambda: server.in_flight == 0, timeout=5), "the slow answer kept streaming to nobody"


def test_a_stream_that_lost_its_claim_writes_nothing(pair):
    voter = Client()
    battle_id = open_live(voter)["id"]
    battle = live.claim_stream(battle_id, Battle.objects.get(id=battle_id).voter)
    from django.utils import timezone

    Battle.objects.filter(id=battle_id).update(streaming_since=timezone.now())  # another tab took the turn over

    events = sse_events(collect(live.stream_turn(battle)))

    assert events[-1][1]["status"] == "pending"
    stored = Battle.objects.get(id=battle_id)
    assert stored.turns[-1]["a"] == stored.turns[-1]["b"] == "" and stored.streaming_since is not None


# --- served as in production: coalescing, disconnects, concurrency ----------------------


def test_deltas_are_coalesced_and_the_text_is_the_providers_exactly(settings, server, pair):
    words = " ".join(f"t{i}" for i in range(60))
    for model in pair:
        server.script(model.provider_settings["model"], text=words)
    voter = Client()

    settings.ARENA_STREAM_COALESCE_MS = 0  # one event per provider chunk
    events, _, _ = stream(voter, open_live(voter)["id"])
    per_side = Counter(d["side"] for n, d in events if n == "delta")
    assert per_side == {"a": 60, "b": 60}
    assert answers(events) == {"a": words, "b": words}

    settings.ARENA_STREAM_COALESCE_MS = 60_000  # the first piece at once, the rest when the side ends
    events, _, _ = stream(voter, open_live(voter)["id"])
    deltas = [(d["side"], d["text"]) for n, d in events if n == "delta"]
    assert sorted(deltas) == sorted([("a", "t0"), ("a", words[2:]), ("b", "t0"), ("b", words[2:])])
    assert answers(events) == {"a": words, "b": words}
    # The rest of a side goes out before its side_done.
    for side in "ab":
        order = [n for n, d in events if d.get("side") == side]
        assert order == ["delta", "delta", "side_done"]


class HttpVoter:
    """A voter's browser session against a real server: cookies and CSRF token."""

    def __init__(self, base_url: str):
        import httpx

        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.http.get("/arena/").raise_for_status()
        self.headers = {"X-CSRFToken": self.http.cookies["csrftoken"]}

    def open(self, prompt: str = "Why is the sky blue?") -> dict:
        response = self.http.post("/api/v1/battles/", json={"prompt": prompt}, headers=self.headers)
        assert response.status_code == 201, response.text
        return response.json()

    def stream(self, battle_id: str) -> list[tuple[str, dict]]:
        response = self.http.post(f"/api/v1/battles/{battle_id}/stream/", headers=self.headers)
        assert response.status_code == 200, response.text
        return sse_events(response.content)


@pytest.fixture
def asgi(settings):
    from tests.asgi_server import AsgiServer

    s = AsgiServer().start()
    yield s
    s.stop()


def test_a_voter_who_leaves_mid_stream_frees_the_slots_and_the_provider_connections(server, pair, asgi):
    from tests.services import wait_for

    for model in pair:
        server.script(model.provider_settings["model"], text=" ".join(["slowly"] * 100), delay=0.1)
    voter = HttpVoter(asgi.url)
    battle_id = voter.open()["id"]

    with voter.http.stream("POST", f"/api/v1/battles/{battle_id}/stream/", headers=voter.headers) as response:
        assert response.status_code == 200
        seen = ""
        for line in response.iter_lines():
            seen += line + "\n"
            if "event: delta" in seen and server.in_flight == 2:
                break  # the voter closes the tab
    voter.http.close()

    assert wait_for(lambda: server.in_flight == 0, timeout=10), "the answers kept streaming to nobody"
    assert wait_for(lambda: Battle.objects.get(id=battle_id).streaming_since is None, timeout=10)
    battle = Battle.objects.get(id=battle_id)
    assert battle.status == Battle.Status.PENDING  # the page streams the turn afresh on return
    assert battle.turns[-1]["a"].startswith("slowly") or battle.turns[-1]["b"].startswith("slowly")
    assert all(s.calls == 1 for s in server.scripts.values())


@pytest.mark.parametrize("cap", [1000, 0], ids=["capped", "uncapped"])
def test_battles_opened_and_streamed_on_one_pair_at_once_never_deadlock(server, pair, asgi, cap):
    """Opening a battle inserts a row that key-share locks both models while
    claims lock them to count slots: with one lock order and FOR NO KEY
    UPDATE, many voters doing both at once all finish (no 500, no deadlock).
    Uncapped, claims take the one-statement path and successful turns store
    in autocommit statements (arena.live_sql): the same must hold."""
    import threading

    for model in pair:
        server.script(model.provider_settings["model"], text="A short answer.")
    # 1000: a cap never reached, every claim locks both rows; 0: no cap, no model row locked
    ArenaModel.objects.update(max_concurrency=cap)
    results: list = []
    failures: list = []

    def voter_loop():
        try:
            voter = HttpVoter(asgi.url)
            for _ in range(4):
                events = voter.stream(voter.open()["id"])
                results.append(events[-1])
        except Exception as exc:  # noqa: BLE001 - reported below, with the rest
            failures.append(repr(exc))

    threads = [threading.Thread(target=voter_loop) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert failures == []
    assert len(results) == 32
    assert all(end == ("end", {"status": "ready", "turn": 1, "turns_left": 4}) for end in results), results
    assert Battle.objects.filter(status=Battle.Status.READY, streaming_since__isnull=True).count() == 32


def test_a_claim_holding_its_row_locks_never_blocks_opening_a_battle_on_the_same_pair(server, pair):
    """The deadlock's first half, made deterministic: while a claim holds its
    locks on both models (a cap, so it takes them), inserting a battle that
    references them (FOR KEY SHARE) must not wait. With FOR UPDATE it waited,
    and with the insert locking model_a, model_b in the other order, deadlocked."""
    import threading

    from django.db import connection, transaction

    from tests.services import require_postgres

    require_postgres()  # row-lock modes are PostgreSQL's (SQLite locks the whole file)
    ArenaModel.objects.update(max_concurrency=1000)
    battle_id = open_live(Client())["id"]
    claimed, release, errors = threading.Event(), threading.Event(), []

    def hold_claim():
        try:
            with transaction.atomic():
                live.claim_stream(battle_id, Battle.objects.get(id=battle_id).voter)
                claimed.set()
                release.wait(30)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            claimed.set()
            connection.close()

    holder = threading.Thread(target=hold_claim)
    holder.start()
    try:
        assert claimed.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")  # a wait becomes an error (a 500), not a hang
        opened = [open_live(Client()) for _ in range(3)]
    finally:
        release.set()
        holder.join(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    assert errors == []
    assert len(opened) == 3 and Battle.objects.count() == 4
