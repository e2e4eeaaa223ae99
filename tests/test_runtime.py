"""Runtime hardening: threads (one Model is used by one generation at a time, two Models run
concurrently, the GIL is released while decoding) and memory (load/free and open/close
cycles do not grow the resident set).

Tiny random models (tests/support/tiny_models.py), n_ctx=64 and one thread each, so the file runs in
well under a minute.
"""

from __future__ import annotations

import gc
import os
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
from led_cpp import LEDConfig, SamplingConfig  # noqa: E402
from tests.support.tiny_models import write_tiny_model  # noqa: E402

N_CTX = 64
SAMPLING = SamplingConfig(temperature=1.0, top_k=40)
LED = LEDConfig(temperature=1.0, d=3, k=6, think_only=False)
PROMPT = "The quick brown fox"
JOIN_TIMEOUT = 60  # seconds; a join that times out means a hang
# a GGML_ASSERT in a subprocess: no gdb attaching for a backtrace
_NO_GDB = {**os.environ, "GGML_NO_BACKTRACE": "1"}


def load(path, **kwargs) -> led_cpp.Model:
    options = dict(n_ctx=N_CTX, n_threads=1, n_gpu_layers=0)  # CPU: the timings below assume it
    options.update(kwargs)
    return led_cpp.Model(path, **options)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runtime")


@pytest.fixture(scope="module")
def llama_path(root) -> Path:
    return write_tiny_model(root / "llama.gguf", "llama").path


@pytest.fixture(scope="module")
def qwen_path(root) -> Path:
    return write_tiny_model(root / "qwen3.gguf", "qwen3", seed=3).path


