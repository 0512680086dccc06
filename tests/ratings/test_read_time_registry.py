"""Registry details joined when read, honest ranks, one rank everywhere.

Snapshots store numbers and model ids only. These tests publish real
snapshots (votes in the database, then recompute_publish) and then change
the registry the ways an operator does (the admin's change form and its
bulk actions, which write with ``.update()``), and check that the very next
request shows it, with no stale 304, and that the leaderboard, the model
page, the model API and the admin give a model the same rank.
"""

from __future__ import annotations

import re

import pytest

from arena.models import ArenaModel
from ratings import selectors
from ratings.models import Snapshot, SnapshotView
from ratings.services import recompute_publish
from tests.admin.conftest import client_for, staff
from tests.arena.factories import ArenaModelFactory, VoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(db):
    from arena.roles import ADMIN

    return client_for(staff("olga", ADMIN))


@pytest.fixture
def board(settings):
    """Three established models (19 votes, every pair both ways) and one
    newcomer whose single battle, the 20th vote, it won."""
    settings.RATINGS_MIN_VOTES = 5
    x, y, z = (
        ArenaModelFactory(name=n, organization=f"{n} labs", license="MIT") for n in ("xenon-1", "yarrow-2", "zinc-3")
    )
    outcomes = {(x, y): "aaaaba", (y, z): "aaabat", (z, x): "bbbab"}
    for (a, b), winners in outcomes.items():
        for w in winners:
            VoteFactory(pair_a=a, pair_b=b, winner={"t": "tie"}.get(w, w))
    one = ArenaModelFactory(name="newcomer-1", organization="new labs")
    VoteFactory(pair_a=one, pair_b=z, winner="a")
    snap = recompute_publish()
    assert snap.vote_count == 18
    return {"x": x, "y": y, "z": z, "one": one, "snap": snap}


def leaderboard(client, query: str = "", **headers):
    return client.get(f"/api/v1/leaderboard/{query}", headers=headers)


def test_stored_rows_hold_model_ids_and_numbers_only(board):
    view = SnapshotView.objects.get(snapshot=board["snap"], key="overall", style_control=False)
    for row in [*view.rows, *Snapshot.objects.get(id=board["snap"].id).rows]:
        assert isinstance(row["model_id"], int)
        assert not {"model", "organization", "license", "status"} & set(row)


def test_a_model_with_one_battle_gets_no_rank_and_its_caveats_in_words(client, board):
    models = {m["model"]: m for m in leaderboard(client).json()["models"]}
    one = models["newcomer-1"]
    assert one["rank"] is None and one["preliminary"] is True
    assert {"few_votes", "one_battle", "only_wins"} <= set(one["flags"])
    assert "only 1 vote; a rank needs 5" in one["caveats"]
    assert "rated from a single battle" in one["caveats"]
    # Listed after the ranked models, whatever its rating.
    assert list(models)[-1] == "newcomer-1"
    ranked = [m for m in models.values() if not m["preliminary"]]
    assert [m["model"] for m in ranked] == ["xenon-1", "yarrow-2", "zinc-3"]
    assert all(m["rank"] >= 1 and m["caveats"] == [] and m["flags"] == [] for m in ranked)
    # Ranks count established models only: the best of them is 1, not 2.
    assert ranked[0]["rank"] == 1

    html = client.get("/leaderboard/").content.decode()
    prelim = html[html.index('id="preliminary"') :]
    row = re.search(r'<tr data-model="newcomer-1".*?</tr>', prelim, re.S).group(0)
    assert '<td class="num rank">–</td>' in row
    assert "<li>only 1 vote; a rank needs 5</li>" in row and "<li>rated from a single battle</li>" in row
    assert 'title="' not in row  # words on the page, not a tooltip


def _model_page_rank(client, name: str) -> str:
    html = client.get(f"/leaderboard/models/{name}/").content.decode()
    table = html[html.index('id="model-ratings"') :]
    row = re.search(r'<tr class="current">.*?</tr>', table, re.S).group(0)
    return re.findall(r'<td class="num">(.*?)</td>', row, re.S)[0]


