"""Friday 12:00 → Monday 08:00 in Europe/Berlin and America/Los_Angeles, DST weekends included.

Every expected instant below is worked out by hand in UTC (not with zoneinfo, which the
code under test uses): Berlin is UTC+1 in winter (CET) and UTC+2 in summer (CEST), and
switches on the last Sundays of March and October; Los Angeles is UTC-8 (PST) and UTC-7
(PDT), and switches on the second Sunday of March and the first Sunday of November. In
2026 the two switch on different weekends: the weeks between, Berlin and Los Angeles
are 8 hours apart instead of 9.
"""

from datetime import datetime

import pytest

from rollouts.decision import change_decide, open_window, upcoming_window
from rollouts.policy import policy_validate
from tests.factories import make_agent

from .test_decision import set_policy


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def weekend(zone: str) -> list[dict]:
    return policy_validate(
        {
            "freeze_windows": [
                {
                    "id": "weekend",
                    "kind": "weekly",
                    "days": ["fri"],
                    "start": "12:00",
                    "end_day": "mon",
                    "end": "08:00",
                    "timezone": zone,
                    "reason": "no Friday deploys",
                }
            ]
        }
    )["freeze_windows"]


# (zone, what the weekend is, Friday 11:59 local, Friday 12:00, Monday 07:59, Monday 08:00), in UTC.
BERLIN, LA = "Europe/Berlin", "America/Los_Angeles"
WEEKENDS = [
    # Berlin, spring forward on Sunday 29 March 2026: Friday is CET, Monday is CEST.
    (BERLIN, "EU spring", "2026-03-27T10:59Z", "2026-03-27T11:00Z", "2026-03-30T05:59Z", "2026-03-30T06:00Z"),
    # Berlin, fall back on Sunday 25 October 2026: Friday is CEST, Monday is CET.
    (BERLIN, "EU autumn", "2026-10-23T09:59Z", "2026-10-23T10:00Z", "2026-10-26T06:59Z", "2026-10-26T07:00Z"),
    # Berlin, an ordinary winter weekend (the US has already switched).
    (BERLIN, "EU winter", "2026-03-13T10:59Z", "2026-03-13T11:00Z", "2026-03-16T06:59Z", "2026-03-16T07:00Z"),
    # Berlin, the US autumn weekend: Berlin is already on CET all weekend.
    (BERLIN, "US autumn", "2026-10-30T10:59Z", "2026-10-30T11:00Z", "2026-11-02T06:59Z", "2026-11-02T07:00Z"),
    # Los Angeles, spring forward on Sunday 8 March 2026: Friday is PST, Monday is PDT.
    (LA, "US spring", "2026-03-06T19:59Z", "2026-03-06T20:00Z", "2026-03-09T14:59Z", "2026-03-09T15:00Z"),
    # Los Angeles, fall back on Sunday 1 November 2026: Friday is PDT, Monday is PST.
    (LA, "US autumn", "2026-10-30T18:59Z", "2026-10-30T19:00Z", "2026-11-02T15:59Z", "2026-11-02T16:00Z"),
    # Los Angeles, the EU spring weekend: PDT all weekend.
    (LA, "EU spring", "2026-03-27T18:59Z", "2026-03-27T19:00Z", "2026-03-30T14:59Z", "2026-03-30T15:00Z"),
    # Los Angeles, the EU autumn weekend: still PDT all weekend.
    (LA, "EU autumn", "2026-10-23T18:59Z", "2026-10-23T19:00Z", "2026-10-26T14:59Z", "2026-10-26T15:00Z"),
]  # fmt: skip


@pytest.mark.parametrize(("zone", "which", "before", "start", "last", "end"), WEEKENDS)
def test_the_weekend_freeze_has_exact_wall_clock_edges(zone, which, before, start, last, end):
    frozen = weekend(zone)
    ends_at = z(end).isoformat().replace("+00:00", "Z")
    assert open_window(frozen, z(before)) is None, f"{which}: Friday 11:59 is still open"
    assert open_window(frozen, z(start)) == {
        "id": "weekend",
        "reason": "no Friday deploys",
        "ends_at": ends_at,
    }
    assert open_window(frozen, z(last))["ends_at"] == ends_at, f"{which}: Monday 07:59 is frozen"
    assert open_window(frozen, z(end)) is None, f"{which}: Monday 08:00 is open again"
    # The Friday before and the Monday after are plain working days.
    assert open_window(frozen, z(before).replace(day=z(before).day - 1)) is None
    # Announced ahead: from Thursday 12:00 local, the next opening is that Friday 12:00.
    upcoming = upcoming_window(frozen, z(before))
    assert upcoming["starts_at"] == z(start).isoformat().replace("+00:00", "Z")
    assert upcoming["ends_at"] == ends_at


