"""Sharded training (rl.parallel fsdp: FSDP2 over gloo, two CPU processes) gives the single
process's metrics and weights, with micro-batches, gradient checkpointing, the chunked head,
the KL reference, LoRA and the IRL buffer; its sharded checkpoints resume exactly, and a
damaged or torn one falls back to the older one; with vLLM rollouts (test_vllm_training's
stand-in engine, one per process) every engine holds the gathered weights after every step."""

import importlib.util
import shutil
import socket
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_trainer import PROMPTS  # tests/ is on sys.path (also in the workers)
from test_vllm_training import StandInLLM

from sps.config import IRLConfig, ModelConfig, RLConfig, ScheduleConfig, section, validate
from sps.models.io import load_model, save_model_atomic
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.train import fsdp
from sps.train.distributed import Dist
from sps.train.trainer import Trainer

RL = {"steps": 6, "prompts_per_step": 4, "group_size": 4, "max_new_tokens": 8, "lr": 1e-2}
# what the sharded runs add; the single-process reference takes the whole batch at once
LEAN = {"micro_batch_size": 3, "gradient_checkpointing": True, "logprob_chunk": 5}
DROP = ["tokens_per_s", "time_s"]


def reward(index: int, text: str) -> float:
    """Prompts 0 and 3 are never right: their IRL groups are skipped and they never enter the
    buffer, so the two processes' IRL micro-batches differ in what they hold."""
    return float(index % 3 != 0 and len(text) % 2 == 0)


def make(dist_: Dist | None = None, period: int = 1, **rl) -> Trainer:
    torch.set_num_threads(1)  # a tiny model: more threads only wait on each other
    torch.manual_seed(0)
    cfg, tok = validate({}), char_tokenizer()
    model = tiny_llama(ModelConfig(16, 2, 2, 32, 64), tok).double()
    return Trainer(
        model,
        tok,
        PROMPTS,
        reward,
        section(RLConfig, {**cfg["rl"], **RL, **rl}),
        section(IRLConfig, {**cfg["irl"], "demos": "buffer", "buffer_size": 2}),
        ScheduleConfig("fixed", period, 1),
        seed=0,
        dist=dist_,
    )


def exported(trainer: Trainer) -> dict | None:
    model = trainer.export_model()  # every process takes part; rank 0 gets the model
    return None if model is None else {k: v.clone() for k, v in model.state_dict().items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, job, out: str, kwargs: dict) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        torch.save(job(Dist(rank, world), Path(out), **kwargs), Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def spawn(job, tmp: Path, world: int = 2, **kwargs) -> list:
    """job(Dist, tmp, **kwargs) in `world` gloo processes; their results in rank order."""
    mp.spawn(_worker, args=(world, _free_port(), job, str(tmp), kwargs), nprocs=world)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(world)]


def assert_same_run(got: dict, want: pd.DataFrame, want_weights: dict) -> None:
    pd.testing.assert_frame_equal(
        got["rows"].drop(columns=DROP), want.drop(columns=DROP), rtol=1e-5
    )
    if got["weights"] is not None:
        assert got["weights"].keys() == want_weights.keys()
        for key, value in want_weights.items():
            torch.testing.assert_close(got["weights"][key], value, rtol=1e-5, atol=1e-8)


def _train(d: Dist, _out: Path, **rl) -> dict:
    trainer = make(d, **rl)
    passes = []  # per IRL micro-batch: (buffered completions here, a loss here)
    lockstep = trainer._lockstep

    def spy(batch, scores, s_extra, part):
        passes.append((bool(s_extra), part is not None))
        return lockstep(batch, scores, s_extra, part)

    trainer._lockstep = spy
    rows = trainer.run(log=lambda _: None)
    return {"rows": rows, "weights": exported(trainer), "passes": passes}


def single(**rl) -> tuple[pd.DataFrame, dict]:
    trainer = make(**rl)
    return trainer.run(log=lambda _: None), exported(trainer)


