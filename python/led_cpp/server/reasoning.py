"""Reasoning and answer apart, as chat responses carry them (``reasoning_content``).

Until GenerationResult carries the split, this is the one place that makes it: text before the
end marker is reasoning (a leading start marker removed), text after it the answer."""

from __future__ import annotations

from typing import Optional, Tuple

START, END = "<think>", "</think>"


class ReasoningSplitter:
    """Splits streamed text into (reasoning, content) deltas; feed pieces, then finish()."""

    def __init__(self, starts_inside: bool, enabled: bool) -> None:
        self.enabled = enabled
        self.inside = starts_inside and enabled
        self.undecided = enabled and not starts_inside  # the text may still open with <think>
        self.pending = ""

    def feed(self, text: str) -> Tuple[str, str]:
        if not self.enabled:
            return "", text
        self.pending += text
        reasoning, content = "", ""
        if self.undecided:
            stripped = self.pending.lstrip()
            if START.startswith(stripped) and len(stripped) < len(START):
                return "", ""  # could still become <think>
            self.undecided = False
            if stripped.startswith(START):
                self.inside = True
                self.pending = stripped[len(START):]
        if self.inside:
            at = self.pending.find(END)
            if at < 0:
                # Hold back what could be the start of the end marker.
                keep = len(self.pending)
                for length in range(min(len(END) - 1, len(self.pending)), 0, -1):
                    if END.startswith(self.pending[-length:]):
                        keep = len(self.pending) - length
                        break
                reasoning, self.pending = self.pending[:keep], self.pending[keep:]
                return reasoning, ""
            reasoning = self.pending[:at]
            self.pending = self.pending[at + len(END):].lstrip()
            self.inside = False
        content, self.pending = self.pending, ""
        return reasoning, content

    def finish(self) -> Tuple[str, str]:
        rest, self.pending = self.pending, ""
        if self.inside:
            return rest, ""
        return "", rest


def prompt_opens_reasoning(prompt_text: str) -> bool:
    """Whether the rendered prompt ends inside an open reasoning segment (the template opened it)."""
    start, end = prompt_text.rfind(START), prompt_text.rfind(END)
    return start >= 0 and start > end


def split_reasoning(text: str, starts_inside: bool, enabled: bool = True) -> Tuple[Optional[str], str]:
    splitter = ReasoningSplitter(starts_inside, enabled)
    reasoning, content = splitter.feed(text)
    more_reasoning, more_content = splitter.finish()
    reasoning += more_reasoning
    content += more_content
    saw_segment = starts_inside or splitter.inside or reasoning or text.lstrip().startswith(START)
    return (reasoning.strip() if saw_segment else None), content
