"""Who and where a change comes from, for the audit log, without threading `request`
through every service. Set by the request middleware and by the operation task base."""

import contextvars
import uuid
from contextlib import contextmanager

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def bound(*, request_id: str = "", client_ip: str | None = None):
    rid = request_id_var.set(request_id)
    ip = client_ip_var.set(client_ip)
    try:
        yield
    finally:
        request_id_var.reset(rid)
        client_ip_var.reset(ip)
