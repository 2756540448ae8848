from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import User
from lifecycle.api import Member, ObjectAction, OrgScopedViewSet, Rule
from lifecycle.errors import Invalid
from lifecycle.schema import ErrorEnvelopeSerializer

from ..diffing import diff_entries
from ..hooks import annotate_active_releases
from ..models import (
    Agent,
    AgentUserObjectPermission,
    AgentVersion,
    Component,
    Conversation,
    ConversationSource,
    Presence,
    TestResult,
)
from ..secrets import mask
from ..selectors import (
    agent_details,
    agent_filters,
    conversation_turns,
    conversations_of,
    test_results_of,
    versions_of,
)
from ..services.agents import agent_archive, agent_create, agent_unarchive, agent_update
from ..services.components import component_create, component_delete, component_update
from ..services.grants import can_share, grant_revoke, grant_set, grants_of
from ..services.presence import presence_active, presence_heartbeat
from ..services.testresults import test_result_record
from ..services.transfer import agent_export, agent_import
from ..services.versions import version_restore, version_save
from ..sync import annotate_updates_available
from ..versioning import contents_by_hash
from . import serializers as s

VIEW, CHANGE, DELETE = ObjectAction("view"), ObjectAction("change"), ObjectAction("delete")


class CanShare(Rule):
    """The agent's owner, or a manager of its stage (admins are managers everywhere)."""

    def allows(self, access, view, obj=None):
        return obj is None or can_share(access, obj)


AGENT_FILTERS = [
    OpenApiParameter("stage", str, description="A stage slug."),
    OpenApiParameter("lineage", str, description="A lineage slug."),
    OpenApiParameter("search", str),
    OpenApiParameter("archived", str, enum=["true", "false", "all"], description="Default: false."),
]


class AgentViewSet(OrgScopedViewSet):
    """Agents: one agent in one stage. New agents start in the first stage."""

    model = Agent
    stage_field = "stage"
    serializer_class = s.AgentSerializer
    rules = {
        "list": Member(),
        "create": Member(),  # the service requires editor of the first stage
        "retrieve": VIEW,
        "partial_update": CHANGE,
        "destroy": DELETE,
        "unarchive": DELETE,  # whoever may archive may bring it back
        "export": VIEW,
        "restore": CHANGE,
        "import_document": Member(),
    }

    def refine_queryset(self, queryset):
        queryset = agent_details(queryset, self.org)
        if self.action == "list":
            return agent_filters(queryset, self.request.query_params)
        return queryset.order_by("-created_at")

    @extend_schema(parameters=AGENT_FILTERS)
    def list(self, request, org):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(self.get_queryset(), request, view=self)
        annotate_updates_available(page)
        annotate_active_releases(page)
        return paginator.get_paginated_response(s.AgentSerializer(page, many=True).data)

    def retrieve(self, request, org, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=s.AgentCreateSerializer, responses={201: s.AgentSerializer})
    def create(self, request, org):
        data = s.AgentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent = agent_create(access=self.access, **data.validated_data)
        return Response(self._fresh(agent), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.AgentUpdateSerializer, responses={200: s.AgentSerializer})
    def partial_update(self, request, org, pk):
        agent = self.get_object()
        data = s.AgentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent_update(
            access=self.access,
            agent=agent,
            guard=self.if_match_guard(represent=self._fresh),
            **data.validated_data,
        )
        return Response(self._fresh(agent))

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, org, pk):
        agent_archive(access=self.access, agent=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: s.AgentSerializer})
    @action(detail=True, methods=["post"])
    def unarchive(self, request, org, pk):
        """Bring an archived agent back; 409 while its lineage has another active agent in the stage."""
        agent = agent_unarchive(access=self.access, agent=self.get_object())
        return Response(self._fresh(agent))

    @extend_schema(responses={200: s.ExportSerializer})
    @action(detail=True, methods=["get"])
    def export(self, request, org, pk):
        agent = self.get_object()
        response = Response(agent_export(agent))
        response["Content-Disposition"] = f'attachment; filename="{agent.lineage.slug}.agent.json"'
        return response

    @extend_schema(
        request=s.RestoreSerializer,
        responses={201: s.VersionSerializer, 423: ErrorEnvelopeSerializer},
        description="423 inside a freeze window of the agent's stage (see the stage policy).",
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, org, pk):
        agent = self.get_object()
        data = s.RestoreSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = version_restore(
            access=self.access,
            agent=agent,
            number=data.validated_data["version"],
            changelog=data.validated_data["changelog"],
            override_freeze=data.validated_data["override_freeze"],
        )
        return Response(s.VersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ExportSerializer, responses={201: s.AgentSerializer})
    @action(detail=False, methods=["post"], url_path="import")
    def import_document(self, request, org):
        agent = agent_import(access=self.access, document=request.data)
        return Response(self._fresh(agent), status=status.HTTP_201_CREATED)

    def _fresh(self, agent) -> dict:
        return self.represent(agent_details(Agent.objects.for_org(self.org), self.org).get(pk=agent.pk))


