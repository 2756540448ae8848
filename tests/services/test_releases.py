"""Releases on PostgreSQL under concurrency: the live version moves as one chain."""

import itertools
import threading

import pytest
from django.db import connection

from agents.models import Agent, AgentVersion
from agents.services.versions import version_save
from lifecycle.access import access_for
from rollouts.models import Release
from rollouts.services.release import release_create
from tests.factories import add_component, make_agent, make_world, owner_access, promote, skill

pytestmark = pytest.mark.django_db(transaction=True)
RACERS = 8


def race(fn, count: int) -> list:
    """Run fn(i) in `count` threads released together; each thread's own connection."""
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def run(i):
        try:
            barrier.wait()
            outcomes[i] = fn(i)
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def assert_one_chain(agent) -> list[Release]:
    """Each release's stable version is the previous release's candidate: no lost update."""
    releases = list(Release.objects.for_org(agent.org_id).filter(agent=agent).order_by("created_at", "id"))
    for before, after in itertools.pairwise(releases):
        assert after.stable_version == before.candidate_version, [
            (r.stable_version, r.candidate_version) for r in releases
        ]
    live = Agent.objects.for_org(agent.org_id).get(pk=agent.pk).live_version
    assert live == releases[-1].candidate_version
    return releases


def test_simultaneous_saves_in_a_stage_without_required_releases_each_go_live_in_order():
    world = make_world()
    agent = make_agent(world.acme)
    user = owner_access(world.acme).user

    def save(i):
        return version_save(access=access_for(user, world.acme), agent=agent, changelog=f"save {i}").number

    outcomes = race(save, RACERS)
    assert all(isinstance(n, int) for n in outcomes), outcomes
    releases = assert_one_chain(agent)
    assert sorted(r.candidate_version for r in releases) == list(range(1, RACERS + 2))
    assert Agent.objects.for_org(world.acme).get(pk=agent.pk).live_version == RACERS + 1


def test_simultaneous_releases_in_production_keep_one_chain():
    world = make_world()
    dev = make_agent(world.acme)
    add_component(dev, "skill", "greeting", skill())
    prod = dev
    for _ in range(3):
        prod = promote(prod)
    owner = owner_access(world.acme)
    for i in range(RACERS - 1):
        version_save(access=owner, agent=prod, changelog=f"v{i + 2}")
    assert AgentVersion.objects.for_org(world.acme).filter(agent=prod).count() == RACERS
    user = owner.user

    def release(i):
        access = access_for(user, world.acme)
        fresh = Agent.objects.for_org(world.acme).select_related("stage", "org").get(pk=prod.pk)
        return release_create(access=access, agent=fresh, version=i + 1, changelog=f"release {i + 1}")

    outcomes = race(release, RACERS)
    assert all(isinstance(r, Release) for r in outcomes), outcomes
    releases = assert_one_chain(prod)
    assert len(releases) == RACERS and releases[0].stable_version is None
