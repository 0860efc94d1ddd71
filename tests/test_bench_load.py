"""Benchmark loaders: hub schemas from hand-written fixtures into the problem tables."""

import json
from pathlib import Path

import pandas as pd
import pytest

from sps.cli import main
from sps.config import DataConfig, section, validate
from sps.tasks.bench import prepare_benchmark
from sps.tasks.bench.schemas import last_boxed

DATA = Path(__file__).parent / "data"
COLUMNS = ["id", "bench", "question", "gold", "answer_type", "choices", "prompt"]


def data_cfg(bench: str, train: dict, test: dict, **settings) -> DataConfig:
    data = validate({})["data"]
    data["sources"][bench] = {"train": train, "test": test}
    data.update(settings)
    return section(DataConfig, validate({"data": data})["data"])


def local(name: str, **kw) -> dict:
    return {"source": "local", "path": str(DATA / name), **kw}


def test_gsm8k_tables_counts_and_overlap(tmp_path):
    cfg = data_cfg("gsm8k", local("gsm8k.jsonl"), local("gsm8k_test.jsonl"))
    counts = prepare_benchmark("gsm8k", cfg, 0, tmp_path)
    train, test = (pd.read_parquet(tmp_path / f"{s}.parquet") for s in ("train", "test"))
    assert list(train.columns) == COLUMNS and list(test.columns) == COLUMNS
    assert counts["overlap_removed"] == 1  # the apples question is also a test question
    assert counts["train"]["loaded"] == 4 and counts["test"]["loaded"] == 3
    assert json.loads((tmp_path / "load.json").read_text()) == counts
    assert list(test["gold"]) == ["7", "5", "1000"]  # commas removed
    assert set(train["gold"]) == {"24", "1280", "15", "84"}
    assert (train["answer_type"] == "number").all() and train["choices"].isna().all()
    assert not set(train["question"]) & set(test["question"])
    assert "The answer is X." in test["prompt"][0] and test["question"][0] in test["prompt"][0]


@pytest.mark.parametrize(
    ("bench", "name", "golds", "kind"),
    [
        (
            "math",
            "math.jsonl",
            ["\\frac{3}{4}", "2\\sqrt{3}", "\\left(1, 2\\right)", "\\frac{1}{\\sqrt{2}}"],
            "math",
        ),
        ("svamp", "svamp.jsonl", ["5", "2.25", "8"], "number"),
        ("strategyqa", "strategyqa.jsonl", ["no", "yes", "no"], "yes_no"),
        ("commonsense_qa", "commonsense_qa.jsonl", ["A", "B", "C"], "choice"),
    ],
)
def test_each_schema(tmp_path, bench, name, golds, kind):
    cfg = data_cfg(
        bench, local(name, limit=1), local(name, skip=1) if bench != "math" else local(name)
    )
    prepare_benchmark(bench, cfg, 0, tmp_path)
    test = pd.read_parquet(tmp_path / "test.parquet")
    start = 0 if bench == "math" else 1
    assert list(test["gold"]) == golds[start:]
    assert (test["answer_type"] == kind).all() and (test["bench"] == bench).all()
    assert test["id"].is_unique


def test_schema_details(tmp_path):
    cfg = data_cfg("svamp", local("svamp.jsonl"), local("svamp.jsonl", limit=1))
    prepare_benchmark("svamp", cfg, 0, tmp_path)
    test = pd.read_parquet(tmp_path / "test.parquet")
    assert test["question"][0].endswith("given on each pack How much does one pack cost now?")
    cfg = data_cfg("commonsense_qa", local("commonsense_qa.jsonl"), local("commonsense_qa.jsonl"))
    prepare_benchmark("commonsense_qa", cfg, 0, tmp_path)
    test = pd.read_parquet(tmp_path / "test.parquet")
    assert list(test["choices"][0]) == ["A. bank", "B. street", "C. ocean", "D. oven", "E. garden"]
    assert "\nA. bank\nB. street\n" in test["prompt"][0]
    assert test["id"][0] == "c1"


def test_last_boxed_nested_braces():
    assert last_boxed("x \\boxed{1} then \\boxed{\\frac{a}{\\sqrt{b}}}.") == "\\frac{a}{\\sqrt{b}}"
    assert last_boxed("no box") is None and last_boxed("\\boxed{\\frac{1}{2}") is None


def test_few_shot_from_train_only_and_never_itself(tmp_path):
    cfg = data_cfg("gsm8k", local("gsm8k.jsonl"), local("gsm8k_test.jsonl"), few_shot=2)
    prepare_benchmark("gsm8k", cfg, 3, tmp_path)
    train, test = (pd.read_parquet(tmp_path / f"{s}.parquet") for s in ("train", "test"))
    for table in (train, test):
        for row in table.itertuples():
            assert row.prompt.count("Question: ") == 3 and row.prompt.endswith("\nAnswer:")
            assert row.prompt.count(row.question) == 1  # never its own exemplar
            assert "<<" not in row.prompt  # calculator annotations stripped
            for other in test["question"]:
                assert other == row.question or other not in row.prompt  # no test exemplars
    assert "The answer is " in train["prompt"][0].split("Question: ")[1]


