"""Exact ties resolve by the documented rule on every decoding path (LED_SPEC step 5, led_math):
the first depth of maximal entropy, and among tokens of equal probability the lower id, both for
which tokens make the top-k and for their order. Each model here forces exact ties by
construction, and each test first checks that the ties it relies on are really there."""

from __future__ import annotations

import numpy as np
import pytest

import led_cpp
from led_cpp import LEDConfig, SamplingConfig
from tests.support.tiny_models import TOKEN_TYPE_USER_DEFINED, build_vocab, write_tiny_model

PROJECTIONS = ("on_explore", "every_step")
PROMPT = "Once upon a time"


def _load(path, projection):
    return led_cpp.Model(path, n_ctx=256, n_threads=1, kv_type="f32", flash_attention=False, led_projection=projection)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    tm = write_tiny_model(tmp_path_factory.mktemp("ties") / "plain.gguf", "llama")
    return tm, {projection: _load(tm.path, projection) for projection in PROJECTIONS}


GROUPS = 5


def _repeated_head_rows(weights):
    # Every token's output row is one of GROUPS rows, so each token's logit equals that of
    # every token in its group, bit for bit: the top-k cut and the order fall inside a group.
    head = weights["output.weight"]
    head[:] = head[np.arange(head.shape[0]) % GROUPS]


WIDE_VOCABULARY = 32768


def _wide_vocabulary():
    """Extra tokens for a vocabulary of WIDE_VOCABULARY ids: from 16k ids on, the graph's top-k
    selects within chunks of the row first (candidate_graph.cpp chunk_count), so the tied-token tests
    cover that path as well as the single top-k."""
    return [(f"<extra_{i}>", TOKEN_TYPE_USER_DEFINED) for i in range(WIDE_VOCABULARY - len(build_vocab()[0]))]


@pytest.fixture(scope="module", params=["narrow", "wide"])
def tied_tokens(request, tmp_path_factory):
    extra = _wide_vocabulary() if request.param == "wide" else ()
    tm = write_tiny_model(
        tmp_path_factory.mktemp("ties") / "rows.gguf", "llama", edit_weights=_repeated_head_rows, extra_tokens=extra
    )
    assert tm.n_vocab == (WIDE_VOCABULARY if extra else len(build_vocab()[0]))
    return tm, {projection: _load(tm.path, projection) for projection in PROJECTIONS}


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_k1_chooses_depth_0(plain, projection):
    """k = 1: every posterior is one-hot, every entropy 0, so the first maximum is depth 0."""
    tm, models = plain
    result = (
        models[projection]
        .generate(
            tm.encode(PROMPT),
            config=LEDConfig(k=1, d=4, exploit=False, think_only=False),
            max_tokens=16,
            seed=3,
            trace=True,
        )
        .result
    )
    assert len(result.trace) >= 16
    for step in result.trace:
        assert step.explored and list(step.entropies) == [0.0] * 4
        assert step.depth == 0


@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize("temperature", [0.0, 0.6])
@pytest.mark.parametrize("ln", [False, True])
def test_tied_depths_choose_the_first(tied_tokens, projection, temperature, ln):
    """k = 2 inside a group of tokens with one shared head row: at every depth both candidates
    have the same probability, so every A_j is two equal values, every P_j is [0.5, 0.5]
    exactly (a / 2a) and every H_j is the same float. Depth 0 must win, on both projections."""
    tm, models = tied_tokens
    config = LEDConfig(temperature=temperature, d=4, k=2, ln=ln, exploit=False, think_only=False)
    result = models[projection].generate(tm.encode(PROMPT), config=config, max_tokens=16, seed=5, trace=True).result
    assert len(result.trace) >= 16
    for step in result.trace:
        assert step.explored and len(set(step.entropies)) == 1 and step.entropies[0] > 0.69  # ln 2, at all 4 depths
        assert step.depth == 0


