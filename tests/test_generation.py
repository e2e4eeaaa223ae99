"""The foundation on a real model: chat template, determinism, limits, streaming, close()."""

from __future__ import annotations

import numpy as np
import pytest

from led_cpp import SamplingConfig

QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]


def test_chat_template_is_applied(smollm2):
    assert "im_start" in smollm2.chat_template
    text = smollm2.apply_chat_template(QUESTION)
    assert text.endswith("<|im_start|>assistant\n")
    assert "Name three colours of the rainbow." in text
    tokens = smollm2.prompt_tokens(QUESTION)
    start = smollm2.tokenize("<|im_start|>", add_special=False)
    assert len(start) == 1 and start[0] in tokens  # parsed as a special token, not as characters


def test_properties(smollm2):
    assert smollm2.architecture == "llama"
    assert smollm2.n_layer == 30 and smollm2.n_vocab == 49152 and smollm2.n_embd == 576
    assert smollm2.n_ctx == 2048
    assert smollm2.detokenize(smollm2.tokenize("Hello world", add_special=False)) == "Hello world"


def test_fixed_seed_is_deterministic(smollm2):
    runs = [smollm2.generate(QUESTION, max_tokens=24, seed=11).result for _ in range(2)]
    assert runs[0].tokens == runs[1].tokens
    other = smollm2.generate(QUESTION, max_tokens=24, seed=12, config=SamplingConfig(temperature=1.5)).result
    assert other.tokens != runs[0].tokens


def test_max_tokens_and_logprobs(smollm2):
    result = smollm2.generate("Once upon a time", max_tokens=7, seed=1, config=SamplingConfig(temperature=1.0)).result
    assert result.finish_reason == "length"
    assert len(result.tokens) == 7 and len(result.logprobs) == 7
    # each logprob is log softmax(z_0 / T)[token], z_0 read apart from the sampler (depth 0)
    prompt = smollm2.prompt_tokens("Once upon a time")
    for i, token in enumerate(result.tokens):
        z = np.asarray(smollm2.depth_logits(prompt + result.tokens[:i], d=1), dtype=np.float64)[0]
        assert result.logprobs[i] == pytest.approx(z[token] - z.max() - np.log(np.exp(z - z.max()).sum()), abs=2e-4)
    assert result.timings.decode_tokens == 7 and result.timings.decode_tokens_per_second > 0
    assert result.timings.prompt_tokens == len(smollm2.prompt_tokens("Once upon a time"))


def test_stop_string_is_honoured(smollm2):
    free = smollm2.generate("Count: 1, 2, 3,", max_tokens=20, config=SamplingConfig(temperature=0)).result
    assert " 5" in free.text
    stopped = smollm2.generate(
        "Count: 1, 2, 3,", max_tokens=20, config=SamplingConfig(temperature=0), stop=[" 5"]
    ).result
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(" 5")]


def test_stream_pieces_make_the_text(smollm2):
    generation = smollm2.generate(QUESTION, max_tokens=40, seed=3)
    pieces = list(generation)
    assert "".join(pieces) == generation.result.text
    assert all(isinstance(piece, str) and piece for piece in pieces)


def test_multibyte_characters_stream_whole(smollm2):
    prompt = [{"role": "user", "content": "Write the word 'naïve' and the emoji 🙂 five times."}]
    generation = smollm2.generate(prompt, max_tokens=60, seed=5, config=SamplingConfig(temperature=0))
    pieces = list(generation)
    assert "".join(pieces) == generation.result.text
    for piece in pieces:
        piece.encode("utf-8")  # no lone surrogates / broken characters


def test_close_midway_leaves_model_usable(smollm2):
    generation = smollm2.generate(QUESTION, max_tokens=200, seed=4)
    next(iter(generation))
    generation.close()
    again = smollm2.generate(QUESTION, max_tokens=5, seed=4).result
    assert len(again.tokens) == 5


def test_second_open_generation_is_refused(smollm2):
    first = smollm2.generate(QUESTION, max_tokens=50, seed=1)
    next(iter(first))
    try:
        second = smollm2.generate(QUESTION, max_tokens=5, seed=1)
        try:
            next(iter(second))
            raised = False
        except RuntimeError as error:
            raised = "already generating" in str(error)
    except RuntimeError as error:
        raised = "already generating" in str(error)
    finally:
        first.close()
    assert raised


def test_gemma_base_model_generates(gemma):
    assert gemma.architecture == "gemma3" and gemma.n_layer == 18
    result = gemma.generate("1, 2, 3, 4, 5, 6,", max_tokens=12, config=SamplingConfig(temperature=0)).result
    assert len(result.tokens) == 12 and result.text.startswith(" 7, 8")


def test_cli_generate_runs(smollm2_path, capsys):
    from led_cpp.cli import main

    status = main(
        [
            "generate",
            "Say hello.",
            "-m",
            str(smollm2_path),
            "--max-tokens",
            "8",
            "--seed",
            "1",
            "--n-ctx",
            "512",
            "--threads",
            "2",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0
    assert captured.out.strip()
    assert "tok/s" in captured.err


def test_cli_led_projection_gives_the_same_text(smollm2_path, capsys):
    from led_cpp.cli import main

    texts = []
    for projection in ("on_explore", "every_step"):
        status = main(
            [
                "generate",
                "Count to five.",
                "-m",
                str(smollm2_path),
                "--max-tokens",
                "12",
                "--seed",
                "3",
                "--n-ctx",
                "512",
                "--threads",
                "2",
                "--led",
                "--no-exploit",
                "--led-projection",
                projection,
            ]
        )
        assert status == 0
        texts.append(capsys.readouterr().out)
    assert texts[0].strip() and texts[0] == texts[1]
