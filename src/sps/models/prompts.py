"""The text a model sees: a problem's prompt as is, or wrapped in the tokenizer's chat template.

Problem tables hold the user message (instruction, exemplars, question). Instruct models answer
far better inside their chat template, base models on plain text; `model.prompt_format` picks,
and `auto` uses the template whenever the tokenizer has one.
"""

from __future__ import annotations

FORMATS = ("auto", "chat", "plain")


def uses_chat(tokenizer, prompt_format: str) -> bool:
    if prompt_format not in FORMATS:
        raise ValueError(f"model.prompt_format must be one of {FORMATS}, got {prompt_format!r}")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if prompt_format == "chat" and not has_template:
        raise ValueError("model.prompt_format is 'chat' but the tokenizer has no chat template")
    return has_template and prompt_format != "plain"


def render(tokenizer, prompts: list[str], prompt_format: str = "auto") -> list[str]:
    """The model's input text per prompt; a chat prompt ends where the assistant's turn starts."""
    if not uses_chat(tokenizer, prompt_format):
        return list(prompts)
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p in prompts
    ]
