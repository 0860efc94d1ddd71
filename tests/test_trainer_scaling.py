"""Training at scale changes memory, not results: micro-batches with gradient accumulation and
gradient checkpointing give the whole batch's gradients; LoRA trains only adapters and exports a
plain merged model; the memory benchmark runs on a tiny shape."""

import copy
import dataclasses

import pandas as pd
import pytest
import torch
from test_trainer import make_trainer as make_base_trainer  # tests/ is on sys.path

from sps.config import ModelConfig, ScheduleConfig
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.train.microbatch import group_parts, row_parts
from sps.train.trainer import Trainer


def make_trainer(model=None, schedule=None, irl=None, **rl_overrides) -> Trainer:
    """test_trainer's trainer on a two-layer float64 model, so equalities can be tight."""
    if model is None:
        torch.manual_seed(0)
        model = tiny_llama(ModelConfig(16, 2, 2, 32, 64), char_tokenizer()).double()
    return make_base_trainer(schedule, model=model, irl=irl, **rl_overrides)


def grads_and_weights(trainer: Trainer) -> list[torch.Tensor]:
    out = []
    for p in trainer.params:
        out += [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)]
        out += [p.detach().clone()]
    return out


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)


def update_pair(update: str, small: dict, **common) -> tuple[list, list, dict, dict]:
    """The same batch updated by a whole-batch trainer and one with `small` overrides."""
    whole = make_trainer(**common)
    other = make_trainer(**{**common, **small})
    batch = whole.sample(0)
    if whole.buffer is not None:
        whole.remember(whole.sample(1))
        other.buffer = copy.deepcopy(whole.buffer)
    s1 = getattr(whole, update)(batch)
    s2 = getattr(other, update)(batch)
    return grads_and_weights(whole), grads_and_weights(other), s1, s2


def test_parts_cover_rows_and_keep_groups_whole():
    assert row_parts(10, 0) == [slice(0, 10)]
    assert row_parts(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    groups = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert group_parts(groups, 7) == [(slice(0, 6), [0, 1]), (slice(6, 12), [2, 3])]
    assert group_parts(groups, 2) == [(slice(3 * i, 3 * i + 3), [i]) for i in range(4)]


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
@pytest.mark.parametrize("size", [1, 5])
def test_rl_micro_batches_give_the_whole_batch_gradient(agg, size):
    a, b, s1, s2 = update_pair("rl_update", {"micro_batch_size": size}, loss_agg=agg)
    assert_same(a, b)
    for key in ["loss", "grad_norm", "entropy", "score_mean", "max_p"]:
        assert s1[key] == pytest.approx(s2[key], rel=1e-9, abs=1e-7), key


def test_rl_micro_batches_with_kl_two_updates_and_entropy_bonus():
    common = {"kl_coef": 0.1, "updates_per_batch": 2}
    a, b, s1, s2 = update_pair("rl_update", {"micro_batch_size": 5}, **common)
    assert_same(a, b)
    assert s1["kl"] > 0 and s1["kl"] == pytest.approx(s2["kl"], rel=1e-9)

    whole, small = make_trainer(), make_trainer(micro_batch_size=3)
    for t in (whole, small):
        t.estimator = "entropy-bonus"
        t.baselines = dataclasses.replace(t.baselines, entropy_coef=0.5)
    batch = whole.sample(0)
    whole.rl_update(batch), small.rl_update(batch)
    assert_same(grads_and_weights(whole), grads_and_weights(small))


@pytest.mark.parametrize("size", [1, 6])
def test_irl_micro_batches_of_whole_groups_give_the_whole_batch_gradient(size):
    buffered = {"demos": "buffer", "buffer_size": 3}
    a, b, s1, s2 = update_pair("irl_update", {"micro_batch_size": size}, irl=buffered)
    assert s1["irl_skipped"] < 3, "no group gave an IRL signal"
    assert_same(a, b)
    for key in ["loss", "grad_norm", "undervalued_share", "w_abs_mean", "irl_skipped"]:
        assert s1[key] == pytest.approx(s2[key], rel=1e-9, abs=1e-7), key


@pytest.mark.parametrize("update", ["rl_update", "irl_update"])
def test_gradient_checkpointing_gives_the_same_gradient(update):
    a, b, _, _ = update_pair(update, {"gradient_checkpointing": True, "micro_batch_size": 4})
    assert_same(a, b)


def test_micro_batched_runs_log_the_same_rows():
    sched = ScheduleConfig("fixed", 1, 1)
    whole = make_trainer(schedule=sched).run(log=lambda _: None)
    small = make_trainer(schedule=sched, micro_batch_size=3).run(log=lambda _: None)
    drop = ["tokens_per_s", "time_s"]
    pd.testing.assert_frame_equal(whole.drop(columns=drop), small.drop(columns=drop), rtol=1e-8)


LORA = {"lora_rank": 4, "lora_alpha": 8, "lora_target_modules": ["q_proj", "v_proj"]}


def test_lora_trains_only_adapters_and_exports_the_merged_model():
    pytest.importorskip("peft")
    trainer = make_trainer(**LORA, kl_coef=0.1, updates_per_batch=2)
    assert trainer.ref is None  # the base with adapters off is the reference: no copy
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert {id(p) for g in trainer.opts["rl"].param_groups for p in g["params"]} == {
        id(p) for p in trainer.params
    }
    frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    batch = trainer.sample(0)
    stats = trainer.rl_update(batch)
    assert stats["kl"] > 0  # the second update moved away from the reference
    for n, p in trainer.model.named_parameters():
        assert torch.equal(p, frozen[n]) != ("lora_" in n), n

    plain = trainer.export_model()
    assert not any("lora" in n for n, _ in plain.named_parameters())
    trainer.model.eval()
    with torch.no_grad():
        want = trainer.model(input_ids=batch.ids, attention_mask=batch.attn).logits
        got = plain(input_ids=batch.ids, attention_mask=batch.attn).logits
    torch.testing.assert_close(got, want)
    # sampling merges the adapters in and restores the base weights exactly afterwards
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.sample(1)
    for n, p in trainer.model.named_parameters():
        assert torch.equal(p, before[n]), n


def test_lora_run_resumes_from_its_adapter_checkpoint(tmp_path):
    pytest.importorskip("peft")
    sched = ScheduleConfig("fixed", 1, 1)
    quiet = {"log": lambda _: None}
    whole = make_trainer(schedule=sched, **LORA, steps=4).run(**quiet)
    first = make_trainer(schedule=sched, **LORA, steps=4, checkpoint_every=2)
    real = first.step
    first.step = lambda s: real(s) if s < 2 else (_ for _ in ()).throw(KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        first.run(checkpoint_dir=tmp_path, **quiet)
    saved = torch.load(tmp_path / "step2" / "optim.pt", weights_only=True)
    assert saved["rl"]["state"]  # optimizer state of the adapters only
    resumed = make_trainer(schedule=sched, **LORA, steps=4, checkpoint_every=2)
    rows = resumed.run(checkpoint_dir=tmp_path, **quiet)
    drop = ["tokens_per_s", "time_s"]
    pd.testing.assert_frame_equal(whole.drop(columns=drop), rows.drop(columns=drop))


def test_train_memory_benchmark_runs_on_a_tiny_shape(capsys):
    from sps.benchmarks import train_memory

    train_memory.main(["--shape", "tiny", "--batch", "4", "--length", "24", "--micro", "2"])
    out = capsys.readouterr().out
    assert "naive" in out and "lean" in out and "tokens/s" in out
