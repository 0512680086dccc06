"""Full recompute of every leaderboard view on 1,000,000 votes × 200 models in
PostgreSQL, and the leaderboard endpoint's latency while votes arrive.

    .venv/bin/python bench/bench_recompute.py [--votes 1000000] [--models 200]
        [--database postgres://postgres@127.0.0.1:5432/arena_bench]

Creates (and drops at the end) a scratch database, loads votes with
PostgreSQL COPY (bulk insert; per-vote features as the vote path stores
them), times `ratings.services.recompute_publish` end to end (--runs times;
the verdict takes the median), then serves the app with gunicorn (two sync
workers, persistent database connections) and measures GET
/api/v1/leaderboard/ while a writer process records votes through the ORM.
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


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    os.environ.setdefault("DEBUG", "true")  # a development run: DEBUG is off unless set
    os.environ.setdefault("ARENA_VAR_DIR", "/tmp/arena-bench-var")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def load_votes(n_votes: int, n_models: int, seed: int) -> float:
    from django.db import connection

    from arena.models import ArenaModel, Voter
    from votes.models import STYLE_FIELDS

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
    cols = (
        "voter_id, model_a_id, model_b_id, winner, created_at, source, language, is_code, prompt_tokens, "
        "turns, excluded, exclusion_reason, " + ", ".join(STYLE_FIELDS)
    )
    # Plain lists: indexing numpy scalars row by row is several times slower.
    voter, ma, mb = voter.tolist(), ids[a].tolist(), ids[b].tolist()
    winner, lang, code = winner.tolist(), lang.tolist(), ["t" if c else "f" for c in code.tolist()]
    ptok, turns = ptok.tolist(), turns.tolist()
    style_txt = ["\t".join(map(str, row)) for row in style.tolist()]
    with connection.cursor() as cur:
        raw = cur.connection
        with raw.cursor() as c, c.copy(f"COPY votes_vote ({cols}) FROM STDIN") as copy:
            chunk = 100_000
            for s in range(0, n_votes, chunk):
                buf = io.StringIO()
                for k in range(s, min(s + chunk, n_votes)):
                    buf.write(
                        f"{voter[k]}\t{ma[k]}\t{mb[k]}\t{winner[k]}\t2026-01-01 00:00:00+00\timport\t"
                        f"{lang[k]}\t{code[k]}\t{ptok[k]}\t{turns[k]}\tf\t\t{style_txt[k]}\n"
                    )
                copy.write(buf.getvalue())
        raw.commit()
    with connection.cursor() as cur:
        cur.execute("ANALYZE votes_vote")
    return time.perf_counter() - started


def latency(url: str, port: int, requests: int) -> dict:
    """Median time of GET /api/v1/leaderboard/ from a keep-alive client (stdlib
    http.client, the least client overhead) while a writer records votes."""
    import http.client

    env = dict(
        os.environ,
        DATABASE_URL=url,
        DEBUG="false",
        SECRET_KEY="bench-only-secret-key-0123456789",
        ALLOWED_HOSTS="127.0.0.1",
        DB_CONN_MAX_AGE="600",
        LOG_LEVEL="WARNING",
    )
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "arena.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    writer = subprocess.Popen(
        [sys.executable, __file__, "--writer", "--database", url], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(headers: dict | None = None) -> tuple[float, int, str]:
        t = time.perf_counter()
        conn.request("GET", "/api/v1/leaderboard/", headers=headers or {})
        response = conn.getresponse()
        response.read()
        return (time.perf_counter() - t) * 1000, response.status, response.getheader("ETag") or ""

    try:
        assert writer.stdout.readline().strip() == "writing", "the vote writer did not start"
        for _ in range(150):
            try:
                if get()[1] == 200:
                    break
            except OSError:
                conn.close()
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not answer within 30 s")
        for _ in range(20):  # warm up both workers
            get()
        times, statuses = [], set()
        for _ in range(requests):
            ms, code, etag = get()
            times.append(ms)
            statuses.add(code)
        assert statuses == {200}, statuses
        revalidate = [get({"If-None-Match": etag})[0] for _ in range(requests // 2)]
    finally:
        conn.close()
        writer.terminate()
        out, _ = writer.communicate(timeout=30)
        web.terminate()
        web.wait(timeout=30)
    written = int(out.strip().splitlines()[-1]) if out.strip() else 0
    return {
        "median": statistics.median(times),
        "p95": float(np.percentile(times, 95)),
        "median_304": statistics.median(revalidate),
        "votes_written": written,
    }


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
    print("writing", flush=True)
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
    ap.add_argument("--runs", type=int, default=3, help="recomputes to time (default 3)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--reuse", action="store_true", help="use the votes a --keep run left in the database")
    ap.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.writer:
        writer(args.database)
        return 0
    if not args.reuse:
        recreate(args.database)
    try:
        setup_django(args.database)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(
            f"# recompute benchmark: {args.votes:,} votes × {args.models} models, PostgreSQL, "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start"
        )
        if args.reuse:
            from votes.models import Vote

            print(f"reusing {Vote.objects.count():,} stored votes")
        else:
            load_s = load_votes(args.votes, args.models, args.seed)
            print(f"loaded {args.votes:,} votes with COPY in {load_s:.1f} s")
        from ratings.services import recompute_publish

        runs, cpu = [], []
        for _ in range(args.runs):
            t, c = time.perf_counter(), time.process_time()
            snap = recompute_publish(force=True)
            runs.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        views = list(snap.views.values_list("key", "style_control", "vote_count"))
        print(f"  views: {json.dumps(views)}")
        print(
            f"  recompute runs: {', '.join(f'{r:.2f} s' for r in runs)} "
            f"(CPU of this process, the rest is PostgreSQL or waiting: {', '.join(f'{c:.2f} s' for c in cpu)})"
        )
        lat = latency(args.database, args.port, args.requests)
        print(f"  {lat['votes_written']:,} votes written during the {args.requests} leaderboard requests")
        recompute = statistics.median(runs)
        rows = [
            ("full recompute, all views, sandwich (median)", f"{recompute:.2f} s", "< 10 s", recompute < 10),
            (
                "GET /api/v1/leaderboard/ median, votes arriving",
                f"{lat['median']:.2f} ms",
                "< 10 ms",
                lat["median"] < 10,
            ),
            ("  p95", f"{lat['p95']:.2f} ms", "", None),
            ("  revalidation (If-None-Match, 304) median", f"{lat['median_304']:.2f} ms", "", None),
        ]
        print(f"{'figure':50} {'measured':>10} {'target':>8}")
        for name, value, target, ok in rows:
            verdict = "" if ok is None else ("PASS" if ok else "FAIL")
            print(f"{name:50} {value:>10} {target:>8}  {verdict}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop(args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
