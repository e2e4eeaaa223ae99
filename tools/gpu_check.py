"""The GPU checks and measurements of tools/gpu_check.sh, as one JSON report.

    python tools/gpu_check.py --out DIR [--shape qwen3-4b] [--tokens 128] [--sequences 16]

1. Parity on the tiny test models: GPU (all layers offloaded) against CPU (n_gpu_layers=0) in
   the same build: per-depth logits to 1e-2 relative, greedy LED tokens and chosen depths, on the
   GPU both with the depths projected in the model graph (led_projection "auto" = "every_step"
   there) and by the second graph ("on_explore").
2. A random-weight model of the given shape, quantized to Q4_K_M with llama.cpp's API.
3. Decode speed at 1 and N sequences: llama.cpp's own decode (no sampler, logits to the host,
   as llama-batched-bench) and led_cpp with SamplingConfig, LEDConfig and LEDConfig(exploit=False)
   (and LEDConfig with led_projection="on_explore" for comparison); peak GPU memory of each, each
   in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def relative_error(a, b) -> float:
    import numpy as np

    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def parity(workdir: str) -> dict:
    import led_cpp
    from tests.support.tiny_models import write_tiny_model

    report = {}
    for arch in ("llama", "qwen3", "gemma3"):
        tiny = write_tiny_model(Path(workdir) / f"tiny-{arch}.gguf", arch, seed=1)
        gpu = led_cpp.Model(tiny.path, n_ctx=256, n_gpu_layers=-1, kv_type="f32")
        gpu_on_explore = led_cpp.Model(
            tiny.path, n_ctx=256, n_gpu_layers=-1, kv_type="f32", led_projection="on_explore"
        )
        cpu = led_cpp.Model(tiny.path, n_ctx=256, n_gpu_layers=0, kv_type="f32")
        prompt = tiny.encode("The quick brown fox jumps over the lazy dog.")
        errors = {}
        for ln in (False, True):
            for counting in ("paper", "reference"):
                a = gpu.depth_logits(prompt, d=tiny.n_layer, ln=ln, layer_counting=counting)
                b = cpu.depth_logits(prompt, d=tiny.n_layer, ln=ln, layer_counting=counting)
                errors[f"ln={ln},{counting}"] = relative_error(a, b)
        config = led_cpp.LEDConfig(temperature=0, d=tiny.n_layer, k=8, exploit=False, think_only=False)
        generations = [
            model.generate(prompt, config=config, max_tokens=32, seed=3, trace=True)
            for model in (gpu, gpu_on_explore, cpu)
        ]
        runs = [generation.result for generation in generations]
        depths = [[step.depth for step in run.trace] for run in runs]
        gaps = [max(step.entropies) - sorted(step.entropies)[-2] for step in runs[2].trace]
        report[arch] = {
            "max_relative_error_depth_logits": max(errors.values()),
            "relative_errors": errors,
            "tokens_equal": runs[0].tokens == runs[2].tokens,
            "depths_equal": depths[0] == depths[2],
            "on_explore_tokens_equal": runs[1].tokens == runs[2].tokens,
            "on_explore_depths_equal": depths[1] == depths[2],
            "gpu_second_graphs": [generation.stats["explore_graphs"] for generation in generations[:2]],
            "n_tokens": len(runs[0].tokens),
            "smallest_entropy_gap_cpu": min(gaps) if gaps else None,
        }
        del gpu, gpu_on_explore, cpu
    return report


def measure(model_path: str, config: str, sequences: int, tokens: int, prompt_tokens: int) -> dict:
    """One measurement, run in its own process (see run_measurement)."""
    import random

    import led_cpp

    projection = "on_explore" if config == "led-on-explore" else "auto"
    model = led_cpp.Model(
        model_path, n_ctx=prompt_tokens + tokens + 16, n_gpu_layers=-1, n_batch=512, led_projection=projection
    )
    rng = random.Random(0)
    prompts = [[rng.randrange(0, model.n_vocab - 3) for _ in range(prompt_tokens)]]
    if config == "llama.cpp":
        model._native.raw_decode(prompt_tokens, 8, sequences)
        timings = model._native.raw_decode(prompt_tokens, tokens, sequences)
        return {"tokens_per_second": timings["decode_tokens"] / timings["decode_seconds"], "explore_rate": 0.0}
    d = min(8, model.n_layer)
    decoding = {
        "standard": led_cpp.SamplingConfig(),
        "led": led_cpp.LEDConfig(d=d, think_only=False),
        "led-on-explore": led_cpp.LEDConfig(d=d, think_only=False),
        "led-no-exploit": led_cpp.LEDConfig(d=d, exploit=False, think_only=False),
    }[config]
    model.generate_batch(prompts, n=sequences, config=decoding, max_tokens=8, seed=1)  # warm up
    stream = model.stream_batch(prompts, n=sequences, config=decoding, max_tokens=tokens, seed=2, n_parallel=sequences)
    for _ in stream:
        pass
    results = stream.results[0]
    generated = sum(len(result.tokens) for result in results)
    seconds = max(result.timings.decode_seconds for result in results)
    explored = sum(result.explored_steps for result in results)
    return {
        "tokens_per_second": generated / seconds,
        "explore_rate": explored / max(generated, 1),
        "generated": generated,
        "second_graphs": stream.stats["explore_graphs"],
        "every_step": stream.stats["every_step"],
        "shared_head_product": stream.stats["shared_head_product"],
    }


def gpu_memory_used() -> int:
    """MiB in use on GPU 0, or -1 where nvidia-smi is missing (a CPU dry run)."""
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        return -1
    return int(output.stdout.strip().splitlines()[0]) if output.returncode == 0 else -1


def run_in_process(function: str, **kwargs) -> dict:
    """Runs one of this module's functions in its own process, so a crash is reported, not fatal."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r});"
        f"from tools.gpu_check import {function};"
        f"print('RESULT ' + json.dumps({function}(**json.loads(sys.argv[1]))))"
    )
    output = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True)
    lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
    if output.returncode != 0 or not lines:
        return {"error": (output.stderr or output.stdout)[-1500:], "returncode": output.returncode}
    return json.loads(lines[-1][7:])


