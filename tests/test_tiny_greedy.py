"""Greedy generation on tiny random GGUF models (tests/support/tiny_models.py) equals, token for
token, the argmax of the independent NumPy forward pass (tests/support/numpy_forward.py).

* llama and qwen3 (and gemma3): F32 KV cache, flash attention off, one thread - the
  graph then computes in float32 throughout and its logits agree with NumPy's float64
  to ~1e-5, far below the smallest top-2 logit gap of these runs (asserted, so that an
  equality here is not luck).  gemma3's GELU runs through ggml-cpu's F16 lookup table;
  its NumPy reference uses ``gelu_f16=True`` (the emulation of that table).
* llama.cpp's defaults (F16 KV cache, flash attention auto): the continuation is checked
  with ``numpy_forward.greedy_mismatches`` (teacher forcing, logit tolerance 0.05), since
  F16 rounding may legitimately break a near-tie the other way.
* LED with k = 1 is greedy (spec: "with k = 1 it is greedy").
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

pytest.importorskip("gguf")
import led_cpp  # noqa: E402
from led_cpp import LEDConfig, SamplingConfig  # noqa: E402
from tests.support import numpy_forward as NF  # noqa: E402
from tests.support.tiny_models import ARCHS, write_tiny_model  # noqa: E402

N_NEW = 32
FORWARD_KW = {"llama": {}, "qwen3": {}, "gemma3": {"gelu_f16": True}}
# largest |logit| difference expected between the F32 graph and NumPy (measured ~1e-5 for
# llama/qwen3, <~3e-3 for gemma3 with the F16 GELU emulation): a greedy step whose NumPy
# top-2 gap is below it could flip, so the prompts are chosen to avoid that and it is checked
PRECISION = {"llama": 1e-3, "qwen3": 1e-3, "gemma3": 5e-3}
PROMPTS = {
    "llama": "The quick brown fox jumps over the lazy dog. Once upon a time",
    "qwen3": "The quick brown fox jumps over the lazy dog. Once upon a time",
    "gemma3": "The quick brown fox jumps over the lazy dog. Once upon a time",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("greedy")
    return {arch: write_tiny_model(root / f"{arch}.gguf", arch) for arch in ARCHS}


@pytest.fixture(scope="module")
def reference(tiny):
    """arch -> (prompt tokens, NumPy greedy tokens, top-2 margins)."""
    out = {}
    for arch, tm in tiny.items():
        prompt = tm.encode(PROMPTS[arch])
        tokens, margins = NF.greedy_with_margins(tm, prompt, N_NEW, stop_tokens=sorted(tm.eog_ids), **FORWARD_KW[arch])
        out[arch] = (prompt, tokens, margins)
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_equals_numpy_argmax(tiny, reference, arch):
    tm = tiny[arch]
    prompt, want, margins = reference[arch]
    # the reference itself: 32 tokens, no end-of-generation, no near-tie
    assert len(want) == N_NEW and not set(want) & tm.eog_ids
    assert min(margins) > PRECISION[arch], f"near-tie in the NumPy reference: margins {margins}"
    assert len(set(want)) > 4  # not a degenerate repetition

    m = led_cpp.Model(tm.path, n_ctx=256, n_threads=1, kv_type="f32", flash_attention=False)
    assert m.architecture == arch and m.n_layer == tm.n_layer and m.n_vocab == tm.n_vocab
    assert m.tokenize(PROMPTS[arch]) == prompt  # llama.cpp's tokenizer agrees with the helper's
    res = m.generate(prompt, config=SamplingConfig(temperature=0), max_tokens=N_NEW, seed=1).result
    assert res.finish_reason == "length"
    assert res.tokens == want, next(
        f"first difference at step {i}: led_cpp {a}, numpy {b} (numpy top-2 margin {margins[i]:.4f})"
        for i, (a, b) in enumerate(zip(res.tokens + [None] * N_NEW, want))
        if a != b
    )
    # the same from the text prompt (BOS added by the tokenizer) and with another seed
    again = m.generate(PROMPTS[arch], config=SamplingConfig(temperature=0), max_tokens=N_NEW, seed=99).result
    assert again.tokens == want
    # log-probabilities of the greedy tokens (T = 0 reports them at T = 1) match NumPy
    logits = NF.forward(tm, prompt + want, **FORWARD_KW[arch]).logits[len(prompt) - 1 : -1]
    logp = logits - logits.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    want_lp = logp[np.arange(N_NEW), want]
    np.testing.assert_allclose(res.logprobs, want_lp, rtol=0, atol=PRECISION[arch])


@pytest.mark.parametrize("arch", ARCHS)
def test_led_with_one_candidate_is_greedy(tiny, reference, arch):
    """k = 1: the only candidate is the final layer's argmax, whatever the draws."""
    tm = tiny[arch]
    prompt, want, _ = reference[arch]
    m = led_cpp.Model(tm.path, n_ctx=256, n_threads=1, kv_type="f32", flash_attention=False)
    for cfg in (
        LEDConfig(temperature=0.6, d=4, k=1, ln=False, exploit=False, think_only=False),
        LEDConfig(temperature=1.0, d=2, k=1, ln=True, exploit=True, think_only=False, layer_counting="reference"),
    ):
        res = m.generate(prompt, config=cfg, max_tokens=N_NEW, seed=5, trace=True).result
        assert res.tokens == want, cfg


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_under_default_settings(tiny, reference, arch):
    """F16 KV cache and flash attention as llama.cpp picks them: teacher-forced check."""
    tm = tiny[arch]
    prompt, want, _ = reference[arch]
    m = led_cpp.Model(tm.path, n_ctx=256, n_threads=1)
    res = m.generate(prompt, config=SamplingConfig(temperature=0), max_tokens=N_NEW, seed=1).result
    assert res.finish_reason == "length" and len(res.tokens) == N_NEW
    problems = NF.greedy_mismatches(tm, prompt, res.tokens, **FORWARD_KW[arch])
    assert problems == [], "\n".join(problems)
    # with the default tolerance this is also non-vacuous: a wrong token is caught
    bad = list(res.tokens)
    bad[7] = int(np.argmin(NF.forward(tm, prompt + bad[:7]).logits[-1]))
    assert NF.greedy_mismatches(tm, prompt, bad, **FORWARD_KW[arch])
