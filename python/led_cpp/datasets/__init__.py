"""Benchmark problems shipped with led_cpp as package data.

Each ``<name>.json`` holds ``[{"prompt": [{"from": "user", "value": QUESTION}],
"final_answer": ANSWER}]``: GSM8K test (1,319), MATH500 (500), AIME 2024 (30) and
AIME 2025 (30). Load them with :func:`led_cpp.evaluation.load_dataset`.
"""

from __future__ import annotations

from pathlib import Path

#: Names accepted by ``load_dataset`` / ``led-cpp eval --dataset``.
NAMES = ("gsm8k", "math500", "aime2024", "aime2025")


def path(name: str) -> Path:
    """The JSON file of the bundled dataset ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise KeyError(f"unknown dataset {name!r}; bundled: {', '.join(NAMES)}")
    return Path(__file__).with_name(f"{name}.json")
