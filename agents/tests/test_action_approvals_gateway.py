"""Action approvals on live traffic: the message stops at the waiting call, the rest
comes from the events endpoint after the decision (or the timeout)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from agents.models import ActionApproval, Conversation, Turn
from agents.services.action_approvals import action_approvals_sweep
from tests.api_mixin import assert_envelope
from tests.factories import make_world
from tests.http_servers import Recorder

from .approvals_setup import SECRET, refund_agent, refund_server_handler

pytestmark = pytest.mark.django_db(transaction=True)


def run_url(lineage, tail=""):
    return f"/api/v1/run/acme/{lineage}/development/conversations/{tail}"


def start(world, server, **kwargs):
    agent, key = refund_agent(world.acme, server.url, **kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    lineage = agent.lineage.slug
    cid = client.post(run_url(lineage), {"user": "u1"}, format="json").json()["conversation"]
    return agent, client, lineage, cid


def ask_refund(client, lineage, cid, text="refund order 4242"):
    said = client.post(run_url(lineage, f"{cid}/messages/"), {"text": text}, format="json")
    assert said.status_code == 200, said.content
    return said.json()["events"]


def events(client, lineage, cid, after, wait=0):
    response = client.get(run_url(lineage, f"{cid}/events/"), {"after": after, "wait": wait})
    assert response.status_code == 200, response.content
    return response.json()


def test_approved_the_tool_runs_and_the_answer_follows_from_the_events_endpoint():
    world = make_world()
    with Recorder(refund_server_handler) as server:
        _, client, lineage, cid = start(world, server)
        said = ask_refund(client, lineage, cid)
        assert [e["type"] for e in said] == ["tool_call", "tool_approval_requested"]
        waiting = said[-1]
        assert waiting["tool_name"] == "issue_refund" and waiting["parameters"] == {"order_id": "4242"}
        assert server.requests == []  # nothing ran before a person said so
        # Nothing yet: the long-poll answers empty after its wait, the turn not done.
        assert events(client, lineage, cid, waiting["seq"], wait=0.3) == {
            "events": [],
            "done": False,
            "approval": {"id": waiting["approval"], "status": "pending"},
        }
        # A second message while the call waits is refused, with nothing written.
        turns = Turn.objects.for_org(world.acme).filter(conversation_id=cid).count()
        busy = client.post(run_url(lineage, f"{cid}/messages/"), {"text": "hello"}, format="json")
        assert_envelope(busy, 409, "conflict")
        assert busy.json()["error"]["details"]["approval"] == waiting["approval"]
        assert Turn.objects.for_org(world.acme).filter(conversation_id=cid).count() == turns

        approved = world.client("developer").post(
            f"/api/v1/orgs/acme/action-approvals/{waiting['approval']}/approve/",
            {"comment": "ok"},
            format="json",
        )
        assert approved.status_code == 200, approved.content
        assert (
            approved.json()["status"] == "approved"
            and approved.json()["decided_by"]["email"] == "developer@acme.test"
        )
        assert len(server.requests) == 1
        assert server.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
        rest = events(client, lineage, cid, waiting["seq"])
        assert rest["done"] is True
        kinds = [e["type"] for e in rest["events"]]
        assert kinds[0] == "tool_result" and kinds[-1] == "agent_response"
        assert rest["events"][0]["result"] == {"refund_id": "R-4242"}
        assert rest["events"][-1]["text"] == "Refund R-4242 issued for order 4242."
        seqs = [e["seq"] for e in rest["events"]]
        assert seqs == list(range(waiting["seq"] + 1, waiting["seq"] + 1 + len(seqs)))
        # Read from the middle: only what follows.
        assert events(client, lineage, cid, seqs[0])["events"] == rest["events"][1:]

    # The turn is recorded once, and the conversation goes on.
    turns = list(
        Turn.objects.for_org(world.acme)
        .filter(conversation_id=cid)
        .order_by("index")
        .values_list("role", "text")
    )
    assert turns[-2:] == [("user", "refund order 4242"), ("agent", "Refund R-4242 issued for order 4242.")]
    assert "_awaiting_approval" not in Conversation.objects.for_org(world.acme).get(pk=cid).state
    assert ask_refund(client, lineage, cid, "hello")[-1]["type"] == "agent_response"
    # One decision only.
    again = world.client("developer").post(
        f"/api/v1/orgs/acme/action-approvals/{waiting['approval']}/reject/", {}, format="json"
    )
    assert_envelope(again, 409, "conflict")


def test_rejected_the_tool_never_runs_and_the_agent_answers_without_it():
    world = make_world()
    with Recorder(refund_server_handler) as server:
        _, client, lineage, cid = start(world, server)
        waiting = ask_refund(client, lineage, cid)[-1]
        rejected = world.client("owner").post(
            f"/api/v1/orgs/acme/action-approvals/{waiting['approval']}/reject/",
            {"comment": "no"},
            format="json",
        )
        assert rejected.status_code == 200, rejected.content
        rest = events(client, lineage, cid, waiting["seq"])
        assert server.requests == []
    assert rest["done"] is True
    assert rest["events"][0] == {
        "type": "tool_result",
        "tool_call_id": waiting["tool_call_id"],
        "error": "rejected",
        "seq": waiting["seq"] + 1,
    }
    assert rest["events"][-1]["type"] == "agent_response" and "approval" in rest["events"][-1]["text"]


def test_timed_out_the_call_expires_and_the_agent_answers_without_it():
    world = make_world()
    with Recorder(refund_server_handler) as server:
        _, client, lineage, cid = start(world, server)
        waiting = ask_refund(client, lineage, cid)[-1]
        ActionApproval.objects.for_org(world.acme).filter(pk=waiting["approval"]).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        assert action_approvals_sweep() == 1
        rest = events(client, lineage, cid, waiting["seq"])
        assert server.requests == []
    assert rest["approval"]["status"] == "expired" and rest["done"] is True
    assert rest["events"][0]["error"] == "expired"
    late = world.client("owner").post(
        f"/api/v1/orgs/acme/action-approvals/{waiting['approval']}/approve/", {}, format="json"
    )
    assert_envelope(late, 409, "conflict")


def test_server_sent_events_stream_the_rest_then_done():
    world = make_world()
    with Recorder(refund_server_handler) as server:
        _, client, lineage, cid = start(world, server)
        waiting = ask_refund(client, lineage, cid)[-1]
        world.client("owner").post(
            f"/api/v1/orgs/acme/action-approvals/{waiting['approval']}/approve/", {}, format="json"
        )
        response = client.get(
            run_url(lineage, f"{cid}/events/"),
            {"after": waiting["seq"], "wait": 2},
            HTTP_ACCEPT="text/event-stream",
        )
        assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
        body = b"".join(response.streaming_content).decode()
    blocks = [b for b in body.split("\n\n") if b.strip()]
    assert blocks[0].startswith("event: tool_result\ndata: ")
    assert blocks[-1] == "event: done\ndata: {}"
    answer = json.loads(blocks[-2].split("data: ", 1)[1])
    assert answer["type"] == "agent_response" and answer["text"] == "Refund R-4242 issued for order 4242."


def test_the_events_endpoint_needs_the_stage_key_and_bad_input_is_400():
    world = make_world()
    with Recorder(refund_server_handler) as server:
        _, client, lineage, cid = start(world, server)
        url = run_url(lineage, f"{cid}/events/")
        assert_envelope(APIClient().get(url), 401, "unauthenticated")
        assert_envelope(client.get(url, {"after": "x"}), 400, "invalid")
        assert_envelope(client.get(url, {"wait": 99}), 400, "invalid")
        assert_envelope(
            client.get(run_url(lineage, "00000000-0000-0000-0000-000000000000/events/")), 404, "not_found"
        )
        # No call ever waited: nothing to wait for.
        assert events(client, lineage, cid, 0) == {"events": [], "done": True, "approval": None}


def test_a_lapsed_call_is_expired_by_the_events_endpoint_itself():
    world = make_world()
    with Recorder(refund_server_handler) as server:
        _, client, lineage, cid = start(world, server)
        waiting = ask_refund(client, lineage, cid)[-1]
        ActionApproval.objects.for_org(world.acme).filter(pk=waiting["approval"]).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        rest = events(client, lineage, cid, waiting["seq"])
        assert server.requests == []
    assert rest["approval"]["status"] == "expired" and rest["done"] is True
    assert rest["events"][0]["type"] == "tool_result" and rest["events"][0]["error"] == "expired"


def test_another_orgs_key_or_conversation_reads_nothing():
    world = make_world()
    with Recorder(refund_server_handler) as server:
        _, client, lineage, cid = start(world, server)
        waiting = ask_refund(client, lineage, cid)[-1]
        theirs, their_key = refund_agent(world.globex, server.url)
        stranger = APIClient()
        stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {their_key}")
        their_cid = stranger.post(
            f"/api/v1/run/globex/{theirs.lineage.slug}/development/conversations/", {}, format="json"
        ).json()["conversation"]
        # Their key on our URL: 401. Our key on their conversation, under our URL: 404.
        assert_envelope(
            stranger.get(run_url(lineage, f"{cid}/events/"), {"after": 0}), 401, "unauthenticated"
        )
        assert_envelope(client.get(run_url(lineage, f"{their_cid}/events/")), 404, "not_found")
        # Their people cannot decide ours, nor see it.
        outsider = world.client("outsider")
        assert_envelope(
            outsider.post(
                f"/api/v1/orgs/acme/action-approvals/{waiting['approval']}/approve/", {}, format="json"
            ),
            404,
            "not_found",
        )
        assert_envelope(
            outsider.post(
                f"/api/v1/orgs/globex/action-approvals/{waiting['approval']}/approve/", {}, format="json"
            ),
            404,
            "not_found",
        )
        assert server.requests == []
