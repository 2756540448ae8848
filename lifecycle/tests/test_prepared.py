"""Prepared reads: compiled once, scoped like any read, the same answers as the ORM."""

import threading
import uuid

import pytest

from accounts.models import Stage
from lifecycle.prepared import PreparedRead, loaded
from lifecycle.tenancy import UnscopedQueryError

STAGE_READ = PreparedRead(
    lambda org, slug: Stage.objects.for_org(org).filter(slug=slug),
    fields=("id", "org_id", "name", "position"),
    org=uuid.UUID,
    slug=str,
)
BY_ORG_SLUG = PreparedRead(
    lambda org, slug: Stage.objects.for_org_slug(org).filter(slug=slug).order_by(),
    fields=("id", "name"),
    org=str,
    slug=str,
)


def test_a_prepared_read_answers_as_the_orm_does_for_each_new_value(world):
    for org in (world.acme, world.globex):
        for slug in ("development", "production"):
            stage = Stage.objects.for_org(org).get(slug=slug)
            found = STAGE_READ.first(org=org.pk, slug=slug)
            assert found == {"id": stage.pk, "org_id": org.pk, "name": stage.name, "position": stage.position}
            assert BY_ORG_SLUG.first(org=org.slug, slug=slug) == {"id": stage.pk, "name": stage.name}
    assert STAGE_READ.first(org=world.acme.pk, slug="no-such-stage") is None
    assert STAGE_READ.first(org=uuid.uuid4(), slug="development") is None, "another org's rows stay out"
    assert BY_ORG_SLUG.first(org="acme'; --", slug="development") is None


def test_a_prepared_read_runs_on_any_thread(transactional_db, world):
    STAGE_READ.first(org=world.acme.pk, slug="testing")  # compiled on this thread
    answers = []

    def other():
        from django.db import connection

        answers.append(STAGE_READ.first(org=world.acme.pk, slug="testing"))
        connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert answers[0]["name"] == "Testing"


def test_an_unscoped_or_misused_prepared_read_is_refused(world):
    unscoped = PreparedRead(lambda slug: Stage.objects.filter(slug=slug), fields=("id",), slug=str)
    with pytest.raises(UnscopedQueryError):
        unscoped.first(slug="testing")
    with pytest.raises(TypeError):
        STAGE_READ.first(org=str(world.acme.pk), slug="testing")
    with pytest.raises(TypeError):
        STAGE_READ.first(org=world.acme.pk)
    folded = PreparedRead(
        lambda org, slug: Stage.objects.for_org(org).filter(slug="testing"),
        fields=("id",),
        org=uuid.UUID,
        slug=str,
    )
    with pytest.raises(ValueError, match="slug"):
        folded.first(org=world.acme.pk, slug="testing")


def test_loaded_builds_the_instance_the_orm_would_and_defers_the_rest(world):
    stage = Stage.objects.for_org(world.acme).get(slug="staging")
    partial = loaded(Stage, {"slug": stage.slug, "id": stage.pk, "org_id": world.acme.pk})
    assert (partial.pk, partial.org_id, partial.slug) == (stage.pk, world.acme.pk, "staging")
    assert partial.get_deferred_fields() >= {"name", "position"}
    assert partial.name == stage.name, "a deferred field is read when touched"
