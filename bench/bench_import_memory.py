#!/usr/bin/env python3
"""Peak memory of ``import_battles`` and ``rate_battles`` on a 3,000,000-row file.

    .venv/bin/python bench/bench_import_memory.py [--rows 3000000] [--database postgres://…/arena_import_memory]
                                                  [--old REV]

Generates a clean_battle JSONL of ``--rows`` battles (bench/gen_battles.py,
200 models, written to /tmp once and reused), creates the scratch PostgreSQL
database (dropped at the end; bench_recompute's helpers), migrates it, and runs
each command as its own process, reading its peak resident set size from the
kernel (``wait4``'s ru_maxrss):

1. ``import_battles FILE`` into the empty database, then the same file again
   (every key already stored: the dedupe path);
2. ``rate_battles FILE`` (BT, sandwich), and ``--method elo`` (which keeps
   one entry per battle);
3. with ``--old REV`` (e.g. 9caa6f8, the code before the shared reader), the
   same with that revision's code, exported by ``git archive`` to /tmp.

Also prints the import's wall time and the file size. The target is a flat
peak under 500 MiB for the import. The machine is shared: times vary, peaks much less.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_recompute import ROOT, drop, recreate

PY = str(ROOT / ".venv" / "bin" / "python")


def generated_file(n: int) -> str:
    path = f"/tmp/arena-bench-{n}-battles.jsonl"
    if not os.path.exists(path):
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "gen_battles.py"), "--battles", str(n), "--models", "200",
             "--format", "jsonl", "--out", path],
            check=True,
        )  # fmt: skip
    return path


def peak(cmd: list[str], cwd: str, env: dict) -> tuple[float, float, str]:
    """(peak RSS in MiB, wall seconds, last line of output) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-2000:]}")
    return usage.ru_maxrss / 1024, seconds, (out.strip().splitlines() or [""])[-1]


def measure(code_dir: str, label: str, path: str, database: str) -> None:
    env = {**os.environ, "DATABASE_URL": database, "ARENA_VAR_DIR": tempfile.mkdtemp(prefix="arena-mem-"),
           "DJANGO_SETTINGS_MODULE": "arena.settings"}  # fmt: skip
    # A development run, as the figures were measured (DEBUG is off unless set,
    # and then the commands refuse the development SECRET_KEY).
    env.setdefault("DEBUG", "true")
    env.pop("REDIS_URL", None)  # no broker: the import's recompute request goes to the filesystem broker
    env.pop("REDIS_CACHE_URL", None)
    recreate(database)
    try:
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=code_dir, env=env, check=True)
        print(f"{label}:", flush=True)
        for what in ("import_battles (empty database)", "import_battles (again: all present)"):
            mib, secs, last = peak([PY, "manage.py", "import_battles", path, "--no-progress"], code_dir, env)
            print(f"  {what:<38} peak {mib:7.0f} MiB  {secs:7.1f} s   {last[:110]}", flush=True)
        for extra in ([], ["--method", "elo"]):
            mib, secs, _ = peak([PY, "manage.py", "rate_battles", path, *extra], code_dir, env)
            print(f"  {'rate_battles ' + ' '.join(extra):<38} peak {mib:7.0f} MiB  {secs:7.1f} s", flush=True)
    finally:
        drop(database)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/arena_import_memory")
    ap.add_argument("--old", default=None, help="also measure this git revision's code (e.g. 9caa6f8)")
    ap.add_argument("--file", default=None, help="use this battle file instead of generating one")
    args = ap.parse_args(argv)
    path = args.file or generated_file(args.rows)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
          f"file {path}: {os.path.getsize(path) / 2**20:,.0f} MiB")  # fmt: skip
    measure(str(ROOT), "this checkout", path, args.database)
    if args.old:
        old = tempfile.mkdtemp(prefix="arena-old-")
        archive = subprocess.run(["git", "archive", args.old], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        measure(old, f"revision {args.old}", path, args.database)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
