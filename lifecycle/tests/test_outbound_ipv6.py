"""IPv6 forms that embed an IPv4 address are judged by the IPv4 address they reach."""

import pytest

from lifecycle.outbound import OutboundRefused, check_url


@pytest.mark.parametrize(
    "host",
    [
        "64:ff9b::7f00:1",  # NAT64 for 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 for 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 for 169.254.169.254 (cloud metadata)
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:a00:1::",  # 6to4 for 10.0.0.1
        "2002:7f00:1::1",  # 6to4 for 127.0.0.1
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a00:1",  # IPv4-compatible 10.0.0.1
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:a9fe:a9fe",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_embedded_private_ipv4_is_refused(settings, host):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(OutboundRefused):
        check_url(f"http://[{host}]/hook")


@pytest.mark.parametrize("host", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700:4700::1111"])
def test_embedded_public_ipv4_and_plain_public_ipv6_pass(settings, host):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    check_url(f"http://[{host}]/hook")
