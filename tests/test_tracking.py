"""Live tracking (sps.train.tracking): what a metrics row becomes, the ETA, the `--logging`
option, and TensorBoard event files read back with TensorBoard's own reader after a training
run with the ci config's settings and after a resume; wandb and mlflow against stand-ins
(and the real libraries where installed)."""

import json
import math
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

from sps.cli import main
from sps.config import (
    ConfigError,
    IRLConfig,
    ModelConfig,
    RLConfig,
    ScheduleConfig,
    TaskConfig,
    TrackingConfig,
    load_config,
    section,
    validate,
)
from sps.models.io import save_model_atomic
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.tasks.data import prepare_countdown
from sps.train.tracking import Tracker, clock, eta_seconds, scalars, tracking_config
from sps.train.trainer import Trainer

ROW = {"step": 3, "phase": "irl", "reward_mean": 0.5, "kl": float("nan"), "irl_skipped": 2}


def events(logdir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in a TensorBoard log directory, read by TensorBoard's reader."""
    acc = EventAccumulator(str(logdir), size_guidance={SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def expected(metrics: pd.DataFrame) -> dict[str, list[tuple[int, float]]]:
    """What the event files must hold: each column's value at every step, as the float32
    number TensorBoard stores (NaN included); phase as 1 (irl) / 0 (rl)."""
    out = {}
    for col in metrics.columns.drop("step"):
        values = metrics[col].map(lambda v: float(v == "irl")) if col == "phase" else metrics[col]
        out[col] = [
            (int(s), float(np.float32(v))) for s, v in zip(metrics["step"], values, strict=True)
        ]
    return out


def same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """Equal (step, value) series, NaN equal to NaN."""
    return len(got) == len(want) and all(
        s == t and (v == w or math.isnan(v) and math.isnan(w))
        for (s, v), (t, w) in zip(got, want, strict=True)
    )


def test_scalars_of_a_row():
    got = scalars(ROW)
    assert set(got) == {"phase", "reward_mean", "kl", "irl_skipped"} and math.isnan(got["kl"])
    assert (got["phase"], got["reward_mean"], got["irl_skipped"]) == (1.0, 0.5, 2.0)
    assert scalars({"step": 0, "phase": "rl", "n": np.int64(3), "note": "x"}) == {
        "phase": 0.0,
        "n": 3.0,
    }


def test_eta_and_clock():
    times = [2.0, 4.0, 3.0, 5.0]
    # the obvious loop: steps left times the mean of the last `window` step times
    for window in (1, 2, 3, 10):
        recent, total = times[-window:], 0.0
        for t in recent:
            total += t
        want = (10 - len(times)) * total / len(recent)
        assert eta_seconds(times, 10, window) == pytest.approx(want)
    assert eta_seconds(times, 4) == 0 and math.isnan(eta_seconds([], 4))
    assert [clock(s) for s in (0, 59.6, 61, 3600, 3725.2)] == [
        "0:00",
        "1:00",
        "1:01",
        "1:00:00",
        "1:02:05",
    ]
    assert clock(float("nan")) == "?"


def test_logging_option(tmp_path):
    assert tracking_config(None) == TrackingConfig(["tensorboard"], True, "sps")
    assert tracking_config('{"trackers": []}').trackers == []
    path = tmp_path / "logging.yaml"
    path.write_text("trackers: [wandb, mlflow]\noffline: false\nproject: x\n")
    assert tracking_config(f"@{path}") == TrackingConfig(["wandb", "mlflow"], False, "x")
    with pytest.raises(ConfigError, match=r"logging\.trackers"):
        tracking_config('{"trackers": ["neptune"]}')
    with pytest.raises(ConfigError, match=r"logging\.offlin"):
        tracking_config('{"offlin": true}')


def test_logging_stays_out_of_the_run_settings(capsys):
    cfg = json.dumps({"rl": {"steps": 1}, "logging": {"trackers": []}})
    with pytest.raises(SystemExit):
        main(["train", "--cfg", cfg, "--base", "b", "--data", "d", "--out-dir", "o"])
    assert "sps train --logging" in capsys.readouterr().err


def test_a_tracker_that_is_not_installed_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"wandb.*sps\[wandb\]"):
        Tracker(TrackingConfig(["wandb"]), tmp_path)


@pytest.fixture(scope="module")
def ci_setup(tmp_path_factory):
    """Data and a base model with the ci config's shapes (random weights: no pretraining)."""
    root = tmp_path_factory.mktemp("tracking")
    ci = load_config(Path(__file__).resolve().parents[1] / "config/ci.yaml")
    task = section(TaskConfig, {**ci["task"], "n_sft": 20, "n_test": 4})
    prepare_countdown(task, seed=0, out_dir=root / "data")
    torch.manual_seed(0)
    tok = char_tokenizer()
    save_model_atomic(tiny_llama(section(ModelConfig, ci["model"]), tok), tok, root / "base")
    return root, ci


def test_ci_training_event_file_holds_every_metrics_column(ci_setup):
    root, ci = ci_setup
    cfg = {
        "seed": 0,
        "device": "cpu",
        "rl": ci["rl"],  # 6 steps, 2 prompts x 4 rollouts of up to 48 tokens
        "irl": {"support": "all"},  # every IRL statistic defined on the IRL steps
        "schedule": {"kind": "fixed", "period": 1, "irl_steps": 1},
    }
    argv = ["train", "--cfg", json.dumps(cfg), "--base", str(root / "base")]
    argv += ["--data", str(root / "data/train.parquet"), "--out-dir", str(root / "run")]
    main([*argv, "--logging", '{"trackers": ["tensorboard"]}'])
    metrics = pd.read_parquet(root / "run/metrics.parquet")
    got = events(root / "run/tb")
    assert len(metrics) == ci["rl"]["steps"] and set(metrics["phase"]) == {"rl", "irl"}
    for col, series in expected(metrics).items():
        assert same(got[col], series), col
    assert not metrics["undervalued_share"].isna().all()  # IRL statistics were logged too
    throughput = got.pop("sampling_tokens_per_s")
    assert [s for s, _ in throughput] == list(range(len(metrics)))
    assert all(v > 0 for _, v in throughput)
    assert set(got) == set(metrics.columns) - {"step"}


def _trainer() -> Trainer:
    torch.manual_seed(0)
    cfg, tok = validate({}), char_tokenizer()
    rl = {**cfg["rl"], "steps": 6, "prompts_per_step": 2, "group_size": 4, "max_new_tokens": 8}
    prompts = [f"Make {t} from 1 2 3.\n" for t in range(4)]
    return Trainer(
        tiny_llama(ModelConfig(16, 1, 2, 32, 64), tok),
        tok,
        prompts,
        lambda _, text: float(len(text) % 2 == 0),
        section(RLConfig, {**rl, "checkpoint_every": 2, "lr": 1e-2}),
        section(IRLConfig, {**cfg["irl"], "support": "all"}),
        ScheduleConfig("fixed", 1, 1),
        seed=0,
    )


class Killed(Exception):
    pass


def _train(run_dir, stop_after: int | None = None) -> pd.DataFrame:
    """Trainer.run as `sps train` runs it, the tracker logging after each step; raising
    after `stop_after` steps stands in for a kill (the event file is flushed every step)."""
    trainer = _trainer()

    def after_step(done: int) -> None:
        tracker.log(trainer.history[-1], sampling_tokens_per_s=trainer.sampling_tokens_per_s)
        if done == stop_after:
            raise Killed

    with Tracker(TrackingConfig(["tensorboard"]), run_dir) as tracker:
        return trainer.run(log=lambda _: None, after_step=after_step, checkpoint_dir=run_dir / "c")


def test_a_resumed_run_appends_and_replaces_what_the_killed_one_logged_past_its_checkpoint(
    tmp_path,
):
    with pytest.raises(Killed):  # logged steps 0-4, last checkpoint after 4 steps
        _train(tmp_path, stop_after=5)
    killed = events(tmp_path / "tb")
    assert [s for s, _ in killed["loss"]] == [0, 1, 2, 3, 4]
    metrics = _train(tmp_path)  # resumes after step 4: logs steps 4 and 5
    got = events(tmp_path / "tb")
    for col, series in expected(metrics).items():
        assert same(got[col], series), col  # each step once, with the resumed run's values
    assert [s for s, _ in got["sampling_tokens_per_s"]] == list(range(6))
    # step 4 was logged twice; the resumed run's timing replaced the killed run's
    assert got["time_s"][4] != killed["time_s"][4]
    # a run from step 0 in the same directory (no checkpoint left) replaces the old curves
    shutil.rmtree(tmp_path / "c")
    fresh = _train(tmp_path)
    got = events(tmp_path / "tb")
    for col, series in expected(fresh).items():
        assert same(got[col], series), col


class _FakeRun:
    def __init__(self, **kw):
        self.init, self.logged, self.finished = kw, [], False

    def log(self, values, step):
        self.logged.append((step, dict(values)))

    def finish(self):
        self.finished = True


def test_wandb_is_offline_and_skips_the_steps_it_holds(tmp_path, monkeypatch):
    runs = []
    wandb = types.ModuleType("wandb")
    wandb.init = lambda **kw: runs.append(_FakeRun(**kw)) or runs[-1]
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    cfg = TrackingConfig(["wandb"], offline=True, project="p")
    with Tracker(cfg, tmp_path / "grpo/countdown/seed0", params={"seed": 0}) as tracker:
        for step in range(3):
            tracker.log({**ROW, "step": step}, sampling_tokens_per_s=10.0)
    first = runs[0]
    assert first.init["mode"] == "offline" and first.init["project"] == "p"
    assert first.init["name"] == "grpo/countdown/seed0" and first.init["config"] == {"seed": 0}
    assert first.init["dir"] == str(tmp_path / "grpo/countdown/seed0") and first.finished
    assert [s for s, _ in first.logged] == [0, 1, 2]
    assert first.logged[0][1]["sampling_tokens_per_s"] == 10.0
    # resumed after a checkpoint at step 1: the same run, steps 1 and 2 not sent twice
    with Tracker(cfg, tmp_path / "grpo/countdown/seed0") as tracker:
        for step in range(1, 4):
            tracker.log({**ROW, "step": step})
    assert runs[1].init["id"] == first.init["id"] and runs[1].init["resume"] == "allow"
    assert [s for s, _ in runs[1].logged] == [3]
    # a run from step 0 is a new run
    with Tracker(cfg, tmp_path / "grpo/countdown/seed0") as tracker:
        tracker.log({**ROW, "step": 0})
    assert runs[2].init["id"] != first.init["id"]
    online = TrackingConfig(["wandb"], offline=False)
    with Tracker(online, tmp_path / "x") as tracker:
        tracker.log(ROW)
    assert runs[3].init["mode"] is None  # wandb's own settings (WANDB_MODE, login) decide


def test_mlflow_writes_a_file_store_under_the_run(tmp_path, monkeypatch):
    calls = []

    class Client:
        def __init__(self, tracking_uri=None):
            calls.append(("client", tracking_uri))

        def get_experiment_by_name(self, name):
            return None

        def create_experiment(self, name):
            calls.append(("experiment", name))
            return "7"

        def create_run(self, exp, run_name):
            calls.append(("run", exp, run_name))
            return types.SimpleNamespace(info=types.SimpleNamespace(run_id="r1"))

        def update_run(self, run_id, status):
            calls.append(("update", run_id, status))

        def log_batch(self, run_id, metrics=(), params=()):
            calls.append(("batch", run_id, [(m.key, m.value, m.step) for m in metrics], params))

        def set_terminated(self, run_id):
            calls.append(("end", run_id))

    mlflow = types.ModuleType("mlflow")
    mlflow.MlflowClient = Client
    entities = types.ModuleType("mlflow.entities")
    entities.Metric = lambda key, value, timestamp, step: types.SimpleNamespace(
        key=key, value=value, step=step
    )
    entities.Param = lambda key, value: (key, value)
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    monkeypatch.setitem(sys.modules, "mlflow.entities", entities)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with Tracker(TrackingConfig(["mlflow"]), tmp_path, params={"rl": {"lr": 0.1}}) as tracker:
        tracker.log({**ROW, "step": 0})
        tracker.log({**ROW, "step": 1})
    assert calls[0] == ("client", (tmp_path / "mlruns").resolve().as_uri())
    assert ("batch", "r1", [], [("rl.lr", "0.1")]) in calls
    logged = [c[2] for c in calls if c[0] == "batch" and c[2]]
    assert [key for key, _, _ in logged[0]] == ["phase", "reward_mean", "kl", "irl_skipped"]
    assert [{step for _, _, step in batch} for batch in logged] == [{0}, {1}]
    assert calls[-1] == ("end", "r1")
    calls.clear()
    with Tracker(TrackingConfig(["mlflow"]), tmp_path) as tracker:  # resumed after step 0
        tracker.log({**ROW, "step": 1})
        tracker.log({**ROW, "step": 2})
    assert ("update", "r1", "RUNNING") in calls and ("run", "7", tmp_path.name) not in calls
    assert [c[2][0][2] for c in calls if c[0] == "batch"] == [2]  # step 1 it had already


def test_real_mlflow_and_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    from mlflow import MlflowClient

    monkeypatch.setenv("WANDB_SILENT", "true")
    with Tracker(TrackingConfig(["tensorboard", "wandb", "mlflow"]), tmp_path) as tracker:
        for step in range(3):
            tracker.log({**ROW, "step": step, "reward_mean": step / 4})
    state = json.loads((tmp_path / "tracking.json").read_text())
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    history = client.get_metric_history(state["mlflow"]["id"], "reward_mean")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 0.25), (2, 0.5)]
    assert list((tmp_path / "wandb").glob(f"offline-run-*-{state['wandb']['id']}"))
    assert events(tmp_path / "tb")["reward_mean"] == [(0, 0.0), (1, 0.25), (2, 0.5)]
