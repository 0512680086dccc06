"""Abuse resistance at the arena's front door: client addresses kept only as
salted hashes, rate limits per voter and per address, CSRF for cookie-based
voters, and ``Idempotency-Key`` for API clients that retry.

The limits are fixed windows counted in the cache (Redis in production, where
``INCR`` is atomic across web replicas; one pipelined round trip per request).
A sick cache never blocks a voter: after one short timeout the circuit breaker
(arena/redis_guard.py) opens and the windows are counted in process memory
until Redis answers again; the vote itself still goes through every database
rule (one vote per battle, owner only, daily cap, time window).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from . import redis_guard
from .models import IdempotencyRecord, Voter
from .services import ArenaError

log = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RateLimited(ArenaError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class IdempotencyConflict(ArenaError):
    status = 422
    code = "idempotency_key_reused"


class IdempotencyInProgress(ArenaError):
    status = 409
    code = "idempotency_key_in_progress"


# --- client addresses ---------------------------------------------------------


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or the hop ARENA_TRUSTED_PROXY_COUNT
    proxies in front of us saw, read from the right of X-Forwarded-For (the
    left end is whatever the client claims)."""
    proxies = settings.ARENA_TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def address_hash(address: str) -> str:
    """HMAC-SHA256 of the address under a secret salt: equal addresses match,
    but the stored value can't be turned back into an address without the salt."""
    salt = settings.ARENA_ADDRESS_SALT.encode()
    return hmac.new(salt, address.encode(), hashlib.sha256).hexdigest()


def request_address_hash(request) -> str:
    cached = getattr(request, "_arena_address_hash", None)
    if cached is None:
        cached = address_hash(client_address(request))
        request._arena_address_hash = cached
    return cached


# --- rate limits --------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str | None) -> Rate | None:
        """ "30/m" → 30 per minute; "100/10m", "5/s", "1000/d"; empty or "0" → no limit."""
        text = (text or "").strip()
        if not text or text == "0":
            return None
        try:
            count, period = text.split("/")
            unit = period[-1]
            span = int(period[:-1] or 1) * PERIODS[unit]
        except (ValueError, KeyError):
            raise ValueError(f"rate {text!r} is not N/<s|m|h|d>, e.g. 30/m") from None
        if span <= 0:
            raise ValueError(f"rate {text!r} has an empty window")
        return cls(int(count), span)


def _window(rate: Rate, now: float) -> int:
    return int(now // rate.seconds)


# Every limit of a request in one server-side step: per key ``SET key 0 EX
# ttl NX`` then ``INCR key``. One EVALSHA costs the web process less than a
# pipeline of the same commands (packing and parsing them is Python).
_COUNT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('SET', key, 0, 'EX', ARGV[i], 'NX')
  counts[i] = redis.call('INCR', key)
end
return counts
"""
_scripts: dict[int, object] = {}


def _count_in_redis(hits: list[tuple[str, int]]) -> list[int]:
    """One round trip for every limit of a request; returns the counts."""
    client = cache._cache.get_client(write=True)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts.setdefault(id(client), client.register_script(_COUNT_SCRIPT))
    keys = [cache.make_key(key) for key, _ in hits]  # ours: no memcached-style validation
    return [int(n) for n in script(keys=keys, args=[ttl for _, ttl in hits], client=client)]


def _count_in_cache(hits: list[tuple[str, int]]) -> list[int]:
    """The same through Django's cache API (the file cache of a single machine)."""
    counts = []
    for key, ttl in hits:
        if cache.add(key, 1, timeout=ttl):
            counts.append(1)
            continue
        try:
            counts.append(cache.incr(key))
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=ttl)
            counts.append(1)
    return counts


# The fallback while the cache is unreachable: the same fixed windows counted
# in this process's memory. With N web processes a client can get up to N
# times the limit until the cache is back; the database's daily cap still
# holds exactly. Old windows are dropped as new ones start.
_local_lock = threading.Lock()
_local_counts: dict[str, tuple[float, int]] = {}


def _count_in_memory(hits: list[tuple[str, int]]) -> list[int]:
    now = time.time()
    counts = []
    with _local_lock:
        if len(_local_counts) > 50_000:
            for key in [k for k, (expires, _) in _local_counts.items() if expires < now]:
                del _local_counts[key]
        for key, ttl in hits:
            expires, count = _local_counts.get(key, (0.0, 0))
            if expires < now:
                expires, count = now + ttl, 0
            _local_counts[key] = (expires, count + 1)
            counts.append(count + 1)
    return counts


def _count(hits: list[tuple[str, int]]) -> list[int]:
    """Count one request against each key; Redis in one round trip, or the
    per-process fallback while Redis is failing (arena/redis_guard.py)."""
    server = redis_guard.cache_server()
    counter = _count_in_redis if server is not None else _count_in_cache
    return redis_guard.call(server, lambda: counter(hits), lambda: _count_in_memory(hits), "rate-limit cache")


