"""vLLM rollouts inside training (rl.backend vllm, rollout/colocate.py), against a stand-in
engine: vllm cannot be installed here. The stand-in has the methods the trainer uses (LLM(...),
generate, sleep, wake_up, reset_prefix_cache and the model's load_weights on the in-process
path) and samples with our own sampler from the weights it holds, so its rollouts are real
and follow whatever weights were pushed into it."""

import sys
import types

import pytest
import torch

from sps.config import IRLConfig, ModelConfig, RLConfig, ScheduleConfig, section, validate
from sps.models.io import load_model, save_model_atomic
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.rollout.base import SampleParams, encode_prompts
from sps.rollout.colocate import engine_weights
from sps.rollout.fast import sample
from sps.seeding import derive_seed
from sps.train.trainer import Trainer

PROMPTS = [f"Make {t} from 1 2 3.\n" for t in range(6)]
TAGS = {"weights", "kv_cache"}
DIST_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def reward_even(_: int, text: str) -> float:
    return float(len(text) % 2 == 0)


class StandInModel:
    """The engine's torch module as weight sync sees it: load_weights((name, tensor), ...)
    copies in place and fails on a name the model lacks, as vLLM's does."""

    def __init__(self, llm: "StandInLLM"):
        self.llm, self.loads = llm, []

    def load_weights(self, weights) -> set[str]:
        assert "weights" in self.llm.awake, "weights loaded into a sleeping engine"
        params = dict(self.llm.hf.named_parameters())
        names = []
        with torch.no_grad():
            for name, tensor in weights:
                params[name].copy_(tensor)
                names.append(name)
        self.loads.append(names)
        return set(names)


class StandInLLM:
    """vllm.LLM as rollout/colocate.py uses it; every instance is kept in `made`."""

    made: list["StandInLLM"] = []

    def __init__(self, model: str, **options):
        self.model_dir, self.options = model, options
        self.hf, self.tok = load_model(model, torch.device("cpu"))
        self.hf.eval()
        runner = types.SimpleNamespace(model=StandInModel(self))
        worker = types.SimpleNamespace(model_runner=runner)
        self.llm_engine = types.SimpleNamespace(
            model_executor=types.SimpleNamespace(driver_worker=worker)
        )
        self.awake, self.events, self.requests = set(TAGS), [], []
        StandInLLM.made.append(self)

    @property
    def loader(self) -> StandInModel:
        return self.llm_engine.model_executor.driver_worker.model_runner.model

    def sleep(self, level: int = 1) -> None:
        assert level == 1 and self.options["enable_sleep_mode"]
        self.awake.clear()
        self.events.append("sleep")

    def wake_up(self, tags=None) -> None:
        self.awake.update(tags or TAGS)
        self.events.append(f"wake {','.join(tags or TAGS)}")

    def reset_prefix_cache(self) -> None:
        self.events.append("reset")

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        assert self.awake == TAGS, "generate on a sleeping engine"
        assert isinstance(sampling_params, list) and len(sampling_params) == len(prompts)
        self.requests.append(
            [(p["prompt_token_ids"], sp) for p, sp in zip(prompts, sampling_params, strict=True)]
        )
        return [
            self._request(p["prompt_token_ids"], sp)
            for p, sp in zip(prompts, sampling_params, strict=True)
        ]

    def _request(self, ids: list[int], sp):
        params = SampleParams(
            sp.n, sp.max_tokens, sp.temperature, sp.top_p, max(sp.top_k, 0), batch_size=sp.n
        )
        tok = self.tok
        s = sample(self.hf, [ids], params, sp.seed, tok.eos_token_id, tok.pad_token_id)
        outs = []
        for row, length, stop, lp in zip(
            s.tokens.tolist(), s.lengths, s.stopped, s.token_logprobs.sum(1).tolist(), strict=True
        ):
            outs.append(
                types.SimpleNamespace(
                    token_ids=row[:length],
                    text=tok.decode(row[:length], skip_special_tokens=True),
                    cumulative_logprob=lp,
                    finish_reason="stop" if stop else "length",
                )
            )
        return types.SimpleNamespace(outputs=outs)