def test_projections_agree_on_tied_depths(tied_tokens):
    """Both projections choose identical depths and tokens on exact ties."""
    tm, models = tied_tokens
    config = LEDConfig(temperature=0.6, d=4, k=2, exploit=False, think_only=False)
    runs = [
        models[p].generate(tm.encode(PROMPT), config=config, max_tokens=16, seed=11, trace=True).result
        for p in PROJECTIONS
    ]
    assert runs[0].tokens == runs[1].tokens
    assert [s.depth for s in runs[0].trace] == [s.depth for s in runs[1].trace] == [0] * len(runs[0].trace)


def _expected_candidates(model, tokens, k):
    """The k most probable ids at the next position, the lower id first on exact ties, from the
    final layer's logits as LED's depth projection reads them (not through the sampler's top-k)."""
    z = np.asarray(model.depth_logits(tokens, d=1), dtype=np.float32)[0]
    order = np.argsort(-z, kind="stable")  # stable: equal logits keep id order
    return [int(i) for i in order[:k]], z


@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize(
    "config",
    [
        LEDConfig(temperature=0.6, d=2, k=8, exploit=False, think_only=False),
        LEDConfig(temperature=0.0, d=2, k=8, exploit=False, think_only=False),
        SamplingConfig(temperature=0.6, top_k=8, top_p=1.0),
    ],
    ids=["led", "led-greedy", "top-k"],
)
def test_equal_probabilities_take_the_lower_id(tied_tokens, projection, config):
    tm, models = tied_tokens
    model = models[projection]
    prompt = tm.encode(PROMPT)
    result = model.generate(prompt, config=config, max_tokens=12, seed=7, trace=True).result
    assert len(result.trace) >= 12
    for i, step in enumerate(result.trace[:12]):
        expected, z = _expected_candidates(model, prompt + result.tokens[:i], 8)
        # the precondition: the k-th candidate's logit is shared by a token left out
        assert np.count_nonzero(z == z[expected[-1]]) > np.count_nonzero(z[expected] == z[expected[-1]])
        assert list(step.candidates) == expected


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_greedy_takes_the_lowest_id_of_the_best(tied_tokens, projection):
    tm, models = tied_tokens
    model = models[projection]
    prompt = tm.encode(PROMPT)
    for config in (SamplingConfig(temperature=0.0), LEDConfig(temperature=0.0, d=4, k=8, think_only=False)):
        result = model.generate(prompt, config=config, max_tokens=12, seed=1).result
        assert len(result.tokens) == 12
        for i, token in enumerate(result.tokens):
            z = np.asarray(model.depth_logits(prompt + result.tokens[:i], d=1), dtype=np.float32)[0]
            assert np.count_nonzero(z == z.max()) > 1  # the precondition: the best is tied
            assert token == int(np.flatnonzero(z == z.max())[0])


def test_an_explored_step_that_chooses_eos_counts(tied_tokens):
    """Every step explores (exploit off); a sample that ends on EOS explored one step more than
    it has tokens, and its trace ends with that step. (In the shared-rows model, k = 64 takes in
    all of the leading group, EOS among them when its group leads.)"""
    tm, models = tied_tokens
    model = models["on_explore"]
    config = LEDConfig(temperature=1.0, d=2, k=64, exploit=False, think_only=False)
    stream = model.stream_batch([tm.encode(PROMPT)], n=16, config=config, max_tokens=48, seed=21, trace=True)
    list(stream)
    ended = [r for r in stream.results[0] if r.finish_reason == "eos"]
    assert ended, "no sample ended on EOS; pick another seed"
    for result in ended:
        assert result.explored_steps == len(result.tokens) + 1 == len(result.trace) == result.decided_steps
        assert result.trace[-1].explored and result.trace[-1].token in tm.eog_ids
        assert [step.token for step in result.trace[:-1]] == result.tokens
        assert result.explore_rate == 1.0
    assert (
        stream.stats["explored_steps"]
        == stream.stats["decided_steps"]
        == sum(r.decided_steps for r in stream.results[0])
    )
