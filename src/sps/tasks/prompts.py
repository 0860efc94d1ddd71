"""Plain-text user messages for the real benchmarks: instruction, optional worked exemplars
from the train split, then the question. The chat template is applied on the model side."""

from __future__ import annotations

import re

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
