"""Sign-in, API tokens and passwords: the user's own account."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from lifecycle.audit import audit_record
from lifecycle.cache import count
from lifecycle.denials import record_login_failure
from lifecycle.errors import Invalid, NotFound, Throttled, Unauthenticated

from ..login_guard import login_guard_check, login_guard_failed, login_guard_succeeded
from ..models import ApiToken, Membership, User
from ..tokens import display_prefix, hash_key, new_key

logger = logging.getLogger(__name__)


def _audit_everywhere(user, action: str, target=None, changes=None) -> None:
    """Account events concern every org the user belongs to: each org's admins see them."""
    for membership in Membership.objects.for_user(user).select_related("org"):
        audit_record(org=membership.org, actor=user, action=action, target=target, changes=changes)


def credentials_check(*, email: str, password: str, ip: str | None, request=None) -> User:
    """The user for these credentials, counting failures (429 after a burst)."""
    email = (email or "").strip().lower()
    try:
        login_guard_check(email, ip)
    except Throttled:
        # Logged, not audited: past the limit, an attacker's every try would be a row in
        # the victim's orgs' logs. The failures that led here were audited.
        logger.warning("auth.login_throttled", extra={"email": email[:254], "ip": ip or ""})
        raise
    user = authenticate(request, username=email, password=password or "")
    if user is None or not user.is_active:
        login_guard_failed(email, ip)
        record_login_failure(email=email, ip=ip, reason="inactive account" if user else "bad credentials")
        raise Unauthenticated("Invalid email or password.")
    login_guard_succeeded(email, ip)
    return user


def token_create(*, user: User, name: str = "", expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token; the key is returned once and only its hash is kept."""
    days = expires_in_days or settings.API_TOKEN_DEFAULT_DAYS
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        raise Invalid(fields={"expires_in_days": [f"Must be between 1 and {settings.API_TOKEN_MAX_DAYS}."]})
    key = new_key()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name.strip(),
            prefix=display_prefix(key),
            key_hash=hash_key(key),
            expires_at=timezone.now() + timedelta(days=days),
        )
        _audit_everywhere(user, "token.create", target=token, changes={"name": token.name, "days": days})
    return token, key


def token_revoke(*, user: User, token: ApiToken) -> ApiToken:
    if token.user_id != user.pk:
        raise NotFound()
    if token.revoked_at is None:
        with transaction.atomic():
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            _audit_everywhere(user, "token.revoke", target=token, changes={"name": token.name})
    return token


def _password_failures_key(user: User) -> str:
    return f"password-fail:user:{user.pk}"


def password_change(
    *, user: User, old_password: str, new_password: str, keep_token: ApiToken | None = None
) -> int:
    """Change the password; end the user's other sign-ins. The number of tokens revoked.

    Whoever changes a password may be evicting someone who has it: every other API token
    is revoked (not `keep_token`, the one making the call), and every other browser
    session ends, because Django checks each session against the password's hash (the
    caller keeps theirs with update_session_auth_hash). Wrong current passwords count
    like failed sign-ins: past the limit, 429 before the password is even checked, so a
    stolen session cannot be used to guess it.
    """
    failures = _password_failures_key(user)
    if (cache.get(failures) or 0) >= settings.LOGIN_FAILURE_LIMIT:
        raise Throttled(
            "Too many wrong current passwords. Try again later.", retry_after=settings.LOGIN_FAILURE_WINDOW
        )
    if not user.check_password(old_password or ""):
        count(failures, settings.LOGIN_FAILURE_WINDOW)
        raise Invalid(fields={"old_password": ["Your current password is not correct."]})
    cache.delete(failures)
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise Invalid(fields={"new_password": exc.messages}) from exc
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        others = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
        if keep_token is not None:
            others = others.exclude(pk=keep_token.pk)
        revoked = others.update(revoked_at=timezone.now())
        _audit_everywhere(user, "password.change", target=user, changes={"tokens_revoked": revoked})
    return revoked