class AgentChildMixin:
    """Resources under /agents/{agent_id}/: visible only through a visible agent."""

    parent_model = Agent
    parent_url_kwarg = "agent_id"
    parent_field = "agent"
    parent_stage_field = "stage"


class ComponentViewSet(AgentChildMixin, OrgScopedViewSet):
    model = Component
    stage_field = None  # the parent agent's stage decides
    serializer_class = s.ComponentSerializer
    lookup_field = "uid"
    rules = {
        "list": VIEW,
        "retrieve": VIEW,
        "create": CHANGE,
        "partial_update": CHANGE,
        "destroy": CHANGE,
    }

    def refine_queryset(self, queryset):
        kind = self.request.query_params.get("kind")
        if kind:
            queryset = queryset.filter(kind=kind)
        return queryset.select_related("agent").order_by("id")

    @extend_schema(parameters=[OpenApiParameter("kind", str)])
    def list(self, request, org, agent_id):
        return self.paginated(self.get_queryset(), s.ComponentSerializer)

    def retrieve(self, request, org, agent_id, uid):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=s.ComponentCreateSerializer, responses={201: s.ComponentSerializer})
    def create(self, request, org, agent_id):
        data = s.ComponentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        component = component_create(access=self.access, agent=self.get_parent(), **data.validated_data)
        return Response(self.represent(component), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ComponentUpdateSerializer, responses={200: s.ComponentSerializer})
    def partial_update(self, request, org, agent_id, uid):
        component = self.get_object()
        data = s.ComponentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        component = component_update(
            access=self.access, component=component, guard=self.if_match_guard(), **data.validated_data
        )
        return Response(self.represent(component))

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, org, agent_id, uid):
        component_delete(access=self.access, component=self.get_object(), guard=self.if_match_guard())
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionViewSet(AgentChildMixin, OrgScopedViewSet):
    """The changelog: who saved what, when, and why."""

    model = AgentVersion
    stage_field = None  # the parent agent's stage decides
    serializer_class = s.VersionSerializer
    lookup_field = "number"
    lookup_value_regex = r"\d+"
    rules = {"list": VIEW, "retrieve": VIEW, "create": CHANGE, "diff": VIEW}

    def refine_queryset(self, queryset):
        return queryset.select_related("author", "source_version", "manifest").order_by("-number")

    def list(self, request, org, agent_id):
        return self.paginated(self.get_queryset(), s.VersionSerializer)

    @extend_schema(responses={200: s.VersionDetailSerializer})
    def retrieve(self, request, org, agent_id, number):
        version = self.get_object()
        data = dict(self.represent(version))
        contents = contents_by_hash(self.org.pk, [h for _, h in version.manifest.entries])
        data["contents"] = [
            {
                "uid": uid,
                "kind": contents[h].kind,
                "name": contents[h].name,
                "spec": mask(contents[h].kind, contents[h].spec),
            }
            for uid, h in version.manifest.entries
        ]
        return Response(data)

    @extend_schema(request=s.VersionCreateSerializer, responses={201: s.VersionSerializer})
    def create(self, request, org, agent_id):
        data = s.VersionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = version_save(access=self.access, agent=self.get_parent(), **data.validated_data)
        return Response(self.represent(version), status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("against", int, required=True, description="The version to compare with.")
        ],
        responses={200: s.DiffSerializer},
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, org, agent_id, number):
        version = self.get_object()
        raw = request.query_params.get("against", "")
        base = (
            versions_of(self.get_parent()).select_related("manifest").filter(number=raw).first()
            if raw.isdigit()
            else None
        )
        if base is None:
            raise Invalid(fields={"against": ["Give the number of another version of this agent."]})
        diff = diff_entries(self.org.pk, base.manifest.entries, version.manifest.entries)
        return Response({"base": base.number, "version": version.number, **diff})


