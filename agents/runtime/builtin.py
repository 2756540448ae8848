"""The builtin engine: deterministic, offline, and built from the agent's own components.

For each message it tries, in order:
1. a skill waiting for a slot (it asked a question last turn);
2. a skill whose regex pattern matches (confidence 1.0; named groups fill slots);
3. a skill whose example utterances are close enough, unless the knowledge base covers
   the question better;
4. a grounded answer from the best knowledge item (BM25), naming its source;
5. the fallback.
Required slots missing from the message are asked for; a skill's tool is called with its
slots; responses are templates over slots, tool results and variables. Same input, same
output.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from .approvals import APPROVED, gated
from .compile import Skill
from .engine import Context
from .patterns import compiled as compiled_pattern
from .text import best_passage, estimate_tokens, similarity, tokens
from .tools import ToolFailed, run_tool

SKILL_STRONG = 0.6  # a skill this close wins outright
SKILL_WEAK = 0.34  # …and this close wins if the knowledge base has nothing better
KNOWLEDGE_MIN = 0.5  # share of the question's words a knowledge item must contain
DEFAULT_FALLBACK = "Sorry, I did not understand that. Could you put it another way?"
TOOL_APOLOGY = "Sorry, I could not complete that just now. Please try again in a moment."
NOT_APPROVED = "Sorry, I cannot do that now: it needs a person's approval, and it did not get it."

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def extract_slot(slot: dict, text: str, *, whole: bool = False):
    """A slot's value from free text, by its type; `whole` takes the message itself."""
    kind = slot.get("type", "string")
    if slot.get("pattern"):
        pattern = compiled_pattern(slot["pattern"])  # RE2: linear in the text
        match = pattern.search(text) if pattern else None
        return (match.group(1) if match.groups() else match.group(0)) if match else None
    if kind == "email":
        match = EMAIL.search(text)
        return match.group(0) if match else None
    if kind == "number":
        match = NUMBER.search(text)
        return match.group(0) if match else None
    if kind == "date":
        lowered = text.lower()
        if "today" in lowered:
            return date.today().isoformat()
        if "tomorrow" in lowered:
            return (date.today() + timedelta(days=1)).isoformat()
        match = ISO_DATE.search(text)
        return match.group(0) if match else None
    if kind == "choice":
        lowered = text.lower()
        return next((c for c in slot.get("choices", []) if c.lower() in lowered), None)
    return text.strip() if whole and text.strip() else None


