"""Evaluation on a Ray cluster: a Ray run's records are the single-process run's, record for
record, also when a worker's process is killed mid-run or the driver is killed and the run
resumed; bad setups fail early with a message.

All tests of the ``ray`` marker share one local cluster (conftest.ray_cluster: 2 CPUs) and run
two workers of one thread each, on a tiny random llama model (tests/support/tiny_models.py) and on
SmolLM2-135M-Instruct (a few short problems, few tokens).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

pytest.importorskip("gguf")
import led_cpp  # noqa: E402
from led_cpp import evaluation as ev  # noqa: E402
from led_cpp.cli import main as cli_main  # noqa: E402
from led_cpp.evaluation import ray as evaluation_ray  # noqa: E402
from tests.support.tiny_models import write_tiny_model  # noqa: E402

QUESTIONS = [(f"What is {i} + {i + 2}?", str(2 * i + 2)) for i in range(6)]
#: The SmolLM2 runs: LED, short answers.
SMOL = dict(n=2, max_tokens=12, seed=3, progress=False)


def sample_keys(out: Path) -> list:
    return [
        (r["problem_index"], r["sample"]) for r in map(json.loads, (out / ev.SAMPLES_FILE).read_text().splitlines())
    ]


@pytest.fixture(scope="module")
def dataset(dataset_file):
    return dataset_file("math500.json", QUESTIONS)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-ray.gguf", "llama", seed=7, chat_template=True)


def backend(path, ray_cluster, **kw) -> evaluation_ray.RayBackend:
    return evaluation_ray.RayBackend(
        path, workers=2, threads_per_worker=1, model_kwargs={"n_ctx": 1024}, start_timeout=300, stall_timeout=300, **kw
    )  # a hang fails the test


@pytest.fixture(scope="module")
def smol_reference(smollm2_path, dataset, tmp_path_factory):
    """The single-process SmolLM2 run every Ray run must reproduce."""
    out = tmp_path_factory.mktemp("smol-ref")
    model = led_cpp.Model(smollm2_path, n_ctx=1024, n_threads=1)
    summary = ev.evaluate(model, dataset, "led", out_dir=out, **SMOL)
    return out, summary


@pytest.mark.ray
@pytest.mark.parametrize("config,n", [("standard", 3), ("greedy", 4), ("led:d=3:k=4", 2)])
def test_ray_run_equals_the_single_process_run_on_a_tiny_model(
    ray_cluster, tiny, dataset, tmp_path, config, n, run_records, run_summary
):
    kw = dict(n=n, max_tokens=16, seed=9, progress=False)
    single = ev.evaluate(
        led_cpp.Model(tiny.path, n_ctx=1024, n_threads=1), dataset, config, out_dir=tmp_path / "single", **kw
    )
    with backend(tiny.path, ray_cluster) as pool:
        run = ev.evaluate(pool, dataset, config, out_dir=tmp_path / "ray", **kw)
        report = pool.report()
    assert run_records(tmp_path / "ray") == run_records(tmp_path / "single")
    assert sorted(sample_keys(tmp_path / "ray")) == sorted(run_records(tmp_path / "single"))
    assert run_summary(run) == run_summary(single)
    # The summary records the cluster's shape; runs.jsonl each worker's device and throughput.
    assert run.run["runner"] == "ray" and run.run["workers"] == 2 and run.run["nodes"] == 1
    assert run.run["threads_per_worker"] == 1 and run.run["devices"]
    logged = [json.loads(x) for x in (tmp_path / "ray" / ev.RUNS_FILE).read_text().splitlines()]
    assert logged[-1]["worker_stats"] == report["worker_stats"]
    stats = report["worker_stats"]
    assert sum(s["samples"] for s in stats) == len(QUESTIONS) * n
    assert all(s["model"] == "tiny-ray.gguf" and s["device"] and s["pid"] > 0 for s in stats)
    assert sum(s["generated_tokens"] for s in stats) == sum(
        r["generated_tokens"] for r in run_records(tmp_path / "single").values()
    )


@pytest.mark.ray
def test_ray_run_equals_the_single_process_run_on_smollm2(
    ray_cluster, smollm2_path, dataset, smol_reference, tmp_path, run_records, run_summary
):
    ref_out, ref = smol_reference
    with backend(smollm2_path, ray_cluster) as pool:
        run = ev.evaluate(pool, dataset, "led", out_dir=tmp_path, **SMOL)
    assert run_records(tmp_path) == run_records(ref_out)
    assert run_summary(run) == run_summary(ref)


@pytest.mark.ray
def test_a_killed_worker_loses_nothing(
    ray_cluster, smollm2_path, dataset, smol_reference, tmp_path, run_records, run_summary
):
    ref_out, ref = smol_reference
    n = SMOL["n"]
    with backend(smollm2_path, ray_cluster) as pool:
        victim = pool.worker_infos()[0]["pid"]
        killed = threading.Event()

        def kill_after_the_first_problem():
            deadline = time.monotonic() + 600
            samples = tmp_path / ev.SAMPLES_FILE
            while time.monotonic() < deadline:
                if samples.exists() and len(samples.read_text().splitlines()) >= n:
                    os.kill(victim, signal.SIGKILL)
                    killed.set()
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_after_the_first_problem, daemon=True)
        killer.start()
        run = ev.evaluate(pool, dataset, "led", out_dir=tmp_path, **SMOL)
        killer.join(5)
        report = pool.report()
        pids_after = {w["pid"] for w in pool.worker_infos()}
    assert killed.is_set() and victim not in pids_after  # Ray restarted the worker
    assert report["retried_batches"] >= 1, "the kill came after the last problem; nothing was retried"
    # Every problem written once: no duplicate and no gap; results as if nothing happened.
    keys = sample_keys(tmp_path)
    assert len(keys) == len(set(keys)) == len(QUESTIONS) * n
    assert run_records(tmp_path) == run_records(ref_out)
    assert run_summary(run) == run_summary(ref)


DRIVER = (
    """
