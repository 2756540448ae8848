"""Running an agent's tools: a webhook call, or the tool's canned response.

Webhooks get the call's parameters as JSON and `Idempotency-Key: <tool_call_id>`, so a
retried POST can be recognised. Only connection errors and 5xx are retried (a 4xx will
not get better); the URL passes the outbound check before every call.

Values filled into the URL's template are percent-encoded whole (`/` and `?` included):
an end user's slot `../../internal/admin?x=1#` stays one path segment. The result and
any error come back with the stage's secret values masked: a webhook that echoes the
`Authorization` header it was sent must not hand the key to whoever is talking.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

import httpx

from lifecycle.outbound import OutboundRefused, apinned_client

from .compile import Tool
from .masking import NO_SECRETS, Masker, storable
from .text import render

logger = logging.getLogger(__name__)
RETRY_BACKOFF = 0.2


class ToolFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def url_value(value) -> str:
    """A template value as one URL component: every reserved character encoded, and a
    bare `.`/`..` too, which URL normalisation would otherwise treat as a path step."""
    quoted = quote(str(value), safe="")
    return quoted.replace(".", "%2E") if quoted and not quoted.strip(".") else quoted


async def run_tool(
    tool: Tool,
    parameters: dict,
    *,
    tool_call_id: str,
    conversation_id: str,
    lookup,
    masker: Masker = NO_SECRETS,
) -> object:
    """The tool's result, or ToolFailed with a message safe to show (secrets masked)."""
    try:
        result = await _run(
            tool, parameters, tool_call_id=tool_call_id, conversation_id=conversation_id, lookup=lookup
        )
    except ToolFailed as exc:
        raise ToolFailed(masker.text(exc.message)) from exc
    return storable(masker.mask(result))


async def _run(tool: Tool, parameters: dict, *, tool_call_id: str, conversation_id: str, lookup) -> object:
    if not tool.webhook_url:
        return tool.response

    def url_lookup(name):
        value = lookup(name)
        return None if value is None else url_value(value)

    url = render(tool.webhook_url, url_lookup)
    try:
        # Connects only to the address checked here (no second DNS answer to rebind).
        client = await apinned_client(url, timeout=tool.timeout)
    except OutboundRefused as exc:
        raise ToolFailed(exc.message) from exc
    headers = {name: render(value, lookup) for name, value in tool.headers.items()}
    headers["Idempotency-Key"] = tool_call_id
    body = {
        "tool": tool.name,
        "tool_call_id": tool_call_id,
        "conversation_id": conversation_id,
        "parameters": parameters,
    }
    attempts = tool.retries + 1
    async with client:
        for attempt in range(1, attempts + 1):
            try:
                response = await client.post(url, json=body, headers=headers)
            except httpx.ConnectTimeout as exc:  # never reached the server: safe to retry
                if attempt == attempts:
                    raise ToolFailed(f"{tool.name} could not be reached.") from exc
            except httpx.TimeoutException as exc:
                # A timeout may mean the call did happen: retrying could repeat its effect.
                raise ToolFailed(f"{tool.name} did not answer within {tool.timeout:g} s.") from exc
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise ToolFailed(f"{tool.name} could not be reached.") from exc
            else:
                if response.status_code >= 500 and attempt < attempts:
                    pass  # retried below
                elif response.status_code >= 400:
                    raise ToolFailed(f"{tool.name} answered {response.status_code}.")
                else:
                    try:
                        return response.json()
                    except ValueError:
                        return response.text
            await asyncio.sleep(RETRY_BACKOFF * attempt)
    raise ToolFailed(f"{tool.name} failed.")
