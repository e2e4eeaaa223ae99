"""Model.from_pretrained goes through huggingface-hub's cache and honours HF_HUB_OFFLINE."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.tiny_models import write_tiny_model

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
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr[-1500:]
    assert "LOADED llama 4" in run.stdout
    # offline, a file that is not cached is an error from huggingface-hub, not a download
    assert "MISSING" in run.stdout and "LOADED" not in run.stdout.split("MISSING")[1]


# --------------------------------------------------------------------------- globs and split models
_GLOB_SCRIPT = r"""
import sys
import led_cpp
cache = sys.argv[1]
greedy = led_cpp.SamplingConfig(temperature=0)

def attempt(label, filename):
    try:
        model = led_cpp.Model.from_pretrained("example/tiny-quants", filename, cache_dir=cache, n_ctx=64,
                                              n_threads=1)
    except Exception as error:
        print(label, "ERROR", type(error).__name__, str(error).replace("\n", " "))
        return
    tokens = model.generate([1, 2, 3], max_tokens=6, config=greedy).result.tokens
    print(label, "LOADED", model.path.name, len(model.summary.parts), tokens)

attempt("whole", "tiny-Q8_0.gguf")
attempt("glob-split", "*split*.gguf")
attempt("name-first", "tiny-split-00001-of-00003.gguf")
attempt("name-second", "tiny-split-00002-of-00003.gguf")
attempt("glob-ambiguous", "*Q4_K_M.gguf")
attempt("glob-none", "*Q2_K.gguf")
"""


def _fake_snapshot(root: Path, repo_id: str) -> Path:
    """The layout huggingface-hub keeps for a repository: refs/main names a snapshot folder."""
    commit = "1" * 40
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    return snapshot


def test_glob_and_split_model_offline(tmp_path: Path):
    snapshot = _fake_snapshot(tmp_path, "example/tiny-quants")
    write_tiny_model(snapshot / "tiny-Q8_0.gguf", "llama", seed=5)
    write_tiny_model(snapshot / "tiny-split.gguf", "llama", seed=5, split_max_tensors=16)  # 3 parts
    write_tiny_model(snapshot / "a-Q4_K_M.gguf", "llama", seed=1)
    (snapshot / "sub").mkdir()
    write_tiny_model(snapshot / "sub" / "b-Q4_K_M.gguf", "llama", seed=2)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    run = subprocess.run(
        [sys.executable, "-c", _GLOB_SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-1500:]
    lines = {line.split()[0]: line for line in run.stdout.splitlines()}
    whole = lines["whole"].split("LOADED tiny-Q8_0.gguf 1 ")[1]
    # the split model (same weights) loads from its first part, found by a glob or a part's name
    for label in ("glob-split", "name-first", "name-second"):
        assert lines[label] == f"{label} LOADED tiny-split-00001-of-00003.gguf 3 {whole}"
    assert "ERROR ValueError" in lines["glob-ambiguous"]
    assert "matches 2 models" in lines["glob-ambiguous"]
    assert "a-Q4_K_M.gguf" in lines["glob-ambiguous"] and "sub/b-Q4_K_M.gguf" in lines["glob-ambiguous"]
    assert "ERROR ValueError no GGUF file in example/tiny-quants matches '*Q2_K.gguf'" in lines["glob-none"]
    assert "tiny-Q8_0.gguf" in lines["glob-none"]


def test_split_model_with_a_missing_part_offline(tmp_path: Path):
    snapshot = _fake_snapshot(tmp_path, "example/tiny-quants")
    write_tiny_model(snapshot / "tiny-split.gguf", "llama", split_max_tensors=16)
    (snapshot / "tiny-split-00002-of-00003.gguf").unlink()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    run = subprocess.run(
        [sys.executable, "-c", _GLOB_SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr[-1500:]
    lines = {line.split()[0]: line for line in run.stdout.splitlines()}
    assert "lacks tiny-split-00002-of-00003.gguf" in lines["glob-split"]
    # named directly, the hub cache has no such file offline
    assert "LOADED" not in lines["name-first"] and "ERROR" in lines["name-first"]
