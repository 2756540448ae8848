import pytest
from django.utils import timezone

from accounts.models import Membership, Stage, StageRole
from lifecycle.tenancy import UnscopedQueryError


def test_tenant_manager_refuses_every_unscoped_read_and_write(world):
    unscoped = Stage.objects.filter(slug="testing")
    for attempt in (
        lambda: list(unscoped),
        lambda: unscoped.first(),
        lambda: unscoped.count(),
        lambda: unscoped.exists(),
        lambda: unscoped.get(),
        lambda: unscoped.values_list("slug", flat=True)[0],
        lambda: unscoped.update(name="x"),
        lambda: unscoped.delete(),
        lambda: list(unscoped.iterator()),
        lambda: Stage.objects.all()[0],
        lambda: Stage.objects.in_bulk(),
    ):
        with pytest.raises(UnscopedQueryError):
            attempt()
    with pytest.raises(UnscopedQueryError):
        Stage.objects.for_org(None)


def test_for_org_scopes_to_exactly_one_org(world):
    acme = set(Stage.objects.for_org(world.acme).values_list("org_id", flat=True))
    assert acme == {world.acme.id}
    assert Stage.objects.for_org(world.acme).filter(slug="testing").get().org_id == world.acme.id
    # Chained querysets keep the scope.
    assert Stage.objects.for_org(world.acme).exclude(slug="testing").order_by("-position").count() == 3


def test_for_org_slug_scopes_to_the_live_org_named(world):
    assert set(Stage.objects.for_org_slug("acme").values_list("org_id", flat=True)) == {world.acme.id}
    assert not Stage.objects.for_org_slug("no-such-org").exists()
    assert Stage.objects.for_org_slug("globex").count() == 4
    world.globex.archived_at = timezone.now()
    world.globex.save(update_fields=["archived_at"])
    assert not Stage.objects.for_org_slug("globex").exists()


def test_related_managers_of_a_scoped_row_are_scoped(world):
    membership = Membership.objects.for_org(world.acme).get(user=world.users["tester"])
    roles = {sr.stage.slug: sr.role for sr in membership.stage_roles.all()}
    assert roles == {"development": "viewer", "testing": "manager"}


def test_the_bypass_has_a_loud_name(world):
    assert StageRole.objects.dangerously_unscoped().filter(role="manager").count() >= 2
    assert Stage.objects.none().count() == 0


def test_membership_for_user_is_the_users_own_rows(world):
    rows = Membership.objects.for_user(world.users["outsider"])
    assert [m.org_id for m in rows] == [world.globex.id]
