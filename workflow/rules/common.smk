import json
import os
import re
import shlex

import yaml

from snakemake.utils import validate

SCHEMA = "../schemas/config.schema.yaml"


def coerce_cli_strings(value, schema):
    """Snakemake reads the leaves of a nested `--config` value (rl='{steps: 5}') as strings;
    give them back the type the schema asks for. Strings that do not parse stay strings, so
    validation still names the key."""
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: coerce_cli_strings(v, props.get(k, {})) for k, v in value.items()}
    if kind == "array" and isinstance(value, list):
        return [coerce_cli_strings(v, schema.get("items", {})) for v in value]
    if kind in ("integer", "number", "boolean") and isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        wanted = {"integer": (int,), "number": (int, float), "boolean": (bool,)}[kind]
        if isinstance(parsed, wanted) and (
            kind == "boolean" or not isinstance(parsed, bool)
        ):
            return parsed
    return value


with open(workflow.source_path(SCHEMA)) as schema_file:
    config.update(coerce_cli_strings(dict(config), yaml.safe_load(schema_file)))
# The schema fills every default and rejects unknown keys and wrong types, naming the key.
validate(config, SCHEMA)

if config["sampling"]["n"] % config["sampling"]["shards"] != 0:
    raise ValueError(
        f"config sampling.shards ({config['sampling']['shards']}) must divide "
        f"sampling.n ({config['sampling']['n']}): every shard draws n / shards samples per problem"
    )


SEED = config["seed"]
BENCHMARKS = list(config["benchmarks"])
# The base model is pretrained on the built-in task's traces (the first benchmark for now).
PRETRAIN_BENCH = BENCHMARKS[0]
METHODS = ["grpo"] + [f"sps-p{period}" for period in config["sps"]["periods"]]
MODELS = ["base"] + METHODS
SHARDS = list(range(config["sampling"]["shards"]))
FIGURES = ["passk", "dynamics", "sweep"]
FORMATS = list(config["plots"]["formats"])


wildcard_constraints:
    bench="|".join(map(re.escape, BENCHMARKS)),
    method=r"grpo|sps-p\d+",
    model=r"base|grpo|sps-p\d+",
    shard="|".join(map(str, SHARDS)),
    seed=r"\d+",


def cfg_arg(settings):
    """The `--cfg` argument: settings as one shell-quoted JSON string (sorted keys, stable)."""
    return shlex.quote(json.dumps(settings, sort_keys=True))


def gpus():
    """GPUs a model job asks for: one when the config pins CUDA, else none."""
    return 1 if config["device"] == "cuda" else 0


def out_dir(wildcards, output):
    """Directory of a job's first output (commands that write several files into one folder)."""
    return os.path.dirname(output[0])


def out_prefix(wildcards, output):
    """A figure's path without its format suffix."""
    return os.path.splitext(output[0])[0]


# --- settings that change each job's output (params) ---


def data_cfg():
    return cfg_arg({"seed": SEED, "task": config["task"]})


def pretrain_cfg():
    return cfg_arg(
        {
            "seed": SEED,
            "device": config["device"],
            "model": config["model"],
            "pretrain": config["pretrain"],
        }
    )


def schedule(method):
    """GRPO is SPS without IRL steps; sps-p{N} runs N RL steps, then irl.steps IRL steps."""
    if method == "grpo":
        return {"kind": "none"}
    period = int(re.fullmatch(r"sps-p(\d+)", method).group(1))
    return {
        "kind": config["sps"]["schedule"],
        "period": period,
        "irl_steps": config["irl"]["steps"],
    }


def irl_settings(method):
    """GRPO reads only the IRL score and tau (for its s(y) and max p diagnostics), so the
    other IRL keys stay out of its params and changing them reruns only the SPS runs."""
    if method == "grpo":
        return {key: config["irl"][key] for key in ("score", "tau")}
    return config["irl"]


def train_cfg(wildcards):
    return cfg_arg(
        {
            "seed": int(wildcards.seed),
            "device": config["device"],
            "rl": config["rl"],
            "irl": irl_settings(wildcards.method),
            "schedule": schedule(wildcards.method),
        }
    )


def sample_cfg():
    return cfg_arg(
        {"seed": SEED, "device": config["device"], "sampling": config["sampling"]}
    )


def plot_style():
    return cfg_arg(config["plots"])


# --- paths ---


def run_dir(method, bench):
    return f"results/runs/{method}/{bench}/seed{SEED}"


def model_dir(wildcards):
    """The model a sample job draws from: the base model or a trained run's final weights."""
    if wildcards.model == "base":
        return "results/models/base"
    return f"{run_dir(wildcards.model, wildcards.bench)}/final"


def shard_files(wildcards):
    return expand(
        "results/samples/{model}/{bench}/shard{shard}.parquet",
        model=wildcards.model,
        bench=wildcards.bench,
        shard=SHARDS,
    )


def passk_table(model, bench):
    return f"results/passk/{model}/{bench}.parquet"


def metrics_table(method, bench):
    return f"{run_dir(method, bench)}/metrics.parquet"


def passk_tables(wildcards):
    return [passk_table(model, wildcards.bench) for model in MODELS]


def passk_pairs(wildcards, input):
    """`--passk` argument: model=table for every model (input is in MODELS order)."""
    return " ".join(
        f"{model}={path}" for model, path in zip(MODELS, input, strict=True)
    )


def metrics_tables(wildcards):
    return [metrics_table(method, wildcards.bench) for method in METHODS]


def metrics_pairs(wildcards, input):
    """`--metrics` argument: method=table for every trained method (input is in METHODS order)."""
    return " ".join(
        f"{method}={path}" for method, path in zip(METHODS, input, strict=True)
    )


def analysis_tables(bench):
    return [
        f"results/analysis/{bench}/passk.parquet",
        f"results/analysis/{bench}/coverage.parquet",
    ]


def figure_file(name, fmt):
    """One figure in one format, shown in the report under its benchmark."""
    return report(
        f"results/figures/{{bench}}/{name}.{fmt}",
        caption=f"../report/{name}.rst",
        category="{bench}",
        labels={"figure": name, "format": fmt},
    )


def figure_files(name):
    return [figure_file(name, fmt) for fmt in FORMATS]


def all_figures():
    return expand(
        "results/figures/{bench}/{name}.{fmt}",
        bench=BENCHMARKS,
        name=FIGURES,
        fmt=FORMATS,
    )


def all_analysis_tables():
    return [table for bench in BENCHMARKS for table in analysis_tables(bench)]


def all_metrics_tables():
    return [metrics_table(method, bench) for bench in BENCHMARKS for method in METHODS]


def summary_metrics_pairs(wildcards, input):
    methods = [method for bench in BENCHMARKS for method in METHODS]
    return " ".join(
        f"{method}={path}" for method, path in zip(methods, input.metrics, strict=True)
    )


def analysis_dirs(wildcards, input):
    """One --analysis-dir per benchmark, in config order."""
    return " ".join(dict.fromkeys(os.path.dirname(path) for path in input.analysis))
