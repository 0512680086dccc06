"""The model registry in the admin: add and edit with validated provider
settings, bulk status changes, a real "test connection", battles, votes and
the current rating per model."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry

from arena.models import ArenaModel
from ratings.selectors import overall_standings
from ratings.services import recompute_publish
from tests.arena.factories import ArenaModelFactory
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.django_db


def form_data(**overrides) -> dict:
    data = {
        "name": "nova-8b", "display_name": "Nova 8B", "organization": "Nova Labs", "license": "Apache-2.0",
        "provider_kind": "openai", "base_url": "http://vllm:8000/v1/", "model": "nova-8b-instruct",
        "api_key_env": "NOVA_API_KEY", "temperature": "0.5", "max_tokens": "512", "timeout": "30",
        "status": "active", "weight": "1.5", "max_concurrency": "4", "identity_words_text": "Nova, nova labs, Nova",
        "paused_reason": "",
    }  # fmt: skip
    data.update(overrides)
    return data


@pytest.fixture
def fake():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def test_an_operator_adds_a_live_model(operator_client, operator):
    response = operator_client.post("/admin/arena/arenamodel/add/", form_data())

    assert response.status_code == 302, response.content.decode()[:3000]
    model = ArenaModel.objects.get(name="nova-8b")
    assert model.provider_settings == {
        "base_url": "http://vllm:8000/v1", "model": "nova-8b-instruct", "api_key_env": "NOVA_API_KEY",
        "temperature": 0.5, "max_tokens": 512, "timeout": 30.0,
    }  # fmt: skip
    assert model.identity_words == ["Nova", "nova labs"]
    assert (model.weight, model.status, model.organization) == (1.5, "active", "Nova Labs")
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id, entry.get_action_flag_display()) == (operator, str(model.pk), "Addition")


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"base_url": ""}, "base_url", "required for an OpenAI-compatible endpoint"),
        ({"model": ""}, "model", "required for an OpenAI-compatible endpoint"),
        ({"base_url": "ftp://x/v1"}, "base_url", "enter an http:// or https:// URL"),
        ({"api_key_env": "sk-abc123"}, "api_key_env", "not the key itself"),
        ({"temperature": "3"}, "temperature", "less than or equal to 2"),
        ({"weight": "-1"}, "weight", None),
        ({"name": "has spaces"}, "name", None),
    ],
)
def test_bad_model_settings_are_refused_with_a_clear_error(operator_client, overrides, field, message):
    response = operator_client.post("/admin/arena/arenamodel/add/", form_data(**overrides))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors or "__all__" in errors, errors
    if message:
        assert message in " ".join(errors.get(field, [])), errors
    assert not ArenaModel.objects.exists()


def test_an_answer_set_model_needs_no_endpoint(operator_client):
    response = operator_client.post(
        "/admin/arena/arenamodel/add/", form_data(provider_kind="answer_set", base_url="", model="")
    )
    assert response.status_code == 302
    assert ArenaModel.objects.get(name="nova-8b").provider_settings == {}


def test_the_edit_form_shows_the_stored_provider_settings(operator_client):
    model = ArenaModelFactory(name="live-a", provider_kind="openai", identity_words=["Acme"],
                              provider_settings={"base_url": "https://api.example.com/v1", "model": "acme-1",
                                                 "api_key_env": "ACME_KEY", "timeout": 12.0})  # fmt: skip
    page = operator_client.get(f"/admin/arena/arenamodel/{model.pk}/change/")
    form = page.context["adminform"].form
    assert form.initial["base_url"] == "https://api.example.com/v1"
    assert form.initial["api_key_env"] == "ACME_KEY"
    assert form.initial["identity_words_text"] == "Acme"
    assert b"Test connection" in page.content


def test_pausing_in_the_form_records_when_and_why(operator_client, operator):
    model = ArenaModelFactory(name="steady-1", consecutive_failures=3)
    data = form_data(name="steady-1", provider_kind="answer_set", base_url="", model="", status="paused")
    assert operator_client.post(f"/admin/arena/arenamodel/{model.pk}/change/", data).status_code == 302
    model.refresh_from_db()
    assert model.status == "paused" and model.paused_at is not None and model.paused_reason == "paused by olga"

    data["status"] = "active"
    assert operator_client.post(f"/admin/arena/arenamodel/{model.pk}/change/", data).status_code == 302
    model.refresh_from_db()
    assert (model.status, model.paused_at, model.paused_reason, model.consecutive_failures) == ("active", None, "", 0)


@pytest.mark.parametrize("action", ["pause", "deprecate", "activate"])
def test_bulk_status_actions_change_only_what_differs_and_log_each_model(operator_client, operator, action):
    a = ArenaModelFactory(name="m-a", status="active")
    b = ArenaModelFactory(name="m-b", status="paused", paused_reason="flaky")
    target = {"pause": "paused", "deprecate": "deprecated", "activate": "active"}[action]

    response = operator_client.post(
        "/admin/arena/arenamodel/", {"action": action, "_selected_action": [a.pk, b.pk]}, follow=True
    )

    assert response.status_code == 200
    assert set(ArenaModel.objects.values_list("status", flat=True)) == {target}
    changed = [m for m in (a, b) if m.status != target]
    logged = LogEntry.objects.filter(action_flag=CHANGE)
    assert sorted(logged.values_list("object_id", flat=True)) == sorted(str(m.pk) for m in changed)
    assert all(e.user == operator and f"Set status to {target}" in e.change_message for e in logged)
    assert f"{len(changed)} model(s) now {target}" in response.content.decode()


def test_test_connection_shows_the_answer_of_a_live_endpoint(operator_client, operator, fake):
    fake.script("acme-chat", text="Yes, I am here.")
    model = ArenaModelFactory(name="acme", provider_kind="openai",
                              provider_settings={"base_url": fake.base_url, "model": "acme-chat"})  # fmt: skip
    url = f"/admin/arena/arenamodel/{model.pk}/test-connection/"
    assert b"Call the endpoint now" in operator_client.get(url).content
    assert fake.scripts["acme-chat"].calls == 0  # GET calls nothing

    page = operator_client.post(url).content.decode()

    assert "Connected: answered in" in page and "Yes, I am here." in page
    request = fake.scripts["acme-chat"].requests[0]
    assert request["max_tokens"] <= 64 and request["messages"][-1]["role"] == "user"
    assert "Tested the connection: answered in" in LogEntry.objects.get(object_id=str(model.pk)).change_message


def test_test_connection_shows_the_operator_error(operator_client, fake):
    fake.script("broken", status=500)
    model = ArenaModelFactory(name="broken", provider_kind="openai",
                              provider_settings={"base_url": fake.base_url, "model": "broken"})  # fmt: skip
    page = operator_client.post(f"/admin/arena/arenamodel/{model.pk}/test-connection/").content.decode()
    assert "Failed (http)" in page and "answered 500" in page and fake.base_url in page


def test_test_connection_to_a_closed_port_and_a_missing_key(operator_client, monkeypatch):
    from tests.services import free_port

    closed = ArenaModelFactory(
        name="gone",
        provider_kind="openai",
        provider_settings={"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "x"},
    )
    keyless = ArenaModelFactory(name="keyless", provider_kind="openai",
                                provider_settings={"base_url": "http://127.0.0.1:9/v1", "model": "x",
                                                   "api_key_env": "ARENA_TEST_UNSET_KEY"})  # fmt: skip
    monkeypatch.delenv("ARENA_TEST_UNSET_KEY", raising=False)
    page = operator_client.post(f"/admin/arena/arenamodel/{closed.pk}/test-connection/").content.decode()
    assert "Failed (connection)" in page and "cannot connect" in page
    page = operator_client.post(f"/admin/arena/arenamodel/{keyless.pk}/test-connection/").content.decode()
    assert "Failed (config)" in page and "ARENA_TEST_UNSET_KEY is not set" in page


def test_test_connection_of_an_unknown_model_is_404(operator_client):
    assert operator_client.post("/admin/arena/arenamodel/999/test-connection/").status_code == 404
    assert operator_client.post("/admin/arena/arenamodel/abc/test-connection/").status_code == 404


def test_models_list_shows_rating_rank_and_votes_from_the_newest_snapshot(operator_client, arena_votes):
    snap = recompute_publish()
    page = operator_client.get("/admin/arena/arenamodel/")
    rows = {r["model"]: r for r in overall_standings(snap).values()}
    results = {obj.name: obj for obj in page.context["cl"].result_list}
    html = page.content.decode()
    for name, row in rows.items():
        assert results[name].standing_row == row
        assert f"{row['rating']:.0f}" in html
    assert f"?model={results['xenon-1'].pk}" in html

    detail = operator_client.get(f"/admin/arena/arenamodel/{results['xenon-1'].pk}/change/").content.decode()
    assert f"rating <b>{rows['xenon-1']['rating']:.0f}</b>" in detail
    assert "20 battles" in detail and f"{rows['xenon-1']['battles']} counted votes" in detail