def test_seeded_subsets(tmp_path):
    cfg = data_cfg("gsm8k", local("gsm8k.jsonl"), local("gsm8k_test.jsonl"), n_train=2, n_test=2)
    a = prepare_benchmark("gsm8k", cfg, 1, tmp_path / "a")
    prepare_benchmark("gsm8k", cfg, 1, tmp_path / "b")
    assert a["train"]["loaded"] == 2 and a["test"]["loaded"] == 2
    for split in ("train", "test"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "a" / f"{split}.parquet"),
            pd.read_parquet(tmp_path / "b" / f"{split}.parquet"),
        )


def test_bad_rows_error_names_file_and_row(tmp_path):
    cfg = data_cfg("gsm8k", local("bad_rows.jsonl"), local("gsm8k_test.jsonl"))
    with pytest.raises(ValueError, match=r"bad_rows\.jsonl: row 2: unparseable gold"):
        prepare_benchmark("gsm8k", cfg, 0, tmp_path)
    assert not (tmp_path / "train.parquet").exists()


def test_bad_rows_skip_mode_counts(tmp_path):
    cfg = data_cfg("gsm8k", local("bad_rows.jsonl"), local("gsm8k_test.jsonl"), on_bad_row="skip")
    counts = prepare_benchmark("gsm8k", cfg, 0, tmp_path)
    assert counts["train"]["skipped"] == {
        "unparseable gold": 1,
        "missing field": 1,
        "empty question": 1,
    }
    assert counts["train"]["loaded"] == 2 and counts["train"]["read"] == 5


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"qid": "x", "question": "q"}, "missing field"),
        ({"qid": "x", "question": "q", "answer": "maybe"}, "unparseable gold"),
        ({"qid": "x", "question": "  ", "answer": True}, "empty question"),
    ],
)
def test_strategyqa_bad_rows(tmp_path, row, message):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"qid": "ok", "question": "fine?", "answer": True}) + "\n")
    path.write_text(path.read_text() + json.dumps(row) + "\n")
    cfg = data_cfg("strategyqa", local("strategyqa.jsonl"), {"source": "local", "path": str(path)})
    with pytest.raises(ValueError, match=rf"s\.jsonl: row 2: {message}"):
        prepare_benchmark("strategyqa", cfg, 0, tmp_path)


def test_parquet_and_json_sources(tmp_path):
    rows = [json.loads(x) for x in (DATA / "commonsense_qa.jsonl").read_text().splitlines()]
    pd.DataFrame(rows).to_parquet(tmp_path / "c.parquet")
    (tmp_path / "c.json").write_text(json.dumps(rows))
    cfg = data_cfg(
        "commonsense_qa",
        {"source": "local", "path": str(tmp_path / "c.json")},
        {"source": "local", "path": str(tmp_path / "c.parquet")},
    )
    counts = prepare_benchmark("commonsense_qa", cfg, 0, tmp_path / "out")
    assert counts["test"]["loaded"] == 3 and counts["overlap_removed"] == 3


def test_hf_source_calls_load_dataset(tmp_path, monkeypatch):
    import datasets

    rows = [json.loads(x) for x in (DATA / "strategyqa.jsonl").read_text().splitlines()]
    calls = []

    def fake(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    cfg = data_cfg(
        "strategyqa",
        {"path": "org/sqa", "split": "train", "revision": "abc123", "limit": 2},
        {"path": "org/sqa", "name": "cfg", "split": "test", "skip": 2},
    )
    counts = prepare_benchmark("strategyqa", cfg, 0, tmp_path)
    assert calls == [("org/sqa", None, "train", "abc123"), ("org/sqa", "cfg", "test", None)]
    assert counts["train"]["loaded"] == 2 and counts["test"]["loaded"] == 1
    assert counts["test"]["source"] == "hf:org/sqa (cfg) split test"
    assert pd.read_parquet(tmp_path / "test.parquet")["gold"].tolist() == ["no"]


def test_hf_source_reads_a_local_dataset_offline(tmp_path, monkeypatch):
    """The real load_dataset call on a dataset directory, with the hub switched off."""
    import datasets

    folder = tmp_path / "csqa"
    folder.mkdir()
    (folder / "validation.jsonl").write_text((DATA / "commonsense_qa.jsonl").read_text())
    (folder / "train.jsonl").write_text((DATA / "commonsense_qa.jsonl").read_text())
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    src = {"path": str(folder), "split": "validation"}
    cfg = data_cfg("commonsense_qa", {**src, "split": "train"}, src)
    counts = prepare_benchmark("commonsense_qa", cfg, 0, tmp_path / "out")
    assert counts["test"]["loaded"] == 3
    test = pd.read_parquet(tmp_path / "out" / "test.parquet")
    assert test["gold"].tolist() == ["A", "B", "C"]


def test_cli_prepare_data(tmp_path, capsys):
    data = {"sources": {"svamp": {"train": local("svamp.jsonl"), "test": local("svamp.jsonl")}}}
    main(
        [
            "prepare-data",
            "--bench",
            "svamp",
            "--cfg",
            json.dumps({"data": data}),
            "--out-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert '"overlap_removed": 3' in out
    assert (tmp_path / "train.parquet").exists() and (tmp_path / "load.json").exists()
