"""Many samples at once on SmolLM2-135M-Instruct: generate_batch vs sequential generate calls,
and LED vs standard sampling at 16 sequences, with llama.cpp's own batched decode beside them.

    python benchmarks/bench_batch.py [--samples 16] [--tokens 128] [--threads 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import smollm2_path  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]


def aggregate(results, seconds: float) -> dict:
    tokens = sum(len(result.tokens) for samples in results for result in samples)
    explored = sum(result.explored_steps for samples in results for result in samples)
    return {"tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / seconds,
            "explore_rate": explored / max(tokens, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import led_cpp

    model = led_cpp.Model(smollm2_path(), n_ctx=1024, n_threads=args.threads)
    standard, led = led_cpp.SamplingConfig(), led_cpp.LEDConfig(think_only=False)
    model.generate_batch([PROMPT], n=2, max_tokens=8, seed=0)  # warm up
    report = {}

    raw = model._native.raw_decode(32, args.tokens, args.samples)
    report["llama.cpp batched decode"] = {"tokens_per_second": raw["decode_tokens"] / raw["decode_seconds"]}

    start = time.perf_counter()
    sequential = [[model.generate(PROMPT, config=standard, max_tokens=args.tokens, seed=s).result
                   for s in range(args.samples)]]
    report["standard, sequential generate"] = aggregate(sequential, time.perf_counter() - start)
    for name, config in (("standard", standard), ("led", led), ("led, exploit off", led_cpp.LEDConfig(exploit=False, think_only=False))):
        start = time.perf_counter()
        results = model.generate_batch([PROMPT], n=args.samples, config=config, max_tokens=args.tokens, seed=1,
                                       n_parallel=args.samples)
        report[f"{name}, generate_batch"] = aggregate(results, time.perf_counter() - start)

    base = report["standard, generate_batch"]["tokens_per_second"]
    print(f"SmolLM2-135M-Instruct, 1 prompt, {args.samples} samples x {args.tokens} tokens, {args.threads} threads")
    print(f"{'run':<34}{'tok/s':>9}{'x std batch':>13}{'explore':>9}")
    for name, row in report.items():
        print(f"{name:<34}{row['tokens_per_second']:>9.1f}{row['tokens_per_second'] / base:>13.2f}"
              f"{row.get('explore_rate', 0.0):>9.2f}")
    speedup = base / report["standard, sequential generate"]["tokens_per_second"]
    print(f"generate_batch / sequential generate = {speedup:.2f}x (goal >= 3x); "
          f"LED / standard at {args.samples} sequences = {report['led, generate_batch']['tokens_per_second'] / base:.2f} "
          "(goal >= 0.8)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
