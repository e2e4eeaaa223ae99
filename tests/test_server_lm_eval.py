"""lm-evaluation-harness drives led-cpp serve (local-completions and local-chat-completions) on
task files written here, offline; its log-likelihoods equal led_cpp's own prompt scoring."""

from __future__ import annotations

import json
import math
import os

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("openai")


from tests.test_server import KEY, N_CTX, model, server, tiny_path  # noqa: E402,F401  (one server for this module)

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tasks")
    rows = [
        {
            "question": f"Q{i}: is {i} even?",
            "answer": "yes" if i % 2 == 0 else "no",
            "choices": ["yes", "no"],
            "label": i % 2,
        }
        for i in range(4)
    ]
    data = directory / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    common = (
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
        'doc_to_text: "{{question}}\\nA:"\n'
    )
    (directory / "tiny_gen.yaml").write_text(
        "task: tiny_gen\n" + common + 'output_type: generate_until\ndoc_to_target: "{{answer}}"\n'
        'generation_kwargs:\n  until: ["\\n"]\n  max_gen_toks: 6\n  do_sample: false\n  temperature: 0\n'
        "metric_list:\n  - metric: exact_match\n"
    )
    (directory / "tiny_ll.yaml").write_text(
        "task: tiny_ll\n" + common + 'output_type: multiple_choice\ndoc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{label}}"\nmetric_list:\n  - metric: acc\n'
    )
    return directory


def evaluate(server, task_dir, model_name: str, tasks: list, extra: str = ""):
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["OPENAI_API_KEY"] = KEY
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    path = "/v1/chat/completions" if "chat" in model_name else "/v1/completions"
    return simple_evaluate(
        model=model_name,
        model_args=f"base_url={server['base']}{path},model=tiny,num_concurrent=2,max_retries=1,auth_token={KEY}{extra}",
        tasks=tasks,
        task_manager=TaskManager(include_path=str(task_dir)),
        log_samples=True,
        apply_chat_template="chat" in model_name,
    )


def test_local_completions_runs_and_matches_prompt_scoring(server, task_dir, model):
    results = evaluate(
        server,
        task_dir,
        "local-completions",
        ["tiny_gen", "tiny_ll"],
        ",tokenizer_backend=remote,tokenized_requests=True",
    )
    assert results["results"]["tiny_gen"]["exact_match,none"] >= 0
    samples = results["samples"]["tiny_ll"]
    assert len(samples) == 4
    for sample in samples:
        for (context, continuation), response in zip(sample["arguments"], sample["resps"]):
            whole = model.tokenize(context + continuation, add_special=False)
            context_tokens = model.tokenize(context, add_special=False)
            scores = model.score_prompt(whole)["logprobs"]
            expected = sum(scores[len(context_tokens) :])
            assert math.isclose(response[0][0], expected, abs_tol=1e-4), (context, continuation)
    assert len(results["samples"]["tiny_gen"]) == 4


def test_local_chat_completions_runs(server, task_dir):
    results = evaluate(server, task_dir, "local-chat-completions", ["tiny_gen"], ",tokenized_requests=False")
    assert len(results["samples"]["tiny_gen"]) == 4
    assert all(isinstance(sample["resps"][0][0], str) for sample in results["samples"]["tiny_gen"])
