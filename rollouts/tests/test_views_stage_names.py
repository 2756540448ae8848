"""People read stage names, not slugs: drift, pull and back-port pages name the stages."""

from accounts.models import Stage
from accounts.services.stages import stage_create, stage_update
from tests.factories import add_component, knowledge, make_agent, owner_access, promote, signed_in


def test_drift_pull_and_backport_pages_show_stage_names(world):
    testing = Stage.objects.for_org(world.acme).get(slug="testing")
    stage_update(access=owner_access(world.acme), stage=testing, name="Quality assurance")
    source = make_agent(world.acme, "Support", access=world.access("developer"))
    clone = promote(source)
    add_component(source, "knowledge", "returns", knowledge())
    admin = signed_in(world.users["admin"])
    drift = admin.get(f"/orgs/acme/lineages/{source.lineage.slug}/").content.decode()
    assert "Development → Quality assurance" in drift and "Hotfix in Quality assurance" in drift
    assert "development → testing" not in drift
    pull = admin.get(f"/orgs/acme/agents/{clone.pk}/pull/").content.decode()
    assert "From <strong>Development</strong>" in pull
    backport = admin.get(f"/orgs/acme/agents/{clone.pk}/backport/").content.decode()
    assert "an editor of Development to apply" in backport


def test_the_audit_log_names_a_stage_by_its_name(world):
    stage_create(access=owner_access(world.acme), name="User acceptance", slug="uat")
    page = signed_in(world.users["admin"]).get("/orgs/acme/audit/").content.decode()
    assert '<small class="muted">stage</small> User acceptance' in page
