"""Full recompute of every leaderboard view on 1,000,000 votes × 200 models in
PostgreSQL, and the leaderboard endpoint's latency while votes arrive.

    .venv/bin/python bench/bench_recompute.py [--votes 1000000] [--models 200]
        [--database postgres://postgres@127.0.0.1:5432/arena_bench]

Creates (and drops at the end) a scratch database, loads votes with
PostgreSQL COPY (bulk insert; per-vote features as the vote path stores
them), times `ratings.services.recompute_publish` end to end, then serves the
app with `manage.py runserver` and measures GET /api/v1/leaderboard/ while a
writer process records votes through the ORM.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def admin_url(url: str) -> str:
    p = urlparse(url)
    return p._replace(path="/postgres").geturl()


def recreate(url: str) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop(url: str) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def quiet_http_logs() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    os.environ.setdefault("ARENA_VAR_DIR", "/tmp/arena-bench-var")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def load_votes(n_votes: int, n_models: int, seed: int) -> float:
    from django.db import connection

    from arena.models import ArenaModel, Voter

    ArenaModel.objects.bulk_create(
        [ArenaModel(name=f"model-{i:03d}", organization=f"org-{i % 17}", license="MIT") for i in range(n_models)]
    )
    ids = np.array(list(ArenaModel.objects.order_by("name").values_list("id", flat=True)))
    voters = Voter.objects.bulk_create([Voter(key=f"bench-{i}") for i in range(1000)])
    voter_ids = np.array([v.id for v in voters])
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, n_models)
    pop = rng.lognormal(0, 0.7, n_models)
    pop /= pop.sum()
    a = rng.choice(n_models, n_votes, p=pop)
    b = rng.choice(n_models, n_votes, p=pop)
    clash = a == b
    b[clash] = (b[clash] + 1) % n_models
    p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    u = rng.random(n_votes)
    winner = np.where(u < 0.25, "tie", np.where(u < 0.3, "both_bad", np.where(rng.random(n_votes) < p, "a", "b")))
    lang = rng.choice(["en", "en", "en", "zh", "de", "fr", ""], n_votes)
    code = rng.random(n_votes) < 0.2
    ptok = rng.integers(5, 900, n_votes)
    turns = np.where(rng.random(n_votes) < 0.15, 2, 1)
    style = rng.integers(0, 600, (n_votes, 8))
    style[:, 1:4] = rng.integers(0, 8, (n_votes, 3))
    style[:, 5:8] = rng.integers(0, 8, (n_votes, 3))
    voter = rng.choice(voter_ids, n_votes)
    started = time.perf_counter()
    cols = ("voter_id, model_a_id, model_b_id, winner, created_at, source, language, is_code, prompt_tokens, "
            "turns, style, excluded, exclusion_reason")
    # Plain lists: indexing numpy scalars row by row is several times slower.
    voter, ma, mb = voter.tolist(), ids[a].tolist(), ids[b].tolist()
    winner, lang, code = winner.tolist(), lang.tolist(), ["t" if c else "f" for c in code.tolist()]
    ptok, turns = ptok.tolist(), turns.tolist()
    style_txt = ["[" + ",".join(map(str, row)) + "]" for row in style.tolist()]
    with connection.cursor() as cur:
        raw = cur.connection
        with raw.cursor() as c, c.copy(f"COPY votes_vote ({cols}) FROM STDIN") as copy:
            chunk = 100_000
            for s in range(0, n_votes, chunk):
                buf = io.StringIO()
                for k in range(s, min(s + chunk, n_votes)):
                    buf.write(
                        f"{voter[k]}\t{ma[k]}\t{mb[k]}\t{winner[k]}\t2026-01-01 00:00:00+00\timport\t"
                        f"{lang[k]}\t{code[k]}\t{ptok[k]}\t{turns[k]}\t{style_txt[k]}\tf\t\n"
                    )
                copy.write(buf.getvalue())
        raw.commit()
    with connection.cursor() as cur:
        cur.execute("ANALYZE votes_vote")
    return time.perf_counter() - started


def latency(url: str, port: int, requests: int) -> dict:
    import httpx

    quiet_http_logs()
    env = dict(os.environ, DATABASE_URL=url, DEBUG="false", SECRET_KEY="bench-only-secret-key-0123456789",
               ALLOWED_HOSTS="127.0.0.1")
    web = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=ROOT,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writer = subprocess.Popen([sys.executable, __file__, "--writer", "--database", url], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    if client.get("/api/v1/leaderboard/").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            for _ in range(20):  # warm up
                client.get("/api/v1/leaderboard/")
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                r = client.get("/api/v1/leaderboard/")
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
            etag = r.headers["ETag"]
            revalidate = []
            for _ in range(requests // 2):
                t = time.perf_counter()
                r = client.get("/api/v1/leaderboard/", headers={"If-None-Match": etag})
                revalidate.append((time.perf_counter() - t) * 1000)
    finally:
        writer.terminate()
        out, _ = writer.communicate(timeout=30)
        web.terminate()
        web.wait(timeout=30)
    written = int(out.strip().splitlines()[-1]) if out.strip() else 0
    return {"median": statistics.median(times), "p95": float(np.percentile(times, 95)),
            "median_304": statistics.median(revalidate), "votes_written": written}


def writer(url: str) -> None:
    """Record votes through the ORM, as the vote path does, until terminated."""
    import signal

    setup_django(url)
    from arena.models import ArenaModel, Voter
    from votes.models import Vote
    from votes.services import text_features

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    models = list(ArenaModel.objects.all()[:20])
    voter = Voter.objects.first()
    n = 0
    while not stop["now"]:
        a, b = models[n % 20], models[(n + 1) % 20]
        Vote.objects.create(voter=voter, model_a=a, model_b=b, winner="a", **text_features("hello", ["x"], ["y"]))
        n += 1
    print(n, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--votes", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/arena_bench")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.writer:
        writer(args.database)
        return 0
    recreate(args.database)
    try:
        setup_django(args.database)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"# recompute benchmark: {args.votes:,} votes × {args.models} models, PostgreSQL, 2 cores")
        load_s = load_votes(args.votes, args.models, args.seed)
        print(f"loaded {args.votes:,} votes with COPY in {load_s:.1f} s")
        from ratings.services import recompute_publish

        runs = []
        for _ in range(2):
            t = time.perf_counter()
            snap = recompute_publish(force=True)
            runs.append(time.perf_counter() - t)
        views = list(snap.views.values_list("key", "style_control", "vote_count"))
        verdict = "PASS" if min(runs) < 10 else "FAIL"
        print(f"full recompute, all views, sandwich: {runs[0]:.2f} s, {runs[1]:.2f} s   target < 10 s  {verdict}")
        print(f"  views: {json.dumps(views)}")
        lat = latency(args.database, args.port, args.requests)
        verdict = "PASS" if lat["median"] < 10 else "FAIL"
        print(f"GET /api/v1/leaderboard/ while votes arrive ({lat['votes_written']:,} votes written meanwhile): "
              f"median {lat['median']:.2f} ms, p95 {lat['p95']:.2f} ms   target median < 10 ms  {verdict}")
        print(f"  revalidation with If-None-Match (304): median {lat['median_304']:.2f} ms")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop(args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
