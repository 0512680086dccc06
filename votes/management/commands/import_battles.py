"""``python manage.py import_battles FILE [FILE…]``: battle files into votes.

See votes/importers.py for the formats and docs/VOTES.md for the dedupe key.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from arena.models import ArenaModel
from votes.importers import BAD_ROWS_SHOWN, ImportFailed, import_files


class Command(BaseCommand):
    help = (
        "Import LMArena clean_battle JSON/JSONL, MT-bench human judgments, arena-human-preference CSV or "
        "model_a,model_b,winner CSV files as votes. Re-importing a file adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument(
            "--skip-bad-rows", action="store_true",
            help="skip malformed rows (listed on stderr) instead of importing nothing",
        )  # fmt: skip
        parser.add_argument(
            "--status", choices=ArenaModel.Status.values, default=ArenaModel.Status.DEPRECATED,
            help="status of models this import creates (default: deprecated, so they are never sampled)",
        )  # fmt: skip
        parser.add_argument(
            "--namespace", default="",
            help="mixed into every dedupe key: import a second file whose rows have no ids as independent votes",
        )  # fmt: skip
        parser.add_argument("--batch-size", type=int, default=20_000)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    def handle(self, *args, **opts):
        if opts["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        shown = []

        def on_bad_row(bad):
            if opts["skip_bad_rows"] and len(shown) < BAD_ROWS_SHOWN:
                shown.append(bad)
                self.stderr.write(f"skipped {bad}")

        try:
            stats = import_files(
                opts["files"],
                skip_bad_rows=opts["skip_bad_rows"],
                status=opts["status"],
                namespace=opts["namespace"],
                batch_size=opts["batch_size"],
                progress=False if opts["no_progress"] else None,
                progress_stream=self.stderr._out,  # the raw stream: OutputWrapper would end each redraw with "\n"
                on_bad_row=on_bad_row,
            )
        except ImportFailed as exc:
            raise CommandError(str(exc)) from None
        if stats.bad_count > len(shown):
            self.stderr.write(f"skipped {stats.bad_count - len(shown)} more bad row(s)")
        excluded = ", ".join(f"{n} {reason}" for reason, n in sorted(stats.excluded.items())) or "none"
        created = len(stats.models_created)
        self.stdout.write(
            f"read {stats.rows:,} votes from {stats.files} file(s) in {stats.seconds:.2f} s "
            f"({stats.rate:,.0f} votes/s): {stats.added:,} added, {stats.already_present:,} already present; "
            f"rows excluded on arrival: {excluded}; bad rows skipped: {stats.bad_count}; "
            f"models created: {created}{' (' + opts['status'] + ')' if created else ''}; "
            f"voters created: {stats.voters_created}"
        )
