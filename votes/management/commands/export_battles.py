"""``python manage.py export_battles [--output FILE]``: votes as clean_battle JSONL."""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from votes.exporters import export_chunks


class Command(BaseCommand):
    help = (
        "Write the counted votes as LMArena clean_battle JSON Lines (voters as keyed pseudonyms). "
        "Readable by rate_battles and import_battles."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
        parser.add_argument(
            "--include-excluded", action="store_true", help="also excluded votes, with exclusion_reason"
        )

    def handle(self, *args, **opts):
        path = opts["output"]
        chunks = export_chunks(include_excluded=opts["include_excluded"])
        if path == "-":
            try:
                for chunk in chunks:
                    self.stdout.write(chunk.decode(), ending="")
                self.stdout.flush()
            except BrokenPipeError:  # `export_battles | head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                chunks.close()
            return
        tmp = f"{path}.partial"
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, path)  # a crashed export never leaves a truncated file under the real name
        except OSError as exc:
            raise CommandError(f"{path}: cannot write ({exc.strerror or exc})") from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
