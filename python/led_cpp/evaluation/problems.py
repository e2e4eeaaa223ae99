"""Benchmark problems: the bundled datasets or a JSON file, and the first ``limit`` of them."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from .. import datasets as bundled


@dataclass(frozen=True)
class Problem:
    id: str  # "<dataset>-<index>"
    index: int  # position in the dataset; seeds derive from it
    question: str
    answer: str
    dataset: str


#: What names a set of problems: a bundled dataset's name, a JSON file, or the problems themselves.
Dataset = Union[str, os.PathLike, Sequence[Problem]]


def load_dataset(name_or_path: str | os.PathLike) -> list[Problem]:
    """A bundled dataset by name (gsm8k, math500, aime2024, aime2025) or a JSON file
    ``[{"prompt": [{"from": "user", "value": QUESTION}], "final_answer": ANSWER}]``."""
    name = str(name_or_path)
    if name in bundled.NAMES:
        path, dataset = bundled.path(name), name
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"no dataset {name!r}: give one of {', '.join(bundled.NAMES)} or a JSON file")
        dataset = path.stem
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty JSON list of problems")
    return [_problem(entry, i, dataset, path) for i, entry in enumerate(entries)]


def _problem(entry: Any, index: int, dataset: str, path: Path) -> Problem:
    try:
        turns = entry["prompt"]
        if isinstance(turns, str):
            question = turns
        else:
            texts = [
                t.get("value", t.get("content")) for t in turns if t.get("from", t.get("role")) in ("user", "human")
            ]
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError("no user turn")
            question = "\n\n".join(texts)
        answer = entry["final_answer"]
        if not isinstance(answer, (str, int, float)):
            raise ValueError("final_answer is not a string or number")
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"{path}: problem {index} is malformed ({e})") from None
    return Problem(f"{dataset}-{index}", index, question, str(answer).strip(), dataset)


def select_problems(dataset: Dataset, limit: int | None = None) -> tuple[list[Problem], list[Problem]]:
    """(every problem of ``dataset``, the first ``limit`` of them): a dataset name, a JSON
    file or a list of problems; the whole dataset is part of a run's identity, the selection
    is what runs."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an int >= 1, not {limit!r}")
    problems = list(dataset) if isinstance(dataset, (list, tuple)) else load_dataset(dataset)
    if not problems:
        raise ValueError("the dataset has no problems")
    return problems, problems[:limit]
