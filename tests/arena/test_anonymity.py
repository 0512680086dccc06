"""No model identity reaches a voter before their vote is stored.

A voter fetches everything reachable before voting and no byte of it may
contain a name, display name, organization or provider setting of any
registered model. The leaderboard shows names by design, so it is the one
place left out; a published snapshot exists during the test, so a page that
embedded the leaderboard would be caught.
"""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client

from arena.models import ArenaModel
from ratings.services import recompute_publish
from votes.models import Vote

from .factories import ArenaModelFactory
from .helpers import open_battle, vote

pytestmark = pytest.mark.django_db

LEADERBOARD = ("/leaderboard/", "/api/v1/leaderboard/")


def identity_strings() -> set[str]:
    """Every identifying string of every registered model, lower-cased."""
    found: set[str] = set()

    def walk(value):
        if isinstance(value, str):
            if len(value.strip()) >= 3:
                found.add(value.strip().lower())
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    for m in ArenaModel.objects.all():
        walk([m.name, m.display_name, m.organization, m.provider_settings])
    return found


def leaks(data: bytes, secrets: set[str]) -> list[str]:
    low = data.lower()
    return sorted(s for s in secrets if s.encode() in low)


class Links(HTMLParser):
    """Every URL a page refers to, and the ones it loads by itself."""

    LOADED = {
        ("script", "src"),
        ("link", "href"),
        ("img", "src"),
        ("iframe", "src"),
        ("embed", "src"),
        ("object", "data"),
        ("source", "src"),
        ("video", "src"),
        ("audio", "src"),
        ("frame", "src"),
    }

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.loaded: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and name in ("href", "src", "data", "action"):
                self.urls.append(value)
                if (tag, name) in self.LOADED and not (tag == "link" and dict(attrs).get("rel") == "canonical"):
                    self.loaded.append(value)


@pytest.fixture
def registry(demo_models):
    """The demo models, plus models voters must never meet or hear of."""
    ArenaModelFactory(
        name="zephyr-secret-70b",
        display_name="Zephyr Secret 70B",
        organization="Hidden Frontier Inc",
        provider_kind=ArenaModel.Provider.OPENAI,
        provider_settings={
            "base_url": "https://llm.hidden-frontier.example/v1",
            "model": "zephyr-70b-preview",
            "api_key_env": "ZEPHYR_API_KEY",
        },
    )
    ArenaModelFactory(name="paused-model-x", organization="Paused Org Ltd", status=ArenaModel.Status.PAUSED)
    return identity_strings()


def test_identity_strings_cover_every_registered_field(registry):
    # Guard against a vacuous check: the list holds what the test claims to look for.
    assert {
        "atlas-7b",
        "atlas 7b",
        "northwind labs",
        "zephyr-70b-preview",
        "https://llm.hidden-frontier.example/v1",
        "hidden frontier inc",
    } <= registry


def test_nothing_a_voter_can_fetch_before_voting_names_a_model(registry):
    # Someone else has voted already and a snapshot with names is published.
    other = Client()
    for _ in range(3):
        battle = open_battle(other)
        assert vote(other, battle["id"], "a").status_code == 201
    assert recompute_publish().rows
    votes_before = Vote.objects.count()

    voter = Client()
    fetched: dict[str, bytes] = {}

    def record(label, response) -> bytes:
        """Keep body, headers and cookies of a response; return the body."""
        body = b"".join(response.streaming_content) if response.streaming else response.content
        header_bytes = "\n".join(f"{k}: {v}" for k, v in response.items()).encode()
        cookie_bytes = "\n".join(c.OutputString() for c in response.cookies.values()).encode()
        fetched[label] = body + b"\n" + header_bytes + b"\n" + cookie_bytes
        return body

    # The voting page, and everything it links to or loads, one level deep
    # (plus the assets of linked HTML pages), leaderboard excluded.
    arena = voter.get("/arena/")
    assert arena.status_code == 200
    record("GET /arena/", arena)
    page = Links()
    page.feed(arena.content.decode())
    loaded_by_arena = [urlsplit(urljoin("/arena/", u)).path for u in page.loaded]
    assert not [u for u in loaded_by_arena if u.startswith(LEADERBOARD)], "the arena page embeds the leaderboard"
    assert any(u.endswith(".css") for u in loaded_by_arena) and any(u.endswith(".js") for u in loaded_by_arena)

    queue = [urljoin("/arena/", u) for u in page.urls]
    seen = {"/arena/"}
    while queue:
        url = queue.pop(0)
        parts = urlsplit(url)
        if parts.netloc or parts.scheme or not parts.path.startswith("/"):
            continue  # not ours; the page must not load off-site things anyway
        path = parts.path
        if path in seen or path.startswith(LEADERBOARD):
            continue
        seen.add(path)
        response = voter.get(path)
        assert response.status_code in (200, 302), (path, response.status_code)
        body = record(f"GET {path}", response)
        if response.get("Content-Type", "").startswith("text/html") and path.count("/") <= 3:
            sub = Links()
            sub.feed(body.decode(errors="replace"))
            queue += [urljoin(path, u) for u in sub.urls]
        if path.endswith(".js"):
            assert b"leaderboard" not in body.lower(), f"{path} fetches the leaderboard"
    assert any(p.startswith("/static/") for p in seen)
    assert "/api/docs/" in seen

    # Everything reachable without a link: the schema, the admin login page.
    for path in ("/api/schema/", "/api/schema/?format=json", "/admin/login/", "/"):
        record(f"GET {path}", voter.get(path))

    # The battle API and its error responses.
    battle_response = voter.post("/api/v1/battles/", data={}, content_type="application/json")
    assert battle_response.status_code == 201
    record("POST /api/v1/battles/", battle_response)
    battle_id = battle_response.json()["id"]
    others_battle = Vote.objects.first().battle_id
    open_by_other = open_battle(other)["id"]
    errors = {
        "bad winner": vote(voter, battle_id, "model_a"),
        "missing winner": voter.post(f"/api/v1/battles/{battle_id}/vote/", data={}, content_type="application/json"),
        "malformed json": voter.post(f"/api/v1/battles/{battle_id}/vote/", data="{", content_type="application/json"),
        "text body": voter.post(f"/api/v1/battles/{battle_id}/vote/", data="a", content_type="text/plain"),
        "missing battle": vote(voter, str(uuid.uuid4()), "a"),
        "another voter's open battle": vote(voter, open_by_other, "a"),
        "another voter's voted battle": vote(voter, str(others_battle), "a"),
        "wrong method": voter.get(f"/api/v1/battles/{battle_id}/vote/"),
        "not a uuid": vote(voter, "not-a-uuid", "a"),
    }
    for label, response in errors.items():
        assert 400 <= response.status_code < 500, (label, response.status_code)
        record(label, response)

    assert len(fetched) >= 20
    found = {label: leaks(data, registry) for label, data in fetched.items()}
    assert {label: hit for label, hit in found.items() if hit} == {}
    assert Vote.objects.count() == votes_before, "nothing above may store a vote"


def test_the_vote_response_is_the_first_to_name_the_models(registry, client):
    battle = open_battle(client)
    response = vote(client, battle["id"], "tie")
    assert response.status_code == 201
    assert leaks(response.content, registry), "the reveal after the vote names both models"


def test_voting_page_does_not_put_identities_in_markup_or_attributes(registry, client):
    html = client.get("/arena/").content.decode()
    assert not re.search(r"data-model|model_a|model_b", html)
    assert leaks(html.encode(), registry) == []
