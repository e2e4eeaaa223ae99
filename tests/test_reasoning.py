"""The reasoning segment on tiny models carrying the real chat templates and marker tokens of
reasoning families: the markers found, the state the prompt leaves, LED exploring only inside
the segment, the reasoning/answer split, and markers matched by token id or by text."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

pytest.importorskip("gguf")
import led_cpp  # noqa: E402
from led_cpp import LEDConfig, SamplingConfig  # noqa: E402
from tests.support.tiny_models import CHATML_TEMPLATE, TOKEN_TYPE_CONTROL, write_tiny_model  # noqa: E402

DEEPSEEK_TOKENS = tuple(
    (text, TOKEN_TYPE_CONTROL)
    for text in ("<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>")
)
MISTRAL_TOKENS = tuple(
    (text, TOKEN_TYPE_CONTROL)
    for text in ("[THINK]", "[/THINK]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[INST]", "[/INST]")
)
GPT_OSS_TOKENS = tuple(
    (text, TOKEN_TYPE_CONTROL)
    for text in ("<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>", "<|call|>")
)

# family -> (template file in the sdist, extra tokens, <think> tokens in the vocabulary, markers)
FAMILIES = {
    "qwen3": ("Qwen-Qwen3-0.6B", (), True, ("<think>", "</think>")),
    "deepseek-r1-distill-qwen": (
        "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
        DEEPSEEK_TOKENS,
        True,
        ("<think>", "</think>"),
    ),
    "qwq": ("Qwen-QwQ-32B", (), True, ("<think>", "</think>")),
    "smollm3": ("HuggingFaceTB-SmolLM3-3B", (), True, ("<think>", "</think>")),
    "ministral-reasoning": ("mistralai-Ministral-3-14B-Reasoning-2512", MISTRAL_TOKENS, False, ("[THINK]", "[/THINK]")),
    "gpt-oss": (
        "openai-gpt-oss-120b",
        GPT_OSS_TOKENS,
        False,
        ("<|channel|>analysis<|message|>", "<|start|>assistant<|channel|>final<|message|>"),
    ),
}
QUESTION = [{"role": "user", "content": "What is 2+2?"}]
D = 4


def render(template: str, messages, **kwargs) -> str:
    """The template rendered as transformers' apply_chat_template renders it."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])

    def raise_exception(message):
        raise ValueError(message)

    environment.globals.update(raise_exception=raise_exception, strftime_now=lambda f: datetime.now().strftime(f))
    return environment.from_string(template).render(
        messages=messages, add_generation_prompt=True, bos_token="<|bos|>", eos_token="<|endoftext|>", **kwargs
    )


@pytest.fixture(scope="module")
def families(llama_templates, tmp_path_factory):
    """family -> (TinyModel, led_cpp.Model); "none" has no reasoning markers at all."""
    root = tmp_path_factory.mktemp("families")
    out = {}
    for family, (template, extra, think, _) in FAMILIES.items():
        text = llama_templates[f"{template}.jinja"]
        tm = write_tiny_model(
            root / f"{family}.gguf",
            "llama",
            chat_template=text,
            extra_tokens=extra,
            think_tokens=think,
            seed=3,
            context_length=4096,
        )
        out[family] = (tm, led_cpp.Model(tm.path, n_ctx=4096, n_threads=1))
    tm = write_tiny_model(root / "none.gguf", "llama", chat_template=CHATML_TEMPLATE, think_tokens=False, seed=3)
    out["none"] = (tm, led_cpp.Model(tm.path, n_ctx=4096, n_threads=1))
    return out


def prompt_tokens(tm, family: str, messages=QUESTION, **kwargs) -> list:
    text = render(tm.chat_template, messages, **kwargs)
    tokens = tm.encode(text, add_bos=False)
    return tokens if tokens[:1] == [tm.bos_id] else [tm.bos_id] + tokens


