"""What the installed package carries besides code: the licences of the code it links in
statically (llama.cpp and ggml, pybind11; installed by CMakeLists.txt next to the extension), and one version."""

from __future__ import annotations

import re
from pathlib import Path

import led_cpp
from led_cpp import _core

ROOT = Path(__file__).resolve().parents[1]


def test_licences_of_the_statically_linked_code_are_installed_next_to_the_extension():
    licences = Path(_core.__file__).resolve().parent / "licenses"
    text = (licences / "LICENSE-llama.cpp").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "The ggml authors" in text
    ggml = licences / "LICENSE-ggml"  # only where the llama.cpp checkout has ggml/LICENSE
    assert not ggml.exists() or "MIT License" in ggml.read_text(encoding="utf-8")
    assert "Wenzel Jakob" in (licences / "LICENSE-pybind11").read_text(encoding="utf-8")  # pybind11, compiled in too


def test_version_is_the_one_in_pyproject():
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert declared is not None
    assert led_cpp.__version__ == declared.group(1)
