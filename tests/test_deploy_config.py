"""The shipped deployment files trust X-Forwarded-* from the proxy only."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _forwarded_values(argv: list[str]) -> list[str]:
    values = []
    for index, arg in enumerate(argv):
        if arg.startswith("--forwarded-allow-ips="):
            values.append(arg.split("=", 1)[1])
        elif arg == "--forwarded-allow-ips":
            values.append(argv[index + 1])
    return values


def test_compose_trusts_only_the_proxy():
    compose = _compose()
    for name, service in compose["services"].items():
        command = service.get("command") or []
        for value in _forwarded_values(command if isinstance(command, list) else command.split()):
            assert "*" not in value, (name, value)
    env = compose["x-app"]["environment"]
    assert "*" not in env["FORWARDED_ALLOW_IPS"] and "127.0.0.1" in env["FORWARDED_ALLOW_IPS"]
    # uvicorn resolves the client address; the app must not trust X-Forwarded-For again.
    assert env["TRUSTED_PROXY_COUNT"] == "0"
    web = compose["services"]["web"]
    assert "--proxy-headers" in web["command"]
    assert _forwarded_values(web["command"]) == ["${FORWARDED_ALLOW_IPS:-127.0.0.1}"]
    # Published on loopback unless an operator says otherwise.
    assert all(str(port).startswith("${WEB_BIND:-127.0.0.1}:") for port in web["ports"])


def test_the_image_trusts_only_the_proxy():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "forwarded-allow-ips=*" not in dockerfile.replace(" ", "")
    assert re.search(r"FORWARDED_ALLOW_IPS=127\.0\.0\.1", dockerfile)