@pytest.mark.parametrize(
    ("zone", "instant"),
    [
        ("Europe/Berlin", "2026-03-29T00:59Z"),  # Sunday 01:59 CET, just before the hour that does not exist
        ("Europe/Berlin", "2026-03-29T01:00Z"),  # Sunday 03:00 CEST
        ("Europe/Berlin", "2026-10-25T00:30Z"),  # Sunday 02:30 CEST, the first time
        ("Europe/Berlin", "2026-10-25T01:30Z"),  # Sunday 02:30 CET, the second time
        ("America/Los_Angeles", "2026-03-08T09:59Z"),  # Sunday 01:59 PST
        ("America/Los_Angeles", "2026-03-08T10:00Z"),  # Sunday 03:00 PDT
        ("America/Los_Angeles", "2026-11-01T08:30Z"),  # Sunday 01:30 PDT, the first time
        ("America/Los_Angeles", "2026-11-01T09:30Z"),  # Sunday 01:30 PST, the second time
    ],
)
def test_the_weekend_stays_frozen_through_the_clock_change(zone, instant):
    assert open_window(weekend(zone), z(instant)) is not None


def test_an_occurrence_is_an_hour_shorter_or_longer_when_the_clocks_change():
    def length(zone, friday_noon):
        window = open_window(weekend(zone), z(friday_noon))
        return (z(window["ends_at"]) - z(friday_noon)).total_seconds() / 3600

    assert length("Europe/Berlin", "2026-03-13T11:00Z") == 68
    assert length("Europe/Berlin", "2026-03-27T11:00Z") == 67
    assert length("Europe/Berlin", "2026-10-23T10:00Z") == 69
    assert length("America/Los_Angeles", "2026-03-06T20:00Z") == 67
    assert length("America/Los_Angeles", "2026-10-30T19:00Z") == 69


def test_upcoming_looks_seven_days_ahead_and_skips_the_window_open_now():
    frozen = weekend("Europe/Berlin")
    # Monday 08:00 CET: the next freeze is Friday, four and a bit days ahead.
    assert upcoming_window(frozen, z("2026-03-16T07:00Z"))["starts_at"] == "2026-03-20T11:00:00Z"
    # Inside the window, the next one is the following Friday (it opens within 7 days).
    assert upcoming_window(frozen, z("2026-03-20T11:00Z"))["starts_at"] == "2026-03-27T11:00:00Z"
    # A shorter horizon sees nothing.
    from datetime import timedelta

    assert upcoming_window(frozen, z("2026-03-16T07:00Z"), within=timedelta(days=2)) is None
    once = policy_validate(
        {
            "freeze_windows": [
                {
                    "id": "launch",
                    "kind": "once",
                    "starts_at": "2026-03-25T09:00:00+01:00",
                    "ends_at": "2026-03-26T09:00:00+01:00",
                    "reason": "launch",
                }
            ]
        }
    )["freeze_windows"]
    assert upcoming_window(once, z("2026-03-17T09:00Z")) is None  # eight days ahead
    assert upcoming_window(once, z("2026-03-18T09:00Z")) == {
        "id": "launch",
        "reason": "launch",
        "starts_at": "2026-03-25T08:00:00Z",
        "ends_at": "2026-03-26T08:00:00Z",
    }
    assert upcoming_window(once, z("2026-03-25T08:00Z")) is None  # open now, not upcoming
    # The earliest of several wins.
    both = [*once, *frozen]
    assert upcoming_window(both, z("2026-03-23T12:00Z"))["id"] == "launch"
    assert upcoming_window(both, z("2026-03-26T09:00Z"))["id"] == "weekend"


@pytest.mark.parametrize(
    ("zone", "closed", "opened"),
    [
        ("Europe/Berlin", "2026-10-23T10:00Z", "2026-10-26T07:00Z"),
        ("America/Los_Angeles", "2026-03-06T20:00Z", "2026-03-09T15:00Z"),
    ],
)
def test_the_decision_at_the_edges(world, zone, closed, opened):
    set_policy(world, "testing", {"freeze_windows": [{**weekend(zone)[0]}]})
    agent = make_agent(world.acme)
    target = agent.stage.__class__.objects.for_org(world.acme).get(slug="testing")
    access = world.access("admin")

    def decide(at):
        return change_decide(access=access, kind="promote", agent=agent, target_stage=target, now=z(at))

    assert decide(closed).frozen
    assert decide(closed).freeze["window"]["ends_at"] == z(opened).isoformat().replace("+00:00", "Z")
    assert not decide(opened).frozen
    minute_before = z(closed).replace(minute=59, hour=z(closed).hour - 1)
    assert decide(minute_before.isoformat()).freeze is None
    overridden = change_decide(
        access=access,
        kind="promote",
        agent=agent,
        target_stage=target,
        now=z(closed),
        override_freeze={"reason": "hotfix for a data leak"},
    )
    assert overridden.overridden and not overridden.frozen
