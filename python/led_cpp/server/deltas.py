"""Chat stream deltas from the engine's text pieces. The decode loop decides where the reasoning
segment ends and flags every piece with it (the results' ``reasoning`` and ``answer`` are the
same split); this keeps the markers out of the streamed ``reasoning_content`` and the whitespace
behind the segment out of ``content``, as the whole message has them."""

from __future__ import annotations


class ChatDeltas:
    """One choice's (reasoning_content, content) deltas: feed each piece, then finish()."""

    def __init__(self, start: str, end: str) -> None:
        self.start, self.end = start, end  # the markers the decode loop follows ("" for none)
        self.reasoning = ""  # the reasoning pieces so far, markers included
        self.sent = 0  # characters of the cleaned reasoning already sent
        self.in_segment = False  # a reasoning piece came
        self.closed = False
        self.content_started = False

    def feed(self, text: str, in_reasoning: bool) -> tuple[str, str]:
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
        opened = bool(self.start) and self.start in text
        if opened:
            # The decode loop's reasoning begins after the first start marker the model writes;
            # what the stream sent before it cannot be taken back, the marker itself is left out.
            at = text.find(self.start)
            text = text[:at] + text[at + len(self.start) :]
        if final:
            if self.end and text.endswith(self.end):
                text = text[: -len(self.end)]
        else:
            # Hold back what may be a marker arriving (its pieces are still reasoning).
            markers = [self.end] + ([self.start] if self.start and not opened else [])
            held = 0
            for marker in filter(None, markers):
                for length in range(min(len(marker), len(text)), held, -1):
                    if marker.startswith(text[-length:]):
                        held = length
                        break
            text = text[: len(text) - held]
        delta = text[self.sent :]
        self.sent = max(self.sent, len(text))
        return delta