def run_measurement(**kwargs) -> dict:
    baseline = gpu_memory_used()
    peak = [baseline]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], gpu_memory_used())
            time.sleep(0.05)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    result = run_in_process("measure", **kwargs)
    done.set()
    thread.join()
    if "error" in result:
        return result
    result["peak_gpu_memory_mib"] = peak[0] - baseline if baseline >= 0 else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shape", default="qwen3-4b")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--sequences", type=int, default=16)
    parser.add_argument("--skip-parity", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"shape": args.shape, "tokens": args.tokens, "prompt_tokens": args.prompt_tokens}
    started = time.perf_counter()

    def save() -> None:
        report["seconds"] = time.perf_counter() - started
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))

    if not args.skip_parity:
        report["parity"] = run_in_process("parity", workdir=str(args.out))
        print("parity:", json.dumps(report["parity"], indent=1), flush=True)
        save()

    from led_cpp import _core
    from tools.random_model import SHAPES, write

    model_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"random-{args.shape}-q4_k_m.gguf"
    f16 = model_path.with_suffix(".f16.gguf")
    start = time.perf_counter()
    write(f16, SHAPES[args.shape])
    report["write_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    _core.quantize(str(f16), str(model_path), "Q4_K_M", os.cpu_count() or 1)
    f16.unlink()
    report["quantize_seconds"] = time.perf_counter() - start
    report["model_gib"] = model_path.stat().st_size / 2**30
    print(
        f"model: {report['model_gib']:.2f} GiB, written in {report['write_seconds']:.0f} s, "
        f"quantized in {report['quantize_seconds']:.0f} s",
        flush=True,
    )
    save()

    rows = report.setdefault("decode", {})
    for sequences in (1, args.sequences):
        for config in ("llama.cpp", "standard", "led", "led-no-exploit", "led-on-explore"):
            key = f"{config}@{sequences}"
            rows[key] = run_measurement(
                model_path=str(model_path),
                config=config,
                sequences=sequences,
                tokens=args.tokens,
                prompt_tokens=args.prompt_tokens,
            )
            print(key, json.dumps(rows[key]), flush=True)
            save()
    for sequences in (1, args.sequences):
        base = rows.get(f"standard@{sequences}", {}).get("tokens_per_second")
        own = rows.get(f"llama.cpp@{sequences}", {}).get("tokens_per_second")
        if base and own:
            report.setdefault("ratios", {})[f"standard/llama.cpp@{sequences}"] = base / own
            for config in ("led", "led-no-exploit", "led-on-explore"):
                value = rows.get(f"{config}@{sequences}", {}).get("tokens_per_second")
                if value:
                    report["ratios"][f"{config}/standard@{sequences}"] = value / base
    save()
    print(json.dumps(report.get("ratios", {}), indent=1))


if __name__ == "__main__":
    main()
