import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone

from lifecycle.tenancy import TenantManager, TenantModel


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in by email. Deactivated, never deleted, so the audit log holds."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


def anonymous_user_defaults(user_model):
    """django-guardian's anonymous user, shaped for an email-login model."""
    return user_model(email="anonymous@lifecycle.invalid", is_active=False)


class Organization(models.Model):
    """The tenant. Archived, never deleted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class OrgRole(models.TextChoices):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class StageRoleLevel(models.TextChoices):
    VIEWER = "viewer"
    EDITOR = "editor"
    MANAGER = "manager"

    @property
    def rank(self) -> int:
        return STAGE_ROLE_RANK[self.value]


STAGE_ROLE_RANK = {"viewer": 1, "editor": 2, "manager": 3}


class MembershipManager(TenantManager):
    def for_user(self, user):
        """A user's own memberships, across orgs: safe, they are the user's."""
        return self._scoped_by(user=user)


class Membership(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=10, choices=OrgRole.choices, default=OrgRole.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MembershipManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "user"], name="membership_one_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.org_id}:{self.role}"

    @property
    def is_admin(self) -> bool:
        return self.role in (OrgRole.OWNER, OrgRole.ADMIN)


class Stage(TenantModel):
    """One step of the org's pipeline. Slugs never change; names and order may."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=80)
    position = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["org", "slug"], name="stage_slug_unique_per_org"),
        ]

    def __str__(self) -> str:
        # What people read (the audit log's target, the admin): the name, not the slug.
        return self.name


class StageRole(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="stage_roles")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=10, choices=StageRoleLevel.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "stage"], name="stage_role_one_per_stage"),
        ]


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the key is shown once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "revoked_at"], name="apitoken_user_active"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


ACTIVE_TOKEN = Q(revoked_at__isnull=True)
