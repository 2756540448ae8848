import pytest
from django.utils import timezone

from accounts.models import Membership, Stage, StageRole
from lifecycle.tenancy import UnscopedQueryError
from tests.factories import make_world


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


# --- escapes: each of these read another org's rows before the scope covered it ---------
def test_combining_with_an_unscoped_queryset_is_refused(world):
    scoped = Stage.objects.for_org(world.acme)
    for combined in (
        scoped | Stage.objects.all(),
        scoped | Stage.objects.filter(slug="testing"),
        Stage.objects.all() | scoped,
        scoped & Stage.objects.all(),
        scoped ^ Stage.objects.all(),
    ):
        with pytest.raises(UnscopedQueryError):
            list(combined)
    # Both sides scoped: it stays scoped (and reads only what each side allows).
    both = Stage.objects.for_org(world.acme).filter(slug="testing") | Stage.objects.for_org(
        world.acme
    ).filter(slug="staging")
    assert {s.slug for s in both} == {"testing", "staging"}


@pytest.mark.parametrize("combinator", ["union", "intersection", "difference"])
def test_set_operations_with_an_unscoped_queryset_are_refused(world, combinator):
    scoped = Stage.objects.for_org(world.acme).order_by().values_list("slug", flat=True)
    unscoped = Stage.objects.order_by().values_list("slug", flat=True)
    with pytest.raises(UnscopedQueryError):
        list(getattr(scoped, combinator)(unscoped))
    with pytest.raises(UnscopedQueryError):
        list(getattr(unscoped, combinator)(scoped))
    other = Stage.objects.for_org(world.acme).order_by().filter(slug="testing").values_list("slug", flat=True)
    assert list(getattr(scoped, combinator)(other))


@pytest.mark.django_db(transaction=True)
async def test_aiterator_is_refused_unscoped():
    from asgiref.sync import sync_to_async

    world = await sync_to_async(make_world)()
    with pytest.raises(UnscopedQueryError):
        [stage async for stage in Stage.objects.aiterator()]
    with pytest.raises(UnscopedQueryError):
        await Stage.objects.acount()
    with pytest.raises(UnscopedQueryError):
        await Stage.objects.afirst()
    slugs = [stage.slug async for stage in Stage.objects.for_org(world.acme).aiterator()]
    assert len(slugs) == 4


def test_raw_sql_through_a_tenant_manager_is_refused(world):
    for manager in (Stage.objects, Stage.objects.for_org(world.acme)):
        with pytest.raises(UnscopedQueryError):
            list(manager.raw("SELECT * FROM accounts_stage"))


def test_values_paths_are_refused_unscoped(world):
    for attempt in (
        lambda: list(Stage.objects.values("slug", "org_id")),
        lambda: list(Stage.objects.values_list("name", flat=True)),
        lambda: Stage.objects.values("org_id").get(slug="testing", org=world.globex),
        lambda: list(Stage.objects.values("slug").iterator()),
        # As a subquery the inner queryset never runs by itself: refused all the same.
        lambda: list(Stage.objects.for_org(world.acme).filter(pk__in=Stage.objects.values("pk"))),
        lambda: list(
            Membership.objects.for_org(world.acme).filter(org_id__in=Stage.objects.values("org_id"))
        ),
    ):
        with pytest.raises(UnscopedQueryError):
            attempt()
    inner = Stage.objects.for_org(world.acme).values("pk")
    assert Stage.objects.for_org(world.acme).filter(pk__in=inner).count() == 4


def test_the_base_manager_is_refused_to_application_code(world):
    for attempt in (
        lambda: list(Stage._base_manager.all()),
        lambda: Stage._base_manager.filter(org=world.globex).count(),
        lambda: Stage._base_manager.get(org=world.globex, slug="testing"),
        lambda: list(Stage._base_manager.using("default").values_list("pk", flat=True)),
        lambda: Stage._base_manager.db_manager("default").first(),
    ):
        with pytest.raises(UnscopedQueryError):
            attempt()


def test_django_still_follows_known_rows_through_the_base_manager(world):
    from tests.factories import add_component, make_agent, skill

    agent = make_agent(world.acme)
    component = add_component(agent, "skill", "greet", skill())
    fresh = type(component).objects.for_org(world.acme).get(pk=component.pk)
    assert fresh.agent.pk == agent.pk  # forward FK descriptor
    assert fresh.agent.stage.org_id == world.acme.id
    fresh.refresh_from_db()
    fresh.save()  # save()'s UPDATE goes through the base manager
    prefetched = (
        type(component).objects.for_org(world.acme).select_related("agent").prefetch_related("agent__stage")
    )
    assert [c.agent.stage.slug for c in prefetched]
    membership = Membership.objects.for_org(world.acme).get(user=world.users["tester"])
    membership.delete()  # cascades to its stage roles
    assert not StageRole.objects.for_org(world.acme).filter(membership_id=membership.pk).exists()


def test_subquery_and_exists_of_an_unscoped_queryset_are_refused(world):
    from django.db.models import Exists, OuterRef, Subquery

    scoped = Stage.objects.for_org(world.acme)
    # Django reads `qs.query` straight into these expressions, past every queryset check.
    for expression in (
        Subquery(Stage.objects.filter(org_id=OuterRef("org_id")).values("slug")[:1]),
        Exists(Stage.objects.filter(position__gt=OuterRef("position"))),
        Subquery(StageRole.objects.filter(stage_id=OuterRef("pk")).values("role")[:1]),
    ):
        with pytest.raises(UnscopedQueryError):
            list(scoped.annotate(other=expression))
    with pytest.raises(UnscopedQueryError):
        list(scoped.filter(Exists(Stage.objects.filter(pk=OuterRef("pk")))))
    # Scoped inside as well: allowed, and it reads the same org's rows only.
    later = Exists(Stage.objects.for_org(world.acme).filter(position__gt=OuterRef("position")))
    last = Subquery(Stage.objects.for_org(world.acme).order_by("-position").values("slug")[:1])
    rows = {s.slug: (s.has_later, s.last) for s in scoped.annotate(has_later=later, last=last)}
    assert rows["production"] == (False, "production")
    assert rows["development"] == (True, "production")


def test_a_row_loaded_without_its_org_can_load_its_deferred_fields(world):
    # refresh_from_db() on a deferred field asks the manager with the row as a hint; the
    # hint's own deferred org_id used to be loaded the same way, recursing without end.
    stage = Stage.objects.for_org(world.acme).only("slug").get(slug="testing")
    assert stage.name == "Testing" and stage.org_id == world.acme.pk
    # Its related managers cannot vouch for an org they never loaded: refused, not recursing.
    membership = Membership.objects.for_org(world.acme).only("id").filter(user=world.users["tester"]).get()
    with pytest.raises(UnscopedQueryError):
        list(membership.stage_roles.all())
