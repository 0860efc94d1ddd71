# Resources the rules declare, valid on any scheduler (site-specific ones, such as the account,
# the partition or a GPU model, belong in a profile: workflow/profiles/slurm/config.yaml).
# Memory and run time grow with the attempt, so a job a scheduler killed for either is retried
# (profile `retries`) with more: base on the first attempt, 2 x base on the second, ...


def grow(base):
    """A resource of `base` on the first attempt and `attempt` x base on later ones."""
    return lambda wildcards, attempt: base * attempt


def model_gpus(kind=None):
    """GPUs a model job asks for when the config pins CUDA, else none: `gpus.train` for a
    training job, `gpus.sample` for a sampling job, one for the others (pretraining)."""
    if config["device"] != "cuda":
        return 0
    return config["gpus"][kind] if kind else 1


def job_gpus(kind):
    """Processes a `kind` job (train, sample) spreads over: one per GPU it asks for, one on a CPU."""
    return model_gpus(kind) or 1


def grade_threads(wildcards):
    """MATH is verified in a pool of data.grade_workers processes; the others in the job's own."""
    return config["data"]["grade_workers"] if wildcards.bench == "math" else 1


def grade_mem(wildcards, attempt):
    """Megabytes of a grade job: 1000 per process (one shard of text, the grader's imports),
    so a score group job of several shards still fits a small node."""
    return 1000 * grade_threads(wildcards) * attempt
