"""Model names as registries spell them (issue #11): one rule at every
entrance, and every page, link, admin form, API path, plot and export works
for every valid name, including ones with "/", ":" and non-Latin letters."""

from __future__ import annotations

import io
import itertools
import json
import re
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from arena.models import ArenaModel, Battle
from arena.names import MODEL_NAME_MAX, model_name_problem
from arena.roles import ADMIN
from ratings.battle_files import BattleFileError, read_battles
from ratings.services import recompute_publish
from tests.admin.conftest import client_for, staff
from tests.arena.factories import ArenaModelFactory, VoteFactory
from votes.models import Vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(db) -> Client:
    """Staff in the admin group, as tests/admin/conftest.py makes them."""
    return client_for(staff("olga", ADMIN))


NAMES = ["gpt-3.5-turbo", "meta-llama/Llama-3.1-8B-Instruct", "llama3.1:8b", "模型-1", "org/m+x@v2"]
INVALID = {
    "model<b>": "contains '<'",
    "bad\x07name": "control or invisible character (U+0007)",
    " leading-space": "must not start or end with whitespace",
    "x" * (MODEL_NAME_MAX + 1): f"at most {MODEL_NAME_MAX} are allowed",
}


# -- the rule ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [*NAMES, "gpt-4", "vicuna-13b-v1.3", "Qwen/Qwen2.5-72B-Instruct", "hf.co/org/model:Q4_K_M", "a", "x" * 200,
     "mistral-7b-instruct-v0.2+lora", "claude-3-5-sonnet@20240620", "écrivain_7b", "a..b"],
)  # fmt: skip
def test_registry_spellings_are_valid(name):
    assert model_name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [*INVALID, "", "two words", "tab\tinside", "trailing ", "a\x00b", "new\nline", "x" * 201, "quote\"d",
     "semi;colon", "/leading", "trailing/", "a//b", "a/../b", "./a", "..", "zero\u200bwidth", 42, None],
)  # fmt: skip
def test_everything_else_is_refused_with_a_reason(name):
    problem = model_name_problem(name)
    assert problem, name
    if name in INVALID:
        assert INVALID[name] in problem


# -- every page, link, API path, plot, admin form and export ---------------


@pytest.fixture
def named_arena(db):
    """Votes among NAMES (and a plain name), then a published snapshot."""
    models = [ArenaModelFactory(name=n, organization="Org") for n in NAMES]
    for i, (a, b) in enumerate(itertools.permutations(models, 2)):
        for k in range(3):
            VoteFactory(pair_a=a, pair_b=b, winner=("a", "b", "tie")[(i + k) % 3])
    assert recompute_publish(force=True) is not None
    return models


def links(html: str, prefix: str) -> set[str]:
    return {h.replace("&amp;", "&") for h in re.findall(rf'href="({re.escape(prefix)}[^"]*)"', html)}


def test_leaderboard_links_and_model_pages_work_for_every_name(named_arena, client):
    response = client.get("/leaderboard/")
    assert response.status_code == 200
    html = response.content.decode()
    hrefs = links(html, "/leaderboard/models/")
    expected = {reverse("leaderboard-model", args=[n]) for n in NAMES}
    assert expected <= {h.split("?")[0] for h in hrefs}
    assert "/leaderboard/models/meta-llama/Llama-3.1-8B-Instruct/" in expected
    for href in hrefs:  # the table's links and the SVG plots' links
        page = client.get(href)
        assert page.status_code == 200, href
    for name in NAMES:
        page = client.get(reverse("leaderboard-model", args=[name]))
        assert page.status_code == 200
        body = page.content.decode()
        assert f"<h1>{name}</h1>" in body
        # the opponents table links every other model's page, and those resolve too
        for href in links(body, "/leaderboard/models/"):
            assert client.get(href).status_code == 200, href
    # the SVG plot links names with "/" and titles them whole
    assert 'href="/leaderboard/models/meta-llama/Llama-3.1-8B-Instruct/"' in html
    assert "<title>meta-llama/Llama-3.1-8B-Instruct:" in html


def test_an_encoded_request_reaches_the_same_page(named_arena, client):
    assert client.get("/leaderboard/models/%E6%A8%A1%E5%9E%8B-1/").status_code == 200
    assert client.get("/leaderboard/models/meta-llama%2FLlama-3.1-8B-Instruct/").status_code == 200
    assert client.get("/leaderboard/models/no-such/model/").status_code == 404
    assert client.get("/leaderboard/models/model%3Cb%3E/").status_code == 404


