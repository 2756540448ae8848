"""Raw-SQL copies stay inside the target's org, whatever agents they are handed."""

from agents.copying import copy_components, mark_synced, overwrite_components
from agents.models import Component
from agents.versioning import current_entries
from tests.factories import add_component, make_agent, skill


def test_copies_never_read_another_orgs_rows(world):
    theirs = make_agent(world.globex)
    secret = add_component(theirs, "skill", "globex-only", skill(responses=("globex secret",)))
    mine = make_agent(world.acme)
    add_component(mine, "skill", "greet", skill())
    before = sorted(
        Component.objects.for_org(world.acme).filter(agent=mine).values_list("name", "content_hash")
    )

    assert copy_components(theirs, mine) == 0
    assert overwrite_components(theirs, mine, [secret.uid]) == 0
    assert mark_synced(theirs, mine, [secret.uid]) == 0
    after = sorted(
        Component.objects.for_org(world.acme).filter(agent=mine).values_list("name", "content_hash")
    )
    assert after == before
    assert not Component.objects.for_org(world.globex).filter(agent=mine).exists()


def test_working_copy_entries_are_the_agents_own_org(world):
    mine = make_agent(world.acme)
    add_component(mine, "skill", "greet", skill())
    assert len(current_entries(mine)) >= 1
    stranger = make_agent(world.globex)
    stranger.org_id = world.acme.id  # a mismatched object, as a bug would hand it over
    assert current_entries(stranger) == []
