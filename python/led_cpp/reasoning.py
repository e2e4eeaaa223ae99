"""Reasoning markers: which pair a model opens and closes its reasoning segment with."""

from __future__ import annotations

from typing import Callable

Markers = tuple[str, str]

# Known (start, end) pairs, in order of preference. gpt-oss writes its reasoning in the analysis
# channel and its answer in the final one; its end "marker" is the header of the final message.
KNOWN_MARKERS: tuple[Markers, ...] = (
    ("<think>", "</think>"),  # Qwen3, QwQ, DeepSeek-R1 distills, SmolLM3, Phi-4-reasoning, ...
    ("[THINK]", "[/THINK]"),  # Magistral, Ministral reasoning
    ("<|START_THINKING|>", "<|END_THINKING|>"),  # Command R7B, Command A reasoning
    ("<seed:think>", "</seed:think>"),  # Seed-OSS
    ("<|channel|>analysis<|message|>", "<|start|>assistant<|channel|>final<|message|>"),  # gpt-oss
)


def find_markers(is_one_token: Callable[[str], bool], chat_template: str | None) -> Markers | None:
    """The first known pair whose markers are both tokens of the vocabulary, or both written
    by the chat template; None when the model has none."""
    for start, end in KNOWN_MARKERS:
        if is_one_token(start) and is_one_token(end):
            return start, end
    if chat_template:
        for start, end in KNOWN_MARKERS:
            if start in chat_template and end in chat_template:
                return start, end
    return None


def marker_pair(model_markers: Markers | None, think_end: str | None) -> Markers:
    """The (start, end) the decode loop follows: an explicit end marker wins (with the model's
    start marker when the ends agree); "" for a marker there is none of."""
    if think_end is None:
        return model_markers if model_markers is not None else ("", "")
    if not think_end:
        raise ValueError("an end-of-think marker must not be empty")
    start = model_markers[0] if model_markers is not None and model_markers[1] == think_end else ""
    return start, think_end
