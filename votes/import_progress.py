"""The import's progress bar: a bar on a terminal, a line every 10 s otherwise, or nothing."""

from __future__ import annotations

import sys
import time


class Progress:
    """A progress bar on a terminal; a line every 10 s otherwise; or nothing."""

    def __init__(self, total_bytes: int, stream=None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.total = max(1, total_bytes)
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = tty if enabled is None else enabled
        self.tty = tty
        self.started = time.perf_counter()
        self.last = 0.0

    def update(self, done_bytes: int, rows: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = now
        frac = min(1.0, done_bytes / self.total)
        rate = rows / max(now - self.started, 1e-9)
        if self.tty:
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r[{bar:<30}] {frac:4.0%} {rows:>10,} rows {rate:>9,.0f}/s")
        else:
            self.stream.write(f"import: {frac:4.0%} {rows:,} rows {rate:,.0f}/s\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
