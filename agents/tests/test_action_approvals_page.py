"""The Action approvals page: the inbox people decide from."""

from agents.models import ActionApproval
from tests.factories import signed_in

from .test_api_action_approvals import waiting_call

PAGE = "/orgs/acme/approvals/actions/"


def test_the_inbox_shows_the_call_in_context_and_an_editor_decides(world):
    approval = waiting_call(world.acme, parameters={"order_id": "42", "note": "••••••"})
    developer = signed_in(world.users["developer"])
    page = developer.get(PAGE).content.decode()
    assert "issue_refund" in page and "refund order 42" in page and "••••••" in page
    assert f'value="{approval.pk}"' in page and ">Approve</button>" in page
    response = developer.post(PAGE, {"approval": str(approval.pk), "reject": "1", "comment": "too much"})
    assert response.status_code == 302
    row = ActionApproval.objects.for_org(world.acme).get(pk=approval.pk)
    assert (row.status, row.comment, row.decided_by_id) == (
        "rejected",
        "too much",
        world.users["developer"].pk,
    )
    after = developer.get(PAGE).content.decode()
    assert "Nothing is waiting." in after and "too much" in after


def test_a_viewer_sees_without_buttons_and_cannot_decide(world):
    approval = waiting_call(world.acme)
    viewer = signed_in(world.users["viewer"])
    page = viewer.get(PAGE).content.decode()
    assert "issue_refund" in page and ">Approve</button>" not in page
    viewer.post(PAGE, {"approval": str(approval.pk), "approve": "1"})
    assert ActionApproval.objects.for_org(world.acme).get(pk=approval.pk).status == "pending"


def test_without_a_role_in_the_stage_the_call_is_not_there(world):
    approval = waiting_call(world.acme)
    member = signed_in(world.users["member"])
    assert "issue_refund" not in member.get(PAGE).content.decode()
    assert member.post(PAGE, {"approval": str(approval.pk), "approve": "1"}).status_code == 404
    assert member.post(PAGE, {"approval": "not-a-uuid", "approve": "1"}).status_code == 404
    assert signed_in(world.users["outsider"]).get(PAGE).status_code == 404
    assert ActionApproval.objects.for_org(world.acme).get(pk=approval.pk).status == "pending"


def test_the_console_offers_the_decision_to_those_who_may_take_it(world):
    approval = waiting_call(world.acme)
    url = f"/orgs/acme/agents/{approval.agent_id}/console/"
    assert 'data-can-decide="1"' in signed_in(world.users["developer"]).get(url).content.decode()
    assert 'data-can-decide=""' in signed_in(world.users["viewer"]).get(url).content.decode()
