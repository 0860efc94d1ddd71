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
_late_evals = [s for s in config["rl"]["eval_steps"] if s >= config["rl"]["steps"]]
if _late_evals:
    raise ValueError(
        f"config rl.eval_steps {_late_evals} must be below rl.steps ({config['rl']['steps']}): "
        "a snapshot after the last step is the final model, which is evaluated anyway"
    )


SEED = config["seed"]
BENCHMARKS = list(config["benchmarks"])
REAL_BENCHMARKS = [bench for bench in BENCHMARKS if bench != "countdown"]
# Trained methods: GRPO, SPS at each period and adaptive threshold, and the baselines; every
# one runs the same trainer on the same budget.
BASELINES = list(config["baselines"]["methods"])
METHODS = (
    ["grpo"]
    + [f"sps-p{period}" for period in config["sps"]["periods"]]
    + [f"sps-a{threshold:g}" for threshold in config["sps"]["adaptive"]["thresholds"]]
    + BASELINES
)
METHOD_RE = r"grpo|sps-p\d+|sps-a[0-9.e-]+|entropy-bonus|w-reinforce|unlikeliness|passk-training"
MODELS = ["base"] + METHODS
# Training seeds: the first seed's runs keep the plain method ids; every further seed trains
# and samples each method again as `{method}-s{seed}`, and Pass@k aggregates over seeds.
RUN_SEEDS = list(config["seeds"]) or [SEED]
SEED_MODELS = [f"{method}-s{seed}" for method in METHODS for seed in RUN_SEEDS[1:]]
# Evaluation snapshots `{method}-step{k}`: sampled with analysis.checkpoint_n in one shard.
EVAL_STEPS = sorted(config["rl"]["eval_steps"])
CHECKPOINTS = [f"{method}-step{step}" for method in METHODS for step in EVAL_STEPS]
CHECKPOINT_RE = re.compile(rf"({METHOD_RE})-step(\d+)")
SHARDS = list(range(config["sampling"]["shards"]))
FIGURES = [
    "passk",
    "diff",
    "ceiling",
    "dynamics",
    "sweep",
    "diversity",
    "checkpoints",
    "entropy",
]
FORMATS = list(config["plots"]["formats"])


wildcard_constraints:
    bench="|".join(map(re.escape, BENCHMARKS)),
    method=METHOD_RE,
    model=rf"base|({METHOD_RE})(-s\d+)?(-step\d+)?",
    shard="|".join(map(str, SHARDS)),
    seed=r"\d+",


def cfg_arg(settings):
    """The `--cfg` argument: settings as one shell-quoted JSON string (sorted keys, stable)."""
    return shlex.quote(json.dumps(settings, sort_keys=True))


def out_dir(wildcards, output):
    """Directory of a job's first output (commands that write several files into one folder)."""
    return os.path.dirname(output[0])


def out_prefix(wildcards, output):
    """A figure's path without its format suffix."""
    return os.path.splitext(output[0])[0]


# --- settings that change each job's output (params) ---


def data_cfg(bench):
    """The settings of one benchmark's tables: its own sources only, so changing another
    benchmark's source reruns nothing here."""
    if bench == "countdown":  # check_steps is grading's, not the data's
        task = {k: v for k, v in config["task"].items() if k != "check_steps"}
        return cfg_arg({"seed": SEED, "task": task})
    data = config["data"]
    keys = ("on_bad_row", "n_train", "n_test", "few_shot")
    settings = {key: data[key] for key in keys}
    return cfg_arg(
        {"seed": SEED, "data": {**settings, "sources": {bench: data["sources"][bench]}}}
    )


def grading_settings():
    """What grading reads besides the completions (sps.config.GradingConfig): math-verify's
    timeout and processes, the length cap, and countdown's step check."""
    keys = ("grade_timeout", "grade_workers", "grade_max_chars")
    return {
        "data": {key: config["data"][key] for key in keys},
        "task": {"check_steps": config["task"]["check_steps"]},
    }


def prompt_settings():
    return {"model": {"prompt_format": config["model"]["prompt_format"]}}


TINY_MODEL_KEYS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "max_position",
)


def pretrain_cfg():
    return cfg_arg(
        {
            "seed": SEED,
            "device": config["device"],
            "model": {key: config["model"][key] for key in TINY_MODEL_KEYS},
            "pretrain": config["pretrain"],
        }
    )


