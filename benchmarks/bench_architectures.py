"""LED's decode speed on an architecture whose output rows are selected after the layer loop
(random-weight Qwen3.5 of SmolLM2-135M's size) beside SmolLM2-135M-Instruct itself.

    python benchmarks/bench_architectures.py [--tokens 128] [--threads 2] [--arch qwen35]

The random models are written by tests/support/arch_models.py with SmolLM2's sizes (hidden 576, 30
layers, 9 heads of 64, 3 KV heads, n_ff 1536, vocabulary 49152; in Qwen3.5 every other layer is
a gated delta net) and quantized once to Q8_0 into the test cache (led_cpp's quantizer offers
Q8_0, Q4_K_M or F16; 576 is no multiple of 256): a random llama of the same shape and type is the
like-for-like baseline, SmolLM2 itself (Q4_1) the real one. Rows: led_cpp standard sampling, LED with the gate, LED
with the gate off under each projection; the every_step row says whether the depths went
through the model's own head product, widened. Each row runs in its own interpreter.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import CACHE, in_subprocess, smollm2_path  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and a storm."
SMOLLM2_SIZE = dict(E=576, L=30, N=9, NKV=3, H=64, F=1536, DS=64, DT=8, G=4, FE=768, FS=768)
CONFIGS = ("standard", "led", "led-no-exploit", "led-no-exploit-every-step")


def random_model(arch: str) -> Path:
    target = CACHE / f"random-{arch}-smollm2-size.Q8_0.gguf"
    if not target.is_file():
        from led_cpp import _core
        from tests.support.arch_models import write_arch_model

        CACHE.mkdir(parents=True, exist_ok=True)
        f32 = target.with_suffix(".f32.gguf")
        write_arch_model(f32, arch, n_vocab=49152, **SMOLLM2_SIZE)
        _core.quantize(str(f32), str(target), "Q8_0", 0)
        f32.unlink()
    return target


def run(path: str, config: str, tokens: int, threads: int, repeats: int = 3) -> dict:
    import led_cpp

    projection = "every_step" if config.endswith("every-step") else "on_explore"
    model = led_cpp.Model(path, n_ctx=1024, n_threads=threads, led_projection=projection)
    decoding = (
        led_cpp.SamplingConfig()
        if config == "standard"
        else led_cpp.LEDConfig(exploit=config == "led", think_only=False)
    )
    _ = model.generate(PROMPT, config=decoding, max_tokens=8, seed=0).result  # warm up
    seconds = steps = explored = 0.0
    shared = False
    for seed in range(repeats):
        generation = model.generate(PROMPT, config=decoding, max_tokens=tokens, seed=seed, stop=())
        result = generation.result
        seconds += result.timings.decode_seconds
        steps += len(result.tokens)
        explored += result.explored_steps
        shared = shared or bool(generation.stats.get("shared_head_product"))  # any decode step
    return {
        "tokens_per_second": steps / seconds,
        "explore_rate": explored / max(steps, 1),
        "shared_head_product": shared,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arch", default="qwen35")
    args = parser.parse_args()
    models = {
        "SmolLM2-135M-Instruct Q4_1": smollm2_path(),
        "random llama, SmolLM2 size, Q8_0": random_model("llama"),
        f"random {args.arch}, SmolLM2 size, Q8_0": random_model(args.arch),
    }
    print(f"threads {args.threads}, {args.tokens} new tokens, single sequence; tok/s (x standard), explore rate")
    print(f"{'model':<40}" + "".join(f"{config:>28}" for config in CONFIGS))
    for name, path in models.items():
        rows = {
            config: in_subprocess(
                "bench_architectures.run", path=str(path), config=config, tokens=args.tokens, threads=args.threads
            )
            for config in CONFIGS
        }
        base = rows["standard"]["tokens_per_second"]
        cells = [
            f"{row['tokens_per_second']:.1f} ({row['tokens_per_second'] / base:.2f}x) {row['explore_rate']:.2f}"
            for row in rows.values()
        ]
        print(
            f"{name:<40}"
            + "".join(f"{cell:>28}" for cell in cells)
            + f"   every_step head product widened: {rows['led-no-exploit-every-step']['shared_head_product']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
