"""The two operator roles, as Django groups kept in step with the code by a
post_migrate handler (so a fresh database, a test database and every
deployment after ``migrate`` have them):

- ``moderator``: votes and voters — read votes, battles, exclusion events and
  voter scores; exclude / reinstate votes, flag / unflag and ban / unban
  voters. Nothing else: no models, snapshots, recomputes, users or groups.
- ``admin``: every permission of the project.

Staff accounts join a group; they also need ``is_staff`` to log in to the
admin. Permissions added by hand to a group are kept; those listed here are
(re)added at every migrate.
"""

from __future__ import annotations

from django.apps import apps as global_apps

MODERATOR = "moderator"
ADMIN = "admin"

MODERATOR_PERMISSIONS = {
    "votes": ["view_vote", "change_vote", "view_voteexclusionevent", "view_voterflag", "change_voterflag"],
    "arena": ["view_voter", "change_voter", "view_battle"],
}


def ensure_roles(sender=None, *, apps=global_apps, using: str = "default", verbosity: int = 1, **kwargs) -> None:
    """post_migrate handler (connected for the arena app): create both groups
    and give them their permissions. Harmless to run any number of times."""
    from django.contrib.auth.management import create_permissions

    # Other apps' permissions are created by their own post_migrate signal,
    # which may come after arena's: create them now (idempotent).
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    moderator, _ = Group.objects.using(using).get_or_create(name=MODERATOR)
    for app_label, codenames in MODERATOR_PERMISSIONS.items():
        wanted = Permission.objects.using(using).filter(content_type__app_label=app_label, codename__in=codenames)
        moderator.permissions.add(*wanted)

    admin, _ = Group.objects.using(using).get_or_create(name=ADMIN)
    admin.permissions.add(*Permission.objects.using(using).all())
