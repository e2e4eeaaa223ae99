"""RunOptions.cache_prompt (the server's default, as llama-server's cache_prompt): a prompt starts
from the KV of the longest prefix it shares with the prompt evaluated before it in the same run,
only the rest is evaluated, and the samples are the tokens the whole prompt gives. A model with
recurrent layers keeps its prefix only where llama.cpp can roll the state back; otherwise the
whole prompt is evaluated."""

from __future__ import annotations

import pytest

import led_cpp
from led_cpp import SamplingConfig, _core
from led_cpp.server.engine import result_of
from tests.support.arch_models import write_arch_model
from tests.support.tiny_models import write_tiny_model

N_CTX = 256
TOKENS = 10
GREEDY = SamplingConfig(temperature=0.0)


@pytest.fixture(scope="module", params=["llama", "qwen35"])
def model(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / f"{request.param}.gguf"
    if request.param == "llama":
        write_tiny_model(path, "llama", seed=2, context_length=N_CTX)
    else:
        write_arch_model(path, "qwen35", seed=2)
    return led_cpp.Model(path, n_ctx=N_CTX, n_threads=1, kv_type="f32", flash_attention=False)


def decode(engine, model, prompt: list[int], cache_prompt: bool) -> tuple[list[int], int, int]:
    """One greedy request through the open run: its tokens, and the prompt tokens it reused and evaluated."""
    reused, evaluated = engine.stats.prompt_tokens_reused, engine.stats.prompt_tokens_evaluated
    options = _core.RunOptions(max_tokens=TOKENS, seed=1, cache_prompt=cache_prompt)
    engine.submit([prompt], 1, model.native_config(GREEDY), options)
    finished = []
    while not engine.idle:
        engine.advance()
        finished += engine.take_finished()
    finished += engine.take_finished()
    assert len(finished) == 1
    stats = engine.stats
    return (
        result_of(finished[0].result).tokens,
        stats.prompt_tokens_reused - reused,
        stats.prompt_tokens_evaluated - evaluated,
    )


def test_shared_prefixes_are_evaluated_once(model):
    n_vocab = model._native.n_vocab
    first = [(7 * i + 3) % n_vocab for i in range(24)]
    longer = first + [(11 * i + 5) % n_vocab for i in range(9)]  # the conversation goes on
    branch = first[:8] + [(13 * i + 1) % n_vocab for i in range(6)]  # shares 8 tokens, then differs
    # (prompt, the prefix an attention cache keeps, the prefix a recurrent state keeps): the
    # previous prompt whole (both: the state is where the prompt goes on); all but the last token
    # of a repeated prompt (its output is needed; a recurrent state cannot step back); the shared
    # head of a branch.
    steps = [
        (first, 0, 0),
        (longer, len(first), len(first)),
        (longer, len(longer) - 1, 0),
        (branch, 8, 0),
        (first, 8, 0),
    ]
    # each prompt evaluated whole, before the open run takes the model
    alone = {tuple(p): model.generate(p, config=GREEDY, max_tokens=TOKENS, seed=1).result.tokens for p, _, _ in steps}
    recurrent = model.architecture == "qwen35"
    engine = _core.BatchRun(model._native, 2)
    for prompt, attention_prefix, recurrent_prefix in steps:
        tokens, reused, evaluated = decode(engine, model, prompt, cache_prompt=True)
        assert tokens == alone[tuple(prompt)]
        assert (reused, evaluated) == ((recurrent_prefix if recurrent else attention_prefix), len(prompt) - reused)

    # cache_prompt off: the whole prompt, whatever the slot holds; the next prompt may reuse it.
    tokens, reused, evaluated = decode(engine, model, longer, cache_prompt=False)
    assert (reused, evaluated) == (0, len(longer))
    assert tokens == alone[tuple(longer)]
    _, reused, _ = decode(engine, model, longer + [5, 6], cache_prompt=True)
    assert reused == len(longer)
    engine.close()


def test_generate_starts_from_what_the_last_generation_left(model):
    """Model.generate(cache_prompt=True) starts from the sequence the model's last generation left:
    its prompt, and with cache_prompt the tokens it decoded, so a chat's next turn, which repeats
    that answer, evaluates only the new turn. Anything else that empties the context
    (depth_logits) forgets it."""
    n_vocab = model._native.n_vocab
    first = [(5 * i + 2) % n_vocab for i in range(20)]
    answer = model.generate(first, config=GREEDY, max_tokens=TOKENS, seed=1, cache_prompt=True).result
    fed = len(answer.tokens) - (answer.finish_reason == "length")  # the last token chosen is not decoded
    # the answer as the model decoded it, then a new turn: the kept sequence goes on whole, so a
    # recurrent state is kept too
    turn = first + answer.tokens[:fed] + [(3 * i + 7) % n_vocab for i in range(7)]
    cached = model.generate(turn, config=GREEDY, max_tokens=TOKENS, seed=1, cache_prompt=True)
    cached_tokens = cached.result.tokens
    reused = len(first) + fed
    assert cached.stats["prompt_tokens_reused"] == reused
    assert cached.stats["prompt_tokens_evaluated"] == len(turn) - reused

    whole = model.generate(turn, config=GREEDY, max_tokens=TOKENS, seed=1)  # cache_prompt is off by default
    assert whole.result.tokens == cached_tokens
    assert whole.stats["prompt_tokens_reused"] == 0
    # without cache_prompt a generation leaves its prompt, not its answer
    following = model.generate(turn + whole.result.tokens[:3] + [1, 2], config=GREEDY, max_tokens=2, cache_prompt=True)
    following.result
    assert following.stats["prompt_tokens_reused"] == len(turn)

    model.depth_logits(turn, d=1)
    again = model.generate(turn, config=GREEDY, max_tokens=TOKENS, seed=1, cache_prompt=True)
    assert again.result.tokens == cached_tokens
    assert again.stats["prompt_tokens_reused"] == 0
    with pytest.raises(TypeError, match="cache_prompt"):
        model.generate(turn, cache_prompt="yes")
