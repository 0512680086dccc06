"""Who may do what: the moderator and admin groups, and nobody anonymous."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from arena.models import ArenaModel
from arena.roles import ADMIN, MODERATOR, ensure_roles
from ratings.models import RecomputeRun, Snapshot
from ratings.services import recompute_publish
from tests.arena.factories import ArenaModelFactory

pytestmark = pytest.mark.django_db


def perms(group: str) -> set[str]:
    return {
        f"{app}.{code}"
        for app, code in Group.objects.get(name=group).permissions.values_list("content_type__app_label", "codename")
    }


def test_migrate_creates_both_groups_with_their_permissions():
    assert perms(MODERATOR) == {
        "votes.view_vote", "votes.change_vote", "votes.view_voteexclusionevent", "votes.view_voterflag",
        "votes.change_voterflag", "arena.view_voter", "arena.change_voter", "arena.view_battle",
    }  # fmt: skip
    every = Permission.objects.values_list("content_type__app_label", "codename")
    assert perms(ADMIN) == {f"{app}.{code}" for app, code in every}
    assert "ratings.add_recomputerun" in perms(ADMIN) and "arena.change_arenamodel" in perms(ADMIN)


def test_roles_are_restored_and_never_duplicated():
    Group.objects.get(name=MODERATOR).permissions.clear()
    ensure_roles()
    ensure_roles()
    assert Group.objects.filter(name__in=[MODERATOR, ADMIN]).count() == 2
    assert "votes.change_vote" in perms(MODERATOR)


def admin_urls() -> list[str]:
    """Every admin URL, its parameters filled with an existing object's id."""
    model = ArenaModel.objects.first()
    snap = Snapshot.objects.first()
    run = RecomputeRun.objects.first()
    found = []

    def walk(patterns, prefix=""):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and route.startswith(("admin/", "^admin/")):
                found.append(route)

    walk(get_resolver().url_patterns)
    urls = set()
    for route in found:
        if "<path:object_id>" in route:
            objects = {"arenamodel": model, "snapshot": snap, "recomputerun": run}
            oid = getattr(objects.get(route.split("/")[2]), "pk", 1)
            route = route.replace("<path:object_id>", str(oid))
        route = route.replace("<int:user_id>", "1").replace("<id>", "1")
        if "<" in route or "(?P" in route or "^" in route:
            continue  # app_index regex, password change with its own token: covered below
        urls.add("/" + route)
    return sorted(urls) + ["/admin/arena/", "/admin/votes/", "/admin/ratings/", "/admin/auth/"]


