"""The chat-template environment, template arguments through generate/batch/stream/CLI/eval, and bad
templates or arguments: a ValueError naming the problem, never a hang."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest

import led_cpp
from led_cpp import chat
from led_cpp.cli import main as cli_main
from tests.support.tiny_models import write_tiny_model

USER = [{"role": "user", "content": "hi"}]

# Writes a visible marker when thinking is switched off, refuses reasoning_effort="forbidden".
THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if reasoning_effort is defined and reasoning_effort == 'forbidden' %}"
    "{{ raise_exception('reasoning_effort forbidden is refused') }}{% endif %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def render(template: str, messages=USER, **kwargs) -> str:
    return led_cpp.render_chat_template(template, messages, **kwargs)


# --------------------------------------------------------------------------- the environment
def test_transformers_tojson_does_not_escape_html_and_takes_options():
    value = {"b": "<a & 'é'>", "a": [1, 2]}
    assert render("{{ x|tojson }}", x=value) == json.dumps(value, ensure_ascii=False)
    assert render("{{ x|tojson(indent=2, sort_keys=true) }}", x=value) == json.dumps(
        value, ensure_ascii=False, indent=2, sort_keys=True
    )
    assert render("{{ x|tojson(ensure_ascii=true) }}", x="é") == '"\\u00e9"'


def test_loop_controls_and_generation_tag():
    messages = [{"role": "user", "content": str(i)} for i in range(5)]
    template = (
        "{% for m in messages %}{% if loop.index0 == 1 %}{% continue %}{% endif %}"
        "{% if loop.index0 == 3 %}{% break %}{% endif %}{% generation %}[{{ m.content }}]{% endgeneration %}"
        "{% endfor %}"
    )
    assert render(template, messages) == "[0][2]"


def test_strftime_now_reads_the_clock_or_a_fixed_time():
    assert chat.render("{{ strftime_now('%d %b %Y') }}", USER, now=datetime(2024, 2, 29)) == "29 Feb 2024"
    assert render("{{ strftime_now('%Y') }}") == str(datetime.now().year)


def test_variables_as_transformers_passes_them():
    template = (
        "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ tools }}|{{ documents }}|"
        "{{ enable_thinking }}|{{ messages[0].thinking }}|{{ messages[0].reasoning_content }}"
    )
    messages = [{"role": "assistant", "content": "a", "reasoning": "r", "tool_calls": None}]
    assert (
        render(template, messages, bos_token="<s>", eos_token="</s>", enable_thinking=False)
        == "<s>|</s>|True|None|None|False|r|r"
    )
    assert render("{{ add_generation_prompt }}", add_generation_prompt=False) == "False"
    # template arguments win over the special tokens, as in transformers
    assert chat.render("{{ bos_token }}", USER, bos_token="<s>", template_kwargs={"bos_token": "<B>"}) == "<B>"


def test_tool_calls_and_content_parts():
    template = (
        "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}"
        "{% for p in m.content %}{{ p.text }};{% endfor %}{% endif %}"
        "{% for c in m.tool_calls or [] %}{{ c.function.name }}{{ c.function.arguments|tojson }}{% endfor %}"
        "{% endfor %}{% for t in tools %}{{ t.function.name }}{% endfor %}"
    )
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]},
    ]
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert render(template, messages, tools=tools) == 'a;b;f{"x": 1}f'


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(ValueError, match="refused|failed"):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(ValueError, match="underscore"):
        render("{% set ns = namespace(_x=1) %}")


# --------------------------------------------------------------------------- bad templates
def test_template_that_raises_is_a_value_error():
    with pytest.raises(ValueError, match="refused the messages: only user turns"):
        render("{{ raise_exception('only user turns') }}")


def test_template_with_bad_syntax_is_a_value_error():
    with pytest.raises(ValueError, match="not valid Jinja"):
        render("{% for m in messages %}")
    with pytest.raises(ValueError, match="non-empty str"):
        render("   ")


@pytest.fixture
def short_deadline(monkeypatch):
    monkeypatch.setattr(chat, "RENDER_TIMEOUT_S", 2.0)


LOOPING = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def test_template_that_loops_is_stopped(short_deadline):
    with pytest.raises(ValueError, match="did not finish rendering within 2 s"):
        render(LOOPING)
    assert render("{{ messages[0].content }}") == "hi"  # a fresh worker serves the next render


def test_template_that_loops_is_stopped_from_another_thread(short_deadline):
    errors = []

    def work():
        try:
            render(LOOPING)
        except ValueError as error:
            errors.append(str(error))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert len(errors) == 1 and "did not finish rendering" in errors[0]


def test_template_that_renders_megabytes_is_refused():
    with pytest.raises(ValueError, match="rendered too much text"):
        render("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}")


def test_template_that_exhausts_memory_is_refused(short_deadline):
    with pytest.raises(ValueError, match="memory|within"):
        render("{{ ('x' * 100000000) * 1000 }}")


def test_template_renders_in_parallel_threads():
    outputs = [None] * 4

    def work(index):
        outputs[index] = render("{{ messages[0].content }}{{ n }}", n=index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outputs == ["hi0", "hi1", "hi2", "hi3"]


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ([("enable_thinking", False)], "must be a dict"),
        ("enable_thinking=false", "must be a dict"),
        ({1: True}, "names must be identifiers"),
        ({"enable thinking": True}, "names must be identifiers"),
        ({"messages": []}, "'messages'"),
        ({"add_generation_prompt": False}, "'add_generation_prompt'"),
        ({"x": object()}, "only JSON values"),
        ({"x": b"bytes"}, "only JSON values"),
        ({"x": float("nan")}, "JSON cannot hold"),
        ({"x": {1: 2}}, "keys must be str"),
        ({"x": {"y": [1, {2}]}}, "['x']['y'][1] is a set"),
        ({"tools": {"name": "f"}}, "'tools'] must be a list of dicts"),
        ({"documents": ["text"]}, "'documents'] must be a list of dicts"),
    ],
    ids=str,
)
def test_template_kwargs_that_are_not_a_dict_of_json_values(kwargs, needle):
    with pytest.raises(ValueError) as info:
        chat.render("{{ 1 }}", USER, template_kwargs=kwargs)
    assert needle in str(info.value)


@pytest.fixture(scope="module")
def thinking_model(tmp_path_factory) -> led_cpp.Model:
    path = write_tiny_model(
        tmp_path_factory.mktemp("thinking") / "thinking.gguf", "llama", chat_template=THINKING_TEMPLATE
    ).path
    return led_cpp.Model(path, n_ctx=256, n_threads=1)


def test_generate_rejects_bad_template_kwargs(thinking_model):
    with pytest.raises(ValueError, match="must be a dict"):
        thinking_model.generate(USER, max_tokens=1, chat_template_kwargs=["enable_thinking"])
    with pytest.raises(ValueError, match="only JSON values"):
        thinking_model.generate_batch([USER], max_tokens=1, chat_template_kwargs={"x": object()})
    with pytest.raises(ValueError, match="apply to chat-message prompts"):
        thinking_model.stream_batch(["plain text"], max_tokens=1, chat_template_kwargs={"enable_thinking": False})
    with pytest.raises(ValueError, match="reasoning_effort forbidden is refused"):
        thinking_model.generate(USER, max_tokens=1, chat_template_kwargs={"reasoning_effort": "forbidden"})


# --------------------------------------------------------------------------- arguments reach the template
def test_template_kwargs_reach_every_generation_call(thinking_model):
    off = {"enable_thinking": False}
    thinking = thinking_model.apply_chat_template(USER)
    not_thinking = thinking_model.apply_chat_template(USER, **off)
    assert not_thinking == thinking + "<think>\n\n</think>\n\n"
    n_on, n_off = len(thinking_model.prompt_tokens(USER)), len(thinking_model.prompt_tokens(USER, off))
    assert n_off > n_on
    generation = thinking_model.generate(USER, max_tokens=2, seed=1, chat_template_kwargs=off)
    assert generation.result.timings.prompt_tokens == n_off
    assert thinking_model.generate(USER, max_tokens=2, seed=1).result.timings.prompt_tokens == n_on
    results = thinking_model.generate_batch([USER, USER], max_tokens=2, seed=1, chat_template_kwargs=off)
    assert [r[0].timings.prompt_tokens for r in results] == [n_off, n_off]
    with thinking_model.stream_batch([USER], max_tokens=2, seed=1, chat_template_kwargs=off) as stream:
        for _ in stream:
            pass
        assert stream.results[0][0].timings.prompt_tokens == n_off
    # the same tokens as when the rendered prompt is given as token ids
    by_ids = thinking_model.generate(thinking_model.prompt_tokens(USER, off), max_tokens=2, seed=1).result
    assert generation.result.tokens == by_ids.tokens


# --------------------------------------------------------------------------- the command line
@pytest.mark.parametrize(
    "argument, needle",
    [
        ("{enable_thinking: false}", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"x": NaN}', "JSON cannot hold"),
        ('{"messages": 1}', "'messages'"),
    ],
)
def test_cli_rejects_bad_template_kwargs(thinking_model, capsys, argument, needle):
    code = cli_main(
        ["generate", "hi", "-m", str(thinking_model.path), "--max-tokens", "1", "--chat-template-kwargs", argument]
    )
    assert code == 2
    assert needle in capsys.readouterr().err


def test_cli_passes_template_kwargs(thinking_model, capsys):
    code = cli_main(
        [
            "generate",
            "hi",
            "-m",
            str(thinking_model.path),
            "--max-tokens",
            "1",
            "--threads",
            "1",
            "--chat-template-kwargs",
            '{"reasoning_effort": "forbidden"}',
        ]
    )
    assert code == 2 and "reasoning_effort forbidden is refused" in capsys.readouterr().err
    code = cli_main(
        [
            "generate",
            "hi",
            "-m",
            str(thinking_model.path),
            "--max-tokens",
            "1",
            "--threads",
            "1",
            "--no-think",
            "--chat-template-kwargs",
            '{"enable_thinking": true}',
        ]
    )
    assert code == 2 and "--no-think contradicts" in capsys.readouterr().err
    code = cli_main(
        ["generate", "hi", "-m", str(thinking_model.path), "--max-tokens", "1", "--threads", "1", "--no-think", "--raw"]
    )
    assert code == 2 and "--raw" in capsys.readouterr().err
    code = cli_main(
        [
            "generate",
            "hi",
            "-m",
            str(thinking_model.path),
            "--max-tokens",
            "2",
            "--threads",
            "1",
            "--no-think",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    prompt_tokens = len(thinking_model.prompt_tokens(USER, {"enable_thinking": False}))
    assert f"{prompt_tokens} prompt tokens" in capsys.readouterr().err


def test_eval_passes_template_kwargs(thinking_model, dataset_file, tmp_path: Path, capsys):
    data = dataset_file("two.json", [("What is 1 + 1?", "2"), ("What is 2 + 2?", "4")])
    common = [
        "eval",
        "-m",
        str(thinking_model.path),
        "--dataset",
        str(data),
        "--config",
        "greedy",
        "--max-tokens",
        "2",
        "--threads",
        "1",
        "--no-progress",
    ]
    code = cli_main(
        common + ["--out", str(tmp_path / "refused"), "--chat-template-kwargs", '{"reasoning_effort": "forbidden"}']
    )
    assert code == 2 and "reasoning_effort forbidden is refused" in capsys.readouterr().err
    code = cli_main(common + ["--out", str(tmp_path / "bad"), "--chat-template-kwargs", "not json"])
    assert code == 2 and "not valid JSON" in capsys.readouterr().err
    out = tmp_path / "off"
    assert cli_main(common + ["--out", str(out), "--no-think"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["identity"]["chat_template_kwargs"] == {"enable_thinking": False}
    # the same --out with other template arguments is another run, refused
    code = cli_main(common + ["--out", str(out)])
    assert code == 2
