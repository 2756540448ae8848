"""Transcripts as a conversation: who spoke, what they said, and tool calls as small blocks.

A test result's transcript is what its client sent (API.md): a list of turns, usually
`{"role","text"}`, perhaps with tool calls, or plain text. Pages show it as a
conversation, never as JSON; tool arguments and results read as `key: value` lines.
"""

from __future__ import annotations

from .readable import value_lines

SPEAKERS = {"user": "User", "agent": "Agent", "assistant": "Agent", "system": "System", "tool": "Tool"}
TOOL_TYPES = {"tool_call": "Tool call", "tool_result": "Tool result"}


def _speaker(role) -> tuple[str, str]:
    role = str(role or "").strip().lower()
    return (role if role in SPEAKERS else "other", SPEAKERS.get(role, role.capitalize() or "—"))


def tool_block(event: dict) -> dict | None:
    """{"label", "name", "lines"} for a tool call or result; None for other events."""
    if not isinstance(event, dict):
        return None
    kind = event.get("type") or ("tool_call" if "parameters" in event or "arguments" in event else "")
    if kind not in TOOL_TYPES:
        return None
    if kind == "tool_call":
        body = event.get("parameters", event.get("arguments", {}))
    else:
        body = {"error": event["error"]} if event.get("error") else event.get("result", {})
    return {
        "label": TOOL_TYPES[kind],
        "name": str(event.get("tool_name") or event.get("name") or ""),
        "lines": value_lines(body),
    }


def transcript_turns(transcript) -> list[dict]:
    """[{"role", "speaker", "text", "tools": [blocks]}] from a stored transcript of any shape."""
    if isinstance(transcript, str):
        turns = []
        for line in transcript.splitlines():
            role, sep, text = line.partition(":")
            if sep and role.strip().lower() in SPEAKERS:
                css, speaker = _speaker(role)
                turns.append({"role": css, "speaker": speaker, "text": text.strip(), "tools": []})
            elif turns:
                turns[-1]["text"] += "\n" + line
            elif line.strip():
                turns.append({"role": "other", "speaker": "—", "text": line, "tools": []})
        return turns
    turns = []
    for item in transcript if isinstance(transcript, list) else []:
        if not isinstance(item, dict):
            turns.append({"role": "other", "speaker": "—", "text": str(item), "tools": []})
            continue
        block = tool_block(item)
        if block is not None:
            if turns:
                turns[-1]["tools"].append(block)
            else:
                turns.append({"role": "tool", "speaker": "Tool", "text": "", "tools": [block]})
            continue
        css, speaker = _speaker(item.get("role") or item.get("speaker"))
        text = item.get("text", item.get("content", ""))
        tools = [b for b in (tool_block(e) for e in item.get("tool_calls") or item.get("tools") or []) if b]
        turns.append(
            {"role": css, "speaker": speaker, "text": text if isinstance(text, str) else "", "tools": tools}
        )
    return turns