@pytest.mark.parametrize("family", list(FAMILIES) + ["none"])
def test_markers_come_from_vocabulary_and_template(families, family):
    _, model = families[family]
    assert model.reasoning_markers == (FAMILIES[family][3] if family != "none" else None)


# family, template arguments, inside at the first generated token
STATES = [
    ("qwen3", {"enable_thinking": True}, True),  # the model opens <think> itself
    ("qwen3", {"enable_thinking": False}, False),  # <think>\n\n</think>\n\n closes it
    ("deepseek-r1-distill-qwen", {"enable_thinking": True}, True),  # <think>\n left open
    ("deepseek-r1-distill-qwen", {"enable_thinking": False}, False),
    ("qwq", {"enable_thinking": True}, True),
    ("qwq", {"enable_thinking": False}, False),
    ("smollm3", {"enable_thinking": True}, True),
    ("smollm3", {"enable_thinking": False}, False),
    ("ministral-reasoning", {}, True),  # the system prompt's [THINK]..[/THINK] is not the end
    ("gpt-oss", {}, True),
]


@pytest.mark.parametrize("family,kwargs,inside", STATES)
def test_state_from_the_prompt_and_led_explores_only_inside(families, family, kwargs, inside):
    tm, model = families[family]
    prompt = prompt_tokens(tm, family, **kwargs)
    assert model.reasoning_open(prompt) is inside
    config = LEDConfig(d=D, exploit=False)
    result = model.generate(prompt, config=config, max_tokens=24, seed=5, trace=True).result
    assert result.starts_in_reasoning is inside
    assert result.reasoning_markers == FAMILIES[family][3]
    if inside:
        # explored exactly while inside: up to and including the end marker, if written
        flags = inside_steps(result, result.reasoning_tokens, closed=result.reasoning_tokens < len(result.tokens))
        assert result.reasoning_tokens > 0 and result.explored_steps == sum(flags)
        assert [step.explored for step in result.trace] == flags
    else:
        assert result.explored_steps == 0 and result.reasoning_tokens == 0
        assert result.reasoning == "" and result.answer == result.text


def test_earlier_turns_do_not_count(families):
    tm, model = families["qwen3"]
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nsay hello\n</think>\n\nHello!"},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert "</think>" in render(tm.chat_template, history, enable_thinking=True) or True
    assert model.reasoning_open(prompt_tokens(tm, "qwen3", history, enable_thinking=True))
    assert not model.reasoning_open(prompt_tokens(tm, "qwen3", history, enable_thinking=False))


def test_no_markers_explore_every_step(families):
    tm, model = families["none"]
    result = model.generate(
        prompt_tokens(tm, "none"), config=LEDConfig(d=D, exploit=False), max_tokens=16, seed=2
    ).result
    assert result.reasoning_markers is None and not result.starts_in_reasoning
    assert result.explored_steps == len(result.tokens) + (result.finish_reason == "eos")
    assert result.reasoning_tokens == 0
    assert result.reasoning == "" and result.answer == result.text


def test_one_token_markers_match_by_id_in_the_prompt(families):
    tm, model = families["ministral-reasoning"]
    think, end = tm.special_ids["[THINK]"], tm.special_ids["[/THINK]"]
    closed = (
        tm.encode("[INST]2+2?[/INST]")
        + [think]
        + tm.encode("four", add_bos=False)
        + [end]
        + tm.encode("\n", add_bos=False)
    )
    assert not model.reasoning_open(closed)
    # the same characters spelled by byte tokens are no marker
    spelled = tm.encode("[INST]2+2?[/INST]") + tm.encode("[THINK]four[/THINK]", add_bos=False, parse_special=False)
    assert spelled[-1] != end and model.reasoning_open(spelled)
    assert model.reasoning_open(tm.encode("[INST]2+2?[/INST]") + [think])


