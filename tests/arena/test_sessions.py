"""Sessions are the signed cookie (issue #14), and a voter whose browser
still holds a database session from an earlier release keeps their voter."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseSession
from django.contrib.sessions.models import Session
from django.test import Client

from arena.models import Battle, Voter

pytestmark = pytest.mark.django_db


def test_a_session_is_the_signed_cookie_and_no_row_is_written(demo_models):
    client = Client()
    token = client.get("/api/v1/csrf/").json()["csrf_token"]
    response = client.post("/api/v1/battles/", {}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert cookie.count(":") == 2  # payload:timestamp:signature
    assert not Session.objects.exists()
    # Tampered with, it is a new, empty session: a new voter, not someone else's.
    voter = Battle.objects.get(id=response.json()["id"]).voter
    forged = Client()
    forged.cookies[settings.SESSION_COOKIE_NAME] = cookie[:-3] + ("aaa" if cookie[-3:] != "aaa" else "bbb")
    token = forged.get("/api/v1/csrf/").json()["csrf_token"]
    other = forged.post("/api/v1/battles/", {}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert other.status_code == 201
    assert Battle.objects.get(id=other.json()["id"]).voter_id != voter.id


def test_a_database_session_of_an_earlier_release_keeps_its_voter(demo_models):
    voter = Voter.objects.create(key="f" * 32)
    old = DatabaseSession()
    old["voter_key"] = voter.key
    old.save()  # a new row, as earlier releases wrote them
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = old.session_key
    token = client.get("/api/v1/csrf/").json()["csrf_token"]
    response = client.post("/api/v1/battles/", {}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    assert Battle.objects.get(id=response.json()["id"]).voter_id == voter.id
    # Carried over into a signed cookie, which keeps the same voter.
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert cookie != old.session_key and cookie.count(":") == 2
    again = client.post("/api/v1/battles/", {}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert Battle.objects.get(id=again.json()["id"]).voter_id == voter.id