def test_api_card_and_history_work_for_every_name(named_arena, client):
    for name in NAMES:
        card = client.get(reverse("api-model", args=[name]))
        assert card.status_code == 200, name
        assert card.json()["name"] == name
        assert {o["opponent"] for o in card.json()["opponents"]} == set(NAMES) - {name}
        history = client.get("/api/v1/leaderboard/history/", {"model": name})
        assert history.status_code == 200, name
        assert history.json()["count"] == 1
    assert client.get("/api/v1/models/meta-llama/Llama-3.1-8B-Instruct/").status_code == 200
    assert client.get("/api/v1/models/llama3.1:8b/").status_code == 200
    board = client.get("/api/v1/leaderboard/").json()
    assert {r["model"] for r in board["models"]} == set(NAMES)


def test_the_api_refuses_invalid_names_with_the_reason(named_arena, client):
    for name, reason in INVALID.items():
        response = client.get("/api/v1/leaderboard/history/", {"model": name})
        assert response.status_code == 400
        assert response.json()["error"] == "invalid"
        assert reason in response.json()["detail"]
        card = client.get("/api/v1/models/" + quote(name, safe="") + "/")
        assert card.status_code == 404
        assert card.json()["error"] == "not_found"


def admin_form(model: ArenaModel, **overrides) -> dict:
    data = {
        "name": model.name, "display_name": model.display_name, "organization": model.organization,
        "license": model.license, "url": model.url, "provider_kind": "answer_set", "status": model.status,
        "weight": "1.0", "max_concurrency": "4", "identity_words_text": "", "paused_reason": "",
        "base_url": "", "model": "", "api_key_env": "", "temperature": "", "max_tokens": "", "timeout": "",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_the_admin_change_form_saves_every_name(named_arena, operator_client):
    for model in named_arena:
        url = reverse("admin:arena_arenamodel_change", args=[model.pk])
        assert operator_client.get(url).status_code == 200
        response = operator_client.post(url, admin_form(model, status="paused", paused_reason="checking"))
        assert response.status_code == 302, response.content.decode()[:2000]
        model.refresh_from_db()
        assert (model.status, model.paused_reason) == ("paused", "checking")
    changelist = operator_client.get(reverse("admin:arena_arenamodel_changelist")).content.decode()
    for name in NAMES:
        assert f">{name}</a>" in changelist


def test_the_admin_refuses_invalid_names_on_the_field(operator_client):
    add = reverse("admin:arena_arenamodel_add")
    plain = ArenaModel(name="placeholder")
    for name, reason in INVALID.items():
        response = operator_client.post(add, admin_form(plain, name=name))
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert "name" in errors, name
        if len(name) <= MODEL_NAME_MAX:  # past the length Django's own max_length message comes first
            assert reason in errors["name"][0]
    assert not ArenaModel.objects.exists()
    response = operator_client.post(add, admin_form(plain, name="meta-llama/Llama-3.1-8B-Instruct"))
    assert response.status_code == 302
    assert ArenaModel.objects.filter(name="meta-llama/Llama-3.1-8B-Instruct").exists()


def test_export_and_reimport_round_trip_every_name(named_arena, tmp_path):
    path = tmp_path / "votes.jsonl"
    call_command("export_battles", output=str(path))
    exported = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["model_a"] for r in exported} | {r["model_b"] for r in exported} == set(NAMES)

    user = staff("exporter", None)
    body = b"".join(client_for(user).get("/api/v1/votes/export/").streaming_content).decode()
    api_names = {json.loads(line)["model_a"] for line in body.splitlines()}
    assert api_names == set(NAMES)

    Vote.objects.all().delete()
    Battle.objects.all().delete()
    ArenaModel.objects.all().delete()
    call_command("import_battles", str(path), stdout=io.StringIO(), stderr=io.StringIO(), no_progress=True)
    assert set(ArenaModel.objects.values_list("name", flat=True)) == set(NAMES)
    pairs = sorted(Vote.objects.values_list("model_a__name", "model_b__name", "winner"))
    assert pairs == sorted((r["model_a"], r["model_b"], {"model_a": "a", "model_b": "b"}.get(r["winner"], "tie"))
                           for r in exported)  # fmt: skip


# -- invalid names at the file entrances: FILE:LINE, nothing written -------


