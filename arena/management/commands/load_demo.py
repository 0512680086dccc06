import json
from pathlib import Path

from django.core.management.base import BaseCommand

from arena.answer_sets import load_answer_set
from arena.models import ArenaModel

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"


class Command(BaseCommand):
    help = "Load the committed demo arena (five fictional models, a dozen prompts). Idempotent."

    def handle(self, **opts):
        meta = {m["name"]: m for m in json.loads((DEMO_DIR / "models.json").read_text())}
        s = load_answer_set(DEMO_DIR, name="demo", model_meta=meta)
        # Fill in metadata for demo models created before (e.g. by an import) without overwriting edits.
        for name, info in meta.items():
            ArenaModel.objects.filter(name=name, organization="").update(
                organization=info.get("organization", ""),
                display_name=info.get("display_name", ""),
                license=info.get("license", ""),
            )
        if opts.get("verbosity", 1):
            self.stdout.write(
                f"demo arena: {len(s.models)} models, {s.questions_created} questions and "
                f"{s.answers_created} answers added ({s.answers_skipped} already present)"
            )
