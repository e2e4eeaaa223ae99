"""Single-sequence decode speed on both real models: led_cpp (standard sampling and LED) beside
what a user would run instead, all in one process, interleaved round by round.

    python benchmarks/bench_decode.py [--tokens 128] [--threads 2] [--rounds 5] [--out results.json]

Columns, each the same prompt tokens and the same number of new tokens:
  llama.cpp chain (host)     llama.cpp's own sampler chain top-k 20 -> top-p 0.95 -> temperature 0.6
                             -> dist on the host, as llama-cli and llama-server sample by default
  llama.cpp chain (backend)  the same chain as llama.cpp's backend samplers, in the model graph
  llama-cpp-python           Llama.create_completion(stream=True) at the same settings (0.3.36, the
                             same pinned llama.cpp; pip install 'led_cpp[bench]'); skipped if absent
  raw argmax                 logits copied to the host and argmax, no sampler (llama-batched-bench)
  led_cpp standard           SamplingConfig() (top-k 20, top-p 0.95, T 0.6)
  LED (gate)                 LEDConfig(think_only=False): explores only where the final layer is unsure
  LED, exploit off           LEDConfig(exploit=False, think_only=False): explores every step

Every configuration runs once per round, in turn, so load from other processes falls on all of
them alike; a ratio is computed within each round and reported as median [min-max] over rounds.
--rss adds each led_cpp configuration's peak resident set, measured in its own interpreter.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    MODELS,
    PROMPT,
    SAMPLING,
    fmt,
    head_share,
    in_subprocess,
    interleave,
    llama_cpp_python,
    llama_cpp_python_stream,
    ratio,
    spread,
)

D = 8  # LEDConfig's default depths: an explored step projects d - 1 of them through the head


def led_configs():
    import led_cpp

    return {
        "led_cpp standard": led_cpp.SamplingConfig(),
        "LED (gate)": led_cpp.LEDConfig(think_only=False),
        "LED, exploit off": led_cpp.LEDConfig(exploit=False, think_only=False),
    }


def peak_rss(path: str, config: str, tokens: int, threads: int) -> dict:
    """Run in its own interpreter by --rss: one generation, so the peak RSS is this config's."""
    import led_cpp

    model = led_cpp.Model(path, n_ctx=1024, n_threads=threads)
    prompt = [{"role": "user", "content": PROMPT}] if model.chat_template else PROMPT
    _ = model.generate(prompt, config=led_configs()[config], max_tokens=tokens, seed=0).result
    return {}


def measure(path: str, tokens: int, threads: int, rounds: int) -> dict:
    import led_cpp

    model = led_cpp.Model(path, n_ctx=1024, n_threads=threads)
    prompt = model.prompt_tokens([{"role": "user", "content": PROMPT}] if model.chat_template else PROMPT)
    native = model._native
    runs = {}

    def chain(backend: bool):
        def run(seed: int):
            out = native.chain_decode(prompt, tokens, 1, seed=max(seed, 0), backend=backend, **SAMPLING)
            return out["decode_tokens"], out["decode_seconds"], {}

        return run

    runs["llama.cpp chain (host)"] = chain(False)
    runs["llama.cpp chain (backend)"] = chain(True)
    try:
        llm = llama_cpp_python(path, threads)
    except ImportError:
        print("llama-cpp-python is not installed (pip install 'led_cpp[bench]'): its column is skipped")
    else:

        def python_stream(seed: int):
            n, seconds = llama_cpp_python_stream(llm, prompt, tokens, max(seed, 0))
            return n, seconds, {}

        runs["llama-cpp-python"] = python_stream

    def raw(seed: int):
        out = native.raw_decode(len(prompt), tokens, 1)
        return out["decode_tokens"], out["decode_seconds"], {}

    runs["raw argmax (no sampler)"] = raw

    def generate(config):
        def run(seed: int):
            result = model.generate(prompt, config=config, max_tokens=tokens, seed=max(seed, 0)).result
            return (
                result.timings.decode_tokens,
                result.timings.decode_seconds,
                {"explored": result.explored_steps, "steps": len(result.tokens)},
            )

        return run

    for name, config in led_configs().items():
        runs[name] = generate(config)
    return interleave(runs, rounds)


def report(name: str, path: str, measured: dict, args) -> dict:
    def explore_rate(config: str) -> float:
        extras = measured[config]["extra"]
        return sum(e["explored"] for e in extras) / max(sum(e["steps"] for e in extras), 1)

    standard = "led_cpp standard"
    e_gate, e_always = explore_rate("LED (gate)"), explore_rate("LED, exploit off")
    seconds = {c: 1 / spread(m["tokens_per_second"])["median"] for c, m in measured.items()}
    # One explored step's extra time, from the always-exploring run (medians).
    step_ms = (seconds["LED, exploit off"] - seconds[standard]) / max(e_always, 1e-9) * 1e3
    h = head_share(Path(path))
    predicted = 1 / (1 + e_gate * step_ms / 1e3 / seconds[standard])
    byte_bound = 1 / (1 + e_gate * (D - 1) * h)
    out = {
        "tokens_per_second": {c: spread(m["tokens_per_second"]) for c, m in measured.items()},
        "tokens": {c: m["tokens"] for c, m in measured.items()},
        "ratios": {
            f"standard / {c}": ratio(measured, standard, c)
            for c in measured
            if c not in (standard, "LED (gate)", "LED, exploit off")
        },
        "led_over_standard": ratio(measured, "LED (gate)", standard),
        "led_always_over_standard": ratio(measured, "LED, exploit off", standard),
        "explore_rate_gate": e_gate,
        "explore_rate_always": e_always,
        "head_share": h,
        "explored_step_ms": step_ms,
        "led_over_standard_from_step_cost": predicted,
        "led_over_standard_byte_bound": byte_bound,
    }
    out["ratios"]["LED (gate) / standard"] = out["led_over_standard"]
    print(
        f"\n{name}  (threads {args.threads}, {args.tokens} new tokens, single sequence, "
        f"{args.rounds} interleaved rounds: median [min-max])"
    )
    print(f"{'config':<28}{'tok/s':>26}{'tokens':>10}")
    for config, m in measured.items():
        print(f"{config:<28}{fmt(spread(m['tokens_per_second']), 1):>26}{sorted(set(m['tokens']))!s:>10}")
    for label, r in out["ratios"].items():
        print(f"{label:<48}{fmt(r):>22}")
    print(
        f"LED (gate): explore rate e = {e_gate:.3f}; head share h = {h:.3f}; one explored step costs "
        f"{step_ms:.2f} ms (from exploit off, e = {e_always:.2f}); LED / standard expected "
        f"1 / (1 + e * step / t_std) = {predicted:.2f}, byte bound 1 / (1 + e (d-1) h) = {byte_bound:.2f}"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names of benchmarks.common.MODELS")
    parser.add_argument("--rss", action="store_true", help="also each led_cpp config's peak RSS (own interpreter)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    for name in args.models.split(","):
        path = str(MODELS[name]())
        measured = measure(path, args.tokens, args.threads, args.rounds)
        results[name] = report(name, path, measured, args)
        if args.rss:
            results[name]["peak_rss_mb"] = {
                config: in_subprocess(
                    "bench_decode.peak_rss", path=path, config=config, tokens=args.tokens, threads=args.threads
                )["peak_rss_mb"]
                for config in ("led_cpp standard", "LED (gate)")
            }
            print("peak RSS MB: " + ", ".join(f"{c} {v:.0f}" for c, v in results[name]["peak_rss_mb"].items()))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
