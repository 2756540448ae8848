"""The seal shared by the org-scoped bases (API views, UI pages, WebSocket consumers).

A base is sealed when no class can replace the methods that resolve the org, check
access and find the object. Looking only at the new class's own `__dict__` misses a
mixin listed before the base (`class V(SneakyMixin, OrgScopedViewSet)`): Python finds
the mixin's `get_queryset` first. So the whole MRO up to the base is walked.
"""

from __future__ import annotations


def check_sealed(cls: type, base: type, names: tuple[str, ...], what: str) -> None:
    """TypeError if any class ahead of `base` in `cls`'s MRO defines one of `names`.

    The sealed bases themselves (defined in `base`'s module) may; classes after `base`
    cannot win over it, since `base` defines every sealed name itself.
    """
    mro = cls.__mro__
    for klass in mro[: mro.index(base)]:
        if klass.__module__ == base.__module__:
            continue
        for name in names:
            if name in klass.__dict__:
                culprit = "" if klass is cls else f" (through {klass.__qualname__})"
                raise TypeError(f"{cls.__qualname__} overrides {name}(){culprit}; {what} are sealed.")
