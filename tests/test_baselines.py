"""The benchmarks' llama.cpp baselines (cpp/raw_decode.*): llama.cpp's own sampler chain on the
host and as backend samplers, decoding the same model in the same context as led_cpp."""

from __future__ import annotations

import pytest

from led_cpp import SamplingConfig

PROMPT = "Count: 1, 2, 3,"


@pytest.mark.parametrize("backend", [False, True])
def test_the_chain_at_top_k_1_is_greedy_like_led_cpp(smollm2, backend):
    prompt = smollm2.prompt_tokens(PROMPT)
    greedy = smollm2.generate(prompt, max_tokens=8, config=SamplingConfig(temperature=0)).result.tokens
    assert len(greedy) == 8  # no end of generation: the chain decodes a fixed count
    out = smollm2._native.chain_decode(prompt, 8, 2, top_k=1, seed=3, backend=backend)
    assert out["tokens"] == [greedy, greedy]
    assert out["decode_tokens"] == 16 and out["prompt_tokens"] == 2 * len(prompt)
    assert out["decode_seconds"] > 0
    # led_cpp's own samplers come back after the baseline: the same tokens again.
    assert smollm2.generate(prompt, max_tokens=8, config=SamplingConfig(temperature=0)).result.tokens == greedy


def test_the_chain_draws_reproducibly_per_seed(smollm2):
    prompt = smollm2.prompt_tokens("Write a story about a cat.")
    first = smollm2._native.chain_decode(prompt, 12, 2, seed=11)["tokens"]
    assert smollm2._native.chain_decode(prompt, 12, 2, seed=11)["tokens"] == first
    assert [len(tokens) for tokens in first] == [12, 12]
    backend = smollm2._native.chain_decode(prompt, 12, 2, seed=11, backend=True)["tokens"]
    assert [len(tokens) for tokens in backend] == [12, 12]
    assert smollm2._native.chain_decode(prompt, 12, 2, seed=11, backend=True)["tokens"] == backend


def test_the_chain_refuses_bad_settings(smollm2):
    prompt = smollm2.prompt_tokens(PROMPT)
    for bad in ({"top_p": 0.0}, {"top_k": 0}, {"temperature": 0.0}):
        with pytest.raises(ValueError, match="top_k must be >= 1"):
            smollm2._native.chain_decode(prompt, 4, 1, **bad)
    with pytest.raises(ValueError, match="prompt must not be empty"):
        smollm2._native.chain_decode([], 4, 1)
