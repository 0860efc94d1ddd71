# Run and model ids (spelled by sps.runs, which the analysis reads back) and the paths of every
# stage's files, with the input functions the rules name.
import itertools

from sps.runs import METHOD_WILDCARD, Method, Model, parse_model

# Trained methods: GRPO, SPS at each period and adaptive threshold, the sensitivity grid and the
# baselines; every one runs the same trainer on the same budget.
BASELINES = list(config["baselines"]["methods"])


def grid_methods():
    """The sensitivity grid's runs: fixed-period SPS with the IRL settings of each cell, named
    by what differs from the `irl` section (a cell equal to the defaults is `sps-p{N}`).
    """
    grid, irl = config["sensitivity"], config["irl"]
    if not grid["periods"]:
        return []
    cells = itertools.product(
        grid["periods"],
        grid["lr_scales"] or [irl["lr_scale"]],
        grid["irl_steps"] or [irl["steps"]],
        grid["demos"] or [irl["demos"]],
    )
    methods = []
    for period, lr_scale, steps, demos in cells:
        if irl["demos"] == "buffer" and demos == "group":
            raise ValueError(
                "config sensitivity.demos: 'group' cannot be spelled in a run id while "
                "irl.demos is 'buffer'; set irl.demos: group and list both in sensitivity.demos"
            )
        values = {"lr_scale": lr_scale, "steps": steps, "demos": demos}
        over = {key: value for key, value in values.items() if value != irl[key]}
        methods.append(Method("fixed", period=period, irl=over).id)
    return methods


GRID = grid_methods()
METHODS = list(
    dict.fromkeys(
        ["grpo"]
        + [Method("fixed", period=period).id for period in config["sps"]["periods"]]
        + [
            Method("adaptive", threshold=threshold).id
            for threshold in config["sps"]["adaptive"]["thresholds"]
        ]
        + GRID
        + BASELINES
    )
)
MODELS = ["base"] + METHODS
# Training seeds: the first seed's runs keep the plain method ids; every further seed trains
# and samples each method again as `{method}-s{seed}` (snapshots `{method}-s{seed}-step{k}`),
# and every table and figure aggregates over the seeds.
RUN_SEEDS = list(config["seeds"]) or [SEED]
SEED_MODELS = [f"{method}-s{seed}" for method in METHODS for seed in RUN_SEEDS[1:]]
# Evaluation snapshots: sampled with analysis.checkpoint_n in one shard, for every seed.
EVAL_STEPS = sorted(config["rl"]["eval_steps"])
CHECKPOINTS = [
    Model(method, None if seed == RUN_SEEDS[0] else seed, step).id
    for method in METHODS
    for seed in RUN_SEEDS
    for step in EVAL_STEPS
]


wildcard_constraints:
    bench="|".join(BENCHMARKS),
    method=METHOD_WILDCARD,
    model=rf"base|(?:{METHOD_WILDCARD})(?:-s\d+)?(?:-step\d+)?",
    shard="|".join(map(str, SHARDS)),
    seed=r"\d+",


def is_snapshot(model):
    """An evaluation snapshot `{method}[-s{seed}]-step{k}`."""
    return model != "base" and parse_model(model).step is not None


def out_dir(wildcards, output):
    """Directory of a job's first output (commands that write several files into one folder)."""
    return os.path.dirname(output[0])


def out_prefix(wildcards, output):
    """A figure's path without its format suffix."""
    return os.path.splitext(output[0])[0]


# --- models, samples, grades ---


def run_dir(method, bench, seed=None):
    return f"results/runs/{method}/{bench}/seed{RUN_SEEDS[0] if seed is None else seed}"


def model_dir(wildcards):
    """The model a sample job draws from: the base model, a trained run's final weights (of
    another seed for `{method}-s{seed}`) or an evaluation snapshot (`{method}-step{k}`).
    """
    if wildcards.model == "base":
        return "results/models/base"
    model = parse_model(wildcards.model)
    run = run_dir(model.method, wildcards.bench, model.seed)
    return f"{run}/final" if model.step is None else f"{run}/evals/step{model.step}"


def model_shards(model, bench, kind="samples"):
    """A model's sample (or grade) shards: one for an evaluation snapshot, sampling.shards
    otherwise."""
    shards = [0] if is_snapshot(model) else SHARDS
    return [f"results/{kind}/{model}/{bench}/shard{shard}.parquet" for shard in shards]


def shard_files(wildcards):
    return model_shards(wildcards.model, wildcards.bench)


def grade_files(wildcards):
    return model_shards(wildcards.model, wildcards.bench, "grades")


def test_data(wildcards):
    return f"results/data/{wildcards.bench}/test.parquet"


