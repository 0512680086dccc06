import sys

from django.core.management.base import BaseCommand, CommandError

from arena.answer_sets import AnswerSetError, load_answer_set


class Command(BaseCommand):
    help = "Load pre-generated answers (FastChat llm_judge layout: question.jsonl + model_answer/*.jsonl)."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--name", help="answer set name (default: the directory name)")
        parser.add_argument(
            "--models",
            metavar="FILE",
            help='model metadata, one JSON object a line: {"name", "organization", "license", "url"} '
            "(default: DIRECTORY/model_info.jsonl when present)",
        )

    def handle(self, directory, name=None, models=None, **opts):
        err = self.stderr

        def progress(done: int, total: int) -> None:
            if opts.get("verbosity", 1) < 1:
                return
            width = 30
            filled = int(width * done / max(total, 1))
            err.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} answers", ending="")
            if done == total:
                err.write("")
            sys.stderr.flush()

        try:
            s = load_answer_set(directory, name=name, models_file=models, progress=progress)
        except AnswerSetError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"answer set {s.answer_set}: {s.questions_created} questions added, {s.answers_created} answers added, "
            f"{s.answers_skipped} already present; {len(s.models)} models"
            + (f" ({len(s.models_created)} new: {', '.join(s.models_created)})" if s.models_created else "")
        )
        if s.info_file:
            self.stdout.write(
                f"model info {s.info_file}: {len(s.models_updated)} models updated"
                + (f"; not registered, ignored: {', '.join(s.info_unknown)}" if s.info_unknown else "")
            )
