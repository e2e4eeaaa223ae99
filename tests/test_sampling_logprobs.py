"""GenerationResult.sampling_logprobs equals an independent computation: the NumPy forward pass
(tests/support/numpy_forward.py) and the NumPy LED port (tests/support/led_reference.py), given the token and,
for LED, whether the step explored and at which depth (the decisions themselves are checked by
test_graph_parity.py)."""

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
from led_cpp import LEDConfig, SamplingConfig, _core  # noqa: E402
from led_cpp.server.engine import result_of  # noqa: E402
from tests.support import led_reference as L  # noqa: E402
from tests.support import numpy_forward as NF  # noqa: E402
from tests.support.tiny_models import TOKEN_TYPE_USER_DEFINED, build_vocab, write_tiny_model  # noqa: E402

STEPS = 24
ATOL = 1e-3  # float32 graph against a float64 forward; log-probabilities of O(1) magnitude


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tm = write_tiny_model(tmp_path_factory.mktemp("logprobs") / "llama.gguf", "llama")
    models = {
        projection: led_cpp.Model(
            tm.path, n_ctx=256, n_threads=1, kv_type="f32", flash_attention=False, led_projection=projection
        )
        for projection in ("on_explore", "every_step")
    }
    return tm, models


def depth_logits(tm, tokens, d, ln=False):
    """[n_tokens, d, n_vocab]: every prefix's per-depth logits from one NumPy forward pass."""
    forward = NF.forward(tm, tokens)
    rows = [forward.logits] + [
        NF.project(tm, forward.hidden[NF.depth_layer(tm.n_layer, j)], ln=ln) for j in range(1, d)
    ]
    return np.stack(rows, axis=1)


def kept(q: np.ndarray, top_p: float, min_p: float) -> int:
    """How many leading candidates top-p, then min-p keep (SamplingConfig's chain)."""
    keep = len(q)
    if top_p < 1:
        running = np.concatenate([[0.0], np.cumsum(q.astype(np.float64))])
        keep = int(np.argmax(running >= top_p * q.sum())) if (running >= top_p * q.sum())[:-1].any() else len(q)
    if min_p > 0:
        keep = max(1, int(np.sum(q[:keep] >= min_p * q[0])))
    return max(keep, 1)


def test_sampling_config_logprobs(tiny):
    tm, models = tiny
    config = SamplingConfig(temperature=0.8, top_k=20, top_p=0.9, min_p=0.05)
    prompt = tm.encode("It was a dark and")
    result = models["on_explore"].generate(prompt, config=config, max_tokens=STEPS, seed=4).result
    assert len(result.sampling_logprobs) == len(result.tokens) == len(result.logprobs)
    z = depth_logits(tm, prompt + result.tokens, 1)
    narrowed = 0
    for i, token in enumerate(result.tokens):
        p0 = L.softmax_rows(z[len(prompt) + i - 1][:1], config.temperature)[0]
        candidates = list(L.top_k_candidates(p0, config.top_k))
        q = p0[candidates].astype(np.float64)
        keep = kept(q, config.top_p, config.min_p)
        index = candidates.index(token)
        assert index < keep, f"step {i}: the token is outside the kept candidates"
        expected = np.log(q[index] / q[:keep].sum())
        assert abs(result.sampling_logprobs[i] - expected) <= ATOL, f"step {i}"
        assert abs(result.logprobs[i] - np.log(p0[token])) <= ATOL, f"step {i}"
        narrowed += keep < config.top_k
    assert narrowed > 0  # top-p or min-p cut the candidates on some step


