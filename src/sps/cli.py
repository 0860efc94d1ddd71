"""The `sps` command: every workflow rule is one of these subcommands, runnable by hand."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from sps.config import (
    BaselineConfig,
    ConfigError,
    DataConfig,
    IRLConfig,
    ModelConfig,
    PretrainConfig,
    RLConfig,
    SamplingConfig,
    ScheduleConfig,
    TaskConfig,
    grading_config,
    parse_cfg_arg,
    section,
    validate,
)


def _threads(args: argparse.Namespace) -> None:
    if args.threads:
        import torch  # here, so that the analysis commands start without loading torch

        torch.set_num_threads(args.threads)


def cmd_prepare_data(args: argparse.Namespace) -> None:
    from sps.tasks.bench import BENCHMARKS, prepare_benchmark
    from sps.tasks.data import prepare_countdown

    cfg = parse_cfg_arg(args.cfg)
    seed = cfg.get("seed", validate({})["seed"])
    if args.bench == "countdown":
        task = cfg.get("task") or validate({})["task"]
        counts = prepare_countdown(section(TaskConfig, task), seed, args.out_dir)
        print(f"wrote {counts} problems to {args.out_dir}")
        return
    if args.bench not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {args.bench!r}; expected countdown or {BENCHMARKS}")
    data = section(DataConfig, cfg.get("data") or validate({})["data"])
    counts = prepare_benchmark(args.bench, data, seed, args.out_dir)
    print(json.dumps(counts, indent=2))
    print(f"wrote {args.out_dir}/train.parquet and test.parquet")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from sps.models.io import pick_device, save_model_atomic
    from sps.tasks.data import countdown_problems, load_problems
    from sps.train.pretrain import pretrain

    cfg = parse_cfg_arg(args.cfg)
    _threads(args)
    problems = countdown_problems(load_problems(args.data))
    model, tokenizer = pretrain(
        problems,
        section(ModelConfig, cfg["model"]),
        section(PretrainConfig, cfg["pretrain"]),
        cfg["seed"],
        pick_device(cfg["device"]),
    )
    save_model_atomic(model, tokenizer, args.out)
    print(f"saved base model to {args.out}")


def cmd_train(args: argparse.Namespace) -> None:
    from sps.io import write_parquet_atomic
    from sps.models.io import load_model, pick_device, save_model_atomic
    from sps.tasks.data import load_problems, row_reward
    from sps.train import distributed
    from sps.train.checkpoint import publish
    from sps.train.fingerprint import bind, run_fingerprint
    from sps.train.tracking import Tracker, tracking_config
    from sps.train.trainer import Trainer

    if args.nproc > 1 and not distributed.under_torchrun():
        # one process per GPU: this same command again under torchrun (the rule stays one line)
        argv = ["train", "--cfg", args.cfg, "--base", args.base, "--data", args.data]
        argv += ["--out-dir", args.out_dir, "--threads", str(args.threads)]
        argv += ["--logging", args.logging] if args.logging else []
        sys.exit(distributed.relaunch(args.nproc, argv))
    cfg = parse_cfg_arg(args.cfg, extra=("schedule", "estimator"))
    if "logging" in cfg:  # tracking stays out of the run's settings (and its fingerprint)
        raise ConfigError("--cfg: the logging section goes to `sps train --logging` instead")
    _threads(args)
    dist = distributed.init_from_env(pick_device(cfg["device"]).type)
    tracking = tracking_config(args.logging)
    schedule = ScheduleConfig(**cfg.get("schedule", {"kind": "none"}))
    baselines = section(BaselineConfig, cfg.get("baselines") or validate({})["baselines"])
    model, tokenizer = load_model(args.base, distributed.local_device(pick_device(cfg["device"])))
    table = render_prompts(load_problems(args.data), tokenizer, cfg)
    rows = list(table.itertuples())
    trainer = Trainer(
        model,
        tokenizer,
        table["prompt"].tolist(),
        row_reward(rows, grading_config(cfg)),
        section(RLConfig, cfg["rl"]),
        section(IRLConfig, cfg["irl"]),
        schedule,
        cfg["seed"],
        estimator=cfg.get("estimator", "grpo"),
        baselines=baselines,
        dist=dist,
    )
    out = Path(args.out_dir)
    if dist.main:  # under torchrun only rank 0 writes
        write_run_info(out, trainer)
        # resume only checkpoints of exactly this run; another run's move aside (fingerprint.py)
        settings = {**cfg, "schedule": vars(schedule), "baselines": vars(baselines)}
        settings["estimator"] = trainer.estimator
        launch = {"device": trainer.device.type, "processes": dist.world, "threads": args.threads}
        parts = run_fingerprint(settings, args.base, args.data, launch)
        stale = [out / "metrics.parquet", out / "final", out / "evals"]
        stale += [out / name for name in ("tb", "mlruns", "wandb", "tracking.json")]  # trackers
        bind(out / "checkpoints", parts, print, outputs=stale)
    dist.barrier()
    # opened after bind, so a stale run's curves went aside with it, not into this run's
    tracker = Tracker(tracking, args.out_dir, params=cfg, enabled=dist.main)
    rl = trainer.rl

    staged = out / "checkpoints" / "evals"

    def snapshot(done: int) -> None:
        # Evaluation snapshots (Pass@k over training) stay beside the checkpoints, which the
        # workflow never deletes, so a resumed or retried run still has the ones it made.
        # export_model: every process under fsdp (it gathers), the model on rank 0 only.
        if done in rl.eval_steps and done < rl.steps:
            model = trainer.export_model()
            if model is not None:
                save_model_atomic(model, tokenizer, staged / f"step{done}")

    def after_step(done: int) -> None:
        tracker.log(trainer.history[-1], sampling_tokens_per_s=trainer.sampling_tokens_per_s)
        snapshot(done)

    with tracker:  # live curves (logging.trackers), closed however training ends
        metrics = trainer.run(after_step=after_step, checkpoint_dir=out / "checkpoints")
    final = trainer.export_model()  # plain, LoRA merged (None on ranks > 0)
    if not dist.main:
        dist.barrier()  # rank 0 writes final/ and the metrics
        distributed.shutdown()
        return
    for done in sorted(k for k in rl.eval_steps if k < rl.steps):
        (out / "evals").mkdir(exist_ok=True)
        publish(staged / f"step{done}", out / "evals" / f"step{done}")  # staged copy stays
    save_model_atomic(final, tokenizer, out / "final")
    write_parquet_atomic(metrics, out / "metrics.parquet")  # last: marks the run complete
    print(f"saved {out / 'final'} and metrics ({len(metrics)} steps)")
    dist.barrier()
    distributed.shutdown()


def write_run_info(out: Path, trainer) -> None:
    """run.json: the run's method and its budget, which the analysis compares across runs."""
    from sps.io import write_text_atomic
    from sps.train.parity import BUDGET_KEYS

    rl = trainer.rl
    info = {
        "estimator": trainer.estimator,
        "schedule": vars(trainer.schedule),
        "seed": trainer.seed,
        "budget": {key: getattr(rl, key) for key in BUDGET_KEYS},
    }
    write_text_atomic(json.dumps(info, indent=2, sort_keys=True), out / "run.json")


