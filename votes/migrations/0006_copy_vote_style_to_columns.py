"""Copy each vote's style list ([tokens, headers, list_items, bold] of side a,
then of side b) into the eight columns. A list that is not eight
non-negative 4-byte integers stays unknown (all NULL), as the recompute
ignored it before."""

from django.db import migrations

STYLE_FIELDS = [f"style_{side}_{feature}" for side in "ab" for feature in ("tokens", "headers", "list_items", "bold")]
BATCH = 5000


def _valid(style) -> bool:
    return isinstance(style, list) and len(style) == 8 and all(type(v) is int and 0 <= v < 2**31 for v in style)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        columns = ", ".join(f"{name} = (style->>{k})::int" for k, name in enumerate(STYLE_FIELDS))
        # jsonb prints a list of integers as "[1, 2, …]"; nine digits stay below 2**31.
        schema_editor.execute(
            f"UPDATE votes_vote SET {columns} WHERE style::text ~ '^\\[[0-9]{{1,9}}(, [0-9]{{1,9}}){{7}}\\]$'"
        )
        return
    Vote = apps.get_model("votes", "Vote")
    batch = []
    for vote in Vote.objects.filter(style__isnull=False).only("id", "style").iterator(chunk_size=BATCH):
        if _valid(vote.style):
            for name, value in zip(STYLE_FIELDS, vote.style, strict=True):
                setattr(vote, name, value)
            batch.append(vote)
        if len(batch) >= BATCH:
            Vote.objects.bulk_update(batch, STYLE_FIELDS)
            batch = []
    Vote.objects.bulk_update(batch, STYLE_FIELDS)


def backwards(apps, schema_editor):
    Vote = apps.get_model("votes", "Vote")
    batch = []
    for vote in Vote.objects.exclude(style_a_tokens=None).only("id", *STYLE_FIELDS).iterator(chunk_size=BATCH):
        vote.style = [getattr(vote, name) for name in STYLE_FIELDS]
        batch.append(vote)
        if len(batch) >= BATCH:
            Vote.objects.bulk_update(batch, ["style"])
            batch = []
    Vote.objects.bulk_update(batch, ["style"])


class Migration(migrations.Migration):
    dependencies = [
        ("votes", "0005_vote_style_columns"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