@pytest.mark.parametrize("projection", ["on_explore", "every_step"])
def test_led_logprobs_on_exploit_and_explored_steps(tiny, projection):
    tm, models = tiny
    config = LEDConfig(temperature=0.8, d=4, k=8, ln=True)
    prompt = tm.encode("Dear Sir,")
    result = models[projection].generate(prompt, config=config, max_tokens=STEPS, seed=7, trace=True).result
    z = depth_logits(tm, prompt + result.tokens, config.d, ln=config.ln)
    kinds = set()
    for i, (token, step) in enumerate(zip(result.tokens, result.trace)):
        p = L.softmax_rows(z[len(prompt) + i - 1], config.temperature)
        candidates = L.top_k_candidates(p[0], config.k)
        index = list(candidates).index(token)
        if step.explored:
            posteriors, _ = L.depth_posteriors(p, candidates)
            weights = posteriors[step.depth].astype(np.float64)
        else:
            weights = p[0][candidates].astype(np.float64)
        expected = np.log(weights[index] / weights.sum())
        assert abs(result.sampling_logprobs[i] - expected) <= ATOL, f"step {i} (explored={step.explored})"
        kinds.add(step.explored)
    assert kinds == {True, False}, "pick another seed: every step explored, or none did"


def test_greedy_steps_have_log_probability_zero(tiny):
    tm, models = tiny
    result = (
        models["on_explore"]
        .generate(tm.encode("abc"), config=LEDConfig(temperature=0, d=4, exploit=False), max_tokens=8)
        .result
    )
    assert result.sampling_logprobs == [0.0] * len(result.tokens)


# From 16k ids on, the graph takes the candidates and the whole vocabulary's normaliser per chunk
# of the row (candidate_graph.cpp chunk_count): a softmax per chunk, combined over the chunks.
WIDE_VOCABULARY = 32768


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    extra = [(f"<extra_{i}>", TOKEN_TYPE_USER_DEFINED) for i in range(WIDE_VOCABULARY - len(build_vocab()[0]))]
    tm = write_tiny_model(tmp_path_factory.mktemp("logprobs") / "wide.gguf", "llama", seed=3, extra_tokens=extra)
    assert tm.n_vocab == WIDE_VOCABULARY
    model = led_cpp.Model(tm.path, n_ctx=256, n_threads=2, kv_type="f32", flash_attention=False)
    return tm, model


WIDE_CONFIGS = [SamplingConfig(temperature=0.6, top_k=20, top_p=1.0), SamplingConfig(temperature=1.3, top_k=40)]


def test_logprobs_over_a_chunked_vocabulary(wide):
    """The reported log-probability and the top candidate's probability equal the NumPy forward's
    softmax over the whole vocabulary, alone and with rows of different temperatures in one step."""
    tm, model = wide
    prompts = ["It was a dark and", "Dear Sir,"]
    alone = [
        model.generate(tm.encode(prompt), config=config, max_tokens=12, seed=2, trace=True).result
        for prompt, config in zip(prompts, WIDE_CONFIGS)
    ]
    for prompt, config, result in zip(prompts, WIDE_CONFIGS, alone):
        tokens = tm.encode(prompt)
        z = depth_logits(tm, tokens + result.tokens, 1)
        assert len(result.tokens) == 12
        for i, (token, step) in enumerate(zip(result.tokens, result.trace)):
            p0 = L.softmax_rows(z[len(tokens) + i - 1][:1], config.temperature)[0].astype(np.float64)
            assert abs(result.logprobs[i] - np.log(p0[token])) <= ATOL, f"step {i}"
            assert abs(step.top1_probability - p0.max()) <= ATOL * p0.max(), f"step {i}"

    # Both temperatures in one graph, each row scaled by its own: the same tokens as alone (the
    # logits of a two-row step may differ from a one-row step's in the last bits).
    engine = _core.BatchRun(model._native, 2)
    ids = [
        engine.submit(
            [tm.encode(prompt)], 1, model.native_config(config), _core.RunOptions(max_tokens=12, seed=2, trace=True)
        )
        for prompt, config in zip(prompts, WIDE_CONFIGS)
    ]
    finished = []
    while not engine.idle:
        engine.advance()
        finished += engine.take_finished()
    finished += engine.take_finished()
    assert engine.stats.peak_requests_per_step == 2
    engine.close()
    together = {item.request: result_of(item.result) for item in finished}
    for request_id, result in zip(ids, alone):
        assert together[request_id].tokens == result.tokens
        assert np.allclose(together[request_id].logprobs, result.logprobs, rtol=0, atol=1e-5)