def test_multi_token_markers_match_by_text_in_the_prompt(families):
    tm, model = families["gpt-oss"]
    base = prompt_tokens(tm, "gpt-oss")
    closed = base + tm.encode(
        "<|channel|>analysis<|message|>four<|end|><|start|>assistant<|channel|>final<|message|>", add_bos=False
    )
    assert not model.reasoning_open(closed)
    assert model.reasoning_open(base + tm.encode("<|channel|>analysis<|message|>", add_bos=False))


def inside_steps(result, count: int, closed: bool) -> list:
    """Per decided step (each token, then the step that chose EOS): inside the segment, for a
    sample whose first `count` tokens were (the end marker included, when `closed`)."""
    return [i < count or (not closed and i >= len(result.tokens)) for i in range(len(result.trace))]


def eos_inside(result) -> int:
    """1 when the step that chose EOS was decided inside the segment (it counts as explored)."""
    return int(result.finish_reason == "eos" and result.reasoning_tokens == len(result.tokens))


def clean(text: str) -> str:
    return text.replace("\ufffd", "")


def _expected_split(model, tm, tokens, start_id, end_id):
    """(reasoning_tokens, reasoning, answer) by the spec, for a sample that starts inside."""
    if end_id in tokens:
        stop = tokens.index(end_id)
        inside, answer = tokens[:stop], model.detokenize(tokens[stop + 1 :]).lstrip()
        count = stop + 1
    else:
        inside, answer, count = tokens, "", len(tokens)
    if start_id in inside:
        inside = inside[inside.index(start_id) + 1 :]
    return count, model.detokenize(inside).strip(), answer


@pytest.mark.parametrize("family", ["qwen3", "ministral-reasoning"])
def test_reasoning_and_answer_split_at_the_end_token(families, family):
    tm, model = families[family]
    start, end = FAMILIES[family][3]
    start_id, end_id = tm.special_ids[start], tm.special_ids[end]
    prompt = prompt_tokens(tm, family)
    # A hot, wide sampler so that the end marker comes up in some samples.
    results = model.generate_batch(
        [prompt], n=16, config=SamplingConfig(temperature=4.0, top_k=0, top_p=1.0), max_tokens=48, seed=11
    )[0]
    closed = [r for r in results if end_id in r.tokens]
    assert closed and len(closed) < len(results), "pick another seed: no sample (or every sample) closed the segment"
    for result in results:
        assert result.starts_in_reasoning
        count, reasoning, answer = _expected_split(model, tm, result.tokens, start_id, end_id)
        # random bytes: invalid UTF-8 is replaced differently by led_cpp and Python's decoder
        assert (result.reasoning_tokens, clean(result.reasoning), clean(result.answer)) == (
            count,
            clean(reasoning),
            clean(answer),
        )
    if family == "ministral-reasoning":  # a control token: in no text, found by its id
        assert all(end not in r.text for r in closed)


def test_led_stops_exploring_at_the_end_token(families):
    tm, model = families["qwen3"]
    end_id = tm.special_ids["</think>"]
    config = LEDConfig(temperature=4.0, d=D, k=64, exploit=False)
    results = model.generate_batch(
        [prompt_tokens(tm, "qwen3")], n=16, config=config, max_tokens=48, seed=11, trace=True
    )[0]
    assert any(end_id in r.tokens[:-1] for r in results), "pick another seed: no sample closed the segment early"
    for result in results:
        count = result.tokens.index(end_id) + 1 if end_id in result.tokens else len(result.tokens)
        flags = inside_steps(result, count, closed=end_id in result.tokens)
        assert result.reasoning_tokens == count and result.explored_steps == sum(flags)
        assert [step.explored for step in result.trace] == flags


