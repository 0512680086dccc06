#!/usr/bin/env python3
"""How long arena.rendering takes on real answers: every turn of every answer
in an MT-bench-layout directory (FastChat llm_judge: question.jsonl +
model_answer/*.jsonl), plus how many contain code fences, math and tables.

    .venv/bin/python bench/bench_render.py [DIR] [--repeat 3]

DIR defaults to ../shared/data/answers/mt_bench (from the main checkout). No
database, no Django.
Prints per-answer-turn median/p99/max in milliseconds and the total, then the
time for a few hostile shapes (openers without closers, a long code block).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena.rendering import _render

# Time the rendering itself, not the page's cache of rendered texts.
render_markdown = _render.__wrapped__


HIGHLIGHTED = '<pre class="highlight"><code class='


def texts(root: Path) -> list[str]:
    out = [t for line in (root / "question.jsonl").read_text().splitlines() if line.strip()
           for t in json.loads(line)["turns"]]  # fmt: skip
    for path in sorted((root / "model_answer").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                for choice in json.loads(line)["choices"][:1]:
                    out.extend(t for t in choice["turns"] if isinstance(t, str))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", nargs="?", default="../shared/data/answers/mt_bench")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    items = texts(Path(args.dir))
    times: list[float] = []
    html_out = []
    for _ in range(args.repeat):
        html_out = []
        for text in items:
            start = time.perf_counter()
            html_out.append(render_markdown(text))
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(
        f"texts: {len(items)} (prompts and answer turns), {sum(map(len, items)) / 1e6:.1f} MB of markdown, "
        f"repeat {args.repeat}"
    )

    def count(needle: str) -> int:
        return sum(needle in h for h in html_out)

    print(
        f"with highlighted code: {count(HIGHLIGHTED)}, "
        f"with MathML: {count('<math ')}, with a formula shown as source: {count('math-error')}, "
        f"with a table: {count('<table>')}, with a line break: {count('<br />')}"
    )
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"per text: median {statistics.median(times):.2f} ms, p99 {p99:.2f} ms, max {times[-1]:.1f} ms; "
        f"total per pass {sum(times) / args.repeat / 1000:.2f} s"
    )

    # Hostile shapes: every opener without a closer (each search for an end is
    # bounded, and prose dollars are classified once per paragraph).
    for name, text in (
        ("prose dollars", "$a " * 10000),
        ("\\( openers", "\\(a " * 10000),
        ("$$ lines", "$$a\n" + "b\n" * 20000),
        ("long fence", "```python\n" + "x = 1\n" * 15000 + "```"),
    ):
        start = time.perf_counter()
        render_markdown(text)
        print(f"{name} ({len(text) // 1000} kB): {(time.perf_counter() - start) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
