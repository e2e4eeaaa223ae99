"""The evaluation layer: pass@k, answers, datasets, config specs, runs and resume.

Everything here runs without a model: the run tests use a fake object with a
``generate_batch`` method that records its calls.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
from types import SimpleNamespace

import pytest

from led_cpp import evaluation as ev
from led_cpp.cli_eval import register_eval_commands

# --------------------------------------------------------------------------- pass@k


@pytest.mark.parametrize(
    "c,k,expected",
    [
        (0, 1, 0.0),
        (0, 4, 0.0),
        (0, 16, 0.0),
        (1, 1, 1 / 16),
        (1, 4, 4 / 16),
        (1, 16, 1.0),  # C(15,4)/C(16,4) = 12/16
        (15, 1, 15 / 16),
        (15, 4, 1.0),
        (15, 16, 1.0),  # C(1,4) = 0
        (16, 1, 1.0),
        (16, 4, 1.0),
        (16, 16, 1.0),
        (8, 4, 1 - 70 / 1820),  # C(8,4)/C(16,4)
    ],
)
def test_pass_at_k_hand_computed(c, k, expected):
    assert ev.pass_at_k(16, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_mean_and_bounds():
    assert ev.mean_pass_at_k([0, 1, 16], 16, 1) == pytest.approx((0 + 1 / 16 + 1) / 3)
    assert ev.mean_pass_at_k([0, 1, 16], 16, 16) == pytest.approx(2 / 3)
    for bad in [(16, 17, 1), (16, -1, 1), (16, 3, 0), (16, 3, 17)]:
        with pytest.raises(ValueError):
            ev.pass_at_k(*bad)


# --------------------------------------------------------------------------- prompts


def test_prompts_follow_the_authors_protocol():
    msgs = ev.build_prompt("What is 2+3?", chat=True)
    assert msgs == [
        {
            "role": "user",
            "content": "Please reason step by step, and put your final answer within \\boxed{}.\nWhat is 2+3?",
        }
    ]
    plain = ev.build_prompt("What is 2+3?", chat=False)
    assert plain == msgs[0]["content"] + "\nAnswer:"
    assert ev.uses_chat_template(SimpleNamespace(chat_template="{{ x }}"))
    assert not ev.uses_chat_template(SimpleNamespace(chat_template=None))
    assert not ev.uses_chat_template(object())


# --------------------------------------------------------------------------- answers

EXTRACTION = [
    # (completion, number_fallback, extracted)
    ("<think>2+3=5</think>\nThe answer is \\boxed{5}.", False, "5"),
    ("<think>ok</think> So $x = \\boxed{\\frac{1}{2}}$", False, "\\frac{1}{2}"),
    ("<think>try \\boxed{4}</think> first \\boxed{6} then corrected \\boxed{7}", False, "7"),
    ("<think>the answer is \\boxed{9}</think>\nI am not sure.", False, None),
    ("<think>the answer is \\boxed{9}</think>\nIt costs $1,250 in total.", True, "1250"),
    ("Wait, let me recompute: 3 * 4 = 12, so \\boxed{12} ... hmm, maybe \\boxed{1", False, "12"),
    ("We need 17 more, so maybe 18 or", False, None),
    ("We need 17 more, so maybe 18 or", True, "18"),
    ("<think>long reasoning without end, 41 then 42", True, "42"),
    ("Nested: \\boxed{\\frac{\\sqrt{3}}{2}} done", False, "\\frac{\\sqrt{3}}{2}"),
    ("Set: \\boxed{\\{1, 2\\}}", False, "\\{1, 2\\}"),
    ("\\fbox{x^2+1} is it", False, "x^2+1"),
    ("so the final answer is \\boxed 5$.", False, "5"),
    ("within \\boxed{} as asked: \\boxed{  -3 }", False, "-3"),
    ("only an empty \\boxed{} here", False, None),
    (
        "no think marker, answer \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}",
        False,
        "\\left( 3, \\frac{\\pi}{2} \\right)",
    ),
]


@pytest.mark.parametrize("text,fallback,expected", EXTRACTION)
def test_extract_answer(text, fallback, expected):
    assert ev.extract_answer(text, number_fallback=fallback) == expected


def test_answer_region_uses_first_marker_and_custom_markers():
    assert ev.answer_region("a</think>b</think>c") == "b</think>c"
    assert ev.answer_region("no marker") == "no marker"
    assert ev.extract_answer("\\boxed{1}<|end_think|>\\boxed{2}", think_end="<|end_think|>") == "2"
    assert ev.extract_answer("\\boxed{1}<|end_think|>", think_end="<|end_think|>") is None
    assert ev.last_number("x = -5, then 3-4 and 7.5.") == "7.5"
    assert ev.last_number("pay $1,000.50 or 2,125") == "2125"
    assert ev.last_number("3-4") == "4"
    assert ev.last_number("it is -7") == "-7"


@pytest.fixture(scope="module")
def checker():
    with ev.AnswerChecker(timeout=20) as c:
        yield c


CHECKS = [
    # (prediction, gold, correct)
    ("18", "18", True),
    ("18.0", "18", True),
    ("2125", "2,125", True),
    ("2,125", "2,125", True),
    ("\\$18", "18", True),
    ("17", "18", False),
    ("\\frac{1}{2}", "0.5", True),
    ("0.5", "\\frac{1}{2}", True),
    ("\\dfrac{14}{3}", "\\frac{14}{3}", True),
    ("\\frac{14}{3}", "\\frac{13}{3}", False),
    ("\\sqrt{2}", "\\sqrt{2}", True),
    ("2^{1/2}", "\\sqrt{2}", True),
    ("\\sqrt{3}", "\\sqrt{2}", False),
    ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("(3, \\pi)", "\\left( 3, \\frac{\\pi}{2} \\right)", False),
    ("Evelyn", "\\text{Evelyn}", True),
    ("90", "90^\\circ", True),
    ("p-q", "p - q", True),
    ("q-p", "p - q", False),
    ("x=3", "3", True),
    (None, "3", False),
]


@pytest.mark.parametrize("pred,gold,correct", CHECKS)
def test_check_answer(checker, pred, gold, correct):
    assert checker.check(pred, gold) == (correct, None)


def test_realistic_completions_end_to_end(checker):
    gold = "\\frac{1}{2}"
    right = "<think>Half of one is 0.5.</think>\nThe probability is $\\boxed{0.5}$."
    wrong_inside = "<think>\\boxed{0.5}</think>\nSo the answer is \\boxed{\\frac{1}{3}}."
    unfinished = "<think>Let me compute the probability: it is \\boxed{\\tfrac12} probably, but"
    assert checker.is_correct(ev.extract_answer(right), gold)
    assert not checker.is_correct(ev.extract_answer(wrong_inside), gold)
    assert checker.is_correct(ev.extract_answer(unfinished), gold)
    gsm = "<think>16-3-4=9, 9*2=18</think>\nShe makes 18 dollars."
    assert checker.is_correct(ev.extract_answer(gsm, number_fallback=True), "18")
    assert not checker.is_correct(ev.extract_answer(gsm), "18")


def test_checker_timeout_kills_and_restarts_the_helper():
    with ev.AnswerChecker(timeout=1e-6) as c:
        assert c.check("\\frac{1}{2}", "0.5") == (False, "timeout")
        assert c._proc is None
        assert c.check("\\frac{1}{2}", "0.5") == (False, "timeout")  # remembered
        c.timeout = 20
        assert c.check("\\frac{1}{4}", "0.25") == (True, None)  # a new helper


# --------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("name,size", [("gsm8k", 1319), ("math500", 500), ("aime2024", 30), ("aime2025", 30)])
def test_bundled_datasets_load(name, size):
    problems = ev.load_dataset(name)
    assert len(problems) == size
    assert [p.index for p in problems] == list(range(size))
    assert problems[7].id == f"{name}-7" and problems[7].dataset == name
    assert all(p.question.strip() and p.answer for p in problems)


def test_bundled_dataset_contents():
    gsm = ev.load_dataset("gsm8k")
    assert gsm[0].question.startswith("Janet’s ducks lay 16 eggs")
    assert gsm[0].answer == "18"
    assert any("," in p.answer for p in gsm)  # commas in gold answers are normalised
    assert all(ev.as_number(p.answer) is not None for p in gsm)
    assert ev.load_dataset("math500")[2].answer == "\\frac{14}{3}"
    assert ev.load_dataset("aime2024")[0].answer == "73"
    assert ev.load_dataset("aime2025")[0].answer == "70"


def test_dataset_from_file_and_errors(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text(
        json.dumps(
            [
                {"prompt": [{"from": "user", "value": "What is 1+1?"}], "final_answer": "2"},
                {"prompt": [{"from": "user", "value": "What is 2+2?"}], "final_answer": 4},
            ]
        )
    )
    problems = ev.load_dataset(str(path))
    assert [(p.id, p.question, p.answer) for p in problems] == [
        ("mini-0", "What is 1+1?", "2"),
        ("mini-1", "What is 2+2?", "4"),
    ]
    with pytest.raises(FileNotFoundError, match="gsm8k"):
        ev.load_dataset(str(tmp_path / "missing.json"))
    path.write_text(json.dumps([{"prompt": [], "final_answer": "2"}]))
    with pytest.raises(ValueError, match="problem 0"):
        ev.load_dataset(str(path))


# --------------------------------------------------------------------------- config specs


def test_config_spec_parsing():
    p = ev.parse_config_spec
    assert p("standard") == ev.ConfigSpec("standard")
    assert p("greedy", temperature=0.3) == ev.ConfigSpec("greedy")
    assert p("led", temperature=0.3).params == (("temperature", 0.3),)
    assert p("led:temperature=1.0", temperature=0.3).params == (("temperature", 1.0),)
    spec = p("led:k=16:d=4:ln=on:exploit=false")
    assert dict(spec.params) == {"d": 4, "k": 16, "ln": True, "exploit": False}
    assert spec.label == "led:d=4:k=16:ln=1:exploit=0"
    assert p(spec.label) == spec
    short = p("led:depth_rule=fixed:3")
    assert short == p("led:depth_rule=fixed:fixed_depth=3")
    assert dict(short.params) == {"depth_rule": "fixed", "fixed_depth": 3}
    assert short.dirname == "led_depth_rule=fixed_fixed_depth=3"
    assert dict(p("LED:depth-rule=random").params) == {"depth_rule": "random"}
    assert dict(p("standard:top_k=40:top_p=0.9").params) == {"top_k": 40, "top_p": 0.9}


@pytest.mark.parametrize(
    "bad,message",
    [
        ("beam", "unknown config"),
        ("led:d", "key=value"),
        ("led:q=3", "no parameter"),
        ("led:d=x", "bad value"),
        ("led:d=2:d=3", "twice"),
        ("led:ln=maybe", "bad value"),
        ("led:depth_rule=fixed", "needs a depth"),
        ("greedy:temperature=1", "no parameter"),
        ("standard:d=4", "no parameter"),
    ],
)
def test_config_spec_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        ev.parse_config_spec(bad)


def test_config_spec_builds_led_cpp_configs():
    led_cpp = pytest.importorskip("led_cpp")
    if not hasattr(led_cpp, "LEDConfig"):
        pytest.skip("led_cpp extension not built")
    assert ev.parse_config_spec("greedy").build().temperature == 0
    std = ev.parse_config_spec("standard").build()
    assert (std.temperature, std.top_k, std.top_p, std.min_p) == (0.6, 20, 0.95, 0.0)
    led = ev.parse_config_spec("led:depth_rule=fixed:3:d=4").build()
    assert (led.depth_rule, led.fixed_depth, led.d, led.k) == ("fixed", 3, 4, 8)


# --------------------------------------------------------------------------- runs


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    temperature: float = 0.6


class FakeModel:
    """Answers "What is a+b?" right or wrong depending on (seed, prompt, sample)."""

    chat_template = None
    path = "/models/fake-1.gguf"

    def __init__(self, fail_on_call: int | None = None):
        self.calls: list[dict] = []
        self.fail_on_call = fail_on_call

    def generate_batch(self, prompts, *, n=1, config=None, max_tokens=256, seed=None, progress=False, **kw):
        if self.fail_on_call is not None and len(self.calls) + 1 == self.fail_on_call:
            raise KeyboardInterrupt  # the user stops the run
        self.calls.append({"prompts": list(prompts), "n": n, "seed": seed})
        out = []
        for i, prompt in enumerate(prompts):
            a, b = map(int, re.search(r"What is (\d+)\+(\d+)\?", prompt).groups())
            row = []
            for s in range(n):
                rng = random.Random(f"{seed}:{i}:{s}")
                answer = a + b if rng.random() < 0.5 else a + b + 1
                length = rng.randint(5, 50)
                text = f"<think>{a}+{b} is easy</think>\nThe answer is \\boxed{{{answer}}}."
                if rng.random() < 0.2:
                    text, reason = "<think>still thinking", "length"
                else:
                    reason = "eos"
                row.append(
                    SimpleNamespace(
                        tokens=list(range(length)),
                        text=text,
                        finish_reason=reason,
                        logprobs=[0.0] * length,
                        explored_steps=rng.randint(0, length),
                        reasoning_tokens=length - 2,
                        trace=None,
                        timings=SimpleNamespace(prompt_tokens=len(prompt.split())),
                    )
                )
            out.append(row)
        return out


PROBLEMS = [ev.Problem(f"add-{i}", i, f"What is {i}+{2 * i}?", str(3 * i), "add") for i in range(6)]


def _run(model, out, config=FakeConfig(), **kw):
    args = dict(n=4, limit=5, max_tokens=64, seed=7, out_dir=out, progress=False) | kw
    return ev.evaluate(model, PROBLEMS, config, **args)


def _timeless(recs):
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in recs]


def _lines(out):
    return _timeless(json.loads(line) for line in (out / ev.SAMPLES_FILE).read_text().splitlines())


def _by_key(recs):
    return {(r["problem_index"], r["sample"]): r for r in recs}


def test_run_writes_records_and_summary(tmp_path):
    model = FakeModel()
    summary = _run(model, tmp_path)
    assert [c["seed"] for c in model.calls] == [ev.problem_seed(7, i) for i in range(5)]
    assert all(c["n"] == 4 and len(c["prompts"]) == 1 for c in model.calls)
    assert model.calls[0]["prompts"][0] == ev.build_prompt("What is 0+0?", chat=False)
    recs = _lines(tmp_path)
    assert len(recs) == 20
    r = recs[0]
    assert set(r) >= {
        "problem_id",
        "problem_index",
        "sample",
        "text",
        "answer",
        "gold",
        "correct",
        "generated_tokens",
        "reasoning_tokens",
        "finished",
        "explore_rate",
        "finish_reason",
    }
    for r in recs:
        assert r["finished"] == (r["finish_reason"] != "length")
        decided = r["generated_tokens"] + (r["finish_reason"] == "eos")
        assert r["explore_rate"] == pytest.approx(r["explored_steps"] / decided)
        gold = int(r["gold"])
        assert r["correct"] == (r["answer"] == str(gold))
        assert r["answer"] in (None, str(gold), str(gold + 1))
    counts = [sum(r["correct"] for r in recs if r["problem_index"] == i) for i in range(5)]
    assert summary.correct_counts == counts
    assert summary.pass_at_1 == pytest.approx(sum(counts) / 20)
    assert set(summary.pass_at_k) == {1, 2, 3, 4}
    assert summary.pass_at_k[4] == pytest.approx(sum(c > 0 for c in counts) / 5)
    assert summary.pass_at_k[2] == pytest.approx(sum(ev.pass_at_k(4, c, 2) for c in counts) / 5)
    assert summary.mean_tokens == pytest.approx(sum(r["generated_tokens"] for r in recs) / 20)
    assert summary.mean_explore_rate == pytest.approx(sum(r["explore_rate"] for r in recs) / 20)
    assert (summary.model, summary.dataset, summary.n, summary.limit) == ("fake-1.gguf", "add", 4, 5)
    saved = json.loads((tmp_path / ev.SUMMARY_FILE).read_text())
    assert saved["pass@1"] == summary.pass_at_1
    assert saved["pass@k"]["4"] == summary.pass_at_k[4]
    assert saved["config_params"] == {"type": "FakeConfig", "temperature": 0.6}
    assert "config" in saved and "tokens_per_second" in saved
    row = ev.format_table([summary]).splitlines()[2].split()
    assert row[:5] == ["standard", "5", "4", f"{100 * summary.pass_at_1:.2f}", f"{100 * summary.pass_at_k[4]:.2f}"]


def test_resume_never_redoes_a_finished_problem(tmp_path):
    full = _run(FakeModel(), tmp_path / "full")
    model = FakeModel()
    _run(model, tmp_path / "part", limit=2)
    assert len(model.calls) == 2
    model.calls.clear()
    resumed = _run(model, tmp_path / "part", limit=5)
    assert [c["seed"] for c in model.calls] == [ev.problem_seed(7, i) for i in (2, 3, 4)]
    assert _by_key(_lines(tmp_path / "part")) == _by_key(_lines(tmp_path / "full"))
    assert resumed.pass_at_k == full.pass_at_k
    assert resumed.correct_counts == full.correct_counts
    model.calls.clear()
    again = _run(model, tmp_path / "part", limit=5)
    assert model.calls == []
    assert again.pass_at_k == full.pass_at_k
    assert _run(model, tmp_path / "part", limit=3).num_problems == 3 and model.calls == []


def test_interrupted_and_partially_written_problem_is_regenerated(tmp_path):
    full = _run(FakeModel(), tmp_path / "full")
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _run(FakeModel(fail_on_call=3), out)
    assert {r["problem_index"] for r in _lines(out)} == {0, 1}
    stale = [dict(r, problem_index=2, problem_id="add-2", correct=True, answer="999") for r in _lines(out)[:2]]
    with open(out / ev.SAMPLES_FILE, "a") as f:  # a crash mid-write of problem 2
        f.writelines(json.dumps(dict(r, wall_seconds=0.0)) + "\n" for r in stale)
        f.write('{"problem_index": 2, "sample": 2, "te')
    model = FakeModel()
    resumed = _run(model, out)
    assert [c["seed"] for c in model.calls] == [ev.problem_seed(7, i) for i in (2, 3, 4)]
    assert resumed.correct_counts == full.correct_counts
    assert resumed.pass_at_k == full.pass_at_k
    text = (out / ev.SAMPLES_FILE).read_text()
    assert text.endswith("\n")
    assert len([json.loads(line) for line in text.splitlines()]) == 2 * 4 + 2 + 3 * 4
    records = ev.load_records(out / ev.SAMPLES_FILE, 4)
    full_records = ev.load_records(tmp_path / "full" / ev.SAMPLES_FILE, 4)
    assert sorted(records) == [0, 1, 2, 3, 4]
    assert all(_timeless(records[i]) == _timeless(full_records[i]) for i in range(5))


@pytest.mark.parametrize(
    "change",
    [
        {"n": 3},
        {"seed": 8},
        {"max_tokens": 65},
        {"config": FakeConfig(temperature=0.7)},
        {"model_name": "other.gguf"},
        {"think_end": "<|end|>"},
    ],
)
def test_a_different_run_in_out_dir_is_refused(tmp_path, change):
    _run(FakeModel(), tmp_path, limit=1)
    model = FakeModel()
    with pytest.raises(ev.RunMismatchError, match="different run"):
        _run(model, tmp_path, limit=1, **change)
    assert model.calls == []


def test_a_different_dataset_in_out_dir_is_refused(tmp_path):
    _run(FakeModel(), tmp_path, limit=1)
    other = [dataclasses.replace(p, answer="0") for p in PROBLEMS]
    with pytest.raises(ev.RunMismatchError, match="dataset_digest"):
        ev.evaluate(
            FakeModel(), other, FakeConfig(), n=4, limit=1, max_tokens=64, seed=7, out_dir=tmp_path, progress=False
        )


def test_greedy_configs_batch_several_problems(tmp_path):
    model = FakeModel()
    summary = _run(model, tmp_path, n=1, limit=6, config=FakeConfig(temperature=0.0))
    assert [len(c["prompts"]) for c in model.calls] == [6]
    assert summary.num_samples == 6
    model2 = FakeModel()
    _run(model2, tmp_path / "b", n=8, limit=6, config=FakeConfig(temperature=0.0))
    assert [len(c["prompts"]) for c in model2.calls] == [2, 2, 2]


def test_compare_runs_each_config_on_the_same_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(
        ev.ConfigSpec, "build", lambda self: FakeConfig(**{k: v for k, v in self.params if k == "temperature"})
    )
    model = FakeModel()
    summaries = ev.compare(
        model,
        PROBLEMS,
        ["standard", "led:temperature=0.9"],
        n=2,
        limit=3,
        max_tokens=64,
        seed=1,
        out_dir=tmp_path,
        progress=False,
    )
    assert [s.config for s in summaries] == ["standard", "led:temperature=0.9"]
    seeds = [c["seed"] for c in model.calls]
    assert seeds[:3] == seeds[3:] == [ev.problem_seed(1, i) for i in range(3)]
    assert (tmp_path / "standard" / ev.SUMMARY_FILE).exists()
    assert (tmp_path / "led_temperature=0.9" / ev.SAMPLES_FILE).exists()
    assert len(json.loads((tmp_path / "compare.json").read_text())) == 2
    table = ev.format_table(summaries)
    assert "pass@2" in table and "led:temperature=0.9" in table
    with pytest.raises(ValueError, match="twice"):
        ev.compare(model, PROBLEMS, ["led", "led"], n=2, out_dir=tmp_path / "x", progress=False)


def test_problem_seed_is_stable():
    assert ev.problem_seed(0, 0) == ev.problem_seed(0, 0)
    assert len({ev.problem_seed(s, i) for s in range(3) for i in range(100)}) == 300
    assert all(0 <= ev.problem_seed(s, 5) < 2**31 for s in range(10))


# --------------------------------------------------------------------------- CLI


def _parser():
    parser = argparse.ArgumentParser(prog="led-cpp")
    register_eval_commands(parser.add_subparsers(dest="command"))
    return parser


def test_cli_parses_eval_and_compare():
    args = _parser().parse_args(
        [
            "eval",
            "-m",
            "m.gguf",
            "--dataset",
            "gsm8k",
            "--config",
            "led",
            "--n",
            "4",
            "--limit",
            "10",
            "--d",
            "4",
            "--no-exploit",
            "--ln",
            "--depth-rule",
            "fixed",
            "--fixed-depth",
            "2",
            "--out",
            "o",
        ]
    )
    assert (args.d, args.exploit, args.ln, args.think_only) == (4, False, True, None)
    assert args.func.__name__ == "run_eval_command"
    args = _parser().parse_args(
        [
            "compare",
            "-m",
            "m.gguf",
            "--dataset",
            "aime2024",
            "--configs",
            "standard,led:depth_rule=fixed:3",
            "--out",
            "o",
        ]
    )
    assert args.func.__name__ == "run_compare_command"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--config", "standard", "--d", "4"], "need --config led"),
        (["--config", "led:d=4", "--d", "4"], "both"),
        (["--config", "led", "--depth-rule", "fixed"], "fixed-depth"),
        (["--config", "bogus"], "unknown config"),
    ],
)
def test_cli_rejects_bad_configs_before_loading_a_model(argv, message, capsys):
    args = _parser().parse_args(["eval", "-m", "missing.gguf", "--dataset", "gsm8k", "--out", "o"] + argv)
    assert args.func(args) == 2
    assert message in capsys.readouterr().err


def test_cli_eval_runs_resumes_and_refuses_with_a_fake_model(tmp_path, monkeypatch, capsys):
    import led_cpp.cli_eval as cli

    data = tmp_path / "add.json"
    data.write_text(
        json.dumps([{"prompt": [{"from": "user", "value": p.question}], "final_answer": p.answer} for p in PROBLEMS])
    )
    loaded = []
    monkeypatch.setattr(
        ev.ConfigSpec, "build", lambda self: FakeConfig(**{k: v for k, v in self.params if k == "temperature"})
    )
    monkeypatch.setattr(cli, "load_model", lambda args: loaded.append(args) or FakeModel())
    base = [
        "eval",
        "-m",
        "/x/fake-1.gguf",
        "--dataset",
        str(data),
        "--out",
        str(tmp_path / "out"),
        "--limit",
        "3",
        "--n",
        "2",
        "--no-progress",
    ]

    def main(argv):
        args = _parser().parse_args(argv)
        return args.func(args)

    assert main(base + ["--config", "standard"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].split()[:3] == ["standard", "3", "2"]
    summary = json.loads((tmp_path / "out" / ev.SUMMARY_FILE).read_text())
    assert (summary["dataset"], summary["model"], summary["n"]) == ("add", "fake-1.gguf", 2)
    assert main(base + ["--config", "standard"]) == 0  # resumed: nothing left to do
    assert main(base + ["--config", "standard", "--temperature", "0.9"]) == 2
    assert "different run" in capsys.readouterr().err
    assert len(loaded) == 2  # the refused run never loaded the model
    cmp = [
        "compare",
        "-m",
        "/x/fake-1.gguf",
        "--dataset",
        str(data),
        "--out",
        str(tmp_path / "cmp"),
        "--limit",
        "2",
        "--n",
        "2",
        "--no-progress",
    ]
    assert main(cmp + ["--configs", "standard,led:temperature=0.9"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:4]
    assert [r.split()[0] for r in rows] == ["standard", "led:temperature=0.9"]
    assert main(cmp + ["--configs", "led,led"]) == 2
    assert "twice" in capsys.readouterr().err


class ScriptedModel:
    """Returns fixed completions, one list per prompt (its n samples in order)."""

    chat_template = None
    path = "/models/scripted.gguf"

    def __init__(self, texts):
        self.texts = texts

    def generate_batch(self, prompts, *, n=1, config=None, max_tokens=256, seed=None, progress=False, **kw):
        out = []
        for prompt in prompts:
            question = prompt.split("\n")[1]
            out.append(
                [
                    SimpleNamespace(
                        tokens=[1, 2],
                        text=text,
                        finish_reason="eos",
                        logprobs=[0.0, 0.0],
                        explored_steps=0,
                        reasoning_tokens=0,
                        trace=None,
                        timings=SimpleNamespace(prompt_tokens=3),
                    )
                    for text in self.texts[question]
                ]
            )
        return out


# Gold 18 and 7. Per sample: (text, strict correct, flexible correct).
SCORED = {
    "Q one?": [
        ("so \\boxed{18}", True, True),
        ("Janet sells 16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars", False, True),
        ("\\boxed{17}, not 18", False, False),  # a box exists: no fallback
        ("she has 3 eggs", False, False),
    ],
    "Q two?": [
        ("the answer is 7", False, True),
        ("nothing here", False, False),
        ("\\boxed{7}", True, True),
        ("\\boxed{7} and then 9", True, True),
    ],
}


@pytest.mark.parametrize("dataset", ["gsm8k", "math500"])
def test_strict_and_flexible_scores_are_kept_apart(tmp_path, dataset):
    problems = [ev.Problem("a", 0, "Q one?", "18", dataset), ev.Problem("b", 1, "Q two?", "7", dataset)]
    model = ScriptedModel({q: [t for t, _, _ in rows] for q, rows in SCORED.items()})
    summary = ev.evaluate(model, problems, FakeConfig(), n=4, max_tokens=8, seed=0, out_dir=tmp_path, progress=False)
    recs = _lines(tmp_path)
    fallback = dataset == "gsm8k"
    expected = [(strict, flexible if fallback else strict) for rows in SCORED.values() for _, strict, flexible in rows]
    assert [(r["correct"], r["flexible_correct"]) for r in recs] == expected
    assert recs[1]["answer"] is None
    assert recs[1]["flexible_answer"] == ("18" if fallback else None)
    assert recs[2]["answer"] == recs[2]["flexible_answer"] == "17"
    assert summary.correct_counts == [1, 2]
    assert summary.flexible_correct_counts == ([2, 3] if fallback else [1, 2])
    assert summary.pass_at_1 == pytest.approx(3 / 8)
    assert summary.flexible_pass_at_1 == pytest.approx(5 / 8 if fallback else 3 / 8)
    assert summary.pass_at_k[4] == summary.flexible_pass_at_k[4] == 1.0
    saved = json.loads((tmp_path / ev.SUMMARY_FILE).read_text())
    assert saved["pass@1"] == summary.pass_at_1
    assert saved["flexible_pass@1"] == summary.flexible_pass_at_1
    assert saved["flexible_pass@k"]["2"] == pytest.approx(
        sum(ev.pass_at_k(4, c, 2) for c in summary.flexible_correct_counts) / 2
    )
    header, _, row = ev.format_table([summary]).splitlines()
    assert header.split()[3:9] == ["pass@1", "%", "pass@4", "%", "flex", "pass@1"]
    assert row.split()[3:7] == ["37.50", "100.00", f"{100 * summary.flexible_pass_at_1:.2f}", "100.00"]
