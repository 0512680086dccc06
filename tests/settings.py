"""Settings of the test suite: the project's (arena/project/settings.py) in
development mode unless the environment says otherwise.

DEBUG is off unless set, and an unset DEBUG with no SECRET_KEY refuses to
start; the suite runs as a development checkout does (`make run` sets
DEBUG=true). Set in the environment, not only here, so the worker and server
processes the tests start inherit it; a test that starts a production-mode
server sets DEBUG=false and a SECRET_KEY for it. (pytest-django still runs
each test with settings.DEBUG False.)
"""

import os

os.environ.setdefault("DEBUG", "true")

from arena.project.settings import *  # noqa: F403 - every project setting, after DEBUG is chosen
