"""The Django face of ``ratings.cli``: same options, same output.

manage.py runs ``ratings.cli`` directly (without starting Django) when the
first argument is rate_battles; this command serves ``call_command`` and
``django-admin``.
"""

from django.core.management.base import BaseCommand, CommandError

from ratings import cli


class Command(BaseCommand):
    help = cli.HELP
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **opts):
        picked = {k: opts[k] for k in vars(cli.build_parser().parse_args(["x"]))}
        try:
            cli.RateBattles().handle(**picked)
        except cli.CommandError as exc:
            raise CommandError(str(exc)) from None
