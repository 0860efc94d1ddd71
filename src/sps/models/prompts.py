"""The text a model sees: a problem's prompt as is, or wrapped in the tokenizer's chat template.

Problem tables hold the user message (instruction, exemplars, question). Instruct models answer
far better inside their chat template, base models on plain text; `model.prompt_format` picks,
and `auto` uses the template whenever the tokenizer has one. A table may also hold `messages`
(chat turns as JSON, worked examples as earlier turns): the chat template then renders those.
"""

from __future__ import annotations

import json

FORMATS = ("auto", "chat", "plain")


def uses_chat(tokenizer, prompt_format: str) -> bool:
    if prompt_format not in FORMATS:
        raise ValueError(f"model.prompt_format must be one of {FORMATS}, got {prompt_format!r}")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if prompt_format == "chat" and not has_template:
        raise ValueError("model.prompt_format is 'chat' but the tokenizer has no chat template")
    return has_template and prompt_format != "plain"


def render(
    tokenizer, prompts: list[str], prompt_format: str = "auto", messages: list[str] | None = None
) -> list[str]:
    """The model's input text per prompt; a chat prompt ends where the assistant's turn starts.

    `messages` (optional, one JSON list of {role, content} turns per prompt) replaces the single
    user turn; they need the chat format (ValueError otherwise)."""
    if not uses_chat(tokenizer, prompt_format):
        if messages is not None:  # worked examples in a row: a model continues with another
            raise ValueError(
                "task.prompt chat needs a chat template, but the tokenizer has none or "
                f"model.prompt_format is {prompt_format!r}"
            )
        return list(prompts)
    if messages is None:
        turns = [[{"role": "user", "content": p}] for p in prompts]
    else:
        if len(messages) != len(prompts):
            raise ValueError(f"{len(messages)} message lists for {len(prompts)} prompts")
        turns = [json.loads(m) for m in messages]
    return [
        tokenizer.apply_chat_template(t, tokenize=False, add_generation_prompt=True) for t in turns
    ]