SHARDED = {"parallel": "fsdp", "kl_coef": 0.05, **LEAN}
LORA = {"lora_rank": 4, "kl_coef": 0.05, "steps": 4}  # KL: the adapters switched off


def _checkpoints(d: Dist, out: Path) -> dict:
    """A run with checkpoints after steps 2 and 4 (the IRL optimizer has state only in the
    second), then the same run resumed from copies: intact, with a truncated shard in step4,
    and with step4 torn (no state.json: killed before the save ended)."""
    fsdp = {"parallel": "fsdp", "checkpoint_every": 2, "keep_checkpoints": 2, **LEAN}
    logs: dict[str, list[str]] = {}
    whole = make(d, period=2, **fsdp).run(log=lambda _: None, checkpoint_dir=out / "whole")
    if d.main:
        for name in ("intact", "truncated", "torn"):
            shutil.copytree(out / "whole", out / name)
        shard = out / "truncated/step4/__1_0.distcp"
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
        (out / "torn/step4/state.json").unlink()
    d.barrier()
    resumed = {}
    for name in ("intact", "truncated", "torn"):
        log = logs.setdefault(name, [])
        trainer = make(d, period=2, **fsdp)
        resumed[name] = trainer.run(log=log.append, checkpoint_dir=out / name)
    return {"whole": whole, "resumed": resumed, "logs": logs}


def install_stand_in() -> None:
    """test_vllm_training's stand-in engine as `vllm`, in this (worker) process."""
    vllm = types.ModuleType("vllm")
    vllm.LLM = StandInLLM
    vllm.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    sys.modules["vllm"], sys.modules["vllm.inputs"] = vllm, inputs


