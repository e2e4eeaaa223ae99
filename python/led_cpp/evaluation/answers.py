"""Reading the final answer out of a completion: the answer region, the last box, the last number.

The answer region is what follows the first end-of-think marker, or the whole text when the
marker is absent (models that never think, and unfinished reasoning, are judged on what they
wrote). The answer is its last complete ``\\boxed{...}`` (or ``\\fbox{...}``, balanced braces,
also the ``\\boxed 5`` form); for GSM8K the flexible score falls back to the region's last number.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

DEFAULT_THINK_END = "</think>"
#: Datasets whose answers fall back to the last number when there is no box.
NUMBER_FALLBACK_DATASETS = ("gsm8k",)

_BOX_COMMAND = re.compile(r"\\(boxed|fbox)(?![A-Za-z])")
_NUMBER = re.compile(r"(?:(?<![\w)])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def _braced(text: str, start: int) -> int | None:
    """Index just past the group opening at text[start] == '{', or None if it
    never closes.  Escaped braces (\\{ \\}) do not count."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete, non-empty ``\\boxed{...}`` / ``\\fbox{...}``
    (or ``\\boxed X``) in ``text``; None if there is none."""
    found = None
    for m in _BOX_COMMAND.finditer(text):
        i = m.end()
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            continue
        if text[i] == "{":
            end = _braced(text, i)
            if end is None:
                continue
            content = text[i + 1 : end - 1].strip()
        elif m.group(1) == "boxed" and i > m.end():
            # "\boxed 5": the argument runs to whitespace or a math delimiter.
            token = re.match(r"[^\s$]+", text[i:])
            content = token.group(0).rstrip(".,;") if token else ""
        else:
            continue
        if content:
            found = content
    return found


def last_number(text: str) -> str | None:
    """The last number in ``text`` with thousands commas removed ("1,000.5" ->
    "1000.5"); None if there is none."""
    matches = _NUMBER.findall(text)
    return matches[-1].replace(",", "") if matches else None


def answer_region(text: str, think_end: str | None = DEFAULT_THINK_END) -> str:
    """What follows the first end-of-think marker, or the whole text when the
    marker is absent (or ``think_end`` is empty)."""
    if think_end:
        pos = text.find(think_end)
        if pos >= 0:
            return text[pos + len(think_end) :]
    return text


def extract_answer(
    text: str, *, think_end: str | None = DEFAULT_THINK_END, number_fallback: bool = False
) -> str | None:
    """The model's final answer: the last box of the answer region, else (with
    ``number_fallback``, used for GSM8K) its last number, else None."""
    region = answer_region(text, think_end)
    boxed = last_boxed(region)
    if boxed is not None:
        return boxed
    return last_number(region) if number_fallback else None


def model_end_marker(model: Any) -> str | None:
    """The end marker of the model's reasoning segment (``Model.reasoning_markers``), or None."""
    markers = getattr(model, "reasoning_markers", None)
    return markers[1] if markers else None


def result_answer_region(result: Any, think_end: str) -> str:
    """The region an answer is read from: the result's own ``answer`` when its decode loop
    followed ``think_end`` and the segment closed (also for a marker that is a control token
    and so absent from the text), else ``answer_region`` of its text."""
    markers = getattr(result, "reasoning_markers", None)
    if (
        markers
        and markers[1] == think_end
        and getattr(result, "starts_in_reasoning", False)
        and result.reasoning_tokens < len(result.tokens)
    ):
        return result.answer
    return answer_region(result.text, think_end)


def as_number(s: str) -> Fraction | None:
    """``s`` as an exact number if it is a plain (optionally signed, decimal,
    thousands-grouped, dollar-prefixed) number, else None."""
    t = re.sub(r"\\[,!;: ]|\\\$|\$|\s", "", s)
    t = re.sub(r"^\\text\{(.*)\}$", r"\1", t)
    if not re.fullmatch(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+", t):
        return None
    return Fraction(t.replace(",", ""))


def canonical_text(s: str) -> str:
    """``s`` without spacing, ``\\left``/``\\right``, ``\\text{}``-like wrappers and a final period:
    equal canonical texts are equal answers."""
    t = re.sub(r"\\(?:left|right)(?![A-Za-z])|\\[,!;: ]|\$|\s", "", s)
    t = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", t)
    t = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", t)
    return t.rstrip(".")
