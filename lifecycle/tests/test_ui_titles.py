"""Page titles name the page; stage names, not slugs, are what people read."""

import re

from tests.factories import make_agent, signed_in


def title(response) -> str:
    return re.search(r"<title>(.*?)</title>", response.content.decode(), re.S).group(1).strip()


def test_page_titles_name_the_page(world):
    agent = make_agent(world.acme, "Sales bot", access=world.access("developer"))
    admin = signed_in(world.users["admin"])
    base = f"/orgs/acme/agents/{agent.pk}/"
    expected = {
        base + "m/skills/": "Sales bot · Skills · Development — Lifecycle",
        base: "Sales bot · Settings · Development — Lifecycle",
        base + "versions/": "Sales bot · Versions · Development — Lifecycle",
        base + "console/": "Sales bot · Test console · Development — Lifecycle",
        base + "promote/": "Sales bot · Promote · Development — Lifecycle",
        "/orgs/acme/agents/?stage=testing": "Agents · Testing · Acme — Lifecycle",
        "/orgs/acme/members/": "Members · Acme — Lifecycle",
        "/orgs/acme/stages/": "Stages · Acme — Lifecycle",
        "/orgs/acme/stages/production/keys/": "API keys · Production · Acme — Lifecycle",
        "/orgs/acme/audit/": "Audit log · Acme — Lifecycle",
        "/orgs/acme/backports/": "Back-ports · Acme — Lifecycle",
        "/orgs/acme/": "Acme — Lifecycle",
    }
    for url, want in expected.items():
        response = admin.get(url)
        assert response.status_code == 200, url
        assert title(response) == want, url
