"""Candidate counts up to the whole vocabulary on Gemma 3's 262,144 tokens: more than the 128k
values llama.cpp's backend-sampling probe hands a sampler, which once aborted the interpreter
(GGML_ASSERT in ggml_top_k). Each run is a subprocess, since that failure is an abort."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import json, sys
import led_cpp
from led_cpp import LEDConfig, SamplingConfig
model = led_cpp.Model(sys.argv[1], n_ctx=64, n_threads=1)
out = {"n_vocab": model.n_vocab}
for name, config in json.loads(sys.argv[2]).items():
    result = model.generate("The capital of France is", max_tokens=2, seed=5, config=eval(config), trace=True).result
    out[name] = {"tokens": result.tokens, "candidates": len(result.trace[0].candidates)}
print(json.dumps(out))
"""


def run(path, configs: dict) -> dict:
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), json.dumps(configs)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "GGML_NO_BACKTRACE": "1"},
    )
    assert process.returncode == 0, f"exit status {process.returncode}: {process.stderr.strip()[-800:]}"
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_whole_vocabulary_and_large_k_on_gemma(gemma_path):
    out = run(
        gemma_path,
        {
            "zero": "SamplingConfig(temperature=1.0, top_k=0, top_p=1.0)",
            "all": "SamplingConfig(temperature=1.0, top_k=model.n_vocab, top_p=1.0)",
            "large": "SamplingConfig(temperature=1.0, top_k=200000, top_p=1.0)",
            "led": "LEDConfig(temperature=1.0, d=2, k=200000, exploit=False, think_only=False)",
        },
    )
    n_vocab = out["n_vocab"]
    assert n_vocab > 128 * 1024
    # top_k=0 is the whole vocabulary: every token a candidate, the same draws as top_k=n_vocab.
    assert out["zero"]["candidates"] == out["all"]["candidates"] == n_vocab
    assert out["zero"]["tokens"] == out["all"]["tokens"] and len(out["zero"]["tokens"]) == 2
    assert out["large"]["candidates"] == out["led"]["candidates"] == 200000
