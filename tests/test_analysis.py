"""The paper's analyses (led_cpp.analysis, ``led-cpp analyze``) on a tiny model.

* the per-layer entropy curve equals one recomputed with the independent NumPy forward
  pass (tests/support/numpy_forward.py) over the same prompt + generated tokens (F32 KV cache,
  no flash attention: float32 noise only, ~1e-7);
* the per-layer top-K lists of the trace are the NumPy top-K in descending logit order
  (what lets the coverage take a top-k as a prefix), and the coverage curves follow from
  them, lie in [0, 1] and are 1 for the final layer;
* the analyses write their JSON and PNG files, also through the CLI; without matplotlib
  they write the JSON and say what to install;
* the temperature analysis (pass@n against T and its slope) on hand numbers and end to end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

pytest.importorskip("gguf")
import led_cpp  # noqa: E402
from led_cpp import analysis as an  # noqa: E402
from led_cpp import evaluation as ev  # noqa: E402
from led_cpp.cli import main as cli_main  # noqa: E402
from tests.support import numpy_forward as nf  # noqa: E402
from tests.support.tiny_models import write_tiny_model  # noqa: E402

QUESTIONS = [("What is 2 + 3?", "5"), ("Name a prime.", "7"), ("Half of 10?", "5")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(
        tmp_path_factory.mktemp("tiny") / "tiny-llama.gguf", "llama", n_layer=4, seed=11, chat_template=True
    )


@pytest.fixture(scope="module")
def model(tiny):
    return led_cpp.Model(tiny.path, n_ctx=512, n_threads=1, kv_type="f32", flash_attention=False)


@pytest.fixture(scope="module")
def dataset(dataset_file):
    return dataset_file("tinymath.json", QUESTIONS)


def _numpy_layer_logits(tiny, model, problem, tokens):
    """Per generated token, the [n_layer, n_vocab] logits of every layer's output with
    the final norm (rows by layer 0..n_layer-1) and without it, at the step that chose it."""
    prompt = model.prompt_tokens(ev.build_prompt(problem.question, ev.uses_chat_template(model)))
    fr = nf.forward(tiny, prompt + list(tokens))
    normed, raw = [], []
    for i in range(len(tokens)):
        pos = len(prompt) - 1 + i
        normed.append(np.stack([nf.project(tiny, fr.hidden[il][pos], ln=True) for il in range(tiny.n_layer)]))
        raw.append(np.stack([nf.project(tiny, fr.hidden[il][pos], ln=False) for il in range(tiny.n_layer)]))
    return normed, raw


def _normalised_entropy(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return -(p * np.log(p)).sum(axis=-1) / np.log(logits.shape[-1])


def test_entropy_curve_matches_the_numpy_forward_pass(tiny, model, dataset, tmp_path):
    data = an.analyze_entropy(model, dataset, out_dir=tmp_path, limit=3, max_tokens=10, seed=5, temperature=1.0)
    assert (tmp_path / "entropy.json").is_file() and (tmp_path / "entropy.png").is_file()
    assert data["png"] == str(tmp_path / "entropy.png")
    saved = json.loads((tmp_path / "entropy.json").read_text())
    assert saved["mean_entropy"] == data["mean_entropy"]
    assert saved["layers"] == list(range(tiny.n_layer)) and saved["n_layer"] == tiny.n_layer

    problems = ev.load_dataset(dataset)
    all_rows = []
    for problem, sample in zip(problems, saved["samples"]):
        assert sample["problem_id"] == problem.id
        if not sample["tokens"]:
            continue
        normed, _ = _numpy_layer_logits(tiny, model, problem, sample["tokens"])
        rows = np.stack([_normalised_entropy(x) for x in normed])  # [tokens, n_layer]
        np.testing.assert_allclose(sample["mean_entropy"], rows.mean(axis=0), atol=1e-4)
        all_rows.append(rows)
    rows = np.concatenate(all_rows)
    assert saved["num_tokens"] == len(rows) > 0
    expected = rows.mean(axis=0)
    np.testing.assert_allclose(saved["mean_entropy"], expected, atol=1e-4)
    assert np.all((0 <= expected) & (expected <= 1))
    assert saved["final_layer_entropy"] == pytest.approx(expected[-1], abs=1e-4)


def test_trace_top_lists_are_ordered_and_coverage_follows_from_them(tiny, model, dataset):
    problems = ev.load_dataset(dataset)[:2]
    results = an.generate_layer_traces(model, problems, max_tokens=6, seed=9, k=16, temperature=1.0)
    tol = 1e-4
    counted = 0
    expected = {k: np.zeros((2, tiny.n_layer)) for k in an.COVERAGE_KS}
    for problem, result in zip(problems, results):
        normed, raw = _numpy_layer_logits(tiny, model, problem, result.tokens)
        assert len(result.trace) == result.decided_steps  # each token, then a step that chose EOS
        for step, zn, zr in zip(result.trace, normed, raw):
            for kind, rows, z in (("norm", step.layer_top_normalised, zn), ("raw", step.layer_top_raw, zr)):
                by_layer = an.steps_by_layer(rows)
                for il in range(tiny.n_layer):
                    ids = list(by_layer[il])
                    values = z[il][ids]
                    kth = np.sort(z[il])[::-1][15]
                    assert len(set(ids)) == 16
                    assert np.all(values >= kth - tol), (kind, il)  # the top 16
                    assert np.all(np.diff(values) <= tol), (kind, il)  # in descending order
            final = an.steps_by_layer(step.layer_top_normalised)[-1]
            for k in an.COVERAGE_KS:
                for il in range(tiny.n_layer):
                    layer_n = an.steps_by_layer(step.layer_top_normalised)[il]
                    layer_r = an.steps_by_layer(step.layer_top_raw)[il]
                    expected[k][0, il] += len(set(final[:k]) & set(layer_n[:k])) / k
                    expected[k][1, il] += 1.0 if il == tiny.n_layer - 1 else len(set(final[:k]) & set(layer_r[:k])) / k
            counted += 1
    cov = an.coverage_curves(results)
    assert cov["num_tokens"] == counted > 0
    for k in an.COVERAGE_KS:
        np.testing.assert_allclose(cov["with_norm"][str(k)], expected[k][0] / counted, atol=1e-12)
        np.testing.assert_allclose(cov["without_norm"][str(k)], expected[k][1] / counted, atol=1e-12)
    # The final layer's top-1 is the argmax of its logits = the greedy token of the state.
    for problem, result in zip(problems, results):
        normed, _ = _numpy_layer_logits(tiny, model, problem, result.tokens)
        for step, zn in zip(result.trace, normed):
            assert step.layer_top_normalised[0][0] == int(np.argmax(zn[-1]))


def test_coverage_writes_files_and_lies_in_unit_interval(tiny, model, dataset, tmp_path):
    data = an.analyze_coverage(model, dataset, out_dir=tmp_path, limit=3, max_tokens=6, seed=2)
    saved = json.loads((tmp_path / "coverage.json").read_text())
    assert (tmp_path / "coverage.png").is_file()
    assert saved["ks"] == list(an.COVERAGE_KS) and saved["num_tokens"] == data["num_tokens"] > 0
    top = tiny.n_layer - 1
    for key in ("with_norm", "without_norm"):
        for k in an.COVERAGE_KS:
            values = saved[key][str(k)]
            assert len(values) == tiny.n_layer
            assert all(0.0 <= v <= 1.0 for v in values)
            assert values[top] == 1.0  # the final layer covers itself
    for k in an.COVERAGE_KS:
        assert 0.0 <= saved["final_layer_without_norm"][str(k)] <= 1.0
    # k = 16 of 264 tokens on a random model: the layers share some but not all of the top-16.
    assert saved["with_norm"]["16"][0] < 1.0


def test_entropy_without_matplotlib_writes_json_and_says_what_to_install(model, dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    data = an.analyze_entropy(model, dataset, out_dir=tmp_path, limit=1, max_tokens=3, seed=1)
    assert data["png"] is None
    assert (tmp_path / "entropy.json").is_file() and not (tmp_path / "entropy.png").exists()
    assert "pip install 'led_cpp[plot]'" in capsys.readouterr().err


def test_cli_analyze_entropy_and_coverage(tiny, dataset, tmp_path, capsys):
    for name in ("entropy", "coverage"):
        out = tmp_path / name
        rc = cli_main(
            [
                "analyze",
                name,
                "-m",
                str(tiny.path),
                "--dataset",
                str(dataset),
                "--limit",
                "2",
                "--max-tokens",
                "4",
                "--out",
                str(out),
                "--threads",
                "1",
                "--n-ctx",
                "512",
                "--seed",
                "3",
                "--no-progress",
            ]
        )
        assert rc == 0
        assert (out / f"{name}.json").is_file() and (out / f"{name}.png").is_file()
        saved = json.loads((out / f"{name}.json").read_text())
        assert saved["num_problems"] == 2 and saved["max_tokens"] == 4 and saved["seed"] == 3
        assert "wrote:" in capsys.readouterr().out


def test_cli_analyze_refuses_bad_input_before_loading(tmp_path, capsys):
    rc = cli_main(
        [
            "analyze",
            "entropy",
            "-m",
            str(tmp_path / "none.gguf"),
            "--dataset",
            str(tmp_path / "missing.json"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2 and "no dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["analyze", "nonsense", "--dataset", "gsm8k", "--out", str(tmp_path)])


# --------------------------------------------------------------------------- temperature


def test_slope_and_pass_at_n_by_hand():
    assert an.least_squares_slope([0.1, 0.3, 0.6], [0.2, 0.4, 0.7]) == pytest.approx(1.0)
    assert an.least_squares_slope([0.1, 0.3, 0.6], [0.5, 0.5, 0.5]) == pytest.approx(0.0)
    # (0.1, .3) (0.3, .2) (0.6, .1): mean x 1/3, mean y .2; sxy = -1.5/30, sxx = 114/900
    assert an.least_squares_slope([0.1, 0.3, 0.6], [0.3, 0.2, 0.1]) == pytest.approx(-0.05 / (114 / 900))
    with pytest.raises(ValueError):
        an.least_squares_slope([0.3, 0.3], [0.1, 0.2])
    slopes = an.temperature_slopes([0.1, 0.3, 0.6], {"1": [0.2, 0.4, 0.7], "4": [0.5, 0.5, 0.5], "16": [0.9, 0.8, 0.8]})
    assert [slopes[n]["collapse"] for n in ("1", "4", "16")] == [False, True, True]
    assert not any(slopes[n]["saturated"] for n in slopes)
    assert an.temperature_slopes([0.1, 0.6], {"1": [0, 0]})["1"] == {"slope": 0.0, "collapse": True, "saturated": True}
    table = an.pass_at_n_table([0, 2, 4], 4, ns=(1, 2, 4, 8))
    assert set(table) == {"1", "2", "4"}
    assert table["1"] == pytest.approx((0 + 0.5 + 1) / 3)
    assert table["2"] == pytest.approx((0 + (1 - 1 / 6) + 1) / 3)  # C(2,2)/C(4,2) = 1/6
    assert table["4"] == pytest.approx(2 / 3)


def test_temperature_analysis_end_to_end(tiny, model, dataset, tmp_path, capsys):
    data = an.analyze_temperature(model, dataset, out_dir=tmp_path, limit=2, n=2, max_tokens=4, seed=1, ns=an.PASS_NS)
    saved = json.loads((tmp_path / "temperature.json").read_text())
    assert (tmp_path / "temperature.png").is_file()
    assert saved["temperatures"] == [0.1, 0.3, 0.6] and saved["ns"] == [1, 2]
    assert set(saved["pass_at"]) == {"1", "2"} and set(saved["slopes"]) == {"1", "2"}
    for t in ("0.1", "0.3", "0.6"):
        run = Path(saved["runs"][t]["out_dir"])
        summary = json.loads((run / ev.SUMMARY_FILE).read_text())
        assert summary["config_params"]["temperature"] == float(t) and summary["n"] == 2
        i = saved["temperatures"].index(float(t))
        assert saved["pass_at"]["1"][i] == pytest.approx(summary["pass@1"])
        assert saved["pass_at"]["2"][i] == pytest.approx(summary["pass@k"]["2"])
    for n, values in saved["pass_at"].items():
        slope = an.least_squares_slope(saved["temperatures"], values)
        assert saved["slopes"][n]["slope"] == pytest.approx(slope)
        assert saved["collapse"][n] == (slope <= 0)
    assert data["pass_at"] == saved["pass_at"]

    # The CLI resumes the finished runs (nothing to generate) and refuses another n.
    def argv(n):
        return [
            "analyze",
            "temperature",
            "-m",
            str(tiny.path),
            "--dataset",
            str(dataset),
            "--limit",
            "2",
            "--n",
            str(n),
            "--max-tokens",
            "4",
            "--seed",
            "1",
            "--out",
            str(tmp_path),
            "--threads",
            "1",
            "--n-ctx",
            "512",
            "--no-progress",
        ]

    assert cli_main(argv(2)) == 0
    assert json.loads((tmp_path / "temperature.json").read_text())["pass_at"] == saved["pass_at"]
    capsys.readouterr()
    assert cli_main(argv(3)) == 2
    assert "different run" in capsys.readouterr().err
