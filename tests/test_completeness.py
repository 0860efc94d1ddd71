"""Every reader of per-sample files (grade, passk, diversity, grading) refuses an incomplete
set of shards: each problem of the data needs exactly n samples, sample_idx 0..n-1, across a
model's shards, and grades must match their samples row for row. The error names the shard
and the problem, and the command exits nonzero without writing its output."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sps.analysis import io
from sps.cli import main
from sps.config import TaskConfig
from sps.tasks.data import prepare_countdown

N, SHARDS = 8, 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    prepare_countdown(TaskConfig(3, 12, 60, 3, 4, 4, 6), seed=0, out_dir=out)
    return out


def ids(data_dir: Path) -> list[str]:
    return pd.read_parquet(data_dir / "test.parquet")["id"].tolist()


def write_set(root: Path, data_dir: Path) -> dict[str, list[Path]]:
    """A complete model: SHARDS sample shards and their grades, N samples per problem."""
    paths: dict[str, list[Path]] = {"samples": [], "grades": []}
    per = N // SHARDS
    for shard in range(SHARDS):
        keys = [(p, i) for p in ids(data_dir) for i in range(shard * per, (shard + 1) * per)]
        pid, idx = [k[0] for k in keys], [k[1] for k in keys]
        samples = pd.DataFrame(
            {"problem_id": pid, "sample_idx": idx, "completion": [f"Answer: {i}" for i in idx],
             "n_tokens": 9, "logprob": -1.0, "finish_reason": "stop"}
        )  # fmt: skip
        grades = pd.DataFrame(
            {"problem_id": pid, "sample_idx": idx, "pred": [str(i) for i in idx],
             "correct": [i % 3 == 0 for i in idx], "grade": "ok"}
        )  # fmt: skip
        for kind, frame in (("samples", samples), ("grades", grades)):
            path = root / kind / f"shard{shard}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path)
            paths[kind].append(path)
    return paths


def half_problems(frame: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    return frame[frame["problem_id"].isin(problems[:3])]  # 3 of the 6


def drop_one(frame: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    return frame.drop(index=frame.index[(frame["problem_id"] == problems[-1])][1])


def duplicate(frame: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[[3]]], ignore_index=True)


def foreign(frame: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    return frame.assign(problem_id=frame["problem_id"].map(lambda p: f"other-{p}"))


# attack -> (change to shard 1, what the message must name besides the shard)
CASES = {
    "half its problems removed": (half_problems, lambda ps: [f"lacks problem {ps[3]!r}"]),
    "a missing sample_idx": (drop_one, lambda ps: [repr(ps[-1]), "lacks sample_idx 5"]),
    "a duplicated row": (duplicate, lambda ps: ["duplicate sample", repr(ps[0])]),
    "another problem set": (foreign, lambda ps: ["holds problem 'other-", "not in"]),
    "a truncated file": (None, lambda ps: ["truncated or corrupt"]),
}


def spoil(path: Path, change, problems: list[str]) -> None:
    if change is None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        change(pd.read_parquet(path), problems).to_parquet(path)


def command(kind: str, paths: dict[str, list[Path]], data_dir: Path, out: Path) -> list[str]:
    test = str(data_dir / "test.parquet")
    grades, samples = [str(p) for p in paths["grades"]], [str(p) for p in paths["samples"]]
    if kind == "passk":
        return ["passk", "--grades", *grades, "--data", test, "--n", str(N), "--out", str(out)]
    if kind == "diversity":
        return ["diversity", "--samples", *samples, "--grades", *grades, "--data", test,
                "--n", str(N), "--out", str(out)]  # fmt: skip
    if kind == "grading":  # two models (the same files): each is checked on its own
        pairs = [f"{model}={p}" for model in ("base", "grpo") for p in grades]
        sample_pairs = [f"{model}={p}" for model in ("base", "grpo") for p in samples]
        return ["grading", "--bench", "countdown", "--data-dir", str(data_dir), "--grades",
                *pairs, "--samples", *sample_pairs, "--n", str(N), "--out", str(out)]  # fmt: skip
    # grade: the sample shard alone, against the data
    return ["grade", "--cfg", "{}", "--data", test, "--samples", samples[1], "--out", str(out)]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return stop.value.code, capsys.readouterr().err


READERS = {"passk": "grades", "diversity": "samples", "grading": "grades", "grade": "samples"}


def test_grading_counts_completions_stopped_at_the_token_limit(data_dir, tmp_path):
    paths = write_set(tmp_path, data_dir)
    shard = pd.read_parquet(paths["samples"][1])
    cut = shard["sample_idx"] % 2 == 1  # half of this shard, a quarter of the samples
    shard.loc[cut, "finish_reason"] = "length"
    shard.loc[cut, "n_tokens"] = 17
    shard.to_parquet(paths["samples"][1])
    out = tmp_path / "out.parquet"
    main(command("grading", paths, data_dir, out))
    table = pd.read_parquet(out).set_index("model")
    total = len(ids(data_dir)) * N
    assert table.loc["base", "length"] == total // 4
    assert table.loc["base", "length_rate"] == pytest.approx(0.25)
    assert table.loc["base", "mean_tokens"] == pytest.approx((3 * 9 + 17) / 4)
    from sps.analysis.grading import grading_markdown

    row = [x for x in grading_markdown(table.reset_index()).splitlines() if x.startswith("| base")]
    assert row[0].endswith("| 0.250 | 11.0 |")


@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_complete_set_passes(kind, data_dir, tmp_path):
    paths = write_set(tmp_path, data_dir)
    out = tmp_path / "out.parquet"
    main(command(kind, paths, data_dir, out))
    table = pd.read_parquet(out)
    if kind == "passk":
        assert table["n"].eq(N).all() and len(table) == len(ids(data_dir))
    if kind == "grade":
        assert list(table.columns) == ["problem_id", "sample_idx", "pred", "correct", "grade"]
    if kind == "grading":
        assert table["model"].tolist() == ["base", "grpo"] and table["samples"].eq(6 * N).all()


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kind", sorted(READERS))
def test_an_incomplete_shard_stops_naming_shard_and_problem(kind, case, data_dir, tmp_path, capsys):
    paths = write_set(tmp_path, data_dir)
    change, names = CASES[case]
    problems = ids(data_dir)
    spoiled = paths[READERS[kind]][1]
    spoil(spoiled, change, problems)
    out = tmp_path / "out.parquet"
    code, err = run_cli(command(kind, paths, data_dir, out), capsys)
    assert code != 0, err
    assert str(spoiled) in err, err
    for name in names(problems):
        assert name in err, err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["passk", "diversity", "grading"])
def test_a_missing_shard_stops(kind, data_dir, tmp_path, capsys):
    paths = write_set(tmp_path, data_dir)
    paths = {k: v[:1] for k, v in paths.items()}  # shard 1 left out: n = 4, not 8
    code, err = run_cli(command(kind, paths, data_dir, tmp_path / "out.parquet"), capsys)
    assert code != 0 and "sample_idx 4 of every problem is in none of the shards" in err, err


def test_a_shard_given_twice_stops(data_dir, tmp_path, capsys):
    paths = write_set(tmp_path, data_dir)
    paths["grades"] = [paths["grades"][0], paths["grades"][0]]
    code, err = run_cli(command("passk", paths, data_dir, tmp_path / "out.parquet"), capsys)
    assert code != 0 and "duplicate sample" in err and "shard0.parquet" in err, err


def test_grades_must_match_their_samples_row_for_row(data_dir, tmp_path, capsys):
    paths = write_set(tmp_path, data_dir)
    path = paths["grades"][1]
    grades = pd.read_parquet(path)
    grades.iloc[::-1].reset_index(drop=True).to_parquet(path)  # the same rows, reordered
    code, err = run_cli(command("diversity", paths, data_dir, tmp_path / "o.parquet"), capsys)
    assert code != 0 and f"{path} does not match" in err and "row for row" in err, err


def test_the_real_process_exits_nonzero_on_a_truncated_shard(data_dir, tmp_path):
    paths = write_set(tmp_path, data_dir)
    spoil(paths["grades"][0], None, [])
    argv = command("passk", paths, data_dir, tmp_path / "out.parquet")
    run = subprocess.run(
        [sys.executable, "-m", "sps.cli", *argv], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 2, run.stderr
    assert f"sps passk: error: {paths['grades'][0]} is truncated or corrupt" in run.stderr


def complete(shards: list[list[tuple[str, int]]], data: list[str], n: int) -> bool:
    """The contract, slowly: every shard holds each (problem, index) once, exactly the data's
    problems, each with the shard's one index set; each problem's indices are 0..n-1."""
    for rows in shards:
        if max(Counter(rows).values(), default=1) > 1 or {p for p, _ in rows} != set(data):
            return False
        if len({frozenset(i for q, i in rows if q == p) for p in data}) != 1:
            return False
    return all(
        sorted(i for rows in shards for q, i in rows if q == p) == list(range(n)) for p in data
    )


@st.composite
def shard_sets(draw):
    """A valid layout of n samples over shards, then a few random edits."""
    data, n = ["a", "b", "c"], draw(st.integers(1, 4))
    cuts = sorted(set(draw(st.lists(st.integers(1, n), max_size=3))) - {n})
    bounds = [0, *cuts, n]  # shard s holds indices bounds[s]..bounds[s + 1] - 1
    shards = [
        [(p, i) for p in data for i in range(lo, hi)]
        for lo, hi in zip(bounds, bounds[1:], strict=False)
    ]
    for _ in range(draw(st.integers(0, 2))):
        rows = shards[draw(st.integers(0, len(shards) - 1))]
        if not rows:
            continue
        j = draw(st.integers(0, len(rows) - 1))
        edit = draw(st.sampled_from(["drop", "repeat", "problem", "index"]))
        if edit == "drop":
            rows.pop(j)
        elif edit == "repeat":
            rows.append(rows[j])
        elif edit == "problem":
            rows[j] = (draw(st.sampled_from(["a", "b", "c", "z"])), rows[j][1])
        else:
            rows[j] = (rows[j][0], draw(st.integers(0, n)))
    return shards, data, n


@settings(max_examples=150, deadline=None)
@given(shard_sets())
def test_the_reader_accepts_exactly_the_complete_sets(case):
    shards, data, n = case
    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame({"id": data}).to_parquet(Path(tmp) / "test.parquet")
        paths = []
        for s, rows in enumerate(shards):
            frame = pd.DataFrame(rows, columns=["problem_id", "sample_idx"], dtype=object)
            frame = frame.astype({"problem_id": str, "sample_idx": "int64"}).assign(correct=True)
            paths.append(Path(tmp) / f"shard{s}.parquet")
            frame.to_parquet(paths[-1])
        try:
            io.read_shards(paths, ("correct",), Path(tmp) / "test.parquet", n)
            accepted = True
        except ValueError:
            accepted = False
    assert accepted == complete(shards, data, n), shards
