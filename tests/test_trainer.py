"""The trainer on a tiny random model: schedules, and that each update moves what it should."""

import pandas as pd
import pytest
import torch

from sps.algos import group_fkl_loss, sequence_scores
from sps.config import IRLConfig, ModelConfig, RLConfig, ScheduleConfig, section, validate
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.train.schedule import phase_at
from sps.train.trainer import Trainer

PROMPTS = [f"Make {t} from 1 2 3.\n" for t in range(6)]


def reward_even(_: int, text: str) -> float:
    return float(len(text) % 2 == 0)


def make_trainer(schedule: ScheduleConfig | None = None, **rl_overrides) -> Trainer:
    torch.manual_seed(0)
    cfg = validate({})
    tok = char_tokenizer()
    model = tiny_llama(ModelConfig(16, 1, 2, 32, 64), tok)
    rl = section(
        RLConfig,
        {
            **cfg["rl"],
            "steps": 3,
            "prompts_per_step": 3,
            "group_size": 4,
            "max_new_tokens": 8,
            "lr": 1e-2,
            **rl_overrides,
        },
    )
    return Trainer(
        model,
        tok,
        PROMPTS,
        reward_even,
        rl,
        section(IRLConfig, cfg["irl"]),
        schedule or ScheduleConfig(),
        seed=0,
    )


@pytest.mark.parametrize(
    "period,m,expected",
    [
        (1, 1, "rl irl rl irl rl irl"),
        (2, 1, "rl rl irl rl rl irl"),
        (2, 2, "rl rl irl irl rl rl"),
    ],
)
def test_fixed_schedule(period, m, expected):
    sched = ScheduleConfig("fixed", period, m)
    assert " ".join(phase_at(s, sched) for s in range(6)) == expected
    assert all(phase_at(s, ScheduleConfig()) == "rl" for s in range(6))


def _kl_q_p(trainer, batch) -> float:
    with torch.no_grad():
        logp, _, mask = trainer.forward(batch)
        scores = sequence_scores(logp, mask, "mean")
    total, used = 0.0, 0
    for g in batch.groups:
        demo = torch.tensor(g.correct)
        if demo.any() and len(g.first) > 1:
            total += float(
                group_fkl_loss(scores[g.first], demo, torch.tensor(g.counts, dtype=torch.float))[0]
            )
            used += 1
    return total / max(used, 1)


def test_irl_update_moves_p_towards_q():
    trainer = make_trainer()
    batch = trainer.sample(0)
    assert any(any(g.correct) and not all(g.correct) for g in batch.groups)
    before = _kl_q_p(trainer, batch)
    stats = trainer.irl_update(batch)
    assert 0 < stats["undervalued_share"] < 1 and stats["w_abs_mean"] > 0
    assert _kl_q_p(trainer, batch) < before


def test_rl_update_raises_rewarded_completions():
    trainer = make_trainer()
    batch = trainer.sample(0)
    rewarded = [r for g in batch.groups for r, x in zip(g.rows, g.rewards, strict=True) if x > 0]

    def mean_logp():
        with torch.no_grad():
            logp, _, mask = trainer.forward(batch)
            return float(sequence_scores(logp, mask, "sum")[rewarded].mean())

    before = mean_logp()
    stats = trainer.rl_update(batch)
    assert stats["grad_norm"] > 0
    assert mean_logp() > before


def test_kl_reference_only_when_asked():
    assert make_trainer().ref is None
    trainer = make_trainer(kl_coef=0.1, updates_per_batch=2)
    assert trainer.ref is not None
    stats = trainer.rl_update(trainer.sample(0))
    assert stats["kl"] >= 0


def test_runs_are_deterministic_and_log_every_diagnostic():
    sched = ScheduleConfig("fixed", 1, 1)
    a = make_trainer(sched).run(log=lambda _: None)
    b = make_trainer(sched).run(log=lambda _: None)
    pd.testing.assert_frame_equal(
        a.drop(columns=["tokens_per_s", "time_s"]), b.drop(columns=["tokens_per_s", "time_s"])
    )
    assert list(a["phase"]) == ["rl", "irl", "rl"]
    for col in [
        "reward_mean",
        "frac_all_correct",
        "frac_all_wrong",
        "entropy",
        "score_mean",
        "distinct_ratio",
        "distinct_correct_ratio",
        "top1_share",
        "max_p",
        "undervalued_share",
        "w_abs_mean",
        "irl_skipped",
        "kl",
        "grad_norm",
        "loss",
        "lr",
        "tokens_per_s",
    ]:
        assert col in a.columns, col
    assert a.loc[1, "undervalued_share"] == a.loc[1, "undervalued_share"]  # not NaN in IRL
