"""Sharded evaluation (--shard K/N) and eval-merge: the merged shards are the unsharded run.

A tiny random llama model (tests/support/tiny_models.py) runs a small dataset whole and in three
shards; the merged records and summary must equal the whole run's apart from timings, and
eval-merge must refuse shards of different runs, overlapping shards and missing problems.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

pytest.importorskip("gguf")
import led_cpp  # noqa: E402
from led_cpp import evaluation as ev  # noqa: E402
from led_cpp.cli import main as cli_main  # noqa: E402
from led_cpp.evaluation import shards  # noqa: E402
from tests.support.tiny_models import write_tiny_model  # noqa: E402

QUESTIONS = [(f"What is {i} + {i + 1}?", str(2 * i + 1)) for i in range(7)]
N, SEED, MAX_TOKENS = 2, 5, 12


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-shards.gguf", "llama", seed=5, chat_template=True)


@pytest.fixture(scope="module")
def model(tiny):
    return led_cpp.Model(tiny.path, n_ctx=1024, n_threads=1)


@pytest.fixture(scope="module")
def dataset(dataset_file):
    return dataset_file("math500.json", QUESTIONS)


def run(model, dataset, out, config="standard", **kw):
    args = dict(n=N, max_tokens=MAX_TOKENS, seed=SEED, out_dir=out, progress=False) | kw
    return ev.evaluate(model, dataset, config, **args)


@pytest.mark.parametrize(
    "config,n,split",
    [
        ("standard", N, [{0, 3, 6}, {1, 4}, {2, 5}]),  # a problem per batch, batch j to shard j % 3
        ("greedy", 8, [{0, 1, 6}, {2, 3}, {4, 5}]),  # greedy: 16 // n = 2 problems per batch
    ],
)
def test_three_shards_merged_equal_the_whole_run(model, dataset, tmp_path, config, n, split, run_records, run_summary):
    whole = run(model, dataset, tmp_path / "whole", config, n=n)
    parts = [tmp_path / f"shard{k}" for k in (1, 2, 3)]
    seen = []
    for k, out in enumerate(parts, 1):
        part = run(model, dataset, out, config, n=n, shard=f"{k}/3")
        seen.append({i for i, _ in run_records(out)})
        assert part.run["shard"] == {"index": k, "count": 3, "problems": len(QUESTIONS)}
        assert part.num_problems == len(seen[-1])
    assert seen == split
    merged = shards.merge_runs(reversed(parts), tmp_path / "merged")
    assert run_records(tmp_path / "merged") == run_records(tmp_path / "whole")
    assert run_summary(tmp_path / "merged") == run_summary(tmp_path / "whole")
    assert merged.pass_at_k == whole.pass_at_k
    assert merged.run["runner"] == "merge" and [s["shard"] for s in merged.run["shards"]] == ["1/3", "2/3", "3/3"]
    # The merged samples file is in problem order, one line per sample.
    lines = [json.loads(x) for x in (tmp_path / "merged" / ev.SAMPLES_FILE).read_text().splitlines()]
    assert [(r["problem_index"], r["sample"]) for r in lines] == sorted(run_records(tmp_path / "whole"))
    # The merged directory is an ordinary run: rerunning it generates nothing.
    before = (tmp_path / "merged" / ev.SAMPLES_FILE).read_text()
    rerun = run(model, dataset, tmp_path / "merged", config, n=n)
    assert (tmp_path / "merged" / ev.SAMPLES_FILE).read_text() == before
    assert run_summary(rerun) == run_summary(tmp_path / "whole")


def test_shards_keep_the_seeds_of_the_whole_dataset(model, dataset, tmp_path, run_records):
    run(model, dataset, tmp_path / "s2", shard="2/3")
    recs = run_records(tmp_path / "s2")
    assert {i for i, _ in recs} == {1, 4}
    assert all(r["seed"] == ev.problem_seed(SEED, i) for (i, _), r in recs.items())


def test_a_greedy_run_has_too_few_batches_for_many_shards(model, dataset, tmp_path):
    with pytest.raises(ValueError, match="only 1 batches .* at most 1 shards"):
        run(model, dataset, tmp_path, "greedy", n=1, shard="2/2")
    assert not (tmp_path / ev.SAMPLES_FILE).exists()


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "-1/2"])
def test_a_bad_shard_is_refused(model, dataset, tmp_path, text):
    with pytest.raises(ValueError, match="shard"):
        run(model, dataset, tmp_path, shard=text)


def test_a_shard_directory_refuses_another_shard_or_an_unsharded_run(model, dataset, tmp_path):
    run(model, dataset, tmp_path, shard="1/3", limit=3)
    for change in ({"shard": "2/3"}, {"shard": None}, {"shard": "1/3", "limit": 6}):
        with pytest.raises(ev.RunMismatchError, match="shard"):
            run(model, dataset, tmp_path, **({"limit": 3} | change))


@pytest.fixture(scope="module")
def three_shards(model, dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    for k in (1, 2, 3):
        run(model, dataset, root / f"s{k}", shard=f"{k}/3")
    return root


def test_merge_refuses_shards_of_different_runs(model, dataset, three_shards, tmp_path):
    other = tmp_path / "other-seed"
    run(model, dataset, other, shard="3/3", seed=SEED + 1)
    with pytest.raises(shards.ShardMergeError, match="different runs(.|\n)*seed: 5 .* 6"):
        shards.merge_runs([three_shards / "s1", three_shards / "s2", other], tmp_path / "m")
    fewer = tmp_path / "other-limit"
    run(model, dataset, fewer, shard="3/3", limit=6)
    with pytest.raises(shards.ShardMergeError, match="another --limit"):
        shards.merge_runs([three_shards / "s1", three_shards / "s2", fewer], tmp_path / "m")
    assert not (tmp_path / "m" / ev.SAMPLES_FILE).exists()


def test_merge_refuses_overlapping_shards(three_shards, tmp_path):
    copy = tmp_path / "s2-copy"
    shutil.copytree(three_shards / "s2", copy)
    with pytest.raises(shards.ShardMergeError, match="overlapping shards: .* both shard 2/3"):
        shards.merge_runs([three_shards / "s1", three_shards / "s2", copy], tmp_path / "m")


def test_merge_reports_missing_problems(model, dataset, three_shards, tmp_path):
    with pytest.raises(
        shards.ShardMergeError, match=r"2 problems are missing(.|\n)*shard 2/3 not given \(2 problems\)"
    ):
        shards.merge_runs([three_shards / "s1", three_shards / "s3"], tmp_path / "m")
    # A shard cut short: its unfinished problems are named.
    cut = tmp_path / "s1-cut"
    shutil.copytree(three_shards / "s1", cut)
    lines = (cut / ev.SAMPLES_FILE).read_text().splitlines()
    (cut / ev.SAMPLES_FILE).write_text("\n".join(lines[: N + 1]) + "\n")
    with pytest.raises(shards.ShardMergeError, match=r"shard 1/3 .* lacks 2 of its 3 problems \(problem 3, 6\)"):
        shards.merge_runs([cut, three_shards / "s2", three_shards / "s3"], tmp_path / "m")
    run(model, dataset, tmp_path / "unsharded", limit=1)
    with pytest.raises(shards.ShardMergeError, match="unsharded is not a shard"):
        shards.merge_runs([three_shards / "s1", tmp_path / "unsharded"], tmp_path / "m")


def test_cli_shards_and_eval_merge(tiny, dataset, model, tmp_path, capsys, run_records, run_summary):
    def argv(*extra):
        return [
            "compare",
            "-m",
            str(tiny.path),
            "--dataset",
            str(dataset),
            "--configs",
            "standard,led:d=3:k=4",
            "--n",
            str(N),
            "--max-tokens",
            str(MAX_TOKENS),
            "--seed",
            str(SEED),
            "--threads",
            "1",
            "--n-ctx",
            "1024",
            "--no-progress",
            *extra,
        ]

    for k in (1, 2):
        assert cli_main(argv("--shard", f"{k}/2", "--out", str(tmp_path / f"part{k}"))) == 0
    capsys.readouterr()
    assert (
        cli_main(["eval-merge", str(tmp_path / "part1"), str(tmp_path / "part2"), "--out", str(tmp_path / "merged")])
        == 0
    )
    table = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in table[2:4]] == ["standard", "led:d=3:k=4"]
    whole = ev.compare(
        model,
        dataset,
        ["standard", "led:d=3:k=4"],
        n=N,
        max_tokens=MAX_TOKENS,
        seed=SEED,
        out_dir=tmp_path / "whole",
        progress=False,
    )
    for s in whole:
        name = Path(s.out_dir).name
        assert run_records(tmp_path / "merged" / name) == run_records(Path(s.out_dir))
        assert run_summary(tmp_path / "merged" / name) == run_summary(Path(s.out_dir))
    assert len(json.loads((tmp_path / "merged" / "compare.json").read_text())) == 2

    # Bad setups fail before any generation, with exit status 2 and a message.
    assert cli_main(["eval-merge", str(tmp_path / "part1"), "--out", str(tmp_path / "m2")]) == 2
    assert "shard 2/2 not given" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv("--shard", "3/2", "--out", str(tmp_path / "bad")))
    assert exit_info.value.code == 2 and "out of range" in capsys.readouterr().err
    assert cli_main(argv("--workers", "2", "--out", str(tmp_path / "bad"))) == 2
    assert "--workers need --ray" in capsys.readouterr().err
