"""Strong ETags from a resource's representation, and If-Match checks."""

import hashlib
import json

from .errors import PreconditionFailed


def etag_of(data) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:32] + '"'


def check_if_match(header: str | None, current: str) -> None:
    """412 when the client's If-Match names none of the current representation."""
    if not header:
        return
    candidates = [tag.strip() for tag in header.split(",") if tag.strip()]
    if "*" in candidates:
        return
    # Weak tags (W/"…") compare by their opaque part, so a proxy's weakening is harmless.
    normalised = {tag[2:] if tag.startswith("W/") else tag for tag in candidates}
    if current not in normalised:
        raise PreconditionFailed()
