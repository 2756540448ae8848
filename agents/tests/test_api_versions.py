from agents.api.views import VersionViewSet
from agents.models import Component
from agents.services.versions import version_save
from agents.tests.helpers import AgentChildTests
from tests.api_mixin import assert_envelope
from tests.factories import add_component, knowledge, make_agent, owner_access, skill

PATH = "/api/v1/orgs/{org}/agents/{agent}/versions/"


def url(agent, tail=""):
    return PATH.format(org=agent.org.slug, agent=agent.pk) + tail


class TestVersionsTenancy(AgentChildTests):
    views = (VersionViewSet,)
    list_url = PATH
    detail_url = PATH + "{id}/"
    lookup_key = "number"
    reader = "developer"
    forbidden = ("tester", "POST", "list", {"changelog": "mine"})
    create_payload = {"changelog": "A save point"}
    creator = "developer"

    def make_object(self, world, org):
        agent = self.agent_in(world, org)
        # Globex's numbers run ahead, so its version is never also one of acme's.
        for _ in range(1 if org == world.acme else 5):
            version = version_save(access=owner_access(org), agent=agent, changelog="x")
        return str(version.number)

    def missing_lookup(self):
        return "999"

    def count(self, world):
        from agents.models import AgentVersion

        return AgentVersion.objects.for_org(world.acme).count()


def test_changelog_lists_who_did_what_and_when(world):
    agent = make_agent(world.acme, access=world.access("developer"))
    add_component(agent, "skill", "greet", skill(), access=world.access("developer"))
    saved = world.client("developer").post(url(agent), {"changelog": "Added greeting"}, format="json")
    assert saved.status_code == 201
    rows = world.client("tester").get(url(agent)).json()["results"]
    assert [(r["number"], r["reason"], r["changelog"], r["author"]["email"]) for r in rows] == [
        (2, "save", "Added greeting", "developer@acme.test"),
        (1, "create", "Created.", "developer@acme.test"),
    ]
    assert rows[0]["components"] == 2


def test_a_version_shows_its_contents_with_secrets_masked(world):
    agent = make_agent(world.acme)
    add_component(agent, "variable", "API_TOKEN", {"value": "canary-secret-1", "secret": True})
    version_save(access=owner_access(world.acme), agent=agent, changelog="with secret")
    body = world.client("admin").get(url(agent, "2/")).json()
    variable = next(c for c in body["contents"] if c["kind"] == "variable")
    assert variable["spec"] == {"secret": True, "value": None, "is_set": True}
    assert "canary-secret-1" not in str(body)


def test_diff_between_any_two_versions(world):
    agent = make_agent(world.acme)
    access = owner_access(world.acme)
    a = add_component(agent, "skill", "greet", skill(["hi"]))
    b = add_component(agent, "knowledge", "returns", knowledge())
    add_component(agent, "variable", "TOKEN", {"value": "s1", "secret": True})
    version_save(access=access, agent=agent)  # v2
    from agents.services.components import component_delete, component_update

    component_update(access=access, component=a, spec=skill(["hello there"]))
    component_delete(access=access, component=b)
    token = Component.objects.for_org(world.acme).get(agent=agent, name="TOKEN")
    component_update(access=access, component=token, spec={"value": "s2", "secret": True})
    add_component(agent, "skill", "bye", skill(["bye"]))
    version_save(access=access, agent=agent)  # v3
    diff = world.client("admin").get(url(agent, "3/diff/"), {"against": 2}).json()
    assert diff["counts"] == {"created": 1, "updated": 2, "deleted": 1}
    by_name = {i["name"]: i for i in diff["items"]}
    assert by_name["bye"]["change"] == "created" and by_name["returns"]["change"] == "deleted"
    assert by_name["greet"]["fields"] == [{"field": "utterances", "before": ["hi"], "after": ["hello there"]}]
    assert by_name["TOKEN"]["fields"] == [{"field": "value", "secret": True}]
    assert "s1" not in str(diff) and "s2" not in str(diff)
    back = world.client("admin").get(url(agent, "2/diff/"), {"against": 3}).json()
    assert back["counts"] == {"created": 1, "updated": 2, "deleted": 1}
    assert_envelope(world.client("admin").get(url(agent, "2/diff/"), {"against": 99}), 400)


def test_restore_writes_a_new_version_with_the_old_contents(world):
    agent = make_agent(world.acme)
    access = owner_access(world.acme)
    keep = add_component(agent, "skill", "greet", skill(["hi"]))
    version_save(access=access, agent=agent)  # v2: greet
    from agents.services.components import component_delete

    component_delete(access=access, component=keep)
    add_component(agent, "knowledge", "new", knowledge())
    version_save(access=access, agent=agent)  # v3: new
    response = world.client("admin").post(
        f"/api/v1/orgs/acme/agents/{agent.pk}/restore/", {"version": 2, "changelog": "Undo"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["number"] == 4 and response.json()["source_version"]["number"] == 2
    names = set(Component.objects.for_org(world.acme).filter(agent=agent).values_list("name", flat=True))
    assert names == {"settings", "greet"}
    restored = Component.objects.for_org(world.acme).get(agent=agent, name="greet")
    assert str(restored.uid) == str(keep.uid)  # the same component, back
    diff = world.client("admin").get(url(agent, "4/diff/"), {"against": 2}).json()
    assert diff["counts"] == {"created": 0, "updated": 0, "deleted": 0}
    assert_envelope(
        world.client("admin").post(
            f"/api/v1/orgs/acme/agents/{agent.pk}/restore/", {"version": 42}, format="json"
        ),
        400,
    )