class BuiltinEngine:
    reads_history = False  # skills, knowledge and slots: this turn and `state` only

    async def respond(self, context: Context, text: str):
        compiled = context.compiled
        pending = context.state.pop("pending", None)
        skill, slots, confidence, sources, answer = None, {}, 0.0, [], None

        if pending:
            skill = next((s for s in compiled.skills if s.name == pending["skill"]), None)
            if skill is not None:
                slots = dict(pending["slots"])
                value = extract_slot(skill.slots.get(pending["missing"], {}), text, whole=True)
                if value is not None:
                    slots[pending["missing"]] = value
                confidence = 1.0
        if skill is None:
            skill, slots, confidence = self.match_pattern(compiled.skills, text)
        if skill is None:
            candidate, score = self.match_utterances(compiled.skills, text)
            hits = compiled.knowledge.search(text)
            coverage = compiled.knowledge.coverage(text, hits[0][1]) if hits else 0.0
            if candidate and (score >= SKILL_STRONG or (score >= SKILL_WEAK and score >= coverage)):
                skill, confidence = candidate, score
            elif hits and coverage >= KNOWLEDGE_MIN:
                doc = hits[0][1]
                answer = best_passage(text, doc.text)
                sources = [{"uid": doc.key, "title": doc.title}]
                confidence = coverage

        details = {"confidence": round(confidence, 3)}
        if skill is not None:
            details["skill"] = skill.name
            answer = None
            for name, slot in skill.slots.items():
                if name not in slots:
                    value = extract_slot(slot, text)
                    if value is not None:
                        slots[name] = value
            missing = next((n for n, s in skill.slots.items() if s.get("required") and n not in slots), None)
            if missing:
                context.state["pending"] = {"skill": skill.name, "slots": slots, "missing": missing}
                answer = skill.slots[missing].get("prompt") or f"What is your {missing.replace('_', ' ')}?"
                details["asked_for"] = missing
            else:
                local = dict(slots)
                if skill.tool:
                    # Yielded as they happen: a call that waits for a person shows first.
                    outcome: dict = {}
                    async for event in self.call_tool(context, skill, slots, outcome):
                        yield event
                    result = local["tool"] = outcome.get("result")
                    if outcome.get("decision", APPROVED) != APPROVED:
                        answer = NOT_APPROVED
                        details["approval"] = outcome["decision"]
                    elif result is None:
                        answer = TOOL_APOLOGY
                if answer is None:
                    template = context.stable_choice(skill.responses, text) if skill.responses else ""
                    answer = context.render(template, local)
                details["slots"] = slots
        if answer is None:
            answer = context.render(compiled.settings.get("fallback") or DEFAULT_FALLBACK)
            details["fallback"] = True

        yield {
            "type": "_done",
            "text": answer,
            "sources": sources,
            "details": details,
            "usage": {"tokens_in": estimate_tokens(text), "tokens_out": estimate_tokens(answer), "cost": 0},
        }

    @staticmethod
    def match_pattern(skills: list[Skill], text: str):
        for skill in skills:
            for pattern in skill.patterns:
                match = pattern.search(text)
                if match:
                    slots = {k: v for k, v in match.groupdict().items() if v is not None}
                    return skill, slots, 1.0
        return None, {}, 0.0

    @staticmethod
    def match_utterances(skills: list[Skill], text: str):
        words = set(tokens(text))
        best, best_score = None, 0.0
        for skill in skills:
            score = max((similarity(words, u) for u in skill.utterances), default=0.0)
            if score > best_score:
                best, best_score = skill, score
        return best, best_score

    async def call_tool(self, context: Context, skill: Skill, slots: dict, outcome: dict):
        """Yield the call's events; its result (None when it failed) goes in `outcome`."""
        tool = context.compiled.tools.get(skill.tool)
        call_id = context.tool_call_id(1)
        properties = (tool.parameters or {}).get("properties") if tool else None
        parameters = {k: v for k, v in slots.items() if not properties or k in properties}
        yield {
            "type": "tool_call",
            "tool_name": skill.tool,
            "tool_call_id": call_id,
            "parameters": parameters,
        }
        if tool is None:
            yield {"type": "tool_result", "tool_call_id": call_id, "error": f"No tool named {skill.tool}."}
            yield {"type": "error", "code": "tool_failed", "message": f"No tool named {skill.tool}."}
            return
        async for event in gated(
            context, tool_name=skill.tool, tool_call_id=call_id, parameters=parameters, outcome=outcome
        ):
            yield event
        if outcome["decision"] != APPROVED:
            yield {"type": "tool_result", "tool_call_id": call_id, "error": outcome["decision"]}
            return
        if outcome.get("known"):  # ran before this turn was run again: not twice
            yield {"type": "tool_result", "tool_call_id": call_id, **outcome["known"]}
            outcome["result"] = outcome["known"].get("result")
            return
        try:
            result = await run_tool(
                tool,
                parameters,
                tool_call_id=call_id,
                conversation_id=context.conversation_id,
                lookup=lambda name: context.lookup(name, local=slots, for_output=False),
                masker=context.compiled.masker,
            )
        except ToolFailed as exc:
            yield {"type": "tool_result", "tool_call_id": call_id, "error": exc.message}
            yield {"type": "error", "code": "tool_failed", "message": exc.message}
            return
        outcome["result"] = result
        yield {"type": "tool_result", "tool_call_id": call_id, "result": result}
