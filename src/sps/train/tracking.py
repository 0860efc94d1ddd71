"""Live tracking of a training run: every numeric column of a metrics.parquet row, each step,
and the sampling throughput, sent to TensorBoard, Weights & Biases or MLflow through their
own APIs (`logging.trackers`, given to `sps train --logging`).

- tensorboard (default): event files in `{run}/tb/` (torch.utils.tensorboard), so
  `tensorboard --logdir results/` shows every run under its path. No network.
- wandb, mlflow: imported only when named. With `logging.offline` (default) neither touches
  the network: wandb runs in offline mode (files in `{run}/wandb/`; `wandb sync` uploads them)
  and mlflow writes a file store in `{run}/mlruns/`.

A metric is logged under its column name, at its row's `step`, with its value in the row,
NaN included (a statistic the step does not define, e.g. an IRL one on an RL step); `phase`
is 1 on IRL steps and 0 on RL steps. Tracking only reads the rows: it never changes the
run's outputs or settings.

Resume. A resumed run logs from its first new step on. TensorBoard gets a restart marker at
that step (SummaryWriter's `purge_step`): the readers drop the steps the killed process
logged past its last checkpoint, and the resumed run's values replace them. wandb and mlflow
cannot drop points, so they continue the same run (its id kept in `{run}/tracking.json`, with
the last step each holds) and skip the steps they already have. A run that starts at step 0
starts afresh: old event files are removed, and wandb and mlflow get new runs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from sps.config import ConfigError, TrackingConfig, section, validate

TRACKERS = ("tensorboard", "wandb", "mlflow")
STATE_FILE = "tracking.json"
_PACKAGE = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def tracking_config(text: str | None) -> TrackingConfig:
    """The `logging` section from `sps train --logging` (inline JSON or @file, JSON or YAML);
    None gives the defaults. Errors name the key."""
    data = {}
    if text:
        import yaml

        try:
            data = yaml.safe_load(Path(text[1:]).read_text() if text.startswith("@") else text)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"--logging: cannot read {text!r}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("--logging must be a mapping, the config's `logging` section")
    return section(TrackingConfig, validate({"logging": data}, partial=True)["logging"])


def scalars(row: Mapping) -> dict[str, float]:
    """The numbers of one metrics row: every numeric column but `step` (the x axis), and
    `phase` as 1.0 (irl) or 0.0 (rl)."""
    out = {}
    for key, value in row.items():
        if key == "step":
            continue
        if key == "phase":
            value = float(value == "irl")
        if isinstance(value, str | bytes):
            continue
        try:
            out[key] = float(value)  # NaN too: the metrics file's value, undefined this step
        except (TypeError, ValueError):  # not a number: not a curve
            continue
    return out


def eta_seconds(step_times: Sequence[float], total: int, window: int = 10) -> float:
    """Seconds left: (total - steps done) x the mean time of the last `window` steps."""
    if not step_times:
        return float("nan")
    recent = step_times[-window:]
    return (total - len(step_times)) * sum(recent) / len(recent)


def clock(seconds: float) -> str:
    """h:mm:ss (m:ss under an hour); `?` when unknown."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Tracker:
    """One metrics row per step, fanned out to the configured trackers.

    The trackers open at the first row (its step tells a fresh run from a resumed one), on
    the main process only (`enabled`). `params` (the run's settings) go to wandb's config and
    mlflow's params. Use as a context manager, so the trackers close when training ends."""

    def __init__(
        self,
        cfg: TrackingConfig,
        run_dir: str | Path,
        params: Mapping | None = None,
        enabled: bool = True,
    ):
        unknown = [t for t in cfg.trackers if t not in TRACKERS]
        if unknown:
            raise ConfigError(f"logging.trackers: unknown {unknown}; expected any of {TRACKERS}")
        missing = [t for t in cfg.trackers if not _installed(_PACKAGE[t])]
        if enabled and missing:
            extras = ",".join(missing)
            raise ConfigError(
                f"logging.trackers names {missing}, not installed: pip install 'sps[{extras}]'"
            )
        self.cfg, self.run_dir, self.params = cfg, Path(run_dir), dict(params or {})
        self.enabled = enabled and bool(cfg.trackers)
        self.name = "/".join(self.run_dir.resolve().parts[-3:])  # method/bench/seed{s}
        self._sinks: dict | None = None
        self._state: dict = {}

    def log(self, row: Mapping, **extra: float) -> None:
        """Log a metrics row (and `extra` numbers, e.g. the sampling throughput) at its step."""
        if not self.enabled:
            return
        step = int(row["step"])
        if self._sinks is None:
            self._sinks = self._open(step)
        values = {**scalars(row), **scalars(extra)}
        for name, sink in self._sinks.items():
            held = self._state.get(name)  # wandb, mlflow: the last step their run holds
            if held is None or step > held["last_step"]:
                sink.log(step, values)
                if held is not None:
                    held["last_step"] = step
        self._save_state()

    def close(self) -> None:
        for sink in (self._sinks or {}).values():
            sink.close()
        self._sinks = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self, first: int) -> dict:
        """The trackers, continuing the saved runs when this session resumes (first > 0)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / STATE_FILE
        saved = json.loads(path.read_text()) if first > 0 and path.is_file() else {}
        self._state = dict(saved)  # a tracker left out this time keeps its run for later
        sinks = {}
        for name in self.cfg.trackers:
            if name == "tensorboard":
                sinks[name] = _TensorBoard(self.run_dir / "tb", first)
                continue
            state = saved.get(name) or {"id": None, "last_step": -1}
            if name == "wandb":
                sinks[name] = _Wandb(self, state)
            else:
                sinks[name] = _Mlflow(self, state)
            self._state[name] = state
        self._save_state()
        return sinks

    def _save_state(self) -> None:
        if not self._state:
            return
        from sps.io import write_text_atomic

        write_text_atomic(json.dumps(self._state, indent=2), self.run_dir / STATE_FILE)


class _TensorBoard:
    def __init__(self, logdir: Path, first: int):
        from torch.utils.tensorboard import SummaryWriter

        if first == 0:  # a fresh run replaces whatever an earlier run of this directory left
            for old in logdir.glob("events.out.tfevents.*"):
                old.unlink()
        # purge_step writes a restart marker: readers drop what a killed run logged from here on
        self.writer = SummaryWriter(str(logdir), purge_step=first or None)

    def log(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()  # live, and nothing lost if the job is killed

    def close(self) -> None:
        self.writer.close()


class _Wandb:
    def __init__(self, tracker: Tracker, state: dict):
        import wandb

        cfg = tracker.cfg
        state["id"] = state["id"] or uuid.uuid4().hex[:16]
        self.run = wandb.init(
            project=cfg.project,
            name=tracker.name,
            id=state["id"],
            resume="allow",
            dir=str(tracker.run_dir),
            config=tracker.params,
            mode="offline" if cfg.offline else None,
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


class _Mlflow:
    def __init__(self, tracker: Tracker, state: dict):
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri = None
        if tracker.cfg.offline:
            # mlflow 3 keeps the file store but asks for this opt-in (a database needs a server)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (tracker.run_dir / "mlruns").resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        if state["id"] is None:
            project = tracker.cfg.project
            found = self.client.get_experiment_by_name(project)
            exp = found.experiment_id if found else self.client.create_experiment(project)
            state["id"] = self.client.create_run(exp, run_name=tracker.name).info.run_id
            params = [Param(k, str(v)[:500]) for k, v in _flatten(tracker.params).items()]
            for start in range(0, len(params), 100):  # mlflow takes at most 100 params a call
                self.client.log_batch(state["id"], params=params[start : start + 100])
        else:
            self.client.update_run(state["id"], status="RUNNING")
        self.run_id = state["id"]

    def log(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _installed(package: str) -> bool:
    if sys.modules.get(package) is not None:  # imported already (or a test's stand-in)
        return True
    return importlib.util.find_spec(package) is not None


def _flatten(params: Mapping, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
