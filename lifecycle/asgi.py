import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lifecycle.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from lifecycle.asgi_body import BodyLimitMiddleware  # noqa: E402
from lifecycle.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Bodies are capped while read, and a chunked one gets its length (asgi_body.py).
        "http": BodyLimitMiddleware(django_asgi_app),
        # Auth (session or ?token=) and the Origin check are per consumer: the Origin
        # check applies to session connections only.
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)


def settle_garbage_collector() -> None:
    """The app is loaded: move what it loaded out of the collector's way, and collect the
    youngest objects less often. Each message makes thousands of short-lived objects,
    and full collections walking every loaded module were the console's latency tail
    (bench/ws.py: p99 251 ms before, 103 ms after, 200 sockets)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


settle_garbage_collector()
