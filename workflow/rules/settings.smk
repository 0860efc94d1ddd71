# The settings that change each job's output: a rule's params hold exactly these (as one
# `--cfg` JSON string), so changing one reruns the jobs it changes and nothing else.
import ast
import hashlib
from importlib import metadata

from sps.config import bench_settings
from sps.runs import parse_method


def cfg_arg(settings):
    """The `--cfg` argument: settings as one shell-quoted JSON string (sorted keys, stable)."""
    return shlex.quote(json.dumps(settings, sort_keys=True))


def data_cfg(bench):
    """The settings of one benchmark's tables: its own sources only, so changing another
    benchmark's source reruns nothing here."""
    if bench == "countdown":  # check_steps is grading's, not the data's
        task = {k: v for k, v in config["task"].items() if k != "check_steps"}
        return cfg_arg({"seed": SEED, "task": task})
    data = config["data"]
    keys = ("on_bad_row", "max_row_chars", "n_train", "n_test", "few_shot")
    settings = {key: data[key] for key in keys}
    return cfg_arg(
        {"seed": SEED, "data": {**settings, "sources": {bench: data["sources"][bench]}}}
    )


# --- grading ---


def grading_settings():
    """What grading reads besides the completions (sps.config.GradingConfig): math-verify's
    timeout and processes, the length cap, and countdown's step check."""
    keys = ("grade_timeout", "grade_workers", "grade_max_chars")
    return {
        "data": {key: config["data"][key] for key in keys},
        "task": {"check_steps": config["task"]["check_steps"]},
    }


def grade_cfg():
    return cfg_arg(grading_settings())


# The grader's code, relative to the package: sps.tasks.grading and what grade_rows and the
# grade job call. The rules run this tree's code (an editable install), so its files are read.
GRADER_SOURCES = (
    "tasks/grading/*.py",
    "tasks/countdown.py",
    "tasks/arith.py",
    "tasks/data.py",
    "tasks/grade_samples.py",
)


def grader_identity():
    """`v{GRADER_VERSION}-{hash}-mv{math-verify version}`: a grade job's params, so Snakemake
    regrades when any of these changes. The version says a change was meant; the hash of the
    grader's sources catches an edit nobody versioned (a stale grade is a wrong number with
    exit 0, a needless regrade costs minutes); math-verify decides MATH answers."""
    package = Path(workflow.basedir) / "src" / "sps"
    files = sorted({f for pattern in GRADER_SOURCES for f in package.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"no grader sources under {package}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(package)}\0".encode() + path.read_bytes())
    try:
        math_verify = metadata.version("math-verify")
    except metadata.PackageNotFoundError:
        math_verify = "none"
    version = grader_version(package / "tasks" / "grading" / "__init__.py")
    return f"v{version}-{digest.hexdigest()[:12]}-mv{math_verify}"


def grader_version(init_file):
    """GRADER_VERSION as the file assigns it (read, not imported: this tree's value)."""
    for node in ast.parse(init_file.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "GRADER_VERSION" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return "none"


GRADER = grader_identity()


# --- models and training ---


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


def irl_settings(method):
    """The IRL keys of a run, with the overrides its id spells (`sps-p4-lr0.3-m2`). Runs
    without IRL steps read only the IRL score and tau (for their s(y) and max p diagnostics),
    so the other IRL keys stay out of their params and changing them reruns only SPS runs.
    """
    if not method.startswith("sps-"):
        return {key: config["irl"][key] for key in ("score", "tau")}
    return {**config["irl"], **parse_method(method).irl}


def schedule(method):
    """GRPO and the baselines have no IRL steps; sps-p{N} runs N RL steps, then irl.steps
    IRL steps; sps-a{T} runs irl.steps IRL steps whenever its indicator falls below T.
    """
    parsed = parse_method(method)
    if parsed.kind == "fixed":
        return {
            "kind": config["sps"]["schedule"],
            "period": parsed.period,
            "irl_steps": irl_settings(method)["steps"],
        }
    if parsed.kind == "adaptive":
        adaptive = config["sps"]["adaptive"]
        return {
            "kind": "adaptive",
            "threshold": parsed.threshold,
            "hysteresis": adaptive["hysteresis"],
            "indicator": adaptive["indicator"],
            "max_gap": adaptive["max_gap"],
            "irl_steps": irl_settings(method)["steps"],
        }
    return {"kind": "none"}


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
            "rl": bench_settings(config, wildcards.bench, "rl"),
            "irl": irl_settings(wildcards.method),
            "schedule": schedule(wildcards.method),
            **grading_settings(),  # the reward grades in-process
            **prompt_settings(),
            **method_settings(wildcards.method),
        }
    )


# --- sampling and analysis ---


def sampling_settings(model, bench):
    """A snapshot draws analysis.checkpoint_n samples per problem in one shard; the other
    models follow `sampling` (so checkpoint_n never reruns their sampling); per_bench.<bench>
    replaces its keys."""
    sampling = bench_settings(config, bench, "sampling")
    if is_snapshot(model):
        return {**sampling, "n": config["analysis"]["checkpoint_n"], "shards": 1}
    return sampling


def sample_cfg(wildcards):
    """No grading settings: sample jobs write completions only, graded by the grade rule."""
    return cfg_arg(
        {
            "seed": SEED,
            "device": config["device"],
            "sampling": sampling_settings(wildcards.model, wildcards.bench),
            **prompt_settings(),
        }
    )


def samples_per_problem(wildcards):
    """n of a model's samples, which every reader checks (sample_idx 0..n-1 per problem)."""
    return sampling_settings(wildcards.model, wildcards.bench)["n"]


def analysis_cfg(*keys):
    """--cfg of an analysis job: only the `analysis` keys that change its output."""
    return cfg_arg({"analysis": {key: config["analysis"][key] for key in keys}})


def logging_file():
    """Trackers (TensorBoard, wandb, mlflow) watch a run without changing it, so they stay out
    of the train rule's params (a change there would retrain): `sps train --logging @file`
    reads them from this file, which the workflow rewrites when the config changes them.
    """
    path = Path(".snakemake/sps/logging.json")
    text = json.dumps(config["logging"], sort_keys=True)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return str(path)


def analyze_cfg():
    """--cfg of the analyze job: its analysis keys, and the IRL section, from which the
    sensitivity table reads the settings of grid cells that their ids leave at the default.
    """
    keys = ("bootstrap", "seed", "level", "entropy_window")
    analysis = {key: config["analysis"][key] for key in keys}
    return cfg_arg({"analysis": analysis, "irl": config["irl"]})


def plot_style():
    return cfg_arg(config["plots"])