def _whole_policy(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The policy's weights gathered from the shards (every process), LoRA merged."""
    model = fsdp.materialise(trainer._frame, "cpu")
    fsdp.gather(trainer.model, model)
    model = model.merge_and_unload() if trainer.lora else model
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _engines(d: Dist, out: Path, lora_rank: int) -> dict:
    """A sharded run with vLLM rollouts (the engine starts from a model directory): after
    each optimizer step, the largest gap between an engine's weights and the policy's."""
    StandInLLM.made.clear()
    model, tok = load_model(out / "base", torch.device("cpu"))
    cfg = validate({})
    rl = {**cfg["rl"], **RL, "steps": 4, "backend": "vllm", "parallel": "fsdp"}
    irl = section(IRLConfig, {**cfg["irl"], "support": "all"})
    rl = section(RLConfig, {**rl, "lora_rank": lora_rank})
    schedule = ScheduleConfig("fixed", 1, 1)
    trainer = Trainer(model, tok, PROMPTS, reward, rl, irl, schedule, 0, dist=d)
    optimize, gaps, start = trainer.optimize, [], _whole_policy(trainer)

    def checked(loss, phase):
        norm = optimize(loss, phase)
        [engine] = StandInLLM.made
        held, wanted = dict(engine.hf.named_parameters()), _whole_policy(trainer)
        assert set(held) == set(wanted)
        gaps.append(max(float((held[n] - t).abs().max()) for n, t in wanted.items()))
        return norm

    trainer.optimize = checked
    trainer.run(log=lambda _: None)
    [engine] = StandInLLM.made
    end = _whole_policy(trainer)
    moved = max(float((end[n] - t).abs().max()) for n, t in start.items())
    return {"gaps": gaps, "loads": len(engine.loader.loads), "moved": moved}


def _jobs(d: Dist, out: Path) -> dict:
    # one pair of processes for every test here: starting them is most of the time
    lora = importlib.util.find_spec("peft") is not None
    results = {"train": _train(d, out, **SHARDED), "checkpoints": _checkpoints(d, out)}
    if lora:
        results["lora"] = _train(d, out, parallel="fsdp", micro_batch_size=3, **LORA)
    install_stand_in()
    results["vllm"] = {rank: _engines(d, out, rank) for rank in ([0, 4] if lora else [0])}
    return results


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The jobs' folder and their results, one dict per process (two processes)."""
    root = tmp_path_factory.mktemp("fsdp")
    torch.manual_seed(0)
    tok = char_tokenizer()  # a model directory for the vLLM stand-in to start from
    save_model_atomic(tiny_llama(ModelConfig(16, 1, 2, 32, 64), tok), tok, root / "base")
    return root, spawn(_jobs, root)


def test_two_sharded_processes_equal_one_process(sharded):
    _, ranks = sharded
    rows, weights = single(kl_coef=0.05)
    assert ranks[1]["train"]["weights"] is None  # the model is gathered on rank 0 only
    for got in ranks:
        assert_same_run(got["train"], rows, weights)
    assert (rows["kl"].dropna() > 0).any() and (rows["phase"] == "irl").sum() == 3
    # the case lockstep is for: one process with buffered completions or a loss where the
    # other has none, in the same micro-batch
    passes = [got["train"]["passes"] for got in ranks]
    assert passes[0] != passes[1] and len(passes[0]) == len(passes[1]) == 6


def test_lora_under_fsdp_equals_lora(sharded):
    pytest.importorskip("peft")
    _, ranks = sharded
    rows, weights = single(**LORA)
    for got in ranks:
        assert_same_run(got["lora"], rows, weights)
    assert not any("lora" in key for key in weights)  # merged, a plain model


def test_sharded_checkpoints_resume_exactly_and_fall_back(sharded):
    root, ranks = sharded
    kept = sorted(p.name for p in (root / "whole").glob("step*"))
    assert kept == ["step2", "step4"]
    files = {p.name for p in (root / "whole/step4").iterdir()}
    assert {".metadata", "__0_0.distcp", "__1_0.distcp", "state.json"} <= files
    for got in ranks:
        ckpt = got["checkpoints"]
        for rows in ckpt["resumed"].values():
            pd.testing.assert_frame_equal(rows.drop(columns=DROP), ckpt["whole"].drop(columns=DROP))
    logs = {name: "\n".join(lines) for name, lines in ranks[0]["checkpoints"]["logs"].items()}
    assert "resumed from" in logs["intact"] and "step4 after 4 steps" in logs["intact"]
    assert "__1_0.distcp" in logs["truncated"] and "step2 after 2 steps" in logs["truncated"]
    assert "state.json" in logs["torn"] and "step2 after 2 steps" in logs["torn"]
    assert ranks[1]["checkpoints"]["logs"] == {name: [] for name in logs}  # rank 0 logs


def test_every_vllm_engine_holds_the_gathered_weights_after_every_step(sharded):
    _, ranks = sharded
    for got in ranks:
        for lora_rank, result in got["vllm"].items():
            assert len(result["gaps"]) == 4, lora_rank  # an optimizer step per training step
            assert result["loads"] == 1 + 4  # at the start, then after every step
            assert max(result["gaps"]) <= 1e-7, lora_rank
            assert result["moved"] > 1e-4  # the weights changed: the checks compared something
    if 4 not in ranks[0]["vllm"]:
        pytest.skip("peft is not installed: LoRA with vLLM under fsdp not checked")


def test_frame_costs_no_parameter_memory_and_keeps_ties():
    tok = char_tokenizer()
    model = tiny_llama(ModelConfig(16, 2, 2, 32, 64), tok)
    frame = fsdp.frame(model)
    assert all(p.is_meta for p in frame.parameters())
    assert fsdp.decoder_layers(model) == list(model.model.layers)
    whole = fsdp.materialise(frame, "cpu", torch.float64)
    assert whole.lm_head.weight is whole.model.embed_tokens.weight  # tied, as in the model
    fsdp.gather(model, whole)  # plain tensors: a copy, no process group needed
    pairs = zip(model.named_parameters(), whole.named_parameters(), strict=True)
    for (name, a), (other, b) in pairs:
        assert name == other and b.dtype == torch.float64 and torch.equal(a.double(), b)
