"""Many samples at once: equality with single generation, shared prefill, continuous batching."""

from __future__ import annotations

import pytest

from led_cpp import LEDConfig, SamplingConfig

PROMPTS = [
    [{"role": "user", "content": "Give me a short poem about the sea."}],
    [{"role": "user", "content": "What is 12 times 12?"}],
]


@pytest.mark.parametrize(
    "config",
    [SamplingConfig(temperature=0.8), LEDConfig(exploit=False), LEDConfig()],
    ids=["sampling", "led-always", "led-gated"],
)
def test_batch_samples_equal_single_generation(smollm2, config):
    batch = smollm2.generate_batch(PROMPTS, n=3, config=config, max_tokens=24, seed=77)
    assert [len(samples) for samples in batch] == [3, 3]
    for p, samples in enumerate(batch):
        for s, result in enumerate(samples):
            # n_parallel=1: every sample decoded alone, one after the other
            alone = smollm2.generate_batch(
                PROMPTS[: p + 1], n=s + 1, config=config, max_tokens=24, seed=77, n_parallel=1
            )[p][s]
            assert result.tokens == alone.tokens, (p, s)
    assert batch[0][0].tokens != batch[0][1].tokens  # samples differ from each other


def test_prompt_is_evaluated_once_per_prompt(smollm2):
    stream = smollm2.stream_batch(PROMPTS, n=6, max_tokens=4, seed=1)
    pieces = list(stream)
    assert pieces and all(len(piece) == 3 for piece in pieces)
    prompt_tokens = sum(len(smollm2.prompt_tokens(prompt)) for prompt in PROMPTS)
    assert stream.stats["prompt_tokens_evaluated"] == prompt_tokens
    generated = sum(len(result.tokens) for samples in stream.results for result in samples)
    # every generated token but each sample's last is decoded once; no prompt token is recomputed
    assert stream.stats["decode_tokens_evaluated"] <= generated


def test_many_short_samples_through_a_small_context(smollm2_path):
    import led_cpp

    model = led_cpp.Model(smollm2_path, n_ctx=256, n_threads=2)
    prompt = "List some animals:"
    results = model.generate_batch(
        [prompt, "Colours:"], n=40, max_tokens=16, seed=3, config=SamplingConfig(temperature=1.0)
    )
    assert all(len(result.tokens) >= 1 for samples in results for result in samples)
    stream = model.stream_batch([prompt], n=30, max_tokens=16, seed=3, n_parallel=4)
    list(stream)
    assert stream.stats["n_parallel"] == 4 and stream.stats["peak_active"] == 4  # waiting samples joined later
    assert len(stream.results[0]) == 30


def test_too_long_for_the_context_is_a_clear_error(smollm2_path):
    import led_cpp

    model = led_cpp.Model(smollm2_path, n_ctx=64, n_threads=2)
    with pytest.raises(ValueError, match="exceed the context"):
        model.generate_batch(["hello"], n=2, max_tokens=100)


def test_interrupted_stream_leaves_model_usable(smollm2):
    stream = smollm2.stream_batch(PROMPTS, n=4, max_tokens=64, seed=5)
    for count, _ in enumerate(stream):
        if count == 10:
            break
    stream.close()
    with pytest.raises(RuntimeError, match="closed before it finished"):
        stream.results
    again = smollm2.generate_batch(PROMPTS, n=2, max_tokens=8, seed=5)
    assert all(len(result.tokens) >= 1 for samples in again for result in samples)


def test_progress_bar(smollm2, capsys):
    results = smollm2.generate_batch(PROMPTS[:1], n=2, max_tokens=4, seed=1, progress=True)
    assert len(results[0]) == 2
    assert "tok" in capsys.readouterr().err  # tqdm's bar counts generated tokens on stderr


@pytest.mark.parametrize(
    "config",
    [LEDConfig(), LEDConfig(exploit=False, ln=True), LEDConfig(depth_rule="random")],
    ids=["gated", "always-ln", "random-depth"],
)
def test_every_step_projection_gives_the_same_batch(smollm2, smollm2_path, config):
    """The GPU default (the depths projected in the model graph for every row) and the CPU default
    (a second graph for the exploring rows only) decide the same tokens, batched."""
    import led_cpp

    every_step = led_cpp.Model(smollm2_path, n_ctx=2048, n_threads=smollm2.n_threads, led_projection="every_step")
    expected = smollm2.stream_batch(PROMPTS, n=3, config=config, max_tokens=32, seed=5)
    got = every_step.stream_batch(PROMPTS, n=3, config=config, max_tokens=32, seed=5)
    for stream in (expected, got):
        list(stream)
    assert [[r.tokens for r in samples] for samples in got.results] == [
        [r.tokens for r in samples] for samples in expected.results
    ]
    assert sum(r.explored_steps for samples in got.results for r in samples) > 0
    assert got.stats["explore_graphs"] == 0 < expected.stats["explore_graphs"]
    # the depths went through the model's own head product, widened, not a second one
    assert got.stats["every_step"] and got.stats["shared_head_product"] and not expected.stats["every_step"]
