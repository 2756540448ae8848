from django.contrib.auth import update_session_auth_hash
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from lifecycle.api import Member, OrgAdmin, OrgOwner, OrgScopedAPIView, OrgScopedViewSet, PublicAPIView
from lifecycle.errors import Invalid, NotFound
from lifecycle.idempotency import carries_secret

from ..models import ApiToken, Membership, Stage
from ..selectors import member_details, orgs_for_user, stages_of, tokens_of
from ..services import auth as auth_services
from ..services.members import member_add, member_remove, member_update
from ..services.orgs import org_archive, org_create, org_update
from ..services.stages import stage_create, stage_delete, stage_update
from . import serializers as s


def org_data(org, role: str) -> dict:
    return {"id": str(org.id), "slug": org.slug, "name": org.name, "role": role, "created_at": org.created_at}


# --- auth -------------------------------------------------------------------------------
class TokenView(PublicAPIView):
    """Sign in for a token, or revoke the token used."""

    throttle_classes = []

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else super().get_permissions()

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.TokenIssuedSerializer}, auth=[])
    def post(self, request):
        data = s.TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = auth_services.credentials_check(
            email=data.validated_data["email"],
            password=data.validated_data["password"],
            ip=getattr(request._request, "client_ip", None),
            request=request._request,
        )
        token, key = auth_services.token_create(
            user=user,
            name=data.validated_data.get("name", ""),
            expires_in_days=data.validated_data.get("expires_in_days"),
        )
        body = {"id": token.id, "name": token.name, "token": key, "expires_at": token.expires_at}
        return carries_secret(Response(s.TokenIssuedSerializer(body).data, status=status.HTTP_201_CREATED))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        if not isinstance(request.auth, ApiToken):
            raise Invalid("Only a token can revoke itself; sign out of the browser session instead.")
        auth_services.token_revoke(user=request.user, token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenListView(PublicAPIView):
    """Your named tokens (for CI), without their keys."""

    @extend_schema(responses={200: s.TokenSerializer(many=True)})
    def get(self, request):
        return self.paginated(tokens_of(request.user), s.TokenSerializer)

    @extend_schema(request=s.NamedTokenCreateSerializer, responses={201: s.TokenIssuedSerializer})
    def post(self, request):
        data = s.NamedTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = auth_services.token_create(user=request.user, **data.validated_data)
        body = {"id": token.id, "name": token.name, "token": key, "expires_at": token.expires_at}
        return carries_secret(Response(s.TokenIssuedSerializer(body).data, status=status.HTTP_201_CREATED))


class TokenDetailView(PublicAPIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request, token_id):
        token = tokens_of(request.user).filter(pk=token_id).first()
        if token is None:
            raise NotFound()
        auth_services.token_revoke(user=request.user, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordView(PublicAPIView):
    @extend_schema(request=s.PasswordChangeSerializer, responses={204: None})
    def post(self, request):
        data = s.PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = request.auth if isinstance(request.auth, ApiToken) else None
        auth_services.password_change(user=request.user, keep_token=token, **data.validated_data)
        if token is None:  # signed in by the browser session: that one stays signed in
            update_session_auth_hash(request._request, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(PublicAPIView):
    @extend_schema(responses={200: s.MeSerializer})
    def get(self, request):
        user = request.user
        orgs = [org_data(org, org.role) for org in orgs_for_user(user)]
        return Response(
            s.MeSerializer({"id": user.id, "email": user.email, "name": user.name, "orgs": orgs}).data
        )


# --- orgs -------------------------------------------------------------------------------
class OrgListView(PublicAPIView):
    @extend_schema(responses={200: s.OrgSerializer(many=True)})
    def get(self, request):
        return self.paginated(orgs_for_user(request.user), s.OrgSerializer)

    @extend_schema(request=s.OrgCreateSerializer, responses={201: s.OrgSerializer})
    def post(self, request):
        data = s.OrgCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = org_create(actor=request.user, **data.validated_data)
        return Response(s.OrgSerializer(org_data(org, "owner")).data, status=status.HTTP_201_CREATED)


class OrgDetailView(OrgScopedAPIView):
    stage_field = None  # the org itself
    rules = {"get": Member(), "patch": OrgAdmin(), "delete": OrgOwner()}

    def _data(self) -> dict:
        return s.OrgSerializer(org_data(self.org, self.access.role)).data

    @extend_schema(responses={200: s.OrgSerializer})
    def get(self, request, org):
        return Response(self._data())

    @extend_schema(request=s.OrgUpdateSerializer, responses={200: s.OrgSerializer})
    def patch(self, request, org):
        self.precondition(self._data())
        data = s.OrgUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org_update(access=self.access, **data.validated_data)
        return Response(self._data())

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, org):
        self.precondition(self._data())
        org_archive(access=self.access)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- members ----------------------------------------------------------------------------
class MemberViewSet(OrgScopedViewSet):
    model = Membership
    stage_field = None
    serializer_class = s.MemberSerializer
    rules = {
        "list": Member(),
        "retrieve": Member(),
        "create": OrgAdmin(),
        "partial_update": OrgAdmin(),
        "destroy": Member(),  # members may leave; the service decides the rest
    }

    def refine_queryset(self, queryset):
        return member_details(queryset, self.org)

    def list(self, request, org):
        return self.paginated(self.get_queryset(), s.MemberSerializer)

    def retrieve(self, request, org, pk):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=s.MemberCreateSerializer, responses={201: s.MemberSerializer})
    def create(self, request, org):
        data = s.MemberCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = member_add(access=self.access, **data.validated_data)
        return Response(self._fresh(membership), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.MemberUpdateSerializer, responses={200: s.MemberSerializer})
    def partial_update(self, request, org, pk):
        membership = self.get_object()
        data = s.MemberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member_update(access=self.access, membership=membership, **data.validated_data)
        return Response(self._fresh(membership))

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, org, pk):
        member_remove(access=self.access, membership=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _fresh(self, membership) -> dict:
        return self.represent(self.get_queryset().get(pk=membership.pk))


# --- stages -----------------------------------------------------------------------------
class StageViewSet(OrgScopedViewSet):
    model = Stage
    stage_field = None
    serializer_class = s.StageSerializer
    lookup_field = "slug"
    rules = {
        "list": Member(),
        "retrieve": Member(),
        "create": OrgAdmin(),
        "partial_update": OrgAdmin(),
        "destroy": OrgAdmin(),
    }

    def refine_queryset(self, queryset):
        return queryset.order_by("position")

    def list(self, request, org):
        return self.paginated(self.get_queryset(), s.StageSerializer)

    def retrieve(self, request, org, slug):
        return Response(self.represent(self.get_object()))

    @extend_schema(request=s.StageCreateSerializer, responses={201: s.StageSerializer})
    def create(self, request, org):
        data = s.StageCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stage = stage_create(access=self.access, **data.validated_data)
        return Response(self.represent(stage), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.StageUpdateSerializer, responses={200: s.StageSerializer})
    def partial_update(self, request, org, slug):
        stage = self.get_object()
        data = s.StageUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stage = stage_update(access=self.access, stage=stage, **data.validated_data)
        return Response(self.represent(stages_of(self.org).get(pk=stage.pk)))

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, org, slug):
        stage_delete(access=self.access, stage=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
