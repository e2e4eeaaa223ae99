"""LED on every architecture of tests/support/arch_models.py, each checked in a process of its own
(tests/support/arch_check.py says what is checked), and README's table of them equal to the checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

pytest.importorskip("gguf")
from tests.support import arch_check  # noqa: E402
from tests.support.arch_models import ARCHITECTURES, check_names  # noqa: E402

# The graphs LED could not read before: output rows selected after the layer loop, the last
# layer's output renamed (step35) or never named l_out (deepseek4), l_out-<il> naming a tensor
# inside the layer (nemotron_h).
NEWLY_COVERED = (
    "gpt-oss",
    "qwen35",
    "qwen35moe",
    "qwen3next",
    "gemma4",
    "nemotron_h",
    "bailingmoe3",
    "cohere2moe",
    "step35",
    "deepseek4",
)


@pytest.fixture(scope="module")
def reports() -> dict:
    return arch_check.run_all()


def test_the_table_covers_the_architectures_asked_for():
    assert set(NEWLY_COVERED) | {"llama", "qwen3", "gemma3"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_tensor_names_are_llama_cpps(arch):
    if not check_names(arch):
        pytest.skip(f"neither the installed gguf nor a llama.cpp source tree knows {arch}'s tensor names")


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture(reports, arch):
    report = reports[arch]
    failed = {name: report.get(name) for name in arch_check.CHECKS if report.get(name) is not True}
    assert not failed, f"{arch}: {failed}"
    # every_step widens the model's own head product on these graphs as on llama's
    assert report["shared_head_product"] is True


@pytest.mark.slow
def test_readme_table_is_the_checks(reports):
    text = arch_check.README.read_text()
    start, end = text.index(arch_check.BEGIN), text.index(arch_check.END)
    block = text[start:end].splitlines()
    rows = [line for line in block if line.startswith("| ") and not line.startswith(("| architecture", "| ---"))]
    assert rows == arch_check.table_rows(reports), (
        "README's table is not the checks' result; run python -m tests.support.arch_check --readme"
    )
    unchecked = [line for line in block if line.startswith("Not checked")]
    assert len(unchecked) == 1
    listed = set(unchecked[0].split("`")[1::2])
    assert not listed & set(reports), "README lists a checked architecture as not checked"
    everything = arch_check.llama_architectures()
    if everything:
        assert listed | set(reports) == set(everything), "README does not list the pinned llama.cpp's architectures"