def _admin_ranks(operator_client) -> dict[str, str]:
    page = operator_client.get("/admin/arena/arenamodel/")
    admin = page.context["cl"].model_admin
    return {obj.name: admin.rank(obj) for obj in page.context["cl"].result_list}


def _ranks_everywhere(client, operator_client, names):
    api = {m["model"]: m["rank"] for m in leaderboard(client, "?include_deprecated=true").json()["models"]}
    default = {m["model"]: m["rank"] for m in leaderboard(client).json()["models"]}
    admin = _admin_ranks(operator_client)
    out = {}
    for name in names:
        model = ArenaModel.objects.get(name=name)
        board_rank = api[name] if model.status == "deprecated" else default[name]
        card = client.get(f"/api/v1/models/{name}/").json()
        overall = next(r for r in card["ratings"] if r["category"] == "overall" and not r["style_control"])
        page = _model_page_rank(client, name)
        shown = str(board_rank) if board_rank is not None else "preliminary"
        assert overall["rank"] == board_rank, (name, overall, board_rank)
        assert page == str(board_rank) if board_rank is not None else page.startswith('<span class="prelim-rank">')
        assert admin[name] == shown, (name, admin[name], shown)
        out[name] = board_rank
    return out


def test_ranks_are_the_same_on_the_leaderboard_model_page_model_api_and_admin(client, operator_client, board):
    names = ["xenon-1", "yarrow-2", "zinc-3", "newcomer-1"]
    before = _ranks_everywhere(client, operator_client, names)
    assert before["newcomer-1"] is None and before["xenon-1"] == 1
    # Deprecating the leader re-ranks the others at once, everywhere; the deprecated model keeps
    # the rank the board with deprecated models shows.
    assert (
        operator_client.post(
            "/admin/arena/arenamodel/", {"action": "deprecate", "_selected_action": [board["x"].pk]}
        ).status_code
        == 302
    )
    after = _ranks_everywhere(client, operator_client, names)
    assert after["yarrow-2"] == 1 and after["xenon-1"] == 1


