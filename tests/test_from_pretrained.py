"""Model.from_pretrained goes through huggingface-hub's cache and honours HF_HUB_OFFLINE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tiny_models import write_tiny_model

_SCRIPT = r"""
import sys
import led_cpp
cache = sys.argv[1]
model = led_cpp.Model.from_pretrained("example/tiny-llama", "tiny.gguf", cache_dir=cache, n_ctx=64, n_threads=1)
print("LOADED", model.architecture, model.n_layer)
try:
    led_cpp.Model.from_pretrained("example/not-cached", "tiny.gguf", cache_dir=cache)
except Exception as error:
    print("MISSING", type(error).__name__)
"""


def test_offline_cache_is_used(tmp_path: Path):
    # The layout huggingface-hub keeps for a downloaded file: a snapshot named by its commit.
    commit = "0" * 40
    repo = tmp_path / "models--example--tiny-llama"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    write_tiny_model(snapshot / "tiny.gguf", "llama")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    run = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-1500:]
    assert "LOADED llama 4" in run.stdout
    # offline, a file that is not cached is an error from huggingface-hub, not a download
    assert "MISSING" in run.stdout and "LOADED" not in run.stdout.split("MISSING")[1]
