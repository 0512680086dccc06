#!/usr/bin/env python
"""Django's command-line utility for Arena."""

import os
import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "rate_battles":
        # The rating core needs neither Django nor a database; skipping
        # Django's start-up makes a million-battle file several times faster.
        from ratings.cli import main as rate_battles

        sys.exit(rate_battles(sys.argv[2:]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
