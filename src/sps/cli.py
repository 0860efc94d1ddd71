"""The `sps` command: every workflow rule is one of these subcommands, runnable by hand."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from sps.config import (
    BaselineConfig,
    ConfigError,
    IRLConfig,
    ModelConfig,
    PretrainConfig,
    RLConfig,
    SamplingConfig,
    ScheduleConfig,
    TaskConfig,
    parse_cfg_arg,
    section,
    validate,
)


def _threads(args: argparse.Namespace) -> None:
    if args.threads:
        import torch  # here, so that the analysis commands start without loading torch

        torch.set_num_threads(args.threads)


def cmd_prepare_data(args: argparse.Namespace) -> None:
    from sps.tasks.data import prepare_countdown

    cfg = parse_cfg_arg(args.cfg)
    if args.bench != "countdown":
        raise ConfigError(f"benchmark {args.bench!r} has no data preparation yet")
    counts = prepare_countdown(section(TaskConfig, cfg["task"]), cfg["seed"], args.out_dir)
    print(f"wrote {counts} problems to {args.out_dir}")


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
    from sps.tasks.data import grade_row, load_problems
    from sps.train.trainer import Trainer

    cfg = parse_cfg_arg(args.cfg, extra=("schedule", "estimator"))
    _threads(args)
    schedule = ScheduleConfig(**cfg.get("schedule", {"kind": "none"}))
    baselines = section(BaselineConfig, cfg.get("baselines") or validate({})["baselines"])
    model, tokenizer = load_model(args.base, pick_device(cfg["device"]))
    table = load_problems(args.data)
    rows = list(table.itertuples())
    trainer = Trainer(
        model,
        tokenizer,
        table["prompt"].tolist(),
        lambda i, text: float(grade_row(rows[i], text)[1]),
        section(RLConfig, cfg["rl"]),
        section(IRLConfig, cfg["irl"]),
        schedule,
        cfg["seed"],
        estimator=cfg.get("estimator", "grpo"),
        baselines=baselines,
    )
    out = Path(args.out_dir)
    write_run_info(out, trainer)
    rl = trainer.rl

    staged = out / "checkpoints" / "evals"

    def snapshot(done: int) -> None:
        # Evaluation snapshots (Pass@k over training) wait beside the checkpoints, which the
        # workflow never deletes, so a resumed run still has the ones it made before the kill.
        if done in rl.eval_steps and done < rl.steps:
            save_model_atomic(model, tokenizer, staged / f"step{done}")

    metrics = trainer.run(after_step=snapshot, checkpoint_dir=out / "checkpoints")
    for done in sorted(k for k in rl.eval_steps if k < rl.steps):
        (out / "evals").mkdir(exist_ok=True)
        shutil.rmtree(out / "evals" / f"step{done}", ignore_errors=True)
        os.replace(staged / f"step{done}", out / "evals" / f"step{done}")
    save_model_atomic(model, tokenizer, out / "final")
    write_parquet_atomic(metrics, out / "metrics.parquet")  # last: marks the run complete
    print(f"saved {out / 'final'} and metrics ({len(metrics)} steps)")


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
    from sps.models.io import load_model, pick_device
    from sps.rollout.evaluate import sample_shard
    from sps.tasks.data import load_problems

    cfg = parse_cfg_arg(args.cfg)
    _threads(args)
    model, tokenizer = load_model(args.model, pick_device(cfg["device"]))
    table = sample_shard(
        model,
        tokenizer,
        load_problems(args.data),
        section(SamplingConfig, cfg["sampling"]),
        cfg["seed"],
        args.shard,
    )
    write_parquet_atomic(table, args.out)


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
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="sample and grade one shard of the test problems")
    p.add_argument("--cfg", required=True, help=cfg_help)
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument("--data", required=True, help="test problems parquet")
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(func=cmd_sample)

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
