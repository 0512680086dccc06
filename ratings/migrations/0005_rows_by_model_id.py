"""Snapshot rows name their model by id, and history reads RatingPoint.

Rows stored before held the model's name, organization, license and status;
this rewrites them to ``model_id`` (names joined at read time), and writes
the RatingPoint rows of every existing snapshot view. A row whose name is no
longer registered keeps its name: readers accept both forms
(ratings.selectors.row_model_id), and it gets no RatingPoint.

The backfilled ``rank`` is the stored rank for a row with at least
RATINGS_MIN_VOTES battles and no engine flag, else null (preliminary), as
the leaderboard ranks rows now; deprecated models are not re-ranked.
"""

from django.conf import settings
from django.db import migrations

REGISTRY_KEYS = ("model", "organization", "license", "status")


def _convert(rows: list[dict], ids: dict[str, int]) -> tuple[list[dict], bool]:
    out, changed = [], False
    for r in rows:
        if "model_id" not in r and r.get("model") in ids:
            r = {"model_id": ids[r["model"]], **{k: v for k, v in r.items() if k not in REGISTRY_KEYS}}
            changed = True
        out.append(r)
    return out, changed


def forwards(apps, schema_editor):
    ArenaModel = apps.get_model("arena", "ArenaModel")
    Snapshot = apps.get_model("ratings", "Snapshot")
    SnapshotView = apps.get_model("ratings", "SnapshotView")
    RatingPoint = apps.get_model("ratings", "RatingPoint")
    ids = dict(ArenaModel.objects.values_list("name", "id"))
    floor = int(settings.RATINGS_MIN_VOTES)

    for snap in Snapshot.objects.only("id", "rows").iterator(chunk_size=200):
        rows, changed = _convert(snap.rows, ids)
        if changed:
            Snapshot.objects.filter(id=snap.id).update(rows=rows)

    views = SnapshotView.objects.defer("pairs").select_related("snapshot").order_by("id")
    points = []
    for view in views.iterator(chunk_size=200):
        rows, changed = _convert(view.rows, ids)
        if changed:
            SnapshotView.objects.filter(id=view.id).update(rows=rows)
        for r in rows:
            if "model_id" not in r:
                continue
            settled = r["battles"] >= floor and not r.get("flags")
            points.append(RatingPoint(
                snapshot_id=view.snapshot_id, key=view.key, style_control=view.style_control, model_id=r["model_id"],
                rating=r["rating"], lower=r["lower"], upper=r["upper"], rank=r["rank"] if settled else None,
                battles=r["battles"], created_at=view.snapshot.created_at,
            ))  # fmt: skip
        if len(points) >= 5000:
            RatingPoint.objects.bulk_create(points, ignore_conflicts=True)
            points = []
    RatingPoint.objects.bulk_create(points, ignore_conflicts=True)


def backwards(apps, schema_editor):
    """Put the names (and today's registry details) back into the rows."""
    ArenaModel = apps.get_model("arena", "ArenaModel")
    Snapshot = apps.get_model("ratings", "Snapshot")
    SnapshotView = apps.get_model("ratings", "SnapshotView")
    info = {m.id: m for m in ArenaModel.objects.all()}

    def back(rows):
        out = []
        for r in rows:
            m = info.get(r.get("model_id"))
            if m is not None:
                r = {"model": m.name, "organization": m.organization, "license": m.license, "status": m.status,
                     **{k: v for k, v in r.items() if k != "model_id"}}  # fmt: skip
            out.append(r)
        return out

    for snap in Snapshot.objects.only("id", "rows").iterator(chunk_size=200):
        Snapshot.objects.filter(id=snap.id).update(rows=back(snap.rows))
    for view in SnapshotView.objects.only("id", "rows").iterator(chunk_size=200):
        SnapshotView.objects.filter(id=view.id).update(rows=back(view.rows))


class Migration(migrations.Migration):
    dependencies = [("ratings", "0004_rating_points"), ("arena", "0003_battle_streaming_since")]

    operations = [migrations.RunPython(forwards, backwards)]
