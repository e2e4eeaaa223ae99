"""A small end-to-end eval on a test model writes the JSONL and the summary, and a resumed
run does not regenerate finished samples.

Runs ``led_cpp.evaluation.evaluate`` (and ``led-cpp eval``) on a tiny random llama model
with a ChatML template (tests/support/tiny_models.py) and a tiny dataset file in the datasets'
JSON shape.  The model is wrapped in a proxy that counts its ``generate_batch`` calls, so
"resumed without regenerating" is checked directly.  The file is named ``gsm8k.json`` so
that the GSM8K last-number fallback extracts answers from the model's byte soup (the
records' extraction and correctness are then checked against the text).
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

pytest.importorskip("gguf")
import led_cpp  # noqa: E402
import led_cpp.cli_eval as cli_eval  # noqa: E402
from led_cpp import evaluation as ev  # noqa: E402
from led_cpp.cli import main as cli_main  # noqa: E402
from tests.support.tiny_models import write_tiny_model  # noqa: E402

QUESTIONS = [("What is 2 + 3?", "5"), ("What is 4 + 4?", "8"), ("What is 9 - 8?", "1"), ("What is 3 * 2?", "6")]
N, SEED, MAX_TOKENS = 3, 4, 16


class CountingModel:
    """A model whose generate_batch calls are recorded (everything else is the model's)."""

    def __init__(self, model):
        self._model = model
        self.calls = []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate_batch(self, prompts, **kwargs):
        self.calls.append({"prompts": list(prompts), **kwargs})
        return self._model.generate_batch(prompts, **kwargs)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-eval.gguf", "llama", seed=3, chat_template=True)


@pytest.fixture(scope="module")
def model(tiny):
    return led_cpp.Model(tiny.path, n_ctx=1024, n_threads=1)


@pytest.fixture(scope="module")
def dataset(dataset_file):
    return dataset_file("gsm8k.json", QUESTIONS)


def _evaluate(model, dataset, out, config="standard", **kw):
    args = dict(n=N, limit=2, max_tokens=MAX_TOKENS, seed=SEED, out_dir=out, progress=False) | kw
    return ev.evaluate(model, dataset, config, **args)


def _lines(out):
    return (out / ev.SAMPLES_FILE).read_text().splitlines()


def _key(rec):
    return rec["problem_index"], rec["sample"]


def test_eval_writes_jsonl_and_summary_and_resumes_without_regenerating(model, dataset, tmp_path, run_records):
    out = tmp_path / "run"
    counting = CountingModel(model)
    summary = _evaluate(counting, dataset, out)

    # One generate_batch call per problem, its n samples together, with the problem's seed.
    assert [c["seed"] for c in counting.calls] == [ev.problem_seed(SEED, i) for i in (0, 1)]
    assert all(c["n"] == N and c["max_tokens"] == MAX_TOKENS for c in counting.calls)
    assert counting.calls[0]["prompts"] == [ev.build_prompt(QUESTIONS[0][0], chat=True)]

    recs = [json.loads(line) for line in _lines(out)]
    assert sorted(_key(r) for r in recs) == [(p, s) for p in (0, 1) for s in range(N)]
    for r in recs:
        p = r["problem_index"]
        assert r["problem_id"] == f"gsm8k-{p}" and r["gold"] == QUESTIONS[p][1]
        assert r["seed"] == ev.problem_seed(SEED, p)
        assert 1 <= r["generated_tokens"] <= MAX_TOKENS and r["prompt_tokens"] > 0
        assert r["finish_reason"] in ("length", "eos", "stop")
        assert r["finished"] == (r["finish_reason"] != "length")
        assert r["finish_reason"] != "length" or r["generated_tokens"] == MAX_TOKENS
        assert r["answer"] == ev.extract_answer(r["text"])  # strict: the last box only
        assert r["flexible_answer"] == ev.extract_answer(r["text"], number_fallback=True)
        for answer, correct in ((r["answer"], r["correct"]), (r["flexible_answer"], r["flexible_correct"])):
            assert correct == (answer is not None and Fraction(answer) == Fraction(r["gold"]))
        assert r["explored_steps"] == 0 and r["explore_rate"] == 0.0  # standard sampling
        assert r["wall_seconds"] > 0
    # The samples of one problem differ (own random streams), at least somewhere.
    assert len({r["text"] for r in recs if r["problem_index"] == 0}) > 1

    meta = json.loads((out / ev.META_FILE).read_text())
    assert meta["identity"]["n"] == N and meta["prompt_format"] == "chat"
    saved = json.loads((out / ev.SUMMARY_FILE).read_text())
    counts = [sum(r["correct"] for r in recs if r["problem_index"] == p) for p in (0, 1)]
    assert (saved["model"], saved["dataset"], saved["config"]) == ("tiny-eval.gguf", "gsm8k", "standard")
    assert saved["config_params"] == {
        "type": "SamplingConfig",
        "temperature": 0.6,
        "top_k": 20,
        "top_p": 0.95,
        "min_p": 0.0,
    }
    assert (saved["num_problems"], saved["num_samples"], saved["n"]) == (2, 2 * N, N)
    assert saved["prompt_format"] == "chat"
    assert saved["correct_counts"] == counts
    assert saved["pass@1"] == pytest.approx(sum(counts) / (2 * N))
    assert saved["pass@k"][str(N)] == pytest.approx(sum(c > 0 for c in counts) / 2)
    assert saved["mean_tokens"] == pytest.approx(sum(r["generated_tokens"] for r in recs) / (2 * N))
    assert saved["finished_rate"] == pytest.approx(sum(r["finished"] for r in recs) / (2 * N))
    assert summary.to_dict() == saved

    # Resume with a larger limit: only the two new problems are generated, the old lines stay.
    before = _lines(out)
    counting.calls.clear()
    grown = _evaluate(counting, dataset, out, limit=4)
    assert [c["seed"] for c in counting.calls] == [ev.problem_seed(SEED, i) for i in (2, 3)]
    assert _lines(out)[: len(before)] == before and len(_lines(out)) == 4 * N
    assert grown.num_problems == 4

    # Rerun: every sample is done, nothing is generated, the summary is the same.
    counting.calls.clear()
    again = _evaluate(counting, dataset, out, limit=4)
    assert counting.calls == []
    assert again.to_dict() == grown.to_dict()
    assert json.loads((out / ev.SUMMARY_FILE).read_text()) == grown.to_dict()

    # A fresh run of the same 4 problems produces the same samples: per-problem seeds make
    # the resumed run's results independent of how it was split.
    fresh = _evaluate(model, dataset, tmp_path / "fresh", limit=4)
    assert run_records(tmp_path / "fresh") == run_records(out)
    assert fresh.pass_at_k == grown.pass_at_k


def test_a_torn_problem_is_regenerated_alone(model, dataset, tmp_path, run_records):
    out = tmp_path / "run"
    _evaluate(model, dataset, out, limit=3)
    full = run_records(out)
    lines = _lines(out)
    # A crash while writing problem 2: one of its records and half of the next line survive.
    (out / ev.SAMPLES_FILE).write_text("\n".join(lines[: 2 * N + 1]) + "\n" + lines[2 * N + 1][:20])
    counting = CountingModel(model)
    _evaluate(counting, dataset, out, limit=3)
    assert [c["seed"] for c in counting.calls] == [ev.problem_seed(SEED, 2)]
    assert run_records(out) == full


@pytest.mark.parametrize(
    "change",
    [
        {"config": "standard:temperature=0.3"},
        {"config": "greedy", "n": N},
        {"config": "led"},
        {"n": 2},
        {"seed": SEED + 1},
        {"max_tokens": MAX_TOKENS + 1},
    ],
)
def test_a_different_run_on_the_same_out_is_refused(model, dataset, tmp_path, change):
    out = tmp_path / "run"
    _evaluate(model, dataset, out, limit=1)
    lines = _lines(out)
    counting = CountingModel(model)
    with pytest.raises(ev.RunMismatchError, match="different run"):
        _evaluate(counting, dataset, out, limit=1, **change)
    assert counting.calls == [] and _lines(out) == lines


def test_led_run_records_exploration(model, dataset, tmp_path):
    summary = _evaluate(model, dataset, tmp_path, config="led:d=3:k=4", n=2, limit=1)
    recs = [json.loads(line) for line in _lines(tmp_path)]
    assert summary.config == "led:d=3:k=4" and len(recs) == 2
    assert sum(r["explored_steps"] for r in recs) > 0  # the gate opens on a random tiny model
    for r in recs:
        decided = r["generated_tokens"] + (r["finish_reason"] == "eos")
        assert 0 <= r["explored_steps"] <= decided
        assert r["explore_rate"] == pytest.approx(r["explored_steps"] / decided)
        assert r["reasoning_tokens"] <= r["generated_tokens"]
    assert summary.mean_explore_rate == pytest.approx(sum(r["explore_rate"] for r in recs) / 2)


def test_cli_eval_end_to_end(tiny, dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cli"

    def argv_for(config):
        return [
            "eval",
            "-m",
            str(tiny.path),
            "--dataset",
            str(dataset),
            "--out",
            str(out),
            "--config",
            config,
            "--n",
            "2",
            "--limit",
            "2",
            "--max-tokens",
            "8",
            "--seed",
            "1",
            "--threads",
            "1",
            "--n-ctx",
            "1024",
            "--no-progress",
        ]

    argv = argv_for("standard")
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    row = printed.splitlines()[2].split()
    assert row[:3] == ["standard", "2", "2"]
    assert f"results: {out}" in printed
    saved = json.loads((out / ev.SUMMARY_FILE).read_text())
    assert (saved["num_samples"], saved["max_tokens"], saved["seed"]) == (4, 8, 1)
    assert len(_lines(out)) == 4

    # Rerun through the CLI: resumed, the loaded model is never asked to generate.
    loaded = []
    real_load = cli_eval.load_model

    def counting_load(args):
        loaded.append(CountingModel(real_load(args)))
        return loaded[-1]

    monkeypatch.setattr(cli_eval, "load_model", counting_load)
    assert cli_main(argv) == 0
    assert len(loaded) == 1 and loaded[0].calls == []
    assert json.loads((out / ev.SUMMARY_FILE).read_text()) == saved

    # Another config on the same --out: refused before the model is loaded.
    capsys.readouterr()
    assert cli_main(argv_for("greedy")) == 2
    assert "different run" in capsys.readouterr().err and len(loaded) == 1