def schedule(method):
    """GRPO and the baselines have no IRL steps; sps-p{N} runs N RL steps, then irl.steps
    IRL steps; sps-a{T} runs irl.steps IRL steps whenever its indicator falls below T.
    """
    if (match := re.fullmatch(r"sps-p(\d+)", method)) is not None:
        return {
            "kind": config["sps"]["schedule"],
            "period": int(match.group(1)),
            "irl_steps": config["irl"]["steps"],
        }
    if (match := re.fullmatch(r"sps-a(.+)", method)) is not None:
        adaptive = config["sps"]["adaptive"]
        return {
            "kind": "adaptive",
            "threshold": float(match.group(1)),
            "hysteresis": adaptive["hysteresis"],
            "indicator": adaptive["indicator"],
            "irl_steps": config["irl"]["steps"],
        }
    return {"kind": "none"}


def irl_settings(method):
    """Runs without IRL steps read only the IRL score and tau (for their s(y) and max p
    diagnostics), so the other IRL keys stay out of their params and changing them reruns
    only the SPS runs."""
    if not method.startswith("sps-"):
        return {key: config["irl"][key] for key in ("score", "tau")}
    return config["irl"]


def method_settings(method):
    """A baseline's estimator and its settings; GRPO and SPS use the GRPO estimator."""
    if method in BASELINES:
        return {"estimator": method, "baselines": config["baselines"]}
    return {}


def train_cfg(wildcards):
    return cfg_arg(
        {
            "seed": int(wildcards.seed),
            "device": config["device"],
            "rl": config["rl"],
            "irl": irl_settings(wildcards.method),
            "schedule": schedule(wildcards.method),
            **grading_settings(),
            **prompt_settings(),
            **method_settings(wildcards.method),
        }
    )


def sampling_settings(model):
    """A snapshot draws analysis.checkpoint_n samples per problem in one shard; the other
    models follow `sampling` (so checkpoint_n never reruns their sampling)."""
    if CHECKPOINT_RE.fullmatch(model):
        return {
            **config["sampling"],
            "n": config["analysis"]["checkpoint_n"],
            "shards": 1,
        }
    return config["sampling"]


def sample_cfg(wildcards):
    return cfg_arg(
        {
            "seed": SEED,
            "device": config["device"],
            "sampling": sampling_settings(wildcards.model),
            **grading_settings(),
            **prompt_settings(),
        }
    )


def analysis_cfg(*keys):
    """--cfg of an analysis job: only the `analysis` keys that change its output."""
    return cfg_arg({"analysis": {key: config["analysis"][key] for key in keys}})


def plot_style():
    return cfg_arg(config["plots"])


# --- paths ---


def run_dir(method, bench, seed=None):
    return f"results/runs/{method}/{bench}/seed{RUN_SEEDS[0] if seed is None else seed}"


MODEL_RE = re.compile(
    rf"(?P<method>{METHOD_RE})(?:-s(?P<seed>\d+))?(?:-step(?P<step>\d+))?"
)


def model_dir(wildcards):
    """The model a sample job draws from: the base model, a trained run's final weights (of
    another seed for `{method}-s{seed}`) or an evaluation snapshot (`{method}-step{k}`).
    """
    if wildcards.model == "base":
        return "results/models/base"
    parts = MODEL_RE.fullmatch(wildcards.model)
    run = run_dir(parts["method"], wildcards.bench, parts["seed"])
    return f"{run}/evals/step{parts['step']}" if parts["step"] else f"{run}/final"


def model_shards(model, bench):
    """A model's sample shards: one for an evaluation snapshot, sampling.shards otherwise."""
    shards = [0] if CHECKPOINT_RE.fullmatch(model) else SHARDS
    return expand(
        "results/samples/{model}/{bench}/shard{shard}.parquet",
        model=model,
        bench=bench,
        shard=shards,
    )


def shard_files(wildcards):
    return model_shards(wildcards.model, wildcards.bench)


def passk_table(model, bench):
    return f"results/passk/{model}/{bench}.parquet"


def metrics_table(method, bench):
    return f"{run_dir(method, bench)}/metrics.parquet"


def passk_tables(wildcards):
    models = MODELS + SEED_MODELS + CHECKPOINTS
    return [passk_table(model, wildcards.bench) for model in models]


