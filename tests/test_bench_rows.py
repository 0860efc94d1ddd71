"""Benchmark files as they come: BOMs, truncated lines, foreign bytes, empty files, giant rows,
wrong types, duplicates and the hub's alternative schemas, each written here by hand."""

import codecs
import json
from pathlib import Path

import pandas as pd
import pytest

from sps.config import DataConfig, section, validate
from sps.tasks.bench import prepare_benchmark
from sps.tasks.bench.prepare import load_split
from sps.tasks.bench.schemas import BadRow, _number_gold

DATA = Path(__file__).parent / "data"


def cfg(
    bench: str, test: Path, train: Path | None = None, skipped_rows: int = 0, **settings
) -> DataConfig:
    """Local train and test files (the test split's first skipped_rows rows dropped)."""
    data = validate({})["data"]
    data["sources"][bench] = {
        "train": {"source": "local", "path": str(train or test)},
        "test": {"source": "local", "path": str(test), "skip": skipped_rows},
    }
    data.update(settings)
    return section(DataConfig, validate({"data": data})["data"])


def load(bench: str, path: Path, **settings) -> tuple[list[dict], dict]:
    return load_split(bench, "test", cfg(bench, path, **settings))


def gsm(question: str, gold: int = 4) -> dict:
    return {"question": question, "answer": f"Work.\n#### {gold}"}