def check_rate(action: str, request, voter: Voter) -> None:
    """Enforce ARENA_RATE_LIMITS[action] for this voter and this address.

    Raises RateLimited (429 with Retry-After). Staff are not limited. All
    limits of the request are counted in one Redis round trip; while Redis
    fails they are counted per process in memory (docs/VOTES.md).
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return
    limits = settings.ARENA_RATE_LIMITS.get(action, {})
    subjects = {"voter": voter.key, "address": request_address_hash(request)}
    now = time.time()
    checks = []
    for scope, subject in subjects.items():
        rate = Rate.parse(limits.get(scope))
        if rate is not None:
            checks.append((scope, rate, f"arena:rl:{action}:{scope}:{subject}:{_window(rate, now)}"))
    if not checks:
        return
    counts = _count([(key, rate.seconds + 5) for _, rate, key in checks])
    for (scope, rate, _), count in zip(checks, counts, strict=True):
        if count > rate.count:
            wait = max(1, math.ceil((_window(rate, now) + 1) * rate.seconds - now))
            who = "this browser session" if scope == "voter" else "your network address"
            raise RateLimited(
                f"too many {action} requests from {who}: at most {rate.count} per "
                f"{_span(rate.seconds)}; try again in {wait} s",
                retry_after=wait,
            )


def _span(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} s"


# --- CSRF ---------------------------------------------------------------------


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def enforce_csrf(request) -> None:
    """Voters identified by their session cookie must prove the request came
    from our page (Django's CSRF token), signed in or not. DRF only checks
    this for signed-in users; an anonymous voter's cookie is just as
    forgeable. Requests with an API token carry no ambient credential and
    are exempt."""
    django_request = getattr(request, "_request", request)
    auth = getattr(request, "successful_authenticator", None)
    if isinstance(auth, TokenAuthentication):
        return
    check = _CsrfCheck(lambda _request: None)
    check.process_request(django_request)
    reason = check.process_view(django_request, None, (), {})
    if reason:
        raise exceptions.PermissionDenied(f"CSRF check failed: {reason}")


# --- Idempotency-Key ----------------------------------------------------------

IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"
PENDING = 0  # status_code of a record whose request is still being processed
PENDING_TTL_SECONDS = 60  # a pending record this old belongs to a process that died


def idempotency_key(request) -> str | None:
    key = request.META.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200 or not key.isascii() or not key.isprintable():
        raise ArenaError("Idempotency-Key must be 1 to 200 printable ASCII characters")
    return key


def _request_hash(request, body: dict) -> str:
    blob = json.dumps([request.method, request.path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def idempotent(request, voter: Voter, body: dict, handle: Callable[[], tuple[int, dict]]) -> tuple[int, dict, bool]:
    """Run ``handle`` once per (voter, Idempotency-Key), in one transaction
    with the key's record.

    Returns (status, body, replayed). The key's record, the write ``handle``
    makes and the answer it returns commit together or not at all: a vote is
    never stored without the answer a retry will replay, and an answer is
    never stored for a vote that was rolled back. ``handle`` must compute its
    whole answer inside (no lazy reads after the commit).

    A retry gets the stored answer (also a stored 4xx); a retry that arrives
    while the first is still running waits for it on the key's unique index
    and then gets its answer; the same key with a different body gets 422. A
    request that fails unexpectedly (a database outage, a 429) stores
    nothing, so the client's retry runs it again.
    """
    key = idempotency_key(request)
    if key is None:
        # No record to keep: ``handle`` is the transaction (its own atomic
        # block; another one around it would only add a savepoint's two round trips).
        status, payload = handle()
        return status, payload, False
    digest = _request_hash(request, body)
    for _attempt in range(3):
        with transaction.atomic():
            try:
                with transaction.atomic():  # a savepoint: a lost race leaves the outer transaction usable
                    record = IdempotencyRecord.objects.create(
                        voter=voter, key=key, request_hash=digest, status_code=PENDING, body={}
                    )
            except IntegrityError:
                stored = _stored_answer(voter, key, digest)
                if stored is None:
                    continue  # a stale pending record was just released: claim again
                return stored[0], stored[1], True
            try:
                with transaction.atomic():
                    status, payload = handle()
            except ArenaError as exc:
                if exc.status == 429:  # "not now" is no answer to keep: the retry may pass
                    raise
                status, payload = exc.status, {"error": exc.code, "detail": exc.message}
            IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=status, body=payload)
        return status, payload, False
    raise IdempotencyInProgress("a request with this Idempotency-Key is still being processed")


def _stored_answer(voter: Voter, key: str, digest: str) -> tuple[int, dict] | None:
    """The answer stored under a key another request holds; None once a
    stale pending record (written by an older release, which claimed keys
    in a transaction of their own) has been released."""
    stored = IdempotencyRecord.objects.filter(voter=voter, key=key).first()
    if stored is None:
        return None
    if stored.request_hash != digest:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
    if stored.status_code != PENDING:
        return stored.status_code, stored.body
    if timezone.now() - stored.created_at < timedelta(seconds=PENDING_TTL_SECONDS):
        raise IdempotencyInProgress("a request with this Idempotency-Key is still being processed")
    IdempotencyRecord.objects.filter(pk=stored.pk, status_code=PENDING).delete()
    return None