def test_an_explicit_multi_token_marker_matches_by_text_across_tokens(families):
    tm, model = families["qwen3"]
    prompt = prompt_tokens(tm, "qwen3")
    free = model.generate(
        prompt, config=LEDConfig(temperature=0, d=D, exploit=False, think_only=False), max_tokens=32
    ).result
    # The first two neighbouring printable byte tokens the model wrote: a marker spanning two tokens.
    printable = [0x20 < t < 0x7F for t in free.tokens]
    at = next(i for i in range(2, len(free.tokens) - 4) if printable[i] and printable[i + 1])
    marker = chr(free.tokens[at]) + chr(free.tokens[at + 1])
    at = free.text.find(marker)  # its first occurrence in the text
    first_token = next(i for i in range(len(free.tokens)) if marker in model.detokenize(free.tokens[: i + 1]))
    result = model.generate(
        prompt, config=LEDConfig(temperature=0, d=D, exploit=False, think_end=marker), max_tokens=32, trace=True
    ).result
    assert result.reasoning_markers == ("", marker)  # an explicit end marker wins over the model's
    assert result.tokens[: first_token + 1] == free.tokens[: first_token + 1]
    assert result.reasoning_tokens == first_token + 1 == result.explored_steps
    assert clean(result.reasoning) == clean(free.text[:at].strip())
    assert not any(step.explored for step in result.trace[first_token + 1 :])


def test_an_empty_marker_is_refused():
    with pytest.raises(ValueError, match="think_end must not be empty"):
        LEDConfig(think_end="")


def _closed_sample(model, tm, family, end_id):
    """A hot sample of the family's prompt that closes the segment, generated alone."""
    prompt = prompt_tokens(tm, family)
    for seed in range(64):
        generation = model.generate(
            prompt, config=SamplingConfig(temperature=4.0, top_k=0, top_p=1.0), max_tokens=48, seed=seed
        )
        parts = list(generation.parts())
        if end_id in generation.result.tokens[:-1]:
            return generation.result, parts
    pytest.fail("no seed in 0..63 closed the segment")


@pytest.mark.parametrize("family", ["qwen3", "ministral-reasoning"])
def test_streamed_parts_say_which_side_of_the_segment_they_lie(families, family):
    tm, model = families[family]
    result, parts = _closed_sample(model, tm, family, tm.special_ids[FAMILIES[family][3][1]])
    flags = [reasoning for _, reasoning in parts]
    assert flags == sorted(flags, reverse=True) and flags[0] and not flags[-1]  # reasoning, then answer
    reasoning = "".join(text for text, inside in parts if inside)
    answer = "".join(text for text, inside in parts if not inside)
    assert reasoning + answer == result.text
    assert clean(answer.lstrip()) == clean(result.answer)


def test_evaluation_reads_the_answer_after_the_models_marker(families):
    from led_cpp import evaluation as ev

    tm, model = families["ministral-reasoning"]
    assert ev.model_end_marker(model) == "[/THINK]" and ev.model_end_marker(families["none"][1]) is None
    result, _ = _closed_sample(model, tm, "ministral-reasoning", tm.special_ids["[/THINK]"])
    # [/THINK] is a control token: absent from the text, the split comes from the decode loop
    assert ev.answer_region(result.text, "[/THINK]") == result.text
    assert ev.result_answer_region(result, "[/THINK]") == result.answer != result.text
    # a model without markers is read whole
    tm, plain = families["none"]
    free = plain.generate(prompt_tokens(tm, "none"), max_tokens=8, seed=1).result
    assert ev.result_answer_region(free, ev.model_end_marker(plain) or ev.DEFAULT_THINK_END) == free.text


def test_the_state_is_per_prompt_in_a_batch(families):
    tm, model = families["qwen3"]
    prompts = [prompt_tokens(tm, "qwen3", enable_thinking=False), prompt_tokens(tm, "qwen3", enable_thinking=True)]
    results = model.generate_batch(prompts, n=2, config=LEDConfig(d=D, exploit=False), max_tokens=12, seed=3)
    assert [[r.starts_in_reasoning for r in samples] for samples in results] == [[False, False], [True, True]]
    assert all(r.explored_steps == 0 for r in results[0])
    assert all(r.explored_steps == r.reasoning_tokens + eos_inside(r) and r.reasoning_tokens > 0 for r in results[1])