def test_a_bulk_deprecation_shows_on_the_next_request_and_never_as_a_stale_304(client, operator_client, board):
    first = leaderboard(client)
    etag, names = first["ETag"], [m["model"] for m in first.json()["models"]]
    assert "yarrow-2" in names
    assert client.get("/api/v1/leaderboard/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    card = client.get("/api/v1/models/yarrow-2/")
    card_etag = card["ETag"]
    assert client.get("/api/v1/models/yarrow-2/", HTTP_IF_NONE_MATCH=card_etag).status_code == 304

    # The admin's bulk action writes with .update(): no save(), no auto_now, no signal.
    response = operator_client.post(
        "/admin/arena/arenamodel/", {"action": "deprecate", "_selected_action": [board["y"].pk]}
    )
    assert response.status_code == 302
    assert Snapshot.objects.count() == 1  # no recompute ran: the snapshot is the same one

    again = client.get("/api/v1/leaderboard/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 200 and again["ETag"] != etag
    assert "yarrow-2" not in [m["model"] for m in again.json()["models"]]
    shown = {m["model"]: m for m in leaderboard(client, "?include_deprecated=true").json()["models"]}
    assert shown["yarrow-2"]["status"] == "deprecated"
    card = client.get("/api/v1/models/yarrow-2/", HTTP_IF_NONE_MATCH=card_etag)
    assert card.status_code == 200 and card.json()["status"] == "deprecated"
    html = client.get("/leaderboard/").content.decode()
    assert 'data-model="yarrow-2"' not in html and "1 deprecated model hidden" in html


def test_an_organization_edit_in_the_change_form_shows_on_the_next_request(client, operator_client, board):
    etag = leaderboard(client)["ETag"]
    card_etag = client.get("/api/v1/models/zinc-3/")["ETag"]
    data = {
        "name": "zinc-3", "display_name": "Zinc 3", "organization": "Zinc Renamed Inc", "license": "MIT",
        "provider_kind": "answer_set", "base_url": "", "model": "", "api_key_env": "", "temperature": "0.7",
        "max_tokens": "1024", "timeout": "60", "status": "active", "weight": "1", "max_concurrency": "4",
        "identity_words_text": "", "paused_reason": "",
    }  # fmt: skip
    response = operator_client.post(f"/admin/arena/arenamodel/{board['z'].pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    assert ArenaModel.objects.get(name="zinc-3").organization == "Zinc Renamed Inc"

    again = client.get("/api/v1/leaderboard/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 200
    row = next(m for m in again.json()["models"] if m["model"] == "zinc-3")
    assert (row["organization"], row["display_name"]) == ("Zinc Renamed Inc", "Zinc 3")
    card = client.get("/api/v1/models/zinc-3/", HTTP_IF_NONE_MATCH=card_etag)
    assert card.status_code == 200 and card.json()["organization"] == "Zinc Renamed Inc"
    assert "Zinc Renamed Inc" in client.get("/leaderboard/").content.decode()
    listed = {m["name"]: m for m in client.get("/api/v1/models/").json()["results"]}
    assert listed["zinc-3"]["organization"] == "Zinc Renamed Inc"


def test_the_leaderboard_body_cache_and_etag_follow_a_raw_update(client, board):
    """Whatever writes the registry (here a bare .update(), as health checks do) changes the answer."""
    first = leaderboard(client)
    ArenaModel.objects.filter(name="xenon-1").update(license="GPL-3.0")
    second = leaderboard(client, HTTP_IF_NONE_MATCH=first["ETag"])
    assert second.status_code == 200 and second["ETag"] != first["ETag"]
    assert next(m for m in second.json()["models"] if m["model"] == "xenon-1")["license"] == "GPL-3.0"


def test_rows_stored_with_names_before_ids_still_read(client, board):
    """Snapshots published before ids were stored: rows name the model (and
    copy its details, now ignored); readers map the name to today's model."""
    view = SnapshotView.objects.get(snapshot=board["snap"], key="overall", style_control=False)
    ids = {m.id: m.name for m in ArenaModel.objects.all()}
    legacy = [{**{k: v for k, v in r.items() if k != "model_id"}, "model": ids[r["model_id"]],
               "organization": "stale copy", "license": "", "status": "active"} for r in view.rows]  # fmt: skip
    before = leaderboard(client).json()["models"]
    SnapshotView.objects.filter(id=view.id).update(rows=legacy)
    ArenaModel.objects.filter(name="zinc-3").update(status="paused")  # a new registry version: no cached body
    after = leaderboard(client).json()["models"]
    assert [(m["model"], m["rank"], m["organization"]) for m in after] == [
        (m["model"], m["rank"], m["organization"]) for m in before
    ]
    card = client.get("/api/v1/models/xenon-1/").json()
    assert any(r["category"] == "overall" for r in card["ratings"])
    assert card["opponents"]


def test_sampling_reads_the_newest_snapshot_by_model_id(board, settings):
    from arena.services import sampling_inputs

    settings.ARENA_SAMPLING_POLICY = "active"
    models = [board["x"], board["y"], board["z"], board["one"]]
    inputs = sampling_inputs(models)
    stored = {r["model_id"]: r for r in selectors.snapshot_view(board["snap"], "overall", False).rows}
    assert inputs["theta"][0] == pytest.approx((stored[board["x"].id]["rating"] - 1000.0) / (400 / 2.302585092994046))
    assert inputs["counts"][(2, 3)] == 1.0  # zinc-3 against the newcomer
    assert inputs["counts"][(0, 1)] == 6.0


def test_one_selector_reads_the_newest_snapshot(board):
    newer = recompute_publish(force=True)
    assert selectors.newest_snapshot().id == newer.id
    assert selectors.newest_snapshot(ci="bootstrap") is None
    for name in ("latest_snapshot", "snapshot_head"):
        assert not hasattr(selectors, name)