def run_threads(targets, timeout=JOIN_TIMEOUT):
    """Runs the callables in threads started together; returns their results, re-raising the
    first exception; fails on a hang."""
    barrier = threading.Barrier(len(targets))
    results = [None] * len(targets)
    errors = [None] * len(targets)

    def body(index, target):
        try:
            barrier.wait()
            results[index] = target()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors[index] = error

    threads = [threading.Thread(target=body, args=(i, t), daemon=True) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a generating thread hung"
    for error in errors:
        if error is not None:
            raise error
    return results


# --------------------------------------------------------------------------- one Model, two threads


def test_second_generation_in_another_thread_is_refused(llama_path):
    model = load(llama_path)
    expected = model.generate(PROMPT, max_tokens=12, seed=4, config=SAMPLING).result.tokens
    generation = model.generate(PROMPT, max_tokens=12, seed=4, config=SAMPLING)
    first = next(generation)  # the model is now busy with this generation
    assert first

    def other():
        return model.generate("hello", max_tokens=4, seed=1).result

    with pytest.raises(RuntimeError, match="already generating"):
        run_threads([other])
    with pytest.raises(RuntimeError, match="already generating"):
        run_threads([lambda: model.generate_batch(["a", "b"], max_tokens=2)])
    with pytest.raises(RuntimeError, match="already generating"):
        run_threads([lambda: model.depth_logits("hello", d=2)])
    # the open generation was not disturbed by the refusals
    assert generation.result.tokens == expected
    # and once it is finished the model is free again
    assert model.generate(PROMPT, max_tokens=12, seed=4, config=SAMPLING).result.tokens == expected


def test_second_generation_in_the_same_thread_is_refused_until_close(llama_path):
    model = load(llama_path)
    generation = model.generate(PROMPT, max_tokens=12, seed=4)
    next(generation)
    with pytest.raises(RuntimeError, match="already generating"):
        model.generate("hello", max_tokens=4).result
    generation.close()
    with pytest.raises(RuntimeError, match="closed before it finished"):
        generation.result
    assert len(model.generate("hello", max_tokens=4, seed=0).result.tokens) == 4


@pytest.mark.parametrize("config", [SAMPLING, LED], ids=["sampling", "led"])
def test_racing_threads_on_one_model_never_interleave(llama_path, config):
    """Two threads hammer one Model: every call either returns exactly its single-threaded
    result or is refused with "already generating" - never a mixed-up result."""
    model = load(llama_path)
    seeds = {0: 11, 1: 22}
    expected = {
        seed: model.generate(PROMPT, max_tokens=16, seed=seed, config=config).result.tokens for seed in seeds.values()
    }
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()

    def worker(seed):
        def run():
            for _ in range(25):
                try:
                    tokens = model.generate(PROMPT, max_tokens=16, seed=seed, config=config).result.tokens
                except RuntimeError as error:
                    assert "already generating" in str(error), str(error)
                    with lock:
                        counts["refused"] += 1
                    continue
                assert tokens == expected[seed]
                with lock:
                    counts["ok"] += 1

        return run

    run_threads([worker(seeds[0]), worker(seeds[1])])
    assert counts["ok"] > 0 and counts["ok"] + counts["refused"] == 50, counts
    # still consistent afterwards
    assert model.generate(PROMPT, max_tokens=16, seed=seeds[0], config=config).result.tokens == expected[seeds[0]]


def test_generation_closed_from_another_thread_between_steps(llama_path):
    """A consumer in one thread, close() from another once it has seen a piece."""
    model = load(llama_path)
    generation = model.generate(PROMPT, max_tokens=40, seed=2)
    next(generation)
    run_threads([generation.close])
    with pytest.raises(StopIteration):
        next(generation)
    assert len(model.generate("hello", max_tokens=3, seed=0).result.tokens) == 3


def test_one_generation_iterated_from_two_threads(wide_path):
    """A second thread pulling from a Generation that another thread is inside: Python's own
    "generator already executing" refusal, and the first consumer gets the whole text."""
    model = load(wide_path, n_ctx=1024, n_batch=1024)
    prompt = list(range(1, 257)) * 3
    expected = model.generate(prompt, max_tokens=8, seed=3).result.text
    generation = model.generate(prompt, max_tokens=8, seed=3)
    started = threading.Event()
    pieces = []

    def consume():
        started.set()
        pieces.extend(generation)

    def intrude():
        started.wait(JOIN_TIMEOUT)
        time.sleep(0.05)  # the consumer is inside the prompt's llama_decode by now
        try:
            return next(generation)
        except ValueError as error:
            return error
        except StopIteration:
            return ""

    _, intruded = run_threads([consume, intrude])
    if isinstance(intruded, ValueError):
        assert "already executing" in str(intruded)
        assert "".join(pieces) == expected
    else:  # the consumer was between steps: the piece went to the intruder instead
        assert (intruded + "".join(pieces)) == expected or intruded in expected


_CLOSE_DURING_DECODE = """
import sys, threading, time
import led_cpp
model = led_cpp.Model(sys.argv[1], n_ctx=1024, n_threads=1, n_batch=1024, n_gpu_layers=0)
prompt = list(range(1, 257)) * 3
before = model.generate("hello", max_tokens=3, seed=0).result.tokens
for trial in range(3):
    generation = model.generate(prompt, max_tokens=200, seed=trial)
    outcome = []
    def consume():
        try:
            outcome.append(sum(1 for _ in generation))
        except RuntimeError as error:
            outcome.append(str(error))
    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.05 + 0.02 * trial)  # inside the prompt's llama_decode
    generation.close()
    try:  # the model may refuse ("already generating") while the decode winds down, but not crash
        model.generate("hello", max_tokens=3, seed=0).result
    except RuntimeError as error:
        assert "already generating" in str(error), error
    thread.join(60)
    assert not thread.is_alive() and outcome, outcome
assert model.generate("hello", max_tokens=3, seed=0).result.tokens == before
print("ok")
"""


def test_close_from_another_thread_during_a_decode(wide_path):
    """close() from another thread while the consumer is inside llama_decode (a cancel button):
    the consumer stops cleanly and the model stays usable.  In a subprocess, as it may crash."""
    run = subprocess.run(
        [sys.executable, "-c", _CLOSE_DURING_DECODE, str(wide_path)],
        capture_output=True,
        text=True,
        env=_NO_GDB,
        timeout=240,
    )
    assert run.returncode == 0 and "ok" in run.stdout, f"exit status {run.returncode}: {run.stderr.strip()[-800:]}"


# --------------------------------------------------------------------------- two Models


@pytest.mark.parametrize("config", [SAMPLING, LED], ids=["sampling", "led"])
def test_two_models_generate_concurrently(llama_path, qwen_path, config):
    """Two Models (two architectures, and two copies of one file) decode at the same time in
    two threads; each result equals its single-threaded result for the same seed."""
    models = [load(llama_path), load(qwen_path), load(llama_path)]
    jobs = [(0, 5), (1, 6), (2, 7)]
    expected = {
        job: models[job[0]].generate(PROMPT, max_tokens=24, seed=job[1], config=config).result.tokens for job in jobs
    }
    batch_expected = models[0].generate_batch([PROMPT, "hello"], n=2, max_tokens=8, seed=9, config=config)

    def work(index, seed):
        def run():
            out = []
            for _ in range(6):
                out.append(models[index].generate(PROMPT, max_tokens=24, seed=seed, config=config).result.tokens)
            return out

        return run

    for pair in ((jobs[0], jobs[1]), (jobs[0], jobs[2])):
        results = run_threads([work(*pair[0]), work(*pair[1])])
        for job, runs in zip(pair, results):
            assert all(tokens == expected[job] for tokens in runs), job

    def batch():
        return models[0].generate_batch([PROMPT, "hello"], n=2, max_tokens=8, seed=9, config=config)

    batch_result, single = run_threads([batch, work(1, 6)])
    assert [[r.tokens for r in p] for p in batch_result] == [[r.tokens for r in p] for p in batch_expected]
    assert all(tokens == expected[(1, 6)] for tokens in single)


# --------------------------------------------------------------------------- the GIL


@pytest.fixture(scope="module")
def wide_path(root) -> Path:
    """Wide enough that one prompt decode takes a noticeable time on one thread."""
    return write_tiny_model(
        root / "wide.gguf", "llama", n_layer=4, n_embd=256, n_head=4, n_head_kv=4, n_ff=1024, context_length=1024
    ).path


def test_gil_is_released_while_decoding(wide_path):
    """A Python thread runs while the main thread is inside the native generation call.

    No clock: the switch interval is raised so far that the interpreter never takes the GIL
    from the main thread on its own; the counter thread gives it back after every step
    (time.sleep(0)). It can then count during the call only if the native code released the GIL."""
    model = load(wide_path, n_ctx=1024, n_batch=1024)
    prompt = list(range(1, 257)) * 3  # 768 tokens, decoded in one llama_decode call
    stop = threading.Event()
    ready = threading.Event()
    counter = [0]

    def count():
        ready.set()
        while not stop.is_set():
            counter[0] += 1
            time.sleep(0)  # releases the GIL; reacquiring it waits for the main thread to release it

    generation = model.generate(prompt, max_tokens=4, seed=0)
    interval = sys.getswitchinterval()
    thread = threading.Thread(target=count, daemon=True)
    thread.start()
    ready.wait(JOIN_TIMEOUT)
    try:
        sys.setswitchinterval(1000.0)
        before = counter[0]
        result = generation.result
        during = counter[0] - before
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        thread.join(JOIN_TIMEOUT)
    assert 1 <= len(result.tokens) <= 4
    assert during > 0, "the counter thread never ran during the generation: the GIL seems held while decoding"


# --------------------------------------------------------------------------- memory


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


MB = 1 << 20
WARM_UP = 20


def _rss_growth(cycle, n_cycles):
    """Runs cycle(i) n_cycles times after WARM_UP warm-up cycles; returns (growth in bytes,
    samples of (cycle, rss))."""
    for i in range(WARM_UP):
        cycle(i)
    gc.collect()
    base = rss_bytes()
    samples = [(0, base)]
    for i in range(n_cycles):
        cycle(WARM_UP + i)
        if (i + 1) % max(1, n_cycles // 5) == 0:
            gc.collect()
            samples.append((i + 1, rss_bytes()))
    gc.collect()
    return rss_bytes() - base, samples


def _describe(samples):
    return ", ".join(f"{i}: {(rss - samples[0][1]) / MB:+.2f} MB" for i, rss in samples)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_load_generate_free_cycles_do_not_leak(llama_path):
    def cycle(i):
        model = load(llama_path)
        result = model.generate(PROMPT, max_tokens=3, seed=i).result
        assert len(result.tokens) == 3
        del model, result

    growth, samples = _rss_growth(cycle, 200)
    assert growth < 5 * MB, f"200 load/generate/free cycles grew the RSS by {growth / MB:.2f} MB ({_describe(samples)})"


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_open_close_generation_cycles_do_not_leak(llama_path):
    model = load(llama_path)

    def cycle(i):
        generation = model.generate(PROMPT, max_tokens=16, seed=i, config=LED if i % 2 else SAMPLING)
        assert next(generation)
        generation.close()

    growth, samples = _rss_growth(cycle, 1000)
    assert growth < 5 * MB, (
        f"1,000 open/close generation cycles grew the RSS by {growth / MB:.2f} MB ({_describe(samples)})"
    )
    assert len(model.generate(PROMPT, max_tokens=3, seed=0).result.tokens) == 3
