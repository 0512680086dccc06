"""The eight style counts as integer columns beside the JSON list they replace
(copied by 0006, the list dropped by 0007)."""

from django.db import migrations, models

STYLE_FIELDS = [f"style_{side}_{feature}" for side in "ab" for feature in ("tokens", "headers", "list_items", "bold")]


class Migration(migrations.Migration):
    dependencies = [
        ("votes", "0004_vote_slimmer_indexes_for_bulk_import"),
    ]

    operations = [
        *[
            migrations.AddField(
                model_name="vote",
                name=name,
                field=models.PositiveIntegerField(blank=True, null=True),
            )
            for name in STYLE_FIELDS
        ],
        migrations.AddConstraint(
            model_name="vote",
            constraint=models.CheckConstraint(
                condition=models.Q(**{f"{name}__isnull": True for name in STYLE_FIELDS})
                | models.Q(**{f"{name}__isnull": False for name in STYLE_FIELDS}),
                name="votes_vote_style_all_or_none",
            ),
        ),
    ]
