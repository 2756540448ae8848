from django import template

register = template.Library()


@register.simple_tag
def notifications_unread(access) -> int:
    """The member's unread notifications, for the navigation's badge."""
    if access is None:
        return 0
    from webhooks.notifications import unread_count

    return unread_count(access)