def jsonl(path: Path, *rows) -> Path:
    """rows: dicts (dumped) or str (written as the line itself)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def raises_at(bench: str, path: Path, row: int, reason: str, **settings) -> None:
    """Under error: stops, naming the file and the row; the message carries the reason."""
    with pytest.raises(ValueError, match=rf"{path.name}: row {row}: {reason}"):
        load(bench, path, **settings)


# --- reading the file -------------------------------------------------------------------


def test_utf8_bom_is_fine_in_jsonl_and_json(tmp_path):
    rows = [gsm("What is 2 plus 2?"), gsm("What is 3 plus 1?")]
    body = "\n".join(json.dumps(r) for r in rows).encode()
    (tmp_path / "a.jsonl").write_bytes(codecs.BOM_UTF8 + body)
    (tmp_path / "a.json").write_bytes(codecs.BOM_UTF8 + json.dumps(rows).encode())
    for name in ("a.jsonl", "a.json"):
        problems, info = load("gsm8k", tmp_path / name)
        assert [p["question"] for p in problems] == ["What is 2 plus 2?", "What is 3 plus 1?"]
        assert info["skipped"] == {} and info["read"] == 2


def test_truncated_line_error_names_file_and_line(tmp_path):
    path = jsonl(tmp_path / "t.jsonl", gsm("Fine?"), '{"question": "Cut off', gsm("Also fine?"))
    raises_at("gsm8k", path, 2, "invalid JSON")


def test_truncated_line_is_skipped_and_counted(tmp_path):
    # the last line cut mid-row, as a killed download leaves it
    path = jsonl(tmp_path / "t.jsonl", gsm("Fine?"), gsm("Also fine?"), '{"question": "Cut')
    problems, info = load("gsm8k", path, on_bad_row="skip")
    assert [p["question"] for p in problems] == ["Fine?", "Also fine?"]
    assert info["skipped"] == {"invalid JSON": 1} and info["read"] == 3


def test_cp1252_bytes_name_file_and_line(tmp_path):
    path = tmp_path / "c.jsonl"
    good = json.dumps(gsm("Fine?")).encode()
    bad = json.dumps(gsm("A caf\u00e9 sells 2 cakes and 2 more?")).encode("ascii")
    bad = bad.replace(b"\\u00e9", "\u00e9".encode("cp1252"))  # the raw 0xe9 byte
    path.write_bytes(good + b"\n\n" + bad + b"\n")  # blank line 2: row numbers are lines
    raises_at("gsm8k", path, 3, r"not UTF-8: byte 0xe9")
    problems, info = load("gsm8k", path, on_bad_row="skip")
    assert len(problems) == 1 and info["skipped"] == {"not UTF-8": 1}


def test_cp1252_bytes_in_a_json_array_name_the_element(tmp_path):
    path = tmp_path / "c.json"
    text = json.dumps([gsm("Fine?"), gsm("Smart \u201cquotes\u201d?")], ensure_ascii=False)
    path.write_bytes(text.encode("cp1252"))
    raises_at("gsm8k", path, 2, "not UTF-8")
    assert load("gsm8k", path, on_bad_row="skip")[1]["skipped"] == {"not UTF-8": 1}


@pytest.mark.parametrize("content", [b"", b"\n  \n\t\n", codecs.BOM_UTF8])
@pytest.mark.parametrize("mode", ["error", "skip"])
def test_empty_or_blank_file_is_an_error(tmp_path, content, mode):
    path = tmp_path / "e.jsonl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"e\.jsonl: the file is (empty|blank)"):
        load("gsm8k", path, on_bad_row=mode)


def test_nothing_left_is_an_error_under_skip(tmp_path):
    path = jsonl(tmp_path / "n.jsonl", {"question": 1, "answer": "#### 2"}, "{not json")
    with pytest.raises(ValueError, match=r"n\.jsonl: nothing to load: all 2 rows are bad"):
        load("gsm8k", path, on_bad_row="skip")
    path = jsonl(tmp_path / "s.jsonl", gsm("Only row?"))
    with pytest.raises(ValueError, match=r"s\.jsonl: no rows to load \(1 in the source, skip 5"):
        load_split("gsm8k", "test", cfg("gsm8k", path, skipped_rows=5))


def test_ten_megabyte_row_is_a_bad_row(tmp_path):
    huge = gsm("Long? " + "x" * 10_000_000)
    path = jsonl(tmp_path / "h.jsonl", gsm("Fine?"), huge, gsm("Also fine?"))
    raises_at("gsm8k", path, 2, r"too long: 10,000,0\d\d characters")
    problems, info = load("gsm8k", path, on_bad_row="skip")
    assert len(problems) == 2 and info["skipped"] == {"too long": 1}


def test_max_row_chars_is_the_limit_in_every_format(tmp_path):
    rows = [gsm("Short?"), gsm("Long? " + "y" * 300)]
    path = jsonl(tmp_path / "m.jsonl", *rows)
    assert len(load("gsm8k", path)[0]) == 2  # the default limit is 100,000
    raises_at("gsm8k", path, 2, "too long", max_row_chars=200)
    pd.DataFrame(rows).to_parquet(tmp_path / "m.parquet")
    (tmp_path / "m.json").write_text(json.dumps(rows))
    for name in ("m.parquet", "m.json"):
        raises_at("gsm8k", tmp_path / name, 2, "too long: over 200 characters", max_row_chars=200)


def test_row_numbers_by_format(tmp_path):
    """jsonl: line numbers (blank lines count); json array and parquet: 1-based index."""
    rows = [gsm("One?"), gsm("Two?"), {"question": "Three?", "answer": "no final line"}]
    path = tmp_path / "r.jsonl"
    path.write_text("\n\n".join(json.dumps(r) for r in rows) + "\n")
    raises_at("gsm8k", path, 5, "unparseable gold")
    pd.DataFrame(rows).to_parquet(tmp_path / "r.parquet")
    raises_at("gsm8k", tmp_path / "r.parquet", 3, "unparseable gold")
    (tmp_path / "r.json").write_text(json.dumps(rows, indent=2))
    raises_at("gsm8k", tmp_path / "r.json", 3, "unparseable gold")


def test_broken_json_array_names_file_and_line(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('[\n{"question": "a?", "answer": "#### 1"},\n{"question": "b?", "answ\n')
    with pytest.raises(ValueError, match=r"b\.json: line 3: not a valid JSON array"):
        load("gsm8k", path, on_bad_row="skip")


def test_rows_that_are_not_objects(tmp_path):
    path = jsonl(tmp_path / "o.jsonl", gsm("Fine?"), "[1, 2]", "42")
    raises_at("gsm8k", path, 2, "not an object: the row is a list")
    assert load("gsm8k", path, on_bad_row="skip")[1]["skipped"] == {"not an object": 2}


# --- strict types -----------------------------------------------------------------------


@pytest.mark.parametrize("question", [12345, {"a": 1}, ["x", "y"], 1.5, True])
def test_gsm8k_question_must_be_text(tmp_path, question):
    path = jsonl(tmp_path / "q.jsonl", gsm("Fine?"), {"question": question, "answer": "#### 3"})
    raises_at("gsm8k", path, 2, "wrong type: field 'question' holds")
    assert load("gsm8k", path, on_bad_row="skip")[1]["skipped"] == {"wrong type": 1}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("Answer: [1]", "unparseable gold"),
        ("[1]", "unparseable gold"),
        ([1], "wrong type"),
        ({"value": 1}, "wrong type"),
        (True, "wrong type"),
        ("5 or 6", "unparseable gold"),
        ("NaN", "unparseable gold"),
        ("", "unparseable gold"),
    ],
)
def test_svamp_gold_must_be_one_number(tmp_path, answer, reason):
    ok = {"Body": "Sam has 3 pens.", "Question": "How many?", "Answer": 3.0}
    bad = {"Body": "Ann has 1 pen.", "Question": "How many?", "Answer": answer}
    path = jsonl(tmp_path / "s.jsonl", ok, bad)
    raises_at("svamp", path, 2, reason)


@pytest.mark.parametrize(
    ("text", "gold"),
    [
        ("5.0", "5"),
        (" 1,080 ", "1080"),
        ("-3/4", "-0.75"),
        ("1 / 3", "1/3"),
        ("$12", "12"),
        ("2.25", "2.25"),
        ("1e+16", "10000000000000000"),
        (7, "7"),
        (0.1, "0.1"),
    ],
)
def test_number_gold_spellings(text, gold):
    assert _number_gold(text, "Answer") == gold


@pytest.mark.parametrize("text", ["1 2", "12 apples", "x=3", "3.", "1,00", float("inf"), None])
def test_number_gold_rejects(text):
    with pytest.raises(BadRow):
        _number_gold(text, "Answer")


def test_svamp_answer_as_text_and_lowercase_schema(tmp_path):
    rows = [
        {"ID": "a", "Body": "Sam has 3 pens.", "Question": "How many?", "Answer": "3.0"},
        {"id": "b", "question": "Ann has 2.5 kg. How much?", "answer": "2.5"},
    ]
    problems, _ = load("svamp", jsonl(tmp_path / "s.jsonl", *rows))
    assert [(p["id"], p["gold"]) for p in problems] == [("a", "3"), ("b", "2.5")]


def test_math_types_and_alternative_fields(tmp_path):
    rows = [
        {"question": "What is 1+1?", "expected_answer": "2", "id": 7},
        {"problem": "Half of 3?", "answer": 1.5, "unique_id": "u2"},
        {"problem": "Boxed?", "solution": "so $\\boxed{\\frac{1}{2}}$"},
        {"problem": "List?", "answer": ["1", "2"]},
    ]
    path = jsonl(tmp_path / "m.jsonl", *rows)
    raises_at("math", path, 4, "wrong type: field 'answer' holds list")
    problems, info = load("math", path, on_bad_row="skip")
    assert [(p["id"], p["gold"]) for p in problems] == [
        ("7", "2"),
        ("u2", "1.5"),
        ("math-test-3", "\\frac{1}{2}"),
    ]
    assert info["skipped"] == {"wrong type": 1}


def test_gsm8k_bare_number_answer_and_ids(tmp_path):
    rows = [
        {"problem": "Ten minus three?", "answer": "7"},
        {"question": "Two times two?", "answer": 4},
        {"question": "Boolean?", "answer": False},
    ]
    problems, info = load("gsm8k", jsonl(tmp_path / "g.jsonl", *rows), on_bad_row="skip")
    assert [p["gold"] for p in problems] == ["7", "4"]
    assert info["skipped"] == {"wrong type": 1}
    rows = [{"qid": 5, "question": "Int id?", "answer": 1}, {"qid": ["a"], "question": "List?"}]
    rows[1]["answer"] = 0
    path = jsonl(tmp_path / "s.jsonl", *rows)
    raises_at("strategyqa", path, 2, "wrong type: field 'qid' holds list")
    assert load("strategyqa", path, on_bad_row="skip")[0][0]["id"] == "5"


# --- duplicates -------------------------------------------------------------------------


def test_five_copies_without_id_are_one_problem(tmp_path):
    copies = [gsm("Tom has 3 apples and gets 1 more. How many?")] * 5
    test = jsonl(tmp_path / "d.jsonl", *copies, gsm("A different question?", 9))
    raises_at("gsm8k", test, 2, "duplicate question: .* first seen at row 1")
    train = jsonl(tmp_path / "train.jsonl", gsm("Train only?"), gsm("Train two?"))
    data = cfg("gsm8k", test, train, on_bad_row="skip")
    counts = prepare_benchmark("gsm8k", data, 0, tmp_path / "out")
    assert counts["test"]["skipped"] == {"duplicate question": 4}
    assert counts["test"]["loaded"] == 2 and counts["test"]["read"] == 6
    assert json.loads((tmp_path / "out" / "load.json").read_text()) == counts
    assert len(pd.read_parquet(tmp_path / "out" / "test.parquet")) == 2


def test_duplicates_ignore_case_and_spacing_but_not_choices(tmp_path):
    path = jsonl(tmp_path / "d.jsonl", gsm("How many  pens?"), gsm(" how many pens? ", 5))
    raises_at("gsm8k", path, 2, "duplicate question")
    same_stem = [
        {"id": "a", "question": "Where?", "choices": _mapping("bank", "shop"), "answerKey": "A"},
        {"id": "b", "question": "Where?", "choices": _mapping("park", "shop"), "answerKey": "A"},
        {"id": "c", "question": "WHERE?", "choices": _mapping("bank", "shop"), "answerKey": "B"},
    ]
    path = jsonl(tmp_path / "c.jsonl", *same_stem)
    raises_at("commonsense_qa", path, 3, "duplicate question: 'WHERE\\?' first seen at row 1")


def test_duplicate_id_names_the_first_row(tmp_path):
    rows = [{"qid": "q", "question": "One?", "answer": 1}, {"qid": "q", "question": "Two?"}]
    rows[1]["answer"] = 0
    raises_at("strategyqa", jsonl(tmp_path / "i.jsonl", *rows), 2, "duplicate id: id 'q' first")


# --- alternative hub schemas ------------------------------------------------------------


def test_strategyqa_answers_as_0_1_and_words(tmp_path):
    answers = [1, 0, "1", "0", True, False, "Yes", "no", "TRUE", "false"]
    rows = [{"question": f"Question {i}?", "answer": a} for i, a in enumerate(answers)]
    problems, _ = load("strategyqa", jsonl(tmp_path / "s.jsonl", *rows))
    assert [p["gold"] for p in problems] == ["yes", "no"] * 5


@pytest.mark.parametrize("answer", [2, -1, 1.0, "maybe", "", ["yes"]])
def test_strategyqa_other_answers_are_bad(tmp_path, answer):
    rows = [{"question": "Fine?", "answer": True}, {"question": "Bad?", "answer": answer}]
    raises_at("strategyqa", jsonl(tmp_path / "s.jsonl", *rows), 2, "unparseable gold")


def _mapping(*texts: str) -> dict:
    return {"label": [chr(65 + i) for i in range(len(texts))], "text": list(texts)}


def test_commonsense_qa_choice_schemas(tmp_path):
    listed = [{"label": "A", "text": "bank"}, {"label": "B", "text": "street"}]
    rows = [
        {
            "id": "m",
            "question": "Mapping?",
            "choices": _mapping("bank", "street"),
            "answerKey": "A",
        },
        {"id": "l", "question": "List of dicts?", "choices": listed, "answerKey": "b"},
        {"id": "o", "question": {"stem": "Original?", "choices": listed}, "answerKey": "A"},
    ]
    path = jsonl(tmp_path / "c.jsonl", *rows)
    problems, _ = load("commonsense_qa", path)
    assert [p["question"] for p in problems] == ["Mapping?", "List of dicts?", "Original?"]
    assert [p["gold"] for p in problems] == ["A", "B", "A"]
    assert all(p["choices"] == ["A. bank", "B. street"] for p in problems)
    # the same list-of-dicts spelling through parquet (numpy arrays of dicts)
    listed_rows = [{**rows[1], "id": i, "question": f"Q{i}?"} for i in range(2)]
    pd.DataFrame(listed_rows).to_parquet(tmp_path / "c.parquet")
    problems, _ = load("commonsense_qa", tmp_path / "c.parquet")
    assert [p["choices"] for p in problems] == [["A. bank", "B. street"]] * 2


@pytest.mark.parametrize(
    "choices",
    [
        [{"label": "A", "text": "x"}, {"label": "A", "text": "y"}],  # repeated label
        [{"label": "A", "text": "x"}, {"label": "B", "text": 3}],  # text not a string
        [{"label": "A", "text": "x"}, {"label": "B"}],  # no text
        {"label": ["A", "B"], "text": ["x"]},  # lengths differ
        [{"label": "A", "text": "x"}],  # one choice is no choice
        ["x", "y"],
        "A. x B. y",
    ],
)
def test_commonsense_qa_malformed_choices(tmp_path, choices):
    good = {"question": "Fine?", "choices": _mapping("x", "y"), "answerKey": "A"}
    bad = {"question": "Bad?", "choices": choices, "answerKey": "A"}
    raises_at("commonsense_qa", jsonl(tmp_path / "c.jsonl", good, bad), 2, "bad choices")


# --- the hub path goes through the same checks ------------------------------------------


def test_hf_source_rows_get_the_same_checks(tmp_path, monkeypatch):
    import datasets

    folder = tmp_path / "sqa"
    folder.mkdir()
    rows = [{"qid": f"q{i}", "question": f"Question {i}?", "answer": i % 2} for i in range(4)]
    rows[2]["question"] = "Question 0?"  # a duplicate, under another id
    rows[3]["question"] = "Long? " + "z" * 500
    jsonl(folder / "test.jsonl", *rows)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    data = validate({})["data"]
    data["sources"]["strategyqa"]["test"] = {"path": str(folder), "split": "test"}
    data["max_row_chars"] = 300
    where = f"hf:{folder} split test"
    with pytest.raises(ValueError, match=rf"{where}: row 3: duplicate question"):
        load_split("strategyqa", "test", section(DataConfig, validate({"data": data})["data"]))
    data["on_bad_row"] = "skip"
    problems, info = load_split(
        "strategyqa", "test", section(DataConfig, validate({"data": data})["data"])
    )
    assert [p["gold"] for p in problems] == ["no", "yes"]
    assert info["skipped"] == {"duplicate question": 1, "too long": 1}


def test_hf_load_failure_names_the_source(monkeypatch):
    import datasets

    def fail(*args, **kwargs):
        raise FileNotFoundError("no cache")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    data = validate({})["data"]
    with pytest.raises(ValueError, match=r"hf:openai/gsm8k \(main\) split test: load_dataset"):
        load_split("gsm8k", "test", section(DataConfig, data))


def test_error_writes_no_tables(tmp_path):
    test = jsonl(tmp_path / "t.jsonl", gsm("Fine?"), {"question": ["x"], "answer": "#### 1"})
    with pytest.raises(ValueError, match=r"t\.jsonl: row 2: wrong type"):
        prepare_benchmark("gsm8k", cfg("gsm8k", test, DATA / "gsm8k.jsonl"), 0, tmp_path / "o")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
