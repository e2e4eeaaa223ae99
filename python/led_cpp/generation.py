"""Streaming iterators over the C++ decode loop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import _core
from .results import GenerationResult, run_stats


class _Run:
    """Drives one native BatchRun; closes it on any exception, Ctrl-C included."""

    def __init__(
        self, native: _core.BatchRun, trace: bool, progress: Any | None = None, markers: tuple[str, str] | None = None
    ) -> None:
        self._native: _core.BatchRun | None = native
        self._trace = trace
        self._markers = markers
        self._progress = progress
        self._results: list[list[GenerationResult]] | None = None
        self.stats: dict[str, Any] = {}

    def pieces(self) -> Iterator[_core.Piece]:
        native = self._native  # close() may clear the attribute from another thread
        try:
            while native is not None and not native.finished:
                pieces = native.advance()
                progress = self._progress
                if progress is not None:
                    progress.update(native.stats.decided_steps - progress.n)
                yield from pieces
            self._collect()
        except BaseException:
            self.close()
            raise

    def _collect(self) -> None:
        if self._native is None:
            return
        self.stats = run_stats(self._native.stats)
        self._results = [
            [GenerationResult.from_native(item, self._trace, self._markers) for item in prompt]
            for prompt in self._native.results()
        ]
        self.close()

    @property
    def results(self) -> list[list[GenerationResult]] | None:
        return self._results

    def close(self) -> None:
        native, self._native = self._native, None
        if native is not None:
            self.stats = run_stats(native.stats)
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

    def _finished_results(self) -> list[list[GenerationResult]]:
        if self._run.results is None:
            for _ in self:
                pass
        if self._run.results is None:
            raise RuntimeError(f"the {type(self).__name__} was closed before it finished; it has no result")
        return self._run.results

    @property
    def stats(self) -> dict[str, Any]:
        """Counts of the run (the fields of ``_core.RunStats``): prompt_tokens_evaluated,
        decode_tokens_evaluated, decode_calls, explore_graphs, every_step, shared_head_product,
        explored_steps, decided_steps, n_parallel, peak_active. Filled when the run ends or closes."""
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
            piece = next(self._pieces)
            if piece.text:
                return piece.text

    def parts(self) -> Iterator[tuple[str, bool]]:
        """Like iterating, but yields ``(text, in_reasoning)``: whether the piece lies in the
        reasoning segment (markers included). A piece never straddles the segment's end."""
        for piece in self._pieces:
            if piece.text:
                yield piece.text, piece.reasoning

    @property
    def result(self) -> GenerationResult:
        """The finished generation; decodes to the end first if iteration has not."""
        return self._finished_results()[0][0]


class BatchStream(_Stream):
    """Yields ``(prompt_index, sample_index, text_piece)`` as pieces are decoded; afterwards
    ``results[prompt_index][sample_index]`` holds each sample's GenerationResult."""

    def __next__(self) -> tuple[int, int, str]:
        piece = next(self._pieces)
        return piece.prompt, piece.sample, piece.text

    @property
    def results(self) -> list[list[GenerationResult]]:
        """Per prompt, per sample, the GenerationResult; decodes to the end first if iteration
        has not."""
        return self._finished_results()
