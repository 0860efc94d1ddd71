"""The countdown prompt for a pretrained chat model (task.prompt: chat): worked examples as
earlier chat turns, kept out of every split, each graded correct by the task's own grader."""

import json

import pandas as pd
import pytest

from sps.config import TaskConfig
from sps.models.prompts import render
from sps.seeding import derive_seed
from sps.tasks import countdown
from sps.tasks.data import prepare_countdown
from sps.tasks.prompts import COUNTDOWN_INSTRUCTION

CHAT = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>"


class _ChatTokenizer:
    """Just enough of a tokenizer for `render`: a chat template and its renderer."""

    chat_template = CHAT

    def apply_chat_template(self, turns, tokenize, add_generation_prompt):
        assert not tokenize and add_generation_prompt
        return "".join(f"<{t['role']}>{t['content']}" for t in turns) + "<assistant>"


@pytest.mark.parametrize("count", [2, 3])
def test_worked_examples_cycle_operators_and_solve_their_problems(count):
    examples = countdown.worked_examples(7, 6, count, 15, 100, 1)
    assert examples == countdown.worked_examples(7, 6, count, 15, 100, 1)  # seeded
    assert len({countdown.problem_key(p) for p, _ in examples}) == 6
    for i, (p, path) in enumerate(examples):
        assert path.steps[-1].op == countdown.EXAMPLE_OPS[i % 4]
        assert len(path.steps) == count - 1 and path.value == p.target
        text = countdown.format_completion(path)
        assert countdown.grade(text, p.numbers, p.target, check_steps=True) == (path.expr, True)


def test_worked_examples_say_when_there_are_too_few():
    with pytest.raises(ValueError, match="task.shots"):
        countdown.worked_examples(0, 4, 2, 1, 3, 1)  # only 1 and 1: no subtraction


def _tables(tmp_path, count, prompt, shots=4):
    cfg = TaskConfig(count, 15, 100, 1, 5, 20, 30, prompt=prompt, shots=shots)
    prepare_countdown(cfg, seed=3, out_dir=tmp_path)
    return {s: pd.read_parquet(tmp_path / f"{s}.parquet") for s in ("test", "train", "sft")}


@pytest.mark.parametrize("count", [2, 3])
def test_chat_tables_hold_turns_whose_examples_are_in_no_split(tmp_path, count):
    tables = _tables(tmp_path, count, "chat", shots=4)
    examples = countdown.worked_examples(derive_seed(3, "countdown", "shots"), 4, count, 15, 100, 1)
    held = {countdown.problem_key(p) for p, _ in examples}
    for table in tables.values():
        for row in table.itertuples():
            turns = json.loads(row.messages)
            assert [t["role"] for t in turns] == ["user", "assistant"] * 4 + ["user"]
            assert turns[0]["content"].startswith(COUNTDOWN_INSTRUCTION)
            numbers = " ".join(map(str, row.numbers))
            assert turns[-1]["content"] == f"Make {row.target} from {numbers}."
            # the plain-text prompt is the same turns, ending where the answer starts
            assert row.prompt.endswith(turns[-1]["content"] + "\n")
            assert all(t["content"] in row.prompt for t in turns)
            key = (tuple(sorted(int(x) for x in row.numbers)), int(row.target))
            assert key not in held
    # every worked answer passes the grader that checks the steps, on its own problem
    turns = json.loads(tables["test"].messages.iloc[0])
    for (p, _), answer in zip(examples, turns[1::2], strict=True):
        assert countdown.grade(answer["content"], p.numbers, p.target, check_steps=True)[1]


def test_terse_tables_are_unchanged_by_the_new_keys(tmp_path):
    tables = _tables(tmp_path, 3, "terse")
    assert "messages" not in tables["test"].columns
    assert tables["test"].prompt.iloc[0].startswith("Make ")
    assert tables["test"].prompt.iloc[0].count("\n") == 1


def test_render_uses_the_turns_in_chat_format_and_the_text_in_plain():
    tok = _ChatTokenizer()
    turns = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    turns.append({"role": "user", "content": "q2"})
    messages = [json.dumps(turns)]
    assert render(tok, ["q1\na1\n\nq2\n"], "chat", messages) == [
        "<user>q1<assistant>a1<user>q2<assistant>"
    ]
    assert render(tok, ["q2"], "chat") == ["<user>q2<assistant>"]
    with pytest.raises(ValueError, match="task.prompt chat needs a chat template"):
        render(tok, ["q1\na1\n\nq2\n"], "plain", messages)  # the model would go on
    with pytest.raises(ValueError, match="2 message lists for 1 prompts"):
        render(tok, ["q"], "chat", messages * 2)