@pytest.fixture
def vllm_stand_in(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM = StandInLLM
    vllm.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    for key in DIST_ENV:  # the engine sets them when absent; undone after the test
        monkeypatch.delenv(key, raising=False)
    StandInLLM.made.clear()
    yield StandInLLM.made
    StandInLLM.made.clear()


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm_train") / "base"
    torch.manual_seed(0)
    tok = char_tokenizer()
    save_model_atomic(tiny_llama(ModelConfig(16, 1, 2, 32, 64), tok), tok, root)
    return root


def make_trainer(base_dir, schedule=None, irl=None, **rl_overrides) -> Trainer:
    """A trainer on the tiny model loaded from `base_dir` (vLLM starts from a directory)."""
    torch.manual_seed(0)
    cfg = validate({})
    model, tok = load_model(base_dir, torch.device("cpu"))
    rl = {
        **cfg["rl"],
        "steps": 4,
        "prompts_per_step": 3,
        "group_size": 4,
        "max_new_tokens": 8,
        "lr": 1e-2,
        "backend": "vllm",
        "vllm_gpu_memory_utilization": 0.25,
        **rl_overrides,
    }
    irl = section(IRLConfig, {**cfg["irl"], "support": "all", **(irl or {})})
    return Trainer(
        model,
        tok,
        PROMPTS,
        reward_even,
        section(RLConfig, rl),
        irl,
        schedule or ScheduleConfig(),
        0,
    )


def _policy_weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The trainer's policy as a plain model's weights (LoRA merged into a copy)."""
    return {name: p.detach() for name, p in trainer.export_model().named_parameters()}


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_engine_holds_the_trainers_weights_after_every_optimizer_step(
    vllm_stand_in, base_dir, lora_rank
):
    trainer = make_trainer(
        base_dir, ScheduleConfig("fixed", 1, 1), updates_per_batch=2, lora_rank=lora_rank
    )
    base = {n: p.detach().clone() for n, p in trainer.export_model().named_parameters()}
    optimize, checked = trainer.optimize, []

    def optimize_and_check(loss, phase):
        [engine] = vllm_stand_in
        assert "kv_cache" not in engine.awake  # asleep during the update
        norm = optimize(loss, phase)
        held = dict(engine.hf.named_parameters())
        wanted = _policy_weights(trainer)
        assert set(held) == set(wanted)
        for name, tensor in wanted.items():
            torch.testing.assert_close(held[name], tensor, rtol=0, atol=1e-7, msg=name)
        checked.append(phase)
        return norm

    trainer.optimize = optimize_and_check
    metrics = trainer.run(log=lambda _: None)

    # RL steps have two optimizer steps (updates_per_batch), IRL steps one
    assert checked == ["rl", "rl", "irl", "rl", "rl", "irl"]
    assert len(metrics) == 4 and metrics["reward_mean"].notna().all()
    [engine] = vllm_stand_in
    assert len(engine.loader.loads) == 1 + len(checked)  # at start, then after every step
    assert all(set(names) == set(base) for names in engine.loader.loads)  # every weight
    moved = [n for n, p in engine.hf.named_parameters() if not torch.equal(p.detach(), base[n])]
    assert moved  # the weights did change, so the checks above compared something
    assert engine.events.count("sleep") == 4  # once after each step's rollouts


def test_requests_are_keyed_by_seed_step_and_prompt(vllm_stand_in, base_dir):
    trainer = make_trainer(base_dir)
    drawn = []
    rollouts = trainer.rollouts

    def spy(step, chosen):
        drawn.append((step, list(chosen)))
        return rollouts(step, chosen)

    trainer.rollouts = spy
    trainer.run(log=lambda _: None)
    [engine] = vllm_stand_in
    assert len(engine.requests) == len(drawn) == trainer.rl.steps
    for (step, chosen), requests in zip(drawn, engine.requests, strict=True):
        prompts = encode_prompts(trainer.tok, [PROMPTS[i] for i in chosen])
        seed = derive_seed(0, "rollout", step)
        assert [ids for ids, _ in requests] == prompts
        assert [sp.seed for _, sp in requests] == [derive_seed(seed, i) for i in chosen]
        assert all(sp.n == 4 and sp.max_tokens == 8 and sp.temperature == 1.0 for _, sp in requests)
    # a prompt's rollouts do not depend on the other prompts of the call
    both = rollouts(7, [4, 1])
    alone = rollouts(7, [1])
    assert alone.token_ids == [
        t for p, t in zip(both.prompt_idx, both.token_ids, strict=True) if p == 1
    ]
    assert alone.token_ids != [
        t for p, t in zip(both.prompt_idx, both.token_ids, strict=True) if p == 0
    ]


def test_engine_options_and_no_sleep(vllm_stand_in, base_dir):
    trainer = make_trainer(base_dir, steps=2, vllm_sleep=False)
    trainer.run(log=lambda _: None)
    [engine] = vllm_stand_in
    assert engine.model_dir == trainer.model.name_or_path == str(base_dir)
    assert engine.options["gpu_memory_utilization"] == 0.25
    assert engine.options["distributed_executor_backend"] == "external_launcher"
    assert engine.options["enable_sleep_mode"] is False
    assert "sleep" not in engine.events and engine.events.count("reset") == 3


def test_lora_weights_reach_the_engine_under_the_base_names(base_dir):
    from sps.models import lora

    model, _ = load_model(base_dir, torch.device("cpu"))
    plain = {n: p.detach().clone() for n, p in model.named_parameters()}
    wrapped = lora.wrap(model, 4, 16, 0.0, ["q_proj", "v_proj"])
    with torch.no_grad():  # adapters that change the weights once merged
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.fill_(0.5)
    with lora.merged(wrapped) as merged:
        pushed = {n: t.clone() for n, t in engine_weights(merged)}
    assert set(pushed) == set(plain)
    wanted = dict(lora.merged_copy(wrapped).named_parameters())
    changed = [n for n in plain if not torch.equal(pushed[n], plain[n])]
    assert changed and all("q_proj" in n or "v_proj" in n for n in changed)
    for name, tensor in pushed.items():
        torch.testing.assert_close(tensor, wanted[name].detach(), rtol=0, atol=1e-6)


def test_missing_vllm_is_named(monkeypatch, base_dir):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    trainer = make_trainer(base_dir, steps=1)
    with pytest.raises(ImportError, match=r"rl\.backend vllm.*sps\[vllm\]"):
        trainer.run(log=lambda _: None)
