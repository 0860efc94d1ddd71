"""Plain-text user messages for the real benchmarks: instruction, optional worked exemplars
from the train split, then the question. The chat template is applied on the model side."""

from __future__ import annotations

import re

COUNTDOWN_INSTRUCTION = (
    "Use each number once, with + - * /, to make the target. Write one calculation per line, "
    'then a last line "Answer: <expression>".'
)

INSTRUCTIONS = {
    "gsm8k": (
        "Solve the following math word problem. Think step by step, then finish with a line "
        '"The answer is X." where X is the final number.'
    ),
    "svamp": (
        "Solve the following math word problem. Think step by step, then finish with a line "
        '"The answer is X." where X is the final number.'
    ),
    "math": (
        "Solve the following math problem. Think step by step, then give the final answer "
        "in \\boxed{}, for example \\boxed{42}."
    ),
    "strategyqa": (
        "Answer the following yes/no question. Think it through, then finish with "
        '"The answer is yes." or "The answer is no."'
    ),
    "commonsense_qa": (
        "Answer the following multiple-choice question. Think it through, then finish with "
        '"The answer is X." where X is the letter of the correct choice.'
    ),
}


def question_block(question: str, choices: list[str] | None) -> str:
    lines = [f"Question: {question}"]
    lines += list(choices) if choices is not None else []
    return "\n".join(lines)


def worked_answer(bench: str, gold: str, solution: str | None = None) -> str:
    """An exemplar's answer, ending in the final-answer form the instruction asks for."""
    if bench == "gsm8k" and solution:
        steps = re.sub(r"<<[^<>]*>>", "", solution).rsplit("####", 1)[0].strip()
        return f"{steps}\nThe answer is {gold}."
    if bench == "math":
        return f"The final answer is $\\boxed{{{gold}}}$."
    return f"The answer is {gold}."


def build_prompt(bench: str, question: str, choices: list[str] | None, shots: list[dict]) -> str:
    """`shots`: exemplar rows (question, gold, choices, solution) from the train split."""
    parts = [INSTRUCTIONS[bench]]
    for shot in shots:
        block = question_block(shot["question"], shot.get("choices"))
        answer = worked_answer(bench, shot["gold"], shot.get("solution"))
        parts.append(f"{block}\nAnswer: {answer}")
    parts.append(question_block(question, choices) + ("\nAnswer:" if shots else ""))
    return "\n\n".join(parts)


def countdown_chat(question: str, examples: list[tuple[str, str]]) -> list[dict]:
    """Chat turns for a pretrained chat model: the instruction and the first example's
    question as the first user turn, each worked answer as an assistant turn, the problem
    last. Small chat models copy an earlier assistant turn's format far more reliably than
    a format described in words (measured on SmolLM2-135M-Instruct)."""
    turns = []
    for i, (q, answer) in enumerate(examples):
        user = f"{COUNTDOWN_INSTRUCTION}\n\n{q}" if i == 0 else q
        turns += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    if not turns:
        return [{"role": "user", "content": f"{COUNTDOWN_INSTRUCTION}\n\n{question}"}]
    return turns + [{"role": "user", "content": question}]


def plain_text(turns: list[dict]) -> str:
    """The same turns as one text (the table's `prompt`, for reading; the model gets them
    through its chat template): one after another, a blank line between examples."""
    parts = [t["content"] + ("\n\n" if t["role"] == "assistant" else "\n") for t in turns]
    return "".join(parts)
