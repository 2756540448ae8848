"""The operation page: the site's frame on every navigation, and no stale "started" flash."""

from lifecycle.operations import Operation
from tests.factories import make_agent, run_operation_now, signed_in


def started_promotion(world):
    agent = make_agent(world.acme, "Support", access=world.access("developer"))
    tester = signed_in(world.users["tester"])
    started = tester.post(
        f"/orgs/acme/agents/{agent.pk}/promote/", {"confirm": "accept", "changelog": "Ready"}
    )
    assert started.status_code == 302 and "/operations/" in started["Location"]
    return tester, started["Location"]


def test_a_boosted_navigation_gets_the_whole_page_and_the_poll_gets_the_card(world):
    tester, url = started_promotion(world)
    boosted = tester.get(url, HTTP_HX_REQUEST="true", HTTP_HX_BOOSTED="true").content.decode()
    assert 'class="topbar"' in boosted and 'class="sidebar"' in boosted and "<title>" in boosted
    assert 'id="operation-status"' in boosted
    poll = tester.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="operation-status").content.decode()
    assert poll.lstrip().startswith('<section class="card operation" id="operation-status"')
    assert 'class="topbar"' not in poll


def test_a_finished_operation_drops_the_started_flash(world):
    tester, url = started_promotion(world)
    run_operation_now(Operation.objects.for_org(world.acme).get(kind="agent.promote"))
    page = tester.get(url).content.decode()
    assert 'data-status="succeeded"' in page
    assert "Promotion started." not in page


def test_a_running_operation_keeps_the_started_flash_and_the_finished_card_removes_it(world):
    tester, url = started_promotion(world)
    page = tester.get(url).content.decode()
    assert "Promotion started." in page and "operation-started" in page
    assert "hx-swap-oob" not in page
    run_operation_now(Operation.objects.for_org(world.acme).get(kind="agent.promote"))
    poll = tester.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="operation-status").content.decode()
    assert 'hx-swap-oob="delete:.msg.operation-started"' in poll