def test_an_anonymous_user_reaches_no_admin_page_or_admin_api(arena_votes, operator):
    recompute_publish()
    RecomputeRun.objects.create(ci="sandwich", requested_by=operator)
    urls = admin_urls()
    assert len(urls) > 40
    for must in ("/admin/dashboard/", "/admin/dashboard/health/", "/admin/ratings/snapshot/compare/",
                 f"/admin/ratings/recomputerun/{RecomputeRun.objects.get().pk}/status/",
                 f"/admin/arena/arenamodel/{ArenaModel.objects.first().pk}/test-connection/"):  # fmt: skip
        assert must in urls
    anonymous = Client()
    for url in urls:
        for method in (anonymous.get, anonymous.post):
            response = method(url)
            if url in ("/admin/login/", "/admin/logout/"):
                continue
            assert response.status_code in (302, 403, 404), (url, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith("/admin/login/"), (url, response["Location"])
    # The staff-only API endpoints too.
    assert anonymous.post("/api/v1/snapshots/", {}, content_type="application/json").status_code in (401, 403)
    assert anonymous.get("/api/v1/votes/export/").status_code in (401, 403)
    assert not RecomputeRun.objects.exclude(requested_by=operator).exists()
    assert not LogEntry.objects.exists()


def test_a_logged_in_non_staff_user_is_sent_to_the_login_page(arena_votes):
    from django.contrib.auth.models import User

    client = Client()
    client.force_login(User.objects.create_user("plain", password="x"))
    for url in ("/admin/", "/admin/dashboard/", "/admin/dashboard/health/", "/admin/votes/vote/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url


def test_a_moderator_cannot_edit_models_or_settings(moderator_client, arena_votes):
    model = ArenaModel.objects.get(name="xenon-1")
    forbidden_get = [
        "/admin/arena/arenamodel/", "/admin/arena/arenamodel/add/", f"/admin/arena/arenamodel/{model.pk}/change/",
        f"/admin/arena/arenamodel/{model.pk}/test-connection/", "/admin/ratings/snapshot/",
        "/admin/ratings/snapshot/compare/", "/admin/ratings/recomputerun/", "/admin/ratings/recomputerun/add/",
        "/admin/auth/user/", "/admin/auth/group/", "/admin/auth/user/add/",
    ]  # fmt: skip
    for url in forbidden_get:
        assert moderator_client.get(url).status_code == 403, url
    # Writes are refused too, and change nothing.
    response = moderator_client.post(
        "/admin/arena/arenamodel/", {"action": "deprecate", "_selected_action": [model.pk]}
    )
    assert response.status_code == 403
    response = moderator_client.post(f"/admin/arena/arenamodel/{model.pk}/change/", {"name": "renamed"})
    assert response.status_code == 403
    assert moderator_client.post(f"/admin/arena/arenamodel/{model.pk}/test-connection/").status_code == 403
    assert moderator_client.post("/admin/ratings/recomputerun/add/", {"ci": "none", "rounds": 100}).status_code == 403
    model.refresh_from_db()
    assert (model.name, model.status) == ("xenon-1", "active")
    assert not RecomputeRun.objects.exists()


def test_a_moderator_sees_votes_voters_battles_and_the_dashboard(moderator_client, arena_votes):
    vote = arena_votes[0]
    for url in ("/admin/", "/admin/dashboard/", "/admin/votes/vote/", f"/admin/votes/vote/{vote.pk}/change/",
                "/admin/arena/voter/", f"/admin/arena/voter/{vote.voter_id}/change/", "/admin/arena/battle/",
                f"/admin/arena/battle/{vote.battle_id}/change/", "/admin/votes/voteexclusionevent/"):  # fmt: skip
        assert moderator_client.get(url).status_code == 200, url
    index = moderator_client.get("/admin/").content.decode()
    assert "/admin/votes/vote/" in index and "/admin/arena/arenamodel/" not in index


def test_the_admin_group_can_do_everything(operator_client, arena_votes):
    model = ArenaModel.objects.get(name="xenon-1")
    for url in ("/admin/arena/arenamodel/add/", f"/admin/arena/arenamodel/{model.pk}/change/",
                "/admin/ratings/recomputerun/add/", "/admin/ratings/snapshot/compare/", "/admin/auth/user/",
                "/admin/votes/vote/", "/admin/arena/voter/", "/admin/dashboard/"):  # fmt: skip
        assert operator_client.get(url).status_code == 200, url


def test_a_superuser_can_use_every_admin_page(admin_client, admin_user, arena_votes):
    recompute_publish()
    RecomputeRun.objects.create(ci="sandwich", requested_by=admin_user)
    ArenaModelFactory(name="live-1", provider_kind="openai", provider_settings={"base_url": "http://127.0.0.1:9/v1",
                                                                              "model": "m"})  # fmt: skip
    for url in admin_urls():
        if url.endswith(("/logout/", "/delete/", "/autocomplete/")) or "/password/" in url:
            continue  # autocomplete needs its query parameters
        response = admin_client.get(url)
        # Battles, votes, voters, events and snapshots are never added by hand.
        expected = (
            (403,)
            if url.endswith("/add/")
            and "recomputerun" not in url
            and "/auth/" not in url
            and "arenamodel" not in url
            and "answerset" not in url
            and "authtoken" not in url
            and "/arena/judge/" not in url
            else (200, 302)
        )  # judges are registered by hand, like live models
        assert response.status_code in expected, (url, response.status_code)
