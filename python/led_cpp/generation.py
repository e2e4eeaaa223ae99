"""Streaming iterators over the C++ decode loop."""

from __future__ import annotations

from collections import deque
from typing import Deque, Iterator, List, Optional, Tuple

from . import _core
from .results import GenerationResult


class _Run:
    """Drives one native BatchRun; closes it on any exception, Ctrl-C included."""

    def __init__(self, native: "_core.BatchRun", trace: bool, progress: Optional[object] = None,
                 markers: Optional[Tuple[str, str]] = None) -> None:
        self._native: Optional[_core.BatchRun] = native
        self._trace = trace
        self._markers = markers
        self._progress = progress
        self._results: Optional[List[List[GenerationResult]]] = None
        self.stats: dict = {}

    def pieces(self) -> Iterator[Tuple[int, int, str, bool]]:
        native = self._native  # close() may clear the attribute from another thread
        try:
            while native is not None and not native.finished:
                pieces = native.advance()
                progress = self._progress
                if progress is not None:
                    progress.update(native.stats["decided_steps"] - progress.n)
                yield from pieces
            self._collect()
        except BaseException:
            self.close()
            raise

    def _collect(self) -> None:
        if self._native is None:
            return
        self.stats = dict(self._native.stats)
        self._results = [
            [GenerationResult.from_native(item, self._trace, self._markers) for item in prompt] for prompt in self._native.results()
        ]
        self.close()

    @property
    def results(self) -> Optional[List[List[GenerationResult]]]:
        return self._results

    def close(self) -> None:
        native, self._native = self._native, None
        if native is not None:
            self.stats = dict(native.stats)
            native.close()
        if self._progress is not None:
            self._progress.close()
            self._progress = None


class _Stream:
    """Shared by Generation and BatchStream: iteration over a run, closing, statistics."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._pieces = run.pieces()

    def __iter__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def _finished_results(self) -> List[List[GenerationResult]]:
        if self._run.results is None:
            for _ in self:
                pass
        if self._run.results is None:
            raise RuntimeError(f"the {type(self).__name__} was closed before it finished; it has no result")
        return self._run.results

    @property
    def stats(self) -> dict:
        """Counts of the run: prompt_tokens_evaluated, decode_tokens_evaluated, explored_steps, ..."""
        return self._run.stats

    def close(self) -> None:
        """Stops decoding (also from another thread) and leaves the model usable."""
        run = getattr(self, "_run", None)
        if run is not None:
            run.close()


class Generation(_Stream):
    """Iterating yields text pieces as they are decoded; ``result`` holds the whole generation.

    Pieces are always valid UTF-8, also when a character spans tokens. ``close()`` (or leaving a
    ``with`` block, or Ctrl-C) stops decoding and leaves the model usable.
    """

    def __next__(self) -> str:
        while True:
            _, _, text, _ = next(self._pieces)
            if text:
                return text

    def parts(self) -> Iterator[Tuple[str, bool]]:
        """Like iterating, but yields ``(text, in_reasoning)``: whether the piece lies in the
        reasoning segment (markers included). A piece never straddles the segment's end."""
        for _, _, text, reasoning in self._pieces:
            if text:
                yield text, reasoning

    @property
    def result(self) -> GenerationResult:
        """The finished generation; decodes to the end first if iteration has not."""
        return self._finished_results()[0][0]


class BatchStream(_Stream):
    """Yields ``(prompt_index, sample_index, text_piece)`` as pieces are decoded; afterwards
    ``results[prompt_index][sample_index]`` holds each sample's GenerationResult."""

    def __next__(self) -> Tuple[int, int, str]:
        prompt, sample, text, _ = next(self._pieces)
        return prompt, sample, text

    @property
    def results(self) -> List[List[GenerationResult]]:
        return self._finished_results()
