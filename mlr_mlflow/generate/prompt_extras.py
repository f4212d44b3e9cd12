"""What a prompt adds after its examples: why recent hypotheses were rejected (validation and
sandbox reasons, so the LLM does not repeat the mistake) and passages of papers (`--context`).

A template places them with `$extras`; one without that placeholder (a user's own) gets them at its
end. Empty when there is neither, so a prompt without them is unchanged."""
from __future__ import annotations


def extras(context) -> str:
    parts = []
    if context.feedback:
        parts.append("Recent proposals were rejected for these reasons; do not repeat these mistakes:\n"
                     + "\n".join(f"- {line}" for line in context.feedback))
    if context.passages:
        parts.append("Passages from papers that may give you ideas (use an idea, not the text):\n\n"
                     + "\n\n".join(f"[{p.id}]\n{p.text}" for p in context.passages))
    return "".join(f"\n\n{part}" for part in parts)


def place(template_text: str, text: str, extra: str) -> str:
    """`text` (the filled template) with `extra` added at the end unless the template placed it."""
    return text if "$extras" in template_text or "${extras}" in template_text else text + extra
