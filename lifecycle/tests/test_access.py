import pytest

from accounts.models import Stage
from lifecycle.access import resolve_access
from lifecycle.errors import NotFound
from lifecycle.operations import Operation


def stage(world, slug):
    return Stage.objects.for_org(world.acme).get(slug=slug)


def test_stage_roles_are_ordered_viewer_editor_manager(world):
    access = world.access("tester")
    assert access.has_stage_role(stage(world, "testing"), "manager")
    assert access.has_stage_role(stage(world, "testing"), "viewer")
    assert access.has_stage_role(stage(world, "development"), "viewer")
    assert not access.has_stage_role(stage(world, "development"), "editor")
    assert not access.has_stage_role(stage(world, "production"), "viewer")


def test_owners_and_admins_hold_every_stage_role(world):
    for who in ("owner", "admin"):
        access = world.access(who)
        assert all(access.has_stage_role(s, "manager") for s in Stage.objects.for_org(world.acme))
        assert access.stage_ids_with("viewer") is None


def test_visible_narrows_rows_to_stages_with_a_role(world):
    for slug in ("development", "testing", "production"):
        Operation.objects.create(
            org=world.acme, kind="audit.export", stage=stage(world, slug), status="succeeded"
        )
    rows = Operation.objects.for_org(world.acme)
    tester = world.access("tester")
    assert {op.stage.slug for op in tester.visible(rows)} == {"development", "testing"}
    assert {op.stage.slug for op in world.access("member").visible(rows)} == set()
    assert {op.stage.slug for op in world.access("admin").visible(rows)} == {
        "development",
        "testing",
        "production",
    }
    assert tester.stage_ids_with("manager") == {stage(world, "testing").pk}


def test_non_members_and_archived_orgs_are_not_found(world):
    with pytest.raises(NotFound):
        resolve_access(world.users["outsider"], "acme")
    with pytest.raises(NotFound):
        resolve_access(world.users["owner"], "nope")
    world.acme.archived_at = world.acme.created_at
    world.acme.save()
    with pytest.raises(NotFound):
        resolve_access(world.users["owner"], "acme")
