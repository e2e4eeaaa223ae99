"""Chat stream deltas from the engine's text pieces. The decode loop decides where the reasoning
segment ends and flags every piece with it (the results' ``reasoning`` and ``answer`` are the
same split); this keeps the markers out of the streamed ``reasoning_content`` and the whitespace
behind the segment out of ``content``, as the whole message has them."""

from __future__ import annotations

from typing import Tuple


class ChatDeltas:
    """One choice's (reasoning_content, content) deltas: feed each piece, then finish()."""

    def __init__(self, start: str, end: str) -> None:
        self.start, self.end = start, end  # the markers the decode loop follows ("" for none)
        self.reasoning = ""      # the reasoning pieces so far, markers included
        self.sent = 0            # characters of the cleaned reasoning already sent
        self.in_segment = False  # a reasoning piece came
        self.closed = False
        self.content_started = False

    def feed(self, text: str, in_reasoning: bool) -> Tuple[str, str]:
        if in_reasoning:
            self.in_segment = True
            self.reasoning += text
            return self._reasoning_delta(final=False), ""
        reasoning = self.finish()
        if self.in_segment and not self.content_started:
            text = text.lstrip()
        self.content_started = self.content_started or bool(text)
        return reasoning, text

    def finish(self) -> str:
        """The rest of the reasoning once the segment has ended (or the sample has)."""
        if self.closed or not self.in_segment:
            return ""
        self.closed = True
        return self._reasoning_delta(final=True)

    def _reasoning_delta(self, final: bool) -> str:
        text = self.reasoning
        lead = text.lstrip()
        if self.start:
            if not final and len(lead) < len(self.start) and self.start.startswith(lead):
                return ""  # may still become the start marker the model writes
            if lead.startswith(self.start):
                text = lead[len(self.start):]
        if final:
            if self.end and text.endswith(self.end):
                text = text[:-len(self.end)]
        elif self.end:
            # Hold back what may be the end marker arriving (its pieces are still reasoning).
            for length in range(min(len(self.end), len(text)), 0, -1):
                if self.end.startswith(text[-length:]):
                    text = text[:-length]
                    break
        delta = text[self.sent:]
        self.sent = max(self.sent, len(text))
        return delta