class GrantViewSet(AgentChildMixin, OrgScopedViewSet):
    """Sharing one agent with members who have no role in its stage."""

    model = AgentUserObjectPermission
    stage_field = None  # the parent agent's stage decides
    parent_field = "content_object"
    serializer_class = s.GrantSerializer
    lookup_field = "user_id"
    lookup_url_kwarg = "pk"
    rules = {"list": VIEW, "retrieve": VIEW, "create": CanShare(), "destroy": CanShare()}

    def refine_queryset(self, queryset):
        return queryset.select_related("user").order_by("id")

    def represent(self, grant) -> dict:
        """A grant is all of one user's permissions on the agent."""
        permissions = grants_of(self.get_parent()).get(grant.user, [])
        return s.GrantSerializer({"id": grant.user_id, "user": grant.user, "permissions": permissions}).data

    def retrieve(self, request, org, agent_id, pk):
        return Response(self.represent(self.get_object()))

    def list(self, request, org, agent_id):
        grants = {user.pk: permissions for user, permissions in grants_of(self.get_parent()).items()}
        users = User.objects.filter(pk__in=grants).order_by("email")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(users, request, view=self)
        data = [s.GrantSerializer({"id": u.pk, "user": u, "permissions": grants[u.pk]}).data for u in page]
        return paginator.get_paginated_response(data)

    @extend_schema(request=s.GrantCreateSerializer, responses={201: s.GrantSerializer})
    def create(self, request, org, agent_id):
        data = s.GrantCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, permissions = grant_set(
            access=self.access,
            agent=self.get_parent(),
            user_ref=data.validated_data["user"],
            permissions=data.validated_data["permissions"],
        )
        body = {"id": user.pk, "user": user, "permissions": permissions}
        return Response(s.GrantSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, org, agent_id, pk):
        grant = self.get_object()
        grant_revoke(access=self.access, agent=self.get_parent(), user=grant.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PresenceViewSet(AgentChildMixin, OrgScopedViewSet):
    """Who is editing which module of the agent right now (heartbeats live 2 minutes)."""

    model = Presence
    stage_field = None  # the parent agent's stage decides
    serializer_class = s.PresenceSerializer
    rules = {"list": VIEW, "create": CHANGE}

    def list(self, request, org, agent_id):
        return self.paginated(presence_active(self.get_parent()), s.PresenceSerializer)

    @extend_schema(request=s.HeartbeatSerializer, responses={200: s.PresenceSerializer})
    def create(self, request, org, agent_id):
        data = s.HeartbeatSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        presence = presence_heartbeat(access=self.access, agent=self.get_parent(), **data.validated_data)
        return Response(s.PresenceSerializer(presence).data)


class TestResultViewSet(AgentChildMixin, OrgScopedViewSet):
    """Testers' verdicts on conversations with the agent."""

    __test__ = False
    model = TestResult
    stage_field = None  # the parent agent's stage decides
    serializer_class = s.TestResultSerializer
    rules = {"list": VIEW, "retrieve": VIEW, "create": VIEW}

    def refine_queryset(self, queryset):
        return queryset.select_related("created_by", "stage").order_by("-created_at")

    def list(self, request, org, agent_id):
        return self.paginated(
            test_results_of(self.get_parent()).order_by("-created_at"), s.TestResultSerializer
        )

    def retrieve(self, request, org, agent_id, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=s.TestResultCreateSerializer, responses={201: s.TestResultSerializer})
    def create(self, request, org, agent_id):
        data = s.TestResultCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        conversation_id = fields.pop("conversation", None)
        result = test_result_record(
            access=self.access, agent=self.get_parent(), conversation_id=conversation_id, **fields
        )
        return Response(self.represent(result), status=status.HTTP_201_CREATED)


class ConversationViewSet(AgentChildMixin, OrgScopedViewSet):
    """The agent's conversations, every source: read-only (they are records)."""

    model = Conversation
    stage_field = None  # the parent agent's stage decides
    serializer_class = s.ConversationSerializer
    rules = {"list": VIEW, "retrieve": VIEW}

    def refine_queryset(self, queryset):
        return queryset.select_related("stage", "started_by").order_by("-started_at", "-id")

    @extend_schema(
        parameters=[OpenApiParameter("source", str, enum=ConversationSource.values)],
        responses={200: s.ConversationSerializer(many=True)},
    )
    def list(self, request, org, agent_id):
        source = request.query_params.get("source")
        if source and source not in ConversationSource.values:
            raise Invalid(fields={"source": [f"One of: {', '.join(ConversationSource.values)}."]})
        conversations = conversations_of(self.get_parent(), source=source).order_by("-started_at", "-id")
        return self.paginated(conversations, s.ConversationSerializer)

    @extend_schema(responses={200: s.ConversationDetailSerializer})
    def retrieve(self, request, org, agent_id, pk):
        conversation = self.get_object()
        conversation.turn_list = list(conversation_turns(conversation))
        return Response(s.ConversationDetailSerializer(conversation).data)
