"""Configuration: one JSON schema (config.schema.yaml, shared with the Snakefile) and typed views.

The schema is the single source of truth for keys, types and defaults. `load_config` validates
a dict against it, fills defaults and names the offending key on error; the dataclasses below
are typed views of the sections that the code reads.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_FILE = "config.schema.yaml"


class ConfigError(ValueError):
    """A config value is missing, unknown or of the wrong type; the message names the key."""


def schema() -> dict:
    return yaml.safe_load(resources.files("sps").joinpath(SCHEMA_FILE).read_text())


def _fill_defaults(instance: dict, node: dict) -> None:
    for key, sub in node.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(instance[key], sub)


def _key_path(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path = ".".join(filter(None, [path, ",".join(extra)]))
    return path or "<top level>"


def validate(config: dict, partial: bool = False) -> dict:
    """Validate and fill defaults; returns a new dict. `partial` checks only the keys present."""
    config = copy.deepcopy(config)
    node = schema()
    if partial:
        node = {**node, "properties": {k: v for k, v in node["properties"].items() if k in config}}
    _fill_defaults(config, node)
    errors = sorted(jsonschema.Draft202012Validator(node).iter_errors(config), key=str)
    if errors:
        lines = [f"config key '{_key_path(e)}': {e.message}" for e in errors]
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines))
    return config


def load_config(path: str | Path) -> dict:
    """Read a YAML config file and validate it; errors name the file and the key."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    try:
        return validate(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_cfg_arg(text: str, extra: tuple[str, ...] = ()) -> dict:
    """The `--cfg` argument of every command: inline JSON, or @file (JSON or YAML).

    Schema sections present are validated and filled; keys named in `extra` (per-run settings
    the workflow derives, such as `schedule`) pass through unvalidated for the caller to check.
    """
    if text.startswith("@"):
        path = Path(text[1:])
        data = yaml.safe_load(path.read_text())
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--cfg is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("--cfg must be a JSON/YAML mapping")
    passed = {k: data.pop(k) for k in extra if k in data}
    return {**validate(data, partial=True), **passed}


def section(cls: type, data: dict[str, Any]):
    """Build dataclass `cls` from a validated section; keys must match exactly."""
    names = {f.name for f in fields(cls)}
    unknown, missing = set(data) - names, names - set(data)
    if unknown or missing:
        raise ConfigError(
            f"{cls.__name__}: unknown keys {sorted(unknown)}, missing {sorted(missing)}"
        )
    return cls(**data)


@dataclass(frozen=True)
class TaskConfig:
    count: int
    max_number: int
    max_target: int
    min_solutions: int
    n_sft: int
    n_train: int
    n_test: int
    check_steps: bool = True  # grading: every step line must be true arithmetic
    prompt: str = "terse"  # terse (the tiny model) | chat (instruction and worked chat turns)
    shots: int = 2  # chat: worked examples, generated and kept out of every split


@dataclass(frozen=True)
class SplitSource:
    """Where one split of a benchmark comes from (`data.sources.<bench>.<split>`)."""

    source: str  # hf | local
    path: str  # hub id (hf) or file (local)
    name: str | None = None  # hub config name
    split: str = "train"  # hub split
    revision: str | None = None
    skip: int = 0  # rows dropped from the start
    limit: int = 0  # rows kept after skip (0 = all)


@dataclass(frozen=True)
class DataConfig:
    on_bad_row: str
    n_train: int
    n_test: int
    few_shot: int
    grade_timeout: float
    grade_workers: int
    sources: dict
    grade_max_chars: int = 100_000
    max_row_chars: int = 100_000  # a longer benchmark row is a bad row

    def split_source(self, bench: str, split: str) -> SplitSource:
        try:
            return SplitSource(**self.sources[bench][split])
        except KeyError:
            raise ConfigError(f"config key 'data.sources.{bench}.{split}' is not defined") from None


@dataclass(frozen=True)
class GradingConfig:
    """Everything grading reads besides the problem rows and the completions.

    Built by `grading_config` from `data.grade_timeout`, `data.grade_workers`,
    `data.grade_max_chars` and `task.check_steps`, so a grade job's params hold exactly these.
    """

    timeout: float = 5.0  # seconds math-verify may spend on one (gold, answer) pair
    workers: int = 2  # math-verify processes
    max_chars: int = 100_000  # longer completions are graded too_long before any parsing
    check_steps: bool = True  # countdown: the step lines must be true and lead to the answer


def grading_config(cfg: dict) -> GradingConfig:
    """The grading settings of a validated (possibly partial) config; defaults elsewhere."""
    defaults = validate({})
    data = {**defaults["data"], **(cfg.get("data") or {})}
    task = {**defaults["task"], **(cfg.get("task") or {})}
    return GradingConfig(
        timeout=float(data["grade_timeout"]),
        workers=int(data["grade_workers"]),
        max_chars=int(data["grade_max_chars"]),
        check_steps=bool(task["check_steps"]),
    )


@dataclass(frozen=True)
class ModelConfig:
    hidden_size: int  # the tiny model's shape: hidden_size ... max_position
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position: int
    source: str = "tiny"  # tiny | hf | gguf
    path: str = ""
    revision: str | None = None
    trust_remote_code: bool = False
    prompt_format: str = "auto"  # auto | chat | plain


@dataclass(frozen=True)
class PretrainConfig:
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    weight_decay: float
    wrong_fraction: float


@dataclass(frozen=True)
class RLConfig:
    steps: int
    prompts_per_step: int
    group_size: int
    lr: float
    warmup_steps: int
    max_new_tokens: int
    temperature: float
    backend: str
    adv_scale: str
    loss_agg: str
    updates_per_batch: int
    clip_low: float
    clip_high: float
    kl_coef: float
    grad_clip: float
    adv_eps: float
    micro_batch_size: int
    gradient_checkpointing: bool
    lora_rank: int
    lora_alpha: float
    lora_dropout: float
    lora_target_modules: list[str]
    logprob_chunk: int
    checkpoint_every: int
    keep_checkpoints: int
    eval_steps: list[int]
    vllm_gpu_memory_utilization: float = 0.3  # rl.backend vllm: the colocated engine's share
    vllm_sleep: bool = True  # rl.backend vllm: the engine sleeps during the update
    parallel: str = "ddp"  # several processes: ddp replicates the model, fsdp shards it


@dataclass(frozen=True)
class TrackingConfig:
    """The `logging` section: live tracking of a training run (`sps train --logging`)."""

    trackers: list[str]  # any of tensorboard, wandb, mlflow; empty turns tracking off
    offline: bool = True  # wandb offline mode; mlflow's file store under the run directory
    project: str = "sps"  # wandb project and mlflow experiment


@dataclass(frozen=True)
class IRLConfig:
    objective: str
    support: str
    demos: str
    buffer_size: int
    q: str
    score: str
    tau: float
    steps: int
    lr_scale: float


@dataclass(frozen=True)
class BaselineConfig:
    methods: list[str]
    entropy_coef: float
    w_reinforce_lambda: float
    unlikeliness_beta: float
    passk_k: int


@dataclass(frozen=True)
class ScheduleConfig:
    """Not a config section: the per-run schedule the workflow derives from `sps`."""

    kind: str = "none"  # none (GRPO) | fixed | adaptive
    period: int = 0  # fixed: N RL steps between IRL phases
    irl_steps: int = 1  # M
    indicator: str = "distinct_correct"  # adaptive: distinct_correct | entropy
    threshold: float = 0.0  # adaptive: fire when the indicator falls below this
    hysteresis: float = 0.0  # adaptive: re-arm above threshold + hysteresis
    max_gap: int = 0  # adaptive: also re-arm after this many RL steps without IRL (0 = never)

    def __post_init__(self) -> None:
        if self.kind not in ("none", "fixed", "adaptive"):
            raise ConfigError(f"schedule.kind must be none, fixed or adaptive, got {self.kind!r}")
        if self.kind == "fixed" and self.period < 1:
            raise ConfigError("schedule.period must be >= 1 for the fixed schedule")
        if self.indicator not in ("distinct_correct", "entropy"):
            raise ConfigError(f"schedule.indicator: unknown indicator {self.indicator!r}")
        if self.max_gap < 0:
            raise ConfigError(f"sps.adaptive.max_gap must be >= 0, got {self.max_gap}")


@dataclass(frozen=True)
class SamplingConfig:
    n: int
    shards: int
    batch_size: int
    temperature: float
    top_p: float
    top_k: int
    max_new_tokens: int
    backend: str


def check_config(config: dict) -> None:
    """Checks across keys of a validated config (defaults filled), run before any job.

    The schema checks one key at a time; these catch combinations that would otherwise fail
    only inside a job, or silently give two runs one path. ConfigError lists every problem
    found, each naming its keys.
    """
    found = [
        *_model_problems(config),
        *_run_id_problems(config),
        *_training_problems(config),
        *_sampling_problems(config),
    ]
    if found:
        raise ConfigError("invalid config, keys that disagree:\n  " + "\n  ".join(found))


def _model_problems(cfg: dict) -> list[str]:
    model, out = cfg["model"], []
    if cfg["task"]["prompt"] == "chat" and "countdown" in cfg["benchmarks"]:
        # The tiny model pretrains on the terse prompt; a plain-text chat prompt is worked
        # examples in a row, which a model continues with another example (graded wrong).
        if model["source"] == "tiny":
            out.append("task.prompt chat is for a pretrained chat model, not model.source tiny")
        elif model["prompt_format"] == "plain":
            out.append("task.prompt chat needs the chat template, not model.prompt_format plain")
    if model["source"] != "tiny":
        if not model["path"]:
            out.append(f"model.path must name the model when model.source is {model['source']}")
        return out
    hidden, heads = model["hidden_size"], model["num_heads"]
    if hidden % heads:
        out.append(f"model.num_heads ({heads}) must divide model.hidden_size ({hidden})")
    elif (hidden // heads) % 2:
        out.append(
            f"model.hidden_size / model.num_heads ({hidden} / {heads} = {hidden // heads}) "
            "must be even: rotary position embeddings rotate pairs of dimensions"
        )
    return out


def _run_id_problems(cfg: dict) -> list[str]:
    """A run's settings are read back from its id, which keeps 6 significant digits: a value
    the id cannot spell exactly would train at the rounded value, and two such values would
    share one run (one trains, both read it)."""
    from sps.runs import Method

    period = (cfg["sensitivity"]["periods"] or [1])[0]
    spelled = [
        ("sps.adaptive.thresholds", v, Method("adaptive", threshold=v).id)
        for v in cfg["sps"]["adaptive"]["thresholds"]
    ]
    spelled += [
        ("sensitivity.lr_scales", v, Method("fixed", period=period, irl={"lr_scale": v}).id)
        for v in cfg["sensitivity"]["lr_scales"]
    ]
    out = []
    for key, value, run_id in spelled:
        if float(f"{value:g}") != value:
            out.append(
                f"{key} value {value!r} is written {value:g} in its run id ({run_id}, 6 "
                "significant digits), and the run would train at that: give it with at most "
                "6 digits"
            )
    formats = cfg["plots"]["formats"]
    if len(set(formats)) < len(formats):
        out.append(f"plots.formats {formats} names a format twice")
    return out


def bench_settings(cfg: dict, bench: str, section: str) -> dict:
    """`cfg[section]` ("rl" or "sampling") as `bench`'s jobs see it: per_bench.<bench>'s
    keys in place of the section's."""
    return {**cfg[section], **cfg.get("per_bench", {}).get(bench, {}).get(section, {})}


def _per_bench_problems(cfg: dict) -> list[str]:
    out = []
    known = schema()["properties"]["benchmarks"]["items"]["enum"]  # one not run here is fine
    for bench in cfg.get("per_bench", {}):
        if bench not in known:
            out.append(f"per_bench.{bench} names no benchmark; known: {', '.join(known)}")
    for bench in cfg["benchmarks"]:
        steps = bench_settings(cfg, bench, "rl")["steps"]
        late = [s for s in cfg["rl"]["eval_steps"] if s >= steps]
        if late:
            key = f"per_bench.{bench}.rl.steps" if steps != cfg["rl"]["steps"] else "rl.steps"
            out.append(
                f"rl.eval_steps {late} must be below {key} ({steps}): a snapshot after the "
                "last step is the final model, which is evaluated anyway"
            )
    return list(dict.fromkeys(out))  # once, not once per benchmark


def _training_problems(cfg: dict) -> list[str]:
    rl, out = cfg["rl"], _per_bench_problems(cfg)
    base = cfg["baselines"]
    if "passk-training" in base["methods"] and base["passk_k"] > rl["group_size"]:
        out.append(
            f"baselines.passk_k ({base['passk_k']}) must be at most rl.group_size "
            f"({rl['group_size']}) when baselines.methods has passk-training"
        )
    # A step draws min(prompts_per_step, train problems): fewer problems than prompts would
    # train on a smaller budget than run.json records.
    for key, n_train in _split_sizes(cfg, "train"):
        if n_train < rl["prompts_per_step"]:
            out.append(
                f"rl.prompts_per_step ({rl['prompts_per_step']}) exceeds {key} ({n_train}): "
                "every step would train on fewer prompts than the budget says"
            )
    if cfg["device"] == "cuda" and cfg["gpus"]["train"] > rl["prompts_per_step"]:
        out.append(
            f"gpus.train ({cfg['gpus']['train']}) exceeds rl.prompts_per_step "
            f"({rl['prompts_per_step']}): every training process needs a prompt per step"
        )
    elif cfg["device"] == "cuda" and rl["parallel"] == "fsdp":
        if rl["prompts_per_step"] % cfg["gpus"]["train"]:
            out.append(  # FSDP gathers in every pass: the processes must run the same passes
                f"rl.parallel fsdp: gpus.train ({cfg['gpus']['train']}) must divide "
                f"rl.prompts_per_step ({rl['prompts_per_step']}), so every process gets as "
                "many prompts"
            )
    return out


def _sampling_problems(cfg: dict) -> list[str]:
    sampling, out = cfg["sampling"], []
    if sampling["n"] % sampling["shards"]:
        out.append(
            f"sampling.shards ({sampling['shards']}) must divide sampling.n ({sampling['n']}): "
            "every shard draws n / shards samples per problem"
        )
    if sampling["backend"] == "vllm" and cfg["device"] == "cpu":
        out.append("sampling.backend vllm needs CUDA, but device is cpu")
    gpus = cfg["gpus"]["sample"]
    if cfg["device"] == "cuda" and sampling["backend"] != "vllm":
        for key, n_test in _split_sizes(cfg, "test"):
            if n_test < gpus:  # the job splits its problems across its GPUs
                out.append(f"gpus.sample ({gpus}) exceeds {key} ({n_test}) test problems")
    return out


def _split_sizes(cfg: dict, split: str) -> list[tuple[str, int]]:
    """(key, problems) of a split where the config fixes the count: countdown's task.n_*,
    the real benchmarks' data.n_* when not 0 (0 = the whole split, known only after loading)."""
    out = []
    if "countdown" in cfg["benchmarks"]:
        out.append((f"task.n_{split}", cfg["task"][f"n_{split}"]))
    if any(b != "countdown" for b in cfg["benchmarks"]) and cfg["data"][f"n_{split}"]:
        out.append((f"data.n_{split}", cfg["data"][f"n_{split}"]))
    return out
