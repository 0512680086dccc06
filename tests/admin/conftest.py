"""Staff accounts in each role, logged-in clients, and a small arena with votes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from arena.roles import ADMIN, MODERATOR
from tests.arena.factories import ArenaModelFactory, VoteFactory


def staff(username: str, group: str | None) -> User:
    user = User.objects.create_user(username, password="pw-" + username, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator(db) -> User:
    """Staff in the admin group (not a superuser)."""
    return staff("olga", ADMIN)


@pytest.fixture
def moderator(db) -> User:
    return staff("mo", MODERATOR)


@pytest.fixture
def operator_client(operator) -> Client:
    return client_for(operator)


@pytest.fixture
def moderator_client(moderator) -> Client:
    return client_for(moderator)


@pytest.fixture
def arena_votes(db):
    """Three models and 30 votes with a clear order: xenon > yarrow > zinc."""
    x, y, z = (ArenaModelFactory(name=n, organization=f"{n} labs") for n in ("xenon-1", "yarrow-2", "zinc-3"))
    votes = []
    for i in range(10):
        votes.append(VoteFactory(pair_a=x, pair_b=y, winner="a" if i % 4 else "b"))
        votes.append(VoteFactory(pair_a=y, pair_b=z, winner="a" if i % 3 else "tie"))
        votes.append(VoteFactory(pair_a=z, pair_b=x, winner="b" if i % 5 else "a"))
    return votes
