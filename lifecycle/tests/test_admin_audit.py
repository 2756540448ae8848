"""Django admin writes reach the audit log of the orgs they concern (LogEntry is not enough)."""

from django.test import Client

from accounts.models import ApiToken, Organization, User
from accounts.services.auth import token_create
from lifecycle.audit import AuditEvent


def admin_client():
    root = User.objects.create_superuser(email="root@ops.test", password="root-pass-123")
    client = Client()
    client.force_login(root)
    return client, root


def entries(org, action):
    return list(AuditEvent.objects.for_org(org).filter(action=action))


def test_admin_changes_and_deletes_are_audited(world):
    client, root = admin_client()
    response = client.post(
        f"/admin/accounts/organization/{world.acme.pk}/change/",
        {"name": "Acme Renamed", "archived_at_0": "", "archived_at_1": ""},
    )
    assert response.status_code == 302, response.content[:500]
    assert Organization.objects.get(pk=world.acme.pk).name == "Acme Renamed"
    [renamed] = entries(world.acme, "admin.change")
    assert renamed.actor_id == root.pk and renamed.target_type == "organization"
    assert renamed.changes["message"] == [{"changed": {"fields": ["Name"]}}]

    # A password set through the admin: every org of the account sees it, without the password.
    viewer = world.users["viewer"]
    response = client.post(
        f"/admin/accounts/user/{viewer.pk}/password/",
        {"password1": "brand-new-Secret-99", "password2": "brand-new-Secret-99", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:500]
    password_entries = [e for e in entries(world.acme, "admin.change") if e.target_type == "user"]
    assert len(password_entries) == 1
    assert "brand-new-Secret-99" not in str(password_entries[0].changes)

    token, _ = token_create(user=world.users["member"], name="ci")
    response = client.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:500]
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    [deleted] = entries(world.acme, "admin.delete")
    assert deleted.target_type == "apitoken" and deleted.target_id == str(token.pk)
    assert not entries(world.globex, "admin.delete")
