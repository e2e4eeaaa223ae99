"""The README's evaluation and entropy tables are generated from results/ by
tools/make_tables.py, never copied by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from led_cpp import evaluation as ev  # noqa: E402
from tools import make_tables  # noqa: E402


def test_readme_tables_equal_what_the_script_makes_from_results():
    readme = make_tables.README.read_text(encoding="utf-8")
    assert make_tables.render(readme, make_tables.tables()) == readme, "run python tools/make_tables.py --write"


class Scripted:
    """Answers with fixed completions per question, in sample order."""

    chat_template = None
    path = "/models/tiny-Q4_1.gguf"

    def __init__(self, texts):
        self.texts = texts

    def generate_batch(self, prompts, *, n=1, config=None, max_tokens=256, seed=None, progress=False, **kw):
        return [
            [
                SimpleNamespace(
                    tokens=[1] * (3 + s),
                    text=text,
                    finish_reason="eos",
                    logprobs=[],
                    explored_steps=s,
                    reasoning_tokens=0,
                    trace=None,
                    timings=SimpleNamespace(prompt_tokens=3),
                )
                for s, text in enumerate(self.texts[prompt.split("\n")[1]])
            ]
            for prompt in prompts
        ]


def test_evaluation_rows_come_from_the_summaries(tmp_path):
    import led_cpp

    problems = [ev.Problem("a", 0, "Q one?", "18", "gsm8k"), ev.Problem("b", 1, "Q two?", "7", "gsm8k")]
    model = Scripted({"Q one?": ["\\boxed{18}", "so 18"], "Q two?": ["it is 7", "\\boxed{8}"]})
    run = tmp_path / "gsm8k-2x2" / "tiny" / "standard"
    ev.evaluate(model, problems, led_cpp.SamplingConfig(), n=2, max_tokens=8, out_dir=run, progress=False)
    unfinished = tmp_path / "gsm8k-2x2" / "tiny" / "led"
    unfinished.mkdir()
    (unfinished / "meta.json").write_text(
        json.dumps(
            {
                "identity": {
                    "model": "tiny-Q4_1.gguf",
                    "config": {"type": "LEDConfig", "d": 8, "k": 8, "exploit": True, "temperature": 0.6},
                },
                "config_label": "led",
            }
        )
    )
    (unfinished / "samples.jsonl").write_text("{}\n{}\n{}\n")
    rows = make_tables.evaluation_rows(tmp_path)
    # Strict: one box right of four samples; flexible adds "so 18" and "it is 7". Explore rate:
    # per decided step (the EOS step counts), 1 of 5 for the second sample of each problem.
    assert rows[0] == [
        "tiny-Q4_1",
        "LED (d 8, k 8, gate on, T 0.6)",
        "unfinished: 3 samples written",
        "",
        "",
        "",
        "",
        "",
    ]
    assert rows[1] == [
        "tiny-Q4_1",
        "standard (T 0.6, top-k 20, top-p 0.95)",
        "25.00% / 50.00%",
        "75.00% / 100.00%",
        "1 / 3 of 4",
        "2 × 2",
        "3.5",
        "0.100",
    ]


def test_entropy_rows_come_from_the_analysis(tmp_path):
    out = tmp_path / "entropy-gsm8k-2" / "tiny"
    out.mkdir(parents=True)
    means = [0.5, 0.7, 0.2, 0.3]
    (out / "entropy.json").write_text(
        json.dumps(
            {
                "model": "tiny-Q4_1.gguf",
                "num_problems": 2,
                "num_tokens": 40,
                "mean_entropy": means,
                "max_entropy_layer": 1,
                "final_layer_entropy": 0.3,
                "top_layer_change": 0.1,
            }
        )
    )
    assert make_tables.entropy_rows(tmp_path) == [
        ["tiny-Q4_1", "2", "40", "0.500", "0.700 (layer 1)", "0.200 (layer 2)", "0.300 (layer 3)", "+0.100"]
    ]


def test_render_replaces_only_between_markers_and_needs_them():
    readme = (
        "intro\n<!-- results:evaluation:begin -->\nold\n<!-- results:evaluation:end -->\nmiddle\n"
        "<!-- results:entropy:begin --><!-- results:entropy:end -->\nend\n"
    )
    out = make_tables.render(readme, {"evaluation": "| a |", "entropy": "| b |"})
    assert out == (
        "intro\n<!-- results:evaluation:begin -->\n| a |\n<!-- results:evaluation:end -->\nmiddle\n"
        "<!-- results:entropy:begin -->\n| b |\n<!-- results:entropy:end -->\nend\n"
    )
    assert make_tables.render(out, {"evaluation": "| a |", "entropy": "| b |"}) == out
    with pytest.raises(ValueError, match="markers"):
        make_tables.render("no markers", {"evaluation": "", "entropy": ""})