def passk_key(model):
    """A trained model's key for `--passk`: `method@seed` when there are several seeds."""
    if model == "base" or len(RUN_SEEDS) == 1 or CHECKPOINT_RE.fullmatch(model):
        return model
    parts = MODEL_RE.fullmatch(model)
    return f"{parts['method']}@{parts['seed'] or RUN_SEEDS[0]}"


def passk_pairs(wildcards, input):
    """`--passk` argument: model=table for every model, seed and snapshot (input order)."""
    models = MODELS + SEED_MODELS + CHECKPOINTS
    return " ".join(
        f"{passk_key(model)}={path}"
        for model, path in zip(models, input.passk, strict=True)
    )


def diversity_table(model, bench):
    return f"results/diversity/{model}/{bench}.parquet"


def diversity_tables(wildcards):
    return [diversity_table(model, wildcards.bench) for model in MODELS]


def diversity_pairs(wildcards, input):
    return " ".join(
        f"{model}={path}" for model, path in zip(MODELS, input.diversity, strict=True)
    )


def metrics_tables(wildcards):
    return [metrics_table(method, wildcards.bench) for method in METHODS]


def metrics_pairs(wildcards, input):
    """`--metrics` argument: method=table for every trained method (input is in METHODS order)."""
    return " ".join(
        f"{method}={path}" for method, path in zip(METHODS, input.metrics, strict=True)
    )


ANALYSIS_TABLES = [
    "passk",
    "coverage",
    "unsolved",
    "diff",
    "asymptote",
    "crossover",
    "checkpoints",
    "entropy_fit",
    "diversity",
]
# the summary's CSV tables, written beside results/summary.md
SUMMARY_CSVS = [
    "",
    "_diff",
    "_checkpoints",
    "_entropy",
    "_diversity",
    "_unsolved",
    "_grading",
]


def analysis_tables(bench):
    return [f"results/analysis/{bench}/{name}.parquet" for name in ANALYSIS_TABLES]


def analysis_table(name):
    """One cached table of the figure's benchmark (input of a figure rule)."""
    return f"results/analysis/{{bench}}/{name}.parquet"


def summary_csv(bench, suffix):
    """One CSV table of the summary, shown in the report under its benchmark."""
    return report(
        f"results/summary_{bench}{suffix}.csv",
        caption="../report/summary_csv.rst",
        category=bench,
        subcategory="tables",
        labels={"table": f"summary{suffix}"},
    )


def summary_csvs():
    return [
        summary_csv(bench, suffix) for bench in BENCHMARKS for suffix in SUMMARY_CSVS
    ]


def figure_file(name, fmt):
    """One figure in one format, shown in the report under its benchmark."""
    return report(
        f"results/figures/{{bench}}/{name}.{fmt}",
        caption=f"../report/{name}.rst",
        category="{bench}",
        subcategory="figures",
        labels={"figure": name, "format": fmt},
    )


def figure_files(name):
    return [figure_file(name, fmt) for fmt in FORMATS]


def method_figure_file(fmt):
    """A method's own figure (Pass@k at each training step), labelled by method."""
    return report(
        f"results/figures/{{bench}}/training_{{method}}.{fmt}",
        caption="../report/training.rst",
        category="{bench}",
        subcategory="per method",
        labels={"method": "{method}", "figure": "training", "format": fmt},
    )


def method_figure_files():
    return [method_figure_file(fmt) for fmt in FORMATS]


def all_figures():
    per_bench = expand(
        "results/figures/{bench}/{name}.{fmt}",
        bench=BENCHMARKS,
        name=FIGURES,
        fmt=FORMATS,
    )
    per_method = expand(
        "results/figures/{bench}/training_{method}.{fmt}",
        bench=BENCHMARKS,
        method=METHODS,
        fmt=FORMATS,
    )
    return per_bench + per_method


def all_analysis_tables():
    return [
        table
        for bench in BENCHMARKS
        for table in analysis_tables(bench) + [grading_table(bench)]
    ]


def grading_table(bench):
    return f"results/analysis/{bench}/grading.parquet"


def final_shards(wildcards):
    """Every sample shard of the final models (base and trained, every seed) of a bench."""
    return {
        model: model_shards(model, wildcards.bench) for model in MODELS + SEED_MODELS
    }


def grading_pairs(wildcards, input):
    """`--samples` of the grading job: model=shard for every shard of every final model."""
    return " ".join(
        f"{model}={path}"
        for model, paths in final_shards(wildcards).items()
        for path in paths
    )


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