import sys
from led_cpp import evaluation as ev
from led_cpp.evaluation import RayBackend

model, dataset, out, address = sys.argv[1:5]
with RayBackend(model, address=address, workers=2, threads_per_worker=1,
                model_kwargs={"n_ctx": 1024}, stall_timeout=300) as pool:
    ev.evaluate(pool, dataset, "led", out_dir=out, **{settings!r})
"""
).replace("{settings!r}", repr(SMOL))


@pytest.mark.ray
def test_a_killed_driver_resumes_from_the_output_directory(
    ray_cluster, smollm2_path, dataset, smol_reference, tmp_path, run_records, run_summary
):
    ref_out, ref = smol_reference
    n = SMOL["n"]
    out = tmp_path / "run"
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(smollm2_path), str(dataset), str(out), ray_cluster],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    samples = out / ev.SAMPLES_FILE
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and driver.poll() is None:
            if samples.exists() and len(samples.read_text().splitlines()) >= n:
                break
            time.sleep(0.01)
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        driver.kill()
    finally:
        driver.kill()
        driver.wait(60)
        driver.stderr.close()
    before = samples.read_text().splitlines()
    done = {json.loads(x)["problem_index"] for x in before}
    assert 1 <= len(done) < len(QUESTIONS), "the driver was not killed mid-run"

    with backend(smollm2_path, ray_cluster) as pool:
        run = ev.evaluate(pool, dataset, "led", out_dir=out, **SMOL)
        generated = sum(s["samples"] for s in pool.report()["worker_stats"])
    after = samples.read_text().splitlines()
    assert after[: len(before)] == before  # finished problems were not redone
    assert generated == (len(QUESTIONS) - len(done)) * n
    assert len(after) == len(set(sample_keys(out))) == len(QUESTIONS) * n
    assert run_records(out) == run_records(ref_out)
    assert run_summary(run) == run_summary(ref)


@pytest.mark.ray
def test_cli_eval_on_ray(ray_cluster, tiny, dataset, tmp_path, capsys, run_records, run_summary):
    argv = [
        "eval",
        "-m",
        str(tiny.path),
        "--dataset",
        str(dataset),
        "--config",
        "standard",
        "--n",
        "2",
        "--max-tokens",
        "8",
        "--seed",
        "2",
        "--n-ctx",
        "1024",
        "--no-progress",
        "--ray",
        "--workers",
        "2",
        "--threads-per-worker",
        "1",
    ]
    assert cli_main(argv + ["--out", str(tmp_path / "ray")]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[2].split()[:3] == ["standard", str(len(QUESTIONS)), "2"]
    assert "worker 0: " in captured.err and "worker 1: " in captured.err and "tok/s" in captured.err
    # With --shard and eval-merge too: still the single-process records.
    for k in (1, 2):
        assert cli_main(argv + ["--shard", f"{k}/2", "--out", str(tmp_path / f"part{k}")]) == 0
    assert (
        cli_main(["eval-merge", str(tmp_path / "part1"), str(tmp_path / "part2"), "--out", str(tmp_path / "merged")])
        == 0
    )
    single = ev.evaluate(
        led_cpp.Model(tiny.path, n_ctx=1024, n_threads=1),
        dataset,
        "standard",
        n=2,
        max_tokens=8,
        seed=2,
        out_dir=tmp_path / "single",
        progress=False,
    )
    for out in ("ray", "merged"):
        assert run_records(tmp_path / out) == run_records(tmp_path / "single")
        assert run_summary(tmp_path / out) == run_summary(single)


@pytest.mark.ray
def test_a_model_a_worker_cannot_read_names_the_node(ray_cluster, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"node {socket.gethostname()} .*cannot read the model"):
        backend(tmp_path / "absent.gguf", ray_cluster).start()


@pytest.mark.ray
def test_workers_the_cluster_cannot_place_time_out_with_what_they_ask(ray_cluster, tiny):
    pool = evaluation_ray.RayBackend(tiny.path, workers=3, threads_per_worker=1, start_timeout=2)
    with pytest.warns(UserWarning, match="3 workers of 1 CPUs"):
        with pytest.raises(TimeoutError, match="did not start .* the cluster has 2 CPUs"):
            pool.start()
    # Nothing is left behind: the next pool gets the cluster's CPUs.
    with backend(tiny.path, ray_cluster) as pool:
        assert len({w["pid"] for w in pool.worker_infos()}) == 2


@pytest.mark.ray
def test_a_stalled_run_stops_with_a_timeout(ray_cluster, smollm2_path, dataset, tmp_path):
    # No SmolLM2 problem finishes within 10 ms: the run stops instead of waiting for ever.
    pool = evaluation_ray.RayBackend(
        smollm2_path, workers=2, threads_per_worker=1, model_kwargs={"n_ctx": 1024}, stall_timeout=0.01
    )
    with pool, pytest.raises(TimeoutError, match="no problem finished within 0.01 s on 2 Ray workers"):
        ev.evaluate(pool, dataset, "led", out_dir=tmp_path, **SMOL)
    assert not (tmp_path / ev.SAMPLES_FILE).exists()


def test_an_address_that_does_not_answer_fails_fast(tmp_path, dataset):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "led_cpp.cli",
            "eval",
            "-m",
            str(tmp_path / "m.gguf"),
            "--dataset",
            str(dataset),
            "--out",
            str(tmp_path / "out"),
            "--ray",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in result.stderr
    assert "ray start --head" in result.stderr


def test_ray_not_installed_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ImportError, match=r"pip install \"led_cpp\[ray\]\""):
        evaluation_ray.RayBackend(tmp_path / "m.gguf").start()
