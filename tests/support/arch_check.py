"""What led_cpp does on each architecture of tests/support/arch_models.py, one process per architecture.

    python -m tests.support.arch_check ARCH            # one architecture's checks, as JSON on stdout
    python -m tests.support.arch_check --readme        # all of them (two at a time), rewriting README's table

Checks, in order (a failed check stops the rest and is reported with its error):
- ``loads``: the tiny random model loads (F32, flash attention off, F32 KV cache);
- ``samples``: greedy standard sampling gives 4 tokens, their argmax equals row 0 of
  ``depth_logits`` at every prefix, and temperature-1 sampling reports the final layer's
  log-probability of ``log_softmax(depth_logits[0])``;
- ``on_explore`` / ``every_step``: LED with the gate off under that projection explores
  every step with d entropies; both give the same tokens (``every_step`` also reports
  whether the depths went through the model's own head product, widened);
- ``parity``: at the first step (ln off and on) the candidates, top-1 probability and
  entropies equal the spec's arithmetic (tests/support/led_reference.py) on ``depth_logits``; every
  deeper row differs from row 0; ``depth_logits`` of a prompt decoded in chunks (the last
  one holding several tokens, so the output row is not the first) equals the one-batch value.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: the child process of run_isolated
    sys.path.insert(0, str(ROOT))

from tests.support.arch_models import ARCHITECTURES, llama_source, write_arch_model  # noqa: E402

CHECKS = ("loads", "samples", "on_explore", "every_step", "parity")
PROMPT = "Once upon a time"
K = 4
TEMPERATURE = 0.6
README = ROOT / "README.md"
BEGIN, END = "<!-- architectures:begin -->", "<!-- architectures:end -->"


def check(arch: str, root: Path) -> dict:
    """Runs the checks in this process; returns {check: True} up to the first failure, which
    maps to its error text."""
    import led_cpp
    from led_cpp import LEDConfig, SamplingConfig
    from tests.support import led_reference as reference

    result: dict = {}
    current = "loads"
    try:
        path = write_arch_model(root / f"{arch}.gguf", arch)
        options = dict(n_ctx=128, n_threads=1, kv_type="f32", flash_attention=False)
        model = led_cpp.Model(path, **options)
        assert model.architecture == arch, model.architecture
        d = model.n_layer
        result[current] = True

        current = "samples"
        prompt = model.prompt_tokens(PROMPT)
        greedy = model.generate(prompt, config=SamplingConfig(temperature=0), max_tokens=4, seed=0).result
        assert len(greedy.tokens) >= 1
        for i, token in enumerate(greedy.tokens):
            row0 = model.depth_logits(prompt + greedy.tokens[:i], d=1)[0]
            assert token == int(np.argmax(row0)), f"greedy token {token} is not the argmax of depth_logits row 0"
        sampled = model.generate(
            prompt, config=SamplingConfig(temperature=1.0, top_k=0, top_p=1.0), max_tokens=1, seed=3
        ).result
        row0 = model.depth_logits(prompt, d=1)[0].astype(np.float64)
        log_softmax = row0 - row0.max() - np.log(np.exp(row0 - row0.max()).sum())
        assert abs(sampled.logprobs[0] - log_softmax[sampled.tokens[0]]) < 1e-4, "log-probability differs from row 0"
        result[current] = True

        led = LEDConfig(temperature=TEMPERATURE, d=d, k=K, exploit=False, think_only=False)
        tokens = {}
        for projection in ("on_explore", "every_step"):
            current = projection
            projected = led_cpp.Model(path, led_projection=projection, **options)
            generation = projected.generate(prompt, config=led, max_tokens=4, seed=1, trace=True)
            run = generation.result
            assert run.tokens and len(run.trace) == len(run.tokens)
            assert all(step.explored and len(step.entropies) == d for step in run.trace), "a step did not explore"
            tokens[projection] = run.tokens
            if projection == "every_step":
                result["shared_head_product"] = bool(generation.stats.get("shared_head_product"))
                assert tokens["every_step"] == tokens["on_explore"], tokens
            result[current] = True

        current = "parity"
        for ln in (False, True):
            config = LEDConfig(temperature=TEMPERATURE, d=d, k=K, ln=ln, exploit=False, think_only=False)
            step = model.generate(prompt, config=config, max_tokens=1, seed=2, trace=True).result.trace[0]
            logits = model.depth_logits(prompt, d=d, ln=ln)
            assert np.all(np.isfinite(logits))
            want = reference.led_trace(logits, temperature=TEMPERATURE, k=K, exploit=False, u_gate=0.0, u_token=0.0)
            assert list(step.candidates) == [int(c) for c in want.C], (step.candidates, want.C)
            assert abs(step.top1_probability - float(want.q[0])) < 1e-5, (step.top1_probability, want.q[0])
            assert np.allclose(step.entropies, want.H, atol=1e-4, rtol=0), (step.entropies, want.H)
            spread = np.abs(logits[1:] - logits[0]).max(axis=1) / np.abs(logits[0]).max()
            assert np.all(spread > 1e-3), f"a deeper row equals row 0 (ln={ln}): {spread}"
            chunked = led_cpp.Model(path, n_batch=3, **options)
            long_prompt = model.prompt_tokens(PROMPT + " there lived")  # chunks of 3: the last holds 2 or 3
            whole = model.depth_logits(long_prompt, d=d, ln=ln)
            parts = chunked.depth_logits(long_prompt, d=d, ln=ln)
            relative = np.abs(parts - whole).max(axis=1) / np.abs(whole).max(axis=1)
            assert np.all(relative < 1e-4), f"chunked prefill reads other rows: {relative}"
        result[current] = True
    except Exception as error:  # reported, not raised: the parent asserts on the report
        result[current] = f"{type(error).__name__}: {error}"[:400]
    return result


def run_isolated(arch: str, timeout: float = 300.0) -> dict:
    """check(arch) in a child process, so that an abort is reported rather than fatal."""
    with tempfile.TemporaryDirectory() as root:
        completed = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), arch, root],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")},
        )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode == 0 and lines:
        return json.loads(lines[-1])
    done = {}
    for line in lines:  # the checks that finished before the process died
        if line.startswith("{"):
            done = json.loads(line)
    failed = next((name for name in CHECKS if name not in done), CHECKS[-1])
    tail = (completed.stderr.strip().splitlines() or [""])[-1]
    done[failed] = f"process ended with status {completed.returncode}: {tail}"[:400]
    return done


def run_all(architectures=None, workers: int = 2) -> dict:
    names = list(architectures or ARCHITECTURES)
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(names, pool.map(run_isolated, names)))


def llama_architectures() -> list[str]:
    """Every architecture name of the pinned llama.cpp (src/llama-arch.cpp), or [] if its
    source is not on this machine."""
    source = llama_source("src/llama-arch.cpp")
    if source is None:
        return []
    text = source.read_text()
    table = text[text.index("LLM_ARCH_NAMES") :]
    table = table[: table.index("};")]
    return [name for name in re.findall(r'\{\s*LLM_ARCH_\w+,\s*"([^"]+)"\s*\}', table) if not name.startswith("(")]


def cell(value) -> str:
    return "yes" if value is True else ("—" if value is None else "no")


def table_rows(results: dict) -> list[str]:
    rows = []
    for arch in sorted(results):
        outcome = results[arch]
        shared = outcome.get("shared_head_product")
        head = "—" if shared is None else ("widened" if shared else "separate")
        rows.append(f"| {arch} | " + " | ".join(cell(outcome.get(name)) for name in CHECKS) + f" | {head} |")
    return rows


def unchecked_line(results: dict, everything: list[str]) -> str:
    rest = sorted(set(everything) - set(results))
    return "Not checked (no tiny model of them is written yet): " + ", ".join(f"`{name}`" for name in rest) + "."


def readme_table(results: dict, everything: list[str]) -> str:
    header = [
        "| architecture | loads | samples | LED on_explore | LED every_step | parity | every_step head product |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    return "\n".join([BEGIN, *header, *table_rows(results), "", unchecked_line(results, everything), END])


def write_readme(results: dict) -> None:
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    README.write_text(text[:start] + readme_table(results, llama_architectures()) + text[end:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--readme"]:
        outcome = run_all()
        write_readme(outcome)
        for name, report in outcome.items():
            print(name, report)
    else:
        print(json.dumps(check(sys.argv[1], Path(sys.argv[2]))), flush=True)
