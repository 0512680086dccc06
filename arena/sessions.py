"""Sessions in the signed cookie, with the sessions of earlier releases kept.

The default SESSION_ENGINE (arena/project/settings.py): Django's signed-cookie
sessions (no database read per request, issue #14), except that a cookie
holding a database session's key (what earlier releases set: 32 letters and
digits, no signature) is looked up in the session table once and carried
over into a signed cookie. So a voter keeps their voter, history and
personal board across the upgrade instead of starting over.
"""

from __future__ import annotations

import re

from django.contrib.sessions.backends import db, signed_cookies

_DATABASE_KEY = re.compile(r"[a-z0-9]{32}")


class SessionStore(signed_cookies.SessionStore):
    def load(self):
        key = self.session_key
        if key and _DATABASE_KEY.fullmatch(key):
            data = db.SessionStore(session_key=key).load()
            if data:
                self.modified = True  # answered with the signed cookie that replaces it
                return data
        return super().load()
