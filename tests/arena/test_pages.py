"""The HTML pages: the voting page and the leaderboard."""

from __future__ import annotations

import re

import pytest

from arena.models import Battle
from ratings.selectors import registry, standings
from ratings.services import recompute_publish

from .factories import ArenaModelFactory, VoteFactory, answer_set_with
from .helpers import demo_answer_authors, demo_prompts, vote

pytestmark = pytest.mark.django_db

HOSTILE = (
    "Here you go:\n\n<script>window.__pwned = 1</script>\n\n"
    '<img src="x" onerror="window.__pwned = 2">\n\n'
    "[click me](javascript:window.__pwned=3)\n\n"
    '<iframe src="https://evil.example/"></iframe>\n\n'
    "**bold** and `code`"
)


def battle_id_of(html: str) -> str:
    return re.search(r'data-battle="([0-9a-f-]{36})"', html).group(1)


def test_arena_page_shows_the_prompt_and_two_anonymous_answers(client, demo_models):
    response = client.get("/arena/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Model A" in html and "Model B" in html
    battle = Battle.objects.get(id=battle_id_of(html))
    assert battle.prompt in demo_prompts()
    assert battle.response_a in demo_answer_authors() and battle.response_b in demo_answer_authors()
    for winner in ("a", "b", "tie", "both_bad"):
        assert f'data-winner="{winner}"' in html
    assert 'id="next"' in html


def test_reloading_the_page_resumes_the_open_battle(client, demo_models):
    first = battle_id_of(client.get("/arena/").content.decode())
    assert battle_id_of(client.get("/arena/").content.decode()) == first
    assert Battle.objects.count() == 1


def test_after_voting_the_page_opens_a_new_battle(client, demo_models):
    first = battle_id_of(client.get("/arena/").content.decode())
    assert vote(client, first, "a").status_code == 201
    assert battle_id_of(client.get("/arena/").content.decode()) != first


def test_answers_are_rendered_as_markdown(client):
    answer_set_with(
        {
            "md-a": {"Show markdown": "# Title\n\n- one\n- two\n\n```python\nprint('hi')\n```"},
            "md-b": {"Show markdown": "| x | y |\n|---|---|\n| 1 | 2 |"},
        }
    )
    html = client.get("/arena/").content.decode()
    assert "<h1>Title</h1>" in html
    assert "<li>one</li>" in html
    assert '<code class="language-python">' in html
    assert "<table>" in html and "<td>1</td>" in html


def test_raw_html_in_an_answer_is_shown_escaped_never_rendered(client):
    answer_set_with(
        {"hostile-a": {"Say hi": HOSTILE}, "hostile-b": {"Say hi": "<b>hi</b> <script>alert(1)</script>"}},
        name="hostile",
    )

    html = client.get("/arena/").content.decode()

    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>window.__pwned" not in html and "<script>alert" not in html
    assert "<img" not in html and "<iframe" not in html
    assert 'href="javascript:' not in html.lower()
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    # The page's only scripts are its own.
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/static/arena/arena.js">',
        '<script src="/static/arena/battle.js">',
    ]


def test_hostile_prompt_is_escaped_too(client):
    answer_set_with(
        {
            "p-a": {"<script>window.__pwned=9</script> what?": "fine"},
            "p-b": {"<script>window.__pwned=9</script> what?": "also fine"},
        }
    )
    html = client.get("/arena/").content.decode()
    assert "&lt;script&gt;window.__pwned=9&lt;/script&gt;" in html
    assert "<script>window" not in html


def test_arena_page_explains_when_no_battle_is_possible(client, db):
    ArenaModelFactory(name="lonely")
    response = client.get("/arena/")
    assert response.status_code == 503
    html = response.content.decode()
    assert "No battle" in html
    assert "answer set" in html
    assert "data-winner" not in html


def test_leaderboard_page_without_votes_says_so(client, db):
    response = client.get("/leaderboard/")
    assert response.status_code == 200
    assert "No votes yet" in response.content.decode()


def test_leaderboard_page_shows_rank_model_rating_interval_votes_organization_and_time(client, db):
    strong = ArenaModelFactory(name="strong-1", organization="Strong Org")
    weak = ArenaModelFactory(name="weak-1", organization="Weak Org")
    for i in range(30):
        VoteFactory(pair_a=strong, pair_b=weak, winner="a" if i % 5 else "b")
    snap = recompute_publish()
    rows = {r["model"]: r for r in standings(snap.rows, registry()).values()}  # ids joined with names, ranked

    html = client.get("/leaderboard/").content.decode()

    head = re.search(r"<thead>(.*?)</thead>", html, re.S).group(1)
    headers = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", head, re.S)]
    assert headers == ["Rank (UB)", "Model", "Rating", "95% CI", "Votes", "Organization", "License"]
    body_rows = re.findall(r"<tr[^>]*>(.*?)</tr>", re.search(r"<tbody>(.*?)</tbody>", html, re.S).group(1), re.S)
    cells = [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in body_rows
    ]
    assert [c[1] for c in cells] == ["strong-1", "weak-1"]
    s = rows["strong-1"]
    assert cells[0][0] == str(s["rank"])
    assert cells[0][2] == str(round(s["rating"]))
    assert re.sub(r"\s", "", cells[0][3]) == f"{round(s['lower'])}–{round(s['upper'])}"
    assert cells[0][4] == "30"
    assert cells[0][5] == "Strong Org" and cells[1][5] == "Weak Org"
    assert snap.created_at.strftime("%Y-%m-%d %H:%M") in html
    assert "30 votes" in html
