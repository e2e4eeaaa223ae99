"""Single-sequence decode speed and memory: led_cpp (standard and LED) next to llama.cpp's own
decode of the same model in the same process, on both real models.

    python benchmarks/bench_decode.py [--tokens 128] [--threads 2] [--out results.json]

Each configuration runs in its own interpreter so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import MODELS, head_share, in_subprocess  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def run(path: str, config: str, tokens: int, threads: int, repeats: int = 3) -> dict:
    import led_cpp

    model = led_cpp.Model(path, n_ctx=1024, n_threads=threads)
    if config == "llama.cpp":
        model._native.raw_decode(16, 8, 1)  # warm up
        best = min((model._native.raw_decode(16, tokens, 1) for _ in range(repeats)), key=lambda t: t["decode_seconds"])
        return {"tokens_per_second": best["decode_tokens"] / best["decode_seconds"], "explore_rate": 0.0, "steps": tokens}
    decoding = {
        "standard": led_cpp.SamplingConfig(),
        "led": led_cpp.LEDConfig(think_only=False),
        "led-no-exploit": led_cpp.LEDConfig(exploit=False, think_only=False),
    }[config]
    prompt = [{"role": "user", "content": PROMPT}] if model.chat_template else PROMPT
    model.generate(prompt, config=decoding, max_tokens=8, seed=0).result  # warm up
    runs = []
    for seed in range(repeats):
        generation = model.generate(prompt, config=decoding, max_tokens=tokens, seed=seed)
        result = generation.result
        runs.append((result.timings.decode_seconds, len(result.tokens), result.explored_steps, generation.stats))
    seconds = sum(run[0] for run in runs)
    steps = sum(run[1] for run in runs)
    explored = sum(run[2] for run in runs)
    return {"tokens_per_second": steps / seconds, "explore_rate": explored / max(steps, 1), "steps": steps,
            "explore_graphs": sum(run[3]["explore_graphs"] for run in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    report = {}
    for name, locate in MODELS.items():
        path = str(locate())
        rows = {config: in_subprocess("bench_decode.run", path=path, config=config, tokens=args.tokens,
                                      threads=args.threads)
                for config in ("llama.cpp", "standard", "led", "led-no-exploit")}
        standard = rows["standard"]
        always = rows["led-no-exploit"]
        per_step_ms = (1 / always["tokens_per_second"] - 1 / standard["tokens_per_second"]) * 1e3
        report[name] = {"rows": rows, "head_share": head_share(Path(path)),
                        "extra_ms_per_explored_step": per_step_ms / max(always["explore_rate"], 1e-9)}
        print(f"\n{name}  (threads {args.threads}, {args.tokens} new tokens, single sequence)")
        print(f"{'config':<16}{'tok/s':>9}{'x standard':>12}{'explore':>9}{'peak RSS MB':>13}")
        for config, row in rows.items():
            print(f"{config:<16}{row['tokens_per_second']:>9.1f}{row['tokens_per_second'] / standard['tokens_per_second']:>12.2f}"
                  f"{row['explore_rate']:>9.2f}{row['peak_rss_mb']:>13.0f}")
        print(f"output head share h = {report[name]['head_share']:.3f}; extra time per explored step "
              f"(d-1 = 7 head projections + posterior) = {report[name]['extra_ms_per_explored_step']:.2f} ms")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
