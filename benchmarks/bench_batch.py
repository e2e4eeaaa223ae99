"""Many samples of one prompt: led_cpp's generate_batch beside what a user would run instead, in
one process, interleaved round by round.

    python benchmarks/bench_batch.py [--samples 16] [--tokens 128] [--threads 2] [--rounds 5] [--out results.json]

Rows (aggregate tok/s = generated tokens / wall seconds of the whole call, prompt included):
  llama-cpp-python, sequential   16 create_completion(stream=True) calls one after the other at the
                                 same settings (llama-cpp-python 0.3.36; pip install 'led_cpp[bench]')
  llama.cpp chain, batched       llama.cpp's own sampler chain (top-k 20, top-p 0.95, T 0.6, dist) on
                                 the host, the 16 sequences decoded together (each prefilled)
  raw argmax, batched            logits to the host + argmax, no sampler, 16 sequences together
  led_cpp generate, sequential   16 generate calls one after the other
  led_cpp generate_batch         SamplingConfig(), n=16 in one call
  LED generate_batch             LEDConfig(think_only=False), n=16 in one call

Ratios are computed within each round and reported as median [min-max] over the rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    MODELS,
    PROMPT,
    SAMPLING,
    fmt,
    interleave,
    llama_cpp_python,
    llama_cpp_python_stream,
    ratio,
    spread,
)


def measure(path: str, samples: int, tokens: int, threads: int, rounds: int) -> dict:
    import led_cpp

    model = led_cpp.Model(path, n_ctx=1024, n_threads=threads)
    prompt = model.prompt_tokens([{"role": "user", "content": PROMPT}] if model.chat_template else PROMPT)
    native = model._native
    runs = {}
    try:
        llm = llama_cpp_python(path, threads)
    except ImportError:
        print("llama-cpp-python is not installed (pip install 'led_cpp[bench]'): its row is skipped")
    else:

        def python_sequential(seed: int):
            start, generated = time.perf_counter(), 0
            for s in range(samples):
                generated += llama_cpp_python_stream(llm, prompt, tokens, max(seed, 0) * samples + s)[0]
            return generated, time.perf_counter() - start, {}

        runs["llama-cpp-python, sequential"] = python_sequential

    def chain(seed: int):
        out = native.chain_decode(prompt, tokens, samples, seed=max(seed, 0) * samples, **SAMPLING)
        return out["decode_tokens"], out["prompt_seconds"] + out["decode_seconds"], {}

    def raw(seed: int):
        out = native.raw_decode(len(prompt), tokens, samples)
        return out["decode_tokens"], out["prompt_seconds"] + out["decode_seconds"], {}

    runs["llama.cpp chain, batched"] = chain
    runs["raw argmax, batched"] = raw

    def sequential(seed: int):
        start = time.perf_counter()
        results = [
            model.generate(
                prompt, config=led_cpp.SamplingConfig(), max_tokens=tokens, seed=max(seed, 0) * samples + s
            ).result
            for s in range(samples)
        ]
        return sum(len(r.tokens) for r in results), time.perf_counter() - start, {}

    def batch(config):
        def run(seed: int):
            start = time.perf_counter()
            results = model.generate_batch(
                [prompt], n=samples, config=config, max_tokens=tokens, seed=max(seed, 0), n_parallel=samples
            )[0]
            seconds = time.perf_counter() - start
            return (
                sum(len(r.tokens) for r in results),
                seconds,
                {"explored": sum(r.explored_steps for r in results), "steps": sum(len(r.tokens) for r in results)},
            )

        return run

    runs["led_cpp generate, sequential"] = sequential
    runs["led_cpp generate_batch"] = batch(led_cpp.SamplingConfig())
    runs["LED generate_batch"] = batch(led_cpp.LEDConfig(think_only=False))
    return interleave(runs, rounds)


def report(name: str, measured: dict, args) -> dict:
    batch = "led_cpp generate_batch"
    out = {
        "tokens_per_second": {c: spread(m["tokens_per_second"]) for c, m in measured.items()},
        "tokens": {c: m["tokens"] for c, m in measured.items()},
        "ratios": {
            f"generate_batch / {c}": ratio(measured, batch, c)
            for c in measured
            if c not in (batch, "LED generate_batch")
        },
    }
    out["ratios"]["LED generate_batch / generate_batch"] = ratio(measured, "LED generate_batch", batch)
    extras = measured["LED generate_batch"]["extra"]
    out["explore_rate"] = sum(e["explored"] for e in extras) / max(sum(e["steps"] for e in extras), 1)
    print(
        f"\n{name}, 1 prompt, {args.samples} samples x {args.tokens} tokens, {args.threads} threads, "
        f"{args.rounds} interleaved rounds: median [min-max]"
    )
    print(f"{'run':<32}{'tok/s':>26}{'tokens':>14}")
    for config, m in measured.items():
        print(f"{config:<32}{fmt(spread(m['tokens_per_second']), 1):>26}{sorted(set(m['tokens']))!s:>14}")
    for label, r in out["ratios"].items():
        print(f"{label:<56}{fmt(r):>22}")
    print(f"LED explore rate at {args.samples} sequences: {out['explore_rate']:.3f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names of benchmarks.common.MODELS")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    for name in args.models.split(","):
        path = str(MODELS[name]())
        results[name] = report(name, measure(path, args.samples, args.tokens, args.threads, args.rounds), args)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
