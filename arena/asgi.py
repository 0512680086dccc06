import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")

from arena.asgi_handler import get_asgi_application  # noqa: E402 - after the settings module is chosen

application = get_asgi_application()