def test_import_battles_refuses_invalid_names_with_file_and_line(tmp_path):
    for name, reason in INVALID.items():
        path = tmp_path / "battles.jsonl"
        rows = [{"model_a": "gpt-4", "model_b": "claude-v1", "winner": "model_a", "judge": "j"}] * 2
        rows.append({"model_a": "gpt-4", "model_b": name, "winner": "tie", "judge": "j"})
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(CommandError) as failure:
            call_command("import_battles", str(path), stdout=io.StringIO(), stderr=io.StringIO(), no_progress=True)
        assert f"battles.jsonl:3: model_b {name[:60]!r}"[:-1] in str(failure.value)  # repr without its end quote
        assert reason in str(failure.value)
        assert not Vote.objects.exists() and not ArenaModel.objects.exists()


def test_import_battles_csv_refuses_a_name_with_a_leading_space(tmp_path):
    path = tmp_path / "battles.csv"
    path.write_text("model_a,model_b,winner\ngpt-4,claude-v1,model_a\n gpt-4,claude-v1,tie\n")
    with pytest.raises(CommandError, match=r"battles\.csv:3: model_a ' gpt-4' must not start or end with whitespace"):
        call_command("import_battles", str(path), stdout=io.StringIO(), stderr=io.StringIO(), no_progress=True)
    assert not Vote.objects.exists()


def test_rate_battles_reader_refuses_invalid_names_with_file_and_line(tmp_path):
    path = tmp_path / "battles.jsonl"
    path.write_text(
        json.dumps({"model_a": "a", "model_b": "b", "winner": "tie"}) + "\n"
        + json.dumps({"model_a": "model<b>", "model_b": "b", "winner": "tie"}) + "\n"
    )  # fmt: skip
    with pytest.raises(BattleFileError, match=r"battles\.jsonl:2: model_a 'model<b>' contains '<'"):
        read_battles([path])
    csv_path = tmp_path / "battles.csv"  # the fast path for plain CSV falls back to report the line
    csv_path.write_text("model_a,model_b,winner\na,b,tie\na,b\x01c,model_a\n")
    with pytest.raises(BattleFileError, match=r"battles\.csv:3: model_b .* control or invisible character"):
        read_battles([csv_path])
    ok = tmp_path / "ok.csv"
    ok.write_text("model_a,model_b,winner\nmeta-llama/Llama-3.1-8B-Instruct,llama3.1:8b,model_a\n")
    assert sorted(read_battles([ok]).names) == ["llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct"]


def test_sorting_is_case_insensitive(client, operator_client):
    for name in ["RWKV-4-Raven-14B", "alpaca-13b", "Zephyr-7b", "baize-v2-13b"]:
        ArenaModelFactory(name=name)
    expected = ["alpaca-13b", "baize-v2-13b", "RWKV-4-Raven-14B", "Zephyr-7b"]
    assert [m["name"] for m in client.get("/api/v1/models/").json()["results"]] == expected
    assert list(ArenaModel.objects.values_list("name", flat=True)) == expected
    html = operator_client.get(reverse("admin:arena_arenamodel_changelist")).content.decode()
    assert [html.index(f">{n}</a>") for n in expected] == sorted(html.index(f">{n}</a>") for n in expected)


# -- favicon -------------------------------------------------------------------


def test_favicon_is_served_and_linked(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    icon = response.content
    assert icon[:4] == b"\x00\x00\x01\x00" and int.from_bytes(icon[4:6], "little") >= 1  # an ICO directory
    page = Client().get("/leaderboard/").content.decode()
    assert 'rel="icon" href="/static/arena/favicon.svg"' in page
    svg = b"".join(Client().get("/static/arena/favicon.svg").streaming_content)
    assert svg.startswith(b"<svg")
    assert client.head("/favicon.ico").status_code == 200
    assert client.post("/favicon.ico").status_code == 405


# -- CSRF cookie without opening a battle -----------------------------------


def test_csrf_endpoint_gives_a_cookie_session_client_its_token(demo_models):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/api/v1/battles/", {}, content_type="application/json").status_code == 403
    response = client.get("/api/v1/csrf/")
    assert response.status_code == 200
    token = response.json()["csrf_token"]
    assert client.cookies["csrftoken"].value
    assert not Battle.objects.exists()  # reading the token opened nothing
    opened = client.post("/api/v1/battles/", {}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert opened.status_code == 201, opened.content
    # a stale or wrong Authorization header does not turn it into a 401
    assert Client().get("/api/v1/csrf/", HTTP_AUTHORIZATION="Token nope").status_code == 200