def final_grades(wildcards):
    """Every grade shard of the final models (base and trained, every seed) of a bench."""
    return {
        model: model_shards(model, wildcards.bench, "grades")
        for model in MODELS + SEED_MODELS
    }


def final_samples(wildcards):
    """Every sample shard of the final models of a bench (their finish reasons and lengths)."""
    return {
        model: model_shards(model, wildcards.bench, "samples")
        for model in MODELS + SEED_MODELS
    }


def shard_pairs(shards):
    """model=shard for every shard of every model: the report's `--grades` or `--samples`."""
    return " ".join(
        f"{model}={path}" for model, paths in shards.items() for path in paths
    )


def grading_pairs(wildcards, input):
    return shard_pairs(final_grades(wildcards))


def sample_pairs(wildcards, input):
    return shard_pairs(final_samples(wildcards))


# --- per-model tables ---


def passk_table(model, bench):
    return f"results/passk/{model}/{bench}.parquet"


def passk_tables(wildcards):
    models = MODELS + SEED_MODELS + CHECKPOINTS
    return [passk_table(model, wildcards.bench) for model in models]


def seed_key(model):
    """A model's key for the analysis: its id without the seed, then `@seed` when there are
    several seeds (`grpo-s3-step50` is `grpo-step50@3`); `base` has one sample set."""
    if model == "base" or len(RUN_SEEDS) == 1:
        return model
    parsed = parse_model(model)
    seed = RUN_SEEDS[0] if parsed.seed is None else parsed.seed
    return f"{Model(parsed.method, None, parsed.step).id}@{seed}"


def passk_pairs(wildcards, input):
    """`--passk` argument: model=table for every model, seed and snapshot (input order)."""
    models = MODELS + SEED_MODELS + CHECKPOINTS
    return " ".join(
        f"{seed_key(model)}={path}"
        for model, path in zip(models, input.passk, strict=True)
    )


def diversity_table(model, bench):
    return f"results/diversity/{model}/{bench}.parquet"


def diversity_tables(wildcards):
    return [diversity_table(model, wildcards.bench) for model in MODELS + SEED_MODELS]


def diversity_pairs(wildcards, input):
    models = MODELS + SEED_MODELS
    return " ".join(
        f"{seed_key(model)}={path}"
        for model, path in zip(models, input.diversity, strict=True)
    )


def metrics_table(method, bench, seed=None):
    return f"{run_dir(method, bench, seed)}/metrics.parquet"


# (method, seed) of every training run, in the order of the --metrics arguments
RUNS = [(method, seed) for method in METHODS for seed in RUN_SEEDS]


def metrics_key(method, seed):
    return method if len(RUN_SEEDS) == 1 else f"{method}@{seed}"


def metrics_tables(wildcards):
    return [metrics_table(method, wildcards.bench, seed) for method, seed in RUNS]


def metrics_pairs(wildcards, input):
    """`--metrics` argument: method[@seed]=table for every training run (input order)."""
    return " ".join(
        f"{metrics_key(method, seed)}={path}"
        for (method, seed), path in zip(RUNS, input.metrics, strict=True)
    )


def all_metrics_tables():
    return [
        metrics_table(method, bench, seed)
        for bench in BENCHMARKS
        for method, seed in RUNS
    ]


def summary_metrics_pairs(wildcards, input):
    """`--metrics` of the summary: bench:method[@seed]=table for every bench and run."""
    keys = [f"{bench}:{metrics_key(m, s)}" for bench in BENCHMARKS for m, s in RUNS]
    return " ".join(
        f"{key}={path}" for key, path in zip(keys, input.metrics, strict=True)
    )


# --- analysis tables, figures, the summary ---

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
    "sensitivity",
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
    "_sensitivity",
]


def analysis_tables(bench):
    return [f"results/analysis/{bench}/{name}.parquet" for name in ANALYSIS_TABLES]


def analysis_table(name):
    """One cached table of the figure's benchmark (input of a figure rule)."""
    return f"results/analysis/{{bench}}/{name}.parquet"


def grading_table(bench):
    return f"results/analysis/{bench}/grading.parquet"


def all_analysis_tables():
    return [
        table
        for bench in BENCHMARKS
        for table in analysis_tables(bench) + [grading_table(bench)]
    ]


def analysis_dirs(wildcards, input):
    """One --analysis-dir per benchmark, in config order."""
    return " ".join(dict.fromkeys(os.path.dirname(path) for path in input.analysis))


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
        name=FIGURES + (["sensitivity"] if GRID else []),
        fmt=FORMATS,
    )
    per_method = expand(
        "results/figures/{bench}/training_{method}.{fmt}",
        bench=BENCHMARKS,
        method=METHODS,
        fmt=FORMATS,
    )
    return per_bench + per_method
