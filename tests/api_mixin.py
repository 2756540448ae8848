"""The cross-tenant test mixin every org-scoped endpoint joins (NetBox style).

Subclass `OrgScopedEndpointTests`, name the view classes under test, say how to make an
object and which request a visible user may not make, and the endpoint gets:
- another org's URL → 404, the same body as an org that does not exist;
- another org's object id under your own org → 404, the same body as a missing id;
- an action you may see but not do → 403, written to the audit log;
- a list that never includes another org's rows;
- an ETag on every single-object GET, and 412 for a stale If-Match, with nothing changed;
- 401 without credentials;
- bad input on create → 400 with the envelope, never a 500, and nothing written.

`tests/test_meta.py` fails if an org-scoped view is not covered by some subclass.
"""

from __future__ import annotations

import json
import uuid

from lifecycle.audit import AuditEvent

COVERED_VIEWS: set[type] = set()
ONE_MB = "x" * (1024 * 1024)


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "fields", "details"} <= set(body["error"]), body
    if code:
        assert body["error"]["code"] == code, body
    return body


class OrgScopedEndpointTests:
    #: View classes this subclass covers (read by the coverage meta-test).
    views: tuple[type, ...] = ()
    #: Paths with {org} (and {id} for the detail path).
    list_url: str = ""
    detail_url: str | None = None
    #: Key of the lookup value in list results ("id", "slug", "uid"...).
    lookup_key: str = "id"
    #: Who can list and read.
    reader: str = "admin"
    #: How to knock on the list URL (action endpoints take a POST), and whether it lists rows.
    probe: tuple = ("GET", None)
    listable: bool = True
    #: A request a user can see but not do: (who, method, "list"|"detail", payload).
    forbidden: tuple | None = None
    #: A write for the stale-ETag test: (who, method, payload); DELETE allowed.
    etag_write: tuple | None = None
    #: A valid create body for the bad-input tests, and who may create.
    create_payload: dict | None = None
    creator: str = "admin"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        COVERED_VIEWS.update(cls.views)
        # Tests that do not apply to this endpoint are removed, not skipped; the meta-test
        # checks that every endpoint with a detail route or a create declares them.
        inapplicable = {
            "test_foreign_object_under_own_org_is_404_like_a_missing_id": not cls.detail_url,
            "test_foreign_parent_under_own_org_is_404": "{" not in cls.list_url.replace("{org}", ""),
            "test_list_never_includes_other_orgs_rows": not cls.listable,
            "test_see_but_not_do_is_403_and_audited": cls.forbidden is None,
            "test_get_has_etag_and_stale_if_match_is_412": not cls.detail_url or cls.etag_write is None,
            "test_bad_input_on_create_is_400_and_writes_nothing": cls.create_payload is None,
            "test_read_only_fields_sent_back_are_ignored": cls.create_payload is None or not cls.detail_url,
            "test_bad_input_on_update_is_400_and_changes_nothing": not cls.detail_url
            or cls.etag_write is None
            or cls.etag_write[1] != "PATCH",
        }
        for name, drop in inapplicable.items():
            if drop:
                setattr(cls, name, None)
            elif getattr(cls, name) is None:
                # An intermediate base (AgentChildTests) had it removed for itself: a
                # subclass it applies to gets the test back, not silently nothing.
                setattr(cls, name, getattr(OrgScopedEndpointTests, name))

    # --- hooks ------------------------------------------------------------------------
    def make_object(self, world, org) -> str:
        """Create one object in `org` and return its lookup value."""
        raise NotImplementedError

    def count(self, world) -> int:
        """How many rows the endpoint's model holds in acme (to prove nothing was written)."""
        model = self.views[0].model
        return model.objects.for_org(world.acme).count()

    def listed(self, response) -> set[str]:
        """The lookup values a list response shows."""
        return {str(item[self.lookup_key]) for item in response.json()["results"]}

    def path_kwargs(self, world, org) -> dict:
        """More URL parts for nested resources, e.g. {"agent": <an agent of org>}."""
        return {}

    # --- helpers ----------------------------------------------------------------------
    def url(self, world, kind: str, org, lookup: str | None = None) -> str:
        slug = getattr(org, "slug", org)
        # An org that does not exist borrows acme's parents: only the org is missing.
        parts = self.path_kwargs(world, org if hasattr(org, "slug") else world.acme)
        template = self.list_url if kind == "list" else self.detail_url
        return template.format(org=slug, id=lookup, **parts)

    def request(self, client, method: str, url: str, payload=None, **headers):
        kwargs = {"format": "json"} if payload is not None else {}
        return getattr(client, method.lower())(url, payload, **kwargs, **headers)

    # --- the tests --------------------------------------------------------------------
    def test_foreign_org_url_is_404_like_a_missing_org(self, world):
        client = world.client(self.reader)
        method, payload = self.probe
        foreign = self.request(client, method, self.url(world, "list", world.globex, "x"), payload)
        missing = self.request(client, method, self.url(world, "list", "no-such-org", "x"), payload)
        assert_envelope(foreign, 404, "not_found")
        assert foreign.json() == missing.json()

    def test_foreign_object_under_own_org_is_404_like_a_missing_id(self, world):
        foreign_id = self.make_object(world, world.globex)
        client = world.client(self.reader)
        foreign = client.get(self.url(world, "detail", world.acme, foreign_id))
        missing = client.get(self.url(world, "detail", world.acme, self.missing_lookup()))
        assert_envelope(foreign, 404, "not_found")
        assert foreign.json() == missing.json()
        for method in ("patch", "delete"):
            response = getattr(client, method)(
                self.url(world, "detail", world.acme, foreign_id), {}, format="json"
            )
            assert response.status_code in (404, 405), response.content

    def test_foreign_parent_under_own_org_is_404(self, world):
        foreign_parts = self.path_kwargs(world, world.globex)
        method, payload = self.probe
        url = self.list_url.format(org="acme", id="x", **foreign_parts)
        assert_envelope(self.request(world.client(self.reader), method, url, payload), 404, "not_found")

    def missing_lookup(self) -> str:
        return str(uuid.uuid4())

    def test_see_but_not_do_is_403_and_audited(self, world):
        who, method, kind, payload = self.forbidden
        lookup = self.make_object(world, world.acme) if kind == "detail" else None
        before = AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count()
        response = self.request(world.client(who), method, self.url(world, kind, world.acme, lookup), payload)
        assert_envelope(response, 403, "forbidden")
        after = AuditEvent.objects.for_org(world.acme).filter(action="access.denied").count()
        assert after == before + 1

    def test_list_never_includes_other_orgs_rows(self, world):
        mine = self.make_object(world, world.acme)
        theirs = self.make_object(world, world.globex)
        response = world.client(self.reader).get(self.url(world, "list", world.acme), {"page_size": 500})
        assert response.status_code == 200, response.content
        keys = self.listed(response)
        assert str(mine) in keys
        if str(theirs) != str(mine):
            assert str(theirs) not in keys
        # The globex row exists: its own org's owner sees it.
        other = world.client("outsider").get(self.url(world, "list", world.globex), {"page_size": 500})
        assert str(theirs) in self.listed(other)

    def test_get_has_etag_and_stale_if_match_is_412(self, world):
        who, method, payload = self.etag_write
        lookup = self.make_object(world, world.acme)
        url = self.url(world, "detail", world.acme, lookup)
        client = world.client(who)
        first = client.get(url)
        assert first.status_code == 200
        etag = first["ETag"]
        assert etag.startswith('"') and len(etag) > 10
        stale = self.request(client, method, url, payload, HTTP_IF_MATCH='"stale-etag"')
        assert_envelope(stale, 412, "precondition_failed")
        assert client.get(url).json() == first.json(), "a refused write changed nothing"
        fresh = self.request(client, method, url, payload, HTTP_IF_MATCH=etag)
        assert fresh.status_code in (200, 202, 204), fresh.content

    def test_anonymous_is_401(self, world):
        method, payload = self.probe
        response = self.request(
            world.client("anonymous"), method, self.url(world, "list", world.acme), payload
        )
        assert_envelope(response, 401, "unauthenticated")

    # --- bad input --------------------------------------------------------------------
    def bad_payloads(self, payload=None, *, partial=False):
        payload = payload if payload is not None else self.create_payload
        if not partial:
            yield "empty object", {}
        yield "not an object", ["a", "list"]
        yield "unknown field", {**payload, "changlog": "typo"}
        for key, value in payload.items():
            if isinstance(value, str):
                yield f"{key}: NUL byte", {**payload, key: value + "\x00"}
                yield f"{key}: 1 MB string", {**payload, key: ONE_MB}
                yield f"{key}: list instead of string", {**payload, key: [value]}
                yield f"{key}: object instead of string", {**payload, key: {"v": value}}
            elif isinstance(value, bool):
                yield f"{key}: string instead of bool", {**payload, key: "maybe"}
            elif isinstance(value, int):
                yield f"{key}: string instead of int", {**payload, key: "many"}
            elif isinstance(value, dict):
                yield f"{key}: string instead of object", {**payload, key: "x"}
            elif isinstance(value, list):
                yield f"{key}: string instead of list", {**payload, key: "x"}

    def test_bad_input_on_create_is_400_and_writes_nothing(self, world):
        client = world.client(self.creator)
        url = self.url(world, "list", world.acme)
        before = self.count(world)
        for label, payload in self.bad_payloads():
            response = client.post(url, payload, format="json")
            body = assert_envelope(response, 400, "invalid")
            assert body["error"]["message"], label
            if label == "unknown field":
                assert "changlog" in body["error"]["fields"], body
        malformed = client.post(url, data="{not json", content_type="application/json")
        assert_envelope(malformed, 400, "invalid")
        assert self.count(world) == before

    def test_bad_input_on_update_is_400_and_changes_nothing(self, world):
        who, _, payload = self.etag_write
        url = self.url(world, "detail", world.acme, self.make_object(world, world.acme))
        client = world.client(who)
        before = client.get(url).json()
        for label, bad in self.bad_payloads(payload, partial=True):
            response = client.patch(url, bad, format="json")
            assert_envelope(response, 400, "invalid")
            assert client.get(url).json() == before, label

    def test_read_only_fields_sent_back_are_ignored(self, world):
        client = world.client(self.creator)
        created = client.post(self.url(world, "list", world.acme), self.create_payload, format="json")
        assert created.status_code in (201, 202), created.content
        body = created.json()
        echoed = {**self.create_payload, **{k: v for k, v in body.items() if k not in self.create_payload}}
        again = client.post(
            self.url(world, "list", world.acme), json.loads(json.dumps(echoed)), format="json"
        )
        # Not rejected for the read-only fields (it may conflict as a duplicate: that is fine).
        assert again.status_code != 400 or set(again.json()["error"]["fields"]) <= set(self.create_payload), (
            again.content
        )
