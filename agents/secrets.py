"""Secret values inside component specs.

A secret is stored sealed, as `{"$secret": "<Fernet token>"}` in place of its value, in
the working copy and in version contents alike. Only the runtime and the content hash
ever see it in the clear; the API, exports, diffs, logs and the audit log see
`{"secret": true, "value": null, "is_set": true}`.
"""

from __future__ import annotations

from lifecycle import crypto

SEALED = "$secret"


def is_sealed(value) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED}


def seal(kind: str, spec: dict) -> dict:
    """Seal the value of a secret variable (the one secret-bearing field so far)."""
    if kind == "variable" and spec.get("secret") and isinstance(spec.get("value"), str):
        return {**spec, "value": {SEALED: crypto.encrypt(spec["value"])}}
    return spec


def reveal(spec):
    """The spec with every sealed value decrypted (runtime and hashing only)."""
    if is_sealed(spec):
        return crypto.decrypt(spec[SEALED])
    if isinstance(spec, dict):
        return {key: reveal(value) for key, value in spec.items()}
    if isinstance(spec, list):
        return [reveal(value) for value in spec]
    return spec


def mask(kind: str, spec: dict, *, export: bool = False) -> dict:
    """What clients see: a secret's value is null, with `is_set` saying whether one exists.

    An export leaves secret values out entirely, so there `is_set` is always false.
    """
    if kind == "variable" and spec.get("secret"):
        is_set = is_sealed(spec.get("value")) and not export
        return {**spec, "value": None, "is_set": is_set}
    return spec


def rotated(spec):
    """The spec with every sealed value re-encrypted under the newest key."""
    if is_sealed(spec):
        return {SEALED: crypto.rotate(spec[SEALED])}
    if isinstance(spec, dict):
        return {key: rotated(value) for key, value in spec.items()}
    if isinstance(spec, list):
        return [rotated(value) for value in spec]
    return spec


def has_sealed(spec) -> bool:
    if is_sealed(spec):
        return True
    if isinstance(spec, dict):
        return any(has_sealed(value) for value in spec.values())
    if isinstance(spec, list):
        return any(has_sealed(value) for value in spec)
    return False


def content_hash(kind: str, name: str, stored_spec: dict) -> str:
    """HMAC of the canonical content with secrets in the clear: changes show, secrets do not."""
    return crypto.keyed_hash({"kind": kind, "name": name, "spec": reveal(stored_spec)})
