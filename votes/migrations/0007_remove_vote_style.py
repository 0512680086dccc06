"""The JSON style list is now in the eight style columns (0005, 0006)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("votes", "0006_copy_vote_style_to_columns"),
    ]

    operations = [
        migrations.RemoveField(model_name="vote", name="style"),
    ]
