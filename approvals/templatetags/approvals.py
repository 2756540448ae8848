"""`{% approvals_waiting access as n %}`: the navigation's count of requests you may decide."""

from django import template

from ..selectors import approvals_waiting_count

register = template.Library()


@register.simple_tag
def approvals_waiting(access) -> int:
    if access is None:
        return 0
    return approvals_waiting_count(access)