def cmd_sample(args: argparse.Namespace) -> None:
    from sps.io import write_parquet_atomic
    from sps.models.io import load_model, load_tokenizer, pick_device
    from sps.rollout import resolve_backend
    from sps.rollout.evaluate import sample_shard
    from sps.seeding import derive_seed
    from sps.tasks.data import load_problems

    cfg = parse_cfg_arg(args.cfg)
    sampling = section(SamplingConfig, cfg["sampling"])
    backend = resolve_backend(sampling.backend)
    if args.gpus > 1 and args.part is None and backend != "vllm":
        return sample_in_parts(args)
    _threads(args)
    problems, seed = load_problems(args.data), cfg["seed"]
    if args.part is not None:  # one GPU's share: every gpus-th problem, its own noise stream
        problems = problems.iloc[args.part :: args.gpus].reset_index(drop=True)
        seed = derive_seed(seed, "part", args.part, args.gpus)
    if backend == "vllm":  # vllm loads the weights itself; several GPUs: tensor parallel
        os.environ["SPS_VLLM_TP"] = str(args.gpus)
        model, tokenizer = args.model, load_tokenizer(args.model)
    else:
        model, tokenizer = load_model(args.model, pick_device(cfg["device"]))
    sampling = replace(sampling, backend=backend)
    problems = render_prompts(problems, tokenizer, cfg)
    table = sample_shard(model, tokenizer, problems, sampling, seed, args.shard)
    write_parquet_atomic(table, args.out)


def cmd_grade(args: argparse.Namespace) -> None:
    """Grades of one sample shard (sps.tasks.grade_samples), in the shard's row order."""
    from sps.io import write_parquet_atomic
    from sps.tasks.grade_samples import grade_shard

    grades = grade_shard(args.samples, args.data, grading_config(parse_cfg_arg(args.cfg)))
    write_parquet_atomic(grades, args.out)


