"""The `openai` engine: any OpenAI-compatible chat-completions endpoint (OpenAI, Azure,
vLLM, Ollama …), streaming, with the agent's tools offered as functions.

The base URL and key come from the stage's `OPENAI_BASE_URL` and `OPENAI_API_KEY`
variables, the model and temperature from the agent's settings.
"""

from __future__ import annotations

import json
import logging

import httpx

from lifecycle.outbound import OutboundRefused, apinned_client

from .approvals import APPROVED, gated
from .engine import Context
from .text import estimate_tokens
from .tools import ToolFailed, run_tool

logger = logging.getLogger(__name__)
MAX_TOOL_ROUNDS = 3
TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class EngineFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _messages(context: Context, text: str) -> list[dict]:
    system = context.render(context.instructions)  # secrets stay masked: a model can repeat them
    notes = [h["text"] for h in context.history if h["role"] == "context"]
    if notes:
        system += "\n\nContext from the application:\n" + "\n".join(f"- {n}" for n in notes)
    messages = [{"role": "system", "content": system}] if system else []
    for item in context.history:
        if item["role"] in ("user", "agent"):
            messages.append(
                {"role": "user" if item["role"] == "user" else "assistant", "content": item["text"]}
            )
    messages.append({"role": "user", "content": text})
    return messages


def _functions(context: Context) -> list[dict]:
    return [
        {
            "type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
        }
        for tool in context.compiled.tools.values()
    ]


async def _stream(client: httpx.AsyncClient, url: str, headers: dict, body: dict):
    """Yield the chunks of a streamed chat completion."""
    async with client.stream("POST", url, headers=headers, json=body) as response:
        if response.status_code >= 400:
            detail = (await response.aread())[:200].decode(errors="replace")
            raise EngineFailed(f"The model endpoint answered {response.status_code}: {detail}")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                return
            try:
                yield json.loads(payload)
            except ValueError:
                logger.warning("skipping a malformed chunk from the model endpoint")


class OpenAIEngine:
    reads_history = True  # the model is sent the whole conversation

    async def respond(self, context: Context, text: str):
        compiled = context.compiled
        base = (
            compiled.variables.get("OPENAI_BASE_URL", ("", False))[0] or "https://api.openai.com/v1"
        ).rstrip("/")
        key = compiled.variables.get("OPENAI_API_KEY", ("", False))[0]
        url = f"{base}/chat/completions"
        messages = _messages(context, text)
        functions = _functions(context)
        parts: list[str] = []
        usage = {"tokens_in": 0, "tokens_out": 0, "cost": 0}
        details: dict = {"engine": "openai", "model": compiled.settings.get("model", "")}
        try:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            async with await apinned_client(url, timeout=TIMEOUT) as client:
                for round_ in range(MAX_TOOL_ROUNDS + 1):
                    body = {
                        "model": compiled.settings.get("model") or "gpt-4o-mini",
                        "messages": messages,
                        "stream": True,
                        "stream_options": {"include_usage": True},
                    }
                    if "temperature" in compiled.settings:
                        body["temperature"] = compiled.settings["temperature"]
                    if functions and round_ < MAX_TOOL_ROUNDS:
                        body["tools"] = functions
                    calls: dict[int, dict] = {}
                    async for chunk in _stream(client, url, headers, body):
                        if chunk.get("usage"):
                            usage["tokens_in"] += chunk["usage"].get("prompt_tokens", 0)
                            usage["tokens_out"] += chunk["usage"].get("completion_tokens", 0)
                        for choice in chunk.get("choices", []):
                            delta = choice.get("delta") or {}
                            if delta.get("content"):
                                parts.append(delta["content"])
                                yield {"type": "agent_response_delta", "delta": delta["content"]}
                            for call in delta.get("tool_calls") or []:
                                slot = calls.setdefault(
                                    call.get("index", 0), {"id": "", "name": "", "arguments": ""}
                                )
                                slot["id"] = call.get("id") or slot["id"]
                                function = call.get("function") or {}
                                slot["name"] += function.get("name") or ""
                                slot["arguments"] += function.get("arguments") or ""
                    if not calls:
                        break
                    messages.append(
                        {
                            "role": "assistant",
                            "content": "".join(parts) or None,
                            "tool_calls": [
                                {
                                    "id": c["id"],
                                    "type": "function",
                                    "function": {"name": c["name"], "arguments": c["arguments"]},
                                }
                                for c in calls.values()
                            ],
                        }
                    )
                    for n, call in enumerate(calls.values(), start=1):
                        async for event in self._call(context, call, n, messages):
                            yield event
        except (EngineFailed, OutboundRefused, httpx.HTTPError) as exc:
            message = (
                getattr(exc, "message", None)
                or f"The model endpoint could not be reached ({type(exc).__name__})."
            )
            yield {"type": "error", "code": "engine_failed", "message": message}
            details["error"] = message
            if not parts:
                parts.append(compiled.settings.get("fallback") or "Sorry, I cannot answer right now.")
        answer = "".join(parts)
        if not usage["tokens_in"]:
            usage["tokens_in"] = sum(estimate_tokens(m.get("content") or "") for m in messages)
            usage["tokens_out"] = estimate_tokens(answer)
        yield {"type": "_done", "text": answer, "sources": [], "details": details, "usage": usage}

    async def _call(self, context: Context, call: dict, n: int, messages: list):
        call_id = call["id"] or context.tool_call_id(n)
        try:
            parameters = json.loads(call["arguments"] or "{}")
        except ValueError:
            parameters = {}
        yield {
            "type": "tool_call",
            "tool_name": call["name"],
            "tool_call_id": call_id,
            "parameters": parameters,
        }
        tool = context.compiled.tools.get(call["name"])
        outcome: dict = {}
        if tool is not None:
            async for event in gated(
                context, tool_name=call["name"], tool_call_id=call_id, parameters=parameters, outcome=outcome
            ):
                yield event
            decision = outcome["decision"]
            if decision != APPROVED or outcome.get("known"):
                # Not approved: the model hears why and answers without it. Known: the
                # call ran before this turn was run again, and does not run twice.
                frame = {"error": decision} if decision != APPROVED else outcome["known"]
                yield {"type": "tool_result", "tool_call_id": call_id, **frame}
                messages.append(
                    {"role": "tool", "tool_call_id": call_id, "content": json.dumps(frame, default=str)}
                )
                return
        try:
            if tool is None:
                raise ToolFailed(f"No tool named {call['name']}.")
            result = await run_tool(
                tool,
                parameters,
                tool_call_id=call_id,
                conversation_id=context.conversation_id,
                lookup=lambda name: context.lookup(name, local=parameters, for_output=False),
                masker=context.compiled.masker,
            )
        except ToolFailed as exc:
            yield {"type": "tool_result", "tool_call_id": call_id, "error": exc.message}
            yield {"type": "error", "code": "tool_failed", "message": exc.message}
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": json.dumps({"error": exc.message})}
            )
            return
        yield {"type": "tool_result", "tool_call_id": call_id, "result": result}
        messages.append({"role": "tool", "tool_call_id": call_id, "content": json.dumps(result, default=str)})