def sample_in_parts(args: argparse.Namespace) -> None:
    """A sampling job given several GPUs: one `sps sample --part i` process per GPU, each on
    every gpus-th problem, then one table (problem order as in the data, then sample index)."""
    import subprocess

    import numpy as np
    import pandas as pd

    from sps.io import write_parquet_atomic

    out = Path(args.out)
    parts = [out.with_name(f"{out.name}.part{i}") for i in range(args.gpus)]
    procs = []
    for i, part in enumerate(parts):
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(i)}
        if "CUDA_VISIBLE_DEVICES" in os.environ:  # the scheduler's GPUs, one per process
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"].split(",")[i]
        cmd = [
            sys.executable,
            "-m",
            "sps.cli",
            "sample",
            "--cfg",
            args.cfg,
            "--model",
            args.model,
            "--data",
            args.data,
            "--shard",
            str(args.shard),
            "--out",
            str(part),
            "--threads",
            str(args.threads),
            "--gpus",
            str(args.gpus),
            "--part",
            str(i),
        ]
        procs.append(subprocess.Popen(cmd, env=env))
    failed = [i for i, proc in enumerate(procs) if proc.wait() != 0]
    if failed:
        raise RuntimeError(f"sampling parts {failed} of {args.out} failed (see the log above)")
    ids = pd.read_parquet(args.data, columns=["id"])["id"]
    table = pd.concat(map(pd.read_parquet, parts), ignore_index=True)
    position = table["problem_id"].map({pid: i for i, pid in enumerate(ids)})
    table = table.iloc[np.lexsort((table["sample_idx"], position))].reset_index(drop=True)
    write_parquet_atomic(table, out)
    for part in parts:
        part.unlink()


def cmd_convert_model(args: argparse.Namespace) -> None:
    from sps.models.convert import convert

    cfg = parse_cfg_arg(args.cfg)
    convert(section(ModelConfig, cfg["model"]), args.out)
    print(f"saved base model ({cfg['model']['source']}: {cfg['model']['path']}) to {args.out}")


def render_prompts(table, tokenizer, cfg: dict):
    """The problem table with each prompt as the model sees it (chat template or plain)."""
    from sps.models.prompts import render

    prompt_format = cfg.get("model", {}).get("prompt_format", "auto")
    messages = table["messages"].tolist() if "messages" in table.columns else None
    return table.assign(prompt=render(tokenizer, table["prompt"].tolist(), prompt_format, messages))


def cmd_show_config(args: argparse.Namespace) -> None:
    from sps.config import load_config

    print(json.dumps(load_config(args.configfile), indent=2))


def build_parser() -> argparse.ArgumentParser:
    from sps.analysis.cli import register as register_analysis

    parser = argparse.ArgumentParser(prog="sps", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cfg_help = "settings as inline JSON, or @file.json / @file.yaml"

    p = sub.add_parser("prepare-data", help="generate or load a benchmark's problem tables")
    p.add_argument("--cfg", required=True, help=cfg_help)
    p.add_argument("--bench", required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("pretrain", help="pretrain the built-in tiny base model")
    p.add_argument("--cfg", required=True, help=cfg_help)
    p.add_argument("--data", required=True, help="sft problems parquet")
    p.add_argument("--out", required=True, help="model directory")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("train", help="train one method (GRPO or SPS) from the base model")
    p.add_argument("--cfg", required=True, help=cfg_help)
    p.add_argument("--base", required=True, help="base model directory")
    p.add_argument("--data", required=True, help="train problems parquet")
    p.add_argument("--out-dir", required=True, help="run directory (final/, metrics.parquet)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--nproc", type=int, default=1, help="> 1: data-parallel processes (torchrun)")
    p.add_argument(
        "--logging",
        default=None,
        help="the logging section (live tracking), inline JSON or @file; not part of the run's "
        'settings. Default {"trackers": ["tensorboard"]}; {"trackers": []} turns it off',
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="sample one shard of the test problems (no grades)")
    p.add_argument("--cfg", required=True, help=cfg_help)
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument("--data", required=True, help="test problems parquet")
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--gpus", type=int, default=1, help="split the shard over this many GPUs")
    p.add_argument("--part", type=int, default=None, help=argparse.SUPPRESS)  # internal
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("grade", help="grade one sample shard (pred, correct, grade per row)")
    p.add_argument("--cfg", required=True, help='{"data": {"grade_timeout": ...}, "task": ...}')
    p.add_argument("--data", required=True, help="test problems parquet")
    p.add_argument("--samples", required=True, help="sample shard parquet")
    p.add_argument("--out", required=True, help="results/grades/{model}/{bench}/shard{i}.parquet")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("convert-model", help="convert a pretrained base model (hf, gguf)")
    p.add_argument("--cfg", required=True, help=cfg_help)
    p.add_argument("--out", required=True, help="model directory")
    p.set_defaults(func=cmd_convert_model)

    p = sub.add_parser("show-config", help="print a config file with defaults filled in")
    p.add_argument("configfile")
    p.set_defaults(func=cmd_show_config)

    register_analysis(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"sps {args.command}: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
